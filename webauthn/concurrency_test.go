package webauthn_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fidokit/fidokit/webauthn"
	"github.com/fidokit/fidokit/webauthn/webauthntest"
)

// Two relying-party instances on one database are two servers: for
// PostgreSQL two connection pools, for SQLite two handles on one file,
// for memory two RelyingParty values on one MemoryStore.

// twoServers returns two relying parties sharing one database, and the
// stores under them.
func twoServers(t *testing.T, be e2eBackend) ([2]*webauthn.RelyingParty, [2]webauthn.Store) {
	t.Helper()
	s := be.open(t, 2)
	return [2]*webauthn.RelyingParty{e2eRelyingParty(t, s[0]), e2eRelyingParty(t, s[1])}, [2]webauthn.Store{s[0], s[1]}
}

// enrolled is a user with one registered virtual key.
type enrolled struct {
	user *webauthn.User
	key  *webauthntest.Client
	cred *webauthn.Credential
}

func enroll(t *testing.T, rp *webauthn.RelyingParty, name string) *enrolled {
	t.Helper()
	u, err := rp.CreateUser(t.Context(), name, "")
	if err != nil {
		t.Fatalf("CreateUser(%q): %v", name, err)
	}
	key := e2eKey(t)
	cred, err := key.Register(t.Context(), rp, u.ID, "key of "+name)
	if err != nil {
		t.Fatalf("registering a key for %q: %v", name, err)
	}
	return &enrolled{user: u, key: key, cred: cred}
}

// assertion runs BeginLogin on rp and has the key sign it, returning the
// challenge ID, the AuthenticationResponseJSON and the counter it carries.
func (e *enrolled) assertion(ctx context.Context, rp *webauthn.RelyingParty) (string, []byte, uint32, error) {
	b, err := rp.BeginLogin(ctx, e.user.ID)
	if err != nil {
		return "", nil, 0, fmt.Errorf("BeginLogin: %w", err)
	}
	resp, err := e.key.Get(ctx, b.Options)
	if err != nil {
		return "", nil, 0, fmt.Errorf("the key's assertion: %w", err)
	}
	// Each user has a key of their own, used by one goroutine at a
	// time, so its counter is this assertion's.
	return b.ChallengeID, resp, e.key.Key().Counter(), nil
}

// TestConcurrentSignIns runs 200 sign-ins of 20 users at once, spread
// over two servers: each user's sign-ins are sequential, begun on one
// server and finished on the other, alternately. Every sign-in must
// succeed and no counter update may be lost.
func TestConcurrentSignIns(t *testing.T) {
	const users, signIns = 20, 10
	for _, be := range e2eBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			rps, stores := twoServers(t, be)
			es := make([]*enrolled, users)
			for i := range es {
				es[i] = enroll(t, rps[i%2], fmt.Sprintf("user%02d@example.com", i))
			}

			start := time.Now()
			var (
				wg     sync.WaitGroup
				ready  = make(chan struct{})
				failed atomic.Int64
				counts = make([][]uint32, users)
			)
			for i, e := range es {
				wg.Go(func() {
					<-ready
					for j := range signIns {
						begin, finish := rps[(i+j)%2], rps[(i+j+1)%2]
						id, resp, n, err := e.assertion(ctx, begin)
						if err == nil {
							var c *webauthn.Credential
							if _, c, err = finish.FinishLogin(ctx, id, resp); err == nil {
								if c.SignCount != n {
									err = fmt.Errorf("FinishLogin returned count %d, the key signed %d", c.SignCount, n)
								}
								counts[i] = append(counts[i], c.SignCount)
							}
						}
						if err != nil {
							failed.Add(1)
							t.Errorf("user %d, sign-in %d: %v", i, j, err)
						}
					}
				})
			}
			close(ready)
			wg.Wait()
			elapsed := time.Since(start)
			if failed.Load() > 0 {
				t.Fatalf("%d of %d sign-ins failed", failed.Load(), users*signIns)
			}
			t.Logf("%d sign-ins in %v (%.0f/s)", users*signIns, elapsed, float64(users*signIns)/elapsed.Seconds())

			for i, e := range es {
				for k := 1; k < len(counts[i]); k++ {
					if counts[i][k] <= counts[i][k-1] {
						t.Errorf("user %d: accepted counts %v do not increase", i, counts[i])
						break
					}
				}
				// Read through each server: both see the same row.
				for si, s := range stores {
					c := storedCredential(t, s, e.cred.ID)
					if want := e.cred.SignCount + signIns; c.SignCount != want || c.SignCount != e.key.Key().Counter() {
						t.Errorf("user %d, server %d: stored SignCount %d, want %d (registered at %d, %d sign-ins; the key is at %d)",
							i, si, c.SignCount, want, e.cred.SignCount, signIns, e.key.Key().Counter())
					}
					if c.LastUsed.Before(start.Truncate(time.Microsecond)) || c.CloneWarning || !c.Active() {
						t.Errorf("user %d, server %d: stored LastUsed %v (want after %v), CloneWarning %v, active %v",
							i, si, c.LastUsed, start, c.CloneWarning, c.Active())
					}
				}
			}
		})
	}
}

// TestSignCountRace races two assertions of one key, made for two
// challenges and so carrying counters n and n+1, on the two servers. The
// outcomes WebAuthn L3 §7.2 step 22 allows are: both succeed (n was
// recorded first), or n+1 succeeds and n, arriving late, is refused as a
// counter regression and flags the key. n+1 is never refused, and the
// stored count is n+1 afterwards and never decreases meanwhile. A flagged
// key is cleared before the next round, since the default policy refuses
// it otherwise.
func TestSignCountRace(t *testing.T) {
	const rounds = 40
	for _, be := range e2eBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			rps, stores := twoServers(t, be)
			e := enroll(t, rps[0], "racer@example.com")

			// A watcher on a store reads the count all along: it must
			// never go down.
			stop := make(chan struct{})
			var watcher sync.WaitGroup
			watcher.Go(func() {
				var last uint32
				for {
					select {
					case <-stop:
						return
					default:
					}
					c, err := stores[1].Credential(ctx, e.cred.ID)
					if err != nil {
						t.Errorf("watcher: %v", err)
						return
					}
					if c.SignCount < last {
						t.Errorf("watcher: stored SignCount went down from %d to %d", last, c.SignCount)
					}
					last = c.SignCount
					time.Sleep(100 * time.Microsecond)
				}
			})
			defer func() { close(stop); watcher.Wait() }()

			// Two assertions, counters n and n+1, finished on the two
			// servers; late says whether n may have lost.
			race := func(what string, nOn int, sequential, late bool) (bothOK bool) {
				t.Helper()
				idN, respN, n, err := e.assertion(ctx, rps[0])
				if err != nil {
					t.Fatal(err)
				}
				idN1, respN1, n1, err := e.assertion(ctx, rps[1])
				if err != nil {
					t.Fatal(err)
				}
				if n1 != n+1 {
					t.Fatalf("%s: the key signed %d then %d", what, n, n1)
				}
				var errN, errN1 error
				finishN := func() { _, _, errN = rps[nOn].FinishLogin(ctx, idN, respN) }
				finishN1 := func() { _, _, errN1 = rps[1-nOn].FinishLogin(ctx, idN1, respN1) }
				switch {
				case sequential && late:
					finishN1()
					finishN()
				case sequential:
					finishN()
					finishN1()
				default:
					var wg sync.WaitGroup
					ready := make(chan struct{})
					wg.Go(func() { <-ready; finishN() })
					wg.Go(func() { <-ready; finishN1() })
					close(ready)
					wg.Wait()
				}
				if errN1 != nil {
					t.Fatalf("%s: the assertion with counter n+1=%d was refused: %v", what, n1, errN1)
				}
				switch {
				case errN == nil:
					if sequential && late {
						t.Fatalf("%s: counter %d accepted after %d", what, n, n1)
					}
				case errors.Is(errN, webauthn.ErrSignCount):
					if sequential && !late {
						t.Fatalf("%s: counter %d refused although recorded first: %v", what, n, errN)
					}
				default:
					t.Fatalf("%s: the assertion with counter n=%d: %v, want success or ErrSignCount", what, n, errN)
				}
				for si, s := range stores {
					c := storedCredential(t, s, e.cred.ID)
					if c.SignCount != n1 {
						t.Fatalf("%s: server %d stores SignCount %d, want the highest accepted, %d", what, si, c.SignCount, n1)
					}
					if errN != nil && !c.CloneWarning {
						t.Fatalf("%s: counter regression refused but CloneWarning not stored", what)
					}
				}
				if errN != nil {
					// A flagged key signs in no more; the administrator
					// clears the warning for the next round.
					if err := rps[1-nOn].ClearCloneWarning(ctx, e.user.ID, e.cred.ID); err != nil {
						t.Fatalf("%s: ClearCloneWarning: %v", what, err)
					}
				}
				return errN == nil
			}

			// In order, both succeed; the key is not flagged.
			race("n first", 0, true, false)
			if c := storedCredential(t, stores[0], e.cred.ID); c.CloneWarning {
				t.Fatal("n first: CloneWarning set")
			}
			// Reversed, n is refused and the key flagged.
			race("n+1 first", 1, true, true)

			var both, refused int
			for r := range rounds {
				if race(fmt.Sprintf("round %d", r), r%2, false, false) {
					both++
				} else {
					refused++
				}
			}
			t.Logf("%d concurrent rounds: both accepted %d times, the late n refused %d times", rounds, both, refused)
		})
	}
}

// TestChallengeRace finishes one sign-in response on both servers at
// once, 50 times: the challenge is single-use across servers, so exactly
// one call succeeds and the other gets ErrChallengeUnknown.
func TestChallengeRace(t *testing.T) {
	const rounds = 50
	for _, be := range e2eBackends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			rps, stores := twoServers(t, be)
			e := enroll(t, rps[0], "replayer@example.com")
			for r := range rounds {
				id, resp, n, err := e.assertion(ctx, rps[r%2])
				if err != nil {
					t.Fatal(err)
				}
				var (
					wg    sync.WaitGroup
					ready = make(chan struct{})
					errs  [2]error
				)
				for i, rp := range rps {
					wg.Go(func() {
						<-ready
						_, _, errs[i] = rp.FinishLogin(ctx, id, resp)
					})
				}
				close(ready)
				wg.Wait()
				wins := 0
				for i, err := range errs {
					switch {
					case err == nil:
						wins++
					case !errors.Is(err, webauthn.ErrChallengeUnknown):
						t.Errorf("round %d, server %d: %v, want success or ErrChallengeUnknown", r, i, err)
					}
				}
				if wins != 1 {
					t.Fatalf("round %d: %d servers accepted the response (%v), want exactly 1", r, wins, errs)
				}
				// Recorded once, with the key's counter.
				if c := storedCredential(t, stores[r%2], e.cred.ID); c.SignCount != n || c.CloneWarning {
					t.Fatalf("round %d: stored SignCount %d, CloneWarning %v; want %d, false", r, c.SignCount, c.CloneWarning, n)
				}
			}
		})
	}
}
