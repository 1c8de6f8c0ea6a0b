package fido

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"
	"golang.org/x/net/publicsuffix"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/hid"
)

// Ceremony timeouts (WebAuthn L3 §15.1, "recommended range and default for
// a WebAuthn ceremony timeout"): a relying party's timeout is clamped to
// the top of the recommended range, and an absent one means the default.
const (
	defaultCeremonyTimeout = 5 * time.Minute
	maxCeremonyTimeout     = 10 * time.Minute
)

// maxOptionsSize bounds the options JSON a client accepts. Real options are
// a few kilobytes even with a long excludeCredentials list; the bound keeps
// a hostile relying party page from making the parser allocate without
// limit.
const maxOptionsSize = 1 << 20

// Errors a [WebAuthnClient] returns, named after the DOMException a browser
// throws in the same case (WebAuthn L3 §5.1.3.1 and §5.1.4.3).
var (
	// ErrSecurity ("SecurityError") means the origin may not act for the
	// relying party ID. Every such error is an [*OriginError]; nothing was
	// sent to the key.
	ErrSecurity = errors.New("fido: webauthn: origin may not use this relying party ID")
	// ErrNotAllowed ("NotAllowedError") is the catch-all for a ceremony
	// that did not complete: the person denied or did not touch the key in
	// time, the key holds no matching credential, the key cannot do what
	// the options require, or the ceremony's timeout passed. Every such
	// error is a [*CeremonyError] that also matches the key's [Status].
	ErrNotAllowed = errors.New("fido: webauthn: the ceremony was not allowed")
	// ErrInvalidState ("InvalidStateError") means the key already holds a
	// credential from excludeCredentials: the account has registered this
	// key before (WebAuthn L3 §5.1.3, "returns an error status equivalent
	// to InvalidStateError"). It is a [*CeremonyError] that also matches
	// StatusCredentialExcluded.
	ErrInvalidState = errors.New("fido: webauthn: the key is already registered")
	// ErrInvalidOptions ("TypeError" or "EncodingError") means the options
	// JSON is malformed. Every such error is an [*OptionsError]; nothing
	// was sent to the key.
	ErrInvalidOptions = errors.New("fido: webauthn: invalid options")
)

// OriginError reports an origin that may not use a relying party ID, as a
// browser's "SecurityError" (WebAuthn L3 §5.1.3 and §5.1.4.1 on rp.id). It
// matches [ErrSecurity].
type OriginError struct {
	// Origin is the client's origin, as given.
	Origin string
	// RPID is the relying party ID the options asked for, or the
	// origin's host when they named none.
	RPID string
	// Reason says what was wrong, for people.
	Reason string
}

func (e *OriginError) Error() string {
	return fmt.Sprintf("fido: webauthn: origin %q may not use relying party ID %q: %s", e.Origin, e.RPID, e.Reason)
}

// Is makes every OriginError match ErrSecurity.
func (e *OriginError) Is(target error) bool { return target == ErrSecurity }

// OptionsError reports options JSON that does not parse or breaks a rule of
// WebAuthn L3 §5.1.8 and §5.1.9 (parseCreationOptionsFromJSON and
// parseRequestOptionsFromJSON). It matches [ErrInvalidOptions].
type OptionsError struct {
	// Field is the JSON path of the bad member, such as "user.id" or
	// "excludeCredentials[2].id"; empty for the document itself.
	Field string
	// Err is the cause.
	Err error
}

func (e *OptionsError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("fido: webauthn: invalid options: %v", e.Err)
	}
	return fmt.Sprintf("fido: webauthn: invalid options: %s: %v", e.Field, e.Err)
}

// Unwrap returns the cause.
func (e *OptionsError) Unwrap() error { return e.Err }

// Is makes every OptionsError match ErrInvalidOptions.
func (e *OptionsError) Is(target error) bool { return target == ErrInvalidOptions }

// CeremonyError reports a ceremony that the key or the person did not
// complete. Like a browser it matches [ErrNotAllowed], or [ErrInvalidState]
// when the key recognised an excluded credential; unlike a browser it keeps
// the cause, so errors.Is(err, fido.StatusOperationDenied) and the like
// also work.
type CeremonyError struct {
	// Err is the cause: an error from the Authenticator, or a reason the
	// client did not ask the key at all.
	Err error
}

func (e *CeremonyError) Error() string {
	if e.excluded() {
		return fmt.Sprintf("fido: webauthn: key already registered: %v", e.Err)
	}
	return fmt.Sprintf("fido: webauthn: not allowed: %v", e.Err)
}

// Unwrap returns the cause.
func (e *CeremonyError) Unwrap() error { return e.Err }

// Is matches ErrInvalidState when the cause is StatusCredentialExcluded and
// ErrNotAllowed otherwise, the two DOMExceptions a browser reports here.
func (e *CeremonyError) Is(target error) bool {
	switch target {
	case ErrInvalidState:
		return e.excluded()
	case ErrNotAllowed:
		return !e.excluded()
	}
	return false
}

func (e *CeremonyError) excluded() bool { return errors.Is(e.Err, StatusCredentialExcluded) }

// errCeremonyTimeout is the context cause when the options' timeout, not
// the caller's context, ends a ceremony.
var errCeremonyTimeout = errors.New("the relying party's timeout passed")

// WebAuthnClient does what a browser does with a security key: it turns a
// relying party's options JSON into the credential JSON the relying party
// verifies (WebAuthn L3 §5.1.3 create and §5.1.4 get), checking on the way
// that Origin may act for the relying party ID.
//
// A WebAuthnClient holds no state of its own; it is safe for concurrent use
// if its Authenticator is.
//
// Where the PIN comes from: a WebAuthnClient has no PIN and no prompt of
// its own. It sets UserVerification in the requests it makes, and the
// Authenticator gets the PIN: a [*Device] asks the Prompt.PIN callback of
// the [Opener] that opened it ([Opener.Prompt], [Prompt.PIN]), as the
// libfido2 backend asks its own Opener's, and Prompt.Touch likewise reaches
// the person when the key waits for a touch. The PIN is asked for when
// user verification is required (or preferred) and the key has a PIN but
// no built-in verification; a "preferred" ceremony whose PIN nobody gives
// goes on without verification, as a browser's does, and a "required" one
// fails with an error wrapping [ErrPINRequired]. So for a relying party
// that requires verification, open the key with a Prompt.PIN (fido.Open,
// which has none, will not do; in tests, webauthntest.Options.PIN sets
// both a virtual key's PIN and this callback):
//
//	o := &fido.Opener{Prompt: fido.Prompt{PIN: askPIN}}
//	dev, err := o.Open(ctx, path)
//	c := &fido.WebAuthnClient{Authenticator: dev, Origin: "https://login.example.com"}
//
// Extensions (WebAuthn L3 §9, §10, CTAP 2.1 §12): prf (onto hmac-secret,
// WebAuthn L3 §10.1.4; evaluation at creation is not supported, as it
// needs CTAP 2.2), credProps, credentialProtectionPolicy and
// enforceCredentialProtectionPolicy, credBlob and getCredBlob,
// minPinLength, hmacCreateSecret and hmacGetSecret. Others are ignored.
type WebAuthnClient struct {
	// Authenticator is the key; required.
	Authenticator Authenticator
	// Origin is the web origin the ceremony runs for, serialised as
	// scheme://host[:port], such as "https://login.example.com"; required.
	// The scheme is https, or http for localhost and its subdomains; the
	// host is a lowercase ASCII domain name, not an IP address, and the
	// port is omitted when it is the scheme's default.
	Origin string
	// SelectAccount picks one of several accounts (discoverable
	// credentials) the key returned for a sign-in without
	// allowCredentials, as a browser's account chooser does. It is called
	// only when there are two or more, newest first, and returns the index
	// of the chosen one; an error cancels the sign-in with a
	// [*CeremonyError] wrapping it, and an index out of range is an
	// error too. Nil means the first (newest). Keys give each
	// Assertion.User's name and display name only when they verified the
	// user (CTAP 2.1 §6.2.2), so without user verification there is only
	// the user ID to show.
	SelectAccount func([]*Assertion) (int, error)
}

// credParam is one entry of pubKeyCredParams (WebAuthn L3 §5.3).
type credParam struct {
	Type string
	Alg  Algorithm
}

// descriptor is a PublicKeyCredentialDescriptor (WebAuthn L3 §5.8.3).
type descriptor struct {
	Type       string
	ID         []byte
	Transports []string
}

// creationOptions is PublicKeyCredentialCreationOptions (WebAuthn L3 §5.4)
// after parseCreationOptionsFromJSON. Enumeration members hold the
// recognised value or "" when absent or unknown (§2.1.1: unknown values are
// ignored as if absent); defaults are applied where they are used.
type creationOptions struct {
	RP                 RelyingParty
	RPIDPresent        bool
	User               User
	Challenge          []byte
	Params             []credParam
	Timeout            time.Duration // 0: absent
	Exclude            []descriptor
	Attachment         string // "platform", "cross-platform" or ""
	ResidentKey        string // "required", "preferred", "discouraged" or ""
	RequireResidentKey bool
	UserVerification   string // "required", "preferred", "discouraged" or ""
	Attestation        string // "none", "indirect", "direct", "enterprise" or ""
	Ext                creationExtensions
}

// requestOptions is PublicKeyCredentialRequestOptions (WebAuthn L3 §5.5)
// after parseRequestOptionsFromJSON.
type requestOptions struct {
	Challenge        []byte
	Timeout          time.Duration // 0: absent
	RPID             string
	RPIDPresent      bool
	Allow            []descriptor
	UserVerification string // "required", "preferred", "discouraged" or ""
	Ext              requestExtensions
}

// Create registers the key with a relying party, as
// navigator.credentials.create() does (WebAuthn L3 §5.1.3). options is
// PublicKeyCredentialCreationOptionsJSON (§5.1.8), bare or wrapped as
// {"publicKey": {...}}; the result is RegistrationResponseJSON (§5.1, the
// output of PublicKeyCredential.toJSON()).
//
// Errors: an [*OptionsError] for malformed options and an [*OriginError]
// when Origin may not use rp.id, in both cases before the key is asked;
// a [*CeremonyError] when the key or the person does not complete the
// ceremony (matching [ErrInvalidState] when the key already holds a
// credential from excludeCredentials, [ErrNotAllowed] otherwise); and the
// context's error, wrapped, when ctx is done.
func (c *WebAuthnClient) Create(ctx context.Context, options []byte) ([]byte, error) {
	opts, err := parseCreationOptions(options)
	if err != nil {
		return nil, err
	}
	origin, rpID, err := checkOrigin(c.Origin, opts.RP.ID, opts.RPIDPresent)
	if err != nil {
		return nil, err
	}
	opts.RP.ID = rpID
	// §5.1.3: an empty pubKeyCredParams means ES256 then RS256; entries of
	// types this client does not know are skipped, and none left is a
	// NotSupportedError.
	var algs []Algorithm
	if len(opts.Params) == 0 {
		algs = []Algorithm{ES256, RS256}
	}
	for _, p := range opts.Params {
		if p.Type == "public-key" {
			algs = append(algs, p.Alg)
		}
	}
	if len(algs) == 0 {
		return nil, &OptionsError{Field: "pubKeyCredParams", Err: fmt.Errorf("no entry of type \"public-key\": %w", ErrNotSupported)}
	}

	cdj := clientDataJSON("webauthn.create", opts.Challenge, origin)
	hash := sha256.Sum256(cdj)

	cctx, cancel := ceremonyContext(ctx, opts.Timeout)
	defer cancel()
	info, err := c.Authenticator.Info(cctx)
	if err != nil {
		return nil, ceremonyFailure("create", ctx, cctx, err)
	}
	// §5.1.3: a key that cannot meet authenticatorSelection is skipped,
	// which with one key ends the ceremony with NotAllowedError.
	if opts.Attachment == "platform" {
		return nil, &CeremonyError{Err: fmt.Errorf("relying party asked for a platform authenticator: %w", ErrNotSupported)}
	}
	rk, rkSupported := info.Option("rk")
	rk = rk && rkSupported
	var discoverable bool
	switch opts.ResidentKey {
	case "required":
		discoverable = true
	case "preferred":
		discoverable = rk
	case "discouraged":
	default:
		discoverable = opts.RequireResidentKey
	}
	if discoverable && !rk {
		return nil, &CeremonyError{Err: fmt.Errorf("key cannot store discoverable credentials: %w", ErrNotSupported)}
	}
	uv, err := userVerification(info, opts.UserVerification)
	if err != nil {
		return nil, err
	}
	if err := credProtectError(info, &opts.Ext); err != nil {
		return nil, err
	}
	req := &MakeCredentialRequest{
		ClientDataHash:   hash[:],
		RP:               opts.RP,
		User:             opts.User,
		Algorithms:       algs,
		Discoverable:     discoverable,
		UserVerification: uv,
	}
	opts.Ext.apply(req)
	for _, d := range opts.Exclude {
		if d.Type == "public-key" {
			req.ExcludeList = append(req.ExcludeList, d.ID)
		}
	}
	att, err := c.Authenticator.MakeCredential(cctx, req)
	if err != nil && uv && opts.UserVerification != "required" && errors.Is(err, ErrPINRequired) {
		// "preferred" verification the person declined (or nobody can
		// be asked for the PIN): go on without it, as a browser does.
		req.UserVerification = false
		att, err = c.Authenticator.MakeCredential(cctx, req)
	}
	if err != nil {
		return nil, ceremonyFailure("create", ctx, cctx, err)
	}
	return registrationResponse(att, opts.Attestation, cdj, info, opts.Ext.results(att, discoverable))
}

// Get signs in to a relying party with the key, as
// navigator.credentials.get() does (WebAuthn L3 §5.1.4). options is
// PublicKeyCredentialRequestOptionsJSON (§5.1.9), bare or wrapped as
// {"publicKey": {...}}; the result is AuthenticationResponseJSON (§5.1).
// Without allowCredentials the key offers its discoverable credentials for
// the relying party, and SelectAccount picks one.
//
// Errors are as for [WebAuthnClient.Create]; a key holding none of the
// credentials asked for gives a [*CeremonyError] matching [ErrNotAllowed]
// and StatusNoCredentials.
func (c *WebAuthnClient) Get(ctx context.Context, options []byte) ([]byte, error) {
	opts, err := parseRequestOptions(options)
	if err != nil {
		return nil, err
	}
	origin, rpID, err := checkOrigin(c.Origin, opts.RPID, opts.RPIDPresent)
	if err != nil {
		return nil, err
	}
	cdj := clientDataJSON("webauthn.get", opts.Challenge, origin)
	hash := sha256.Sum256(cdj)

	cctx, cancel := ceremonyContext(ctx, opts.Timeout)
	defer cancel()
	info, err := c.Authenticator.Info(cctx)
	if err != nil {
		return nil, ceremonyFailure("get", ctx, cctx, err)
	}
	uv, err := userVerification(info, opts.UserVerification)
	if err != nil {
		return nil, err
	}
	req := &GetAssertionRequest{RPID: rpID, ClientDataHash: hash[:], UserVerification: uv}
	for _, d := range opts.Allow {
		if d.Type == "public-key" {
			req.AllowList = append(req.AllowList, d.ID)
		}
	}
	// §5.1.4.2: an allowCredentials list with nothing this client can use
	// leaves the key nothing to sign with.
	if len(opts.Allow) > 0 && len(req.AllowList) == 0 {
		return nil, &CeremonyError{Err: fmt.Errorf("no allowCredentials entry of type \"public-key\": %w", StatusNoCredentials)}
	}
	if err := c.prepareExtensions(cctx, req, &opts.Ext); err != nil {
		return nil, ceremonyFailure("get", ctx, cctx, err)
	}
	as, err := c.Authenticator.GetAssertion(cctx, req)
	if err != nil && uv && opts.UserVerification != "required" && errors.Is(err, ErrPINRequired) {
		req.UserVerification = false
		as, err = c.Authenticator.GetAssertion(cctx, req)
	}
	if err != nil {
		return nil, ceremonyFailure("get", ctx, cctx, err)
	}
	if len(as) == 0 {
		return nil, &CeremonyError{Err: fmt.Errorf("key returned no assertion: %w", StatusNoCredentials)}
	}
	a := as[0]
	if len(as) > 1 && c.SelectAccount != nil {
		i, err := c.SelectAccount(as)
		if err != nil {
			return nil, &CeremonyError{Err: fmt.Errorf("selecting an account: %w", err)}
		}
		if i < 0 || i >= len(as) {
			return nil, fmt.Errorf("fido: webauthn get: SelectAccount chose %d of %d accounts", i, len(as))
		}
		a = as[i]
	}
	return authenticationResponse(a, cdj, opts.Ext.results(a))
}

// ceremonyContext bounds a ceremony by the options' timeout (WebAuthn L3
// §5.1.3 and §5.1.4.1, lifetimeTimer), clamped to the recommended range's
// top. Its cause tells the timer (NotAllowedError) from the caller's
// cancellation (a browser's AbortError). Like Device's, it makes its timer
// only for someone waiting on its Done.
func ceremonyContext(parent context.Context, timeout time.Duration) (context.Context, func()) {
	switch {
	case timeout <= 0:
		timeout = defaultCeremonyTimeout
	case timeout > maxCeremonyTimeout:
		timeout = maxCeremonyTimeout
	}
	return hid.OperationContext(parent, timeout, errCeremonyTimeout)
}

// ceremonyFailure classifies an error from the Authenticator. When the
// caller's context is done the caller ended the ceremony, so its error is
// returned; otherwise a browser would report NotAllowedError (or
// InvalidStateError for an excluded credential), hiding the cause from
// the page (WebAuthn L3 §5.1.3, "error status not equivalent to
// InvalidStateError"); we keep it in the chain.
func ceremonyFailure(op string, parent, ctx context.Context, err error) error {
	if perr := parent.Err(); perr != nil {
		if errors.Is(err, perr) {
			return fmt.Errorf("fido: webauthn %s: %w", op, err)
		}
		return fmt.Errorf("fido: webauthn %s: %w: %w", op, perr, err)
	}
	if errors.Is(context.Cause(ctx), errCeremonyTimeout) {
		if !errors.Is(err, context.DeadlineExceeded) {
			err = fmt.Errorf("%w: %w", context.DeadlineExceeded, err)
		}
		return &CeremonyError{Err: fmt.Errorf("%w: %w", errCeremonyTimeout, err)}
	}
	return &CeremonyError{Err: err}
}

// userVerification decides whether to ask the key for user verification
// (WebAuthn L3 §5.1.3 "effective user verification requirement for
// credential creation" and §5.1.4.2 for assertion). A key is capable when
// its built-in verification is configured ("uv" true) or it has a PIN set
// ("clientPin" true), which the Authenticator asks the person for through
// Prompt.PIN. A key with neither cannot meet "required"; when it could
// have a PIN, the error also matches StatusPINNotSet.
func userVerification(info *Info, requirement string) (bool, error) {
	capable := info.opt(optUV) || info.opt(optClientPIN)
	switch requirement {
	case "required":
		if !capable {
			err := fmt.Errorf("user verification required but the key has neither a PIN nor built-in user verification: %w", ErrNotSupported)
			if _, ok := info.Option(optClientPIN); ok {
				err = fmt.Errorf("user verification required but the key has no PIN set and no built-in user verification: %w: %w", ErrNotSupported, StatusPINNotSet)
			}
			return false, &CeremonyError{Err: err}
		}
		return true, nil
	case "discouraged":
		return false, nil
	default: // "preferred", the default
		return capable, nil
	}
}

// registrationResponse builds RegistrationResponseJSON (WebAuthn L3 §5.1,
// toJSON()), applying the attestation conveyance preference first.
func registrationResponse(att *Attestation, conveyance string, cdj []byte, info *Info, ext map[string]any) ([]byte, error) {
	format, stmt := conveyAttestation(att, conveyance)
	attObj, err := attestationObject(format, att.AuthData, stmt)
	if err != nil {
		return nil, &ResponseError{Op: "makeCredential", Err: err}
	}
	return registrationJSON(att.CredentialID, cdj, att.AuthData, transports(info), subjectPublicKeyInfo(att),
		int64(att.Algorithm), attObj, ext)
}

// conveyAttestation applies the attestation conveyance preference (WebAuthn
// L3 §5.1.3, constructCredentialAlg step 1 and §5.4.7): "none" (also the
// default) replaces the statement with the "none" format, unless it is
// already self attestation, which identifies nothing; the AAGUID is kept,
// as the step no longer asks to zero it. "indirect" may be anonymised by a
// client; this one passes it through, like "direct" and "enterprise".
func conveyAttestation(att *Attestation, conveyance string) (format string, stmt []byte) {
	switch conveyance {
	case "indirect", "direct", "enterprise":
		return att.Format, att.Statement
	}
	if att.AAGUID == ([16]byte{}) && att.Format == "packed" && !hasX5C(att.Statement) {
		return att.Format, att.Statement
	}
	return "none", []byte{0xa0} // an empty CBOR map
}

// hasX5C reports whether an attestation statement carries a certificate
// chain. A statement that does not decode counts as carrying one, so that
// "none" conveyance replaces it rather than passing on bytes it cannot read.
func hasX5C(stmt []byte) bool {
	var m map[string]cbor.RawMessage
	if err := ctap.UnmarshalLenient("attestation statement", stmt, &m); err != nil {
		return true
	}
	_, ok := m["x5c"]
	return ok
}

// attestationObject encodes the attestation object (WebAuthn L3 §6.5.5) in
// CTAP2 canonical CBOR: a map of "fmt", "attStmt" and "authData", in that
// order because canonical order sorts shorter keys first.
func attestationObject(format string, authData, stmt []byte) ([]byte, error) {
	if len(stmt) == 0 || stmt[0]>>5 != 5 {
		return nil, errors.New("attestation statement is not a CBOR map")
	}
	return ctap.Marshal(map[string]any{
		"fmt":      format,
		"attStmt":  cbor.RawMessage(stmt),
		"authData": authData,
	})
}

// publicKey returns PublicKey parsed.
func (a *Attestation) publicKey() (any, error) {
	if a.parsed != nil && bytes.Equal(a.parsedFrom, a.PublicKey) {
		return a.parsed, nil
	}
	_, pub, err := ctap.ParsePublicKey(a.PublicKey)
	return pub, err
}

// subjectPublicKeyInfo returns the credential key as DER SubjectPublicKeyInfo
// for getPublicKey() (WebAuthn L3 §5.2.1.1: user agents must support ES256,
// EdDSA and RS256), or nil for other algorithms, as a browser returns null.
func subjectPublicKeyInfo(att *Attestation) []byte {
	switch att.Algorithm {
	case ES256, EdDSA, RS256:
	default:
		return nil
	}
	pub, err := att.publicKey()
	if err != nil {
		return nil
	}
	der, err := marshalSPKI(pub)
	if err != nil {
		return nil
	}
	return der
}

// transports is getTransports() (WebAuthn L3 §5.2.1, [[transports]]): the
// key's own list and "usb", the transport every fidokit backend uses,
// unique and in lexicographical order.
func transports(info *Info) []string {
	ts := append([]string{"usb"}, info.Transports...)
	slices.Sort(ts)
	return slices.Compact(ts)
}

// authenticationResponse builds AuthenticationResponseJSON (WebAuthn L3
// §5.1, toJSON()).
func authenticationResponse(a *Assertion, cdj []byte, ext map[string]any) ([]byte, error) {
	var userHandle []byte
	if a.User != nil {
		userHandle = a.User.ID
	}
	return authenticationJSON(a.CredentialID, cdj, a.AuthData, a.Signature, userHandle, ext)
}

// registrationResponseJSON is RegistrationResponseJSON (WebAuthn L3 §5.1),
// as registrationJSON writes it.
type registrationResponseJSON struct {
	ID                      string                  `json:"id"`
	RawID                   string                  `json:"rawId"`
	Response                attestationResponseJSON `json:"response"`
	AuthenticatorAttachment string                  `json:"authenticatorAttachment"`
	ClientExtensionResults  map[string]any          `json:"clientExtensionResults"`
	Type                    string                  `json:"type"`
}

// attestationResponseJSON is AuthenticatorAttestationResponseJSON.
type attestationResponseJSON struct {
	ClientDataJSON     string   `json:"clientDataJSON"`
	AuthenticatorData  string   `json:"authenticatorData"`
	Transports         []string `json:"transports"`
	PublicKey          string   `json:"publicKey,omitempty"`
	PublicKeyAlgorithm int64    `json:"publicKeyAlgorithm"`
	AttestationObject  string   `json:"attestationObject"`
}

// authenticationResponseJSON is AuthenticationResponseJSON (WebAuthn L3
// §5.1), as authenticationJSON writes it.
type authenticationResponseJSON struct {
	ID                      string                `json:"id"`
	RawID                   string                `json:"rawId"`
	Response                assertionResponseJSON `json:"response"`
	AuthenticatorAttachment string                `json:"authenticatorAttachment"`
	ClientExtensionResults  map[string]any        `json:"clientExtensionResults"`
	Type                    string                `json:"type"`
}

// assertionResponseJSON is AuthenticatorAssertionResponseJSON.
type assertionResponseJSON struct {
	ClientDataJSON    string `json:"clientDataJSON"`
	AuthenticatorData string `json:"authenticatorData"`
	Signature         string `json:"signature"`
	UserHandle        string `json:"userHandle,omitempty"`
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// clientDataJSON serialises CollectedClientData for a same-origin ceremony
// (WebAuthn L3 §5.8.1.1): type, challenge, origin and crossOrigin, in that
// order, each string through CCDToString. The exact bytes matter because
// the key signs their hash.
func clientDataJSON(typ string, challenge []byte, origin string) []byte {
	b := make([]byte, 0, 80+len(origin)+base64.RawURLEncoding.EncodedLen(len(challenge)))
	b = append(b, `{"type":`...)
	b = appendCCDString(b, typ)
	b = append(b, `,"challenge":`...)
	b = appendCCDString(b, b64(challenge))
	b = append(b, `,"origin":`...)
	b = appendCCDString(b, origin)
	b = append(b, `,"crossOrigin":false}`...)
	return b
}

// appendCCDString is CCDToString (WebAuthn L3 §5.8.1.1): only '"', '\' and
// control characters are escaped, the controls as lowercase \u00xx, and
// everything else is UTF-8 as is; in particular '<', '>' and '&' are not
// HTML-escaped as encoding/json would.
func appendCCDString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for _, r := range s {
		switch {
		case r == '"':
			b = append(b, '\\', '"')
		case r == '\\':
			b = append(b, '\\', '\\')
		case r < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[r>>4], hex[r&0xf])
		default:
			b = utf8.AppendRune(b, r)
		}
	}
	return append(b, '"')
}

// checkOrigin applies the rp.id steps of WebAuthn L3 §5.1.3 and §5.1.4.1:
// the origin must be a serialised https origin (or http on localhost) whose
// host is a domain, and rp.id, when present, must be that host or a
// registrable domain suffix of it (HTML, "is a registrable domain suffix of
// or is equal to"). It returns the origin and the effective RP ID.
func checkOrigin(origin, rpID string, rpIDPresent bool) (string, string, error) {
	fail := func(id, reason string) (string, string, error) {
		return "", "", &OriginError{Origin: origin, RPID: id, Reason: reason}
	}
	host, reason := parseOrigin(origin)
	if reason != "" {
		return fail(rpID, reason)
	}
	if !rpIDPresent {
		rpID = host
	}
	if reason := checkRPID(rpID, host); reason != "" {
		return fail(rpID, reason)
	}
	return origin, rpID, nil
}

// parseOrigin checks that origin is the ASCII serialisation of a tuple
// origin whose host is a domain (WebAuthn L3 §5.1.3: the effective domain
// must be a valid domain) in a secure context, and returns the host. A
// non-empty reason says why not.
func parseOrigin(origin string) (host, reason string) {
	scheme, rest, ok := strings.Cut(origin, "://")
	if !ok || rest == "" {
		return "", "not of the form scheme://host[:port]"
	}
	if strings.ContainsAny(rest, "/?#@\\") {
		return "", "an origin has no path, query, fragment or user name; want scheme://host[:port]"
	}
	if strings.HasPrefix(rest, "[") {
		return "", "IP address hosts cannot use WebAuthn"
	}
	host, port, hasPort := strings.Cut(rest, ":")
	if hasPort {
		n, err := strconv.ParseUint(port, 10, 16)
		switch {
		case err != nil || port == "" || (port[0] == '0' && port != "0"):
			return "", fmt.Sprintf("port %q is not a number from 0 to 65535 in canonical form", port)
		case scheme == "https" && n == 443, scheme == "http" && n == 80:
			return "", fmt.Sprintf("an origin omits the default port %d", n)
		}
	}
	if r := checkDomain(host); r != "" {
		return "", "host " + r
	}
	switch {
	case scheme == "https":
	case scheme == "http" && isLocalhost(host):
		// HTML treats http://localhost as a potentially trustworthy origin.
	default:
		return "", fmt.Sprintf("scheme %q is not https (http is allowed only for localhost)", scheme)
	}
	return host, ""
}

// checkDomain checks that s is a domain in the form a URL parser leaves
// it: lowercase ASCII labels, and not an IPv4 address, which the URL
// parser recognises by a numeric last label (WHATWG URL, "ends in a
// number"). A non-empty reason says why not.
func checkDomain(s string) string {
	if s == "" {
		return "is empty"
	}
	if len(s) > 253 {
		return "is longer than 253 characters"
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return fmt.Sprintf("%q has an empty or over-long label", s)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Sprintf("%q is not a lowercase ASCII domain name (use the punycode A-label form)", s)
			}
		}
	}
	last := labels[len(labels)-1]
	hex, isHex := strings.CutPrefix(last, "0x")
	if strings.Trim(last, "0123456789") == "" || isHex && strings.Trim(hex, "0123456789abcdef") == "" {
		return fmt.Sprintf("%q is an IP address; IP address hosts cannot use WebAuthn", s)
	}
	return ""
}

// isLocalhost reports whether host is localhost or under it (RFC 6761
// §6.3), where plain http is a secure context.
func isLocalhost(host string) bool {
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// checkRPID checks that rpID is host or a registrable domain suffix of it
// (HTML, "is a registrable domain suffix of or is equal to"), and, as
// browsers do, not a public suffix such as "com" or "github.io". A
// non-empty reason says why not.
func checkRPID(rpID, host string) string {
	if r := checkDomain(rpID); r != "" {
		return "rp.id " + r
	}
	if rpID != host && !strings.HasSuffix(host, "."+rpID) {
		return "rp.id is neither the origin's host nor a parent domain of it"
	}
	// Names under localhost are special-use (RFC 6761) and on no public
	// suffix list; treat each as registrable so local development works.
	if isLocalhost(rpID) {
		return ""
	}
	if suffix, _ := publicsuffix.PublicSuffix(rpID); suffix == rpID {
		return "rp.id is a public suffix, shared by unrelated sites"
	}
	// The host's public suffix may be longer than rp.id's own, as for
	// "a.s3.amazonaws.com" and rp.id "amazonaws.com": a parent of a public
	// suffix is not registrable from below it.
	if suffix, _ := publicsuffix.PublicSuffix(host); strings.HasSuffix(suffix, "."+rpID) {
		return "rp.id is a parent of the origin's public suffix " + strconv.Quote(suffix)
	}
	return ""
}

// jsonObject is a JSON object whose members are decoded one by one, so
// that errors can name the member.
type jsonObject map[string]json.RawMessage

// optionsParser decodes options JSON member by member, keeping the first
// error as an *OptionsError naming the member.
type optionsParser struct{ err error }

func (p *optionsParser) fail(field string, format string, args ...any) {
	if p.err == nil {
		p.err = &OptionsError{Field: field, Err: fmt.Errorf(format, args...)}
	}
}

// present reports whether a member is present and not null. WebIDL treats
// a null dictionary member as absent for the optional members here.
func present(raw json.RawMessage) bool {
	return raw != nil && string(raw) != "null"
}

// object decodes raw as a JSON object.
func (p *optionsParser) object(field string, raw json.RawMessage) jsonObject {
	if o, ok := quickObject(raw); ok {
		return o
	}
	var o jsonObject
	if err := json.Unmarshal(raw, &o); err != nil || o == nil {
		p.fail(field, "not a JSON object")
		return nil
	}
	return o
}

// str decodes a required (or, with optional, an optional) string member.
func (p *optionsParser) str(o jsonObject, parent, name string, optional bool) (string, bool) {
	field := join(parent, name)
	raw := o[name]
	if !present(raw) {
		if !optional {
			p.fail(field, "required member missing")
		}
		return "", false
	}
	if s, ok := quickStr(raw); ok {
		return s, true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		p.fail(field, "not a JSON string")
		return "", false
	}
	return s, true
}

// enum decodes an enumeration member, returning "" when absent or not one
// of values (WebAuthn L3 §2.1.1: unknown values are ignored as if the
// member were absent).
func (p *optionsParser) enum(o jsonObject, parent, name string, values ...string) string {
	s, _ := p.str(o, parent, name, true)
	if slices.Contains(values, s) {
		return s
	}
	return ""
}

// bytes decodes a Base64URLString member, accepting padded or unpadded
// base64url.
func (p *optionsParser) bytes(o jsonObject, parent, name string, optional bool) []byte {
	s, ok := p.str(o, parent, name, optional)
	if !ok {
		return nil
	}
	b, err := decodeBase64URL(s)
	if err != nil {
		p.fail(join(parent, name), "%v", err)
		return nil
	}
	return b
}

// timeout decodes the unsigned long timeout member in milliseconds.
func (p *optionsParser) timeout(o jsonObject) time.Duration {
	raw := o["timeout"]
	if !present(raw) {
		return 0
	}
	var ms float64
	if err := json.Unmarshal(raw, &ms); err != nil {
		p.fail("timeout", "not a JSON number")
		return 0
	}
	// WebIDL unsigned long: the integer part, which must fit.
	ms = math.Trunc(ms)
	if ms < 0 || ms > math.MaxUint32 {
		p.fail("timeout", "%v is not an unsigned long", ms)
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}

// array decodes an optional sequence member into its elements.
func (p *optionsParser) array(o jsonObject, name string) []json.RawMessage {
	raw := o[name]
	if !present(raw) {
		return nil
	}
	if a, ok := quickArray(raw); ok {
		return a
	}
	var a []json.RawMessage
	if err := json.Unmarshal(raw, &a); err != nil {
		p.fail(name, "not a JSON array")
		return nil
	}
	return a
}

// descriptors decodes a sequence of PublicKeyCredentialDescriptorJSON.
func (p *optionsParser) descriptors(o jsonObject, name string) []descriptor {
	var ds []descriptor
	for i, raw := range p.array(o, name) {
		field := fmt.Sprintf("%s[%d]", name, i)
		d := p.object(field, raw)
		if d == nil {
			return nil
		}
		typ, _ := p.str(d, field, "type", false)
		id := p.bytes(d, field, "id", false)
		var ts []string
		for j, t := range p.array(d, "transports") {
			s, ok := quickStr(t)
			if !ok {
				if err := json.Unmarshal(t, &s); err != nil {
					p.fail(fmt.Sprintf("%s.transports[%d]", field, j), "not a JSON string")
					return nil
				}
			}
			ts = append(ts, s)
		}
		if p.err != nil {
			return nil
		}
		ds = append(ds, descriptor{Type: typ, ID: id, Transports: ts})
	}
	return ds
}

func join(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

// decodeBase64URL decodes base64url (RFC 4648 §5) with or without padding.
// Unlike encoding/base64 it refuses line breaks, which no JSON producer
// puts in a Base64URLString.
func decodeBase64URL(s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errors.New("not base64url: contains a line break")
	}
	enc := base64.RawURLEncoding
	if strings.HasSuffix(s, "=") {
		enc = base64.URLEncoding
	}
	b, err := enc.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("not base64url: %v", err)
	}
	return b, nil
}

// unwrapOptions returns the options object of a document that is either
// the options themselves or a CredentialCreationOptions or
// CredentialRequestOptions wrapper, {"publicKey": {...}} (WebAuthn L3
// §5.1.1, §5.1.2), which go-webauthn and others send.
func (p *optionsParser) unwrapOptions(data []byte) jsonObject {
	if len(data) > maxOptionsSize {
		p.fail("", "options of %d bytes exceed the limit of %d", len(data), maxOptionsSize)
		return nil
	}
	o := p.object("", data)
	if o == nil {
		return nil
	}
	if raw, ok := o["publicKey"]; ok {
		return p.object("publicKey", raw)
	}
	return o
}

// parseCreationOptions is parseCreationOptionsFromJSON (WebAuthn L3 §5.1.8)
// with the TypeError checks of §5.1.3 on user.id. Errors are *OptionsError.
func parseCreationOptions(data []byte) (*creationOptions, error) {
	var p optionsParser
	o := p.unwrapOptions(data)
	if o == nil {
		return nil, p.err
	}
	opts := new(creationOptions)

	if !present(o["rp"]) {
		p.fail("rp", "required member missing")
		return nil, p.err
	}
	rp := p.object("rp", o["rp"])
	if rp == nil {
		return nil, p.err
	}
	opts.RP.Name, _ = p.str(rp, "rp", "name", false)
	opts.RP.ID, opts.RPIDPresent = p.str(rp, "rp", "id", true)

	if !present(o["user"]) {
		p.fail("user", "required member missing")
		return nil, p.err
	}
	user := p.object("user", o["user"])
	if user == nil {
		return nil, p.err
	}
	opts.User.ID = p.bytes(user, "user", "id", false)
	if n := len(opts.User.ID); p.err == nil && (n < 1 || n > 64) {
		p.fail("user.id", "%d bytes, want 1 to 64", n)
	}
	opts.User.Name, _ = p.str(user, "user", "name", false)
	opts.User.DisplayName, _ = p.str(user, "user", "displayName", false)

	opts.Challenge = p.bytes(o, "", "challenge", false)
	// pubKeyCredParams is required in the JSON form, but an absent list is
	// read as the empty one that §5.1.3 gives a default for, because
	// relying parties (go-webauthn among them) omit an empty list.
	for i, raw := range p.array(o, "pubKeyCredParams") {
		field := fmt.Sprintf("pubKeyCredParams[%d]", i)
		cp := p.object(field, raw)
		if cp == nil {
			return nil, p.err
		}
		typ, _ := p.str(cp, field, "type", false)
		var alg int32 // COSEAlgorithmIdentifier is a WebIDL long
		if !present(cp["alg"]) {
			p.fail(field+".alg", "required member missing")
		} else if err := json.Unmarshal(cp["alg"], &alg); err != nil {
			p.fail(field+".alg", "not a COSE algorithm identifier (a 32-bit integer)")
		}
		if p.err != nil {
			return nil, p.err
		}
		opts.Params = append(opts.Params, credParam{Type: typ, Alg: Algorithm(alg)})
	}
	opts.Timeout = p.timeout(o)
	opts.Exclude = p.descriptors(o, "excludeCredentials")
	if raw := o["authenticatorSelection"]; present(raw) {
		sel := p.object("authenticatorSelection", raw)
		if sel == nil {
			return nil, p.err
		}
		const f = "authenticatorSelection"
		opts.Attachment = p.enum(sel, f, "authenticatorAttachment", "platform", "cross-platform")
		opts.ResidentKey = p.enum(sel, f, "residentKey", "required", "preferred", "discouraged")
		if raw := sel["requireResidentKey"]; present(raw) {
			if err := json.Unmarshal(raw, &opts.RequireResidentKey); err != nil {
				p.fail(f+".requireResidentKey", "not a JSON boolean")
			}
		}
		opts.UserVerification = p.enum(sel, f, "userVerification", "required", "preferred", "discouraged")
	}
	opts.Attestation = p.enum(o, "", "attestation", "none", "indirect", "direct", "enterprise")
	opts.Ext = p.creationExtensions(o)
	if p.err != nil {
		return nil, p.err
	}
	return opts, nil
}

// parseRequestOptions is parseRequestOptionsFromJSON (WebAuthn L3 §5.1.9).
// Errors are *OptionsError.
func parseRequestOptions(data []byte) (*requestOptions, error) {
	var p optionsParser
	o := p.unwrapOptions(data)
	if o == nil {
		return nil, p.err
	}
	opts := new(requestOptions)
	opts.Challenge = p.bytes(o, "", "challenge", false)
	opts.Timeout = p.timeout(o)
	opts.RPID, opts.RPIDPresent = p.str(o, "", "rpId", true)
	opts.Allow = p.descriptors(o, "allowCredentials")
	opts.UserVerification = p.enum(o, "", "userVerification", "required", "preferred", "discouraged")
	opts.Ext = p.requestExtensions(o, opts.Allow)
	if p.err != nil {
		return nil, p.err
	}
	return opts, nil
}
