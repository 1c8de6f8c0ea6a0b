package ctap

import (
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/fidokit/fidokit/internal/pinuv"
	"github.com/fxamacker/cbor/v2"
)

func uint64p(v uint64) *uint64 { return &v }

// Sample messages, shared with the fuzz seeds.

func sampleKeyAgreement(tb testing.TB) cbor.RawMessage {
	tb.Helper()
	ka, err := EncodeKeyAgreement(testECDHKey(tb).PublicKey())
	if err != nil {
		tb.Fatal(err)
	}
	return ka
}

func sampleClientPINRequest(tb testing.TB) *ClientPINRequest {
	tb.Helper()
	return &ClientPINRequest{
		PinUvAuthProtocol: 2,
		SubCommand:        ClientPINGetPinUvAuthTokenUsingPinWithPermissions,
		KeyAgreement:      sampleKeyAgreement(tb),
		PinHashEnc:        bytes.Repeat([]byte{0x61}, 32),
		Permissions:       uint64(pinuv.PermMakeCredential | pinuv.PermGetAssertion),
		RPID:              "example.com",
	}
}

func sampleClientPINResponse(tb testing.TB) *ClientPINResponse {
	tb.Helper()
	return &ClientPINResponse{
		KeyAgreement:   sampleKeyAgreement(tb),
		PinUvAuthToken: bytes.Repeat([]byte{0x33}, 48),
		PinRetries:     uint64p(0),
		UVRetries:      uint64p(3),
	}
}

func sampleCredMgmtRequest() *CredMgmtRequest {
	r := &CredMgmtRequest{SubCommand: CredMgmtUpdateUserInformation, PinUvAuthProtocol: 1, PinUvAuthParam: bytes.Repeat([]byte{9}, 16)}
	r.SetParams(&CredMgmtParams{
		CredentialID: &CredentialDescriptor{Type: "public-key", ID: []byte{1, 2, 3}},
		User:         &UserEntity{ID: []byte{4}, Name: "carol", DisplayName: "Carol"},
	})
	return r
}

func sampleCredMgmtResponse(tb testing.TB) *CredMgmtResponse {
	tb.Helper()
	return &CredMgmtResponse{
		User:             &UserEntity{ID: []byte{4}, Name: "carol"},
		CredentialID:     &CredentialDescriptor{Type: "public-key", ID: []byte{1, 2, 3}},
		PublicKey:        mustCOSE(tb, &testP256Key(tb).PublicKey),
		TotalCredentials: 2,
		CredProtect:      CredProtectUVRequired,
		LargeBlobKey:     hash32(0x4B),
	}
}

func sampleConfigRequest(tb testing.TB) *ConfigRequest {
	tb.Helper()
	r := &ConfigRequest{SubCommand: ConfigSetMinPINLength, PinUvAuthProtocol: 2, PinUvAuthParam: hash32(0x0C)}
	if err := r.SetParams(&SetMinPINLengthParams{NewMinPINLength: 6, MinPinLengthRPIDs: []string{"example.com"}, ForceChangePin: true}); err != nil {
		tb.Fatal(err)
	}
	return r
}

func sampleLargeBlobsSet() *LargeBlobsRequest {
	arr := InitialLargeBlobArray()
	return &LargeBlobsRequest{Set: arr, Offset: 0, Length: uint64(len(arr)), PinUvAuthParam: hash32(0x1B), PinUvAuthProtocol: 2}
}

func TestClientPINGolden(t *testing.T) {
	tests := []struct {
		name string
		v    any
		hex  string
	}{
		{"getPINRetries", &ClientPINRequest{PinUvAuthProtocol: 2, SubCommand: ClientPINGetPINRetries}, "a2 01 02 02 01"},
		{
			"getPinUvAuthTokenUsingPinWithPermissions",
			&ClientPINRequest{PinUvAuthProtocol: 2, SubCommand: ClientPINGetPinUvAuthTokenUsingPinWithPermissions,
				KeyAgreement: cbor.RawMessage{0xa1, 0x01, 0x02}, PinHashEnc: []byte{1, 2}, Permissions: 3, RPID: "a.b"},
			"a6 01 02 02 09 03 a1 01 02 06 42 01 02 09 03 0a 63 61 2e 62",
		},
		{"clientPIN response", &ClientPINResponse{PinRetries: uint64p(0), PowerCycleState: true}, "a2 03 00 04 f5"},
		{
			"credMgmt deleteCredential",
			func() any {
				r := &CredMgmtRequest{SubCommand: CredMgmtDeleteCredential, PinUvAuthProtocol: 1, PinUvAuthParam: []byte{3, 4}}
				r.SetParams(&CredMgmtParams{CredentialID: &CredentialDescriptor{Type: "public-key", ID: []byte{1, 2}}})
				return r
			}(),
			// {1: 6, 2: {2: {"id": h'0102', "type": "public-key"}}, 3: 1, 4: h'0304'}
			"a4 01 06 02 a1 02 a2 62 69 64 42 01 02 64 74 79 70 65 6a 70 75 62 6c 69 63 2d 6b 65 79 03 01 04 42 03 04",
		},
		{"credMgmt getCredsMetadata", &CredMgmtRequest{SubCommand: CredMgmtGetCredsMetadata, PinUvAuthProtocol: 2, PinUvAuthParam: []byte{0}}, "a3 01 01 03 02 04 41 00"},
		{"credMgmt response", &CredMgmtResponse{ExistingResidentCredentialsCount: uint64p(0), MaxPossibleRemainingResidentCredentialsCount: uint64p(25)}, "a2 01 00 02 18 19"},
		{
			"config setMinPINLength",
			func() any {
				r := &ConfigRequest{SubCommand: ConfigSetMinPINLength, PinUvAuthProtocol: 2, PinUvAuthParam: []byte{1, 2}}
				if err := r.SetParams(&SetMinPINLengthParams{NewMinPINLength: 6, MinPinLengthRPIDs: []string{"example.com"}, ForceChangePin: true}); err != nil {
					t.Fatal(err)
				}
				return r
			}(),
			"a4 01 03 02 a3 01 06 02 81 6b 65 78 61 6d 70 6c 65 2e 63 6f 6d 03 f5 03 02 04 42 01 02",
		},
		{"config toggleAlwaysUv", &ConfigRequest{SubCommand: ConfigToggleAlwaysUv}, "a1 01 02"},
		{"largeBlobs get", &LargeBlobsRequest{Get: uint64p(64), Offset: 0}, "a2 01 18 40 03 00"},
		{"largeBlobs set", &LargeBlobsRequest{Set: []byte{1, 2}, Offset: 0, Length: 17, PinUvAuthParam: []byte{0xaa, 0xbb}, PinUvAuthProtocol: 2}, "a5 02 42 01 02 03 00 04 11 05 42 aa bb 06 02"},
		{"largeBlobs set empty fragment", &LargeBlobsRequest{Set: []byte{}, Offset: 5}, "a2 02 40 03 05"},
		{"largeBlobs response", &LargeBlobsResponse{Config: []byte{}}, "a1 01 40"},
		{"hmac-secret input", &HMACSecretInput{KeyAgreement: cbor.RawMessage{0xa0}, SaltEnc: []byte{1}, SaltAuth: []byte{2}, PinUvAuthProtocol: 2}, "a4 01 a0 02 41 01 03 41 02 04 02"},
		{"makeCredential extensions", (&MakeCredentialExtensions{HMACSecret: true, CredProtect: 2, CredBlob: []byte{7}, MinPinLength: true, LargeBlobKey: true}).Map(),
			// {"credBlob": h'07', "credProtect": 2, "hmac-secret": true, "largeBlobKey": true, "minPinLength": true}:
			// keys sort by length, then bytewise, so "credProtect" precedes "hmac-secret".
			"a5 68 63 72 65 64 42 6c 6f 62 41 07 6b 63 72 65 64 50 72 6f 74 65 63 74 02 6b 68 6d 61 63 2d 73 65 63 72 65 74 f5 6c 6c 61 72 67 65 42 6c 6f 62 4b 65 79 f5 6c 6d 69 6e 50 69 6e 4c 65 6e 67 74 68 f5"},
		{"makeCredential outputs", cbor.RawMessage((&MakeCredentialExtensionOutputs{CredBlob: new(bool), MinPinLength: 4}).Marshal()),
			// {"credBlob": false, "minPinLength": 4}
			"a2 68 63 72 65 64 42 6c 6f 62 f4 6c 6d 69 6e 50 69 6e 4c 65 6e 67 74 68 04"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if want := unhex(t, tc.hex); !bytes.Equal(got, want) {
				t.Fatalf("encoded %x\n         want %x", got, want)
			}
		})
	}
}

func TestAuthMessages(t *testing.T) {
	ff := strings.Repeat("ff", 32)

	cm := &CredMgmtRequest{SubCommand: CredMgmtDeleteCredential}
	cm.SetParams(&CredMgmtParams{CredentialID: &CredentialDescriptor{Type: "public-key", ID: []byte{1, 2}}})
	if got, want := cm.AuthMessage(), unhex(t, "06 a1 02 a2 62 69 64 42 01 02 64 74 79 70 65 6a 70 75 62 6c 69 63 2d 6b 65 79"); !bytes.Equal(got, want) {
		t.Errorf("credMgmt AuthMessage = %x, want %x", got, want)
	}
	if got := (&CredMgmtRequest{SubCommand: CredMgmtGetCredsMetadata}).AuthMessage(); !bytes.Equal(got, []byte{1}) {
		t.Errorf("getCredsMetadata AuthMessage = %x, want 01", got)
	}

	cfg := sampleConfigRequest(t)
	if got, want := cfg.AuthMessage(), unhex(t, ff+"0d 03 a3 01 06 02 81 6b 65 78 61 6d 70 6c 65 2e 63 6f 6d 03 f5"); !bytes.Equal(got, want) {
		t.Errorf("config AuthMessage = %x, want %x", got, want)
	}
	if got, want := (&ConfigRequest{SubCommand: ConfigToggleAlwaysUv}).AuthMessage(), unhex(t, ff+"0d 02"); !bytes.Equal(got, want) {
		t.Errorf("toggleAlwaysUv AuthMessage = %x, want %x", got, want)
	}

	set := []byte("fragment")
	h := sha256.Sum256(set)
	lb := &LargeBlobsRequest{Set: set, Offset: 0x01020304}
	if got, want := lb.AuthMessage(), append(unhex(t, ff+"0c 00 04 03 02 01"), h[:]...); !bytes.Equal(got, want) {
		t.Errorf("largeBlobs AuthMessage = %x, want %x", got, want)
	}

	cp := &ClientPINRequest{SubCommand: ClientPINChangePIN, NewPinEnc: []byte{1, 2}, PinHashEnc: []byte{3}}
	if got := cp.AuthMessage(); !bytes.Equal(got, []byte{1, 2, 3}) {
		t.Errorf("changePIN AuthMessage = %x", got)
	}
	if got := cp.AuthMessage(); &got[0] == &cp.NewPinEnc[0] {
		t.Error("AuthMessage aliases NewPinEnc")
	}
	cp.SubCommand = ClientPINSetPIN
	if got := cp.AuthMessage(); !bytes.Equal(got, []byte{1, 2}) {
		t.Errorf("setPIN AuthMessage = %x", got)
	}
	cp.SubCommand = ClientPINGetPINRetries
	if got := cp.AuthMessage(); got != nil {
		t.Errorf("getPINRetries AuthMessage = %x", got)
	}
}

// TestAuthenticatedRoundTrip plays both ends: a client authenticates a
// request with pinuv over AuthMessage, and the authenticator verifies the
// decoded request over the bytes it received.
func TestAuthenticatedRoundTrip(t *testing.T) {
	token := hash32(0x70)
	for _, p := range []pinuv.Protocol{pinuv.ProtocolOne{}, pinuv.ProtocolTwo{}} {
		cm := sampleCredMgmtRequest()
		cm.PinUvAuthProtocol = p.Version()
		cm.PinUvAuthParam = p.Authenticate(token, cm.AuthMessage())
		got, err := DecodeCredMgmtRequest(MustMarshal(cm))
		if err != nil {
			t.Fatal(err)
		}
		if !p.Verify(token, got.AuthMessage(), got.PinUvAuthParam) {
			t.Errorf("protocol %d: credMgmt pinUvAuthParam does not verify", p.Version())
		}
		// Changing the user changes the message.
		got.SetParams(&CredMgmtParams{CredentialID: got.Params.CredentialID, User: &UserEntity{ID: []byte{5}}})
		if p.Verify(token, got.AuthMessage(), got.PinUvAuthParam) {
			t.Errorf("protocol %d: verified after the parameters changed", p.Version())
		}

		cfg := sampleConfigRequest(t)
		cfg.PinUvAuthParam = p.Authenticate(token, cfg.AuthMessage())
		gotCfg, err := DecodeConfigRequest(MustMarshal(cfg))
		if err != nil {
			t.Fatal(err)
		}
		if !p.Verify(token, gotCfg.AuthMessage(), gotCfg.PinUvAuthParam) {
			t.Errorf("protocol %d: config pinUvAuthParam does not verify", p.Version())
		}

		lb := sampleLargeBlobsSet()
		lb.PinUvAuthParam = p.Authenticate(token, lb.AuthMessage())
		gotLB, err := DecodeLargeBlobsRequest(MustMarshal(lb))
		if err != nil {
			t.Fatal(err)
		}
		if !p.Verify(token, gotLB.AuthMessage(), gotLB.PinUvAuthParam) {
			t.Errorf("protocol %d: largeBlobs pinUvAuthParam does not verify", p.Version())
		}
	}
}

// TestCredMgmtKeepsReceivedParams checks that the decoder keeps the params
// bytes it received, which the authenticator must authenticate.
func TestCredMgmtKeepsReceivedParams(t *testing.T) {
	in := unhex(t, "a4 01 06 02 a1 02 a2 62 69 64 42 01 02 64 74 79 70 65 6a 70 75 62 6c 69 63 2d 6b 65 79 03 01 04 42 03 04")
	r, err := DecodeCredMgmtRequest(in)
	if err != nil {
		t.Fatal(err)
	}
	if want := in[4:29]; !bytes.Equal(r.SubCommandParams, want) {
		t.Fatalf("SubCommandParams = %x, want %x", r.SubCommandParams, want)
	}
	want := &CredMgmtParams{CredentialID: &CredentialDescriptor{Type: "public-key", ID: []byte{1, 2}}}
	if !reflect.DeepEqual(r.Params, want) {
		t.Fatalf("Params = %+v, want %+v", r.Params, want)
	}
}

func TestClientPINRoundTrips(t *testing.T) {
	check := func(name string, v any, decode func([]byte) (any, error)) {
		t.Run(name, func(t *testing.T) {
			enc := MustMarshal(v)
			got, err := decode(enc)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, v) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, v)
			}
		})
	}
	wrap := func(f any) func([]byte) (any, error) {
		fv := reflect.ValueOf(f)
		return func(b []byte) (any, error) {
			out := fv.Call([]reflect.Value{reflect.ValueOf(b)})
			err, _ := out[1].Interface().(error)
			return out[0].Interface(), err
		}
	}
	check("clientPIN request", sampleClientPINRequest(t), wrap(DecodeClientPINRequest))
	check("clientPIN response", sampleClientPINResponse(t), wrap(DecodeClientPINResponse))
	check("credMgmt request", sampleCredMgmtRequest(), wrap(DecodeCredMgmtRequest))
	check("credMgmt response", sampleCredMgmtResponse(t), wrap(DecodeCredMgmtResponse))
	check("credMgmt response RP", &CredMgmtResponse{RP: &RPEntity{ID: "example.com"}, RPIDHash: hash32(1), TotalRPs: 1}, wrap(DecodeCredMgmtResponse))
	check("config request", sampleConfigRequest(t), wrap(DecodeConfigRequest))
	check("config vendorPrototype", func() *ConfigRequest {
		r := &ConfigRequest{SubCommand: ConfigVendorPrototype}
		if err := r.SetParams(map[int]uint64{1: 0x1234}); err != nil {
			t.Fatal(err)
		}
		return r
	}(), wrap(DecodeConfigRequest))
	check("largeBlobs get", &LargeBlobsRequest{Get: uint64p(0), Offset: 17}, wrap(DecodeLargeBlobsRequest))
	check("largeBlobs set", sampleLargeBlobsSet(), wrap(DecodeLargeBlobsRequest))
	check("largeBlobs response", &LargeBlobsResponse{Config: InitialLargeBlobArray()}, wrap(DecodeLargeBlobsResponse))
	check("hmac-secret input", &HMACSecretInput{KeyAgreement: sampleKeyAgreement(t), SaltEnc: hash32(1), SaltAuth: hash32(2)}, wrap(DecodeHMACSecretInput))
}

func TestKeyAgreement(t *testing.T) {
	k := testECDHKey(t).PublicKey()
	ka, err := EncodeKeyAgreement(k)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseKeyAgreement(ka)
	if err != nil || !got.Equal(k) {
		t.Fatalf("ParseKeyAgreement = %v, %v", got, err)
	}
	// alg -25 with kty 2, crv 1 (CTAP 2.1 §6.5.6 getPublicKey).
	if g := generic(t, ka).(map[any]any); g[uint64(1)] != uint64(2) || g[uint64(3)] != int64(-25) || g[int64(-1)] != uint64(1) {
		t.Fatalf("key agreement COSE key %v", g)
	}
	if _, err := EncodeKeyAgreement(nil); err == nil {
		t.Error("encoded a nil key")
	}
	x, err := ecdh.X25519().NewPrivateKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := EncodeKeyAgreement(x.PublicKey()); err == nil {
		t.Error("encoded an X25519 key")
	}

	// An ES256 key is a valid COSE key but not a key agreement key.
	_, err = ParseKeyAgreement(mustCOSE(t, &testP256Key(t).PublicKey))
	wantSyntaxErr(t, err, ErrInvalidValue, StatusInvalidParameter)
	// A point off the curve.
	bad := generic(t, ka).(map[any]any)
	y := bytes.Clone(bad[int64(-3)].([]byte))
	y[31] ^= 1
	_, err = ParseKeyAgreement(MustMarshal(map[int]any{1: 2, 3: -25, -1: 1, -2: bad[int64(-2)], -3: y}))
	wantSyntaxErr(t, err, ErrInvalidValue, StatusInvalidParameter)
	_, err = ParseKeyAgreement([]byte{0xa0})
	wantSyntaxErr(t, err, ErrMissingField, StatusMissingParameter)
}

func TestDecodeClientPINErrors(t *testing.T) {
	ka := sampleKeyAgreement(t)
	base := map[int]any{1: 2, 2: 9, 3: ka, 6: []byte{1}, 9: 3}
	tests := []struct {
		name     string
		decode   func([]byte) error
		in       []byte
		sentinel error
		status   Status
	}{
		{"request: no subCommand", decodeErr(DecodeClientPINRequest), MustMarshal(with(base, 2, nil)), ErrMissingField, StatusMissingParameter},
		{"request: subCommand 0", decodeErr(DecodeClientPINRequest), MustMarshal(with(base, 2, 0)), ErrMissingField, StatusMissingParameter},
		{"request: subCommand text", decodeErr(DecodeClientPINRequest), MustMarshal(with(base, 2, "setPIN")), ErrWrongType, StatusCBORUnexpectedType},
		{"request: negative protocol", decodeErr(DecodeClientPINRequest), MustMarshal(with(base, 1, -1)), ErrWrongType, StatusCBORUnexpectedType},
		{"request: keyAgreement bytes", decodeErr(DecodeClientPINRequest), MustMarshal(with(base, 3, []byte{1})), ErrWrongType, StatusCBORUnexpectedType},
		{"request: pinHashEnc array", decodeErr(DecodeClientPINRequest), MustMarshal(with(base, 6, []int{1})), ErrWrongType, StatusCBORUnexpectedType},
		{"request: rpId bytes", decodeErr(DecodeClientPINRequest), MustMarshal(with(base, 10, []byte("x"))), ErrWrongType, StatusCBORUnexpectedType},
		{"request: permissions null", decodeErr(DecodeClientPINRequest), MustMarshal(with(base, 9, nullMarker{})), ErrWrongType, StatusCBORUnexpectedType},
		{"request: not a map", decodeErr(DecodeClientPINRequest), MustMarshal([]int{1, 2}), ErrWrongType, StatusCBORUnexpectedType},
		{"request: trailing byte", decodeErr(DecodeClientPINRequest), append(MustMarshal(base), 0), ErrTrailingBytes, StatusInvalidCBOR},
		{"request: non-canonical", decodeErr(DecodeClientPINRequest), unhex(t, "a2 02 01 01 02"), ErrNonCanonical, StatusInvalidCBOR},
		{"response: pinRetries negative", decodeErr(DecodeClientPINResponse), MustMarshal(map[int]any{3: -1}), ErrWrongType, StatusCBORUnexpectedType},
		{"response: keyAgreement text", decodeErr(DecodeClientPINResponse), MustMarshal(map[int]any{1: "k"}), ErrWrongType, StatusCBORUnexpectedType},
		{"response: powerCycleState int", decodeErr(DecodeClientPINResponse), MustMarshal(map[int]any{4: 1}), ErrWrongType, StatusCBORUnexpectedType},
		{"response: empty", decodeErr(DecodeClientPINResponse), nil, ErrMalformed, StatusInvalidCBOR},
	}
	runErrTests(t, tests)
}

func TestDecodeCredMgmtErrors(t *testing.T) {
	desc := map[string]any{"type": "public-key", "id": []byte{1}}
	base := map[int]any{1: 6, 2: map[int]any{2: desc}, 3: 1, 4: []byte{1}}
	tests := []struct {
		name     string
		decode   func([]byte) error
		in       []byte
		sentinel error
		status   Status
	}{
		{"no subCommand", decodeErr(DecodeCredMgmtRequest), MustMarshal(with(base, 1, nil)), ErrMissingField, StatusMissingParameter},
		{"subCommand 256", decodeErr(DecodeCredMgmtRequest), MustMarshal(with(base, 1, 0x106)), ErrInvalidValue, StatusInvalidParameter},
		{"params not a map", decodeErr(DecodeCredMgmtRequest), MustMarshal(with(base, 2, []any{desc})), ErrWrongType, StatusCBORUnexpectedType},
		{"delete without params", decodeErr(DecodeCredMgmtRequest), MustMarshal(with(base, 2, nil)), ErrMissingField, StatusMissingParameter},
		{"delete without credentialID", decodeErr(DecodeCredMgmtRequest), MustMarshal(with(base, 2, map[int]any{1: hash32(1)})), ErrMissingField, StatusMissingParameter},
		{"credentialID without id", decodeErr(DecodeCredMgmtRequest), MustMarshal(with(base, 2, map[int]any{2: map[string]any{"type": "public-key"}})), ErrMissingField, StatusMissingParameter},
		{"credentialID bytes", decodeErr(DecodeCredMgmtRequest), MustMarshal(with(base, 2, map[int]any{2: []byte{1}})), ErrWrongType, StatusCBORUnexpectedType},
		{"update without user", decodeErr(DecodeCredMgmtRequest), MustMarshal(with(base, 1, 7)), ErrMissingField, StatusMissingParameter},
		{"user without id", decodeErr(DecodeCredMgmtRequest), MustMarshal(with(with(base, 1, 7), 2, map[int]any{2: desc, 3: map[string]any{"name": "x"}})), ErrMissingField, StatusMissingParameter},
		{"enumerate without rpIDHash", decodeErr(DecodeCredMgmtRequest), MustMarshal(with(with(base, 1, 4), 2, nil)), ErrMissingField, StatusMissingParameter},
		{"short rpIDHash", decodeErr(DecodeCredMgmtRequest), MustMarshal(with(with(base, 1, 4), 2, map[int]any{1: []byte{1}})), ErrInvalidValue, StatusInvalidParameter},
		{"params with null", decodeErr(DecodeCredMgmtRequest), MustMarshal(with(base, 2, map[int]any{2: desc, 3: nullMarker{}})), ErrWrongType, StatusCBORUnexpectedType},
		{"params non-canonical", decodeErr(DecodeCredMgmtRequest), unhex(t, "a2 01 04 02 a1 01 58 01 00"), ErrNonCanonical, StatusInvalidCBOR},
		{"response: rp without id", decodeErr(DecodeCredMgmtResponse), MustMarshal(map[int]any{3: map[string]any{}}), ErrMissingField, StatusMissingParameter},
		{"response: user without id", decodeErr(DecodeCredMgmtResponse), MustMarshal(map[int]any{6: map[string]any{"name": "x"}}), ErrMissingField, StatusMissingParameter},
		{"response: credentialID without type", decodeErr(DecodeCredMgmtResponse), MustMarshal(map[int]any{7: map[string]any{"id": []byte{1}}}), ErrMissingField, StatusMissingParameter},
		{"response: publicKey bytes", decodeErr(DecodeCredMgmtResponse), MustMarshal(map[int]any{8: []byte{1}}), ErrWrongType, StatusCBORUnexpectedType},
		{"response: rpIDHash short", decodeErr(DecodeCredMgmtResponse), MustMarshal(map[int]any{4: []byte{1}}), ErrInvalidValue, StatusInvalidParameter},
		{"response: count text", decodeErr(DecodeCredMgmtResponse), MustMarshal(map[int]any{1: "1"}), ErrWrongType, StatusCBORUnexpectedType},
	}
	runErrTests(t, tests)
}

func TestDecodeConfigErrors(t *testing.T) {
	base := map[int]any{1: 3, 2: map[int]any{1: 6}, 3: 2, 4: []byte{1}}
	tests := []struct {
		name     string
		decode   func([]byte) error
		in       []byte
		sentinel error
		status   Status
	}{
		{"no subCommand", decodeErr(DecodeConfigRequest), MustMarshal(with(base, 1, nil)), ErrMissingField, StatusMissingParameter},
		{"subCommand 0x100", decodeErr(DecodeConfigRequest), MustMarshal(with(base, 1, 0x100)), ErrInvalidValue, StatusInvalidParameter},
		{"params array", decodeErr(DecodeConfigRequest), MustMarshal(with(base, 2, []int{6})), ErrWrongType, StatusCBORUnexpectedType},
		{"minPINLength text", decodeErr(DecodeConfigRequest), MustMarshal(with(base, 2, map[int]any{1: "6"})), ErrWrongType, StatusCBORUnexpectedType},
		{"rpIDs not text", decodeErr(DecodeConfigRequest), MustMarshal(with(base, 2, map[int]any{2: []any{1}})), ErrWrongType, StatusCBORUnexpectedType},
		{"forceChangePin int", decodeErr(DecodeConfigRequest), MustMarshal(with(base, 2, map[int]any{3: 1})), ErrWrongType, StatusCBORUnexpectedType},
		{"pinUvAuthParam text", decodeErr(DecodeConfigRequest), MustMarshal(with(base, 4, "x")), ErrWrongType, StatusCBORUnexpectedType},
	}
	runErrTests(t, tests)
	// Parameters of other subcommands stay raw.
	r, err := DecodeConfigRequest(MustMarshal(with(base, 1, 0xff)))
	if err != nil || r.MinPINLength != nil || r.SubCommandParams == nil {
		t.Fatalf("vendorPrototype: %+v, %v", r, err)
	}
	if err := (&ConfigRequest{}).SetParams([]int{1}); err == nil {
		t.Error("SetParams accepted an array")
	}
}

func TestDecodeLargeBlobsErrors(t *testing.T) {
	get := map[int]any{1: 32, 3: 0}
	set := map[int]any{2: []byte{1}, 3: 0, 4: 17, 5: []byte{1}, 6: 2}
	tests := []struct {
		name     string
		decode   func([]byte) error
		in       []byte
		sentinel error
		status   Status
	}{
		{"no offset", decodeErr(DecodeLargeBlobsRequest), MustMarshal(with(get, 3, nil)), ErrMissingField, StatusMissingParameter},
		{"offset over 32 bits", decodeErr(DecodeLargeBlobsRequest), MustMarshal(with(get, 3, uint64(1)<<32)), ErrInvalidValue, StatusInvalidParameter},
		{"negative offset", decodeErr(DecodeLargeBlobsRequest), MustMarshal(with(get, 3, -1)), ErrWrongType, StatusCBORUnexpectedType},
		{"get and set", decodeErr(DecodeLargeBlobsRequest), MustMarshal(with(set, 1, 5)), ErrInvalidValue, StatusInvalidParameter},
		{"neither", decodeErr(DecodeLargeBlobsRequest), MustMarshal(map[int]any{3: 0}), ErrInvalidValue, StatusInvalidParameter},
		{"get with length", decodeErr(DecodeLargeBlobsRequest), MustMarshal(with(get, 4, 17)), ErrInvalidValue, StatusInvalidParameter},
		{"set at 0 without length", decodeErr(DecodeLargeBlobsRequest), MustMarshal(with(set, 4, nil)), ErrInvalidValue, StatusInvalidParameter},
		{"set at 5 with length", decodeErr(DecodeLargeBlobsRequest), MustMarshal(with(set, 3, 5)), ErrInvalidValue, StatusInvalidParameter},
		{"set text", decodeErr(DecodeLargeBlobsRequest), MustMarshal(with(set, 2, "x")), ErrWrongType, StatusCBORUnexpectedType},
		{"get bytes", decodeErr(DecodeLargeBlobsRequest), MustMarshal(with(get, 1, []byte{1})), ErrWrongType, StatusCBORUnexpectedType},
		{"response: no config", decodeErr(DecodeLargeBlobsResponse), MustMarshal(map[int]any{2: []byte{1}}), ErrMissingField, StatusMissingParameter},
		{"response: config text", decodeErr(DecodeLargeBlobsResponse), MustMarshal(map[int]any{1: "x"}), ErrWrongType, StatusCBORUnexpectedType},
	}
	runErrTests(t, tests)
}

func TestDecodeHMACSecretInputErrors(t *testing.T) {
	base := map[int]any{1: map[int]any{1: 2}, 2: hash32(1), 3: hash32(2)}
	tests := []struct {
		name     string
		decode   func([]byte) error
		in       []byte
		sentinel error
		status   Status
	}{
		{"no keyAgreement", decodeErr(DecodeHMACSecretInput), MustMarshal(with(base, 1, nil)), ErrMissingField, StatusMissingParameter},
		{"no saltEnc", decodeErr(DecodeHMACSecretInput), MustMarshal(with(base, 2, nil)), ErrMissingField, StatusMissingParameter},
		{"no saltAuth", decodeErr(DecodeHMACSecretInput), MustMarshal(with(base, 3, nil)), ErrMissingField, StatusMissingParameter},
		{"keyAgreement bytes", decodeErr(DecodeHMACSecretInput), MustMarshal(with(base, 1, []byte{1})), ErrWrongType, StatusCBORUnexpectedType},
		{"saltEnc text", decodeErr(DecodeHMACSecretInput), MustMarshal(with(base, 2, "s")), ErrWrongType, StatusCBORUnexpectedType},
		{"protocol negative", decodeErr(DecodeHMACSecretInput), MustMarshal(with(base, 4, -2)), ErrWrongType, StatusCBORUnexpectedType},
	}
	runErrTests(t, tests)
}

// decodeErr adapts a decoder to return only its error, checking that a
// failed decode returns no value.
func decodeErr[T any](f func([]byte) (*T, error)) func([]byte) error {
	return func(b []byte) error {
		v, err := f(b)
		if err != nil && v != nil {
			return errors.New("decoder returned a value with an error")
		}
		return err
	}
}

func runErrTests(t *testing.T, tests []struct {
	name     string
	decode   func([]byte) error
	in       []byte
	sentinel error
	status   Status
}) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantSyntaxErr(t, tc.decode(tc.in), tc.sentinel, tc.status)
		})
	}
}

func TestLargeBlobArray(t *testing.T) {
	// The spec's initial value (CTAP 2.1 §6.10).
	initial := unhex(t, "8076be8b528d0075f7aae98d6fa57a6d3c")
	if got := InitialLargeBlobArray(); !bytes.Equal(got, initial) {
		t.Fatalf("InitialLargeBlobArray = %x, want %x", got, initial)
	}
	if err := VerifyLargeBlobArray(initial); err != nil {
		t.Fatal(err)
	}
	entries, err := DecodeLargeBlobArray(initial)
	if err != nil || entries == nil || len(entries) != 0 {
		t.Fatalf("DecodeLargeBlobArray(initial) = %v, %v", entries, err)
	}

	blob := &LargeBlob{Ciphertext: bytes.Repeat([]byte{1}, 20), Nonce: bytes.Repeat([]byte{2}, 12), OrigSize: 5}
	other := cbor.RawMessage(MustMarshal("not a large-blob map")) // another platform's entry, kept as is
	ser := SerializeLargeBlobArray([]cbor.RawMessage{MustMarshal(blob), other})
	arr := ser[:len(ser)-16]
	h := sha256.Sum256(arr)
	if !bytes.Equal(ser[len(arr):], h[:16]) {
		t.Fatalf("trailing hash %x, want %x", ser[len(arr):], h[:16])
	}
	if arr[0] != 0x82 {
		t.Fatalf("array header %#x, want 0x82", arr[0])
	}
	entries, err = DecodeLargeBlobArray(ser)
	if err != nil || len(entries) != 2 || !bytes.Equal(entries[1], other) {
		t.Fatalf("DecodeLargeBlobArray = %x, %v", entries, err)
	}
	got, err := DecodeLargeBlob(entries[0])
	if err != nil || !reflect.DeepEqual(got, blob) {
		t.Fatalf("DecodeLargeBlob = %+v, %v", got, err)
	}
	_, err = DecodeLargeBlob(entries[1])
	wantSyntaxErr(t, err, ErrWrongType, StatusCBORUnexpectedType)
	if !bytes.Equal(SerializeLargeBlobArray(entries), ser) {
		t.Fatal("re-serializing the decoded entries changed the array")
	}

	for name, bad := range map[string][]byte{
		"empty":        nil,
		"16 bytes":     initial[1:],
		"flipped hash": append(bytes.Clone(initial[:16]), initial[16]^1),
		"flipped data": append([]byte{0xa0}, initial[1:]...),
	} {
		if err := VerifyLargeBlobArray(bad); !errors.Is(err, StatusIntegrityFailure) {
			t.Errorf("%s: VerifyLargeBlobArray = %v, want StatusIntegrityFailure", name, err)
		}
		if _, err := DecodeLargeBlobArray(bad); !errors.Is(err, StatusIntegrityFailure) {
			t.Errorf("%s: DecodeLargeBlobArray = %v, want StatusIntegrityFailure", name, err)
		}
	}
	// A good hash over something that is not an array.
	notArr := []byte{0xa0}
	nh := sha256.Sum256(notArr)
	_, err = DecodeLargeBlobArray(append(notArr, nh[:16]...))
	wantSyntaxErr(t, err, ErrWrongType, StatusCBORUnexpectedType)

	for name, m := range map[string]map[int]any{
		"no ciphertext": {2: make([]byte, 12), 3: 1},
		"no nonce":      {1: make([]byte, 16), 3: 1},
	} {
		_, err := DecodeLargeBlob(MustMarshal(m))
		if !errors.Is(err, ErrMissingField) {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, err = DecodeLargeBlob(MustMarshal(map[int]any{1: make([]byte, 16), 2: make([]byte, 11), 3: 1}))
	wantSyntaxErr(t, err, ErrInvalidValue, StatusInvalidParameter)
}

func TestExtensions(t *testing.T) {
	mc := &MakeCredentialExtensions{HMACSecret: true, CredProtect: CredProtectUVOptionalWithCredIDList, CredBlob: []byte{1}, MinPinLength: true, LargeBlobKey: true}
	m := mc.Map()
	if len(m) != 5 || !bytes.Equal(m[ExtCredProtect], []byte{0x02}) || !bytes.Equal(m[ExtHMACSecret], []byte{0xf5}) {
		t.Fatalf("Map() = %x", m)
	}
	// Through a whole request, with an unknown extension beside.
	req := minimalMakeCredentialRequest()
	req.Extensions = mc.Map()
	req.Extensions["example-ext"] = MustMarshal([]int{1})
	dec, err := DecodeMakeCredentialRequest(MustMarshal(req))
	if err != nil {
		t.Fatal(err)
	}
	gotMC, err := DecodeMakeCredentialExtensions(dec.Extensions)
	if err != nil || !reflect.DeepEqual(gotMC, mc) {
		t.Fatalf("DecodeMakeCredentialExtensions = %+v, %v", gotMC, err)
	}
	if (&MakeCredentialExtensions{}).Map() != nil {
		t.Error("empty extensions gave a non-nil map")
	}
	if e, err := DecodeMakeCredentialExtensions(nil); err != nil || !reflect.DeepEqual(e, &MakeCredentialExtensions{}) {
		t.Errorf("DecodeMakeCredentialExtensions(nil) = %+v, %v", e, err)
	}
	_, err = DecodeMakeCredentialExtensions(map[string]cbor.RawMessage{ExtCredProtect: MustMarshal("high")})
	wantSyntaxErr(t, err, ErrWrongType, StatusCBORUnexpectedType)

	ga := &GetAssertionExtensions{
		HMACSecret:   &HMACSecretInput{KeyAgreement: sampleKeyAgreement(t), SaltEnc: hash32(1), SaltAuth: hash32(2)[:16], PinUvAuthProtocol: 1},
		CredBlob:     true,
		LargeBlobKey: true,
	}
	gaReq := &GetAssertionRequest{RPID: "example.com", ClientDataHash: hash32(0), Extensions: ga.Map()}
	decGA, err := DecodeGetAssertionRequest(MustMarshal(gaReq))
	if err != nil {
		t.Fatal(err)
	}
	gotGA, err := DecodeGetAssertionExtensions(decGA.Extensions)
	if err != nil || !reflect.DeepEqual(gotGA, ga) {
		t.Fatalf("DecodeGetAssertionExtensions = %+v, %v", gotGA, err)
	}
	_, err = DecodeGetAssertionExtensions(map[string]cbor.RawMessage{ExtHMACSecret: MustMarshal(map[int]any{1: map[int]any{}})})
	wantSyntaxErr(t, err, ErrMissingField, StatusMissingParameter)
	_, err = DecodeGetAssertionExtensions(map[string]cbor.RawMessage{ExtHMACSecret: MustMarshal(true)})
	wantSyntaxErr(t, err, ErrWrongType, StatusCBORUnexpectedType)

	// Outputs through authenticator data.
	f := false
	mcOut := &MakeCredentialExtensionOutputs{HMACSecret: true, CredProtect: 3, CredBlob: &f, MinPinLength: 6}
	ad := sampleAuthData(t, true, false)
	ad.Extensions = mcOut.Marshal()
	parsed, err := ParseAuthData(ad.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Flags&FlagED == 0 {
		t.Fatal("ED flag not set")
	}
	gotOut, err := DecodeMakeCredentialExtensionOutputs(parsed.Extensions)
	if err != nil || !reflect.DeepEqual(gotOut, mcOut) {
		t.Fatalf("DecodeMakeCredentialExtensionOutputs = %+v, %v", gotOut, err)
	}
	if b := (&MakeCredentialExtensionOutputs{}).Marshal(); b != nil {
		t.Errorf("empty outputs encoded as %x", b)
	}
	if o, err := DecodeMakeCredentialExtensionOutputs(nil); err != nil || !reflect.DeepEqual(o, &MakeCredentialExtensionOutputs{}) {
		t.Errorf("DecodeMakeCredentialExtensionOutputs(nil) = %+v, %v", o, err)
	}

	for _, gaOut := range []*GetAssertionExtensionOutputs{
		{HMACSecret: bytes.Repeat([]byte{5}, 48), CredBlob: []byte{}},
		{CredBlob: []byte{1, 2}},
	} {
		got, err := DecodeGetAssertionExtensionOutputs(gaOut.Marshal())
		if err != nil || !reflect.DeepEqual(got, gaOut) {
			t.Fatalf("DecodeGetAssertionExtensionOutputs = %+v, %v; want %+v", got, err, gaOut)
		}
	}
	_, err = DecodeGetAssertionExtensionOutputs(MustMarshal(map[string]any{ExtHMACSecret: true}))
	wantSyntaxErr(t, err, ErrWrongType, StatusCBORUnexpectedType)
}

func TestSubCommandStrings(t *testing.T) {
	for _, tc := range []struct {
		s    interface{ String() string }
		want string
	}{
		{ClientPINGetPinUvAuthTokenUsingPinWithPermissions, "getPinUvAuthTokenUsingPinWithPermissions"},
		{ClientPINSubCommand(8), "clientPIN subcommand 0x08"},
		{CredMgmtEnumerateCredentialsGetNextCredential, "enumerateCredentialsGetNextCredential"},
		{CredMgmtSubCommand(0x42), "credentialManagement subcommand 0x42"},
		{ConfigVendorPrototype, "vendorPrototype"},
		{ConfigSubCommand(4), "config subcommand 0x04"},
	} {
		if got := tc.s.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
	}
}

func TestGetInfoNewFields(t *testing.T) {
	info := sampleGetInfoResponse()
	info.Certifications = map[string]uint64{"FIDO": 2}
	info.VendorPrototypeConfigCommands = []uint64{0x1234}
	info.Options[OptPinUvAuthToken] = true
	got, err := DecodeGetInfoResponse(MustMarshal(info))
	if err != nil || !reflect.DeepEqual(got, info) {
		t.Fatalf("DecodeGetInfoResponse = %+v, %v", got, err)
	}
}
