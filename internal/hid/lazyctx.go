package hid

import (
	"context"
	"sync"
	"time"
)

// lazyCtx is a context.Context that makes its cancellation machinery (a
// context.WithDeadlineCause or WithCancel under it, with their channel,
// timer and registration with the parent) only when something needs it:
// a call of Done, an Err past the deadline, or an abort. Most operations
// finish long before their deadline without anyone waiting on Done, so
// that machinery would be built and torn down per message for nothing;
// the standard library has no lazy variant.
//
// A Channel recognises it and watches only its parent's Done, since its
// reads are bounded by the deadline anyway (see receive).
type lazyCtx struct {
	parent   context.Context
	deadline time.Time // zero: none beyond the parent's
	cause    error     // the deadline's cause

	origin    Origin
	hasOrigin bool

	mu       sync.Mutex
	real     context.Context // made on demand; then it answers everything
	stopReal context.CancelFunc
	released bool
}

var _ context.Context = (*lazyCtx)(nil)

// closedChan is Done of a released lazyCtx that never made a real one.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// OperationContext is context.WithTimeoutCause(parent, timeout, cause),
// except that it allocates no timer or channel unless one is needed: its
// Done is called, or the deadline has passed when its Err is asked. The
// returned function releases it and must be called when the operation
// ends; it makes Err report context.Canceled, as a CancelFunc does.
func OperationContext(parent context.Context, timeout time.Duration, cause error) (context.Context, func()) {
	c := &lazyCtx{parent: parent, deadline: time.Now().Add(timeout), cause: cause}
	return c, c.release
}

func (c *lazyCtx) Deadline() (time.Time, bool) {
	d, ok := c.parent.Deadline()
	if c.deadline.IsZero() || ok && d.Before(c.deadline) {
		return d, ok
	}
	return c.deadline, true
}

// makeReal builds the real context; c.mu is held.
func (c *lazyCtx) makeReal() {
	if c.deadline.IsZero() {
		c.real, c.stopReal = context.WithCancel(c.parent)
	} else {
		c.real, c.stopReal = context.WithDeadlineCause(c.parent, c.deadline, c.cause)
	}
	if c.released {
		c.stopReal()
	}
}

func (c *lazyCtx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.real == nil {
		if c.released {
			return closedChan
		}
		c.makeReal()
	}
	return c.real.Done()
}

func (c *lazyCtx) Err() error { return c.errAt(time.Time{}) }

// errAt is Err with now the time, or zero to read the clock when the
// answer depends on it: the clock is slow enough on some machines to show
// in a profile, and nested lazyCtxs would read it once each.
func (c *lazyCtx) errAt(now time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.real == nil {
		if c.released {
			return context.Canceled
		}
		var err error
		if p, ok := c.parent.(*lazyCtx); ok {
			if now.IsZero() && !c.deadline.IsZero() {
				now = time.Now()
			}
			err = p.errAt(now)
		} else {
			err = c.parent.Err()
		}
		if err != nil {
			return err
		}
		if c.deadline.IsZero() {
			return nil
		}
		if now.IsZero() {
			now = time.Now()
		}
		if now.Before(c.deadline) {
			return nil
		}
		// Past the deadline: the real context, made now, is done at
		// once and carries the cause for context.Cause.
		c.makeReal()
	}
	return c.real.Err()
}

func (c *lazyCtx) Value(key any) any {
	if _, ok := key.(originKey); ok && c.hasOrigin {
		return c.origin
	}
	c.mu.Lock()
	real := c.real
	c.mu.Unlock()
	if real != nil {
		// So that context.Cause finds the real one's cause.
		return real.Value(key)
	}
	return c.parent.Value(key)
}

// release ends the context's use: Err says context.Canceled from now on.
func (c *lazyCtx) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.released = true
	if c.stopReal != nil {
		c.stopReal()
	}
}

// abort cancels the context while it is in use, so that whoever waits on
// it sees context.Canceled, and context.Cause agrees.
func (c *lazyCtx) abort() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.real == nil {
		c.makeReal()
	}
	c.stopReal()
}

// watched returns the context whose Done a Channel must watch for ctx:
// ctx itself, or for a lazyCtx its nearest ancestor that is not one, since
// a lazyCtx's own deadline already bounds every read.
func watched(ctx context.Context) context.Context {
	for {
		c, ok := ctx.(*lazyCtx)
		if !ok {
			return ctx
		}
		c.mu.Lock()
		real := c.real
		c.mu.Unlock()
		if real != nil || c.deadline.IsZero() {
			// Made already, or cancellable by abort: watch it itself.
			return ctx
		}
		ctx = c.parent
	}
}
