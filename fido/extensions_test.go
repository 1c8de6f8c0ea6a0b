package fido_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
)

func salt(s string) []byte { return hash("salt " + s) }

// hmacGet signs in with credential id asking hmac-secret for salts.
func hmacGet(t *testing.T, d *fido.Device, id []byte, uv bool, salts ...[]byte) *fido.HMACSecretOutput {
	t.Helper()
	req := getReq("example.com", id)
	req.UserVerification = uv
	req.Extensions.HMACSecret = &fido.HMACSecretInput{Salt1: salts[0]}
	if len(salts) > 1 {
		req.Extensions.HMACSecret.Salt2 = salts[1]
	}
	as, err := d.GetAssertion(ctxT(t), req)
	if err != nil {
		t.Fatalf("GetAssertion with hmac-secret: %v", err)
	}
	out := as[0].Extensions.HMACSecret
	if out == nil || len(out.Output1) != 32 || (len(salts) > 1) != (out.Output2 != nil) {
		t.Fatalf("hmac-secret output %+v for %d salts", out, len(salts))
	}
	return out
}

// TestHMACSecret checks the outputs are stable per salt and credential,
// differ between salts, credentials and with or without user
// verification, and do not depend on the PIN/UV auth protocol that carried
// them.
func TestHMACSecret(t *testing.T) {
	for _, socket := range []bool{false, true} {
		t.Run(map[bool]string{false: "inprocess", true: "socket"}[socket], func(t *testing.T) {
			k := newKey(t, &virtual.Config{})
			d := openWithPrompt(t, k, socket, fido.Prompt{PIN: (&pinPrompt{always: testPIN}).ask})
			ctx := ctxT(t)
			enroll := func(user string, hmac bool) []byte {
				req := makeReq("example.com", user)
				req.Extensions.HMACSecret = hmac
				att, err := d.MakeCredential(ctx, req)
				if err != nil {
					t.Fatal(err)
				}
				if att.Extensions.HMACSecret != hmac {
					t.Errorf("Attestation.Extensions.HMACSecret = %v, want %v", att.Extensions.HMACSecret, hmac)
				}
				return att.CredentialID
			}
			a, b, plain := enroll("a", true), enroll("b", true), enroll("plain", false)

			results := map[string][]byte{}
			for _, p := range []int{2, 1} {
				fido.ForcePINProtocol(d, p)
				a1 := hmacGet(t, d, a, false, salt("1")).Output1
				if prev, ok := results["a1"]; ok && !bytes.Equal(prev, a1) {
					t.Errorf("protocol %d gives another output for the same salt and credential", p)
				}
				results["a1"] = a1
				if again := hmacGet(t, d, a, false, salt("1")).Output1; !bytes.Equal(a1, again) {
					t.Error("same salt and credential, different outputs")
				}
				a2 := hmacGet(t, d, a, false, salt("2")).Output1
				if bytes.Equal(a1, a2) {
					t.Error("different salts, same output")
				}
				two := hmacGet(t, d, a, false, salt("1"), salt("2"))
				if !bytes.Equal(two.Output1, a1) || !bytes.Equal(two.Output2, a2) {
					t.Error("two salts at once give other outputs than one at a time")
				}
				if b1 := hmacGet(t, d, b, false, salt("1")).Output1; bytes.Equal(a1, b1) {
					t.Error("different credentials, same output")
				}
			}
			fido.ForcePINProtocol(d, 0)

			req := getReq("example.com", plain)
			req.Extensions.HMACSecret = &fido.HMACSecretInput{Salt1: salt("1")}
			as, err := d.GetAssertion(ctx, req)
			if err != nil || as[0].Extensions.HMACSecret != nil {
				t.Errorf("a credential without hmac-secret: %v, output %+v", err, as)
			}

			// With user verification the credential uses its other secret.
			if err := d.SetPIN(ctx, testPIN); err != nil {
				t.Fatal(err)
			}
			uv1 := hmacGet(t, d, a, true, salt("1")).Output1
			if bytes.Equal(uv1, results["a1"]) {
				t.Error("the same output with and without user verification")
			}
			if again := hmacGet(t, d, a, true, salt("1")).Output1; !bytes.Equal(uv1, again) {
				t.Error("with user verification, same salt, different outputs")
			}
			if again := hmacGet(t, d, a, false, salt("1")).Output1; !bytes.Equal(again, results["a1"]) {
				t.Error("without user verification the output changed after a PIN was set")
			}

			for name, in := range map[string]*fido.HMACSecretInput{
				"short salt1": {Salt1: []byte{1}},
				"no salt1":    {},
				"long salt2":  {Salt1: salt("1"), Salt2: make([]byte, 33)},
			} {
				req := getReq("example.com", a)
				req.Extensions.HMACSecret = in
				if _, err := d.GetAssertion(ctx, req); !errors.Is(err, fido.ErrInvalidRequest) {
					t.Errorf("%s: %v, want ErrInvalidRequest", name, err)
				}
			}
		})
	}
}

// TestCredProtect checks each level: what the key applies, and when the
// credential is visible.
func TestCredProtect(t *testing.T) {
	k := newKey(t, &virtual.Config{PIN: testPIN})
	prompt := &pinPrompt{always: testPIN}
	d := openWithPrompt(t, k, false, fido.Prompt{PIN: prompt.ask})
	ctx := ctxT(t)
	for _, level := range []fido.CredProtect{fido.CredProtectUVOptional, fido.CredProtectUVOptionalWithCredentialIDList, fido.CredProtectUVRequired} {
		t.Run(level.String(), func(t *testing.T) {
			rp := "level" + string(rune('0'+level)) + ".example"
			req := makeReq(rp, "alice")
			req.Discoverable = true
			req.Extensions.CredProtect, req.Extensions.EnforceCredProtect = level, true
			att, err := d.MakeCredential(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if att.Extensions.CredProtect != level {
				t.Errorf("key applied %v, want %v", att.Extensions.CredProtect, level)
			}
			tests := []struct {
				name    string
				allow   bool
				uv      bool
				visible bool
			}{
				{"discoverable, no uv", false, false, level == fido.CredProtectUVOptional},
				{"allowList, no uv", true, false, level != fido.CredProtectUVRequired},
				{"discoverable, uv", false, true, true},
				{"allowList, uv", true, true, true},
			}
			for _, tt := range tests {
				g := getReq(rp)
				if tt.allow {
					g.AllowList = [][]byte{att.CredentialID}
				}
				g.UserVerification = tt.uv
				as, err := d.GetAssertion(ctx, g)
				switch {
				case tt.visible && err != nil:
					t.Errorf("%s: %v, want an assertion", tt.name, err)
				case tt.visible && !bytes.Equal(as[0].CredentialID, att.CredentialID):
					t.Errorf("%s: signed with another credential", tt.name)
				case !tt.visible && !errors.Is(err, fido.StatusNoCredentials):
					t.Errorf("%s: %v, want StatusNoCredentials", tt.name, err)
				}
			}
		})
	}
	t.Run("invalid level", func(t *testing.T) {
		req := makeReq("example.com", "bob")
		req.Extensions.CredProtect = 4
		if _, err := d.MakeCredential(ctx, req); !errors.Is(err, fido.ErrInvalidRequest) {
			t.Errorf("credProtect 4: %v, want ErrInvalidRequest", err)
		}
	})
	t.Run("unsupported", func(t *testing.T) {
		k := newKey(t, &virtual.Config{NoCredProtect: true})
		d := openWithPrompt(t, k, false, fido.Prompt{})
		req := makeReq("example.com", "carol")
		req.Extensions.CredProtect, req.Extensions.EnforceCredProtect = fido.CredProtectUVRequired, true
		if _, err := d.MakeCredential(ctx, req); !errors.Is(err, fido.ErrNotSupported) {
			t.Errorf("enforced credProtect on a key without it: %v, want ErrNotSupported", err)
		}
		if n := len(k.Credentials()); n != 0 {
			t.Errorf("%d credentials made", n)
		}
		req.Extensions.EnforceCredProtect = false
		att, err := d.MakeCredential(ctx, req)
		if err != nil || att.Extensions.CredProtect != 0 {
			t.Errorf("unenforced credProtect on a key without it: %v, applied %v", err, att.Extensions.CredProtect)
		}
	})
}

func TestCredBlob(t *testing.T) {
	k := newKey(t, &virtual.Config{})
	d := openWithPrompt(t, k, false, fido.Prompt{})
	ctx := ctxT(t)
	info, err := d.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		blob   []byte
		stored bool
	}{
		{"small", []byte("hello, key"), true},
		{"at the limit", bytes.Repeat([]byte{7}, info.MaxCredBlobLength), true},
		{"too long", bytes.Repeat([]byte{7}, info.MaxCredBlobLength+1), false},
		{"none", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := makeReq("example.com", tt.name)
			req.Discoverable = true
			req.Extensions.CredBlob = tt.blob
			att, err := d.MakeCredential(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			if att.Extensions.CredBlobStored != tt.stored {
				t.Errorf("CredBlobStored = %v, want %v", att.Extensions.CredBlobStored, tt.stored)
			}
			g := getReq("example.com", att.CredentialID)
			g.Extensions.CredBlob = true
			as, err := d.GetAssertion(ctx, g)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.blob
			if !tt.stored {
				want = []byte{}
			}
			if got := as[0].Extensions.CredBlob; got == nil || !bytes.Equal(got, want) {
				t.Errorf("credBlob = %q, want %q", got, want)
			}
		})
	}
	req := makeReq("example.com", "empty")
	req.Extensions.CredBlob = []byte{}
	if _, err := d.MakeCredential(ctx, req); !errors.Is(err, fido.ErrInvalidRequest) {
		t.Errorf("empty credBlob: %v, want ErrInvalidRequest", err)
	}
}

func TestLargeBlobKey(t *testing.T) {
	k := newKey(t, &virtual.Config{})
	d := openWithPrompt(t, k, false, fido.Prompt{})
	ctx := ctxT(t)
	req := makeReq("example.com", "alice")
	req.Extensions.LargeBlobKey = true
	if _, err := d.MakeCredential(ctx, req); !errors.Is(err, fido.ErrInvalidRequest) {
		t.Errorf("largeBlobKey for a non-discoverable credential: %v, want ErrInvalidRequest", err)
	}
	req.Discoverable = true
	att, err := d.MakeCredential(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(att.Extensions.LargeBlobKey) != 32 {
		t.Fatalf("largeBlobKey = %x", att.Extensions.LargeBlobKey)
	}
	g := getReq("example.com")
	g.Extensions.LargeBlobKey = true
	as, err := d.GetAssertion(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(as[0].Extensions.LargeBlobKey, att.Extensions.LargeBlobKey) {
		t.Error("getAssertion returned another largeBlobKey")
	}
	if as, err := d.GetAssertion(ctx, getReq("example.com")); err != nil || as[0].Extensions.LargeBlobKey != nil {
		t.Errorf("largeBlobKey returned without being asked for: %v", err)
	}
}

// TestExtensionsIgnoredWhenUnsupported checks that extensions the key does
// not list are not sent, so that they cannot upset a strict key, and that
// their outputs stay zero.
func TestExtensionsIgnoredWhenUnsupported(t *testing.T) {
	k := newKey(t, &virtual.Config{NoHMACSecret: true, NoCredBlob: true, NoLargeBlobs: true, NoMinPINLengthExtension: true})
	d := openWithPrompt(t, k, false, fido.Prompt{})
	ctx := ctxT(t)
	req := makeReq("example.com", "alice")
	req.Discoverable = true
	req.Extensions = fido.MakeCredentialExtensions{HMACSecret: true, CredBlob: []byte("x"), LargeBlobKey: true, MinPINLength: true}
	att, err := d.MakeCredential(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if att.Extensions.HMACSecret || att.Extensions.CredBlobStored || att.Extensions.LargeBlobKey != nil || att.Extensions.MinPINLength != 0 {
		t.Errorf("outputs %+v from unsupported extensions", att.Extensions)
	}
	g := getReq("example.com")
	g.Extensions = fido.GetAssertionExtensions{HMACSecret: &fido.HMACSecretInput{Salt1: salt("1")}, CredBlob: true, LargeBlobKey: true}
	as, err := d.GetAssertion(ctx, g)
	if err != nil {
		t.Fatal(err)
	}
	if x := as[0].Extensions; x.HMACSecret != nil || x.CredBlob != nil || x.LargeBlobKey != nil {
		t.Errorf("outputs %+v from unsupported extensions", x)
	}
}
