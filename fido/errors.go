package fido

import (
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
	// ErrDeviceGone means the key stopped answering mid-operation.
	ErrDeviceGone = errors.New("fido: key stopped answering")
)

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
