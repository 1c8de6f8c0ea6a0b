package virtual

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/fidokit/fidokit/internal/ctap"
)

// newTestKey makes a key that is closed when the test ends.
func newTestKey(t testing.TB, cfg *Config) *Key {
	t.Helper()
	k, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { k.Close() })
	return k
}

// snapshot is everything a rejected request must leave alone: the whole
// persistent state, as the state file would hold it.
func snapshot(t testing.TB, k *Key) []byte {
	t.Helper()
	k.mu.Lock()
	defer k.mu.Unlock()
	b, err := json.Marshal(k.st)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func checkUnchanged(t testing.TB, k *Key, before []byte, what string) {
	t.Helper()
	if after := snapshot(t, k); !bytes.Equal(before, after) {
		t.Errorf("%s changed the key's state", what)
	}
}

// testClock is a Config.Clock that moves only when told.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// statusRecorder collects the KEEPALIVE statuses a command reports.
type statusRecorder struct {
	mu sync.Mutex
	s  []byte
}

func (r *statusRecorder) set(s byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.s = append(r.s, s)
}

func (r *statusRecorder) get() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.s)
}

var (
	cdh      = bytes.Repeat([]byte{0x11}, 32)
	testRPID = "example.com"
)

// pair encodes one CBOR map entry, so tests can build maps in any order,
// with duplicates, or with values of the wrong type.
func pair(k, v any) []byte { return append(ctap.MustMarshal(k), ctap.MustMarshal(v)...) }

// mapOf encodes a map of up to 23 entries from pairs, as given.
func mapOf(pairs ...[]byte) []byte {
	out := []byte{0xA0 | byte(len(pairs))}
	for _, p := range pairs {
		out = append(out, p...)
	}
	return out
}

func cmd(c ctap.Command, params []byte) []byte { return append([]byte{byte(c)}, params...) }

// mcRequest is a valid makeCredential request for user on testRPID.
func mcRequest(user string, rk bool, algs ...int64) *ctap.MakeCredentialRequest {
	if len(algs) == 0 {
		algs = []int64{ctap.AlgES256}
	}
	r := &ctap.MakeCredentialRequest{
		ClientDataHash: cdh,
		RP:             &ctap.RPEntity{ID: testRPID, Name: "Example"},
		User:           &ctap.UserEntity{ID: []byte(user), Name: user + "@example.com", DisplayName: "User " + user},
	}
	for _, a := range algs {
		r.PubKeyCredParams = append(r.PubKeyCredParams, ctap.CredentialParam{Type: "public-key", Alg: a})
	}
	if rk {
		r.Options = map[string]bool{ctap.OptRK: true}
	}
	return r
}

func gaRequest(ids ...[]byte) *ctap.GetAssertionRequest {
	r := &ctap.GetAssertionRequest{RPID: testRPID, ClientDataHash: cdh}
	for _, id := range ids {
		r.AllowList = append(r.AllowList, ctap.CredentialDescriptor{Type: "public-key", ID: id})
	}
	return r
}

// do sends one CTAP2 command with params encoded from v (nil: none) and
// returns the status and body.
func do(t testing.TB, k *Key, c ctap.Command, v any) (ctap.Status, []byte) {
	t.Helper()
	req, err := ctap.EncodeRequest(c, v)
	if err != nil {
		t.Fatal(err)
	}
	resp := k.handleCBOR(context.Background(), req, nil)
	if len(resp) == 0 {
		t.Fatalf("%v: empty answer", c)
	}
	return ctap.Status(resp[0]), resp[1:]
}

// makeCredential makes a credential and returns its decoded response and
// authenticator data.
func makeCredential(t testing.TB, k *Key, r *ctap.MakeCredentialRequest) (*ctap.MakeCredentialResponse, *ctap.AuthData) {
	t.Helper()
	s, body := do(t, k, ctap.CmdMakeCredential, r)
	if s != ctap.StatusOK {
		t.Fatalf("makeCredential: %v", s)
	}
	resp, err := ctap.DecodeMakeCredentialResponse(body)
	if err != nil {
		t.Fatal(err)
	}
	ad, err := ctap.ParseAuthData(resp.AuthData)
	if err != nil {
		t.Fatal(err)
	}
	return resp, ad
}

// getAssertion gets an assertion and returns it decoded, with its
// authenticator data.
func getAssertion(t testing.TB, k *Key, c ctap.Command, r *ctap.GetAssertionRequest) (*ctap.GetAssertionResponse, *ctap.AuthData) {
	t.Helper()
	var v any
	if r != nil {
		v = r
	}
	s, body := do(t, k, c, v)
	if s != ctap.StatusOK {
		t.Fatalf("%v: %v", c, s)
	}
	resp, err := ctap.DecodeGetAssertionResponse(body)
	if err != nil {
		t.Fatal(err)
	}
	ad, err := ctap.ParseAuthData(resp.AuthData)
	if err != nil {
		t.Fatal(err)
	}
	return resp, ad
}

// verify reports whether sig, by the COSE public key, verifies over
// authData||hash, checked with crypto/ecdsa and crypto/ed25519 directly
// rather than with the code under test's helpers.
func verify(t testing.TB, cose, authData, hash, sig []byte) bool {
	t.Helper()
	_, pub, err := ctap.ParsePublicKey(cose)
	if err != nil {
		t.Fatal(err)
	}
	msg := append(bytes.Clone(authData), hash...)
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		h := sha256.Sum256(msg)
		return ecdsa.VerifyASN1(p, h[:], sig)
	case ed25519.PublicKey:
		return ed25519.Verify(p, msg, sig)
	}
	t.Fatalf("public key of type %T", pub)
	return false
}
