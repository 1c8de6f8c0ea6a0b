package webauthn_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
	"github.com/fidokit/fidokit/webauthn"
	"github.com/fidokit/fidokit/webauthn/webauthntest"
)

func TestNewValidatesConfig(t *testing.T) {
	store := webauthn.NewMemoryStore()
	ok := webauthn.Config{RPID: testRPID, Origins: []string{testOrigin}, Store: store}
	tests := []struct {
		name string
		mod  func(*webauthn.Config)
	}{
		{"no RPID", func(c *webauthn.Config) { c.RPID = "" }},
		{"no store", func(c *webauthn.Config) { c.Store = nil }},
		{"no origins", func(c *webauthn.Config) { c.Origins = nil }},
		{"origin with path", func(c *webauthn.Config) { c.Origins = []string{testOrigin + "/login"} }},
		{"origin of another site", func(c *webauthn.Config) { c.Origins = []string{"https://example.org"} }},
		{"origin over http", func(c *webauthn.Config) { c.Origins = []string{"http://login.example.com"} }},
		{"suffix but not subdomain", func(c *webauthn.Config) { c.Origins = []string{"https://notexample.com"} }},
		{"negative timeout", func(c *webauthn.Config) { c.ChallengeTimeout = -time.Second }},
		{"unknown algorithm", func(c *webauthn.Config) { c.Policy.Algorithms = []int64{-65535} }},
		{"empty algorithms", func(c *webauthn.Config) { c.Policy.Algorithms = []int64{} }},
		{"AAGUIDs without list", func(c *webauthn.Config) { c.Policy.Attestation = webauthn.AttestationAAGUIDs }},
		{"metadata without BLOB", func(c *webauthn.Config) { c.Policy.Attestation = webauthn.AttestationMetadata }},
		{"unknown attestation policy", func(c *webauthn.Config) { c.Policy.Attestation = 99 }},
		{"unknown requirement", func(c *webauthn.Config) { c.Policy.UserVerification = 7 }},
	}
	if _, err := webauthn.New(ok); err != nil {
		t.Fatalf("New(valid config) = %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			if _, err := webauthn.New(cfg); err == nil {
				t.Error("New accepted the config")
			}
		})
	}
	local := webauthn.Config{RPID: "localhost", Origins: []string{"http://localhost:8080"}, Store: store}
	if _, err := webauthn.New(local); err != nil {
		t.Errorf("New(http://localhost) = %v", err)
	}
}

func TestRegisterAndLogin(t *testing.T) {
	ca, err := virtual.NewAttestationCA(nil, "test attestation CA")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		policy   webauthn.Policy
		key      virtual.Config
		wantFmt  string
		wantType string
	}{
		{"default policy", webauthn.Policy{}, virtual.Config{}, "none", "none"},
		{"EdDSA key", webauthn.Policy{}, virtual.Config{Algorithms: []fido.Algorithm{fido.EdDSA}}, "none", "none"},
		{"attestation any", webauthn.Policy{Attestation: webauthn.AttestationAny}, virtual.Config{AttestationCA: ca}, "packed", "basic_full"},
		{"attestation any, trusted root", webauthn.Policy{Attestation: webauthn.AttestationAny, AttestationRoots: []*x509.Certificate{ca.Certificate}},
			virtual.Config{AttestationCA: ca}, "packed", "basic_full"},
		{"attestation AAGUID allowed", webauthn.Policy{Attestation: webauthn.AttestationAAGUIDs, AllowedAAGUIDs: [][16]byte{virtual.DefaultAAGUID}},
			virtual.Config{AttestationCA: ca}, "packed", "basic_full"},
		{"U2F key, attestation any", webauthn.Policy{Attestation: webauthn.AttestationAny, AttestationRoots: []*x509.Certificate{ca.Certificate}},
			virtual.Config{U2FOnly: true, AttestationCA: ca}, "fido-u2f", "basic_full"},
		{"hardware bound", webauthn.Policy{HardwareBound: true}, virtual.Config{}, "none", "none"},
		{"discoverable discouraged", webauthn.Policy{Discoverable: webauthn.Discouraged}, virtual.Config{}, "none", "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *webauthn.Config) { c.Policy = tt.policy })
			u := e.user("alice")
			k := e.key(&tt.key)
			cred := e.register(k, u, "Blue key")
			if cred.Name != "Blue key" || !bytes.Equal(cred.UserID, u.ID) {
				t.Errorf("credential %q of %x, want \"Blue key\" of %x", cred.Name, cred.UserID, u.ID)
			}
			if cred.AttestationFormat != tt.wantFmt || cred.AttestationType != tt.wantType {
				t.Errorf("attestation %s/%s, want %s/%s", cred.AttestationFormat, cred.AttestationType, tt.wantFmt, tt.wantType)
			}
			if !cred.Active() || cred.CloneWarning || cred.BackupEligible || len(cred.PublicKey) == 0 || cred.Created.IsZero() {
				t.Errorf("new credential %+v", cred)
			}
			if cred.SignCount == 0 && !tt.key.U2FOnly { // U2F registrations carry no counter
				t.Error("registration did not record the key's counter")
			}
			last := cred.SignCount
			for range 2 {
				got := e.login(k, u)
				if !bytes.Equal(got.ID, cred.ID) || got.SignCount <= last || got.LastUsed.IsZero() {
					t.Errorf("sign-in with %x count %d (after %d), last used %v", got.ID, got.SignCount, last, got.LastUsed)
				}
				last = got.SignCount
			}
			stored, err := e.rp.Credential(e.ctx, u.ID, cred.ID)
			if err != nil || stored.SignCount != last {
				t.Errorf("stored sign count %d, err %v; want %d", stored.SignCount, err, last)
			}
		})
	}
}

// TestUserVerificationRequired: a key with a PIN meets "required" end to
// end: the client asks for the PIN, the key verifies it and sets UV, and
// the relying party stores that the user was verified.
func TestUserVerificationRequired(t *testing.T) {
	e := newEnv(t, func(c *webauthn.Config) { c.Policy.UserVerification = webauthn.Required })
	u := e.user("alice")
	k, asked := e.pinKey(virtual.Config{})
	cred := e.register(k, u, "Blue key")
	if !cred.UserVerified {
		t.Errorf("registered credential %+v, want UserVerified", cred)
	}
	stored, err := e.rp.Credential(e.ctx, u.ID, cred.ID)
	if err != nil || !stored.UserVerified {
		t.Fatalf("stored credential %+v, err %v; want UserVerified", stored, err)
	}
	got := e.login(k, u)
	if !bytes.Equal(got.ID, cred.ID) || !got.UserVerified || got.SignCount <= cred.SignCount {
		t.Errorf("signed in with %+v", got)
	}
	if stored, err := e.rp.Credential(e.ctx, u.ID, cred.ID); err != nil || !stored.UserVerified {
		t.Errorf("stored after sign-in %+v, err %v; want UserVerified", stored, err)
	}
	if n := asked.Load(); n != 2 {
		t.Errorf("the client asked for the PIN %d times, want 2 (once per ceremony)", n)
	}
}

func TestDiscoverableLogin(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := e.user("alice"), e.user("bob")
	k := webauthntest.NewClient(t, webauthntest.Options{Origin: testOrigin, SelectAccount: func(as []*fido.Assertion) (int, error) {
		for i, a := range as {
			if bytes.Equal(a.User.ID, alice.ID) {
				return i, nil
			}
		}
		return 0, errors.New("alice not offered")
	}})
	ca := e.register(k, alice, "a")
	e.register(k, bob, "b")
	u, cred, err := k.LoginDiscoverable(e.ctx, e.rp)
	if err != nil {
		t.Fatal(err)
	}
	if u.Name != "alice" || !bytes.Equal(cred.ID, ca.ID) {
		t.Errorf("signed in as %s with %x, want alice with %x", u.Name, cred.ID, ca.ID)
	}
}

func TestSignup(t *testing.T) {
	e := newEnv(t, nil)
	k := e.key(nil)
	u, cred, err := k.Signup(e.ctx, e.rp, "carol", "Carol", "first key")
	if err != nil {
		t.Fatal(err)
	}
	e.users = append(e.users, u.ID)
	if u.Name != "carol" || u.DisplayName != "Carol" || len(u.ID) != 32 || !bytes.Equal(cred.UserID, u.ID) {
		t.Errorf("signed up %+v with %+v", u, cred)
	}
	if _, _, err := k.Login(e.ctx, e.rp, u.ID); err != nil {
		t.Errorf("signing in after sign-up: %v", err)
	}
	if _, err := e.rp.BeginSignup(e.ctx, "carol", ""); !errors.Is(err, webauthn.ErrUserExists) || !errors.Is(err, webauthn.ErrExists) {
		t.Errorf("BeginSignup with a taken name = %v, want ErrUserExists", err)
	}

	// An abandoned sign-up leaves nothing behind.
	e.probe("dave")
	before := e.snapshot()
	if _, err := e.rp.BeginSignup(e.ctx, "dave", "Dave"); err != nil {
		t.Fatal(err)
	}
	if after := e.snapshot(); !after.equal(before) {
		t.Errorf("BeginSignup stored something:\n%v\nwas\n%v", after, before)
	}
}

func TestCreateUser(t *testing.T) {
	e := newEnv(t, nil)
	for _, name := range []string{"", "a\x00b", strings.Repeat("x", 257), "\xff"} {
		if _, err := e.rp.CreateUser(e.ctx, name, ""); !errors.Is(err, webauthn.ErrInvalidRequest) {
			t.Errorf("CreateUser(%q) = %v, want ErrInvalidRequest", name, err)
		}
	}
	a := e.user("alice")
	if _, err := e.rp.CreateUser(e.ctx, "alice", ""); !errors.Is(err, webauthn.ErrUserExists) {
		t.Errorf("second alice: %v, want ErrUserExists", err)
	}
	b := e.user("bob")
	if len(a.ID) != 32 || bytes.Equal(a.ID, b.ID) {
		t.Errorf("user handles %x and %x", a.ID, b.ID)
	}
	if _, err := e.rp.User(e.ctx, []byte("nobody")); !errors.Is(err, webauthn.ErrUnknownUser) || !errors.Is(err, webauthn.ErrNotFound) {
		t.Errorf("User(unknown) = %v", err)
	}
	if got, err := e.rp.UserByName(e.ctx, "bob"); err != nil || !bytes.Equal(got.ID, b.ID) {
		t.Errorf("UserByName(bob) = %v, %v", got, err)
	}
}

func TestBeginErrors(t *testing.T) {
	e := newEnv(t, func(c *webauthn.Config) { c.MaxCredentials = 1 })
	u := e.user("alice")
	if _, err := e.rp.BeginLogin(e.ctx, u.ID); !errors.Is(err, webauthn.ErrNoCredentials) {
		t.Errorf("BeginLogin without keys = %v, want ErrNoCredentials", err)
	}
	if _, err := e.rp.BeginRegistration(e.ctx, []byte("nobody")); !errors.Is(err, webauthn.ErrUnknownUser) {
		t.Errorf("BeginRegistration(unknown) = %v", err)
	}
	if _, err := e.rp.BeginLogin(e.ctx, nil); !errors.Is(err, webauthn.ErrInvalidRequest) {
		t.Errorf("BeginLogin(nil) = %v", err)
	}
	k := e.key(nil)
	cred := e.register(k, u, "")
	if _, err := e.rp.BeginRegistration(e.ctx, u.ID); !errors.Is(err, webauthn.ErrLimit) {
		t.Errorf("BeginRegistration at the limit = %v, want ErrLimit", err)
	}
	if err := e.rp.DeactivateCredential(e.ctx, u.ID, cred.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := e.rp.BeginLogin(e.ctx, u.ID); !errors.Is(err, webauthn.ErrNoCredentials) {
		t.Errorf("BeginLogin with only a deactivated key = %v, want ErrNoCredentials", err)
	}
}

// TestBeginOptions checks what the options ask of the key.
func TestBeginOptions(t *testing.T) {
	e := newEnv(t, func(c *webauthn.Config) {
		c.Policy = webauthn.Policy{UserVerification: webauthn.Required, Discoverable: webauthn.Discouraged, Algorithms: []int64{webauthn.EdDSA}}
	})
	u := e.user("alice")
	b := e.beginRegistration(u)
	if b.Expires.Sub(e.clock.Now()) != webauthn.DefaultChallengeTimeout {
		t.Errorf("expires %v after now, want %v", b.Expires.Sub(e.clock.Now()), webauthn.DefaultChallengeTimeout)
	}
	var o struct {
		RP        struct{ ID, Name string }
		User      struct{ ID, Name, DisplayName string }
		Challenge string
		Params    []struct {
			Type string
			Alg  int64
		} `json:"pubKeyCredParams"`
		Timeout     int
		Attestation string
		Selection   struct {
			AuthenticatorAttachment, ResidentKey, UserVerification string
		} `json:"authenticatorSelection"`
	}
	if err := json.Unmarshal(b.Options, &o); err != nil {
		t.Fatal(err)
	}
	if o.RP.ID != testRPID || o.User.ID != b64(u.ID) || o.User.Name != "alice" || len(unb64(t, o.Challenge)) != 32 {
		t.Errorf("options %s", b.Options)
	}
	if len(o.Params) != 1 || o.Params[0].Alg != webauthn.EdDSA || o.Timeout != 300000 || o.Attestation != "none" {
		t.Errorf("options %s", b.Options)
	}
	if o.Selection.AuthenticatorAttachment != "cross-platform" || o.Selection.ResidentKey != "discouraged" || o.Selection.UserVerification != "required" {
		t.Errorf("authenticatorSelection %+v", o.Selection)
	}
}

// negCase is one way a ceremony must fail. run sets it up and returns the
// call that must fail; the runner checks the error, that the store is as
// it was before that call (bar a clone flag), and that the challenge is
// used up.
type negCase struct {
	name  string
	cfg   func(*webauthn.Config)
	run   func(t *testing.T, e *env) func() error
	want  error
	step  string
	clone func() []byte // the credential flagged as cloned, if any
}

func runNegative(t *testing.T, cases []negCase) { runNegativeOn(t, cases, nil) }

// runNegativeLogin runs sign-in cases against both verification paths,
// the fast one and go-webauthn alone, which must fail alike.
func runNegativeLogin(t *testing.T, cases []negCase) {
	for _, p := range loginPaths {
		t.Run(p.name, func(t *testing.T) {
			runNegativeOn(t, cases, func(e *env) { webauthn.SetSlowLogin(e.rp, p.slow) })
		})
	}
}

// runNegativeOn is runNegative, with setup (if not nil) applied to each
// case's env first.
func runNegativeOn(t *testing.T, cases []negCase, setup func(*env)) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg)
			if setup != nil {
				setup(e)
			}
			finish := tc.run(t, e)
			before := e.snapshot()
			err := finish()
			wantErr(t, err, tc.want, tc.step)
			want := before
			if tc.clone != nil {
				want = before.withCloneWarning(tc.clone())
			}
			if after := e.snapshot(); !after.equal(want) {
				t.Errorf("store changed:\n%v\nwant\n%v", after, want)
			}
			if errors.Is(tc.want, webauthn.ErrChallengeUnknown) {
				return
			}
			if err := finish(); !errors.Is(err, webauthn.ErrChallengeUnknown) {
				t.Errorf("finishing again = %v, want ErrChallengeUnknown (the challenge must be used up)", err)
			}
		})
	}
}

// finishReg returns the FinishRegistration call for b and resp.
func finishReg(e *env, b *webauthn.Begin, resp []byte) func() error {
	return func() error {
		_, err := e.rp.FinishRegistration(e.ctx, b.ChallengeID, resp, "key")
		return err
	}
}

func finishLogin(e *env, rp *webauthn.RelyingParty, b *webauthn.Begin, resp []byte) func() error {
	return func() error {
		_, _, err := rp.FinishLogin(e.ctx, b.ChallengeID, resp)
		return err
	}
}

func TestRegistrationRejected(t *testing.T) {
	otherCA, err := virtual.NewAttestationCA(nil, "another CA")
	if err != nil {
		t.Fatal(err)
	}
	attest := func(p webauthn.AttestationPolicy) func(*webauthn.Config) {
		return func(c *webauthn.Config) { c.Policy.Attestation = p }
	}
	// plain is the common case: alice, a default key, its response to
	// fresh options, optionally edited.
	plain := func(key *virtual.Config, editOptions func(m map[string]any), editResp func(t *testing.T, resp []byte) []byte) func(t *testing.T, e *env) func() error {
		return func(t *testing.T, e *env) func() error {
			u := e.user("alice")
			k := e.key(key)
			b := e.beginRegistration(u)
			opts := []byte(b.Options)
			if editOptions != nil {
				opts = editJSON(t, opts, editOptions)
			}
			resp := e.create(k, opts)
			if editResp != nil {
				resp = editResp(t, resp)
			}
			return finishReg(e, b, resp)
		}
	}
	cases := []negCase{
		{name: "malformed JSON", want: webauthn.ErrMalformedResponse, step: "§7.1 steps 3 to 13",
			run: plain(nil, nil, func(t *testing.T, resp []byte) []byte { return resp[:len(resp)/2] })},
		{name: "attestation object not CBOR", want: webauthn.ErrMalformedResponse, step: "§7.1 steps 3 to 13",
			run: plain(nil, nil, func(t *testing.T, resp []byte) []byte {
				return editJSON(t, resp, func(m map[string]any) { obj(m, "response")["attestationObject"] = b64([]byte("not cbor")) })
			})},
		{name: "step 7 type webauthn.get", want: webauthn.ErrWrongType, step: "§7.1 step 7",
			run: plain(nil, nil, func(t *testing.T, resp []byte) []byte {
				return editRegistration(t, resp, nil, func(cdj []byte) []byte {
					return bytes.Replace(cdj, []byte(`"webauthn.create"`), []byte(`"webauthn.get"`), 1)
				})
			})},
		{name: "step 8 challenge", want: webauthn.ErrChallengeMismatch, step: "§7.1 step 8",
			run: plain(nil, func(m map[string]any) { m["challenge"] = b64(randomBytes(32)) }, nil)},
		{name: "step 9 origin", want: webauthn.ErrOrigin, step: "§7.1 step 9",
			run: func(t *testing.T, e *env) func() error {
				u := e.user("alice")
				// A page on another subdomain: the browser lets it use
				// the RP ID, the relying party does not list it.
				k := e.keyAt("https://evil.example.com", nil)
				b := e.beginRegistration(u)
				return finishReg(e, b, e.create(k, b.Options))
			}},
		{name: "step 10 cross-origin", want: webauthn.ErrOrigin, step: "§7.1 step 10",
			run: plain(nil, nil, func(t *testing.T, resp []byte) []byte {
				return editRegistration(t, resp, nil, func(cdj []byte) []byte {
					return bytes.Replace(cdj, []byte(`"crossOrigin":false`), []byte(`"crossOrigin":true`), 1)
				})
			})},
		{name: "step 11 top origin", want: webauthn.ErrOrigin, step: "§7.1 step 11",
			run: plain(nil, nil, func(t *testing.T, resp []byte) []byte {
				return editRegistration(t, resp, nil, func(cdj []byte) []byte {
					return bytes.Replace(cdj, []byte(`}`), []byte(`,"topOrigin":"https://example.org"}`), 1)
				})
			})},
		{name: "step 21 unknown attestation format", want: webauthn.ErrAttestationInvalid, step: "§7.1 step 21",
			run: plain(nil, nil, func(t *testing.T, resp []byte) []byte {
				return editJSON(t, resp, func(m map[string]any) {
					r := obj(m, "response")
					var ao attestationObject
					if err := cbor.Unmarshal(unb64(t, r["attestationObject"].(string)), &ao); err != nil {
						t.Fatal(err)
					}
					ao.Fmt = "example-format"
					raw, err := ctap2CBOR.Marshal(ao)
					if err != nil {
						t.Fatal(err)
					}
					r["attestationObject"] = b64(raw)
				})
			})},
		{name: "step 14 rpIdHash", want: webauthn.ErrRPIDHash, step: "§7.1 step 14",
			// The page asks for a credential scoped to its own host
			// rather than the relying party's ID.
			run: plain(nil, func(m map[string]any) { obj(m, "rp")["id"] = "login.example.com" }, nil)},
		{name: "step 15 user presence", want: webauthn.ErrUserPresence, step: "§7.1 step 15",
			run: plain(&virtual.Config{ForceUPOff: true}, nil, nil)},
		{name: "step 16 user verification", want: webauthn.ErrUserVerification, step: "§7.1 step 16",
			cfg: func(c *webauthn.Config) { c.Policy.UserVerification = webauthn.Required },
			run: func(t *testing.T, e *env) func() error {
				u := e.user("alice")
				// The key verifies the PIN, then clears UV and signs
				// over the lie.
				k, asked := e.pinKey(virtual.Config{ForceUVOff: true})
				b := e.beginRegistration(u)
				resp := e.create(k, b.Options)
				if asked.Load() == 0 {
					t.Fatal("the client did not ask for the PIN")
				}
				return finishReg(e, b, resp)
			}},
		{name: "step 17 BS without BE", want: webauthn.ErrBackupFlags, step: "§7.1 step 17",
			run: plain(&virtual.Config{BackupState: true}, nil, nil)},
		{name: "step 18 backup eligible refused", want: webauthn.ErrBackupEligible, step: "§7.1 step 18",
			cfg: func(c *webauthn.Config) { c.Policy.HardwareBound = true },
			run: plain(&virtual.Config{BackupEligible: true}, nil, nil)},
		{name: "step 18 backed up passkey refused", want: webauthn.ErrBackupEligible, step: "§7.1 step 18",
			cfg: func(c *webauthn.Config) { c.Policy.HardwareBound = true },
			run: plain(&virtual.Config{BackupEligible: true, BackupState: true}, nil, nil)},
		{name: "step 20 algorithm", want: webauthn.ErrAlgorithm, step: "§7.1 step 20",
			cfg: func(c *webauthn.Config) { c.Policy.Algorithms = []int64{webauthn.EdDSA} },
			run: plain(nil, func(m map[string]any) {
				m["pubKeyCredParams"] = []any{map[string]any{"type": "public-key", "alg": -7}}
			}, nil)},
		{name: "step 22 bad attestation signature", want: webauthn.ErrAttestationInvalid, step: "§7.1 step 22",
			cfg: attest(webauthn.AttestationAny),
			run: plain(&virtual.Config{BadSignature: true}, nil, nil)},
		{name: "step 24 none attestation", want: webauthn.ErrAttestationUntrusted, step: "§7.1 step 24",
			cfg: attest(webauthn.AttestationAny),
			run: plain(&virtual.Config{Attestation: virtual.AttestationNone}, nil, nil)},
		{name: "step 24 self attestation", want: webauthn.ErrAttestationUntrusted, step: "§7.1 step 24",
			cfg: attest(webauthn.AttestationAny),
			run: plain(&virtual.Config{Attestation: virtual.AttestationSelf}, nil, nil)},
		{name: "step 24 AAGUID not allowed", want: webauthn.ErrAttestationUntrusted, step: "§7.1 step 24",
			cfg: func(c *webauthn.Config) {
				c.Policy.Attestation = webauthn.AttestationAAGUIDs
				c.Policy.AllowedAAGUIDs = [][16]byte{{1, 2, 3}}
			},
			run: plain(nil, nil, nil)},
		{name: "step 24 untrusted root", want: webauthn.ErrAttestationUntrusted, step: "§7.1 step 24",
			cfg: func(c *webauthn.Config) {
				c.Policy.Attestation = webauthn.AttestationAny
				c.Policy.AttestationRoots = []*x509.Certificate{otherCA.Certificate}
			},
			run: plain(nil, nil, nil)},
		// go-webauthn's decoder would refuse such an ID as malformed
		// authenticator data (step 13); FinishRegistration checks step 25
		// before it parses, so the failure names the step.
		{name: "step 25 credential ID too long", want: webauthn.ErrMalformedResponse, step: "§7.1 step 25",
			run: plain(nil, nil, func(t *testing.T, resp []byte) []byte {
				return editRegistration(t, resp, func(ad *authData) { ad.credID = bytes.Repeat([]byte{7}, 1024) }, nil)
			})},
		{name: "step 26 credential of another user", want: webauthn.ErrCredentialExists, step: "§7.1 step 26",
			run: func(t *testing.T, e *env) func() error {
				alice, bob := e.user("alice"), e.user("bob")
				aliceCred := e.register(e.key(nil), alice, "")
				// "none" attestation binds nothing: a client can claim
				// alice's credential ID for a key pair of its own.
				b := e.beginRegistration(bob)
				resp := editRegistration(t, e.create(e.key(nil), b.Options), func(ad *authData) { ad.credID = aliceCred.ID }, nil)
				return finishReg(e, b, resp)
			}},
		{name: "step 26 credential registered twice", want: webauthn.ErrCredentialExists, step: "§7.1 step 26",
			run: func(t *testing.T, e *env) func() error {
				u := e.user("alice")
				k := e.key(nil)
				b1, b2 := e.beginRegistration(u), e.beginRegistration(u)
				resp := e.create(k, b1.Options)
				if _, err := e.rp.FinishRegistration(e.ctx, b1.ChallengeID, resp, ""); err != nil {
					t.Fatal(err)
				}
				// The same credential answered to the second challenge.
				resp = editRegistration(t, resp, nil, func(cdj []byte) []byte {
					return bytes.Replace(cdj, []byte(challengeOf(t, b1.Options)), []byte(challengeOf(t, b2.Options)), 1)
				})
				return finishReg(e, b2, resp)
			}},
		{name: "limit reached by a concurrent registration", want: webauthn.ErrLimit, step: "credential limit",
			cfg: func(c *webauthn.Config) { c.MaxCredentials = 1 },
			run: func(t *testing.T, e *env) func() error {
				u := e.user("alice")
				b1, b2 := e.beginRegistration(u), e.beginRegistration(u)
				if _, err := e.rp.FinishRegistration(e.ctx, b1.ChallengeID, e.create(e.key(nil), b1.Options), ""); err != nil {
					t.Fatal(err)
				}
				return finishReg(e, b2, e.create(e.key(nil), b2.Options))
			}},
		{name: "expired challenge", want: webauthn.ErrExpired, step: "challenge",
			run: func(t *testing.T, e *env) func() error {
				u := e.user("alice")
				b := e.beginRegistration(u)
				resp := e.create(e.key(nil), b.Options)
				e.clock.Advance(webauthn.DefaultChallengeTimeout)
				return finishReg(e, b, resp)
			}},
		{name: "reused challenge", want: webauthn.ErrChallengeUnknown, step: "challenge",
			run: func(t *testing.T, e *env) func() error {
				u := e.user("alice")
				b := e.beginRegistration(u)
				resp := e.create(e.key(nil), b.Options)
				if _, err := e.rp.FinishRegistration(e.ctx, b.ChallengeID, resp, ""); err != nil {
					t.Fatal(err)
				}
				return finishReg(e, b, resp)
			}},
		{name: "sign-in challenge", want: webauthn.ErrChallengeUnknown, step: "challenge",
			run: func(t *testing.T, e *env) func() error {
				u := e.user("alice")
				k := e.key(nil)
				e.register(k, u, "")
				bl := e.beginLogin(u)
				b := e.beginRegistration(u)
				resp := e.create(e.key(nil), b.Options)
				return finishReg(e, bl, resp)
			}},
		{name: "unknown challenge", want: webauthn.ErrChallengeUnknown, step: "challenge",
			run: func(t *testing.T, e *env) func() error {
				u := e.user("alice")
				b := e.beginRegistration(u)
				resp := e.create(e.key(nil), b.Options)
				return finishReg(e, &webauthn.Begin{ChallengeID: "no-such-challenge"}, resp)
			}},
		{name: "name taken during sign-up", want: webauthn.ErrUserExists, step: "account",
			run: func(t *testing.T, e *env) func() error {
				b, err := e.rp.BeginSignup(e.ctx, "carol", "")
				if err != nil {
					t.Fatal(err)
				}
				resp := e.create(e.key(nil), b.Options)
				e.user("carol")
				return finishReg(e, b, resp)
			}},
		{name: "sign-up with a registered credential", want: webauthn.ErrCredentialExists, step: "§7.1 step 26",
			run: func(t *testing.T, e *env) func() error {
				alice := e.user("alice")
				aliceCred := e.register(e.key(nil), alice, "")
				e.probe("mallory")
				b, err := e.rp.BeginSignup(e.ctx, "mallory", "")
				if err != nil {
					t.Fatal(err)
				}
				resp := editRegistration(t, e.create(e.key(nil), b.Options), func(ad *authData) { ad.credID = aliceCred.ID }, nil)
				return finishReg(e, b, resp)
			}},
	}
	runNegative(t, cases)
}

func TestRegistrationBadKeyName(t *testing.T) {
	e := newEnv(t, nil)
	u := e.user("alice")
	b := e.beginRegistration(u)
	resp := e.create(e.key(nil), b.Options)
	for _, name := range []string{strings.Repeat("k", 129), "tab\there", "\xfe"} {
		if _, err := e.rp.FinishRegistration(e.ctx, b.ChallengeID, resp, name); !errors.Is(err, webauthn.ErrInvalidRequest) {
			t.Errorf("FinishRegistration(name %q) = %v, want ErrInvalidRequest", name, err)
		}
	}
	// A bad name is refused before the challenge is touched.
	if _, err := e.rp.FinishRegistration(e.ctx, b.ChallengeID, resp, "ok"); err != nil {
		t.Errorf("FinishRegistration after bad names = %v", err)
	}
}

// TestExcludeCredentials: the options exclude the user's keys, so the key
// itself refuses to register twice, before the relying party sees
// anything.
func TestExcludeCredentials(t *testing.T) {
	for _, u2f := range []bool{false, true} {
		e := newEnv(t, nil)
		u := e.user("alice")
		k := e.key(&virtual.Config{U2FOnly: u2f})
		e.register(k, u, "")
		before := e.snapshot()
		b := e.beginRegistration(u)
		_, err := k.Create(e.ctx, b.Options)
		if !errors.Is(err, fido.ErrInvalidState) {
			t.Errorf("u2f=%v: registering the key again = %v, want fido.ErrInvalidState", u2f, err)
		}
		if after := e.snapshot(); !after.equal(before) {
			t.Errorf("u2f=%v: store changed", u2f)
		}
	}
}

func TestLoginRejected(t *testing.T) {
	// one: alice with one registered default key; returns the key.
	one := func(t *testing.T, e *env, cfg *virtual.Config) (*webauthn.User, *webauthntest.Client, *webauthn.Credential) {
		u := e.user("alice")
		k := e.key(cfg)
		return u, k, e.register(k, u, "")
	}
	// plain signs alice in with edited options or response.
	plain := func(key *virtual.Config, editOptions func(m map[string]any), editResp func(t *testing.T, e *env, resp []byte) []byte) func(t *testing.T, e *env) func() error {
		return func(t *testing.T, e *env) func() error {
			u, k, _ := one(t, e, key)
			b := e.beginLogin(u)
			opts := []byte(b.Options)
			if editOptions != nil {
				opts = editJSON(t, opts, editOptions)
			}
			resp := e.get(k, opts)
			if editResp != nil {
				resp = editResp(t, e, resp)
			}
			return finishLogin(e, e.rp, b, resp)
		}
	}
	// changed registers alice with a key made from first, closes it and
	// brings the same key (its state file) back made from then, a key
	// that behaves differently since the registration, to sign her in.
	// pin gives both a PIN the client is asked for.
	changed := func(first, then virtual.Config, pin bool) func(t *testing.T, e *env) func() error {
		return func(t *testing.T, e *env) func() error {
			var asked *atomic.Int32
			newKey := func(cfg virtual.Config) (k *webauthntest.Client) {
				if pin {
					k, asked = e.pinKey(cfg)
					return k
				}
				return e.key(&cfg)
			}
			first.StatePath = t.TempDir() + "/key.json"
			then.StatePath = first.StatePath
			u := e.user("alice")
			k := newKey(first)
			e.register(k, u, "")
			if err := k.Close(); err != nil {
				t.Fatal(err)
			}
			k = newKey(then)
			b := e.beginLogin(u)
			resp := e.get(k, b.Options)
			if pin && asked.Load() == 0 {
				t.Fatal("the client did not ask for the PIN")
			}
			return finishLogin(e, e.rp, b, resp)
		}
	}
	allowOnly := func(id []byte) func(m map[string]any) {
		return func(m map[string]any) {
			m["allowCredentials"] = []any{map[string]any{"type": "public-key", "id": b64(id)}}
		}
	}
	var cloned []byte
	cases := []negCase{
		{name: "malformed JSON", want: webauthn.ErrMalformedResponse, step: "§7.2 steps 3 to 9",
			run: plain(nil, nil, func(t *testing.T, e *env, resp []byte) []byte { return []byte(`{"id":"AA","type":"public-key"`) })},
		{name: "authenticator data truncated", want: webauthn.ErrMalformedResponse, step: "§7.2 steps 3 to 9",
			run: plain(nil, nil, func(t *testing.T, e *env, resp []byte) []byte {
				return editJSON(t, resp, func(m map[string]any) { obj(m, "response")["authenticatorData"] = b64(make([]byte, 20)) })
			})},
		{name: "step 5 credential not in allowCredentials", want: webauthn.ErrUnknownCredential, step: "§7.2 step 5",
			run: func(t *testing.T, e *env) func() error {
				u, _, _ := one(t, e, nil)
				b := e.beginLogin(u)
				// A key registered after the sign-in began.
				k2 := e.key(nil)
				c2 := e.register(k2, u, "")
				return finishLogin(e, e.rp, b, e.get(k2, editJSON(t, b.Options, allowOnly(c2.ID))))
			}},
		{name: "step 6 unknown credential", want: webauthn.ErrUnknownCredential, step: "§7.2 step 6",
			run: func(t *testing.T, e *env) func() error {
				u, _, _ := one(t, e, nil)
				// A key registered with another relying party of the same
				// RP ID, whose store this one does not share.
				other := newEnv(t, nil)
				k2 := other.key(nil)
				c2 := other.register(k2, other.user("alice"), "")
				b := e.beginLogin(u)
				return finishLogin(e, e.rp, b, e.get(k2, editJSON(t, b.Options, allowOnly(c2.ID))))
			}},
		{name: "step 6 credential of another user", want: webauthn.ErrCredentialOwner, step: "§7.2 step 6",
			run: func(t *testing.T, e *env) func() error {
				alice, _, _ := one(t, e, nil)
				bob := e.user("bob")
				kb := e.key(nil)
				cb := e.register(kb, bob, "")
				b := e.beginLogin(alice)
				return finishLogin(e, e.rp, b, e.get(kb, editJSON(t, b.Options, allowOnly(cb.ID))))
			}},
		{name: "step 6 user handle of another user", want: webauthn.ErrUserHandle, step: "§7.2 step 6",
			run: plain(nil, nil, func(t *testing.T, e *env, resp []byte) []byte {
				bob := e.user("bob")
				// The user handle is not signed: a client can change it.
				return editJSON(t, resp, func(m map[string]any) { obj(m, "response")["userHandle"] = b64(bob.ID) })
			})},
		{name: "step 6 discoverable without user handle", want: webauthn.ErrUserHandle, step: "§7.2 step 6",
			run: func(t *testing.T, e *env) func() error {
				_, k, _ := one(t, e, nil)
				b, err := e.rp.BeginDiscoverableLogin(e.ctx)
				if err != nil {
					t.Fatal(err)
				}
				resp := editJSON(t, e.get(k, b.Options), func(m map[string]any) { delete(obj(m, "response"), "userHandle") })
				return finishLogin(e, e.rp, b, resp)
			}},
		{name: "step 6 discoverable with another user's handle", want: webauthn.ErrUserHandle, step: "§7.2 step 6",
			run: func(t *testing.T, e *env) func() error {
				_, k, _ := one(t, e, nil)
				bob := e.user("bob")
				b, err := e.rp.BeginDiscoverableLogin(e.ctx)
				if err != nil {
					t.Fatal(err)
				}
				resp := editJSON(t, e.get(k, b.Options), func(m map[string]any) { obj(m, "response")["userHandle"] = b64(bob.ID) })
				return finishLogin(e, e.rp, b, resp)
			}},
		{name: "step 10 type webauthn.create", want: webauthn.ErrWrongType, step: "§7.2 step 10",
			run: func(t *testing.T, e *env) func() error {
				u, k, c := one(t, e, nil)
				b := e.beginLogin(u)
				// The key signs whatever client data it is given.
				cdj := clientData("webauthn.create", challengeOf(t, b.Options), testOrigin, "")
				return finishLogin(e, e.rp, b, assertion(t, k, testRPID, c.ID, cdj, false))
			}},
		{name: "step 11 challenge", want: webauthn.ErrChallengeMismatch, step: "§7.2 step 11",
			run: plain(nil, func(m map[string]any) { m["challenge"] = b64(randomBytes(32)) }, nil)},
		{name: "step 12 origin", want: webauthn.ErrOrigin, step: "§7.2 step 12",
			run: func(t *testing.T, e *env) func() error {
				u, k, c := one(t, e, nil)
				b := e.beginLogin(u)
				cdj := clientData("webauthn.get", challengeOf(t, b.Options), "https://evil.example.com", "")
				return finishLogin(e, e.rp, b, assertion(t, k, testRPID, c.ID, cdj, false))
			}},
		{name: "step 13 cross-origin", want: webauthn.ErrOrigin, step: "§7.2 step 13",
			run: func(t *testing.T, e *env) func() error {
				u, k, c := one(t, e, nil)
				b := e.beginLogin(u)
				// A page of the relying party in a cross-origin iframe:
				// the origin is right, crossOrigin says where it ran.
				cdj := clientData("webauthn.get", challengeOf(t, b.Options), testOrigin, "")
				cdj = bytes.Replace(cdj, []byte(`"crossOrigin":false`), []byte(`"crossOrigin":true`), 1)
				return finishLogin(e, e.rp, b, assertion(t, k, testRPID, c.ID, cdj, false))
			}},
		{name: "step 13 cross-origin, discoverable", want: webauthn.ErrOrigin, step: "§7.2 step 13",
			run: func(t *testing.T, e *env) func() error {
				_, k, _ := one(t, e, nil)
				b, err := e.rp.BeginDiscoverableLogin(e.ctx)
				if err != nil {
					t.Fatal(err)
				}
				cdj := clientData("webauthn.get", challengeOf(t, b.Options), testOrigin, "")
				cdj = bytes.Replace(cdj, []byte(`"crossOrigin":false`), []byte(`"crossOrigin":true`), 1)
				return finishLogin(e, e.rp, b, assertion(t, k, testRPID, nil, cdj, false))
			}},
		{name: "step 14 top origin", want: webauthn.ErrOrigin, step: "§7.2 step 14",
			run: func(t *testing.T, e *env) func() error {
				u, k, c := one(t, e, nil)
				b := e.beginLogin(u)
				cdj := clientData("webauthn.get", challengeOf(t, b.Options), testOrigin, `,"topOrigin":"https://example.org"`)
				return finishLogin(e, e.rp, b, assertion(t, k, testRPID, c.ID, cdj, false))
			}},
		{name: "step 15 rpIdHash", want: webauthn.ErrRPIDHash, step: "§7.2 step 15",
			run: func(t *testing.T, e *env) func() error {
				// A relying party for login.example.com shares the store;
				// its credential, used with example.com's options, is
				// scoped to the wrong RP ID.
				narrow := e.newRP(func(c *webauthn.Config) { c.RPID = "login.example.com" })
				u := e.user("alice")
				k := e.key(nil)
				if _, err := k.Register(e.ctx, narrow, u.ID, ""); err != nil {
					t.Fatal(err)
				}
				b := e.beginLogin(u)
				resp := e.get(k, editJSON(t, b.Options, func(m map[string]any) { m["rpId"] = "login.example.com" }))
				return finishLogin(e, e.rp, b, resp)
			}},
		{name: "step 16 user presence", want: webauthn.ErrUserPresence, step: "§7.2 step 16",
			run: func(t *testing.T, e *env) func() error {
				u, k, c := one(t, e, nil)
				b := e.beginLogin(u)
				// A silent assertion ("up": false), which keys make
				// without a touch.
				cdj := clientData("webauthn.get", challengeOf(t, b.Options), testOrigin, "")
				return finishLogin(e, e.rp, b, assertion(t, k, testRPID, c.ID, cdj, true))
			}},
		{name: "step 16 user presence forced off", want: webauthn.ErrUserPresence, step: "§7.2 step 16",
			// Registered by an honest key, now lying about presence.
			run: changed(virtual.Config{}, virtual.Config{ForceUPOff: true}, false)},
		{name: "step 17 user verification", want: webauthn.ErrUserVerification, step: "§7.2 step 17",
			cfg: func(c *webauthn.Config) { c.Policy.UserVerification = webauthn.Required },
			// Registered with the user verified; now the key verifies
			// the PIN, then clears UV and signs over the lie.
			run: changed(virtual.Config{}, virtual.Config{ForceUVOff: true}, true)},
		{name: "step 18 BS without BE", want: webauthn.ErrBackupFlags, step: "§7.2 step 18",
			run: changed(virtual.Config{}, virtual.Config{BackupState: true}, false)},
		{name: "step 19 BE set after registration", want: webauthn.ErrBackupFlags, step: "§7.2 step 19",
			run: changed(virtual.Config{}, virtual.Config{BackupEligible: true}, false)},
		{name: "step 19 BE cleared after registration", want: webauthn.ErrBackupFlags, step: "§7.2 step 19",
			run: changed(virtual.Config{BackupEligible: true, BackupState: true}, virtual.Config{}, false)},
		{name: "step 21 bad signature", want: webauthn.ErrSignature, step: "§7.2 step 21",
			// Registered with "none" conveyance, so the (equally bad)
			// attestation signature is not checked.
			run: plain(&virtual.Config{BadSignature: true}, nil, nil)},
		{name: "step 22 counter went back", want: webauthn.ErrSignCount, step: "§7.2 step 22",
			clone: func() []byte { return cloned },
			run: func(t *testing.T, e *env) func() error {
				u, k, c := one(t, e, nil)
				e.login(k, u)
				cloned = c.ID
				if err := k.Key().SetCounter(1); err != nil {
					t.Fatal(err)
				}
				b := e.beginLogin(u)
				return finishLogin(e, e.rp, b, e.get(k, b.Options))
			}},
		{name: "step 22 counter went back to zero", want: webauthn.ErrSignCount, step: "§7.2 step 22",
			clone: func() []byte { return cloned },
			run: func(t *testing.T, e *env) func() error {
				u, k, c := one(t, e, nil)
				if c.SignCount != 1 {
					t.Fatalf("registered with counter %d, want 1", c.SignCount)
				}
				cloned = c.ID
				// Reset: the next assertion carries 1, not more than the
				// stored 1.
				if err := k.Key().SetCounter(0); err != nil {
					t.Fatal(err)
				}
				b := e.beginLogin(u)
				return finishLogin(e, e.rp, b, e.get(k, b.Options))
			}},
		{name: "deactivated key", want: webauthn.ErrInactive, step: "credential record",
			run: func(t *testing.T, e *env) func() error {
				u, k, c := one(t, e, nil)
				b := e.beginLogin(u)
				if err := e.rp.DeactivateCredential(e.ctx, u.ID, c.ID); err != nil {
					t.Fatal(err)
				}
				return finishLogin(e, e.rp, b, e.get(k, b.Options))
			}},
		{name: "deactivated key, discoverable", want: webauthn.ErrInactive, step: "credential record",
			run: func(t *testing.T, e *env) func() error {
				u, k, c := one(t, e, nil)
				if err := e.rp.DeactivateCredential(e.ctx, u.ID, c.ID); err != nil {
					t.Fatal(err)
				}
				b, err := e.rp.BeginDiscoverableLogin(e.ctx)
				if err != nil {
					t.Fatal(err)
				}
				return finishLogin(e, e.rp, b, e.get(k, b.Options))
			}},
		{name: "expired challenge", want: webauthn.ErrExpired, step: "challenge",
			cfg: func(c *webauthn.Config) { c.ChallengeTimeout = time.Minute },
			run: func(t *testing.T, e *env) func() error {
				u, k, _ := one(t, e, nil)
				b := e.beginLogin(u)
				resp := e.get(k, b.Options)
				e.clock.Advance(time.Minute)
				return finishLogin(e, e.rp, b, resp)
			}},
		{name: "reused challenge", want: webauthn.ErrChallengeUnknown, step: "challenge",
			run: func(t *testing.T, e *env) func() error {
				u, k, _ := one(t, e, nil)
				b := e.beginLogin(u)
				resp := e.get(k, b.Options)
				if _, _, err := e.rp.FinishLogin(e.ctx, b.ChallengeID, resp); err != nil {
					t.Fatal(err)
				}
				return finishLogin(e, e.rp, b, resp)
			}},
		{name: "registration challenge", want: webauthn.ErrChallengeUnknown, step: "challenge",
			run: func(t *testing.T, e *env) func() error {
				u, k, _ := one(t, e, nil)
				br := e.beginRegistration(u)
				b := e.beginLogin(u)
				return finishLogin(e, e.rp, br, e.get(k, b.Options))
			}},
	}
	runNegativeLogin(t, cases)
}

// TestLoginRaceOneChallenge finishes one sign-in from many goroutines at
// once: exactly one may succeed.
func TestLoginRaceOneChallenge(t *testing.T) {
	e := newEnv(t, nil)
	u := e.user("alice")
	k := e.key(nil)
	e.register(k, u, "")
	b := e.beginLogin(u)
	resp := e.get(k, b.Options)

	const n = 16
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			_, _, errs[i] = e.rp.FinishLogin(e.ctx, b.ChallengeID, resp)
		})
	}
	close(start)
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, webauthn.ErrChallengeUnknown):
			t.Errorf("a losing FinishLogin = %v, want ErrChallengeUnknown", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d of %d concurrent FinishLogin calls succeeded, want exactly 1", ok, n)
	}
}

// hookStore runs a hook before the first RecordSignIn, to interleave
// another server's sign-in with one in progress.
type hookStore struct {
	*webauthn.MemoryStore
	mu   sync.Mutex
	hook func()
}

func (s *hookStore) RecordSignIn(ctx context.Context, in webauthn.SignIn) error {
	s.mu.Lock()
	hook := s.hook
	s.hook = nil
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	return s.MemoryStore.RecordSignIn(ctx, in)
}

// TestLoginCounterCompareAndSet interleaves two sign-ins with one key, as
// two servers would: the later signature (higher counter) is recorded
// after the earlier one moved the counter, so its compare-and-set fails
// once and succeeds on the reloaded count.
func TestLoginCounterCompareAndSet(t *testing.T) {
	mem := webauthn.NewMemoryStore()
	hs := &hookStore{MemoryStore: mem}
	e := newEnv(t, func(c *webauthn.Config) { c.Store = hs })
	e.store = hs
	u := e.user("alice")
	k := e.key(nil)
	e.register(k, u, "")
	b1, b2 := e.beginLogin(u), e.beginLogin(u)
	r1 := e.get(k, b1.Options)
	r2 := e.get(k, b2.Options)
	var first error
	hs.hook = func() { _, _, first = e.rp.FinishLogin(e.ctx, b1.ChallengeID, r1) }
	_, c2, err := e.rp.FinishLogin(e.ctx, b2.ChallengeID, r2)
	if first != nil || err != nil {
		t.Fatalf("interleaved sign-ins: %v, %v", first, err)
	}
	if c2.SignCount != k.Key().Counter() || c2.CloneWarning {
		t.Errorf("after both: count %d (key at %d), clone warning %v", c2.SignCount, k.Key().Counter(), c2.CloneWarning)
	}

	// The other order: the later signature lands first, so the earlier
	// one is a counter that went back.
	b1, b2 = e.beginLogin(u), e.beginLogin(u)
	r1 = e.get(k, b1.Options)
	r2 = e.get(k, b2.Options)
	if _, _, err := e.rp.FinishLogin(e.ctx, b2.ChallengeID, r2); err != nil {
		t.Fatal(err)
	}
	_, _, err = e.rp.FinishLogin(e.ctx, b1.ChallengeID, r1)
	wantErr(t, err, webauthn.ErrSignCount, "§7.2 step 22")
}

// TestCounterlessKey: a key whose counter stays zero signs in again and
// again (WebAuthn L3 §7.2 step 22 applies only if a counter is non-zero).
func TestCounterlessKey(t *testing.T) {
	e := newEnv(t, nil)
	u := e.user("alice")
	k := e.key(nil)
	// The key's next signature carries n+1, which wraps to 0.
	zero := func() {
		t.Helper()
		if err := k.Key().SetCounter(^uint32(0)); err != nil {
			t.Fatal(err)
		}
	}
	zero()
	if c := e.register(k, u, ""); c.SignCount != 0 {
		t.Fatalf("registered with counter %d, want 0", c.SignCount)
	}
	for range 3 {
		zero()
		_, c, err := k.Login(e.ctx, e.rp, u.ID)
		if err != nil || c.SignCount != 0 || c.CloneWarning {
			t.Fatalf("sign-in with a zero counter: %v, %+v", err, c)
		}
	}
}

func TestKeyLifecycle(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := e.user("alice"), e.user("bob")
	k1, k2 := e.key(nil), e.key(nil)
	c1 := e.register(k1, alice, "one")
	c2 := e.register(k2, alice, "two")
	cb := e.register(e.key(nil), bob, "bob's")

	creds, err := e.rp.Credentials(e.ctx, alice.ID)
	if err != nil || len(creds) != 2 || !bytes.Equal(creds[0].ID, c1.ID) || !bytes.Equal(creds[1].ID, c2.ID) {
		t.Fatalf("Credentials = %v, %v", creds, err)
	}
	if err := e.rp.RenameCredential(e.ctx, alice.ID, c2.ID, "Backup key"); err != nil {
		t.Fatal(err)
	}
	if c, _ := e.rp.Credential(e.ctx, alice.ID, c2.ID); c.Name != "Backup key" {
		t.Errorf("renamed to %q", c.Name)
	}
	if err := e.rp.RenameCredential(e.ctx, alice.ID, c2.ID, "bad\nname"); !errors.Is(err, webauthn.ErrInvalidRequest) {
		t.Errorf("rename to a bad name = %v", err)
	}

	// Deactivated: no longer offered, and refused if used anyway.
	if err := e.rp.DeactivateCredential(e.ctx, alice.ID, c1.ID); err != nil {
		t.Fatal(err)
	}
	c, _ := e.rp.Credential(e.ctx, alice.ID, c1.ID)
	at := c.Deactivated
	if c.Active() || at.IsZero() {
		t.Fatal("not deactivated")
	}
	e.clock.Advance(time.Hour)
	if err := e.rp.DeactivateCredential(e.ctx, alice.ID, c1.ID); err != nil {
		t.Fatal(err)
	}
	if c, _ := e.rp.Credential(e.ctx, alice.ID, c1.ID); !c.Deactivated.Equal(at) {
		t.Errorf("deactivating again moved the time from %v to %v", at, c.Deactivated)
	}
	if _, _, err := k1.Login(e.ctx, e.rp, alice.ID); !errors.Is(err, fido.ErrNotAllowed) {
		t.Errorf("sign-in with the deactivated key = %v, want the key to find no allowed credential", err)
	}
	if _, _, err := k1.LoginDiscoverable(e.ctx, e.rp); !errors.Is(err, webauthn.ErrInactive) {
		t.Errorf("discoverable sign-in with the deactivated key = %v, want ErrInactive", err)
	}
	e.login(k2, alice)

	if err := e.rp.ReactivateCredential(e.ctx, alice.ID, c1.ID); err != nil {
		t.Fatal(err)
	}
	e.login(k1, alice)

	// Another user's key is no key at all.
	for name, op := range map[string]func() error{
		"rename":     func() error { return e.rp.RenameCredential(e.ctx, alice.ID, cb.ID, "mine") },
		"deactivate": func() error { return e.rp.DeactivateCredential(e.ctx, alice.ID, cb.ID) },
		"reactivate": func() error { return e.rp.ReactivateCredential(e.ctx, alice.ID, cb.ID) },
		"delete":     func() error { return e.rp.DeleteCredential(e.ctx, alice.ID, cb.ID) },
		"read": func() error {
			_, err := e.rp.Credential(e.ctx, alice.ID, cb.ID)
			return err
		},
	} {
		if err := op(); !errors.Is(err, webauthn.ErrUnknownCredential) || !errors.Is(err, webauthn.ErrNotFound) {
			t.Errorf("%s bob's key as alice = %v, want ErrUnknownCredential", name, err)
		}
	}

	if err := e.rp.DeleteCredential(e.ctx, alice.ID, c2.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := k2.LoginDiscoverable(e.ctx, e.rp); !errors.Is(err, webauthn.ErrUnknownCredential) {
		t.Errorf("sign-in with a deleted key = %v, want ErrUnknownCredential", err)
	}
	if err := e.rp.DeleteCredential(e.ctx, alice.ID, c2.ID); !errors.Is(err, webauthn.ErrUnknownCredential) {
		t.Errorf("deleting twice = %v", err)
	}
	// The key can be registered again: a new credential.
	c3 := e.register(k2, alice, "two again")
	if bytes.Equal(c3.ID, c2.ID) {
		t.Error("re-registration reused the deleted credential ID")
	}

	if creds, err := e.rp.Credentials(e.ctx, e.user("carol").ID); err != nil || len(creds) != 0 {
		t.Errorf("Credentials of a user without keys = %v, %v", creds, err)
	}
	if _, err := e.rp.Credentials(e.ctx, []byte("nobody")); !errors.Is(err, webauthn.ErrUnknownUser) {
		t.Errorf("Credentials of an unknown user = %v", err)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func TestPurgeChallenges(t *testing.T) {
	e := newEnv(t, nil)
	u := e.user("alice")
	e.beginRegistration(u)
	if _, err := e.rp.BeginDiscoverableLogin(e.ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := e.rp.PurgeChallenges(e.ctx); err != nil || n != 0 {
		t.Errorf("PurgeChallenges before expiry = %d, %v", n, err)
	}
	e.clock.Advance(webauthn.DefaultChallengeTimeout)
	if n, err := e.rp.PurgeChallenges(e.ctx); err != nil || n != 2 {
		t.Errorf("PurgeChallenges after expiry = %d, %v; want 2", n, err)
	}
}
