-- The first schema: users, their credentials and outstanding challenges.
-- Times are Unix microseconds in UTC; NULL means the zero time.

CREATE TABLE webauthn_users (
	id           BLOB    NOT NULL PRIMARY KEY,
	name         TEXT    NOT NULL UNIQUE,
	display_name TEXT    NOT NULL,
	created      INTEGER NOT NULL
) STRICT;

CREATE TABLE webauthn_credentials (
	seq                INTEGER PRIMARY KEY, -- insertion order, the tie-break for equal created
	id                 BLOB    NOT NULL UNIQUE,
	user_id            BLOB    NOT NULL REFERENCES webauthn_users (id),
	name               TEXT    NOT NULL,
	public_key         BLOB    NOT NULL,
	algorithm          INTEGER NOT NULL,
	aaguid             BLOB,
	attestation_format TEXT    NOT NULL,
	attestation_type   TEXT    NOT NULL,
	transports         TEXT    NOT NULL, -- JSON array of strings
	user_verified      INTEGER NOT NULL,
	backup_eligible    INTEGER NOT NULL,
	backup_state       INTEGER NOT NULL,
	sign_count         INTEGER NOT NULL CHECK (sign_count BETWEEN 0 AND 4294967295),
	clone_warning      INTEGER NOT NULL,
	deactivated        INTEGER,
	created            INTEGER NOT NULL,
	last_used          INTEGER
) STRICT;

CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id, created, seq);

CREATE TABLE webauthn_challenges (
	id        TEXT    NOT NULL PRIMARY KEY,
	challenge BLOB    NOT NULL,
	ceremony  TEXT    NOT NULL,
	user_id   BLOB,
	session   BLOB,
	expires   INTEGER NOT NULL
) STRICT;

CREATE INDEX webauthn_challenges_expires ON webauthn_challenges (expires);
