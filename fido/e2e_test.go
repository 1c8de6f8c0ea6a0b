package fido_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/go-webauthn/webauthn/protocol"
	gowebauthn "github.com/go-webauthn/webauthn/webauthn"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
)

// These tests run the WebAuthn client against a virtual key and check what
// it produces with go-webauthn, an independent relying party: if
// go-webauthn accepts the registration and the sign-in, a browser's output
// would have been no different.

const (
	testRPID   = "example.com"
	testOrigin = "https://login.example.com"
)

// transport opens a virtual key the way a program would.
type transport struct {
	name string
	open func(t testing.TB, k *virtual.Key) *fido.Device
}

// transports are the ways to reach a virtual key: in memory, and over its
// socket with hidraw framing, as fido.Open reaches a real key.
var transports = []transport{
	{"inprocess", openInProcess},
	{"socket", openSocket},
}

func openInProcess(t testing.TB, k *virtual.Key) *fido.Device {
	t.Helper()
	d, err := k.Open(context.Background(), &fido.Opener{})
	if err != nil {
		t.Fatalf("opening virtual key in process: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

func openSocket(t testing.TB, k *virtual.Key) *fido.Device {
	t.Helper()
	// AF_UNIX paths are limited to about 100 bytes, which t.TempDir's
	// long names can exceed.
	dir, err := os.MkdirTemp("", "fidokit")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "key")
	srv, err := k.Listen(path)
	if err != nil {
		t.Fatalf("listening on %s: %v", path, err)
	}
	t.Cleanup(func() { srv.Close() })
	d, err := fido.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// newKey makes a virtual key that is closed when the test ends.
func newKey(t testing.TB, cfg *virtual.Config) *virtual.Key {
	t.Helper()
	k, err := virtual.New(cfg)
	if err != nil {
		t.Fatalf("virtual.New: %v", err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// account is a relying party's user.
type account struct {
	id    []byte
	name  string
	creds []gowebauthn.Credential
}

func (a *account) WebAuthnID() []byte                           { return a.id }
func (a *account) WebAuthnName() string                         { return a.name }
func (a *account) WebAuthnDisplayName() string                  { return "User " + a.name }
func (a *account) WebAuthnCredentials() []gowebauthn.Credential { return a.creds }

// update stores what a sign-in changed about a credential.
func (a *account) update(c *gowebauthn.Credential) {
	for i := range a.creds {
		if bytes.Equal(a.creds[i].ID, c.ID) {
			a.creds[i] = *c
		}
	}
}

func newAccount(name string) *account { return &account{id: []byte("id-" + name), name: name} }

// relyingParty is go-webauthn configured for testRPID.
type relyingParty struct{ w *gowebauthn.WebAuthn }

func newRelyingParty(t testing.TB) *relyingParty {
	t.Helper()
	w, err := gowebauthn.New(&gowebauthn.Config{
		RPID:          testRPID,
		RPDisplayName: "Example",
		RPOrigins:     []string{testOrigin},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &relyingParty{w: w}
}

// rpError describes a go-webauthn error with its developer details, which
// its Error method leaves out.
func rpError(err error) string {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return fmt.Sprintf("%v (%s)", err, pe.DevInfo)
	}
	return err.Error()
}

// beginRegistration returns creation options JSON and the session.
func (rp *relyingParty) beginRegistration(t testing.TB, u *account, opts ...gowebauthn.RegistrationOption) ([]byte, *gowebauthn.SessionData) {
	t.Helper()
	creation, session, err := rp.w.BeginRegistration(u, opts...)
	if err != nil {
		t.Fatalf("BeginRegistration: %v", err)
	}
	options, err := json.Marshal(creation)
	if err != nil {
		t.Fatal(err)
	}
	return options, session
}

// finishRegistration verifies a RegistrationResponseJSON and stores the
// credential with u.
func (rp *relyingParty) finishRegistration(u *account, session *gowebauthn.SessionData, response []byte) (*gowebauthn.Credential, error) {
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return nil, fmt.Errorf("parsing registration: %s", rpError(err))
	}
	cred, err := rp.w.CreateCredential(u, *session, parsed)
	if err != nil {
		return nil, fmt.Errorf("verifying registration: %s", rpError(err))
	}
	u.creds = append(u.creds, *cred)
	return cred, nil
}

// register runs a whole registration and fails the test if it does not
// verify.
func (rp *relyingParty) register(t testing.TB, c *fido.WebAuthnClient, u *account, opts ...gowebauthn.RegistrationOption) *gowebauthn.Credential {
	t.Helper()
	options, session := rp.beginRegistration(t, u, opts...)
	response, err := c.Create(context.Background(), options)
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	cred, err := rp.finishRegistration(u, session, response)
	if err != nil {
		t.Fatalf("%v\nresponse: %s", err, response)
	}
	return cred
}

// beginLogin returns request options JSON naming u's credentials.
func (rp *relyingParty) beginLogin(t testing.TB, u *account, opts ...gowebauthn.LoginOption) ([]byte, *gowebauthn.SessionData) {
	t.Helper()
	assertion, session, err := rp.w.BeginLogin(u, opts...)
	if err != nil {
		t.Fatalf("BeginLogin: %v", err)
	}
	options, err := json.Marshal(assertion)
	if err != nil {
		t.Fatal(err)
	}
	return options, session
}

// finishLogin verifies an AuthenticationResponseJSON for u.
func (rp *relyingParty) finishLogin(u *account, session *gowebauthn.SessionData, response []byte) (*gowebauthn.Credential, error) {
	parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		return nil, fmt.Errorf("parsing sign-in: %s", rpError(err))
	}
	cred, err := rp.w.ValidateLogin(u, *session, parsed)
	if err != nil {
		return nil, fmt.Errorf("verifying sign-in: %s", rpError(err))
	}
	u.update(cred)
	return cred, nil
}

// login runs a whole sign-in and fails the test if it does not verify.
func (rp *relyingParty) login(t testing.TB, c *fido.WebAuthnClient, u *account) *gowebauthn.Credential {
	t.Helper()
	options, session := rp.beginLogin(t, u)
	response, err := c.Get(context.Background(), options)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	cred, err := rp.finishLogin(u, session, response)
	if err != nil {
		t.Fatalf("%v\nresponse: %s", err, response)
	}
	return cred
}

func client(a fido.Authenticator) *fido.WebAuthnClient {
	return &fido.WebAuthnClient{Authenticator: a, Origin: testOrigin}
}

// attestationChain returns the x5c certificates of a registration response.
func attestationChain(t testing.TB, response []byte) []*x509.Certificate {
	t.Helper()
	var r struct {
		Response struct{ AttestationObject string }
	}
	if err := json.Unmarshal(response, &r); err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.DecodeString(r.Response.AttestationObject)
	if err != nil {
		t.Fatal(err)
	}
	var obj struct {
		AttStmt struct {
			X5C [][]byte `cbor:"x5c"`
		} `cbor:"attStmt"`
	}
	if err := cbor.Unmarshal(raw, &obj); err != nil {
		t.Fatal(err)
	}
	var certs []*x509.Certificate
	for _, der := range obj.AttStmt.X5C {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		certs = append(certs, c)
	}
	return certs
}

func TestWebAuthnRegisterAndLogin(t *testing.T) {
	ca, err := virtual.NewAttestationCA(nil, "fidokit test attestation CA")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name        string
		alg         fido.Algorithm
		attestation virtual.AttestationFormat
		conveyance  protocol.ConveyancePreference
		wantFormat  string
		wantType    string
	}{
		{"ES256 packed", fido.ES256, virtual.AttestationPacked, protocol.PreferDirectAttestation, "packed", "basic_full"},
		{"EdDSA packed", fido.EdDSA, virtual.AttestationPacked, protocol.PreferDirectAttestation, "packed", "basic_full"},
		{"ES256 self", fido.ES256, virtual.AttestationSelf, protocol.PreferDirectAttestation, "packed", "basic_surrogate"},
		{"EdDSA self", fido.EdDSA, virtual.AttestationSelf, protocol.PreferDirectAttestation, "packed", "basic_surrogate"},
		{"ES256 none from key", fido.ES256, virtual.AttestationNone, protocol.PreferDirectAttestation, "none", "none"},
		// The client anonymises a packed statement when the relying
		// party asks for none (WebAuthn L3 §5.1.3).
		{"ES256 packed, none conveyed", fido.ES256, virtual.AttestationPacked, protocol.PreferNoAttestation, "none", "none"},
		{"EdDSA self, none conveyed", fido.EdDSA, virtual.AttestationSelf, protocol.PreferNoAttestation, "none", "none"},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				k := newKey(t, &virtual.Config{
					Algorithms:    []fido.Algorithm{tt.alg},
					Attestation:   tt.attestation,
					AttestationCA: ca,
				})
				c := client(tr.open(t, k))
				rp := newRelyingParty(t)
				u := newAccount("alice")

				options, session := rp.beginRegistration(t, u, gowebauthn.WithConveyancePreference(tt.conveyance))
				response, err := c.Create(context.Background(), options)
				if err != nil {
					t.Fatalf("Create: %v", err)
				}
				cred, err := rp.finishRegistration(u, session, response)
				if err != nil {
					t.Fatalf("%v\nresponse: %s", err, response)
				}
				if cred.AttestationFormat != tt.wantFormat || cred.AttestationType != tt.wantType {
					t.Errorf("attestation = %s/%s, want %s/%s", cred.AttestationFormat, cred.AttestationType, tt.wantFormat, tt.wantType)
				}
				if tt.wantType == "basic_full" {
					chain := attestationChain(t, response)
					pool := x509.NewCertPool()
					pool.AddCert(ca.Certificate)
					if len(chain) == 0 {
						t.Fatal("packed attestation without x5c")
					}
					if _, err := chain[0].Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
						t.Errorf("attestation certificate does not chain to the CA: %v", err)
					}
				}
				var r struct {
					Response struct {
						PublicKeyAlgorithm fido.Algorithm
						PublicKey          string
					}
				}
				if err := json.Unmarshal(response, &r); err != nil {
					t.Fatal(err)
				}
				if r.Response.PublicKeyAlgorithm != tt.alg || r.Response.PublicKey == "" {
					t.Errorf("publicKeyAlgorithm, publicKey = %v, %q; want %v and a key", r.Response.PublicKeyAlgorithm, r.Response.PublicKey, tt.alg)
				}

				for range 2 {
					got := rp.login(t, c, u)
					if !bytes.Equal(got.ID, cred.ID) {
						t.Errorf("signed in with credential %x, want %x", got.ID, cred.ID)
					}
					if got.Authenticator.CloneWarning {
						t.Error("clone warning on an honest key")
					}
				}
			})
		}
	}
}

func TestWebAuthnU2FOnlyKey(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			k := newKey(t, &virtual.Config{U2FOnly: true})
			c := client(tr.open(t, k))
			rp := newRelyingParty(t)
			u := newAccount("alice")
			cred := rp.register(t, c, u, gowebauthn.WithConveyancePreference(protocol.PreferDirectAttestation))
			if cred.AttestationFormat != "fido-u2f" {
				t.Errorf("attestation format = %q, want fido-u2f", cred.AttestationFormat)
			}
			for range 2 {
				rp.login(t, c, u)
			}
		})
	}
}

func TestWebAuthnExcludeCredentials(t *testing.T) {
	for _, tr := range transports {
		for _, u2f := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/u2f=%v", tr.name, u2f), func(t *testing.T) {
				k := newKey(t, &virtual.Config{U2FOnly: u2f})
				c := client(tr.open(t, k))
				rp := newRelyingParty(t)
				u := newAccount("alice")
				rp.register(t, c, u)

				var exclude []protocol.CredentialDescriptor
				for _, cred := range u.creds {
					exclude = append(exclude, cred.Descriptor())
				}
				options, _ := rp.beginRegistration(t, u, gowebauthn.WithExclusions(exclude))
				_, err := c.Create(context.Background(), options)
				if !errors.Is(err, fido.StatusCredentialExcluded) {
					t.Fatalf("Create with the key's credential excluded = %v, want StatusCredentialExcluded", err)
				}
				// WebAuthn L3 §5.1.3 reports this case as InvalidStateError,
				// not the catch-all NotAllowedError.
				var ce *fido.CeremonyError
				if !errors.As(err, &ce) || !errors.Is(err, fido.ErrInvalidState) || errors.Is(err, fido.ErrNotAllowed) {
					t.Errorf("Create = %v, want a *CeremonyError matching ErrInvalidState only", err)
				}

				// Another account's credentials do not stop it.
				other := newAccount("bob")
				rp.register(t, c, other, gowebauthn.WithExclusions([]protocol.CredentialDescriptor{{
					Type: protocol.PublicKeyCredentialType, CredentialID: []byte("not a credential of this key"),
				}}))
			})
		}
	}
}

func TestWebAuthnDiscoverableAccounts(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			k := newKey(t, &virtual.Config{})
			dev := tr.open(t, k)
			c := client(dev)
			rp := newRelyingParty(t)
			users := map[string]*account{}
			for _, name := range []string{"alice", "bob", "carol"} {
				u := newAccount(name)
				users[string(u.id)] = u
				rp.register(t, c, u, gowebauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired))
				time.Sleep(10 * time.Millisecond) // distinct creation times
			}

			var offered []*fido.Assertion
			c.SelectAccount = func(as []*fido.Assertion) (int, error) {
				offered = as
				return 1, nil
			}
			assertion, session, err := rp.w.BeginDiscoverableLogin()
			if err != nil {
				t.Fatal(err)
			}
			options, err := json.Marshal(assertion)
			if err != nil {
				t.Fatal(err)
			}
			response, err := c.Get(context.Background(), options)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if len(offered) != 3 {
				t.Fatalf("SelectAccount was offered %d accounts, want 3", len(offered))
			}
			// Without user verification the key returns only user
			// handles, no names (CTAP 2.1 §6.2.2).
			var handles []string
			for _, a := range offered {
				if a.User == nil {
					t.Fatal("discoverable assertion without a user")
				}
				handles = append(handles, string(a.User.ID))
			}
			if want := []string{"id-carol", "id-bob", "id-alice"}; fmt.Sprint(handles) != fmt.Sprint(want) {
				t.Errorf("accounts offered %v, want newest first %v", handles, want)
			}

			parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
			if err != nil {
				t.Fatal(rpError(err))
			}
			var signedIn *account
			cred, err := rp.w.ValidateDiscoverableLogin(func(rawID, userHandle []byte) (gowebauthn.User, error) {
				u, ok := users[string(userHandle)]
				if !ok {
					return nil, fmt.Errorf("no user with handle %q", userHandle)
				}
				signedIn = u
				return u, nil
			}, *session, parsed)
			if err != nil {
				t.Fatalf("ValidateDiscoverableLogin: %s", rpError(err))
			}
			if signedIn == nil || !bytes.Equal(signedIn.id, offered[1].User.ID) {
				t.Fatalf("signed in as %v, want the second account offered, %q", signedIn, offered[1].User.ID)
			}
			if !bytes.Equal(cred.ID, offered[1].CredentialID) {
				t.Error("verified credential is not the chosen one")
			}

			// Without SelectAccount the newest account signs in.
			c.SelectAccount = nil
			response, err = c.Get(context.Background(), options)
			if err != nil {
				t.Fatal(err)
			}
			parsed, err = protocol.ParseCredentialRequestResponseBytes(response)
			if err != nil {
				t.Fatal(rpError(err))
			}
			if got := string(parsed.Response.UserHandle); got != "id-carol" {
				t.Errorf("userHandle = %q, want the newest account's", got)
			}
		})
	}
}

func TestWebAuthnUserPresenceFails(t *testing.T) {
	tests := []struct {
		name       string
		cfg        func() *virtual.Config
		wantStatus fido.Status
	}{
		{"denied", func() *virtual.Config {
			return &virtual.Config{UserPresence: virtual.Deny}
		}, fido.StatusOperationDenied},
		{"timed out", func() *virtual.Config {
			return &virtual.Config{UserPresence: virtual.NewButton().Presence(), UserPresenceTimeout: 300 * time.Millisecond}
		}, fido.StatusUserActionTimeout},
	}
	for _, tr := range transports {
		for _, tt := range tests {
			t.Run(tr.name+"/"+tt.name, func(t *testing.T) {
				k := newKey(t, tt.cfg())
				c := client(tr.open(t, k))
				rp := newRelyingParty(t)
				options, _ := rp.beginRegistration(t, newAccount("alice"))
				_, err := c.Create(context.Background(), options)
				var ce *fido.CeremonyError
				if !errors.Is(err, fido.ErrNotAllowed) || !errors.As(err, &ce) || !errors.Is(err, tt.wantStatus) {
					t.Errorf("Create = %v, want ErrNotAllowed with %v", err, tt.wantStatus)
				}
			})
		}
	}
}

func TestWebAuthnCancelWhileWaitingForTouch(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			button := virtual.NewButton()
			k := newKey(t, &virtual.Config{UserPresence: button.Presence()})
			c := client(tr.open(t, k))
			rp := newRelyingParty(t)
			u := newAccount("alice")
			options, _ := rp.beginRegistration(t, u)

			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := c.Create(ctx, options)
				done <- err
			}()
			select {
			case <-button.Waiting():
			case <-time.After(10 * time.Second):
				t.Fatal("the key never waited for a touch")
			}
			cancelled := time.Now()
			cancel()
			select {
			case err := <-done:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("Create after cancel = %v, want context.Canceled", err)
				}
				if d := time.Since(cancelled); d > time.Second {
					t.Errorf("Create returned %v after cancel", d)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("Create did not return after cancel")
			}

			// The key still works: touch it this time.
			go func() {
				select {
				case <-button.Waiting():
					button.Press()
				case <-time.After(10 * time.Second):
				}
			}()
			rp.register(t, c, u)
		})
	}
}

func TestWebAuthnSignCounter(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			k := newKey(t, &virtual.Config{})
			c := client(tr.open(t, k))
			rp := newRelyingParty(t)
			u := newAccount("alice")
			cred := rp.register(t, c, u)
			last := cred.Authenticator.SignCount
			for i := range 3 {
				got := rp.login(t, c, u)
				if got.Authenticator.SignCount <= last {
					t.Errorf("sign-in %d: counter %d after %d", i, got.Authenticator.SignCount, last)
				}
				last = got.Authenticator.SignCount
			}

			// A counter that went back is the mark of a cloned key
			// (WebAuthn L3 §6.1.1); the relying party flags it.
			if err := k.SetCounter(1); err != nil {
				t.Fatal(err)
			}
			got := rp.login(t, c, u)
			if !got.Authenticator.CloneWarning {
				t.Errorf("no clone warning after the counter went from %d back to %d", last, got.Authenticator.SignCount)
			}
		})
	}
}

func TestWebAuthnStateSurvivesRestart(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			statePath := filepath.Join(t.TempDir(), "key.json")
			rp := newRelyingParty(t)
			u := newAccount("alice")
			discoverer := newAccount("bob")

			k, err := virtual.New(&virtual.Config{StatePath: statePath})
			if err != nil {
				t.Fatal(err)
			}
			c := client(tr.open(t, k))
			rp.register(t, c, u)
			rp.register(t, c, discoverer, gowebauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired))
			before := rp.login(t, c, u).Authenticator.SignCount
			if err := k.Close(); err != nil {
				t.Fatal(err)
			}

			k2 := newKey(t, &virtual.Config{StatePath: statePath})
			c2 := client(tr.open(t, k2))
			after := rp.login(t, c2, u)
			if after.Authenticator.SignCount <= before || after.Authenticator.CloneWarning {
				t.Errorf("counter %d after restart, %d before; clone warning %v", after.Authenticator.SignCount, before, after.Authenticator.CloneWarning)
			}
			rp.login(t, c2, discoverer)
		})
	}
}

func TestWebAuthnOriginRefused(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			k := newKey(t, &virtual.Config{})
			dev := tr.open(t, k)
			rp := newRelyingParty(t)
			u := newAccount("alice")
			rp.register(t, client(dev), u)
			counter := k.Counter()

			for _, origin := range []string{"https://example.org", "https://login.example.com.evil.org", "http://login.example.com"} {
				evil := &fido.WebAuthnClient{Authenticator: dev, Origin: origin}
				options, _ := rp.beginLogin(t, u)
				_, err := evil.Get(context.Background(), options)
				var oe *fido.OriginError
				if !errors.Is(err, fido.ErrSecurity) || !errors.As(err, &oe) || oe.RPID != testRPID {
					t.Errorf("Get from %s = %v, want an *OriginError for %s", origin, err, testRPID)
				}
				options, _ = rp.beginRegistration(t, newAccount("mallory"))
				if _, err := evil.Create(context.Background(), options); !errors.Is(err, fido.ErrSecurity) {
					t.Errorf("Create from %s = %v, want ErrSecurity", origin, err)
				}
			}
			if got := k.Counter(); got != counter {
				t.Errorf("counter moved from %d to %d: a refused request reached the key", counter, got)
			}
		})
	}
}

func TestWebAuthnBadSignatureRejected(t *testing.T) {
	for _, tr := range transports {
		t.Run(tr.name, func(t *testing.T) {
			k := newKey(t, &virtual.Config{BadSignature: true})
			c := client(tr.open(t, k))
			rp := newRelyingParty(t)
			u := newAccount("alice")

			// The attestation signature is bad too.
			options, session := rp.beginRegistration(t, u, gowebauthn.WithConveyancePreference(protocol.PreferDirectAttestation))
			response, err := c.Create(context.Background(), options)
			if err != nil {
				t.Fatalf("Create: %v", err)
			}
			if _, err := rp.finishRegistration(u, session, response); err == nil {
				t.Error("go-webauthn accepted a bad attestation signature")
			}

			// With "none" conveyed the attestation signature is not
			// checked, so the credential registers; the sign-in then
			// carries a bad signature.
			rp.register(t, c, u, gowebauthn.WithConveyancePreference(protocol.PreferNoAttestation))
			options, session = rp.beginLogin(t, u)
			response, err = c.Get(context.Background(), options)
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			if _, err := rp.finishLogin(u, session, response); err == nil {
				t.Error("go-webauthn accepted a bad assertion signature")
			}
		})
	}
}

func TestWebAuthnNoCredentials(t *testing.T) {
	for _, tr := range transports {
		for _, u2f := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/u2f=%v", tr.name, u2f), func(t *testing.T) {
				rp := newRelyingParty(t)
				u := newAccount("alice")
				rp.register(t, client(tr.open(t, newKey(t, &virtual.Config{U2FOnly: u2f}))), u)

				// Another key holds none of alice's credentials.
				other := client(tr.open(t, newKey(t, &virtual.Config{U2FOnly: u2f})))
				options, _ := rp.beginLogin(t, u)
				_, err := other.Get(context.Background(), options)
				if !errors.Is(err, fido.ErrNotAllowed) || !errors.Is(err, fido.StatusNoCredentials) {
					t.Errorf("Get on the wrong key = %v, want ErrNotAllowed and StatusNoCredentials", err)
				}
			})
		}
	}
}
