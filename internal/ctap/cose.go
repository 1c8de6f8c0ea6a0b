package ctap

import (
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"

	"github.com/fxamacker/cbor/v2"
)

// ErrBadSignature is returned by VerifySignature when a signature does not
// verify.
var ErrBadSignature = errors.New("ctap: signature does not verify")

// COSE_Key labels and values (RFC 9052 §7, RFC 9053 §7).
const (
	coseKty = 1
	coseAlg = 3
	// Key-type-specific labels: crv, x, y for EC2 and OKP; n, e for RSA
	// (RFC 8230 §4).
	coseCrv = -1
	coseX   = -2
	coseY   = -3
	coseN   = -1
	coseE   = -2

	ktyOKP = 1
	ktyEC2 = 2
	ktyRSA = 3

	crvP256    = 1
	crvEd25519 = 6

	p256CoordLen = 32
)

// RSA moduli accepted from COSE keys: 2048 to 4096 bits, the sizes that
// TPM and platform authenticators use, bounding verification work.
const (
	minRSABytes = 2048 / 8
	maxRSABytes = 4096 / 8
)

// MarshalPublicKey encodes a public key as a COSE_Key in CTAP2 canonical
// CBOR, as it appears in attested credential data (WebAuthn L3 §6.5.1.1)
// and in PIN protocol key agreement (CTAP 2.1 §6.5.6):
//
//   - *ecdsa.PublicKey on P-256: kty EC2, alg ES256 (-7), crv P-256, x, y.
//   - ed25519.PublicKey: kty OKP, alg EdDSA (-8), crv Ed25519, x.
//   - *ecdh.PublicKey on P-256: kty EC2, alg ECDH-ES+HKDF-256 (-25), crv
//     P-256, x, y, the platform and authenticator key agreement key.
//
// Other keys give an error.
func MarshalPublicKey(pub crypto.PublicKey) ([]byte, error) {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k == nil || k.Curve != elliptic.P256() {
			return nil, errors.New("ctap: encoding COSE key: ECDSA key not on P-256")
		}
		pt, err := k.Bytes()
		if err != nil {
			return nil, fmt.Errorf("ctap: encoding COSE key: %w", err)
		}
		return marshalEC2(AlgES256, pt)
	case *ecdh.PublicKey:
		if k == nil || k.Curve() != ecdh.P256() {
			return nil, errors.New("ctap: encoding COSE key: ECDH key not on P-256")
		}
		return marshalEC2(AlgECDHESHKDF256, k.Bytes())
	case ed25519.PublicKey:
		if len(k) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("ctap: encoding COSE key: Ed25519 key of %d bytes", len(k))
		}
		return Marshal(map[int64]any{
			coseKty: ktyOKP,
			coseAlg: AlgEdDSA,
			coseCrv: crvEd25519,
			coseX:   []byte(k),
		})
	}
	return nil, fmt.Errorf("ctap: encoding COSE key: unsupported key type %T", pub)
}

// marshalEC2 encodes an uncompressed P-256 point (0x04 | x | y).
func marshalEC2(alg int64, pt []byte) ([]byte, error) {
	return Marshal(map[int64]any{
		coseKty: ktyEC2,
		coseAlg: alg,
		coseCrv: crvP256,
		coseX:   pt[1 : 1+p256CoordLen],
		coseY:   pt[1+p256CoordLen:],
	})
}

// ParsePublicKey decodes a COSE_Key (RFC 9052 §7) strictly: one CTAP2
// canonical CBOR map with integer labels, exactly the labels its key type
// defines, kty, alg and crv consistent, coordinates of the curve's exact
// length and on the curve. It returns the algorithm and:
//
//   - for AlgES256: an *ecdsa.PublicKey on P-256;
//   - for AlgECDHESHKDF256: an *ecdh.PublicKey on P-256 (CTAP 2.1 §6.5.6);
//   - for AlgEdDSA: an ed25519.PublicKey (Ed25519 only);
//   - for AlgRS256: an *rsa.PublicKey (RFC 8230 §4) with a 2048- to
//     4096-bit modulus and a minimally encoded odd exponent.
//
// Errors are *SyntaxError with What "COSE key": ErrMissingField for an
// absent label, ErrUnknownField for a label the key type does not define,
// ErrWrongType for a value of the wrong CBOR type, ErrInvalidValue for an
// unsupported or inconsistent algorithm, curve or key, or the CBOR errors.
// A key ParsePublicKey accepts and MarshalPublicKey can encode encodes to
// the same bytes.
func ParsePublicKey(cose []byte) (alg int64, pub crypto.PublicKey, err error) {
	if len(cose) == es256KeyLen && isES256Key(cose) {
		return parseES256Key(cose)
	}
	return parsePublicKeySlow(cose)
}

// es256KeyLen is the length of the one encoding of a P-256 ES256 COSE
// key: {1: 2, 3: -7, -1: 1, -2: x, -3: y}, each coordinate 32 bytes.
const es256KeyLen = 77

// isES256Key reports whether b starts with the one encoding of an ES256
// key (any coordinates), the key nearly every credential has. That much
// is a map the generic decode and the canonical check would accept with
// the same values, so ParsePublicKey and firstMap take it without them;
// FuzzCOSEFastPath holds them to the slow path.
func isES256Key(b []byte) bool {
	return len(b) >= es256KeyLen &&
		string(b[:10]) == "\xa5\x01\x02\x03\x26\x20\x01\x21\x58\x20" &&
		string(b[42:45]) == "\x22\x58\x20"
}

// parseES256Key is what parsePublicKeySlow gives for a key isES256Key
// accepts.
func parseES256Key(cose []byte) (int64, crypto.PublicKey, error) {
	pt := make([]byte, 0, 1+2*p256CoordLen)
	pt = append(append(append(pt, 4), cose[10:42]...), cose[45:77]...)
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
	if err != nil {
		return 0, nil, syntaxErr("COSE key", ErrInvalidValue, "point not on P-256")
	}
	return AlgES256, k, nil
}

// parsePublicKeySlow is ParsePublicKey for any key, by generic decoding.
func parsePublicKeySlow(cose []byte) (alg int64, pub crypto.PublicKey, err error) {
	const what = "COSE key"
	var m map[int64]cbor.RawMessage
	if err := decodeMessage(what, cose, &m); err != nil {
		return 0, nil, err
	}
	p := coseParams{what: what, m: m}
	kty := p.int(coseKty, "kty")
	alg = p.int(coseAlg, "alg")
	if p.err != nil {
		return 0, nil, p.err
	}
	switch {
	case kty == ktyEC2 && (alg == AlgES256 || alg == AlgECDHESHKDF256):
		pub, err = p.ec2(alg)
	case kty == ktyOKP && alg == AlgEdDSA:
		pub, err = p.okp()
	case kty == ktyRSA && alg == AlgRS256:
		pub, err = p.rsa()
	default:
		return 0, nil, syntaxErr(what, ErrInvalidValue, fmt.Sprintf("unsupported kty %d with alg %d", kty, alg))
	}
	if err != nil {
		return 0, nil, err
	}
	return alg, pub, nil
}

// coseParams reads labels from a decoded COSE_Key, keeping the first error
// so that the key-type readers stay linear.
type coseParams struct {
	what string
	m    map[int64]cbor.RawMessage
	err  error
}

func (p *coseParams) fail(sentinel error, detail string) {
	if p.err == nil {
		p.err = syntaxErr(p.what, sentinel, detail)
	}
}

func (p *coseParams) raw(label int64, name string) cbor.RawMessage {
	r, ok := p.m[label]
	if !ok {
		p.fail(ErrMissingField, name)
	}
	return r
}

func (p *coseParams) int(label int64, name string) int64 {
	r := p.raw(label, name)
	if p.err != nil {
		return 0
	}
	var v int64
	if t := r[0] >> 5; t > 1 { // only CBOR major types 0 and 1, integers
		p.fail(ErrWrongType, name+" is not an integer")
	} else if err := msgDec().Unmarshal(r, &v); err != nil {
		p.fail(ErrWrongType, name+" is not an integer")
	}
	return v
}

func (p *coseParams) bytes(label int64, name string) []byte {
	r := p.raw(label, name)
	if p.err != nil {
		return nil
	}
	var v []byte
	// Checked by hand: the library would also fill v from an array of
	// small integers, a second encoding of the same key.
	if r[0]>>5 != 2 {
		p.fail(ErrWrongType, name+" is not a byte string")
	} else if err := msgDec().Unmarshal(r, &v); err != nil {
		p.fail(ErrWrongType, name+" is not a byte string")
	}
	return v
}

// only fails if the map holds a label outside want, so that each accepted
// key has exactly one encoding.
func (p *coseParams) only(want ...int64) {
	if len(p.m) == len(want) {
		return // every wanted label was read, so the sets are equal
	}
	for l := range p.m {
		found := false
		for _, w := range want {
			found = found || l == w
		}
		if !found {
			p.fail(ErrUnknownField, fmt.Sprintf("label %d", l))
			return
		}
	}
}

func (p *coseParams) ec2(alg int64) (crypto.PublicKey, error) {
	crv := p.int(coseCrv, "crv")
	x := p.bytes(coseX, "x")
	y := p.bytes(coseY, "y")
	p.only(coseKty, coseAlg, coseCrv, coseX, coseY)
	if p.err != nil {
		return nil, p.err
	}
	if crv != crvP256 {
		return nil, syntaxErr(p.what, ErrInvalidValue, fmt.Sprintf("EC2 curve %d, want P-256", crv))
	}
	if len(x) != p256CoordLen || len(y) != p256CoordLen {
		return nil, syntaxErr(p.what, ErrInvalidValue, fmt.Sprintf("P-256 coordinates of %d and %d bytes", len(x), len(y)))
	}
	pt := make([]byte, 0, 1+2*p256CoordLen)
	pt = append(append(append(pt, 4), x...), y...)
	if alg == AlgECDHESHKDF256 {
		k, err := ecdh.P256().NewPublicKey(pt)
		if err != nil {
			return nil, syntaxErr(p.what, ErrInvalidValue, "point not on P-256")
		}
		return k, nil
	}
	k, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
	if err != nil {
		return nil, syntaxErr(p.what, ErrInvalidValue, "point not on P-256")
	}
	return k, nil
}

// okp reads an Ed25519 key. The 32 bytes are not decoded as a curve point
// here: crypto/ed25519 offers no check, and Verify rejects a bad point.
func (p *coseParams) okp() (crypto.PublicKey, error) {
	crv := p.int(coseCrv, "crv")
	x := p.bytes(coseX, "x")
	p.only(coseKty, coseAlg, coseCrv, coseX)
	if p.err != nil {
		return nil, p.err
	}
	if crv != crvEd25519 {
		return nil, syntaxErr(p.what, ErrInvalidValue, fmt.Sprintf("OKP curve %d, want Ed25519", crv))
	}
	if len(x) != ed25519.PublicKeySize {
		return nil, syntaxErr(p.what, ErrInvalidValue, fmt.Sprintf("Ed25519 key of %d bytes", len(x)))
	}
	return ed25519.PublicKey(x), nil
}

func (p *coseParams) rsa() (crypto.PublicKey, error) {
	n := p.bytes(coseN, "n")
	e := p.bytes(coseE, "e")
	p.only(coseKty, coseAlg, coseN, coseE)
	if p.err != nil {
		return nil, p.err
	}
	// Unsigned big-endian without leading zeros (RFC 8230 §4), so each
	// key has one encoding.
	if len(n) < minRSABytes || len(n) > maxRSABytes || n[0] == 0 {
		return nil, syntaxErr(p.what, ErrInvalidValue, fmt.Sprintf("RSA modulus of %d bytes", len(n)))
	}
	if len(e) == 0 || len(e) > 4 || e[0] == 0 {
		return nil, syntaxErr(p.what, ErrInvalidValue, fmt.Sprintf("RSA exponent of %d bytes", len(e)))
	}
	var ev uint64
	for _, c := range e {
		ev = ev<<8 | uint64(c)
	}
	// crypto/rsa wants an odd exponent above 1 that fits in 31 bits.
	if ev < 3 || ev&1 == 0 || ev > 1<<31-1 {
		return nil, syntaxErr(p.what, ErrInvalidValue, fmt.Sprintf("RSA exponent %d", ev))
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(ev)}, nil
}

// VerifySignature checks sig over message with pub under a COSE algorithm
// (WebAuthn L3, "Signature Formats for Packed Attestation, FIDO U2F
// Attestation, and Assertion Signatures"):
//
//   - AlgES256: an ASN.1 DER ECDSA signature over SHA-256 of message, with
//     an *ecdsa.PublicKey on P-256;
//   - AlgEdDSA: an Ed25519 signature over message itself, with an
//     ed25519.PublicKey;
//   - AlgRS256: RSASSA-PKCS1-v1_5 over SHA-256 of message, with an
//     *rsa.PublicKey.
//
// It returns ErrBadSignature if the signature does not verify, and another
// error if the algorithm is unsupported or pub does not suit it.
func VerifySignature(alg int64, pub crypto.PublicKey, message, sig []byte) error {
	switch alg {
	case AlgES256:
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k == nil || k.Curve != elliptic.P256() {
			return fmt.Errorf("ctap: verifying ES256 signature: key is %T, not a P-256 ECDSA key", pub)
		}
		h := sha256.Sum256(message)
		if !ecdsa.VerifyASN1(k, h[:], sig) {
			return ErrBadSignature
		}
		return nil
	case AlgEdDSA:
		k, ok := pub.(ed25519.PublicKey)
		if !ok || len(k) != ed25519.PublicKeySize {
			return fmt.Errorf("ctap: verifying EdDSA signature: key is %T, not an Ed25519 key", pub)
		}
		if !ed25519.Verify(k, message, sig) {
			return ErrBadSignature
		}
		return nil
	case AlgRS256:
		k, ok := pub.(*rsa.PublicKey)
		if !ok || k == nil || k.N == nil {
			return fmt.Errorf("ctap: verifying RS256 signature: key is %T, not an RSA key", pub)
		}
		h := sha256.Sum256(message)
		if err := rsa.VerifyPKCS1v15(k, crypto.SHA256, h[:], sig); err != nil {
			return ErrBadSignature
		}
		return nil
	}
	return fmt.Errorf("ctap: verifying signature: unsupported algorithm %d", alg)
}
