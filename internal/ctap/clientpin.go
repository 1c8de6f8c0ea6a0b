package ctap

import (
	"bytes"
	"crypto/ecdh"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math"
	"reflect"

	"github.com/fxamacker/cbor/v2"
)

// This file holds the CTAP 2.1 messages around PIN/UV auth: clientPIN
// (§6.5), credentialManagement (§6.8), largeBlobs (§6.10), config (§6.11)
// and the extensions of §12. The cryptography is in internal/pinuv; here
// are only the wire formats and the exact bytes each pinUvAuthParam
// covers, so that the client and the virtual authenticator build and
// check the same messages.

// Option names of CTAP 2.1 that concern PIN/UV auth and the commands in
// this file, in getInfo's options map (§6.4) unless noted.
const (
	OptPinUvAuthToken           = "pinUvAuthToken" // getPinUvAuthToken* subcommands supported
	OptNoMcGaPermsWithClientPIN = "noMcGaPermissionsWithClientPin"
	OptCredMgmt                 = "credMgmt"              // authenticatorCredentialManagement (0x0A)
	OptCredentialMgmtPreview    = "credentialMgmtPreview" // prototype command 0x41
	OptLargeBlobs               = "largeBlobs"            // authenticatorLargeBlobs
	OptAuthnrCfg                = "authnrCfg"             // authenticatorConfig
	OptSetMinPINLength          = "setMinPINLength"       // config subcommand setMinPINLength
	OptMakeCredUvNotRqd         = "makeCredUvNotRqd"
	OptAlwaysUv                 = "alwaysUv"
	OptEP                       = "ep" // enterprise attestation: absent, disabled (false), enabled (true)
	OptBioEnroll                = "bioEnroll"
	OptUvAcfg                   = "uvAcfg"
	OptUvBioEnroll              = "uvBioEnroll"
)

// ParseKeyAgreement decodes a key agreement key, the keyAgreement of
// clientPIN requests and responses and of the hmac-secret input (CTAP 2.1
// §6.5.6 "getPublicKey"): a COSE_Key with kty EC2, alg ECDH-ES+HKDF-256
// (-25), crv P-256 and a point on the curve. Errors are *SyntaxError with
// What "COSE key", as from ParsePublicKey; a key of another algorithm
// wraps ErrInvalidValue, which an authenticator answers with
// CTAP1_ERR_INVALID_PARAMETER as §6.5.5 asks.
func ParseKeyAgreement(cose []byte) (*ecdh.PublicKey, error) {
	alg, pub, err := ParsePublicKey(cose)
	if err != nil {
		return nil, err
	}
	k, ok := pub.(*ecdh.PublicKey)
	if !ok || alg != AlgECDHESHKDF256 {
		return nil, syntaxErr("COSE key", ErrInvalidValue, fmt.Sprintf("alg %d, want ECDH-ES+HKDF-256 (-25)", alg))
	}
	return k, nil
}

// EncodeKeyAgreement encodes a P-256 key as the COSE_Key that keyAgreement
// fields carry (CTAP 2.1 §6.5.6); ParseKeyAgreement reverses it. It fails
// only for a nil key or one on another curve.
func EncodeKeyAgreement(pub *ecdh.PublicKey) (cbor.RawMessage, error) {
	b, err := MarshalPublicKey(pub)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// isMap reports whether raw holds a CBOR map (major type 5).
func isMap(raw []byte) bool { return len(raw) > 0 && raw[0]>>5 == 5 }

func checkMap(what, field string, raw cbor.RawMessage) error {
	if raw != nil && !isMap(raw) {
		return syntaxErr(what, ErrWrongType, field+" is not a map")
	}
	return nil
}

// pinUvAuthPrefix is the 32 bytes of 0xff that start the messages
// authenticated for authenticatorLargeBlobs and authenticatorConfig, so
// that they can never collide with a clientDataHash (CTAP 2.1 §6.10.2,
// §6.11).
var pinUvAuthPrefix = bytes.Repeat([]byte{0xff}, 32)

// ---------------------------------------------------------------------------
// authenticatorClientPIN, CTAP 2.1 §6.5.5

// ClientPINSubCommand is the subCommand of authenticatorClientPIN (CTAP 2.1
// §6.5.5.1).
type ClientPINSubCommand uint64

// ClientPIN subcommands (CTAP 2.1 §6.5.5.1). Value 8 is reserved.
const (
	ClientPINGetPINRetries                            ClientPINSubCommand = 0x01 // §6.5.5.2
	ClientPINGetKeyAgreement                          ClientPINSubCommand = 0x02 // §6.5.5.4
	ClientPINSetPIN                                   ClientPINSubCommand = 0x03 // §6.5.5.5
	ClientPINChangePIN                                ClientPINSubCommand = 0x04 // §6.5.5.6
	ClientPINGetPINToken                              ClientPINSubCommand = 0x05 // §6.5.5.7.1, superseded but still used
	ClientPINGetPinUvAuthTokenUsingUvWithPermissions  ClientPINSubCommand = 0x06 // §6.5.5.7.3
	ClientPINGetUVRetries                             ClientPINSubCommand = 0x07 // §6.5.5.3
	ClientPINGetPinUvAuthTokenUsingPinWithPermissions ClientPINSubCommand = 0x09 // §6.5.5.7.2
)

var clientPINNames = map[ClientPINSubCommand]string{
	ClientPINGetPINRetries:                            "getPINRetries",
	ClientPINGetKeyAgreement:                          "getKeyAgreement",
	ClientPINSetPIN:                                   "setPIN",
	ClientPINChangePIN:                                "changePIN",
	ClientPINGetPINToken:                              "getPinToken",
	ClientPINGetPinUvAuthTokenUsingUvWithPermissions:  "getPinUvAuthTokenUsingUvWithPermissions",
	ClientPINGetUVRetries:                             "getUVRetries",
	ClientPINGetPinUvAuthTokenUsingPinWithPermissions: "getPinUvAuthTokenUsingPinWithPermissions",
}

// String returns the spec name of the subcommand, or its number.
func (s ClientPINSubCommand) String() string {
	if n, ok := clientPINNames[s]; ok {
		return n
	}
	return fmt.Sprintf("clientPIN subcommand 0x%02x", uint64(s))
}

// ClientPINRequest holds the parameters of authenticatorClientPIN (CTAP 2.1
// §6.5.5). Which optional fields a subcommand needs is in §6.5.5.2 to
// §6.5.5.7; zero fields are omitted from the encoding.
type ClientPINRequest struct {
	PinUvAuthProtocol uint64              `cbor:"1,keyasint,omitempty"` // 0: absent (getPINRetries, getUVRetries may omit it)
	SubCommand        ClientPINSubCommand `cbor:"2,keyasint"`           // required
	// KeyAgreement is the platform's key agreement key, a COSE_Key map;
	// see EncodeKeyAgreement and ParseKeyAgreement. nil: absent.
	KeyAgreement   cbor.RawMessage `cbor:"3,keyasint,omitempty"`
	PinUvAuthParam []byte          `cbor:"4,keyasint,omitempty"` // nil: absent
	NewPinEnc      []byte          `cbor:"5,keyasint,omitempty"` // encrypt(shared, paddedPin); nil: absent
	PinHashEnc     []byte          `cbor:"6,keyasint,omitempty"` // encrypt(shared, LEFT(SHA-256(pin), 16)); nil: absent
	// Permissions is a pinuv.Permission bit set (§6.5.5.7); 0: absent,
	// which getPinUvAuthToken*WithPermissions answer with
	// CTAP2_ERR_MISSING_PARAMETER.
	Permissions uint64 `cbor:"9,keyasint,omitempty"`
	RPID        string `cbor:"10,keyasint,omitempty"` // permissions RP ID; "": absent
}

// AuthMessage returns the bytes pinUvAuthParam authenticates under the
// shared secret: newPinEnc for setPIN (§6.5.5.5) and newPinEnc ||
// pinHashEnc for changePIN (§6.5.5.6). Other subcommands carry no
// pinUvAuthParam and get nil.
func (r *ClientPINRequest) AuthMessage() []byte {
	switch r.SubCommand {
	case ClientPINSetPIN:
		return bytes.Clone(r.NewPinEnc)
	case ClientPINChangePIN:
		return append(bytes.Clone(r.NewPinEnc), r.PinHashEnc...)
	}
	return nil
}

// ClientPINResponse is the answer to authenticatorClientPIN (CTAP 2.1
// §6.5.5). Each subcommand fills only its own fields.
type ClientPINResponse struct {
	// KeyAgreement is the authenticator's key agreement key
	// (getKeyAgreement), a COSE_Key map; nil: absent.
	KeyAgreement cbor.RawMessage `cbor:"1,keyasint,omitempty"`
	// PinUvAuthToken is the token encrypted under the shared secret
	// (getPinToken, getPinUvAuthToken*); nil: absent.
	PinUvAuthToken []byte `cbor:"2,keyasint,omitempty"`
	// PinRetries (getPINRetries) may be 0, so nil means absent.
	PinRetries *uint64 `cbor:"3,keyasint,omitempty"`
	// PowerCycleState is true when the authenticator needs a power cycle
	// before more PIN attempts (getPINRetries); false also when absent.
	PowerCycleState bool `cbor:"4,keyasint,omitempty"`
	// UVRetries (getUVRetries) may be 0, so nil means absent.
	UVRetries *uint64 `cbor:"5,keyasint,omitempty"`
}

// DecodeClientPINRequest decodes and checks the CBOR parameters of an
// authenticatorClientPIN request from a host (CTAP 2.1 §6.5.5). Unknown
// keys are ignored. subCommand is required (0 counts as absent:
// MISSING_PARAMETER), keyAgreement must be a map (CBOR_UNEXPECTED_TYPE);
// the per-subcommand required fields, an unknown subcommand
// (CTAP2_ERR_INVALID_SUBCOMMAND) and the key's validity (ParseKeyAgreement)
// are the handler's to check, because §6.5.5 orders those checks after
// others that need the authenticator's state. Errors are *SyntaxError.
func DecodeClientPINRequest(params []byte) (*ClientPINRequest, error) {
	const what = "clientPIN request"
	r := new(ClientPINRequest)
	if err := decodeMessage(what, params, r); err != nil {
		return nil, err
	}
	if r.SubCommand == 0 {
		return nil, syntaxErr(what, ErrMissingField, "subCommand")
	}
	if err := checkMap(what, "keyAgreement", r.KeyAgreement); err != nil {
		return nil, err
	}
	return r, nil
}

// DecodeClientPINResponse decodes an authenticatorClientPIN response body
// from a device (CTAP 2.1 §6.5.5). Unknown keys are ignored and every field
// is optional, since which are present depends on the subcommand; the
// caller checks that the ones it asked for are there. keyAgreement must be
// a map. An empty body (setPIN, changePIN) is not CBOR: do not call
// DecodeClientPINResponse for it. Errors are *SyntaxError.
func DecodeClientPINResponse(data []byte) (*ClientPINResponse, error) {
	const what = "clientPIN response"
	r := new(ClientPINResponse)
	if err := decodeMessage(what, data, r); err != nil {
		return nil, err
	}
	if err := checkMap(what, "keyAgreement", r.KeyAgreement); err != nil {
		return nil, err
	}
	return r, nil
}

// ---------------------------------------------------------------------------
// authenticatorCredentialManagement, CTAP 2.1 §6.8

// CredMgmtSubCommand is the subCommand of authenticatorCredentialManagement
// and of its preview twin, command 0x41 (CTAP 2.1 §6.8). It is at most
// 0xff: the authenticated message holds it as one byte.
type CredMgmtSubCommand uint64

// Credential management subcommands (CTAP 2.1 §6.8).
const (
	CredMgmtGetCredsMetadata                      CredMgmtSubCommand = 0x01 // §6.8.2
	CredMgmtEnumerateRPsBegin                     CredMgmtSubCommand = 0x02 // §6.8.3
	CredMgmtEnumerateRPsGetNextRP                 CredMgmtSubCommand = 0x03 // §6.8.3
	CredMgmtEnumerateCredentialsBegin             CredMgmtSubCommand = 0x04 // §6.8.4
	CredMgmtEnumerateCredentialsGetNextCredential CredMgmtSubCommand = 0x05 // §6.8.4
	CredMgmtDeleteCredential                      CredMgmtSubCommand = 0x06 // §6.8.5
	CredMgmtUpdateUserInformation                 CredMgmtSubCommand = 0x07 // §6.8.6
)

var credMgmtNames = map[CredMgmtSubCommand]string{
	CredMgmtGetCredsMetadata:                      "getCredsMetadata",
	CredMgmtEnumerateRPsBegin:                     "enumerateRPsBegin",
	CredMgmtEnumerateRPsGetNextRP:                 "enumerateRPsGetNextRP",
	CredMgmtEnumerateCredentialsBegin:             "enumerateCredentialsBegin",
	CredMgmtEnumerateCredentialsGetNextCredential: "enumerateCredentialsGetNextCredential",
	CredMgmtDeleteCredential:                      "deleteCredential",
	CredMgmtUpdateUserInformation:                 "updateUserInformation",
}

// String returns the spec name of the subcommand, or its number.
func (s CredMgmtSubCommand) String() string {
	if n, ok := credMgmtNames[s]; ok {
		return n
	}
	return fmt.Sprintf("credentialManagement subcommand 0x%02x", uint64(s))
}

// CredMgmtParams is subCommandParams of authenticatorCredentialManagement
// (CTAP 2.1 §6.8). Nil fields are absent.
type CredMgmtParams struct {
	RPIDHash     []byte                `cbor:"1,keyasint,omitempty"` // enumerateCredentialsBegin: SHA-256 of the RP ID
	CredentialID *CredentialDescriptor `cbor:"2,keyasint,omitempty"` // deleteCredential, updateUserInformation
	User         *UserEntity           `cbor:"3,keyasint,omitempty"` // updateUserInformation
}

// CredMgmtRequest holds the parameters of authenticatorCredentialManagement
// (CTAP 2.1 §6.8), also used for the preview command 0x41.
//
// SubCommandParams is kept as encoded because pinUvAuthParam covers those
// exact bytes (see AuthMessage): the authenticator must check the bytes it
// received, not a re-encoding. Params is the same map decoded; the encoder
// ignores it. Build a request with SetParams, which fills both.
type CredMgmtRequest struct {
	SubCommand        CredMgmtSubCommand `cbor:"1,keyasint"`           // required
	SubCommandParams  cbor.RawMessage    `cbor:"2,keyasint,omitempty"` // a CBOR map; nil: absent
	PinUvAuthProtocol uint64             `cbor:"3,keyasint,omitempty"` // 0: absent
	PinUvAuthParam    []byte             `cbor:"4,keyasint,omitempty"` // nil: absent

	// Params is SubCommandParams decoded; nil when absent. Set by
	// DecodeCredMgmtRequest and SetParams, not encoded.
	Params *CredMgmtParams `cbor:"-"`
}

// SetParams sets the subcommand parameters, encoding p in CTAP2 canonical
// CBOR into SubCommandParams; nil removes them.
func (r *CredMgmtRequest) SetParams(p *CredMgmtParams) {
	r.Params = p
	r.SubCommandParams = nil
	if p != nil {
		r.SubCommandParams = MustMarshal(p)
	}
}

// AuthMessage returns the bytes pinUvAuthParam authenticates under the
// pinUvAuthToken: subCommand as one byte, followed by subCommandParams as
// encoded when present (CTAP 2.1 §6.8.2 to §6.8.6). The subcommands that
// continue an enumeration carry no pinUvAuthParam.
func (r *CredMgmtRequest) AuthMessage() []byte {
	return append([]byte{byte(r.SubCommand)}, r.SubCommandParams...)
}

// CredMgmtResponse is the answer to authenticatorCredentialManagement
// (CTAP 2.1 §6.8). Each subcommand fills only its own fields; nil and zero
// fields are absent.
type CredMgmtResponse struct {
	// The two counts of getCredsMetadata may be 0, so nil means absent.
	ExistingResidentCredentialsCount             *uint64 `cbor:"1,keyasint,omitempty"`
	MaxPossibleRemainingResidentCredentialsCount *uint64 `cbor:"2,keyasint,omitempty"`

	RP       *RPEntity `cbor:"3,keyasint,omitempty"` // enumerateRPs*
	RPIDHash []byte    `cbor:"4,keyasint,omitempty"` // enumerateRPs*
	TotalRPs uint64    `cbor:"5,keyasint,omitempty"` // enumerateRPsBegin

	User             *UserEntity           `cbor:"6,keyasint,omitempty"`  // enumerateCredentials*
	CredentialID     *CredentialDescriptor `cbor:"7,keyasint,omitempty"`  // enumerateCredentials*
	PublicKey        cbor.RawMessage       `cbor:"8,keyasint,omitempty"`  // COSE_Key map; see ParsePublicKey
	TotalCredentials uint64                `cbor:"9,keyasint,omitempty"`  // enumerateCredentialsBegin
	CredProtect      uint64                `cbor:"10,keyasint,omitempty"` // CredProtect* policy; 0: absent
	LargeBlobKey     []byte                `cbor:"11,keyasint,omitempty"` // 32 bytes; nil: absent
}

// maxSubCommand is the largest subcommand that the authenticated messages
// of credentialManagement and config can name in their one byte.
const maxSubCommand = 0xff

// DecodeCredMgmtRequest decodes and checks the CBOR parameters of an
// authenticatorCredentialManagement request from a host (CTAP 2.1 §6.8).
// Unknown keys are ignored. It requires subCommand (0 counts as absent)
// and, for the subcommands that need them, subCommandParams with rpIDHash
// (32 bytes), credentialID (with type and id) or user (with id); all
// MISSING_PARAMETER. subCommandParams must be a map, decoded into Params;
// a subCommand above 0xff is INVALID_PARAMETER. Whether pinUvAuthParam is
// present and valid, and an unknown subcommand, are the handler's to
// check. Errors are *SyntaxError.
func DecodeCredMgmtRequest(params []byte) (*CredMgmtRequest, error) {
	const what = "credentialManagement request"
	r := new(CredMgmtRequest)
	if err := decodeMessage(what, params, r); err != nil {
		return nil, err
	}
	switch {
	case r.SubCommand == 0:
		return nil, syntaxErr(what, ErrMissingField, "subCommand")
	case r.SubCommand > maxSubCommand:
		return nil, syntaxErr(what, ErrInvalidValue, fmt.Sprintf("subCommand %d", uint64(r.SubCommand)))
	}
	if err := checkMap(what, "subCommandParams", r.SubCommandParams); err != nil {
		return nil, err
	}
	if r.SubCommandParams != nil {
		p := new(CredMgmtParams)
		if err := decodeMessage(what, r.SubCommandParams, p); err != nil {
			return nil, err
		}
		if p.RPIDHash != nil && len(p.RPIDHash) != sha256.Size {
			return nil, syntaxErr(what, ErrInvalidValue, fmt.Sprintf("rpIDHash of %d bytes", len(p.RPIDHash)))
		}
		if p.CredentialID != nil {
			if err := checkDescriptor(what, "subCommandParams.credentialID", p.CredentialID); err != nil {
				return nil, err
			}
		}
		if p.User != nil && p.User.ID == nil {
			return nil, syntaxErr(what, ErrMissingField, "subCommandParams.user.id")
		}
		r.Params = p
	}
	p := r.Params
	if p == nil {
		p = new(CredMgmtParams)
	}
	switch r.SubCommand {
	case CredMgmtEnumerateCredentialsBegin:
		if p.RPIDHash == nil {
			return nil, syntaxErr(what, ErrMissingField, "subCommandParams.rpIDHash")
		}
	case CredMgmtDeleteCredential, CredMgmtUpdateUserInformation:
		if p.CredentialID == nil {
			return nil, syntaxErr(what, ErrMissingField, "subCommandParams.credentialID")
		}
		if r.SubCommand == CredMgmtUpdateUserInformation && p.User == nil {
			return nil, syntaxErr(what, ErrMissingField, "subCommandParams.user")
		}
	}
	return r, nil
}

// DecodeCredMgmtResponse decodes an authenticatorCredentialManagement
// response body from a device (CTAP 2.1 §6.8). Unknown keys are ignored and
// every field is optional, since which are present depends on the
// subcommand; present ones are checked: an RP and a user need their ids, a
// credential its type and id, rpIDHash is 32 bytes and publicKey a map. Errors are
// *SyntaxError.
func DecodeCredMgmtResponse(data []byte) (*CredMgmtResponse, error) {
	const what = "credentialManagement response"
	r := new(CredMgmtResponse)
	if err := decodeMessage(what, data, r); err != nil {
		return nil, err
	}
	if r.RP != nil && r.RP.ID == "" {
		return nil, syntaxErr(what, ErrMissingField, "rp.id")
	}
	if r.User != nil && r.User.ID == nil {
		return nil, syntaxErr(what, ErrMissingField, "user.id")
	}
	if r.CredentialID != nil {
		if err := checkDescriptor(what, "credentialID", r.CredentialID); err != nil {
			return nil, err
		}
	}
	if r.RPIDHash != nil && len(r.RPIDHash) != sha256.Size {
		return nil, syntaxErr(what, ErrInvalidValue, fmt.Sprintf("rpIDHash of %d bytes", len(r.RPIDHash)))
	}
	if err := checkMap(what, "publicKey", r.PublicKey); err != nil {
		return nil, err
	}
	return r, nil
}

// ---------------------------------------------------------------------------
// authenticatorConfig, CTAP 2.1 §6.11

// ConfigSubCommand is the subCommand of authenticatorConfig (CTAP 2.1
// §6.11). It is at most 0xff: the authenticated message holds it as one
// byte.
type ConfigSubCommand uint64

// Config subcommands (CTAP 2.1 §6.11).
const (
	ConfigEnableEnterpriseAttestation ConfigSubCommand = 0x01 // §6.11.1
	ConfigToggleAlwaysUv              ConfigSubCommand = 0x02 // §6.11.2
	ConfigSetMinPINLength             ConfigSubCommand = 0x03 // §6.11.4
	ConfigVendorPrototype             ConfigSubCommand = 0xFF // §6.11.3
)

var configNames = map[ConfigSubCommand]string{
	ConfigEnableEnterpriseAttestation: "enableEnterpriseAttestation",
	ConfigToggleAlwaysUv:              "toggleAlwaysUv",
	ConfigSetMinPINLength:             "setMinPINLength",
	ConfigVendorPrototype:             "vendorPrototype",
}

// String returns the spec name of the subcommand, or its number.
func (s ConfigSubCommand) String() string {
	if n, ok := configNames[s]; ok {
		return n
	}
	return fmt.Sprintf("config subcommand 0x%02x", uint64(s))
}

// SetMinPINLengthParams is subCommandParams of setMinPINLength (CTAP 2.1
// §6.11.4). Zero fields are absent: the minimum stays as it is, no RP IDs
// are added and no PIN change is forced.
type SetMinPINLengthParams struct {
	NewMinPINLength   uint64   `cbor:"1,keyasint,omitempty"`
	MinPinLengthRPIDs []string `cbor:"2,keyasint,omitempty"`
	ForceChangePin    bool     `cbor:"3,keyasint,omitempty"`
}

// ConfigRequest holds the parameters of authenticatorConfig (CTAP 2.1
// §6.11). As in CredMgmtRequest, SubCommandParams keeps the encoded bytes
// that pinUvAuthParam covers; build it with SetParams.
type ConfigRequest struct {
	SubCommand        ConfigSubCommand `cbor:"1,keyasint"`           // required
	SubCommandParams  cbor.RawMessage  `cbor:"2,keyasint,omitempty"` // a CBOR map; nil: absent
	PinUvAuthProtocol uint64           `cbor:"3,keyasint,omitempty"` // 0: absent
	PinUvAuthParam    []byte           `cbor:"4,keyasint,omitempty"` // nil: absent

	// MinPINLength is SubCommandParams decoded when SubCommand is
	// ConfigSetMinPINLength and parameters are present; nil otherwise.
	// Set by DecodeConfigRequest and SetParams, not encoded.
	MinPINLength *SetMinPINLengthParams `cbor:"-"`
}

// SetParams encodes p, a map or a struct with integer keys such as
// *SetMinPINLengthParams, in CTAP2 canonical CBOR into SubCommandParams,
// and sets MinPINLength if p is a *SetMinPINLengthParams; nil removes the
// parameters. It fails if p does not encode as a CBOR map.
func (r *ConfigRequest) SetParams(p any) error {
	r.SubCommandParams, r.MinPINLength = nil, nil
	if isNil(p) {
		return nil
	}
	b, err := Marshal(p)
	if err != nil {
		return fmt.Errorf("ctap: encoding config parameters: %w", err)
	}
	if !isMap(b) {
		return fmt.Errorf("ctap: encoding config parameters: %T is not a CBOR map", p)
	}
	r.SubCommandParams = b
	if m, ok := p.(*SetMinPINLengthParams); ok {
		r.MinPINLength = m
	}
	return nil
}

// AuthMessage returns the bytes pinUvAuthParam authenticates under the
// pinUvAuthToken: 32 bytes of 0xff, 0x0d (the command), subCommand as one
// byte, then subCommandParams as encoded when present (CTAP 2.1 §6.11).
func (r *ConfigRequest) AuthMessage() []byte {
	m := make([]byte, 0, 34+len(r.SubCommandParams))
	m = append(m, pinUvAuthPrefix...)
	m = append(m, byte(CmdConfig), byte(r.SubCommand))
	return append(m, r.SubCommandParams...)
}

// DecodeConfigRequest decodes and checks the CBOR parameters of an
// authenticatorConfig request from a host (CTAP 2.1 §6.11). Unknown keys
// are ignored. subCommand is required (0 counts as absent:
// MISSING_PARAMETER) and at most 0xff (INVALID_PARAMETER);
// subCommandParams must be a map, and for setMinPINLength it is decoded
// into MinPINLength. Checking pinUvAuthParam and rejecting unknown
// subcommands are the handler's. Errors are *SyntaxError.
func DecodeConfigRequest(params []byte) (*ConfigRequest, error) {
	const what = "config request"
	r := new(ConfigRequest)
	if err := decodeMessage(what, params, r); err != nil {
		return nil, err
	}
	switch {
	case r.SubCommand == 0:
		return nil, syntaxErr(what, ErrMissingField, "subCommand")
	case r.SubCommand > maxSubCommand:
		return nil, syntaxErr(what, ErrInvalidValue, fmt.Sprintf("subCommand %d", uint64(r.SubCommand)))
	}
	if err := checkMap(what, "subCommandParams", r.SubCommandParams); err != nil {
		return nil, err
	}
	if r.SubCommand == ConfigSetMinPINLength && r.SubCommandParams != nil {
		p := new(SetMinPINLengthParams)
		if err := decodeMessage(what, r.SubCommandParams, p); err != nil {
			return nil, err
		}
		r.MinPINLength = p
	}
	return r, nil
}

// ---------------------------------------------------------------------------
// authenticatorLargeBlobs, CTAP 2.1 §6.10

// LargeBlobsRequest holds the parameters of authenticatorLargeBlobs (CTAP
// 2.1 §6.10.2): a read when Get is set, a write of the fragment Set
// otherwise. Exactly one of them is present.
type LargeBlobsRequest struct {
	Get *uint64 `cbor:"1,keyasint,omitempty"` // bytes to read; nil: absent (a write)
	// Set is a fragment to write; nil: absent, while an empty non-nil
	// slice is sent as an empty byte string.
	Set    []byte `cbor:"2,keyasint,omitzero"`
	Offset uint64 `cbor:"3,keyasint"` // required, always encoded
	// Length is the total length of the serialized array, present if and
	// only if this is a write at offset 0; 0: absent.
	Length            uint64 `cbor:"4,keyasint,omitempty"`
	PinUvAuthParam    []byte `cbor:"5,keyasint,omitempty"` // writes only; nil: absent
	PinUvAuthProtocol uint64 `cbor:"6,keyasint,omitempty"` // writes only; 0: absent
}

// AuthMessage returns the bytes a write's pinUvAuthParam authenticates
// under the pinUvAuthToken: 32 bytes of 0xff, 0x0c 0x00, offset as a
// 32-bit little-endian integer and SHA-256 of the fragment (CTAP 2.1
// §6.10.2). DecodeLargeBlobsRequest rejects offsets that do not fit in 32
// bits; a client never sends one, since no array is that large.
func (r *LargeBlobsRequest) AuthMessage() []byte {
	m := make([]byte, 0, 32+2+4+sha256.Size)
	m = append(m, pinUvAuthPrefix...)
	m = append(m, byte(CmdLargeBlobs), 0x00)
	m = binary.LittleEndian.AppendUint32(m, uint32(r.Offset))
	h := sha256.Sum256(r.Set)
	return append(m, h[:]...)
}

// LargeBlobsResponse is the answer to a read (CTAP 2.1 §6.10.2). A write
// is answered with no CBOR body at all.
type LargeBlobsResponse struct {
	// Config is the fragment read, possibly empty; required.
	Config []byte `cbor:"1,keyasint,omitzero"`
}

// DecodeLargeBlobsRequest decodes and checks the CBOR parameters of an
// authenticatorLargeBlobs request from a host (CTAP 2.1 §6.10.2). Unknown
// keys are ignored. offset is required (MISSING_PARAMETER) and must fit in
// 32 bits; exactly one of get and set must be present, and length exactly
// when set is present with offset 0 (all INVALID_PARAMETER, as §6.10.2
// answers). Fragment sizes, the stored array's length and the
// pinUvAuthParam are the handler's to check. Errors are *SyntaxError.
func DecodeLargeBlobsRequest(params []byte) (*LargeBlobsRequest, error) {
	const what = "largeBlobs request"
	r := new(LargeBlobsRequest)
	if err := decodeMessage(what, params, r); err != nil {
		return nil, err
	}
	// Offset 0 is valid, so its presence is read separately.
	var present struct {
		Offset *uint64 `cbor:"3,keyasint"`
	}
	if err := msgDec().Unmarshal(params, &present); err != nil {
		return nil, classify(what, err)
	}
	switch {
	case present.Offset == nil:
		return nil, syntaxErr(what, ErrMissingField, "offset")
	case r.Offset > math.MaxUint32:
		return nil, syntaxErr(what, ErrInvalidValue, fmt.Sprintf("offset %d", r.Offset))
	case r.Get != nil && r.Set != nil:
		return nil, syntaxErr(what, ErrInvalidValue, "both get and set")
	case r.Get == nil && r.Set == nil:
		return nil, syntaxErr(what, ErrInvalidValue, "neither get nor set")
	case r.Get != nil && r.Length != 0:
		return nil, syntaxErr(what, ErrInvalidValue, "length with get")
	case r.Set != nil && r.Offset == 0 && r.Length == 0:
		return nil, syntaxErr(what, ErrInvalidValue, "set at offset 0 without length")
	case r.Set != nil && r.Offset != 0 && r.Length != 0:
		return nil, syntaxErr(what, ErrInvalidValue, "length with set at a non-zero offset")
	}
	return r, nil
}

// DecodeLargeBlobsResponse decodes the answer to a largeBlobs read from a
// device (CTAP 2.1 §6.10.2). config is required. Errors are *SyntaxError.
func DecodeLargeBlobsResponse(data []byte) (*LargeBlobsResponse, error) {
	const what = "largeBlobs response"
	r := new(LargeBlobsResponse)
	if err := decodeMessage(what, data, r); err != nil {
		return nil, err
	}
	if r.Config == nil {
		return nil, syntaxErr(what, ErrMissingField, "config")
	}
	return r, nil
}

// largeBlobHashLen is the length of the truncated hash that ends a
// serialized large-blob array (CTAP 2.1 §6.10.2).
const largeBlobHashLen = 16

// InitialLargeBlobArray returns the serialized large-blob array of a fresh
// or reset authenticator: an empty CBOR array followed by
// LEFT(SHA-256(h'80'), 16), h'8076be8b528d0075f7aae98d6fa57a6d3c' (CTAP 2.1
// §6.10). The result is a new slice.
func InitialLargeBlobArray() []byte { return SerializeLargeBlobArray(nil) }

// SerializeLargeBlobArray builds a serialized large-blob array (CTAP 2.1
// §6.10.2): the CBOR array of entries followed by the first 16 bytes of
// its SHA-256. Each entry must be one canonical CBOR item, as
// DecodeLargeBlobArray returns them or MustMarshal(&LargeBlob{...})
// makes, so that writers keep the entries of other credentials intact.
func SerializeLargeBlobArray(entries []cbor.RawMessage) []byte {
	if entries == nil {
		entries = []cbor.RawMessage{}
	}
	arr := MustMarshal(entries)
	h := sha256.Sum256(arr)
	return append(arr, h[:largeBlobHashLen]...)
}

// VerifyLargeBlobArray checks the trailing hash of a serialized large-blob
// array, as an authenticator must before it commits a write (CTAP 2.1
// §6.10.2). It returns StatusIntegrityFailure, the status to answer with,
// when the data is shorter than 17 bytes or the hash does not match; the
// CBOR is not examined.
func VerifyLargeBlobArray(serialized []byte) error {
	if len(serialized) < 1+largeBlobHashLen {
		return StatusIntegrityFailure
	}
	n := len(serialized) - largeBlobHashLen
	h := sha256.Sum256(serialized[:n])
	if !bytes.Equal(h[:largeBlobHashLen], serialized[n:]) {
		return StatusIntegrityFailure
	}
	return nil
}

// DecodeLargeBlobArray checks a serialized large-blob array read from a
// device and splits it into its entries, each one raw CBOR item (CTAP 2.1
// §6.10.3). A hash mismatch gives StatusIntegrityFailure; the platform
// then treats the array as the initial, empty one. Malformed CBOR gives a
// *SyntaxError. Entries are not decoded, because a platform must keep
// those it cannot read; see DecodeLargeBlob.
func DecodeLargeBlobArray(serialized []byte) ([]cbor.RawMessage, error) {
	if err := VerifyLargeBlobArray(serialized); err != nil {
		return nil, err
	}
	var entries []cbor.RawMessage
	if err := decodeMessage("large-blob array", serialized[:len(serialized)-largeBlobHashLen], &entries); err != nil {
		return nil, err
	}
	if entries == nil {
		entries = []cbor.RawMessage{}
	}
	return entries, nil
}

// LargeBlob is one large-blob map, an entry of the large-blob array (CTAP
// 2.1 §6.10.3): the data, DEFLATE-compressed and sealed with AES-256-GCM
// under the credential's largeBlobKey with the associated data "blob" ||
// uint64LittleEndian(origSize).
type LargeBlob struct {
	Ciphertext []byte `cbor:"1,keyasint"` // AES-256-GCM output, tag included
	Nonce      []byte `cbor:"2,keyasint"` // 12 bytes
	OrigSize   uint64 `cbor:"3,keyasint"` // length before compression
}

// DecodeLargeBlob decodes one entry of a large-blob array (CTAP 2.1
// §6.10.3). Unknown keys are ignored; ciphertext (at least the 16-byte
// GCM tag) and a 12-byte nonce are required. Errors are *SyntaxError; a
// platform skips such entries rather than failing.
func DecodeLargeBlob(entry []byte) (*LargeBlob, error) {
	const what = "large-blob map"
	b := new(LargeBlob)
	if err := decodeMessage(what, entry, b); err != nil {
		return nil, err
	}
	switch {
	case b.Ciphertext == nil:
		return nil, syntaxErr(what, ErrMissingField, "ciphertext")
	case b.Nonce == nil:
		return nil, syntaxErr(what, ErrMissingField, "nonce")
	case len(b.Ciphertext) < 16:
		return nil, syntaxErr(what, ErrInvalidValue, fmt.Sprintf("ciphertext of %d bytes", len(b.Ciphertext)))
	case len(b.Nonce) != 12:
		return nil, syntaxErr(what, ErrInvalidValue, fmt.Sprintf("nonce of %d bytes", len(b.Nonce)))
	}
	return b, nil
}

// ---------------------------------------------------------------------------
// Extensions, CTAP 2.1 §12

// Extension identifiers (CTAP 2.1 §12), the keys of extension maps in
// requests and in authenticator data.
const (
	ExtCredProtect  = "credProtect"  // §12.1
	ExtCredBlob     = "credBlob"     // §12.2
	ExtLargeBlobKey = "largeBlobKey" // §12.3
	ExtMinPinLength = "minPinLength" // §12.4
	ExtHMACSecret   = "hmac-secret"  // §12.5
)

// credProtect policies (CTAP 2.1 §12.1).
const (
	CredProtectUVOptional               = 0x01 // userVerificationOptional
	CredProtectUVOptionalWithCredIDList = 0x02 // userVerificationOptionalWithCredentialIDList
	CredProtectUVRequired               = 0x03 // userVerificationRequired
)

// HMACSecretInput is the hmac-secret input of getAssertion (CTAP 2.1
// §12.5): the platform's key agreement key, one or two 32-byte salts
// encrypted under the shared secret, and their authentication.
type HMACSecretInput struct {
	KeyAgreement cbor.RawMessage `cbor:"1,keyasint"` // COSE_Key map; see ParseKeyAgreement
	SaltEnc      []byte          `cbor:"2,keyasint"` // encrypt(shared, salt1 [|| salt2])
	SaltAuth     []byte          `cbor:"3,keyasint"` // authenticate(shared, saltEnc)
	// PinUvAuthProtocol is the protocol of the fields above; 0: absent,
	// meaning protocol one.
	PinUvAuthProtocol uint64 `cbor:"4,keyasint,omitempty"`
}

// DecodeHMACSecretInput decodes the hmac-secret extension input of a
// getAssertion request (CTAP 2.1 §12.5). Unknown keys are ignored;
// keyAgreement (a map), saltEnc and saltAuth are required
// (MISSING_PARAMETER). The salt lengths depend on the protocol and the
// handler checks them after decryption. Errors are *SyntaxError.
func DecodeHMACSecretInput(data []byte) (*HMACSecretInput, error) {
	const what = "hmac-secret input"
	in := new(HMACSecretInput)
	if err := decodeMessage(what, data, in); err != nil {
		return nil, err
	}
	switch {
	case in.KeyAgreement == nil:
		return nil, syntaxErr(what, ErrMissingField, "keyAgreement")
	case in.SaltEnc == nil:
		return nil, syntaxErr(what, ErrMissingField, "saltEnc")
	case in.SaltAuth == nil:
		return nil, syntaxErr(what, ErrMissingField, "saltAuth")
	}
	if err := checkMap(what, "keyAgreement", in.KeyAgreement); err != nil {
		return nil, err
	}
	return in, nil
}

// MakeCredentialExtensions are the CTAP extension inputs of
// authenticatorMakeCredential that this package knows (CTAP 2.1 §12), the
// typed form of MakeCredentialRequest.Extensions. Zero fields are absent.
type MakeCredentialExtensions struct {
	HMACSecret   bool   `cbor:"hmac-secret,omitempty"`  // true: make an hmac-secret credential
	CredProtect  uint64 `cbor:"credProtect,omitempty"`  // CredProtect* policy
	CredBlob     []byte `cbor:"credBlob,omitempty"`     // blob to store with the credential
	MinPinLength bool   `cbor:"minPinLength,omitempty"` // true: report minPINLength to this RP
	LargeBlobKey bool   `cbor:"largeBlobKey,omitempty"` // true: return a largeBlobKey (only true is valid)
}

// GetAssertionExtensions are the CTAP extension inputs of
// authenticatorGetAssertion that this package knows (CTAP 2.1 §12), the
// typed form of GetAssertionRequest.Extensions. Zero fields are absent.
type GetAssertionExtensions struct {
	HMACSecret   *HMACSecretInput `cbor:"hmac-secret,omitempty"`
	CredBlob     bool             `cbor:"credBlob,omitempty"`     // true: return the stored credBlob
	LargeBlobKey bool             `cbor:"largeBlobKey,omitempty"` // true: return the largeBlobKey
}

// extensionMap converts a typed extensions struct into the raw map the
// request structs carry; nil when it has no fields set.
func extensionMap(v any) map[string]cbor.RawMessage {
	if isZeroStruct(v) {
		return nil // no extension, the usual case (every field omits its zero)
	}
	b := MustMarshal(v)
	if len(b) == 1 && b[0] == 0xa0 {
		return nil // no extension, the usual case: nothing to decode
	}
	var m map[string]cbor.RawMessage
	if err := anyDec.Unmarshal(b, &m); err != nil {
		panic(err) // our own canonical encoding always decodes
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// isZeroStruct reports whether v, a pointer to one of the extension
// structs, holds its zero value, which encodes as an empty map since each
// field is omitempty or omitzero (TestZeroExtensionsEncodeEmpty): the
// check spares a Marshal per request and per signature.
func isZeroStruct(v any) bool {
	rv := reflect.ValueOf(v)
	return rv.Kind() == reflect.Pointer && !rv.IsNil() && rv.Elem().IsZero()
}

// Map returns the extensions as MakeCredentialRequest.Extensions wants
// them; nil when none is set.
func (e *MakeCredentialExtensions) Map() map[string]cbor.RawMessage { return extensionMap(e) }

// Map returns the extensions as GetAssertionRequest.Extensions wants them;
// nil when none is set.
func (e *GetAssertionExtensions) Map() map[string]cbor.RawMessage { return extensionMap(e) }

// decodeExtensionMap re-encodes a request's extensions map, which came
// from canonical CBOR, and decodes the known extensions into v.
func decodeExtensionMap(what string, m map[string]cbor.RawMessage, v any) error {
	if len(m) == 0 {
		return nil
	}
	b, err := Marshal(m)
	if err != nil {
		return syntaxErr(what, ErrMalformed, err.Error())
	}
	return decodeMessage(what, b, v)
}

// DecodeMakeCredentialExtensions decodes the known extension inputs from
// a decoded MakeCredentialRequest.Extensions (CTAP 2.1 §12). Unknown
// extensions are ignored, as §6.1 asks; a known one of the wrong type is a
// *SyntaxError (CBOR_UNEXPECTED_TYPE). Policy values, such as a credProtect
// outside 1..3, are the handler's to check. A nil map gives a zero value.
func DecodeMakeCredentialExtensions(m map[string]cbor.RawMessage) (*MakeCredentialExtensions, error) {
	e := new(MakeCredentialExtensions)
	if err := decodeExtensionMap("makeCredential extensions", m, e); err != nil {
		return nil, err
	}
	return e, nil
}

// DecodeGetAssertionExtensions decodes the known extension inputs from a
// decoded GetAssertionRequest.Extensions (CTAP 2.1 §12), checking
// hmac-secret as DecodeHMACSecretInput does. Unknown extensions are
// ignored. Errors are *SyntaxError. A nil map gives a zero value.
func DecodeGetAssertionExtensions(m map[string]cbor.RawMessage) (*GetAssertionExtensions, error) {
	e := new(GetAssertionExtensions)
	if err := decodeExtensionMap("getAssertion extensions", m, e); err != nil {
		return nil, err
	}
	if raw, ok := m[ExtHMACSecret]; ok {
		in, err := DecodeHMACSecretInput(raw)
		if err != nil {
			return nil, err
		}
		e.HMACSecret = in
	}
	return e, nil
}

// MakeCredentialExtensionOutputs are the extension outputs an
// authenticator puts in the authenticator data of a new credential (CTAP
// 2.1 §12), AuthData.Extensions in typed form. Zero fields are absent.
type MakeCredentialExtensionOutputs struct {
	HMACSecret  bool   `cbor:"hmac-secret,omitempty"`
	CredProtect uint64 `cbor:"credProtect,omitempty"`
	// CredBlob reports whether the blob was stored; false is a real
	// answer, so nil means absent.
	CredBlob     *bool  `cbor:"credBlob,omitempty"`
	MinPinLength uint64 `cbor:"minPinLength,omitempty"`
}

// GetAssertionExtensionOutputs are the extension outputs in the
// authenticator data of an assertion (CTAP 2.1 §12).
type GetAssertionExtensionOutputs struct {
	// HMACSecret is encrypt(shared, output1 [|| output2]); nil: absent.
	HMACSecret []byte `cbor:"hmac-secret,omitempty"`
	// CredBlob is the stored blob; nil: absent, empty: none was stored.
	CredBlob []byte `cbor:"credBlob,omitzero"`
}

// Marshal encodes the outputs as the extensions map of authenticator data,
// or returns nil when there are none, so that AuthData.Marshal leaves the
// ED flag clear.
func (o *MakeCredentialExtensionOutputs) Marshal() []byte { return marshalOutputs(o) }

// Marshal encodes the outputs as the extensions map of authenticator data,
// or returns nil when there are none.
func (o *GetAssertionExtensionOutputs) Marshal() []byte { return marshalOutputs(o) }

func marshalOutputs(v any) []byte {
	if isZeroStruct(v) {
		return nil
	}
	b := MustMarshal(v)
	if len(b) == 1 && b[0] == 0xa0 { // an empty map
		return nil
	}
	return b
}

// DecodeMakeCredentialExtensionOutputs decodes AuthData.Extensions of a new
// credential (CTAP 2.1 §12). Unknown extensions are ignored; nil or empty
// ext gives a zero value. Errors are *SyntaxError.
func DecodeMakeCredentialExtensionOutputs(ext []byte) (*MakeCredentialExtensionOutputs, error) {
	o := new(MakeCredentialExtensionOutputs)
	if len(ext) == 0 {
		return o, nil
	}
	if err := decodeMessage("makeCredential extension outputs", ext, o); err != nil {
		return nil, err
	}
	return o, nil
}

// DecodeGetAssertionExtensionOutputs decodes AuthData.Extensions of an
// assertion (CTAP 2.1 §12). Unknown extensions are ignored; nil or empty
// ext gives a zero value. Errors are *SyntaxError.
func DecodeGetAssertionExtensionOutputs(ext []byte) (*GetAssertionExtensionOutputs, error) {
	o := new(GetAssertionExtensionOutputs)
	if len(ext) == 0 {
		return o, nil
	}
	if err := decodeMessage("getAssertion extension outputs", ext, o); err != nil {
		return nil, err
	}
	return o, nil
}
