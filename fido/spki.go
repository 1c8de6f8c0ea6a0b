package fido

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/x509"
)

// DER SubjectPublicKeyInfo prefixes (RFC 5480 §2, RFC 8410 §4): for a
// P-256 key the algorithm id-ecPublicKey with the named curve prime256v1
// and a BIT STRING of 66 bytes; for Ed25519 id-Ed25519 and a BIT STRING of
// 33. The key's bytes follow.
var (
	p256SPKIPrefix    = []byte{0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00}
	ed25519SPKIPrefix = []byte{0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00}
)

// marshalSPKI is x509.MarshalPKIXPublicKey, giving the same bytes, with
// the two key types of nearly every registration (ES256, EdDSA) spelled
// out: the general encoder builds them with cryptobyte on every call.
func marshalSPKI(pub crypto.PublicKey) ([]byte, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() {
			break
		}
		pt, err := k.Bytes() // uncompressed, 65 bytes
		if err != nil {
			break // x509 names the error
		}
		return append(append(make([]byte, 0, len(p256SPKIPrefix)+len(pt)), p256SPKIPrefix...), pt...), nil
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			break
		}
		return append(append(make([]byte, 0, len(ed25519SPKIPrefix)+len(k)), ed25519SPKIPrefix...), k...), nil
	}
	return x509.MarshalPKIXPublicKey(pub)
}
