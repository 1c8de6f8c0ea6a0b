package mfa

import (
	"context"
	"errors"
	"time"

	"github.com/fidokit/fidokit/webauthn"
)

// ErrReplay is what a [Store] returns when a compare-and-set on a
// single-use value lost: a TOTP time step at or before the device's last
// accepted step, or a recovery code already used. Of any number of
// concurrent calls for one step or one code, across servers, exactly one
// succeeds and the others get ErrReplay.
var ErrReplay = errors.New("mfa: already used")

// DeviceType is the kind of an MFA device.
type DeviceType string

// The device types an account can hold, in any mix.
const (
	// SecurityKey is a FIDO2/U2F security key: a [webauthn.Credential].
	SecurityKey DeviceType = "security_key"
	// AuthenticatorApp is a TOTP app on a phone (RFC 6238), enrolled
	// from a QR code.
	AuthenticatorApp DeviceType = "authenticator_app"
	// HardwareToken is a hardware TOTP token (a key fob with a serial
	// number), enrolled from its vendor's seed file or secret.
	HardwareToken DeviceType = "hardware_token"
)

// Factor is a kind of second factor, as sign-in results and attempt
// limits name it. TOTP covers both [AuthenticatorApp] and [HardwareToken].
type Factor string

// The second factors.
const (
	FactorSecurityKey  Factor = "security_key"
	FactorTOTP         Factor = "totp"
	FactorRecoveryCode Factor = "recovery_code"
)

// Sealed is a secret encrypted at rest with AES-256-GCM under the key
// named KeyID of a [Keyring].
type Sealed struct {
	// KeyID names the keyring key that sealed Box.
	KeyID string
	// Box is nonce || ciphertext || tag.
	Box []byte
}

// OTPDevice is a TOTP device as a [Store] keeps it: an authenticator app
// or a hardware token. Its secret is only ever stored sealed.
type OTPDevice struct {
	// ID is 16 random bytes, unique across all users. It is the ID of the
	// enrollment the device came from.
	ID []byte
	// UserID is the owner's [webauthn.User.ID].
	UserID []byte
	// Type is AuthenticatorApp or HardwareToken.
	Type DeviceType
	// Name is what the person called the device.
	Name string
	// Serial is a hardware token's serial number, unique across all
	// users; empty for an app.
	Serial string
	// Secret is the TOTP seed, sealed.
	Secret Sealed
	// Hash is the HMAC hash: "SHA1", "SHA256" or "SHA512".
	Hash string
	// Digits is the code length (6 to 8); Period the time step in
	// seconds.
	Digits, Period int
	// LastStep is the last time step (Unix time / Period) accepted; 0
	// before the first. No step at or before it is accepted again.
	LastStep int64
	// Drift is the device clock's offset in time steps, as the last
	// resync measured it.
	Drift int
	// Created is when the device was enrolled; LastUsed when a code from
	// it last passed (zero if never); Deactivated when it was
	// deactivated (zero while active).
	Created, LastUsed, Deactivated time.Time
}

// Active reports whether the device may be used.
func (d *OTPDevice) Active() bool { return d.Deactivated.IsZero() }

// OTPEnrollment is a TOTP device that has been offered to a person but
// not yet confirmed with two consecutive codes.
type OTPEnrollment struct {
	// ID is 16 random bytes; the device keeps it.
	ID     []byte
	UserID []byte
	Type   DeviceType
	Name   string
	Serial string
	Secret Sealed
	Hash   string
	Digits int
	Period int
	// Expires is when the enrollment stops being accepted.
	Expires time.Time
}

// RecoveryCodes is an account's set of recovery codes as a [Store] keeps
// it: one salt for the set and a hash per code, never the codes.
type RecoveryCodes struct {
	// UserID is the owner.
	UserID []byte
	// ID is 16 random bytes naming this set; a new set has a new ID.
	ID []byte
	// Salt is the set's random salt for the code hash.
	Salt []byte
	// Hashes holds one hash per code, in the order the codes were
	// shown.
	Hashes [][]byte
	// Used holds, per code, when it was used; zero while unused. Stores
	// ignore it on the way in.
	Used []time.Time
	// Created is when the set was generated.
	Created time.Time
}

// Left is how many codes of the set are unused.
func (r *RecoveryCodes) Left() int {
	n := 0
	for i := range r.Hashes {
		if i >= len(r.Used) || r.Used[i].IsZero() {
			n++
		}
	}
	return n
}

// Attempts is the failure count of one factor of one account.
type Attempts struct {
	// Failures counts consecutive wrong codes since the last success.
	Failures int
	// LockedUntil is when the factor may be tried again; zero or in the
	// past when it is not locked.
	LockedUntil time.Time
}

// LockPolicy says when wrong codes lock a factor: from the Limit-th
// consecutive failure on, for Base, doubling with each further failure,
// up to Max.
type LockPolicy struct {
	Limit int
	Base  time.Duration
	Max   time.Duration
}

// Until is when a factor with this many consecutive failures, the last
// at now, may be tried again; zero when it is not locked.
func (p LockPolicy) Until(failures int, now time.Time) time.Time {
	if p.Limit <= 0 || failures < p.Limit {
		return time.Time{}
	}
	d := p.Base
	for i := p.Limit; i < failures && d < p.Max; i++ {
		d *= 2
	}
	if p.Max > 0 && d > p.Max {
		d = p.Max
	}
	return now.Add(d)
}

// Store keeps everything account MFA needs, in the same database as the
// relying party's users and security keys, so that an account's devices
// of every type are one list with one limit. It is a [webauthn.Store]
// plus the TOTP devices, pending TOTP enrollments, recovery codes and
// attempt counters. The engines in package
// github.com/fidokit/fidokit/store (SQLite, PostgreSQL) and
// [MemoryStore] implement it.
//
// As for [webauthn.Store]: every method is safe for concurrent use, also
// across processes sharing one database; every change is one
// transaction; a method that fails changes nothing; times are kept in
// UTC with microsecond precision; slices returned are the caller's.
// Errors wrap [webauthn.ErrNotFound], [webauthn.ErrExists],
// [webauthn.ErrLimit], [webauthn.ErrInactive], [webauthn.ErrConflict] or
// [ErrReplay] where the method says so.
//
// Every method that changes something appends, in the change's
// transaction, the events of the log that the context carries for it
// ([StoreEvents], [KeyEvents], the StoreOp constants), and none if it
// changes nothing or fails: no change without its event, no event
// without its change. The embedded webauthn.Store's methods do so too.
//
// One rule crosses into the embedded [webauthn.Store]: AddCredential's
// limit counts the user's TOTP devices as well as their keys, checked in
// the same transaction, just as CompleteOTPEnrollment's limit counts
// their keys.
type Store interface {
	webauthn.Store

	// Users returns up to limit users with an ID greater than after
	// (bytewise, so nil or empty starts at the first), in ID order: a
	// cursor over every account, for the audit report ([Manager.Report]).
	// Pass the last ID of a page as after for the next; an empty page is
	// the end. A limit <= 0 means no limit. Users created or deleted
	// while a caller pages are seen or not according to where the cursor
	// is; no user is listed twice.
	Users(ctx context.Context, after []byte, limit int) ([]*webauthn.User, error)

	// SaveOTPEnrollment stores a pending enrollment. ErrNotFound if the
	// user does not exist; ErrExists if its ID is taken.
	SaveOTPEnrollment(ctx context.Context, e *OTPEnrollment) error
	// OTPEnrollment returns one of the user's pending enrollments,
	// expired or not, or ErrNotFound.
	OTPEnrollment(ctx context.Context, userID, id []byte) (*OTPEnrollment, error)
	// CompleteOTPEnrollment removes the user's pending enrollment with
	// ID d.ID and stores d in its place, atomically: of concurrent calls
	// for one enrollment at most one succeeds, the others get
	// ErrNotFound. ErrLimit if the user already holds limit devices of
	// every type (keys included; limit <= 0: no limit); ErrExists if
	// d.Serial is not empty and another device has it.
	CompleteOTPEnrollment(ctx context.Context, d *OTPDevice, limit int) error
	// PurgeOTPEnrollments removes every enrollment that expired at or
	// before now and reports how many.
	PurgeOTPEnrollments(ctx context.Context, now time.Time) (int, error)

	// OTPDevice returns the device with the given ID, or ErrNotFound.
	OTPDevice(ctx context.Context, id []byte) (*OTPDevice, error)
	// OTPDevices returns a user's TOTP devices, oldest first; none is an
	// empty slice and no error.
	OTPDevices(ctx context.Context, userID []byte) ([]*OTPDevice, error)
	// ListOTPDevices returns up to limit devices of all users with an ID
	// greater than after (bytewise), in ID order: a cursor over every
	// device, for key rotation.
	ListOTPDevices(ctx context.Context, after []byte, limit int) ([]*OTPDevice, error)
	// RenameOTPDevice sets the name of one of userID's devices.
	// ErrNotFound if the user has no such device.
	RenameOTPDevice(ctx context.Context, userID, id []byte, name string) error
	// DeactivateOTPDevice sets Deactivated to at (non-zero), or back to
	// zero to reactivate. ErrNotFound as for Rename.
	DeactivateOTPDevice(ctx context.Context, userID, id []byte, at time.Time) error
	// DeleteOTPDevice removes one of userID's devices. ErrNotFound as
	// for Rename.
	DeleteOTPDevice(ctx context.Context, userID, id []byte) error
	// AdvanceOTPStep sets LastStep to step and LastUsed to at if and
	// only if the device is active and its LastStep is less than step:
	// the compare-and-set that makes each time step usable once.
	// ErrReplay if LastStep >= step, ErrInactive if deactivated,
	// ErrNotFound if userID has no such device.
	AdvanceOTPStep(ctx context.Context, userID, id []byte, step int64, at time.Time) error
	// ResyncOTPDevice sets Drift to drift and LastStep to step under the
	// same condition and with the same errors as AdvanceOTPStep; LastUsed
	// is left alone.
	ResyncOTPDevice(ctx context.Context, userID, id []byte, drift int, step int64) error
	// ResealOTPDevice replaces a device's sealed secret with s if and
	// only if it is still sealed under oldKeyID. ErrConflict if not,
	// ErrNotFound if there is no such device.
	ResealOTPDevice(ctx context.Context, id []byte, oldKeyID string, s Sealed) error

	// ReplaceRecoveryCodes stores r as the user's only set of recovery
	// codes, removing any earlier set in the same transaction.
	// ErrNotFound if the user does not exist.
	ReplaceRecoveryCodes(ctx context.Context, r *RecoveryCodes) error
	// RecoveryCodes returns the user's set with Used filled in, or
	// ErrNotFound if they have none.
	RecoveryCodes(ctx context.Context, userID []byte) (*RecoveryCodes, error)
	// UseRecoveryCode marks code index of set setID used at at, if and
	// only if it is unused, and returns how many codes of the set are
	// left. ErrReplay if it was used already; ErrNotFound if the user's
	// set is not setID (replaced or deleted) or has no such index.
	UseRecoveryCode(ctx context.Context, userID, setID []byte, index int, at time.Time) (left int, err error)
	// DeleteRecoveryCodes removes the user's set. ErrNotFound if none.
	DeleteRecoveryCodes(ctx context.Context, userID []byte) error

	// Attempts returns the failure count of factor f for the user; the
	// zero value if nothing was recorded.
	Attempts(ctx context.Context, userID []byte, f Factor) (Attempts, error)
	// RecordFailure adds one failure for factor f at now and, in the
	// same transaction, sets LockedUntil to p.Until(failures, now) when
	// that is not zero; it returns the new state. ErrNotFound if the
	// user does not exist.
	RecordFailure(ctx context.Context, userID []byte, f Factor, now time.Time, p LockPolicy) (Attempts, error)
	// ResetAttempts clears the failure count and lock of factor f.
	ResetAttempts(ctx context.Context, userID []byte, f Factor) error

	// AppendEvents appends events that go with no change, in one
	// transaction. ErrExists if an event's ID is taken.
	AppendEvents(ctx context.Context, evs ...Event) error
	// Events returns the events q selects ([EventQuery.Match]), in its
	// order, at most q.Limit of them (<= 0: all). Events committed
	// concurrently with the query may or may not be in it.
	Events(ctx context.Context, q EventQuery) ([]*Event, error)
	// PurgeEvents removes the events with a Time before before and
	// reports how many.
	PurgeEvents(ctx context.Context, before time.Time) (int, error)
}
