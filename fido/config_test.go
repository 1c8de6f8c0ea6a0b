package fido_test

import (
	"errors"
	"testing"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
	"github.com/fidokit/fidokit/internal/pinuv"
)

func TestToggleAlwaysUV(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			k := newKey(t, &virtual.Config{PIN: testPIN})
			prompt := &pinPrompt{always: testPIN}
			d := v.open(t, k, fido.Prompt{PIN: prompt.ask})
			ctx := ctxT(t)
			alwaysUV := func() bool {
				t.Helper()
				info, err := d.Info(ctx)
				if err != nil {
					t.Fatal(err)
				}
				on, ok := info.Option("alwaysUv")
				if !ok {
					t.Fatal("alwaysUv not reported")
				}
				return on
			}
			att, err := d.MakeCredential(ctx, makeReq("example.com", "alice"))
			if err != nil {
				t.Fatal(err)
			}
			if alwaysUV() {
				t.Fatal("alwaysUv on at the start")
			}
			prompt.script()
			if err := d.ToggleAlwaysUV(ctx); err != nil {
				t.Fatal(err)
			}
			if r := prompt.requests(); len(r) != 1 || r[0].Op != "config" {
				t.Errorf("PIN requests %+v, want one for config", r)
			}
			if !alwaysUV() {
				t.Fatal("alwaysUv still off")
			}
			// Now a sign-in that asks for no verification gets it anyway.
			prompt.script()
			as, err := d.GetAssertion(ctx, getReq("example.com", att.CredentialID))
			if err != nil {
				t.Fatal(err)
			}
			if !as[0].UserVerified || len(prompt.requests()) != 1 {
				t.Errorf("with alwaysUv: UV flag %v after %d prompts", as[0].UserVerified, len(prompt.requests()))
			}
			if err := d.ToggleAlwaysUV(ctx); err != nil {
				t.Fatal(err)
			}
			if alwaysUV() {
				t.Error("alwaysUv still on")
			}
		})
	}
	t.Run("unprotected key", func(t *testing.T) {
		k := newKey(t, &virtual.Config{})
		prompt := &pinPrompt{}
		d := openWithPrompt(t, k, false, fido.Prompt{PIN: prompt.ask})
		if err := d.ToggleAlwaysUV(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		if n := len(prompt.requests()); n != 0 {
			t.Errorf("%d PIN prompts on a key without a PIN", n)
		}
	})
	t.Run("wrong token", func(t *testing.T) {
		k := newKey(t, &virtual.Config{PIN: testPIN})
		d := openWithPrompt(t, k, false, fido.Prompt{PIN: (&pinPrompt{always: testPIN}).ask})
		ctx := ctxT(t)
		tok, err := fido.Token(ctx, d, pinuv.PermCredentialManagement, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := fido.ToggleAlwaysUVWithToken(ctx, d, tok); !errors.Is(err, fido.StatusPINAuthInvalid) && !errors.Is(err, fido.StatusUnauthorizedPermission) {
			t.Errorf("toggleAlwaysUv with a cm token = %v, want it refused", err)
		}
		tok, err = fido.Token(ctx, d, pinuv.PermAuthenticatorConfig, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := fido.ToggleAlwaysUVWithToken(ctx, d, tok); err != nil {
			t.Errorf("toggleAlwaysUv with an acfg token: %v", err)
		}
	})
}

func TestSetMinPINLength(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			k := newKey(t, &virtual.Config{PIN: testPIN})
			prompt := &pinPrompt{always: testPIN}
			d := v.open(t, k, fido.Prompt{PIN: prompt.ask})
			ctx := ctxT(t)
			info, err := d.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if info.MinPINLength != 4 {
				t.Errorf("MinPINLength = %d, want 4", info.MinPINLength)
			}
			if err := d.SetMinPINLength(ctx, 6, []string{"example.com"}, false); err != nil {
				t.Fatal(err)
			}
			info, _ = d.Info(ctx)
			if info.MinPINLength != 6 || info.ForcePINChange {
				t.Errorf("after SetMinPINLength(6): MinPINLength %d, ForcePINChange %v", info.MinPINLength, info.ForcePINChange)
			}
			if err := d.ChangePIN(ctx, testPIN, "12345"); !errors.Is(err, fido.StatusPINPolicyViolation) {
				t.Errorf("ChangePIN below the new minimum = %v, want StatusPINPolicyViolation", err)
			}
			if err := d.SetMinPINLength(ctx, 5, nil, false); !errors.Is(err, fido.StatusPINPolicyViolation) {
				t.Errorf("lowering the minimum = %v, want StatusPINPolicyViolation", err)
			}

			// The minPinLength extension reports it to listed RPs only.
			for _, tt := range []struct {
				rpID string
				want int
			}{{"example.com", 6}, {"other.example", 0}} {
				req := makeReq(tt.rpID, "alice")
				req.Extensions.MinPINLength = true
				att, err := d.MakeCredential(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if att.Extensions.MinPINLength != tt.want {
					t.Errorf("minPinLength for %s = %d, want %d", tt.rpID, att.Extensions.MinPINLength, tt.want)
				}
			}

			// Forcing a change: the old PIN gives no token until changed.
			if err := d.SetMinPINLength(ctx, 0, nil, true); err != nil {
				t.Fatal(err)
			}
			info, _ = d.Info(ctx)
			if !info.ForcePINChange {
				t.Error("ForcePINChange not reported")
			}
			if _, err := d.RelyingParties(ctx); !errors.Is(err, fido.StatusPINPolicyViolation) {
				t.Errorf("a token with a PIN that must change = %v, want StatusPINPolicyViolation", err)
			}
			if err := d.ChangePIN(ctx, testPIN, "a longer PIN"); err != nil {
				t.Fatal(err)
			}
			info, _ = d.Info(ctx)
			if info.ForcePINChange {
				t.Error("ForcePINChange still set after ChangePIN")
			}
			prompt.always = "a longer PIN"
			if _, err := d.RelyingParties(ctx); err != nil {
				t.Errorf("after the change: %v", err)
			}
		})
	}
	t.Run("bad arguments", func(t *testing.T) {
		k := newKey(t, &virtual.Config{PIN: testPIN})
		d := openWithPrompt(t, k, false, fido.Prompt{PIN: (&pinPrompt{always: testPIN}).ask})
		ctx := ctxT(t)
		info, err := d.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		many := make([]string, info.MaxRPIDsForSetMinPINLength+1)
		for i := range many {
			many[i] = "rp.example"
		}
		for name, err := range map[string]error{
			"negative":     d.SetMinPINLength(ctx, -1, nil, false),
			"above 63":     d.SetMinPINLength(ctx, 64, nil, false),
			"too many RPs": d.SetMinPINLength(ctx, 0, many, false),
		} {
			if !errors.Is(err, fido.ErrInvalidRequest) {
				t.Errorf("%s: %v, want ErrInvalidRequest", name, err)
			}
		}
	})
	t.Run("unsupported", func(t *testing.T) {
		ctx := ctxT(t)
		for name, cfg := range map[string]*virtual.Config{
			"CTAP 2.0":     {CTAPVersion: virtual.CTAP20},
			"no clientPin": {NoClientPIN: true},
			"U2F only":     {U2FOnly: true},
		} {
			d := openWithPrompt(t, newKey(t, cfg), false, fido.Prompt{})
			if err := d.SetMinPINLength(ctx, 8, nil, false); !errors.Is(err, fido.ErrNotSupported) {
				t.Errorf("%s: SetMinPINLength = %v, want ErrNotSupported", name, err)
			}
			if name != "no clientPin" {
				if err := d.ToggleAlwaysUV(ctx); !errors.Is(err, fido.ErrNotSupported) {
					t.Errorf("%s: ToggleAlwaysUV = %v, want ErrNotSupported", name, err)
				}
			}
		}
	})
}
