package fido

import (
	"context"
	"errors"
	"fmt"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/hid"
)

// Status is a CTAP2 status code returned by a key (CTAP 2.1 §8.2). It is an
// error; match it with errors.Is(err, fido.StatusPINInvalid) and the like.
type Status = ctap.Status

// Status codes callers commonly branch on. Every CTAP 2.1 code is a Status;
// these are named here for convenience.
const (
	StatusInvalidCommand       = ctap.StatusInvalidCommand
	StatusInvalidParameter     = ctap.StatusInvalidParameter
	StatusInvalidLength        = ctap.StatusInvalidLength
	StatusInvalidCBOR          = ctap.StatusInvalidCBOR
	StatusCBORUnexpectedType   = ctap.StatusCBORUnexpectedType
	StatusMissingParameter     = ctap.StatusMissingParameter
	StatusLimitExceeded        = ctap.StatusLimitExceeded
	StatusCredentialExcluded   = ctap.StatusCredentialExcluded
	StatusInvalidCredential    = ctap.StatusInvalidCredential
	StatusUnsupportedAlgorithm = ctap.StatusUnsupportedAlgorithm
	StatusOperationDenied      = ctap.StatusOperationDenied
	StatusKeyStoreFull         = ctap.StatusKeyStoreFull
	StatusUnsupportedOption    = ctap.StatusUnsupportedOption
	StatusInvalidOption        = ctap.StatusInvalidOption
	StatusKeepaliveCancel      = ctap.StatusKeepaliveCancel
	StatusNoCredentials        = ctap.StatusNoCredentials
	StatusUserActionTimeout    = ctap.StatusUserActionTimeout
	StatusNotAllowed           = ctap.StatusNotAllowed
	StatusPINInvalid           = ctap.StatusPINInvalid
	StatusPINBlocked           = ctap.StatusPINBlocked
	StatusPINAuthInvalid       = ctap.StatusPINAuthInvalid
	StatusPINAuthBlocked       = ctap.StatusPINAuthBlocked
	StatusPINNotSet            = ctap.StatusPINNotSet
	StatusPUATRequired         = ctap.StatusPUATRequired
	StatusPINPolicyViolation   = ctap.StatusPINPolicyViolation
	StatusRequestTooLarge      = ctap.StatusRequestTooLarge
	StatusUPRequired           = ctap.StatusUPRequired
	StatusUVBlocked            = ctap.StatusUVBlocked
	StatusUVInvalid            = ctap.StatusUVInvalid
	StatusOther                = ctap.StatusOther

	// StatusUnauthorizedPermission means a pinUvAuthToken lacks the
	// permission the command needs (CTAP 2.1 §6.5.5.7).
	StatusUnauthorizedPermission = ctap.StatusUnauthorizedPermission
	// StatusIntegrityFailure means a large-blob array failed its hash
	// check (CTAP 2.1 §6.10).
	StatusIntegrityFailure     = ctap.StatusIntegrityFailure
	StatusInvalidSubcommand    = ctap.StatusInvalidSubcommand
	StatusLargeBlobStorageFull = ctap.StatusLargeBlobStorageFull
	StatusActionTimeout        = ctap.StatusActionTimeout
)

// HIDError is a CTAPHID_ERROR code sent by a key (CTAP 2.1 §11.2.9.1.6),
// matched with errors.Is(err, fido.HIDErrChannelBusy) and the like.
type HIDError = hid.Error

// CTAPHID error codes.
const (
	HIDErrInvalidCmd     = hid.ErrInvalidCmd
	HIDErrInvalidPar     = hid.ErrInvalidPar
	HIDErrInvalidLen     = hid.ErrInvalidLen
	HIDErrInvalidSeq     = hid.ErrInvalidSeq
	HIDErrMsgTimeout     = hid.ErrMsgTimeout
	HIDErrChannelBusy    = hid.ErrChannelBusy
	HIDErrLockRequired   = hid.ErrLockRequired
	HIDErrInvalidChannel = hid.ErrInvalidChannel
	HIDErrOther          = hid.ErrOther
)

var (
	// ErrNoDevice means no security key is attached, or the path names
	// none.
	ErrNoDevice = errors.New("fido: no security key found")
	// ErrUnsupportedPlatform is returned where this platform has no
	// transport for keys (hidraw is Linux only; use the libfido2 backend
	// elsewhere).
	ErrUnsupportedPlatform = errors.New("fido: no HID transport on this platform")
	// ErrNotSupported means the key cannot do what was asked, such as a
	// discoverable credential on a U2F-only key.
	ErrNotSupported = errors.New("fido: not supported by this key")
	// ErrInvalidRequest means the request itself is wrong (a missing RP
	// ID, a client data hash that is not 32 bytes); nothing was sent.
	ErrInvalidRequest = errors.New("fido: invalid request")
	// ErrInvalidResponse is matched by every *ResponseError.
	ErrInvalidResponse = errors.New("fido: invalid response from key")
	// ErrDeviceGone means the key stopped answering mid-operation: it
	// sent nothing on the operation's channel for Opener.IdleTimeout.
	ErrDeviceGone = errors.New("fido: key stopped answering")
	// ErrTooManyAccounts means a discoverable GetAssertion found the key
	// reporting more accounts for the relying party (numberOfCredentials,
	// CTAP 2.1 §6.2) than the client collects; rather than leave some
	// out, it returns none. Name the account's credentials in an allow
	// list instead.
	ErrTooManyAccounts = errors.New("fido: the key holds more accounts for the relying party than the client collects")
	// ErrPINRequired means an operation needs the key's PIN and there was
	// no Prompt.PIN callback to ask for it, or the callback declined
	// (CTAP 2.1 §6.5). Nothing needing the PIN was sent to the key.
	ErrPINRequired = errors.New("fido: the key's PIN is required")
	// ErrNoLargeBlob means the key's large-blob array holds no entry that
	// the given largeBlobKey opens (CTAP 2.1 §6.10.3).
	ErrNoLargeBlob = errors.New("fido: no large blob for this key")
)

// ErrOperationTimeout means an operation took longer than
// Opener.MaxOperationTime, however the key kept saying it was busy (a key
// that sends only KEEPALIVE, say). The key was sent CTAPHID_CANCEL. It is
// the cause of the operation's context ending, so an error wrapping it also
// matches context.DeadlineExceeded.
var ErrOperationTimeout error = operationTimeout{}

type operationTimeout struct{}

func (operationTimeout) Error() string {
	return "fido: operation took longer than the maximum operation time"
}

func (operationTimeout) Is(target error) bool { return target == context.DeadlineExceeded }

// PINError reports a PIN the key refused (CTAP 2.1 §6.5.5.7 and
// §6.5.5.6). Err is the key's status, which says what to do next:
//
//   - StatusPINInvalid: the PIN was wrong; Retries more wrong PINs block it.
//   - StatusPINAuthBlocked: three wrong PINs in a row; the key accepts no
//     PIN until it is unplugged and plugged in again (a power cycle).
//   - StatusPINBlocked: no retries are left; only a reset, which erases
//     every credential, makes the key usable again.
//
// Match it with errors.As, or match the status with errors.Is(err,
// fido.StatusPINInvalid) and the like. The PIN itself is never part of the
// error.
type PINError struct {
	// Retries is how many wrong PINs the key still accepts, from
	// getPINRetries (CTAP 2.1 §6.5.5.2); -1 when the key did not say.
	Retries int
	// Err is StatusPINInvalid, StatusPINAuthBlocked or StatusPINBlocked.
	Err error
}

func (e *PINError) Error() string {
	switch {
	case errors.Is(e.Err, StatusPINBlocked):
		return "PIN blocked: no retries left, only a reset makes the key usable again: " + e.Err.Error()
	case errors.Is(e.Err, StatusPINAuthBlocked):
		return fmt.Sprintf("too many wrong PINs in a row: unplug the key and plug it in again (%s): %v", retriesLeft(e.Retries), e.Err)
	}
	return fmt.Sprintf("wrong PIN (%s): %v", retriesLeft(e.Retries), e.Err)
}

func retriesLeft(n int) string {
	switch {
	case n < 0:
		return "retries left unknown"
	case n == 1:
		return "1 retry left"
	}
	return fmt.Sprintf("%d retries left", n)
}

// Unwrap returns the key's status.
func (e *PINError) Unwrap() error { return e.Err }

// ResponseError reports a response from a key that does not parse or breaks
// the protocol. It matches ErrInvalidResponse and unwraps to the precise
// cause (for CBOR, one of the internal decoder's sentinels through a
// *SyntaxError-like value whose text says what was wrong).
type ResponseError struct {
	// Op is the operation, such as "getAssertion".
	Op  string
	Err error
}

func (e *ResponseError) Error() string {
	return fmt.Sprintf("fido: invalid %s response from key: %v", e.Op, e.Err)
}

// Unwrap returns the cause.
func (e *ResponseError) Unwrap() error { return e.Err }

// Is makes every ResponseError match ErrInvalidResponse.
func (e *ResponseError) Is(target error) bool { return target == ErrInvalidResponse }

func invalidRequest(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRequest, fmt.Sprintf(format, args...))
}
