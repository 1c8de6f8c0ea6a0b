package virtual

import (
	"slices"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/fidokit/fidokit/internal/ctap"
)

// configure sends authenticatorConfig signed with tok (nil: unsigned).
func configure(t testing.TB, k *Key, v uint64, tok []byte, sub ctap.ConfigSubCommand, p any) ctap.Status {
	t.Helper()
	r := &ctap.ConfigRequest{SubCommand: sub}
	if err := r.SetParams(p); err != nil {
		t.Fatal(err)
	}
	if tok != nil {
		r.PinUvAuthProtocol, r.PinUvAuthParam = v, authenticate(v, tok, r.AuthMessage())
	}
	s, body := do(t, k, ctap.CmdConfig, r)
	if len(body) != 0 {
		t.Fatalf("config answered %x", body)
	}
	return s
}

func info(t testing.TB, k *Key) *ctap.GetInfoResponse {
	t.Helper()
	s, body := do(t, k, ctap.CmdGetInfo, nil)
	i, err := ctap.DecodeGetInfoResponse(body)
	if s != ctap.StatusOK || err != nil {
		t.Fatalf("getInfo: %v %v", s, err)
	}
	return i
}

func TestToggleAlwaysUV(t *testing.T) {
	for _, v := range protocols {
		t.Run(protoName(v), func(t *testing.T) {
			k := newTestKey(t, &Config{PIN: "1234"})
			if s := configure(t, k, v, nil, ctap.ConfigToggleAlwaysUv, nil); s != ctap.StatusPUATRequired {
				t.Errorf("without a token: %v", s)
			}
			if s := configure(t, k, v, pinToken(t, k, v, "1234", 0x03, ""), ctap.ConfigToggleAlwaysUv, nil); s != ctap.StatusPINAuthInvalid {
				t.Errorf("with an mc|ga token: %v", s)
			}
			tok := pinToken(t, k, v, "1234", 0x20, "")
			if s := configure(t, k, v, tok, ctap.ConfigToggleAlwaysUv, nil); s != ctap.StatusOK {
				t.Fatalf("toggleAlwaysUv: %v", s)
			}
			if i := info(t, k); !i.Options["alwaysUv"] || i.Options["makeCredUvNotRqd"] {
				t.Errorf("options after toggling on: %v", i.Options)
			}
			if s, _ := do(t, k, ctap.CmdMakeCredential, mcRequest("a", false)); s != ctap.StatusPUATRequired {
				t.Errorf("makeCredential with alwaysUv: %v", s)
			}
			if got := k.handleMsg(t.Context(), registerAPDU(cdh, testApp)); !slices.Equal(got, []byte{0x6D, 0x00}) {
				t.Errorf("U2F register with alwaysUv: %x", got)
			}
			if s := configure(t, k, v, tok, ctap.ConfigToggleAlwaysUv, nil); s != ctap.StatusOK {
				t.Fatalf("toggleAlwaysUv: %v", s)
			}
			if i := info(t, k); i.Options["alwaysUv"] {
				t.Errorf("options after toggling off: %v", i.Options)
			}
		})
	}
	t.Run("unprotected key needs no token", func(t *testing.T) {
		k := newTestKey(t, nil)
		if s := configure(t, k, 2, nil, ctap.ConfigToggleAlwaysUv, nil); s != ctap.StatusOK {
			t.Fatalf("toggleAlwaysUv: %v", s)
		}
		// Now alwaysUv is on, so the next toggle needs a token, which
		// needs a PIN.
		if s := configure(t, k, 2, nil, ctap.ConfigToggleAlwaysUv, nil); s != ctap.StatusPUATRequired {
			t.Errorf("second toggle: %v", s)
		}
	})
}

func TestSetMinPINLength(t *testing.T) {
	k := newTestKey(t, &Config{PIN: "1234"})
	tok := pinToken(t, k, 2, "1234", 0x20, "")
	set := func(p *ctap.SetMinPINLengthParams) ctap.Status {
		t.Helper()
		before := snapshot(t, k)
		s := configure(t, k, 2, tok, ctap.ConfigSetMinPINLength, p)
		if s != ctap.StatusOK {
			checkUnchanged(t, k, before, "a refused setMinPINLength")
		}
		return s
	}
	if s := set(&ctap.SetMinPINLengthParams{MinPinLengthRPIDs: []string{"a.example", "b.example"}}); s != ctap.StatusOK {
		t.Fatalf("setting RP IDs: %v", s)
	}
	if i := info(t, k); i.MinPINLength != 4 || i.ForcePINChange {
		t.Errorf("after setting RP IDs: minPINLength %d, forcePINChange %v", i.MinPINLength, i.ForcePINChange)
	}
	if s := set(&ctap.SetMinPINLengthParams{NewMinPINLength: 6}); s != ctap.StatusOK {
		t.Fatalf("raising to 6: %v", s)
	}
	// The 4-digit PIN is now too short: it must change.
	if i := info(t, k); i.MinPINLength != 6 || !i.ForcePINChange {
		t.Errorf("after raising: minPINLength %d, forcePINChange %v", i.MinPINLength, i.ForcePINChange)
	}
	for _, tt := range []struct {
		name string
		p    *ctap.SetMinPINLengthParams
		want ctap.Status
	}{
		{"lowering", &ctap.SetMinPINLengthParams{NewMinPINLength: 5}, ctap.StatusPINPolicyViolation},
		{"above 63", &ctap.SetMinPINLengthParams{NewMinPINLength: 64}, ctap.StatusPINPolicyViolation},
		{"too many RP IDs", &ctap.SetMinPINLengthParams{MinPinLengthRPIDs: make([]string, 9)}, ctap.StatusKeyStoreFull},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if s := set(tt.p); s != tt.want {
				t.Errorf("status %v, want %v", s, tt.want)
			}
		})
	}
	// The token still works (config does not consume it), but a new one
	// cannot be had until the PIN changes, to one of six or more.
	p := agree(t, k, 2)
	if _, s := p.token(k, p.tokenRequest("1234", 0x01, "")); s != ctap.StatusPINPolicyViolation {
		t.Errorf("token with a forced change pending: %v", s)
	}
	p = agree(t, k, 2)
	if s, _ := do(t, k, ctap.CmdClientPIN, p.changePINRequest("1234", padPIN("12345"))); s != ctap.StatusPINPolicyViolation {
		t.Errorf("changing to 5 digits: %v", s)
	}
	p = agree(t, k, 2)
	if s, _ := do(t, k, ctap.CmdClientPIN, p.changePINRequest("1234", padPIN("123456"))); s != ctap.StatusOK {
		t.Fatalf("changing to 6 digits: %v", s)
	}
	if i := info(t, k); i.ForcePINChange {
		t.Error("forcePINChange after the change")
	}

	// The minPinLength extension tells listed RPs only.
	tok = pinToken(t, k, 2, "123456", 0x21, "")
	set(&ctap.SetMinPINLengthParams{ForceChangePin: true})
	if !info(t, k).ForcePINChange {
		t.Error("forceChangePin did not force a change")
	}
	for _, tt := range []struct {
		rp   string
		want uint64
	}{{"a.example", 6}, {"other.example", 0}} {
		k := newTestKey(t, &Config{})
		configure(t, k, 2, nil, ctap.ConfigSetMinPINLength, &ctap.SetMinPINLengthParams{NewMinPINLength: 6, MinPinLengthRPIDs: []string{"a.example"}})
		r := mcRequest("a", false)
		r.RP.ID = tt.rp
		r.Extensions = map[string]cbor.RawMessage{"minPinLength": ctap.MustMarshal(true)}
		_, ad := makeCredential(t, k, r)
		out, err := ctap.DecodeMakeCredentialExtensionOutputs(ad.Extensions)
		if err != nil || out.MinPinLength != tt.want {
			t.Errorf("minPinLength for %s: %+v %v, want %d", tt.rp, out, err, tt.want)
		}
	}
	t.Run("forceChangePin without a PIN", func(t *testing.T) {
		k := newTestKey(t, nil)
		if s := configure(t, k, 2, nil, ctap.ConfigSetMinPINLength, &ctap.SetMinPINLengthParams{ForceChangePin: true}); s != ctap.StatusPINNotSet {
			t.Errorf("status %v", s)
		}
	})
}

func TestConfigRejects(t *testing.T) {
	k := newTestKey(t, &Config{PIN: "1234"})
	tok := pinToken(t, k, 2, "1234", 0x20, "")
	for _, tt := range []struct {
		name string
		sub  ctap.ConfigSubCommand
		want ctap.Status
	}{
		{"enableEnterpriseAttestation", ctap.ConfigEnableEnterpriseAttestation, ctap.StatusInvalidSubcommand},
		{"vendorPrototype", ctap.ConfigVendorPrototype, ctap.StatusInvalidSubcommand},
		{"unknown", 0x07, ctap.StatusInvalidSubcommand},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if s := configure(t, k, 2, tok, tt.sub, nil); s != tt.want {
				t.Errorf("status %v, want %v", s, tt.want)
			}
		})
	}
	t.Run("no config on a CTAP 2.0 key", func(t *testing.T) {
		k := newTestKey(t, &Config{CTAPVersion: CTAP20})
		if s := configure(t, k, 1, nil, ctap.ConfigToggleAlwaysUv, nil); s != ctap.StatusInvalidCommand {
			t.Errorf("status %v", s)
		}
	})
	t.Run("bound token is fine", func(t *testing.T) {
		tok := pinToken(t, k, 1, "1234", 0x20, "a.example")
		if s := configure(t, k, 1, tok, ctap.ConfigToggleAlwaysUv, nil); s != ctap.StatusOK {
			t.Errorf("status %v", s)
		}
	})
	t.Run("acfg through built-in UV", func(t *testing.T) {
		k := newTestKey(t, &Config{BuiltInUV: true})
		tok, s := uvToken(t, k, 2, 0x20, "")
		if s != ctap.StatusOK {
			t.Fatal(s)
		}
		if s := configure(t, k, 2, tok, ctap.ConfigToggleAlwaysUv, nil); s != ctap.StatusOK {
			t.Errorf("status %v", s)
		}
	})
}
