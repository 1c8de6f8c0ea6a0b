-- The first schema: users, their credentials and outstanding challenges.
-- NULL times mean the zero time.

CREATE TABLE webauthn_users (
	id           bytea       NOT NULL PRIMARY KEY,
	name         text        NOT NULL UNIQUE,
	display_name text        NOT NULL,
	created      timestamptz NOT NULL
);

CREATE TABLE webauthn_credentials (
	id                 bytea       NOT NULL PRIMARY KEY,
	seq                bigint      GENERATED ALWAYS AS IDENTITY, -- insertion order, the tie-break for equal created
	user_id            bytea       NOT NULL REFERENCES webauthn_users (id),
	name               text        NOT NULL,
	public_key         bytea       NOT NULL,
	algorithm          bigint      NOT NULL,
	aaguid             bytea,
	attestation_format text        NOT NULL,
	attestation_type   text        NOT NULL,
	transports         text[]      NOT NULL,
	user_verified      boolean     NOT NULL,
	backup_eligible    boolean     NOT NULL,
	backup_state       boolean     NOT NULL,
	sign_count         bigint      NOT NULL CHECK (sign_count BETWEEN 0 AND 4294967295),
	clone_warning      boolean     NOT NULL,
	deactivated        timestamptz,
	created            timestamptz NOT NULL,
	last_used          timestamptz
);

CREATE INDEX webauthn_credentials_user ON webauthn_credentials (user_id, created, seq);

CREATE TABLE webauthn_challenges (
	id        text        NOT NULL PRIMARY KEY,
	challenge bytea       NOT NULL,
	ceremony  text        NOT NULL,
	user_id   bytea,
	session   bytea,
	expires   timestamptz NOT NULL
);

CREATE INDEX webauthn_challenges_expires ON webauthn_challenges (expires);
