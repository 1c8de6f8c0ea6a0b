package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/webauthn"
)

// This file checks [webauthn.SignInStore.TakeSignIn], for the stores
// that have it: the challenge taken as TakeChallenge takes it, with the
// credential and its owner read beside it.

var takeSignInTests = []test{
	{"Found", func(t *testing.T, s webauthn.Store) {
		ss := signInStore(t, s)
		u := mustUser(t, s)
		c := mustCredential(t, s, u.ID)
		ch := mustChallenge(t, s, base.Add(time.Hour))
		gotCh, gotC, gotU, err := ss.TakeSignIn(t.Context(), ch.ID, c.ID, base)
		require.NoError(t, err)
		checkChallenge(t, "challenge", gotCh, ch)
		require.NotNil(t, gotC)
		checkCredential(t, "credential", gotC, c)
		require.NotNil(t, gotU)
		checkUser(t, "user", gotU, u)
		assert.ErrorIs(t, taken(t, s, ch.ID, base), webauthn.ErrNotFound, "the challenge is taken")
	}},
	{"UnknownCredential", func(t *testing.T, s webauthn.Store) {
		ss := signInStore(t, s)
		ch := mustChallenge(t, s, base.Add(time.Hour))
		gotCh, gotC, gotU, err := ss.TakeSignIn(t.Context(), ch.ID, randBytes(t, 32), base)
		require.NoError(t, err)
		checkChallenge(t, "challenge", gotCh, ch)
		assert.Nil(t, gotC)
		assert.Nil(t, gotU)
		assert.ErrorIs(t, taken(t, s, ch.ID, base), webauthn.ErrNotFound, "taken all the same")
	}},
	{"UnknownChallenge", func(t *testing.T, s webauthn.Store) {
		ss := signInStore(t, s)
		u := mustUser(t, s)
		c := mustCredential(t, s, u.ID)
		_, gotC, _, err := ss.TakeSignIn(t.Context(), "ch-none", c.ID, base)
		assert.ErrorIs(t, err, webauthn.ErrNotFound)
		assert.Nil(t, gotC)
	}},
	{"Expired", func(t *testing.T, s webauthn.Store) {
		ss := signInStore(t, s)
		ch := mustChallenge(t, s, base.Add(time.Minute))
		_, _, _, err := ss.TakeSignIn(t.Context(), ch.ID, randBytes(t, 32), base.Add(time.Minute))
		assert.ErrorIs(t, err, webauthn.ErrExpired)
		assert.ErrorIs(t, taken(t, s, ch.ID, base), webauthn.ErrNotFound, "an expired challenge is removed")
	}},
	{"Concurrent", func(t *testing.T, s webauthn.Store) {
		raceTakeSignIn(t, s, s)
	}},
}

func signInStore(t *testing.T, s webauthn.Store) webauthn.SignInStore {
	t.Helper()
	ss, ok := s.(webauthn.SignInStore)
	if !ok {
		t.Skipf("%T does not implement webauthn.SignInStore", s)
	}
	return ss
}

// raceTakeSignIn: of 50 concurrent TakeSignIn calls for one challenge,
// on either handle, exactly one gets it, with the credential.
func raceTakeSignIn(t *testing.T, a, b webauthn.Store) {
	sa, sb := signInStore(t, a), signInStore(t, b)
	u := mustUser(t, a)
	c := mustCredential(t, a, u.ID)
	for round := range 3 {
		ch := mustChallenge(t, a, base.Add(time.Hour))
		var wins atomic.Int32
		parallel(t, 50, func(i int) error {
			s := sa
			if i%2 == 1 {
				s = sb
			}
			gotCh, gotC, _, err := s.TakeSignIn(t.Context(), ch.ID, c.ID, base)
			switch {
			case err == nil:
				wins.Add(1)
				if !bytes.Equal(gotCh.Challenge, ch.Challenge) || gotC == nil || !bytes.Equal(gotC.ID, c.ID) {
					return fmt.Errorf("TakeSignIn returned the wrong challenge or credential")
				}
				return nil
			case errors.Is(err, webauthn.ErrNotFound):
				return nil
			}
			return fmt.Errorf("TakeSignIn: %w", err)
		})
		assert.EqualValues(t, 1, wins.Load(), "round %d: exactly one TakeSignIn wins", round)
	}
}
