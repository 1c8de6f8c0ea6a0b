package webauthn_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/fidokit/fidokit/webauthn"
)

// The benchmarks time the relying party's Finish calls, memory store
// included; the key's work (and Begin) runs with the timer stopped. Each
// Finish needs a fresh challenge, so each iteration prepares one.

func BenchmarkFinishRegistration(b *testing.B) {
	// Non-discoverable credentials, so that the key's slots do not run
	// out; a new user each time, as the key may not register twice.
	e := newEnv(b, func(c *webauthn.Config) { c.Policy.Discoverable = webauthn.Discouraged })
	k := e.key(nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		u := e.user(fmt.Sprintf("user%d", i))
		begin := e.beginRegistration(u)
		resp := e.create(k, begin.Options)
		b.StartTimer()
		if _, err := e.rp.FinishRegistration(e.ctx, begin.ChallengeID, resp, "key"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFinishLogin(b *testing.B) {
	e := newEnv(b, nil)
	u := e.user("alice")
	k := e.key(nil)
	e.register(k, u, "")
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		begin := e.beginLogin(u)
		resp := e.get(k, begin.Options)
		b.StartTimer()
		if _, _, err := e.rp.FinishLogin(e.ctx, begin.ChallengeID, resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkECDSAP256Verify is the floor under FinishLogin: the one
// signature verification a sign-in needs.
func BenchmarkECDSAP256Verify(b *testing.B) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256([]byte("authenticatorData || SHA-256(clientDataJSON)"))
	sig, err := ecdsa.SignASN1(rand.Reader, priv, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !ecdsa.VerifyASN1(&priv.PublicKey, digest[:], sig) {
			b.Fatal("signature does not verify")
		}
	}
}
