package fidotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
)

// RPID and Origin are the relying party the suite enrolls with.
const (
	RPID   = "example.com"
	Origin = "https://login.example.com"
)

// waitLimit bounds every wait of the suite for the implementation or the
// key, so that a hang fails the test instead of stalling it.
const waitLimit = 15 * time.Second

// suite is one Run: the implementation and what it cannot do.
type suite struct {
	open   Open
	lim    Limits
	ca     *virtual.AttestationCA
	roots  *x509.CertPool
	aaguid [16]byte
}

// Run runs the behaviour suite against the implementation that open
// opens, one subtest per behaviour. limits declares what the
// implementation cannot do; nil means nothing.
func Run(t *testing.T, open Open, limits *Limits) {
	s := &suite{open: open}
	if limits != nil {
		s.lim = *limits
	}
	ca, err := virtual.NewAttestationCA(nil, "fidotest attestation CA")
	if err != nil {
		t.Fatal(err)
	}
	s.ca = ca
	s.roots = x509.NewCertPool()
	s.roots.AddCert(ca.Certificate)
	copy(s.aaguid[:], "fidotest-aaguid!")

	t.Run("Info", s.testInfo)
	t.Run("MakeCredential", s.testMakeCredential)
	t.Run("ExcludeList", s.testExcludeList)
	t.Run("GetAssertion", s.testGetAssertion)
	t.Run("Silent", s.testSilent)
	t.Run("PresenceDenied", s.testPresenceDenied)
	t.Run("Cancel", s.testCancel)
	t.Run("Reset", s.testReset)
	t.Run("WebAuthn", s.testWebAuthn)
	t.Run("PIN", s.testPIN)
}

// presence is a UserPresence hook that counts touches and can be switched
// to refuse them.
type presence struct {
	deny  atomic.Bool
	count atomic.Int32
}

func (p *presence) hook(ctx context.Context, req virtual.PresenceRequest) error {
	p.count.Add(1)
	if p.deny.Load() {
		return virtual.ErrDenied
	}
	return nil
}

// keyConfig returns a key configuration with the suite's CA and AAGUID,
// the defaults otherwise.
func (s *suite) keyConfig() *virtual.Config {
	return &virtual.Config{AttestationCA: s.ca, AAGUID: s.aaguid}
}

// openWith opens the implementation on a key made from cfg.
func (s *suite) openWith(t *testing.T, cfg *virtual.Config, prompt fido.Prompt) (fido.Authenticator, *virtual.Key) {
	t.Helper()
	return s.open(t, Config{Key: cfg, Prompt: prompt})
}

// hash returns a fresh client data hash.
func hash(t testing.TB) []byte {
	b := make([]byte, 16)
	rand.Read(b)
	h := sha256.Sum256(append([]byte(t.Name()), b...))
	return h[:]
}

// randomID returns a credential ID no key holds.
func randomID() []byte {
	b := make([]byte, 62)
	rand.Read(b)
	return b
}

// makeReq is a MakeCredentialRequest for user name on RPID.
func makeReq(t testing.TB, name string, discoverable bool) *fido.MakeCredentialRequest {
	return &fido.MakeCredentialRequest{
		ClientDataHash: hash(t),
		RP:             fido.RelyingParty{ID: RPID, Name: "Example"},
		User:           fido.User{ID: []byte("id-" + name), Name: name, DisplayName: "User " + name},
		Discoverable:   discoverable,
	}
}

// mustMake makes a credential and fails t if that does not work.
func mustMake(t testing.TB, a fido.Authenticator, req *fido.MakeCredentialRequest) *fido.Attestation {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	defer cancel()
	att, err := a.MakeCredential(ctx, req)
	if err != nil {
		t.Fatalf("MakeCredential(%s, %s): %v", req.RP.ID, req.User.Name, err)
	}
	return att
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
	t.Cleanup(cancel)
	return ctx
}

func (s *suite) testInfo(t *testing.T) {
	tests := []struct {
		name         string
		cfg          func(*virtual.Config)
		wantVersions []string
		notVersions  []string
		ctap2        bool
	}{
		{"CTAP 2.1", func(*virtual.Config) {}, []string{"FIDO_2_0", "FIDO_2_1", "U2F_V2"}, nil, true},
		{"CTAP 2.0", func(c *virtual.Config) { c.CTAPVersion = virtual.CTAP20 }, []string{"FIDO_2_0", "U2F_V2"}, []string{"FIDO_2_1"}, true},
		{"no U2F", func(c *virtual.Config) { c.NoU2F = true }, []string{"FIDO_2_0", "FIDO_2_1"}, []string{"U2F_V2"}, true},
		{"U2F only", func(c *virtual.Config) { c.U2FOnly = true }, []string{"U2F_V2"}, []string{"FIDO_2_0", "FIDO_2_1"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := s.keyConfig()
			cfg.MaxMsgSize = 1500
			tt.cfg(cfg)
			a, _ := s.openWith(t, cfg, fido.Prompt{})
			info, err := a.Info(ctxT(t))
			if err != nil {
				t.Fatalf("Info: %v", err)
			}
			for _, v := range tt.wantVersions {
				if !info.Supports(v) {
					t.Errorf("Versions %q lack %s", info.Versions, v)
				}
			}
			for _, v := range tt.notVersions {
				if info.Supports(v) {
					t.Errorf("Versions %q include %s", info.Versions, v)
				}
			}
			if info.CTAP2() != tt.ctap2 {
				t.Errorf("CTAP2() = %v, want %v", info.CTAP2(), tt.ctap2)
			}
			if !tt.ctap2 {
				if info.AAGUID != ([16]byte{}) {
					t.Errorf("U2F key AAGUID %x, want zero", info.AAGUID)
				}
				return
			}
			if info.AAGUID != s.aaguid {
				t.Errorf("AAGUID %x, want %x", info.AAGUID, s.aaguid)
			}
			for opt, want := range map[string]bool{"rk": true, "up": true, "plat": false} {
				if v, ok := info.Option(opt); !ok || v != want {
					t.Errorf("option %s = %v (supported %v), want %v", opt, v, ok, want)
				}
			}
			if s.lim.PartialInfo {
				return
			}
			if info.MaxMsgSize != 1500 {
				t.Errorf("MaxMsgSize %d, want 1500", info.MaxMsgSize)
			}
			if !info.Supports("FIDO_2_1") {
				return // the fields below are CTAP 2.1's
			}
			if !slices.Equal(info.Algorithms, []fido.Algorithm{fido.ES256, fido.EdDSA}) {
				t.Errorf("Algorithms %v, want [ES256 EdDSA]", info.Algorithms)
			}
			if info.MaxCredentialCountInList != 8 {
				t.Errorf("MaxCredentialCountInList %d, want 8", info.MaxCredentialCountInList)
			}
		})
	}
}

func (s *suite) testMakeCredential(t *testing.T) {
	tests := []struct {
		name         string
		cfg          func(*virtual.Config)
		algs         []fido.Algorithm
		discoverable bool
		wantFormat   string
		wantAlg      fido.Algorithm
		wantCert     bool
	}{
		{"ES256", nil, nil, false, "packed", fido.ES256, true},
		{"EdDSA", nil, []fido.Algorithm{fido.EdDSA}, false, "packed", fido.EdDSA, true},
		{"discoverable ES256", nil, nil, true, "packed", fido.ES256, true},
		{"discoverable EdDSA", nil, []fido.Algorithm{fido.EdDSA}, true, "packed", fido.EdDSA, true},
		{"algorithm fallback", func(c *virtual.Config) { c.Algorithms = []fido.Algorithm{fido.EdDSA} },
			[]fido.Algorithm{fido.ES256, fido.EdDSA}, false, "packed", fido.EdDSA, true},
		{"self attestation", func(c *virtual.Config) { c.Attestation = virtual.AttestationSelf }, nil, false, "packed", fido.ES256, false},
		{"none attestation", func(c *virtual.Config) { c.Attestation = virtual.AttestationNone }, nil, false, "none", fido.ES256, false},
		{"CTAP 2.0 key", func(c *virtual.Config) { c.CTAPVersion = virtual.CTAP20 }, nil, true, "packed", fido.ES256, true},
		{"U2F-only key", func(c *virtual.Config) { c.U2FOnly = true }, nil, false, "fido-u2f", fido.ES256, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := s.keyConfig()
			if tt.cfg != nil {
				tt.cfg(cfg)
			}
			a, k := s.openWith(t, cfg, fido.Prompt{})
			req := makeReq(t, "alice", tt.discoverable)
			req.Algorithms = tt.algs
			att := mustMake(t, a, req)

			if att.Format != tt.wantFormat || att.Algorithm != tt.wantAlg {
				t.Errorf("format %s, algorithm %v; want %s, %v", att.Format, att.Algorithm, tt.wantFormat, tt.wantAlg)
			}
			if !att.UserPresent || att.UserVerified {
				t.Errorf("UP %v UV %v, want UP only", att.UserPresent, att.UserVerified)
			}
			wantAAGUID := s.aaguid
			if tt.wantFormat == "fido-u2f" {
				wantAAGUID = [16]byte{}
			}
			if att.AAGUID != wantAAGUID {
				t.Errorf("AAGUID %x, want %x", att.AAGUID, wantAAGUID)
			}
			leaf, err := VerifyAttestation(att, RPID, req.ClientDataHash, s.roots)
			if err != nil {
				t.Fatalf("attestation does not verify: %v", err)
			}
			if (leaf != nil) != tt.wantCert {
				t.Errorf("attestation certificate present %v, want %v", leaf != nil, tt.wantCert)
			}
			// The check can fail: a statement over another client data
			// hash is refused.
			if tt.wantFormat != "none" {
				other := sha256.Sum256([]byte("another challenge"))
				if _, err := VerifyAttestation(att, RPID, other[:], s.roots); err == nil {
					t.Error("attestation verifies over the wrong client data hash")
				}
			}
			stored := slices.ContainsFunc(k.Credentials(), func(c virtual.Credential) bool {
				return bytes.Equal(c.ID, att.CredentialID) && c.RPID == RPID && bytes.Equal(c.UserID, req.User.ID) && c.UserName == "alice"
			})
			if stored != tt.discoverable {
				t.Errorf("credential stored on the key: %v, want %v", stored, tt.discoverable)
			}

			// And the key signs with the credential it attested.
			get := &fido.GetAssertionRequest{RPID: RPID, ClientDataHash: hash(t), AllowList: [][]byte{att.CredentialID}}
			as, err := a.GetAssertion(ctxT(t), get)
			if err != nil {
				t.Fatalf("GetAssertion: %v", err)
			}
			if err := VerifyAssertion(as[0], att.PublicKey, RPID, get.ClientDataHash); err != nil {
				t.Errorf("assertion does not verify with the attested key: %v", err)
			}
		})
	}

	t.Run("unsupported algorithm", func(t *testing.T) {
		cfg := s.keyConfig()
		cfg.Algorithms = []fido.Algorithm{fido.ES256}
		a, _ := s.openWith(t, cfg, fido.Prompt{})
		req := makeReq(t, "alice", false)
		req.Algorithms = []fido.Algorithm{fido.EdDSA}
		if _, err := a.MakeCredential(ctxT(t), req); !errors.Is(err, fido.StatusUnsupportedAlgorithm) {
			t.Errorf("MakeCredential(EdDSA) on an ES256-only key: %v, want StatusUnsupportedAlgorithm", err)
		}
	})

	t.Run("invalid requests", func(t *testing.T) {
		a, _ := s.openWith(t, s.keyConfig(), fido.Prompt{})
		for name, mutate := range map[string]func(*fido.MakeCredentialRequest){
			"short hash":  func(r *fido.MakeCredentialRequest) { r.ClientDataHash = r.ClientDataHash[:31] },
			"no RP ID":    func(r *fido.MakeCredentialRequest) { r.RP.ID = "" },
			"no user ID":  func(r *fido.MakeCredentialRequest) { r.User.ID = nil },
			"long userID": func(r *fido.MakeCredentialRequest) { r.User.ID = make([]byte, 65) },
		} {
			t.Run(name, func(t *testing.T) {
				req := makeReq(t, "alice", false)
				mutate(req)
				if _, err := a.MakeCredential(ctxT(t), req); !errors.Is(err, fido.ErrInvalidRequest) {
					t.Errorf("MakeCredential: %v, want ErrInvalidRequest", err)
				}
			})
		}
	})
}

func (s *suite) testExcludeList(t *testing.T) {
	a, k := s.openWith(t, s.keyConfig(), fido.Prompt{})
	held := mustMake(t, a, makeReq(t, "alice", false))
	resident := mustMake(t, a, makeReq(t, "bob", true))
	otherReq := makeReq(t, "carol", false)
	otherReq.RP.ID = "other.example"
	otherRP := mustMake(t, a, otherReq)
	var long [][]byte
	for range 20 {
		long = append(long, randomID())
	}

	tests := []struct {
		name     string
		exclude  [][]byte
		excluded bool
	}{
		{"held", [][]byte{randomID(), held.CredentialID}, true},
		{"held discoverable", [][]byte{resident.CredentialID}, true},
		{"longer than the key's list limit", append(slices.Clone(long), held.CredentialID), true},
		{"not held", [][]byte{randomID()}, false},
		{"another RP's", [][]byte{otherRP.CredentialID}, false},
		{"long, none held", long, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(k.Credentials())
			req := makeReq(t, "dave", true)
			req.ExcludeList = tt.exclude
			att, err := a.MakeCredential(ctxT(t), req)
			if tt.excluded {
				if !errors.Is(err, fido.StatusCredentialExcluded) {
					t.Fatalf("MakeCredential: %v, want StatusCredentialExcluded", err)
				}
				if n := len(k.Credentials()); n != before {
					t.Errorf("the key stored a credential although one was excluded (%d -> %d)", before, n)
				}
				return
			}
			if err != nil {
				t.Fatalf("MakeCredential: %v", err)
			}
			if _, err := VerifyAttestation(att, RPID, req.ClientDataHash, s.roots); err != nil {
				t.Error(err)
			}
		})
	}
}

func (s *suite) testGetAssertion(t *testing.T) {
	a, _ := s.openWith(t, s.keyConfig(), fido.Prompt{})
	plain := mustMake(t, a, makeReq(t, "alice", false))
	alice := mustMake(t, a, makeReq(t, "alice-rk", true))
	bob := mustMake(t, a, makeReq(t, "bob-rk", true))
	otherReq := makeReq(t, "carol", true)
	otherReq.RP.ID = "other.example"
	carol := mustMake(t, a, otherReq)
	keys := map[string][]byte{
		string(plain.CredentialID): plain.PublicKey,
		string(alice.CredentialID): alice.PublicKey,
		string(bob.CredentialID):   bob.PublicKey,
		string(carol.CredentialID): carol.PublicKey,
	}

	tests := []struct {
		name  string
		rpID  string
		allow [][]byte
		// want lists the credentials expected, in order; with
		// Limits.OneAssertion only the first is.
		want []*fido.Attestation
		// users name the expected users of discoverable answers.
		users []string
	}{
		{"allow list", RPID, [][]byte{plain.CredentialID}, []*fido.Attestation{plain}, nil},
		{"allow list, first unknown", RPID, [][]byte{randomID(), plain.CredentialID}, []*fido.Attestation{plain}, nil},
		{"allow list, discoverable credential", RPID, [][]byte{alice.CredentialID}, []*fido.Attestation{alice}, nil},
		{"discoverable, newest first", RPID, nil, []*fido.Attestation{bob, alice}, []string{"bob-rk", "alice-rk"}},
		{"discoverable, other RP", "other.example", nil, []*fido.Attestation{carol}, []string{"carol"}},
	}
	var last uint32
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := &fido.GetAssertionRequest{RPID: tt.rpID, ClientDataHash: hash(t), AllowList: tt.allow}
			got, err := a.GetAssertion(ctxT(t), req)
			if err != nil {
				t.Fatalf("GetAssertion: %v", err)
			}
			want := tt.want
			if s.lim.OneAssertion {
				want = want[:1]
			}
			if len(got) != len(want) {
				t.Fatalf("%d assertions, want %d", len(got), len(want))
			}
			for i, as := range got {
				if !bytes.Equal(as.CredentialID, want[i].CredentialID) {
					t.Errorf("assertion %d by %x, want %x", i, as.CredentialID, want[i].CredentialID)
				}
				if err := VerifyAssertion(as, keys[string(as.CredentialID)], tt.rpID, req.ClientDataHash); err != nil {
					t.Errorf("assertion %d does not verify: %v", i, err)
				}
				// The check can fail: a flipped signature bit is refused.
				bad := *as
				bad.Signature = bytes.Clone(as.Signature)
				bad.Signature[len(bad.Signature)/2] ^= 0x01
				if VerifyAssertion(&bad, keys[string(as.CredentialID)], tt.rpID, req.ClientDataHash) == nil {
					t.Errorf("assertion %d verifies with a tampered signature", i)
				}
				if !as.UserPresent || as.UserVerified {
					t.Errorf("assertion %d: UP %v UV %v, want UP only", i, as.UserPresent, as.UserVerified)
				}
				if as.SignCount <= last {
					t.Errorf("assertion %d: signCount %d after %d", i, as.SignCount, last)
				}
				last = as.SignCount
				if tt.users == nil {
					continue
				}
				// Without user verification the key returns the user ID
				// only, no names (CTAP 2.1 §6.2.2 step 12).
				if as.User == nil || !bytes.Equal(as.User.ID, []byte("id-"+tt.users[i])) {
					t.Errorf("assertion %d user %+v, want ID id-%s", i, as.User, tt.users[i])
				}
			}
		})
	}

	for _, tt := range []struct {
		name  string
		rpID  string
		allow [][]byte
	}{
		{"unknown credential", RPID, [][]byte{randomID()}},
		{"another RP's credential", RPID, [][]byte{carol.CredentialID}},
		{"no discoverable credential", "nobody.example", nil},
	} {
		t.Run("no credentials/"+tt.name, func(t *testing.T) {
			_, err := a.GetAssertion(ctxT(t), &fido.GetAssertionRequest{RPID: tt.rpID, ClientDataHash: hash(t), AllowList: tt.allow})
			if !errors.Is(err, fido.StatusNoCredentials) {
				t.Errorf("GetAssertion: %v, want StatusNoCredentials", err)
			}
		})
	}

	t.Run("invalid requests", func(t *testing.T) {
		for name, req := range map[string]*fido.GetAssertionRequest{
			"short hash":       {RPID: RPID, ClientDataHash: make([]byte, 16)},
			"no RP ID":         {ClientDataHash: hash(t)},
			"empty allowed ID": {RPID: RPID, ClientDataHash: hash(t), AllowList: [][]byte{{}}},
		} {
			t.Run(name, func(t *testing.T) {
				_, err := a.GetAssertion(ctxT(t), req)
				if name == "empty allowed ID" {
					// fido.Device passes it to the key, which knows no
					// such credential; a backend may refuse it first.
					if !errors.Is(err, fido.ErrInvalidRequest) && !errors.Is(err, fido.StatusNoCredentials) {
						t.Errorf("GetAssertion: %v, want ErrInvalidRequest or StatusNoCredentials", err)
					}
					return
				}
				if !errors.Is(err, fido.ErrInvalidRequest) {
					t.Errorf("GetAssertion: %v, want ErrInvalidRequest", err)
				}
			})
		}
	})
}

func (s *suite) testSilent(t *testing.T) {
	p := &presence{}
	cfg := s.keyConfig()
	cfg.UserPresence = p.hook
	a, _ := s.openWith(t, cfg, fido.Prompt{})
	att := mustMake(t, a, makeReq(t, "alice", false))
	p.deny.Store(true) // a touch now would fail the assertion
	touches := p.count.Load()

	req := &fido.GetAssertionRequest{RPID: RPID, ClientDataHash: hash(t), AllowList: [][]byte{att.CredentialID}, NoUserPresence: true}
	got, err := a.GetAssertion(ctxT(t), req)
	if err != nil {
		t.Fatalf("silent GetAssertion: %v", err)
	}
	if got[0].UserPresent {
		t.Error("silent assertion has the UP flag")
	}
	if err := VerifyAssertion(got[0], att.PublicKey, RPID, req.ClientDataHash); err != nil {
		t.Errorf("silent assertion does not verify: %v", err)
	}
	if n := p.count.Load(); n != touches {
		t.Errorf("the key asked for %d touches during a silent assertion", n-touches)
	}
}

func (s *suite) testPresenceDenied(t *testing.T) {
	p := &presence{}
	cfg := s.keyConfig()
	cfg.UserPresence = p.hook
	a, k := s.openWith(t, cfg, fido.Prompt{})
	att := mustMake(t, a, makeReq(t, "alice", false))
	p.deny.Store(true)

	t.Run("MakeCredential", func(t *testing.T) {
		_, err := a.MakeCredential(ctxT(t), makeReq(t, "bob", true))
		if !errors.Is(err, fido.StatusOperationDenied) {
			t.Errorf("MakeCredential with the touch refused: %v, want StatusOperationDenied", err)
		}
		if n := len(k.Credentials()); n != 0 {
			t.Errorf("the key stored %d credentials", n)
		}
	})
	t.Run("GetAssertion", func(t *testing.T) {
		_, err := a.GetAssertion(ctxT(t), &fido.GetAssertionRequest{RPID: RPID, ClientDataHash: hash(t), AllowList: [][]byte{att.CredentialID}})
		if !errors.Is(err, fido.StatusOperationDenied) {
			t.Errorf("GetAssertion with the touch refused: %v, want StatusOperationDenied", err)
		}
	})
}

func (s *suite) testCancel(t *testing.T) {
	b := virtual.NewButton()
	var touched atomic.Int32
	cfg := s.keyConfig()
	cfg.UserPresence = b.Presence()
	a, k := s.openWith(t, cfg, fido.Prompt{Touch: func() { touched.Add(1) }})

	// press answers the next touch the key asks for.
	press := func() {
		go func() {
			select {
			case <-b.Waiting():
				b.Press()
			case <-time.After(waitLimit):
			}
		}()
	}
	press()
	att := mustMake(t, a, makeReq(t, "alice", false))

	tests := []struct {
		name string
		op   func(ctx context.Context) error
	}{
		{"MakeCredential", func(ctx context.Context) error {
			_, err := a.MakeCredential(ctx, makeReq(t, "bob", true))
			return err
		}},
		{"GetAssertion", func(ctx context.Context) error {
			_, err := a.GetAssertion(ctx, &fido.GetAssertionRequest{RPID: RPID, ClientDataHash: hash(t), AllowList: [][]byte{att.CredentialID}})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(k.Credentials())
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			errc := make(chan error, 1)
			go func() { errc <- tt.op(ctx) }()
			select {
			case <-b.Waiting():
			case err := <-errc:
				t.Fatalf("returned before the key asked for a touch: %v", err)
			case <-time.After(waitLimit):
				t.Fatal("the key never asked for a touch")
			}
			// While the key waits, the person is told to touch it.
			for deadline := time.Now().Add(waitLimit); touched.Load() == 0; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("Prompt.Touch was not called while the key waited for a touch")
				}
			}
			touched.Store(0)
			cancel()
			select {
			case err := <-errc:
				if !errors.Is(err, context.Canceled) {
					t.Errorf("cancelled while the key waited: %v, want context.Canceled", err)
				}
			case <-time.After(waitLimit):
				t.Fatal("still waiting for the key after the context was cancelled")
			}
			if n := len(k.Credentials()); n != before {
				t.Errorf("the key stored a credential of a cancelled request (%d -> %d)", before, n)
			}
			// The key is free again: the next operation works.
			press()
			if _, err := a.GetAssertion(ctxT(t), &fido.GetAssertionRequest{RPID: RPID, ClientDataHash: hash(t), AllowList: [][]byte{att.CredentialID}}); err != nil {
				t.Errorf("GetAssertion after the cancel: %v", err)
			}
		})
	}

	t.Run("already cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := a.GetAssertion(ctx, &fido.GetAssertionRequest{RPID: RPID, ClientDataHash: hash(t), AllowList: [][]byte{att.CredentialID}})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("GetAssertion with a cancelled context: %v, want context.Canceled", err)
		}
	})
}

// resetter is implemented by authenticators that can reset the key
// (fido.Device and the libfido2 backend do).
type resetter interface {
	Reset(ctx context.Context) error
}

func (s *suite) testReset(t *testing.T) {
	clock := NewClock()
	p := &presence{}
	cfg := s.keyConfig()
	cfg.Clock = clock.Now
	cfg.UserPresence = p.hook
	a, k := s.openWith(t, cfg, fido.Prompt{})
	r, ok := a.(resetter)
	if !ok {
		t.Skipf("%T has no Reset method", a)
	}
	plain := mustMake(t, a, makeReq(t, "alice", false))
	mustMake(t, a, makeReq(t, "bob", true))

	t.Run("denied", func(t *testing.T) {
		p.deny.Store(true)
		defer p.deny.Store(false)
		if err := r.Reset(ctxT(t)); !errors.Is(err, fido.StatusOperationDenied) {
			t.Errorf("Reset with the touch refused: %v, want StatusOperationDenied", err)
		}
		if len(k.Credentials()) != 1 {
			t.Error("a refused reset erased credentials")
		}
	})
	t.Run("after the window", func(t *testing.T) {
		clock.Advance(11 * time.Second)
		if err := r.Reset(ctxT(t)); !errors.Is(err, fido.StatusNotAllowed) {
			t.Errorf("Reset 11 s after power-up: %v, want StatusNotAllowed", err)
		}
		if len(k.Credentials()) != 1 {
			t.Error("a refused reset erased credentials")
		}
	})
	t.Run("after replug", func(t *testing.T) {
		k.Replug()
		if err := r.Reset(ctxT(t)); err != nil {
			t.Fatalf("Reset right after a replug: %v", err)
		}
		if n := len(k.Credentials()); n != 0 {
			t.Errorf("%d discoverable credentials survived the reset", n)
		}
		// Non-discoverable credentials die with the key's secret.
		_, err := a.GetAssertion(ctxT(t), &fido.GetAssertionRequest{RPID: RPID, ClientDataHash: hash(t), AllowList: [][]byte{plain.CredentialID}})
		if !errors.Is(err, fido.StatusNoCredentials) {
			t.Errorf("GetAssertion with a credential from before the reset: %v, want StatusNoCredentials", err)
		}
		mustMake(t, a, makeReq(t, "carol", true))
	})
}
