package webauthn_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
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

const (
	testRPID   = "example.com"
	testOrigin = "https://login.example.com"
)

// flagAT is the authenticator data flag of attested credential data
// (WebAuthn L3 §6.1). Tests that need other flags set them honestly with
// virtual.Config (ForceUPOff, ForceUVOff, BackupEligible, BackupState).
const flagAT = 0x40

// testPIN is the PIN of the keys made by pinKey.
const testPIN = "4821"

// clock is a settable Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// env is a relying party on a memory store, with the users a test made,
// so that it can snapshot what is stored.
type env struct {
	t     testing.TB
	ctx   context.Context
	store webauthn.Store
	mem   *webauthn.MemoryStore
	clock *clock
	rp    *webauthn.RelyingParty
	cfg   webauthn.Config
	users [][]byte
	names []string
}

// newEnv makes an env; mod, if not nil, adjusts the config.
func newEnv(t testing.TB, mod func(*webauthn.Config)) *env {
	t.Helper()
	mem := webauthn.NewMemoryStore()
	e := &env{t: t, ctx: t.Context(), store: mem, mem: mem, clock: newClock()}
	e.cfg = webauthn.Config{
		RPID:    testRPID,
		RPName:  "Example",
		Origins: []string{testOrigin},
		Store:   mem,
		Now:     e.clock.Now,
	}
	if mod != nil {
		mod(&e.cfg)
	}
	e.rp = e.newRP(nil)
	return e
}

// with is e reporting to t, for use inside a fuzz target.
func (e *env) with(t testing.TB) *env {
	c := *e
	c.t = t
	return &c
}

// newRP makes another relying party on the env's store and clock.
func (e *env) newRP(mod func(*webauthn.Config)) *webauthn.RelyingParty {
	e.t.Helper()
	cfg := e.cfg
	if mod != nil {
		mod(&cfg)
	}
	rp, err := webauthn.New(cfg)
	if err != nil {
		e.t.Fatalf("webauthn.New: %v", err)
	}
	return rp
}

func (e *env) user(name string) *webauthn.User {
	e.t.Helper()
	u, err := e.rp.CreateUser(e.ctx, name, "User "+name)
	if err != nil {
		e.t.Fatalf("CreateUser(%q): %v", name, err)
	}
	e.users = append(e.users, u.ID)
	e.names = append(e.names, name)
	return u
}

// key makes a virtual key in a client for testOrigin.
func (e *env) key(cfg *virtual.Config) *webauthntest.Client {
	e.t.Helper()
	return webauthntest.NewClient(e.t, webauthntest.Options{Origin: testOrigin, Key: cfg})
}

// pinKey makes a virtual key from cfg with testPIN set (a key loaded from
// cfg.StatePath keeps the PIN it has), in a client for testOrigin whose
// person gives testPIN when the key asks for it. asked counts the times
// the client asked.
func (e *env) pinKey(cfg virtual.Config) (c *webauthntest.Client, asked *atomic.Int32) {
	e.t.Helper()
	cfg.PIN = testPIN
	asked = new(atomic.Int32)
	ask := func(ctx context.Context, req fido.PINRequest) (string, error) {
		asked.Add(1)
		if req.Retry {
			return "", errors.New("the key refused testPIN")
		}
		return testPIN, nil
	}
	c = webauthntest.NewClient(e.t, webauthntest.Options{Origin: testOrigin, Key: &cfg, Prompt: fido.Prompt{PIN: ask}})
	return c, asked
}

// keyAt makes a virtual key in a client for another origin.
func (e *env) keyAt(origin string, cfg *virtual.Config) *webauthntest.Client {
	e.t.Helper()
	return webauthntest.NewClient(e.t, webauthntest.Options{Origin: origin, Key: cfg})
}

func (e *env) register(c *webauthntest.Client, u *webauthn.User, name string) *webauthn.Credential {
	e.t.Helper()
	cred, err := c.Register(e.ctx, e.rp, u.ID, name)
	if err != nil {
		e.t.Fatalf("registering %q for %s: %v", name, u.Name, err)
	}
	return cred
}

func (e *env) login(c *webauthntest.Client, u *webauthn.User) *webauthn.Credential {
	e.t.Helper()
	got, cred, err := c.Login(e.ctx, e.rp, u.ID)
	if err != nil {
		e.t.Fatalf("signing in %s: %v", u.Name, err)
	}
	if !bytes.Equal(got.ID, u.ID) {
		e.t.Fatalf("signed in as %s, want %s", got.Name, u.Name)
	}
	return cred
}

func (e *env) beginRegistration(u *webauthn.User) *webauthn.Begin {
	e.t.Helper()
	b, err := e.rp.BeginRegistration(e.ctx, u.ID)
	if err != nil {
		e.t.Fatalf("BeginRegistration: %v", err)
	}
	return b
}

func (e *env) beginLogin(u *webauthn.User) *webauthn.Begin {
	e.t.Helper()
	b, err := e.rp.BeginLogin(e.ctx, u.ID)
	if err != nil {
		e.t.Fatalf("BeginLogin: %v", err)
	}
	return b
}

func (e *env) create(c *webauthntest.Client, options []byte) []byte {
	e.t.Helper()
	resp, err := c.Create(e.ctx, options)
	if err != nil {
		e.t.Fatalf("Create: %v", err)
	}
	return resp
}

func (e *env) get(c *webauthntest.Client, options []byte) []byte {
	e.t.Helper()
	resp, err := c.Get(e.ctx, options)
	if err != nil {
		e.t.Fatalf("Get: %v", err)
	}
	return resp
}

// snapshot is everything stored about the env's users (and whether the
// names probed exist), for checking that a failure stored nothing.
type snapshot struct {
	Users map[string]webauthn.User
	Creds map[string][]webauthn.Credential
	Names map[string]bool
}

func (e *env) snapshot() snapshot {
	e.t.Helper()
	s := snapshot{Users: map[string]webauthn.User{}, Creds: map[string][]webauthn.Credential{}, Names: map[string]bool{}}
	for _, id := range e.users {
		u, err := e.store.User(e.ctx, id)
		if err != nil {
			e.t.Fatalf("snapshot: %v", err)
		}
		s.Users[string(id)] = *u
		creds, err := e.store.Credentials(e.ctx, id)
		if err != nil {
			e.t.Fatalf("snapshot: %v", err)
		}
		for _, c := range creds {
			s.Creds[string(id)] = append(s.Creds[string(id)], *c)
		}
	}
	for _, n := range e.names {
		_, err := e.store.UserByName(e.ctx, n)
		s.Names[n] = err == nil
	}
	return s
}

// probe adds a user name whose existence snapshots record.
func (e *env) probe(name string) { e.names = append(e.names, name) }

func (s snapshot) equal(o snapshot) bool { return reflect.DeepEqual(s, o) }

func (s snapshot) String() string {
	b, _ := json.MarshalIndent(s, "", " ")
	return string(b)
}

// withCloneWarning is s with the credential id flagged.
func (s snapshot) withCloneWarning(id []byte) snapshot {
	out := snapshot{Users: s.Users, Creds: map[string][]webauthn.Credential{}, Names: s.Names}
	for u, cs := range s.Creds {
		cs = slices.Clone(cs)
		for i := range cs {
			if bytes.Equal(cs[i].ID, id) {
				cs[i].CloneWarning = true
			}
		}
		out.Creds[u] = cs
	}
	return out
}

// wantErr checks that err matches want and, if step is not empty, is a
// *VerificationError for that step.
func wantErr(t testing.TB, err, want error, step string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error = %v, want %v", err, want)
	}
	if step == "" {
		return
	}
	var ve *webauthn.VerificationError
	if !errors.As(err, &ve) {
		t.Fatalf("error %v is not a *VerificationError", err)
	}
	if ve.Step != step {
		t.Errorf("failed at %q, want %q (%v)", ve.Step, step, err)
	}
	if !errors.Is(err, webauthn.ErrVerification) {
		t.Errorf("%v does not match ErrVerification", err)
	}
}

// JSON editing.

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func unb64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("decoding %q: %v", s, err)
	}
	return b
}

// editJSON decodes doc, lets edit change it and encodes it again.
func editJSON(t testing.TB, doc []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(doc, &m); err != nil {
		t.Fatalf("decoding %s: %v", doc, err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func obj(m map[string]any, key string) map[string]any { return m[key].(map[string]any) }

// challengeOf returns the challenge member of options.
func challengeOf(t testing.TB, options []byte) string {
	t.Helper()
	var o struct{ Challenge string }
	if err := json.Unmarshal(options, &o); err != nil || o.Challenge == "" {
		t.Fatalf("no challenge in %s (%v)", options, err)
	}
	return o.Challenge
}

// clientData builds a CollectedClientData serialisation (WebAuthn L3
// §5.8.1.1).
func clientData(typ, challenge, origin string, extra string) []byte {
	return fmt.Appendf(nil, `{"type":%q,"challenge":%q,"origin":%q,"crossOrigin":false%s}`, typ, challenge, origin, extra)
}

// attestationObject is the CBOR attestation object (WebAuthn L3 §6.5.4).
type attestationObject struct {
	Fmt      string          `cbor:"fmt"`
	AttStmt  cbor.RawMessage `cbor:"attStmt"`
	AuthData []byte          `cbor:"authData"`
}

var ctap2CBOR = func() cbor.EncMode {
	em, err := cbor.CTAP2EncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// editRegistration rewrites a registration response whose attestation is
// "none", which signs nothing, so that the edits are exactly what a
// dishonest client could send. It is for what the client, not the key,
// gets wrong (client data, a credential ID claimed for another key pair),
// which no virtual.Config knob makes a key do; flags the key signs are
// set with the knobs instead. editAuthData changes the authenticator
// data (parsed), editCDJ the client data JSON; either may be nil.
func editRegistration(t testing.TB, resp []byte, editAuthData func(ad *authData), editCDJ func(cdj []byte) []byte) []byte {
	t.Helper()
	return editJSON(t, resp, func(m map[string]any) {
		r := obj(m, "response")
		var ao attestationObject
		if err := cbor.Unmarshal(unb64(t, r["attestationObject"].(string)), &ao); err != nil {
			t.Fatal(err)
		}
		if ao.Fmt != "none" {
			t.Fatalf("editing a %q attestation would break its signature; use \"none\"", ao.Fmt)
		}
		if editAuthData != nil {
			ad := parseAuthData(t, ao.AuthData)
			editAuthData(ad)
			ao.AuthData = ad.marshal()
			raw, err := ctap2CBOR.Marshal(ao)
			if err != nil {
				t.Fatal(err)
			}
			r["attestationObject"] = b64(raw)
			r["authenticatorData"] = b64(ao.AuthData)
			m["id"] = b64(ad.credID)
			m["rawId"] = b64(ad.credID)
		}
		if editCDJ != nil {
			r["clientDataJSON"] = b64(editCDJ(unb64(t, r["clientDataJSON"].(string))))
		}
	})
}

// authData is authenticator data with attested credential data (WebAuthn
// L3 §6.1).
type authData struct {
	rpIDHash [32]byte
	flags    byte
	count    uint32
	aaguid   [16]byte
	credID   []byte
	rest     []byte // credential public key and extensions
}

func parseAuthData(t testing.TB, b []byte) *authData {
	t.Helper()
	if len(b) < 55 || b[32]&flagAT == 0 {
		t.Fatalf("authenticator data of %d bytes without attested credential data", len(b))
	}
	ad := &authData{flags: b[32], count: binary.BigEndian.Uint32(b[33:37])}
	copy(ad.rpIDHash[:], b[:32])
	copy(ad.aaguid[:], b[37:53])
	n := int(binary.BigEndian.Uint16(b[53:55]))
	ad.credID = bytes.Clone(b[55 : 55+n])
	ad.rest = bytes.Clone(b[55+n:])
	return ad
}

func (ad *authData) marshal() []byte {
	b := append([]byte(nil), ad.rpIDHash[:]...)
	b = append(b, ad.flags)
	b = binary.BigEndian.AppendUint32(b, ad.count)
	b = append(b, ad.aaguid[:]...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(ad.credID)))
	b = append(b, ad.credID...)
	return append(b, ad.rest...)
}

// assertion asks the key for an assertion over cdj and wraps it as
// AuthenticationResponseJSON, as a client that builds its own client data
// would: the key signs honestly, the client data is the client's lie (or
// a silent "up": false request), which no virtual.Config knob produces.
func assertion(t testing.TB, c *webauthntest.Client, rpID string, allow []byte, cdj []byte, noUP bool) []byte {
	t.Helper()
	h := sha256.Sum256(cdj)
	req := &fido.GetAssertionRequest{RPID: rpID, ClientDataHash: h[:], NoUserPresence: noUP}
	if allow != nil {
		req.AllowList = [][]byte{allow}
	}
	as, err := c.WebAuthn().Authenticator.GetAssertion(t.Context(), req)
	if err != nil {
		t.Fatalf("GetAssertion: %v", err)
	}
	a := as[0]
	var handle []byte
	if a.User != nil {
		handle = a.User.ID
	}
	return assertionJSON(a.CredentialID, cdj, a.AuthData, a.Signature, handle)
}

func assertionJSON(id, cdj, authData, sig, userHandle []byte) []byte {
	r := map[string]any{
		"clientDataJSON":    b64(cdj),
		"authenticatorData": b64(authData),
		"signature":         b64(sig),
	}
	if userHandle != nil {
		r["userHandle"] = b64(userHandle)
	}
	out, _ := json.Marshal(map[string]any{
		"id": b64(id), "rawId": b64(id), "type": "public-key", "response": r,
		"clientExtensionResults": map[string]any{}, "authenticatorAttachment": "cross-platform",
	})
	return out
}
