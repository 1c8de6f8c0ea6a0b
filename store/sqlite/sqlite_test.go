package sqlite

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/store/storetest"
	"github.com/fidokit/fidokit/webauthn"
)

// open opens path and closes it when the test ends.
func open(t *testing.T, path string) *Store {
	t.Helper()
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) webauthn.Store {
		return open(t, filepath.Join(t.TempDir(), "fidokit.db"))
	})
}

// TestShared races two handles on one file, as two processes would.
func TestShared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	storetest.RunShared(t, open(t, path), open(t, path))
}

func TestMFAStore(t *testing.T) {
	storetest.RunMFA(t, func(t *testing.T) mfa.Store {
		return open(t, filepath.Join(t.TempDir(), "fidokit.db"))
	})
}

// TestMFAShared races two handles on one file, as two processes would.
func TestMFAShared(t *testing.T) {
	path := filepath.Join(t.TempDir(), "shared.db")
	storetest.RunMFAShared(t, open(t, path), open(t, path))
}

// TestNoPlaintext reads every byte SQLite wrote, the database file and
// its write-ahead log, for the plaintexts behind the sealed TOTP seeds
// and the recovery code hashes.
func TestNoPlaintext(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fidokit.db")
	s := open(t, path)
	storetest.RunNoPlaintext(t, s, func(t *testing.T) []byte {
		var raw []byte
		for _, name := range []string{path, path + "-wal"} {
			b, err := os.ReadFile(name)
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			require.NoError(t, err)
			raw = append(raw, b...)
		}
		return raw
	})
}

// versions returns the rows of the schema_version table.
func versions(t *testing.T, s *Store) map[int]int64 {
	t.Helper()
	rows, err := s.db.QueryContext(t.Context(), `SELECT version, applied FROM webauthn_schema_version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	m := map[int]int64{}
	for rows.Next() {
		var v int
		var at int64
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
	path := filepath.Join(t.TempDir(), "fidokit.db")
	u := &webauthn.User{ID: []byte{1, 2, 3}, Name: "ada@example.com", Created: time.Now()}

	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}
	first := versions(t, s)
	if len(first) != len(ms) {
		t.Fatalf("schema_version has %d rows after first Open, want %d", len(first), len(ms))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	for i := range 2 {
		s := open(t, path)
		got, err := s.User(t.Context(), u.ID)
		if err != nil {
			t.Fatalf("reopen %d: User: %v", i, err)
		}
		if got.Name != u.Name {
			t.Errorf("reopen %d: Name = %q, want %q", i, got.Name, u.Name)
		}
		again := versions(t, s)
		if len(again) != len(first) {
			t.Errorf("reopen %d: schema_version has %d rows, want %d", i, len(again), len(first))
		}
		for v, at := range first {
			if again[v] != at {
				t.Errorf("reopen %d: migration %d re-applied (applied %d, was %d)", i, v, again[v], at)
			}
		}
	}
}

func TestNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fidokit.db")
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.db.ExecContext(t.Context(), `INSERT INTO webauthn_schema_version (version, applied) VALUES (999, 0)`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	_, err = Open(t.Context(), path)
	if !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
	if !strings.Contains(err.Error(), "999") || !strings.Contains(err.Error(), path) {
		t.Errorf("error %q should name the version and the file", err)
	}
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, path string
	}{
		{"empty path", ""},
		{"query in path", filepath.Join(dir, "x.db?mode=ro")},
		{"missing directory", filepath.Join(dir, "no", "such", "dir", "x.db")},
		{"directory", dir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.Context(), tc.path)
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded", tc.path)
			}
			if !strings.HasPrefix(err.Error(), "sqlite: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestOpenCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if s, err := Open(ctx, filepath.Join(t.TempDir(), "x.db")); err == nil {
		s.Close()
		t.Fatal("Open with a canceled context succeeded")
	}
}

// TestCheckpointsInBackground makes a thousand commits: the background
// checkpoints keep the WAL near maxUncheckpointed commits' worth of
// pages at most, below the automatic checkpoint's backstop.
func TestCheckpointsInBackground(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "fidokit.db")
	s := open(t, path)
	now := time.Now()
	const signIns = 4 * checkpointEvery
	for i := range signIns {
		c := &webauthn.Challenge{ID: fmt.Sprintf("c%d", i), Challenge: make([]byte, 32), Ceremony: webauthn.CeremonyLogin,
			Session: make([]byte, 200), Expires: now.Add(time.Hour)}
		require.NoError(t, s.SaveChallenge(ctx, c, now, webauthn.ChallengeLimits{}))
		_, err := s.TakeChallenge(ctx, c.ID, now)
		require.NoError(t, err)
	}
	fi, err := os.Stat(path + "-wal")
	require.NoError(t, err)
	// maxUncheckpointed commits of at most 5 pages: 5.3 MB; the backstop
	// alone would let it reach 8 MB.
	assert.Less(t, fi.Size(), int64(6<<20), "WAL size after %d commits", 2*signIns)
	t.Logf("WAL %d KiB after %d commits", fi.Size()>>10, 2*signIns)
}
