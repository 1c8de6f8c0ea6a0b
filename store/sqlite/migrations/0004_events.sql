-- The event log of package mfa: one row per event, appended in the
-- transaction of the change it records. No foreign key to the user: the
-- log outlives the records it tells of.
CREATE TABLE mfa_events (
	id          BLOB PRIMARY KEY,
	at          INTEGER NOT NULL, -- Unix microseconds, UTC
	type        TEXT NOT NULL,
	user_id     BLOB NOT NULL,
	device_id   TEXT NOT NULL,
	factor      TEXT NOT NULL,
	actor_id    BLOB,
	remote_addr TEXT NOT NULL,
	user_agent  TEXT NOT NULL,
	detail      TEXT NOT NULL
) WITHOUT ROWID;

CREATE INDEX mfa_events_user ON mfa_events (user_id, at, id);
CREATE INDEX mfa_events_at ON mfa_events (at, id);
