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
// CTAPHID_CANCEL to the key, which stops waiting for a touch.
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
// Framing errors reported by the key are [HIDError]s; a response that does
// not parse is a [*ResponseError].
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
	// UserVerification asks the key to verify the person itself
	// (biometrics or on-device PIN). Default false: a touch only.
	UserVerification bool
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
	// UserVerification asks the key to verify the person. Default false.
	UserVerification bool
	// NoUserPresence asks the key not to wait for a touch (a silent
	// probe). Default false: the key waits for a touch.
	NoUserPresence bool
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

// Prompt is how a key's wait for a person reaches that person. A nil field
// means the key waits silently.
type Prompt struct {
	// Touch is called once per operation, when the key first says it is
	// waiting for a touch (CTAPHID KEEPALIVE with status UPNEEDED, or a U2F
	// key answering "conditions not satisfied"). Show "Touch your security
	// key" here. It must not block.
	Touch func()
}

// RPIDHash returns SHA-256 of a relying party ID, as keys store it.
func RPIDHash(rpID string) [32]byte { return sha256.Sum256([]byte(rpID)) }
