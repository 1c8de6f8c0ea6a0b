package main

import (
	"encoding/json"
	"errors"
	"net/http"
)

// The page scripts' JSON API is package mfa's handler, mounted at /mfa/
// (see routes): it enrolls every device type, security keys included
// (POST /mfa/keys/begin and /mfa/keys/finish, the challenge ID in the
// body and bound to the browser, so that two tabs can each register a
// key and another browser or account cannot finish this one's), verifies
// second factors and serves the administrator. The app answers on those
// routes itself only when it refuses a request before mfa sees it, with
// the same body, {"error": {"code", "message"}}, and mfa's codes.

// errCrossOrigin is a state-changing request from another site.
var errCrossOrigin = errors.New("cross-origin request")

// apiError answers a request to the JSON API that the app refuses
// itself: cross_origin, or internal (logged; the page gets a fixed
// sentence, never the error's text).
func (a *app) apiError(w http.ResponseWriter, r *http.Request, err error) {
	code, status, msg := "internal", http.StatusInternalServerError, "Something went wrong on our side. Try again."
	if errors.Is(err, errCrossOrigin) {
		code, status, msg = "cross_origin", http.StatusForbidden, "Requests from other sites are not allowed."
	} else {
		a.onError(r, err)
	}
	writeJSON(w, status, map[string]any{"error": map[string]string{"code": code, "message": msg}})
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
