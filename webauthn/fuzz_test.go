package webauthn_test

import (
	"errors"
	"testing"

	"github.com/fidokit/fidokit/webauthn"
)

// The Finish calls parse JSON, CBOR and COSE from the outside. Whatever
// the bytes, they must not panic, must fail with a verification error
// (never an internal one), and must store nothing. Valid responses seed
// the corpus; the fuzzer mutates them.

func FuzzFinishRegistration(f *testing.F) {
	e := newEnv(f, nil)
	u := e.user("alice")
	k := e.key(nil)
	for range 2 {
		b := e.beginRegistration(u)
		f.Add(e.create(k, b.Options))
	}
	f.Add([]byte(`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","attestationObject":"oA"}}`))
	before := e.snapshot()
	f.Fuzz(func(t *testing.T, resp []byte) {
		e := e.with(t)
		b, err := e.rp.BeginRegistration(e.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		_, err = e.rp.FinishRegistration(e.ctx, b.ChallengeID, resp, "")
		if !errors.Is(err, webauthn.ErrVerification) {
			t.Fatalf("FinishRegistration = %v, want a verification error", err)
		}
		if after := e.snapshot(); !after.equal(before) {
			t.Fatal("a rejected registration changed the store")
		}
	})
}

func FuzzFinishLogin(f *testing.F) {
	e := newEnv(f, nil)
	u := e.user("alice")
	k := e.key(nil)
	e.register(k, u, "")
	for range 2 {
		b := e.beginLogin(u)
		f.Add(e.get(k, b.Options))
	}
	f.Add([]byte(`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"","signature":""}}`))
	before := e.snapshot()
	f.Fuzz(func(t *testing.T, resp []byte) {
		e := e.with(t)
		b, err := e.rp.BeginLogin(e.ctx, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		// A seed may be replayed against the new challenge: it then
		// fails (challenge mismatch), as everything else must.
		_, _, err = e.rp.FinishLogin(e.ctx, b.ChallengeID, resp)
		if !errors.Is(err, webauthn.ErrVerification) {
			t.Fatalf("FinishLogin = %v, want a verification error", err)
		}
		if after := e.snapshot(); !after.equal(before) {
			t.Fatal("a rejected sign-in changed the store")
		}
	})
}
