package webauthn_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/store/sqlite"
	"github.com/fidokit/fidokit/webauthn"
)

// TestNewValidatesRPID is issue 13 item 7: New refuses an RP ID that a
// browser would not let a page use, saying why, as package fido's
// WebAuthn client does.
func TestNewValidatesRPID(t *testing.T) {
	store := webauthn.NewMemoryStore()
	for _, tc := range []struct {
		rpID, origin string
		why          string // in the error; empty for a valid RP ID
	}{
		{"example.com", "https://login.example.com", ""},
		{"login.example.com", "https://login.example.com", ""},
		{"localhost", "http://localhost:8080", ""},
		{"dev.localhost", "https://dev.localhost", ""},
		{"xn--r8jz45g.jp", "https://xn--r8jz45g.jp", ""},
		{"example.co.uk", "https://example.co.uk", ""},
		{"", "https://example.com", "empty"},
		{"co.uk", "https://example.co.uk", "public suffix"},
		{"com", "https://example.com", "public suffix"},
		{"github.io", "https://someone.github.io", "public suffix"},
		{"intranet", "https://intranet", "public suffix"},
		{"https://example.com", "https://example.com", "scheme"},
		{"example.com:443", "https://example.com", "port"},
		{"example.com/login", "https://example.com", "path"},
		{"example.com?x", "https://example.com", "path"},
		{"user@example.com", "https://example.com", "not a domain"},
		{"[::1]", "https://[::1]", "not a domain"},
		{"127.0.0.1", "https://127.0.0.1", "IP address"},
		{"Example.com", "https://example.com", "lowercase"},
		{"例え.jp", "https://例え.jp", "punycode"},
		{"exa mple.com", "https://example.com", "lowercase"},
		{"example..com", "https://example.com", "label"},
		{".example.com", "https://example.com", "label"},
		{strings.Repeat("a", 64) + ".com", "https://example.com", "label"},
		// A parent of an origin's public suffix is not registrable from
		// below it.
		{"amazonaws.com", "https://bucket.s3.amazonaws.com", "public suffix"},
	} {
		t.Run(tc.rpID, func(t *testing.T) {
			_, err := webauthn.New(webauthn.Config{RPID: tc.rpID, Origins: []string{tc.origin}, Store: store})
			if tc.why == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.why)
			if !strings.Contains(err.Error(), "Origins") {
				assert.Contains(t, err.Error(), "RPID")
			}
		})
	}
}

// TestCloneWarningPolicy is issue 13 item 8: after a counter regression
// flags a key, the next sign-in is refused even with a counter above the
// stored one (ErrCloneWarning, 403 credential_clone_warning) until an
// administrator clears the warning; with Policy.AllowCloneWarning it
// succeeds and the warning stays.
func TestCloneWarningPolicy(t *testing.T) {
	// flagged registers alice's key, signs in once, rolls the key's
	// counter back (virtual.Key.SetCounter) and signs in again, which
	// flags the key; then sets the counter past the stored one.
	flagged := func(t *testing.T, e *env) (*webauthn.User, *webauthn.Credential, func() (*webauthn.Credential, error)) {
		u := e.user("alice")
		k := e.key(nil)
		e.register(k, u, "")
		c := e.login(k, u)
		require.NoError(t, k.Key().SetCounter(0))
		_, _, err := k.Login(e.ctx, e.rp, u.ID)
		wantErr(t, err, webauthn.ErrSignCount, "§7.2 step 22")
		require.NoError(t, k.Key().SetCounter(c.SignCount+100))
		login := func() (*webauthn.Credential, error) {
			_, got, err := k.Login(e.ctx, e.rp, u.ID)
			return got, err
		}
		return u, c, login
	}

	t.Run("default refuses until cleared", func(t *testing.T) {
		e := newEnv(t, nil)
		u, c, login := flagged(t, e)
		before := e.snapshot()
		for range 2 {
			_, err := login()
			wantErr(t, err, webauthn.ErrCloneWarning, "credential record")
			assert.Equal(t, "credential_clone_warning", webauthn.ErrorCode(err))
		}
		after := e.snapshot()
		assert.True(t, after.equal(before), "a refused flagged key changed the store:\n%v\nwant\n%v", after, before)
		stored, err := e.rp.Credential(e.ctx, u.ID, c.ID)
		require.NoError(t, err)
		assert.True(t, stored.CloneWarning)
		assert.Equal(t, c.SignCount, stored.SignCount, "the refused sign-ins moved the count")

		// Only the owner's key; another user cannot clear it.
		bob := e.user("bob")
		assert.ErrorIs(t, e.rp.ClearCloneWarning(e.ctx, bob.ID, c.ID), webauthn.ErrUnknownCredential)
		require.NoError(t, e.rp.ClearCloneWarning(e.ctx, u.ID, c.ID))
		got, err := login()
		require.NoError(t, err, "sign-in after clearing the warning")
		assert.False(t, got.CloneWarning)
		assert.Equal(t, c.SignCount+103, got.SignCount)
	})

	t.Run("AllowCloneWarning", func(t *testing.T) {
		e := newEnv(t, func(c *webauthn.Config) { c.Policy.AllowCloneWarning = true })
		_, c, login := flagged(t, e)
		got, err := login()
		require.NoError(t, err)
		assert.True(t, got.CloneWarning, "the warning stays")
		assert.Equal(t, c.SignCount+101, got.SignCount)
	})

	t.Run("HTTP", func(t *testing.T) {
		e := newEnv(t, nil)
		a := newApp(t, e, nil)
		k := e.key(nil)
		_, _, err := k.HTTP(a.base, a.browser(t)).Signup(e.ctx, "alice@example.com", "", "")
		require.NoError(t, err)
		require.NoError(t, k.Key().SetCounter(0))
		_, _, err = k.HTTP(a.base, a.browser(t)).Login(e.ctx, "")
		checkHTTPError(t, err, http.StatusForbidden, "sign_count_regression")
		require.NoError(t, k.Key().SetCounter(1000))
		_, _, err = k.HTTP(a.base, a.browser(t)).Login(e.ctx, "")
		checkHTTPError(t, err, http.StatusForbidden, "credential_clone_warning")
	})
}

// purgeAll removes and counts every challenge in s: how many it held.
func purgeAll(t testing.TB, s webauthn.Store) int {
	t.Helper()
	n, err := s.PurgeChallenges(t.Context(), time.Now().Add(100*365*24*time.Hour))
	require.NoError(t, err)
	return n
}

// TestChallengesBounded is issue 13 item 6: outstanding challenges are
// capped per user and in all (ErrTooManyCeremonies, 429
// too_many_ceremonies), the caps have defaults, and expired challenges
// stop counting and are removed by the store itself.
func TestChallengesBounded(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		e := newEnv(t, nil)
		u := e.user("alice")
		e.register(e.key(nil), u, "")
		for range webauthn.DefaultMaxChallengesPerUser {
			e.beginLogin(u)
		}
		_, err := e.rp.BeginLogin(e.ctx, u.ID)
		assert.ErrorIs(t, err, webauthn.ErrTooManyCeremonies)
		assert.Equal(t, 16, webauthn.DefaultMaxChallengesPerUser)
		assert.Equal(t, 100_000, webauthn.DefaultMaxChallenges)
	})

	t.Run("limits", func(t *testing.T) {
		e := newEnv(t, func(c *webauthn.Config) { c.MaxChallengesPerUser, c.MaxChallenges = 3, 10 })
		alice, bob := e.user("alice"), e.user("bob")
		ka := e.key(nil)
		e.register(ka, alice, "")
		e.register(e.key(nil), bob, "")
		var begun []*webauthn.Begin
		for range 3 {
			begun = append(begun, e.beginLogin(alice))
		}
		_, err := e.rp.BeginLogin(e.ctx, alice.ID)
		require.ErrorIs(t, err, webauthn.ErrTooManyCeremonies)
		assert.Equal(t, "too_many_ceremonies", webauthn.ErrorCode(err))
		_, err = e.rp.BeginRegistration(e.ctx, alice.ID)
		assert.ErrorIs(t, err, webauthn.ErrTooManyCeremonies, "registration counts too")
		// Finishing one frees a place; bob is not limited by alice.
		_, _, err = e.rp.FinishLogin(e.ctx, begun[0].ChallengeID, e.get(ka, begun[0].Options))
		require.NoError(t, err)
		e.beginLogin(alice)
		for range 3 {
			e.beginLogin(bob)
		}
		// 6 held; discoverable sign-ins and sign-ups fill the rest.
		for range 3 {
			_, err := e.rp.BeginDiscoverableLogin(e.ctx)
			require.NoError(t, err)
		}
		_, err = e.rp.BeginSignup(e.ctx, "carol", "")
		require.NoError(t, err)
		_, err = e.rp.BeginDiscoverableLogin(e.ctx)
		require.ErrorIs(t, err, webauthn.ErrTooManyCeremonies)
		_, err = e.rp.BeginSignup(e.ctx, "dave", "")
		require.ErrorIs(t, err, webauthn.ErrTooManyCeremonies)
		// Once they expire there is room again, and the store has
		// removed the expired ones without a PurgeChallenges.
		e.clock.Advance(webauthn.DefaultChallengeTimeout)
		for range 10 {
			_, err := e.rp.BeginDiscoverableLogin(e.ctx)
			require.NoError(t, err)
		}
		_, err = e.rp.BeginDiscoverableLogin(e.ctx)
		require.ErrorIs(t, err, webauthn.ErrTooManyCeremonies)
		assert.Equal(t, 10, purgeAll(t, e.mem), "challenges held")
	})

	t.Run("HTTP", func(t *testing.T) {
		e := newEnv(t, func(c *webauthn.Config) { c.MaxChallenges = 2 })
		a := newApp(t, e, nil)
		for i := range 3 {
			status, code, _ := rawRequest(t, a.browser(t), "POST", a.base+"/login/begin", nil, map[string]string{"Content-Type": "application/json"})
			if i < 2 {
				assert.Equal(t, http.StatusOK, status)
				continue
			}
			assert.Equal(t, http.StatusTooManyRequests, status)
			assert.Equal(t, "too_many_ceremonies", code)
		}
	})
}

var floodWorkers = 8

// flood begins n discoverable sign-ins on rp from 8 goroutines and
// returns how many were refused with ErrTooManyCeremonies.
func flood(t testing.TB, rp *webauthn.RelyingParty, n int) int {
	t.Helper()
	var next, refused atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, floodWorkers)
	for range floodWorkers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				_, err := rp.BeginDiscoverableLogin(context.Background())
				switch {
				case errors.Is(err, webauthn.ErrTooManyCeremonies):
					refused.Add(1)
				case err != nil:
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	return int(refused.Load())
}

// fileSize is the size of an SQLite database: the file and its WAL.
func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	var n int64
	for _, p := range []string{path, path + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// TestChallengeFloodBounded is issue 13 item 6: a flood of anonymous
// (discoverable) begins leaves the memory store and the SQLite file
// bounded by MaxChallenges, across expiries, and costs no storage under
// a ChallengeKey.
func TestChallengeFloodBounded(t *testing.T) {
	const (
		limit  = 300
		rounds = 3
		begins = 2 * limit // per round
	)
	clk := newClock()
	cfg := func(store webauthn.Store) webauthn.Config {
		return webauthn.Config{RPID: testRPID, Origins: []string{testOrigin}, Store: store, Now: clk.Now, MaxChallenges: limit}
	}
	t.Run("memory", func(t *testing.T) {
		mem := webauthn.NewMemoryStore()
		rp, err := webauthn.New(cfg(mem))
		require.NoError(t, err)
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		heap0 := ms.HeapAlloc
		for r := range rounds {
			refused := flood(t, rp, begins)
			assert.Equal(t, begins-limit, refused, "round %d: refused", r)
			clk.Advance(webauthn.DefaultChallengeTimeout)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms)
		held := purgeAll(t, mem)
		assert.Equal(t, limit, held)
		t.Logf("memory store: %d begins in %d rounds, %d challenges held (limit %d), heap grew %d KiB (%d bytes a challenge)",
			rounds*begins, rounds, held, limit, (int64(ms.HeapAlloc)-int64(heap0))/1024, (int64(ms.HeapAlloc)-int64(heap0))/int64(held))
	})
	t.Run("sqlite", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "flood.db")
		s, err := sqlite.Open(t.Context(), path)
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		rp, err := webauthn.New(cfg(s))
		require.NoError(t, err)
		var sizes []int64
		for r := range rounds {
			refused := flood(t, rp, begins)
			assert.Equal(t, begins-limit, refused, "round %d: refused", r)
			sizes = append(sizes, fileSize(t, path))
			clk.Advance(webauthn.DefaultChallengeTimeout)
		}
		// The file stops growing once it holds the limit: later rounds
		// reuse the pages of the expired challenges.
		assert.LessOrEqual(t, sizes[rounds-1], sizes[0]+sizes[0]/2, "file sizes by round: %v", sizes)
		assert.Less(t, sizes[rounds-1], int64(8<<20))
		held := purgeAll(t, s)
		assert.Equal(t, limit, held)
		t.Logf("SQLite: %d begins in %d rounds, %d challenges held (limit %d), file and WAL by round %v bytes",
			rounds*begins, rounds, held, limit, sizes)
	})
	t.Run("ChallengeKey", func(t *testing.T) {
		mem := webauthn.NewMemoryStore()
		c := cfg(mem)
		c.ChallengeKey = bytes.Repeat([]byte{7}, 32)
		rp, err := webauthn.New(c)
		require.NoError(t, err)
		assert.Equal(t, 0, flood(t, rp, begins))
		assert.Equal(t, 0, purgeAll(t, mem), "challenges held")
	})
}

// TestChallengeKey is issue 13 item 6: under Config.ChallengeKey a
// discoverable sign-in stores nothing when it begins, signs in once with
// its token, on any server with the key, and never after it expires or
// with a token the key did not make.
func TestChallengeKey(t *testing.T) {
	key := bytes.Repeat([]byte("k"), webauthn.MinChallengeKeyLen)
	e, wc := countedEnv(t, func(c *webauthn.Config) { c.ChallengeKey = key })
	u := e.user("alice")
	k := e.key(nil)
	e.register(k, u, "")
	other := e.newRP(nil) // a server sharing the store and the key

	begin := func(rp *webauthn.RelyingParty) *webauthn.Begin {
		t.Helper()
		w := wc.writes.Load()
		b, err := rp.BeginDiscoverableLogin(e.ctx)
		require.NoError(t, err)
		assert.Equal(t, w, wc.writes.Load(), "BeginDiscoverableLogin wrote to the store")
		assert.True(t, strings.HasPrefix(b.ChallengeID, "t1."), b.ChallengeID)
		return b
	}

	t.Run("once", func(t *testing.T) {
		b := begin(e.rp)
		resp := e.get(k, b.Options)
		// A rejected response leaves the token usable.
		bad := editJSON(t, resp, func(m map[string]any) { obj(m, "response")["signature"] = b64([]byte("nope")) })
		_, _, err := other.FinishLogin(e.ctx, b.ChallengeID, bad)
		require.ErrorIs(t, err, webauthn.ErrVerification)
		got, _, err := other.FinishLogin(e.ctx, b.ChallengeID, resp)
		require.NoError(t, err, "finished on another server")
		assert.Equal(t, u.ID, got.ID)
		_, _, err = e.rp.FinishLogin(e.ctx, b.ChallengeID, resp)
		wantErr(t, err, webauthn.ErrChallengeUnknown, "challenge")
	})

	t.Run("concurrent", func(t *testing.T) {
		b := begin(e.rp)
		resp := e.get(k, b.Options)
		const n = 16
		var wg sync.WaitGroup
		var ok atomic.Int32
		for i := range n {
			rp := []*webauthn.RelyingParty{e.rp, other}[i%2]
			wg.Go(func() {
				_, _, err := rp.FinishLogin(e.ctx, b.ChallengeID, resp)
				switch {
				case err == nil:
					ok.Add(1)
				case !errors.Is(err, webauthn.ErrChallengeUnknown):
					// The token is spent before the counter is
					// compared, so a loser never gets as far.
					t.Errorf("a losing FinishLogin = %v, want ErrChallengeUnknown", err)
				}
			})
		}
		wg.Wait()
		assert.Equal(t, int32(1), ok.Load(), "sign-ins accepted with one token")
	})

	t.Run("refused", func(t *testing.T) {
		b := begin(e.rp)
		resp := e.get(k, b.Options)
		tampered := []byte(b.ChallengeID)
		tampered[10] ^= 1
		noKey := e.newRP(func(c *webauthn.Config) { c.ChallengeKey = nil })
		otherKey := e.newRP(func(c *webauthn.Config) { c.ChallengeKey = bytes.Repeat([]byte("o"), 32) })
		for name, finish := range map[string]func() error{
			"tampered": func() error { _, _, err := e.rp.FinishLogin(e.ctx, string(tampered), resp); return err },
			"truncated": func() error {
				_, _, err := e.rp.FinishLogin(e.ctx, b.ChallengeID[:len(b.ChallengeID)-4], resp)
				return err
			},
			"without a key":  func() error { _, _, err := noKey.FinishLogin(e.ctx, b.ChallengeID, resp); return err },
			"another key":    func() error { _, _, err := otherKey.FinishLogin(e.ctx, b.ChallengeID, resp); return err },
			"a registration": func() error { _, err := e.rp.FinishRegistration(e.ctx, b.ChallengeID, resp, ""); return err },
		} {
			t.Run(name, func(t *testing.T) { wantErr(t, finish(), webauthn.ErrChallengeUnknown, "challenge") })
		}
		// Still good for the sign-in it was made for, until it expires.
		e.clock.Advance(webauthn.DefaultChallengeTimeout)
		_, _, err := e.rp.FinishLogin(e.ctx, b.ChallengeID, resp)
		wantErr(t, err, webauthn.ErrExpired, "challenge")
		e.clock.Advance(-webauthn.DefaultChallengeTimeout + time.Second)
		_, _, err = e.rp.FinishLogin(e.ctx, b.ChallengeID, resp)
		require.NoError(t, err)
	})

	t.Run("config", func(t *testing.T) {
		_, err := webauthn.New(webauthn.Config{RPID: testRPID, Origins: []string{testOrigin}, Store: e.mem, ChallengeKey: key[:31]})
		assert.ErrorContains(t, err, "ChallengeKey")
	})

	t.Run("HTTP", func(t *testing.T) {
		a := newApp(t, e, nil)
		h := k.HTTP(a.base, a.browser(t))
		got, _, err := h.Login(e.ctx, "")
		require.NoError(t, err)
		assert.Equal(t, b64(u.ID), got.ID)
	})
}

// BenchmarkChallengeFlood is issue 13 item 6's numbers: b.N anonymous
// (discoverable) begins from 8 goroutines against a relying party with
// the default MaxChallenges, on each store; it reports the challenges
// held afterwards, the memory store's heap growth and the SQLite file's
// size with its WAL. Run it with -benchtime=200000x to fill the default
// limit of 100,000 twice over.
func BenchmarkChallengeFlood(b *testing.B) {
	cfg := func(store webauthn.Store) webauthn.Config {
		return webauthn.Config{RPID: testRPID, Origins: []string{testOrigin}, Store: store}
	}
	b.Run("memory", func(b *testing.B) {
		mem := webauthn.NewMemoryStore()
		rp, err := webauthn.New(cfg(mem))
		require.NoError(b, err)
		var ms runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms)
		heap0 := int64(ms.HeapAlloc)
		b.ResetTimer()
		refused := flood(b, rp, b.N)
		b.StopTimer()
		runtime.GC()
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(refused), "refused")
		b.ReportMetric(float64(int64(ms.HeapAlloc)-heap0)/(1<<20), "heap-MiB")
		b.ReportMetric(float64(purgeAll(b, mem)), "held")
	})
	b.Run("sqlite", func(b *testing.B) {
		path := filepath.Join(b.TempDir(), "flood.db")
		s, err := sqlite.Open(b.Context(), path)
		require.NoError(b, err)
		b.Cleanup(func() { s.Close() })
		rp, err := webauthn.New(cfg(s))
		require.NoError(b, err)
		b.ResetTimer()
		refused := flood(b, rp, b.N)
		b.StopTimer()
		b.ReportMetric(float64(refused), "refused")
		b.ReportMetric(float64(fileSize(b, path))/(1<<20), "file-MiB")
		b.ReportMetric(float64(purgeAll(b, s)), "held")
	})
	b.Run("ChallengeKey", func(b *testing.B) {
		mem := webauthn.NewMemoryStore()
		c := cfg(mem)
		c.ChallengeKey = bytes.Repeat([]byte{7}, 32)
		rp, err := webauthn.New(c)
		require.NoError(b, err)
		b.ResetTimer()
		refused := flood(b, rp, b.N)
		b.StopTimer()
		b.ReportMetric(float64(refused), "refused")
		b.ReportMetric(float64(purgeAll(b, mem)), "held")
	})
}
