package webauthn_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/webauthn"
)

// interleavedStore is a FinishStore whose ReadSignIn reads the challenge,
// then runs meanwhile (once), then reads the credential: the order in
// which a concurrent finish of the same challenge can slip between the
// two reads of a store that does not read at one point in time.
type interleavedStore struct {
	*webauthn.MemoryStore
	meanwhile func()
}

var _ webauthn.FinishStore = (*interleavedStore)(nil)

func (s *interleavedStore) ReadSignIn(ctx context.Context, id string, credentialID []byte, now time.Time) (*webauthn.Challenge, *webauthn.Credential, *webauthn.User, error) {
	ch, _, _, err := s.MemoryStore.ReadSignIn(ctx, id, credentialID, now)
	if err != nil {
		return nil, nil, nil, err
	}
	if f := s.meanwhile; f != nil {
		s.meanwhile = nil
		f()
	}
	cred, err := s.Credential(ctx, credentialID)
	if err != nil {
		return ch, nil, nil, nil
	}
	u, err := s.User(ctx, cred.UserID)
	if err != nil {
		return ch, cred, nil, nil
	}
	return ch, cred, u, nil
}

// TestFinishLoginReplayBetweenReads: a response finished by another
// server between the reads of the challenge and of the key presents a
// counter equal to the stored one, yet it is a replay of a used
// challenge, not a cloned key: refused as ErrChallengeUnknown, with no
// clone warning and the count as the first sign-in left it.
func TestFinishLoginReplayBetweenReads(t *testing.T) {
	ctx := t.Context()
	s := &interleavedStore{MemoryStore: webauthn.NewMemoryStore()}
	rp := e2eRelyingParty(t, s)
	other := e2eRelyingParty(t, s.MemoryStore)
	e := enroll(t, rp, "replayed@example.com")
	id, resp, n, err := e.assertion(ctx, rp)
	require.NoError(t, err)

	var first error
	s.meanwhile = func() { _, _, first = other.FinishLogin(ctx, id, resp) }
	_, _, err = rp.FinishLogin(ctx, id, resp)
	require.NoError(t, first, "the sign-in that finished first")
	assert.ErrorIs(t, err, webauthn.ErrChallengeUnknown, "the replay that read the count it set")
	assert.NotErrorIs(t, err, webauthn.ErrSignCount)

	c, err := s.Credential(ctx, e.cred.ID)
	require.NoError(t, err)
	assert.Equal(t, n, c.SignCount, "the first sign-in's count")
	assert.False(t, c.CloneWarning, "a replay is not a clone")
	_, err = s.TakeChallenge(ctx, id, time.Now())
	assert.ErrorIs(t, err, webauthn.ErrNotFound, "the challenge is used")
}
