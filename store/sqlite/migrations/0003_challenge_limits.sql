-- Bounds on outstanding challenges (webauthn.ChallengeLimits): an index
-- for counting one user's, and a row count kept by triggers for the
-- total, so that SaveChallenge checks both without scanning the table.

CREATE INDEX webauthn_challenges_user ON webauthn_challenges (user_id, expires) WHERE user_id IS NOT NULL;

CREATE TABLE webauthn_challenge_count (
	id INTEGER NOT NULL PRIMARY KEY CHECK (id = 0),
	n  INTEGER NOT NULL CHECK (n >= 0) -- rows of webauthn_challenges, expired or not
) STRICT;

INSERT INTO webauthn_challenge_count (id, n) SELECT 0, COUNT(*) FROM webauthn_challenges;

CREATE TRIGGER webauthn_challenges_count_insert AFTER INSERT ON webauthn_challenges
BEGIN
	UPDATE webauthn_challenge_count SET n = n + 1 WHERE id = 0;
END;

CREATE TRIGGER webauthn_challenges_count_delete AFTER DELETE ON webauthn_challenges
BEGIN
	UPDATE webauthn_challenge_count SET n = n - 1 WHERE id = 0;
END;
