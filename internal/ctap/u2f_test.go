package ctap

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"testing"
)

func TestParseAPDU(t *testing.T) {
	data := bytes.Repeat([]byte{0xD0}, 64)
	big := bytes.Repeat([]byte{0xD1}, 300)
	tests := []struct {
		name string
		in   []byte
		want APDU
	}{
		{"case 1", unhex(t, "00 03 00 00"), APDU{INS: 3}},
		{"case 2S", unhex(t, "00 03 00 00 10"), APDU{INS: 3, Le: 16}},
		{"case 2S Le 256", unhex(t, "00 03 00 00 00"), APDU{INS: 3, Le: 256}},
		{"case 2E", unhex(t, "00 03 00 00 00 01 00"), APDU{INS: 3, Le: 256}},
		{"case 2E Le 65536", unhex(t, "00 03 00 00 00 00 00"), APDU{INS: 3, Le: 65536}},
		{"case 3S", append(unhex(t, "00 01 03 00 40"), data...), APDU{INS: 1, P1: 3, Data: data}},
		{"case 4S", append(append(unhex(t, "00 01 00 00 40"), data...), 0), APDU{INS: 1, Data: data, Le: 256}},
		{"case 3E", append(unhex(t, "00 02 07 00 00 00 40"), data...), APDU{INS: 2, P1: 7, Data: data}},
		{"case 4E", append(append(unhex(t, "00 02 03 00 00 00 40"), data...), 0, 0), APDU{INS: 2, P1: 3, Data: data, Le: 65536}},
		{"case 4E large", append(append(unhex(t, "80 02 08 01 00 01 2c"), big...), 1, 0), APDU{CLA: 0x80, INS: 2, P1: 8, P2: 1, Data: big, Le: 256}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseAPDU(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Fatalf("parsed %+v, want %+v", *got, tt.want)
			}
			again, err := ParseAPDU(got.Marshal())
			if err != nil {
				t.Fatalf("parsing marshalled %x: %v", got.Marshal(), err)
			}
			if !reflect.DeepEqual(again, got) {
				t.Fatalf("round trip %+v, want %+v", again, got)
			}
		})
	}
}

func TestParseAPDUErrors(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"3 bytes", unhex(t, "00 03 00")},
		{"short Lc too big", unhex(t, "00 01 00 00 05 01 02")},
		{"short Lc too small", unhex(t, "00 01 00 00 01 01 02 03")},
		{"extended 2 bytes", unhex(t, "00 01 00 00 00 01")},
		{"extended Lc zero", unhex(t, "00 01 00 00 00 00 00 01")},
		{"extended Lc too big", unhex(t, "00 01 00 00 00 00 05 01 02")},
		{"extended one Le byte", unhex(t, "00 01 00 00 00 00 01 01 00")},
		{"extended three Le bytes", unhex(t, "00 01 00 00 00 00 01 01 00 00 00")},
		{"extended Lc 65535 missing data", unhex(t, "00 01 00 00 00 ff ff 01")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAPDU(tt.in)
			if !errors.Is(err, SWWrongLength) {
				t.Fatalf("got %+v, %v; want SWWrongLength", a, err)
			}
			var sw StatusWord
			if !errors.As(err, &sw) || sw != SWWrongLength {
				t.Errorf("errors.As gave %v", sw)
			}
		})
	}
}

func TestAPDUMarshal(t *testing.T) {
	tests := []struct {
		name string
		in   APDU
		want string
	}{
		{"header only", APDU{INS: 3}, "00 03 00 00"},
		{"Le only", APDU{INS: 3, Le: 65536}, "00 03 00 00 00 00 00"},
		{"Le clamped", APDU{INS: 3, Le: 1 << 20}, "00 03 00 00 00 00 00"},
		{"negative Le is none", APDU{INS: 3, Le: -1}, "00 03 00 00"},
		{"data", APDU{INS: 1, Data: []byte{1, 2}}, "00 01 00 00 00 00 02 01 02"},
		{"data and Le", APDU{INS: 2, P1: 7, Data: []byte{1}, Le: 256}, "00 02 07 00 00 00 01 01 01 00"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.in.Marshal(); !bytes.Equal(got, unhex(t, tt.want)) {
				t.Errorf("Marshal = %x, want %s", got, tt.want)
			}
		})
	}
	t.Run("data too long panics", func(t *testing.T) {
		defer func() {
			if recover() == nil {
				t.Error("no panic")
			}
		}()
		(&APDU{Data: make([]byte, 65536)}).Marshal()
	})
}

func TestStatusWord(t *testing.T) {
	tests := []struct {
		sw   StatusWord
		want string
	}{
		{SWNoError, "ctap: U2F status SW_NO_ERROR (0x9000)"},
		{SWConditionsNotSatisfied, "ctap: U2F status SW_CONDITIONS_NOT_SATISFIED (0x6985)"},
		{SWWrongData, "ctap: U2F status SW_WRONG_DATA (0x6a80)"},
		{SWWrongLength, "ctap: U2F status SW_WRONG_LENGTH (0x6700)"},
		{SWClaNotSupported, "ctap: U2F status SW_CLA_NOT_SUPPORTED (0x6e00)"},
		{SWInsNotSupported, "ctap: U2F status SW_INS_NOT_SUPPORTED (0x6d00)"},
		{StatusWord(0x6a82), "ctap: U2F status 0x6a82"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.sw.Error(); got != tt.want {
				t.Errorf("Error() = %q", got)
			}
			if err := fmt.Errorf("wrapped: %w", tt.sw); !errors.Is(err, tt.sw) {
				t.Error("errors.Is through wrapping")
			}
		})
	}
}

func TestSplitStatusWord(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
		body []byte
		sw   StatusWord
	}{
		{"status only", []byte{0x90, 0x00}, []byte{}, SWNoError},
		{"version", append([]byte("U2F_V2"), 0x90, 0x00), []byte("U2F_V2"), SWNoError},
		{"touch needed", []byte{0x69, 0x85}, []byte{}, SWConditionsNotSatisfied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body, sw, err := SplitStatusWord(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, tt.body) || sw != tt.sw {
				t.Errorf("got %q %v", body, sw)
			}
		})
	}
	for _, in := range [][]byte{nil, {0x90}} {
		t.Run(fmt.Sprintf("%d bytes", len(in)), func(t *testing.T) {
			_, _, err := SplitStatusWord(in)
			wantSyntaxErr(t, err, ErrMalformed, StatusInvalidCBOR)
		})
	}
}

func TestU2FRegisterResponseRoundTrip(t *testing.T) {
	r := sampleU2FRegisterResponse(t)
	b := r.Marshal()
	got, err := ParseU2FRegisterResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) {
		t.Fatalf("parsed %+v, want %+v", got, r)
	}
	if !bytes.Equal(got.Marshal(), b) {
		t.Fatal("re-encoding differs")
	}
	clear(b)
	if !reflect.DeepEqual(got, r) {
		t.Fatal("parsed response aliases its input")
	}
}

func TestParseU2FRegisterResponseErrors(t *testing.T) {
	r := sampleU2FRegisterResponse(t)
	mod := func(f func(r *U2FRegisterResponse)) []byte {
		c := *r
		f(&c)
		return c.Marshal()
	}
	valid := r.Marshal()
	badMarker := bytes.Clone(valid)
	badMarker[0] = 0x04
	zeroKH := mod(func(r *U2FRegisterResponse) { r.KeyHandle = nil })
	offCurve := bytes.Clone(r.PublicKey)
	offCurve[64] ^= 1
	compressed := bytes.Clone(r.PublicKey)
	compressed[0] = 0x02
	// A certificate with a long-form length that could have been short.
	nonMinimalCert := append([]byte{0x30, 0x81, 0x03}, 1, 2, 3)
	// The smallest DER signature (r = s = 1), and it in BER with a
	// non-minimal length.
	smallSig := []byte{0x30, 0x06, 2, 1, 1, 2, 1, 1}
	berSig := []byte{0x30, 0x81, 0x06, 2, 1, 1, 2, 1, 1}
	// A signature whose INTEGER has a needless leading zero.
	paddedInt := []byte{0x30, 0x07, 0x02, 0x02, 0x00, 0x01, 0x02, 0x01, 0x01}
	tests := []struct {
		name     string
		in       []byte
		sentinel error
		status   Status
	}{
		{"empty", nil, ErrMalformed, StatusInvalidCBOR},
		{"66 bytes", valid[:66], ErrMalformed, StatusInvalidCBOR},
		{"reserved byte", badMarker, ErrInvalidValue, StatusInvalidParameter},
		{"key off curve", mod(func(r *U2FRegisterResponse) { r.PublicKey = offCurve }), ErrInvalidValue, StatusInvalidParameter},
		{"compressed key", mod(func(r *U2FRegisterResponse) { r.PublicKey = compressed }), ErrInvalidValue, StatusInvalidParameter},
		{"empty key handle", zeroKH, ErrInvalidValue, StatusInvalidParameter},
		{"key handle truncated", valid[:67+10], ErrMalformed, StatusInvalidCBOR},
		{"no certificate", valid[:67+64], ErrMalformed, StatusInvalidCBOR},
		{"certificate not a SEQUENCE", mod(func(r *U2FRegisterResponse) { r.Certificate = []byte{0x31, 0} }), ErrWrongType, StatusCBORUnexpectedType},
		{"certificate truncated", valid[:67+64+100], ErrMalformed, StatusInvalidCBOR},
		{"certificate non-minimal length", mod(func(r *U2FRegisterResponse) { r.Certificate = nonMinimalCert }), ErrNonCanonical, StatusInvalidCBOR},
		{"certificate indefinite length", mod(func(r *U2FRegisterResponse) { r.Certificate = []byte{0x30, 0x80, 0, 0} }), ErrMalformed, StatusInvalidCBOR},
		{"certificate 3-byte length", mod(func(r *U2FRegisterResponse) { r.Certificate = []byte{0x30, 0x83, 1, 0, 0} }), ErrTooLarge, StatusLimitExceeded},
		{"no signature", mod(func(r *U2FRegisterResponse) { r.Signature = nil }), ErrMalformed, StatusInvalidCBOR},
		{"signature trailing byte", mod(func(r *U2FRegisterResponse) { r.Signature = append(smallSig, 0) }), ErrTrailingBytes, StatusInvalidCBOR},
		{"smallest signature is fine", mod(func(r *U2FRegisterResponse) { r.Signature = smallSig }), nil, 0},
		{"signature BER", mod(func(r *U2FRegisterResponse) { r.Signature = berSig }), ErrNonCanonical, StatusInvalidCBOR},
		{"signature padded INTEGER", mod(func(r *U2FRegisterResponse) { r.Signature = paddedInt }), ErrMalformed, StatusInvalidCBOR},
		{"signature too long", mod(func(r *U2FRegisterResponse) { r.Signature = append([]byte{0x30, 71}, make([]byte, 71)...) }), ErrTooLarge, StatusLimitExceeded},
		{"signature negative r", mod(func(r *U2FRegisterResponse) { r.Signature = []byte{0x30, 0x06, 2, 1, 0xff, 2, 1, 1} }), ErrInvalidValue, StatusInvalidParameter},
		{"signature not INTEGERs", mod(func(r *U2FRegisterResponse) { r.Signature = []byte{0x30, 0x06, 4, 1, 1, 4, 1, 1} }), ErrMalformed, StatusInvalidCBOR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseU2FRegisterResponse(tt.in)
			if tt.sentinel == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantSyntaxErr(t, err, tt.sentinel, tt.status)
			var se *SyntaxError
			if errors.As(err, &se); se.What != "U2F register response" {
				t.Errorf("What = %q", se.What)
			}
			if got != nil {
				t.Errorf("got %+v with the error", got)
			}
		})
	}
}

func TestU2FAuthenticateResponse(t *testing.T) {
	r := sampleU2FAuthenticateResponse(t)
	b := r.Marshal()
	if b[0] != 1 || !bytes.Equal(b[1:5], []byte{0, 0, 0, 77}) {
		t.Errorf("layout %x", b)
	}
	got, err := ParseU2FAuthenticateResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, r) || !bytes.Equal(got.Marshal(), b) {
		t.Fatalf("round trip %+v, want %+v", got, r)
	}

	tests := []struct {
		name     string
		in       []byte
		sentinel error
		status   Status
	}{
		{"empty", nil, ErrMalformed, StatusInvalidCBOR},
		{"4 bytes", b[:4], ErrMalformed, StatusInvalidCBOR},
		{"no signature", b[:5], ErrMalformed, StatusInvalidCBOR},
		{"reserved presence bits", append([]byte{0x81}, b[1:]...), ErrInvalidValue, StatusInvalidParameter},
		{"trailing byte", unhex(t, "01 00000001 3006020101020101 00"), ErrTrailingBytes, StatusInvalidCBOR},
		{"signature truncated", b[:len(b)-1], ErrMalformed, StatusInvalidCBOR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseU2FAuthenticateResponse(tt.in)
			wantSyntaxErr(t, err, tt.sentinel, tt.status)
			if got != nil {
				t.Errorf("got %+v with the error", got)
			}
		})
	}
}

func TestU2FSignatureVerifies(t *testing.T) {
	// The parsed public key and signature verify with VerifySignature, as
	// a client turning a U2F registration into a credential does.
	k := testP256Key(t)
	pub, _ := k.PublicKey.Bytes()
	msg := []byte("u2f registration data")
	b := (&U2FRegisterResponse{PublicKey: pub, KeyHandle: []byte{1}, Certificate: testCert(), Signature: signP256(t, k, msg)}).Marshal()
	r, err := ParseU2FRegisterResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	cose := mustCOSE(t, &k.PublicKey)
	alg, key, err := ParsePublicKey(cose)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifySignature(alg, key, msg, r.Signature); err != nil {
		t.Fatal(err)
	}
}
