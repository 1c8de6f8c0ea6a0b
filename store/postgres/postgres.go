// Package postgres is the store for both [webauthn] and [mfa] on a
// PostgreSQL server, for several relying-party servers that share users,
// security keys, single-use challenges and sign counters, TOTP devices
// and their single-use time steps, recovery codes and attempt counters.
// One schema holds them all, so an account's devices of every type are
// one list with one limit.
//
// Start with [Open], which connects a pgx connection pool and brings the
// schema up to date, and pass the [*Store] to the relying party and to
// package mfa; it implements [webauthn.Store] and [mfa.Store]:
//
//	store, err := postgres.Open(ctx, "postgres://rp@db.internal/app")
//	if err != nil {
//		return err
//	}
//	defer store.Close()
//
// # Several servers
//
// Every server opens its own Store on the same database. A challenge is
// taken with one DELETE … RETURNING, so only one server accepts it; a
// sign count and a TOTP time step move by compare-and-set UPDATEs, so no
// server accepts a stale counter or a code twice; a recovery code is
// marked used by a compare-and-set too; a security key or TOTP device is
// added in a transaction that locks its user's row, so the device limit
// (keys plus TOTP devices) holds. A user's outstanding challenges are
// counted under an advisory lock, so the per-user limit holds exactly;
// the total is read from counts that triggers keep, without a lock, so
// servers saving challenges at once may overshoot it by as many as run at
// once. Expired challenges are removed as new ones are saved. Servers
// starting at once migrate the schema once, under an advisory lock.
//
// The tables are named webauthn_users, webauthn_credentials,
// webauthn_challenges, webauthn_challenge_counts, mfa_otp_devices,
// mfa_otp_enrollments, mfa_recovery_sets, mfa_recovery_codes,
// mfa_attempts and webauthn_schema_version, with the trigger functions
// webauthn_challenges_count_insert and _delete, in the connection's
// default schema (set search_path in the connection string to move
// them).
//
// # Secrets
//
// TOTP secrets arrive sealed ([mfa.Sealed]) and are stored as given;
// recovery codes arrive as salted hashes. Nothing else secret is stored.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/fidokit/fidokit/internal/migrations"
	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/webauthn"
)

// ErrSchemaTooNew is returned by [Open] for a database whose schema was
// written by a newer version of this package; this version cannot safely
// use it.
var ErrSchemaTooNew = errors.New("postgres: database schema is newer than this version of fidokit supports")

// migrationLock is the pg_advisory_xact_lock key that serialises
// migrations ("fidokit" in ASCII).
const migrationLock int64 = 0x0066_6964_6f6b_6974

// SQLSTATE codes this package maps onto webauthn errors.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is a [webauthn.Store] and an [mfa.Store] on a PostgreSQL
// database. Open one with [Open] and close it with [Store.Close].
//
// A Store is safe for concurrent use by multiple goroutines, and other
// Stores (in this or other processes) may use the same database at the
// same time: every method is one atomic statement or one transaction.
type Store struct {
	pool *pgxpool.Pool
}

var (
	_ webauthn.SignInStore = (*Store)(nil)
	_ webauthn.BeginStore  = (*Store)(nil)
	_ webauthn.FinishStore = (*Store)(nil)
	_ mfa.Store            = (*Store)(nil)
)

// Open connects to the database named by connString (a postgres:// URL
// or key=value string as [pgxpool.ParseConfig] accepts, including
// pool_max_conns), checks the connection, and applies any schema
// migrations the database lacks. It fails with an error wrapping
// [ErrSchemaTooNew] if the schema is newer than this package knows.
func Open(ctx context.Context, connString string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("postgres: parsing connection string: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: connecting: %w", err)
	}
	s := &Store{pool: pool}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connecting: %w", err)
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return s, nil
}

// Close closes every connection of the pool, waiting for calls under way
// to finish.
func (s *Store) Close() { s.pool.Close() }

// loadMigrations returns the embedded migrations in version order.
func loadMigrations() ([]migrations.Migration, error) {
	return migrations.Load(migrationFiles, "migrations")
}

// migrate brings the schema up to date in one transaction that holds an
// advisory lock, so servers starting at once migrate once.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("loading migrations: %w", err)
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("locking for migration: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS webauthn_schema_version (
			version integer     NOT NULL PRIMARY KEY,
			applied timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("creating schema_version: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM webauthn_schema_version`).Scan(&current); err != nil {
			return fmt.Errorf("reading schema version: %w", err)
		}
		if current > len(ms) {
			return fmt.Errorf("schema version %d, this package knows up to %d: %w", current, len(ms), ErrSchemaTooNew)
		}
		for _, m := range ms[current:] {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("applying migration %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO webauthn_schema_version (version) VALUES ($1)`, m.Version); err != nil {
				return fmt.Errorf("recording migration %s: %w", m.Name, err)
			}
		}
		return nil
	})
}

// ---- value conversions ----

// ts is how a time goes in: UTC, truncated to the microsecond as
// timestamptz keeps it.
func ts(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// nullTS passes the zero time as NULL.
func nullTS(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := ts(t)
	return &u
}

// fromTS is how a time comes out: UTC, the zero time zero.
func fromTS(t time.Time) time.Time {
	t = t.UTC()
	if t.Equal(time.Time{}) {
		return time.Time{}
	}
	return t
}

func fromNullTS(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return fromTS(*t)
}

// bytea passes a NOT NULL bytea: nil as empty (pgx sends nil as NULL).
func bytea(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// nullBytea passes an optional bytea: empty as NULL.
func nullBytea(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// readBytes normalises a scanned bytea: empty becomes nil. pgx copies
// into a fresh slice, so the result is the caller's.
func readBytes(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// sqlState returns the SQLSTATE of a server error, or "".
func sqlState(err error) string {
	var e *pgconn.PgError
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// ---- users ----

// CreateUser implements [webauthn.Store.CreateUser].
func (s *Store) CreateUser(ctx context.Context, u *webauthn.User) error {
	_, err := s.pool.Exec(ctx,
		`INSERT INTO webauthn_users (id, name, display_name, created) VALUES ($1, $2, $3, $4)`,
		bytea(u.ID), u.Name, u.DisplayName, ts(u.Created))
	switch {
	case sqlState(err) == uniqueViolation:
		return fmt.Errorf("postgres: creating user %q: %w", u.Name, webauthn.ErrExists)
	case err != nil:
		return fmt.Errorf("postgres: creating user %q: %w", u.Name, err)
	}
	return nil
}

const userColumns = `id, name, display_name, created`

func scanUser(row pgx.Row) (*webauthn.User, error) {
	var u webauthn.User
	if err := row.Scan(&u.ID, &u.Name, &u.DisplayName, &u.Created); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, webauthn.ErrNotFound
		}
		return nil, err
	}
	u.ID = readBytes(u.ID)
	u.Created = fromTS(u.Created)
	return &u, nil
}

// User implements [webauthn.Store.User].
func (s *Store) User(ctx context.Context, id []byte) (*webauthn.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx,
		`SELECT `+userColumns+` FROM webauthn_users WHERE id = $1`, bytea(id)))
	if err != nil {
		return nil, fmt.Errorf("postgres: reading user: %w", err)
	}
	return u, nil
}

// UserByName implements [webauthn.Store.UserByName].
func (s *Store) UserByName(ctx context.Context, name string) (*webauthn.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx,
		`SELECT `+userColumns+` FROM webauthn_users WHERE name = $1`, name))
	if err != nil {
		return nil, fmt.Errorf("postgres: reading user %q: %w", name, err)
	}
	return u, nil
}

// ---- credentials ----

const credentialColumns = `id, user_id, name, public_key, algorithm, aaguid,
	attestation_format, attestation_type, transports, user_verified,
	backup_eligible, backup_state, sign_count, clone_warning, deactivated,
	created, last_used`

func scanCredential(row pgx.Row) (*webauthn.Credential, error) {
	var (
		c                     webauthn.Credential
		signCount             int64
		deactivated, lastUsed *time.Time
	)
	err := row.Scan(&c.ID, &c.UserID, &c.Name, &c.PublicKey, &c.Algorithm, &c.AAGUID,
		&c.AttestationFormat, &c.AttestationType, &c.Transports, &c.UserVerified,
		&c.BackupEligible, &c.BackupState, &signCount, &c.CloneWarning, &deactivated,
		&c.Created, &lastUsed)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, webauthn.ErrNotFound
		}
		return nil, err
	}
	c.ID, c.UserID, c.PublicKey, c.AAGUID = readBytes(c.ID), readBytes(c.UserID), readBytes(c.PublicKey), readBytes(c.AAGUID)
	if len(c.Transports) == 0 {
		c.Transports = nil
	}
	c.SignCount = uint32(signCount)
	c.Deactivated = fromNullTS(deactivated)
	c.Created = fromTS(c.Created)
	c.LastUsed = fromNullTS(lastUsed)
	return &c, nil
}

// AddCredential implements [webauthn.Store.AddCredential], with the
// limit of [mfa.Store]: it counts the user's security keys plus their
// TOTP devices. It runs in one transaction that first locks the user's
// row (SELECT … FOR UPDATE), as CompleteOTPEnrollment does, so
// concurrent adds of either type for one user, from any server, count
// one at a time.
func (s *Store) AddCredential(ctx context.Context, c *webauthn.Credential, limit int) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := addCredential(ctx, tx, c, limit); err != nil {
			return err
		}
		return insertEvents(ctx, tx, mfa.KeyEvents(ctx, mfa.OpAddCredential, c.UserID, c.ID))
	})
	switch {
	case sqlState(err) == uniqueViolation:
		return fmt.Errorf("postgres: adding credential: %w", webauthn.ErrExists)
	case sqlState(err) == foreignKeyViolation:
		return fmt.Errorf("postgres: adding credential: user: %w", webauthn.ErrNotFound)
	case err != nil:
		return fmt.Errorf("postgres: adding credential: %w", err)
	}
	return nil
}

// CreateUserWithCredential implements
// [webauthn.Store.CreateUserWithCredential].
func (s *Store) CreateUserWithCredential(ctx context.Context, u *webauthn.User, c *webauthn.Credential) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx,
			`INSERT INTO webauthn_users (id, name, display_name, created) VALUES ($1, $2, $3, $4)`,
			bytea(u.ID), u.Name, u.DisplayName, ts(u.Created))
		if err != nil {
			return err
		}
		if err := addCredential(ctx, tx, c, 0); err != nil {
			return err
		}
		return insertEvents(ctx, tx, mfa.KeyEvents(ctx, mfa.OpCreateUserWithCredential, c.UserID, c.ID))
	})
	switch {
	case sqlState(err) == uniqueViolation:
		return fmt.Errorf("postgres: creating user %q with a credential: %w", u.Name, webauthn.ErrExists)
	case sqlState(err) == foreignKeyViolation:
		return fmt.Errorf("postgres: creating user %q with a credential: user: %w", u.Name, webauthn.ErrNotFound)
	case err != nil:
		return fmt.Errorf("postgres: creating user %q with a credential: %w", u.Name, err)
	}
	return nil
}

func addCredential(ctx context.Context, tx pgx.Tx, c *webauthn.Credential, limit int) error {
	if err := lockUser(ctx, tx, c.UserID); err != nil {
		return err
	}
	// A new statement: under READ COMMITTED it sees every insert committed
	// before the lock was granted.
	var (
		n      int // devices of every type: keys and TOTP devices
		exists bool
	)
	err := tx.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM webauthn_credentials WHERE user_id = $1) +
		(SELECT count(*) FROM mfa_otp_devices WHERE user_id = $1),
		EXISTS (SELECT 1 FROM webauthn_credentials WHERE id = $2)`,
		bytea(c.UserID), bytea(c.ID)).Scan(&n, &exists)
	switch {
	case err != nil:
		return err
	case exists:
		return webauthn.ErrExists
	case limit > 0 && n >= limit:
		return fmt.Errorf("%d of %d: %w", n, limit, webauthn.ErrLimit)
	}
	transports := c.Transports
	if transports == nil {
		transports = []string{}
	}
	_, err = tx.Exec(ctx, `INSERT INTO webauthn_credentials (`+credentialColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		bytea(c.ID), bytea(c.UserID), c.Name, bytea(c.PublicKey), c.Algorithm, nullBytea(c.AAGUID),
		c.AttestationFormat, c.AttestationType, transports, c.UserVerified,
		c.BackupEligible, c.BackupState, int64(c.SignCount), c.CloneWarning, nullTS(c.Deactivated),
		ts(c.Created), nullTS(c.LastUsed))
	return err
}

// Credential implements [webauthn.Store.Credential].
func (s *Store) Credential(ctx context.Context, id []byte) (*webauthn.Credential, error) {
	c, err := scanCredential(s.pool.QueryRow(ctx,
		`SELECT `+credentialColumns+` FROM webauthn_credentials WHERE id = $1`, bytea(id)))
	if err != nil {
		return nil, fmt.Errorf("postgres: reading credential: %w", err)
	}
	return c, nil
}

// Credentials implements [webauthn.Store.Credentials]. Credentials
// registered at the same time are listed in the order they were added.
func (s *Store) Credentials(ctx context.Context, userID []byte) ([]*webauthn.Credential, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+credentialColumns+` FROM webauthn_credentials
		WHERE user_id = $1 ORDER BY created, seq`, bytea(userID))
	if err != nil {
		return nil, fmt.Errorf("postgres: listing credentials: %w", err)
	}
	defer rows.Close()
	out := []*webauthn.Credential{}
	for rows.Next() {
		c, err := scanCredential(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: listing credentials: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: listing credentials: %w", err)
	}
	return out, nil
}

// joinedCredentialColumns is credentialColumns of a credential c that a
// LEFT JOIN may not find: each NOT NULL column COALESCEd to a value
// scanCredential accepts (created to the column or value created), so
// that the row scans whether c was found or not.
func joinedCredentialColumns(created string) string {
	return `COALESCE(c.id, ''::bytea), COALESCE(c.user_id, ''::bytea), COALESCE(c.name, ''),
		COALESCE(c.public_key, ''::bytea), COALESCE(c.algorithm, 0), c.aaguid,
		COALESCE(c.attestation_format, ''), COALESCE(c.attestation_type, ''),
		COALESCE(c.transports, '{}'), COALESCE(c.user_verified, false),
		COALESCE(c.backup_eligible, false), COALESCE(c.backup_state, false),
		COALESCE(c.sign_count, 0), COALESCE(c.clone_warning, false), c.deactivated,
		COALESCE(c.created, ` + created + `), c.last_used`
}

// userWithCredentialsSQL reads a user (where the user is u) and their
// credentials in one statement: a row per credential, oldest first, or
// one row without a credential (found false, its columns their types'
// zero values) for a user who has none. Followed by "u.id = $1" or
// "u.name = $1", so that each uses its index.
var userWithCredentialsSQL = `SELECT ` + joinedCredentialColumns("u.created") + `,
		u.id, u.name, u.display_name, u.created, c.seq IS NOT NULL
	FROM webauthn_users u LEFT JOIN webauthn_credentials c ON c.user_id = u.id
	WHERE `

var (
	userWithCredentialsByID   = userWithCredentialsSQL + `u.id = $1 ORDER BY c.created, c.seq`
	userWithCredentialsByName = userWithCredentialsSQL + `u.name = $1 ORDER BY c.created, c.seq`
)

// UserWithCredentials implements [webauthn.BeginStore.UserWithCredentials]
// with one statement (one round trip, one snapshot): the user joined
// with their credentials.
func (s *Store) UserWithCredentials(ctx context.Context, id []byte, name string) (*webauthn.User, []*webauthn.Credential, error) {
	query, arg := userWithCredentialsByName, any(name)
	if id != nil {
		query, arg = userWithCredentialsByID, bytea(id)
	}
	rows, err := s.pool.Query(ctx, query, arg)
	if err != nil {
		return nil, nil, fmt.Errorf("postgres: reading user: %w", err)
	}
	defer rows.Close()
	var (
		u     *webauthn.User
		creds = []*webauthn.Credential{}
	)
	for rows.Next() {
		var (
			ru    webauthn.User
			found bool
		)
		c, err := scanCredential(framedRow{r: rows, after: []any{&ru.ID, &ru.Name, &ru.DisplayName, &ru.Created, &found}})
		if err != nil {
			return nil, nil, fmt.Errorf("postgres: reading user: %w", err)
		}
		if u == nil {
			ru.ID, ru.Created = readBytes(ru.ID), fromTS(ru.Created)
			u = &ru
		}
		if found {
			creds = append(creds, c)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("postgres: reading user: %w", err)
	}
	if u == nil {
		if id != nil {
			return nil, nil, fmt.Errorf("postgres: reading user: %w", webauthn.ErrNotFound)
		}
		return nil, nil, fmt.Errorf("postgres: reading user %q: %w", name, webauthn.ErrNotFound)
	}
	return u, creds, nil
}

// framedRow scans a row whose columns are before, then those Scan is
// given, then after, so that scanCredential reads a joined row.
type framedRow struct {
	r             pgx.Row
	before, after []any
}

func (f framedRow) Scan(dest ...any) error {
	all := make([]any, 0, len(f.before)+len(dest)+len(f.after))
	return f.r.Scan(append(append(append(all, f.before...), dest...), f.after...)...)
}

// updateOwned runs an UPDATE or DELETE scoped to one user's credential
// or TOTP device, with the events of op, and turns "no row" into
// ErrNotFound.
func (s *Store) updateOwned(ctx context.Context, op mfa.StoreOp, what, query string, args ...any) error {
	err := s.change(ctx, mfa.StoreEvents(ctx, op), func(q querier) error {
		tag, err := q.Exec(ctx, query, args...)
		if err == nil && tag.RowsAffected() == 0 {
			err = webauthn.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: %s: %w", what, err)
	}
	return nil
}

// RenameCredential implements [webauthn.Store.RenameCredential].
func (s *Store) RenameCredential(ctx context.Context, userID, id []byte, name string) error {
	return s.updateOwned(ctx, mfa.OpRenameCredential, "renaming credential",
		`UPDATE webauthn_credentials SET name = $1 WHERE id = $2 AND user_id = $3`,
		name, bytea(id), bytea(userID))
}

// DeactivateCredential implements [webauthn.Store.DeactivateCredential].
func (s *Store) DeactivateCredential(ctx context.Context, userID, id []byte, at time.Time) error {
	return s.updateOwned(ctx, mfa.OpDeactivateCredential, "deactivating credential",
		`UPDATE webauthn_credentials SET deactivated = $1 WHERE id = $2 AND user_id = $3`,
		nullTS(at), bytea(id), bytea(userID))
}

// DeleteCredential implements [webauthn.Store.DeleteCredential].
func (s *Store) DeleteCredential(ctx context.Context, userID, id []byte) error {
	return s.updateOwned(ctx, mfa.OpDeleteCredential, "deleting credential",
		`DELETE FROM webauthn_credentials WHERE id = $1 AND user_id = $2`,
		bytea(id), bytea(userID))
}

// RecordSignIn implements [webauthn.Store.RecordSignIn] as one statement:
// a compare-and-set UPDATE … RETURNING, and beside it a read of the row
// that tells why when the UPDATE changed nothing.
func (s *Store) RecordSignIn(ctx context.Context, in webauthn.SignIn) error {
	err := s.change(ctx, mfa.KeyEvents(ctx, mfa.OpRecordSignIn, nil, in.CredentialID), func(q querier) error {
		var (
			updated     bool
			count       *int64
			deactivated *bool
		)
		err := q.QueryRow(ctx, `WITH cas AS (
				UPDATE webauthn_credentials
				SET sign_count = $3, backup_state = $4, last_used = $5
				WHERE id = $1 AND sign_count = $2 AND deactivated IS NULL
				RETURNING 1
			)
			SELECT EXISTS (SELECT 1 FROM cas),
				(SELECT sign_count FROM webauthn_credentials WHERE id = $1),
				(SELECT deactivated IS NOT NULL FROM webauthn_credentials WHERE id = $1)`,
			bytea(in.CredentialID), int64(in.OldCount), int64(in.NewCount), in.BackupState, nullTS(in.At),
		).Scan(&updated, &count, &deactivated)
		if err != nil || updated {
			return err
		}
		return casFailure(count, deactivated, in.OldCount)
	})
	if err != nil {
		return fmt.Errorf("postgres: recording sign-in: %w", err)
	}
	return nil
}

// FlagClone implements [webauthn.Store.FlagClone].
func (s *Store) FlagClone(ctx context.Context, id []byte) error {
	err := s.change(ctx, mfa.KeyEvents(ctx, mfa.OpFlagClone, nil, id), func(q querier) error {
		tag, err := q.Exec(ctx, `UPDATE webauthn_credentials SET clone_warning = true WHERE id = $1`, bytea(id))
		if err == nil && tag.RowsAffected() == 0 {
			err = webauthn.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: flagging clone: %w", err)
	}
	return nil
}

// ClearCloneWarning implements [webauthn.Store.ClearCloneWarning].
func (s *Store) ClearCloneWarning(ctx context.Context, userID, id []byte) error {
	return s.updateOwned(ctx, "", "clearing clone warning",
		`UPDATE webauthn_credentials SET clone_warning = false WHERE id = $1 AND user_id = $2`,
		bytea(id), bytea(userID))
}

// ---- challenges ----

// purgeBatch is how many expired challenges SaveChallenge removes at
// least on every call.
const purgeBatch = 64

// challengeLockSpace is the first key of the pg_advisory_xact_lock(int,
// int) locks that serialise one user's SaveChallenge calls ("fikc").
const challengeLockSpace int32 = 0x6669_6b63

// saveChallengeSQL removes up to $10 expired challenges (rows other
// servers are removing are skipped), counts the user's outstanding ones
// and all rows (from the counts the triggers keep, less those it
// removed), and inserts unless a limit is reached. It returns whether it
// inserted and the two counts.
const saveChallengeSQL = `WITH purged AS (
		DELETE FROM webauthn_challenges WHERE id IN (
			SELECT id FROM webauthn_challenges WHERE expires <= $7
			ORDER BY expires LIMIT $10 FOR UPDATE SKIP LOCKED)
		RETURNING 1
	), counts AS (
		SELECT
			CASE WHEN $8::bigint > 0 AND $4::bytea IS NOT NULL
				THEN (SELECT count(*) FROM webauthn_challenges WHERE user_id = $4::bytea AND expires > $7)
				ELSE 0 END AS user_n,
			CASE WHEN $9::bigint > 0
				THEN (SELECT COALESCE(sum(n), 0) FROM webauthn_challenge_counts) - (SELECT count(*) FROM purged)
				ELSE 0 END AS total_n
	), ins AS (
		INSERT INTO webauthn_challenges (id, challenge, ceremony, user_id, session, expires)
		SELECT $1, $2, $3, $4::bytea, $5, $6 FROM counts
		WHERE ($8::bigint <= 0 OR user_n < $8::bigint) AND ($9::bigint <= 0 OR total_n < $9::bigint)
		RETURNING 1
	)
	SELECT EXISTS (SELECT 1 FROM ins), user_n, total_n FROM counts`

// SaveChallenge implements [webauthn.Store.SaveChallenge]: one statement
// removes up to 64 expired challenges, checks the limits and inserts.
// Calls for one user are serialised by an advisory lock, so PerUser holds
// exactly; the total is read from counts kept by triggers without a lock,
// so servers saving at once may overshoot Total by as many as run at
// once. At Total, it removes every expired challenge and tries again.
func (s *Store) SaveChallenge(ctx context.Context, c *webauthn.Challenge, now time.Time, limits webauthn.ChallengeLimits) error {
	ok, userN, totalN, err := s.insertChallenge(ctx, c, now, limits, purgeBatch)
	if err == nil && !ok && !(limits.PerUser > 0 && userN >= int64(limits.PerUser)) {
		// The total counts expired challenges too: remove them all,
		// then decide. Each is removed once, so this is cheap over time.
		_, err = s.pool.Exec(ctx, `DELETE FROM webauthn_challenges WHERE id IN (
			SELECT id FROM webauthn_challenges WHERE expires <= $1 FOR UPDATE SKIP LOCKED)`, ts(now))
		if err == nil {
			ok, userN, totalN, err = s.insertChallenge(ctx, c, now, limits, 0)
		}
	}
	switch {
	case sqlState(err) == uniqueViolation:
		return fmt.Errorf("postgres: saving challenge: %w", webauthn.ErrExists)
	case err != nil:
		return fmt.Errorf("postgres: saving challenge: %w", err)
	case ok:
		return nil
	case limits.PerUser > 0 && userN >= int64(limits.PerUser):
		return fmt.Errorf("postgres: saving challenge: %d for the user: %w", userN, webauthn.ErrTooManyCeremonies)
	}
	return fmt.Errorf("postgres: saving challenge: %d in all: %w", totalN, webauthn.ErrTooManyCeremonies)
}

// insertChallenge runs saveChallengeSQL, after taking the user's lock if
// PerUser applies; both run in the batch's one implicit transaction, so
// the lock is held until the insert commits.
func (s *Store) insertChallenge(ctx context.Context, c *webauthn.Challenge, now time.Time, limits webauthn.ChallengeLimits, purge int) (ok bool, userN, totalN int64, err error) {
	b := &pgx.Batch{}
	lock := limits.PerUser > 0 && len(c.UserID) > 0
	if lock {
		b.Queue(`SELECT pg_advisory_xact_lock($1::int, hashtext(encode($2::bytea, 'hex')))`, challengeLockSpace, c.UserID)
	}
	b.Queue(saveChallengeSQL, c.ID, bytea(c.Challenge), string(c.Ceremony), nullBytea(c.UserID), nullBytea(c.Session),
		ts(c.Expires), ts(now), int64(limits.PerUser), int64(limits.Total), int64(purge))
	br := s.pool.SendBatch(ctx, b)
	defer func() {
		if cerr := br.Close(); err == nil {
			err = cerr
		}
	}()
	if lock {
		if _, err = br.Exec(); err != nil {
			return false, 0, 0, err
		}
	}
	err = br.QueryRow().Scan(&ok, &userN, &totalN)
	return ok, userN, totalN, err
}

// TakeChallenge implements [webauthn.Store.TakeChallenge] with one
// DELETE … RETURNING: of concurrent callers on any server, only one gets
// the row.
func (s *Store) TakeChallenge(ctx context.Context, id string, now time.Time) (*webauthn.Challenge, error) {
	c, err := scanChallenge(s.pool.QueryRow(ctx, takeChallengeSQL, id), id, now)
	if err != nil {
		return nil, fmt.Errorf("postgres: taking challenge: %w", err)
	}
	return c, nil
}

// takeChallengeSQL removes and returns a challenge.
const takeChallengeSQL = `DELETE FROM webauthn_challenges WHERE id = $1
	RETURNING challenge, ceremony, user_id, session, expires`

// scanChallenge reads the row of takeChallengeSQL: ErrNotFound for none,
// ErrExpired for one that expired at or before now.
func scanChallenge(row pgx.Row, id string, now time.Time) (*webauthn.Challenge, error) {
	var c challengeRow
	err := row.Scan(c.dest()...)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, webauthn.ErrNotFound
	case err != nil:
		return nil, err
	}
	return c.challenge(id, now)
}

// challengeRow is a challenge's columns as scanned (takeChallengeSQL's).
type challengeRow struct {
	c        webauthn.Challenge
	ceremony string
}

func (r *challengeRow) dest() []any {
	return []any{&r.c.Challenge, &r.ceremony, &r.c.UserID, &r.c.Session, &r.c.Expires}
}

// challenge is the challenge id of the row: ErrExpired if it expired at
// or before now.
func (r *challengeRow) challenge(id string, now time.Time) (*webauthn.Challenge, error) {
	c := r.c
	c.ID = id
	c.Expires = fromTS(c.Expires)
	if !ts(now).Before(c.Expires) {
		return nil, webauthn.ErrExpired
	}
	c.Challenge, c.UserID, c.Session = readBytes(c.Challenge), readBytes(c.UserID), readBytes(c.Session)
	c.Ceremony = webauthn.Ceremony(r.ceremony)
	return &c, nil
}

// TakeSignIn implements [webauthn.SignInStore.TakeSignIn] in one round
// trip: the DELETE … RETURNING of TakeChallenge and the reads of the
// credential and its owner go as one batch, which runs as one implicit
// transaction.
func (s *Store) TakeSignIn(ctx context.Context, id string, credentialID []byte, now time.Time) (*webauthn.Challenge, *webauthn.Credential, *webauthn.User, error) {
	b := &pgx.Batch{}
	b.Queue(takeChallengeSQL, id)
	b.Queue(`SELECT `+credentialColumns+` FROM webauthn_credentials WHERE id = $1`, bytea(credentialID))
	b.Queue(`SELECT `+userColumns+` FROM webauthn_users
		WHERE id = (SELECT user_id FROM webauthn_credentials WHERE id = $1)`, bytea(credentialID))
	br := s.pool.SendBatch(ctx, b)
	defer br.Close()
	ch, err := scanChallenge(br.QueryRow(), id, now)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("postgres: taking challenge: %w", err)
	}
	cred, err := scanCredential(br.QueryRow())
	switch {
	case errors.Is(err, webauthn.ErrNotFound):
		cred = nil
	case err != nil:
		return nil, nil, nil, fmt.Errorf("postgres: reading credential: %w", err)
	}
	user, err := scanUser(br.QueryRow())
	switch {
	case errors.Is(err, webauthn.ErrNotFound):
		user = nil
	case err != nil:
		return nil, nil, nil, fmt.Errorf("postgres: reading user: %w", err)
	}
	if err := br.Close(); err != nil {
		return nil, nil, nil, fmt.Errorf("postgres: taking challenge: %w", err)
	}
	return ch, cred, user, nil
}

// readSignInSQL reads challenge $1 and, beside it, credential $2 and its
// owner: the challenge's columns, then credentialColumns, then the
// owner's, then whether the owner and the credential were found. A
// credential or owner not found has its columns COALESCEd to values
// scanCredential and the user's scan accept, and is dropped.
var readSignInSQL = `SELECT ch.challenge, ch.ceremony, ch.user_id, ch.session, ch.expires,
		` + joinedCredentialColumns("ch.expires") + `,
		COALESCE(u.id, ''::bytea), COALESCE(u.name, ''), COALESCE(u.display_name, ''),
		COALESCE(u.created, ch.expires), u.id IS NOT NULL, c.id IS NOT NULL
	FROM webauthn_challenges ch
	LEFT JOIN webauthn_credentials c ON c.id = $2
	LEFT JOIN webauthn_users u ON u.id = c.user_id
	WHERE ch.id = $1`

// ReadSignIn implements [webauthn.FinishStore.ReadSignIn] in one round
// trip and one statement, readSignInSQL. An expired challenge is
// reported, not removed.
func (s *Store) ReadSignIn(ctx context.Context, id string, credentialID []byte, now time.Time) (*webauthn.Challenge, *webauthn.Credential, *webauthn.User, error) {
	var (
		ch                   challengeRow
		u                    webauthn.User
		userFound, credFound bool
	)
	cred, err := scanCredential(framedRow{
		r:      s.pool.QueryRow(ctx, readSignInSQL, id, bytea(credentialID)),
		before: ch.dest(),
		after:  []any{&u.ID, &u.Name, &u.DisplayName, &u.Created, &userFound, &credFound},
	})
	if err != nil {
		// ErrNotFound: no row, so no challenge.
		return nil, nil, nil, fmt.Errorf("postgres: reading challenge: %w", err)
	}
	c, err := ch.challenge(id, now)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("postgres: reading challenge: %w", err)
	}
	if !credFound {
		return c, nil, nil, nil
	}
	if !userFound {
		return c, cred, nil, nil
	}
	u.ID, u.Created = readBytes(u.ID), fromTS(u.Created)
	return c, cred, &u, nil
}

// finishSignInSQL takes challenge $6 and, only if this statement took
// it, makes RecordSignIn's compare-and-set; beside them it reads the
// credential row that tells why when the UPDATE changed nothing. A
// concurrent DELETE of the challenge makes t empty once it commits, so
// of concurrent takers at most one sets the count.
const finishSignInSQL = `WITH t AS (
		DELETE FROM webauthn_challenges WHERE id = $6 RETURNING 1
	), cas AS (
		UPDATE webauthn_credentials
		SET sign_count = $3, backup_state = $4, last_used = $5
		WHERE id = $1 AND sign_count = $2 AND deactivated IS NULL AND EXISTS (SELECT 1 FROM t)
		RETURNING 1
	)
	SELECT EXISTS (SELECT 1 FROM t), EXISTS (SELECT 1 FROM cas),
		(SELECT sign_count FROM webauthn_credentials WHERE id = $1),
		(SELECT deactivated IS NOT NULL FROM webauthn_credentials WHERE id = $1)`

// FinishSignIn implements [webauthn.FinishStore.FinishSignIn] as one
// statement, finishSignInSQL, in one round trip. With RecordSignIn's
// events in ctx, the statement runs in a transaction that appends them
// only when the count was set, and that commits the take all the same
// when it was not.
func (s *Store) FinishSignIn(ctx context.Context, id string, in webauthn.SignIn) (bool, error) {
	var (
		taken, updated bool
		count          *int64
		deactivated    *bool
	)
	finish := func(q querier) error {
		return q.QueryRow(ctx, finishSignInSQL,
			bytea(in.CredentialID), int64(in.OldCount), int64(in.NewCount), in.BackupState, nullTS(in.At), id,
		).Scan(&taken, &updated, &count, &deactivated)
	}
	var err error
	if evs := mfa.KeyEvents(ctx, mfa.OpRecordSignIn, nil, in.CredentialID); len(evs) == 0 {
		err = finish(s.pool)
	} else {
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			if err := finish(tx); err != nil || !updated {
				return err // a failed compare-and-set still commits the take
			}
			return insertEvents(ctx, tx, evs)
		})
	}
	switch {
	case err != nil:
		return false, fmt.Errorf("postgres: finishing sign-in: %w", err)
	case !taken:
		return false, nil
	case updated:
		return true, nil
	}
	return true, fmt.Errorf("postgres: finishing sign-in: %w", casFailure(count, deactivated, in.OldCount))
}

// casFailure is why a sign count's compare-and-set from old changed
// nothing, from the credential's count and deactivated flag as read
// beside it (nil: no such credential).
func casFailure(count *int64, deactivated *bool, old uint32) error {
	switch {
	case count == nil:
		return webauthn.ErrNotFound
	case deactivated != nil && *deactivated:
		return webauthn.ErrInactive
	}
	return fmt.Errorf("stored %d, read %d: %w", *count, old, webauthn.ErrConflict)
}

// PurgeChallenges implements [webauthn.Store.PurgeChallenges].
func (s *Store) PurgeChallenges(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM webauthn_challenges WHERE expires <= $1`, ts(now))
	if err != nil {
		return 0, fmt.Errorf("postgres: purging challenges: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
