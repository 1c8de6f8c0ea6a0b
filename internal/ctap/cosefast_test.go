package ctap

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// es256Key returns the COSE encoding of a fresh P-256 key.
func es256Key(tb testing.TB) []byte {
	tb.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(tb, err)
	b, err := MarshalPublicKey(&k.PublicKey)
	require.NoError(tb, err)
	return b
}

// FuzzCOSEFastPath holds the ES256 shortcut of ParsePublicKey and
// firstMap to their generic paths: same key or same error, same item and
// rest. Inputs are a key's encoding with one byte changed and bytes after
// it, so the fuzzer works at the template's edges.
func FuzzCOSEFastPath(f *testing.F) {
	key := es256Key(f)
	f.Add(key, -1, byte(0), []byte{})
	f.Add(key, 0, byte(0xa6), []byte{0x01})
	f.Add(key, 11, byte(0xff), []byte("rest"))
	f.Add(key, 44, byte(0x21), []byte{})
	f.Add(key, 76, byte(0), []byte{0xa0})
	f.Fuzz(func(t *testing.T, key []byte, at int, b byte, tail []byte) {
		in := append([]byte{}, key...)
		if at >= 0 && at < len(in) {
			in[at] = b
		}
		alg, pub, err := ParsePublicKey(in)
		slowAlg, slowPub, slowErr := parsePublicKeySlow(in)
		sameError(t, slowErr, err)
		assert.Equal(t, slowAlg, alg)
		if slowErr == nil {
			assert.True(t, slowPub.(interface{ Equal(x crypto.PublicKey) bool }).Equal(pub), "keys differ for %x", in)
		}
		in = append(in, tail...)
		item, rest, err := firstMap("authData", "credential public key", in)
		slowItem, slowRest, slowErr := firstMapSlow("authData", "credential public key", in)
		sameError(t, slowErr, err)
		assert.Equal(t, slowItem, item)
		assert.Equal(t, slowRest, rest)
	})
}

// The shortcut is the path taken for the keys the virtual key makes.
func TestES256FastPathTaken(t *testing.T) {
	key := es256Key(t)
	require.Len(t, key, es256KeyLen)
	assert.True(t, isES256Key(key))
	alg, pub, err := ParsePublicKey(key)
	require.NoError(t, err)
	assert.Equal(t, AlgES256, alg)
	again, err := MarshalPublicKey(pub)
	require.NoError(t, err)
	assert.Equal(t, key, again)
}

// hasNull finds null items, not 0xf6 bytes inside strings, so that an
// attestation statement's signature or certificate does not send the
// message to the slow decoder.
func TestHasNull(t *testing.T) {
	for _, tt := range []struct {
		hex  string
		want bool
	}{
		{"43f6f6f6", false},                   // h'f6f6f6'
		{"63f6f6f6", false},                   // text of 0xf6 bytes (not UTF-8, but not null)
		{"f6", true},                          // null
		{"8201f6", true},                      // [1, null]
		{"a263616c672663736967f6", true},      // {"alg": -7, "sig": null}
		{"a263616c6726637369674201f6", false}, // {"alg": -7, "sig": h'01f6'}
		{"5f", true},                          // indefinite: not walked
	} {
		assert.Equal(t, tt.want, hasNull(unhex(t, tt.hex)), tt.hex)
	}
	r := sampleMakeCredentialResponse(t)
	r.AttStmt = MustMarshal(map[string]any{"alg": -7, "sig": []byte{0xf6, 0xf6}, "x5c": [][]byte{{0x30, 0xf6}}})
	var got MakeCredentialResponse
	require.True(t, fastMakeCredentialResponse(MustMarshal(r), &got))
	assert.Equal(t, *r, got)
}

// isZeroStruct may stand in for encoding only if a zero extension struct
// encodes as an empty map.
func TestZeroExtensionsEncodeEmpty(t *testing.T) {
	for _, v := range []any{&MakeCredentialExtensions{}, &GetAssertionExtensions{},
		&MakeCredentialExtensionOutputs{}, &GetAssertionExtensionOutputs{}} {
		assert.True(t, isZeroStruct(v), "%T", v)
		assert.Equal(t, []byte{0xa0}, MustMarshal(v), "%T", v)
	}
	assert.False(t, isZeroStruct(&GetAssertionExtensionOutputs{CredBlob: []byte{}}))
	assert.Equal(t, unhex(t, "a16863726564426c6f6240"), (&GetAssertionExtensionOutputs{CredBlob: []byte{}}).Marshal())
}
