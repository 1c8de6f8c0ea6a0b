package sqlite

import (
	"context"
	"fmt"

	"github.com/fidokit/fidokit/webauthn"
)

// This file holds what a sign-in's begin reads: the user and their
// credentials in one statement, so one read transaction (one WAL
// snapshot and its locks) where User, then Credentials took two.

var _ webauthn.BeginStore = (*Store)(nil)

// userWithCredentialsSQL reads a user (where the user is u) and their
// credentials in one statement: a row per credential, oldest first, or
// one row without a credential (found false, its columns their types'
// zero values) for a user who has none. Followed by "u.id = ?" or
// "u.name = ?", so that each uses its index.
const userWithCredentialsSQL = `SELECT
		COALESCE(c.id, x''), COALESCE(c.user_id, x''), COALESCE(c.name, ''),
		COALESCE(c.public_key, x''), COALESCE(c.algorithm, 0), c.aaguid,
		COALESCE(c.attestation_format, ''), COALESCE(c.attestation_type, ''),
		COALESCE(c.transports, '[]'), COALESCE(c.user_verified, 0),
		COALESCE(c.backup_eligible, 0), COALESCE(c.backup_state, 0),
		COALESCE(c.sign_count, 0), COALESCE(c.clone_warning, 0), c.deactivated,
		COALESCE(c.created, 0), c.last_used,
		u.id, u.name, u.display_name, u.created, c.seq IS NOT NULL
	FROM webauthn_users u LEFT JOIN webauthn_credentials c ON c.user_id = u.id
	WHERE `

var (
	userWithCredentialsByID   = userWithCredentialsSQL + `u.id = ? ORDER BY c.created, c.seq`
	userWithCredentialsByName = userWithCredentialsSQL + `u.name = ? ORDER BY c.created, c.seq`
)

// UserWithCredentials implements [webauthn.BeginStore.UserWithCredentials]
// with one statement, the user joined with their credentials, which
// reads from one snapshot.
func (s *Store) UserWithCredentials(ctx context.Context, id []byte, name string) (*webauthn.User, []*webauthn.Credential, error) {
	query, arg := userWithCredentialsByName, any(name)
	if id != nil {
		query, arg = userWithCredentialsByID, blob(id)
	}
	rows, err := s.q.QueryContext(ctx, query, arg)
	if err != nil {
		return nil, nil, fmt.Errorf("sqlite: reading user: %w", err)
	}
	defer rows.Close()
	var (
		u     *webauthn.User
		creds = []*webauthn.Credential{}
	)
	for rows.Next() {
		var (
			ru      webauthn.User
			created int64
			found   bool
		)
		c, err := scanCredential(extraScanner{rows, []any{&ru.ID, &ru.Name, &ru.DisplayName, &created, &found}})
		if err != nil {
			return nil, nil, fmt.Errorf("sqlite: reading user: %w", err)
		}
		if u == nil {
			ru.ID, ru.Created = readBlob(ru.ID), fromMicros(created)
			u = &ru
		}
		if found {
			creds = append(creds, c)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("sqlite: reading user: %w", err)
	}
	if u == nil {
		if id != nil {
			return nil, nil, fmt.Errorf("sqlite: reading user: %w", webauthn.ErrNotFound)
		}
		return nil, nil, fmt.Errorf("sqlite: reading user %q: %w", name, webauthn.ErrNotFound)
	}
	return u, creds, nil
}
