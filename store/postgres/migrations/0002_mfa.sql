-- Account MFA (package mfa): TOTP devices, pending TOTP enrollments,
-- recovery codes and attempt counters, beside the users and keys of
-- 0001_init.sql. NULL times mean the zero time. TOTP secrets are stored
-- only sealed (nonce || ciphertext || tag under the keyring key key_id),
-- recovery codes only as salted hashes.

CREATE TABLE mfa_otp_devices (
	id          bytea       NOT NULL PRIMARY KEY,
	seq         bigint      GENERATED ALWAYS AS IDENTITY, -- insertion order, the tie-break for equal created
	user_id     bytea       NOT NULL REFERENCES webauthn_users (id) ON DELETE CASCADE,
	type        text        NOT NULL,
	name        text        NOT NULL,
	serial      text        UNIQUE CHECK (serial <> ''), -- NULL for none (an app)
	key_id      text        NOT NULL,
	sealed      bytea       NOT NULL,
	hash        text        NOT NULL,
	digits      integer     NOT NULL,
	period      integer     NOT NULL,
	last_step   bigint      NOT NULL,
	drift       integer     NOT NULL,
	created     timestamptz NOT NULL,
	last_used   timestamptz,
	deactivated timestamptz
);

CREATE INDEX mfa_otp_devices_user ON mfa_otp_devices (user_id, created, seq);

CREATE TABLE mfa_otp_enrollments (
	id      bytea       NOT NULL PRIMARY KEY,
	user_id bytea       NOT NULL REFERENCES webauthn_users (id) ON DELETE CASCADE,
	type    text        NOT NULL,
	name    text        NOT NULL,
	serial  text        NOT NULL, -- '' for none; unique only once enrolled
	key_id  text        NOT NULL,
	sealed  bytea       NOT NULL,
	hash    text        NOT NULL,
	digits  integer     NOT NULL,
	period  integer     NOT NULL,
	expires timestamptz NOT NULL
);

CREATE INDEX mfa_otp_enrollments_user ON mfa_otp_enrollments (user_id);
CREATE INDEX mfa_otp_enrollments_expires ON mfa_otp_enrollments (expires);

-- One set of recovery codes per user; a new set replaces the old one.
CREATE TABLE mfa_recovery_sets (
	user_id bytea       NOT NULL PRIMARY KEY REFERENCES webauthn_users (id) ON DELETE CASCADE,
	id      bytea       NOT NULL,
	salt    bytea       NOT NULL,
	created timestamptz NOT NULL
);

-- The codes of a set, by their index in it. set_id repeats the set's ID
-- so that marking a code used is one compare-and-set on one row.
CREATE TABLE mfa_recovery_codes (
	user_id bytea       NOT NULL REFERENCES mfa_recovery_sets (user_id) ON DELETE CASCADE,
	set_id  bytea       NOT NULL,
	idx     integer     NOT NULL CHECK (idx >= 0),
	hash    bytea       NOT NULL,
	used    timestamptz,
	PRIMARY KEY (user_id, idx)
);

CREATE TABLE mfa_attempts (
	user_id      bytea       NOT NULL REFERENCES webauthn_users (id) ON DELETE CASCADE,
	factor       text        NOT NULL,
	failures     integer     NOT NULL,
	locked_until timestamptz,
	PRIMARY KEY (user_id, factor)
);
