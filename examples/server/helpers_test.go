package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/store/sqlite"
)

// testPasswordHash keeps the tests fast; the cost is recorded in each
// hash, so it changes nothing else.
var testPasswordHash = passwordHash{Time: 1, MemoryKiB: 1024, Threads: 1}

// newTestApp makes the app on a fresh SQLite store in a temporary
// directory, for origin.
func newTestApp(t testing.TB, origin string) *app {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "fidokit.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	acc, err := openAccounts(ctx, filepath.Join(dir, "accounts.db"), testPasswordHash)
	require.NoError(t, err)
	t.Cleanup(func() { acc.Close() })
	key := make([]byte, 32)
	rand.Read(key)
	keys, err := mfa.NewKeyring("k1", map[string][]byte{"k1": key})
	require.NoError(t, err)
	a, err := newApp(config{
		Origin: origin, Store: st, Accounts: acc, Keys: keys,
		RecoveryHash: mfa.RecoveryHash{Time: 1, MemoryKiB: 64, Threads: 1},
		Log:          slog.New(slog.NewTextHandler(testWriter{t}, nil)),
	})
	require.NoError(t, err)
	return a
}

// testWriter sends the app's log to the test's.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// client is a browser for unit tests: it keeps the cookies itself (Go's
// cookie jar sends Secure cookies over https only) and marks requests
// same-origin, as a browser's fetch from the page does.
type client struct {
	t       *testing.T
	h       http.Handler
	cookies map[string]*http.Cookie
	// header is added to every request.
	header http.Header
}

func newClient(t *testing.T, h http.Handler) *client {
	return &client{t: t, h: h, cookies: map[string]*http.Cookie{}, header: http.Header{"Sec-Fetch-Site": {"same-origin"}}}
}

// do sends a request and returns the response, its body read.
func (c *client) do(method, path, contentType string, body io.Reader) (*http.Response, string) {
	c.t.Helper()
	r := httptest.NewRequest(method, "http://localhost:8080"+path, body)
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for k, v := range c.header {
		r.Header[k] = v
	}
	for _, ck := range c.cookies {
		r.AddCookie(&http.Cookie{Name: ck.Name, Value: ck.Value})
	}
	w := httptest.NewRecorder()
	c.h.ServeHTTP(w, r)
	res := w.Result()
	for _, ck := range res.Cookies() {
		if ck.MaxAge < 0 || ck.Value == "" {
			delete(c.cookies, ck.Name)
		} else {
			c.cookies[ck.Name] = ck
		}
	}
	b, err := io.ReadAll(res.Body)
	require.NoError(c.t, err)
	return res, string(b)
}

func (c *client) get(path string) (*http.Response, string) { return c.do("GET", path, "", nil) }

func (c *client) form(path string, v url.Values) (*http.Response, string) {
	return c.do("POST", path, "application/x-www-form-urlencoded", strings.NewReader(v.Encode()))
}

// json sends v as JSON and decodes the answer into out (if not nil).
func (c *client) json(method, path string, v, out any) *http.Response {
	c.t.Helper()
	var body io.Reader
	if v != nil {
		b, err := json.Marshal(v)
		require.NoError(c.t, err)
		body = strings.NewReader(string(b))
	}
	res, s := c.do(method, path, "application/json", body)
	if out != nil && s != "" {
		require.NoError(c.t, json.Unmarshal([]byte(s), out), "body %q", s)
	}
	return res
}

// apiErr is the error body of the JSON routes.
type apiErr struct {
	Error struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

func (c *client) signup(name, password string) {
	c.t.Helper()
	res, body := c.form("/signup", url.Values{"name": {name}, "password": {password}, "confirm": {password}})
	require.Equal(c.t, http.StatusSeeOther, res.StatusCode, body)
}

func (c *client) signin(name, password string) *http.Response {
	c.t.Helper()
	res, _ := c.form("/signin", url.Values{"name": {name}, "password": {password}})
	return res
}

// totpCode is the code of a base32 secret (spaces allowed) at t.
func totpCode(t testing.TB, secret string, at time.Time) string {
	t.Helper()
	code, err := totp.GenerateCodeCustom(strings.ReplaceAll(secret, " ", ""), at, totp.ValidateOpts{
		Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	require.NoError(t, err)
	return code
}

// addApp enrolls an authenticator app on c's account and returns its
// secret.
func (c *client) addApp(name string) string {
	c.t.Helper()
	var begin struct {
		Enrollment struct{ ID, Secret string } `json:"enrollment"`
	}
	res := c.json("POST", "/mfa/totp/begin", map[string]string{"name": name}, &begin)
	require.Equal(c.t, http.StatusOK, res.StatusCode)
	now := time.Now()
	res = c.json("POST", "/mfa/totp/finish", map[string]string{
		"id": begin.Enrollment.ID, "code1": totpCode(c.t, begin.Enrollment.Secret, now.Add(-30*time.Second)),
		"code2": totpCode(c.t, begin.Enrollment.Secret, now),
	}, nil)
	require.Equal(c.t, http.StatusCreated, res.StatusCode)
	return begin.Enrollment.Secret
}

var (
	rowPattern   = regexp.MustCompile(`(?s)<tr class="(?:account|device)" data-name="([^"]*)"[^>]*>(.*?)</tr>`)
	eventPattern = regexp.MustCompile(`(?s)<tr class="event" data-type="([^"]*)"[^>]*>(.*?)</tr>`)
	tagPattern   = regexp.MustCompile(`<[^>]*>`)
	gapPattern   = regexp.MustCompile(`\s+`)
)

// adminRows returns the text of each table row of a page that names its
// rows with data-name (accounts, devices), by name, HTML unescaped.
func adminRows(t testing.TB, body string) map[string]string {
	t.Helper()
	rows := map[string]string{}
	for _, m := range rowPattern.FindAllStringSubmatch(body, -1) {
		rows[html.UnescapeString(m[1])] = rowText(m[2])
	}
	return rows
}

// eventRow is a line of an account's event list.
type eventRow struct{ Type, Text string }

// eventRows returns the event list of an administrator's account page,
// in the page's order.
func eventRows(t testing.TB, body string) []eventRow {
	t.Helper()
	var rows []eventRow
	for _, m := range eventPattern.FindAllStringSubmatch(body, -1) {
		rows = append(rows, eventRow{m[1], rowText(m[2])})
	}
	return rows
}

// rowText is a table row's text, tags dropped, HTML unescaped, spaces
// collapsed.
func rowText(s string) string {
	text := tagPattern.ReplaceAllString(s, " ")
	return strings.TrimSpace(gapPattern.ReplaceAllString(html.UnescapeString(text), " "))
}
