package mfa

import (
	"errors"
	"fmt"
	"time"

	"github.com/fidokit/fidokit/mfa/internal/pskc"
	"github.com/fidokit/fidokit/webauthn"
)

// sentinel is an error that also matches a broader one, so that
// errors.Is(ErrUnknownDevice, webauthn.ErrNotFound) holds.
type sentinel struct {
	msg    string
	parent error
}

func (e *sentinel) Error() string { return e.msg }

// Is reports whether target is the broader error this one refines.
func (e *sentinel) Is(target error) bool { return e.parent != nil && target == e.parent }

func newSentinel(msg string, parent error) error { return &sentinel{msg: msg, parent: parent} }

// Errors of the [Manager]. Each names one reason a call fails; match them
// with errors.Is. [ErrorCode] gives the stable code the HTTP handler
// reports for each. No error message ever contains a code, a seed or a
// recovery code.
var (
	// ErrInvalidRequest: an argument is empty, too long or not valid
	// UTF-8: a device name, a serial number, a user or device ID.
	ErrInvalidRequest = errors.New("mfa: invalid request")
	// ErrMalformedCode: what was typed is not a code at all: not the
	// device's number of digits, or not a recovery code's 16 symbols.
	// It is not counted as a failed attempt.
	ErrMalformedCode = errors.New("mfa: not a well-formed code")
	// ErrInvalidCode: the code is well formed but wrong. It counts
	// towards the attempt limit.
	ErrInvalidCode = errors.New("mfa: wrong code")
	// ErrCodeReused: the code was right, but its time step (or the
	// recovery code) was used already, perhaps by a racing request. It
	// matches [ErrReplay].
	ErrCodeReused = newSentinel("mfa: code already used", ErrReplay)
	// ErrNotConsecutive: enrollment or resync got two codes that are
	// each from the device's secret but not two consecutive ones (or the
	// same code twice).
	ErrNotConsecutive = errors.New("mfa: the two codes are not consecutive")
	// ErrUnknownEnrollment: no pending enrollment with this ID for this
	// user (never begun, already completed). It matches
	// webauthn.ErrNotFound.
	ErrUnknownEnrollment = newSentinel("mfa: unknown or completed enrollment", webauthn.ErrNotFound)
	// ErrEnrollmentExpired: the pending enrollment's time passed; begin
	// again.
	ErrEnrollmentExpired = errors.New("mfa: enrollment expired")
	// ErrUnknownDevice: the user holds no device with this ID. It
	// matches webauthn.ErrNotFound.
	ErrUnknownDevice = newSentinel("mfa: unknown device", webauthn.ErrNotFound)
	// ErrDeviceLimit: the account already holds the most devices allowed
	// (webauthn.Config.MaxCredentials, counting every type). It matches
	// webauthn.ErrLimit.
	ErrDeviceLimit = newSentinel("mfa: device limit reached", webauthn.ErrLimit)
	// ErrSerialTaken: a hardware token with this serial number is
	// assigned already (to this or another account). It matches
	// webauthn.ErrExists.
	ErrSerialTaken = newSentinel("mfa: hardware token already assigned", webauthn.ErrExists)
	// ErrNotEnrolled: the account has no active device of the factor
	// asked for.
	ErrNotEnrolled = errors.New("mfa: no active device of this kind")
	// ErrNoRecoveryCodes: the account has no recovery codes left (none
	// generated, or all used).
	ErrNoRecoveryCodes = errors.New("mfa: no recovery codes left")
	// ErrLocked matches every [*LockedError]: too many wrong codes.
	ErrLocked = errors.New("mfa: too many wrong codes")
	// ErrInvalidSecret: a TOTP secret given for a hardware token is not
	// base32, or shorter than 128 bits (RFC 4226 §4 R6).
	ErrInvalidSecret = errors.New("mfa: invalid TOTP secret")
	// ErrNotTOTP: the seed file's key for this serial is not a TOTP key
	// (an event-based HOTP token, say), or its parameters are outside
	// what TOTP devices use.
	ErrNotTOTP = errors.New("mfa: seed file key is not a TOTP key")
)

// Errors of hardware token seed files (PSKC, RFC 6030). They come from
// [Manager.BeginToken] wrapped in context; nothing is stored.
var (
	// ErrSeedFileMalformed: not a PSKC document this package reads.
	ErrSeedFileMalformed = pskc.ErrMalformed
	// ErrSeedFileUnsupported: an encryption, MAC or key-derivation
	// algorithm this package does not implement.
	ErrSeedFileUnsupported = pskc.ErrUnsupported
	// ErrSeedFileKeyRequired: the file is encrypted and no pre-shared key
	// or password was given.
	ErrSeedFileKeyRequired = pskc.ErrKeyRequired
	// ErrSeedFileMAC: an encrypted value's MAC does not verify: the file
	// was altered, or the key or password is wrong.
	ErrSeedFileMAC = pskc.ErrMAC
	// ErrSeedFileWrongKey: the value does not decrypt with the key or
	// password given.
	ErrSeedFileWrongKey = pskc.ErrWrongKey
	// ErrSerialNotFound: the file holds no token with this serial.
	ErrSerialNotFound = pskc.ErrSerialNotFound
)

// LockedError is a factor refused because of too many consecutive wrong
// codes. It matches [ErrLocked].
type LockedError struct {
	// Factor is the locked factor.
	Factor Factor
	// Until is when it may be tried again.
	Until time.Time
	// Failures is the count of consecutive failures so far.
	Failures int
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("mfa: %s locked after %d wrong codes until %s", e.Factor, e.Failures, e.Until.UTC().Format(time.RFC3339))
}

// Is makes every LockedError match ErrLocked.
func (e *LockedError) Is(target error) bool { return target == ErrLocked }
