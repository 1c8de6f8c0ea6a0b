package virtual

import (
	"crypto"
	"sync"
)

// maxCachedSigners bounds the signer cache. A wrapped credential's key is
// in no table the key keeps, so a host naming many credential IDs could
// otherwise grow the cache without limit.
const maxCachedSigners = 512

// signerCache keeps credentials' private keys parsed. Parsing a raw P-256
// scalar computes its public point, a scalar multiplication about as
// costly as the signature itself, and a freshly parsed key has none of the
// precomputation Go keeps in an *ecdsa.PrivateKey; so each credential's
// signer is built once and kept. Entries are keyed by the algorithm and the
// raw key itself, so an entry can only ever be the signer of those bytes,
// whatever credential (wrapped or discoverable, before or after a reset)
// they came from. It is safe for concurrent use; the zero value is empty.
type signerCache struct {
	mu sync.Mutex
	m  map[signerKey]crypto.Signer
}

type signerKey struct {
	alg int64
	raw [rawKeyLen]byte
}

// get returns the signer for alg and priv, as signerFromRaw would make it.
func (c *signerCache) get(alg int64, priv []byte) (crypto.Signer, error) {
	if len(priv) != rawKeyLen {
		return signerFromRaw(alg, priv) // its error names the length
	}
	k := signerKey{alg: alg, raw: [rawKeyLen]byte(priv)}
	c.mu.Lock()
	s, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return s, nil
	}
	s, err := signerFromRaw(alg, priv)
	if err != nil {
		return nil, err
	}
	c.put(k, s)
	return s, nil
}

// add records signer as the one for alg and priv, such as a key just made.
func (c *signerCache) add(alg int64, priv []byte, signer crypto.Signer) {
	if len(priv) == rawKeyLen {
		c.put(signerKey{alg: alg, raw: [rawKeyLen]byte(priv)}, signer)
	}
}

func (c *signerCache) put(k signerKey, s crypto.Signer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[signerKey]crypto.Signer)
	}
	if len(c.m) >= maxCachedSigners {
		// Dropping an arbitrary entry keeps the bound without the
		// bookkeeping of LRU; a dropped signer is merely parsed again.
		for old := range c.m {
			delete(c.m, old)
			break
		}
	}
	c.m[k] = s
}

// clear forgets every signer, so that a reset leaves no key material
// behind in the cache.
func (c *signerCache) clear() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.m)
}
