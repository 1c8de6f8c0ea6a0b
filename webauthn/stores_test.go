package webauthn_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/internal/pgtest"
	"github.com/fidokit/fidokit/store/postgres"
	"github.com/fidokit/fidokit/store/sqlite"
	"github.com/fidokit/fidokit/webauthn"
	"github.com/fidokit/fidokit/webauthn/webauthntest"
)

// The relying party of the end-to-end tests: the virtual keys' WebAuthn
// client acts for e2eOrigin, while the HTTP requests go to an httptest
// server on loopback, as a browser on https://localhost behind a proxy.
const (
	e2eRPID   = "localhost"
	e2eOrigin = "https://localhost"
	e2ePrefix = "/webauthn"
)

// e2eBackend is a Store implementation the end-to-end tests run against.
type e2eBackend struct {
	name string
	// open returns n stores on one database, as n servers would hold
	// them; they are closed when the test ends.
	open func(t testing.TB, n int) []webauthn.Store
}

var e2eBackends = []e2eBackend{
	{"memory", func(t testing.TB, n int) []webauthn.Store {
		s := webauthn.NewMemoryStore()
		out := make([]webauthn.Store, n)
		for i := range out {
			out[i] = s
		}
		return out
	}},
	{"sqlite", func(t testing.TB, n int) []webauthn.Store {
		t.Helper()
		path := filepath.Join(t.TempDir(), "webauthn.db")
		out := make([]webauthn.Store, n)
		for i := range out {
			s, err := sqlite.Open(t.Context(), path)
			if err != nil {
				t.Fatalf("sqlite.Open: %v", err)
			}
			t.Cleanup(func() { s.Close() })
			out[i] = s
		}
		return out
	}},
	{"postgres", func(t testing.TB, n int) []webauthn.Store {
		t.Helper()
		db := pgtest.New(t)
		out := make([]webauthn.Store, n)
		for i := range out {
			// Registered after pgtest.New, so closed before the
			// database is dropped.
			s, err := postgres.Open(t.Context(), db)
			if err != nil {
				t.Fatalf("postgres.Open: %v", err)
			}
			t.Cleanup(s.Close)
			out[i] = s
		}
		return out
	}},
}

// e2eRelyingParty returns a relying party for e2eOrigin on store.
func e2eRelyingParty(t testing.TB, store webauthn.Store) *webauthn.RelyingParty {
	t.Helper()
	rp, err := webauthn.New(webauthn.Config{RPID: e2eRPID, Origins: []string{e2eOrigin}, Store: store})
	if err != nil {
		t.Fatalf("webauthn.New: %v", err)
	}
	return rp
}

// e2eSessions is the application around the relying party: its own
// sign-in sessions, one cookie naming the signed-in user. Servers that
// share one e2eSessions share sessions, as servers behind a load
// balancer share a session store.
type e2eSessions struct {
	mu  sync.Mutex
	ids map[string][]byte
}

const e2eSessionCookie = "session"

func (s *e2eSessions) currentUser(r *http.Request) ([]byte, error) {
	c, err := r.Cookie(e2eSessionCookie)
	if err != nil {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[c.Value], nil
}

func (s *e2eSessions) onLogin(w http.ResponseWriter, r *http.Request, u *webauthn.User, _ *webauthn.Credential) error {
	b := make([]byte, 16)
	rand.Read(b)
	sid := base64.RawURLEncoding.EncodeToString(b)
	s.mu.Lock()
	if s.ids == nil {
		s.ids = map[string][]byte{}
	}
	s.ids[sid] = bytes.Clone(u.ID)
	s.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: e2eSessionCookie, Value: sid, Path: "/", HttpOnly: true, Secure: true,
		SameSite: http.SameSiteStrictMode})
	return nil
}

// e2eServe serves rp's handler under e2ePrefix on a loopback httptest
// server, with sign-ups allowed, and returns the handler's base URL.
func e2eServe(t testing.TB, rp *webauthn.RelyingParty, sessions *e2eSessions) string {
	t.Helper()
	h, err := rp.Handler(webauthn.HandlerConfig{
		CurrentUser: sessions.currentUser,
		OnLogin:     sessions.onLogin,
		AllowSignup: true,
		CookiePath:  e2ePrefix,
		OnError:     func(r *http.Request, err error) { t.Errorf("%s %s: internal error: %v", r.Method, r.URL.Path, err) },
	})
	if err != nil {
		t.Fatalf("Handler: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle(e2ePrefix+"/", http.StripPrefix(e2ePrefix, h))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + e2ePrefix
}

func e2eKey(t testing.TB) *webauthntest.Client {
	t.Helper()
	return webauthntest.NewClient(t, webauthntest.Options{Origin: e2eOrigin})
}

func mustDecodeID(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(b) == 0 {
		t.Fatalf("ID %q is not base64url: %v", s, err)
	}
	return b
}

// wantHTTPError checks that err is the handler's error answer with code
// and status.
func wantHTTPError(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	var he *webauthntest.HTTPError
	if !errors.As(err, &he) || he.Status != status || he.Code != code {
		t.Fatalf("%s: got %v, want HTTP %d %s", what, err, status, code)
	}
}

// storedCredential reads a credential straight from the store.
func storedCredential(t testing.TB, s webauthn.Store, id []byte) *webauthn.Credential {
	t.Helper()
	c, err := s.Credential(t.Context(), id)
	if err != nil {
		t.Fatalf("Store.Credential(%x): %v", id, err)
	}
	return c
}

// checkKeyJSON checks that the handler's view of a key is the stored one.
//
// LastUsed is compared to the microsecond: FinishLogin answers with the
// time it passed to the store, which the store keeps to the microsecond.
func checkKeyJSON(t *testing.T, what string, k *webauthn.KeyJSON, c *webauthn.Credential) {
	t.Helper()
	if k.ID != base64.RawURLEncoding.EncodeToString(c.ID) || k.Name != c.Name || k.SignCount != c.SignCount ||
		k.CloneWarning != c.CloneWarning || k.Active != c.Active() || k.Algorithm != c.Algorithm ||
		!k.LastUsed.Truncate(time.Microsecond).Equal(c.LastUsed) || !k.Created.Equal(c.Created) {
		t.Errorf("%s: the handler shows key %s with name %q, count %d, clone warning %v, active %v, alg %d, last used %v, created %v;\n"+
			"the store holds name %q, count %d, clone warning %v, active %v, alg %d, last used %v, created %v",
			what, k.ID, k.Name, k.SignCount, k.CloneWarning, k.Active, k.Algorithm, k.LastUsed, k.Created,
			c.Name, c.SignCount, c.CloneWarning, c.Active(), c.Algorithm, c.LastUsed, c.Created)
	}
}

// checkSignedIn checks the stored credential after a successful sign-in
// that started at or after since: its count is the key's counter, and it
// was used just now.
func checkSignedIn(t *testing.T, what string, s webauthn.Store, k *webauthn.KeyJSON, key *webauthntest.Client, since time.Time) *webauthn.Credential {
	t.Helper()
	c := storedCredential(t, s, mustDecodeID(t, k.ID))
	if want := key.Key().Counter(); c.SignCount != want {
		t.Errorf("%s: stored SignCount %d, the key's counter is %d", what, c.SignCount, want)
	}
	if c.LastUsed.Before(since.Truncate(time.Microsecond)) || c.LastUsed.After(time.Now()) {
		t.Errorf("%s: stored LastUsed %v, want between %v and now", what, c.LastUsed, since)
	}
	if c.CloneWarning {
		t.Errorf("%s: CloneWarning set", what)
	}
	checkKeyJSON(t, what, k, c)
	return c
}

// sameCredential checks that a failed request changed nothing stored.
func sameCredential(t *testing.T, what string, got, want *webauthn.Credential) {
	t.Helper()
	if got.SignCount != want.SignCount || !got.LastUsed.Equal(want.LastUsed) || got.CloneWarning != want.CloneWarning ||
		!got.Deactivated.Equal(want.Deactivated) || got.Name != want.Name {
		t.Errorf("%s changed the stored credential:\n got %+v\nwant %+v", what, *got, *want)
	}
}

// TestStoresEndToEnd runs the life of an account's security keys, from
// virtual keys through the WebAuthn client and the HTTP handler to each
// store, checking the store directly after every step.
func TestStoresEndToEnd(t *testing.T) {
	for _, be := range e2eBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			store := be.open(t, 1)[0]
			testStoreEndToEnd(t, store)
		})
	}
}

func testStoreEndToEnd(t *testing.T, store webauthn.Store) {
	ctx := t.Context()
	rp := e2eRelyingParty(t, store)
	base := e2eServe(t, rp, &e2eSessions{})
	keyA, keyB, keyC := e2eKey(t), e2eKey(t), e2eKey(t)
	alice := keyA.HTTP(base, nil)
	// Key B is used in Alice's browser, so with her session.
	aliceB := keyB.HTTP(base, alice.Client())

	// Sign up with key A: the account and its first key are stored.
	before := time.Now()
	uj, kA, err := alice.Signup(ctx, "alice@example.com", "Alice", "Blue key")
	if err != nil {
		t.Fatalf("sign-up: %v", err)
	}
	u, err := store.UserByName(ctx, "alice@example.com")
	if err != nil {
		t.Fatalf("after sign-up, Store.UserByName: %v", err)
	}
	if !bytes.Equal(u.ID, mustDecodeID(t, uj.ID)) || u.DisplayName != "Alice" || u.Created.Before(before.Truncate(time.Microsecond)) {
		t.Errorf("stored user %+v, handler said %+v", *u, *uj)
	}
	credA := storedCredential(t, store, mustDecodeID(t, kA.ID))
	if !bytes.Equal(credA.UserID, u.ID) || credA.Name != "Blue key" || credA.Algorithm != webauthn.ES256 ||
		credA.AttestationFormat != "none" || !credA.Active() || credA.CloneWarning || !credA.LastUsed.IsZero() ||
		credA.SignCount != keyA.Key().Counter() || len(credA.PublicKey) == 0 || len(credA.AAGUID) != 16 {
		t.Errorf("stored credential after sign-up: %+v", *credA)
	}
	checkKeyJSON(t, "sign-up", kA, credA)

	// Register key B for the signed-in Alice.
	kB, err := aliceB.Register(ctx, "Backup key")
	if err != nil {
		t.Fatalf("registering key B: %v", err)
	}
	credB := storedCredential(t, store, mustDecodeID(t, kB.ID))
	if !bytes.Equal(credB.UserID, u.ID) || credB.Name != "Backup key" || credB.SignCount != keyB.Key().Counter() {
		t.Errorf("stored key B: %+v", *credB)
	}
	checkKeyJSON(t, "registering key B", kB, credB)
	// Key A again is excluded by the key itself (excludeCredentials).
	if _, err := alice.Register(ctx, "Blue key again"); !errors.Is(err, fido.ErrInvalidState) {
		t.Errorf("registering key A twice: %v, want fido.ErrInvalidState", err)
	}
	creds, err := store.Credentials(ctx, u.ID)
	if err != nil || len(creds) != 2 || !bytes.Equal(creds[0].ID, credA.ID) || !bytes.Equal(creds[1].ID, credB.ID) {
		t.Fatalf("Store.Credentials = %d credentials, %v; want A then B", len(creds), err)
	}

	// Sign in by name with each key; only that key's record moves.
	for _, tc := range []struct {
		name       string
		h          *webauthntest.HTTP
		key        *webauthntest.Client
		own, other *webauthn.Credential
	}{
		{"key A", alice, keyA, credA, credB},
		{"key B", aliceB, keyB, credB, credA},
	} {
		since := time.Now()
		gotU, k, err := tc.h.Login(ctx, "alice@example.com")
		if err != nil {
			t.Fatalf("sign-in with %s: %v", tc.name, err)
		}
		if gotU.ID != uj.ID || k.ID != base64.RawURLEncoding.EncodeToString(tc.own.ID) {
			t.Errorf("sign-in with %s: signed in %s with key %s", tc.name, gotU.Name, k.ID)
		}
		c := checkSignedIn(t, "sign-in with "+tc.name, store, k, tc.key, since)
		if c.SignCount <= tc.own.SignCount {
			t.Errorf("sign-in with %s: count %d after %d", tc.name, c.SignCount, tc.own.SignCount)
		}
		sameCredential(t, "sign-in with "+tc.name+" (the other key)", storedCredential(t, store, tc.other.ID), tc.other)
		*tc.own = *c
	}

	// Bob signs up with key C in another browser; discoverable sign-ins
	// find each account by the key's user handle.
	bob := keyC.HTTP(base, nil)
	bobJ, kC, err := bob.Signup(ctx, "bob@example.com", "", "Bob's key")
	if err != nil {
		t.Fatalf("Bob's sign-up: %v", err)
	}
	for _, tc := range []struct {
		name string
		h    *webauthntest.HTTP
		key  *webauthntest.Client
		user string
		cred []byte
	}{
		{"key B", aliceB, keyB, uj.ID, credB.ID},
		{"key C", bob, keyC, bobJ.ID, mustDecodeID(t, kC.ID)},
	} {
		since := time.Now()
		gotU, k, err := tc.h.Login(ctx, "")
		if err != nil {
			t.Fatalf("discoverable sign-in with %s: %v", tc.name, err)
		}
		if gotU.ID != tc.user || k.ID != base64.RawURLEncoding.EncodeToString(tc.cred) {
			t.Errorf("discoverable sign-in with %s: signed in %s with key %s", tc.name, gotU.Name, k.ID)
		}
		checkSignedIn(t, "discoverable sign-in with "+tc.name, store, k, tc.key, since)
	}
	credB = storedCredential(t, store, credB.ID)

	// List: the handler shows what is stored, and only the user's own.
	keys, err := alice.Keys(ctx)
	if err != nil || len(keys) != 2 {
		t.Fatalf("Alice's keys: %d, %v; want 2", len(keys), err)
	}
	checkKeyJSON(t, "listing key A", &keys[0], credA)
	checkKeyJSON(t, "listing key B", &keys[1], credB)
	if keys, err := bob.Keys(ctx); err != nil || len(keys) != 1 || keys[0].ID != kC.ID {
		t.Errorf("Bob's keys: %+v, %v; want key C only", keys, err)
	}
	_, err = bob.Rename(ctx, kA.ID, "mine now")
	wantHTTPError(t, "Bob renaming Alice's key", err, http.StatusNotFound, "credential_unknown")
	sameCredential(t, "Bob renaming Alice's key", storedCredential(t, store, credA.ID), credA)

	// Rename.
	k, err := alice.Rename(ctx, kA.ID, "Primary key")
	if err != nil {
		t.Fatalf("rename: %v", err)
	}
	if credA = storedCredential(t, store, credA.ID); credA.Name != "Primary key" {
		t.Errorf("stored name after rename: %q", credA.Name)
	}
	checkKeyJSON(t, "rename", k, credA)

	// Deactivate key B: it is no longer offered, and a discoverable
	// sign-in with it fails with credential_deactivated (ErrInactive),
	// changing nothing stored. Key A still signs in.
	before = time.Now()
	if k, err = alice.Deactivate(ctx, kB.ID); err != nil {
		t.Fatalf("deactivate: %v", err)
	}
	credB = storedCredential(t, store, credB.ID)
	if credB.Active() || credB.Deactivated.Before(before.Truncate(time.Microsecond)) || k.Active {
		t.Errorf("after deactivation: stored %+v, handler %+v", *credB, *k)
	}
	checkKeyJSON(t, "deactivate", k, credB)
	if _, _, err := aliceB.Login(ctx, "alice@example.com"); !errors.Is(err, fido.ErrNotAllowed) {
		t.Errorf("sign-in by name with deactivated key B: %v, want fido.ErrNotAllowed (B not in allowCredentials)", err)
	}
	_, _, err = aliceB.Login(ctx, "")
	wantHTTPError(t, "discoverable sign-in with deactivated key B", err, http.StatusForbidden, "credential_deactivated")
	sameCredential(t, "a sign-in with deactivated key B", storedCredential(t, store, credB.ID), credB)
	since := time.Now()
	if _, k, err = alice.Login(ctx, "alice@example.com"); err != nil || k.ID != kA.ID {
		t.Fatalf("sign-in with key A while B is deactivated: %v", err)
	}
	credA = checkSignedIn(t, "sign-in with key A while B is deactivated", store, k, keyA, since)

	// Reactivate key B: it signs in again.
	if k, err = alice.Reactivate(ctx, kB.ID); err != nil {
		t.Fatalf("reactivate: %v", err)
	}
	if credB = storedCredential(t, store, credB.ID); !credB.Active() || !k.Active {
		t.Errorf("after reactivation: stored Deactivated %v, handler active %v", credB.Deactivated, k.Active)
	}
	since = time.Now()
	if _, k, err = aliceB.Login(ctx, "alice@example.com"); err != nil || k.ID != kB.ID {
		t.Fatalf("sign-in with reactivated key B: %v", err)
	}
	checkSignedIn(t, "sign-in with reactivated key B", store, k, keyB, since)

	// Delete key B: gone from the store; signing in with it is
	// credential_unknown.
	if err := alice.Delete(ctx, kB.ID); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := store.Credential(ctx, credB.ID); !errors.Is(err, webauthn.ErrNotFound) {
		t.Errorf("Store.Credential of deleted key B: %v, want ErrNotFound", err)
	}
	if creds, err := store.Credentials(ctx, u.ID); err != nil || len(creds) != 1 || !bytes.Equal(creds[0].ID, credA.ID) {
		t.Errorf("Store.Credentials after deleting B: %d credentials, %v; want A only", len(creds), err)
	}
	_, _, err = aliceB.Login(ctx, "")
	wantHTTPError(t, "discoverable sign-in with deleted key B", err, http.StatusNotFound, "credential_unknown")
	err = alice.Delete(ctx, kB.ID)
	wantHTTPError(t, "deleting key B twice", err, http.StatusNotFound, "credential_unknown")

	// Counter regression: key A's counter rolled back, as a clone's
	// would be. Presenting the stored count again is refused and flags
	// the key; the count and last use stay.
	if err := keyA.Key().SetCounter(credA.SignCount - 1); err != nil {
		t.Fatal(err)
	}
	_, _, err = alice.Login(ctx, "alice@example.com")
	wantHTTPError(t, "sign-in with a rolled-back counter", err, http.StatusForbidden, "sign_count_regression")
	got := storedCredential(t, store, credA.ID)
	if !got.CloneWarning {
		t.Errorf("after a counter of %d following %d: CloneWarning not stored", credA.SignCount, credA.SignCount)
	}
	got.CloneWarning = false
	sameCredential(t, "a rejected counter regression", got, credA)
	// While flagged, the key is refused whatever its counter, and
	// nothing changes.
	for _, n := range []uint32{0, credA.SignCount + 10} {
		if err := keyA.Key().SetCounter(n); err != nil {
			t.Fatal(err)
		}
		_, _, err := alice.Login(ctx, "alice@example.com")
		wantHTTPError(t, fmt.Sprintf("flagged key, counter %d", n+1), err, http.StatusForbidden, "credential_clone_warning")
		got := storedCredential(t, store, credA.ID)
		if !got.CloneWarning {
			t.Errorf("flagged key, counter %d: CloneWarning cleared", n+1)
		}
		got.CloneWarning = false
		sameCredential(t, "a refused flagged key", got, credA)
	}
	keys, err = alice.Keys(ctx)
	if err != nil || len(keys) != 1 || !keys[0].CloneWarning {
		t.Errorf("Alice's keys after the regression: %+v, %v; want key A with cloneWarning", keys, err)
	}
	// Once an administrator clears the warning, a counter past the
	// stored one signs in again: the key's next, after the refused one
	// of credA.SignCount+11.
	if err := rp.ClearCloneWarning(ctx, u.ID, credA.ID); err != nil {
		t.Fatalf("ClearCloneWarning: %v", err)
	}
	if _, k, err = alice.Login(ctx, "alice@example.com"); err != nil {
		t.Fatalf("sign-in after clearing the warning: %v", err)
	}
	got = storedCredential(t, store, credA.ID)
	if got.SignCount != credA.SignCount+12 || got.CloneWarning || k.CloneWarning {
		t.Errorf("after signing in again: stored count %d (want %d), CloneWarning %v (want it cleared)",
			got.SignCount, credA.SignCount+12, got.CloneWarning)
	}
}
