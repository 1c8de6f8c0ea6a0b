// Package fido talks to FIDO2 and U2F security keys: it enrolls a key
// (makes a credential) and verifies it (gets an assertion), over USB HID
// with nothing but Go.
//
// Start with [Devices] to list attached keys and [Open] to open one:
//
//	keys, err := fido.Devices(ctx)
//	dev, err := fido.Open(ctx, keys[0].Path)
//	defer dev.Close()
//	att, err := dev.MakeCredential(ctx, &fido.MakeCredentialRequest{...})
//
// [Device] speaks CTAP 2.1 to keys that support it and falls back to U2F
// (CTAP1) for older ones, returning the same types either way. Everything
// that may wait for a person takes a context: cancelling it sends
// CTAPHID_CANCEL to the key, which stops waiting for a touch. Whatever the
// context, no operation outlasts [Opener.MaxOperationTime] (2 minutes by
// default), and one whose key falls silent ends with [ErrDeviceGone].
//
// # PIN and user verification
//
// [Prompt.PIN] gives the client the key's PIN when an operation needs a
// pinUvAuthToken (CTAP 2.1 §6.5): makeCredential and getAssertion with
// UserVerification set or demanded by the key, and the management calls.
// The client picks PIN/UV auth protocol two when the key offers it, else
// one; it uses the key's built-in user verification when it can, and the
// PIN otherwise; it asks for a token with exactly the permissions and
// relying party the operation needs, and forgets token and PIN when the
// operation returns.
//
// Managing a key goes through optional interfaces beside [Authenticator],
// which [Device] implements and other backends may: [PINManager],
// [CredentialManager], [Configurator] and [LargeBlobStore]. CTAP
// extensions (hmac-secret, credProtect, credBlob, minPinLength,
// largeBlobKey) are fields of the requests and results.
//
// # Relying parties and browsers
//
// [WebAuthnClient] does what a browser does with a key: it takes a relying
// party's creation or request options JSON and an origin, checks that the
// origin may use the relying party ID, and returns the credential JSON the
// relying party verifies.
//
// # Virtual keys
//
// Package [github.com/fidokit/fidokit/fido/virtual] is a software security
// key that speaks the same CTAPHID protocol; [Open] takes the path of its
// socket as if it were /dev/hidrawN, so code written against this package
// runs unchanged in tests.
//
// # Errors
//
// A key's CTAP status comes back as a [Status], matched with errors.Is:
//
//	if errors.Is(err, fido.StatusCredentialExcluded) { ... }
//
// A PIN the key refused is a [*PINError] with the retries left; an
// operation that needs a PIN nobody could give fails with [ErrPINRequired];
// what the key cannot do at all is [ErrNotSupported]. Framing errors
// reported by the key are [HIDError]s; a response that does not parse is a
// [*ResponseError].
package fido

import (
	"context"
	"crypto/sha256"
	"strconv"
)

// Authenticator is a security key as the rest of fidokit uses it: the pure-Go
// [Device] implements it, as do other backends such as
// github.com/fidokit/fidokit/fido/libfido2.
//
// Implementations are safe for concurrent use; they serialise requests to
// the key. Errors from the key are [Status] values (or wrap them).
type Authenticator interface {
	// Info describes the key (CTAP 2.1 §6.4 authenticatorGetInfo).
	Info(ctx context.Context) (*Info, error)
	// MakeCredential creates a credential, waiting for a touch (CTAP 2.1
	// §6.1). A key that holds a credential from req.ExcludeList returns
	// an error matching StatusCredentialExcluded.
	MakeCredential(ctx context.Context, req *MakeCredentialRequest) (*Attestation, error)
	// GetAssertion signs req.ClientDataHash with each matching credential
	// (CTAP 2.1 §6.2 and §6.3). It returns at least one assertion, or an
	// error matching StatusNoCredentials.
	GetAssertion(ctx context.Context, req *GetAssertionRequest) ([]*Assertion, error)
	// Close releases the key.
	Close() error
}

// Algorithm is a COSE algorithm identifier (IANA "COSE Algorithms").
type Algorithm int64

// Algorithms security keys use.
const (
	ES256 Algorithm = -7   // ECDSA P-256 with SHA-256
	EdDSA Algorithm = -8   // Ed25519
	RS256 Algorithm = -257 // RSASSA-PKCS1-v1_5 with SHA-256
)

func (a Algorithm) String() string {
	switch a {
	case ES256:
		return "ES256"
	case EdDSA:
		return "EdDSA"
	case RS256:
		return "RS256"
	}
	return "COSE(" + strconv.FormatInt(int64(a), 10) + ")"
}

// RelyingParty identifies the service a credential is for.
type RelyingParty struct {
	// ID is the relying party identifier, a domain such as "example.com".
	ID string
	// Name is shown by keys with a display; empty means ID.
	Name string
}

// User identifies the account a credential is for.
type User struct {
	// ID is the relying party's opaque user handle, 1 to 64 bytes.
	ID []byte
	// Name is the account name, such as an email address. Optional.
	Name string
	// DisplayName is the person's name. Optional.
	DisplayName string
}

// MakeCredentialRequest asks a key to create a credential (enroll).
type MakeCredentialRequest struct {
	// ClientDataHash is the SHA-256 of the client data; required, 32 bytes.
	ClientDataHash []byte
	// RP is the relying party; RP.ID is required.
	RP RelyingParty
	// User is the account; User.ID is required.
	User User
	// Algorithms lists acceptable algorithms, most preferred first. Nil
	// means ES256 only.
	Algorithms []Algorithm
	// ExcludeList holds IDs of credentials the account already has; a key
	// holding one of them refuses with StatusCredentialExcluded.
	ExcludeList [][]byte
	// Discoverable asks for a discoverable (resident) credential that the
	// key stores, so a later sign-in needs no user name. Default false.
	Discoverable bool
	// UserVerification asks for the person to be verified, by the key's
	// built-in user verification or by its PIN (asked for through
	// Prompt.PIN). Default false: a touch only, unless the key itself
	// demands verification (CTAP 2.1 §6.1.2: alwaysUv, or a PIN set
	// without makeCredUvNotRqd), in which case it is done anyway.
	UserVerification bool
	// Extensions asks for CTAP extensions (CTAP 2.1 §12). The zero value
	// asks for none.
	Extensions MakeCredentialExtensions
}

// GetAssertionRequest asks a key to sign in (verify).
type GetAssertionRequest struct {
	// RPID is the relying party ID; required.
	RPID string
	// ClientDataHash is the SHA-256 of the client data; required, 32 bytes.
	ClientDataHash []byte
	// AllowList holds the IDs of credentials to use. Empty means any
	// discoverable credential the key holds for RPID.
	AllowList [][]byte
	// UserVerification asks for the person to be verified, by the key's
	// built-in user verification or by its PIN (asked for through
	// Prompt.PIN). Default false, unless the key has alwaysUv set.
	UserVerification bool
	// NoUserPresence asks the key not to wait for a touch (a silent
	// probe). Default false: the key waits for a touch.
	NoUserPresence bool
	// Extensions asks for CTAP extensions (CTAP 2.1 §12). The zero value
	// asks for none.
	Extensions GetAssertionExtensions
}

// Attestation is a new credential and the key's statement about it.
type Attestation struct {
	// Format is the attestation statement format: "packed", "fido-u2f",
	// "none" and so on (WebAuthn L3 §8).
	Format string
	// AuthData is the raw authenticator data (WebAuthn L3 §6.1).
	AuthData []byte
	// Statement is the raw CBOR attestation statement map.
	Statement []byte
	// CredentialID identifies the new credential.
	CredentialID []byte
	// PublicKey is the credential public key as a COSE_Key.
	PublicKey []byte
	// Algorithm is the credential's algorithm.
	Algorithm Algorithm
	// AAGUID identifies the key model; zero for U2F keys.
	AAGUID [16]byte
	// SignCount is the signature counter in AuthData.
	SignCount uint32
	// UserPresent and UserVerified are the UP and UV flags of AuthData.
	UserPresent, UserVerified bool
	// Extensions holds the key's extension outputs; zero when none.
	Extensions AttestationExtensions

	// parsed is PublicKey as Device.MakeCredential parsed it, kept so
	// that a WebAuthnClient need not parse it again; parsedFrom is the
	// encoding it came from, for a PublicKey changed since.
	parsed     any // a crypto.PublicKey
	parsedFrom []byte
}

// Assertion is one signature by a credential.
type Assertion struct {
	// CredentialID identifies the credential that signed.
	CredentialID []byte
	// AuthData is the raw authenticator data that was signed.
	AuthData []byte
	// Signature is over AuthData followed by the client data hash.
	Signature []byte
	// User is the account of a discoverable credential; nil otherwise.
	User *User
	// SignCount is the signature counter in AuthData.
	SignCount uint32
	// UserPresent and UserVerified are the UP and UV flags of AuthData.
	UserPresent, UserVerified bool
	// Extensions holds the extension outputs, decrypted where need be;
	// zero when none.
	Extensions AssertionExtensions
}

// Info describes a key (CTAP 2.1 §6.4).
type Info struct {
	// Versions lists the protocol versions: "FIDO_2_1", "FIDO_2_0",
	// "U2F_V2" and so on.
	Versions []string
	// Extensions lists the CTAP extensions the key supports.
	Extensions []string
	// AAGUID identifies the key model; zero for U2F-only keys.
	AAGUID [16]byte
	// Options holds the key's option IDs ("rk", "up", "uv", "plat",
	// "clientPin", ...) and their values. An absent option is
	// unsupported.
	Options map[string]bool
	// MaxMsgSize is the largest CTAP message the key accepts.
	MaxMsgSize int
	// PINUVAuthProtocols lists the PIN/UV auth protocols, preferred first.
	PINUVAuthProtocols []int
	// MaxCredentialCountInList bounds ExcludeList and AllowList; 0 means
	// the key did not say.
	MaxCredentialCountInList int
	// MaxCredentialIDLength bounds credential IDs; 0 means unknown.
	MaxCredentialIDLength int
	// Transports lists how the key connects ("usb", "nfc", ...).
	Transports []string
	// Algorithms lists the algorithms the key supports, preferred first.
	Algorithms []Algorithm
	// FirmwareVersion is the vendor's firmware version, if given.
	FirmwareVersion uint64
	// MinPINLength is the minimum PIN length in code points, if given.
	MinPINLength int
	// RemainingDiscoverableCredentials estimates free slots; -1 unknown.
	RemainingDiscoverableCredentials int
	// MaxSerializedLargeBlobArray is the size of the key's large-blob
	// storage in bytes (CTAP 2.1 §6.10); 0 when it has none.
	MaxSerializedLargeBlobArray int
	// ForcePINChange is true when the key refuses its PIN until it is
	// changed (CTAP 2.1 §6.11.4); see [Device.ChangePIN].
	ForcePINChange bool
	// MaxCredBlobLength is the longest credBlob the key stores (CTAP 2.1
	// §12.2); 0 when it does not say.
	MaxCredBlobLength int
	// MaxRPIDsForSetMinPINLength bounds the rpIDs of
	// [Device.SetMinPINLength]; 0 when the key takes none.
	MaxRPIDsForSetMinPINLength int
	// PreferredPlatformUVAttempts is how many times the client should try
	// built-in user verification before falling back to the PIN (CTAP
	// 2.1 §6.4); 0 when the key does not say, which the client reads as 1.
	PreferredPlatformUVAttempts int
	// UVModality is the FIDO registry's bit set of user verification
	// methods the key has built in; 0 when it does not say.
	UVModality uint64
}

// Supports reports whether the key lists version v (such as "FIDO_2_1").
func (i *Info) Supports(v string) bool {
	for _, x := range i.Versions {
		if x == v {
			return true
		}
	}
	return false
}

// CTAP2 reports whether the key speaks CTAP2; keys that do not are
// driven through U2F.
func (i *Info) CTAP2() bool { return i.Supports("FIDO_2_0") || i.Supports("FIDO_2_1") }

// Option reports an option's value and whether the key supports it.
func (i *Info) Option(id string) (value, supported bool) {
	value, supported = i.Options[id]
	return value, supported
}

// Prompt is how a key's wait for a person reaches that person. A nil Touch
// means the key waits silently; a nil PIN means operations that need the
// PIN fail with an error wrapping [ErrPINRequired].
type Prompt struct {
	// Touch is called once per operation, when the key first says it is
	// waiting for a touch (CTAPHID KEEPALIVE with status UPNEEDED, or a U2F
	// key answering "conditions not satisfied"). Show "Touch your security
	// key" here. It must not block.
	Touch func()
	// PIN asks the person for the key's PIN. It is called only when an
	// operation needs a pinUvAuthToken (CTAP 2.1 §6.5.5.7) and the key's
	// built-in user verification is absent, failed or blocked, and again
	// after a wrong PIN, with req.Retry set, until the PIN is right or the
	// key blocks it. Return an error to decline; the operation then fails
	// with an error wrapping ErrPINRequired and the returned error.
	//
	// It runs while the Device is busy with the operation, so it must not
	// call the Device itself.
	//
	// The PIN returned is used for this one operation and not kept: the
	// client derives from it the padded and hashed forms the protocol
	// needs, zeroes those when done, and never puts it in an error or a
	// log.
	PIN func(ctx context.Context, req PINRequest) (string, error)
}

// PINRequest tells a [Prompt.PIN] callback why the PIN is needed.
type PINRequest struct {
	// Op names the operation that needs the PIN: "makeCredential",
	// "getAssertion", "credentialManagement", "config" or "largeBlobs".
	Op string
	// RPID is the relying party the operation is for; empty for key
	// management.
	RPID string
	// Retries is how many wrong PINs the key still accepts before it
	// blocks the PIN for good (CTAP 2.1 §6.5.5.2); -1 when unknown.
	Retries int
	// Retry is true when the previous PIN given for this operation was
	// wrong.
	Retry bool
	// UVFailed is true when the key's built-in user verification
	// (fingerprint and the like) failed or is blocked, so the PIN is the
	// fallback.
	UVFailed bool
}

// CredProtect is a credential protection policy (CTAP 2.1 §12.1): when a
// key may use or reveal a credential without user verification.
type CredProtect int

// Credential protection policies (CTAP 2.1 §12.1). The zero value means
// no policy asked for, which keys treat as CredProtectUVOptional.
const (
	// CredProtectUVOptional (userVerificationOptional) lets the
	// credential be used with or without user verification.
	CredProtectUVOptional CredProtect = 1
	// CredProtectUVOptionalWithCredentialIDList
	// (userVerificationOptionalWithCredentialIDList) needs user
	// verification unless the caller names the credential in an allow
	// list, so a discoverable credential is not revealed to anyone who
	// holds the key.
	CredProtectUVOptionalWithCredentialIDList CredProtect = 2
	// CredProtectUVRequired (userVerificationRequired) needs user
	// verification for every use; without it the key acts as if it did
	// not hold the credential.
	CredProtectUVRequired CredProtect = 3
)

func (c CredProtect) String() string {
	switch c {
	case 0:
		return "none"
	case CredProtectUVOptional:
		return "userVerificationOptional"
	case CredProtectUVOptionalWithCredentialIDList:
		return "userVerificationOptionalWithCredentialIDList"
	case CredProtectUVRequired:
		return "userVerificationRequired"
	}
	return "credProtect(" + strconv.Itoa(int(c)) + ")"
}

// MakeCredentialExtensions are the CTAP extensions a new credential can ask
// for (CTAP 2.1 §12). An extension the key does not list in getInfo is not
// sent, and its output stays zero, except where a field says otherwise.
type MakeCredentialExtensions struct {
	// HMACSecret makes a credential that can derive secrets from salts
	// (hmac-secret, CTAP 2.1 §12.5); see GetAssertionExtensions.HMACSecret.
	HMACSecret bool
	// CredProtect is the protection policy for the credential (credProtect,
	// CTAP 2.1 §12.1). Zero asks for none.
	CredProtect CredProtect
	// EnforceCredProtect makes MakeCredential fail with ErrNotSupported,
	// before the key is asked, when CredProtect is above
	// CredProtectUVOptional and the key does not support credProtect
	// (CTAP 2.1 §12.1, enforceCredentialProtectionPolicy).
	EnforceCredProtect bool
	// CredBlob is a small blob for the key to store with the credential
	// (credBlob, CTAP 2.1 §12.2), at most Info.MaxCredBlobLength bytes.
	// Nil stores none.
	CredBlob []byte
	// MinPINLength asks the key to report its minimum PIN length in the
	// attestation, which it does only for relying parties it was told to
	// (minPinLength, CTAP 2.1 §12.4; see [Device.SetMinPINLength]).
	MinPINLength bool
	// LargeBlobKey asks for the credential's key to the large-blob store
	// (largeBlobKey, CTAP 2.1 §12.3). Only discoverable credentials have
	// one: with Discoverable false the request is invalid.
	LargeBlobKey bool
}

// GetAssertionExtensions are the CTAP extensions a sign-in can ask for
// (CTAP 2.1 §12). The zero value asks for none.
type GetAssertionExtensions struct {
	// HMACSecret derives one or two secrets from salts (hmac-secret, CTAP
	// 2.1 §12.5). The client does the key agreement and the salt
	// encryption; the outputs come back decrypted in
	// AssertionExtensions.HMACSecret. Nil asks for none.
	HMACSecret *HMACSecretInput
	// CredBlob asks for the blob stored with the credential (credBlob,
	// CTAP 2.1 §12.2).
	CredBlob bool
	// LargeBlobKey asks for the credential's key to the large-blob store
	// (largeBlobKey, CTAP 2.1 §12.3).
	LargeBlobKey bool
}

// HMACSecretInput holds the salts of an hmac-secret request (CTAP 2.1
// §12.5). Salt1 is required; Salt2 is optional. Each is 32 bytes.
type HMACSecretInput struct {
	Salt1, Salt2 []byte
}

// HMACSecretOutput holds the secrets an hmac-secret credential derived:
// HMAC-SHA-256 of each salt under a per-credential key, one key for
// sign-ins with user verification and another for those without (CTAP 2.1
// §12.5). Output2 is nil when only one salt was given.
type HMACSecretOutput struct {
	Output1, Output2 []byte
}

// AttestationExtensions are the extension outputs of a new credential
// (CTAP 2.1 §12). Zero fields were not reported.
type AttestationExtensions struct {
	// HMACSecret is true when the credential supports hmac-secret.
	HMACSecret bool
	// CredProtect is the protection policy the key applied; 0 when it
	// reported none.
	CredProtect CredProtect
	// CredBlobStored is true when the key stored the credBlob.
	CredBlobStored bool
	// MinPINLength is the key's minimum PIN length, when it reported it.
	MinPINLength int
	// LargeBlobKey is the credential's 32-byte key to the large-blob
	// store; nil when not asked for or not supported.
	LargeBlobKey []byte
}

// AssertionExtensions are the extension outputs of a sign-in (CTAP 2.1
// §12). Zero fields were not reported.
type AssertionExtensions struct {
	// HMACSecret holds the derived secrets; nil when not asked for or the
	// credential has no hmac-secret.
	HMACSecret *HMACSecretOutput
	// CredBlob is the blob stored with the credential; nil when not asked
	// for, empty when none was stored.
	CredBlob []byte
	// LargeBlobKey is the credential's 32-byte key to the large-blob
	// store; nil when not asked for or the credential has none.
	LargeBlobKey []byte
}

// RPIDHash returns SHA-256 of a relying party ID, as keys store it.
func RPIDHash(rpID string) [32]byte { return sha256.Sum256([]byte(rpID)) }
