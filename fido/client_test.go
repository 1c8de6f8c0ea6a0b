package fido

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/hid"
)

// hostileKey is a device that answers getInfo properly and every other
// CTAP2 command with a fixed, usually malformed, response: what a broken
// or malicious key could send.
type hostileKey struct {
	answer []byte
	stall  bool // never answer and send no KEEPALIVE: a key that hung
}

func (h *hostileKey) CBOR(ctx context.Context, req []byte, status func(byte)) []byte {
	if ctap.Command(req[0]) == ctap.CmdGetInfo {
		return ctap.EncodeResponse(&ctap.GetInfoResponse{Versions: []string{"FIDO_2_1"}, AAGUID: make([]byte, 16), MaxCredentialCountInList: 8})
	}
	if h.stall {
		<-ctx.Done()
	}
	return h.answer
}

func (h *hostileKey) Msg(ctx context.Context, apdu []byte) []byte { return []byte{0x6D, 0x00} }
func (h *hostileKey) Wink()                                       {}

func openHostile(t *testing.T, h *hostileKey) *Device {
	t.Helper()
	host, dev := hid.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	s := &hid.Server{Handler: h, Capabilities: hid.CapCBOR}
	if h.stall {
		s.KeepaliveInterval = time.Hour // a key that goes silent
	}
	go s.Serve(ctx, dev)
	d, err := (&Opener{IdleTimeout: 200 * time.Millisecond}).OpenConn(ctx, host, DeviceInfo{Path: "hostile"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(); cancel() })
	return d
}

func TestMalformedResponses(t *testing.T) {
	hash := RPIDHash("example.com")
	good := (&ctap.AuthData{RPIDHash: hash, Flags: ctap.FlagUP, SignCount: 1}).Marshal()
	other := RPIDHash("evil.example")
	wrongRP := (&ctap.AuthData{RPIDHash: other, Flags: ctap.FlagUP}).Marshal()
	resp := func(m map[int]any) []byte { return append([]byte{0}, ctap.MustMarshal(m)...) }
	cred := map[string]any{"type": "public-key", "id": []byte{1}}
	tests := []struct {
		name   string
		answer []byte
		cause  error // a ctap sentinel the error must also match, or nil
	}{
		{"empty answer", []byte{}, nil},
		{"trailing bytes", append(resp(map[int]any{1: cred, 2: good, 3: []byte{1}}), 0), ctap.ErrTrailingBytes},
		{"duplicate key", append([]byte{0, 0xA3}, append(ctap.MustMarshal(2), append(ctap.MustMarshal(good), append(ctap.MustMarshal(3), append(ctap.MustMarshal([]byte{1}), append(ctap.MustMarshal(3), ctap.MustMarshal([]byte{1})...)...)...)...)...)...), ctap.ErrDuplicateKey},
		{"non-canonical", append([]byte{0, 0xA2, 0x03}, append(ctap.MustMarshal([]byte{1}), append([]byte{0x02}, ctap.MustMarshal(good)...)...)...), ctap.ErrNonCanonical},
		{"wrong type", resp(map[int]any{2: "authData", 3: []byte{1}}), ctap.ErrWrongType},
		{"missing signature", resp(map[int]any{1: cred, 2: good}), ctap.ErrMissingField},
		{"truncated authData", resp(map[int]any{1: cred, 2: good[:20], 3: []byte{1}}), ctap.ErrMalformed},
		{"authData for another RP", resp(map[int]any{1: cred, 2: wrongRP, 3: []byte{1}}), nil},
		{"credential not in allowList", resp(map[int]any{1: map[string]any{"type": "public-key", "id": []byte{9}}, 2: good, 3: []byte{1}}), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := openHostile(t, &hostileKey{answer: tt.answer})
			_, err := d.GetAssertion(context.Background(), &GetAssertionRequest{RPID: "example.com", ClientDataHash: hash[:], AllowList: [][]byte{{1}}})
			var re *ResponseError
			if !errors.Is(err, ErrInvalidResponse) || !errors.As(err, &re) {
				t.Fatalf("err = %v, want a *ResponseError", err)
			}
			if tt.cause != nil && !errors.Is(err, tt.cause) {
				t.Fatalf("err = %v, want it to match %v", err, tt.cause)
			}
		})
	}
}

func TestKeyErrors(t *testing.T) {
	hash := RPIDHash("example.com")
	req := &GetAssertionRequest{RPID: "example.com", ClientDataHash: hash[:], AllowList: [][]byte{{1}}}
	t.Run("status", func(t *testing.T) {
		d := openHostile(t, &hostileKey{answer: []byte{byte(ctap.StatusPINBlocked)}})
		if _, err := d.GetAssertion(context.Background(), req); !errors.Is(err, StatusPINBlocked) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("silent key", func(t *testing.T) {
		d := openHostile(t, &hostileKey{stall: true})
		_, err := d.MakeCredential(context.Background(), &MakeCredentialRequest{ClientDataHash: hash[:], RP: RelyingParty{ID: "a"}, User: User{ID: []byte{1}}})
		if !errors.Is(err, ErrDeviceGone) {
			t.Fatalf("err = %v, want ErrDeviceGone", err)
		}
	})
	t.Run("invalid requests are not sent", func(t *testing.T) {
		d := openHostile(t, &hostileKey{answer: []byte{0}})
		for name, r := range map[string]*MakeCredentialRequest{
			"short hash": {ClientDataHash: []byte{1}, RP: RelyingParty{ID: "a"}, User: User{ID: []byte{1}}},
			"no RP":      {ClientDataHash: hash[:], User: User{ID: []byte{1}}},
			"no user":    {ClientDataHash: hash[:], RP: RelyingParty{ID: "a"}},
			"long user":  {ClientDataHash: hash[:], RP: RelyingParty{ID: "a"}, User: User{ID: make([]byte, 65)}},
		} {
			if _, err := d.MakeCredential(context.Background(), r); !errors.Is(err, ErrInvalidRequest) {
				t.Errorf("%s: %v", name, err)
			}
		}
	})
}
