package virtual

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"math/big"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkRawKey must refuse exactly what signerFromRaw refuses, since wrap
// relies on it to keep unwrap from returning keys that cannot sign.
func TestCheckRawKeyAgreesWithSignerFromRaw(t *testing.T) {
	n := new(big.Int).SetBytes(p256Order[:])
	scalar := func(v *big.Int) []byte { return v.FillBytes(make([]byte, rawKeyLen)) }
	one := big.NewInt(1)
	random := make([]byte, rawKeyLen)
	_, err := rand.Read(random)
	require.NoError(t, err)
	keys := [][]byte{
		make([]byte, rawKeyLen), scalar(one), scalar(new(big.Int).Sub(n, one)), scalar(n),
		scalar(new(big.Int).Add(n, one)), bytesOf(0xff, rawKeyLen), random,
		nil, make([]byte, rawKeyLen-1), make([]byte, rawKeyLen+1),
	}
	for _, alg := range []int64{algES256, algEdDSA, -257, 0} {
		for i, k := range keys {
			t.Run(fmt.Sprintf("alg%d/%d", alg, i), func(t *testing.T) {
				_, want := signerFromRaw(alg, k)
				got := checkRawKey(alg, k)
				assert.Equal(t, want == nil, got == nil, "signerFromRaw: %v, checkRawKey: %v", want, got)
			})
		}
	}
}

func bytesOf(b byte, n int) []byte {
	s := make([]byte, n)
	for i := range s {
		s[i] = b
	}
	return s
}

func TestSignerCache(t *testing.T) {
	var c signerCache
	_, raw, err := newPrivateKey(nil, algES256)
	require.NoError(t, err)
	s1, err := c.get(algES256, raw)
	require.NoError(t, err)
	s2, err := c.get(algES256, raw)
	require.NoError(t, err)
	assert.Same(t, s1, s2, "a cached signer is reused")
	want, err := signerFromRaw(algES256, raw)
	require.NoError(t, err)
	assert.True(t, want.Public().(*ecdsa.PublicKey).Equal(s1.Public()))

	// The same bytes as an EdDSA seed are another key.
	ed, err := c.get(algEdDSA, raw)
	require.NoError(t, err)
	assert.IsType(t, ed25519.PrivateKey(nil), ed)

	_, err = c.get(algES256, make([]byte, rawKeyLen))
	assert.Error(t, err, "a zero scalar")
	_, err = c.get(algES256, raw[:31])
	assert.Error(t, err, "a short key")

	c.clear()
	assert.Empty(t, c.m)
}

func TestSignerCacheBounded(t *testing.T) {
	var c signerCache
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range maxCachedSigners {
				raw := make([]byte, rawKeyLen)
				raw[0], raw[1], raw[2] = byte(g), byte(i>>8), byte(i)
				raw[31] = 1
				s, err := c.get(algEdDSA, raw)
				if assert.NoError(t, err) {
					assert.Equal(t, ed25519.NewKeyFromSeed(raw), s)
				}
			}
		}()
	}
	wg.Wait()
	assert.LessOrEqual(t, len(c.m), maxCachedSigners)
}
