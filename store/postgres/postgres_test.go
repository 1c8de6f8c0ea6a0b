package postgres

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/internal/pgtest"
	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/store/storetest"
	"github.com/fidokit/fidokit/webauthn"
)

// open opens a Store on connString and closes it when the test ends.
func open(t *testing.T, connString string) *Store {
	t.Helper()
	s, err := Open(t.Context(), connString)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

func TestStore(t *testing.T) {
	pgtest.URL(t) // skip once, not in every subtest
	storetest.Run(t, func(t *testing.T) webauthn.Store {
		return open(t, pgtest.New(t))
	})
}

// TestShared races two pools on one database, as two servers would.
func TestShared(t *testing.T) {
	db := pgtest.New(t)
	storetest.RunShared(t, open(t, db), open(t, db))
}

func TestMFAStore(t *testing.T) {
	pgtest.URL(t) // skip once, not in every subtest
	storetest.RunMFA(t, func(t *testing.T) mfa.Store {
		return open(t, pgtest.New(t))
	})
}

// TestMFAShared races two pools on one database, as two servers would.
func TestMFAShared(t *testing.T) {
	db := pgtest.New(t)
	storetest.RunMFAShared(t, open(t, db), open(t, db))
}

// TestNoPlaintext reads every row of every table, as text (bytea as
// hex), for the plaintexts behind the sealed TOTP seeds and the recovery
// code hashes.
func TestNoPlaintext(t *testing.T) {
	s := open(t, pgtest.New(t))
	storetest.RunNoPlaintext(t, s, func(t *testing.T) []byte {
		ctx := t.Context()
		rows, err := s.pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY 1`)
		require.NoError(t, err)
		tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
		require.NoError(t, err)
		require.Contains(t, tables, "mfa_otp_devices")
		var raw []byte
		for _, table := range tables {
			rows, err := s.pool.Query(ctx, `SELECT t::text FROM `+pgx.Identifier{table}.Sanitize()+` t`)
			require.NoError(t, err)
			texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
			require.NoError(t, err, "reading %s", table)
			for _, text := range texts {
				raw = append(raw, table+": "+text+"\n"...)
			}
		}
		return raw
	})
}

// versions returns the rows of the schema_version table.
func versions(t *testing.T, s *Store) map[int]time.Time {
	t.Helper()
	rows, err := s.pool.Query(t.Context(), `SELECT version, applied FROM webauthn_schema_version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[int]time.Time{}
	for rows.Next() {
		var v int
		var at time.Time
		if err := rows.Scan(&v, &at); err != nil {
			t.Fatal(err)
		}
		m[v] = at
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestReopen(t *testing.T) {
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	db := pgtest.New(t)
	u := &webauthn.User{ID: []byte{1, 2, 3}, Name: "ada@example.com", Created: time.Now()}
	s, err := Open(t.Context(), db)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	first := versions(t, s)
	if len(first) != len(ms) {
		t.Fatalf("schema_version has %d rows, want %d", len(first), len(ms))
	}
	s.Close()

	s = open(t, db)
	if _, err := s.User(t.Context(), u.ID); err != nil {
		t.Fatalf("User after reopening: %v", err)
	}
	again := versions(t, s)
	for v, at := range first {
		if !again[v].Equal(at) {
			t.Errorf("migration %d re-applied", v)
		}
	}
	if len(again) != len(first) {
		t.Errorf("schema_version has %d rows after reopening, want %d", len(again), len(first))
	}
}

// TestConcurrentOpen starts several servers on a new database at once:
// the advisory lock makes them migrate once.
func TestConcurrentOpen(t *testing.T) {
	db := pgtest.New(t)
	const n = 8
	var (
		wg     sync.WaitGroup
		stores [n]*Store
		errs   [n]error
	)
	for i := range n {
		wg.Go(func() { stores[i], errs[i] = Open(t.Context(), db) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open #%d: %v", i, errs[i])
			continue
		}
		t.Cleanup(stores[i].Close)
	}
	if t.Failed() {
		return
	}
	ms, err := loadMigrations()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(versions(t, stores[0])), len(ms); got != want {
		t.Errorf("schema_version has %d rows, want %d", got, want)
	}
}

func TestNewerSchema(t *testing.T) {
	db := pgtest.New(t)
	s := open(t, db)
	if _, err := s.pool.Exec(t.Context(), `INSERT INTO webauthn_schema_version (version) VALUES (999)`); err != nil {
		t.Fatal(err)
	}
	_, err := Open(t.Context(), db)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), "999") {
		t.Errorf("error %q should name the version", err)
	}
}

func TestOpenErrors(t *testing.T) {
	db := pgtest.New(t)
	for _, tc := range []struct {
		name, connString string
	}{
		{"malformed", "postgres://%zz"},
		{"unknown database", strings.Replace(db, "fidokit_test_", "fidokit_missing_", 1)},
		{"closed port", "postgres://fidokit@127.0.0.1:1/postgres?sslmode=disable&connect_timeout=2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.Context(), tc.connString)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if !strings.HasPrefix(err.Error(), "postgres: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}
