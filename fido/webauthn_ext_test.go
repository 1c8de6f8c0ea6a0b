package fido_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	gowebauthn "github.com/go-webauthn/webauthn/webauthn"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
)

// These tests run the WebAuthn client's extensions and PIN-based user
// verification against go-webauthn, which checks the outputs are ones it
// asked for and records what the key reported.

// extensionResults returns clientExtensionResults of a response.
func extensionResults(t *testing.T, response []byte) map[string]json.RawMessage {
	t.Helper()
	var r struct {
		ClientExtensionResults map[string]json.RawMessage `json:"clientExtensionResults"`
	}
	if err := json.Unmarshal(response, &r); err != nil {
		t.Fatal(err)
	}
	return r.ClientExtensionResults
}

// prfSalt is the hmac-secret salt WebAuthn L3 §10.1.4 derives from a PRF
// input, computed here independently of the client.
func prfSalt(input []byte) []byte {
	h := sha256.Sum256(append([]byte("WebAuthn PRF\x00"), input...))
	return h[:]
}

type prfResults struct {
	Enabled *bool `json:"enabled"`
	Results *struct {
		First, Second string
	} `json:"results"`
}

func prfOf(t *testing.T, response []byte) prfResults {
	t.Helper()
	var p prfResults
	raw, ok := extensionResults(t, response)["prf"]
	if !ok {
		t.Fatalf("no prf in clientExtensionResults of %s", response)
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func unb64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// loginWith runs a sign-in with options and returns the verified response.
func loginWith(t *testing.T, rp *relyingParty, c *fido.WebAuthnClient, u *account, opts ...gowebauthn.LoginOption) []byte {
	t.Helper()
	options, session := rp.beginLogin(t, u, opts...)
	response, err := c.Get(context.Background(), options)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if _, err := rp.finishLogin(u, session, response); err != nil {
		t.Fatalf("%v\nresponse: %s", err, response)
	}
	return response
}

func TestWebAuthnPRF(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			k := newKey(t, &virtual.Config{})
			dev := tr.open(t, k)
			c := client(dev)
			rp := newRelyingParty(t)
			u := newAccount("alice")

			// Enable at registration, twice, for two credentials.
			var ids [][]byte
			for range 2 {
				options, session := rp.beginRegistration(t, u, gowebauthn.WithExtensions(gowebauthn.WithExtensionPRFSupport()))
				response, err := c.Create(context.Background(), options)
				if err != nil {
					t.Fatal(err)
				}
				if p := prfOf(t, response); p.Enabled == nil || !*p.Enabled || p.Results != nil {
					t.Errorf("prf at create = %+v, want enabled and no results", p)
				}
				cred, err := rp.finishRegistration(u, session, response)
				if err != nil {
					t.Fatal(err)
				}
				if e := cred.Extensions.PRFEnabled; e == nil || !*e {
					t.Error("go-webauthn did not record PRF as enabled")
				}
				ids = append(ids, cred.ID)
			}

			eval := func(opts ...gowebauthn.ExtensionOption) (id []byte, first, second []byte) {
				t.Helper()
				response := loginWith(t, rp, c, u, gowebauthn.WithAssertionExtensions(opts...))
				p := prfOf(t, response)
				if p.Results == nil {
					t.Fatalf("no prf results in %s", response)
				}
				var r struct{ RawID string }
				json.Unmarshal(response, &r)
				first = unb64(t, p.Results.First)
				if p.Results.Second != "" {
					second = unb64(t, p.Results.Second)
				}
				return unb64(t, r.RawID), first, second
			}

			id, first, second := eval(gowebauthn.WithExtensionPRF(protocol.PRFValues{First: []byte("input one"), Second: []byte("input two")}))
			if len(first) != 32 || len(second) != 32 || bytes.Equal(first, second) {
				t.Fatalf("results first %x, second %x", first, second)
			}
			_, again, _ := eval(gowebauthn.WithExtensionPRF(protocol.PRFValues{First: []byte("input one")}))
			if !bytes.Equal(first, again) {
				t.Error("the same input gave a different result")
			}
			// The result is hmac-secret over SHA-256("WebAuthn PRF" || 0 ||
			// input), as the key computes it for a direct request.
			direct := hmacGet(t, dev, id, false, prfSalt([]byte("input one")), prfSalt([]byte("input two")))
			if !bytes.Equal(direct.Output1, first) || !bytes.Equal(direct.Output2, second) {
				t.Error("prf results differ from hmac-secret over the PRF salts")
			}

			// evalByCredential: each credential gets its own input.
			byCred := map[string]protocol.PRFValues{
				base64.RawURLEncoding.EncodeToString(ids[0]): {First: []byte("for zero")},
				base64.RawURLEncoding.EncodeToString(ids[1]): {First: []byte("for one")},
			}
			chosen, got, _ := eval(gowebauthn.WithExtensionPRFByCredential(byCred, nil))
			input := []byte("for zero")
			if bytes.Equal(chosen, ids[1]) {
				input = []byte("for one")
			}
			if want := hmacGet(t, dev, chosen, false, prfSalt(input)).Output1; !bytes.Equal(got, want) {
				t.Error("evalByCredential used another credential's input")
			}
		})
	}
}

func TestWebAuthnExtensions(t *testing.T) {
	ctx := context.Background()
	t.Run("credProps, credProtect, credBlob, minPinLength", func(t *testing.T) {
		k := newKey(t, &virtual.Config{PIN: testPIN})
		dev := openWithPrompt(t, k, false, fido.Prompt{PIN: (&pinPrompt{always: testPIN}).ask})
		c := client(dev)
		rp := newRelyingParty(t)
		u := newAccount("alice")
		options, session := rp.beginRegistration(t, u,
			gowebauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired),
			gowebauthn.WithExtensions(
				gowebauthn.WithExtensionCredProps(),
				gowebauthn.WithExtensionCredentialProtectionPolicy(protocol.CredentialProtectionPolicyUserVerificationRequired, true),
				gowebauthn.WithExtensionCredBlob([]byte("blob!")),
			))
		response, err := c.Create(ctx, options)
		if err != nil {
			t.Fatal(err)
		}
		cred, err := rp.finishRegistration(u, session, response)
		if err != nil {
			t.Fatalf("%v\n%s", err, response)
		}
		e := cred.Extensions
		if e.RK == nil || !*e.RK || e.CredProtect != protocol.CredentialProtectionPolicyUserVerificationRequired || e.CredBlobSet == nil || !*e.CredBlobSet {
			t.Errorf("go-webauthn recorded %+v", e)
		}
		if !cred.Flags.UserVerified {
			t.Error("a key with a PIN made a discoverable credential without verifying the user")
		}
		response = loginWith(t, rp, c, u, gowebauthn.WithUserVerification(protocol.VerificationRequired),
			gowebauthn.WithAssertionExtensions(gowebauthn.WithExtensionGetCredBlob()))
		var blob string
		json.Unmarshal(extensionResults(t, response)["getCredBlob"], &blob)
		if got := unb64(t, blob); string(got) != "blob!" {
			t.Errorf("getCredBlob = %q", got)
		}
	})
	t.Run("enforced credProtect unsupported", func(t *testing.T) {
		k := newKey(t, &virtual.Config{NoCredProtect: true})
		c := client(openWithPrompt(t, k, false, fido.Prompt{}))
		rp := newRelyingParty(t)
		options, _ := rp.beginRegistration(t, newAccount("bob"), gowebauthn.WithExtensions(
			gowebauthn.WithExtensionCredentialProtectionPolicy(protocol.CredentialProtectionPolicyUserVerificationRequired, true)))
		_, err := c.Create(ctx, options)
		if !errors.Is(err, fido.ErrNotAllowed) || !errors.Is(err, fido.ErrNotSupported) {
			t.Errorf("Create = %v, want ErrNotAllowed and ErrNotSupported", err)
		}
		if n := len(k.Credentials()); n != 0 {
			t.Errorf("%d credentials made", n)
		}
	})
	t.Run("hmacCreateSecret and hmacGetSecret", func(t *testing.T) {
		k := newKey(t, &virtual.Config{})
		dev := openWithPrompt(t, k, false, fido.Prompt{})
		c := client(dev)
		rp := newRelyingParty(t)
		u := newAccount("carol")
		cred := rp.register(t, c, u, gowebauthn.WithExtensions(gowebauthn.WithExtensionHMACCreateSecret()))
		if h := cred.Extensions.HMACSecret; h == nil || !*h {
			t.Errorf("go-webauthn recorded hmacSecret %v", h)
		}
		response := loginWith(t, rp, c, u, gowebauthn.WithAssertionExtensions(gowebauthn.WithExtensionHMACGetSecret(salt("1"), nil)))
		var out struct{ Output1 string }
		json.Unmarshal(extensionResults(t, response)["hmacGetSecret"], &out)
		if want := hmacGet(t, dev, cred.ID, false, salt("1")).Output1; !bytes.Equal(unb64(t, out.Output1), want) {
			t.Error("hmacGetSecret output differs from hmac-secret's")
		}
	})
}

// TestWebAuthnUVWithPIN checks "required" user verification on a key
// whose only means is its PIN, through Prompt.PIN, and the errors when
// there is no PIN to give.
func TestWebAuthnUVWithPIN(t *testing.T) {
	for _, tr := range []bool{false, true} {
		t.Run(map[bool]string{false: "inprocess", true: "socket"}[tr], func(t *testing.T) {
			k := newKey(t, &virtual.Config{PIN: testPIN})
			prompt := &pinPrompt{always: testPIN}
			c := client(openWithPrompt(t, k, tr, fido.Prompt{PIN: prompt.ask}))
			rp := newRelyingParty(t)
			u := newAccount("alice")
			cred := rp.register(t, c, u, gowebauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{UserVerification: protocol.VerificationRequired}))
			if !cred.Flags.UserVerified {
				t.Error("registration not user verified")
			}
			loginWith(t, rp, c, u, gowebauthn.WithUserVerification(protocol.VerificationRequired))
			if n := len(prompt.requests()); n != 2 {
				t.Errorf("%d PIN prompts, want 2", n)
			}
		})
	}
	t.Run("declined", func(t *testing.T) {
		k := newKey(t, &virtual.Config{PIN: testPIN})
		c := client(openWithPrompt(t, k, false, fido.Prompt{PIN: (&pinPrompt{}).ask}))
		rp := newRelyingParty(t)
		options, _ := rp.beginRegistration(t, newAccount("bob"), gowebauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{UserVerification: protocol.VerificationRequired}))
		_, err := c.Create(context.Background(), options)
		if !errors.Is(err, fido.ErrNotAllowed) || !errors.Is(err, fido.ErrPINRequired) {
			t.Errorf("Create = %v, want ErrNotAllowed and ErrPINRequired", err)
		}
	})
	t.Run("preferred, declined, goes on without", func(t *testing.T) {
		k := newKey(t, &virtual.Config{PIN: testPIN})
		c := client(openWithPrompt(t, k, false, fido.Prompt{}))
		rp := newRelyingParty(t)
		u := newAccount("carol")
		cred := rp.register(t, c, u, gowebauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{UserVerification: protocol.VerificationPreferred}))
		if cred.Flags.UserVerified {
			t.Error("user verified without a PIN")
		}
	})
	t.Run("no PIN set", func(t *testing.T) {
		k := newKey(t, &virtual.Config{})
		c := client(openWithPrompt(t, k, false, fido.Prompt{PIN: (&pinPrompt{always: testPIN}).ask}))
		rp := newRelyingParty(t)
		options, _ := rp.beginRegistration(t, newAccount("dave"), gowebauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{UserVerification: protocol.VerificationRequired}))
		_, err := c.Create(context.Background(), options)
		if !errors.Is(err, fido.ErrNotAllowed) || !errors.Is(err, fido.StatusPINNotSet) {
			t.Errorf("Create = %v, want ErrNotAllowed and StatusPINNotSet", err)
		}
	})
}
