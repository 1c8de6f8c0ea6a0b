package mfa

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/fidokit/fidokit/webauthn"
)

// Defaults of HandlerConfig.
const (
	// DefaultMaxBodyBytes bounds request bodies when
	// HandlerConfig.MaxBodyBytes is zero.
	DefaultMaxBodyBytes = 64 << 10
	// DefaultMaxSeedFileBytes bounds the seed file of POST /token/begin
	// when HandlerConfig.MaxSeedFileBytes is zero: 1 MiB, the most a seed
	// file may be.
	DefaultMaxSeedFileBytes = 1 << 20
	// DefaultCookieName is the security-key ceremony cookie's name when
	// HandlerConfig.CookieName is empty.
	DefaultCookieName = "mfa_ceremony"
	// DefaultBindingCookieName is the binding cookie's name when
	// HandlerConfig.BindingCookieName is empty.
	DefaultBindingCookieName = "mfa_binding"
	// DefaultKeyName is the name of a security key registered through
	// POST /keys/finish without one.
	DefaultKeyName = "Security key"
)

// bindingLen is the number of random bytes of a binding cookie.
const bindingLen = 32

// HandlerConfig configures the HTTP API of [Manager.Handler]. CurrentUser
// and OnVerified are required; the zero value of every other field means
// the default documented on it.
type HandlerConfig struct {
	// CurrentUser returns the ID of the user signed in to the
	// application on r (the first factor done), or nil if nobody is. An
	// error fails the request with 500. It is also asked, once per
	// request, who acts for the request's events ([WithActor]; an actor
	// the application put in r's context first is kept). Required.
	CurrentUser func(r *http.Request) ([]byte, error)
	// OnVerified is called after a second factor passes (POST
	// /verify/...), before the response is written, so that the
	// application records it in its session (when, and which factor). An
	// error fails the request with 500; the code or key use stays spent.
	// Required.
	OnVerified func(w http.ResponseWriter, r *http.Request, v *Verification) error
	// Authorize decides whether the signed-in user (actor) may manage
	// another account's (target) devices and see its events: the
	// /users/{user}/... routes; target is nil for the routes about every
	// account (GET /users, GET /events). A nil error allows; any error
	// answers 403 forbidden. Nil means the administrator routes always
	// answer 403.
	Authorize func(r *http.Request, actor, target []byte) error
	// MaxBodyBytes bounds request bodies; larger ones get 413. Zero means
	// DefaultMaxBodyBytes (64 KiB).
	MaxBodyBytes int64
	// MaxSeedFileBytes bounds the seed file uploaded to POST
	// /token/begin (the body may be that much, in base64, plus
	// MaxBodyBytes). Zero means DefaultMaxSeedFileBytes (1 MiB).
	MaxSeedFileBytes int64
	// CookieName names the cookie that carries a security-key second
	// factor's challenge ID from /verify/key/begin to /verify/key/finish,
	// for a client that does not send it back in the finish body. Empty
	// means DefaultCookieName.
	CookieName string
	// BindingCookieName names the cookie that binds security-key
	// ceremonies to the browser (see Handler). Empty means
	// DefaultBindingCookieName.
	BindingCookieName string
	// CookiePath is the Path of both cookies: where the handler is
	// mounted. Empty means the handler works it out from each request,
	// as the request's path (r.RequestURI) less the route's (r.URL.Path,
	// which http.StripPrefix shortened): mounted with
	// http.StripPrefix("/mfa", h), it is "/mfa/"; "/" when the two do not
	// end alike.
	CookiePath string
	// OnError, if not nil, is told about every error that becomes a 500
	// response (the response itself says only "internal error").
	OnError func(r *http.Request, err error)
}

// DeviceJSON is a device as the HTTP API shows it. Times are RFC 3339, in
// UTC.
type DeviceJSON struct {
	// ID names the device; the {id} of the /devices/{id} routes.
	ID string `json:"id"`
	// Type is "security_key", "authenticator_app" or "hardware_token".
	Type DeviceType `json:"type"`
	// Name is what the person called the device.
	Name string `json:"name"`
	// Serial is a hardware token's serial number; absent otherwise.
	Serial string `json:"serial,omitempty"`
	// Created is when the device was enrolled, LastUsed when it last
	// passed (absent if never).
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"lastUsed,omitzero"`
	// Active is false once the device is deactivated, at Deactivated.
	Active      bool      `json:"active"`
	Deactivated time.Time `json:"deactivated,omitzero"`
	// CloneWarning is true for a security key that may have been cloned.
	CloneWarning bool `json:"cloneWarning,omitempty"`
}

// FactorsJSON is [Factors] as the HTTP API shows it.
type FactorsJSON struct {
	// SecurityKeys, Apps and Tokens count the active devices of each
	// type; RecoveryCodes the unused recovery codes.
	SecurityKeys  int `json:"securityKeys"`
	Apps          int `json:"apps"`
	Tokens        int `json:"tokens"`
	RecoveryCodes int `json:"recoveryCodes"`
	// Enabled is [Factors.Enabled]: at least one active device.
	Enabled bool `json:"enabled"`
}

// VerificationJSON is a [Verification] as the HTTP API shows it.
type VerificationJSON struct {
	// Factor is "security_key", "totp" or "recovery_code".
	Factor Factor `json:"factor"`
	// DeviceID is the device that passed; absent for a recovery code.
	DeviceID string `json:"deviceId,omitempty"`
	// At is when it passed.
	At time.Time `json:"at"`
	// RecoveryCodesLeft is, after a recovery code, how many are left;
	// absent for other factors.
	RecoveryCodesLeft *int `json:"recoveryCodesLeft,omitempty"`
}

// enrollmentJSON is an [Enrollment] on its one way out. It is not
// exported: it holds the secret as plain text, for the begin response
// only.
type enrollmentJSON struct {
	ID      string     `json:"id"`
	Type    DeviceType `json:"type"`
	Name    string     `json:"name"`
	Serial  string     `json:"serial,omitempty"`
	Secret  string     `json:"secret,omitempty"`
	URI     string     `json:"uri,omitempty"`
	QR      string     `json:"qr,omitempty"`
	Digits  int        `json:"digits"`
	Period  int        `json:"period"`
	Expires time.Time  `json:"expires"`
}

func deviceJSON(d *Device) DeviceJSON {
	return DeviceJSON{
		ID: d.ID, Type: d.Type, Name: d.Name, Serial: d.Serial,
		Created: utc(d.Created), LastUsed: utc(d.LastUsed),
		Active: d.Active(), Deactivated: utc(d.Deactivated), CloneWarning: d.CloneWarning,
	}
}

func factorsJSON(f *Factors) FactorsJSON {
	return FactorsJSON{SecurityKeys: f.SecurityKeys, Apps: f.Apps, Tokens: f.Tokens, RecoveryCodes: f.RecoveryCodes, Enabled: f.Enabled()}
}

func verificationJSON(v *Verification) VerificationJSON {
	j := VerificationJSON{Factor: v.Factor, At: utc(v.At)}
	if v.Device != nil {
		j.DeviceID = v.Device.ID
	}
	if v.Factor == FactorRecoveryCode {
		n := v.RecoveryCodesLeft
		j.RecoveryCodesLeft = &n
	}
	return j
}

func enrollJSON(e *Enrollment) enrollmentJSON {
	j := enrollmentJSON{
		ID: e.ID, Type: e.Type, Name: e.Name, Serial: e.Serial,
		Secret: e.Secret.Reveal(), URI: e.URI.Reveal(),
		Digits: e.Digits, Period: e.Period, Expires: utc(e.Expires),
	}
	if len(e.QR) > 0 {
		j.QR = "data:image/png;base64," + base64.StdEncoding.EncodeToString(e.QR)
	}
	return j
}

func utc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// Errors only the HTTP layer reports.
var (
	errUnauthenticated = errors.New("mfa: nobody is signed in")
	errForbidden       = errors.New("mfa: not allowed to manage this account")
	errCrossOrigin     = errors.New("mfa: cross-origin request refused")
	errNoRoute         = errors.New("mfa: no such endpoint")
	errMethod          = errors.New("mfa: method not allowed")
	errTooLarge        = errors.New("mfa: request body too large")
	errMediaType       = errors.New("mfa: request body is not application/json")
)

var httpErrors = []struct {
	err  error
	code string
}{
	{errUnauthenticated, "unauthenticated"},
	{errForbidden, "forbidden"},
	{errCrossOrigin, "cross_origin"},
	{errNoRoute, "not_found"},
	{errMethod, "method_not_allowed"},
	{errTooLarge, "request_too_large"},
	{errMediaType, "unsupported_media_type"},
}

// errorCodes lists the codes [ErrorCode] returns for the package's own
// errors, most specific first: a wrong code that locked the factor is
// "locked", not "invalid_code".
var errorCodes = []struct {
	err  error
	code string
}{
	{ErrLocked, "locked"},
	{ErrInvalidRequest, "invalid_request"},
	{ErrMalformedCode, "malformed_code"},
	{ErrInvalidCode, "invalid_code"},
	{ErrReplay, "code_reused"}, // ErrCodeReused matches it
	{ErrNotConsecutive, "not_consecutive"},
	{ErrUnknownEnrollment, "enrollment_unknown"},
	{ErrEnrollmentExpired, "enrollment_expired"},
	{ErrUnknownDevice, "device_unknown"},
	{webauthn.ErrInactive, "device_deactivated"},
	{ErrDeviceLimit, "device_limit"},
	{webauthn.ErrLimit, "device_limit"},
	{ErrSerialTaken, "serial_taken"},
	{ErrNotEnrolled, "not_enrolled"},
	{ErrNoRecoveryCodes, "no_recovery_codes"},
	{ErrInvalidSecret, "invalid_secret"},
	{ErrNotTOTP, "not_totp"},
	{ErrSeedFileMalformed, "seed_file_malformed"},
	{ErrSeedFileUnsupported, "seed_file_unsupported"},
	{ErrSeedFileKeyRequired, "seed_file_key_required"},
	{ErrSeedFileMAC, "seed_file_mac"},
	{ErrSeedFileWrongKey, "seed_file_wrong_key"},
	{ErrSerialNotFound, "serial_not_found"},
	// A container without keys holds no token with the serial either.
}

// ErrorCode returns the stable, machine-readable code for err that the
// HTTP handler puts in its error bodies ("invalid_code", "locked", ...;
// [Manager.Handler] lists them all). An error of the relying party (a
// security key's rejected response, say) gets package webauthn's code
// from [webauthn.ErrorCode]; anything else, such as a failing store, is
// "internal".
func ErrorCode(err error) string {
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return webauthn.ErrorCode(err)
}

// codeInfo is the HTTP status of each code and the sentence a page shows
// for it. Messages are fixed per code, never the error's text, so that no
// internal detail reaches the page.
var codeInfo = map[string]struct {
	status int
	msg    string
}{
	"invalid_request":        {http.StatusBadRequest, "The request is not valid. Check what you entered and try again."},
	"malformed_code":         {http.StatusBadRequest, "That does not look like a code. Check what you typed and try again."},
	"invalid_code":           {http.StatusBadRequest, "That code is not right. Check the device and try again."},
	"code_reused":            {http.StatusConflict, "That code has already been used — wait for the next one."},
	"not_consecutive":        {http.StatusBadRequest, "Those two codes do not follow each other. Enter two codes the device shows one after the other."},
	"enrollment_unknown":     {http.StatusNotFound, "This setup is unknown or already finished. Start again."},
	"enrollment_expired":     {http.StatusGone, "This setup took too long and has expired. Start again."},
	"device_unknown":         {http.StatusNotFound, "There is no such device on this account."},
	"device_deactivated":     {http.StatusForbidden, "This device is deactivated."},
	"device_limit":           {http.StatusConflict, "This account already has as many devices as allowed. Remove one first."},
	"serial_taken":           {http.StatusConflict, "A token with this serial number is already assigned."},
	"not_enrolled":           {http.StatusNotFound, "This account has no active device of this kind."},
	"no_recovery_codes":      {http.StatusNotFound, "This account has no recovery codes left."},
	"locked":                 {http.StatusTooManyRequests, "Too many wrong codes. Try again later."},
	"invalid_secret":         {http.StatusBadRequest, "That secret is not valid. Type the secret from the token's card as it is printed."},
	"not_totp":               {http.StatusBadRequest, "That token is not a time-based (TOTP) token this service can use."},
	"seed_file_malformed":    {http.StatusBadRequest, "The seed file cannot be read."},
	"seed_file_unsupported":  {http.StatusBadRequest, "The seed file uses an encryption this service does not support."},
	"seed_file_key_required": {http.StatusBadRequest, "The seed file is encrypted. Give its key or password."},
	"seed_file_mac":          {http.StatusBadRequest, "The seed file's key or password is wrong, or the file was altered."},
	"seed_file_wrong_key":    {http.StatusBadRequest, "The seed file does not decrypt with this key or password."},
	"serial_not_found":       {http.StatusNotFound, "The seed file has no token with this serial number."},
	"unauthenticated":        {http.StatusUnauthorized, "Sign in first."},
	"forbidden":              {http.StatusForbidden, "You are not allowed to do this."},
	"cross_origin":           {http.StatusForbidden, "Requests from other sites are not allowed."},
	"not_found":              {http.StatusNotFound, "There is no such endpoint."},
	"method_not_allowed":     {http.StatusMethodNotAllowed, "This endpoint does not take that method."},
	"request_too_large":      {http.StatusRequestEntityTooLarge, "The request is too large."},
	"unsupported_media_type": {http.StatusUnsupportedMediaType, "The request must be JSON (application/json)."},
	"internal":               {http.StatusInternalServerError, "internal error"},

	// Package webauthn's codes, for the security key (statuses as there).
	"malformed_response":        {http.StatusBadRequest, "The security key's answer could not be read. Try again."},
	"wrong_type":                {http.StatusBadRequest, securityKeyRefused},
	"challenge_mismatch":        {http.StatusBadRequest, securityKeyRefused},
	"challenge_unknown":         {http.StatusBadRequest, "This security key check is unknown or was already used. Start again."},
	"challenge_expired":         {http.StatusBadRequest, "The security key check took too long. Start again."},
	"origin_mismatch":           {http.StatusBadRequest, securityKeyRefused},
	"rp_id_mismatch":            {http.StatusBadRequest, securityKeyRefused},
	"user_presence_missing":     {http.StatusBadRequest, "The security key was not touched. Try again."},
	"user_verification_missing": {http.StatusBadRequest, "The security key did not check its PIN or fingerprint. Try again."},
	"backup_flags_invalid":      {http.StatusBadRequest, securityKeyRefused},
	"algorithm_not_allowed":     {http.StatusBadRequest, securityKeyRefused},
	"attestation_invalid":       {http.StatusBadRequest, securityKeyRefused},
	"verification_failed":       {http.StatusBadRequest, securityKeyRefused},
	"backup_eligible":           {http.StatusForbidden, securityKeyRefused},
	"attestation_untrusted":     {http.StatusForbidden, securityKeyRefused},
	"credential_wrong_user":     {http.StatusForbidden, "That security key belongs to another account."},
	"user_handle_mismatch":      {http.StatusForbidden, "That security key belongs to another account."},
	"credential_deactivated":    {http.StatusForbidden, "This device is deactivated."},
	"sign_count_regression":     {http.StatusForbidden, "This security key was refused: it may have been copied."},
	"credential_clone_warning":  {http.StatusForbidden, "This security key may have been copied. An administrator must check it before it can sign in again."},
	"too_many_ceremonies":       {http.StatusTooManyRequests, "Too many sign-ins are under way. Try again in a few minutes."},
	"bad_signature":             {http.StatusForbidden, securityKeyRefused},
	"credential_unknown":        {http.StatusNotFound, "That security key is not registered to this account."},
	"user_unknown":              {http.StatusNotFound, "The account is unknown."},
	"no_credentials":            {http.StatusNotFound, "This account has no active security key."},
	"credential_exists":         {http.StatusConflict, "That security key is already registered."},
	"credential_limit":          {http.StatusConflict, "This account already has as many devices as allowed. Remove one first."},
	"user_exists":               {http.StatusConflict, "That account name is taken."},
}

const securityKeyRefused = "The security key's answer was not accepted. Try again."

// hookError is an error of one of the application's hooks: always a 500,
// whatever it wraps.
type hookError struct {
	hook string
	err  error
}

func (e *hookError) Error() string { return "mfa: HandlerConfig." + e.hook + ": " + e.err.Error() }
func (e *hookError) Unwrap() error { return e.err }

// httpStatus returns the code and status of err.
func httpStatus(err error) (string, int) {
	var he *hookError
	if errors.As(err, &he) {
		return "internal", http.StatusInternalServerError
	}
	code := ""
	for _, e := range httpErrors {
		if errors.Is(err, e.err) {
			code = e.code
			break
		}
	}
	if code == "" {
		code = ErrorCode(err)
	}
	if c, ok := codeInfo[code]; ok {
		return code, c.status
	}
	return code, http.StatusBadRequest
}

// Handler returns the HTTP API of account MFA: JSON in and out, for the
// account's security page (enroll and manage devices, recovery codes),
// the sign-in page's second step (verify a factor) and administrators.
// Mount it under a prefix with http.StripPrefix; the cookies' Path
// follows (see HandlerConfig.CookiePath). Every route needs a signed-in
// user (HandlerConfig.CurrentUser), or answers 401. Routes:
//
//	POST   /totp/begin                {"name"} (or no body: "Authenticator app")
//	                                  → 200 {"enrollment": {"id","type","name","secret","uri","qr","digits","period","expires"}}
//	POST   /token/begin               {"name","serial","secret"[,"digits","period"]}
//	                                  or {"name","serial","seedFile": base64 PSKC,"preSharedKey": hex,"password"}
//	                                  → 200 {"enrollment": {"id","type","name","serial","digits","period","expires"}}
//	POST   /totp/finish               {"id","code1","code2"} → 201 {"device": DeviceJSON}
//	POST   /keys/begin                → 200 {"challengeId", "publicKey": PublicKeyCredentialCreationOptionsJSON}
//	POST   /keys/finish               {"challengeId","name","credential": RegistrationResponseJSON} → 201 {"device": DeviceJSON}
//	GET    /devices                   → 200 {"devices": [DeviceJSON, ...], "factors": FactorsJSON}
//	POST   /devices/{id}/rename       {"name"} → 200 {"device": DeviceJSON}
//	POST   /devices/{id}/deactivate   → 200 {"device": DeviceJSON}
//	POST   /devices/{id}/reactivate   → 200 {"device": DeviceJSON}
//	POST   /devices/{id}/resync       {"code1","code2"} → 200 {"device": DeviceJSON}
//	DELETE /devices/{id}              → 204
//	POST   /recovery-codes            → 201 {"codes": ["XXXX-XXXX-XXXX-XXXX", ...], "created"}
//	GET    /recovery-codes            → 200 {"left": n}
//	POST   /verify/totp               {"code"} → 200 {"verification": VerificationJSON}
//	POST   /verify/recovery-code      {"code"} → 200 {"verification": VerificationJSON}
//	POST   /verify/key/begin          → 200 {"challengeId", "publicKey": PublicKeyCredentialRequestOptionsJSON}
//	POST   /verify/key/finish         {"challengeId","credential": AuthenticationResponseJSON} → 200 {"verification": VerificationJSON}
//
// and for administrators, where {user} is the account's user ID in
// base64url without padding and every request is first put to
// HandlerConfig.Authorize (with a nil target for the routes about every
// account):
//
//	GET    /users?after=&limit=                   → 200 {"accounts": [report lines], "next": cursor}
//	GET    /users/{user}                          → 200 {"account": report line, "events": [EventJSON, newest 50]}
//	GET    /users/{user}/events?since=&until=&after=&limit=&order=  → 200 {"events": [EventJSON], "next": cursor}
//	GET    /events?since=&until=&after=&limit=&order=               → 200 the same, for every account
//	GET    /users/{user}/devices                  → 200 {"devices": [...], "factors": FactorsJSON}
//	POST   /users/{user}/devices/{id}/deactivate  → 200 {"device": DeviceJSON}
//	POST   /users/{user}/devices/{id}/reactivate  → 200 {"device": DeviceJSON}
//	DELETE /users/{user}/devices/{id}             → 204
//	POST   /users/{user}/unlock                   {"factor": "totp" | "recovery_code"} → 204
//
// A report line is an element of [Manager.WriteReportJSON]'s array;
// /users pages through accounts in user ID order ([Manager.Accounts]):
// pass "next" as after for the next page, until a page is empty. The
// event listings ([Manager.Events]) are newest first unless
// order=oldest; since and until are RFC 3339; limit is 1 to
// MaxEventLimit (default DefaultEventLimit); "next", passed as after,
// continues the listing; it is null on an empty page. Unknown or
// repeated query parameters are invalid_request.
//
// The routes that change an account's devices or recovery codes trust
// CurrentUser: once an account has MFA, mount them behind
// [Manager.Require], so that a stolen password alone cannot add a device
// or remove one; the /verify/... routes are the ones a person whose
// second factor is still pending must reach.
//
// The secret, key URI and QR code (a data: URL of a PNG) of an app's
// enrollment are in the /totp/begin response and nowhere else; the
// recovery codes only in the POST /recovery-codes response. The
// /verify/... routes call HandlerConfig.OnVerified before they answer.
//
// The security-key routes run WebAuthn ceremonies: /keys/begin and
// /keys/finish register a key as a device ([Manager.BeginKeyRegistration],
// [Manager.FinishKeyRegistration]; "name" is the device's, empty meaning
// DefaultKeyName), /verify/key/begin and /verify/key/finish check one as
// the second factor. A begin answers the ceremony's challengeId and its
// finish takes it back in the body, so that several ceremonies run at
// once in one browser (two tabs). Each is bound to the browser and the
// account that began it ([webauthn.WithSessionBinding]): a begin sets the
// binding cookie if the browser has none (HttpOnly, Secure,
// SameSite=Strict, 32 random bytes, for the browser session), and a
// finish in another browser, or for another signed-in account, fails with
// challenge_unknown. For clients that do not send challengeId,
// /verify/key/begin also sets the ceremony cookie (HttpOnly, Secure,
// SameSite=Strict, Max-Age the challenge timeout) to it, and
// /verify/key/finish without challengeId uses the cookie's, clearing the
// cookie when it used its challenge; /keys/finish needs challengeId.
//
// Bodies must be application/json, at most HandlerConfig.MaxBodyBytes
// (the /token/begin seed file HandlerConfig.MaxSeedFileBytes), one JSON
// value with no unknown members; a route that takes no body also takes
// none, or {}. Every response carries Cache-Control: no-store and
// X-Content-Type-Options: nosniff. State-changing requests from another
// site are refused by http.CrossOriginProtection (Sec-Fetch-Site, or
// Origin against Host).
//
// Every error is a JSON body {"error": {"code": ..., "message": ...}}:
// the code is [ErrorCode]'s, and the message a fixed sentence for the
// code, fit to show on the page, never the error's text. A locked factor
// adds "until" (RFC 3339) to the body and a Retry-After header. Codes and
// statuses:
//
//	code                    status  error
//	invalid_request         400     ErrInvalidRequest: bad JSON body, name, serial, user or device ID
//	malformed_code          400     ErrMalformedCode
//	invalid_code            400     ErrInvalidCode
//	not_consecutive         400     ErrNotConsecutive
//	invalid_secret          400     ErrInvalidSecret
//	not_totp                400     ErrNotTOTP
//	seed_file_malformed     400     ErrSeedFileMalformed
//	seed_file_unsupported   400     ErrSeedFileUnsupported
//	seed_file_key_required  400     ErrSeedFileKeyRequired
//	seed_file_mac           400     ErrSeedFileMAC
//	seed_file_wrong_key     400     ErrSeedFileWrongKey
//	unauthenticated         401     nobody signed in (HandlerConfig.CurrentUser)
//	device_deactivated      403     webauthn.ErrInactive
//	forbidden               403     HandlerConfig.Authorize refused, or is nil
//	cross_origin            403     a state-changing request from another site
//	enrollment_unknown      404     ErrUnknownEnrollment
//	device_unknown          404     ErrUnknownDevice
//	not_enrolled            404     ErrNotEnrolled
//	no_recovery_codes       404     ErrNoRecoveryCodes
//	serial_not_found        404     ErrSerialNotFound (or a seed file without keys)
//	not_found               404     no such endpoint
//	method_not_allowed      405     wrong method (with an Allow header)
//	code_reused             409     ErrCodeReused
//	device_limit            409     ErrDeviceLimit
//	serial_taken            409     ErrSerialTaken
//	enrollment_expired      410     ErrEnrollmentExpired: gone for good, begin again
//	request_too_large       413     body over the limit
//	unsupported_media_type  415     body not application/json
//	locked                  429     *LockedError (also the wrong code that caused it), with Retry-After
//	internal                500     anything else, such as a failing store or hook
//
// The security-key routes answer the relying party's errors with package
// webauthn's codes and statuses (challenge_unknown 400 for no challengeId
// nor ceremony cookie, or another browser's or account's; no_credentials
// 404, credential_wrong_user 403, bad_signature 403, credential_exists
// 409, ...: see that package's documentation), except that a key beyond
// the device limit is device_limit.
//
// The handler is safe for concurrent use, as are the hooks it calls if
// the application's are. It limits wrong codes per account (Config.Lock),
// not request rates.
func (m *Manager) Handler(cfg HandlerConfig) (http.Handler, error) {
	if cfg.CurrentUser == nil {
		return nil, errors.New("mfa: HandlerConfig.CurrentUser is nil")
	}
	if cfg.OnVerified == nil {
		return nil, errors.New("mfa: HandlerConfig.OnVerified is nil")
	}
	if cfg.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("mfa: HandlerConfig.MaxBodyBytes is negative (%d)", cfg.MaxBodyBytes)
	}
	if cfg.MaxSeedFileBytes < 0 {
		return nil, fmt.Errorf("mfa: HandlerConfig.MaxSeedFileBytes is negative (%d)", cfg.MaxSeedFileBytes)
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxSeedFileBytes == 0 {
		cfg.MaxSeedFileBytes = DefaultMaxSeedFileBytes
	}
	if cfg.CookieName == "" {
		cfg.CookieName = DefaultCookieName
	}
	if cfg.BindingCookieName == "" {
		cfg.BindingCookieName = DefaultBindingCookieName
	}
	if cfg.BindingCookieName == cfg.CookieName {
		return nil, fmt.Errorf("mfa: HandlerConfig.BindingCookieName and CookieName are both %q", cfg.CookieName)
	}
	h := &handler{m: m, cfg: cfg, mux: http.NewServeMux()}
	routes := []struct {
		method, path string
		fn           func(w http.ResponseWriter, r *http.Request) error
	}{
		{"POST", "/totp/begin", h.totpBegin},
		{"POST", "/totp/finish", h.totpFinish},
		{"POST", "/token/begin", h.tokenBegin},
		{"GET", "/devices", h.listDevices},
		{"POST", "/devices/{id}/rename", h.renameDevice},
		{"POST", "/devices/{id}/deactivate", h.deactivateDevice},
		{"POST", "/devices/{id}/reactivate", h.reactivateDevice},
		{"POST", "/devices/{id}/resync", h.resyncDevice},
		{"DELETE", "/devices/{id}", h.deleteDevice},
		{"POST", "/recovery-codes", h.generateRecoveryCodes},
		{"GET", "/recovery-codes", h.recoveryCodesLeft},
		{"POST", "/verify/totp", h.verifyTOTP},
		{"POST", "/verify/recovery-code", h.verifyRecoveryCode},
		{"POST", "/verify/key/begin", h.verifyKeyBegin},
		{"POST", "/verify/key/finish", h.verifyKeyFinish},
		{"POST", "/keys/begin", h.keyBegin},
		{"POST", "/keys/finish", h.keyFinish},
		{"GET", "/users", h.adminAccounts},
		{"GET", "/events", h.adminEvents},
		{"GET", "/users/{user}", h.adminAccount},
		{"GET", "/users/{user}/events", h.adminEvents},
		{"GET", "/users/{user}/devices", h.adminListDevices},
		{"POST", "/users/{user}/devices/{id}/deactivate", h.adminDeactivate},
		{"POST", "/users/{user}/devices/{id}/reactivate", h.adminReactivate},
		{"DELETE", "/users/{user}/devices/{id}", h.adminDelete},
		{"POST", "/users/{user}/unlock", h.adminUnlock},
	}
	allow := map[string][]string{}
	var paths []string
	for _, rt := range routes {
		fn := rt.fn
		h.mux.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) {
			if err := fn(w, r); err != nil {
				h.fail(w, r, err)
			}
		})
		if allow[rt.path] == nil {
			paths = append(paths, rt.path)
		}
		allow[rt.path] = append(allow[rt.path], rt.method)
		if rt.method == "GET" {
			allow[rt.path] = append(allow[rt.path], "HEAD")
		}
	}
	for _, p := range paths {
		methods := strings.Join(allow[p], ", ")
		h.mux.HandleFunc(p, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", methods)
			h.fail(w, r, fmt.Errorf("%w: %s %s (allowed: %s)", errMethod, r.Method, r.URL.Path, methods))
		})
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, fmt.Errorf("%w: %s", errNoRoute, r.URL.Path))
	})
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, fmt.Errorf("%w: %s %s", errCrossOrigin, r.Method, r.URL.Path))
	}))
	h.next = cop.Handler(h.mux)
	return h, nil
}

type handler struct {
	m    *Manager
	cfg  HandlerConfig
	mux  *http.ServeMux
	next http.Handler
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	// The events of the request name who made it and from where. A
	// failing CurrentUser leaves the actor to the route, which reports
	// the failure.
	var actor []byte
	if id, err := h.cfg.CurrentUser(r); err == nil {
		actor = id
	}
	h.next.ServeHTTP(w, r.WithContext(requestActor(r, actor)))
}

// fail answers with err's code, its status and the code's fixed message.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, status := httpStatus(err)
	type body struct {
		Code    string    `json:"code"`
		Message string    `json:"message"`
		Until   time.Time `json:"until,omitzero"`
	}
	b := body{Code: code, Message: codeInfo[code].msg}
	if b.Message == "" {
		b.Message = securityKeyRefused // a webauthn code added after this table
	}
	var le *LockedError
	if code == "locked" && errors.As(err, &le) {
		b.Until = le.Until.UTC()
		b.Message = "Too many wrong codes. Try again after " + b.Until.Format("2006-01-02 15:04:05") + " UTC."
		secs := int64((le.Until.Sub(h.m.now()) + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(max(secs, 1), 10))
	}
	if status == http.StatusInternalServerError && h.cfg.OnError != nil {
		h.cfg.OnError(r, err)
	}
	writeJSON(w, status, map[string]body{"error": b})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// readJSON reads r's body, at most limit bytes, into v. An empty body is
// an error unless optional, when v is left as it is. A body must be
// application/json and one JSON value without unknown members.
func (h *handler) readJSON(w http.ResponseWriter, r *http.Request, v any, optional bool, limit int64) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("%w: more than %d bytes", errTooLarge, mbe.Limit)
		}
		return fmt.Errorf("%w: reading body: %v", ErrInvalidRequest, err)
	}
	// The body may hold a seed, a password or a code; v gets copies.
	defer clear(b)
	if len(bytes.TrimSpace(b)) == 0 {
		if optional {
			return nil
		}
		return fmt.Errorf("%w: empty body", ErrInvalidRequest)
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return fmt.Errorf("%w: Content-Type %q", errMediaType, r.Header.Get("Content-Type"))
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: body: %v", ErrInvalidRequest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: body: data after the JSON value", ErrInvalidRequest)
	}
	return nil
}

// read is readJSON with the usual limit.
func (h *handler) read(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	return h.readJSON(w, r, v, optional, h.cfg.MaxBodyBytes)
}

// requireUser returns the signed-in user, or errUnauthenticated.
func (h *handler) requireUser(r *http.Request) ([]byte, error) {
	id, err := h.cfg.CurrentUser(r)
	if err != nil {
		return nil, &hookError{"CurrentUser", err}
	}
	if len(id) == 0 {
		return nil, errUnauthenticated
	}
	return id, nil
}

func (h *handler) totpBegin(w http.ResponseWriter, r *http.Request) error {
	userID, err := h.requireUser(r)
	if err != nil {
		return err
	}
	var req struct {
		Name string `json:"name"`
	}
	if err := h.read(w, r, &req, true); err != nil {
		return err
	}
	e, err := h.m.BeginApp(r.Context(), userID, req.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]enrollmentJSON{"enrollment": enrollJSON(e)})
	return nil
}

func (h *handler) tokenBegin(w http.ResponseWriter, r *http.Request) error {
	userID, err := h.requireUser(r)
	if err != nil {
		return err
	}
	var req struct {
		Name         string `json:"name"`
		Serial       string `json:"serial"`
		Secret       string `json:"secret"`
		Digits       int    `json:"digits"`
		Period       int    `json:"period"`
		SeedFile     []byte `json:"seedFile"` // standard base64, as encoding/json reads []byte
		PreSharedKey string `json:"preSharedKey"`
		Password     string `json:"password"`
	}
	// The seed file arrives in base64: 4 bytes for every 3.
	limit := h.cfg.MaxBodyBytes + (h.cfg.MaxSeedFileBytes+2)/3*4
	if err := h.readJSON(w, r, &req, false, limit); err != nil {
		return err
	}
	defer clear(req.SeedFile)
	if int64(len(req.SeedFile)) > h.cfg.MaxSeedFileBytes {
		return fmt.Errorf("%w: seed file over %d bytes", errTooLarge, h.cfg.MaxSeedFileBytes)
	}
	t := Token{
		Serial: req.Serial, Name: req.Name, SeedFile: req.SeedFile,
		Secret: req.Secret, Digits: req.Digits, Period: req.Period,
	}
	if req.PreSharedKey != "" {
		if t.PreSharedKey, err = hex.DecodeString(req.PreSharedKey); err != nil {
			return fmt.Errorf("%w: preSharedKey is not hex", ErrInvalidRequest)
		}
		defer clear(t.PreSharedKey)
	}
	if req.Password != "" {
		t.Password = []byte(req.Password)
		defer clear(t.Password)
	}
	e, err := h.m.BeginToken(r.Context(), userID, t)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]enrollmentJSON{"enrollment": enrollJSON(e)})
	return nil
}

func (h *handler) totpFinish(w http.ResponseWriter, r *http.Request) error {
	userID, err := h.requireUser(r)
	if err != nil {
		return err
	}
	var req struct {
		ID    string `json:"id"`
		Code1 string `json:"code1"`
		Code2 string `json:"code2"`
	}
	if err := h.read(w, r, &req, false); err != nil {
		return err
	}
	d, err := h.m.FinishEnrollment(r.Context(), userID, req.ID, req.Code1, req.Code2)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]DeviceJSON{"device": deviceJSON(d)})
	return nil
}

func (h *handler) listDevices(w http.ResponseWriter, r *http.Request) error {
	userID, err := h.requireUser(r)
	if err != nil {
		return err
	}
	return h.writeDevices(w, r, userID)
}

// writeDevices answers with the account's devices and factors.
func (h *handler) writeDevices(w http.ResponseWriter, r *http.Request, userID []byte) error {
	ds, err := h.m.Devices(r.Context(), userID)
	if err != nil {
		return err
	}
	f, err := h.m.Factors(r.Context(), userID)
	if err != nil {
		return err
	}
	out := make([]DeviceJSON, 0, len(ds))
	for _, d := range ds {
		out = append(out, deviceJSON(d))
	}
	writeJSON(w, http.StatusOK, map[string]any{"devices": out, "factors": factorsJSON(f)})
	return nil
}

// writeDevice answers with the device as it now is.
func (h *handler) writeDevice(w http.ResponseWriter, r *http.Request, userID []byte, deviceID string) error {
	d, err := h.m.Device(r.Context(), userID, deviceID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]DeviceJSON{"device": deviceJSON(d)})
	return nil
}

func (h *handler) renameDevice(w http.ResponseWriter, r *http.Request) error {
	userID, err := h.requireUser(r)
	if err != nil {
		return err
	}
	var req struct {
		Name *string `json:"name"`
	}
	if err := h.read(w, r, &req, false); err != nil {
		return err
	}
	if req.Name == nil {
		return fmt.Errorf("%w: no name", ErrInvalidRequest)
	}
	id := r.PathValue("id")
	if err := h.m.Rename(r.Context(), userID, id, *req.Name); err != nil {
		return err
	}
	return h.writeDevice(w, r, userID, id)
}

func (h *handler) deactivateDevice(w http.ResponseWriter, r *http.Request) error {
	return h.ownChange(w, r, h.m.Deactivate)
}

func (h *handler) reactivateDevice(w http.ResponseWriter, r *http.Request) error {
	return h.ownChange(w, r, h.m.Reactivate)
}

type changeFunc func(ctx context.Context, userID []byte, deviceID string) error

func (h *handler) ownChange(w http.ResponseWriter, r *http.Request, change changeFunc) error {
	userID, err := h.requireUser(r)
	if err != nil {
		return err
	}
	return h.change(w, r, userID, change)
}

// change runs a body-less change on one of userID's devices and answers
// with the device.
func (h *handler) change(w http.ResponseWriter, r *http.Request, userID []byte, change changeFunc) error {
	var req struct{}
	if err := h.read(w, r, &req, true); err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := change(r.Context(), userID, id); err != nil {
		return err
	}
	return h.writeDevice(w, r, userID, id)
}

func (h *handler) resyncDevice(w http.ResponseWriter, r *http.Request) error {
	userID, err := h.requireUser(r)
	if err != nil {
		return err
	}
	var req struct {
		Code1 string `json:"code1"`
		Code2 string `json:"code2"`
	}
	if err := h.read(w, r, &req, false); err != nil {
		return err
	}
	d, err := h.m.Resync(r.Context(), userID, r.PathValue("id"), req.Code1, req.Code2)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]DeviceJSON{"device": deviceJSON(d)})
	return nil
}

func (h *handler) deleteDevice(w http.ResponseWriter, r *http.Request) error {
	userID, err := h.requireUser(r)
	if err != nil {
		return err
	}
	if err := h.m.Delete(r.Context(), userID, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) generateRecoveryCodes(w http.ResponseWriter, r *http.Request) error {
	userID, err := h.requireUser(r)
	if err != nil {
		return err
	}
	var req struct{}
	if err := h.read(w, r, &req, true); err != nil {
		return err
	}
	set, err := h.m.GenerateRecoveryCodes(r.Context(), userID)
	if err != nil {
		return err
	}
	codes := make([]string, len(set.Codes))
	for i, c := range set.Codes {
		codes[i] = c.Reveal()
	}
	writeJSON(w, http.StatusCreated, struct {
		Codes   []string  `json:"codes"`
		Created time.Time `json:"created"`
	}{codes, utc(set.Created)})
	return nil
}

func (h *handler) recoveryCodesLeft(w http.ResponseWriter, r *http.Request) error {
	userID, err := h.requireUser(r)
	if err != nil {
		return err
	}
	n, err := h.m.RecoveryCodesLeft(r.Context(), userID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]int{"left": n})
	return nil
}

// verified tells the application and answers with the verification.
func (h *handler) verified(w http.ResponseWriter, r *http.Request, v *Verification) error {
	if err := h.cfg.OnVerified(w, r, v); err != nil {
		return &hookError{"OnVerified", err}
	}
	writeJSON(w, http.StatusOK, map[string]VerificationJSON{"verification": verificationJSON(v)})
	return nil
}

func (h *handler) verifyCode(w http.ResponseWriter, r *http.Request, verify func(ctx context.Context, userID []byte, code string) (*Verification, error)) error {
	userID, err := h.requireUser(r)
	if err != nil {
		return err
	}
	var req struct {
		Code string `json:"code"`
	}
	if err := h.read(w, r, &req, false); err != nil {
		return err
	}
	v, err := verify(r.Context(), userID, req.Code)
	if err != nil {
		return err
	}
	return h.verified(w, r, v)
}

func (h *handler) verifyTOTP(w http.ResponseWriter, r *http.Request) error {
	return h.verifyCode(w, r, h.m.VerifyTOTP)
}

func (h *handler) verifyRecoveryCode(w http.ResponseWriter, r *http.Request) error {
	return h.verifyCode(w, r, h.m.VerifyRecoveryCode)
}

// cookiePath is the Path of the handler's cookies for r:
// HandlerConfig.CookiePath, or where the handler is mounted.
func (h *handler) cookiePath(r *http.Request) string {
	if h.cfg.CookiePath != "" {
		return h.cfg.CookiePath
	}
	return mountPath(r)
}

// mountPath is the path the handler serving r is mounted under, with a
// trailing slash: r.RequestURI's path less r.URL's, which
// http.StripPrefix shortened; "/" if that cannot be told.
func mountPath(r *http.Request) string {
	u, err := url.ParseRequestURI(r.RequestURI)
	if err != nil {
		return "/"
	}
	full, route := u.EscapedPath(), r.URL.EscapedPath()
	if route == "" || !strings.HasSuffix(full, route) {
		return "/"
	}
	prefix := strings.TrimSuffix(full[:len(full)-len(route)], "/")
	// A cookie's Path holds no ';' and no control characters.
	if strings.ContainsFunc(prefix, func(c rune) bool { return c == ';' || c < 0x20 || c == 0x7f }) {
		return "/"
	}
	return prefix + "/"
}

// bindingCookie returns the browser's binding cookie, or nil.
func (h *handler) bindingCookie(r *http.Request) []byte {
	c, err := r.Cookie(h.cfg.BindingCookieName)
	if err != nil {
		return nil
	}
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil || len(b) != bindingLen {
		return nil
	}
	return b
}

// beginContext is r's context bound to the browser and the signed-in
// user (webauthn.WithSessionBinding), for a begin: it sets a new binding
// cookie on w if r has none.
func (h *handler) beginContext(w http.ResponseWriter, r *http.Request, userID []byte) (context.Context, error) {
	b := h.bindingCookie(r)
	if b == nil {
		b = make([]byte, bindingLen)
		if err := h.m.random(b); err != nil {
			return nil, err
		}
		http.SetCookie(w, &http.Cookie{
			Name:     h.cfg.BindingCookieName,
			Value:    base64.RawURLEncoding.EncodeToString(b),
			Path:     h.cookiePath(r),
			HttpOnly: true,
			Secure:   true,
			SameSite: http.SameSiteStrictMode,
		})
	}
	return webauthn.WithSessionBinding(r.Context(), append(b, userID...)), nil
}

// finishContext is r's context bound as beginContext bound the begin's,
// if it is the same browser and the same user; with no binding cookie,
// bound to nothing, which no begin of the handler's is.
func (h *handler) finishContext(r *http.Request, userID []byte) context.Context {
	b := h.bindingCookie(r)
	if b == nil {
		return webauthn.WithSessionBinding(r.Context(), nil)
	}
	return webauthn.WithSessionBinding(r.Context(), append(b, userID...))
}

// writeBegin answers a begin with its challenge ID and options.
func writeBegin(w http.ResponseWriter, b *webauthn.Begin) {
	writeJSON(w, http.StatusOK, struct {
		ChallengeID string          `json:"challengeId"`
		PublicKey   json.RawMessage `json:"publicKey"`
	}{b.ChallengeID, b.Options})
}

func (h *handler) verifyKeyBegin(w http.ResponseWriter, r *http.Request) error {
	userID, err := h.requireUser(r)
	if err != nil {
		return err
	}
	var req struct{}
	if err := h.read(w, r, &req, true); err != nil {
		return err
	}
	ctx, err := h.beginContext(w, r, userID)
	if err != nil {
		return err
	}
	b, err := h.m.BeginSecurityKey(ctx, userID)
	if err != nil {
		return err
	}
	maxAge := b.Expires.Sub(h.m.now())
	if maxAge <= 0 {
		maxAge = webauthn.DefaultChallengeTimeout
	}
	http.SetCookie(w, &http.Cookie{
		Name:     h.cfg.CookieName,
		Value:    b.ChallengeID,
		Path:     h.cookiePath(r),
		MaxAge:   int((maxAge + time.Second - 1) / time.Second),
		HttpOnly: true,
		Secure:   true,
		SameSite: http.SameSiteStrictMode,
	})
	writeBegin(w, b)
	return nil
}

// takeCeremony returns the challenge ID: fromBody, the finish body's
// challengeId, if not empty, or else the ceremony cookie's. It clears the
// cookie if it named that challenge, which the finish uses up whatever
// happens; a cookie naming another tab's ceremony stays.
func (h *handler) takeCeremony(w http.ResponseWriter, r *http.Request, fromBody string) string {
	var cookie string
	if c, err := r.Cookie(h.cfg.CookieName); err == nil {
		cookie = c.Value
	}
	id := fromBody
	if id == "" {
		id = cookie
	}
	if cookie != "" && cookie == id {
		http.SetCookie(w, &http.Cookie{
			Name: h.cfg.CookieName, Value: "", Path: h.cookiePath(r), MaxAge: -1,
			HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
		})
	}
	return id
}

func (h *handler) verifyKeyFinish(w http.ResponseWriter, r *http.Request) error {
	userID, err := h.requireUser(r)
	if err != nil {
		return err
	}
	var req struct {
		ChallengeID string          `json:"challengeId"`
		Credential  json.RawMessage `json:"credential"`
	}
	if err := h.read(w, r, &req, false); err != nil {
		return err
	}
	id := h.takeCeremony(w, r, req.ChallengeID)
	if len(req.Credential) == 0 || string(req.Credential) == "null" {
		return fmt.Errorf("%w: no credential", ErrInvalidRequest)
	}
	v, err := h.m.FinishSecurityKey(h.finishContext(r, userID), userID, id, req.Credential)
	if err != nil {
		return err
	}
	return h.verified(w, r, v)
}

func (h *handler) keyBegin(w http.ResponseWriter, r *http.Request) error {
	userID, err := h.requireUser(r)
	if err != nil {
		return err
	}
	var req struct{}
	if err := h.read(w, r, &req, true); err != nil {
		return err
	}
	ctx, err := h.beginContext(w, r, userID)
	if err != nil {
		return err
	}
	b, err := h.m.BeginKeyRegistration(ctx, userID)
	if err != nil {
		return err
	}
	writeBegin(w, b)
	return nil
}

func (h *handler) keyFinish(w http.ResponseWriter, r *http.Request) error {
	userID, err := h.requireUser(r)
	if err != nil {
		return err
	}
	var req struct {
		ChallengeID string          `json:"challengeId"`
		Name        string          `json:"name"`
		Credential  json.RawMessage `json:"credential"`
	}
	if err := h.read(w, r, &req, false); err != nil {
		return err
	}
	if len(req.Credential) == 0 || string(req.Credential) == "null" {
		return fmt.Errorf("%w: no credential", ErrInvalidRequest)
	}
	if req.Name == "" {
		req.Name = DefaultKeyName
	}
	// The binding holds the user: a challenge begun for another account,
	// even in this browser, is unknown here.
	d, err := h.m.FinishKeyRegistration(h.finishContext(r, userID), req.ChallengeID, req.Credential, req.Name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, map[string]DeviceJSON{"device": deviceJSON(d)})
	return nil
}

// adminTarget checks that the signed-in user may manage the account
// {user} and returns its ID.
func (h *handler) adminTarget(r *http.Request) ([]byte, error) {
	actor, err := h.requireUser(r)
	if err != nil {
		return nil, err
	}
	if h.cfg.Authorize == nil {
		return nil, fmt.Errorf("%w: no HandlerConfig.Authorize", errForbidden)
	}
	s := r.PathValue("user")
	target, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(target) == 0 {
		return nil, fmt.Errorf("%w: user ID %q is not base64url", ErrInvalidRequest, s)
	}
	if err := h.cfg.Authorize(r, actor, target); err != nil {
		// Not a hookError: a refusal is the hook's answer, not a failure.
		return nil, fmt.Errorf("%w: %v", errForbidden, err)
	}
	return target, nil
}

func (h *handler) adminListDevices(w http.ResponseWriter, r *http.Request) error {
	target, err := h.adminTarget(r)
	if err != nil {
		return err
	}
	return h.writeDevices(w, r, target)
}

func (h *handler) adminDeactivate(w http.ResponseWriter, r *http.Request) error {
	return h.adminChange(w, r, h.m.Deactivate)
}

func (h *handler) adminReactivate(w http.ResponseWriter, r *http.Request) error {
	return h.adminChange(w, r, h.m.Reactivate)
}

func (h *handler) adminChange(w http.ResponseWriter, r *http.Request, change changeFunc) error {
	target, err := h.adminTarget(r)
	if err != nil {
		return err
	}
	return h.change(w, r, target, change)
}

func (h *handler) adminDelete(w http.ResponseWriter, r *http.Request) error {
	target, err := h.adminTarget(r)
	if err != nil {
		return err
	}
	if err := h.m.Delete(r.Context(), target, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (h *handler) adminUnlock(w http.ResponseWriter, r *http.Request) error {
	target, err := h.adminTarget(r)
	if err != nil {
		return err
	}
	var req struct {
		Factor Factor `json:"factor"`
	}
	if err := h.read(w, r, &req, false); err != nil {
		return err
	}
	switch req.Factor {
	case FactorTOTP, FactorRecoveryCode, FactorSecurityKey:
	default:
		return fmt.Errorf("%w: factor %q", ErrInvalidRequest, req.Factor)
	}
	if err := h.m.Unlock(r.Context(), target, req.Factor); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
