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
	"strings"
	"time"

	"github.com/google/uuid"
)

// DefaultMaxBodyBytes bounds request bodies when HandlerConfig.MaxBodyBytes
// is zero. A registration response with a long attestation chain is a few
// kilobytes.
const DefaultMaxBodyBytes = 64 << 10

// DefaultCookieName is the ceremony cookie's name when
// HandlerConfig.CookieName is empty.
const DefaultCookieName = "webauthn_ceremony"

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
	// from begin to finish. Empty means DefaultCookieName.
	CookieName string
	// CookiePath is the cookie's Path: where the handler is mounted. Empty
	// means "/".
	CookiePath string
	// OnError, if not nil, is told about every error that becomes a 500
	// response (the response itself says only "internal error").
	OnError func(r *http.Request, err error)
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
	errMediaType       = errors.New("webauthn: request body is not application/json")
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
}

// codeStatus is the HTTP status of each code of ErrorCode.
var codeStatus = map[string]int{
	"backup_eligible":        http.StatusForbidden,
	"attestation_untrusted":  http.StatusForbidden,
	"credential_wrong_user":  http.StatusForbidden,
	"user_handle_mismatch":   http.StatusForbidden,
	"credential_deactivated": http.StatusForbidden,
	"sign_count_regression":  http.StatusForbidden,
	"bad_signature":          http.StatusForbidden,
	"credential_unknown":     http.StatusNotFound,
	"user_unknown":           http.StatusNotFound,
	"no_credentials":         http.StatusNotFound,
	"credential_exists":      http.StatusConflict,
	"credential_limit":       http.StatusConflict,
	"user_exists":            http.StatusConflict,
	"internal":               http.StatusInternalServerError,
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
// prefix with http.StripPrefix and set CookiePath to the prefix. Routes:
//
//	POST   /register/begin         {"name","displayName"} for a sign-up, or {} (or no body) for the signed-in user
//	                               → 200 {"publicKey": PublicKeyCredentialCreationOptionsJSON}
//	POST   /register/finish        {"name": key name, "credential": RegistrationResponseJSON}
//	                               → 201 {"user": UserJSON, "key": KeyJSON}
//	POST   /login/begin            {"name": user name}, or {} (or no body) for a discoverable sign-in
//	                               → 200 {"publicKey": PublicKeyCredentialRequestOptionsJSON}
//	POST   /login/finish           {"credential": AuthenticationResponseJSON}
//	                               → 200 {"user": UserJSON, "key": KeyJSON}
//	GET    /keys                   → 200 {"keys": [KeyJSON, ...]}
//	POST   /keys/{id}/rename       {"name": key name} → 200 {"key": KeyJSON}
//	POST   /keys/{id}/deactivate   → 200 {"key": KeyJSON}
//	POST   /keys/{id}/reactivate   → 200 {"key": KeyJSON}
//	DELETE /keys/{id}              → 204
//
// A begin sets the ceremony cookie (HttpOnly, Secure, SameSite=Strict,
// Max-Age the challenge timeout) and the matching finish reads and clears
// it; a registration finished in another session than it began in
// (someone signed in or out in between) fails with challenge_unknown. /keys routes and adding a
// key need a signed-in user (HandlerConfig.CurrentUser), or 401.
//
// The handler is safe for concurrent use, as are the hooks it calls if
// the application's are.
//
// Bodies must be application/json, at most HandlerConfig.MaxBodyBytes,
// with no unknown members. Every error is a JSON body
// {"error": {"code": "...", "message": "..."}} with the status the
// package documentation lists for the code.
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
	if cfg.CookiePath == "" {
		cfg.CookiePath = "/"
	}
	h := &handler{rp: rp, cfg: cfg, mux: http.NewServeMux()}
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
		h.mux.HandleFunc(rt.method+" "+rt.path, func(w http.ResponseWriter, r *http.Request) {
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
	rp  *RelyingParty
	cfg HandlerConfig
	mux *http.ServeMux
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	h.mux.ServeHTTP(w, r)
}

func (h *handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	code, status := httpStatus(err)
	msg := err.Error()
	if status == http.StatusInternalServerError {
		if h.cfg.OnError != nil {
			h.cfg.OnError(r, err)
		}
		msg = "internal error"
	}
	type body struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	writeJSON(w, status, map[string]body{"error": {Code: code, Message: msg}})
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

// readJSON reads r's body into v. An empty body is an error unless
// optional, when v is left as it is. A body must be application/json, at
// most MaxBodyBytes, and one JSON value without unknown members.
func (h *handler) readJSON(w http.ResponseWriter, r *http.Request, v any, optional bool) error {
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.cfg.MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return fmt.Errorf("%w: more than %d bytes", errTooLarge, mbe.Limit)
		}
		return fmt.Errorf("%w: reading body: %v", ErrInvalidRequest, err)
	}
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

// setCeremony hands the challenge ID to the browser and writes the
// options.
func (h *handler) setCeremony(w http.ResponseWriter, b *Begin) {
	http.SetCookie(w, &http.Cookie{
		Name:     h.cfg.CookieName,
		Value:    b.ChallengeID,
		Path:     h.cfg.CookiePath,
		MaxAge:   int((h.rp.timeout + time.Second - 1) / time.Second),
		HttpOnly: true,
		Secure:   true,
		SameSite: http.SameSiteStrictMode,
	})
	writeJSON(w, http.StatusOK, map[string]json.RawMessage{"publicKey": b.Options})
}

// takeCeremony reads the challenge ID and clears the cookie: the finish
// uses the challenge up whatever happens.
func (h *handler) takeCeremony(w http.ResponseWriter, r *http.Request) string {
	var id string
	if c, err := r.Cookie(h.cfg.CookieName); err == nil {
		id = c.Value
	}
	http.SetCookie(w, &http.Cookie{
		Name: h.cfg.CookieName, Value: "", Path: h.cfg.CookiePath, MaxAge: -1,
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode,
	})
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
	var b *Begin
	switch {
	case cur != nil:
		b, err = h.rp.BeginRegistration(r.Context(), cur)
	case !h.cfg.AllowSignup:
		return fmt.Errorf("%w: sign in to add a key", errUnauthenticated)
	default:
		b, err = h.rp.BeginSignup(r.Context(), req.Name, req.DisplayName)
	}
	if err != nil {
		return err
	}
	h.setCeremony(w, b)
	return nil
}

func (h *handler) registerFinish(w http.ResponseWriter, r *http.Request) error {
	cur, err := h.currentUser(r)
	if err != nil {
		return err
	}
	var req struct {
		Name       string          `json:"name"`
		Credential json.RawMessage `json:"credential"`
	}
	id := h.takeCeremony(w, r)
	if err := h.readJSON(w, r, &req, false); err != nil {
		return err
	}
	if len(req.Credential) == 0 {
		return fmt.Errorf("%w: no credential", ErrInvalidRequest)
	}
	bind := func(userID []byte, signup bool) bool {
		if signup {
			return cur == nil
		}
		return cur != nil && bytes.Equal(cur, userID)
	}
	u, c, err := h.rp.finishRegistration(r.Context(), id, req.Credential, req.Name, bind)
	if err != nil {
		return err
	}
	if cur == nil {
		if err := h.cfg.OnLogin(w, r, u, c); err != nil {
			return fmt.Errorf("webauthn: HandlerConfig.OnLogin: %w", err)
		}
	}
	writeJSON(w, http.StatusCreated, map[string]any{"user": userJSON(u), "key": keyJSON(c)})
	return nil
}

func (h *handler) loginBegin(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := h.readJSON(w, r, &req, true); err != nil {
		return err
	}
	var (
		b   *Begin
		err error
	)
	if req.Name == "" {
		b, err = h.rp.BeginDiscoverableLogin(r.Context())
	} else {
		var u *User
		if u, err = h.rp.UserByName(r.Context(), req.Name); err == nil {
			b, err = h.rp.BeginLogin(r.Context(), u.ID)
		}
	}
	if err != nil {
		return err
	}
	h.setCeremony(w, b)
	return nil
}

func (h *handler) loginFinish(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Credential json.RawMessage `json:"credential"`
	}
	id := h.takeCeremony(w, r)
	if err := h.readJSON(w, r, &req, false); err != nil {
		return err
	}
	if len(req.Credential) == 0 {
		return fmt.Errorf("%w: no credential", ErrInvalidRequest)
	}
	u, c, err := h.rp.FinishLogin(r.Context(), id, req.Credential)
	if err != nil {
		return err
	}
	if err := h.cfg.OnLogin(w, r, u, c); err != nil {
		return fmt.Errorf("webauthn: HandlerConfig.OnLogin: %w", err)
	}
	writeJSON(w, http.StatusOK, map[string]any{"user": userJSON(u), "key": keyJSON(c)})
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
	writeJSON(w, http.StatusOK, map[string][]KeyJSON{"keys": keys})
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
	writeJSON(w, http.StatusOK, map[string]KeyJSON{"key": keyJSON(c)})
	return nil
}

func (h *handler) renameKey(w http.ResponseWriter, r *http.Request) error {
	userID, credID, err := h.keyRoute(r)
	if err != nil {
		return err
	}
	var req struct {
		Name *string `json:"name"`
	}
	if err := h.readJSON(w, r, &req, false); err != nil {
		return err
	}
	if req.Name == nil {
		return fmt.Errorf("%w: no name", ErrInvalidRequest)
	}
	if err := h.rp.RenameCredential(r.Context(), userID, credID, *req.Name); err != nil {
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
