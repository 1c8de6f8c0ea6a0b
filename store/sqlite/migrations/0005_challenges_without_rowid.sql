-- Challenges keyed by their ID alone (WITHOUT ROWID): saving or taking
-- one writes a B-tree fewer than a rowid table with a unique index on
-- its ID does, and each begin and finish of a ceremony does one.

CREATE TABLE webauthn_challenges_keyed (
	id        TEXT    NOT NULL PRIMARY KEY,
	challenge BLOB    NOT NULL,
	ceremony  TEXT    NOT NULL,
	user_id   BLOB,
	session   BLOB,
	expires   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

INSERT INTO webauthn_challenges_keyed (id, challenge, ceremony, user_id, session, expires)
	SELECT id, challenge, ceremony, user_id, session, expires FROM webauthn_challenges;

-- Dropping the table drops its indexes and triggers with it.
DROP TABLE webauthn_challenges;
ALTER TABLE webauthn_challenges_keyed RENAME TO webauthn_challenges;

CREATE INDEX webauthn_challenges_expires ON webauthn_challenges (expires);
CREATE INDEX webauthn_challenges_user ON webauthn_challenges (user_id, expires) WHERE user_id IS NOT NULL;

CREATE TRIGGER webauthn_challenges_count_insert AFTER INSERT ON webauthn_challenges
BEGIN
	UPDATE webauthn_challenge_count SET n = n + 1 WHERE id = 0;
END;

CREATE TRIGGER webauthn_challenges_count_delete AFTER DELETE ON webauthn_challenges
BEGIN
	UPDATE webauthn_challenge_count SET n = n - 1 WHERE id = 0;
END;

UPDATE webauthn_challenge_count SET n = (SELECT COUNT(*) FROM webauthn_challenges) WHERE id = 0;
