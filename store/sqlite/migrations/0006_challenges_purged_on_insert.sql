-- Saving a challenge removes expired ones in the same statement: the
-- insert stores the time it was saved at (saved, Unix microseconds), and
-- a trigger deletes up to 64 challenges that had expired by then, the
-- oldest first. A begin was two commits (the purge, then the insert) and
-- is now one. The trigger's WHEN is one seek of the expires index, so
-- that an insert with nothing to purge does not build the DELETE's list.
-- A row inserted with saved NULL (by a version of this package from
-- before this migration) purges nothing; that version purges with a
-- statement of its own.

ALTER TABLE webauthn_challenges ADD COLUMN saved INTEGER;

CREATE TRIGGER webauthn_challenges_purge AFTER INSERT ON webauthn_challenges
WHEN NEW.saved IS NOT NULL
	AND EXISTS (SELECT 1 FROM webauthn_challenges WHERE expires <= NEW.saved AND id <> NEW.id)
BEGIN
	DELETE FROM webauthn_challenges WHERE id IN
		(SELECT id FROM webauthn_challenges WHERE expires <= NEW.saved AND id <> NEW.id ORDER BY expires LIMIT 64);
END;
