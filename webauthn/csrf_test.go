package webauthn_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/webauthn"
	"github.com/fidokit/fidokit/webauthn/webauthntest"
)

// writeCounter is a Store that counts the calls of its methods that
// change something, so a test can tell that a refused request left the
// store alone: no user, key or challenge written, no challenge taken.
type writeCounter struct {
	webauthn.Store
	writes atomic.Int64
}

func (s *writeCounter) count() { s.writes.Add(1) }

func (s *writeCounter) CreateUser(ctx context.Context, u *webauthn.User) error {
	s.count()
	return s.Store.CreateUser(ctx, u)
}

func (s *writeCounter) CreateUserWithCredential(ctx context.Context, u *webauthn.User, c *webauthn.Credential) error {
	s.count()
	return s.Store.CreateUserWithCredential(ctx, u, c)
}

func (s *writeCounter) AddCredential(ctx context.Context, c *webauthn.Credential, limit int) error {
	s.count()
	return s.Store.AddCredential(ctx, c, limit)
}

func (s *writeCounter) RenameCredential(ctx context.Context, userID, id []byte, name string) error {
	s.count()
	return s.Store.RenameCredential(ctx, userID, id, name)
}

func (s *writeCounter) DeactivateCredential(ctx context.Context, userID, id []byte, at time.Time) error {
	s.count()
	return s.Store.DeactivateCredential(ctx, userID, id, at)
}

func (s *writeCounter) DeleteCredential(ctx context.Context, userID, id []byte) error {
	s.count()
	return s.Store.DeleteCredential(ctx, userID, id)
}

func (s *writeCounter) RecordSignIn(ctx context.Context, in webauthn.SignIn) error {
	s.count()
	return s.Store.RecordSignIn(ctx, in)
}

func (s *writeCounter) FlagClone(ctx context.Context, id []byte) error {
	s.count()
	return s.Store.FlagClone(ctx, id)
}

func (s *writeCounter) ClearCloneWarning(ctx context.Context, userID, id []byte) error {
	s.count()
	return s.Store.ClearCloneWarning(ctx, userID, id)
}

func (s *writeCounter) SaveChallenge(ctx context.Context, c *webauthn.Challenge, now time.Time, lim webauthn.ChallengeLimits) error {
	s.count()
	return s.Store.SaveChallenge(ctx, c, now, lim)
}

func (s *writeCounter) TakeChallenge(ctx context.Context, id string, now time.Time) (*webauthn.Challenge, error) {
	s.count()
	return s.Store.TakeChallenge(ctx, id, now)
}

func (s *writeCounter) PurgeChallenges(ctx context.Context, now time.Time) (int, error) {
	s.count()
	return s.Store.PurgeChallenges(ctx, now)
}

// countedEnv is an env whose relying party writes through a writeCounter.
func countedEnv(t *testing.T, mod func(*webauthn.Config)) (*env, *writeCounter) {
	t.Helper()
	wc := &writeCounter{}
	e := newEnv(t, func(c *webauthn.Config) {
		wc.Store = c.Store
		c.Store = wc
		if mod != nil {
			mod(c)
		}
	})
	return e, wc
}

// rawRequest sends a request as a browser (hc, with its cookies) would,
// with the given headers, and returns the status and error code.
func rawRequest(t *testing.T, hc *http.Client, method, url string, body []byte, header map[string]string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, bytes.NewReader(body))
	require.NoError(t, err)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var e struct {
		Error struct{ Code, Message string }
	}
	json.Unmarshal(data, &e)
	return resp.StatusCode, e.Error.Code, e.Error.Message
}

// TestHTTPCrossSiteRequestsRefused is issue 13 item 5: a page on another
// site cannot make the signed-in person's browser change anything. A
// form POST (no JSON content type possible), a text/plain POST (a CORS
// "simple" request, no preflight), a request whose Sec-Fetch-Site says
// cross-site or same-site (a sibling subdomain), and one with a foreign
// Origin are refused with cross_origin (403) or unsupported_media_type
// (415) on every state-changing route, with and without a body, and
// nothing in the store changes. Before, an empty-bodied form POST to
// /keys/{id}/deactivate succeeded.
func TestHTTPCrossSiteRequestsRefused(t *testing.T) {
	e, wc := countedEnv(t, nil)
	a := newApp(t, e, nil)
	browser := a.browser(t)
	k := e.key(nil)
	h := k.HTTP(a.base, browser)
	alice, key, err := h.Signup(e.ctx, "alice@example.com", "Alice", "Blue key")
	require.NoError(t, err)
	e.users = append(e.users, unb64(t, alice.ID))
	e.probe("mallory@example.com")
	// A ceremony under way in the browser, which a cross-site finish
	// must not use up.
	require.NoError(t, h.Do(e.ctx, "POST", "/login/begin", map[string]string{"name": "alice@example.com"}, nil))

	routes := []struct {
		method, path string
		body         string // a plausible JSON body, or none
	}{
		{"POST", "/register/begin", ""},
		{"POST", "/register/begin", `{"name":"mallory@example.com"}`},
		{"POST", "/register/finish", `{"name":"evil","credential":{"id":"AAAA"}}`},
		{"POST", "/login/begin", ""},
		{"POST", "/login/begin", `{"name":"alice@example.com"}`},
		{"POST", "/login/finish", `{"credential":{"id":"AAAA"}}`},
		{"POST", "/keys/" + key.ID + "/rename", `{"name":"pwned"}`},
		{"POST", "/keys/" + key.ID + "/deactivate", ""},
		{"POST", "/keys/" + key.ID + "/deactivate", "{}"},
		{"POST", "/keys/" + key.ID + "/reactivate", ""},
		{"DELETE", "/keys/" + key.ID, ""},
	}
	const (
		js   = "application/json"
		form = "application/x-www-form-urlencoded"
		evil = "https://evil.example.org"
	)
	attacks := []struct {
		name     string
		header   map[string]string
		formBody bool // the body is what a form would send
		postOnly bool // only a POST can be made so (a form, a simple request)
		code     string
	}{
		{"cross-site form POST", map[string]string{"Content-Type": form, "Sec-Fetch-Site": "cross-site", "Origin": evil},
			true, true, "cross_origin"},
		{"form POST without fetch metadata", map[string]string{"Content-Type": form}, true, true, "unsupported_media_type"},
		{"text/plain POST", map[string]string{"Content-Type": "text/plain"}, false, true, "unsupported_media_type"},
		{"text/plain POST from another site", map[string]string{"Content-Type": "text/plain;charset=UTF-8", "Sec-Fetch-Site": "cross-site", "Origin": evil},
			false, true, "cross_origin"},
		{"multipart POST", map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, false, true, "unsupported_media_type"},
		{"POST without Content-Type", nil, false, true, "unsupported_media_type"},
		{"JSON in another charset", map[string]string{"Content-Type": "application/json; charset=iso-8859-1"}, false, true, "unsupported_media_type"},
		{"Sec-Fetch-Site cross-site", map[string]string{"Content-Type": js, "Sec-Fetch-Site": "cross-site"}, false, false, "cross_origin"},
		{"Sec-Fetch-Site same-site, sibling subdomain", map[string]string{"Content-Type": js, "Sec-Fetch-Site": "same-site", "Origin": "https://blog.example.com"},
			false, false, "cross_origin"},
		{"foreign Origin", map[string]string{"Content-Type": js, "Origin": evil}, false, false, "cross_origin"},
	}
	before := e.snapshot()
	writes := wc.writes.Load()
	for _, rt := range routes {
		for _, at := range attacks {
			if at.postOnly && rt.method != "POST" {
				continue
			}
			t.Run(rt.method+" "+rt.path+" "+rt.body+"/"+at.name, func(t *testing.T) {
				body := []byte(rt.body)
				if at.formBody && len(body) > 0 {
					body = []byte("name=pwned&credential=x")
				}
				status, code, _ := rawRequest(t, browser, rt.method, a.base+rt.path, body, at.header)
				want := http.StatusForbidden
				if at.code == "unsupported_media_type" {
					want = http.StatusUnsupportedMediaType
				}
				assert.Equal(t, want, status)
				assert.Equal(t, at.code, code)
			})
		}
	}
	assert.Equal(t, writes, wc.writes.Load(), "refused requests wrote to the store")
	after := e.snapshot()
	assert.True(t, after.equal(before), "the store changed:\n%v\nwant\n%v", after, before)

	// The session and the ceremony are intact: the page itself (same
	// origin, or a configured origin on another host) still works.
	resp, err := k.Get(e.ctx, mustOptions(t, h, map[string]string{"name": "alice@example.com"}))
	require.NoError(t, err)
	require.NoError(t, h.Do(e.ctx, "POST", "/login/finish", map[string]any{"credential": json.RawMessage(resp)}, nil))
	for _, hdr := range []map[string]string{
		{"Content-Type": js, "Sec-Fetch-Site": "same-origin"},
		{"Content-Type": js, "Sec-Fetch-Site": "same-site", "Origin": testOrigin},
		{"Content-Type": js + "; charset=utf-8", "Origin": testOrigin},
		{"Content-Type": js},
	} {
		status, code, _ := rawRequest(t, browser, "POST", a.base+"/keys/"+key.ID+"/rename", []byte(`{"name":"Blue key"}`), hdr)
		assert.Equal(t, http.StatusOK, status, "rename with %v: %s", hdr, code)
	}
	status, code, _ := rawRequest(t, browser, "POST", a.base+"/keys/"+key.ID+"/deactivate", nil, map[string]string{"Content-Type": js})
	assert.Equal(t, http.StatusOK, status, "deactivate with JSON and no body: %s", code)
}

// mustOptions runs POST /login/begin and returns the options.
func mustOptions(t *testing.T, h interface {
	Do(ctx context.Context, method, path string, body, out any) error
}, body any) []byte {
	t.Helper()
	var b struct{ PublicKey json.RawMessage }
	require.NoError(t, h.Do(t.Context(), "POST", "/login/begin", body, &b))
	return b.PublicKey
}

// TestHTTPBodyChecks is issue 13 item 5 too: a body is UTF-8 JSON in
// which no object has two members of one name (as encoding/json matches
// names, ignoring case), at any depth, and nothing is taken from the
// store for a body that is refused.
func TestHTTPBodyChecks(t *testing.T) {
	e, wc := countedEnv(t, nil)
	a := newApp(t, e, nil)
	e.user("alice@example.com")
	const js = "application/json"
	for _, tc := range []struct {
		name, path, ctype, body string
		status                  int
		code                    string
	}{
		{"charset utf-8", "/login/begin", js + "; charset=utf-8", `{}`, 200, ""},
		{"charset UTF-8, quoted", "/login/begin", js + `;charset="UTF-8"`, ``, 200, ""},
		{"charset utf-16", "/login/begin", js + "; charset=utf-16", `{"name":"alice@example.com"}`, 415, "unsupported_media_type"},
		{"charset latin-1", "/login/begin", js + "; charset=iso-8859-1", `{"name":"alice@example.com"}`, 415, "unsupported_media_type"},
		{"another media type", "/login/begin", "application/jsonp", `{"name":"alice@example.com"}`, 415, "unsupported_media_type"},
		{"duplicate member", "/login/begin", js, `{"name":"nobody@example.com","name":"alice@example.com"}`, 400, "invalid_request"},
		// encoding/json would take NAME for name, and the last.
		{"duplicate member, other case", "/login/begin", js, `{"name":"alice@example.com","NAME":"nobody@example.com"}`, 400, "invalid_request"},
		{"duplicate member in the credential", "/login/finish", js,
			`{"credential":{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","clientDataJSON":"e30"}}}`, 400, "invalid_request"},
		{"duplicate member in an array", "/login/finish", js, `{"credential":{"x":[{"a":1,"A":2}]}}`, 400, "invalid_request"},
		{"invalid UTF-8", "/login/begin", js, "{\"name\":\"alice\xff@example.com\"}", 400, "invalid_request"},
		// One name in two objects is no duplicate: the body gets as far
		// as the ceremony, of which this browser has none.
		{"one name in sibling objects", "/login/finish", js, `{"credential":{"response":{"a":{"id":1},"b":{"id":2}}}}`, 400, "challenge_unknown"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := wc.writes.Load()
			status, code, _ := rawRequest(t, a.browser(t), "POST", a.base+tc.path, []byte(tc.body), map[string]string{"Content-Type": tc.ctype})
			assert.Equal(t, tc.status, status, code)
			assert.Equal(t, tc.code, code)
			if tc.status != http.StatusOK {
				assert.Equal(t, before, wc.writes.Load(), "a refused body wrote to the store")
			}
		})
	}
}

// TestHTTPErrorsDoNotEcho is issue 13 item 5 too: error bodies carry a
// fixed sentence per code, never the configured origins, the RP ID or
// go-webauthn's developer details that the error's text holds.
func TestHTTPErrorsDoNotEcho(t *testing.T) {
	e := newEnv(t, nil)
	var logged sync.Map // code → the error's text, for logs
	a := newApp(t, e, func(c *webauthn.HandlerConfig) {
		c.OnClientError = func(r *http.Request, err error) { logged.Store(webauthn.ErrorCode(err), err.Error()) }
	})
	ctx := e.ctx
	_, _, err := e.key(nil).HTTP(a.base, a.browser(t)).Signup(ctx, "alice@example.com", "Alice", "")
	require.NoError(t, err)
	msgs := map[string]string{}
	// A page on another subdomain, whose origin is not configured: the
	// error's text names the configured origins.
	_, _, err = e.keyAt("https://evil.example.com", nil).HTTP(a.base, a.browser(t)).Signup(ctx, "eve@example.com", "", "")
	var he *webauthntest.HTTPError
	require.ErrorAs(t, err, &he)
	msgs[he.Code] = he.Message
	// A response go-webauthn cannot parse: the error's text carries its
	// developer details.
	hc := a.browser(t)
	js := map[string]string{"Content-Type": "application/json"}
	status, _, _ := rawRequest(t, hc, "POST", a.base+"/login/begin", nil, js)
	require.Equal(t, http.StatusOK, status)
	_, code, msg := rawRequest(t, hc, "POST", a.base+"/login/finish",
		[]byte(`{"credential":{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AAAA","signature":"AAAA"}}}`), js)
	msgs[code] = msg
	// A name too long: the error's text says how long.
	_, code, msg = rawRequest(t, hc, "POST", a.base+"/login/begin", []byte(`{"name":"`+strings.Repeat("x", 300)+`"}`), js)
	msgs[code] = msg
	// A body the JSON decoder refuses: its text quotes the body.
	_, code, msg = rawRequest(t, hc, "POST", a.base+"/register/finish", []byte(`{"secret-looking-member":1}`), js)
	msgs[code+" (decoder)"] = msg
	for _, c := range []string{"origin_mismatch", "malformed_response", "invalid_request", "invalid_request (decoder)"} {
		require.Contains(t, msgs, c)
	}
	// The application's log has what the page does not.
	text, ok := logged.Load("origin_mismatch")
	require.True(t, ok, "OnClientError not told of origin_mismatch")
	assert.Contains(t, text, testOrigin)
	for code, msg := range msgs {
		assert.NotEmpty(t, msg, code)
		for _, leak := range []string{"example.com", "localhost", "webauthn:", "§", "xxx", "256", "secret", "(", "\"origin"} {
			assert.NotContains(t, msg, leak, "message of %s", code)
		}
	}
}
