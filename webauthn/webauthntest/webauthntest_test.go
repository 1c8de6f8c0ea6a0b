package webauthntest_test

import (
	"context"
	"crypto/x509"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
	"github.com/fidokit/fidokit/webauthn"
	"github.com/fidokit/fidokit/webauthn/webauthntest"
)

// newRP makes a relying party on a memory store for https://localhost.
func newRP(t *testing.T, p webauthn.Policy) *webauthn.RelyingParty {
	t.Helper()
	rp, err := webauthn.New(webauthn.Config{
		RPID:    "localhost",
		Origins: []string{"https://localhost"},
		Store:   webauthn.NewMemoryStore(),
		Policy:  p,
	})
	require.NoError(t, err)
	return rp
}

// TestAttestationRootTrusted is issue 13 item 14: a key that made its own
// attestation CA (virtual.Config.AttestationCA nil) hands out the root, and
// a relying party that trusts only that root accepts the key and refuses
// another key.
func TestAttestationRootTrusted(t *testing.T) {
	ctx := context.Background()
	c := webauthntest.NewClient(t, webauthntest.Options{})
	root := c.AttestationRoot()
	require.NotNil(t, root)
	assert.True(t, root.IsCA, "the root is a CA certificate")
	assert.Same(t, c.Key().AttestationRoot(), root)
	require.NoError(t, root.CheckSignatureFrom(root), "the generated root is self-signed")

	for _, policy := range []webauthn.AttestationPolicy{webauthn.AttestationAny, webauthn.AttestationAAGUIDs} {
		t.Run(policy.String(), func(t *testing.T) {
			rp := newRP(t, webauthn.Policy{Attestation: policy, AttestationRoots: []*x509.Certificate{root},
				AllowedAAGUIDs: [][16]byte{virtual.DefaultAAGUID}})
			u, err := rp.CreateUser(ctx, "alice", "Alice")
			require.NoError(t, err)
			cred, err := c.Register(ctx, rp, u.ID, "Blue key")
			require.NoError(t, err, "a key chaining to the trusted root")
			assert.Equal(t, "packed", cred.AttestationFormat)
			assert.Equal(t, "basic_full", cred.AttestationType)
			_, _, err = c.Login(ctx, rp, u.ID)
			assert.NoError(t, err)

			// Another key made its own, other root: not trusted.
			other := webauthntest.NewClient(t, webauthntest.Options{})
			require.NotEqual(t, root.Raw, other.AttestationRoot().Raw)
			_, err = other.Register(ctx, rp, u.ID, "Red key")
			assert.ErrorIs(t, err, webauthn.ErrAttestationUntrusted)
		})
	}

	t.Run("caller's CA", func(t *testing.T) {
		ca, err := virtual.NewAttestationCA(nil, "fleet root")
		require.NoError(t, err)
		c := webauthntest.NewClient(t, webauthntest.Options{Key: &virtual.Config{AttestationCA: ca}})
		assert.Equal(t, ca.Certificate.Raw, c.AttestationRoot().Raw)
	})
}

// TestOptionsPIN is issue 13 item 15: Options.PIN alone gives the key a
// PIN and the client the PIN to answer with, enough for a relying party
// that requires user verification; without it such a relying party gets
// ErrPINRequired from the client; conflicting settings are refused.
func TestOptionsPIN(t *testing.T) {
	ctx := context.Background()
	rp := newRP(t, webauthn.Policy{UserVerification: webauthn.Required})

	t.Run("one field does", func(t *testing.T) {
		c := webauthntest.NewClient(t, webauthntest.Options{PIN: "4321"})
		assert.True(t, c.Key().HasPIN())
		u, cred, err := c.Signup(ctx, rp, "alice", "Alice", "Blue key")
		require.NoError(t, err)
		assert.True(t, cred.Active())
		got, _, err := c.Login(ctx, rp, u.ID)
		require.NoError(t, err)
		assert.Equal(t, u.ID, got.ID)
		got, _, err = c.LoginDiscoverable(ctx, rp)
		require.NoError(t, err)
		assert.Equal(t, u.ID, got.ID)
	})

	t.Run("the caller's Config is left alone", func(t *testing.T) {
		cfg := &virtual.Config{Attestation: virtual.AttestationNone}
		c := webauthntest.NewClient(t, webauthntest.Options{PIN: "4321", Key: cfg})
		assert.Empty(t, cfg.PIN)
		assert.True(t, c.Key().HasPIN())
		_, _, err := c.Signup(ctx, rp, "bob", "Bob", "Blue key")
		assert.NoError(t, err)
	})

	t.Run("no PIN", func(t *testing.T) {
		c := webauthntest.NewClient(t, webauthntest.Options{Key: &virtual.Config{PIN: "4321"}})
		_, _, err := c.Signup(ctx, rp, "carol", "Carol", "Blue key")
		assert.ErrorIs(t, err, fido.ErrPINRequired)
	})

	t.Run("conflicts", func(t *testing.T) {
		prompt := fido.Prompt{PIN: func(context.Context, fido.PINRequest) (string, error) { return "4321", nil }}
		for name, opts := range map[string]webauthntest.Options{
			"different Key.PIN": {PIN: "4321", Key: &virtual.Config{PIN: "1234"}},
			"Prompt.PIN too":    {PIN: "4321", Prompt: prompt},
		} {
			_, err := webauthntest.New(ctx, opts)
			assert.Error(t, err, name)
		}
		c, err := webauthntest.New(ctx, webauthntest.Options{PIN: "4321", Key: &virtual.Config{PIN: "4321"}})
		require.NoError(t, err, "the same PIN twice")
		c.Close()
	})
}
