-- Bounds on outstanding challenges (webauthn.ChallengeLimits): an index
-- for counting one user's, and row counts kept by triggers for the
-- total, so that SaveChallenge checks both without scanning the table.
-- The total is spread over 16 rows, chosen by the challenge ID's hash,
-- so that concurrent servers seldom wait for each other's count.

CREATE INDEX webauthn_challenges_user ON webauthn_challenges (user_id, expires) WHERE user_id IS NOT NULL;

CREATE TABLE webauthn_challenge_counts (
	shard integer NOT NULL PRIMARY KEY CHECK (shard BETWEEN 0 AND 15),
	n     bigint  NOT NULL -- rows of webauthn_challenges in this shard, expired or not
);

INSERT INTO webauthn_challenge_counts (shard, n)
SELECT s, (SELECT count(*) FROM webauthn_challenges WHERE hashtext(id) & 15 = s)
FROM generate_series(0, 15) AS s;

-- Statement-level triggers with transition tables: a purge of many rows
-- updates each count row once.
CREATE FUNCTION webauthn_challenges_count_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE webauthn_challenge_counts c SET n = c.n + d.n
	FROM (SELECT hashtext(id) & 15 AS shard, count(*) AS n FROM new_rows GROUP BY 1) d
	WHERE c.shard = d.shard;
	RETURN NULL;
END;
$$;

CREATE FUNCTION webauthn_challenges_count_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	UPDATE webauthn_challenge_counts c SET n = c.n - d.n
	FROM (SELECT hashtext(id) & 15 AS shard, count(*) AS n FROM old_rows GROUP BY 1) d
	WHERE c.shard = d.shard;
	RETURN NULL;
END;
$$;

CREATE TRIGGER webauthn_challenges_count_insert AFTER INSERT ON webauthn_challenges
REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION webauthn_challenges_count_insert();

CREATE TRIGGER webauthn_challenges_count_delete AFTER DELETE ON webauthn_challenges
REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION webauthn_challenges_count_delete();
