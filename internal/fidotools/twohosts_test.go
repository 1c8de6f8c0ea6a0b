package fidotools

import (
	"context"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
)

// TestTwoHostsWithLibfido2 is issue 13 item 13 with a peer client: while
// fidokit's client (the "browser") waits for a touch on the virtual key,
// libfido2's fido2-token (the "script") uses the same key through its
// socket. It waits its turn, and both get their answers.
func TestTwoHostsWithLibfido2(t *testing.T) {
	b := virtual.NewButton()
	e := newEnv(t, &virtual.Config{UserPresence: b.Presence()})
	ctx := context.Background()
	dev, err := fido.Open(ctx, e.sock)
	require.NoError(t, err)
	defer dev.Close()
	hash := sha256.Sum256([]byte("two hosts"))
	mc := func(user string) error {
		_, err := dev.MakeCredential(ctx, &fido.MakeCredentialRequest{ClientDataHash: hash[:],
			RP: fido.RelyingParty{ID: rpID}, User: fido.User{ID: []byte(user)}})
		return err
	}

	browser := make(chan error, 1)
	go func() { browser <- mc("alice") }()
	<-b.Waiting() // the browser's request has the key

	type result struct {
		out string
		err error
	}
	script := make(chan result, 1)
	go func() {
		out, err := e.run("", "fido2-token", "-I", e.sock)
		script <- result{out, err}
	}()
	select {
	case r := <-script:
		t.Fatalf("fido2-token finished while the key was busy: %q, %v", r.out, r.err)
	case <-time.After(500 * time.Millisecond):
	}
	b.Press()
	require.NoError(t, <-browser)
	r := <-script
	require.NoError(t, r.err)
	assert.Contains(t, r.out, "FIDO_2_1")

	// Taking turns again, the other way round and at once.
	go func() {
		for {
			select {
			case <-b.Waiting():
				b.Press()
			case <-time.After(2 * time.Second):
				return
			}
		}
	}()
	for range 3 {
		go func() {
			out, err := e.run("", "fido2-token", "-I", e.sock)
			script <- result{out, err}
		}()
		assert.NoError(t, mc("bob"))
		r := <-script
		assert.NoError(t, r.err)
		assert.Contains(t, r.out, "FIDO_2_1")
	}
}
