package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/fidokit/fidokit/mfa"
)

// The app's own JSON routes: registering a security key as an MFA device.
// mfa's handler has routes for every other device type; a key is
// registered through mfa.Manager.BeginKeyRegistration and
// FinishKeyRegistration, which count it against the one device limit of
// every type. The challenge ID goes to the page in the begin answer and
// comes back in the finish body, and the server accepts only IDs it
// handed to the same session: so two tabs can each register a key, and
// another browser cannot finish this one's ceremony.
//
//	POST /api/keys/begin   {}                                  → 200 {"challengeId", "publicKey": PublicKeyCredentialCreationOptionsJSON}
//	POST /api/keys/finish  {"challengeId", "name", "credential"} → 201 {"device": {"id", "type", "name", "created"}}
//
// Errors are {"error": {"code", "message"}} with the stable codes of
// mfa.ErrorCode, as mfa's own routes answer.

// Errors of the app's JSON routes.
var (
	errUnauthenticated = errors.New("nobody is signed in")
	errCrossOrigin     = errors.New("cross-origin request")
	errNotFound        = errors.New("no such endpoint")
	errBadRequest      = errors.New("invalid request")
	errBadChallenge    = errors.New("challenge not begun in this session")
	errNoKeyName       = errors.New("no key name")
	errMediaType       = errors.New("request body is not JSON")
)

// maxBodyBytes bounds the app's JSON bodies: a registration response is a
// few kilobytes.
const maxBodyBytes = 64 << 10

// apiCodes are the codes of the app's own errors.
var apiCodes = []struct {
	err  error
	code string
}{
	{errUnauthenticated, "unauthenticated"},
	{errCrossOrigin, "cross_origin"},
	{errNotFound, "not_found"},
	{errBadRequest, "invalid_request"},
	{errBadChallenge, "challenge_unknown"},
	{errNoKeyName, "name_required"},
	{errMediaType, "unsupported_media_type"},
}

// apiMessages are the status and the sentence for each code the app's
// routes answer with. The sentence is fixed per code, never the error's
// text.
var apiMessages = map[string]struct {
	status int
	msg    string
}{
	"unauthenticated":        {http.StatusUnauthorized, "Sign in first."},
	"cross_origin":           {http.StatusForbidden, "Requests from other sites are not allowed."},
	"not_found":              {http.StatusNotFound, "There is no such endpoint."},
	"invalid_request":        {http.StatusBadRequest, "The request is not valid. Reload the page and try again."},
	"name_required":          {http.StatusBadRequest, "Give the key a name."},
	"challenge_unknown":      {http.StatusBadRequest, "This security key setup is unknown or was already used. Start again."},
	"challenge_expired":      {http.StatusBadRequest, "The security key took too long. Start again."},
	"malformed_response":     {http.StatusBadRequest, "The security key's answer could not be read. Try again."},
	"user_presence_missing":  {http.StatusBadRequest, "The security key was not touched. Try again."},
	"credential_exists":      {http.StatusConflict, "That security key is already registered."},
	"credential_limit":       {http.StatusConflict, "This account already has as many devices as allowed. Remove one first."},
	"device_limit":           {http.StatusConflict, "This account already has as many devices as allowed. Remove one first."},
	"attestation_untrusted":  {http.StatusForbidden, "This model of security key is not accepted here."},
	"backup_eligible":        {http.StatusForbidden, "This site accepts only keys bound to one device, not synced passkeys."},
	"too_many_ceremonies":    {http.StatusTooManyRequests, "Too many security key requests are under way. Try again in a few minutes."},
	"request_too_large":      {http.StatusRequestEntityTooLarge, "The request is too large."},
	"unsupported_media_type": {http.StatusUnsupportedMediaType, "The request must be JSON (application/json)."},
	"internal":               {http.StatusInternalServerError, "Something went wrong on our side. Try again."},
}

// errorCode is mfa.ErrorCode for the app's errors too.
func errorCode(err error) string {
	for _, c := range apiCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return "request_too_large"
	}
	return mfa.ErrorCode(err)
}

func (a *app) apiError(w http.ResponseWriter, r *http.Request, err error) {
	code := errorCode(err)
	info, ok := apiMessages[code]
	if !ok {
		info.status, info.msg = http.StatusBadRequest, "The security key's answer was not accepted. Try again."
	}
	if info.status == http.StatusInternalServerError {
		a.onError(r, err)
	}
	writeJSON(w, info.status, map[string]any{"error": map[string]string{"code": code, "message": info.msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// readJSON reads one JSON value without unknown members into v. The
// request must say Content-Type: application/json even with an empty
// body (which leaves v as it is): an HTML form on another site cannot
// send that, nor a script without a CORS preflight that nothing answers.
func readJSON(w http.ResponseWriter, r *http.Request, v any) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return fmt.Errorf("%w: Content-Type %q", errMediaType, r.Header.Get("Content-Type"))
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil
	}
	if !utf8.Valid(b) {
		return fmt.Errorf("%w: body is not UTF-8", errBadRequest)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", errBadRequest, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: data after the JSON value", errBadRequest)
	}
	return nil
}

// keyBegin starts registering a security key on the signed-in account.
func (a *app) keyBegin(w http.ResponseWriter, r *http.Request, s session) {
	var req struct{}
	if err := readJSON(w, r, &req); err != nil {
		a.apiError(w, r, err)
		return
	}
	b, err := a.m.BeginKeyRegistration(r.Context(), s.UserID)
	if err != nil {
		a.apiError(w, r, err)
		return
	}
	if !a.ss.addChallenge(r, b.ChallengeID) {
		a.apiError(w, r, errUnauthenticated)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		ChallengeID string          `json:"challengeId"`
		PublicKey   json.RawMessage `json:"publicKey"`
	}{b.ChallengeID, b.Options})
}

// keyFinish verifies the key's registration and stores it as a device.
func (a *app) keyFinish(w http.ResponseWriter, r *http.Request, s session) {
	var req struct {
		ChallengeID string          `json:"challengeId"`
		Name        string          `json:"name"`
		Credential  json.RawMessage `json:"credential"`
	}
	if err := readJSON(w, r, &req); err != nil {
		a.apiError(w, r, err)
		return
	}
	switch {
	case len(req.Credential) == 0 || string(req.Credential) == "null":
		a.apiError(w, r, fmt.Errorf("%w: no credential", errBadRequest))
		return
	case req.Name == "":
		a.apiError(w, r, errNoKeyName)
		return
	case !a.ss.takeChallenge(r, req.ChallengeID):
		// Not begun in this session (another browser's, or used): the
		// challenge stays for its own session.
		a.apiError(w, r, errBadChallenge)
		return
	}
	d, err := a.m.FinishKeyRegistration(r.Context(), req.ChallengeID, req.Credential, req.Name)
	if err != nil {
		a.apiError(w, r, err)
		return
	}
	a.enrolled(r, mfa.FactorSecurityKey, d.ID)
	writeJSON(w, http.StatusCreated, map[string]any{"device": struct {
		ID      string         `json:"id"`
		Type    mfa.DeviceType `json:"type"`
		Name    string         `json:"name"`
		Created time.Time      `json:"created"`
	}{d.ID, d.Type, d.Name, d.Created.UTC()}})
}
