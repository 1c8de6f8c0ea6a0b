package webauthn_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/webauthn"
	"github.com/fidokit/fidokit/webauthn/webauthntest"
)

// httpBegin is a begin answer of the handler.
type httpBegin struct {
	ChallengeID string          `json:"challengeId"`
	PublicKey   json.RawMessage `json:"publicKey"`
}

// httpFinish is a finish answer of the handler.
type httpFinish struct {
	User webauthn.UserJSON `json:"user"`
	Key  webauthn.KeyJSON  `json:"key"`
}

// begin posts a begin through h and makes the key's response to it.
func begin(t *testing.T, e *env, h *webauthntest.HTTP, k *webauthntest.Client, path string, body any) (httpBegin, json.RawMessage) {
	t.Helper()
	var b httpBegin
	require.NoError(t, h.Do(e.ctx, "POST", path, body, &b))
	require.NotEmpty(t, b.ChallengeID)
	var resp []byte
	var err error
	if path == "/register/begin" {
		resp, err = k.Create(e.ctx, b.PublicKey)
	} else {
		resp, err = k.Get(e.ctx, b.PublicKey)
	}
	require.NoError(t, err)
	return b, resp
}

// TestHTTPInterleavedCeremonies: ceremonies begun one after the other in
// one browser session (two tabs) each finish with their challengeId, in
// any order, whatever the ceremony cookie holds.
func TestHTTPInterleavedCeremonies(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*webauthn.Config)
	}{
		{"stored challenges", nil},
		{"challenge tokens", func(c *webauthn.Config) { c.ChallengeKey = bytes.Repeat([]byte{7}, 32) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.mod)
			a := newApp(t, e, nil)
			browser := a.browser(t)
			k1, k2, k3 := e.key(nil), e.key(nil), e.key(nil)
			h := k1.HTTP(a.base, browser)
			alice, _, err := h.Signup(e.ctx, "alice", "Alice", "First key")
			require.NoError(t, err)

			// Two registrations of the signed-in user, finished in the
			// reverse order.
			b2, r2 := begin(t, e, h, k2, "/register/begin", nil)
			b3, r3 := begin(t, e, h, k3, "/register/begin", nil)
			var f2, f3 httpFinish
			require.NoError(t, h.Do(e.ctx, "POST", "/register/finish", map[string]any{"challengeId": b3.ChallengeID, "keyName": "Third", "credential": r3}, &f3))
			require.NoError(t, h.Do(e.ctx, "POST", "/register/finish", map[string]any{"challengeId": b2.ChallengeID, "keyName": "Second", "credential": r2}, &f2))
			assert.Equal(t, "Second", f2.Key.Name)
			assert.Equal(t, "Third", f3.Key.Name)
			keys, err := h.Keys(e.ctx)
			require.NoError(t, err)
			assert.Len(t, keys, 3)

			// A discoverable sign-in waiting (conditional UI) while a
			// sign-in by name runs in another tab of a new browser.
			other := a.browser(t)
			hd, hn := k2.HTTP(a.base, other), k3.HTTP(a.base, other)
			bd, rd := begin(t, e, hd, k2, "/login/begin", nil)
			bn, rn := begin(t, e, hn, k3, "/login/begin", map[string]string{"name": "alice"})
			var fd, fn httpFinish
			require.NoError(t, hn.Do(e.ctx, "POST", "/login/finish", map[string]any{"challengeId": bn.ChallengeID, "credential": rn}, &fn))
			require.NoError(t, hd.Do(e.ctx, "POST", "/login/finish", map[string]any{"challengeId": bd.ChallengeID, "credential": rd}, &fd))
			assert.Equal(t, alice.ID, fn.User.ID)
			assert.Equal(t, alice.ID, fd.User.ID)
			assert.Equal(t, f3.Key.ID, fn.Key.ID)
			assert.Equal(t, f2.Key.ID, fd.Key.ID)

			// Each challenge is used once.
			err = hn.Do(e.ctx, "POST", "/login/finish", map[string]any{"challengeId": bn.ChallengeID, "credential": rn}, nil)
			checkHTTPError(t, err, http.StatusBadRequest, "challenge_unknown")
		})
	}
}

// TestHTTPChallengeReplayedElsewhere: a challengeId finished in another
// browser session (another cookie jar) than the one it began in is
// refused as unknown, and used up.
func TestHTTPChallengeReplayedElsewhere(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*webauthn.Config)
	}{
		{"stored challenges", nil},
		{"challenge tokens", func(c *webauthn.Config) { c.ChallengeKey = bytes.Repeat([]byte{7}, 32) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.mod)
			a := newApp(t, e, nil)
			k := e.key(nil)
			victim := k.HTTP(a.base, a.browser(t))
			_, _, err := victim.Signup(e.ctx, "alice", "", "")
			require.NoError(t, err)

			for _, login := range []struct {
				name string
				body any
			}{
				{"by name", map[string]string{"name": "alice"}},
				{"discoverable", nil},
			} {
				t.Run(login.name, func(t *testing.T) {
					for _, jar := range []struct {
						name    string
						browser *http.Client
					}{
						{"bound browser", a.browser(t)},
						{"no binding cookie", a.browser(t)},
					} {
						attacker := k.HTTP(a.base, jar.browser)
						if jar.name == "bound browser" {
							// The attacker's browser has a binding of its
							// own.
							begin(t, e, attacker, k, "/login/begin", login.body)
						}
						b, resp := begin(t, e, victim, k, "/login/begin", login.body)
						err := attacker.Do(e.ctx, "POST", "/login/finish", map[string]any{"challengeId": b.ChallengeID, "credential": resp}, nil)
						checkHTTPError(t, err, http.StatusBadRequest, "challenge_unknown")
						if tc.mod == nil {
							// A stored challenge is used up by the refused
							// finish (a token is spent only by a sign-in).
							err = victim.Do(e.ctx, "POST", "/login/finish", map[string]any{"challengeId": b.ChallengeID, "credential": resp}, nil)
							checkHTTPError(t, err, http.StatusBadRequest, "challenge_unknown")
						}
					}
				})
			}

			// A sign-up begun in one browser cannot be finished in another.
			signup := e.key(nil)
			hs := signup.HTTP(a.base, a.browser(t))
			b, resp := begin(t, e, hs, signup, "/register/begin", map[string]string{"name": "bob"})
			err = signup.HTTP(a.base, a.browser(t)).Do(e.ctx, "POST", "/register/finish", map[string]any{"challengeId": b.ChallengeID, "credential": resp}, nil)
			checkHTTPError(t, err, http.StatusBadRequest, "challenge_unknown")
			_, err = e.rp.UserByName(e.ctx, "bob")
			assert.ErrorIs(t, err, webauthn.ErrUnknownUser)
		})
	}
}

// TestHTTPCeremonyCookieFallback: a client that does not send challengeId
// finishes with the ceremony cookie, which the finish clears; a finish
// with another tab's challengeId leaves the cookie alone.
func TestHTTPCeremonyCookieFallback(t *testing.T) {
	e := newEnv(t, nil)
	a := newApp(t, e, nil)
	k := e.key(nil)
	h := k.HTTP(a.base, a.browser(t))
	_, _, err := h.Signup(e.ctx, "alice", "", "")
	require.NoError(t, err)

	b1, r1 := begin(t, e, h, k, "/login/begin", nil)
	_, r2 := begin(t, e, h, k, "/login/begin", nil) // the cookie now names this one
	require.NoError(t, h.Do(e.ctx, "POST", "/login/finish", map[string]any{"challengeId": b1.ChallengeID, "credential": r1}, nil))
	require.NoError(t, h.Do(e.ctx, "POST", "/login/finish", map[string]any{"credential": r2}, nil), "the cookie outlived the other tab's finish")
	err = h.Do(e.ctx, "POST", "/login/finish", map[string]any{"credential": r2}, nil)
	checkHTTPError(t, err, http.StatusBadRequest, "challenge_unknown")
}

// TestHTTPSignupWhileSignedIn: /register/begin with an account name while
// someone is signed in is refused, not turned into a key for the
// signed-in account.
func TestHTTPSignupWhileSignedIn(t *testing.T) {
	e := newEnv(t, nil)
	a := newApp(t, e, nil)
	h := e.key(nil).HTTP(a.base, a.browser(t))
	_, _, err := h.Signup(e.ctx, "alice", "", "")
	require.NoError(t, err)
	for _, body := range []map[string]string{{"name": "bob"}, {"displayName": "Bob"}, {"name": "alice"}} {
		err := h.Do(e.ctx, "POST", "/register/begin", body, nil)
		checkHTTPError(t, err, http.StatusConflict, "signed_in")
		var he *webauthntest.HTTPError
		require.ErrorAs(t, err, &he)
		assert.Contains(t, he.Message, "sign out")
	}
	_, _, err = h.Signup(e.ctx, "bob", "Bob", "Key")
	checkHTTPError(t, err, http.StatusConflict, "signed_in")
	keys, err := h.Keys(e.ctx)
	require.NoError(t, err)
	assert.Len(t, keys, 1)
	_, err = e.rp.UserByName(e.ctx, "bob")
	assert.ErrorIs(t, err, webauthn.ErrUnknownUser)
	// {} still adds a key to the signed-in account.
	_, err = e.key(nil).HTTP(a.base, h.Client()).Register(e.ctx, "Second")
	require.NoError(t, err)
}

// TestHTTPKeyName: the key's name is keyName; the older name is still
// taken, but not both.
func TestHTTPKeyName(t *testing.T) {
	e := newEnv(t, nil)
	a := newApp(t, e, nil)
	browser := a.browser(t)
	k := e.key(nil)
	h := k.HTTP(a.base, browser)
	_, first, err := h.Signup(e.ctx, "alice", "", "First")
	require.NoError(t, err)
	assert.Equal(t, "First", first.Name)

	k2 := e.key(nil)
	b, resp := begin(t, e, h, k2, "/register/begin", nil)
	err = h.Do(e.ctx, "POST", "/register/finish", map[string]any{"challengeId": b.ChallengeID, "keyName": "A", "name": "B", "credential": resp}, nil)
	checkHTTPError(t, err, http.StatusBadRequest, "invalid_request")
	b, resp = begin(t, e, h, k2, "/register/begin", nil)
	var f httpFinish
	require.NoError(t, h.Do(e.ctx, "POST", "/register/finish", map[string]any{"challengeId": b.ChallengeID, "name": "Old client", "credential": resp}, &f))
	assert.Equal(t, "Old client", f.Key.Name)

	var out struct{ Key webauthn.KeyJSON }
	require.NoError(t, h.Do(e.ctx, "POST", "/keys/"+f.Key.ID+"/rename", map[string]string{"name": "Renamed the old way"}, &out))
	assert.Equal(t, "Renamed the old way", out.Key.Name)
	k3, err := h.Rename(e.ctx, f.Key.ID, "Renamed")
	require.NoError(t, err)
	assert.Equal(t, "Renamed", k3.Name)
	err = h.Do(e.ctx, "POST", "/keys/"+f.Key.ID+"/rename", map[string]string{"name": "x", "keyName": "y"}, nil)
	checkHTTPError(t, err, http.StatusBadRequest, "invalid_request")
	err = h.Do(e.ctx, "POST", "/keys/"+f.Key.ID+"/rename", map[string]string{}, nil)
	checkHTTPError(t, err, http.StatusBadRequest, "invalid_request")
}

// TestHTTPCookiePath: without HandlerConfig.CookiePath, the cookies' Path
// is where the handler is mounted.
func TestHTTPCookiePath(t *testing.T) {
	e := newEnv(t, nil)
	h, err := e.rp.Handler(webauthn.HandlerConfig{
		CurrentUser: func(*http.Request) ([]byte, error) { return nil, nil },
		OnLogin:     func(http.ResponseWriter, *http.Request, *webauthn.User, *webauthn.Credential) error { return nil },
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/auth/webauthn/", http.StripPrefix("/auth/webauthn", h))
	mux.Handle("/", h)
	srv := httptest.NewTLSServer(mux)
	t.Cleanup(srv.Close)
	for _, tc := range []struct{ mount, path string }{
		{"/auth/webauthn", "/auth/webauthn/"},
		{"", "/"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			hc := *srv.Client()
			hc.Jar, _ = cookiejar.New(nil)
			req, err := http.NewRequestWithContext(e.ctx, "POST", srv.URL+tc.mount+"/login/begin", nil)
			require.NoError(t, err)
			req.Header.Set("Content-Type", "application/json")
			resp, err := hc.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode)
			names := map[string]*http.Cookie{}
			for _, c := range resp.Cookies() {
				names[c.Name] = c
			}
			for _, name := range []string{webauthn.DefaultCookieName, webauthn.DefaultBindingCookieName} {
				c := names[name]
				require.NotNil(t, c, name)
				assert.Equal(t, tc.path, c.Path, name)
				assert.True(t, c.HttpOnly && c.Secure && c.SameSite == http.SameSiteStrictMode, "%s: %+v", name, c)
			}
			assert.Zero(t, names[webauthn.DefaultBindingCookieName].MaxAge, "the binding lasts the browser session")
		})
	}
}
