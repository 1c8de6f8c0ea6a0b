package virtual

import (
	"bytes"
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fidokit/fidokit/internal/ctap"
)

// TestClientPINRoundTrip sets, uses and changes a PIN under each protocol,
// with the platform side computed independently (platform_test.go).
func TestClientPINRoundTrip(t *testing.T) {
	for _, v := range protocols {
		t.Run(protoName(v), func(t *testing.T) {
			k := newTestKey(t, nil)
			if n, blocked := retries(t, k); n != 8 || blocked {
				t.Fatalf("retries before a PIN: %d %v", n, blocked)
			}
			setPIN(t, k, v, "1234")
			if !k.HasPIN() {
				t.Fatal("no PIN after setPIN")
			}
			tok := pinToken(t, k, v, "1234", 0x03, testRPID)
			_, ad := makeCredential(t, k, withToken(v, tok, mcRequest("alice", true)))
			if ad.Flags&ctap.FlagUV == 0 || ad.Flags&ctap.FlagUP == 0 {
				t.Errorf("flags %#x after a PIN token", ad.Flags)
			}

			p := agree(t, k, v)
			if s, _ := do(t, k, ctap.CmdClientPIN, p.changePINRequest("1234", padPIN("5678"))); s != ctap.StatusOK {
				t.Fatalf("changePIN: %v", s)
			}
			// The old token died with the old PIN (§6.5.5.6 step 19).
			if s, _ := do(t, k, ctap.CmdGetAssertion, withToken(v, tok, gaRequest())); s != ctap.StatusPINAuthInvalid {
				t.Errorf("getAssertion with a token from before changePIN: %v", s)
			}
			p = agree(t, k, v)
			if _, s := p.token(k, p.tokenRequest("1234", 0x02, "")); s != ctap.StatusPINInvalid {
				t.Errorf("old PIN after changePIN: %v", s)
			}
			tok = pinToken(t, k, v, "5678", 0x02, "")
			resp, ad := getAssertion(t, k, ctap.CmdGetAssertion, withToken(v, tok, gaRequest()))
			// alice is the RP's only account, so user.id alone comes back,
			// UV or not (CTAP 2.1 §6.2.2, response member user).
			if ad.Flags&ctap.FlagUV == 0 || string(resp.User.ID) != "alice" || resp.User.Name != "" {
				t.Errorf("assertion with UV: flags %#x, user %+v", ad.Flags, resp.User)
			}
		})
	}
}

// TestWrongPIN walks the retry counter down: each wrong PIN costs one and
// says how many are left, the third in a row needs a replug, and the
// eighth blocks the PIN for good.
func TestWrongPIN(t *testing.T) {
	for _, v := range protocols {
		t.Run(protoName(v), func(t *testing.T) {
			k := newTestKey(t, &Config{PIN: "1234"})
			try := func(pin string) ctap.Status {
				t.Helper()
				p := agree(t, k, v)
				_, s := p.token(k, p.tokenRequest(pin, 0x01, ""))
				return s
			}
			steps := []struct {
				pin     string
				want    ctap.Status
				left    int
				blocked bool
				replug  bool
			}{
				{"0000", ctap.StatusPINInvalid, 7, false, false},
				{"0000", ctap.StatusPINInvalid, 6, false, false},
				{"0000", ctap.StatusPINAuthBlocked, 5, true, false},
				// Blocked until a power cycle, even for the right PIN, and
				// without spending a retry.
				{"1234", ctap.StatusPINAuthBlocked, 5, true, true},
				{"0000", ctap.StatusPINInvalid, 4, false, false},
				{"0000", ctap.StatusPINInvalid, 3, false, false},
				{"0000", ctap.StatusPINAuthBlocked, 2, true, true},
				{"0000", ctap.StatusPINInvalid, 1, false, false},
				{"0000", ctap.StatusPINBlocked, 0, false, true},
				{"1234", ctap.StatusPINBlocked, 0, false, false},
			}
			for i, st := range steps {
				if s := try(st.pin); s != st.want {
					t.Fatalf("attempt %d: %v, want %v", i+1, s, st.want)
				}
				if n, blocked := retries(t, k); n != st.left || blocked != st.blocked {
					t.Fatalf("after attempt %d: %d retries, powerCycleState %v; want %d, %v", i+1, n, blocked, st.left, st.blocked)
				}
				if st.replug {
					k.Replug()
				}
			}
			if k.PINRetries() != 0 {
				t.Errorf("PINRetries() = %d", k.PINRetries())
			}
			p := agree(t, k, v)
			if s, _ := do(t, k, ctap.CmdClientPIN, p.changePINRequest("1234", padPIN("5678"))); s != ctap.StatusPINBlocked {
				t.Errorf("changePIN with a blocked PIN: %v", s)
			}
		})
	}
	t.Run("a right PIN restores the retries", func(t *testing.T) {
		k := newTestKey(t, &Config{PIN: "1234"})
		for range 2 {
			p := agree(t, k, 2)
			p.token(k, p.tokenRequest("9999", 0x01, ""))
		}
		pinToken(t, k, 2, "1234", 0x01, "")
		if n, _ := retries(t, k); n != 8 {
			t.Errorf("retries after the right PIN: %d", n)
		}
		// And the count of mismatches in a row starts again: two more
		// wrong ones do not need a power cycle.
		for range 2 {
			p := agree(t, k, 2)
			if _, s := p.token(k, p.tokenRequest("9999", 0x01, "")); s != ctap.StatusPINInvalid {
				t.Errorf("wrong PIN: %v", s)
			}
		}
	})
	t.Run("a mismatch regenerates the key agreement key", func(t *testing.T) {
		k := newTestKey(t, &Config{PIN: "1234"})
		p := agree(t, k, 1)
		if _, s := p.token(k, p.tokenRequest("9999", 0x01, "")); s != ctap.StatusPINInvalid {
			t.Fatal(s)
		}
		// The same shared secret no longer decrypts to the PIN.
		if _, s := p.token(k, p.tokenRequest("1234", 0x01, "")); s != ctap.StatusPINInvalid {
			t.Errorf("the right PIN under the old shared secret: %v", s)
		}
	})
	t.Run("changePIN with the wrong current PIN", func(t *testing.T) {
		k := newTestKey(t, &Config{PIN: "1234"})
		p := agree(t, k, 2)
		if s, _ := do(t, k, ctap.CmdClientPIN, p.changePINRequest("4321", padPIN("5678"))); s != ctap.StatusPINInvalid {
			t.Errorf("changePIN: %v", s)
		}
		if n, _ := retries(t, k); n != 7 {
			t.Errorf("retries: %d", n)
		}
		pinToken(t, k, 2, "1234", 0x01, "") // unchanged
	})
}

// TestClientPINRejects sends malformed and refused clientPIN requests and
// checks the exact status and that stored state is untouched.
func TestClientPINRejects(t *testing.T) {
	type build func(p *platform) *ctap.ClientPINRequest
	badKey := ctap.MustMarshal(map[int]any{1: 2, 3: -25, -1: 1, -2: make([]byte, 32), -3: make([]byte, 32)})
	tests := []struct {
		name   string
		cfg    *Config
		req    build
		want   ctap.Status
		pinSet bool
	}{
		{"setPIN without keyAgreement", nil, func(p *platform) *ctap.ClientPINRequest {
			r := p.setPINRequest(padPIN("1234"))
			r.KeyAgreement = nil
			return r
		}, ctap.StatusMissingParameter, false},
		{"setPIN without protocol", nil, func(p *platform) *ctap.ClientPINRequest {
			r := p.setPINRequest(padPIN("1234"))
			r.PinUvAuthProtocol = 0
			return r
		}, ctap.StatusMissingParameter, false},
		{"setPIN with protocol 3", nil, func(p *platform) *ctap.ClientPINRequest {
			r := p.setPINRequest(padPIN("1234"))
			r.PinUvAuthProtocol = 3
			return r
		}, ctap.StatusInvalidParameter, false},
		{"setPIN with a key off the curve", nil, func(p *platform) *ctap.ClientPINRequest {
			r := p.setPINRequest(padPIN("1234"))
			r.KeyAgreement = badKey
			return r
		}, ctap.StatusInvalidParameter, false},
		{"setPIN with a bad pinUvAuthParam", nil, func(p *platform) *ctap.ClientPINRequest {
			r := p.setPINRequest(padPIN("1234"))
			r.PinUvAuthParam[0] ^= 1
			return r
		}, ctap.StatusPINAuthInvalid, false},
		{"setPIN too short", nil, func(p *platform) *ctap.ClientPINRequest { return p.setPINRequest(padPIN("123")) }, ctap.StatusPINPolicyViolation, false},
		{"setPIN of 3 code points in 6 bytes", nil, func(p *platform) *ctap.ClientPINRequest { return p.setPINRequest(padPIN("ééé")) }, ctap.StatusPINPolicyViolation, false},
		{"setPIN below minPINLength", &Config{MinPINLength: 6}, func(p *platform) *ctap.ClientPINRequest { return p.setPINRequest(padPIN("12345")) }, ctap.StatusPINPolicyViolation, false},
		{"setPIN of 64 bytes", nil, func(p *platform) *ctap.ClientPINRequest {
			return p.setPINRequest(bytes.Repeat([]byte{'1'}, 64))
		}, ctap.StatusPINPolicyViolation, false},
		{"setPIN not UTF-8", nil, func(p *platform) *ctap.ClientPINRequest { return p.setPINRequest(padPIN("12\xff4")) }, ctap.StatusPINPolicyViolation, false},
		{"setPIN with bytes after the padding", nil, func(p *platform) *ctap.ClientPINRequest {
			b := padPIN("1234")
			b[40] = 'x'
			return p.setPINRequest(b)
		}, ctap.StatusPINPolicyViolation, false},
		{"setPIN padded to 32 bytes", nil, func(p *platform) *ctap.ClientPINRequest { return p.setPINRequest(padPIN("1234")[:32]) }, ctap.StatusInvalidParameter, false},
		{"setPIN padded to 80 bytes", nil, func(p *platform) *ctap.ClientPINRequest {
			return p.setPINRequest(append(padPIN("1234"), make([]byte, 16)...))
		}, ctap.StatusInvalidParameter, false},
		{"setPIN not whole blocks", nil, func(p *platform) *ctap.ClientPINRequest {
			r := p.setPINRequest(padPIN("1234"))
			r.NewPinEnc = r.NewPinEnc[:len(r.NewPinEnc)-1]
			r.PinUvAuthParam = p.authenticate(r.NewPinEnc)
			return r
		}, ctap.StatusPINAuthInvalid, false},
		{"setPIN with a PIN set", nil, func(p *platform) *ctap.ClientPINRequest { return p.setPINRequest(padPIN("5678")) }, ctap.StatusPINAuthInvalid, true},
		{"changePIN without a PIN", nil, func(p *platform) *ctap.ClientPINRequest { return p.changePINRequest("1234", padPIN("5678")) }, ctap.StatusPINNotSet, false},
		{"changePIN without pinHashEnc", nil, func(p *platform) *ctap.ClientPINRequest {
			r := p.changePINRequest("1234", padPIN("5678"))
			r.PinHashEnc = nil
			return r
		}, ctap.StatusMissingParameter, true},
		{"changePIN with a bad pinUvAuthParam", nil, func(p *platform) *ctap.ClientPINRequest {
			r := p.changePINRequest("1234", padPIN("5678"))
			r.PinUvAuthParam = r.PinUvAuthParam[:8]
			return r
		}, ctap.StatusPINAuthInvalid, true},
		{"getPinToken without a PIN", nil, func(p *platform) *ctap.ClientPINRequest { return p.tokenRequest("1234", 0, "") }, ctap.StatusPINNotSet, false},
		{"getPinToken with permissions", nil, func(p *platform) *ctap.ClientPINRequest {
			r := p.tokenRequest("1234", 0, "")
			r.Permissions = 1
			return r
		}, ctap.StatusInvalidParameter, true},
		{"getPinToken with an rpId", nil, func(p *platform) *ctap.ClientPINRequest { return p.tokenRequest("1234", 0, testRPID) }, ctap.StatusInvalidParameter, true},
		{"token without permissions", nil, func(p *platform) *ctap.ClientPINRequest {
			r := p.tokenRequest("1234", 1, "")
			r.Permissions = 0
			return r
		}, ctap.StatusMissingParameter, true},
		{"token for bio enrollment", nil, func(p *platform) *ctap.ClientPINRequest { return p.tokenRequest("1234", 0x08, "") }, ctap.StatusUnauthorizedPermission, true},
		{"token for large blobs on a key without them", &Config{NoLargeBlobs: true}, func(p *platform) *ctap.ClientPINRequest {
			return p.tokenRequest("1234", 0x10, "")
		}, ctap.StatusUnauthorizedPermission, true},
		{"token with a wrong key agreement", nil, func(p *platform) *ctap.ClientPINRequest {
			r := p.tokenRequest("1234", 1, "")
			r.KeyAgreement = badKey
			return r
		}, ctap.StatusInvalidParameter, true},
		{"getKeyAgreement without protocol", nil, func(p *platform) *ctap.ClientPINRequest {
			return &ctap.ClientPINRequest{SubCommand: ctap.ClientPINGetKeyAgreement}
		}, ctap.StatusMissingParameter, false},
		{"getKeyAgreement with protocol 2 on a CTAP 2.0 key", &Config{CTAPVersion: CTAP20}, func(p *platform) *ctap.ClientPINRequest {
			return &ctap.ClientPINRequest{PinUvAuthProtocol: 2, SubCommand: ctap.ClientPINGetKeyAgreement}
		}, ctap.StatusInvalidParameter, false},
		{"permissions subcommand on a CTAP 2.0 key", &Config{CTAPVersion: CTAP20}, func(p *platform) *ctap.ClientPINRequest {
			return p.tokenRequest("1234", 1, "")
		}, ctap.StatusInvalidSubcommand, true},
		{"UV token without built-in UV", nil, func(p *platform) *ctap.ClientPINRequest {
			return &ctap.ClientPINRequest{PinUvAuthProtocol: p.v, SubCommand: ctap.ClientPINGetPinUvAuthTokenUsingUvWithPermissions,
				KeyAgreement: p.key, Permissions: 1}
		}, ctap.StatusInvalidSubcommand, false},
		{"getPINRetries on a key without a PIN", &Config{NoClientPIN: true, BuiltInUV: true}, func(p *platform) *ctap.ClientPINRequest {
			return &ctap.ClientPINRequest{SubCommand: ctap.ClientPINGetPINRetries}
		}, ctap.StatusInvalidSubcommand, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{}
			if tt.cfg != nil {
				cfg = *tt.cfg
			}
			if tt.pinSet {
				cfg.PIN = "1234"
			}
			k := newTestKey(t, &cfg)
			v := uint64(2)
			if cfg.CTAPVersion == CTAP20 {
				v = 1
			}
			p := agree(t, k, v)
			before := snapshot(t, k)
			s, body := do(t, k, ctap.CmdClientPIN, tt.req(p))
			if s != tt.want || len(body) != 0 {
				t.Errorf("status %v %x, want %v", s, body, tt.want)
			}
			checkUnchanged(t, k, before, "a rejected clientPIN request")
		})
	}
	t.Run("no clientPIN at all", func(t *testing.T) {
		k := newTestKey(t, &Config{NoClientPIN: true})
		if s, _ := do(t, k, ctap.CmdClientPIN, &ctap.ClientPINRequest{SubCommand: ctap.ClientPINGetPINRetries}); s != ctap.StatusInvalidCommand {
			t.Errorf("clientPIN on a key with neither PIN nor UV: %v", s)
		}
	})
	t.Run("PIN rules", func(t *testing.T) {
		for _, pin := range []string{"éééé", strings.Repeat("9", 63), "日本語で"} {
			k := newTestKey(t, nil)
			setPIN(t, k, 2, pin)
			pinToken(t, k, 1, pin, 0x01, "")
		}
	})
}

// TestTokenPermissions: a token does what its permissions say, for the
// RP it is bound to, once.
func TestTokenPermissions(t *testing.T) {
	for _, v := range protocols {
		t.Run(protoName(v), func(t *testing.T) {
			k := newTestKey(t, &Config{PIN: "1234"})
			other := func(r *ctap.MakeCredentialRequest) *ctap.MakeCredentialRequest {
				r.RP.ID = "other.example"
				return r
			}
			tests := []struct {
				name  string
				perms uint64
				rpID  string
				use   func(tok []byte) ctap.Status
				want  ctap.Status
			}{
				{"mc token for makeCredential", 0x01, "", func(tok []byte) ctap.Status {
					s, _ := do(t, k, ctap.CmdMakeCredential, withToken(v, tok, mcRequest("a", true)))
					return s
				}, ctap.StatusOK},
				{"mc token for getAssertion", 0x01, "", func(tok []byte) ctap.Status {
					s, _ := do(t, k, ctap.CmdGetAssertion, withToken(v, tok, gaRequest()))
					return s
				}, ctap.StatusPINAuthInvalid},
				{"ga token for makeCredential", 0x02, "", func(tok []byte) ctap.Status {
					s, _ := do(t, k, ctap.CmdMakeCredential, withToken(v, tok, mcRequest("a", true)))
					return s
				}, ctap.StatusPINAuthInvalid},
				{"token bound to RP A for RP B", 0x01, testRPID, func(tok []byte) ctap.Status {
					s, _ := do(t, k, ctap.CmdMakeCredential, withToken(v, tok, other(mcRequest("a", true))))
					return s
				}, ctap.StatusPINAuthInvalid},
				{"unbound token binds on first use", 0x03, "", func(tok []byte) ctap.Status {
					if s, _ := do(t, k, ctap.CmdGetAssertion, withToken(v, tok, &ctap.GetAssertionRequest{RPID: testRPID, ClientDataHash: cdh,
						Options: map[string]bool{"up": false}})); s != ctap.StatusOK {
						return s
					}
					s, _ := do(t, k, ctap.CmdMakeCredential, withToken(v, tok, other(mcRequest("a", true))))
					return s
				}, ctap.StatusPINAuthInvalid},
				{"one ceremony per token", 0x03, "", func(tok []byte) ctap.Status {
					if s, _ := do(t, k, ctap.CmdMakeCredential, withToken(v, tok, mcRequest("a", true))); s != ctap.StatusOK {
						return s
					}
					s, _ := do(t, k, ctap.CmdGetAssertion, withToken(v, tok, gaRequest()))
					return s
				}, ctap.StatusPINAuthInvalid},
				{"getPinToken gives mc and ga", 0, "", func(tok []byte) ctap.Status {
					s, _ := do(t, k, ctap.CmdGetAssertion, withToken(v, tok, gaRequest()))
					return s
				}, ctap.StatusOK},
				{"a token signs only its clientDataHash", 0x01, "", func(tok []byte) ctap.Status {
					r := withToken(v, tok, mcRequest("a", true))
					r.ClientDataHash = bytes.Repeat([]byte{0x22}, 32)
					s, _ := do(t, k, ctap.CmdMakeCredential, r)
					return s
				}, ctap.StatusPINAuthInvalid},
				{"a token of the other protocol", 0x01, "", func(tok []byte) ctap.Status {
					s, _ := do(t, k, ctap.CmdMakeCredential, withToken(3-v, tok, mcRequest("a", true)))
					return s
				}, ctap.StatusPINAuthInvalid},
			}
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					tok := pinToken(t, k, v, "1234", tt.perms, tt.rpID)
					if s := tt.use(tok); s != tt.want {
						t.Errorf("status %v, want %v", s, tt.want)
					}
				})
			}
		})
	}
	t.Run("a new token ends the old one", func(t *testing.T) {
		k := newTestKey(t, &Config{PIN: "1234"})
		old := pinToken(t, k, 2, "1234", 0x03, "")
		pinToken(t, k, 2, "1234", 0x03, "")
		if s, _ := do(t, k, ctap.CmdGetAssertion, withToken(2, old, gaRequest())); s != ctap.StatusPINAuthInvalid {
			t.Errorf("old token: %v", s)
		}
	})
	t.Run("replug ends the token", func(t *testing.T) {
		k := newTestKey(t, &Config{PIN: "1234"})
		makeCredential(t, k, withToken(2, pinToken(t, k, 2, "1234", 0x01, ""), mcRequest("a", true)))
		tok := pinToken(t, k, 2, "1234", 0x02, "")
		k.Replug()
		if s, _ := do(t, k, ctap.CmdGetAssertion, withToken(2, tok, gaRequest())); s != ctap.StatusPINAuthInvalid {
			t.Errorf("token after replug: %v", s)
		}
	})
}

// TestTokenTimers drives the usage timer of §6.5.2 with Config.Clock.
func TestTokenTimers(t *testing.T) {
	gaNoUP := func() *ctap.GetAssertionRequest {
		return &ctap.GetAssertionRequest{RPID: testRPID, ClientDataHash: cdh, Options: map[string]bool{"up": false}}
	}
	setup := func(t *testing.T) (*Key, *testClock) {
		clock := newTestClock()
		k := newTestKey(t, &Config{PIN: "1234", Clock: clock.Now})
		makeCredential(t, k, withToken(2, pinToken(t, k, 2, "1234", 0x01, ""), mcRequest("a", true)))
		return k, clock
	}
	t.Run("unused for 30 s", func(t *testing.T) {
		k, clock := setup(t)
		tok := pinToken(t, k, 2, "1234", 0x02, "")
		clock.Advance(31 * time.Second)
		if s, _ := do(t, k, ctap.CmdGetAssertion, withToken(2, tok, gaNoUP())); s != ctap.StatusPINAuthInvalid {
			t.Errorf("token unused for 31 s: %v", s)
		}
	})
	t.Run("used, then 10 minutes", func(t *testing.T) {
		k, clock := setup(t)
		tok := pinToken(t, k, 2, "1234", 0x02, "")
		clock.Advance(20 * time.Second)
		for _, d := range []time.Duration{0, 5 * time.Minute, 4 * time.Minute} {
			clock.Advance(d)
			if s, _ := do(t, k, ctap.CmdGetAssertion, withToken(2, tok, gaNoUP())); s != ctap.StatusOK {
				t.Fatalf("token at %v: %v", d, s)
			}
		}
		clock.Advance(41 * time.Second)
		if s, _ := do(t, k, ctap.CmdGetAssertion, withToken(2, tok, gaNoUP())); s != ctap.StatusPINAuthInvalid {
			t.Errorf("token after 10 minutes: %v", s)
		}
	})
}

// TestUserPresenceConsumed: a PIN token carries no presence, so the key
// still asks for a touch; a UV token does for 30 s, and one ceremony
// uses it up.
func TestUserPresenceConsumed(t *testing.T) {
	var touches atomic.Int32
	count := func(context.Context, PresenceRequest) error { touches.Add(1); return nil }
	clock := newTestClock()
	k := newTestKey(t, &Config{PIN: "1234", BuiltInUV: true, UserPresence: count, Clock: clock.Now})

	makeCredential(t, k, withToken(2, pinToken(t, k, 2, "1234", 0x01, ""), mcRequest("a", true)))
	if touches.Load() != 1 {
		t.Fatalf("%d touches with a PIN token", touches.Load())
	}
	tok, s := uvToken(t, k, 2, 0x03, "")
	if s != ctap.StatusOK {
		t.Fatal(s)
	}
	_, ad := makeCredential(t, k, withToken(2, tok, mcRequest("b", true)))
	if touches.Load() != 1 || ad.Flags&(ctap.FlagUP|ctap.FlagUV) != ctap.FlagUP|ctap.FlagUV {
		t.Errorf("%d touches with a UV token, flags %#x", touches.Load(), ad.Flags)
	}
	// The ceremony cleared the token's permissions but lbw, and its
	// flags.
	if s, _ := do(t, k, ctap.CmdGetAssertion, withToken(2, tok, gaRequest())); s != ctap.StatusPINAuthInvalid {
		t.Errorf("second use: %v", s)
	}
	// The user present time limit: 30 s.
	tok, _ = uvToken(t, k, 2, 0x02, "")
	clock.Advance(20 * time.Second)
	do(t, k, ctap.CmdGetAssertion, withToken(2, tok, &ctap.GetAssertionRequest{RPID: testRPID, ClientDataHash: cdh,
		Options: map[string]bool{"up": false}}))
	clock.Advance(11 * time.Second)
	getAssertion(t, k, ctap.CmdGetAssertion, withToken(2, tok, gaRequest()))
	if touches.Load() != 2 {
		t.Errorf("%d touches after the user present time limit, want 2", touches.Load())
	}
}

// TestPINRequired checks when a key with a PIN insists on it (§6.1.2
// steps 6 to 8, §6.2.2 step 5).
func TestPINRequired(t *testing.T) {
	nonRK, rk := mcRequest("a", false), mcRequest("b", true)
	noUP := &ctap.GetAssertionRequest{RPID: testRPID, ClientDataHash: cdh, Options: map[string]bool{"up": false}}
	tests := []struct {
		name string
		cfg  Config
		c    ctap.Command
		req  any
		want ctap.Status
	}{
		{"discoverable credential without the PIN", Config{PIN: "1234"}, ctap.CmdMakeCredential, rk, ctap.StatusPUATRequired},
		{"non-discoverable credential without the PIN", Config{PIN: "1234"}, ctap.CmdMakeCredential, nonRK, ctap.StatusOK},
		{"CTAP 2.0 key with a PIN", Config{PIN: "1234", CTAPVersion: CTAP20}, ctap.CmdMakeCredential, nonRK, ctap.StatusPUATRequired},
		{"alwaysUv, no PIN", Config{AlwaysUV: true}, ctap.CmdMakeCredential, nonRK, ctap.StatusPUATRequired},
		{"alwaysUv, no PIN, no clientPIN", Config{AlwaysUV: true, NoClientPIN: true}, ctap.CmdMakeCredential, nonRK, ctap.StatusOperationDenied},
		{"alwaysUv with a PIN", Config{AlwaysUV: true, PIN: "1234"}, ctap.CmdMakeCredential, nonRK, ctap.StatusPUATRequired},
		{"alwaysUv getAssertion", Config{AlwaysUV: true, PIN: "1234"}, ctap.CmdGetAssertion, gaRequest(), ctap.StatusPUATRequired},
		{"alwaysUv getAssertion without up", Config{AlwaysUV: true, PIN: "1234"}, ctap.CmdGetAssertion, noUP, ctap.StatusNoCredentials},
		{"alwaysUv with built-in UV does it", Config{AlwaysUV: true, BuiltInUV: true}, ctap.CmdMakeCredential, nonRK, ctap.StatusOK},
		{"uv option without built-in UV", Config{PIN: "1234"}, ctap.CmdMakeCredential,
			&ctap.MakeCredentialRequest{ClientDataHash: cdh, RP: rk.RP, User: rk.User, PubKeyCredParams: rk.PubKeyCredParams,
				Options: map[string]bool{"uv": true}}, ctap.StatusInvalidOption},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := newTestKey(t, &tt.cfg)
			before := snapshot(t, k)
			s, _ := do(t, k, tt.c, tt.req)
			if s != tt.want {
				t.Errorf("status %v, want %v", s, tt.want)
			}
			if s != ctap.StatusOK {
				checkUnchanged(t, k, before, "a refused request")
			}
		})
	}
	t.Run("no UV flag without the PIN", func(t *testing.T) {
		k := newTestKey(t, &Config{PIN: "1234"})
		_, ad := makeCredential(t, k, mcRequest("a", false))
		if ad.Flags&ctap.FlagUV != 0 {
			t.Errorf("flags %#x", ad.Flags)
		}
	})
	t.Run("touch probe with a PIN", func(t *testing.T) {
		k := newTestKey(t, &Config{PIN: "1234"})
		r := mcRequest("a", false)
		r.PinUvAuthParam, r.PinUvAuthProtocol = []byte{}, 2
		if s, _ := do(t, k, ctap.CmdMakeCredential, r); s != ctap.StatusPINInvalid {
			t.Errorf("status %v, want PIN_INVALID", s)
		}
	})
}

// TestBuiltInUV exercises the simulated sensor: the uv option, UV tokens,
// retries and the hook's outcomes.
func TestBuiltInUV(t *testing.T) {
	var fail atomic.Bool
	var seen atomic.Value
	hook := func(ctx context.Context, req UVRequest) error {
		seen.Store(req)
		if fail.Load() {
			return ErrUVFailed
		}
		return nil
	}
	k := newTestKey(t, &Config{BuiltInUV: true, UserVerifier: hook, MaxUVRetries: 5, UserPresence: Deny, PIN: "1234"})
	uvOpt := func(r *ctap.MakeCredentialRequest) *ctap.MakeCredentialRequest {
		r.Options = map[string]bool{"uv": true, "rk": true}
		return r
	}
	uvRetries := func() int {
		t.Helper()
		s, body := do(t, k, ctap.CmdClientPIN, &ctap.ClientPINRequest{SubCommand: ctap.ClientPINGetUVRetries})
		r, err := ctap.DecodeClientPINResponse(body)
		if s != ctap.StatusOK || err != nil || r.UVRetries == nil {
			t.Fatalf("getUVRetries: %v %v", s, err)
		}
		return int(*r.UVRetries)
	}

	// A finger is presence too: UserPresence denies everything, yet this
	// works.
	_, ad := makeCredential(t, k, uvOpt(mcRequest("a", false)))
	if ad.Flags&(ctap.FlagUP|ctap.FlagUV) != ctap.FlagUP|ctap.FlagUV {
		t.Errorf("flags %#x", ad.Flags)
	}
	if r := seen.Load().(UVRequest); r.Op != OpMakeCredential || r.RPID != testRPID {
		t.Errorf("UV request %+v", r)
	}
	fail.Store(true)
	if s, _ := do(t, k, ctap.CmdMakeCredential, uvOpt(mcRequest("a", false))); s != ctap.StatusOperationDenied {
		t.Errorf("failed UV in makeCredential: %v", s)
	}
	if n := uvRetries(); n != 4 {
		t.Errorf("uvRetries %d, want 4", n)
	}
	for _, want := range []ctap.Status{ctap.StatusUVInvalid, ctap.StatusUVInvalid, ctap.StatusUVInvalid, ctap.StatusUVBlocked, ctap.StatusUVBlocked} {
		if _, s := uvToken(t, k, 2, 0x01, ""); s != want {
			t.Errorf("UV token: %v, want %v", s, want)
		}
	}
	if n := uvRetries(); n != 0 || k.UVRetries() != 0 {
		t.Errorf("uvRetries %d", n)
	}
	fail.Store(false)
	if s, _ := do(t, k, ctap.CmdMakeCredential, uvOpt(mcRequest("a", false))); s != ctap.StatusUVBlocked {
		t.Errorf("makeCredential with UV blocked: %v", s)
	}
	// The PIN unblocks built-in UV.
	pinToken(t, k, 2, "1234", 0x01, "")
	if n := uvRetries(); n != 5 {
		t.Errorf("uvRetries after the PIN: %d", n)
	}
	tok, s := uvToken(t, k, 1, 0x01, testRPID)
	if s != ctap.StatusOK {
		t.Fatal(s)
	}
	if r := seen.Load().(UVRequest); r.Op != OpGetPinUvAuthToken || r.RPID != testRPID {
		t.Errorf("UV request %+v", r)
	}
	makeCredential(t, k, withToken(1, tok, mcRequest("b", true)))

	t.Run("timeout", func(t *testing.T) {
		k := newTestKey(t, &Config{BuiltInUV: true, UserPresenceTimeout: 10 * time.Millisecond,
			UserVerifier: func(ctx context.Context, _ UVRequest) error { <-ctx.Done(); return ctx.Err() }})
		if _, s := uvToken(t, k, 2, 0x01, ""); s != ctap.StatusUserActionTimeout {
			t.Errorf("status %v", s)
		}
		if k.UVRetries() != 25 {
			t.Errorf("a timeout cost a retry: %d left", k.UVRetries())
		}
	})
	t.Run("unauthorized permission", func(t *testing.T) {
		k := newTestKey(t, &Config{BuiltInUV: true, NoLargeBlobs: true})
		if _, s := uvToken(t, k, 2, 0x10, ""); s != ctap.StatusUnauthorizedPermission {
			t.Errorf("lbw without largeBlobs: %v", s)
		}
	})
}

// TestForcePINChange: with forcePINChange set, tokens are refused until
// the PIN changes, and it must change to something else.
func TestForcePINChange(t *testing.T) {
	k := newTestKey(t, &Config{PIN: "1234"})
	k.mu.Lock()
	k.st.ForcePINChange = true
	k.mu.Unlock()
	for _, perms := range []uint64{0, 0x01} {
		p := agree(t, k, 2)
		if _, s := p.token(k, p.tokenRequest("1234", perms, "")); s != ctap.StatusPINPolicyViolation {
			t.Errorf("token with permissions %#x: %v", perms, s)
		}
	}
	if n, _ := retries(t, k); n != 8 {
		t.Errorf("retries %d: the PIN was right", n)
	}
	p := agree(t, k, 2)
	if s, _ := do(t, k, ctap.CmdClientPIN, p.changePINRequest("1234", padPIN("1234"))); s != ctap.StatusPINPolicyViolation {
		t.Errorf("changing to the same PIN: %v", s)
	}
	p = agree(t, k, 2)
	if s, _ := do(t, k, ctap.CmdClientPIN, p.changePINRequest("1234", padPIN("4321"))); s != ctap.StatusOK {
		t.Fatalf("changePIN: %v", s)
	}
	pinToken(t, k, 2, "4321", 0x01, "")
}

// TestConfigPIN: a PIN from Config is stored only as its hash.
func TestConfigPIN(t *testing.T) {
	cfg := &Config{PIN: "2468"}
	k := newTestKey(t, cfg)
	if k.cfg.PIN != "" || cfg.PIN != "2468" {
		t.Errorf("key keeps Config.PIN %q; caller's is %q", k.cfg.PIN, cfg.PIN)
	}
	pinToken(t, k, 1, "2468", 0x01, "")
	for _, bad := range []Config{{PIN: "12"}, {PIN: "12345", MinPINLength: 6}, {PIN: "1234", NoClientPIN: true}, {PIN: "a\x00bcd"}} {
		_, err := New(&bad)
		if err == nil {
			t.Errorf("New with PIN %q succeeded", bad.PIN)
		} else if strings.Contains(err.Error(), bad.PIN) {
			t.Errorf("error %q shows the PIN", err)
		}
	}
}
