package ctap

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// cborProbe is a small message for exercising the decoders.
type cborProbe struct {
	Bytes []byte          `cbor:"1,keyasint"`
	Num   int64           `cbor:"2,keyasint,omitempty"`
	Opts  map[string]bool `cbor:"3,keyasint,omitempty"`
	Any   any             `cbor:"4,keyasint,omitempty"`
}

type textProbe struct {
	ID string `cbor:"id"`
}

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func nested(depth int) []byte {
	return append(bytes.Repeat([]byte{0x81}, depth), 0x00)
}

func TestUnmarshalErrors(t *testing.T) {
	bigArray := append([]byte{0x99, 0x01, 0x01}, make([]byte, 257)...) // 257 zeros
	bigArrayProbe := append(unhex(t, "a2 0140 04"), bigArray...)
	tests := []struct {
		name     string
		in       []byte
		lenient  bool
		sentinel error
		status   Status
	}{
		{"empty", nil, false, ErrMalformed, StatusInvalidCBOR},
		{"truncated text", unhex(t, "62 61"), false, ErrMalformed, StatusInvalidCBOR},
		{"truncated map", unhex(t, "a2 01 40"), false, ErrMalformed, StatusInvalidCBOR},
		{"reserved additional info", unhex(t, "1c"), false, ErrMalformed, StatusInvalidCBOR},
		{"trailing byte", unhex(t, "a1 01 40 00"), false, ErrTrailingBytes, StatusInvalidCBOR},
		{"duplicate key", unhex(t, "a2 01 40 01 40"), false, ErrDuplicateKey, StatusInvalidCBOR},
		{"duplicate text key", unhex(t, "a2 6269 64 61 61 62 6964 61 62"), false, ErrDuplicateKey, StatusInvalidCBOR},
		{"non-minimal int 0x1801", unhex(t, "a2 01 40 02 1801"), false, ErrNonCanonical, StatusInvalidCBOR},
		{"non-minimal key", unhex(t, "a1 1801 40"), false, ErrNonCanonical, StatusInvalidCBOR},
		{"non-minimal length", unhex(t, "a1 01 5800"), false, ErrNonCanonical, StatusInvalidCBOR},
		{"unsorted map keys", unhex(t, "a2 02 01 01 40"), false, ErrNonCanonical, StatusInvalidCBOR},
		{"keys sorted lexically not by length", unhex(t, "a2 1818 00 02 00"), false, ErrNonCanonical, StatusInvalidCBOR},
		{"half-precision float", unhex(t, "a2 01 40 04 f93c00"), false, ErrNonCanonical, StatusInvalidCBOR},
		{"undefined", unhex(t, "a2 01 40 04 f7"), false, ErrNonCanonical, StatusInvalidCBOR},
		{"20-deep nested arrays", append(unhex(t, "a2 01 40 04"), nested(20)...), false, ErrTooDeep, StatusInvalidCBOR},
		{"array too large", bigArrayProbe, false, ErrTooLarge, StatusLimitExceeded},
		{"indefinite-length array", unhex(t, "a2 01 40 04 9f 00 ff"), false, ErrMalformed, StatusInvalidCBOR},
		{"indefinite-length bytes", unhex(t, "a1 01 5f 41 00 ff"), false, ErrMalformed, StatusInvalidCBOR},
		{"tag", unhex(t, "a1 01 c2 41 01"), false, ErrMalformed, StatusInvalidCBOR},
		{"invalid UTF-8", unhex(t, "a2 01 40 04 61 ff"), false, ErrMalformed, StatusInvalidCBOR},
		{"text for bytes", unhex(t, "a1 01 61 61"), false, ErrWrongType, StatusCBORUnexpectedType},
		{"bytes for int", unhex(t, "a2 01 40 02 41 00"), false, ErrWrongType, StatusCBORUnexpectedType},
		{"int for bool", unhex(t, "a2 01 40 03 a1 61 61 01"), false, ErrWrongType, StatusCBORUnexpectedType},
		{"array for map", unhex(t, "80"), false, ErrWrongType, StatusCBORUnexpectedType},
		{"int overflow", unhex(t, "a2 01 40 02 1b ffffffffffffffff"), false, ErrWrongType, StatusCBORUnexpectedType},
		{"unknown key, strict", unhex(t, "a2 01 40 05 00"), false, ErrUnknownField, StatusInvalidCBOR},
		{"trailing byte, lenient", unhex(t, "a1 01 40 00"), true, ErrTrailingBytes, StatusInvalidCBOR},
		{"non-canonical, lenient", unhex(t, "a1 01 5800"), true, ErrNonCanonical, StatusInvalidCBOR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var p cborProbe
			var err error
			if tt.lenient {
				err = UnmarshalLenient("probe", tt.in, &p)
			} else {
				err = Unmarshal("probe", tt.in, &p)
			}
			wantSyntaxErr(t, err, tt.sentinel, tt.status)
			var se *SyntaxError
			errors.As(err, &se)
			if se.What != "probe" {
				t.Errorf("What = %q, want probe", se.What)
			}
			if !strings.Contains(err.Error(), "probe") {
				t.Errorf("error %q does not name the message", err)
			}
		})
	}
}

func TestUnmarshalAccepts(t *testing.T) {
	t.Run("strict", func(t *testing.T) {
		in := MustMarshal(&cborProbe{Bytes: []byte{1}, Num: -5, Opts: map[string]bool{"up": true}})
		var p cborProbe
		if err := Unmarshal("probe", in, &p); err != nil {
			t.Fatal(err)
		}
		if p.Num != -5 || !p.Opts["up"] || !bytes.Equal(p.Bytes, []byte{1}) {
			t.Errorf("decoded %+v", p)
		}
	})
	t.Run("lenient ignores unknown keys", func(t *testing.T) {
		var p cborProbe
		if err := UnmarshalLenient("probe", unhex(t, "a2 01 41 07 05 00"), &p); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(p.Bytes, []byte{7}) {
			t.Errorf("decoded %+v", p)
		}
	})
	t.Run("text keys match case-sensitively", func(t *testing.T) {
		var p textProbe
		// {"ID": "x"} must not fill the "id" field.
		if err := UnmarshalLenient("probe", unhex(t, "a1 62 4944 61 78"), &p); err != nil {
			t.Fatal(err)
		}
		if p.ID != "" {
			t.Errorf(`"ID" matched field "id": %+v`, p)
		}
		// {"ID", "id"} are two keys, not duplicates.
		if err := UnmarshalLenient("probe", unhex(t, "a2 62 4944 61 78 62 6964 61 79"), &p); err != nil {
			t.Fatal(err)
		}
		if p.ID != "y" {
			t.Errorf("decoded %+v", p)
		}
	})
	t.Run("nesting within limit", func(t *testing.T) {
		var p cborProbe
		if err := Unmarshal("probe", append(unhex(t, "a2 01 40 04"), nested(maxNesting-2)...), &p); err != nil {
			t.Fatal(err)
		}
	})
}

func TestCheckCanonical(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		sentinel error
	}{
		{"uint", "17", nil},
		{"uint 24", "1818", nil},
		{"negative", "3903e7", nil},
		{"sorted map", "a3 01 00 03 00 20 00", nil},
		{"text keys by length first", "a2 61 62 00 62 6161 00", nil},
		{"float64", "fb 3ff8000000000000", nil},
		{"non-minimal uint", "1817", ErrNonCanonical},
		{"non-minimal negative", "3800", ErrNonCanonical},
		{"text keys lexical", "a2 62 6161 00 61 62 00", ErrNonCanonical},
		{"trailing", "00 00", ErrTrailingBytes},
		{"empty", "", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckCanonical("item", unhex(t, tt.in))
			if tt.sentinel == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantSyntaxErr(t, err, tt.sentinel, StatusInvalidCBOR)
		})
	}
}

func TestSyntaxErrorStatus(t *testing.T) {
	tests := []struct {
		sentinel error
		want     Status
	}{
		{ErrMalformed, StatusInvalidCBOR},
		{ErrTrailingBytes, StatusInvalidCBOR},
		{ErrDuplicateKey, StatusInvalidCBOR},
		{ErrNonCanonical, StatusInvalidCBOR},
		{ErrTooDeep, StatusInvalidCBOR},
		{ErrTooLarge, StatusLimitExceeded},
		{ErrWrongType, StatusCBORUnexpectedType},
		{ErrMissingField, StatusMissingParameter},
		{ErrUnknownField, StatusInvalidCBOR},
		{ErrInvalidValue, StatusInvalidParameter},
	}
	for _, tt := range tests {
		t.Run(tt.sentinel.Error(), func(t *testing.T) {
			err := syntaxErr("thing", tt.sentinel, "detail")
			wantSyntaxErr(t, err, tt.sentinel, tt.want)
			if got := err.Error(); got != "ctap: decoding thing: "+tt.sentinel.Error()+": detail" {
				t.Errorf("Error() = %q", got)
			}
		})
	}
}

func TestMarshalCanonical(t *testing.T) {
	// CTAP 2.1 §8: keys sorted by encoded length, then bytewise.
	got := MustMarshal(map[any]any{"bb": 1, "a": 2, 3: 3, -1: 4, 1: 5})
	want := unhex(t, "a5 01 05 03 03 20 04 61 61 02 62 6262 01")
	if !bytes.Equal(got, want) {
		t.Errorf("Marshal = %x, want %x", got, want)
	}
	if err := CheckCanonical("map", got); err != nil {
		t.Error(err)
	}
}
