package mfa_test

import (
	"bytes"
	"context"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/webauthn"
	"github.com/fidokit/fidokit/webauthn/webauthntest"
)

// The helpers of this file carry an "http" prefix: they are the HTTP
// tests' own, independent of the other test files of the package.

// httpClock is the settable time of the relying party and the manager.
type httpClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *httpClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *httpClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// httpStart is mid-step, so that a code typed "now" is not on a step
// boundary.
var httpStart = time.Date(2026, 3, 1, 12, 0, 5, 0, time.UTC)

// httpSecret is a text that must appear in no response body, and in no
// error the application is told about, except the one response (index
// into httpApp.bodies) that hands it out; -1 for none.
type httpSecret struct {
	what, text string
	allowed    int
}

// httpApp is a web application using the handler, on loopback: its
// sessions are a header naming the signed-in user (first factor done).
// Every response body passes through it, so that Cleanup can grep them
// all for secrets.
type httpApp struct {
	t     *testing.T
	clock *httpClock
	store *mfa.MemoryStore
	rp    *webauthn.RelyingParty
	m     *mfa.Manager
	srv   *httptest.Server
	base  string
	hc    *http.Client

	mu       sync.Mutex
	bodies   [][]byte
	secrets  []httpSecret
	errs     []string // what OnError was told
	verified []*mfa.Verification
	failHook error // returned by OnVerified when set
}

// httpUserHeader names the signed-in user, in base64url.
const httpUserHeader = "X-Test-User"

func newHTTPApp(t *testing.T, mod func(*mfa.HandlerConfig)) *httpApp {
	t.Helper()
	a := &httpApp{t: t, clock: &httpClock{t: httpStart}, store: mfa.NewMemoryStore()}
	var err error
	a.rp, err = webauthn.New(webauthn.Config{
		RPID: "localhost", RPName: "Example", Origins: []string{"https://localhost"},
		Store: a.store, Now: a.clock.Now,
	})
	require.NoError(t, err)
	keys, err := mfa.NewKeyring("k1", map[string][]byte{"k1": bytes.Repeat([]byte{7}, 32)})
	require.NoError(t, err)
	a.m, err = mfa.New(mfa.Config{
		RelyingParty: a.rp, Keys: keys, Now: a.clock.Now,
		RecoveryHash: mfa.RecoveryHash{Time: 1, MemoryKiB: 64, Threads: 1},
	})
	require.NoError(t, err)
	cfg := mfa.HandlerConfig{
		CurrentUser: func(r *http.Request) ([]byte, error) {
			s := r.Header.Get(httpUserHeader)
			if s == "" {
				return nil, nil
			}
			return base64.RawURLEncoding.DecodeString(s)
		},
		OnVerified: func(w http.ResponseWriter, r *http.Request, v *mfa.Verification) error {
			a.mu.Lock()
			defer a.mu.Unlock()
			if a.failHook != nil {
				return a.failHook
			}
			a.verified = append(a.verified, v)
			// Proves the hook runs before the response is written.
			w.Header().Set("X-Test-Verified", string(v.Factor))
			return nil
		},
		CookiePath: "/mfa/",
		OnError: func(r *http.Request, err error) {
			a.mu.Lock()
			defer a.mu.Unlock()
			a.errs = append(a.errs, err.Error())
		},
	}
	if mod != nil {
		mod(&cfg)
	}
	h, err := a.m.Handler(cfg)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/mfa/", http.StripPrefix("/mfa", h))
	a.srv = httptest.NewServer(mux)
	t.Cleanup(a.srv.Close)
	a.base = a.srv.URL + "/mfa"
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	a.hc = &http.Client{Jar: jar}
	t.Cleanup(a.checkSecrets)
	return a
}

func (a *httpApp) user(name string) *webauthn.User {
	a.t.Helper()
	u, err := a.rp.CreateUser(context.Background(), name, "")
	require.NoError(a.t, err)
	return u
}

// secret registers a text that only body index allowed may contain.
func (a *httpApp) secret(what, text string, allowed int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.secrets = append(a.secrets, httpSecret{what, text, allowed})
}

func (a *httpApp) checkSecrets() {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, s := range a.secrets {
		require.NotEmpty(a.t, s.text)
		for i, b := range a.bodies {
			if i != s.allowed {
				assert.NotContains(a.t, string(b), s.text, "response %d holds %s", i, s.what)
			}
		}
		for _, e := range a.errs {
			assert.NotContains(a.t, e, s.text, "OnError was told %s", s.what)
		}
	}
}

// httpResp is one answer of the handler; index is its place in
// httpApp.bodies.
type httpResp struct {
	status int
	header http.Header
	body   []byte
	index  int
}

// do sends a request as user (nil: nobody signed in). body nil sends no
// body; a string or []byte is sent as it is; anything else as JSON. The
// body is application/json unless a modifier changes it.
func (a *httpApp) do(user *webauthn.User, method, path string, body any, mods ...func(*http.Request)) httpResp {
	a.t.Helper()
	return a.doIn(a.hc, user, method, path, body, mods...)
}

// browser is another browser: a client with cookies of its own.
func (a *httpApp) browser() *http.Client {
	a.t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(a.t, err)
	return &http.Client{Jar: jar}
}

// doIn is do in the browser hc.
func (a *httpApp) doIn(hc *http.Client, user *webauthn.User, method, path string, body any, mods ...func(*http.Request)) httpResp {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		require.NoError(a.t, err)
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, a.base+path, rd)
	require.NoError(a.t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if user != nil {
		req.Header.Set(httpUserHeader, base64.RawURLEncoding.EncodeToString(user.ID))
	}
	for _, m := range mods {
		m(req)
	}
	resp, err := hc.Do(req)
	require.NoError(a.t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(a.t, err)
	assert.Equal(a.t, "no-store", resp.Header.Get("Cache-Control"), "%s %s", method, path)
	assert.Equal(a.t, "nosniff", resp.Header.Get("X-Content-Type-Options"), "%s %s", method, path)
	if len(data) > 0 {
		assert.Equal(a.t, "application/json", resp.Header.Get("Content-Type"), "%s %s", method, path)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.bodies = append(a.bodies, data)
	return httpResp{status: resp.StatusCode, header: resp.Header, body: data, index: len(a.bodies) - 1}
}

// decode decodes a successful answer of the status wanted into out.
func (r httpResp) decode(t *testing.T, status int, out any) {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.body)
	if out != nil {
		require.NoError(t, json.Unmarshal(r.body, out), "body: %s", r.body)
	}
}

// httpError is the error body of the handler.
type httpError struct {
	Code    string    `json:"code"`
	Message string    `json:"message"`
	Until   time.Time `json:"until"`
}

// fails checks an error answer and returns its body.
func (r httpResp) fails(t *testing.T, status int, code string) httpError {
	t.Helper()
	require.Equal(t, status, r.status, "body: %s", r.body)
	var e struct {
		Error httpError `json:"error"`
	}
	dec := json.NewDecoder(bytes.NewReader(r.body))
	dec.DisallowUnknownFields()
	require.NoError(t, dec.Decode(&e), "body: %s", r.body)
	assert.Equal(t, code, e.Error.Code, "body: %s", r.body)
	assert.NotEmpty(t, e.Error.Message)
	assert.NotContains(t, e.Error.Message, "mfa:", "the message is for people, not an error's text")
	return e.Error
}

// httpEnrollment is the enrollment of a begin response.
type httpEnrollment struct {
	ID      string    `json:"id"`
	Type    string    `json:"type"`
	Name    string    `json:"name"`
	Serial  string    `json:"serial"`
	Secret  string    `json:"secret"`
	URI     string    `json:"uri"`
	QR      string    `json:"qr"`
	Digits  int       `json:"digits"`
	Period  int       `json:"period"`
	Expires time.Time `json:"expires"`
}

// httpTOTP computes a device's codes independently of the package, with
// pquerna/otp, as an app or a token does.
type httpTOTP struct {
	secret string // base32
	opts   totp.ValidateOpts
}

func httpScan(t testing.TB, uri string) *httpTOTP {
	t.Helper()
	k, err := otp.NewKeyFromURL(uri)
	require.NoError(t, err)
	return &httpTOTP{secret: k.Secret(), opts: totp.ValidateOpts{Period: uint(k.Period()), Digits: k.Digits(), Algorithm: k.Algorithm()}}
}

func httpToken(seed []byte) *httpTOTP {
	return &httpTOTP{
		secret: base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(seed),
		opts:   totp.ValidateOpts{Period: 30, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1},
	}
}

func (p *httpTOTP) code(t testing.TB, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCodeCustom(p.secret, at, p.opts)
	require.NoError(t, err)
	return c
}

// wrong is a well-formed code that no step near at has.
func (p *httpTOTP) wrong(t testing.TB, at time.Time) string {
	t.Helper()
	near := map[string]bool{}
	for s := -12; s <= 12; s++ {
		near[p.code(t, at.Add(time.Duration(s)*30*time.Second))] = true
	}
	for n := 0; ; n++ {
		c := fmt.Sprintf("%06d", (123456+n*7919)%1000000)
		if !near[c] {
			return c
		}
	}
}

// enrollApp enrolls an authenticator app over HTTP: begin, scan, two
// consecutive codes (the clock moves a step between them).
func (a *httpApp) enrollApp(t *testing.T, u *webauthn.User, name string) (mfa.DeviceJSON, *httpTOTP) {
	t.Helper()
	var begin struct{ Enrollment httpEnrollment }
	r := a.do(u, "POST", "/totp/begin", map[string]string{"name": name})
	r.decode(t, http.StatusOK, &begin)
	a.secret("the app secret", begin.Enrollment.Secret, r.index)
	a.secret("the app secret, ungrouped", strings.ReplaceAll(begin.Enrollment.Secret, " ", ""), r.index)
	ph := httpScan(t, begin.Enrollment.URI)
	c1 := ph.code(t, a.clock.Now())
	a.clock.Add(30 * time.Second)
	c2 := ph.code(t, a.clock.Now())
	var fin struct{ Device mfa.DeviceJSON }
	a.do(u, "POST", "/totp/finish", map[string]string{"id": begin.Enrollment.ID, "code1": c1, "code2": c2}).decode(t, http.StatusCreated, &fin)
	return fin.Device, ph
}

func (a *httpApp) devices(t *testing.T, u *webauthn.User) ([]mfa.DeviceJSON, mfa.FactorsJSON) {
	t.Helper()
	var out struct {
		Devices []mfa.DeviceJSON
		Factors mfa.FactorsJSON
	}
	a.do(u, "GET", "/devices", nil).decode(t, http.StatusOK, &out)
	return out.Devices, out.Factors
}

func TestHTTPAppEnrollment(t *testing.T) {
	a := newHTTPApp(t, nil)
	alice := a.user("alice@example.com")

	r := a.do(alice, "POST", "/totp/begin", map[string]string{"name": "Phone"})
	var begin struct{ Enrollment httpEnrollment }
	r.decode(t, http.StatusOK, &begin)
	e := begin.Enrollment
	a.secret("the app secret", e.Secret, r.index)
	a.secret("the app secret, ungrouped", strings.ReplaceAll(e.Secret, " ", ""), r.index)
	assert.Equal(t, "authenticator_app", e.Type)
	assert.Equal(t, "Phone", e.Name)
	assert.Regexp(t, `^([A-Z2-7]{4} )+[A-Z2-7]{1,4}$`, e.Secret, "grouped base32")
	assert.True(t, strings.HasPrefix(e.URI, "otpauth://totp/"), e.URI)
	assert.True(t, strings.HasPrefix(e.QR, "data:image/png;base64,"))
	png, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(e.QR, "data:image/png;base64,"))
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(png, []byte("\x89PNG")))
	assert.Equal(t, 6, e.Digits)
	assert.Equal(t, 30, e.Period)
	assert.Equal(t, httpStart.Add(mfa.DefaultEnrollmentTimeout), e.Expires)
	assert.Contains(t, string(r.body), `"expires":"2026-03-01T12:10:05Z"`, "RFC 3339 in UTC")

	ph := httpScan(t, e.URI)
	assert.Equal(t, strings.ReplaceAll(e.Secret, " ", ""), ph.secret, "the secret shown is the one in the URI")
	c1 := ph.code(t, a.clock.Now())
	a.clock.Add(30 * time.Second)
	c2 := ph.code(t, a.clock.Now())
	finish := func(c1, c2 string) httpResp {
		return a.do(alice, "POST", "/totp/finish", map[string]string{"id": e.ID, "code1": c1, "code2": c2})
	}

	t.Run("one wrong code", func(t *testing.T) {
		finish(c1, ph.wrong(t, a.clock.Now())).fails(t, http.StatusBadRequest, "invalid_code")
	})
	t.Run("same code twice", func(t *testing.T) {
		finish(c2, c2).fails(t, http.StatusBadRequest, "not_consecutive")
	})
	t.Run("codes in the wrong order", func(t *testing.T) {
		finish(c2, c1).fails(t, http.StatusBadRequest, "not_consecutive")
	})
	t.Run("not a code", func(t *testing.T) {
		finish("12ab56", c2).fails(t, http.StatusBadRequest, "malformed_code")
	})
	t.Run("unknown enrollment", func(t *testing.T) {
		a.do(alice, "POST", "/totp/finish", map[string]string{"id": "otp_AAAAAAAAAAAAAAAAAAAAAA", "code1": c1, "code2": c2}).
			fails(t, http.StatusNotFound, "enrollment_unknown")
	})

	var fin struct{ Device mfa.DeviceJSON }
	r = finish(c1, c2)
	r.decode(t, http.StatusCreated, &fin)
	d := fin.Device
	assert.Equal(t, e.ID, d.ID, "the device keeps its enrollment's ID")
	assert.Equal(t, mfa.AuthenticatorApp, d.Type)
	assert.Equal(t, "Phone", d.Name)
	assert.True(t, d.Active)
	assert.Equal(t, httpStart.Add(30*time.Second), d.Created)
	assert.NotContains(t, string(r.body), "lastUsed", "never used")
	assert.NotContains(t, string(r.body), "deactivated")
	assert.NotContains(t, string(r.body), "serial")

	t.Run("finished once", func(t *testing.T) {
		finish(c1, c2).fails(t, http.StatusNotFound, "enrollment_unknown")
	})
	ds, f := a.devices(t, alice)
	require.Len(t, ds, 1)
	assert.Equal(t, d, ds[0])
	assert.Equal(t, mfa.FactorsJSON{Apps: 1, Enabled: true}, f)

	t.Run("expired", func(t *testing.T) {
		var b struct{ Enrollment httpEnrollment }
		r := a.do(alice, "POST", "/totp/begin", nil)
		r.decode(t, http.StatusOK, &b)
		a.secret("the second app secret", b.Enrollment.Secret, r.index)
		assert.Equal(t, "Authenticator app", b.Enrollment.Name, "no body: the default name")
		p := httpScan(t, b.Enrollment.URI)
		a.clock.Add(mfa.DefaultEnrollmentTimeout)
		c1 := p.code(t, a.clock.Now())
		a.clock.Add(30 * time.Second)
		a.do(alice, "POST", "/totp/finish", map[string]string{"id": b.Enrollment.ID, "code1": c1, "code2": p.code(t, a.clock.Now())}).
			fails(t, http.StatusGone, "enrollment_expired")
	})
}

func TestHTTPVerifyTOTP(t *testing.T) {
	a := newHTTPApp(t, nil)
	alice := a.user("alice@example.com")
	d, ph := a.enrollApp(t, alice, "Phone")

	// The second enrollment code is spent; the next step's code is not.
	a.do(alice, "POST", "/verify/totp", map[string]string{"code": ph.code(t, a.clock.Now())}).fails(t, http.StatusConflict, "code_reused")
	a.clock.Add(30 * time.Second)
	code := ph.code(t, a.clock.Now())
	r := a.do(alice, "POST", "/verify/totp", map[string]string{"code": code[:3] + " " + code[3:]})
	var out struct{ Verification mfa.VerificationJSON }
	r.decode(t, http.StatusOK, &out)
	assert.Equal(t, mfa.VerificationJSON{Factor: mfa.FactorTOTP, DeviceID: d.ID, At: a.clock.Now()}, out.Verification)
	assert.Equal(t, "totp", r.header.Get("X-Test-Verified"), "OnVerified ran before the response")
	assert.NotContains(t, string(r.body), "recoveryCodesLeft")
	require.Len(t, a.verified, 1)
	assert.Equal(t, alice.ID, a.verified[0].UserID)

	e := a.do(alice, "POST", "/verify/totp", map[string]string{"code": code}).fails(t, http.StatusConflict, "code_reused")
	assert.Equal(t, "That code has already been used — wait for the next one.", e.Message)
	e = a.do(alice, "POST", "/verify/totp", map[string]string{"code": ph.wrong(t, a.clock.Now())}).fails(t, http.StatusBadRequest, "invalid_code")
	assert.Equal(t, "That code is not right. Check the device and try again.", e.Message)
	a.do(alice, "POST", "/verify/totp", map[string]string{"code": "12345"}).fails(t, http.StatusBadRequest, "malformed_code")
	assert.Len(t, a.verified, 1, "OnVerified is called only for a pass")

	bob := a.user("bob@example.com")
	a.do(bob, "POST", "/verify/totp", map[string]string{"code": code}).fails(t, http.StatusNotFound, "not_enrolled")

	ds, _ := a.devices(t, alice)
	require.Len(t, ds, 1)
	assert.Equal(t, a.clock.Now(), ds[0].LastUsed)
}

func TestHTTPLockout(t *testing.T) {
	a := newHTTPApp(t, nil)
	alice := a.user("alice@example.com")
	_, ph := a.enrollApp(t, alice, "Phone")
	a.clock.Add(30 * time.Second)
	wrong := ph.wrong(t, a.clock.Now())
	for i := 1; i < mfa.DefaultLockPolicy.Limit; i++ {
		a.do(alice, "POST", "/verify/totp", map[string]string{"code": wrong}).fails(t, http.StatusBadRequest, "invalid_code")
	}
	// The wrong code that reaches the limit locks at once.
	r := a.do(alice, "POST", "/verify/totp", map[string]string{"code": wrong})
	e := r.fails(t, http.StatusTooManyRequests, "locked")
	until := a.clock.Now().Add(mfa.DefaultLockPolicy.Base)
	assert.Equal(t, until, e.Until)
	assert.Equal(t, "60", r.header.Get("Retry-After"))
	assert.Equal(t, "Too many wrong codes. Try again after 2026-03-01 12:02:05 UTC.", e.Message)

	// Locked: even the right code is refused, with less time to wait.
	a.clock.Add(20 * time.Second)
	r = a.do(alice, "POST", "/verify/totp", map[string]string{"code": ph.code(t, a.clock.Now())})
	e = r.fails(t, http.StatusTooManyRequests, "locked")
	assert.Equal(t, until, e.Until)
	assert.Equal(t, "40", r.header.Get("Retry-After"))

	a.clock.Add(41 * time.Second)
	a.do(alice, "POST", "/verify/totp", map[string]string{"code": ph.code(t, a.clock.Now())}).decode(t, http.StatusOK, nil)
}

func TestHTTPRecoveryCodes(t *testing.T) {
	a := newHTTPApp(t, nil)
	alice := a.user("alice@example.com")

	left := func() int {
		var out struct{ Left int }
		a.do(alice, "GET", "/recovery-codes", nil).decode(t, http.StatusOK, &out)
		return out.Left
	}
	assert.Equal(t, 0, left())
	a.do(alice, "POST", "/verify/recovery-code", map[string]string{"code": "AAAA-BBBB-CCCC-DDDD"}).fails(t, http.StatusNotFound, "no_recovery_codes")

	var set struct {
		Codes   []string
		Created time.Time
	}
	r := a.do(alice, "POST", "/recovery-codes", nil)
	r.decode(t, http.StatusCreated, &set)
	require.Len(t, set.Codes, mfa.RecoveryCodeCount)
	assert.Equal(t, httpStart, set.Created)
	for _, c := range set.Codes {
		assert.Regexp(t, `^[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}$`, c)
		a.secret("a recovery code", c, r.index)
		a.secret("a recovery code, unformatted", strings.ReplaceAll(c, "-", ""), r.index)
	}
	assert.Equal(t, 10, left())

	r = a.do(alice, "POST", "/verify/recovery-code", map[string]string{"code": strings.ToLower(set.Codes[3])})
	var out struct{ Verification mfa.VerificationJSON }
	r.decode(t, http.StatusOK, &out)
	nine := 9
	assert.Equal(t, mfa.VerificationJSON{Factor: mfa.FactorRecoveryCode, At: httpStart, RecoveryCodesLeft: &nine}, out.Verification)
	assert.Equal(t, "recovery_code", r.header.Get("X-Test-Verified"))
	assert.Equal(t, 9, left())

	a.do(alice, "POST", "/verify/recovery-code", map[string]string{"code": set.Codes[3]}).fails(t, http.StatusConflict, "code_reused")
	a.do(alice, "POST", "/verify/recovery-code", map[string]string{"code": "not a code"}).fails(t, http.StatusBadRequest, "malformed_code")
	a.do(alice, "POST", "/verify/recovery-code", map[string]string{"code": "0000-0000-0000-0000"}).fails(t, http.StatusBadRequest, "invalid_code")
	assert.Equal(t, 9, left())

	// A new set voids the old one.
	var set2 struct{ Codes []string }
	r = a.do(alice, "POST", "/recovery-codes", "{}")
	r.decode(t, http.StatusCreated, &set2)
	for _, c := range set2.Codes {
		a.secret("a recovery code of the second set", c, r.index)
	}
	a.do(alice, "POST", "/verify/recovery-code", map[string]string{"code": set.Codes[4]}).fails(t, http.StatusBadRequest, "invalid_code")
	assert.Equal(t, 10, left())
	_, f := a.devices(t, alice)
	assert.Equal(t, mfa.FactorsJSON{RecoveryCodes: 10}, f, "recovery codes alone do not enable MFA")
}

// httpPSKC is a plain-value PSKC seed file (RFC 6030 §4) for one TOTP
// token.
func httpPSKC(serial string, seed []byte) []byte {
	return fmt.Appendf(nil, `<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc"><KeyPackage><DeviceInfo><SerialNo>%s</SerialNo></DeviceInfo><Key Id="1" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp"><AlgorithmParameters><ResponseFormat Length="6" Encoding="DECIMAL"/></AlgorithmParameters><Data><Secret><PlainValue>%s</PlainValue></Secret><TimeInterval><PlainValue>30</PlainValue></TimeInterval></Data></Key></KeyPackage></KeyContainer>`,
		serial, base64.StdEncoding.EncodeToString(seed))
}

func TestHTTPHardwareToken(t *testing.T) {
	a := newHTTPApp(t, nil)
	alice := a.user("alice@example.com")
	bob := a.user("bob@example.com")

	// finish completes a token's enrollment with codes from a token whose
	// clock runs drift steps ahead.
	finish := func(t *testing.T, u *webauthn.User, id string, tok *httpTOTP, drift int) httpResp {
		t.Helper()
		at := a.clock.Now().Add(time.Duration(drift) * 30 * time.Second)
		return a.do(u, "POST", "/totp/finish", map[string]string{"id": id, "code1": tok.code(t, at.Add(-30*time.Second)), "code2": tok.code(t, at)})
	}
	checkBegin := func(t *testing.T, r httpResp, serial string) httpEnrollment {
		t.Helper()
		var raw struct{ Enrollment map[string]any }
		r.decode(t, http.StatusOK, &raw)
		for _, k := range []string{"secret", "uri", "qr"} {
			assert.NotContains(t, raw.Enrollment, k, "a token's seed came from its vendor: nothing to show")
		}
		var b struct{ Enrollment httpEnrollment }
		r.decode(t, http.StatusOK, &b)
		assert.Equal(t, "hardware_token", b.Enrollment.Type)
		assert.Equal(t, serial, b.Enrollment.Serial)
		return b.Enrollment
	}

	t.Run("secret", func(t *testing.T) {
		seed := []byte("token seed 0001 twenty")
		tok := httpToken(seed)
		a.secret("the token secret", tok.secret, -1)
		r := a.do(alice, "POST", "/token/begin", map[string]string{"name": "Fob", "serial": "T-1001", "secret": strings.ToLower(tok.secret)})
		e := checkBegin(t, r, "T-1001")
		assert.Equal(t, "Fob", e.Name)
		var fin struct{ Device mfa.DeviceJSON }
		finish(t, alice, e.ID, tok, 4).decode(t, http.StatusCreated, &fin)
		assert.Equal(t, mfa.HardwareToken, fin.Device.Type)
		assert.Equal(t, "T-1001", fin.Device.Serial)

		// The recorded drift carries over to sign-in: a code four steps
		// ahead, then the next, pass.
		a.clock.Add(30 * time.Second)
		a.do(alice, "POST", "/verify/totp", map[string]string{"code": tok.code(t, a.clock.Now().Add(4*30*time.Second))}).decode(t, http.StatusOK, nil)

		// The token's clock drifts further; a resync measures it again.
		a.clock.Add(30 * time.Second)
		at := a.clock.Now().Add(8 * 30 * time.Second)
		a.do(alice, "POST", "/verify/totp", map[string]string{"code": tok.code(t, at)}).fails(t, http.StatusBadRequest, "invalid_code")
		path := "/devices/" + fin.Device.ID + "/resync"
		a.do(alice, "POST", path, map[string]string{"code1": tok.code(t, at), "code2": tok.code(t, at)}).fails(t, http.StatusBadRequest, "not_consecutive")
		var rs struct{ Device mfa.DeviceJSON }
		a.do(alice, "POST", path, map[string]string{"code1": tok.code(t, at.Add(-30*time.Second)), "code2": tok.code(t, at)}).decode(t, http.StatusOK, &rs)
		assert.Equal(t, fin.Device.ID, rs.Device.ID)
		a.clock.Add(30 * time.Second)
		a.do(alice, "POST", "/verify/totp", map[string]string{"code": tok.code(t, a.clock.Now().Add(8*30*time.Second))}).decode(t, http.StatusOK, nil)

		// Another account cannot take the same token.
		e = checkBegin(t, a.do(bob, "POST", "/token/begin", map[string]string{"serial": "T-1001", "secret": tok.secret}), "T-1001")
		assert.Equal(t, "Hardware token T-1001", e.Name)
		finish(t, bob, e.ID, tok, 8).fails(t, http.StatusConflict, "serial_taken")
	})

	t.Run("seed file", func(t *testing.T) {
		seed := []byte("token seed 0002 from a PSKC file")
		tok := httpToken(seed)
		a.secret("the seed file's secret", base64.StdEncoding.EncodeToString(seed), -1)
		a.secret("the seed file's secret in base32", tok.secret, -1)
		doc := httpPSKC("T-2002", seed)
		r := a.do(alice, "POST", "/token/begin", map[string]any{"name": "Fob 2", "serial": "T-2002", "seedFile": doc})
		e := checkBegin(t, r, "T-2002")
		var fin struct{ Device mfa.DeviceJSON }
		finish(t, alice, e.ID, tok, -2).decode(t, http.StatusCreated, &fin)
		assert.Equal(t, "T-2002", fin.Device.Serial)
		assert.Equal(t, "Fob 2", fin.Device.Name)

		for _, tc := range []struct {
			name   string
			body   map[string]any
			status int
			code   string
		}{
			{"not XML", map[string]any{"serial": "T-2002", "seedFile": []byte("not a seed file")}, http.StatusBadRequest, "seed_file_malformed"},
			{"serial not in the file", map[string]any{"serial": "T-9999", "seedFile": doc}, http.StatusNotFound, "serial_not_found"},
			{"preSharedKey not hex", map[string]any{"serial": "T-2002", "seedFile": doc, "preSharedKey": "xyz"}, http.StatusBadRequest, "invalid_request"},
			{"seedFile not base64", map[string]any{"serial": "T-2002", "seedFile": "!!!"}, http.StatusBadRequest, "invalid_request"},
			{"file and secret", map[string]any{"serial": "T-2002", "seedFile": doc, "secret": tok.secret}, http.StatusBadRequest, "invalid_request"},
			{"neither", map[string]any{"serial": "T-2002"}, http.StatusBadRequest, "invalid_request"},
			{"no serial", map[string]any{"seedFile": doc}, http.StatusBadRequest, "invalid_request"},
			{"secret too short", map[string]any{"serial": "T-3", "secret": "JBSWY3DP"}, http.StatusBadRequest, "invalid_secret"},
			{"secret not base32", map[string]any{"serial": "T-3", "secret": "0189!!!!0189!!!!0189!!!!0189"}, http.StatusBadRequest, "invalid_secret"},
			{"nine digits", map[string]any{"serial": "T-3", "secret": tok.secret, "digits": 9}, http.StatusBadRequest, "not_totp"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				a.do(alice, "POST", "/token/begin", tc.body).fails(t, tc.status, tc.code)
			})
		}
		t.Run("larger than the usual limit", func(t *testing.T) {
			// A seed file may be larger than MaxBodyBytes...
			pad := strings.Repeat("<!-- padding -->", 100<<10/16)
			big := strings.Replace(string(doc), "<KeyPackage>", pad+"<KeyPackage>", 1)
			require.Greater(t, len(big), mfa.DefaultMaxBodyBytes)
			checkBegin(t, a.do(alice, "POST", "/token/begin", map[string]any{"serial": "T-2002", "seedFile": []byte(big)}), "T-2002")
			// ... but not larger than MaxSeedFileBytes.
			huge := bytes.Repeat([]byte{' '}, mfa.DefaultMaxSeedFileBytes+1)
			a.do(alice, "POST", "/token/begin", map[string]any{"serial": "T-2002", "seedFile": huge}).fails(t, http.StatusRequestEntityTooLarge, "request_too_large")
		})
	})
}

func TestHTTPDeviceLifecycle(t *testing.T) {
	a := newHTTPApp(t, nil)
	alice := a.user("alice@example.com")
	bob := a.user("bob@example.com")
	d, ph := a.enrollApp(t, alice, "Phone")
	devPath := "/devices/" + d.ID

	var out struct{ Device mfa.DeviceJSON }
	a.do(alice, "POST", devPath+"/rename", map[string]string{"name": "Work phone"}).decode(t, http.StatusOK, &out)
	assert.Equal(t, "Work phone", out.Device.Name)
	a.do(alice, "POST", devPath+"/rename", map[string]string{"name": ""}).fails(t, http.StatusBadRequest, "invalid_request")
	a.do(alice, "POST", devPath+"/rename", "{}").fails(t, http.StatusBadRequest, "invalid_request")
	a.do(alice, "POST", devPath+"/rename", map[string]string{"name": "bad\x00name"}).fails(t, http.StatusBadRequest, "invalid_request")
	a.do(bob, "POST", devPath+"/rename", map[string]string{"name": "Mine now"}).fails(t, http.StatusNotFound, "device_unknown")
	a.do(alice, "POST", "/devices/nonsense/rename", map[string]string{"name": "x"}).fails(t, http.StatusNotFound, "device_unknown")

	a.do(alice, "POST", devPath+"/deactivate", nil).decode(t, http.StatusOK, &out)
	assert.False(t, out.Device.Active)
	assert.Equal(t, a.clock.Now(), out.Device.Deactivated)
	_, f := a.devices(t, alice)
	assert.Equal(t, mfa.FactorsJSON{}, f)

	// A deactivated device's codes are refused.
	a.clock.Add(30 * time.Second)
	code := ph.code(t, a.clock.Now())
	a.do(alice, "POST", "/verify/totp", map[string]string{"code": code}).fails(t, http.StatusNotFound, "not_enrolled")
	a.do(alice, "POST", devPath+"/resync", map[string]string{"code1": ph.code(t, a.clock.Now().Add(-30*time.Second)), "code2": code}).
		fails(t, http.StatusForbidden, "device_deactivated")

	a.do(alice, "POST", devPath+"/reactivate", "{}").decode(t, http.StatusOK, &out)
	assert.True(t, out.Device.Active)
	a.do(alice, "POST", "/verify/totp", map[string]string{"code": code}).decode(t, http.StatusOK, nil)

	a.do(bob, "DELETE", devPath, nil).fails(t, http.StatusNotFound, "device_unknown")
	r := a.do(alice, "DELETE", devPath, nil)
	assert.Equal(t, http.StatusNoContent, r.status)
	assert.Empty(t, r.body)
	ds, _ := a.devices(t, alice)
	assert.Empty(t, ds)
	a.do(alice, "DELETE", devPath, nil).fails(t, http.StatusNotFound, "device_unknown")
	a.do(alice, "POST", devPath+"/deactivate", nil).fails(t, http.StatusNotFound, "device_unknown")
}

func TestHTTPAdmin(t *testing.T) {
	paths := func(bob *webauthn.User, devID string) []struct{ method, path, body string } {
		u := "/users/" + base64.RawURLEncoding.EncodeToString(bob.ID)
		return []struct{ method, path, body string }{
			{"GET", u + "/devices", ""},
			{"POST", u + "/devices/" + devID + "/deactivate", ""},
			{"POST", u + "/devices/" + devID + "/reactivate", ""},
			{"DELETE", u + "/devices/" + devID, ""},
			{"POST", u + "/unlock", `{"factor":"totp"}`},
		}
	}

	t.Run("nil Authorize", func(t *testing.T) {
		a := newHTTPApp(t, nil)
		alice, bob := a.user("alice@example.com"), a.user("bob@example.com")
		d, _ := a.enrollApp(t, bob, "Bob's phone")
		for _, p := range paths(bob, d.ID) {
			var body any
			if p.body != "" {
				body = p.body
			}
			a.do(alice, p.method, p.path, body).fails(t, http.StatusForbidden, "forbidden")
			// Not even for one's own account.
			a.do(bob, p.method, p.path, body).fails(t, http.StatusForbidden, "forbidden")
			a.do(nil, p.method, p.path, body).fails(t, http.StatusUnauthorized, "unauthenticated")
		}
		ds, _ := a.devices(t, bob)
		assert.Len(t, ds, 1)
	})

	t.Run("Authorize", func(t *testing.T) {
		var admin []byte
		a := newHTTPApp(t, func(c *mfa.HandlerConfig) {
			c.Authorize = func(r *http.Request, actor, target []byte) error {
				if !bytes.Equal(actor, admin) {
					return errors.New("not an administrator")
				}
				return nil
			}
		})
		alice, bob := a.user("alice@example.com"), a.user("bob@example.com")
		admin = alice.ID
		d, ph := a.enrollApp(t, bob, "Bob's phone")
		for _, p := range paths(alice, "otp_AAAAAAAAAAAAAAAAAAAAAA") {
			var body any
			if p.body != "" {
				body = p.body
			}
			a.do(bob, p.method, p.path, body).fails(t, http.StatusForbidden, "forbidden")
		}

		u := "/users/" + base64.RawURLEncoding.EncodeToString(bob.ID)
		var list struct {
			Devices []mfa.DeviceJSON
			Factors mfa.FactorsJSON
		}
		a.do(alice, "GET", u+"/devices", nil).decode(t, http.StatusOK, &list)
		require.Len(t, list.Devices, 1)
		assert.Equal(t, d, list.Devices[0])
		assert.Equal(t, mfa.FactorsJSON{Apps: 1, Enabled: true}, list.Factors)

		var out struct{ Device mfa.DeviceJSON }
		a.do(alice, "POST", u+"/devices/"+d.ID+"/deactivate", nil).decode(t, http.StatusOK, &out)
		assert.False(t, out.Device.Active)
		a.do(alice, "POST", u+"/devices/"+d.ID+"/reactivate", nil).decode(t, http.StatusOK, &out)
		assert.True(t, out.Device.Active)

		// Bob locks himself out; the administrator unlocks him.
		a.clock.Add(30 * time.Second)
		for range mfa.DefaultLockPolicy.Limit {
			a.do(bob, "POST", "/verify/totp", map[string]string{"code": ph.wrong(t, a.clock.Now())})
		}
		a.do(bob, "POST", "/verify/totp", map[string]string{"code": ph.code(t, a.clock.Now())}).fails(t, http.StatusTooManyRequests, "locked")
		a.do(alice, "POST", u+"/unlock", map[string]string{"factor": "sms"}).fails(t, http.StatusBadRequest, "invalid_request")
		a.do(alice, "POST", u+"/unlock", nil).fails(t, http.StatusBadRequest, "invalid_request")
		r := a.do(alice, "POST", u+"/unlock", map[string]string{"factor": "totp"})
		assert.Equal(t, http.StatusNoContent, r.status)
		a.do(bob, "POST", "/verify/totp", map[string]string{"code": ph.code(t, a.clock.Now())}).decode(t, http.StatusOK, nil)

		a.do(alice, "DELETE", u+"/devices/"+d.ID, nil)
		ds, _ := a.devices(t, bob)
		assert.Empty(t, ds)
		a.do(alice, "DELETE", u+"/devices/"+d.ID, nil).fails(t, http.StatusNotFound, "device_unknown")

		a.do(alice, "GET", "/users/not*base64/devices", nil).fails(t, http.StatusBadRequest, "invalid_request")
		a.do(alice, "GET", "/users/"+base64.RawURLEncoding.EncodeToString([]byte("nobody"))+"/devices", nil).fails(t, http.StatusNotFound, "user_unknown")
	})
}

func TestHTTPRequestRefusals(t *testing.T) {
	a := newHTTPApp(t, nil)
	alice := a.user("alice@example.com")
	d, _ := a.enrollApp(t, alice, "Phone")

	t.Run("unauthenticated", func(t *testing.T) {
		for _, p := range []struct{ method, path string }{
			{"POST", "/totp/begin"}, {"POST", "/totp/finish"}, {"POST", "/token/begin"},
			{"GET", "/devices"}, {"POST", "/devices/" + d.ID + "/rename"}, {"DELETE", "/devices/" + d.ID},
			{"POST", "/recovery-codes"}, {"GET", "/recovery-codes"},
			{"POST", "/verify/totp"}, {"POST", "/verify/recovery-code"},
			{"POST", "/verify/key/begin"}, {"POST", "/verify/key/finish"},
			{"POST", "/keys/begin"}, {"POST", "/keys/finish"},
		} {
			a.do(nil, p.method, p.path, `{}`).fails(t, http.StatusUnauthorized, "unauthenticated")
		}
		ds, _ := a.devices(t, alice)
		assert.Len(t, ds, 1)
	})
	t.Run("method not allowed", func(t *testing.T) {
		for _, tc := range []struct{ method, path, allow string }{
			{"GET", "/totp/begin", "POST"},
			{"PUT", "/recovery-codes", "POST, GET, HEAD"},
			{"POST", "/devices", "GET, HEAD"},
			{"GET", "/devices/" + d.ID, "DELETE"},
			{"DELETE", "/devices/" + d.ID + "/rename", "POST"},
		} {
			r := a.do(alice, tc.method, tc.path, nil)
			r.fails(t, http.StatusMethodNotAllowed, "method_not_allowed")
			assert.Equal(t, tc.allow, r.header.Get("Allow"), tc.path)
		}
	})
	t.Run("not found", func(t *testing.T) {
		a.do(alice, "GET", "/nothing", nil).fails(t, http.StatusNotFound, "not_found")
		a.do(alice, "POST", "/verify/sms", `{"code":"123456"}`).fails(t, http.StatusNotFound, "not_found")
	})
	t.Run("too large", func(t *testing.T) {
		body := `{"code":"` + strings.Repeat("1", mfa.DefaultMaxBodyBytes) + `"}`
		a.do(alice, "POST", "/verify/totp", body).fails(t, http.StatusRequestEntityTooLarge, "request_too_large")
	})
	t.Run("not JSON", func(t *testing.T) {
		for _, ct := range []string{"text/plain", "", "application/x-www-form-urlencoded"} {
			a.do(alice, "POST", "/verify/totp", `{"code":"123456"}`, func(r *http.Request) { r.Header.Set("Content-Type", ct) }).
				fails(t, http.StatusUnsupportedMediaType, "unsupported_media_type")
		}
		a.do(alice, "POST", "/verify/totp", `{"code":"123456"}`, func(r *http.Request) { r.Header.Set("Content-Type", "application/json; charset=utf-8") }).
			fails(t, http.StatusBadRequest, "invalid_code")
	})
	t.Run("bad bodies", func(t *testing.T) {
		for _, body := range []string{
			`{"code":"123456","extra":1}`,
			`{"code":"123456"} {}`,
			`{"code":123456}`,
			`[]`,
			`{"code":`,
		} {
			a.do(alice, "POST", "/verify/totp", body).fails(t, http.StatusBadRequest, "invalid_request")
		}
		a.do(alice, "POST", "/verify/totp", nil).fails(t, http.StatusBadRequest, "invalid_request")
		a.do(alice, "POST", "/totp/begin", `{"name":"x","secret":"JBSWY3DPEHPK3PXP"}`).fails(t, http.StatusBadRequest, "invalid_request")
	})
	t.Run("cross origin", func(t *testing.T) {
		crossSite := func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }
		otherOrigin := func(r *http.Request) { r.Header.Set("Origin", "https://evil.example") }
		for _, mod := range []func(*http.Request){crossSite, otherOrigin} {
			a.do(alice, "POST", "/recovery-codes", nil, mod).fails(t, http.StatusForbidden, "cross_origin")
			a.do(alice, "DELETE", "/devices/"+d.ID, nil, mod).fails(t, http.StatusForbidden, "cross_origin")
			a.do(alice, "POST", "/verify/totp", `{"code":"123456"}`, mod).fails(t, http.StatusForbidden, "cross_origin")
			// Reading is not a change.
			a.do(alice, "GET", "/devices", nil, mod).decode(t, http.StatusOK, nil)
		}
		sameOrigin := func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "same-origin") }
		a.do(alice, "POST", "/devices/"+d.ID+"/rename", `{"name":"Phone"}`, sameOrigin).decode(t, http.StatusOK, nil)
		ds, f := a.devices(t, alice)
		assert.Len(t, ds, 1)
		assert.Zero(t, f.RecoveryCodes)
	})
}

func TestHTTPSecurityKey(t *testing.T) {
	a := newHTTPApp(t, nil)
	ctx := t.Context()
	alice, bob := a.user("alice@example.com"), a.user("bob@example.com")
	key := webauthntest.NewClient(t, webauthntest.Options{Origin: "https://localhost"})
	b, err := a.m.BeginKeyRegistration(ctx, alice.ID)
	require.NoError(t, err)
	resp, err := key.Create(ctx, b.Options)
	require.NoError(t, err)
	dev, err := a.m.FinishKeyRegistration(ctx, b.ChallengeID, resp, "Blue key")
	require.NoError(t, err)

	ds, f := a.devices(t, alice)
	require.Len(t, ds, 1)
	assert.Equal(t, mfa.DeviceJSON{ID: dev.ID, Type: mfa.SecurityKey, Name: "Blue key", Created: httpStart, Active: true}, ds[0])
	assert.Equal(t, mfa.FactorsJSON{SecurityKeys: 1, Enabled: true}, f)

	r := a.do(alice, "POST", "/verify/key/begin", nil)
	var begin struct {
		ChallengeID string
		PublicKey   json.RawMessage
	}
	r.decode(t, http.StatusOK, &begin)
	assert.NotEmpty(t, begin.ChallengeID)
	cookies := httpSetCookies(r)
	require.Contains(t, cookies, "mfa_ceremony")
	for _, attr := range []string{"mfa_ceremony=" + begin.ChallengeID, "Path=/mfa/", "Max-Age=300", "HttpOnly", "Secure", "SameSite=Strict"} {
		assert.Contains(t, cookies["mfa_ceremony"], attr)
	}
	require.Contains(t, cookies, "mfa_binding", "the first begin binds the browser")
	for _, attr := range []string{"Path=/mfa/", "HttpOnly", "Secure", "SameSite=Strict"} {
		assert.Contains(t, cookies["mfa_binding"], attr)
	}
	assert.NotContains(t, cookies["mfa_binding"], "Max-Age", "the binding lasts the browser session")
	assert.NotContains(t, httpSetCookies(a.do(alice, "POST", "/verify/key/begin", nil)), "mfa_binding", "a bound browser keeps its binding")
	assertion, err := key.Get(ctx, begin.PublicKey)
	require.NoError(t, err)

	// Another signed-in account cannot finish alice's ceremony, even in
	// her browser: the binding holds the account.
	t.Run("another account", func(t *testing.T) {
		r := a.do(alice, "POST", "/verify/key/begin", nil)
		r.decode(t, http.StatusOK, &begin)
		other, err := key.Get(ctx, begin.PublicKey)
		require.NoError(t, err)
		a.do(bob, "POST", "/verify/key/finish", map[string]any{"credential": json.RawMessage(other)}).
			fails(t, http.StatusBadRequest, "challenge_unknown")
	})
	r = a.do(alice, "POST", "/verify/key/begin", nil)
	r.decode(t, http.StatusOK, &begin)
	assertion, err = key.Get(ctx, begin.PublicKey)
	require.NoError(t, err)

	a.clock.Add(time.Minute)
	r = a.do(alice, "POST", "/verify/key/finish", map[string]any{"credential": json.RawMessage(assertion)})
	var out struct{ Verification mfa.VerificationJSON }
	r.decode(t, http.StatusOK, &out)
	assert.Equal(t, mfa.VerificationJSON{Factor: mfa.FactorSecurityKey, DeviceID: dev.ID, At: a.clock.Now()}, out.Verification)
	assert.Equal(t, "security_key", r.header.Get("X-Test-Verified"))
	assert.Contains(t, r.header.Get("Set-Cookie"), "Max-Age=0", "the finish clears the cookie")
	require.NotEmpty(t, a.verified)
	assert.True(t, a.verified[len(a.verified)-1].PhishingResistant())

	// The cookie is gone and the challenge used.
	a.do(alice, "POST", "/verify/key/finish", map[string]any{"credential": json.RawMessage(assertion)}).
		fails(t, http.StatusBadRequest, "challenge_unknown")
	a.do(alice, "POST", "/verify/key/finish", `{}`).fails(t, http.StatusBadRequest, "invalid_request")
	a.do(bob, "POST", "/verify/key/begin", nil).fails(t, http.StatusNotFound, "no_credentials")

	// A deactivated key is not offered.
	a.do(alice, "POST", "/devices/"+dev.ID+"/deactivate", nil).decode(t, http.StatusOK, nil)
	a.do(alice, "POST", "/verify/key/begin", nil).fails(t, http.StatusNotFound, "no_credentials")
}

// httpSetCookies are the cookies a response sets, by name.
func httpSetCookies(r httpResp) map[string]string {
	out := map[string]string{}
	for _, c := range r.header.Values("Set-Cookie") {
		name, _, _ := strings.Cut(c, "=")
		out[name] = c
	}
	return out
}

// httpBegin is the answer of a security-key begin.
type httpBegin struct {
	ChallengeID string          `json:"challengeId"`
	PublicKey   json.RawMessage `json:"publicKey"`
}

// TestHTTPSecurityKeyCeremonies: several security-key ceremonies at once
// in one browser each finish with their challengeId, and a challengeId
// is of no use in another browser.
func TestHTTPSecurityKeyCeremonies(t *testing.T) {
	a := newHTTPApp(t, nil)
	ctx := t.Context()
	alice := a.user("alice@example.com")
	key := webauthntest.NewClient(t, webauthntest.Options{Origin: "https://localhost"})
	b, err := a.m.BeginKeyRegistration(ctx, alice.ID)
	require.NoError(t, err)
	resp, err := key.Create(ctx, b.Options)
	require.NoError(t, err)
	dev, err := a.m.FinishKeyRegistration(ctx, b.ChallengeID, resp, "Blue key")
	require.NoError(t, err)

	begin := func(hc *http.Client) (httpBegin, json.RawMessage) {
		t.Helper()
		var b httpBegin
		a.doIn(hc, alice, "POST", "/verify/key/begin", nil).decode(t, http.StatusOK, &b)
		require.NotEmpty(t, b.ChallengeID)
		assertion, err := key.Get(ctx, b.PublicKey)
		require.NoError(t, err)
		return b, assertion
	}
	finish := func(hc *http.Client, id string, assertion json.RawMessage) httpResp {
		t.Helper()
		return a.doIn(hc, alice, "POST", "/verify/key/finish", map[string]any{"challengeId": id, "credential": assertion})
	}

	t.Run("interleaved", func(t *testing.T) {
		tab1, as1 := begin(a.hc)
		tab2, as2 := begin(a.hc) // replaces the ceremony cookie
		var out struct{ Verification mfa.VerificationJSON }
		r := finish(a.hc, tab1.ChallengeID, as1)
		r.decode(t, http.StatusOK, &out)
		assert.Equal(t, dev.ID, out.Verification.DeviceID)
		assert.NotContains(t, httpSetCookies(r), "mfa_ceremony", "the cookie names the other tab's ceremony: it stays")
		r = finish(a.hc, tab2.ChallengeID, as2)
		r.decode(t, http.StatusOK, &out)
		assert.Contains(t, httpSetCookies(r)["mfa_ceremony"], "Max-Age=0", "the cookie's ceremony is over")
		finish(a.hc, tab1.ChallengeID, as1).fails(t, http.StatusBadRequest, "challenge_unknown")
	})
	t.Run("another browser", func(t *testing.T) {
		b, assertion := begin(a.hc)
		for _, hc := range []*http.Client{a.browser(), {}} { // bound elsewhere, and not at all
			if hc.Jar != nil {
				begin(hc) // the other browser has a binding of its own
			}
			finish(hc, b.ChallengeID, assertion).fails(t, http.StatusBadRequest, "challenge_unknown")
		}
		// The replay used the challenge up.
		finish(a.hc, b.ChallengeID, assertion).fails(t, http.StatusBadRequest, "challenge_unknown")
	})
	t.Run("cookie fallback", func(t *testing.T) {
		_, assertion := begin(a.hc)
		a.do(alice, "POST", "/verify/key/finish", map[string]any{"credential": assertion}).decode(t, http.StatusOK, nil)
	})
}

// TestHTTPKeyRegistration registers security keys through /keys/begin
// and /keys/finish.
func TestHTTPKeyRegistration(t *testing.T) {
	a := newHTTPApp(t, nil)
	ctx := t.Context()
	alice, bob := a.user("alice@example.com"), a.user("bob@example.com")
	newKey := func() *webauthntest.Client {
		return webauthntest.NewClient(t, webauthntest.Options{Origin: "https://localhost"})
	}
	begin := func(hc *http.Client, u *webauthn.User, key *webauthntest.Client) (httpBegin, json.RawMessage) {
		t.Helper()
		var b httpBegin
		r := a.doIn(hc, u, "POST", "/keys/begin", nil)
		r.decode(t, http.StatusOK, &b)
		require.NotEmpty(t, b.ChallengeID)
		assert.NotContains(t, httpSetCookies(r), "mfa_ceremony", "registration needs challengeId: no ceremony cookie")
		resp, err := key.Create(ctx, b.PublicKey)
		require.NoError(t, err)
		return b, resp
	}
	finish := func(hc *http.Client, u *webauthn.User, id, name string, resp json.RawMessage) httpResp {
		t.Helper()
		return a.doIn(hc, u, "POST", "/keys/finish", map[string]any{"challengeId": id, "name": name, "credential": resp})
	}

	// Two registrations at once in one browser, finished in the other
	// order.
	k1, k2 := newKey(), newKey()
	b1, r1 := begin(a.hc, alice, k1)
	b2, r2 := begin(a.hc, alice, k2)
	var d2, d1 struct{ Device mfa.DeviceJSON }
	finish(a.hc, alice, b2.ChallengeID, "", r2).decode(t, http.StatusCreated, &d2)
	finish(a.hc, alice, b1.ChallengeID, "Blue key", r1).decode(t, http.StatusCreated, &d1)
	assert.Equal(t, mfa.DeviceJSON{ID: d1.Device.ID, Type: mfa.SecurityKey, Name: "Blue key", Created: httpStart, Active: true}, d1.Device)
	assert.Equal(t, mfa.DefaultKeyName, d2.Device.Name)
	ds, f := a.devices(t, alice)
	assert.Len(t, ds, 2)
	assert.Equal(t, 2, f.SecurityKeys)
	finish(a.hc, alice, b1.ChallengeID, "Again", r1).fails(t, http.StatusBadRequest, "challenge_unknown")

	// The new key passes as the second factor.
	var vb httpBegin
	a.do(alice, "POST", "/verify/key/begin", nil).decode(t, http.StatusOK, &vb)
	assertion, err := k1.Get(ctx, vb.PublicKey)
	require.NoError(t, err)
	a.do(alice, "POST", "/verify/key/finish", map[string]any{"challengeId": vb.ChallengeID, "credential": json.RawMessage(assertion)}).
		decode(t, http.StatusOK, nil)

	for _, tc := range []struct {
		name string
		hc   *http.Client
		user *webauthn.User
	}{
		{"another browser", a.browser(), alice},
		{"another account in the same browser", a.hc, bob},
		{"no cookies", &http.Client{}, alice},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, resp := begin(a.hc, alice, newKey())
			if tc.hc.Jar != nil && tc.hc != a.hc {
				begin(tc.hc, tc.user, newKey()) // a binding of its own
			}
			finish(tc.hc, tc.user, b.ChallengeID, "Stolen", resp).fails(t, http.StatusBadRequest, "challenge_unknown")
			// The refused finish used the challenge up.
			finish(a.hc, alice, b.ChallengeID, "Mine", resp).fails(t, http.StatusBadRequest, "challenge_unknown")
		})
	}
	ds, _ = a.devices(t, alice)
	assert.Len(t, ds, 2, "no key was added by a refused finish")
	ds, _ = a.devices(t, bob)
	assert.Empty(t, ds)

	_, resp := begin(a.hc, alice, newKey())
	a.do(alice, "POST", "/keys/finish", map[string]any{"name": "No ID", "credential": resp}).fails(t, http.StatusBadRequest, "challenge_unknown")
	a.do(alice, "POST", "/keys/finish", `{"challengeId":"x"}`).fails(t, http.StatusBadRequest, "invalid_request")
	a.do(alice, "POST", "/keys/finish", `{"challengeId":"x","credential":{},"extra":1}`).fails(t, http.StatusBadRequest, "invalid_request")
	a.do(nil, "POST", "/keys/begin", nil).fails(t, http.StatusUnauthorized, "unauthenticated")
	a.do(alice, "GET", "/keys/begin", nil).fails(t, http.StatusMethodNotAllowed, "method_not_allowed")
}

// TestHTTPCookiePathDerived: without HandlerConfig.CookiePath, the
// cookies' Path is where the handler is mounted.
func TestHTTPCookiePathDerived(t *testing.T) {
	a := newHTTPApp(t, func(c *mfa.HandlerConfig) { c.CookiePath = "" })
	alice := a.user("alice@example.com")
	r := a.do(alice, "POST", "/keys/begin", nil)
	r.decode(t, http.StatusOK, nil)
	assert.Contains(t, httpSetCookies(r)["mfa_binding"], "Path=/mfa/")
}

func TestHTTPHookErrors(t *testing.T) {
	var userErr error
	a := newHTTPApp(t, func(c *mfa.HandlerConfig) {
		cur := c.CurrentUser
		c.CurrentUser = func(r *http.Request) ([]byte, error) {
			if userErr != nil {
				return nil, userErr
			}
			return cur(r)
		}
	})
	alice := a.user("alice@example.com")
	var set struct{ Codes []string }
	r := a.do(alice, "POST", "/recovery-codes", nil)
	r.decode(t, http.StatusCreated, &set)
	for _, c := range set.Codes {
		a.secret("a recovery code", c, r.index)
	}

	// The hook's error wraps one of the package's: still a 500.
	a.failHook = fmt.Errorf("session store down: %w", mfa.ErrInvalidCode)
	e := a.do(alice, "POST", "/verify/recovery-code", map[string]string{"code": set.Codes[0]}).fails(t, http.StatusInternalServerError, "internal")
	assert.Equal(t, "internal error", e.Message)
	require.Len(t, a.errs, 1)
	assert.Contains(t, a.errs[0], "OnVerified")
	assert.Contains(t, a.errs[0], "session store down")
	a.failHook = nil

	userErr = errors.New("session cookie unreadable")
	a.do(alice, "GET", "/devices", nil).fails(t, http.StatusInternalServerError, "internal")
	require.Len(t, a.errs, 2)
	assert.Contains(t, a.errs[1], "session cookie unreadable")
}

func TestHandlerConfig(t *testing.T) {
	a := newHTTPApp(t, nil)
	cur := func(*http.Request) ([]byte, error) { return nil, nil }
	ver := func(http.ResponseWriter, *http.Request, *mfa.Verification) error { return nil }
	for _, tc := range []struct {
		name string
		cfg  mfa.HandlerConfig
	}{
		{"no CurrentUser", mfa.HandlerConfig{OnVerified: ver}},
		{"no OnVerified", mfa.HandlerConfig{CurrentUser: cur}},
		{"negative MaxBodyBytes", mfa.HandlerConfig{CurrentUser: cur, OnVerified: ver, MaxBodyBytes: -1}},
		{"negative MaxSeedFileBytes", mfa.HandlerConfig{CurrentUser: cur, OnVerified: ver, MaxSeedFileBytes: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := a.m.Handler(tc.cfg)
			assert.Error(t, err)
		})
	}
	t.Run("small MaxBodyBytes", func(t *testing.T) {
		h, err := a.m.Handler(mfa.HandlerConfig{CurrentUser: func(*http.Request) ([]byte, error) { return []byte("u"), nil }, OnVerified: ver, MaxBodyBytes: 8})
		require.NoError(t, err)
		w := httptest.NewRecorder()
		req := httptest.NewRequest("POST", "/verify/totp", strings.NewReader(`{"code":"123456"}`))
		req.Header.Set("Content-Type", "application/json")
		h.ServeHTTP(w, req)
		assert.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
		assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
	})
}

func TestHandlerErrorCode(t *testing.T) {
	locked := &mfa.LockedError{Factor: mfa.FactorTOTP, Until: httpStart, Failures: 5}
	for _, tc := range []struct {
		err  error
		code string
	}{
		{fmt.Errorf("%w: %w", mfa.ErrInvalidCode, locked), "locked"},
		{locked, "locked"},
		{mfa.ErrInvalidCode, "invalid_code"},
		{mfa.ErrCodeReused, "code_reused"},
		{mfa.ErrReplay, "code_reused"},
		{fmt.Errorf("mfa: resyncing: %w", webauthn.ErrInactive), "device_deactivated"},
		{fmt.Errorf("%w (8)", mfa.ErrDeviceLimit), "device_limit"},
		{fmt.Errorf("mfa: reading the seed file: %w", mfa.ErrSeedFileMAC), "seed_file_mac"},
		{mfa.ErrSerialNotFound, "serial_not_found"},
		{mfa.ErrUnknownDevice, "device_unknown"},
		{mfa.ErrUnknownEnrollment, "enrollment_unknown"},
		{webauthn.ErrNoCredentials, "no_credentials"},
		{&webauthn.VerificationError{Err: webauthn.ErrSignature}, "bad_signature"},
		{webauthn.ErrInvalidRequest, "invalid_request"},
		{mfa.ErrSealed, "internal"},
		{errors.New("disk on fire"), "internal"},
	} {
		t.Run(tc.code+" "+strconv.Quote(tc.err.Error()), func(t *testing.T) {
			assert.Equal(t, tc.code, mfa.ErrorCode(tc.err))
		})
	}
}
