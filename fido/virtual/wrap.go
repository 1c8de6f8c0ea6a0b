package virtual

import (
	"bytes"
	"crypto"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/hmac"
	cryptorand "crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
)

// COSE algorithm identifiers the virtual key makes credentials for
// (RFC 9053 §2.1, RFC 8037 §3.1). They equal ctap.AlgES256 and
// ctap.AlgEdDSA; they are repeated here so these building blocks stand
// alone.
const (
	algES256 int64 = -7
	algEdDSA int64 = -8
)

// rawKeyLen is the length of every raw private key the key wraps: a P-256
// scalar and an Ed25519 seed are both 32 bytes, which keeps credential IDs
// one fixed length.
const rawKeyLen = 32

// Credential ID layout: version | nonce | AES-GCM(alg | priv) | tag, and
// for version 2, which carries extension data (CTAP 2.1 §12.1, §12.5):
// version | nonce | AES-GCM(alg | priv | credProtect | flags) | tag.
// U2F key handles and credentials made without extensions keep version
// 1, so they stay as short as before.
const (
	wrapVersion    = 0x01
	wrapVersion2   = 0x02
	wrapNonceLen   = 12
	wrapTagLen     = 16
	wrapPlainLen   = 1 + rawKeyLen
	wrapPlainLen2  = wrapPlainLen + 2
	wrappedIDLen   = 1 + wrapNonceLen + wrapPlainLen + wrapTagLen  // 62
	wrappedIDLen2  = 1 + wrapNonceLen + wrapPlainLen2 + wrapTagLen // 64
	wrapSecretLen  = 32
	wrapKeyInfoTag = "fidokit virtual key: credential ID wrapping key v1"
	// credRandomInfoTag labels the key from which the hmac-secret keys
	// of non-discoverable credentials are derived.
	credRandomInfoTag = "fidokit virtual key: hmac-secret CredRandom key v1"
	credRandomLen     = 32
)

// maxWrappedIDLen is the longest credential ID the key makes.
const maxWrappedIDLen = wrappedIDLen2

// Flags in a version 2 credential ID.
const (
	wrapFlagHMACSecret = 0x01 // made with hmac-secret (CTAP 2.1 §12.5)
)

// credExt is the extension data a version 2 credential ID carries.
type credExt struct {
	protect    int  // credProtect policy, 1 to 3 (CTAP 2.1 §12.1)
	hmacSecret bool // the credential has CredRandom keys (§12.5)
}

// keyWrapper seals the private keys of non-discoverable credentials into
// their credential IDs, so the key keeps no per-credential state and any
// number of them fit (CTAP 2.1 §6.1.2 leaves the ID format to the
// authenticator).
//
// A 96-bit random nonce per ID keeps nonce reuse unlikely for the 2^32 IDs
// NIST SP 800-38D allows per key, far beyond a test key's life.
//
// A keyWrapper is safe for concurrent use: it holds only an AEAD, which
// keeps no per-call state.
type keyWrapper struct {
	aead cipher.AEAD
	// credRandomKey derives the hmac-secret keys of non-discoverable
	// credentials from their IDs; see credRandom.
	credRandomKey []byte
}

// newKeyWrapper derives the wrapping key from the key's 32-byte secret. The
// secret goes through HKDF-SHA-256 with a fixed label so it is never a
// cipher key itself and can seed other keys under other labels.
func newKeyWrapper(secret []byte) (*keyWrapper, error) {
	if len(secret) != wrapSecretLen {
		return nil, fmt.Errorf("virtual: wrap secret is %d bytes, want %d", len(secret), wrapSecretLen)
	}
	k, err := hkdf.Key(sha256.New, secret, nil, wrapKeyInfoTag, 32)
	if err != nil {
		return nil, fmt.Errorf("virtual: deriving wrapping key: %w", err)
	}
	block, err := aes.NewCipher(k)
	if err != nil {
		return nil, fmt.Errorf("virtual: creating wrapping cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("virtual: creating wrapping cipher: %w", err)
	}
	crk, err := hkdf.Key(sha256.New, secret, nil, credRandomInfoTag, 32)
	if err != nil {
		return nil, fmt.Errorf("virtual: deriving CredRandom key: %w", err)
	}
	return &keyWrapper{aead: aead, credRandomKey: crk}, nil
}

// credRandom returns CredRandomWithUV (uv true) or CredRandomWithoutUV of
// the non-discoverable credential with this ID (CTAP 2.1 §12.5). Rather
// than 64 more bytes in every ID, the two 32-byte keys are HMAC-SHA-256
// of the ID under a key derived from the key's secret: the ID's random
// nonce makes them different for every credential, they are as secret as
// the wrapped private key, and a reset, which replaces the secret,
// destroys them with it.
func (w *keyWrapper) credRandom(id []byte, uv bool) []byte {
	m := hmac.New(sha256.New, w.credRandomKey)
	if uv {
		m.Write([]byte{1})
	} else {
		m.Write([]byte{0})
	}
	m.Write(id)
	return m.Sum(nil)
}

// wrapAD is the additional data: the version and the RP ID hash, which bind
// an ID to the format and to the relying party it was made for.
func wrapAD(version byte, rpIDHash *[32]byte) [1 + 32]byte {
	var ad [1 + 32]byte
	ad[0] = version
	copy(ad[1:], rpIDHash[:])
	return ad
}

// wrap returns the credential ID that carries priv, an alg key, for the
// relying party whose RP ID hashes to rpIDHash. The nonce comes from rand.
func (w *keyWrapper) wrap(rand io.Reader, rpIDHash [32]byte, alg int64, priv []byte) ([]byte, error) {
	return w.wrapExt(rand, rpIDHash, alg, priv, credExt{})
}

// wrapExt is wrap for a credential with extension data: a version 2 ID
// when ext says more than the defaults, a version 1 ID otherwise.
func (w *keyWrapper) wrapExt(rand io.Reader, rpIDHash [32]byte, alg int64, priv []byte, ext credExt) ([]byte, error) {
	// Refusing bad keys here means unwrap never returns a key that
	// signerFromRaw rejects.
	if err := checkRawKey(alg, priv); err != nil {
		return nil, fmt.Errorf("virtual: wrapping credential key: %w", err)
	}
	if ext.protect < 0 || ext.protect > 3 {
		return nil, fmt.Errorf("virtual: wrapping credential key: credProtect %d", ext.protect)
	}
	version, n := byte(wrapVersion), wrapPlainLen
	if ext.protect > 1 || ext.hmacSecret {
		version, n = wrapVersion2, wrapPlainLen2
	}
	id := make([]byte, 1+wrapNonceLen, 1+wrapNonceLen+n+wrapTagLen)
	id[0] = version
	if _, err := io.ReadFull(orDefaultRand(rand), id[1:]); err != nil {
		return nil, fmt.Errorf("virtual: wrapping credential key: reading nonce: %w", err)
	}
	var plainBuf [wrapPlainLen2]byte
	defer clear(plainBuf[:])
	plain := plainBuf[:n]
	plain[0] = byte(int8(alg)) // both supported algs fit a signed byte
	copy(plain[1:], priv)
	if version == wrapVersion2 {
		plain[wrapPlainLen] = byte(max(ext.protect, 1))
		if ext.hmacSecret {
			plain[wrapPlainLen+1] |= wrapFlagHMACSecret
		}
	}
	ad := wrapAD(version, &rpIDHash)
	id = w.aead.Seal(id, id[1:1+wrapNonceLen], plain, ad[:])
	return id, nil
}

// unwrap recovers the algorithm and raw private key from a credential ID
// made by wrap for rpIDHash. ok is false for any other input: wrong length
// or version, another RP, a different secret, or any change to the bytes.
//
// It does the same work (one AEAD open of a fixed-size buffer) whatever is
// wrong with id, so timing does not tell a prober which check failed.
func (w *keyWrapper) unwrap(rpIDHash [32]byte, id []byte) (alg int64, priv []byte, ok bool) {
	alg, priv, _, ok = w.unwrapExt(rpIDHash, id)
	return alg, priv, ok
}

// unwrapExt is unwrap that also returns the extension data of a version 2
// ID; a version 1 ID has the defaults (credProtect 1, no hmac-secret).
// The version follows from the length, which is no secret.
func (w *keyWrapper) unwrapExt(rpIDHash [32]byte, id []byte) (alg int64, priv []byte, ext credExt, ok bool) {
	version, n := byte(wrapVersion), wrappedIDLen
	if len(id) == wrappedIDLen2 {
		version, n = wrapVersion2, wrappedIDLen2
	}
	var bufArr [wrappedIDLen2]byte
	buf := bufArr[:n]
	copy(buf, id) // copies at most n bytes; never panics
	good := 1
	if len(id) != n {
		good = 0
	}
	good &= subtle.ConstantTimeByteEq(buf[0], version)

	ad := wrapAD(version, &rpIDHash)
	var plainBuf [wrapPlainLen2]byte
	defer clear(plainBuf[:])
	plain, err := w.aead.Open(plainBuf[:0], buf[1:1+wrapNonceLen], buf[1+wrapNonceLen:], ad[:])
	if err != nil || len(plain) != n-1-wrapNonceLen-wrapTagLen {
		good = 0
	}
	if good != 1 {
		return 0, nil, credExt{}, false
	}

	alg = int64(int8(plain[0]))
	if alg != algES256 && alg != algEdDSA {
		// Unreachable without the secret: only wrap seals plaintexts.
		return 0, nil, credExt{}, false
	}
	ext = credExt{protect: 1}
	if version == wrapVersion2 {
		ext.protect = int(plain[wrapPlainLen])
		ext.hmacSecret = plain[wrapPlainLen+1]&wrapFlagHMACSecret != 0
		if ext.protect < 1 || ext.protect > 3 {
			return 0, nil, credExt{}, false // unreachable, as above
		}
	}
	priv = make([]byte, rawKeyLen)
	copy(priv, plain[1:1+rawKeyLen])
	return alg, priv, ext, true
}

// signerFromRaw rebuilds a credential's signer from its raw private key: a
// 32-byte P-256 scalar for ES256, a 32-byte Ed25519 seed for EdDSA.
func signerFromRaw(alg int64, priv []byte) (crypto.Signer, error) {
	switch alg {
	case algES256:
		if len(priv) != rawKeyLen {
			return nil, fmt.Errorf("virtual: ES256 private key is %d bytes, want %d", len(priv), rawKeyLen)
		}
		key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), priv)
		if err != nil {
			return nil, fmt.Errorf("virtual: parsing ES256 private key: %w", err)
		}
		return key, nil
	case algEdDSA:
		if len(priv) != ed25519.SeedSize {
			return nil, fmt.Errorf("virtual: EdDSA private key is %d bytes, want %d", len(priv), ed25519.SeedSize)
		}
		return ed25519.NewKeyFromSeed(priv), nil
	default:
		return nil, fmt.Errorf("virtual: unsupported credential algorithm %d", alg)
	}
}

// p256Order is the order n of the P-256 group (FIPS 186-5 §D.1.2.3), big
// endian: a raw ES256 key is a scalar in [1, n-1].
var p256Order = [rawKeyLen]byte{
	0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
}

// checkRawKey refuses exactly the raw keys signerFromRaw refuses, without
// its scalar multiplication: a P-256 scalar must be in [1, n-1], an
// Ed25519 seed may be any 32 bytes.
func checkRawKey(alg int64, priv []byte) error {
	switch {
	case alg != algES256 && alg != algEdDSA:
		return fmt.Errorf("virtual: unsupported credential algorithm %d", alg)
	case len(priv) != rawKeyLen:
		return fmt.Errorf("virtual: private key is %d bytes, want %d", len(priv), rawKeyLen)
	case alg == algES256 && (bytes.Compare(priv, p256Order[:]) >= 0 || allZero(priv)):
		return errors.New("virtual: ES256 private key out of range")
	}
	return nil
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// newPrivateKey makes a credential key for alg and returns it with its raw
// form for wrap or storage. The key is drawn from rand's bytes (nil means
// crypto/rand.Reader), so a seeded rand reproduces it.
func newPrivateKey(rand io.Reader, alg int64) (crypto.Signer, []byte, error) {
	rand = orDefaultRand(rand)
	switch alg {
	case algES256:
		key, raw, err := newP256KeyRaw(rand)
		if err != nil {
			return nil, nil, fmt.Errorf("virtual: making ES256 key: %w", err)
		}
		return key, raw, nil
	case algEdDSA:
		seed := make([]byte, ed25519.SeedSize)
		if _, err := io.ReadFull(rand, seed); err != nil {
			return nil, nil, fmt.Errorf("virtual: making EdDSA key: %w", err)
		}
		return ed25519.NewKeyFromSeed(seed), seed, nil
	default:
		return nil, nil, fmt.Errorf("virtual: unsupported credential algorithm %d", alg)
	}
}

// errAlgKeyMismatch means sign was asked for an algorithm the key cannot
// produce; signing anyway would give a signature no verifier accepts.
var errAlgKeyMismatch = errors.New("virtual: signing key does not match algorithm")

// sign signs msg as alg specifies: ES256 hashes msg with SHA-256 and gives
// an ASN.1 DER ECDSA signature (WebAuthn L3 §6.5.6); EdDSA signs msg itself
// with Ed25519 (RFC 8032 §5.1.6).
func sign(signer crypto.Signer, alg int64, msg []byte) ([]byte, error) {
	if signer == nil {
		return nil, errors.New("virtual: signing with no key")
	}
	switch alg {
	case algES256:
		pub, isEC := signer.Public().(*ecdsa.PublicKey)
		if !isEC || pub.Curve != elliptic.P256() {
			return nil, errAlgKeyMismatch
		}
		digest := sha256.Sum256(msg)
		// crypto.Signer implementations for ECDSA return ASN.1 DER.
		sig, err := signer.Sign(cryptorand.Reader, digest[:], crypto.SHA256)
		if err != nil {
			return nil, fmt.Errorf("virtual: signing with ES256: %w", err)
		}
		return sig, nil
	case algEdDSA:
		if _, isEd := signer.Public().(ed25519.PublicKey); !isEd {
			return nil, errAlgKeyMismatch
		}
		// Hash 0 selects pure Ed25519, which signs the message itself.
		sig, err := signer.Sign(cryptorand.Reader, msg, crypto.Hash(0))
		if err != nil {
			return nil, fmt.Errorf("virtual: signing with EdDSA: %w", err)
		}
		return sig, nil
	default:
		return nil, fmt.Errorf("virtual: unsupported credential algorithm %d", alg)
	}
}
