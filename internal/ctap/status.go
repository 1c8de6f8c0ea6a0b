// Package ctap holds the CTAP 2.1 and CTAP1/U2F message types and their
// CTAP2-canonical CBOR codecs, shared by the fido client and the virtual
// authenticator.
//
// It mirrors the spec: field names and map keys follow CTAP 2.1 §6
// ("Authenticator API"), status codes §8.2.
package ctap

import "fmt"

// Status is a CTAP2 status byte (CTAP 2.1 §8.2). A non-zero Status is an
// error; compare with errors.Is, which sees through wrapping.
type Status byte

// Status codes from CTAP 2.1 §8.2.
const (
	StatusOK                     Status = 0x00 // CTAP1_ERR_SUCCESS, CTAP2_OK
	StatusInvalidCommand         Status = 0x01 // CTAP1_ERR_INVALID_COMMAND
	StatusInvalidParameter       Status = 0x02 // CTAP1_ERR_INVALID_PARAMETER
	StatusInvalidLength          Status = 0x03 // CTAP1_ERR_INVALID_LENGTH
	StatusInvalidSeq             Status = 0x04 // CTAP1_ERR_INVALID_SEQ
	StatusTimeout                Status = 0x05 // CTAP1_ERR_TIMEOUT
	StatusChannelBusy            Status = 0x06 // CTAP1_ERR_CHANNEL_BUSY
	StatusLockRequired           Status = 0x0A // CTAP1_ERR_LOCK_REQUIRED
	StatusInvalidChannel         Status = 0x0B // CTAP1_ERR_INVALID_CHANNEL
	StatusCBORUnexpectedType     Status = 0x11 // CTAP2_ERR_CBOR_UNEXPECTED_TYPE
	StatusInvalidCBOR            Status = 0x12 // CTAP2_ERR_INVALID_CBOR
	StatusMissingParameter       Status = 0x14 // CTAP2_ERR_MISSING_PARAMETER
	StatusLimitExceeded          Status = 0x15 // CTAP2_ERR_LIMIT_EXCEEDED
	StatusFPDatabaseFull         Status = 0x17 // CTAP2_ERR_FP_DATABASE_FULL
	StatusLargeBlobStorageFull   Status = 0x18 // CTAP2_ERR_LARGE_BLOB_STORAGE_FULL
	StatusCredentialExcluded     Status = 0x19 // CTAP2_ERR_CREDENTIAL_EXCLUDED
	StatusProcessing             Status = 0x21 // CTAP2_ERR_PROCESSING
	StatusInvalidCredential      Status = 0x22 // CTAP2_ERR_INVALID_CREDENTIAL
	StatusUserActionPending      Status = 0x23 // CTAP2_ERR_USER_ACTION_PENDING
	StatusOperationPending       Status = 0x24 // CTAP2_ERR_OPERATION_PENDING
	StatusNoOperations           Status = 0x25 // CTAP2_ERR_NO_OPERATIONS
	StatusUnsupportedAlgorithm   Status = 0x26 // CTAP2_ERR_UNSUPPORTED_ALGORITHM
	StatusOperationDenied        Status = 0x27 // CTAP2_ERR_OPERATION_DENIED
	StatusKeyStoreFull           Status = 0x28 // CTAP2_ERR_KEY_STORE_FULL
	StatusUnsupportedOption      Status = 0x2B // CTAP2_ERR_UNSUPPORTED_OPTION
	StatusInvalidOption          Status = 0x2C // CTAP2_ERR_INVALID_OPTION
	StatusKeepaliveCancel        Status = 0x2D // CTAP2_ERR_KEEPALIVE_CANCEL
	StatusNoCredentials          Status = 0x2E // CTAP2_ERR_NO_CREDENTIALS
	StatusUserActionTimeout      Status = 0x2F // CTAP2_ERR_USER_ACTION_TIMEOUT
	StatusNotAllowed             Status = 0x30 // CTAP2_ERR_NOT_ALLOWED
	StatusPINInvalid             Status = 0x31 // CTAP2_ERR_PIN_INVALID
	StatusPINBlocked             Status = 0x32 // CTAP2_ERR_PIN_BLOCKED
	StatusPINAuthInvalid         Status = 0x33 // CTAP2_ERR_PIN_AUTH_INVALID
	StatusPINAuthBlocked         Status = 0x34 // CTAP2_ERR_PIN_AUTH_BLOCKED
	StatusPINNotSet              Status = 0x35 // CTAP2_ERR_PIN_NOT_SET
	StatusPUATRequired           Status = 0x36 // CTAP2_ERR_PUAT_REQUIRED
	StatusPINPolicyViolation     Status = 0x37 // CTAP2_ERR_PIN_POLICY_VIOLATION
	StatusRequestTooLarge        Status = 0x39 // CTAP2_ERR_REQUEST_TOO_LARGE
	StatusActionTimeout          Status = 0x3A // CTAP2_ERR_ACTION_TIMEOUT
	StatusUPRequired             Status = 0x3B // CTAP2_ERR_UP_REQUIRED
	StatusUVBlocked              Status = 0x3C // CTAP2_ERR_UV_BLOCKED
	StatusIntegrityFailure       Status = 0x3D // CTAP2_ERR_INTEGRITY_FAILURE
	StatusInvalidSubcommand      Status = 0x3E // CTAP2_ERR_INVALID_SUBCOMMAND
	StatusUVInvalid              Status = 0x3F // CTAP2_ERR_UV_INVALID
	StatusUnauthorizedPermission Status = 0x40 // CTAP2_ERR_UNAUTHORIZED_PERMISSION
	StatusOther                  Status = 0x7F // CTAP1_ERR_OTHER
	StatusSpecLast               Status = 0xDF // CTAP2_ERR_SPEC_LAST
	StatusExtensionFirst         Status = 0xE0 // CTAP2_ERR_EXTENSION_FIRST
	StatusExtensionLast          Status = 0xEF // CTAP2_ERR_EXTENSION_LAST
	StatusVendorFirst            Status = 0xF0 // CTAP2_ERR_VENDOR_FIRST
	StatusVendorLast             Status = 0xFF // CTAP2_ERR_VENDOR_LAST
)

var statusNames = map[Status]string{
	StatusOK:                     "CTAP2_OK",
	StatusInvalidCommand:         "CTAP1_ERR_INVALID_COMMAND",
	StatusInvalidParameter:       "CTAP1_ERR_INVALID_PARAMETER",
	StatusInvalidLength:          "CTAP1_ERR_INVALID_LENGTH",
	StatusInvalidSeq:             "CTAP1_ERR_INVALID_SEQ",
	StatusTimeout:                "CTAP1_ERR_TIMEOUT",
	StatusChannelBusy:            "CTAP1_ERR_CHANNEL_BUSY",
	StatusLockRequired:           "CTAP1_ERR_LOCK_REQUIRED",
	StatusInvalidChannel:         "CTAP1_ERR_INVALID_CHANNEL",
	StatusCBORUnexpectedType:     "CTAP2_ERR_CBOR_UNEXPECTED_TYPE",
	StatusInvalidCBOR:            "CTAP2_ERR_INVALID_CBOR",
	StatusMissingParameter:       "CTAP2_ERR_MISSING_PARAMETER",
	StatusLimitExceeded:          "CTAP2_ERR_LIMIT_EXCEEDED",
	StatusFPDatabaseFull:         "CTAP2_ERR_FP_DATABASE_FULL",
	StatusLargeBlobStorageFull:   "CTAP2_ERR_LARGE_BLOB_STORAGE_FULL",
	StatusCredentialExcluded:     "CTAP2_ERR_CREDENTIAL_EXCLUDED",
	StatusProcessing:             "CTAP2_ERR_PROCESSING",
	StatusInvalidCredential:      "CTAP2_ERR_INVALID_CREDENTIAL",
	StatusUserActionPending:      "CTAP2_ERR_USER_ACTION_PENDING",
	StatusOperationPending:       "CTAP2_ERR_OPERATION_PENDING",
	StatusNoOperations:           "CTAP2_ERR_NO_OPERATIONS",
	StatusUnsupportedAlgorithm:   "CTAP2_ERR_UNSUPPORTED_ALGORITHM",
	StatusOperationDenied:        "CTAP2_ERR_OPERATION_DENIED",
	StatusKeyStoreFull:           "CTAP2_ERR_KEY_STORE_FULL",
	StatusUnsupportedOption:      "CTAP2_ERR_UNSUPPORTED_OPTION",
	StatusInvalidOption:          "CTAP2_ERR_INVALID_OPTION",
	StatusKeepaliveCancel:        "CTAP2_ERR_KEEPALIVE_CANCEL",
	StatusNoCredentials:          "CTAP2_ERR_NO_CREDENTIALS",
	StatusUserActionTimeout:      "CTAP2_ERR_USER_ACTION_TIMEOUT",
	StatusNotAllowed:             "CTAP2_ERR_NOT_ALLOWED",
	StatusPINInvalid:             "CTAP2_ERR_PIN_INVALID",
	StatusPINBlocked:             "CTAP2_ERR_PIN_BLOCKED",
	StatusPINAuthInvalid:         "CTAP2_ERR_PIN_AUTH_INVALID",
	StatusPINAuthBlocked:         "CTAP2_ERR_PIN_AUTH_BLOCKED",
	StatusPINNotSet:              "CTAP2_ERR_PIN_NOT_SET",
	StatusPUATRequired:           "CTAP2_ERR_PUAT_REQUIRED",
	StatusPINPolicyViolation:     "CTAP2_ERR_PIN_POLICY_VIOLATION",
	StatusRequestTooLarge:        "CTAP2_ERR_REQUEST_TOO_LARGE",
	StatusActionTimeout:          "CTAP2_ERR_ACTION_TIMEOUT",
	StatusUPRequired:             "CTAP2_ERR_UP_REQUIRED",
	StatusUVBlocked:              "CTAP2_ERR_UV_BLOCKED",
	StatusIntegrityFailure:       "CTAP2_ERR_INTEGRITY_FAILURE",
	StatusInvalidSubcommand:      "CTAP2_ERR_INVALID_SUBCOMMAND",
	StatusUVInvalid:              "CTAP2_ERR_UV_INVALID",
	StatusUnauthorizedPermission: "CTAP2_ERR_UNAUTHORIZED_PERMISSION",
	StatusOther:                  "CTAP1_ERR_OTHER",
}

// Error implements error. The text names the spec constant.
func (s Status) Error() string {
	if n, ok := statusNames[s]; ok {
		return fmt.Sprintf("ctap: %s (0x%02x)", n, byte(s))
	}
	return fmt.Sprintf("ctap: status 0x%02x", byte(s))
}

// String returns the spec name of the status.
func (s Status) String() string { return s.Error() }
