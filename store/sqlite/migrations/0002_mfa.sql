-- Account MFA (package mfa): TOTP devices, pending TOTP enrollments,
-- recovery codes and attempt counters, beside the users and keys of
-- 0001_init.sql. Times are Unix microseconds in UTC; NULL means the zero
-- time. TOTP secrets are stored only sealed (nonce || ciphertext || tag
-- under the keyring key key_id), recovery codes only as salted hashes.

CREATE TABLE mfa_otp_devices (
	seq         INTEGER PRIMARY KEY, -- insertion order, the tie-break for equal created
	id          BLOB    NOT NULL UNIQUE,
	user_id     BLOB    NOT NULL REFERENCES webauthn_users (id) ON DELETE CASCADE,
	type        TEXT    NOT NULL,
	name        TEXT    NOT NULL,
	serial      TEXT    UNIQUE CHECK (serial <> ''), -- NULL for none (an app)
	key_id      TEXT    NOT NULL,
	sealed      BLOB    NOT NULL,
	hash        TEXT    NOT NULL,
	digits      INTEGER NOT NULL,
	period      INTEGER NOT NULL,
	last_step   INTEGER NOT NULL,
	drift       INTEGER NOT NULL,
	created     INTEGER NOT NULL,
	last_used   INTEGER,
	deactivated INTEGER
) STRICT;

CREATE INDEX mfa_otp_devices_user ON mfa_otp_devices (user_id, created, seq);

CREATE TABLE mfa_otp_enrollments (
	id      BLOB    NOT NULL PRIMARY KEY,
	user_id BLOB    NOT NULL REFERENCES webauthn_users (id) ON DELETE CASCADE,
	type    TEXT    NOT NULL,
	name    TEXT    NOT NULL,
	serial  TEXT    NOT NULL, -- '' for none; unique only once enrolled
	key_id  TEXT    NOT NULL,
	sealed  BLOB    NOT NULL,
	hash    TEXT    NOT NULL,
	digits  INTEGER NOT NULL,
	period  INTEGER NOT NULL,
	expires INTEGER NOT NULL
) STRICT;

CREATE INDEX mfa_otp_enrollments_user ON mfa_otp_enrollments (user_id);
CREATE INDEX mfa_otp_enrollments_expires ON mfa_otp_enrollments (expires);

-- One set of recovery codes per user; a new set replaces the old one.
CREATE TABLE mfa_recovery_sets (
	user_id BLOB    NOT NULL PRIMARY KEY REFERENCES webauthn_users (id) ON DELETE CASCADE,
	id      BLOB    NOT NULL,
	salt    BLOB    NOT NULL,
	created INTEGER NOT NULL
) STRICT;

-- The codes of a set, by their index in it. set_id repeats the set's ID
-- so that marking a code used is one compare-and-set on one row.
CREATE TABLE mfa_recovery_codes (
	user_id BLOB    NOT NULL REFERENCES mfa_recovery_sets (user_id) ON DELETE CASCADE,
	set_id  BLOB    NOT NULL,
	idx     INTEGER NOT NULL CHECK (idx >= 0),
	hash    BLOB    NOT NULL,
	used    INTEGER,
	PRIMARY KEY (user_id, idx)
) STRICT;

CREATE TABLE mfa_attempts (
	user_id      BLOB    NOT NULL REFERENCES webauthn_users (id) ON DELETE CASCADE,
	factor       TEXT    NOT NULL,
	failures     INTEGER NOT NULL,
	locked_until INTEGER,
	PRIMARY KEY (user_id, factor)
) STRICT;
