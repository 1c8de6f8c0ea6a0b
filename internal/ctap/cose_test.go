package ctap

import (
	"bytes"
	"crypto"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"errors"
	"maps"
	"testing"
)

func TestMarshalPublicKeyLayout(t *testing.T) {
	// WebAuthn L3 §6.5.1.1 gives these label orders for EC2 and OKP keys.
	p := testP256Key(t)
	pt, _ := p.PublicKey.Bytes()
	want := MustMarshal(map[int]any{1: 2, 3: -7, -1: 1, -2: pt[1:33], -3: pt[33:]})
	if got := mustCOSE(t, &p.PublicKey); !bytes.Equal(got, want) {
		t.Errorf("ES256 key %x, want %x", got, want)
	}
	if got := mustCOSE(t, &p.PublicKey); !bytes.Equal(got[:7], unhex(t, "a5 01 02 03 26 20 01")) {
		t.Errorf("ES256 key starts %x", got[:7])
	}
	e := testEd25519Key().Public().(ed25519.PublicKey)
	want = append(unhex(t, "a4 01 01 03 27 20 06 21 58 20"), e...)
	if got := mustCOSE(t, e); !bytes.Equal(got, want) {
		t.Errorf("EdDSA key %x, want %x", got, want)
	}
	x := testECDHKey(t).PublicKey()
	if got := mustCOSE(t, x); !bytes.Equal(got[:7], unhex(t, "a5 01 02 03 38 18 20")) {
		t.Errorf("ECDH key starts %x", got[:7])
	}
}

func TestPublicKeyRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		pub  crypto.PublicKey
		alg  int64
	}{
		{"ES256", &testP256Key(t).PublicKey, AlgES256},
		{"EdDSA", testEd25519Key().Public(), AlgEdDSA},
		{"ECDH-ES+HKDF-256", testECDHKey(t).PublicKey(), AlgECDHESHKDF256},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := mustCOSE(t, tt.pub)
			alg, pub, err := ParsePublicKey(b)
			if err != nil {
				t.Fatal(err)
			}
			if alg != tt.alg {
				t.Errorf("alg %d, want %d", alg, tt.alg)
			}
			if eq, ok := pub.(interface{ Equal(crypto.PublicKey) bool }); !ok || !eq.Equal(tt.pub) {
				t.Errorf("parsed %v, want %v", pub, tt.pub)
			}
			if again := mustCOSE(t, pub); !bytes.Equal(again, b) {
				t.Errorf("re-encoded %x, want %x", again, b)
			}
		})
	}
	t.Run("RS256", func(t *testing.T) {
		k := &testRSAKey().PublicKey
		alg, pub, err := ParsePublicKey(coseRSA(k))
		if err != nil {
			t.Fatal(err)
		}
		if alg != AlgRS256 || !k.Equal(pub) {
			t.Errorf("parsed %d %v", alg, pub)
		}
	})
}

func TestMarshalPublicKeyErrors(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	x25519, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		pub  crypto.PublicKey
	}{
		{"P-384", &p384.PublicKey},
		{"X25519", x25519.PublicKey()},
		{"RSA", &testRSAKey().PublicKey},
		{"short Ed25519", ed25519.PublicKey{1, 2}},
		{"nil ECDSA", (*ecdsa.PublicKey)(nil)},
		{"nil", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if b, err := MarshalPublicKey(tt.pub); err == nil {
				t.Errorf("encoded %x", b)
			}
		})
	}
}

// ec2Map is a valid ES256 COSE key as generic values.
func ec2Map(tb testing.TB) map[int]any {
	pt, err := testP256Key(tb).PublicKey.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	return map[int]any{1: 2, 3: -7, -1: 1, -2: pt[1:33], -3: pt[33:]}
}

func okpMap() map[int]any {
	return map[int]any{1: 1, 3: -8, -1: 6, -2: []byte(testEd25519Key().Public().(ed25519.PublicKey))}
}

func rsaMap() map[int]any {
	k := &testRSAKey().PublicKey
	return map[int]any{1: 3, 3: -257, -1: k.N.Bytes(), -2: []byte{1, 0, 1}}
}

func TestParsePublicKeyErrors(t *testing.T) {
	ec2 := ec2Map(t)
	offCurve := bytes.Clone(ec2[-3].([]byte))
	offCurve[31] ^= 1
	tests := []struct {
		name     string
		in       []byte
		sentinel error
		status   Status
	}{
		{"empty", nil, ErrMalformed, StatusInvalidCBOR},
		{"not a map", MustMarshal([]int{1}), ErrWrongType, StatusCBORUnexpectedType},
		{"text labels", MustMarshal(map[string]any{"kty": 2}), ErrWrongType, StatusCBORUnexpectedType},
		{"trailing", append(MustMarshal(ec2), 0), ErrTrailingBytes, StatusInvalidCBOR},
		{"unsorted", unhex(t, "a2 03 26 01 02"), ErrNonCanonical, StatusInvalidCBOR},
		{"no kty", MustMarshal(with(ec2, 1, nil)), ErrMissingField, StatusMissingParameter},
		{"no alg", MustMarshal(with(ec2, 3, nil)), ErrMissingField, StatusMissingParameter},
		{"alg text", MustMarshal(with(ec2, 3, "ES256")), ErrWrongType, StatusCBORUnexpectedType},
		{"kty bytes", MustMarshal(with(ec2, 1, []byte{2})), ErrWrongType, StatusCBORUnexpectedType},
		{"kty OKP with ES256", MustMarshal(with(ec2, 1, 1)), ErrInvalidValue, StatusInvalidParameter},
		{"EC2 with EdDSA", MustMarshal(with(ec2, 3, -8)), ErrInvalidValue, StatusInvalidParameter},
		{"ES384", MustMarshal(with(ec2, 3, -35)), ErrInvalidValue, StatusInvalidParameter},
		{"no crv", MustMarshal(with(ec2, -1, nil)), ErrMissingField, StatusMissingParameter},
		{"P-384 crv", MustMarshal(with(ec2, -1, 2)), ErrInvalidValue, StatusInvalidParameter},
		{"no x", MustMarshal(with(ec2, -2, nil)), ErrMissingField, StatusMissingParameter},
		{"no y", MustMarshal(with(ec2, -3, nil)), ErrMissingField, StatusMissingParameter},
		{"y as bool", MustMarshal(with(ec2, -3, true)), ErrWrongType, StatusCBORUnexpectedType},
		{"x as array of bytes", MustMarshal(with(ec2, -2, bytesAsArray(ec2[-2].([]byte)))), ErrWrongType, StatusCBORUnexpectedType},
		{"crv as float", MustMarshal(with(ec2, -1, 1.0)), ErrWrongType, StatusCBORUnexpectedType},
		{"short x", MustMarshal(with(ec2, -2, make([]byte, 31))), ErrInvalidValue, StatusInvalidParameter},
		{"off curve", MustMarshal(with(ec2, -3, offCurve)), ErrInvalidValue, StatusInvalidParameter},
		{"zero point", MustMarshal(with(with(ec2, -2, make([]byte, 32)), -3, make([]byte, 32))), ErrInvalidValue, StatusInvalidParameter},
		{"extra label", MustMarshal(with(ec2, 2, []byte("kid"))), ErrUnknownField, StatusInvalidCBOR},
		{"null value", MustMarshal(with(ec2, 4, nullMarker{})), ErrWrongType, StatusCBORUnexpectedType},
		{"ECDH off curve", MustMarshal(with(with(ec2, 3, -25), -3, offCurve)), ErrInvalidValue, StatusInvalidParameter},
		{"OKP X25519 crv", MustMarshal(with(okpMap(), -1, 4)), ErrInvalidValue, StatusInvalidParameter},
		{"OKP short x", MustMarshal(with(okpMap(), -2, make([]byte, 31))), ErrInvalidValue, StatusInvalidParameter},
		{"OKP with y", MustMarshal(with(okpMap(), -3, make([]byte, 32))), ErrUnknownField, StatusInvalidCBOR},
		{"RSA no n", MustMarshal(with(rsaMap(), -1, nil)), ErrMissingField, StatusMissingParameter},
		{"RSA 1024-bit", MustMarshal(with(rsaMap(), -1, bytes.Repeat([]byte{0xff}, 128))), ErrInvalidValue, StatusInvalidParameter},
		{"RSA leading zero", MustMarshal(with(rsaMap(), -1, append([]byte{0}, rsaMap()[-1].([]byte)...))), ErrInvalidValue, StatusInvalidParameter},
		{"RSA even e", MustMarshal(with(rsaMap(), -2, []byte{1, 0, 0})), ErrInvalidValue, StatusInvalidParameter},
		{"RSA e = 1", MustMarshal(with(rsaMap(), -2, []byte{1})), ErrInvalidValue, StatusInvalidParameter},
		{"RSA e leading zero", MustMarshal(with(rsaMap(), -2, []byte{0, 1, 0, 1})), ErrInvalidValue, StatusInvalidParameter},
		{"RSA e too big", MustMarshal(with(rsaMap(), -2, []byte{0x80, 0, 0, 1})), ErrInvalidValue, StatusInvalidParameter},
		{"RSA e int", MustMarshal(with(rsaMap(), -2, 65537)), ErrWrongType, StatusCBORUnexpectedType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			alg, pub, err := ParsePublicKey(tt.in)
			wantSyntaxErr(t, err, tt.sentinel, tt.status)
			if alg != 0 || pub != nil {
				t.Errorf("got %d %v with the error", alg, pub)
			}
		})
	}
	t.Run("valid maps parse", func(t *testing.T) {
		for _, m := range []map[int]any{ec2, okpMap(), rsaMap(), with(maps.Clone(ec2), 3, -25)} {
			if _, _, err := ParsePublicKey(MustMarshal(m)); err != nil {
				t.Error(err)
			}
		}
	})
}

func TestVerifySignature(t *testing.T) {
	msg := []byte("authenticator data | client data hash")
	h := sha256.Sum256(msg)

	p256 := testP256Key(t)
	es256 := signP256(t, p256, msg)
	ed := testEd25519Key()
	eddsa := ed25519.Sign(ed, msg)
	rk := testRSAKey()
	rs256, err := rsa.SignPKCS1v15(nil, rk, crypto.SHA256, h[:])
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte) []byte {
		b = bytes.Clone(b)
		b[len(b)-1] ^= 1
		return b
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// The same r and s in BER with a non-minimal length must not verify.
	berSig := append([]byte{0x30, 0x81, es256[1]}, es256[2:]...)

	tests := []struct {
		name    string
		alg     int64
		pub     crypto.PublicKey
		msg     []byte
		sig     []byte
		wantErr error // nil: success; ErrBadSignature; errOther: any other
	}{
		{"ES256", AlgES256, &p256.PublicKey, msg, es256, nil},
		{"EdDSA", AlgEdDSA, ed.Public(), msg, eddsa, nil},
		{"RS256", AlgRS256, &rk.PublicKey, msg, rs256, nil},
		{"ES256 tampered message", AlgES256, &p256.PublicKey, flip(msg), es256, ErrBadSignature},
		{"ES256 tampered signature", AlgES256, &p256.PublicKey, msg, flip(es256), ErrBadSignature},
		{"ES256 other key", AlgES256, &other.PublicKey, msg, es256, ErrBadSignature},
		{"ES256 BER signature", AlgES256, &p256.PublicKey, msg, berSig, ErrBadSignature},
		{"ES256 empty signature", AlgES256, &p256.PublicKey, msg, nil, ErrBadSignature},
		{"EdDSA tampered", AlgEdDSA, ed.Public(), msg, flip(eddsa), ErrBadSignature},
		{"EdDSA short signature", AlgEdDSA, ed.Public(), msg, eddsa[:10], ErrBadSignature},
		{"RS256 tampered", AlgRS256, &rk.PublicKey, msg, flip(rs256), ErrBadSignature},
		{"ES256 with Ed25519 key", AlgES256, ed.Public(), msg, es256, errOther},
		{"EdDSA with ECDSA key", AlgEdDSA, &p256.PublicKey, msg, eddsa, errOther},
		{"EdDSA with short key", AlgEdDSA, ed25519.PublicKey{1}, msg, eddsa, errOther},
		{"RS256 with nil key", AlgRS256, (*rsa.PublicKey)(nil), msg, rs256, errOther},
		{"ES256 with ECDH key", AlgES256, testECDHKey(t).PublicKey(), msg, es256, errOther},
		{"unsupported algorithm", -35, &p256.PublicKey, msg, es256, errOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := VerifySignature(tt.alg, tt.pub, tt.msg, tt.sig)
			switch tt.wantErr {
			case nil:
				if err != nil {
					t.Fatal(err)
				}
			case errOther:
				if err == nil || errors.Is(err, ErrBadSignature) {
					t.Fatalf("got %v, want an error other than ErrBadSignature", err)
				}
			default:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("got %v, want %v", err, tt.wantErr)
				}
			}
		})
	}
}

var errOther = errors.New("some other error")

// bytesAsArray spells a byte string as a CBOR array of integers, a form
// the library would accept for []byte if the decoders let it.
func bytesAsArray(b []byte) []any {
	a := make([]any, len(b))
	for i, c := range b {
		a[i] = c
	}
	return a
}

func TestVerifyParsedKey(t *testing.T) {
	// The path a relying party takes: parse the COSE key from attested
	// credential data and verify with what it returns.
	k := testP256Key(t)
	msg := []byte("signed")
	alg, pub, err := ParsePublicKey(mustCOSE(t, &k.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifySignature(alg, pub, msg, signP256(t, k, msg)); err != nil {
		t.Fatal(err)
	}
	rk := testRSAKey()
	alg, pub, err = ParsePublicKey(coseRSA(&rk.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(msg)
	sig, err := rsa.SignPKCS1v15(nil, rk, crypto.SHA256, h[:])
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifySignature(alg, pub, msg, sig); err != nil {
		t.Fatal(err)
	}
}
