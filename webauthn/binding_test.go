package webauthn_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/webauthn"
)

// TestWithSessionBinding: a ceremony begun under a session binding
// finishes only under the same one.
func TestWithSessionBinding(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*webauthn.Config)
	}{
		{"stored challenges", nil},
		{"challenge tokens", func(c *webauthn.Config) { c.ChallengeKey = bytes.Repeat([]byte{7}, 32) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.mod)
			u := e.user("alice")
			k := e.key(nil)
			e.register(k, u, "Key")
			mine := webauthn.WithSessionBinding(e.ctx, []byte("browser one"))
			for _, fin := range []struct {
				name string
				ctx  context.Context
				ok   bool
			}{
				{"another binding", webauthn.WithSessionBinding(e.ctx, []byte("browser two")), false},
				{"no binding", e.ctx, false},
				{"empty binding", webauthn.WithSessionBinding(e.ctx, nil), false},
				{"the same binding", webauthn.WithSessionBinding(e.ctx, []byte("browser one")), true},
			} {
				t.Run(fin.name, func(t *testing.T) {
					for _, discoverable := range []bool{false, true} {
						var b *webauthn.Begin
						var err error
						if discoverable {
							b, err = e.rp.BeginDiscoverableLogin(mine)
						} else {
							b, err = e.rp.BeginLogin(mine, u.ID)
						}
						require.NoError(t, err)
						resp := e.get(k, b.Options)
						_, _, err = e.rp.FinishLogin(fin.ctx, b.ChallengeID, resp)
						if fin.ok {
							assert.NoError(t, err)
						} else {
							wantErr(t, err, webauthn.ErrChallengeUnknown, "challenge")
						}
					}
				})
			}
			// A ceremony begun without a binding does not finish under one.
			b := e.beginRegistration(u)
			resp := e.create(e.key(nil), b.Options)
			_, err := e.rp.FinishRegistration(mine, b.ChallengeID, resp, "")
			wantErr(t, err, webauthn.ErrChallengeUnknown, "challenge")
		})
	}
}
