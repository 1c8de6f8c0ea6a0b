package virtual_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
	"github.com/fidokit/fidokit/internal/ctap"
)

// These tests drive the key with the fido client through real CTAPHID
// framing, as a program would.

var hash = bytes.Repeat([]byte{0x42}, 32)

const rpID = "example.com"

func newKey(t testing.TB, cfg *virtual.Config) *virtual.Key {
	t.Helper()
	k, err := virtual.New(cfg)
	if err != nil {
		t.Fatalf("virtual.New: %v", err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

func open(t testing.TB, k *virtual.Key, o *fido.Opener) *fido.Device {
	t.Helper()
	dev, err := k.Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { dev.Close() })
	return dev
}

func enroll(t testing.TB, dev *fido.Device, user string, discoverable bool, algs ...fido.Algorithm) *fido.Attestation {
	t.Helper()
	att, err := dev.MakeCredential(context.Background(), &fido.MakeCredentialRequest{
		ClientDataHash: hash, RP: fido.RelyingParty{ID: rpID},
		User:         fido.User{ID: []byte(user), Name: user, DisplayName: "User " + user},
		Algorithms:   algs,
		Discoverable: discoverable,
	})
	if err != nil {
		t.Fatalf("MakeCredential: %v", err)
	}
	return att
}

func signIn(t testing.TB, dev *fido.Device, ids ...[]byte) []*fido.Assertion {
	t.Helper()
	as, err := dev.GetAssertion(context.Background(), &fido.GetAssertionRequest{RPID: rpID, ClientDataHash: hash, AllowList: ids})
	if err != nil {
		t.Fatalf("GetAssertion: %v", err)
	}
	return as
}

// verifies checks an assertion's signature over authData||clientDataHash
// with crypto/ecdsa or crypto/ed25519.
func verifies(t testing.TB, att *fido.Attestation, a *fido.Assertion) bool {
	t.Helper()
	_, pub, err := ctap.ParsePublicKey(att.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	msg := append(bytes.Clone(a.AuthData), hash...)
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		h := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(p, h[:], a.Signature)
	case ed25519.PublicKey:
		return ed25519.Verify(p, msg, a.Signature)
	}
	t.Fatalf("public key of type %T", pub)
	return false
}

// prompter returns a fido.Prompt.Touch that reports each call on the
// channel, without blocking the client.
func prompter() (func(), <-chan struct{}) {
	c := make(chan struct{}, 1)
	return func() {
		select {
		case c <- struct{}{}:
		default:
		}
	}, c
}

func TestClientSignatures(t *testing.T) {
	for _, alg := range []fido.Algorithm{fido.ES256, fido.EdDSA} {
		t.Run(alg.String(), func(t *testing.T) {
			k := newKey(t, nil)
			dev := open(t, k, nil)
			att := enroll(t, dev, "alice", false, alg)
			if att.Algorithm != alg || att.Format != "packed" || att.AAGUID != virtual.DefaultAAGUID || !att.UserPresent || att.UserVerified {
				t.Fatalf("attestation %+v", att)
			}
			last := att.SignCount
			for i := range 3 {
				a := signIn(t, dev, att.CredentialID)[0]
				if !verifies(t, att, a) {
					t.Errorf("assertion %d does not verify", i)
				}
				if a.SignCount <= last || !a.UserPresent {
					t.Errorf("assertion %d: counter %d after %d, UP %v", i, a.SignCount, last, a.UserPresent)
				}
				last = a.SignCount
			}
			// A cloned key: its counter goes back.
			if err := k.SetCounter(1); err != nil {
				t.Fatal(err)
			}
			if a := signIn(t, dev, att.CredentialID)[0]; a.SignCount != 2 {
				t.Errorf("counter %d after SetCounter(1)", a.SignCount)
			}
		})
	}
}

func TestClientDiscoverableNewestFirst(t *testing.T) {
	k := newKey(t, nil)
	dev := open(t, k, nil)
	atts := map[string]*fido.Attestation{}
	for _, u := range []string{"alice", "bob", "carol"} {
		atts[u] = enroll(t, dev, u, true)
	}
	if _, err := dev.MakeCredential(context.Background(), &fido.MakeCredentialRequest{ClientDataHash: hash,
		RP: fido.RelyingParty{ID: "other.example"}, User: fido.User{ID: []byte("zed")}, Discoverable: true}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range signIn(t, dev) {
		got = append(got, string(a.User.ID))
		if a.User.Name != "" || a.User.DisplayName != "" {
			t.Errorf("names of %s returned without user verification", a.User.ID)
		}
		if !verifies(t, atts[string(a.User.ID)], a) {
			t.Errorf("%s's assertion does not verify", a.User.ID)
		}
	}
	if strings.Join(got, " ") != "carol bob alice" {
		t.Errorf("accounts %q, want newest first", got)
	}
	creds := k.Credentials()
	if len(creds) != 4 || creds[0].RPID != rpID || string(creds[0].UserID) != "alice" || creds[0].UserName != "alice" ||
		creds[0].Algorithm != fido.ES256 || creds[0].Created.IsZero() || !bytes.Equal(creds[0].ID, atts["alice"].CredentialID) {
		t.Errorf("Credentials() = %+v", creds)
	}
}

func TestClientExcludeList(t *testing.T) {
	k := newKey(t, nil)
	dev := open(t, k, nil)
	att := enroll(t, dev, "alice", false)
	req := &fido.MakeCredentialRequest{ClientDataHash: hash, RP: fido.RelyingParty{ID: rpID}, User: fido.User{ID: []byte("alice")}}
	// More IDs than the key takes at once: the client probes in batches.
	for i := range 20 {
		req.ExcludeList = append(req.ExcludeList, []byte{byte(i), 1, 2, 3})
	}
	if _, err := dev.MakeCredential(context.Background(), req); err != nil {
		t.Fatalf("unrelated exclude list: %v", err)
	}
	req.ExcludeList = append(req.ExcludeList, att.CredentialID)
	if _, err := dev.MakeCredential(context.Background(), req); !errors.Is(err, fido.StatusCredentialExcluded) {
		t.Fatalf("MakeCredential = %v, want CREDENTIAL_EXCLUDED", err)
	}
}

func TestClientPresence(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  *virtual.Config
		want error
	}{
		{"denied", &virtual.Config{UserPresence: virtual.Deny}, fido.StatusOperationDenied},
		{"timed out", &virtual.Config{UserPresence: virtual.NewButton().Presence(), UserPresenceTimeout: 50 * time.Millisecond}, fido.StatusUserActionTimeout},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dev := open(t, newKey(t, tt.cfg), nil)
			_, err := dev.MakeCredential(context.Background(), &fido.MakeCredentialRequest{ClientDataHash: hash, RP: fido.RelyingParty{ID: rpID}, User: fido.User{ID: []byte{1}}})
			if !errors.Is(err, tt.want) {
				t.Errorf("MakeCredential = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("cancelled by the host", func(t *testing.T) {
		b := virtual.NewButton()
		touch, prompted := prompter()
		dev := open(t, newKey(t, &virtual.Config{UserPresence: b.Presence()}), &fido.Opener{Prompt: fido.Prompt{Touch: touch}})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := dev.MakeCredential(ctx, &fido.MakeCredentialRequest{ClientDataHash: hash, RP: fido.RelyingParty{ID: rpID}, User: fido.User{ID: []byte{1}}})
			done <- err
		}()
		if r := <-b.Waiting(); r.Op != virtual.OpMakeCredential || r.RPID != rpID {
			t.Errorf("touch requested for %+v", r)
		}
		<-prompted // the client saw KEEPALIVE UPNEEDED
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("MakeCredential after cancel = %v, want context.Canceled", err)
		}
		// The key still works, and this time the person touches it.
		go func() { <-b.Waiting(); b.Press() }()
		enroll(t, dev, "alice", false)
	})
}

func TestClientStateSurvivesRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.json")
	k, err := virtual.New(&virtual.Config{StatePath: path})
	if err != nil {
		t.Fatal(err)
	}
	dev, _ := k.Open(context.Background(), nil)
	nonRK := enroll(t, dev, "alice", false)
	rk := enroll(t, dev, "bob", true)
	dev.Close()
	k.Close()
	counter := k.Counter()

	k2 := newKey(t, &virtual.Config{StatePath: path})
	dev2 := open(t, k2, nil)
	for _, att := range []*fido.Attestation{nonRK, rk} {
		a := signIn(t, dev2, att.CredentialID)[0]
		if !verifies(t, att, a) || a.SignCount <= counter {
			t.Errorf("after restart: counter %d after %d", a.SignCount, counter)
		}
		counter = a.SignCount
	}
	if as := signIn(t, dev2); len(as) != 1 || string(as[0].User.ID) != "bob" {
		t.Errorf("discoverable credentials after restart: %+v", as)
	}
}

func TestClientReset(t *testing.T) {
	var mu sync.Mutex
	now := time.Unix(1_900_000_000, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	k := newKey(t, &virtual.Config{Clock: clock})
	dev := open(t, k, nil)
	att := enroll(t, dev, "alice", false)
	enroll(t, dev, "bob", true)
	counter := k.Counter()

	advance(11 * time.Second)
	if err := dev.Reset(context.Background()); !errors.Is(err, fido.StatusNotAllowed) {
		t.Fatalf("Reset 11 s after power-up = %v, want NOT_ALLOWED", err)
	}
	k.Replug()
	advance(9 * time.Second)
	if err := dev.Reset(context.Background()); err != nil {
		t.Fatalf("Reset after replugging: %v", err)
	}
	if len(k.Credentials()) != 0 || k.Counter() != counter {
		t.Errorf("after reset: %d credentials, counter %d (want %d)", len(k.Credentials()), k.Counter(), counter)
	}
	_, err := dev.GetAssertion(context.Background(), &fido.GetAssertionRequest{RPID: rpID, ClientDataHash: hash, AllowList: [][]byte{att.CredentialID}})
	if !errors.Is(err, fido.StatusNoCredentials) {
		t.Errorf("old credential after reset: %v", err)
	}
}

func TestClientSelection(t *testing.T) {
	for _, v := range []virtual.CTAPVersion{virtual.CTAP21, virtual.CTAP20} {
		b := virtual.NewButton()
		dev := open(t, newKey(t, &virtual.Config{CTAPVersion: v, UserPresence: b.Presence()}), nil)
		go func() { <-b.Waiting(); b.Press() }()
		// A 2.0 key is asked with an empty pinUvAuthParam instead.
		if err := dev.Selection(context.Background()); err != nil {
			t.Errorf("Selection on CTAP version %d: %v", v, err)
		}
	}
}

func TestClientU2FOnly(t *testing.T) {
	b := virtual.NewButton()
	touch, prompted := prompter()
	k := newKey(t, &virtual.Config{U2FOnly: true, UserPresence: b.Presence()})
	dev := open(t, k, &fido.Opener{Prompt: fido.Prompt{Touch: touch}})
	// The person touches the key once the client has asked them to, which
	// it does when the key answers "conditions not satisfied".
	press := func() { <-b.Waiting(); <-prompted; b.Press() }
	info, err := dev.Info(context.Background())
	if err != nil || info.CTAP2() || !info.Supports("U2F_V2") {
		t.Fatalf("Info = %+v, %v", info, err)
	}
	go press()
	att := enroll(t, dev, "alice", false)
	if att.Format != "fido-u2f" || att.Algorithm != fido.ES256 {
		t.Fatalf("attestation %+v", att)
	}
	go press()
	a := signIn(t, dev, []byte("not ours"), att.CredentialID)[0]
	if !verifies(t, att, a) || !a.UserPresent || !bytes.Equal(a.CredentialID, att.CredentialID) {
		t.Errorf("U2F assertion %+v", a)
	}
	if _, err := dev.GetAssertion(context.Background(), &fido.GetAssertionRequest{RPID: "other.example", ClientDataHash: hash,
		AllowList: [][]byte{att.CredentialID}}); !errors.Is(err, fido.StatusNoCredentials) {
		t.Errorf("another RP: %v", err)
	}
}

func TestClientMisbehaviour(t *testing.T) {
	t.Run("status override", func(t *testing.T) {
		dev := open(t, newKey(t, &virtual.Config{StatusOverride: map[byte]fido.Status{0x01: fido.StatusKeyStoreFull}}), nil)
		_, err := dev.MakeCredential(context.Background(), &fido.MakeCredentialRequest{ClientDataHash: hash, RP: fido.RelyingParty{ID: rpID}, User: fido.User{ID: []byte{1}}})
		if !errors.Is(err, fido.StatusKeyStoreFull) {
			t.Errorf("MakeCredential = %v", err)
		}
	})
	t.Run("bad signature", func(t *testing.T) {
		dev := open(t, newKey(t, &virtual.Config{BadSignature: true}), nil)
		att := enroll(t, dev, "alice", false)
		if verifies(t, att, signIn(t, dev, att.CredentialID)[0]) {
			t.Error("signature verifies")
		}
	})
	t.Run("UP forced off", func(t *testing.T) {
		dev := open(t, newKey(t, &virtual.Config{ForceUPOff: true}), nil)
		att := enroll(t, dev, "alice", false)
		a := signIn(t, dev, att.CredentialID)[0]
		if att.UserPresent || a.UserPresent || !verifies(t, att, a) {
			t.Errorf("UP %v and %v; want false with a valid signature", att.UserPresent, a.UserPresent)
		}
	})
}

// socketPath returns a short path for a socket: AF_UNIX paths are limited
// to about 100 bytes, which t.TempDir's names can exceed.
func socketPath(t *testing.T) string {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the socket transport is Linux-only")
	}
	dir, err := os.MkdirTemp("", "fk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "key.sock")
}

func TestSocket(t *testing.T) {
	path := socketPath(t)
	k := newKey(t, nil)
	srv, err := k.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	if srv.Path() != path {
		t.Errorf("Path() = %q", srv.Path())
	}
	if _, err := k.Listen(path); err == nil {
		t.Error("a second server took the live socket")
	}
	var devs []*fido.Device
	for range 2 { // two hosts share the key
		dev, err := fido.Open(context.Background(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer dev.Close()
		devs = append(devs, dev)
	}
	att := enroll(t, devs[0], "alice", true)
	if a := signIn(t, devs[1]); len(a) != 1 || !verifies(t, att, a[0]) {
		t.Errorf("the second host's assertion: %+v", a)
	}

	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
	if _, err := devs[0].GetAssertion(context.Background(), &fido.GetAssertionRequest{RPID: rpID, ClientDataHash: hash}); err == nil {
		t.Error("a host is still served after Close")
	}
	if err := srv.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestKeyClose(t *testing.T) {
	path := socketPath(t)
	b := virtual.NewButton()
	k, err := virtual.New(&virtual.Config{UserPresence: b.Presence()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Listen(path); err != nil {
		t.Fatal(err)
	}
	dev, err := k.Open(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	// An operation waiting for a touch ends with the key.
	done := make(chan error, 1)
	go func() {
		_, err := dev.MakeCredential(context.Background(), &fido.MakeCredentialRequest{ClientDataHash: hash, RP: fido.RelyingParty{ID: rpID}, User: fido.User{ID: []byte{1}}})
		done <- err
	}()
	<-b.Waiting()
	if err := k.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err == nil {
		t.Error("MakeCredential succeeded on a closed key")
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Close left the socket: %v", err)
	}
	if _, err := k.Listen(path); err == nil {
		t.Error("Listen on a closed key succeeded")
	}
	if d, err := k.Open(context.Background(), nil); err == nil {
		d.Close()
		t.Error("Open on a closed key succeeded")
	}
	if err := k.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
