package virtual

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/hid"
	"github.com/fidokit/fidokit/internal/hid/hidtest"
)

// noTouchAsked checks that the key does not start waiting for a touch.
func noTouchAsked(t *testing.T, b *Button) {
	t.Helper()
	select {
	case r := <-b.Waiting():
		t.Errorf("the key asked for a touch for %+v", r)
	case <-time.After(200 * time.Millisecond):
	}
}

// mcFor is a makeCredential request for user through fido.
func mcFor(user string) *fido.MakeCredentialRequest {
	return &fido.MakeCredentialRequest{ClientDataHash: cdh, RP: fido.RelyingParty{ID: testRPID},
		User: fido.User{ID: []byte(user), Name: user}, Discoverable: true}
}

// TestTwoHostsShareKey is issue 13 item 13 on the virtual key: two hosts
// use one key at once and both keep working, whether each has its own
// CTAPHID server (two connections to one socket, two Conns) or both share
// one server's channels (one transport, as programs sharing one hidraw
// device do). A command that waits for the key while the other host's
// command waits for a touch can be cancelled, and then never runs.
func TestTwoHostsShareKey(t *testing.T) {
	t.Run("cancelled while waiting for the key", func(t *testing.T) {
		b := NewButton()
		k := newTestKey(t, &Config{UserPresence: b.Presence()})
		first := make(chan []byte, 1)
		go func() {
			req, _ := ctap.EncodeRequest(ctap.CmdMakeCredential, mcRequest("alice", true))
			first <- k.handleCBOR(context.Background(), req, nil)
		}()
		<-b.Waiting() // alice's command has the key

		ctx, cancel := context.WithCancel(context.Background())
		second := make(chan []byte, 1)
		go func() {
			req, _ := ctap.EncodeRequest(ctap.CmdMakeCredential, mcRequest("bob", true))
			second <- k.handleCBOR(ctx, req, nil)
		}()
		time.Sleep(50 * time.Millisecond) // bob's command waits for the key
		cancel()
		select {
		case resp := <-second:
			assert.Equal(t, []byte{byte(ctap.StatusKeepaliveCancel)}, resp)
		case <-time.After(2 * time.Second):
			t.Fatal("a cancelled command went on waiting for the key")
		}
		b.Press()
		assert.Equal(t, byte(ctap.StatusOK), (<-first)[0])
		noTouchAsked(t, b) // bob's command is not run after all
		creds := k.Credentials()
		require.Len(t, creds, 1)
		assert.Equal(t, "alice", string(creds[0].UserID))
	})

	t.Run("getNextAssertion belongs to its host", func(t *testing.T) {
		k := newTestKey(t, nil)
		makeCredential(t, k, mcRequest("alice", true))
		makeCredential(t, k, mcRequest("bob", true))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		transact := func(ch *hid.Channel, c ctap.Command, v any) []byte {
			t.Helper()
			req, err := ctap.EncodeRequest(c, v)
			require.NoError(t, err)
			resp, err := ch.Transact(ctx, hid.CmdCBOR, req, nil)
			require.NoError(t, err)
			require.NotEmpty(t, resp)
			return resp
		}
		cbor := func(ch *hid.Channel, c ctap.Command, v any) ctap.Status {
			t.Helper()
			return ctap.Status(transact(ch, c, v)[0])
		}
		var chs []*hid.Channel
		for range 2 {
			ch, err := hid.Open(ctx, k.Conn())
			require.NoError(t, err)
			defer ch.Close()
			chs = append(chs, ch)
		}
		a, b := chs[0], chs[1]
		require.Equal(t, ctap.StatusOK, cbor(a, ctap.CmdGetAssertion, gaRequest()))
		// B can neither take A's second assertion nor end A's sequence.
		assert.Equal(t, ctap.StatusNotAllowed, cbor(b, ctap.CmdGetNextAssertion, nil))
		assert.Equal(t, ctap.StatusOK, cbor(b, ctap.CmdGetInfo, nil))
		assert.Equal(t, ctap.StatusOK, cbor(a, ctap.CmdGetNextAssertion, nil))
		assert.Equal(t, ctap.StatusNotAllowed, cbor(a, ctap.CmdGetNextAssertion, nil), "only two accounts")
		// A credential another host replaces in the meantime is skipped,
		// never signed with after it is gone.
		makeCredential(t, k, mcRequest("carol", true))
		require.Equal(t, ctap.StatusOK, cbor(a, ctap.CmdGetAssertion, gaRequest())) // carol, then bob, alice
		makeCredential(t, k, mcRequest("bob", true))                                // bob's credential anew
		resp := transact(a, ctap.CmdGetNextAssertion, nil)
		require.Equal(t, byte(ctap.StatusOK), resp[0])
		ga, err := ctap.DecodeGetAssertionResponse(resp[1:])
		require.NoError(t, err)
		assert.Equal(t, "alice", string(ga.User.ID), "the replaced credential was used")
		assert.Equal(t, ctap.StatusNotAllowed, cbor(a, ctap.CmdGetNextAssertion, nil))

		// Within one host, any other command still ends it (§6.3).
		require.Equal(t, ctap.StatusOK, cbor(a, ctap.CmdGetAssertion, gaRequest()))
		require.Equal(t, ctap.StatusOK, cbor(a, ctap.CmdGetInfo, nil))
		assert.Equal(t, ctap.StatusNotAllowed, cbor(a, ctap.CmdGetNextAssertion, nil))
	})

	t.Run("two connections", func(t *testing.T) {
		if runtime.GOOS != "linux" {
			t.Skip("virtual key sockets are Linux only")
		}
		b := NewButton()
		k := newTestKey(t, &Config{UserPresence: b.Presence()})
		srv, err := k.Listen(filepath.Join(t.TempDir(), "key.sock"))
		require.NoError(t, err)
		ctx := context.Background()
		devA, err := fido.Open(ctx, srv.Path())
		require.NoError(t, err)
		defer devA.Close()
		devB, err := fido.Open(ctx, srv.Path())
		require.NoError(t, err)
		defer devB.Close()
		hostTwo(t, b, devA, devB, func(err error) bool { return false })
	})

	t.Run("one CTAPHID server", func(t *testing.T) {
		b := NewButton()
		k := newTestKey(t, &Config{UserPresence: b.Presence()})
		ctx := context.Background()
		var devs []*fido.Device
		for i, conn := range hidtest.Share(k.Conn(), 2) {
			d, err := (&fido.Opener{}).OpenConn(ctx, conn, fido.DeviceInfo{Path: fmt.Sprintf("host%d", i), Virtual: true})
			require.NoError(t, err)
			defer d.Close()
			devs = append(devs, d)
		}
		// Sharing one server's channels, the second host hears
		// ERR_CHANNEL_BUSY while the first one's command runs, and
		// retries.
		hostTwo(t, b, devs[0], devs[1], func(err error) bool { return errors.Is(err, fido.HIDErrChannelBusy) })
	})
}

// hostTwo runs the two-host scenario: A waits for a touch while B, asking
// in the meantime, waits or is told the key is busy; B's cancelled request
// costs nothing; after the touch both enroll and sign in, concurrently,
// retrying when retry says so.
func hostTwo(t *testing.T, b *Button, devA, devB *fido.Device, retry func(error) bool) {
	ctx := context.Background()
	errA := make(chan error, 1)
	go func() {
		_, err := devA.MakeCredential(ctx, mcFor("alice"))
		errA <- err
	}()
	<-b.Waiting()

	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	_, err := devB.Info(cctx)
	cancel()
	if !retry(err) {
		assert.ErrorIs(t, err, context.DeadlineExceeded, "B asked while A had the key")
	}
	assert.Less(t, time.Since(start), 1500*time.Millisecond, "B's cancel took long")

	b.Press()
	require.NoError(t, <-errA)

	// Both hosts work, at the same time.
	var wg sync.WaitGroup
	for _, h := range []struct {
		dev  *fido.Device
		user string
	}{{devA, "carol"}, {devB, "bob"}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5 {
				err := withRetry(ctx, retry, func() error {
					_, err := h.dev.MakeCredential(ctx, mcFor(fmt.Sprintf("%s%d", h.user, i)))
					return err
				})
				assert.NoError(t, err, "%s enrolling", h.user)
				err = withRetry(ctx, retry, func() error {
					as, err := h.dev.GetAssertion(ctx, &fido.GetAssertionRequest{RPID: testRPID, ClientDataHash: cdh})
					if err == nil && len(as) < 2 {
						err = fmt.Errorf("%d accounts", len(as))
					}
					return err
				})
				assert.NoError(t, err, "%s signing in", h.user)
			}
		}()
	}
	go func() { // every touch the two hosts need
		for {
			select {
			case <-b.Waiting():
				b.Press()
			case <-time.After(2 * time.Second):
				return
			}
		}
	}()
	wg.Wait()
}

// withRetry calls f until it succeeds, fails for good or 10 s pass,
// retrying a moment later when retry says so.
func withRetry(ctx context.Context, retry func(error) bool, f func() error) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		err := f()
		if !retry(err) || ctx.Err() != nil {
			return err
		}
		time.Sleep(2 * time.Millisecond)
	}
}
