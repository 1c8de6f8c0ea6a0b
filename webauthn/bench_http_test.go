package webauthn_test

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fidokit/fidokit/webauthn"
	"github.com/fidokit/fidokit/webauthn/webauthntest"
)

// benchWorkers is how many browsers sign in at once, each a user with a
// virtual key of their own and a cookie jar.
const benchWorkers = 8

// BenchmarkHTTPSignIn measures sign-ins through the HTTP handler: POST
// /login/begin and /login/finish over loopback HTTP with a cookie jar,
// the assertion made by a virtual key in between, benchWorkers at once.
// One op is one sign-in; signins/s is their throughput.
//
// The client sub-benchmark is the virtual key's share alone (the
// WebAuthn client turning request options into an assertion over
// in-memory CTAPHID, same worker count), so the relying party and store
// cost per sign-in is about the difference of ns/op.
func BenchmarkHTTPSignIn(b *testing.B) {
	b.Run("client", benchAssertions)
	for _, be := range e2eBackends {
		b.Run(be.name, func(b *testing.B) { benchHTTPSignIn(b, be) })
	}
}

// runWorkers runs n operations with benchWorkers goroutines; do gets the
// worker index. It returns the wall time.
func runWorkers(b *testing.B, n int, do func(w int) error) time.Duration {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	start := time.Now()
	for w := range benchWorkers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := do(w); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

func benchAssertions(b *testing.B) {
	ctx := b.Context()
	rp := e2eRelyingParty(b, webauthn.NewMemoryStore())
	keys := make([]*webauthntest.Client, benchWorkers)
	options := make([][]byte, benchWorkers)
	for w := range keys {
		u, err := rp.CreateUser(ctx, fmt.Sprintf("bench%d@example.com", w), "")
		if err != nil {
			b.Fatal(err)
		}
		keys[w] = e2eKey(b)
		if _, err := keys[w].Register(ctx, rp, u.ID, ""); err != nil {
			b.Fatal(err)
		}
		begin, err := rp.BeginLogin(ctx, u.ID)
		if err != nil {
			b.Fatal(err)
		}
		options[w] = begin.Options
	}
	b.ReportAllocs()
	b.ResetTimer()
	elapsed := runWorkers(b, b.N, func(w int) error {
		_, err := keys[w].Get(ctx, options[w])
		return err
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "assertions/s")
}

func benchHTTPSignIn(b *testing.B, be e2eBackend) {
	ctx := b.Context()
	store := be.open(b, 1)[0]
	base := e2eServe(b, e2eRelyingParty(b, store), &e2eSessions{})
	// One transport keeps a connection per worker alive, as browsers do.
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = benchWorkers
	b.Cleanup(tr.CloseIdleConnections)

	type worker struct {
		h     *webauthntest.HTTP
		key   *webauthntest.Client
		name  string
		cred  []byte
		count uint32
	}
	ws := make([]*worker, benchWorkers)
	for i := range ws {
		key := e2eKey(b)
		w := &worker{key: key, h: key.HTTP(base, &http.Client{Transport: tr}), name: fmt.Sprintf("bench%d@example.com", i)}
		_, k, err := w.h.Signup(ctx, w.name, "", "")
		if err != nil {
			b.Fatalf("sign-up: %v", err)
		}
		w.cred, w.count = mustDecodeID(b, k.ID), k.SignCount
		ws[i] = w
	}
	b.ReportAllocs()
	b.ResetTimer()
	elapsed := runWorkers(b, b.N, func(i int) error {
		_, _, err := ws[i].h.Login(ctx, ws[i].name)
		return err
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "signins/s")

	// Every op was a sign-in the store recorded.
	total := 0
	for _, w := range ws {
		total += int(storedCredential(b, store, w.cred).SignCount - w.count)
	}
	if total != b.N {
		b.Errorf("the store recorded %d sign-ins, want %d", total, b.N)
	}
}
