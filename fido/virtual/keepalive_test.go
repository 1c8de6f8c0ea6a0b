package virtual_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
	"github.com/fidokit/fidokit/internal/hid"
)

// TestIssue13KeepaliveWhileAnotherHostHoldsTheKey is issue 13 item 2 on
// the virtual key: while a request waits for the key, because another
// host's command holds it for a touch, the key sends KEEPALIVE about every
// 100 ms, for a U2F (CTAPHID_MSG) request as for a CBOR one, so that the
// waiting host does not take the key for gone.
func TestIssue13KeepaliveWhileAnotherHostHoldsTheKey(t *testing.T) {
	for _, tt := range []struct {
		name string
		cmd  hid.Command
		req  []byte
	}{
		{"U2F version", hid.CmdMsg, []byte{0x00, 0x03, 0x00, 0x00}},
		{"CTAP2 getInfo", hid.CmdCBOR, []byte{0x04}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := virtual.NewButton()
			k := newKey(t, &virtual.Config{UserPresence: b.Presence()})
			a := open(t, k, nil)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()

			// Host A holds the key, waiting for a touch.
			errA := make(chan error, 1)
			go func() {
				_, err := a.MakeCredential(ctx, &fido.MakeCredentialRequest{ClientDataHash: hash,
					RP: fido.RelyingParty{ID: rpID}, User: fido.User{ID: []byte("alice")}})
				errA <- err
			}()
			select {
			case <-b.Waiting():
			case <-ctx.Done():
				t.Fatal("the key never asked for a touch")
			}

			// Host B asks meanwhile, on a channel of its own, with an idle
			// timeout far below the time it waits.
			ch, err := hid.Open(ctx, k.Conn())
			require.NoError(t, err)
			defer ch.Close()
			ch.IdleTimeout = 300 * time.Millisecond
			var (
				mu    sync.Mutex
				times []time.Time
			)
			type result struct {
				resp []byte
				err  error
			}
			res := make(chan result, 1)
			start := time.Now()
			go func() {
				resp, err := ch.Transact(ctx, tt.cmd, tt.req, func(byte) {
					mu.Lock()
					times = append(times, time.Now())
					mu.Unlock()
				})
				res <- result{resp, err}
			}()
			time.Sleep(time.Second)
			b.Press()
			require.NoError(t, <-errA, "host A's makeCredential")
			r := <-res
			require.NoError(t, r.err, "host B's request, which waited %v", time.Since(start))
			require.NotEmpty(t, r.resp)

			mu.Lock()
			defer mu.Unlock()
			require.GreaterOrEqual(t, len(times), 4, "KEEPALIVEs in a wait of a second")
			var gaps []time.Duration
			prev := start
			for _, at := range times {
				gaps = append(gaps, at.Sub(prev))
				prev = at
			}
			slices.Sort(gaps)
			assert.Less(t, gaps[len(gaps)/2], 300*time.Millisecond, "median gap between KEEPALIVEs, of %v", gaps)
		})
	}
}
