package fido

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/internal/ctap"
)

// marshalSPKI must give exactly what x509.MarshalPKIXPublicKey gives.
func TestMarshalSPKIMatchesX509(t *testing.T) {
	var keys []crypto.PublicKey
	for range 20 {
		ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		pub, _, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		keys = append(keys, &ec.PublicKey, pub)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	keys = append(keys, &p384.PublicKey, &rsaKey.PublicKey, ed25519.PublicKey(make([]byte, 31)))
	for _, k := range keys {
		want, wantErr := x509.MarshalPKIXPublicKey(k)
		got, gotErr := marshalSPKI(k)
		assert.Equal(t, wantErr == nil, gotErr == nil, "%T: x509 %v, marshalSPKI %v", k, wantErr, gotErr)
		assert.Equal(t, want, got, "%T", k)
	}
}

// The key Device.MakeCredential parsed is reused only for the encoding it
// came from.
func TestAttestationParsedKey(t *testing.T) {
	a, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	b, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	coseA, err := ctap.MarshalPublicKey(&a.PublicKey)
	require.NoError(t, err)
	coseB, err := ctap.MarshalPublicKey(&b.PublicKey)
	require.NoError(t, err)
	att := &Attestation{Algorithm: ES256, PublicKey: coseA, parsed: &a.PublicKey, parsedFrom: coseA}
	pub, err := att.publicKey()
	require.NoError(t, err)
	assert.Same(t, &a.PublicKey, pub)
	att.PublicKey = coseB
	pub, err = att.publicKey()
	require.NoError(t, err)
	assert.True(t, b.PublicKey.Equal(pub), "a changed PublicKey is parsed again")
	wantB, err := x509.MarshalPKIXPublicKey(&b.PublicKey)
	require.NoError(t, err)
	assert.Equal(t, wantB, subjectPublicKeyInfo(att))
}
