package mfa_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/internal/pgtest"
	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/store/postgres"
	"github.com/fidokit/fidokit/store/sqlite"
	"github.com/fidokit/fidokit/webauthn"
	"github.com/fidokit/fidokit/webauthn/webauthntest"
)

const (
	testRPID   = "localhost"
	testOrigin = "https://localhost"
)

// testKey is the keyring key of the tests; a service's comes from its
// secrets manager.
var testKey = []byte("fidokit mfa tests: 32-byte key!!")

// clock is a settable time source shared by the relying party and the
// manager, so tests step TOTP time without sleeping.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	// Mid-step, so that a code typed "now" is not on a step boundary.
	return &clock{t: time.Date(2026, 12, 1, 12, 0, 10, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// cheapHash keeps tests that verify many recovery codes quick; the
// default cost is exercised by the end-to-end test and the benchmarks.
var cheapHash = mfa.RecoveryHash{Time: 1, MemoryKiB: 64, Threads: 1}

type stackOptions struct {
	hash       mfa.RecoveryHash
	maxDevices int
	lock       mfa.LockPolicy
}

// stack is one relying-party server: webauthn and mfa on one store.
type stack struct {
	rp    *webauthn.RelyingParty
	m     *mfa.Manager
	clock *clock
	store mfa.Store
}

func newStack(t testing.TB, store mfa.Store, c *clock, opts *stackOptions) *stack {
	t.Helper()
	if opts == nil {
		opts = &stackOptions{hash: cheapHash}
	}
	rp, err := webauthn.New(webauthn.Config{
		RPID: testRPID, RPName: "fidokit test", Origins: []string{testOrigin},
		Store: store, Now: c.Now, MaxCredentials: opts.maxDevices,
	})
	require.NoError(t, err)
	keys, err := mfa.NewKeyring("test-1", map[string][]byte{"test-1": testKey})
	require.NoError(t, err)
	m, err := mfa.New(mfa.Config{RelyingParty: rp, Keys: keys, Issuer: "fidokit test", Now: c.Now, RecoveryHash: opts.hash, Lock: opts.lock})
	require.NoError(t, err)
	return &stack{rp: rp, m: m, clock: c, store: store}
}

func (s *stack) user(t testing.TB, name string) *webauthn.User {
	t.Helper()
	u, err := s.rp.CreateUser(context.Background(), name, "")
	require.NoError(t, err)
	return u
}

// phone is an authenticator app: it keeps the otpauth URI it scanned and
// computes codes with pquerna/otp straight from it, as an app does.
type phone struct {
	t   testing.TB
	key *otp.Key
}

func scan(t testing.TB, uri string) *phone {
	t.Helper()
	k, err := otp.NewKeyFromURL(uri)
	require.NoError(t, err)
	return &phone{t: t, key: k}
}

func (p *phone) code(at time.Time) string {
	c, err := totp.GenerateCodeCustom(p.key.Secret(), at, totp.ValidateOpts{
		Period: uint(p.key.Period()), Digits: p.key.Digits(), Algorithm: p.key.Algorithm(),
	})
	require.NoError(p.t, err)
	return c
}

// enrollApp enrolls an authenticator app the way a person does: two
// consecutive codes, the second one current.
func (s *stack) enrollApp(t testing.TB, userID []byte, name string) (*mfa.Device, *phone) {
	t.Helper()
	ctx := context.Background()
	e, err := s.m.BeginApp(ctx, userID, name)
	require.NoError(t, err)
	ph := scan(t, e.URI.Reveal())
	now := s.clock.Now()
	d, err := s.m.FinishEnrollment(ctx, userID, e.ID, ph.code(now.Add(-30*time.Second)), ph.code(now))
	require.NoError(t, err)
	return d, ph
}

// nextStep moves the clock to the next time step, so a new code exists.
func (s *stack) nextStep() { s.clock.Add(30 * time.Second) }

// registerKey enrolls a virtual security key through the manager.
func (s *stack) registerKey(t testing.TB, key *webauthntest.Client, userID []byte, name string) *mfa.Device {
	t.Helper()
	ctx := context.Background()
	b, err := s.m.BeginKeyRegistration(ctx, userID)
	require.NoError(t, err)
	resp, err := key.Create(ctx, b.Options)
	require.NoError(t, err)
	d, err := s.m.FinishKeyRegistration(ctx, b.ChallengeID, resp, name)
	require.NoError(t, err)
	return d
}

// signInWithKey runs the security-key second factor for a known user.
func (s *stack) signInWithKey(ctx context.Context, key *webauthntest.Client, userID []byte) (*mfa.Verification, error) {
	b, err := s.m.BeginSecurityKey(ctx, userID)
	if err != nil {
		return nil, err
	}
	resp, err := key.Get(ctx, b.Options)
	if err != nil {
		return nil, err
	}
	return s.m.FinishSecurityKey(ctx, userID, b.ChallengeID, resp)
}

// storeKind makes fresh stores of one engine; shared returns two handles
// on one database, as two servers have.
type storeKind struct {
	name   string
	new    func(t testing.TB) mfa.Store
	shared func(t testing.TB) (a, b mfa.Store)
	// file is the SQLite file, for the at-rest test.
	file func(s mfa.Store) string
}

// sqliteFiles and postgresURLs remember where each store keeps its
// data, for the test that reads it raw.
var sqliteFiles, postgresURLs sync.Map // mfa.Store → path or URL

func openSQLite(t testing.TB, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	sqliteFiles.Store(s, path)
	return s
}

func openPostgres(t testing.TB, url string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url)
	require.NoError(t, err)
	t.Cleanup(s.Close)
	postgresURLs.Store(s, url)
	return s
}

func storeKinds() []storeKind {
	return []storeKind{
		{
			name: "memory",
			new:  func(testing.TB) mfa.Store { return mfa.NewMemoryStore() },
		},
		{
			name: "sqlite",
			new: func(t testing.TB) mfa.Store {
				return openSQLite(t, filepath.Join(t.TempDir(), "fidokit.db"))
			},
			shared: func(t testing.TB) (mfa.Store, mfa.Store) {
				path := filepath.Join(t.TempDir(), "fidokit.db")
				return openSQLite(t, path), openSQLite(t, path)
			},
		},
		{
			name: "postgres",
			new:  func(t testing.TB) mfa.Store { return openPostgres(t, pgtest.New(t)) },
			shared: func(t testing.TB) (mfa.Store, mfa.Store) {
				url := pgtest.New(t)
				return openPostgres(t, url), openPostgres(t, url)
			},
		},
	}
}

// needTool finds an independent program the test compares against. In CI
// a missing one fails the test; elsewhere it skips, saying what to
// install.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found: install Debian's %s (scripts/test.sh does)", name, pkg)
	}
	t.Skipf("%s not found: apt-get install %s", name, pkg)
	return ""
}
