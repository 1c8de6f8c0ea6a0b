package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/webauthn"
)

// This file checks [webauthn.FinishStore], for the stores that have it:
// ReadSignIn reads the challenge, the credential and its owner and leaves
// the challenge stored; FinishSignIn takes the challenge with the sign
// count's compare-and-set, so that a challenge is used once and a count
// moves once whoever races for them.
//
// ReadSignIn's "user nil if its owner is gone" is not tested: a Store
// has no way to remove a user, and AddCredential refuses a credential
// whose owner does not exist.

var finishSignInTests = []test{
	{"ReadSignIn", func(t *testing.T, s webauthn.Store) {
		fs := finishStore(t, s)
		u := mustUser(t, s)
		c := mustCredential(t, s, u.ID)
		ch := mustChallenge(t, s, base.Add(time.Hour))
		for i := range 2 { // reading leaves the challenge stored
			gotCh, gotC, gotU, err := fs.ReadSignIn(t.Context(), ch.ID, c.ID, base)
			require.NoError(t, err, "ReadSignIn #%d", i+1)
			checkChallenge(t, fmt.Sprintf("challenge #%d", i+1), gotCh, ch)
			require.NotNil(t, gotC, "credential #%d", i+1)
			checkCredential(t, fmt.Sprintf("credential #%d", i+1), gotC, c)
			require.NotNil(t, gotU, "user #%d", i+1)
			checkUser(t, fmt.Sprintf("user #%d", i+1), gotU, u)
		}
		credentialIs(t, s, "credential after ReadSignIn", c)
		got, err := s.TakeChallenge(t.Context(), ch.ID, base)
		require.NoError(t, err, "TakeChallenge after ReadSignIn")
		checkChallenge(t, "challenge taken after ReadSignIn", got, ch)
	}},
	{"ReadSignInDeactivated", func(t *testing.T, s webauthn.Store) {
		// A deactivated credential is read as it is: refusing it is the
		// relying party's decision, and FinishSignIn's ErrInactive.
		fs := finishStore(t, s)
		u := mustUser(t, s)
		c := mustCredential(t, s, u.ID)
		require.NoError(t, s.DeactivateCredential(t.Context(), u.ID, c.ID, base.Add(3*time.Hour)))
		c.Deactivated = base.Add(3 * time.Hour)
		ch := mustChallenge(t, s, base.Add(time.Hour))
		_, gotC, gotU, err := fs.ReadSignIn(t.Context(), ch.ID, c.ID, base)
		require.NoError(t, err)
		require.NotNil(t, gotC)
		checkCredential(t, "credential", gotC, c)
		require.NotNil(t, gotU)
		checkUser(t, "user", gotU, u)
	}},
	{"ReadSignInUnknownCredential", func(t *testing.T, s webauthn.Store) {
		fs := finishStore(t, s)
		u := mustUser(t, s)
		c := mustCredential(t, s, u.ID)
		ch := mustChallenge(t, s, base.Add(time.Hour))
		for _, id := range [][]byte{randBytes(t, 32), append(bytes.Clone(c.ID), 0), c.ID[:len(c.ID)-1]} {
			gotCh, gotC, gotU, err := fs.ReadSignIn(t.Context(), ch.ID, id, base)
			require.NoError(t, err, "ReadSignIn(%x)", id)
			checkChallenge(t, "challenge", gotCh, ch)
			assert.Nil(t, gotC, "credential %x", id)
			assert.Nil(t, gotU, "user of credential %x", id)
		}
		_, err := s.TakeChallenge(t.Context(), ch.ID, base)
		assert.NoError(t, err, "the challenge is left stored")
	}},
	{"ReadSignInUnknownChallenge", func(t *testing.T, s webauthn.Store) {
		fs := finishStore(t, s)
		u := mustUser(t, s)
		c := mustCredential(t, s, u.ID)
		ch := mustChallenge(t, s, base.Add(time.Hour))
		_, err := s.TakeChallenge(t.Context(), ch.ID, base)
		require.NoError(t, err)
		for _, id := range []string{"ch-none", ch.ID} { // never stored, taken
			gotCh, gotC, gotU, err := fs.ReadSignIn(t.Context(), id, c.ID, base)
			assert.ErrorIs(t, err, webauthn.ErrNotFound, "ReadSignIn(%q)", id)
			assert.Nil(t, gotCh)
			assert.Nil(t, gotC)
			assert.Nil(t, gotU)
		}
		credentialIs(t, s, "credential", c)
	}},
	{"ReadSignInExpired", func(t *testing.T, s webauthn.Store) {
		fs := finishStore(t, s)
		u := mustUser(t, s)
		c := mustCredential(t, s, u.ID)
		ch := mustChallenge(t, s, base.Add(time.Minute))
		_, _, _, err := fs.ReadSignIn(t.Context(), ch.ID, c.ID, ch.Expires.Add(-time.Microsecond))
		require.NoError(t, err, "a microsecond before Expires")
		for _, now := range []time.Time{ch.Expires, ch.Expires.Add(time.Hour)} {
			gotCh, gotC, gotU, err := fs.ReadSignIn(t.Context(), ch.ID, c.ID, now)
			assert.ErrorIs(t, err, webauthn.ErrExpired, "ReadSignIn at %v (Expires %v)", now, ch.Expires)
			assert.Nil(t, gotCh)
			assert.Nil(t, gotC)
			assert.Nil(t, gotU)
		}
	}},
	{"FinishSignIn", func(t *testing.T, s webauthn.Store) {
		fs := finishStore(t, s)
		u := mustUser(t, s)
		at := base.Add(48*time.Hour + 987654321)
		for _, tc := range []struct {
			name  string
			setup func(c *webauthn.Credential) // before storing
			// id returns the challenge ID to finish; nil finishes ch.
			id          func(t *testing.T, ch *webauthn.Challenge) string
			in          func(c *webauthn.Credential) webauthn.SignIn
			taken       bool
			err         error
			count       uint32 // set when taken and err is nil
			backupState bool
		}{
			{
				name:  "match",
				in:    func(c *webauthn.Credential) webauthn.SignIn { return signIn(c.ID, 41, 42, false, at) },
				taken: true,
				count: 42,
			},
			{
				name:        "match sets BS",
				setup:       func(c *webauthn.Credential) { c.BackupState = false },
				in:          func(c *webauthn.Credential) webauthn.SignIn { return signIn(c.ID, 41, 1000, true, at) },
				taken:       true,
				count:       1000,
				backupState: true,
			},
			{
				name:  "counter-less key stays at zero",
				setup: func(c *webauthn.Credential) { c.SignCount, c.LastUsed = 0, time.Time{} },
				in:    func(c *webauthn.Credential) webauthn.SignIn { return signIn(c.ID, 0, 0, false, at) },
				taken: true,
				count: 0,
			},
			{
				name:  "largest counter",
				in:    func(c *webauthn.Credential) webauthn.SignIn { return signIn(c.ID, 41, 1<<32-1, false, at) },
				taken: true,
				count: 1<<32 - 1,
			},
			{
				name: "unknown challenge",
				id:   func(*testing.T, *webauthn.Challenge) string { return "ch-none" },
				in:   func(c *webauthn.Credential) webauthn.SignIn { return signIn(c.ID, 41, 42, false, at) },
			},
			{
				name: "challenge taken by TakeChallenge",
				id: func(t *testing.T, ch *webauthn.Challenge) string {
					_, err := s.TakeChallenge(t.Context(), ch.ID, base)
					require.NoError(t, err)
					return ch.ID
				},
				in: func(c *webauthn.Credential) webauthn.SignIn { return signIn(c.ID, 41, 42, false, at) },
			},
			{
				name: "challenge purged",
				id: func(t *testing.T, ch *webauthn.Challenge) string {
					n, err := s.PurgeChallenges(t.Context(), ch.Expires)
					require.NoError(t, err)
					require.Positive(t, n)
					return ch.ID
				},
				in: func(c *webauthn.Credential) webauthn.SignIn { return signIn(c.ID, 41, 42, false, at) },
			},
			{
				name:  "stale count",
				in:    func(c *webauthn.Credential) webauthn.SignIn { return signIn(c.ID, 40, 43, false, at) },
				taken: true,
				err:   webauthn.ErrConflict,
			},
			{
				name:  "newer count",
				in:    func(c *webauthn.Credential) webauthn.SignIn { return signIn(c.ID, 42, 43, false, at) },
				taken: true,
				err:   webauthn.ErrConflict,
			},
			{
				name:  "deactivated",
				setup: func(c *webauthn.Credential) { c.Deactivated = base },
				in:    func(c *webauthn.Credential) webauthn.SignIn { return signIn(c.ID, 41, 42, false, at) },
				taken: true,
				err:   webauthn.ErrInactive,
			},
			{
				name: "unknown credential",
				in: func(c *webauthn.Credential) webauthn.SignIn {
					return signIn(append(bytes.Clone(c.ID), 1), 41, 42, false, at)
				},
				taken: true,
				err:   webauthn.ErrNotFound,
			},
		} {
			t.Run(tc.name, func(t *testing.T) {
				c := fullCredential(t, u.ID)
				if tc.setup != nil {
					tc.setup(c)
				}
				require.NoError(t, s.AddCredential(t.Context(), c, 0))
				// Expiry is not checked again: the challenge's Expires
				// (like every time here) is long past on the wall clock.
				ch := mustChallenge(t, s, base.Add(time.Hour))
				id := ch.ID
				if tc.id != nil {
					id = tc.id(t, ch)
				}
				ok, err := fs.FinishSignIn(t.Context(), id, tc.in(c))
				assert.Equal(t, tc.taken, ok, "taken")
				if tc.err != nil {
					assert.ErrorIs(t, err, tc.err)
				} else {
					assert.NoError(t, err)
				}
				want := *c
				if tc.taken && tc.err == nil {
					want.SignCount, want.BackupState, want.LastUsed = tc.count, tc.backupState, at
				}
				credentialIs(t, s, "credential", &want)
				if id == ch.ID {
					assert.ErrorIs(t, taken(t, s, ch.ID, base), webauthn.ErrNotFound, "the challenge is gone")
				} else {
					assert.NoError(t, taken(t, s, ch.ID, base), "finishing another ID leaves the challenge stored")
				}
			})
		}
	}},
	{"ReadThenFinish", func(t *testing.T, s webauthn.Store) {
		// The sign-in as the relying party makes it: read, verify (here:
		// nothing), finish with the count read.
		fs := finishStore(t, s)
		u := mustUser(t, s)
		c := mustCredential(t, s, u.ID)
		for i := range 3 {
			ch := mustChallenge(t, s, base.Add(time.Hour))
			_, gotC, _, err := fs.ReadSignIn(t.Context(), ch.ID, c.ID, base)
			require.NoError(t, err, "ReadSignIn #%d", i+1)
			require.NotNil(t, gotC)
			at := base.Add(time.Duration(i+1) * time.Minute)
			in := webauthn.SignIn{CredentialID: c.ID, OldCount: gotC.SignCount, NewCount: gotC.SignCount + 5, BackupState: i%2 == 0, At: at}
			ok, err := fs.FinishSignIn(t.Context(), ch.ID, in)
			require.NoError(t, err, "FinishSignIn #%d", i+1)
			assert.True(t, ok, "FinishSignIn #%d takes the challenge", i+1)
			c.SignCount, c.BackupState, c.LastUsed = in.NewCount, in.BackupState, at
			credentialIs(t, s, fmt.Sprintf("after sign-in #%d", i+1), c)
			_, _, _, err = fs.ReadSignIn(t.Context(), ch.ID, c.ID, base)
			assert.ErrorIs(t, err, webauthn.ErrNotFound, "ReadSignIn of a finished challenge")
		}
	}},
	{"FinishSignInTwice", func(t *testing.T, s webauthn.Store) {
		// A second FinishSignIn of one challenge changes nothing, even
		// with an update that RecordSignIn would now accept.
		fs := finishStore(t, s)
		u := mustUser(t, s)
		c := mustCredential(t, s, u.ID)
		ch := mustChallenge(t, s, base.Add(time.Hour))
		at := base.Add(time.Minute)
		first := signIn(c.ID, c.SignCount, c.SignCount+1, false, at)
		ok, err := fs.FinishSignIn(t.Context(), ch.ID, first)
		require.NoError(t, err)
		require.True(t, ok)
		c.SignCount, c.BackupState, c.LastUsed = first.NewCount, first.BackupState, at
		for _, in := range []webauthn.SignIn{
			first, // replayed
			signIn(c.ID, c.SignCount, c.SignCount+1, true, at.Add(time.Minute)), // the next count
		} {
			ok, err := fs.FinishSignIn(t.Context(), ch.ID, in)
			assert.NoError(t, err)
			assert.False(t, ok, "FinishSignIn of a finished challenge (%d→%d)", in.OldCount, in.NewCount)
			credentialIs(t, s, "credential", c)
		}
	}},
	{"Canceled", func(t *testing.T, s webauthn.Store) {
		fs := finishStore(t, s)
		u := mustUser(t, s)
		c := mustCredential(t, s, u.ID)
		ch := mustChallenge(t, s, base.Add(time.Hour))
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		_, _, _, err := fs.ReadSignIn(ctx, ch.ID, c.ID, base)
		assert.ErrorIs(t, err, context.Canceled, "ReadSignIn with a canceled context")
		_, err = fs.FinishSignIn(ctx, ch.ID, signIn(c.ID, c.SignCount, c.SignCount+1, false, base))
		assert.ErrorIs(t, err, context.Canceled, "FinishSignIn with a canceled context")
		// Nothing changed.
		credentialIs(t, s, "credential", c)
		got, err := s.TakeChallenge(t.Context(), ch.ID, base)
		require.NoError(t, err, "challenge taken under a canceled context")
		checkChallenge(t, "challenge", got, ch)
	}},
	{"Concurrent", func(t *testing.T, s webauthn.Store) { raceFinishSignIn(t, s, s) }},
	{"ConcurrentCount", func(t *testing.T, s webauthn.Store) { raceFinishSignInCount(t, s, s) }},
}

func finishStore(t *testing.T, s webauthn.Store) webauthn.FinishStore {
	t.Helper()
	fs, ok := s.(webauthn.FinishStore)
	if !ok {
		t.Skipf("%T does not implement webauthn.FinishStore", s)
	}
	return fs
}

// raceFinishSignIn: in each of 50 rounds, 20 goroutines on either handle
// race for one challenge, all but one with FinishSignIn (the same update)
// and one with TakeChallenge. Exactly one takes it, and the sign count
// moves once if that was a FinishSignIn, else not at all.
func raceFinishSignIn(t *testing.T, a, b webauthn.Store) {
	const rounds, n = 50, 20
	fa, fb := finishStore(t, a), finishStore(t, b)
	u := mustUser(t, a)
	c := mustCredential(t, a, u.ID)
	count := c.SignCount
	var byTake int
	for round := range rounds {
		ch := mustChallenge(t, pick(round, a, b), base.Add(time.Hour))
		in := signIn(c.ID, count, count+1, round%2 == 0, base.Add(time.Duration(round)*time.Second))
		taker := round * 7 % n // the goroutine that calls TakeChallenge
		var finished, took atomic.Int32
		parallel(t, n, func(i int) error {
			if i == taker {
				got, err := pick(i, a, b).TakeChallenge(t.Context(), ch.ID, base)
				switch {
				case err == nil:
					took.Add(1)
					if !bytes.Equal(got.Challenge, ch.Challenge) {
						return fmt.Errorf("round %d: TakeChallenge returned challenge %x, want %x", round, got.Challenge, ch.Challenge)
					}
					return nil
				case errors.Is(err, webauthn.ErrNotFound):
					return nil
				}
				return fmt.Errorf("round %d: TakeChallenge: %w", round, err)
			}
			fs := fa
			if i%2 == 1 {
				fs = fb
			}
			ok, err := fs.FinishSignIn(t.Context(), ch.ID, in)
			if err != nil {
				return fmt.Errorf("round %d: FinishSignIn = (%v, %w)", round, ok, err)
			}
			if ok {
				finished.Add(1)
			}
			return nil
		})
		f, tk := finished.Load(), took.Load()
		require.EqualValues(t, 1, f+tk, "round %d: calls that took the challenge (%d FinishSignIn, %d TakeChallenge), want exactly 1", round, f, tk)
		if f == 1 {
			count++
		} else {
			byTake++
		}
		got, err := pick(round+1, a, b).Credential(t.Context(), c.ID)
		require.NoError(t, err)
		require.Equal(t, count, got.SignCount, "round %d: the sign count moves once, and only if FinishSignIn took the challenge", round)
	}
	t.Logf("%d rounds, %d won by TakeChallenge", rounds, byTake)
}

// raceFinishSignInCount: in each of 20 rounds, 8 goroutines on either
// handle finish 8 different challenges with updates of one credential
// from the same OldCount. Each takes its challenge; exactly one sets the
// count, the others get ErrConflict.
func raceFinishSignInCount(t *testing.T, a, b webauthn.Store) {
	const rounds, n = 20, 8
	fa, fb := finishStore(t, a), finishStore(t, b)
	u := mustUser(t, a)
	c := mustCredential(t, a, u.ID)
	count := c.SignCount
	for round := range rounds {
		chs := make([]*webauthn.Challenge, n)
		for i := range chs {
			chs[i] = mustChallenge(t, pick(i, a, b), base.Add(time.Hour))
		}
		var wins, conflicts atomic.Int32
		var winner atomic.Uint32
		parallel(t, n, func(i int) error {
			fs := fa
			if i%2 == 1 {
				fs = fb
			}
			newCount := count + 1 + uint32(i)
			ok, err := fs.FinishSignIn(t.Context(), chs[i].ID, signIn(c.ID, count, newCount, false, base))
			if !ok {
				return fmt.Errorf("round %d: FinishSignIn of challenge %d = (false, %v), want it taken", round, i, err)
			}
			switch {
			case err == nil:
				wins.Add(1)
				winner.Store(newCount)
				return nil
			case errors.Is(err, webauthn.ErrConflict):
				conflicts.Add(1)
				return nil
			}
			return fmt.Errorf("round %d: FinishSignIn of challenge %d: %w", round, i, err)
		})
		require.EqualValues(t, 1, wins.Load(), "round %d: FinishSignIn calls that set the count", round)
		assert.EqualValues(t, n-1, conflicts.Load(), "round %d: FinishSignIn calls that conflicted", round)
		count = winner.Load()
		got, err := pick(round, a, b).Credential(t.Context(), c.ID)
		require.NoError(t, err)
		require.Equal(t, count, got.SignCount, "round %d: the count the winner set", round)
		for i, ch := range chs {
			assert.ErrorIs(t, taken(t, pick(i+1, a, b), ch.ID, base), webauthn.ErrNotFound, "round %d: challenge %d is gone", round, i)
		}
	}
}
