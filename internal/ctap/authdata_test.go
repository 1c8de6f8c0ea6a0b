package ctap

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

func TestAuthDataRoundTrip(t *testing.T) {
	tests := []struct {
		name          string
		attested, ext bool
	}{
		{"plain", false, false},
		{"attested", true, false},
		{"extensions", false, true},
		{"attested and extensions", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := sampleAuthData(t, tt.attested, tt.ext)
			b := a.Marshal()
			got, err := ParseAuthData(b)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, a) {
				t.Fatalf("parsed %+v, want %+v", got, a)
			}
			if again := got.Marshal(); !bytes.Equal(again, b) {
				t.Fatalf("re-encoded %x, want %x", again, b)
			}
		})
	}
}

func TestAuthDataLayout(t *testing.T) {
	a := sampleAuthData(t, true, false)
	b := a.Marshal()
	// WebAuthn L3 §6.1: rpIdHash | flags | signCount | aaguid | L | id | key.
	if !bytes.Equal(b[:32], hash32(0xAA)) || AuthDataFlags(b[32]) != FlagUP|FlagUV|FlagAT ||
		binary.BigEndian.Uint32(b[33:37]) != 0x01020304 || string(b[37:53]) != "fidokit-aaguid!!" ||
		binary.BigEndian.Uint16(b[53:55]) != 48 {
		t.Errorf("layout %x", b)
	}
}

func TestAuthDataMarshalSetsFlags(t *testing.T) {
	a := sampleAuthData(t, true, true)
	a.Flags = FlagUP // AT and ED cleared by mistake
	got, err := ParseAuthData(a.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if got.Flags != FlagUP|FlagAT|FlagED {
		t.Errorf("flags %#x", got.Flags)
	}
	a = sampleAuthData(t, false, false)
	a.Flags |= FlagAT | FlagED // set with nothing to show
	if _, err := ParseAuthData(a.Marshal()); err != nil {
		t.Error(err)
	}
}

func TestParseAuthDataErrors(t *testing.T) {
	plain := sampleAuthData(t, false, false).Marshal()
	attested := sampleAuthData(t, true, false).Marshal()
	withExt := sampleAuthData(t, true, true).Marshal()
	keyStart := 37 + 16 + 2 + 48

	setFlags := func(b []byte, f AuthDataFlags) []byte {
		b = bytes.Clone(b)
		b[32] = byte(f)
		return b
	}
	setIDLen := func(n uint16) []byte {
		b := bytes.Clone(attested)
		binary.BigEndian.PutUint16(b[53:55], n)
		return b
	}
	replaceKey := func(key []byte) []byte {
		return append(bytes.Clone(attested[:keyStart]), key...)
	}
	tests := []struct {
		name     string
		in       []byte
		sentinel error
		status   Status
	}{
		{"empty", nil, ErrMalformed, StatusInvalidCBOR},
		{"36 bytes", plain[:36], ErrMalformed, StatusInvalidCBOR},
		{"trailing byte without flags", append(bytes.Clone(plain), 0), ErrTrailingBytes, StatusInvalidCBOR},
		{"attested data without AT", setFlags(attested, FlagUP), ErrTrailingBytes, StatusInvalidCBOR},
		{"AT without attested data", setFlags(plain, FlagAT), ErrMalformed, StatusInvalidCBOR},
		{"ED without extensions", setFlags(plain, FlagED), ErrMalformed, StatusInvalidCBOR},
		{"extensions without ED", setFlags(withExt, FlagAT), ErrTrailingBytes, StatusInvalidCBOR},
		{"AAGUID truncated", attested[:37+10], ErrMalformed, StatusInvalidCBOR},
		{"credential ID length 0", setIDLen(0), ErrInvalidValue, StatusInvalidParameter},
		{"credential ID length 1024", setIDLen(1024), ErrInvalidValue, StatusInvalidParameter},
		{"credential ID truncated", setIDLen(1023), ErrMalformed, StatusInvalidCBOR},
		{"no public key", attested[:keyStart], ErrMalformed, StatusInvalidCBOR},
		{"public key truncated", attested[:len(attested)-1], ErrMalformed, StatusInvalidCBOR},
		{"public key not a map", replaceKey(MustMarshal([]int{1, 2})), ErrWrongType, StatusCBORUnexpectedType},
		{"public key non-canonical", replaceKey(unhex(t, "a2 03 26 01 02")), ErrNonCanonical, StatusInvalidCBOR},
		{"public key duplicate label", replaceKey(unhex(t, "a2 01 02 01 02")), ErrDuplicateKey, StatusInvalidCBOR},
		{"public key indefinite", replaceKey(unhex(t, "bf 01 02 ff")), ErrMalformed, StatusInvalidCBOR},
		{"trailing after key", append(bytes.Clone(attested), 0xa0), ErrTrailingBytes, StatusInvalidCBOR},
		{"extensions not a map", append(setFlags(plain, FlagED)[:37], 0x80), ErrWrongType, StatusCBORUnexpectedType},
		{"extensions non-canonical", append(setFlags(plain, FlagED)[:37], unhex(t, "a1 1801 00")...), ErrNonCanonical, StatusInvalidCBOR},
		{"extensions too deep", append(setFlags(plain, FlagED)[:37], append(unhex(t, "a1 00"), nested(20)...)...), ErrTooDeep, StatusInvalidCBOR},
		{"trailing after extensions", append(bytes.Clone(withExt), 0), ErrTrailingBytes, StatusInvalidCBOR},
		{"two extension maps", append(bytes.Clone(withExt), 0xa0), ErrTrailingBytes, StatusInvalidCBOR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := ParseAuthData(tt.in)
			wantSyntaxErr(t, err, tt.sentinel, tt.status)
			var se *SyntaxError
			if errors.As(err, &se); se.What != "authenticator data" {
				t.Errorf("What = %q", se.What)
			}
			if a != nil {
				t.Errorf("got %+v with the error", a)
			}
		})
	}
}

func TestParseAuthDataNoAlias(t *testing.T) {
	b := sampleAuthData(t, true, true).Marshal()
	a, err := ParseAuthData(b)
	if err != nil {
		t.Fatal(err)
	}
	want := a.Marshal()
	clear(b)
	if got := a.Marshal(); !bytes.Equal(got, want) {
		t.Error("parsed authenticator data aliases its input")
	}
}
