package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
	_ "modernc.org/sqlite" // the pure-Go SQLite driver, as "sqlite"
)

// The password is the application's own first factor: fidokit does not
// hold it. This file is that part of the demo — accounts with an argon2id
// password hash in a small SQLite file of their own (accounts.db), beside
// whatever database holds the keys and MFA devices. A real service keeps
// this in its own user table.

// Errors of the accounts store.
var (
	// errBadCredentials is a wrong name or password: one error for both,
	// so that the page does not tell which accounts exist.
	errBadCredentials = errors.New("wrong name or password")
	// errNameTaken is a sign-up with a name in use.
	errNameTaken = errors.New("that name is taken")
)

// passwordHash is the cost of argon2id for passwords (RFC 9106). The
// default is OWASP's minimum for argon2id: 19 MiB, 2 passes, 1 thread.
type passwordHash struct {
	Time      uint32
	MemoryKiB uint32
	Threads   uint8
}

var defaultPasswordHash = passwordHash{Time: 2, MemoryKiB: 19 * 1024, Threads: 1}

const (
	passwordSaltLen = 16
	passwordKeyLen  = 32
	minPasswordLen  = 8   // NIST SP 800-63B §3.1.1.2
	maxPasswordLen  = 256 // bytes; argon2 takes any length, this bounds the work
	maxNameLen      = 64
)

// hash returns password's PHC string: $argon2id$v=19$m=…,t=…,p=…$salt$key.
func (p passwordHash) hash(password string) (string, error) {
	salt := make([]byte, passwordSaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, passwordKeyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.MemoryKiB, p.Time, p.Threads, enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// verifyPassword checks password against a PHC string made by hash, with
// the cost recorded in it.
func verifyPassword(phc, password string) bool {
	parts := strings.Split(phc, "$")
	if len(parts) != 6 || parts[1] != "argon2id" || parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return false
	}
	var p passwordHash
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &p.MemoryKiB, &p.Time, &p.Threads); err != nil || p.Time == 0 || p.Threads == 0 {
		return false
	}
	enc := base64.RawStdEncoding
	salt, err1 := enc.DecodeString(parts[4])
	want, err2 := enc.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, p.Time, p.MemoryKiB, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// checkAccountName accepts 1 to 64 bytes of printable text without spaces
// at either end. It returns what to tell the person, or "".
func checkAccountName(name string) string {
	switch {
	case name == "":
		return "Choose a name for the account."
	case len(name) > maxNameLen || !utf8.ValidString(name):
		return fmt.Sprintf("A name is at most %d characters.", maxNameLen)
	case strings.TrimSpace(name) != name:
		return "A name cannot start or end with a space."
	case strings.ContainsFunc(name, func(r rune) bool { return !unicode.IsPrint(r) }):
		return "A name can hold only letters, digits, punctuation and spaces."
	}
	return ""
}

// checkNewPassword applies NIST SP 800-63B's rules that need no list: at
// least 8 characters, and a bound on the length. It returns what to tell
// the person, or "".
func checkNewPassword(password, confirm string) string {
	switch {
	case utf8.RuneCountInString(password) < minPasswordLen:
		return fmt.Sprintf("Choose a password of at least %d characters.", minPasswordLen)
	case len(password) > maxPasswordLen:
		return fmt.Sprintf("A password is at most %d bytes.", maxPasswordLen)
	case password != confirm:
		return "The two passwords are not the same."
	}
	return ""
}

// account is one row of the accounts table.
type account struct {
	Name    string
	UserID  []byte // the webauthn.User.ID that fidokit knows the account by
	Created time.Time
}

// accounts is the application's user list: names, password hashes and
// the fidokit user handle of each, plus the demo's settings.
type accounts struct {
	db   *sql.DB
	cost passwordHash
	// dummy is a hash to check unknown names against, so that a wrong
	// name costs as much time as a wrong password.
	dummy string
}

const accountsSchema = `
CREATE TABLE IF NOT EXISTS accounts (
	name     TEXT NOT NULL PRIMARY KEY COLLATE NOCASE,
	user_id  BLOB NOT NULL UNIQUE,
	password TEXT NOT NULL,
	created  INTEGER NOT NULL
) STRICT;
CREATE TABLE IF NOT EXISTS settings (
	key   TEXT NOT NULL PRIMARY KEY,
	value TEXT NOT NULL
) STRICT;`

// openAccounts opens (or creates) the accounts file at path.
func openAccounts(ctx context.Context, path string, cost passwordHash) (*accounts, error) {
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, accountsSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	a := &accounts{db: db, cost: cost}
	if a.dummy, err = cost.hash("not a password"); err != nil {
		db.Close()
		return nil, err
	}
	return a, nil
}

func (a *accounts) Close() error { return a.db.Close() }

// create stores a new account. errNameTaken if the name (in any case) is
// in use.
func (a *accounts) create(ctx context.Context, name string, userID []byte, password string, now time.Time) error {
	h, err := a.cost.hash(password)
	if err != nil {
		return err
	}
	_, err = a.db.ExecContext(ctx, `INSERT INTO accounts (name, user_id, password, created) VALUES (?, ?, ?, ?)`,
		name, userID, h, now.UnixMicro())
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return errNameTaken
	}
	return err
}

// check returns the account if password is its password, and
// errBadCredentials if the name is unknown or the password wrong.
func (a *accounts) check(ctx context.Context, name, password string) (*account, error) {
	var (
		acc account
		h   string
		us  int64
	)
	err := a.db.QueryRowContext(ctx, `SELECT name, user_id, password, created FROM accounts WHERE name = ?`, name).
		Scan(&acc.Name, &acc.UserID, &h, &us)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		verifyPassword(a.dummy, password)
		return nil, errBadCredentials
	case err != nil:
		return nil, err
	case len(password) > maxPasswordLen || !verifyPassword(h, password):
		return nil, errBadCredentials
	}
	acc.Created = time.UnixMicro(us)
	return &acc, nil
}

// byUserID returns the account with fidokit user handle id, or nil.
func (a *accounts) byUserID(ctx context.Context, id []byte) (*account, error) {
	var (
		acc account
		us  int64
	)
	err := a.db.QueryRowContext(ctx, `SELECT name, user_id, created FROM accounts WHERE user_id = ?`, id).
		Scan(&acc.Name, &acc.UserID, &us)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	acc.Created = time.UnixMicro(us)
	return &acc, nil
}

// list returns every account, oldest first.
func (a *accounts) list(ctx context.Context) ([]account, error) {
	rows, err := a.db.QueryContext(ctx, `SELECT name, user_id, created FROM accounts ORDER BY created, rowid`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []account
	for rows.Next() {
		var (
			acc account
			us  int64
		)
		if err := rows.Scan(&acc.Name, &acc.UserID, &us); err != nil {
			return nil, err
		}
		acc.Created = time.UnixMicro(us)
		out = append(out, acc)
	}
	return out, rows.Err()
}

// first returns the oldest account, or nil when there is none.
func (a *accounts) first(ctx context.Context) (*account, error) {
	var (
		acc account
		us  int64
	)
	err := a.db.QueryRowContext(ctx, `SELECT name, user_id, created FROM accounts ORDER BY created, rowid LIMIT 1`).
		Scan(&acc.Name, &acc.UserID, &us)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	acc.Created = time.UnixMicro(us)
	return &acc, nil
}

// setting returns a setting's value, or "" when it is not set.
func (a *accounts) setting(ctx context.Context, key string) (string, error) {
	var v string
	err := a.db.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

// setSetting sets a setting.
func (a *accounts) setSetting(ctx context.Context, key, value string) error {
	_, err := a.db.ExecContext(ctx, `INSERT INTO settings (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return err
}
