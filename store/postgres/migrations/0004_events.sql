-- The event log of package mfa: one row per event, appended in the
-- transaction of the change it records. No foreign key to the user: the
-- log outlives the records it tells of.
CREATE TABLE mfa_events (
	id          bytea       NOT NULL PRIMARY KEY,
	at          timestamptz NOT NULL,
	type        text        NOT NULL,
	user_id     bytea       NOT NULL,
	device_id   text        NOT NULL,
	factor      text        NOT NULL,
	actor_id    bytea,
	remote_addr text        NOT NULL,
	user_agent  text        NOT NULL,
	detail      text        NOT NULL
);

CREATE INDEX mfa_events_user ON mfa_events (user_id, at, id);
CREATE INDEX mfa_events_at ON mfa_events (at, id);
