package sqlite

import (
	"database/sql"
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
	ms, err := loadMigrations()
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(ms), 5)
	require.Equal(t, "0005_challenges_without_rowid.sql", ms[4].Name)

	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	_, err = db.ExecContext(ctx, `CREATE TABLE webauthn_schema_version (
		version INTEGER NOT NULL PRIMARY KEY, applied INTEGER NOT NULL) STRICT`)
	require.NoError(t, err)
	for _, m := range ms[:4] {
		_, err := db.ExecContext(ctx, m.SQL)
		require.NoError(t, err, m.Name)
		_, err = db.ExecContext(ctx, `INSERT INTO webauthn_schema_version VALUES (?, 0)`, m.Version)
		require.NoError(t, err)
	}
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
	var indexes int
	require.NoError(t, s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema
		WHERE tbl_name = 'webauthn_challenges' AND type IN ('index', 'trigger') AND sql IS NOT NULL`).Scan(&indexes))
	assert.Equal(t, 4, indexes, "two indexes and two triggers")

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
