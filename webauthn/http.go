package webauthn

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
)

// DefaultMaxBodyBytes bounds request bodies when HandlerConfig.MaxBodyBytes
// is zero. A registration response with a long attestation chain is a few
// kilobytes.
const DefaultMaxBodyBytes = 64 << 10

// DefaultCookieName is the ceremony cookie's name when
// HandlerConfig.CookieName is empty.
const DefaultCookieName = "webauthn_ceremony"

// DefaultBindingCookieName is the binding cookie's name when
// HandlerConfig.BindingCookieName is empty.
const DefaultBindingCookieName = "webauthn_binding"

// bindingLen is the number of random bytes of a binding cookie.
const bindingLen = 32

// HandlerConfig configures the HTTP API of [RelyingParty.Handler].
// CurrentUser and OnLogin are required; the zero value of every other
// field means the default documented on it.
type HandlerConfig struct {
	// CurrentUser returns the ID of the user signed in to the
	// application on r, or nil if nobody is. It is how the handler learns
	// who may add and manage keys; an error fails the request with 500.
	// Required.
	CurrentUser func(r *http.Request) ([]byte, error)
	// OnLogin is called after a sign-in (and after a sign-up) succeeds,
	// before the response is written, so that the application can start
	// its own session, typically by setting a cookie on w. An error fails
	// the request with 500. Required.
	OnLogin func(w http.ResponseWriter, r *http.Request, u *User, c *Credential) error
	// AllowSignup lets POST /register/begin create an account when nobody
	// is signed in. False means only signed-in users add keys.
	AllowSignup bool
	// MaxBodyBytes bounds request bodies; larger ones get 413. Zero means
	// DefaultMaxBodyBytes (64 KiB).
	MaxBodyBytes int64
	// CookieName names the cookie that carries the ceremony's challenge ID
	// from begin to finish for a client that does not send it back in the
	// finish body. Empty means DefaultCookieName.
	CookieName string
	// BindingCookieName names the cookie that binds ceremonies to the
	// browser (see Handler). Empty means DefaultBindingCookieName.
	BindingCookieName string
	// CookiePath is the Path of both cookies: where the handler is
	// mounted. Empty means the handler works it out from each request,
	// as the request's path (r.RequestURI) less the route's (r.URL.Path,
	// which http.StripPrefix shortened): mounted with
	// http.StripPrefix("/webauthn", h), it is "/webauthn/"; "/" when the
	// two do not end alike (a handler that rewrites r.URL.Path in other
	// ways should set it).
	CookiePath string
	// OnError, if not nil, is told about every error that becomes a 500
	// response (the response itself says only "internal error").
	OnError func(r *http.Request, err error)
	// OnClientError, if not nil, is told about every other error
	// response (4xx), with the error itself: which check of a response
	// failed and why, which the response's fixed message does not say.
	OnClientError func(r *http.Request, err error)
}

// KeyJSON is a key as the HTTP API shows it.
type KeyJSON struct {
	// ID is the credential ID, base64url without padding; the {id} of
	// the /keys/{id} routes.
	ID string `json:"id"`
	// Name is what the person called the key.
	Name string `json:"name"`
	// AAGUID is the authenticator model, as a UUID.
	AAGUID string `json:"aaguid"`
	// Algorithm is the COSE algorithm of the key.
	Algorithm int64 `json:"alg"`
	// AttestationFormat and AttestationType are as in [Credential].
	AttestationFormat string `json:"attestationFormat"`
	AttestationType   string `json:"attestationType"`
	// Transports are the transport hints of the key.
	Transports []string `json:"transports"`
	// UserVerified, BackupEligible, BackupState, SignCount and
	// CloneWarning are as in [Credential].
	UserVerified   bool   `json:"userVerified"`
	BackupEligible bool   `json:"backupEligible"`
	BackupState    bool   `json:"backupState"`
	SignCount      uint32 `json:"signCount"`
	CloneWarning   bool   `json:"cloneWarning"`
	// Active is false once the key is deactivated, at Deactivated.
	Active      bool      `json:"active"`
	Deactivated time.Time `json:"deactivated,omitzero"`
	// Created is when the key was registered, LastUsed when it last
	// signed in (absent if never).
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"lastUsed,omitzero"`
}

// UserJSON is a user as the HTTP API shows it.
type UserJSON struct {
	// ID is the user handle, base64url without padding.
	ID string `json:"id"`
	// Name and DisplayName are as in [User].
	Name        string `json:"name"`
	DisplayName string `json:"displayName"`
}

func keyJSON(c *Credential) KeyJSON {
	k := KeyJSON{
		ID:                b64(c.ID),
		Name:              c.Name,
		Algorithm:         c.Algorithm,
		AttestationFormat: c.AttestationFormat,
		AttestationType:   c.AttestationType,
		Transports:        c.Transports,
		UserVerified:      c.UserVerified,
		BackupEligible:    c.BackupEligible,
		BackupState:       c.BackupState,
		SignCount:         c.SignCount,
		CloneWarning:      c.CloneWarning,
		Active:            c.Active(),
		Deactivated:       c.Deactivated,
		Created:           c.Created,
		LastUsed:          c.LastUsed,
	}
	if k.Transports == nil {
		k.Transports = []string{}
	}
	if a, err := uuid.FromBytes(c.AAGUID); err == nil {
		k.AAGUID = a.String()
	}
	return k
}

func userJSON(u *User) UserJSON {
	return UserJSON{ID: b64(u.ID), Name: u.Name, DisplayName: u.DisplayName}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// Errors only the HTTP layer reports.
var (
	errUnauthenticated = errors.New("webauthn: nobody is signed in")
	errNoRoute         = errors.New("webauthn: no such endpoint")
	errMethod          = errors.New("webauthn: method not allowed")
	errTooLarge        = errors.New("webauthn: request body too large")
	errMediaType       = errors.New("webauthn: request body is not application/json in UTF-8")
	errCrossOrigin     = errors.New("webauthn: cross-origin request refused")
	errSignedIn        = errors.New("webauthn: someone is signed in")
)

var httpErrors = []struct {
	err    error
	code   string
	status int
}{
	{errUnauthenticated, "unauthenticated", http.StatusUnauthorized},
	{errNoRoute, "not_found", http.StatusNotFound},
	{errMethod, "method_not_allowed", http.StatusMethodNotAllowed},
	{errTooLarge, "request_too_large", http.StatusRequestEntityTooLarge},
	{errMediaType, "unsupported_media_type", http.StatusUnsupportedMediaType},
	{errCrossOrigin, "cross_origin", http.StatusForbidden},
	{errSignedIn, "signed_in", http.StatusConflict},
}

// codeStatus is the HTTP status of each code of ErrorCode that is not
// 400.
var codeStatus = map[string]int{
	"backup_eligible":          http.StatusForbidden,
	"attestation_untrusted":    http.StatusForbidden,
	"credential_wrong_user":    http.StatusForbidden,
	"user_handle_mismatch":     http.StatusForbidden,
	"credential_deactivated":   http.StatusForbidden,
	"credential_clone_warning": http.StatusForbidden,
	"sign_count_regression":    http.StatusForbidden,
	"bad_signature":            http.StatusForbidden,
	"credential_unknown":       http.StatusNotFound,
	"user_unknown":             http.StatusNotFound,
	"no_credentials":           http.StatusNotFound,
	"credential_exists":        http.StatusConflict,
	"credential_limit":         http.StatusConflict,
	"user_exists":              http.StatusConflict,
	"too_many_ceremonies":      http.StatusTooManyRequests,
	"internal":                 http.StatusInternalServerError,
}

// rejected is the message of the codes of responses that do not verify:
// which check failed is for the server's logs, not for the client.
const rejected = "The security key's response was not accepted."

// codeMessage is the fixed message the HTTP body carries for each code,
// fit to show on a page. It never includes the error's text, which may
// name the configured origins or carry go-webauthn's developer details.
var codeMessage = map[string]string{
	"invalid_request":           "The request is not valid.",
	"malformed_response":        "The security key's response could not be read.",
	"wrong_type":                rejected,
	"challenge_mismatch":        rejected,
	"challenge_unknown":         "This sign-in or registration is over or was never started. Start again.",
	"challenge_expired":         "This sign-in or registration took too long. Start again.",
	"origin_mismatch":           rejected,
	"rp_id_mismatch":            rejected,
	"user_presence_missing":     "The security key was not touched.",
	"user_verification_missing": "The security key did not verify its PIN or fingerprint.",
	"backup_flags_invalid":      rejected,
	"algorithm_not_allowed":     "This security key's algorithm is not accepted.",
	"attestation_invalid":       "The security key's attestation is not valid.",
	"verification_failed":       rejected,
	"unauthenticated":           "Sign in first.",
	"backup_eligible":           "Keys that can be copied or synced are not accepted; use a hardware security key.",
	"attestation_untrusted":     "This model of security key is not accepted.",
	"credential_wrong_user":     "This security key belongs to another account.",
	"user_handle_mismatch":      "This security key belongs to another account.",
	"credential_deactivated":    "This security key has been deactivated.",
	"credential_clone_warning":  "This security key may have been copied. An administrator must check it before it can sign in again.",
	"sign_count_regression":     "This security key may have been copied; it has been flagged for an administrator.",
	"bad_signature":             "The security key's signature is not valid.",
	"cross_origin":              "Requests from other sites are not allowed.",
	"signed_in":                 "You are signed in: sign out to create another account, or add the key to this one.",
	"credential_unknown":        "This security key is not registered.",
	"user_unknown":              "No account has this name.",
	"no_credentials":            "This account has no security key to sign in with.",
	"not_found":                 "No such endpoint.",
	"method_not_allowed":        "Method not allowed.",
	"credential_exists":         "This security key is already registered.",
	"credential_limit":          "The account holds the most security keys allowed. Remove one first.",
	"user_exists":               "This name is taken.",
	"request_too_large":         "The request is too large.",
	"unsupported_media_type":    "The request must be JSON (Content-Type: application/json).",
	"too_many_ceremonies":       "Too many sign-ins or registrations are under way. Try again in a few minutes.",
	"internal":                  "internal error",
}

// httpStatus returns the code and status of err.
func httpStatus(err error) (string, int) {
	for _, e := range httpErrors {
		if errors.Is(err, e.err) {
			return e.code, e.status
		}
	}
	code := ErrorCode(err)
	if s, ok := codeStatus[code]; ok {
		return code, s
	}
	return code, http.StatusBadRequest
}

// Handler returns the HTTP API for the relying party: JSON in and out,
// for a page that calls navigator.credentials.create() and get() (or for
// [github.com/fidokit/fidokit/webauthn/webauthntest]). Mount it under a
// prefix with http.StripPrefix; the cookies' Path follows (see
// HandlerConfig.CookiePath). Routes:
//
//	POST   /register/begin         {"name","displayName"}: the new account's, for a sign-up when nobody is signed in;
//	                               or {} (or no body) to add a key to the signed-in user's account
//	                               → 200 {"challengeId", "publicKey": PublicKeyCredentialCreationOptionsJSON}
//	POST   /register/finish        {"challengeId", "keyName": what the person calls the key, "credential": RegistrationResponseJSON}
//	                               → 201 {"user": UserJSON, "key": KeyJSON}
//	POST   /login/begin            {"name": the account's name}, or {} (or no body) for a discoverable sign-in
//	                               → 200 {"challengeId", "publicKey": PublicKeyCredentialRequestOptionsJSON}
//	POST   /login/finish           {"challengeId", "credential": AuthenticationResponseJSON}
//	                               → 200 {"user": UserJSON, "key": KeyJSON}
//	GET    /keys                   → 200 {"keys": [KeyJSON, ...]}
//	POST   /keys/{id}/rename       {"keyName"} → 200 {"key": KeyJSON}
//	POST   /keys/{id}/deactivate   → 200 {"key": KeyJSON}
//	POST   /keys/{id}/reactivate   → 200 {"key": KeyJSON}
//	DELETE /keys/{id}              → 204
//
// In request bodies "name" and "displayName" are always the account's
// and "keyName" the key's. (Older clients sent the key's name as "name"
// to /register/finish and /keys/{id}/rename; it is still accepted there,
// but not together with "keyName".) A /register/begin with a name while
// someone is signed in is refused with 409 signed_in: it would add the
// key to the signed-in account, not create the named one.
//
// # Ceremonies
//
// A begin answers the ceremony's challengeId, and its finish takes it
// back in the body, so that several ceremonies run at once in one
// browser (two tabs, or a conditional-UI sign-in waiting beside a
// registration). Every ceremony is bound to the browser that began it
// ([WithSessionBinding]): a begin sets the binding cookie if the browser
// has none (HttpOnly, Secure, SameSite=Strict, 32 random bytes, for the
// browser session), the challenge keeps its hash, and a finish without
// the same cookie fails with challenge_unknown, so a challengeId is of no
// use in another browser. A begin also sets the ceremony cookie
// (HttpOnly, Secure, SameSite=Strict, Max-Age the challenge timeout) to
// the challengeId, for clients that do not send challengeId: a finish
// without one uses the cookie's, and a finish clears the cookie when it
// used its challenge. Such clients run one ceremony at a time per
// browser: a second begin replaces the first's cookie.
//
// A registration finished in another session than it began in (someone
// signed in or out in between) fails with challenge_unknown. /keys
// routes and adding a key need a signed-in user
// (HandlerConfig.CurrentUser), or 401.
//
// The handler is safe for concurrent use, as are the hooks it calls if
// the application's are.
//
// Every POST must carry Content-Type application/json (with no charset
// or charset=utf-8), with a body or without one, or it is refused with
// 415 before the route does anything: an HTML form cannot send it, and a
// script on another origin cannot send it without a CORS preflight,
// which the handler does not answer. A body-less POST, such as
// /keys/{id}/deactivate, sends the header all the same. Bodies must be
// valid UTF-8, at most HandlerConfig.MaxBodyBytes, one JSON value with no
// unknown and no duplicate members (compared as encoding/json matches
// them, ignoring case).
//
// State-changing requests (POST and DELETE) from another origin are
// refused with 403 cross_origin by [http.CrossOriginProtection]. A
// request passes whose Sec-Fetch-Site header says same-origin or none,
// or whose Origin header is one of [Config.Origins] (the pages allowed
// to run the ceremonies, which may be on another host than the handler);
// any other with Sec-Fetch-Site, or with an Origin other than its Host,
// is refused. Requests with neither header (not from a browser) pass.
//
// Every error is a JSON body {"error": {"code": "...", "message": "..."}}
// with the status the package documentation lists for the code. The
// message is a fixed sentence per code, fit to show on the page; it never
// carries the error's text, which may name the configured origins or hold
// go-webauthn's developer details. HandlerConfig.OnClientError and
// OnError are told the errors themselves, for logs.
func (rp *RelyingParty) Handler(cfg HandlerConfig) (http.Handler, error) {
	if cfg.CurrentUser == nil {
		return nil, errors.New("webauthn: HandlerConfig.CurrentUser is nil")
	}
	if cfg.OnLogin == nil {
		return nil, errors.New("webauthn: HandlerConfig.OnLogin is nil")
	}
	if cfg.MaxBodyBytes < 0 {
		return nil, fmt.Errorf("webauthn: HandlerConfig.MaxBodyBytes is negative (%d)", cfg.MaxBodyBytes)
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.CookieName == "" {
		cfg.CookieName = DefaultCookieName
	}
	if cfg.BindingCookieName == "" {
		cfg.BindingCookieName = DefaultBindingCookieName
	}
	if cfg.BindingCookieName == cfg.CookieName {
		return nil, fmt.Errorf("webauthn: HandlerConfig.BindingCookieName and CookieName are both %q", cfg.CookieName)
	}
	h := &handler{rp: rp, cfg: cfg, mux: http.NewServeMux()}
	cop := http.NewCrossOriginProtection()
	for _, o := range rp.origins {
		if err := cop.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("webauthn: trusting origin %q: %v", o, err)
		}
	}
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, fmt.Errorf("%w: %s %s", errCrossOrigin, r.Method, r.URL.Path))
	}))
	h.next = cop.Handler(h.mux)
	routes := []struct {
		method, path string
		fn           func(w http.ResponseWriter, r *http.Request) error
	}{
		{"POST", "/register/begin", h.registerBegin},
		{"POST", "/register/finish", h.registerFinish},
		{"POST", "/login/begin", h.loginBegin},
		{"POST", "/login/finish", h.loginFinish},
		{"GET", "/keys", h.listKeys},
		{"POST", "/keys/{id}/rename", h.renameKey},
		{"POST", "/keys/{id}/deactivate", h.deactivateKey},
		{"POST", "/keys/{id}/reactivate", h.reactivateKey},
		{"DELETE", "/keys/{id}", h.deleteKey},
	}
	for _, rt := range routes {
		fn := rt.fn
		post := rt.method == "POST"
		h.mux.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) {
			if post {
				if err := checkMediaType(r); err != nil {
					h.fail(w, r, err)
					return
				}
			}
			if err := fn(w, r); err != nil {
				h.fail(w, r, err)
			}
		})
		allow := rt.method
		if allow == "GET" {
			allow = "GET, HEAD"
		}
		h.mux.HandleFunc(rt.path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			h.fail(w, r, fmt.Errorf("%w: %s %s (allowed: %s)", errMethod, r.Method, r.URL.Path, allow))
		})
	}
	h.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h.fail(w, r, fmt.Errorf("%w: %s", errNoRoute, r.URL.Path))
	})
	return h, nil
}

type handler struct {
	rp   *RelyingParty
	cfg  HandlerConfig
	mux  *http.ServeMux
	next http.Handler // mux behind the cross-origin protection
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	h.next.ServeHTTP(w, r)
}

// fail answers with err's code, its status and the code's fixed message.
func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, status := httpStatus(err)
	switch {
	case status == http.StatusInternalServerError && h.cfg.OnError != nil:
		h.cfg.OnError(r, err)
	case status != http.StatusInternalServerError && h.cfg.OnClientError != nil:
		h.cfg.OnClientError(r, err)
	}
	msg, ok := codeMessage[code]
	if !ok {
		msg = "The request failed."
	}
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	writeJSON(w, status, struct {
		Error body `json:"error"`
	}{body{Code: code, Message: msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	writeBody(w, status, append(b, '\n'))
}

// writeBody writes b, JSON ending in a newline, as the answer.
func writeBody(w http.ResponseWriter, status int, b []byte) {
	// Both headers' values in one allocation, under keys already in
	// canonical form.
	v := &[2]string{"application/json", "nosniff"}
	hd := w.Header()
	hd["Content-Type"] = v[0:1:1]
	hd["X-Content-Type-Options"] = v[1:2:2]
	w.WriteHeader(status)
	w.Write(b)
}

// checkMediaType checks that a request says its body is JSON in UTF-8:
// Content-Type application/json, with no charset or charset=utf-8.
func checkMediaType(r *http.Request) error {
	ct := r.Header.Get("Content-Type")
	if ct == "application/json" {
		return nil // what clients send, decided without parsing
	}
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "application/json" {
		return fmt.Errorf("%w: Content-Type %q", errMediaType, ct)
	}
	if cs, ok := params["charset"]; ok && !strings.EqualFold(cs, "utf-8") {
		return fmt.Errorf("%w: charset %q", errMediaType, cs)
	}
	return nil
}

// readJSON reads r's body into v. An empty body is an error unless
// optional, when v is left as it is. A body must be application/json
// (checkMediaType, which every POST route checks before it runs), at
// most MaxBodyBytes, valid UTF-8, and one JSON value without unknown or
// duplicate members.
func (h *handler) readJSON(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	b, err := h.readBody(w, r, optional)
	if err != nil || b == nil {
		return err
	}
	return decodeJSON(b, v)
}

// readBody reads r's body and checks it as readJSON does but for the
// decoding: nil for an empty one (if optional).
func (h *handler) readBody(w http.ResponseWriter, r *http.Request, optional bool) ([]byte, error) {
	hint := r.ContentLength
	if hint > h.cfg.MaxBodyBytes {
		hint = 0
	}
	b, err := readAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes), hint)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fmt.Errorf("%w: more than %d bytes", errTooLarge, mbe.Limit)
		}
		return nil, fmt.Errorf("%w: reading body: %v", ErrInvalidRequest, err)
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if optional {
			return nil, nil
		}
		return nil, fmt.Errorf("%w: empty body", ErrInvalidRequest)
	}
	if !utf8.Valid(b) {
		// encoding/json would replace the bad bytes silently.
		return nil, fmt.Errorf("%w: body is not valid UTF-8", ErrInvalidRequest)
	}
	if err := checkDuplicateMembers(b); err != nil {
		return nil, fmt.Errorf("%w: body: %v", ErrInvalidRequest, err)
	}
	return b, nil
}

// decodeJSON decodes b, a body readBody let through, into v: one JSON
// value without unknown members.
func decodeJSON(b []byte, v any) error {
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

// checkDuplicateMembers walks the JSON in b and fails on an object with
// two members of the same name, whatever their depth (the credential
// inside a body included). encoding/json would keep the last of them and
// match names without regard to case, so names are compared as it
// compares them, case-folded; a client meaning one value must not have
// the server read another. Syntax errors are left to the decoder proper.
//
// Bodies whose member names are all printable ASCII without escapes (all
// that browsers and the WebAuthn JSON send) are checked by a byte scan
// (memberScan); anything else by slowDuplicateMembers, which reads b
// token by token with encoding/json, costing about half a P-256 verify
// on a sign-in's body.
func checkDuplicateMembers(b []byte) error {
	s := memberScan{jsonScan: jsonScan{b: b}}
	if decided, err := s.value(); decided && s.end() {
		return err
	}
	return slowDuplicateMembers(b)
}

// memberScanDepth is how deep memberScan follows nested values before it
// leaves the body to slowDuplicateMembers.
const memberScanDepth = 64

// memberScan checks member names for duplicates in one pass over the
// bytes. Its methods report decided false when they cannot tell as
// slowDuplicateMembers would: a name with an escape or a byte that is not
// printable ASCII (which may fold onto an ASCII name, as the Kelvin sign
// onto k), nesting deeper than memberScanDepth, or a syntax error (which
// the decoder reports). Values are skipped without being checked, so
// invalid JSON may pass; the decoder proper rejects it.
type memberScan struct {
	jsonScan // white space and single bytes, as the fast login parser reads them
	depth    int
}

// value reads one value, checking the objects in it.
func (s *memberScan) value() (decided bool, err error) {
	s.ws()
	if s.i == len(s.b) {
		return false, nil
	}
	switch s.b[s.i] {
	case '{':
		return s.object()
	case '[':
		return s.array()
	case '"':
		_, _, ok := s.str()
		return ok, nil
	}
	// A number or a literal: its bytes up to the next delimiter.
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ':', ' ', '\t', '\n', '\r', '"', '{', '[':
			return s.i > start, nil
		}
		s.i++
	}
	return s.i > start, nil
}

// str reads a string; plain reports that it is printable ASCII without
// escapes, so that raw is its decoded value.
func (s *memberScan) str() (raw []byte, plain, ok bool) {
	s.i++ // the opening quote
	start := s.i
	plain = true
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			raw = s.b[start:s.i]
			s.i++
			return raw, plain, true
		case c == '\\':
			plain = false
			s.i++ // the escaped byte, which may be a quote
		case c < 0x20 || c > 0x7e:
			plain = false
		}
		s.i++
	}
	return nil, false, false
}

// memberScanMap is the number of members from which object looks names
// up in a map rather than comparing each with those before.
const memberScanMap = 16

func (s *memberScan) object() (decided bool, err error) {
	if s.depth++; s.depth > memberScanDepth {
		return false, nil
	}
	defer func() { s.depth-- }()
	s.i++ // '{'
	if s.next('}') {
		return true, nil
	}
	var (
		names [memberScanMap][]byte
		n     int
		seen  map[string]bool // lower-cased, once there are memberScanMap names
	)
	for {
		if !s.next('"') {
			return false, nil
		}
		s.i--
		name, plain, ok := s.str()
		if !ok || !plain {
			return false, nil
		}
		// For printable ASCII, encoding/json's folding is lower case.
		dup := false
		if seen == nil {
			for _, o := range names[:n] {
				if asciiEqualFold(o, name) {
					dup = true
					break
				}
			}
			if n < memberScanMap {
				names[n] = name
				n++
			} else {
				seen = make(map[string]bool, 2*memberScanMap)
				for _, o := range names {
					seen[asciiLower(o)] = true
				}
			}
		}
		if seen != nil && !dup {
			k := asciiLower(name)
			dup = seen[k]
			seen[k] = true
		}
		if dup {
			return true, fmt.Errorf("duplicate member %q", name)
		}
		if !s.next(':') {
			return false, nil
		}
		if decided, err := s.value(); !decided || err != nil {
			return decided, err
		}
		if s.next('}') {
			return true, nil
		}
		if !s.next(',') {
			return false, nil
		}
	}
}

func (s *memberScan) array() (decided bool, err error) {
	if s.depth++; s.depth > memberScanDepth {
		return false, nil
	}
	defer func() { s.depth-- }()
	s.i++ // '['
	if s.next(']') {
		return true, nil
	}
	for {
		if decided, err := s.value(); !decided || err != nil {
			return decided, err
		}
		if s.next(']') {
			return true, nil
		}
		if !s.next(',') {
			return false, nil
		}
	}
}

// asciiEqualFold reports whether a and b, printable ASCII, are equal
// without regard to case.
func asciiEqualFold(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if asciiLowerByte(a[i]) != asciiLowerByte(b[i]) {
			return false
		}
	}
	return true
}

func asciiLower(b []byte) string {
	out := make([]byte, len(b))
	for i, c := range b {
		out[i] = asciiLowerByte(c)
	}
	return string(out)
}

func asciiLowerByte(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// slowDuplicateMembers is checkDuplicateMembers for any body, through
// encoding/json's tokens.
func slowDuplicateMembers(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	// Each open container: the member names seen, for an object; nil for
	// an array. key is whether the next string token of an object is a
	// member name.
	type container struct {
		names map[string]bool
		key   bool
	}
	var stack []*container
	for {
		tok, err := dec.Token()
		if err != nil {
			return nil // io.EOF at the end; a syntax error is the decoder's to report
		}
		var top *container
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.names != nil && top.key {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				continue
			}
			name, _ := tok.(string)
			folded := foldName(name)
			if top.names[folded] {
				return fmt.Errorf("duplicate member %q", name)
			}
			top.names[folded] = true
			top.key = false
			continue
		}
		if top != nil && top.names != nil {
			top.key = true // after this value, a name or '}'
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, &container{names: map[string]bool{}, key: true})
		case json.Delim('['):
			stack = append(stack, &container{})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
		}
	}
}

// foldName is a member name as encoding/json matches it to a field:
// without regard to case (Unicode simple folding, which maps K, k and the
// Kelvin sign alike).
func foldName(s string) string { return strings.ToLower(strings.ToUpper(s)) }

func (h *handler) currentUser(r *http.Request) ([]byte, error) {
	id, err := h.cfg.CurrentUser(r)
	if err != nil {
		return nil, fmt.Errorf("webauthn: HandlerConfig.CurrentUser: %w", err)
	}
	if len(id) == 0 {
		return nil, nil
	}
	return id, nil
}

func (h *handler) requireUser(r *http.Request) ([]byte, error) {
	id, err := h.currentUser(r)
	if err == nil && id == nil {
		err = errUnauthenticated
	}
	return id, err
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

// binding returns the browser's binding cookie, setting a new one on w if
// r has none.
func (h *handler) binding(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if b := h.readBinding(r); b != nil {
		return b, nil
	}
	b, err := h.rp.random(bindingLen)
	if err != nil {
		return nil, err
	}
	http.SetCookie(w, &http.Cookie{
		Name:     h.cfg.BindingCookieName,
		Value:    b64(b),
		Path:     h.cookiePath(r),
		HttpOnly: true,
		Secure:   true,
		SameSite: http.SameSiteStrictMode,
	})
	return b, nil
}

// readBinding returns r's binding cookie, or nil.
func (h *handler) readBinding(r *http.Request) []byte {
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

// boundContext is r's context bound to the browser's binding cookie
// (none, if it has none: a ceremony begun under one then fails).
func (h *handler) boundContext(r *http.Request) context.Context {
	return WithSessionBinding(r.Context(), h.readBinding(r))
}

// setCeremony hands the challenge ID to the browser, in the answer and in
// the ceremony cookie, and writes the options.
func (h *handler) setCeremony(w http.ResponseWriter, r *http.Request, b *Begin) {
	http.SetCookie(w, &http.Cookie{
		Name:     h.cfg.CookieName,
		Value:    b.ChallengeID,
		Path:     h.cookiePath(r),
		MaxAge:   int((h.rp.timeout + time.Second - 1) / time.Second),
		HttpOnly: true,
		Secure:   true,
		SameSite: http.SameSiteStrictMode,
	})
	// {"challengeId":…,"publicKey":…} as encoding/json would write it;
	// b.Options is already compact JSON from encoding/json.
	id, err := json.Marshal(b.ChallengeID)
	if err != nil || !json.Valid(b.Options) {
		writeJSON(w, http.StatusOK, struct {
			ChallengeID string          `json:"challengeId"`
			PublicKey   json.RawMessage `json:"publicKey"`
		}{b.ChallengeID, b.Options})
		return
	}
	out := make([]byte, 0, len(`{"challengeId":,"publicKey":}`)+len(id)+len(b.Options)+1)
	out = append(out, `{"challengeId":`...)
	out = append(out, id...)
	out = append(out, `,"publicKey":`...)
	out = append(out, b.Options...)
	out = append(out, "}\n"...)
	writeBody(w, http.StatusOK, out)
}

// signedInJSON is the answer of a finish that signed someone in: the
// members in the order encoding/json writes a map's.
type signedInJSON struct {
	Key  KeyJSON  `json:"key"`
	User UserJSON `json:"user"`
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

func (h *handler) registerBegin(w http.ResponseWriter, r *http.Request) error {
	cur, err := h.currentUser(r)
	if err != nil {
		return err
	}
	var req struct {
		Name        string `json:"name"`
		DisplayName string `json:"displayName"`
	}
	if err := h.readJSON(w, r, &req, true); err != nil {
		return err
	}
	switch {
	case cur != nil && (req.Name != "" || req.DisplayName != ""):
		// A sign-up while signed in would add the key to the signed-in
		// account under the other name's nose.
		return fmt.Errorf("%w: a sign-up (name %q) while signed in", errSignedIn, req.Name)
	case cur == nil && !h.cfg.AllowSignup:
		return fmt.Errorf("%w: sign in to add a key", errUnauthenticated)
	}
	bind, err := h.binding(w, r)
	if err != nil {
		return err
	}
	ctx := WithSessionBinding(r.Context(), bind)
	var b *Begin
	if cur != nil {
		b, err = h.rp.BeginRegistration(ctx, cur)
	} else {
		b, err = h.rp.BeginSignup(ctx, req.Name, req.DisplayName)
	}
	if err != nil {
		return err
	}
	h.setCeremony(w, r, b)
	return nil
}

func (h *handler) registerFinish(w http.ResponseWriter, r *http.Request) error {
	cur, err := h.currentUser(r)
	if err != nil {
		return err
	}
	var req struct {
		ChallengeID string          `json:"challengeId"`
		KeyName     *string         `json:"keyName"`
		Name        *string         `json:"name"` // the key's: what keyName was called before
		Credential  json.RawMessage `json:"credential"`
	}
	if err := h.readJSON(w, r, &req, false); err != nil {
		return err
	}
	keyName, err := keyNameOf(req.KeyName, req.Name)
	if err != nil {
		return err
	}
	id := h.takeCeremony(w, r, req.ChallengeID)
	if len(req.Credential) == 0 || string(req.Credential) == "null" {
		return fmt.Errorf("%w: no credential", ErrInvalidRequest)
	}
	bind := func(userID []byte, signup bool) bool {
		if signup {
			return cur == nil
		}
		return cur != nil && bytes.Equal(cur, userID)
	}
	u, c, err := h.rp.finishRegistration(h.boundContext(r), id, req.Credential, keyName, bind)
	if err != nil {
		return err
	}
	if cur == nil {
		if err := h.cfg.OnLogin(w, r, u, c); err != nil {
			return fmt.Errorf("webauthn: HandlerConfig.OnLogin: %w", err)
		}
	}
	writeJSON(w, http.StatusCreated, signedInJSON{Key: keyJSON(c), User: userJSON(u)})
	return nil
}

// keyNameOf is the key name of a body with keyName and, from older
// clients, name for the same thing; nil if neither is set.
func keyNameOf(keyName, name *string) (string, error) {
	switch {
	case keyName != nil && name != nil:
		return "", fmt.Errorf("%w: both keyName and name (the older spelling of keyName)", ErrInvalidRequest)
	case keyName != nil:
		return *keyName, nil
	case name != nil:
		return *name, nil
	}
	return "", nil
}

func (h *handler) loginBegin(w http.ResponseWriter, r *http.Request) error {
	var req loginBeginBody
	b, err := h.readBody(w, r, true)
	if err != nil {
		return err
	}
	if b != nil {
		if err := req.decode(b); err != nil {
			return err
		}
	}
	bind, err := h.binding(w, r)
	if err != nil {
		return err
	}
	ctx := WithSessionBinding(r.Context(), bind)
	var begin *Begin
	if req.Name == "" {
		begin, err = h.rp.BeginDiscoverableLogin(ctx)
	} else {
		begin, err = h.rp.beginLoginByName(ctx, req.Name)
	}
	if err != nil {
		return err
	}
	h.setCeremony(w, r, begin)
	return nil
}

func (h *handler) loginFinish(w http.ResponseWriter, r *http.Request) error {
	var req loginFinishBody
	b, err := h.readBody(w, r, false)
	if err != nil {
		return err
	}
	if err := req.decode(b); err != nil {
		return err
	}
	id := h.takeCeremony(w, r, req.ChallengeID)
	if len(req.Credential) == 0 || string(req.Credential) == "null" {
		return fmt.Errorf("%w: no credential", ErrInvalidRequest)
	}
	u, c, err := h.rp.FinishLogin(h.boundContext(r), id, req.Credential)
	if err != nil {
		return err
	}
	if err := h.cfg.OnLogin(w, r, u, c); err != nil {
		return fmt.Errorf("webauthn: HandlerConfig.OnLogin: %w", err)
	}
	writeJSON(w, http.StatusOK, signedInJSON{Key: keyJSON(c), User: userJSON(u)})
	return nil
}

func (h *handler) listKeys(w http.ResponseWriter, r *http.Request) error {
	cur, err := h.requireUser(r)
	if err != nil {
		return err
	}
	creds, err := h.rp.Credentials(r.Context(), cur)
	if err != nil {
		return err
	}
	keys := make([]KeyJSON, 0, len(creds))
	for _, c := range creds {
		keys = append(keys, keyJSON(c))
	}
	writeJSON(w, http.StatusOK, struct {
		Keys []KeyJSON `json:"keys"`
	}{keys})
	return nil
}

// keyRoute reads the signed-in user and the {id} of a /keys/{id} route.
func (h *handler) keyRoute(r *http.Request) (userID, credID []byte, err error) {
	if userID, err = h.requireUser(r); err != nil {
		return nil, nil, err
	}
	s := r.PathValue("id")
	credID, err = base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
	if err != nil || len(credID) == 0 {
		return nil, nil, fmt.Errorf("%w: key ID %q is not base64url", ErrInvalidRequest, s)
	}
	return userID, credID, nil
}

// writeKey answers with the key as it now is.
func (h *handler) writeKey(w http.ResponseWriter, r *http.Request, userID, credID []byte) error {
	c, err := h.rp.Credential(r.Context(), userID, credID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct {
		Key KeyJSON `json:"key"`
	}{keyJSON(c)})
	return nil
}

func (h *handler) renameKey(w http.ResponseWriter, r *http.Request) error {
	userID, credID, err := h.keyRoute(r)
	if err != nil {
		return err
	}
	var req struct {
		KeyName *string `json:"keyName"`
		Name    *string `json:"name"` // what keyName was called before
	}
	if err := h.readJSON(w, r, &req, false); err != nil {
		return err
	}
	if req.KeyName == nil && req.Name == nil {
		return fmt.Errorf("%w: no keyName", ErrInvalidRequest)
	}
	name, err := keyNameOf(req.KeyName, req.Name)
	if err != nil {
		return err
	}
	if err := h.rp.RenameCredential(r.Context(), userID, credID, name); err != nil {
		return err
	}
	return h.writeKey(w, r, userID, credID)
}

func (h *handler) deactivateKey(w http.ResponseWriter, r *http.Request) error {
	return h.keyChange(w, r, h.rp.DeactivateCredential)
}

func (h *handler) reactivateKey(w http.ResponseWriter, r *http.Request) error {
	return h.keyChange(w, r, h.rp.ReactivateCredential)
}

func (h *handler) keyChange(w http.ResponseWriter, r *http.Request, change func(ctx context.Context, userID, credID []byte) error) error {
	userID, credID, err := h.keyRoute(r)
	if err != nil {
		return err
	}
	var req struct{}
	if err := h.readJSON(w, r, &req, true); err != nil {
		return err
	}
	if err := change(r.Context(), userID, credID); err != nil {
		return err
	}
	return h.writeKey(w, r, userID, credID)
}

func (h *handler) deleteKey(w http.ResponseWriter, r *http.Request) error {
	userID, credID, err := h.keyRoute(r)
	if err != nil {
		return err
	}
	if err := h.rp.DeleteCredential(r.Context(), userID, credID); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
