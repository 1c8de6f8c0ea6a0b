package sqlite

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/webauthn"
)

// TestMigrateChallengesKeyed opens a file at schema version 4 that holds
// challenges: migration 5 rebuilds their table WITHOUT ROWID with every
// challenge, index and count trigger kept.
func TestMigrateChallengesKeyed(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "fidokit.db")
	db := openAtVersion(t, path, 4, "0005_challenges_without_rowid.sql")
	expires := time.Now().Add(time.Hour).UnixMicro()
	for _, id := range []string{"a", "b", "c"} {
		_, err := db.ExecContext(ctx, `INSERT INTO webauthn_challenges (id, challenge, ceremony, user_id, session, expires)
			VALUES (?, x'01', 'login', x'75', x'7b7d', ?)`, id, expires)
		require.NoError(t, err)
	}
	require.NoError(t, db.Close())

	s := open(t, path)
	var ddl string
	require.NoError(t, s.db.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE name = 'webauthn_challenges'`).Scan(&ddl))
	assert.Contains(t, ddl, "WITHOUT ROWID")
	count := func() int {
		var n int
		require.NoError(t, s.db.QueryRowContext(ctx, `SELECT n FROM webauthn_challenge_count WHERE id = 0`).Scan(&n))
		return n
	}
	assert.Equal(t, 3, count(), "the count kept")
	assert.Subset(t, schemaNames(t, s, "webauthn_challenges"), []string{
		"webauthn_challenges_expires", "webauthn_challenges_user",
		"webauthn_challenges_count_insert", "webauthn_challenges_count_delete",
	}, "two indexes and two triggers")

	c, err := s.TakeChallenge(ctx, "b", time.Now())
	require.NoError(t, err)
	assert.Equal(t, []byte("u"), c.UserID)
	assert.Equal(t, webauthn.CeremonyLogin, c.Ceremony)
	assert.Equal(t, 2, count(), "the delete trigger counts")
	limits := webauthn.ChallengeLimits{PerUser: 3, Total: 10}
	require.NoError(t, s.SaveChallenge(ctx, &webauthn.Challenge{ID: "d", Challenge: []byte{1}, Ceremony: webauthn.CeremonyLogin,
		UserID: []byte("u"), Expires: time.Now().Add(time.Hour)}, time.Now(), limits))
	assert.Equal(t, 3, count(), "the insert trigger counts")
	err = s.SaveChallenge(ctx, &webauthn.Challenge{ID: "e", Challenge: []byte{1}, Ceremony: webauthn.CeremonyLogin,
		UserID: []byte("u"), Expires: time.Now().Add(time.Hour)}, time.Now(), limits)
	assert.ErrorIs(t, err, webauthn.ErrTooManyCeremonies, "the user's index counts the migrated challenges")
}

// openAtVersion makes a database file at path with the schema of the
// first version migrations, as a version of this package that knew no
// more would have left it, and returns it open with database/sql alone.
// next is the name of the migration that comes after (checked, so that
// a renumbering does not quietly test something else). The caller
// closes the database before opening the file with [Open].
func openAtVersion(t *testing.T, path string, version int, next string) *sql.DB {
	t.Helper()
	ms, err := loadMigrations()
	require.NoError(t, err)
	require.Greater(t, len(ms), version)
	require.Equal(t, next, ms[version].Name)
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	_, err = db.ExecContext(t.Context(), `CREATE TABLE webauthn_schema_version (
		version INTEGER NOT NULL PRIMARY KEY, applied INTEGER NOT NULL) STRICT`)
	require.NoError(t, err)
	for _, m := range ms[:version] {
		_, err := db.ExecContext(t.Context(), m.SQL)
		require.NoError(t, err, m.Name)
		_, err = db.ExecContext(t.Context(), `INSERT INTO webauthn_schema_version VALUES (?, 0)`, m.Version)
		require.NoError(t, err)
	}
	return db
}

// schemaNames lists the indexes and triggers of table.
func schemaNames(t *testing.T, s *Store, table string) []string {
	t.Helper()
	rows, err := s.db.QueryContext(t.Context(), `SELECT name FROM sqlite_schema
		WHERE tbl_name = ? AND type IN ('index', 'trigger') AND sql IS NOT NULL`, table)
	require.NoError(t, err)
	defer rows.Close()
	var names []string
	for rows.Next() {
		var n string
		require.NoError(t, rows.Scan(&n))
		names = append(names, n)
	}
	require.NoError(t, rows.Err())
	return names
}

// TestMigrateChallengesPurgedOnInsert opens a file at schema version 5
// holding expired and live challenges (saved before the column existed):
// after migration 6 one save removes the expired ones, the oldest first,
// up to a batch, and leaves the live ones and the count right.
func TestMigrateChallengesPurgedOnInsert(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "fidokit.db")
	db := openAtVersion(t, path, 5, "0006_challenges_purged_on_insert.sql")
	now := time.Now()
	insert := func(id string, expires time.Time) {
		_, err := db.ExecContext(ctx, `INSERT INTO webauthn_challenges (id, challenge, ceremony, user_id, session, expires)
			VALUES (?, x'01', 'login', NULL, NULL, ?)`, id, expires.UnixMicro())
		require.NoError(t, err)
	}
	const expired = purgeBatch + 6
	for i := range expired {
		insert(fmt.Sprintf("expired-%03d", i), now.Add(-time.Hour+time.Duration(i)*time.Second))
	}
	insert("live", now.Add(time.Hour))
	require.NoError(t, db.Close())

	s := open(t, path)
	assert.Contains(t, schemaNames(t, s, "webauthn_challenges"), "webauthn_challenges_purge")
	count := func() int {
		var n int
		require.NoError(t, s.db.QueryRowContext(ctx, `SELECT n FROM webauthn_challenge_count WHERE id = 0`).Scan(&n))
		return n
	}
	require.Equal(t, expired+1, count())
	require.NoError(t, s.SaveChallenge(ctx, &webauthn.Challenge{ID: "new", Challenge: []byte{1}, Ceremony: webauthn.CeremonyLogin,
		Expires: now.Add(time.Hour)}, now, webauthn.ChallengeLimits{}))
	assert.Equal(t, expired+2-purgeBatch, count(), "the batch removed, the new one counted")
	for i := range expired {
		_, err := s.TakeChallenge(ctx, fmt.Sprintf("expired-%03d", i), now)
		if i < purgeBatch {
			assert.ErrorIs(t, err, webauthn.ErrNotFound, "expired-%03d, of the oldest, still stored", i)
		} else {
			assert.ErrorIs(t, err, webauthn.ErrExpired, "expired-%03d, beyond the batch, removed", i)
		}
	}
	for _, id := range []string{"live", "new"} {
		_, err := s.TakeChallenge(ctx, id, now)
		assert.NoError(t, err, id)
	}
	assert.Zero(t, count())

	// A challenge saved already expired is kept for TakeChallenge to
	// report as expired, not removed by its own insert.
	require.NoError(t, s.SaveChallenge(ctx, &webauthn.Challenge{ID: "stale", Challenge: []byte{1}, Ceremony: webauthn.CeremonyLogin,
		Expires: now.Add(-time.Second)}, now, webauthn.ChallengeLimits{}))
	_, err := s.TakeChallenge(ctx, "stale", now)
	assert.ErrorIs(t, err, webauthn.ErrExpired)
}
