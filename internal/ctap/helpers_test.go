package ctap

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// Fixed test keys, so that corpus files and golden bytes are stable.
func testP256Key(tb testing.TB) *ecdsa.PrivateKey {
	tb.Helper()
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{0x42}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func testECDHKey(tb testing.TB) *ecdh.PrivateKey {
	tb.Helper()
	k, err := ecdh.P256().NewPrivateKey(bytes.Repeat([]byte{0x24}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func testEd25519Key() ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x17}, ed25519.SeedSize))
}

// RSA key generation is slow; share one key among tests.
var testRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

// coseRSA encodes an RSA public key as a COSE_Key (RFC 8230 §4), which the
// package only parses.
func coseRSA(pub *rsa.PublicKey) []byte {
	return MustMarshal(map[int64]any{
		coseKty: ktyRSA,
		coseAlg: AlgRS256,
		coseN:   pub.N.Bytes(),
		coseE:   big.NewInt(int64(pub.E)).Bytes(),
	})
}

func mustCOSE(tb testing.TB, pub any) []byte {
	tb.Helper()
	b, err := MarshalPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func hash32(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

func sampleMakeCredentialRequest() *MakeCredentialRequest {
	return &MakeCredentialRequest{
		ClientDataHash: hash32(1),
		RP:             &RPEntity{ID: "example.com", Name: "Example"},
		User:           &UserEntity{ID: []byte{1, 2, 3, 4}, Name: "alice@example.com", DisplayName: "Alice"},
		PubKeyCredParams: []CredentialParam{
			{Type: "public-key", Alg: AlgES256},
			{Type: "public-key", Alg: AlgEdDSA},
		},
		ExcludeList: []CredentialDescriptor{
			{Type: "public-key", ID: []byte{9, 9, 9}, Transports: []string{"usb", "nfc"}},
		},
		Extensions:        map[string]cbor.RawMessage{"credProtect": MustMarshal(2)},
		Options:           map[string]bool{OptRK: true, OptUV: false},
		PinUvAuthParam:    bytes.Repeat([]byte{7}, 32),
		PinUvAuthProtocol: 2,
	}
}

func minimalMakeCredentialRequest() *MakeCredentialRequest {
	return &MakeCredentialRequest{
		ClientDataHash:   hash32(2),
		RP:               &RPEntity{ID: "a.example"},
		User:             &UserEntity{ID: []byte{0}},
		PubKeyCredParams: []CredentialParam{{Type: "public-key", Alg: AlgES256}},
	}
}

func sampleGetAssertionRequest() *GetAssertionRequest {
	return &GetAssertionRequest{
		RPID:           "example.com",
		ClientDataHash: hash32(3),
		AllowList: []CredentialDescriptor{
			{Type: "public-key", ID: bytes.Repeat([]byte{5}, 64)},
			{Type: "public-key", ID: []byte{6}, Transports: []string{"usb"}},
		},
		Extensions:        map[string]cbor.RawMessage{"hmac-secret": MustMarshal(map[int]any{1: []byte{1}})},
		Options:           map[string]bool{OptUP: false},
		PinUvAuthParam:    []byte{1, 2, 3},
		PinUvAuthProtocol: 1,
	}
}

// sampleAuthData builds authenticator data with a real COSE key.
func sampleAuthData(tb testing.TB, attested, ext bool) *AuthData {
	tb.Helper()
	a := &AuthData{Flags: FlagUP | FlagUV, SignCount: 0x01020304}
	copy(a.RPIDHash[:], hash32(0xAA))
	if attested {
		a.Flags |= FlagAT
		a.Attested = &AttestedCredential{
			CredentialID: bytes.Repeat([]byte{0xC1}, 48),
			PublicKey:    mustCOSE(tb, &testP256Key(tb).PublicKey),
		}
		copy(a.Attested.AAGUID[:], "fidokit-aaguid!!")
	}
	if ext {
		a.Flags |= FlagED
		a.Extensions = MustMarshal(map[string]any{"credProtect": 2, "hmac-secret": true})
	}
	return a
}

func sampleMakeCredentialResponse(tb testing.TB) *MakeCredentialResponse {
	tb.Helper()
	return &MakeCredentialResponse{
		Format:   "packed",
		AuthData: sampleAuthData(tb, true, false).Marshal(),
		AttStmt:  MustMarshal(map[string]any{"alg": AlgES256, "sig": []byte{0x30, 0x06, 2, 1, 1, 2, 1, 1}}),
	}
}

func sampleGetAssertionResponse(tb testing.TB) *GetAssertionResponse {
	tb.Helper()
	return &GetAssertionResponse{
		Credential:          &CredentialDescriptor{Type: "public-key", ID: []byte{1, 2, 3}},
		AuthData:            sampleAuthData(tb, false, false).Marshal(),
		Signature:           []byte{0x30, 0x06, 2, 1, 1, 2, 1, 1},
		User:                &UserEntity{ID: []byte{4}, Name: "bob"},
		NumberOfCredentials: 2,
		UserSelected:        true,
		LargeBlobKey:        hash32(9),
	}
}

func sampleGetInfoResponse() *GetInfoResponse {
	remaining := uint64(0)
	return &GetInfoResponse{
		Versions:                         []string{"U2F_V2", "FIDO_2_0", "FIDO_2_1"},
		Extensions:                       []string{"credProtect", "hmac-secret"},
		AAGUID:                           []byte("fidokit-aaguid!!"),
		Options:                          map[string]bool{OptRK: true, OptUP: true, OptClientPIN: false, OptPlat: false},
		MaxMsgSize:                       2048,
		PinUvAuthProtocols:               []uint64{2, 1},
		MaxCredentialCountInList:         8,
		MaxCredentialIDLength:            128,
		Transports:                       []string{"usb"},
		Algorithms:                       []CredentialParam{{Type: "public-key", Alg: AlgES256}, {Type: "public-key", Alg: AlgEdDSA}},
		MaxSerializedLargeBlobArray:      1024,
		ForcePINChange:                   true,
		MinPINLength:                     4,
		FirmwareVersion:                  0x050403,
		MaxCredBlobLength:                32,
		MaxRPIDsForSetMinPINLength:       1,
		PreferredPlatformUvAttempts:      3,
		UVModality:                       2,
		RemainingDiscoverableCredentials: &remaining,
	}
}

// testCert is a self-signed DER certificate for U2F registrations.
var testCert = sync.OnceValue(func() []byte {
	k := testEd25519Key()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "fidokit test attestation"},
		NotBefore:    time.Unix(1700000000, 0),
		NotAfter:     time.Unix(1900000000, 0),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		panic(err)
	}
	return der
})

func signP256(tb testing.TB, k *ecdsa.PrivateKey, msg []byte) []byte {
	tb.Helper()
	h := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, k, h[:])
	if err != nil {
		tb.Fatal(err)
	}
	return sig
}

func sampleU2FRegisterResponse(tb testing.TB) *U2FRegisterResponse {
	tb.Helper()
	k := testP256Key(tb)
	pub, err := k.PublicKey.Bytes()
	if err != nil {
		tb.Fatal(err)
	}
	return &U2FRegisterResponse{
		PublicKey:   pub,
		KeyHandle:   bytes.Repeat([]byte{0xEE}, 64),
		Certificate: testCert(),
		Signature:   signP256(tb, k, []byte("register")),
	}
}

func sampleU2FAuthenticateResponse(tb testing.TB) *U2FAuthenticateResponse {
	tb.Helper()
	return &U2FAuthenticateResponse{
		UserPresence: 1,
		Counter:      77,
		Signature:    signP256(tb, testP256Key(tb), []byte("authenticate")),
	}
}

// wantSyntaxErr checks that err is a *SyntaxError wrapping sentinel whose
// Status is status.
func wantSyntaxErr(tb testing.TB, err, sentinel error, status Status) {
	tb.Helper()
	if err == nil {
		tb.Fatalf("got no error, want %v", sentinel)
	}
	if !errors.Is(err, sentinel) {
		tb.Fatalf("error %v does not wrap %v", err, sentinel)
	}
	var se *SyntaxError
	if !errors.As(err, &se) {
		tb.Fatalf("error %v (%T) is not a *SyntaxError", err, err)
	}
	if got := se.Status(); got != status {
		tb.Fatalf("error %v: Status() = %v, want %v", err, got, status)
	}
}

// generic decodes canonical CBOR into plain Go values for comparisons.
func generic(tb testing.TB, b []byte) any {
	tb.Helper()
	var v any
	if err := anyDec.Unmarshal(b, &v); err != nil {
		tb.Fatalf("generic decode of %x: %v", b, err)
	}
	return v
}

// subsumes reports whether every value in out, the re-encoding of a
// decoded message, appears unchanged in in, the original. Maps in the
// original may hold more entries (unknown keys, or zero values the encoder
// omits); everything else must match exactly. It is how the fuzz targets
// check that decoding never alters the data it keeps.
func subsumes(in, out any) bool {
	switch o := out.(type) {
	case map[any]any:
		i, ok := in.(map[any]any)
		if !ok {
			return false
		}
		for k, ov := range o {
			iv, ok := i[k]
			if !ok || !subsumes(iv, ov) {
				return false
			}
		}
		return true
	case []any:
		i, ok := in.([]any)
		if !ok || len(i) != len(o) {
			return false
		}
		for n := range o {
			if !subsumes(i[n], o[n]) {
				return false
			}
		}
		return true
	case []byte:
		i, ok := in.([]byte)
		return ok && bytes.Equal(i, o)
	}
	return reflect.DeepEqual(in, out)
}

// normalize clears empty slices and maps in omitempty fields, recursively,
// since encoding omits them and decoding the result gives nil.
func normalize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			normalize(v.Elem())
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() != reflect.Uint8 {
			for i := range v.Len() {
				normalize(v.Index(i))
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			f, fv := v.Type().Field(i), v.Field(i)
			if !f.IsExported() {
				continue
			}
			if (fv.Kind() == reflect.Slice || fv.Kind() == reflect.Map) &&
				fv.Len() == 0 && bytes.Contains([]byte(f.Tag.Get("cbor")), []byte("omitempty")) {
				fv.SetZero()
				continue
			}
			normalize(fv)
		}
	}
}

// checkRoundTrip is the property every successful decode must have:
// encoding the result gives bytes that decode to an equal value and
// encode again to the same bytes, and the encoding keeps every value it
// carries exactly as the input had it.
func checkRoundTrip[T any](t *testing.T, in []byte, got *T, decode func([]byte) (*T, error)) {
	t.Helper()
	enc, err := Marshal(got)
	if err != nil {
		t.Fatalf("re-encoding decoded %T: %v", got, err)
	}
	again, err := decode(enc)
	if err != nil {
		t.Fatalf("decoding re-encoded %T %x: %v", got, enc, err)
	}
	normalize(reflect.ValueOf(got))
	if !reflect.DeepEqual(got, again) {
		t.Fatalf("round trip changed %T:\n got %+v\nwant %+v", got, again, got)
	}
	if enc2 := MustMarshal(again); !bytes.Equal(enc, enc2) {
		t.Fatalf("encoding not stable: %x then %x", enc, enc2)
	}
	if !subsumes(generic(t, in), generic(t, enc)) {
		t.Fatalf("decoding %x altered data: re-encoded as %x", in, enc)
	}
}
