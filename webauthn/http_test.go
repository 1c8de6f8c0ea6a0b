package webauthn_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/webauthn"
	"github.com/fidokit/fidokit/webauthn/webauthntest"
)

// app is a web application using the handler: its sessions are a cookie
// naming a user, set by OnLogin.
type app struct {
	srv      *httptest.Server
	base     string
	mu       sync.Mutex
	sessions map[string][]byte
}

func newApp(t *testing.T, e *env, mod func(*webauthn.HandlerConfig)) *app {
	t.Helper()
	a := &app{sessions: map[string][]byte{}}
	cfg := webauthn.HandlerConfig{
		CurrentUser: a.currentUser,
		OnLogin:     a.onLogin,
		AllowSignup: true,
		CookiePath:  "/webauthn/",
		OnError:     func(r *http.Request, err error) { t.Errorf("%s %s: internal error: %v", r.Method, r.URL.Path, err) },
	}
	if mod != nil {
		mod(&cfg)
	}
	h, err := e.rp.Handler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/webauthn/", http.StripPrefix("/webauthn", h))
	a.srv = httptest.NewTLSServer(mux)
	t.Cleanup(a.srv.Close)
	a.base = a.srv.URL + "/webauthn"
	return a
}

func (a *app) currentUser(r *http.Request) ([]byte, error) {
	c, err := r.Cookie("session")
	if err != nil {
		return nil, nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sessions[c.Value], nil
}

func (a *app) onLogin(w http.ResponseWriter, r *http.Request, u *webauthn.User, c *webauthn.Credential) error {
	tok := b64(randomBytes(16))
	a.mu.Lock()
	a.sessions[tok] = u.ID
	a.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: "session", Value: tok, Path: "/", HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	return nil
}

// browser is a new browser: the server's TLS trust, no cookies.
func (a *app) browser(t *testing.T) *http.Client {
	t.Helper()
	hc := *a.srv.Client()
	hc.Jar, _ = cookiejar.New(nil)
	return &hc
}

// TestHTTPEndToEnd walks the security-key path a person takes: sign up
// with a key, add a backup key, sign in with each, sign in without a user
// name, then manage the keys.
func TestHTTPEndToEnd(t *testing.T) {
	e := newEnv(t, nil)
	a := newApp(t, e, nil)
	ctx := e.ctx
	k1, k2 := e.key(nil), e.key(nil)

	// Sign up with the first key; OnLogin signs the new account in.
	browser := a.browser(t)
	h1 := k1.HTTP(a.base, browser)
	alice, key1, err := h1.Signup(ctx, "alice@example.com", "Alice", "Blue key")
	if err != nil {
		t.Fatal(err)
	}
	if alice.Name != "alice@example.com" || key1.Name != "Blue key" || !key1.Active {
		t.Fatalf("signed up %+v with %+v", alice, key1)
	}
	// A second key in the same browser session.
	h2 := k2.HTTP(a.base, browser)
	key2, err := h2.Register(ctx, "Backup key")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := h1.Keys(ctx)
	if err != nil || len(keys) != 2 || keys[0].ID != key1.ID || keys[1].ID != key2.ID {
		t.Fatalf("keys = %+v, %v", keys, err)
	}

	// A new browser signs in with each key, by name and without.
	for _, tc := range []struct {
		name string
		k    *webauthntest.Client
		user string
		want string
	}{
		{"key one by name", k1, "alice@example.com", key1.ID},
		{"key two by name", k2, "alice@example.com", key2.ID},
		{"key two discoverable", k2, "", key2.ID},
	} {
		h := tc.k.HTTP(a.base, a.browser(t))
		u, k, err := h.Login(ctx, tc.user)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if u.ID != alice.ID || k.ID != tc.want || k.LastUsed.IsZero() {
			t.Errorf("%s: signed in as %+v with %+v", tc.name, u, k)
		}
		if keys, err := h.Keys(ctx); err != nil || len(keys) != 2 {
			t.Errorf("%s: the session does not work: %v, %v", tc.name, keys, err)
		}
	}

	// Rename, deactivate (sign-in fails), reactivate, delete.
	if k, err := h1.Rename(ctx, key2.ID, "Spare key"); err != nil || k.Name != "Spare key" {
		t.Errorf("rename: %+v, %v", k, err)
	}
	if k, err := h1.Deactivate(ctx, key1.ID); err != nil || k.Active || k.Deactivated.IsZero() {
		t.Errorf("deactivate: %+v, %v", k, err)
	}
	if _, _, err := k1.HTTP(a.base, a.browser(t)).Login(ctx, "alice@example.com"); !errors.Is(err, fido.ErrNotAllowed) {
		t.Errorf("sign-in by name with the deactivated key = %v, want the key to find no allowed credential", err)
	}
	_, _, err = k1.HTTP(a.base, a.browser(t)).Login(ctx, "")
	checkHTTPError(t, err, http.StatusForbidden, "credential_deactivated")
	if k, err := h1.Reactivate(ctx, key1.ID); err != nil || !k.Active {
		t.Errorf("reactivate: %+v, %v", k, err)
	}
	if _, _, err := k1.HTTP(a.base, a.browser(t)).Login(ctx, "alice@example.com"); err != nil {
		t.Errorf("sign-in after reactivation: %v", err)
	}
	if err := h1.Delete(ctx, key2.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = k2.HTTP(a.base, a.browser(t)).Login(ctx, "")
	checkHTTPError(t, err, http.StatusNotFound, "credential_unknown")
	err = h1.Delete(ctx, key2.ID)
	checkHTTPError(t, err, http.StatusNotFound, "credential_unknown")
	if keys, err := h1.Keys(ctx); err != nil || len(keys) != 1 || keys[0].ID != key1.ID {
		t.Errorf("keys after delete = %+v, %v", keys, err)
	}

	// Nobody signed in: no keys to see, and no key to add without
	// sign-up.
	anon := k2.HTTP(a.base, a.browser(t))
	_, err = anon.Keys(ctx)
	checkHTTPError(t, err, http.StatusUnauthorized, "unauthenticated")
	_, _, err = anon.Signup(ctx, "alice@example.com", "", "")
	checkHTTPError(t, err, http.StatusConflict, "user_exists")
	// Another user cannot touch alice's keys.
	bob := e.key(nil).HTTP(a.base, a.browser(t))
	if _, _, err := bob.Signup(ctx, "bob@example.com", "Bob", ""); err != nil {
		t.Fatal(err)
	}
	_, err = bob.Deactivate(ctx, key1.ID)
	checkHTTPError(t, err, http.StatusNotFound, "credential_unknown")
}

func checkHTTPError(t *testing.T, err error, status int, code string) {
	t.Helper()
	var he *webauthntest.HTTPError
	if !errors.As(err, &he) || he.Status != status || he.Code != code {
		t.Errorf("error = %v, want HTTP %d %s", err, status, code)
	}
}

func TestHTTPNoSignup(t *testing.T) {
	e := newEnv(t, nil)
	a := newApp(t, e, func(c *webauthn.HandlerConfig) { c.AllowSignup = false })
	_, _, err := e.key(nil).HTTP(a.base, a.browser(t)).Signup(e.ctx, "eve", "", "")
	checkHTTPError(t, err, http.StatusUnauthorized, "unauthenticated")
}

// TestHTTPFinishBoundToAccount: a registration begun for one account
// cannot be finished in a session of another.
func TestHTTPFinishBoundToAccount(t *testing.T) {
	e := newEnv(t, nil)
	a := newApp(t, e, nil)
	k := e.key(nil)
	browser := a.browser(t)
	h := k.HTTP(a.base, browser)
	if _, _, err := h.Signup(e.ctx, "alice", "", ""); err != nil {
		t.Fatal(err)
	}
	var b struct{ PublicKey json.RawMessage }
	if err := h.Do(e.ctx, "POST", "/register/begin", nil, &b); err != nil {
		t.Fatal(err)
	}
	resp, err := e.key(nil).Create(e.ctx, b.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	// Signed out in between: drop the session cookie, keep the ceremony.
	jar, _ := cookiejar.New(nil)
	u := a.srv.URL + "/webauthn/"
	for _, c := range browser.Jar.Cookies(mustURL(t, u)) {
		if c.Name == webauthn.DefaultCookieName {
			c.Path, c.Secure = "/webauthn/", true
			jar.SetCookies(mustURL(t, u), []*http.Cookie{c})
		}
	}
	browser.Jar = jar
	err = h.Do(e.ctx, "POST", "/register/finish", map[string]any{"credential": json.RawMessage(resp)}, nil)
	checkHTTPError(t, err, http.StatusBadRequest, "challenge_unknown")
}

func TestHTTPErrors(t *testing.T) {
	e := newEnv(t, nil)
	a := newApp(t, e, nil)
	hc := a.browser(t)
	do := func(method, path, ctype string, body []byte) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(e.ctx, method, a.base+path, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if ctype != "" {
			req.Header.Set("Content-Type", ctype)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	check := func(resp *http.Response, status int, code string) {
		t.Helper()
		if resp.StatusCode != status {
			t.Errorf("status %d, want %d", resp.StatusCode, status)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("Content-Type %q", ct)
		}
		var body struct {
			Error struct{ Code, Message string }
		}
		data, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(data, &body); err != nil || body.Error.Code != code || body.Error.Message == "" {
			t.Errorf("body %s, want code %q", data, code)
		}
	}
	const js = "application/json"

	big := []byte(`{"name":"` + strings.Repeat("a", webauthn.DefaultMaxBodyBytes) + `"}`)
	check(do("POST", "/login/begin", js, big), http.StatusRequestEntityTooLarge, "request_too_large")

	resp := do("GET", "/login/begin", "", nil)
	check(resp, http.StatusMethodNotAllowed, "method_not_allowed")
	if allow := resp.Header.Get("Allow"); allow != "POST" {
		t.Errorf("Allow %q", allow)
	}
	check(do("PUT", "/keys/AAAA", js, []byte("{}")), http.StatusMethodNotAllowed, "method_not_allowed")
	check(do("POST", "/login/begin", js, []byte(`{"name":`)), http.StatusBadRequest, "invalid_request")
	check(do("POST", "/login/begin", js, []byte(`{"nam":"alice"}`)), http.StatusBadRequest, "invalid_request")
	check(do("POST", "/login/begin", js, []byte(`{"name":"alice"} {}`)), http.StatusBadRequest, "invalid_request")
	check(do("POST", "/login/begin", "text/plain", []byte(`{"name":"alice"}`)), http.StatusUnsupportedMediaType, "unsupported_media_type")
	check(do("POST", "/login/begin", js, []byte(`{"name":"nobody"}`)), http.StatusNotFound, "user_unknown")
	check(do("POST", "/nope", js, nil), http.StatusNotFound, "not_found")
	check(do("POST", "/login/finish", js, []byte(`{"credential":{"id":"AAAA"}}`)), http.StatusBadRequest, "challenge_unknown")
	check(do("POST", "/register/finish", js, []byte(`{}`)), http.StatusBadRequest, "invalid_request")
	check(do("GET", "/keys", "", nil), http.StatusUnauthorized, "unauthenticated")

	// The ceremony cookie.
	resp = do("POST", "/login/begin", js, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("discoverable /login/begin: %d", resp.StatusCode)
	}
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == webauthn.DefaultCookieName {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatal("no ceremony cookie")
	}
	if !cookie.HttpOnly || !cookie.Secure || cookie.SameSite != http.SameSiteStrictMode || cookie.Path != "/webauthn/" ||
		cookie.MaxAge != 300 || len(cookie.Value) < 40 {
		t.Errorf("ceremony cookie %+v", cookie)
	}
	var body struct {
		PublicKey struct{ Challenge, RPID string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.PublicKey.RPID != testRPID || body.PublicKey.Challenge == "" {
		t.Errorf("options %+v, %v", body, err)
	}
	// Finishing clears it, success or not.
	resp = do("POST", "/login/finish", js, []byte(`{"credential":{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{}}}`))
	check(resp, http.StatusBadRequest, "malformed_response")
	cleared := false
	for _, c := range resp.Cookies() {
		cleared = cleared || c.Name == webauthn.DefaultCookieName && c.MaxAge < 0
	}
	if !cleared {
		t.Error("finish did not clear the ceremony cookie")
	}
}

func TestHandlerConfig(t *testing.T) {
	e := newEnv(t, nil)
	noop := func(http.ResponseWriter, *http.Request, *webauthn.User, *webauthn.Credential) error { return nil }
	who := func(*http.Request) ([]byte, error) { return nil, nil }
	if _, err := e.rp.Handler(webauthn.HandlerConfig{OnLogin: noop}); err == nil {
		t.Error("Handler without CurrentUser")
	}
	if _, err := e.rp.Handler(webauthn.HandlerConfig{CurrentUser: who}); err == nil {
		t.Error("Handler without OnLogin")
	}
	if _, err := e.rp.Handler(webauthn.HandlerConfig{CurrentUser: who, OnLogin: noop, MaxBodyBytes: -1}); err == nil {
		t.Error("Handler with a negative body limit")
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
