package ctap

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// Command is a CTAP2 authenticator command byte, the first byte of every
// CTAPHID_CBOR request (CTAP 2.1 §6 and §8.1).
type Command byte

// Command bytes from CTAP 2.1 §6.
const (
	CmdMakeCredential              Command = 0x01 // authenticatorMakeCredential, §6.1
	CmdGetAssertion                Command = 0x02 // authenticatorGetAssertion, §6.2
	CmdGetInfo                     Command = 0x04 // authenticatorGetInfo, §6.4
	CmdClientPIN                   Command = 0x06 // authenticatorClientPIN, §6.5
	CmdReset                       Command = 0x07 // authenticatorReset, §6.6
	CmdGetNextAssertion            Command = 0x08 // authenticatorGetNextAssertion, §6.3
	CmdBioEnrollment               Command = 0x09 // authenticatorBioEnrollment, §6.7
	CmdCredentialManagement        Command = 0x0A // authenticatorCredentialManagement, §6.8
	CmdSelection                   Command = 0x0B // authenticatorSelection, §6.9
	CmdLargeBlobs                  Command = 0x0C // authenticatorLargeBlobs, §6.10
	CmdConfig                      Command = 0x0D // authenticatorConfig, §6.11
	CmdCredentialManagementPreview Command = 0x41 // prototypeCredentialManagement, §6.8 (FIDO_2_1_PRE keys)
)

var commandNames = map[Command]string{
	CmdMakeCredential:              "authenticatorMakeCredential",
	CmdGetAssertion:                "authenticatorGetAssertion",
	CmdGetInfo:                     "authenticatorGetInfo",
	CmdClientPIN:                   "authenticatorClientPIN",
	CmdReset:                       "authenticatorReset",
	CmdGetNextAssertion:            "authenticatorGetNextAssertion",
	CmdBioEnrollment:               "authenticatorBioEnrollment",
	CmdCredentialManagement:        "authenticatorCredentialManagement",
	CmdSelection:                   "authenticatorSelection",
	CmdLargeBlobs:                  "authenticatorLargeBlobs",
	CmdConfig:                      "authenticatorConfig",
	CmdCredentialManagementPreview: "prototypeCredentialManagement",
}

// String returns the spec name of the command, such as
// "authenticatorMakeCredential", or its number if it has none.
func (c Command) String() string {
	if n, ok := commandNames[c]; ok {
		return n
	}
	return fmt.Sprintf("command 0x%02x", byte(c))
}

// COSE algorithm identifiers (IANA COSE Algorithms registry, RFC 9053) that
// CTAP 2.1 authenticators use for credentials and PIN key agreement.
const (
	AlgES256 int64 = -7   // ECDSA P-256 with SHA-256
	AlgEdDSA int64 = -8   // EdDSA, here Ed25519 only
	AlgRS256 int64 = -257 // RSASSA-PKCS1-v1_5 with SHA-256

	// AlgECDHESHKDF256 marks the P-256 key-agreement keys of the PIN/UV
	// auth protocols (CTAP 2.1 §6.5.6); it is not a signature algorithm.
	AlgECDHESHKDF256 int64 = -25
)

// Option names in the options maps of makeCredential, getAssertion and
// getInfo (CTAP 2.1 §6.1, §6.2, §6.4).
const (
	OptRK        = "rk"        // discoverable (resident) credential
	OptUP        = "up"        // user presence
	OptUV        = "uv"        // built-in user verification
	OptPlat      = "plat"      // platform authenticator (getInfo only)
	OptClientPIN = "clientPin" // PIN set (true), supported but unset (false)
)

// RPEntity is PublicKeyCredentialRpEntity (WebAuthn L3 §5.4.2, CTAP 2.1
// §6.1). Name and Icon are empty when absent.
type RPEntity struct {
	ID   string `cbor:"id"`
	Name string `cbor:"name,omitempty"`
	Icon string `cbor:"icon,omitempty"` // deprecated in WebAuthn L2; kept for old keys
}

// UserEntity is PublicKeyCredentialUserEntity (WebAuthn L3 §5.4.3, CTAP 2.1
// §6.1). ID is the user handle, 1 to 64 bytes; the strings are empty when
// absent.
type UserEntity struct {
	ID          []byte `cbor:"id"`
	Name        string `cbor:"name,omitempty"`
	DisplayName string `cbor:"displayName,omitempty"`
	Icon        string `cbor:"icon,omitempty"`
}

// CredentialParam is PublicKeyCredentialParameters (WebAuthn L3 §5.3): a
// credential type, "public-key", and a COSE algorithm such as AlgES256.
type CredentialParam struct {
	Type string `cbor:"type"`
	Alg  int64  `cbor:"alg"`
}

// CredentialDescriptor is PublicKeyCredentialDescriptor (WebAuthn L3
// §5.8.3), used in allow and exclude lists. Transports is nil when absent.
type CredentialDescriptor struct {
	Type       string   `cbor:"type"`
	ID         []byte   `cbor:"id"`
	Transports []string `cbor:"transports,omitempty"`
}

// MakeCredentialRequest holds the parameters of authenticatorMakeCredential
// (CTAP 2.1 §6.1). Optional fields are omitted from the encoding when zero.
type MakeCredentialRequest struct {
	ClientDataHash        []byte                     `cbor:"1,keyasint"`           // SHA-256 of the client data, 32 bytes
	RP                    *RPEntity                  `cbor:"2,keyasint"`           // required, with ID
	User                  *UserEntity                `cbor:"3,keyasint"`           // required, with ID
	PubKeyCredParams      []CredentialParam          `cbor:"4,keyasint"`           // in order of preference
	ExcludeList           []CredentialDescriptor     `cbor:"5,keyasint,omitempty"` // nil: none
	Extensions            map[string]cbor.RawMessage `cbor:"6,keyasint,omitempty"` // nil: none
	Options               map[string]bool            `cbor:"7,keyasint,omitempty"` // OptRK, OptUV, OptUP; nil: defaults
	PinUvAuthParam        []byte                     `cbor:"8,keyasint,omitzero"`  // nil: none; empty: sent empty, asks for a touch
	PinUvAuthProtocol     uint64                     `cbor:"9,keyasint,omitempty"` // 0: none
	EnterpriseAttestation uint64                     `cbor:"10,keyasint,omitempty"`
}

// MakeCredentialResponse is the attestation object an authenticator returns
// from authenticatorMakeCredential (CTAP 2.1 §6.1, response map).
type MakeCredentialResponse struct {
	Format       string          `cbor:"1,keyasint"` // attestation statement format, e.g. "packed"
	AuthData     []byte          `cbor:"2,keyasint"` // authenticator data, see ParseAuthData
	AttStmt      cbor.RawMessage `cbor:"3,keyasint"` // a CBOR map, format-specific
	EpAtt        bool            `cbor:"4,keyasint,omitempty"`
	LargeBlobKey []byte          `cbor:"5,keyasint,omitempty"` // nil: none
}

// GetAssertionRequest holds the parameters of authenticatorGetAssertion
// (CTAP 2.1 §6.2). Optional fields are omitted from the encoding when zero.
type GetAssertionRequest struct {
	RPID              string                     `cbor:"1,keyasint"`
	ClientDataHash    []byte                     `cbor:"2,keyasint"`           // 32 bytes
	AllowList         []CredentialDescriptor     `cbor:"3,keyasint,omitempty"` // nil: discoverable credentials
	Extensions        map[string]cbor.RawMessage `cbor:"4,keyasint,omitempty"` // nil: none
	Options           map[string]bool            `cbor:"5,keyasint,omitempty"` // OptUP, OptUV; nil: defaults
	PinUvAuthParam    []byte                     `cbor:"6,keyasint,omitempty"` // nil: none
	PinUvAuthProtocol uint64                     `cbor:"7,keyasint,omitempty"` // 0: none
}

// GetAssertionResponse is the answer to authenticatorGetAssertion and
// authenticatorGetNextAssertion (CTAP 2.1 §6.2, §6.3).
type GetAssertionResponse struct {
	// Credential is nil only when the request's allowList held exactly one
	// credential, which the authenticator may then leave out (§6.2).
	Credential          *CredentialDescriptor `cbor:"1,keyasint,omitempty"`
	AuthData            []byte                `cbor:"2,keyasint"`
	Signature           []byte                `cbor:"3,keyasint"`
	User                *UserEntity           `cbor:"4,keyasint,omitempty"` // discoverable credentials only
	NumberOfCredentials int                   `cbor:"5,keyasint,omitempty"` // 0: not stated
	UserSelected        bool                  `cbor:"6,keyasint,omitempty"`
	LargeBlobKey        []byte                `cbor:"7,keyasint,omitempty"`
}

// GetInfoResponse describes an authenticator (CTAP 2.1 §6.4). Fields other
// than Versions and AAGUID are zero when the authenticator leaves them out.
type GetInfoResponse struct {
	Versions                         []string          `cbor:"1,keyasint"` // e.g. "FIDO_2_0", "FIDO_2_1", "U2F_V2"
	Extensions                       []string          `cbor:"2,keyasint,omitempty"`
	AAGUID                           []byte            `cbor:"3,keyasint"` // 16 bytes
	Options                          map[string]bool   `cbor:"4,keyasint,omitempty"`
	MaxMsgSize                       uint64            `cbor:"5,keyasint,omitempty"` // 0: not stated (1024 by §6.4)
	PinUvAuthProtocols               []uint64          `cbor:"6,keyasint,omitempty"`
	MaxCredentialCountInList         uint64            `cbor:"7,keyasint,omitempty"`
	MaxCredentialIDLength            uint64            `cbor:"8,keyasint,omitempty"`
	Transports                       []string          `cbor:"9,keyasint,omitempty"`
	Algorithms                       []CredentialParam `cbor:"10,keyasint,omitempty"`
	MaxSerializedLargeBlobArray      uint64            `cbor:"11,keyasint,omitempty"`
	ForcePINChange                   bool              `cbor:"12,keyasint,omitempty"`
	MinPINLength                     uint64            `cbor:"13,keyasint,omitempty"`
	FirmwareVersion                  uint64            `cbor:"14,keyasint,omitempty"`
	MaxCredBlobLength                uint64            `cbor:"15,keyasint,omitempty"`
	MaxRPIDsForSetMinPINLength       uint64            `cbor:"16,keyasint,omitempty"`
	PreferredPlatformUvAttempts      uint64            `cbor:"17,keyasint,omitempty"`
	UVModality                       uint64            `cbor:"18,keyasint,omitempty"`
	Certifications                   map[string]uint64 `cbor:"19,keyasint,omitempty"` // name ("FIDO", ...) to level; nil: none stated
	RemainingDiscoverableCredentials *uint64           `cbor:"20,keyasint,omitempty"` // nil: not stated
	VendorPrototypeConfigCommands    []uint64          `cbor:"21,keyasint,omitempty"` // vendorCommandId values of config vendorPrototype
}

// Limits checked by the request decoders.
const (
	clientDataHashLen = 32 // SHA-256, CTAP 2.1 §6.1 and §6.2
	maxUserIDLen      = 64 // WebAuthn L3 §5.4.3 user handle
	aaguidLen         = 16 // CTAP 2.1 §6.4
)

// msgDec decodes protocol messages. Beyond UnmarshalLenient's rules it
// rejects null and undefined anywhere: no CTAP 2.1 message uses them, and
// the library would otherwise turn {"up": null} into up=false silently.
var msgDec = sync.OnceValue(func() cbor.DecMode {
	reg, err := cbor.NewSimpleValueRegistryFromDefaults(
		cbor.WithRejectedSimpleValue(22), // null
		cbor.WithRejectedSimpleValue(23), // undefined
	)
	if err != nil {
		panic(err)
	}
	o := anyDec.DecOptions()
	o.SimpleValues = reg
	dm, err := o.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
})

// decodeMessage decodes one canonical CBOR message into v, ignoring
// unknown map keys as CTAP 2.1 §6 asks of both ends.
//
// A well-formed message takes one checking pass over its bytes
// (quickCanonical), the decode into v, and v's re-encoding compared with
// the input in one more pass (quickFaithful); anything those fast checks
// do not prove good goes through decodeMessageSlow's generic decodes,
// which decide, and name the error, exactly as before.
func decodeMessage(what string, data []byte, v any) error {
	if !quickCanonical(data) {
		return decodeMessageSlow(what, data, v)
	}
	return decodeChecked(what, data, v, true)
}

// decodeMessageSlow is decodeMessage by its definition: the canonical
// check by re-encoding, then the decode, then faithful over generic
// decodes of the input and of the re-encoding.
func decodeMessageSlow(what string, data []byte, v any) error {
	if err := checkCanonicalSlow(what, data); err != nil {
		return err
	}
	return decodeChecked(what, data, v, false)
}

// decodeChecked decodes canonical data into v and checks that nothing was
// decoded leniently; quick tries quickFaithful before faithful.
func decodeChecked(what string, data []byte, v any, quick bool) error {
	if err := msgDec().Unmarshal(data, v); err != nil {
		var ua *cbor.UnacceptableDataItemError
		if errors.As(err, &ua) {
			return syntaxErr(what, ErrWrongType, err.Error())
		}
		return classify(what, err)
	}
	// The library fills a []byte from an array of small integers too, so
	// [1, 2] would pass for h'0102'. Rather than chase each such leniency,
	// require that what was decoded encodes back to exactly the input's
	// values; found by FuzzDecodeResponses.
	enc, err := Marshal(v)
	if err != nil {
		return syntaxErr(what, ErrWrongType, err.Error())
	}
	if quick && quickFaithful(data, enc) {
		return nil
	}
	var in, out any
	if anyDec.Unmarshal(data, &in) != nil || anyDec.Unmarshal(enc, &out) != nil {
		return syntaxErr(what, ErrMalformed, "re-decoding")
	}
	if path, ok := faithful(in, out, ""); !ok {
		return syntaxErr(what, ErrWrongType, "value at "+path+" has the wrong CBOR type")
	}
	return nil
}

// faithful reports whether every value in out, the re-encoding of a
// decoded message, equals the value at the same place in in, the input,
// and if not, where they differ. Keys only one side has are skipped: the
// input's unknown keys are ignored by design, and fields the input lacks
// are the validators' business.
func faithful(in, out any, path string) (string, bool) {
	switch o := out.(type) {
	case map[any]any:
		i, ok := in.(map[any]any)
		if !ok {
			return path, false
		}
		for k, ov := range o {
			if iv, ok := i[k]; ok {
				if p, ok := faithful(iv, ov, fmt.Sprintf("%s/%v", path, k)); !ok {
					return p, false
				}
			}
		}
		return "", true
	case []any:
		i, ok := in.([]any)
		if !ok || len(i) != len(o) {
			return path, false
		}
		for n := range o {
			if p, ok := faithful(i[n], o[n], fmt.Sprintf("%s/%d", path, n)); !ok {
				return p, false
			}
		}
		return "", true
	case []byte:
		i, ok := in.([]byte)
		return path, ok && bytes.Equal(i, o)
	}
	return path, reflect.DeepEqual(in, out)
}

// DecodeMakeCredentialRequest decodes and checks the CBOR parameters of an
// authenticatorMakeCredential request from a host (CTAP 2.1 §6.1). Unknown
// keys are ignored; everything else is strict. Every error is a
// *SyntaxError whose Status is the answer to send: MISSING_PARAMETER when
// clientDataHash, rp.id, user.id, pubKeyCredParams or a list entry's type,
// alg or id is absent, CBOR_UNEXPECTED_TYPE for a value of the wrong CBOR
// type, INVALID_PARAMETER for a clientDataHash that is not 32 bytes or a
// user.id outside 1..64 bytes, INVALID_CBOR otherwise.
//
// An empty text or a zero alg counts as absent, since neither is a valid
// value (COSE reserves algorithm 0).
func DecodeMakeCredentialRequest(params []byte) (*MakeCredentialRequest, error) {
	const what = "makeCredential request"
	r := new(MakeCredentialRequest)
	if !fastMakeCredentialRequest(params, r) {
		*r = MakeCredentialRequest{}
		if err := decodeMessage(what, params, r); err != nil {
			return nil, err
		}
	}
	if err := checkClientDataHash(what, r.ClientDataHash); err != nil {
		return nil, err
	}
	if r.RP == nil || r.RP.ID == "" {
		return nil, syntaxErr(what, ErrMissingField, "rp.id")
	}
	if r.User == nil || r.User.ID == nil {
		return nil, syntaxErr(what, ErrMissingField, "user.id")
	}
	if n := len(r.User.ID); n < 1 || n > maxUserIDLen {
		return nil, syntaxErr(what, ErrInvalidValue, fmt.Sprintf("user.id of %d bytes", n))
	}
	if r.PubKeyCredParams == nil {
		return nil, syntaxErr(what, ErrMissingField, "pubKeyCredParams")
	}
	if err := checkParams(what, "pubKeyCredParams", r.PubKeyCredParams); err != nil {
		return nil, err
	}
	if err := checkDescriptors(what, "excludeList", r.ExcludeList); err != nil {
		return nil, err
	}
	return r, nil
}

// DecodeGetAssertionRequest decodes and checks the CBOR parameters of an
// authenticatorGetAssertion request from a host (CTAP 2.1 §6.2), with the
// same rules and errors as DecodeMakeCredentialRequest; rpId and
// clientDataHash are required.
func DecodeGetAssertionRequest(params []byte) (*GetAssertionRequest, error) {
	const what = "getAssertion request"
	r := new(GetAssertionRequest)
	if !fastGetAssertionRequest(params, r) {
		*r = GetAssertionRequest{}
		if err := decodeMessage(what, params, r); err != nil {
			return nil, err
		}
	}
	if r.RPID == "" {
		return nil, syntaxErr(what, ErrMissingField, "rpId")
	}
	if err := checkClientDataHash(what, r.ClientDataHash); err != nil {
		return nil, err
	}
	if err := checkDescriptors(what, "allowList", r.AllowList); err != nil {
		return nil, err
	}
	return r, nil
}

func checkClientDataHash(what string, h []byte) error {
	if h == nil {
		return syntaxErr(what, ErrMissingField, "clientDataHash")
	}
	if len(h) != clientDataHashLen {
		return syntaxErr(what, ErrInvalidValue, fmt.Sprintf("clientDataHash of %d bytes", len(h)))
	}
	return nil
}

func checkParams(what, field string, ps []CredentialParam) error {
	for i, p := range ps {
		if p.Type == "" {
			return syntaxErr(what, ErrMissingField, fmt.Sprintf("%s[%d].type", field, i))
		}
		if p.Alg == 0 {
			return syntaxErr(what, ErrMissingField, fmt.Sprintf("%s[%d].alg", field, i))
		}
	}
	return nil
}

func checkDescriptors(what, field string, ds []CredentialDescriptor) error {
	for i := range ds {
		// The field's name is formatted only for an error: this runs on
		// every getAssertion.
		if d := &ds[i]; d.Type == "" || d.ID == nil {
			return checkDescriptor(what, fmt.Sprintf("%s[%d]", field, i), d)
		}
	}
	return nil
}

func checkDescriptor(what, field string, d *CredentialDescriptor) error {
	if d.Type == "" {
		return syntaxErr(what, ErrMissingField, field+".type")
	}
	if d.ID == nil {
		return syntaxErr(what, ErrMissingField, field+".id")
	}
	return nil
}

// DecodeMakeCredentialResponse decodes an authenticatorMakeCredential
// response body from a device (CTAP 2.1 §6.1). Unknown keys are ignored so
// that newer keys still work; fmt, authData and attStmt (a map) are
// required. Errors are *SyntaxError. The authenticator data is not parsed;
// see ParseAuthData.
func DecodeMakeCredentialResponse(data []byte) (*MakeCredentialResponse, error) {
	const what = "makeCredential response"
	r := new(MakeCredentialResponse)
	if !fastMakeCredentialResponse(data, r) {
		*r = MakeCredentialResponse{}
		if err := decodeMessage(what, data, r); err != nil {
			return nil, err
		}
	}
	switch {
	case r.Format == "":
		return nil, syntaxErr(what, ErrMissingField, "fmt")
	case r.AuthData == nil:
		return nil, syntaxErr(what, ErrMissingField, "authData")
	case r.AttStmt == nil:
		return nil, syntaxErr(what, ErrMissingField, "attStmt")
	case r.AttStmt[0]>>5 != 5: // CBOR major type 5, a map
		return nil, syntaxErr(what, ErrWrongType, "attStmt is not a map")
	}
	return r, nil
}

// DecodeGetAssertionResponse decodes an authenticatorGetAssertion or
// authenticatorGetNextAssertion response body from a device (CTAP 2.1
// §6.2). Unknown keys are ignored; authData and signature are required, and
// a credential, when present, needs its type and id. Errors are
// *SyntaxError.
func DecodeGetAssertionResponse(data []byte) (*GetAssertionResponse, error) {
	const what = "getAssertion response"
	r := new(GetAssertionResponse)
	if !fastGetAssertionResponse(data, r) {
		*r = GetAssertionResponse{}
		if err := decodeMessage(what, data, r); err != nil {
			return nil, err
		}
	}
	if r.Credential != nil {
		if err := checkDescriptor(what, "credential", r.Credential); err != nil {
			return nil, err
		}
	}
	switch {
	case r.AuthData == nil:
		return nil, syntaxErr(what, ErrMissingField, "authData")
	case r.Signature == nil:
		return nil, syntaxErr(what, ErrMissingField, "signature")
	case r.User != nil && r.User.ID == nil:
		return nil, syntaxErr(what, ErrMissingField, "user.id")
	case r.NumberOfCredentials < 0:
		return nil, syntaxErr(what, ErrInvalidValue, "negative numberOfCredentials")
	}
	return r, nil
}

// DecodeGetInfoResponse decodes an authenticatorGetInfo response body from
// a device (CTAP 2.1 §6.4). Unknown keys are ignored, since each spec
// revision adds some; versions (non-empty) and a 16-byte aaguid are
// required, and each algorithm needs its type and alg. Errors are
// *SyntaxError.
func DecodeGetInfoResponse(data []byte) (*GetInfoResponse, error) {
	const what = "getInfo response"
	r := new(GetInfoResponse)
	if err := decodeMessage(what, data, r); err != nil {
		return nil, err
	}
	switch {
	case r.Versions == nil:
		return nil, syntaxErr(what, ErrMissingField, "versions")
	case len(r.Versions) == 0:
		return nil, syntaxErr(what, ErrInvalidValue, "empty versions")
	case r.AAGUID == nil:
		return nil, syntaxErr(what, ErrMissingField, "aaguid")
	case len(r.AAGUID) != aaguidLen:
		return nil, syntaxErr(what, ErrInvalidValue, fmt.Sprintf("aaguid of %d bytes", len(r.AAGUID)))
	}
	if err := checkParams(what, "algorithms", r.Algorithms); err != nil {
		return nil, err
	}
	return r, nil
}

// EncodeRequest frames a CTAP2 request: the command byte followed by params
// in CTAP2 canonical CBOR (CTAP 2.1 §8.1). A nil params, or a nil pointer,
// map or slice, gives the command byte alone, as for authenticatorGetInfo.
func EncodeRequest(cmd Command, params any) ([]byte, error) {
	if b, ok := appendFast(append(make([]byte, 0, 256), byte(cmd)), params); ok {
		return b, nil
	}
	if isNil(params) {
		return []byte{byte(cmd)}, nil
	}
	body, err := Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("ctap: encoding %v parameters: %w", cmd, err)
	}
	return append([]byte{byte(cmd)}, body...), nil
}

// ParseResponse splits a CTAP2 response into its status byte and CBOR body
// (CTAP 2.1 §8.2). The body aliases msg and is empty when the response has
// none. An empty msg gives a *SyntaxError wrapping ErrMalformed; the body is
// not decoded here.
func ParseResponse(msg []byte) (Status, []byte, error) {
	if len(msg) == 0 {
		return 0, nil, syntaxErr("CTAP2 response", ErrMalformed, "no status byte")
	}
	return Status(msg[0]), msg[1:], nil
}

// EncodeResponse frames a successful CTAP2 response: StatusOK followed by v
// in CTAP2 canonical CBOR (CTAP 2.1 §8.2), or StatusOK alone when v is nil.
// v must always encode, as the package's message types do; EncodeResponse
// panics otherwise, since that is a bug in the caller.
func EncodeResponse(v any) []byte {
	if b, ok := appendFast(append(make([]byte, 0, 256), byte(StatusOK)), v); ok {
		return b
	}
	if isNil(v) {
		return []byte{byte(StatusOK)}
	}
	return append([]byte{byte(StatusOK)}, MustMarshal(v)...)
}

// isNil reports whether v is nil or a nil pointer, map or slice, so that a
// typed nil is framed as "no parameters" rather than as CBOR null.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice, reflect.Interface:
		return rv.IsNil()
	}
	return false
}
