package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/webauthn"
)

// This file holds the [mfa.Store] methods: TOTP devices and their pending
// enrollments, recovery codes and attempt counters (migration
// 0002_mfa.sql). Secrets arrive sealed and are stored as given.

// nullText stores an empty string as NULL.
func nullText(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}

// countDevicesTx returns how many devices of every type userID holds:
// security keys and TOTP devices, active or not. Pending enrollments do
// not count.
func countDevicesTx(ctx context.Context, tx querier, userID []byte) (int, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM webauthn_credentials WHERE user_id = ?1) +
		(SELECT COUNT(*) FROM mfa_otp_devices WHERE user_id = ?1)`, blob(userID)).Scan(&n)
	return n, err
}

// ---- TOTP enrollments ----

const otpEnrollmentColumns = `id, user_id, type, name, serial, key_id, sealed,
	hash, digits, period, expires`

// SaveOTPEnrollment implements [mfa.Store.SaveOTPEnrollment]. An ID
// already held by an enrolled device is taken too, since the device
// keeps its enrollment's ID.
func (s *Store) SaveOTPEnrollment(ctx context.Context, e *mfa.OTPEnrollment) error {
	var n int64
	err := s.write(ctx, func(q querier) (err error) {
		n, err = affected(q.ExecContext(ctx, `INSERT INTO mfa_otp_enrollments (`+otpEnrollmentColumns+`)
			SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11
			WHERE NOT EXISTS (SELECT 1 FROM mfa_otp_devices WHERE id = ?1)`,
			blob(e.ID), blob(e.UserID), string(e.Type), e.Name, e.Serial, e.Secret.KeyID, blob(e.Secret.Box),
			e.Hash, e.Digits, e.Period, micros(e.Expires)))
		return err
	})
	switch {
	case isUnique(err) || (err == nil && n == 0):
		return fmt.Errorf("sqlite: saving otp enrollment: %w", webauthn.ErrExists)
	case isForeignKey(err):
		return fmt.Errorf("sqlite: saving otp enrollment: user: %w", webauthn.ErrNotFound)
	case err != nil:
		return fmt.Errorf("sqlite: saving otp enrollment: %w", err)
	}
	return nil
}

// OTPEnrollment implements [mfa.Store.OTPEnrollment].
func (s *Store) OTPEnrollment(ctx context.Context, userID, id []byte) (*mfa.OTPEnrollment, error) {
	var (
		e       mfa.OTPEnrollment
		typ     string
		expires int64
	)
	err := s.r.QueryRowContext(ctx, `SELECT `+otpEnrollmentColumns+` FROM mfa_otp_enrollments
		WHERE id = ? AND user_id = ?`, blob(id), blob(userID)).
		Scan(&e.ID, &e.UserID, &typ, &e.Name, &e.Serial, &e.Secret.KeyID, &e.Secret.Box,
			&e.Hash, &e.Digits, &e.Period, &expires)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("sqlite: reading otp enrollment: %w", webauthn.ErrNotFound)
	case err != nil:
		return nil, fmt.Errorf("sqlite: reading otp enrollment: %w", err)
	}
	e.ID, e.UserID, e.Secret.Box = readBlob(e.ID), readBlob(e.UserID), readBlob(e.Secret.Box)
	e.Type = mfa.DeviceType(typ)
	e.Expires = fromMicros(expires)
	return &e, nil
}

// CompleteOTPEnrollment implements [mfa.Store.CompleteOTPEnrollment]:
// the delete of the enrollment, the limit check and the insert of the
// device run in one IMMEDIATE transaction, which holds the database's
// write lock throughout.
func (s *Store) CompleteOTPEnrollment(ctx context.Context, d *mfa.OTPDevice, limit int) error {
	if err := s.completeOTPEnrollment(ctx, d, limit); err != nil {
		return fmt.Errorf("sqlite: completing otp enrollment: %w", err)
	}
	return nil
}

func (s *Store) completeOTPEnrollment(ctx context.Context, d *mfa.OTPDevice, limit int) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	n, err := affected(tx.ExecContext(ctx,
		`DELETE FROM mfa_otp_enrollments WHERE id = ? AND user_id = ?`, blob(d.ID), blob(d.UserID)))
	switch {
	case err != nil:
		return err
	case n == 0:
		return fmt.Errorf("enrollment: %w", webauthn.ErrNotFound)
	}
	if limit > 0 {
		n, err := countDevicesTx(ctx, tx, d.UserID)
		switch {
		case err != nil:
			return err
		case n >= limit:
			return fmt.Errorf("%d of %d: %w", n, limit, webauthn.ErrLimit)
		}
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO mfa_otp_devices (`+otpDeviceColumns+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		blob(d.ID), blob(d.UserID), string(d.Type), d.Name, nullText(d.Serial), d.Secret.KeyID, blob(d.Secret.Box),
		d.Hash, d.Digits, d.Period, d.LastStep, d.Drift, micros(d.Created), nullMicros(d.LastUsed), nullMicros(d.Deactivated))
	switch {
	case isUnique(err):
		return webauthn.ErrExists
	case err != nil:
		return err
	}
	if err := insertEvents(ctx, tx, mfa.StoreEvents(ctx, mfa.OpCompleteOTPEnrollment)); err != nil {
		return err
	}
	return tx.Commit()
}

// PurgeOTPEnrollments implements [mfa.Store.PurgeOTPEnrollments].
func (s *Store) PurgeOTPEnrollments(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(q querier) (err error) {
		n, err = affected(q.ExecContext(ctx, `DELETE FROM mfa_otp_enrollments WHERE expires <= ?`, micros(now)))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: purging otp enrollments: %w", err)
	}
	return int(n), nil
}

// ---- TOTP devices ----

const otpDeviceColumns = `id, user_id, type, name, serial, key_id, sealed, hash,
	digits, period, last_step, drift, created, last_used, deactivated`

func scanOTPDevice(r scanner) (*mfa.OTPDevice, error) {
	var (
		d                     mfa.OTPDevice
		typ                   string
		serial                sql.NullString
		created               int64
		lastUsed, deactivated sql.NullInt64
	)
	err := r.Scan(&d.ID, &d.UserID, &typ, &d.Name, &serial, &d.Secret.KeyID, &d.Secret.Box, &d.Hash,
		&d.Digits, &d.Period, &d.LastStep, &d.Drift, &created, &lastUsed, &deactivated)
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return nil, webauthn.ErrNotFound
		}
		return nil, err
	}
	d.ID, d.UserID, d.Secret.Box = readBlob(d.ID), readBlob(d.UserID), readBlob(d.Secret.Box)
	d.Type = mfa.DeviceType(typ)
	d.Serial = serial.String
	d.Created = fromMicros(created)
	d.LastUsed = fromNullMicros(lastUsed)
	d.Deactivated = fromNullMicros(deactivated)
	return &d, nil
}

// OTPDevice implements [mfa.Store.OTPDevice].
func (s *Store) OTPDevice(ctx context.Context, id []byte) (*mfa.OTPDevice, error) {
	d, err := scanOTPDevice(s.r.QueryRowContext(ctx,
		`SELECT `+otpDeviceColumns+` FROM mfa_otp_devices WHERE id = ?`, blob(id)))
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading otp device: %w", err)
	}
	return d, nil
}

// listOTPDevices runs a query for devices and collects them.
func (s *Store) listOTPDevices(ctx context.Context, query string, args ...any) ([]*mfa.OTPDevice, error) {
	rows, err := s.r.QueryContext(ctx, query, args...)
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
		WHERE user_id = ? ORDER BY created, seq`, blob(userID))
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing otp devices: %w", err)
	}
	return out, nil
}

// ListOTPDevices implements [mfa.Store.ListOTPDevices]. A limit <= 0
// means no limit.
func (s *Store) ListOTPDevices(ctx context.Context, after []byte, limit int) ([]*mfa.OTPDevice, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	out, err := s.listOTPDevices(ctx, `SELECT `+otpDeviceColumns+` FROM mfa_otp_devices
		WHERE id > ? ORDER BY id LIMIT ?`, blob(after), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing otp devices: %w", err)
	}
	return out, nil
}

// RenameOTPDevice implements [mfa.Store.RenameOTPDevice].
func (s *Store) RenameOTPDevice(ctx context.Context, userID, id []byte, name string) error {
	return s.updateOwned(ctx, mfa.OpRenameOTPDevice, "renaming otp device",
		`UPDATE mfa_otp_devices SET name = ? WHERE id = ? AND user_id = ?`,
		name, blob(id), blob(userID))
}

// DeactivateOTPDevice implements [mfa.Store.DeactivateOTPDevice].
func (s *Store) DeactivateOTPDevice(ctx context.Context, userID, id []byte, at time.Time) error {
	return s.updateOwned(ctx, mfa.OpDeactivateOTPDevice, "deactivating otp device",
		`UPDATE mfa_otp_devices SET deactivated = ? WHERE id = ? AND user_id = ?`,
		nullMicros(at), blob(id), blob(userID))
}

// DeleteOTPDevice implements [mfa.Store.DeleteOTPDevice].
func (s *Store) DeleteOTPDevice(ctx context.Context, userID, id []byte) error {
	return s.updateOwned(ctx, mfa.OpDeleteOTPDevice, "deleting otp device",
		`DELETE FROM mfa_otp_devices WHERE id = ? AND user_id = ?`,
		blob(id), blob(userID))
}

// AdvanceOTPStep implements [mfa.Store.AdvanceOTPStep] as one
// compare-and-set UPDATE; when it changes no row, a second read tells
// why.
func (s *Store) AdvanceOTPStep(ctx context.Context, userID, id []byte, step int64, at time.Time) error {
	err := s.change(ctx, mfa.StoreEvents(ctx, mfa.OpAdvanceOTPStep), func(q querier) error {
		n, err := affected(q.ExecContext(ctx, `UPDATE mfa_otp_devices SET last_step = ?1, last_used = ?2
			WHERE id = ?3 AND user_id = ?4 AND deactivated IS NULL AND last_step < ?1`,
			step, nullMicros(at), blob(id), blob(userID)))
		if err != nil || n == 1 {
			return err
		}
		return stepError(ctx, q, userID, id, step)
	})
	if err != nil {
		return fmt.Errorf("sqlite: advancing otp step: %w", err)
	}
	return nil
}

// ResyncOTPDevice implements [mfa.Store.ResyncOTPDevice] like
// AdvanceOTPStep.
func (s *Store) ResyncOTPDevice(ctx context.Context, userID, id []byte, drift int, step int64) error {
	err := s.change(ctx, mfa.StoreEvents(ctx, mfa.OpResyncOTPDevice), func(q querier) error {
		n, err := affected(q.ExecContext(ctx, `UPDATE mfa_otp_devices SET drift = ?1, last_step = ?2
			WHERE id = ?3 AND user_id = ?4 AND deactivated IS NULL AND last_step < ?2`,
			drift, step, blob(id), blob(userID)))
		if err != nil || n == 1 {
			return err
		}
		return stepError(ctx, q, userID, id, step)
	})
	if err != nil {
		return fmt.Errorf("sqlite: resyncing otp device: %w", err)
	}
	return nil
}

// stepError reads why a step compare-and-set changed no row.
func stepError(ctx context.Context, q querier, userID, id []byte, step int64) error {
	var (
		last        int64
		deactivated sql.NullInt64
	)
	err := q.QueryRowContext(ctx, `SELECT last_step, deactivated FROM mfa_otp_devices
		WHERE id = ? AND user_id = ?`, blob(id), blob(userID)).Scan(&last, &deactivated)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return webauthn.ErrNotFound
	case err != nil:
		return err
	case deactivated.Valid:
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
	var n int64
	err := s.write(ctx, func(q querier) (err error) {
		n, err = affected(q.ExecContext(ctx, `UPDATE mfa_otp_devices SET key_id = ?, sealed = ?
			WHERE id = ? AND key_id = ?`, sealed.KeyID, blob(sealed.Box), blob(id), oldKeyID))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: resealing otp device: %w", err)
	}
	if n == 1 {
		return nil
	}
	var exists bool
	err = s.r.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM mfa_otp_devices WHERE id = ?)`, blob(id)).Scan(&exists)
	switch {
	case err != nil:
		return fmt.Errorf("sqlite: resealing otp device: %w", err)
	case !exists:
		return fmt.Errorf("sqlite: resealing otp device: %w", webauthn.ErrNotFound)
	}
	return fmt.Errorf("sqlite: resealing otp device: not sealed under %q: %w", oldKeyID, webauthn.ErrConflict)
}

// ---- recovery codes ----

// ReplaceRecoveryCodes implements [mfa.Store.ReplaceRecoveryCodes] in one
// IMMEDIATE transaction: the old set goes (its codes with it, ON DELETE
// CASCADE), the new one comes.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, r *mfa.RecoveryCodes) error {
	if err := s.replaceRecoveryCodes(ctx, r); err != nil {
		return fmt.Errorf("sqlite: replacing recovery codes: %w", err)
	}
	return nil
}

func (s *Store) replaceRecoveryCodes(ctx context.Context, r *mfa.RecoveryCodes) error {
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `DELETE FROM mfa_recovery_sets WHERE user_id = ?`, blob(r.UserID)); err != nil {
		return err
	}
	_, err = tx.ExecContext(ctx, `INSERT INTO mfa_recovery_sets (user_id, id, salt, created) VALUES (?, ?, ?, ?)`,
		blob(r.UserID), blob(r.ID), blob(r.Salt), micros(r.Created))
	switch {
	case isForeignKey(err):
		return fmt.Errorf("user: %w", webauthn.ErrNotFound)
	case err != nil:
		return err
	}
	if len(r.Hashes) > 0 {
		for i, h := range r.Hashes {
			if _, err := tx.ExecContext(ctx, `INSERT INTO mfa_recovery_codes (user_id, set_id, idx, hash, used)
				VALUES (?, ?, ?, ?, NULL)`, blob(r.UserID), blob(r.ID), i, blob(h)); err != nil {
				return err
			}
		}
	}
	if err := insertEvents(ctx, tx, mfa.StoreEvents(ctx, mfa.OpReplaceRecoveryCodes)); err != nil {
		return err
	}
	return tx.Commit()
}

// RecoveryCodes implements [mfa.Store.RecoveryCodes] with one query, so
// the set and its codes are read from one snapshot.
func (s *Store) RecoveryCodes(ctx context.Context, userID []byte) (*mfa.RecoveryCodes, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT s.user_id, s.id, s.salt, s.created, c.idx, c.hash, c.used
		FROM mfa_recovery_sets s
		LEFT JOIN mfa_recovery_codes c ON c.user_id = s.user_id AND c.set_id = s.id
		WHERE s.user_id = ? ORDER BY c.idx`, blob(userID))
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading recovery codes: %w", err)
	}
	defer rows.Close()
	var r *mfa.RecoveryCodes
	for rows.Next() {
		var (
			user, id, salt, hash []byte
			created              int64
			idx, used            sql.NullInt64
		)
		if err := rows.Scan(&user, &id, &salt, &created, &idx, &hash, &used); err != nil {
			return nil, fmt.Errorf("sqlite: reading recovery codes: %w", err)
		}
		if r == nil {
			r = &mfa.RecoveryCodes{UserID: readBlob(user), ID: readBlob(id), Salt: readBlob(salt), Created: fromMicros(created)}
		}
		if idx.Valid {
			r.Hashes = append(r.Hashes, readBlob(hash))
			r.Used = append(r.Used, fromNullMicros(used))
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: reading recovery codes: %w", err)
	}
	if r == nil {
		return nil, fmt.Errorf("sqlite: reading recovery codes: %w", webauthn.ErrNotFound)
	}
	return r, nil
}

// UseRecoveryCode implements [mfa.Store.UseRecoveryCode]: a
// compare-and-set UPDATE on the code's row, and the count of what is
// left, in one IMMEDIATE transaction.
func (s *Store) UseRecoveryCode(ctx context.Context, userID, setID []byte, index int, at time.Time) (int, error) {
	left, err := s.useRecoveryCode(ctx, userID, setID, index, at)
	if err != nil {
		return 0, fmt.Errorf("sqlite: using recovery code: %w", err)
	}
	return left, nil
}

func (s *Store) useRecoveryCode(ctx context.Context, userID, setID []byte, index int, at time.Time) (int, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback()
	n, err := affected(tx.ExecContext(ctx, `UPDATE mfa_recovery_codes SET used = ?
		WHERE user_id = ? AND set_id = ? AND idx = ? AND used IS NULL`,
		micros(at), blob(userID), blob(setID), index))
	if err != nil {
		return 0, err
	}
	if n == 0 {
		var used bool
		err := tx.QueryRowContext(ctx, `SELECT used IS NOT NULL FROM mfa_recovery_codes
			WHERE user_id = ? AND set_id = ? AND idx = ?`, blob(userID), blob(setID), index).Scan(&used)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return 0, fmt.Errorf("code %d of this set: %w", index, webauthn.ErrNotFound)
		case err != nil:
			return 0, err
		}
		return 0, fmt.Errorf("code %d: %w", index, mfa.ErrReplay)
	}
	var left int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM mfa_recovery_codes
		WHERE user_id = ? AND set_id = ? AND used IS NULL`, blob(userID), blob(setID)).Scan(&left); err != nil {
		return 0, err
	}
	if err := insertEvents(ctx, tx, mfa.RecoveryCodeEvents(ctx, left)); err != nil {
		return 0, err
	}
	return left, tx.Commit()
}

// DeleteRecoveryCodes implements [mfa.Store.DeleteRecoveryCodes]; the
// codes go with the set (ON DELETE CASCADE).
func (s *Store) DeleteRecoveryCodes(ctx context.Context, userID []byte) error {
	var n int64
	err := s.write(ctx, func(q querier) (err error) {
		n, err = affected(q.ExecContext(ctx, `DELETE FROM mfa_recovery_sets WHERE user_id = ?`, blob(userID)))
		return err
	})
	switch {
	case err != nil:
		return fmt.Errorf("sqlite: deleting recovery codes: %w", err)
	case n == 0:
		return fmt.Errorf("sqlite: deleting recovery codes: %w", webauthn.ErrNotFound)
	}
	return nil
}

// ---- attempt counters ----

// Attempts implements [mfa.Store.Attempts].
func (s *Store) Attempts(ctx context.Context, userID []byte, f mfa.Factor) (mfa.Attempts, error) {
	var (
		a      mfa.Attempts
		locked sql.NullInt64
	)
	err := s.r.QueryRowContext(ctx, `SELECT failures, locked_until FROM mfa_attempts
		WHERE user_id = ? AND factor = ?`, blob(userID), string(f)).Scan(&a.Failures, &locked)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return mfa.Attempts{}, nil
	case err != nil:
		return mfa.Attempts{}, fmt.Errorf("sqlite: reading attempts: %w", err)
	}
	a.LockedUntil = fromNullMicros(locked)
	return a, nil
}

// RecordFailure implements [mfa.Store.RecordFailure]: an upsert that adds
// one to the count, then the lock it earns, in one IMMEDIATE transaction.
func (s *Store) RecordFailure(ctx context.Context, userID []byte, f mfa.Factor, now time.Time, p mfa.LockPolicy) (mfa.Attempts, error) {
	a, err := s.recordFailure(ctx, userID, f, now, p)
	if err != nil {
		return mfa.Attempts{}, fmt.Errorf("sqlite: recording failure: %w", err)
	}
	return a, nil
}

func (s *Store) recordFailure(ctx context.Context, userID []byte, f mfa.Factor, now time.Time, p mfa.LockPolicy) (mfa.Attempts, error) {
	tx, err := s.begin(ctx)
	if err != nil {
		return mfa.Attempts{}, err
	}
	defer tx.Rollback()
	var (
		a      mfa.Attempts
		locked sql.NullInt64
	)
	err = tx.QueryRowContext(ctx, `INSERT INTO mfa_attempts (user_id, factor, failures) VALUES (?, ?, 1)
		ON CONFLICT (user_id, factor) DO UPDATE SET failures = mfa_attempts.failures + 1
		RETURNING failures, locked_until`, blob(userID), string(f)).Scan(&a.Failures, &locked)
	switch {
	case isForeignKey(err):
		return mfa.Attempts{}, fmt.Errorf("user: %w", webauthn.ErrNotFound)
	case err != nil:
		return mfa.Attempts{}, err
	}
	a.LockedUntil = fromNullMicros(locked)
	evs := mfa.StoreEvents(ctx, mfa.OpRecordFailure)
	if until := p.Until(a.Failures, now); !until.IsZero() {
		if _, err := tx.ExecContext(ctx, `UPDATE mfa_attempts SET locked_until = ? WHERE user_id = ? AND factor = ?`,
			micros(until), blob(userID), string(f)); err != nil {
			return mfa.Attempts{}, err
		}
		a.LockedUntil = fromMicros(micros(until))
		evs = append(evs, mfa.LockEvents(ctx, a.LockedUntil)...)
	}
	if err := insertEvents(ctx, tx, evs); err != nil {
		return mfa.Attempts{}, err
	}
	return a, tx.Commit()
}

// ResetAttempts implements [mfa.Store.ResetAttempts].
func (s *Store) ResetAttempts(ctx context.Context, userID []byte, f mfa.Factor) error {
	err := s.change(ctx, mfa.StoreEvents(ctx, mfa.OpResetAttempts), func(q querier) error {
		_, err := q.ExecContext(ctx, `DELETE FROM mfa_attempts WHERE user_id = ? AND factor = ?`,
			blob(userID), string(f))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: resetting attempts: %w", err)
	}
	return nil
}

// ---- the account listing ----

// Users implements [mfa.Store.Users] with one range scan of the users'
// primary key; BLOBs compare bytewise (memcmp). A limit <= 0 means no
// limit.
func (s *Store) Users(ctx context.Context, after []byte, limit int) ([]*webauthn.User, error) {
	if limit <= 0 {
		limit = -1 // SQLite: no limit
	}
	rows, err := s.r.QueryContext(ctx, `SELECT `+userColumns+` FROM webauthn_users
		WHERE id > ? ORDER BY id LIMIT ?`, blob(after), limit)
	if err != nil {
		return nil, fmt.Errorf("sqlite: listing users: %w", err)
	}
	defer rows.Close()
	out := []*webauthn.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, fmt.Errorf("sqlite: listing users: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: listing users: %w", err)
	}
	return out, nil
}
