// Package fidotest is the behaviour suite every [fido.Authenticator]
// passes: the pure-Go client over a virtual key's socket and in process,
// and the libfido2 backend through the preload shim, all run the same
// [Run], as golang.org/x/crypto/ssh/agent runs one suite against OpenSSH
// and its own keyring.
//
//	func TestConformance(t *testing.T) {
//		fidotest.Run(t, fidotest.OpenSocket, nil)
//	}
//
// An implementation is handed to Run as an [Open] function that opens it
// on a fresh virtual key (github.com/fidokit/fidokit/fido/virtual), so the
// suite can both drive the implementation and look at the key directly:
// its stored credentials, its clock, its touch sensor.
//
// # What it checks
//
// Info; MakeCredential of discoverable and non-discoverable ES256 and
// EdDSA credentials, on CTAP 2.1, CTAP 2.0 and U2F-only keys, with the
// attestation verified against the key's CA; exclude lists
// (fido.StatusCredentialExcluded); GetAssertion with an allow list and
// with discoverable credentials, every signature verified with the
// attested public key (and a tampered one refused); silent assertions; a
// denied touch (fido.StatusOperationDenied); a context cancelled while the
// key waits for a touch (context.Canceled, and the key usable afterwards);
// reset within and after the 10 s window; a whole WebAuthn enrollment and
// sign-in through [fido.WebAuthnClient], verified by go-webauthn; and,
// where the implementation is a [fido.PINManager] or
// [fido.CredentialManager], setting and changing the PIN, wrong PINs
// ([*fido.PINError] with the retries left, blocking until a replug), the
// PIN as user verification through Prompt.PIN, and listing and deleting
// credentials.
//
// # A real key
//
// [RunHardware] is the tier that needs no access to the key's insides,
// for a real key named by FIDOKIT_TEST_DEVICE ([OpenHardware]); it resets
// the key and changes its PIN only when asked to (the tests' -fido-wipe-key
// flag). Without the variable it skips, saying how to run it.
//
// # Growing it
//
// Behaviours behind optional interfaces run only where the implementation
// has them (a type assertion, STYLE rule 11) and the virtual key offers
// the feature in getInfo; otherwise they are skipped, saying which.
// [Limits] lets a backend declare what it cannot do, so that the rest
// still runs.
package fidotest

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
)

// Config is what the suite asks of an [Open] function for one subtest.
type Config struct {
	// Key configures the virtual key to open the implementation on. Never
	// nil when the suite calls Open.
	Key *virtual.Config
	// Prompt is what the implementation should be opened with (for
	// instance fido.Opener.Prompt).
	Prompt fido.Prompt
}

// Open makes a virtual key from cfg.Key, opens the implementation under
// test on it with cfg.Prompt, and returns both. It registers cleanups
// that close them when t ends, and fails t if anything goes wrong.
type Open func(t *testing.T, cfg Config) (fido.Authenticator, *virtual.Key)

// Limits declares what an implementation cannot do; the suite then checks
// the weaker behaviour instead. The zero value, or a nil *Limits, means
// none: the implementation behaves as [fido.Device] does.
type Limits struct {
	// OneAssertion: GetAssertion without an allow list returns one
	// assertion even when the key holds several discoverable credentials
	// for the RP.
	OneAssertion bool
	// PartialInfo: Info leaves MaxMsgSize, MaxCredentialCountInList,
	// Algorithms and Transports empty.
	PartialInfo bool
}

// NewKey makes a virtual key from cfg (nil means defaults) that is closed
// when t ends.
func NewKey(t testing.TB, cfg *virtual.Config) *virtual.Key {
	t.Helper()
	k, err := virtual.New(cfg)
	if err != nil {
		t.Fatalf("virtual.New: %v", err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// Serve serves k on a socket in a new temporary directory and returns the
// socket's path; the server stops when t ends.
func Serve(t testing.TB, k *virtual.Key) string {
	t.Helper()
	// AF_UNIX paths are limited to 108 bytes, which t.TempDir's long
	// names can exceed.
	dir, err := os.MkdirTemp("", "fidotest")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, "key")
	srv, err := k.Listen(path)
	if err != nil {
		t.Fatalf("serving virtual key on %s: %v", path, err)
	}
	t.Cleanup(func() { srv.Close() })
	return path
}

// OpenInProcess is an [Open] for the pure-Go client on a virtual key
// plugged in in process (virtual.Key.Open).
func OpenInProcess(t *testing.T, cfg Config) (fido.Authenticator, *virtual.Key) {
	t.Helper()
	k := NewKey(t, cfg.Key)
	d, err := k.Open(context.Background(), &fido.Opener{Prompt: cfg.Prompt})
	if err != nil {
		t.Fatalf("opening virtual key in process: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d, k
}

// OpenSocket is an [Open] for the pure-Go client on a virtual key served
// on a socket, opened by path as a real key's hidraw node is.
func OpenSocket(t *testing.T, cfg Config) (fido.Authenticator, *virtual.Key) {
	t.Helper()
	k := NewKey(t, cfg.Key)
	path := Serve(t, k)
	d, err := (&fido.Opener{Prompt: cfg.Prompt}).Open(context.Background(), path)
	if err != nil {
		t.Fatalf("opening %s: %v", path, err)
	}
	t.Cleanup(func() { d.Close() })
	return d, k
}

// Clock is a settable clock for virtual.Config.Clock, so the suite can
// step past the key's reset window without sleeping. It is safe for
// concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock standing at a fixed time.
func NewClock() *Clock {
	return &Clock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// Now tells the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}
