package ctap

import (
	"bytes"
	"errors"
	"maps"
	"reflect"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

func TestCommandString(t *testing.T) {
	tests := []struct {
		cmd  Command
		want string
	}{
		{CmdMakeCredential, "authenticatorMakeCredential"},
		{CmdGetAssertion, "authenticatorGetAssertion"},
		{CmdGetInfo, "authenticatorGetInfo"},
		{CmdClientPIN, "authenticatorClientPIN"},
		{CmdReset, "authenticatorReset"},
		{CmdGetNextAssertion, "authenticatorGetNextAssertion"},
		{CmdBioEnrollment, "authenticatorBioEnrollment"},
		{CmdCredentialManagement, "authenticatorCredentialManagement"},
		{CmdSelection, "authenticatorSelection"},
		{CmdLargeBlobs, "authenticatorLargeBlobs"},
		{CmdConfig, "authenticatorConfig"},
		{CmdCredentialManagementPreview, "prototypeCredentialManagement"},
		{Command(0x42), "command 0x42"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.cmd.String(); got != tt.want {
				t.Errorf("String() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestMessageRoundTrip encodes each message type, decodes it, and checks
// the value and the bytes survive unchanged.
func TestMessageRoundTrip(t *testing.T) {
	t.Run("makeCredential request", func(t *testing.T) {
		for _, r := range []*MakeCredentialRequest{sampleMakeCredentialRequest(), minimalMakeCredentialRequest()} {
			roundTrip(t, r, DecodeMakeCredentialRequest)
		}
	})
	t.Run("getAssertion request", func(t *testing.T) {
		roundTrip(t, sampleGetAssertionRequest(), DecodeGetAssertionRequest)
		roundTrip(t, &GetAssertionRequest{RPID: "x", ClientDataHash: hash32(0)}, DecodeGetAssertionRequest)
	})
	t.Run("makeCredential response", func(t *testing.T) {
		r := sampleMakeCredentialResponse(t)
		roundTrip(t, r, DecodeMakeCredentialResponse)
		r.EpAtt, r.LargeBlobKey = true, hash32(4)
		roundTrip(t, r, DecodeMakeCredentialResponse)
	})
	t.Run("getAssertion response", func(t *testing.T) {
		roundTrip(t, sampleGetAssertionResponse(t), DecodeGetAssertionResponse)
		roundTrip(t, &GetAssertionResponse{AuthData: []byte{1}, Signature: []byte{2}}, DecodeGetAssertionResponse)
	})
	t.Run("getInfo response", func(t *testing.T) {
		roundTrip(t, sampleGetInfoResponse(), DecodeGetInfoResponse)
		roundTrip(t, &GetInfoResponse{Versions: []string{"FIDO_2_0"}, AAGUID: make([]byte, 16)}, DecodeGetInfoResponse)
	})
}

func roundTrip[T any](t *testing.T, v *T, decode func([]byte) (*T, error)) {
	t.Helper()
	enc := MustMarshal(v)
	got, err := decode(enc)
	if err != nil {
		t.Fatalf("decoding %x: %v", enc, err)
	}
	if !reflect.DeepEqual(got, v) {
		t.Fatalf("decoded %+v, want %+v", got, v)
	}
	if again := MustMarshal(got); !bytes.Equal(again, enc) {
		t.Fatalf("re-encoded %x, want %x", again, enc)
	}
	checkRoundTrip(t, enc, got, decode)
}

func TestMakeCredentialRequestKeys(t *testing.T) {
	// The wire form uses the integer keys and text sub-keys of CTAP 2.1
	// §6.1, in canonical order.
	got := MustMarshal(minimalMakeCredentialRequest())
	want := MustMarshal(map[int]any{
		1: hash32(2),
		2: map[string]any{"id": "a.example"},
		3: map[string]any{"id": []byte{0}},
		4: []any{map[string]any{"type": "public-key", "alg": -7}},
	})
	if !bytes.Equal(got, want) {
		t.Errorf("encoded %x, want %x", got, want)
	}
}

// mcMap is a valid makeCredential request as generic values, for cases
// that need to break it.
func mcMap() map[int]any {
	return map[int]any{
		1: hash32(1),
		2: map[string]any{"id": "example.com", "name": "Example"},
		3: map[string]any{"id": []byte{1, 2}, "name": "alice"},
		4: []any{map[string]any{"type": "public-key", "alg": -7}},
		5: []any{map[string]any{"type": "public-key", "id": []byte{3}}},
		7: map[string]any{"rk": true},
	}
}

func gaMap() map[int]any {
	return map[int]any{
		1: "example.com",
		2: hash32(1),
		3: []any{map[string]any{"type": "public-key", "id": []byte{3}}},
		5: map[string]any{"up": false},
	}
}

func with(m map[int]any, key int, v any) map[int]any {
	m = maps.Clone(m)
	if v == nil {
		delete(m, key)
	} else {
		m[key] = v
	}
	return m
}

// nullMarker stands for CBOR null in test maps, where nil means delete.
type nullMarker struct{}

func (nullMarker) MarshalCBOR() ([]byte, error) { return []byte{0xf6}, nil }

func TestDecodeMakeCredentialRequestErrors(t *testing.T) {
	valid := MustMarshal(mcMap())
	tests := []struct {
		name     string
		in       []byte
		sentinel error
		status   Status
	}{
		{"empty", nil, ErrMalformed, StatusInvalidCBOR},
		{"not a map", MustMarshal([]int{1}), ErrWrongType, StatusCBORUnexpectedType},
		{"trailing byte", append(valid, 0), ErrTrailingBytes, StatusInvalidCBOR},
		{"duplicate key", unhex(t, "a2 01 40 01 40"), ErrDuplicateKey, StatusInvalidCBOR},
		{"unsorted keys", unhex(t, "a2 02 a0 01 40"), ErrNonCanonical, StatusInvalidCBOR},
		{"no clientDataHash", MustMarshal(with(mcMap(), 1, nil)), ErrMissingField, StatusMissingParameter},
		{"short clientDataHash", MustMarshal(with(mcMap(), 1, make([]byte, 31))), ErrInvalidValue, StatusInvalidParameter},
		{"text clientDataHash", MustMarshal(with(mcMap(), 1, "hash")), ErrWrongType, StatusCBORUnexpectedType},
		{"clientDataHash as array", MustMarshal(with(mcMap(), 1, bytesAsArray(hash32(1)))), ErrWrongType, StatusCBORUnexpectedType},
		{"user id as array", MustMarshal(with(mcMap(), 3, map[string]any{"id": bytesAsArray([]byte{1})})), ErrWrongType, StatusCBORUnexpectedType},
		{"exclude id as array", MustMarshal(with(mcMap(), 5, []any{map[string]any{"type": "public-key", "id": []any{}}})), ErrWrongType, StatusCBORUnexpectedType},
		{"no rp", MustMarshal(with(mcMap(), 2, nil)), ErrMissingField, StatusMissingParameter},
		{"rp without id", MustMarshal(with(mcMap(), 2, map[string]any{"name": "x"})), ErrMissingField, StatusMissingParameter},
		{"rp with ID not id", MustMarshal(with(mcMap(), 2, map[string]any{"ID": "x"})), ErrMissingField, StatusMissingParameter},
		{"rp id not text", MustMarshal(with(mcMap(), 2, map[string]any{"id": 1})), ErrWrongType, StatusCBORUnexpectedType},
		{"rp not a map", MustMarshal(with(mcMap(), 2, "example.com")), ErrWrongType, StatusCBORUnexpectedType},
		{"rp null", MustMarshal(with(mcMap(), 2, nullMarker{})), ErrWrongType, StatusCBORUnexpectedType},
		{"no user", MustMarshal(with(mcMap(), 3, nil)), ErrMissingField, StatusMissingParameter},
		{"user without id", MustMarshal(with(mcMap(), 3, map[string]any{"name": "x"})), ErrMissingField, StatusMissingParameter},
		{"user id empty", MustMarshal(with(mcMap(), 3, map[string]any{"id": []byte{}})), ErrInvalidValue, StatusInvalidParameter},
		{"user id 65 bytes", MustMarshal(with(mcMap(), 3, map[string]any{"id": make([]byte, 65)})), ErrInvalidValue, StatusInvalidParameter},
		{"user id text", MustMarshal(with(mcMap(), 3, map[string]any{"id": "alice"})), ErrWrongType, StatusCBORUnexpectedType},
		{"no pubKeyCredParams", MustMarshal(with(mcMap(), 4, nil)), ErrMissingField, StatusMissingParameter},
		{"param without alg", MustMarshal(with(mcMap(), 4, []any{map[string]any{"type": "public-key"}})), ErrMissingField, StatusMissingParameter},
		{"param without type", MustMarshal(with(mcMap(), 4, []any{map[string]any{"alg": -7}})), ErrMissingField, StatusMissingParameter},
		{"param alg text", MustMarshal(with(mcMap(), 4, []any{map[string]any{"type": "public-key", "alg": "ES256"}})), ErrWrongType, StatusCBORUnexpectedType},
		{"param type int", MustMarshal(with(mcMap(), 4, []any{map[string]any{"type": 1, "alg": -7}})), ErrWrongType, StatusCBORUnexpectedType},
		{"params not an array", MustMarshal(with(mcMap(), 4, map[string]any{"type": "public-key", "alg": -7})), ErrWrongType, StatusCBORUnexpectedType},
		{"exclude without id", MustMarshal(with(mcMap(), 5, []any{map[string]any{"type": "public-key"}})), ErrMissingField, StatusMissingParameter},
		{"exclude without type", MustMarshal(with(mcMap(), 5, []any{map[string]any{"id": []byte{1}}})), ErrMissingField, StatusMissingParameter},
		{"exclude id text", MustMarshal(with(mcMap(), 5, []any{map[string]any{"type": "public-key", "id": "x"}})), ErrWrongType, StatusCBORUnexpectedType},
		{"exclude list too long", MustMarshal(with(mcMap(), 5, make([]any, 257))), ErrTooLarge, StatusLimitExceeded},
		{"extension key not text", MustMarshal(with(mcMap(), 6, map[int]any{1: 1})), ErrWrongType, StatusCBORUnexpectedType},
		{"option not bool", MustMarshal(with(mcMap(), 7, map[string]any{"rk": 1})), ErrWrongType, StatusCBORUnexpectedType},
		{"option null", MustMarshal(with(mcMap(), 7, map[string]any{"up": nullMarker{}})), ErrWrongType, StatusCBORUnexpectedType},
		{"null in unknown key", MustMarshal(with(mcMap(), 0x20, nullMarker{})), ErrWrongType, StatusCBORUnexpectedType},
		{"pinUvAuthProtocol negative", MustMarshal(with(mcMap(), 9, -1)), ErrWrongType, StatusCBORUnexpectedType},
		{"too deep", MustMarshal(with(mcMap(), 6, map[string]any{"x": []any{[]any{[]any{[]any{[]any{[]any{[]any{1}}}}}}}})), ErrTooDeep, StatusInvalidCBOR},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeMakeCredentialRequest(tt.in)
			wantSyntaxErr(t, err, tt.sentinel, tt.status)
			if r != nil {
				t.Errorf("got %+v with the error", r)
			}
		})
	}
}

func TestDecodeMakeCredentialRequestLenient(t *testing.T) {
	tests := []struct {
		name string
		in   map[int]any
	}{
		{"unknown top-level key", with(mcMap(), 0x30, "future")},
		{"unknown negative key", with(mcMap(), -1, 5)},
		{"unknown rp key", with(mcMap(), 2, map[string]any{"id": "example.com", "future": []any{1}})},
		{"unknown user key", with(mcMap(), 3, map[string]any{"id": []byte{1}, "x": map[string]any{}})},
		{"unknown credential type", with(mcMap(), 4, []any{map[string]any{"type": "future-key", "alg": -7}})},
		{"unknown algorithm", with(mcMap(), 4, []any{map[string]any{"type": "public-key", "alg": -65535}})},
		{"empty pubKeyCredParams", with(mcMap(), 4, []any{})},
		{"user id 64 bytes", with(mcMap(), 3, map[string]any{"id": make([]byte, 64)})},
		{"zero pinUvAuthProtocol", with(mcMap(), 9, 0)},
		{"empty options", with(mcMap(), 7, map[string]any{})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := MustMarshal(tt.in)
			r, err := DecodeMakeCredentialRequest(in)
			if err != nil {
				t.Fatal(err)
			}
			checkRoundTrip(t, in, r, DecodeMakeCredentialRequest)
		})
	}
}

func TestDecodeGetAssertionRequestErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       []byte
		sentinel error
		status   Status
	}{
		{"empty", nil, ErrMalformed, StatusInvalidCBOR},
		{"trailing", append(MustMarshal(gaMap()), 0xa0), ErrTrailingBytes, StatusInvalidCBOR},
		{"no rpId", MustMarshal(with(gaMap(), 1, nil)), ErrMissingField, StatusMissingParameter},
		{"empty rpId", MustMarshal(with(gaMap(), 1, "")), ErrMissingField, StatusMissingParameter},
		{"rpId bytes", MustMarshal(with(gaMap(), 1, []byte("x"))), ErrWrongType, StatusCBORUnexpectedType},
		{"no clientDataHash", MustMarshal(with(gaMap(), 2, nil)), ErrMissingField, StatusMissingParameter},
		{"long clientDataHash", MustMarshal(with(gaMap(), 2, make([]byte, 33))), ErrInvalidValue, StatusInvalidParameter},
		{"allow without id", MustMarshal(with(gaMap(), 3, []any{map[string]any{"type": "public-key"}})), ErrMissingField, StatusMissingParameter},
		{"allow not array", MustMarshal(with(gaMap(), 3, 1)), ErrWrongType, StatusCBORUnexpectedType},
		{"allow transports not text", MustMarshal(with(gaMap(), 3, []any{map[string]any{"type": "public-key", "id": []byte{1}, "transports": []any{1}}})), ErrWrongType, StatusCBORUnexpectedType},
		{"option not bool", MustMarshal(with(gaMap(), 5, map[string]any{"up": "no"})), ErrWrongType, StatusCBORUnexpectedType},
		{"pinUvAuthParam text", MustMarshal(with(gaMap(), 6, "x")), ErrWrongType, StatusCBORUnexpectedType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := DecodeGetAssertionRequest(tt.in)
			wantSyntaxErr(t, err, tt.sentinel, tt.status)
			if r != nil {
				t.Errorf("got %+v with the error", r)
			}
		})
	}
}

func TestDecodeResponseErrors(t *testing.T) {
	mc := func(drop int, v any) []byte {
		m := map[int]any{1: "packed", 2: []byte{1}, 3: map[string]any{}}
		return MustMarshal(with(m, drop, v))
	}
	ga := func(drop int, v any) []byte {
		m := map[int]any{1: map[string]any{"type": "public-key", "id": []byte{1}}, 2: []byte{1}, 3: []byte{2}}
		return MustMarshal(with(m, drop, v))
	}
	gi := func(drop int, v any) []byte {
		m := map[int]any{1: []string{"FIDO_2_0"}, 3: make([]byte, 16)}
		return MustMarshal(with(m, drop, v))
	}
	decMC := func(b []byte) error { _, err := DecodeMakeCredentialResponse(b); return err }
	decGA := func(b []byte) error { _, err := DecodeGetAssertionResponse(b); return err }
	decGI := func(b []byte) error { _, err := DecodeGetInfoResponse(b); return err }
	tests := []struct {
		name     string
		decode   func([]byte) error
		in       []byte
		sentinel error
		status   Status
	}{
		{"makeCredential empty", decMC, nil, ErrMalformed, StatusInvalidCBOR},
		{"makeCredential no fmt", decMC, mc(1, nil), ErrMissingField, StatusMissingParameter},
		{"makeCredential fmt int", decMC, mc(1, 1), ErrWrongType, StatusCBORUnexpectedType},
		{"makeCredential no authData", decMC, mc(2, nil), ErrMissingField, StatusMissingParameter},
		{"makeCredential no attStmt", decMC, mc(3, nil), ErrMissingField, StatusMissingParameter},
		{"makeCredential attStmt array", decMC, mc(3, []any{}), ErrWrongType, StatusCBORUnexpectedType},
		{"makeCredential epAtt int", decMC, mc(4, 1), ErrWrongType, StatusCBORUnexpectedType},
		{"makeCredential trailing", decMC, append(mc(0, nil), 0), ErrTrailingBytes, StatusInvalidCBOR},
		{"getAssertion no authData", decGA, ga(2, nil), ErrMissingField, StatusMissingParameter},
		{"getAssertion no signature", decGA, ga(3, nil), ErrMissingField, StatusMissingParameter},
		{"getAssertion credential without id", decGA, ga(1, map[string]any{"type": "public-key"}), ErrMissingField, StatusMissingParameter},
		{"getAssertion credential without type", decGA, ga(1, map[string]any{"id": []byte{1}}), ErrMissingField, StatusMissingParameter},
		{"getAssertion user without id", decGA, ga(4, map[string]any{"name": "x"}), ErrMissingField, StatusMissingParameter},
		{"getAssertion negative count", decGA, ga(5, -1), ErrInvalidValue, StatusInvalidParameter},
		{"getAssertion huge count", decGA, ga(5, uint64(1<<63)), ErrWrongType, StatusCBORUnexpectedType},
		{"getAssertion credential null", decGA, ga(1, nullMarker{}), ErrWrongType, StatusCBORUnexpectedType},
		{"getAssertion signature as empty array", decGA, ga(3, []any{}), ErrWrongType, StatusCBORUnexpectedType},
		{"getInfo aaguid as array", decGI, gi(3, bytesAsArray(make([]byte, 16))), ErrWrongType, StatusCBORUnexpectedType},
		{"makeCredential largeBlobKey as array", decMC, mc(5, []any{1}), ErrWrongType, StatusCBORUnexpectedType},
		{"getInfo no versions", decGI, gi(1, nil), ErrMissingField, StatusMissingParameter},
		{"getInfo empty versions", decGI, gi(1, []string{}), ErrInvalidValue, StatusInvalidParameter},
		{"getInfo versions text", decGI, gi(1, "FIDO_2_0"), ErrWrongType, StatusCBORUnexpectedType},
		{"getInfo no aaguid", decGI, gi(3, nil), ErrMissingField, StatusMissingParameter},
		{"getInfo short aaguid", decGI, gi(3, make([]byte, 15)), ErrInvalidValue, StatusInvalidParameter},
		{"getInfo algorithm without alg", decGI, gi(10, []any{map[string]any{"type": "public-key"}}), ErrMissingField, StatusMissingParameter},
		{"getInfo options not bool", decGI, gi(4, map[string]any{"rk": "yes"}), ErrWrongType, StatusCBORUnexpectedType},
		{"getInfo maxMsgSize negative", decGI, gi(5, -1), ErrWrongType, StatusCBORUnexpectedType},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantSyntaxErr(t, tt.decode(tt.in), tt.sentinel, tt.status)
		})
	}
}

func TestDecodeResponsesForwardCompatible(t *testing.T) {
	// A newer key (CTAP 2.2) adds getInfo keys this package does not know.
	in := MustMarshal(map[int]any{
		1:    []string{"FIDO_2_0", "FIDO_2_2"},
		3:    make([]byte, 16),
		0x16: []string{"packed", "none"},
		0x18: true,
		0x19: []byte{1, 2},
	})
	r, err := DecodeGetInfoResponse(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Versions) != 2 {
		t.Errorf("versions %v", r.Versions)
	}
	checkRoundTrip(t, in, r, DecodeGetInfoResponse)

	// Credential may be absent (CTAP 2.1 §6.2), and must then stay absent.
	ga := &GetAssertionResponse{AuthData: []byte{1}, Signature: []byte{2}}
	enc := MustMarshal(ga)
	if !bytes.Equal(enc, unhex(t, "a2 02 41 01 03 41 02")) {
		t.Errorf("encoded %x", enc)
	}
}

func TestEncodeRequest(t *testing.T) {
	tests := []struct {
		name   string
		cmd    Command
		params any
		want   []byte
	}{
		{"nil", CmdGetInfo, nil, []byte{0x04}},
		{"typed nil", CmdReset, (*MakeCredentialRequest)(nil), []byte{0x07}},
		{"nil map", CmdSelection, map[int]any(nil), []byte{0x0B}},
		{"params", CmdClientPIN, map[int]any{1: 2, 2: 1}, unhex(t, "06 a2 01 02 02 01")},
		{"empty map", CmdConfig, map[int]any{}, unhex(t, "0d a0")},
		{"makeCredential", CmdMakeCredential, minimalMakeCredentialRequest(), append([]byte{1}, MustMarshal(minimalMakeCredentialRequest())...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := EncodeRequest(tt.cmd, tt.params)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, tt.want) {
				t.Errorf("EncodeRequest = %x, want %x", got, tt.want)
			}
		})
	}
	t.Run("unencodable", func(t *testing.T) {
		if _, err := EncodeRequest(CmdMakeCredential, make(chan int)); err == nil {
			t.Error("no error for a channel")
		}
	})
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name   string
		in     []byte
		status Status
		body   []byte
	}{
		{"ok, no body", []byte{0}, StatusOK, []byte{}},
		{"ok with body", []byte{0, 0xa0}, StatusOK, []byte{0xa0}},
		{"error", []byte{byte(StatusPINInvalid)}, StatusPINInvalid, []byte{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, body, err := ParseResponse(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if st != tt.status || !bytes.Equal(body, tt.body) {
				t.Errorf("got %v %x, want %v %x", st, body, tt.status, tt.body)
			}
		})
	}
	t.Run("empty", func(t *testing.T) {
		_, _, err := ParseResponse(nil)
		wantSyntaxErr(t, err, ErrMalformed, StatusInvalidCBOR)
	})
}

func TestEncodeResponse(t *testing.T) {
	if got := EncodeResponse(nil); !bytes.Equal(got, []byte{0}) {
		t.Errorf("EncodeResponse(nil) = %x", got)
	}
	info := sampleGetInfoResponse()
	msg := EncodeResponse(info)
	st, body, err := ParseResponse(msg)
	if err != nil || st != StatusOK {
		t.Fatalf("ParseResponse: %v %v", st, err)
	}
	got, err := DecodeGetInfoResponse(body)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, info) {
		t.Errorf("got %+v, want %+v", got, info)
	}
	defer func() {
		if recover() == nil {
			t.Error("EncodeResponse of a channel did not panic")
		}
	}()
	EncodeResponse(make(chan int))
}

func TestDecodeKeepsNoAlias(t *testing.T) {
	in := MustMarshal(sampleMakeCredentialRequest())
	r, err := DecodeMakeCredentialRequest(in)
	if err != nil {
		t.Fatal(err)
	}
	for i := range in {
		in[i] = 0
	}
	if !bytes.Equal(r.ClientDataHash, hash32(1)) || !bytes.Equal(r.Extensions["credProtect"], cbor.RawMessage{0x02}) {
		t.Error("decoded request aliases its input")
	}
}

func TestStatusErrorsMatch(t *testing.T) {
	// A CTAP status wrapped by a caller stays matchable.
	err := errors.Join(errors.New("context"), StatusNoCredentials)
	if !errors.Is(err, StatusNoCredentials) || errors.Is(err, StatusPINInvalid) {
		t.Error("errors.Is on Status")
	}
}
