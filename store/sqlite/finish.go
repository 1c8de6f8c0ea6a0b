package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/webauthn"
)

// readChallengeSQL reads a challenge, leaving it stored.
const readChallengeSQL = `SELECT challenge, ceremony, user_id, session, expires FROM webauthn_challenges WHERE id = ?`

// ReadSignIn implements [webauthn.FinishStore.ReadSignIn]: two reads on
// the read connections, the challenge and the credential joined with its
// owner, and no commit.
func (s *Store) ReadSignIn(ctx context.Context, id string, credentialID []byte, now time.Time) (*webauthn.Challenge, *webauthn.Credential, *webauthn.User, error) {
	var (
		c        = webauthn.Challenge{ID: id}
		ceremony string
		expires  int64
	)
	err := s.r.QueryRowContext(ctx, readChallengeSQL, id).Scan(&c.Challenge, &ceremony, &c.UserID, &c.Session, &expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, nil, nil, fmt.Errorf("sqlite: reading challenge: %w", webauthn.ErrNotFound)
	case err != nil:
		return nil, nil, nil, fmt.Errorf("sqlite: reading challenge: %w", err)
	case micros(now) >= expires:
		return nil, nil, nil, fmt.Errorf("sqlite: reading challenge: %w", webauthn.ErrExpired)
	}
	c.Challenge, c.UserID, c.Session = readBlob(c.Challenge), readBlob(c.UserID), readBlob(c.Session)
	c.Ceremony = webauthn.Ceremony(ceremony)
	c.Expires = fromMicros(expires)
	cred, u, err := s.signInCredential(ctx, credentialID)
	if err != nil {
		return nil, nil, nil, err
	}
	return &c, cred, u, nil
}

// FinishSignIn implements [webauthn.FinishStore.FinishSignIn]: the
// challenge's DELETE and RecordSignIn's compare-and-set (with its events)
// in one transaction, so one commit. A compare-and-set that fails commits
// the DELETE alone.
//
// In one process this costs what TakeSignIn and RecordSignIn do
// (BenchmarkStoreSignIn: finish and take within a few percent; the
// commit saved is spent on BEGIN and COMMIT), and so does a sign-in over
// HTTP. What it saves is one of the two write locks a finish takes on
// the database file, which is what processes sharing the file wait for.
func (s *Store) FinishSignIn(ctx context.Context, id string, in webauthn.SignIn) (bool, error) {
	taken, err := s.finishSignIn(ctx, id, in)
	if err != nil {
		return taken, fmt.Errorf("sqlite: finishing sign-in: %w", err)
	}
	return taken, nil
}

func (s *Store) finishSignIn(ctx context.Context, id string, in webauthn.SignIn) (bool, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	n, err := affected(tx.ExecContext(ctx, `DELETE FROM webauthn_challenges WHERE id = ?`, id))
	if err != nil || n == 0 {
		return false, err
	}
	cas := recordSignIn(ctx, tx, in)
	switch {
	case cas == nil:
		if err := insertEvents(ctx, tx, mfa.KeyEvents(ctx, mfa.OpRecordSignIn, nil, in.CredentialID)); err != nil {
			return false, err
		}
	case !errors.Is(cas, webauthn.ErrConflict) && !errors.Is(cas, webauthn.ErrInactive) && !errors.Is(cas, webauthn.ErrNotFound):
		return false, cas // the store failed: roll back the DELETE too
	}
	if err := tx.Commit(); err != nil {
		return false, err
	}
	return true, cas
}
