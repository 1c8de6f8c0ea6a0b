package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/webauthn"
)

// This file holds the [mfa.Store] methods: TOTP devices and their pending
// enrollments, recovery codes and attempt counters (migration
// 0002_mfa.sql). Secrets arrive sealed and are stored as given.

// nullText passes an empty string as NULL.
func nullText(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// lockUser locks userID's row until the transaction ends, so that
// changes to one user's devices, from any server, happen one at a time.
// ErrNotFound if there is no such user.
func lockUser(ctx context.Context, tx pgx.Tx, userID []byte) error {
	var one int
	err := tx.QueryRow(ctx, `SELECT 1 FROM webauthn_users WHERE id = $1 FOR UPDATE`, bytea(userID)).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("user: %w", webauthn.ErrNotFound)
	}
	return err
}

// countDevices returns how many devices of every type userID holds:
// security keys and TOTP devices, active or not. Pending enrollments do
// not count. Call it after lockUser: under READ COMMITTED a new statement
// sees every insert committed before the lock was granted.
func countDevices(ctx context.Context, tx pgx.Tx, userID []byte) (int, error) {
	var n int
	err := tx.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM webauthn_credentials WHERE user_id = $1) +
		(SELECT count(*) FROM mfa_otp_devices WHERE user_id = $1)`, bytea(userID)).Scan(&n)
	return n, err
}

// ---- TOTP enrollments ----

const otpEnrollmentColumns = `id, user_id, type, name, serial, key_id, sealed,
	hash, digits, period, expires`

// SaveOTPEnrollment implements [mfa.Store.SaveOTPEnrollment] as one
// INSERT. An ID already held by an enrolled device is taken too, since
// the device keeps its enrollment's ID.
func (s *Store) SaveOTPEnrollment(ctx context.Context, e *mfa.OTPEnrollment) error {
	tag, err := s.pool.Exec(ctx, `INSERT INTO mfa_otp_enrollments (`+otpEnrollmentColumns+`)
		SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11
		WHERE NOT EXISTS (SELECT 1 FROM mfa_otp_devices WHERE id = $1)`,
		bytea(e.ID), bytea(e.UserID), string(e.Type), e.Name, e.Serial, e.Secret.KeyID, bytea(e.Secret.Box),
		e.Hash, e.Digits, e.Period, ts(e.Expires))
	switch {
	case sqlState(err) == uniqueViolation || (err == nil && tag.RowsAffected() == 0):
		return fmt.Errorf("postgres: saving otp enrollment: %w", webauthn.ErrExists)
	case sqlState(err) == foreignKeyViolation:
		return fmt.Errorf("postgres: saving otp enrollment: user: %w", webauthn.ErrNotFound)
	case err != nil:
		return fmt.Errorf("postgres: saving otp enrollment: %w", err)
	}
	return nil
}

// OTPEnrollment implements [mfa.Store.OTPEnrollment].
func (s *Store) OTPEnrollment(ctx context.Context, userID, id []byte) (*mfa.OTPEnrollment, error) {
	var (
		e   mfa.OTPEnrollment
		typ string
	)
	err := s.pool.QueryRow(ctx, `SELECT `+otpEnrollmentColumns+` FROM mfa_otp_enrollments
		WHERE id = $1 AND user_id = $2`, bytea(id), bytea(userID)).
		Scan(&e.ID, &e.UserID, &typ, &e.Name, &e.Serial, &e.Secret.KeyID, &e.Secret.Box,
			&e.Hash, &e.Digits, &e.Period, &e.Expires)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("postgres: reading otp enrollment: %w", webauthn.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("postgres: reading otp enrollment: %w", err)
	}
	e.ID, e.UserID, e.Secret.Box = readBytes(e.ID), readBytes(e.UserID), readBytes(e.Secret.Box)
	e.Type = mfa.DeviceType(typ)
	e.Expires = fromTS(e.Expires)
	return &e, nil
}

// CompleteOTPEnrollment implements [mfa.Store.CompleteOTPEnrollment] in
// one transaction that first locks the user's row, as AddCredential
// does, so the device limit holds across servers; the DELETE of the
// enrollment then decides which of concurrent calls wins.
func (s *Store) CompleteOTPEnrollment(ctx context.Context, d *mfa.OTPDevice, limit int) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, d.UserID); err != nil {
			if errors.Is(err, webauthn.ErrNotFound) {
				return fmt.Errorf("enrollment: %w", webauthn.ErrNotFound)
			}
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM mfa_otp_enrollments WHERE id = $1 AND user_id = $2`,
			bytea(d.ID), bytea(d.UserID))
		switch {
		case err != nil:
			return err
		case tag.RowsAffected() == 0:
			return fmt.Errorf("enrollment: %w", webauthn.ErrNotFound)
		}
		if limit > 0 {
			n, err := countDevices(ctx, tx, d.UserID)
			switch {
			case err != nil:
				return err
			case n >= limit:
				return fmt.Errorf("%d of %d: %w", n, limit, webauthn.ErrLimit)
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO mfa_otp_devices (`+otpDeviceColumns+`)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
			bytea(d.ID), bytea(d.UserID), string(d.Type), d.Name, nullText(d.Serial), d.Secret.KeyID, bytea(d.Secret.Box),
			d.Hash, d.Digits, d.Period, d.LastStep, d.Drift, ts(d.Created), nullTS(d.LastUsed), nullTS(d.Deactivated))
		if err != nil {
			return err
		}
		return insertEvents(ctx, tx, mfa.StoreEvents(ctx, mfa.OpCompleteOTPEnrollment))
	})
	switch {
	case sqlState(err) == uniqueViolation:
		return fmt.Errorf("postgres: completing otp enrollment: %w", webauthn.ErrExists)
	case err != nil:
		return fmt.Errorf("postgres: completing otp enrollment: %w", err)
	}
	return nil
}

// PurgeOTPEnrollments implements [mfa.Store.PurgeOTPEnrollments].
func (s *Store) PurgeOTPEnrollments(ctx context.Context, now time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM mfa_otp_enrollments WHERE expires <= $1`, ts(now))
	if err != nil {
		return 0, fmt.Errorf("postgres: purging otp enrollments: %w", err)
	}
	return int(tag.RowsAffected()), nil
}

// ---- TOTP devices ----

const otpDeviceColumns = `id, user_id, type, name, serial, key_id, sealed, hash,
	digits, period, last_step, drift, created, last_used, deactivated`

func scanOTPDevice(row pgx.Row) (*mfa.OTPDevice, error) {
	var (
		d                     mfa.OTPDevice
		typ                   string
		serial                *string
		lastUsed, deactivated *time.Time
	)
	err := row.Scan(&d.ID, &d.UserID, &typ, &d.Name, &serial, &d.Secret.KeyID, &d.Secret.Box, &d.Hash,
		&d.Digits, &d.Period, &d.LastStep, &d.Drift, &d.Created, &lastUsed, &deactivated)
	if err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, webauthn.ErrNotFound
		}
		return nil, err
	}
	d.ID, d.UserID, d.Secret.Box = readBytes(d.ID), readBytes(d.UserID), readBytes(d.Secret.Box)
	d.Type = mfa.DeviceType(typ)
	if serial != nil {
		d.Serial = *serial
	}
	d.Created = fromTS(d.Created)
	d.LastUsed = fromNullTS(lastUsed)
	d.Deactivated = fromNullTS(deactivated)
	return &d, nil
}

// OTPDevice implements [mfa.Store.OTPDevice].
func (s *Store) OTPDevice(ctx context.Context, id []byte) (*mfa.OTPDevice, error) {
	d, err := scanOTPDevice(s.pool.QueryRow(ctx,
		`SELECT `+otpDeviceColumns+` FROM mfa_otp_devices WHERE id = $1`, bytea(id)))
	if err != nil {
		return nil, fmt.Errorf("postgres: reading otp device: %w", err)
	}
	return d, nil
}

// listOTPDevices runs a query for devices and collects them.
func (s *Store) listOTPDevices(ctx context.Context, query string, args ...any) ([]*mfa.OTPDevice, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*mfa.OTPDevice{}
	for rows.Next() {
		d, err := scanOTPDevice(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// OTPDevices implements [mfa.Store.OTPDevices]. Devices enrolled at the
// same time are listed in the order they were added.
func (s *Store) OTPDevices(ctx context.Context, userID []byte) ([]*mfa.OTPDevice, error) {
	out, err := s.listOTPDevices(ctx, `SELECT `+otpDeviceColumns+` FROM mfa_otp_devices
		WHERE user_id = $1 ORDER BY created, seq`, bytea(userID))
	if err != nil {
		return nil, fmt.Errorf("postgres: listing otp devices: %w", err)
	}
	return out, nil
}

// ListOTPDevices implements [mfa.Store.ListOTPDevices]; bytea compares
// bytewise. A limit <= 0 means no limit.
func (s *Store) ListOTPDevices(ctx context.Context, after []byte, limit int) ([]*mfa.OTPDevice, error) {
	var max *int64 // NULL: LIMIT ALL
	if limit > 0 {
		l := int64(limit)
		max = &l
	}
	out, err := s.listOTPDevices(ctx, `SELECT `+otpDeviceColumns+` FROM mfa_otp_devices
		WHERE id > $1 ORDER BY id LIMIT $2`, bytea(after), max)
	if err != nil {
		return nil, fmt.Errorf("postgres: listing otp devices: %w", err)
	}
	return out, nil
}

// RenameOTPDevice implements [mfa.Store.RenameOTPDevice].
func (s *Store) RenameOTPDevice(ctx context.Context, userID, id []byte, name string) error {
	return s.updateOwned(ctx, mfa.OpRenameOTPDevice, "renaming otp device",
		`UPDATE mfa_otp_devices SET name = $1 WHERE id = $2 AND user_id = $3`,
		name, bytea(id), bytea(userID))
}

// DeactivateOTPDevice implements [mfa.Store.DeactivateOTPDevice].
func (s *Store) DeactivateOTPDevice(ctx context.Context, userID, id []byte, at time.Time) error {
	return s.updateOwned(ctx, mfa.OpDeactivateOTPDevice, "deactivating otp device",
		`UPDATE mfa_otp_devices SET deactivated = $1 WHERE id = $2 AND user_id = $3`,
		nullTS(at), bytea(id), bytea(userID))
}

// DeleteOTPDevice implements [mfa.Store.DeleteOTPDevice].
func (s *Store) DeleteOTPDevice(ctx context.Context, userID, id []byte) error {
	return s.updateOwned(ctx, mfa.OpDeleteOTPDevice, "deleting otp device",
		`DELETE FROM mfa_otp_devices WHERE id = $1 AND user_id = $2`,
		bytea(id), bytea(userID))
}

// AdvanceOTPStep implements [mfa.Store.AdvanceOTPStep] as one
// compare-and-set UPDATE: of concurrent calls for one step, on any
// server, the row lock lets one through and the others re-check
// last_step and change nothing. When it changes no row, a second read
// tells why.
func (s *Store) AdvanceOTPStep(ctx context.Context, userID, id []byte, step int64, at time.Time) error {
	err := s.change(ctx, mfa.StoreEvents(ctx, mfa.OpAdvanceOTPStep), func(q querier) error {
		tag, err := q.Exec(ctx, `UPDATE mfa_otp_devices SET last_step = $1, last_used = $2
			WHERE id = $3 AND user_id = $4 AND deactivated IS NULL AND last_step < $1`,
			step, nullTS(at), bytea(id), bytea(userID))
		if err != nil || tag.RowsAffected() == 1 {
			return err
		}
		return stepError(ctx, q, userID, id, step)
	})
	if err != nil {
		return fmt.Errorf("postgres: advancing otp step: %w", err)
	}
	return nil
}

// ResyncOTPDevice implements [mfa.Store.ResyncOTPDevice] like
// AdvanceOTPStep.
func (s *Store) ResyncOTPDevice(ctx context.Context, userID, id []byte, drift int, step int64) error {
	err := s.change(ctx, mfa.StoreEvents(ctx, mfa.OpResyncOTPDevice), func(q querier) error {
		tag, err := q.Exec(ctx, `UPDATE mfa_otp_devices SET drift = $1, last_step = $2
			WHERE id = $3 AND user_id = $4 AND deactivated IS NULL AND last_step < $2`,
			drift, step, bytea(id), bytea(userID))
		if err != nil || tag.RowsAffected() == 1 {
			return err
		}
		return stepError(ctx, q, userID, id, step)
	})
	if err != nil {
		return fmt.Errorf("postgres: resyncing otp device: %w", err)
	}
	return nil
}

// stepError reads why a step compare-and-set changed no row. It is a new
// statement, so it sees whatever made the UPDATE skip the row.
func stepError(ctx context.Context, q querier, userID, id []byte, step int64) error {
	var (
		last        int64
		deactivated bool
	)
	err := q.QueryRow(ctx, `SELECT last_step, deactivated IS NOT NULL FROM mfa_otp_devices
		WHERE id = $1 AND user_id = $2`, bytea(id), bytea(userID)).Scan(&last, &deactivated)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return webauthn.ErrNotFound
	case err != nil:
		return err
	case deactivated:
		return webauthn.ErrInactive
	case last >= step:
		return fmt.Errorf("step %d, last %d: %w", step, last, mfa.ErrReplay)
	}
	// Active with an older step now: it was deactivated when the UPDATE
	// ran and has been reactivated since.
	return webauthn.ErrInactive
}

// ResealOTPDevice implements [mfa.Store.ResealOTPDevice] as one
// compare-and-set UPDATE on the key ID.
func (s *Store) ResealOTPDevice(ctx context.Context, id []byte, oldKeyID string, sealed mfa.Sealed) error {
	var updated, exists bool
	err := s.pool.QueryRow(ctx, `WITH cas AS (
			UPDATE mfa_otp_devices SET key_id = $3, sealed = $4
			WHERE id = $1 AND key_id = $2
			RETURNING 1
		)
		SELECT EXISTS (SELECT 1 FROM cas), EXISTS (SELECT 1 FROM mfa_otp_devices WHERE id = $1)`,
		bytea(id), oldKeyID, sealed.KeyID, bytea(sealed.Box)).Scan(&updated, &exists)
	switch {
	case err != nil:
		return fmt.Errorf("postgres: resealing otp device: %w", err)
	case updated:
		return nil
	case !exists:
		return fmt.Errorf("postgres: resealing otp device: %w", webauthn.ErrNotFound)
	}
	return fmt.Errorf("postgres: resealing otp device: not sealed under %q: %w", oldKeyID, webauthn.ErrConflict)
}

// ---- recovery codes ----

// ReplaceRecoveryCodes implements [mfa.Store.ReplaceRecoveryCodes] in one
// transaction that first locks the user's row, so concurrent
// replacements for one user follow each other: the old set goes (its
// codes with it, ON DELETE CASCADE), the new one comes.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, r *mfa.RecoveryCodes) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := lockUser(ctx, tx, r.UserID); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM mfa_recovery_sets WHERE user_id = $1`, bytea(r.UserID)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO mfa_recovery_sets (user_id, id, salt, created) VALUES ($1, $2, $3, $4)`,
			bytea(r.UserID), bytea(r.ID), bytea(r.Salt), ts(r.Created)); err != nil {
			return err
		}
		if len(r.Hashes) == 0 {
			return insertEvents(ctx, tx, mfa.StoreEvents(ctx, mfa.OpReplaceRecoveryCodes))
		}
		hashes := make([][]byte, len(r.Hashes))
		for i, h := range r.Hashes {
			hashes[i] = bytea(h)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO mfa_recovery_codes (user_id, set_id, idx, hash)
			SELECT $1, $2, h.ord - 1, h.hash FROM unnest($3::bytea[]) WITH ORDINALITY AS h (hash, ord)`,
			bytea(r.UserID), bytea(r.ID), hashes); err != nil {
			return err
		}
		return insertEvents(ctx, tx, mfa.StoreEvents(ctx, mfa.OpReplaceRecoveryCodes))
	})
	switch {
	case sqlState(err) == foreignKeyViolation:
		return fmt.Errorf("postgres: replacing recovery codes: user: %w", webauthn.ErrNotFound)
	case err != nil:
		return fmt.Errorf("postgres: replacing recovery codes: %w", err)
	}
	return nil
}

// RecoveryCodes implements [mfa.Store.RecoveryCodes] with one query, so
// the set and its codes are read from one snapshot.
func (s *Store) RecoveryCodes(ctx context.Context, userID []byte) (*mfa.RecoveryCodes, error) {
	rows, err := s.pool.Query(ctx, `SELECT s.user_id, s.id, s.salt, s.created, c.idx, c.hash, c.used
		FROM mfa_recovery_sets s
		LEFT JOIN mfa_recovery_codes c ON c.user_id = s.user_id AND c.set_id = s.id
		WHERE s.user_id = $1 ORDER BY c.idx`, bytea(userID))
	if err != nil {
		return nil, fmt.Errorf("postgres: reading recovery codes: %w", err)
	}
	defer rows.Close()
	var r *mfa.RecoveryCodes
	for rows.Next() {
		var (
			user, id, salt, hash []byte
			created              time.Time
			idx                  *int32
			used                 *time.Time
		)
		if err := rows.Scan(&user, &id, &salt, &created, &idx, &hash, &used); err != nil {
			return nil, fmt.Errorf("postgres: reading recovery codes: %w", err)
		}
		if r == nil {
			r = &mfa.RecoveryCodes{UserID: readBytes(user), ID: readBytes(id), Salt: readBytes(salt), Created: fromTS(created)}
		}
		if idx != nil {
			r.Hashes = append(r.Hashes, readBytes(hash))
			r.Used = append(r.Used, fromNullTS(used))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: reading recovery codes: %w", err)
	}
	if r == nil {
		return nil, fmt.Errorf("postgres: reading recovery codes: %w", webauthn.ErrNotFound)
	}
	return r, nil
}

// UseRecoveryCode implements [mfa.Store.UseRecoveryCode]: a
// compare-and-set UPDATE on the code's row (of concurrent calls for one
// code, on any server, the row lock lets one through and the others see
// it used), and the count of what is left, in one transaction. The set's
// row is locked first so that uses of different codes of one account
// take turns and each counts the others' (the count goes into the
// recovery_code_used event and to the person).
func (s *Store) UseRecoveryCode(ctx context.Context, userID, setID []byte, index int, at time.Time) (int, error) {
	var left int
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM mfa_recovery_sets WHERE user_id = $1 FOR UPDATE`, bytea(userID)); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE mfa_recovery_codes SET used = $1
			WHERE user_id = $2 AND set_id = $3 AND idx = $4 AND used IS NULL`,
			ts(at), bytea(userID), bytea(setID), index)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var used bool
			err := tx.QueryRow(ctx, `SELECT used IS NOT NULL FROM mfa_recovery_codes
				WHERE user_id = $1 AND set_id = $2 AND idx = $3`, bytea(userID), bytea(setID), index).Scan(&used)
			switch {
			case errors.Is(err, pgx.ErrNoRows):
				return fmt.Errorf("code %d of this set: %w", index, webauthn.ErrNotFound)
			case err != nil:
				return err
			}
			return fmt.Errorf("code %d: %w", index, mfa.ErrReplay)
		}
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM mfa_recovery_codes
			WHERE user_id = $1 AND set_id = $2 AND used IS NULL`, bytea(userID), bytea(setID)).Scan(&left); err != nil {
			return err
		}
		return insertEvents(ctx, tx, mfa.RecoveryCodeEvents(ctx, left))
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: using recovery code: %w", err)
	}
	return left, nil
}

// DeleteRecoveryCodes implements [mfa.Store.DeleteRecoveryCodes]; the
// codes go with the set (ON DELETE CASCADE).
func (s *Store) DeleteRecoveryCodes(ctx context.Context, userID []byte) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM mfa_recovery_sets WHERE user_id = $1`, bytea(userID))
	switch {
	case err != nil:
		return fmt.Errorf("postgres: deleting recovery codes: %w", err)
	case tag.RowsAffected() == 0:
		return fmt.Errorf("postgres: deleting recovery codes: %w", webauthn.ErrNotFound)
	}
	return nil
}

// ---- attempt counters ----

// Attempts implements [mfa.Store.Attempts].
func (s *Store) Attempts(ctx context.Context, userID []byte, f mfa.Factor) (mfa.Attempts, error) {
	var (
		a      mfa.Attempts
		locked *time.Time
	)
	err := s.pool.QueryRow(ctx, `SELECT failures, locked_until FROM mfa_attempts
		WHERE user_id = $1 AND factor = $2`, bytea(userID), string(f)).Scan(&a.Failures, &locked)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return mfa.Attempts{}, nil
	case err != nil:
		return mfa.Attempts{}, fmt.Errorf("postgres: reading attempts: %w", err)
	}
	a.LockedUntil = fromNullTS(locked)
	return a, nil
}

// RecordFailure implements [mfa.Store.RecordFailure]: an upsert that adds
// one to the count (and keeps the row locked), then the lock it earns, in
// one transaction.
func (s *Store) RecordFailure(ctx context.Context, userID []byte, f mfa.Factor, now time.Time, p mfa.LockPolicy) (mfa.Attempts, error) {
	var a mfa.Attempts
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		var locked *time.Time
		err := tx.QueryRow(ctx, `INSERT INTO mfa_attempts (user_id, factor, failures) VALUES ($1, $2, 1)
			ON CONFLICT (user_id, factor) DO UPDATE SET failures = mfa_attempts.failures + 1
			RETURNING failures, locked_until`, bytea(userID), string(f)).Scan(&a.Failures, &locked)
		if err != nil {
			return err
		}
		a.LockedUntil = fromNullTS(locked)
		evs := mfa.StoreEvents(ctx, mfa.OpRecordFailure)
		if until := p.Until(a.Failures, now); !until.IsZero() {
			a.LockedUntil = ts(until)
			if _, err = tx.Exec(ctx, `UPDATE mfa_attempts SET locked_until = $1 WHERE user_id = $2 AND factor = $3`,
				a.LockedUntil, bytea(userID), string(f)); err != nil {
				return err
			}
			evs = append(evs, mfa.LockEvents(ctx, a.LockedUntil)...)
		}
		return insertEvents(ctx, tx, evs)
	})
	switch {
	case sqlState(err) == foreignKeyViolation:
		return mfa.Attempts{}, fmt.Errorf("postgres: recording failure: user: %w", webauthn.ErrNotFound)
	case err != nil:
		return mfa.Attempts{}, fmt.Errorf("postgres: recording failure: %w", err)
	}
	return a, nil
}

// ResetAttempts implements [mfa.Store.ResetAttempts].
func (s *Store) ResetAttempts(ctx context.Context, userID []byte, f mfa.Factor) error {
	err := s.change(ctx, mfa.StoreEvents(ctx, mfa.OpResetAttempts), func(q querier) error {
		_, err := q.Exec(ctx, `DELETE FROM mfa_attempts WHERE user_id = $1 AND factor = $2`,
			bytea(userID), string(f))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: resetting attempts: %w", err)
	}
	return nil
}

// ---- the account listing ----

// Users implements [mfa.Store.Users] with one range scan of the users'
// primary key; bytea compares bytewise. A limit <= 0 means no limit.
func (s *Store) Users(ctx context.Context, after []byte, limit int) ([]*webauthn.User, error) {
	var max *int64 // NULL: LIMIT ALL
	if limit > 0 {
		l := int64(limit)
		max = &l
	}
	rows, err := s.pool.Query(ctx, `SELECT `+userColumns+` FROM webauthn_users
		WHERE id > $1 ORDER BY id LIMIT $2`, bytea(after), max)
	if err != nil {
		return nil, fmt.Errorf("postgres: listing users: %w", err)
	}
	defer rows.Close()
	out := []*webauthn.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: listing users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: listing users: %w", err)
	}
	return out, nil
}
