package hid

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var errTestCause = errors.New("test cause")

// TestOperationContext holds OperationContext to what
// context.WithTimeoutCause promises, whether or not its Done was asked for.
func TestOperationContext(t *testing.T) {
	for _, waited := range []bool{false, true} {
		t.Run(map[bool]string{false: "lazy", true: "done"}[waited], func(t *testing.T) {
			ctx, release := OperationContext(context.Background(), 20*time.Millisecond, errTestCause)
			defer release()
			d, ok := ctx.Deadline()
			require.True(t, ok)
			assert.WithinDuration(t, time.Now().Add(20*time.Millisecond), d, 15*time.Millisecond)
			assert.NoError(t, ctx.Err())
			if waited {
				select {
				case <-ctx.Done():
				case <-time.After(5 * time.Second):
					t.Fatal("Done not closed at the deadline")
				}
			} else {
				time.Sleep(30 * time.Millisecond)
			}
			assert.ErrorIs(t, ctx.Err(), context.DeadlineExceeded)
			assert.ErrorIs(t, context.Cause(ctx), errTestCause)
			assert.ErrorIs(t, ContextErr(ctx), errTestCause)
			select {
			case <-ctx.Done():
			default:
				t.Fatal("Done open after Err")
			}
		})
	}
	t.Run("parent", func(t *testing.T) {
		parent, cancel := context.WithCancelCause(context.Background())
		ctx, release := OperationContext(parent, time.Hour, errTestCause)
		defer release()
		inner, releaseInner := OperationContext(ctx, time.Minute, errTestCause)
		defer releaseInner()
		d, _ := inner.Deadline()
		assert.WithinDuration(t, time.Now().Add(time.Minute), d, time.Second)
		assert.Equal(t, parent, watched(inner), "an untouched chain is watched at its root")
		cancel(errTestCause)
		assert.ErrorIs(t, inner.Err(), context.Canceled)
		assert.ErrorIs(t, context.Cause(inner), errTestCause)
		<-inner.Done()
	})
	t.Run("release", func(t *testing.T) {
		ctx, release := OperationContext(context.Background(), time.Hour, errTestCause)
		release()
		assert.ErrorIs(t, ctx.Err(), context.Canceled)
		<-ctx.Done()
		ctx, release = OperationContext(context.Background(), time.Hour, errTestCause)
		done := ctx.Done()
		release()
		<-done
		assert.ErrorIs(t, ctx.Err(), context.Canceled)
	})
	t.Run("abort", func(t *testing.T) {
		c := &lazyCtx{parent: context.Background(), origin: Origin{cid: 7}, hasOrigin: true}
		assert.Equal(t, Origin{cid: 7}, RequestOrigin(c))
		assert.NoError(t, c.Err())
		assert.Nil(t, c.parent.Done())
		c.abort()
		<-c.Done()
		assert.ErrorIs(t, c.Err(), context.Canceled)
		assert.Equal(t, Origin{cid: 7}, RequestOrigin(c))
		c.release()
		assert.ErrorIs(t, c.Err(), context.Canceled)
	})
	t.Run("AfterFunc", func(t *testing.T) {
		ctx, release := OperationContext(context.Background(), 10*time.Millisecond, errTestCause)
		defer release()
		fired := make(chan struct{})
		context.AfterFunc(ctx, func() { close(fired) })
		select {
		case <-fired:
		case <-time.After(5 * time.Second):
			t.Fatal("AfterFunc not run at the deadline")
		}
	})
}
