package webauthn_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
	"github.com/fidokit/fidokit/internal/cpuclock"
	"github.com/fidokit/fidokit/webauthn"
)

// The benchmarks time the relying party's Finish calls, memory store
// included; the key's work (and Begin) runs outside the timer. Each
// Finish needs a fresh challenge, so each iteration prepares one.
//
// The FinishLogin benchmarks report x-floor: time per sign-in over the
// time of the one signature check a sign-in cannot do without, measured
// in the same run (absolute times on shared machines are noise; ratios
// carry over).

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

// loginPaths are the two ways FinishLogin verifies: the fast path, and
// go-webauthn alone (the slow path the fast one is checked against).
var loginPaths = []struct {
	name string
	slow bool
}{{"fast", false}, {"slow", true}}

// BenchmarkFinishLogin is a sign-in on the memory store, per path and
// algorithm. The floor is one verification of that algorithm (for ES256,
// one P-256 ecdsa.VerifyASN1) over a message of the same shape.
func BenchmarkFinishLogin(b *testing.B) {
	algs := []struct {
		name  string
		alg   fido.Algorithm
		floor func() func()
	}{
		{"ES256", fido.ES256, p256VerifyFloor},
		{"EdDSA", fido.EdDSA, ed25519VerifyFloor},
	}
	for _, a := range algs {
		for _, p := range loginPaths {
			b.Run(a.name+"/"+p.name, func(b *testing.B) {
				benchmarkFinishLogin(b, nil, a.alg, p.slow, a.floor, nil)
			})
		}
	}
}

// benchmarkFinishLogin times FinishLogin on store (nil: a memory store).
// It reports x-floor, x-floor-p50 and cpu-x-floor, the process's CPU
// time per sign-in over the floor (for a store on a database server, the
// relying party's share alone). after, if not nil, runs once the timed
// loop is done, with a function that makes a fresh sign-in response.
func benchmarkFinishLogin(b *testing.B, store webauthn.Store, alg fido.Algorithm, slow bool, floor func() func(), after func(e *env, next func() (string, []byte), floor time.Duration)) {
	// Every challenge is begun ahead of the timed loop, so the limits
	// on ceremonies under way must not bite.
	e := newEnv(b, func(c *webauthn.Config) {
		c.MaxChallengesPerUser = 1 << 30
		c.MaxChallenges = 1 << 30
		if store != nil {
			c.Store = store
		}
	})
	e.store = e.cfg.Store
	webauthn.SetSlowLogin(e.rp, slow)
	u := e.user("alice")
	k := e.key(&virtual.Config{Algorithms: []fido.Algorithm{alg}})
	e.register(k, u, "")
	ids := make([]string, b.N)
	resps := make([][]byte, b.N)
	for i := range b.N {
		begin := e.beginLogin(u)
		ids[i], resps[i] = begin.ChallengeID, e.get(k, begin.Options)
	}
	// Collect the key's garbage now, so that the timed loop does not pay
	// for it.
	runtime.GC()
	verify := floor()
	verify()
	// The floor is sampled before and after the sign-ins (on shared
	// cores the speed drifts). x-floor is the ratio of the means;
	// x-floor-p50, of the medians, shrugs off other processes' bursts.
	floors := sample(200, verify)
	ops := make([]time.Duration, b.N)
	b.ReportAllocs()
	b.ResetTimer()
	cpu, _ := cpuclock.Self()
	for i := range b.N {
		start := time.Now()
		_, _, err := e.rp.FinishLogin(e.ctx, ids[i], resps[i])
		ops[i] = time.Since(start)
		require.NoError(b, err)
	}
	cpu1, _ := cpuclock.Self()
	cpu = cpu1 - cpu
	b.StopTimer()
	floors = append(floors, sample(200, verify)...)
	b.ReportMetric(float64(mean(ops))/float64(mean(floors)), "x-floor")
	b.ReportMetric(float64(median(ops))/float64(median(floors)), "x-floor-p50")
	b.ReportMetric(float64(cpu)/float64(b.N)/float64(mean(floors)), "cpu-x-floor")
	if after != nil {
		next := func() (string, []byte) {
			begin := e.beginLogin(u)
			return begin.ChallengeID, e.get(k, begin.Options)
		}
		after(e, next, mean(floors))
	}
}

// sample times n runs of f.
func sample(n int, f func()) []time.Duration {
	ds := make([]time.Duration, n)
	for i := range ds {
		start := time.Now()
		f()
		ds[i] = time.Since(start)
	}
	return ds
}

func mean(ds []time.Duration) time.Duration {
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum / time.Duration(len(ds))
}

func median(ds []time.Duration) time.Duration {
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// BenchmarkECDSAP256Verify is the floor under FinishLogin on its own: the
// one signature verification a sign-in needs.
func BenchmarkECDSAP256Verify(b *testing.B) {
	f := p256VerifyFloor()
	b.ReportAllocs()
	for b.Loop() {
		f()
	}
}

// signedMessage is what an assertion signature covers: authenticator
// data (37 bytes without extensions) || SHA-256(clientDataJSON).
func signedMessage() []byte {
	cdj := clientData("webauthn.get", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", testOrigin, "")
	h := sha256.Sum256(cdj)
	return append(make([]byte, 37), h[:]...)
}

// p256VerifyFloor is one ES256 check: hash the signed message, then
// ecdsa.VerifyASN1.
func p256VerifyFloor() func() {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	msg := signedMessage()
	digest := sha256.Sum256(msg)
	sig, err := ecdsa.SignASN1(rand.Reader, priv, digest[:])
	if err != nil {
		panic(err)
	}
	return func() {
		d := sha256.Sum256(msg)
		if !ecdsa.VerifyASN1(&priv.PublicKey, d[:], sig) {
			panic("signature does not verify")
		}
	}
}

// ed25519VerifyFloor is one EdDSA check, ed25519.Verify.
func ed25519VerifyFloor() func() {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		panic(err)
	}
	msg := signedMessage()
	sig := ed25519.Sign(priv, msg)
	return func() {
		if !ed25519.Verify(pub, msg, sig) {
			panic("signature does not verify")
		}
	}
}
