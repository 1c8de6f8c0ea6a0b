// Package sqlite is the store for both [webauthn] and [mfa] in one
// SQLite file, the embedded default: nothing to install, and it builds
// without cgo (it uses the pure-Go driver modernc.org/sqlite). One file
// holds users, security keys, outstanding challenges, TOTP devices and
// their pending enrollments, recovery codes and attempt counters, so an
// account's devices of every type are one list with one limit.
//
// Start with [Open], which creates the file if needed and brings its
// schema up to date, and pass the [*Store] to the relying party and to
// package mfa; it implements [webauthn.Store] and [mfa.Store]:
//
//	store, err := sqlite.Open(ctx, "/var/lib/myapp/fidokit.db")
//	if err != nil {
//		return err
//	}
//	defer store.Close()
//
// # Several processes
//
// The file is in WAL mode, so readers never wait for writers. Several
// processes on one machine may open the same file: challenges stay
// single-use, sign counts and TOTP time steps move by compare-and-set, a
// recovery code is used once, and the device limit (security keys plus
// TOTP devices) is checked in the same write transaction as the insert.
// Writers wait up to [BusyTimeout] for each other. Outstanding
// challenges are bounded by the relying party's limits, exactly, and
// expired ones are removed as new ones are saved, so the file does not
// grow under a flood of sign-in begins. The file must be on a
// local disk; SQLite's locks do not work over network file systems. For
// several servers on several machines use package
// github.com/fidokit/fidokit/store/postgres.
//
// # Secrets
//
// TOTP secrets arrive sealed ([mfa.Sealed]) and are stored as given;
// recovery codes arrive as salted hashes. Nothing else secret is stored.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/fidokit/fidokit/internal/migrations"
	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/webauthn"
)

// walSizeLimit is the size the WAL file is truncated to after a
// checkpoint (PRAGMA journal_size_limit). It is above the size the WAL
// reaches between two background checkpoints (checkpointEvery commits of
// a few pages each), so that a WAL is not cut back and grown again (a
// file's growth is a metadata change for the next fsync) on every turn.
const walSizeLimit = 16 << 20

// BusyTimeout is how long a write waits for another connection or process
// holding the database's write lock before it fails.
const BusyTimeout = 10 * time.Second

// ErrSchemaTooNew is returned by [Open] for a file whose schema was written
// by a newer version of this package; this version cannot safely use it.
var ErrSchemaTooNew = errors.New("sqlite: database schema is newer than this version of fidokit supports")

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Store is a [webauthn.Store] and an [mfa.Store] backed by one SQLite
// file. Open one with [Open] and close it with [Store.Close].
//
// A Store is safe for concurrent use by multiple goroutines, and other
// Stores (in this or other processes) may use the same file at the same
// time: every method is a single atomic statement or one IMMEDIATE
// transaction.
type Store struct {
	db *sql.DB
	// q runs every statement prepared once per connection (conn.go);
	// r runs read-only ones from q, without watching their context.
	q *stmtCache
	r readQuerier
	// writer (a semaphore of one) serialises this Store's writes in the
	// process, so that a burst of them (a flood of sign-in begins) waits
	// here rather than in SQLite's busy handler, which sleeps, and where
	// waiting connections keep the WAL from being checkpointed and reset
	// and it grows without bound. Other processes still meet at the
	// file's lock, with BusyTimeout.
	writer chan struct{}
	// full is set while the last SaveChallenge found the total limit
	// reached: the next ones check it from a read first, so that a flood
	// of refused begins takes no write lock from the sign-ins under way.
	full atomic.Bool
	// commits counts this Store's commits since its last checkpoint;
	// every checkpointEvery of them a value on checkpoint wakes the
	// checkpointer (conn.go), which stopCheckpoints stops. ckptDone,
	// under ckptMu, is closed when a checkpoint is done.
	commits         atomic.Uint64
	checkpoint      chan struct{}
	stopCheckpoints func()
	ckptMu          sync.Mutex
	ckptDone        chan struct{}
}

var (
	_ webauthn.SignInStore = (*Store)(nil)
	_ webauthn.FinishStore = (*Store)(nil)
	_ mfa.Store            = (*Store)(nil)
)

// Open opens the SQLite database at path, creating the file if it does
// not exist, and applies any schema migrations it lacks, in one
// transaction. It fails with an error wrapping [ErrSchemaTooNew] if the
// file's schema is newer than this package knows. The path is a file
// name, not a URI, and must not contain '?'.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.ContainsRune(path, '?') {
		return nil, fmt.Errorf("sqlite: opening %q: path must be a non-empty file name without '?'", path)
	}
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", BusyTimeout.Milliseconds()))
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "synchronous(NORMAL)")
	// The WAL is reused from its start after each checkpoint but keeps
	// its largest size on disk; a burst of writes (a flood of sign-in
	// begins) would leave it large. Truncate it back after checkpoints.
	q.Add("_pragma", fmt.Sprintf("journal_size_limit(%d)", walSizeLimit))
	// Checkpoints run in the background (Store.checkpointer); the
	// automatic one is the backstop.
	q.Add("_pragma", fmt.Sprintf("wal_autocheckpoint(%d)", autocheckpointPages))
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	// Connections stay open: each new one runs the pragmas above and
	// prepares its statements again.
	n := poolSize()
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	db.SetConnMaxIdleTime(0)
	db.SetConnMaxLifetime(0)
	stmts := newStmtCache(db)
	s := &Store{db: db, q: stmts, r: readQuerier{stmts}, writer: make(chan struct{}, 1), checkpoint: make(chan struct{}, 1), ckptDone: make(chan struct{})}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: opening %s: %w", path, err)
	}
	ckptCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go s.checkpointer(ckptCtx, done)
	s.stopCheckpoints = func() { cancel(); <-done }
	return s, nil
}

// Close closes the database. Calls already under way finish first.
func (s *Store) Close() error {
	s.stopCheckpoints()
	s.q.close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("sqlite: closing: %w", err)
	}
	return nil
}

// loadMigrations returns the embedded migrations in version order.
func loadMigrations() ([]migrations.Migration, error) {
	return migrations.Load(migrationFiles, "migrations")
}

// migrate brings the schema up to date in one IMMEDIATE transaction, so
// that two processes opening a new file at once migrate it once.
func (s *Store) migrate(ctx context.Context) error {
	ms, err := loadMigrations()
	if err != nil {
		return fmt.Errorf("loading migrations: %w", err)
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrating: %w", err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS webauthn_schema_version (
		version INTEGER NOT NULL PRIMARY KEY,
		applied INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("creating schema_version: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM webauthn_schema_version`).Scan(&current); err != nil {
		return fmt.Errorf("reading schema version: %w", err)
	}
	if current > len(ms) {
		return fmt.Errorf("schema version %d, this package knows up to %d: %w", current, len(ms), ErrSchemaTooNew)
	}
	for _, m := range ms[current:] {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("applying migration %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO webauthn_schema_version (version, applied) VALUES (?, ?)`,
			m.Version, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("recording migration %s: %w", m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing migrations: %w", err)
	}
	return nil
}

// ---- value conversions ----

// micros is how times are stored: Unix microseconds, UTC.
func micros(t time.Time) int64 { return t.UnixMicro() }

// nullMicros stores the zero time as NULL.
func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func fromMicros(v int64) time.Time {
	t := time.UnixMicro(v).UTC()
	if t.Equal(time.Time{}) {
		return time.Time{}
	}
	return t
}

func fromNullMicros(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}

// blob passes a NOT NULL blob: nil as an empty blob.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// nullBlob passes an optional blob: empty as NULL.
func nullBlob(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// readBlob normalises a scanned blob: empty becomes nil. database/sql
// already copied it, so the result is the caller's.
func readBlob(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// sqliteCode returns the extended result code of a driver error, or 0.
func sqliteCode(err error) int {
	var e *sqlite.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// isUnique reports whether err is a UNIQUE or PRIMARY KEY violation.
func isUnique(err error) bool {
	c := sqliteCode(err)
	return c == sqlite3.SQLITE_CONSTRAINT_UNIQUE || c == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
}

// isForeignKey reports whether err is a FOREIGN KEY violation.
func isForeignKey(err error) bool {
	return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY
}

// affected returns how many rows res changed.
func affected(res sql.Result, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// ---- users ----

// CreateUser implements [webauthn.Store.CreateUser].
func (s *Store) CreateUser(ctx context.Context, u *webauthn.User) error {
	err := s.write(ctx, func(q querier) error {
		_, err := q.ExecContext(ctx,
			`INSERT INTO webauthn_users (id, name, display_name, created) VALUES (?, ?, ?, ?)`,
			blob(u.ID), u.Name, u.DisplayName, micros(u.Created))
		return err
	})
	switch {
	case isUnique(err):
		return fmt.Errorf("sqlite: creating user %q: %w", u.Name, webauthn.ErrExists)
	case err != nil:
		return fmt.Errorf("sqlite: creating user %q: %w", u.Name, err)
	}
	return nil
}

const userColumns = `id, name, display_name, created`

func scanUser(row scanner) (*webauthn.User, error) {
	var (
		u       webauthn.User
		created int64
	)
	if err := row.Scan(&u.ID, &u.Name, &u.DisplayName, &created); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, webauthn.ErrNotFound
		}
		return nil, err
	}
	u.ID = readBlob(u.ID)
	u.Created = fromMicros(created)
	return &u, nil
}

// User implements [webauthn.Store.User].
func (s *Store) User(ctx context.Context, id []byte) (*webauthn.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx,
		`SELECT `+userColumns+` FROM webauthn_users WHERE id = ?`, blob(id)))
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading user: %w", err)
	}
	return u, nil
}

// UserByName implements [webauthn.Store.UserByName].
func (s *Store) UserByName(ctx context.Context, name string) (*webauthn.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx,
		`SELECT `+userColumns+` FROM webauthn_users WHERE name = ?`, name))
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading user %q: %w", name, err)
	}
	return u, nil
}

// ---- credentials ----

const credentialColumns = `id, user_id, name, public_key, algorithm, aaguid,
	attestation_format, attestation_type, transports, user_verified,
	backup_eligible, backup_state, sign_count, clone_warning, deactivated,
	created, last_used`

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

func scanCredential(r scanner) (*webauthn.Credential, error) {
	var (
		c                     webauthn.Credential
		transports            string
		signCount             int64
		deactivated, lastUsed sql.NullInt64
		created               int64
	)
	err := r.Scan(&c.ID, &c.UserID, &c.Name, &c.PublicKey, &c.Algorithm, &c.AAGUID,
		&c.AttestationFormat, &c.AttestationType, &transports, &c.UserVerified,
		&c.BackupEligible, &c.BackupState, &signCount, &c.CloneWarning, &deactivated,
		&created, &lastUsed)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, webauthn.ErrNotFound
		}
		return nil, err
	}
	if err := json.Unmarshal([]byte(transports), &c.Transports); err != nil {
		return nil, fmt.Errorf("decoding transports: %w", err)
	}
	if len(c.Transports) == 0 {
		c.Transports = nil
	}
	c.ID, c.UserID, c.PublicKey, c.AAGUID = readBlob(c.ID), readBlob(c.UserID), readBlob(c.PublicKey), readBlob(c.AAGUID)
	c.SignCount = uint32(signCount)
	c.Deactivated = fromNullMicros(deactivated)
	c.Created = fromMicros(created)
	c.LastUsed = fromNullMicros(lastUsed)
	return &c, nil
}

// AddCredential implements [webauthn.Store.AddCredential], with the
// limit of [mfa.Store]: it counts the user's security keys plus their
// TOTP devices. The existence checks, the limit check and the insert run
// in one IMMEDIATE transaction, which holds the database's write lock
// throughout.
func (s *Store) AddCredential(ctx context.Context, c *webauthn.Credential, limit int) error {
	if err := s.addCredential(ctx, c, limit); err != nil {
		return fmt.Errorf("sqlite: adding credential: %w", err)
	}
	return nil
}

func (s *Store) addCredential(ctx context.Context, c *webauthn.Credential, limit int) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := addCredentialTx(ctx, tx, c, limit); err != nil {
		return err
	}
	if err := insertEvents(ctx, tx, mfa.KeyEvents(ctx, mfa.OpAddCredential, c.UserID, c.ID)); err != nil {
		return err
	}
	return tx.Commit()
}

// CreateUserWithCredential implements
// [webauthn.Store.CreateUserWithCredential].
func (s *Store) CreateUserWithCredential(ctx context.Context, u *webauthn.User, c *webauthn.Credential) error {
	err := func() error {
		tx, err := s.begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback()
		_, err = tx.ExecContext(ctx,
			`INSERT INTO webauthn_users (id, name, display_name, created) VALUES (?, ?, ?, ?)`,
			blob(u.ID), u.Name, u.DisplayName, micros(u.Created))
		switch {
		case isUnique(err):
			return webauthn.ErrExists
		case err != nil:
			return err
		}
		if err := addCredentialTx(ctx, tx, c, 0); err != nil {
			return err
		}
		if err := insertEvents(ctx, tx, mfa.KeyEvents(ctx, mfa.OpCreateUserWithCredential, c.UserID, c.ID)); err != nil {
			return err
		}
		return tx.Commit()
	}()
	if err != nil {
		return fmt.Errorf("sqlite: creating user %q with a credential: %w", u.Name, err)
	}
	return nil
}

func addCredentialTx(ctx context.Context, tx querier, c *webauthn.Credential, limit int) error {
	transports := c.Transports
	if transports == nil {
		transports = []string{}
	}
	tj, err := json.Marshal(transports)
	if err != nil {
		return err
	}
	var userExists, credExists bool
	var n int // devices of every type: keys and TOTP devices
	err = tx.QueryRowContext(ctx, `SELECT
		EXISTS (SELECT 1 FROM webauthn_users WHERE id = ?1),
		EXISTS (SELECT 1 FROM webauthn_credentials WHERE id = ?2),
		(SELECT COUNT(*) FROM webauthn_credentials WHERE user_id = ?1) +
		(SELECT COUNT(*) FROM mfa_otp_devices WHERE user_id = ?1)`,
		blob(c.UserID), blob(c.ID)).Scan(&userExists, &credExists, &n)
	switch {
	case err != nil:
		return err
	case !userExists:
		return fmt.Errorf("user: %w", webauthn.ErrNotFound)
	case credExists:
		return webauthn.ErrExists
	case limit > 0 && n >= limit:
		return fmt.Errorf("%d of %d: %w", n, limit, webauthn.ErrLimit)
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO webauthn_credentials (`+credentialColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		blob(c.ID), blob(c.UserID), c.Name, blob(c.PublicKey), c.Algorithm, nullBlob(c.AAGUID),
		c.AttestationFormat, c.AttestationType, string(tj), c.UserVerified,
		c.BackupEligible, c.BackupState, int64(c.SignCount), c.CloneWarning, nullMicros(c.Deactivated),
		micros(c.Created), nullMicros(c.LastUsed))
	switch {
	case isUnique(err):
		return webauthn.ErrExists
	case isForeignKey(err):
		return fmt.Errorf("user: %w", webauthn.ErrNotFound)
	}
	return err
}

// Credential implements [webauthn.Store.Credential].
func (s *Store) Credential(ctx context.Context, id []byte) (*webauthn.Credential, error) {
	c, err := scanCredential(s.r.QueryRowContext(ctx,
		`SELECT `+credentialColumns+` FROM webauthn_credentials WHERE id = ?`, blob(id)))
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading credential: %w", err)
	}
	return c, nil
}

// Credentials implements [webauthn.Store.Credentials]. Credentials
// registered at the same time are listed in the order they were added.
func (s *Store) Credentials(ctx context.Context, userID []byte) ([]*webauthn.Credential, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+credentialColumns+` FROM webauthn_credentials
		WHERE user_id = ? ORDER BY created, seq`, blob(userID))
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing credentials: %w", err)
	}
	defer rows.Close()
	out := []*webauthn.Credential{}
	for rows.Next() {
		c, err := scanCredential(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: listing credentials: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: listing credentials: %w", err)
	}
	return out, nil
}

// updateOwned runs an UPDATE or DELETE scoped to one user's credential or
// TOTP device, with the events of op, and turns "no row" into
// ErrNotFound.
func (s *Store) updateOwned(ctx context.Context, op mfa.StoreOp, what, query string, args ...any) error {
	err := s.change(ctx, mfa.StoreEvents(ctx, op), func(q querier) error {
		n, err := affected(q.ExecContext(ctx, query, args...))
		if err == nil && n == 0 {
			err = webauthn.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: %s: %w", what, err)
	}
	return nil
}

// RenameCredential implements [webauthn.Store.RenameCredential].
func (s *Store) RenameCredential(ctx context.Context, userID, id []byte, name string) error {
	return s.updateOwned(ctx, mfa.OpRenameCredential, "renaming credential",
		`UPDATE webauthn_credentials SET name = ? WHERE id = ? AND user_id = ?`,
		name, blob(id), blob(userID))
}

// DeactivateCredential implements [webauthn.Store.DeactivateCredential].
func (s *Store) DeactivateCredential(ctx context.Context, userID, id []byte, at time.Time) error {
	return s.updateOwned(ctx, mfa.OpDeactivateCredential, "deactivating credential",
		`UPDATE webauthn_credentials SET deactivated = ? WHERE id = ? AND user_id = ?`,
		nullMicros(at), blob(id), blob(userID))
}

// DeleteCredential implements [webauthn.Store.DeleteCredential].
func (s *Store) DeleteCredential(ctx context.Context, userID, id []byte) error {
	return s.updateOwned(ctx, mfa.OpDeleteCredential, "deleting credential",
		`DELETE FROM webauthn_credentials WHERE id = ? AND user_id = ?`,
		blob(id), blob(userID))
}

// RecordSignIn implements [webauthn.Store.RecordSignIn] as one
// compare-and-set UPDATE; when it changes no row, a second read tells
// why.
func (s *Store) RecordSignIn(ctx context.Context, in webauthn.SignIn) error {
	err := s.change(ctx, mfa.KeyEvents(ctx, mfa.OpRecordSignIn, nil, in.CredentialID), func(q querier) error {
		return recordSignIn(ctx, q, in)
	})
	if err != nil {
		return fmt.Errorf("sqlite: recording sign-in: %w", err)
	}
	return nil
}

// recordSignIn is the compare-and-set of RecordSignIn on q.
func recordSignIn(ctx context.Context, q querier, in webauthn.SignIn) error {
	n, err := affected(q.ExecContext(ctx, `UPDATE webauthn_credentials
		SET sign_count = ?, backup_state = ?, last_used = ?
		WHERE id = ? AND sign_count = ? AND deactivated IS NULL`,
		int64(in.NewCount), in.BackupState, nullMicros(in.At), blob(in.CredentialID), int64(in.OldCount)))
	if err != nil || n == 1 {
		return err
	}
	var (
		count       int64
		deactivated sql.NullInt64
	)
	err = q.QueryRowContext(ctx, `SELECT sign_count, deactivated FROM webauthn_credentials WHERE id = ?`,
		blob(in.CredentialID)).Scan(&count, &deactivated)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return webauthn.ErrNotFound
	case err != nil:
		return err
	case deactivated.Valid:
		return webauthn.ErrInactive
	}
	return fmt.Errorf("stored %d, read %d: %w", count, in.OldCount, webauthn.ErrConflict)
}

// FlagClone implements [webauthn.Store.FlagClone].
func (s *Store) FlagClone(ctx context.Context, id []byte) error {
	err := s.change(ctx, mfa.KeyEvents(ctx, mfa.OpFlagClone, nil, id), func(q querier) error {
		n, err := affected(q.ExecContext(ctx,
			`UPDATE webauthn_credentials SET clone_warning = 1 WHERE id = ?`, blob(id)))
		if err == nil && n == 0 {
			err = webauthn.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: flagging clone: %w", err)
	}
	return nil
}

// ClearCloneWarning implements [webauthn.Store.ClearCloneWarning].
func (s *Store) ClearCloneWarning(ctx context.Context, userID, id []byte) error {
	return s.updateOwned(ctx, "", "clearing clone warning",
		`UPDATE webauthn_credentials SET clone_warning = 0 WHERE id = ? AND user_id = ?`,
		blob(id), blob(userID))
}

// ---- challenges ----

// purgeBatch is how many expired challenges SaveChallenge removes at
// least on every call (the trigger of migration 0006 has it too).
const purgeBatch = 64

// SaveChallenge implements [webauthn.Store.SaveChallenge] with one
// statement, atomic under the database's write lock, so the limits hold
// exactly across processes: it inserts the challenge only if the user's
// unexpired challenges (counted by index) and all stored ones (a count
// that triggers keep) are under the limits, and a trigger then removes
// up to 64 expired challenges (the oldest). A refused call removes them
// too; if the total is reached, it removes every expired challenge and
// tries once more. While the total stays reached, calls are refused from
// a read, without the write lock.
func (s *Store) SaveChallenge(ctx context.Context, c *webauthn.Challenge, now time.Time, limits webauthn.ChallengeLimits) error {
	if err := s.saveChallenge(ctx, c, now, limits); err != nil {
		return fmt.Errorf("sqlite: saving challenge: %w", err)
	}
	return nil
}

// purgeChallengesSQL removes up to ?2 of the challenges expired at ?1,
// the oldest first.
const purgeChallengesSQL = `DELETE FROM webauthn_challenges WHERE id IN
	(SELECT id FROM webauthn_challenges WHERE expires <= ? ORDER BY expires LIMIT ?)`

// takeChallengeSQL removes and returns a challenge.
const takeChallengeSQL = `DELETE FROM webauthn_challenges WHERE id = ?
	RETURNING challenge, ceremony, user_id, session, expires`

// insertChallengeSQL inserts a challenge saved at ?7 if the limits allow
// it; the insert's trigger purges challenges expired at ?7.
const insertChallengeSQL = `INSERT INTO webauthn_challenges (id, challenge, ceremony, user_id, session, expires, saved)
	SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7
	WHERE (?8 <= 0 OR ?4 IS NULL OR (SELECT COUNT(*) FROM webauthn_challenges WHERE user_id = ?4 AND expires > ?7) < ?8)
		AND (?9 <= 0 OR (SELECT n FROM webauthn_challenge_count WHERE id = 0) < ?9)`

func (s *Store) saveChallenge(ctx context.Context, c *webauthn.Challenge, now time.Time, limits webauthn.ChallengeLimits) error {
	if limits.Total > 0 && s.full.Load() {
		// Refused from one read snapshot, if then the store held the
		// total and nothing had expired.
		var n int
		var expired bool
		if err := s.r.QueryRowContext(ctx, `SELECT (SELECT n FROM webauthn_challenge_count WHERE id = 0),
			EXISTS (SELECT 1 FROM webauthn_challenges WHERE expires <= ?)`, micros(now)).Scan(&n, &expired); err != nil {
			return err
		}
		if n >= limits.Total && !expired {
			return fmt.Errorf("%d in all: %w", n, webauthn.ErrTooManyCeremonies)
		}
	}
	if err := s.lockWriter(ctx); err != nil {
		return err
	}
	defer s.unlockWriter()
	insert := func() (bool, error) {
		n, err := affected(s.q.ExecContext(ctx, insertChallengeSQL,
			c.ID, blob(c.Challenge), string(c.Ceremony), nullBlob(c.UserID), nullBlob(c.Session), micros(c.Expires),
			micros(now), limits.PerUser, limits.Total))
		if isUnique(err) {
			return false, webauthn.ErrExists
		}
		if n == 1 {
			s.committed()
		}
		return n == 1, err
	}
	ok, err := insert()
	if err != nil {
		return err
	}
	if ok {
		s.full.Store(false)
		return nil
	}
	var userN, total int
	if err := s.r.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM webauthn_challenges WHERE user_id = ? AND expires > ?),
		(SELECT n FROM webauthn_challenge_count WHERE id = 0)`,
		nullBlob(c.UserID), micros(now)).Scan(&userN, &total); err != nil {
		return err
	}
	if limits.PerUser > 0 && len(c.UserID) > 0 && userN >= limits.PerUser {
		// Refused, but expired challenges go all the same.
		n, err := affected(s.q.ExecContext(ctx, purgeChallengesSQL, micros(now), purgeBatch))
		if err != nil {
			return err
		}
		if n > 0 {
			s.committed()
		}
		return fmt.Errorf("%d for the user: %w", userN, webauthn.ErrTooManyCeremonies)
	}
	// The total counts expired challenges too: remove them all, then
	// decide. Each is removed once, so this is cheap over time.
	n, err := affected(s.q.ExecContext(ctx, `DELETE FROM webauthn_challenges WHERE expires <= ?`, micros(now)))
	if err != nil {
		return err
	}
	if n > 0 {
		s.committed()
		if ok, err = insert(); err != nil || ok {
			return err
		}
	}
	s.full.Store(true)
	return fmt.Errorf("%d in all: %w", total-int(n), webauthn.ErrTooManyCeremonies)
}

// challengeCount is the number of stored challenges, expired or not.
func challengeCount(ctx context.Context, tx querier) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT n FROM webauthn_challenge_count WHERE id = 0`).Scan(&n)
	return n, err
}

// TakeChallenge implements [webauthn.Store.TakeChallenge] with one
// DELETE … RETURNING, so of concurrent callers only one gets the row.
func (s *Store) TakeChallenge(ctx context.Context, id string, now time.Time) (*webauthn.Challenge, error) {
	var (
		c        = webauthn.Challenge{ID: id}
		ceremony string
		expires  int64
	)
	err := s.write(ctx, func(q querier) error {
		return q.QueryRowContext(ctx, takeChallengeSQL, id).Scan(&c.Challenge, &ceremony, &c.UserID, &c.Session, &expires)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("sqlite: taking challenge: %w", webauthn.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("sqlite: taking challenge: %w", err)
	case micros(now) >= expires:
		return nil, fmt.Errorf("sqlite: taking challenge: %w", webauthn.ErrExpired)
	}
	c.Challenge, c.UserID, c.Session = readBlob(c.Challenge), readBlob(c.UserID), readBlob(c.Session)
	c.Ceremony = webauthn.Ceremony(ceremony)
	c.Expires = fromMicros(expires)
	return &c, nil
}

// TakeSignIn implements [webauthn.SignInStore.TakeSignIn]: the
// challenge's DELETE … RETURNING in the writer slot, then one read of the
// credential joined with its owner. In process there is no round trip to
// save; what is saved is a statement.
func (s *Store) TakeSignIn(ctx context.Context, id string, credentialID []byte, now time.Time) (*webauthn.Challenge, *webauthn.Credential, *webauthn.User, error) {
	ch, err := s.TakeChallenge(ctx, id, now)
	if err != nil {
		return nil, nil, nil, err
	}
	cred, u, err := s.signInCredential(ctx, credentialID)
	if err != nil {
		return nil, nil, nil, err
	}
	return ch, cred, u, nil
}

// signInCredential reads a credential joined with its owner: nil, nil if
// there is no such credential, cred and nil if its owner is gone.
func (s *Store) signInCredential(ctx context.Context, credentialID []byte) (*webauthn.Credential, *webauthn.User, error) {
	var (
		userID        []byte
		name, display sql.NullString
		created       sql.NullInt64
	)
	cred, err := scanCredential(extraScanner{
		s.r.QueryRowContext(ctx, signInSQL, blob(credentialID)),
		[]any{&userID, &name, &display, &created},
	})
	switch {
	case errors.Is(err, webauthn.ErrNotFound):
		return nil, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("sqlite: reading credential: %w", err)
	case userID == nil:
		return cred, nil, nil // the owner is gone
	}
	u := &webauthn.User{ID: readBlob(userID), Name: name.String, DisplayName: display.String, Created: fromMicros(created.Int64)}
	return cred, u, nil
}

// signInSQL reads a credential and its owner's columns (NULL if the
// owner is gone).
var signInSQL = `SELECT ` + qualified("c", credentialColumns) + `, u.id, u.name, u.display_name, u.created
	FROM webauthn_credentials c LEFT JOIN webauthn_users u ON u.id = c.user_id WHERE c.id = ?`

// qualified prefixes each column of a comma-separated list with table.
func qualified(table, columns string) string {
	cols := strings.Split(columns, ",")
	for i, c := range cols {
		cols[i] = table + "." + strings.TrimSpace(c)
	}
	return strings.Join(cols, ", ")
}

// extraScanner scans a row's leading columns into what its caller asks
// for and the rest into extra, so that scanCredential reads a joined row.
type extraScanner struct {
	r     scanner
	extra []any
}

func (e extraScanner) Scan(dest ...any) error { return e.r.Scan(append(dest, e.extra...)...) }

// PurgeChallenges implements [webauthn.Store.PurgeChallenges].
func (s *Store) PurgeChallenges(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(q querier) (err error) {
		n, err = affected(q.ExecContext(ctx, `DELETE FROM webauthn_challenges WHERE expires <= ?`, micros(now)))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: purging challenges: %w", err)
	}
	return int(n), nil
}
