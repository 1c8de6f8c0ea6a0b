package mfa

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/fidokit/fidokit/webauthn"
)

// Factors is what an account can use as a second factor.
type Factors struct {
	// SecurityKeys, Apps and Tokens count the active devices of each
	// type.
	SecurityKeys, Apps, Tokens int
	// Deactivated counts the devices of every type that are deactivated
	// (a lost key, say).
	Deactivated int
	// RecoveryCodes is how many unused recovery codes the account has.
	RecoveryCodes int
}

// Enabled reports whether the account has an active device. Recovery
// codes alone do not count; they are the way back in when every device
// is lost.
func (f *Factors) Enabled() bool { return f.SecurityKeys+f.Apps+f.Tokens > 0 }

// Required reports whether sign-in must ask for a second factor: the
// account holds a device, active or deactivated, or recovery codes. An
// administrator deactivating an account's only device must not lower it
// to a password alone: it then signs in with a recovery code, or not at
// all until an administrator deletes the device.
func (f *Factors) Required() bool { return f.Enabled() || f.Deactivated > 0 || f.RecoveryCodes > 0 }

// TOTP reports whether the account has an active TOTP device.
func (f *Factors) TOTP() bool { return f.Apps+f.Tokens > 0 }

// Factors says which second factors the account can use now, for the
// step after the application's own first factor.
func (m *Manager) Factors(ctx context.Context, userID []byte) (*Factors, error) {
	ds, err := m.Devices(ctx, userID)
	if err != nil {
		return nil, err
	}
	f := &Factors{}
	for _, d := range ds {
		if !d.Active() {
			f.Deactivated++
			continue
		}
		switch d.Type {
		case SecurityKey:
			f.SecurityKeys++
		case AuthenticatorApp:
			f.Apps++
		case HardwareToken:
			f.Tokens++
		}
	}
	set, err := m.store.RecoveryCodes(ctx, userID)
	switch {
	case err == nil:
		f.RecoveryCodes = set.Left()
	case !errors.Is(err, webauthn.ErrNotFound):
		return nil, storeErr("reading recovery codes", err)
	}
	return f, nil
}

// Verification is a second factor that passed: which, when, and from
// which device, so that a caller can record it in the session and ask
// for a fresh one later (step-up).
type Verification struct {
	// UserID is the account.
	UserID []byte
	// Factor is what passed.
	Factor Factor
	// Device is the device that passed; nil for a recovery code.
	Device *Device
	// At is when it passed.
	At time.Time
	// RecoveryCodesLeft is, after a recovery code, how many are left.
	RecoveryCodesLeft int
}

// PhishingResistant reports whether the factor was a security key, the
// one factor bound to the site's origin.
func (v *Verification) PhishingResistant() bool { return v.Factor == FactorSecurityKey }

// VerifyTOTP checks a code from any of the account's active TOTP devices
// (apps and hardware tokens), within SignInWindow steps of the server's
// clock plus the device's drift. A step that passes is used up: the
// store advances the device's last step by compare-and-set, so the same
// code is accepted once even when several servers race it. Errors:
// ErrMalformedCode, ErrInvalidCode (counted), ErrCodeReused,
// ErrNotEnrolled, *LockedError, ErrSealed.
func (m *Manager) VerifyTOTP(ctx context.Context, userID []byte, code string) (*Verification, error) {
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	now := m.now()
	attempts, err := m.checkLock(ctx, userID, FactorTOTP, now)
	if err != nil {
		return nil, err
	}
	ds, err := m.store.OTPDevices(ctx, userID)
	if err != nil {
		return nil, storeErr("reading devices", err)
	}
	var active []*OTPDevice
	for _, d := range ds {
		if d.Active() {
			active = append(active, d)
		}
	}
	if len(active) == 0 {
		return nil, ErrNotEnrolled
	}
	malformed, reused := 0, ""
	for _, d := range active {
		p := otpParams{hash: d.Hash, digits: d.Digits, period: d.Period}
		c, err := parseCode(code, p.digits)
		if err != nil {
			malformed++
			continue
		}
		g, err := m.openGenerator(d.Secret, userID, d.ID, p)
		if err != nil {
			return nil, err
		}
		t := p.step(now) + int64(d.Drift)
		s, ok := g.match(c, t-SignInWindow, t+SignInWindow)
		if !ok {
			continue
		}
		if s <= d.LastStep {
			reused = otpDeviceID(d.ID)
			continue
		}
		ectx, ev, err := m.withEvent(ctx, OpAdvanceOTPStep, EventSecondFactor, userID, now, func(e *Event) {
			e.DeviceID, e.Factor = otpDeviceID(d.ID), FactorTOTP
		})
		if err != nil {
			return nil, err
		}
		err = m.store.AdvanceOTPStep(ectx, userID, d.ID, s, now)
		switch {
		case errors.Is(err, ErrReplay):
			reused = otpDeviceID(d.ID)
			continue
		case errors.Is(err, webauthn.ErrInactive), errors.Is(err, webauthn.ErrNotFound):
			continue // deactivated or deleted meanwhile
		case err != nil:
			return nil, storeErr("recording the code", err)
		}
		m.emit(ctx, ev)
		if err := m.succeed(ctx, userID, FactorTOTP, attempts); err != nil {
			return nil, err
		}
		d.LastStep, d.LastUsed = s, now
		return &Verification{UserID: userID, Factor: FactorTOTP, Device: otpDevice(d), At: now}, nil
	}
	switch {
	case malformed == len(active):
		_, err := parseCode(code, active[0].Digits)
		return nil, err
	case reused != "":
		// The right code, already used: not a guess, so not counted.
		return nil, m.refused(ctx, userID, reused, FactorTOTP, now, ErrCodeReused)
	}
	return nil, m.fail(ctx, userID, "", FactorTOTP, now, ErrInvalidCode)
}

// checkLock refuses a factor that is locked at now, and returns its
// count otherwise.
func (m *Manager) checkLock(ctx context.Context, userID []byte, f Factor, now time.Time) (Attempts, error) {
	a, err := m.store.Attempts(ctx, userID, f)
	if err != nil {
		return a, storeErr("reading attempts", err)
	}
	if now.Before(a.LockedUntil) {
		return a, &LockedError{Factor: f, Until: a.LockedUntil, Failures: a.Failures}
	}
	return a, nil
}

// succeed clears the failure count after a factor passed. A count that
// was zero when the check began is left alone: that saves a write on
// almost every sign-in, and a failure racing in meanwhile stays counted,
// which errs on the safe side.
func (m *Manager) succeed(ctx context.Context, userID []byte, f Factor, before Attempts) error {
	if before.Failures == 0 && before.LockedUntil.IsZero() {
		return nil
	}
	return storeErr("resetting attempts", m.store.ResetAttempts(ctx, userID, f))
}

// fail counts a wrong code, with its event (and the lock's, if it
// locks the factor), and returns cause, or the lock it caused.
func (m *Manager) fail(ctx context.Context, userID []byte, deviceID string, f Factor, now time.Time, cause error) error {
	ectx, ev, err := m.withEvent(ctx, OpRecordFailure, EventSecondFactorFailed, userID, now, func(e *Event) {
		e.DeviceID, e.Factor, e.Detail = deviceID, f, ErrorCode(cause)
	})
	if err != nil {
		return err
	}
	ectx, lock, err := m.withEvent(ectx, OpLock, EventLockout, userID, now, func(e *Event) {
		e.DeviceID, e.Factor = deviceID, f
	})
	if err != nil {
		return err
	}
	a, err := m.store.RecordFailure(ectx, userID, f, now, m.lock)
	if err != nil {
		return storeErr("recording a failed attempt", err)
	}
	m.emit(ctx, ev)
	// The store appended the lock's event on the same condition.
	if !m.lock.Until(a.Failures, now).IsZero() {
		lock.Detail = a.LockedUntil.UTC().Format(time.RFC3339)
		m.emit(ctx, lock)
	}
	if now.Before(a.LockedUntil) {
		return fmt.Errorf("%w: %w", cause, &LockedError{Factor: f, Until: a.LockedUntil, Failures: a.Failures})
	}
	return cause
}

// refused records an attempt refused without being counted (a code
// already used, a rejected security key) and returns cause; a failure to
// record it is returned instead.
func (m *Manager) refused(ctx context.Context, userID []byte, deviceID string, f Factor, now time.Time, cause error) error {
	ev, err := m.event(ctx, EventSecondFactorFailed, userID, now)
	if err != nil {
		return err
	}
	ev.DeviceID, ev.Factor, ev.Detail = deviceID, f, ErrorCode(cause)
	if f == FactorSecurityKey {
		ev.Detail = webauthn.ErrorCode(cause)
	}
	if err := m.record(ctx, ev); err != nil {
		return err
	}
	return cause
}

// Attempts returns the failure count and lock of one factor of the
// account.
func (m *Manager) Attempts(ctx context.Context, userID []byte, f Factor) (Attempts, error) {
	if err := checkUserID(userID); err != nil {
		return Attempts{}, err
	}
	a, err := m.store.Attempts(ctx, userID, f)
	return a, storeErr("reading attempts", err)
}

// Unlock clears the failure count and lock of a factor, as an
// administrator does for a person locked out.
func (m *Manager) Unlock(ctx context.Context, userID []byte, f Factor) error {
	if err := checkUserID(userID); err != nil {
		return err
	}
	if f != FactorTOTP && f != FactorRecoveryCode {
		return fmt.Errorf("%w: factor %q has no attempt limit", ErrInvalidRequest, f)
	}
	ectx, ev, err := m.withEvent(ctx, OpResetAttempts, EventAttemptsReset, userID, m.now(), func(e *Event) { e.Factor = f })
	if err != nil {
		return err
	}
	if err := m.store.ResetAttempts(ectx, userID, f); err != nil {
		return storeErr("unlocking", err)
	}
	m.emit(ctx, ev)
	return nil
}

// RecoveryCodeSet is a new set of recovery codes, to show the person
// exactly once: only their hashes are stored.
type RecoveryCodeSet struct {
	// Codes are the codes, written for people ("K7QM-2XHD-9RTB-W4NE").
	Codes []Secret
	// Created is when the set was made.
	Created time.Time
}

// GenerateRecoveryCodes makes a new set of RecoveryCodeCount codes for the
// account, each 80 bits from Config.Rand, and stores their salted
// argon2id hashes in place of any earlier set, all of whose codes stop
// working. Errors: webauthn.ErrUnknownUser.
func (m *Manager) GenerateRecoveryCodes(ctx context.Context, userID []byte) (*RecoveryCodeSet, error) {
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	if _, err := m.rp.User(ctx, userID); err != nil {
		return nil, err
	}
	set := &RecoveryCodes{UserID: userID, ID: make([]byte, otpIDLen), Salt: make([]byte, recoverySaltLen), Created: m.now()}
	if err := m.random(set.ID); err != nil {
		return nil, err
	}
	if err := m.random(set.Salt); err != nil {
		return nil, err
	}
	out := &RecoveryCodeSet{Created: set.Created}
	seen := map[string]bool{}
	for len(out.Codes) < RecoveryCodeCount {
		c, err := m.recoveryCode()
		if err != nil {
			return nil, err
		}
		if seen[c] {
			continue // 2^-80: only a broken Rand repeats
		}
		seen[c] = true
		set.Hashes = append(set.Hashes, m.hash.sum(c, set.Salt))
		out.Codes = append(out.Codes, Secret{formatRecoveryCode(c)})
	}
	ectx, ev, err := m.withEvent(ctx, OpReplaceRecoveryCodes, EventRecoveryCodesGenerated, userID, set.Created, nil)
	if err != nil {
		return nil, err
	}
	if err := m.store.ReplaceRecoveryCodes(ectx, set); err != nil {
		return nil, storeErr("storing recovery codes", err)
	}
	m.emit(ctx, ev)
	return out, nil
}

// RecoveryCodesLeft is how many unused recovery codes the account has; 0
// if it has none.
func (m *Manager) RecoveryCodesLeft(ctx context.Context, userID []byte) (int, error) {
	if err := checkUserID(userID); err != nil {
		return 0, err
	}
	set, err := m.store.RecoveryCodes(ctx, userID)
	switch {
	case errors.Is(err, webauthn.ErrNotFound):
		return 0, nil
	case err != nil:
		return 0, storeErr("reading recovery codes", err)
	}
	return set.Left(), nil
}

// VerifyRecoveryCode checks a recovery code and uses it up: of any number
// of concurrent attempts with one code, on any number of servers, one
// passes. The Verification says how many are left. Case, spaces and
// hyphens do not matter. Errors: ErrMalformedCode, ErrInvalidCode
// (counted), ErrCodeReused, ErrNoRecoveryCodes, *LockedError.
func (m *Manager) VerifyRecoveryCode(ctx context.Context, userID []byte, code string) (*Verification, error) {
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	c, err := parseRecoveryCode(code)
	if err != nil {
		return nil, err
	}
	now := m.now()
	attempts, err := m.checkLock(ctx, userID, FactorRecoveryCode, now)
	if err != nil {
		return nil, err
	}
	set, err := m.store.RecoveryCodes(ctx, userID)
	switch {
	case errors.Is(err, webauthn.ErrNotFound):
		return nil, ErrNoRecoveryCodes
	case err != nil:
		return nil, storeErr("reading recovery codes", err)
	}
	i, ok := matchRecoveryCode(set, m.hash.sum(c, set.Salt))
	switch {
	case ok && i < len(set.Used) && !set.Used[i].IsZero():
		return nil, m.refused(ctx, userID, "", FactorRecoveryCode, now, ErrCodeReused)
	case !ok && set.Left() == 0:
		return nil, ErrNoRecoveryCodes
	case !ok:
		return nil, m.fail(ctx, userID, "", FactorRecoveryCode, now, ErrInvalidCode)
	}
	passed, err := m.event(ctx, EventSecondFactor, userID, now)
	if err != nil {
		return nil, err
	}
	passed.Factor = FactorRecoveryCode
	used, err := m.event(ctx, EventRecoveryCodeUsed, userID, now)
	if err != nil {
		return nil, err
	}
	used.Factor = FactorRecoveryCode
	left, err := m.store.UseRecoveryCode(WithStoreEvents(ctx, OpUseRecoveryCode, passed, used), userID, set.ID, i, now)
	switch {
	case errors.Is(err, ErrReplay):
		return nil, m.refused(ctx, userID, "", FactorRecoveryCode, now, ErrCodeReused)
	case errors.Is(err, webauthn.ErrNotFound):
		// A new set replaced this one meanwhile: its codes are void.
		return nil, m.fail(ctx, userID, "", FactorRecoveryCode, now, ErrInvalidCode)
	case err != nil:
		return nil, storeErr("using a recovery code", err)
	}
	used.Detail = strconv.Itoa(left)
	m.emit(ctx, passed, used)
	if err := m.succeed(ctx, userID, FactorRecoveryCode, attempts); err != nil {
		return nil, err
	}
	return &Verification{UserID: userID, Factor: FactorRecoveryCode, At: now, RecoveryCodesLeft: left}, nil
}

// BeginSecurityKey starts a security-key second factor for an account
// whose first factor passed: a sign-in ceremony for that known user,
// allowing only their active keys ([webauthn.RelyingParty.BeginLogin]).
// Errors: webauthn.ErrUnknownUser, webauthn.ErrNoCredentials.
func (m *Manager) BeginSecurityKey(ctx context.Context, userID []byte) (*webauthn.Begin, error) {
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	return m.rp.BeginLogin(ctx, userID)
}

// FinishSecurityKey verifies the key's assertion for the account. The
// relying party's errors come through unchanged (a *webauthn.VerificationError
// for a rejected response); a key of another account is
// webauthn.ErrCredentialOwner.
func (m *Manager) FinishSecurityKey(ctx context.Context, userID []byte, challengeID string, response []byte) (*Verification, error) {
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	now := m.now()
	// The key is the relying party's to find out: the store fills it in
	// (KeyEvents).
	ectx, passed, err := m.withEvent(ctx, OpRecordSignIn, EventSecondFactor, userID, now, func(e *Event) { e.Factor = FactorSecurityKey })
	if err != nil {
		return nil, err
	}
	ectx, clone, err := m.withEvent(ectx, OpFlagClone, EventCloneWarning, userID, now, func(e *Event) { e.Factor = FactorSecurityKey })
	if err != nil {
		return nil, err
	}
	u, c, err := m.rp.FinishLogin(ectx, challengeID, response)
	if err != nil {
		var ve *webauthn.VerificationError
		if !errors.As(err, &ve) {
			return nil, err
		}
		deviceID := m.responseKey(ctx, userID, response)
		if errors.Is(err, webauthn.ErrSignCount) && deviceID != "" {
			clone.DeviceID = deviceID
			m.emit(ctx, clone)
		}
		return nil, m.refused(ctx, userID, deviceID, FactorSecurityKey, now, err)
	}
	if string(u.ID) != string(userID) {
		return nil, fmt.Errorf("mfa: security key: %w", webauthn.ErrCredentialOwner)
	}
	fillKeyEvent(&passed, userID, c.ID)
	m.emit(ctx, passed)
	return &Verification{UserID: userID, Factor: FactorSecurityKey, Device: keyDevice(c), At: c.LastUsed}, nil
}

// responseKey returns the device ID of the account's key that a
// sign-in response names, or "" if it names none of them: for the
// event of a refused sign-in, which must not record what an attacker
// made up.
func (m *Manager) responseKey(ctx context.Context, userID []byte, response []byte) string {
	var r struct {
		RawID string `json:"rawId"`
	}
	if json.Unmarshal(response, &r) != nil {
		return ""
	}
	id, err := b64.DecodeString(r.RawID)
	if err != nil || len(id) == 0 || len(id) > 1023 {
		return ""
	}
	if _, err := m.rp.Credential(ctx, userID, id); err != nil {
		return ""
	}
	return keyDeviceID(id)
}

// RotateKeys re-seals every TOTP seed not sealed under the keyring's
// current key, and reports how many it re-sealed. Run it after adding a
// new current key; once it returns, the old key can leave the keyring
// (pending enrollments, which expire within Config.EnrollmentTimeout,
// are not re-sealed). It is safe to run while the service serves, and on
// several servers at once.
func (m *Manager) RotateKeys(ctx context.Context) (int, error) {
	n := 0
	var after []byte
	for {
		ds, err := m.store.ListOTPDevices(ctx, after, 100)
		if err != nil {
			return n, storeErr("listing devices", err)
		}
		if len(ds) == 0 {
			return n, nil
		}
		for _, d := range ds {
			if d.Secret.KeyID == m.keys.Current() {
				continue
			}
			ctxt := sealContext(d.UserID, d.ID)
			seed, err := m.keys.open(d.Secret, ctxt)
			if err != nil {
				return n, err
			}
			s, err := m.keys.seal(seed, ctxt)
			clear(seed)
			if err != nil {
				return n, err
			}
			err = m.store.ResealOTPDevice(ctx, d.ID, d.Secret.KeyID, s)
			switch {
			case errors.Is(err, webauthn.ErrConflict), errors.Is(err, webauthn.ErrNotFound):
				// Re-sealed by another server, or deleted, meanwhile.
			case err != nil:
				return n, storeErr("re-sealing", err)
			default:
				n++
			}
		}
		after = ds[len(ds)-1].ID
	}
}
