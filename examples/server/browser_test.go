package main

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/fetch"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	chromiumFlag     = flag.String("chromium", "", "Chromium for the browser test (default: /usr/bin/chromium, else chromium on PATH)")
	outFlag          = flag.String("out", "", "directory for the browser test's screenshots (default: a temporary directory)")
	updateScreenshot = flag.Bool("update-screenshot", false, "write the browser test's representative screenshot to screenshot.png")
)

// Bounds of the browser test: the whole walk, and any one wait in it.
const (
	browserTestTimeout = 3 * time.Minute
	waitTimeout        = 30 * time.Second
)

// findChromium returns Chromium's path, or skips the test (fails it in
// CI, where the test command installs Chromium).
func findChromium(t *testing.T) string {
	candidates := []string{*chromiumFlag, "/usr/bin/chromium"}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			candidates = append(candidates, p)
		}
	}
	for _, p := range candidates {
		if p == "" {
			continue
		}
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("Chromium is missing: the test command installs it (apt-get install chromium)")
	}
	t.Skip("Chromium is missing; install it to run the browser test: apt-get install chromium")
	return ""
}

// tab drives one browser tab through the app, as a person would: clicks
// and typing, waiting for what the page shows.
type tab struct {
	t    *testing.T
	ctx  context.Context
	base string
	out  string
	n    int

	mu       sync.Mutex
	problems []string
}

// listen records console errors, uncaught exceptions and the browser's
// own error log entries (not failed requests: the app answers 4xx on
// purpose, and the page shows those).
func (b *tab) listen(ev any) {
	var p string
	switch ev := ev.(type) {
	case *runtime.EventConsoleAPICalled:
		if ev.Type == runtime.ConsoleAPICalledTypeError {
			var args []string
			for _, a := range ev.Args {
				args = append(args, string(a.Value)+a.Description)
			}
			p = "console.error: " + strings.Join(args, " ")
		}
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		p = "exception: " + d.Text
		if d.Exception != nil {
			p += " " + d.Exception.Description
		}
		p += fmt.Sprintf(" at %s:%d", d.URL, d.LineNumber+1)
	case *cdplog.EventEntryAdded:
		if ev.Entry.Level == cdplog.EntryLevelError && ev.Entry.Source != cdplog.EntrySourceNetwork {
			p = fmt.Sprintf("log %s: %s (%s)", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL)
		}
	}
	if p != "" {
		b.mu.Lock()
		b.problems = append(b.problems, p)
		b.mu.Unlock()
	}
}

// noConsoleErrors fails the test on any console error so far.
func (b *tab) noConsoleErrors() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	require.Empty(b.t, b.problems, "console errors in the page")
}

// fail reports err with what the page showed.
func (b *tab) fail(what string, err error) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	if loc, lerr := chromedp.Run(ctx, chromedp.Location()); lerr == nil {
		b.t.Logf("page: %s", loc)
	}
	if html, herr := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main")?.innerText ?? ""`)); herr == nil {
		b.t.Logf("page text:\n%s", html)
	}
	if png, serr := chromedp.Run(ctx, chromedp.FullScreenshot(100)); serr == nil {
		os.WriteFile(filepath.Join(b.out, "failure.png"), png, 0o644)
		b.t.Logf("screenshot: %s", filepath.Join(b.out, "failure.png"))
	}
	b.t.Fatalf("%s: %v", what, err)
}

// do runs actions, each wait bounded.
func (b *tab) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

func (b *tab) open(path string) { b.do("open "+path, chromedp.Navigate(b.base+path)) }

// waitPage waits for the page whose <main> is data-page=name, with its
// script running.
func (b *tab) waitPage(name string) {
	b.t.Helper()
	b.do("wait for page "+name, chromedp.WaitVisible(chromedp.CSS(`html[data-ready="true"] main[data-page="`+name+`"]`)))
}

// click clicks the element sel once it is visible. A query that a page
// load overtook (its node gone) is tried again.
func (b *tab) click(sel string) {
	b.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		ctx, cancel := context.WithTimeout(b.ctx, waitTimeout)
		err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
		cancel()
		if err == nil {
			return
		}
		if b.ctx.Err() != nil || time.Now().After(deadline) || !strings.Contains(err.Error(), "node") {
			b.fail("click "+sel, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// reloads runs f, which makes the page load again (the same page, with a
// notice, say), and waits for the new page's script to run.
func (b *tab) reloads(f func()) {
	b.t.Helper()
	before := eval[float64](b, `performance.timeOrigin`)
	f()
	b.until("the page loads again", fmt.Sprintf(`performance.timeOrigin !== %v && document.documentElement.dataset.ready === "true"`, before))
	b.do("wait for the page", chromedp.WaitVisible(chromedp.CSS(`html[data-ready="true"] main`)))
}

// fill types text into a field, as a person would, after emptying it.
func (b *tab) fill(sel, text string) {
	b.t.Helper()
	b.do("type into "+sel,
		chromedp.WaitVisible(chromedp.CSS(sel)),
		chromedp.Evaluate[chromedp.Void](`document.querySelector(`+jsString(sel)+`).value = ""`),
		chromedp.SendKeys(chromedp.CSS(sel), text))
}

func (b *tab) visible(sel string) {
	b.t.Helper()
	b.do("wait for "+sel, chromedp.WaitVisible(chromedp.CSS(sel)))
}

// eval evaluates a JavaScript expression into T.
func eval[T any](b *tab, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fail("evaluate "+expr, err)
	}
	return v
}

// until waits for a JavaScript expression to be true, across page loads
// (an evaluation that a navigation interrupts is tried again).
func (b *tab) until(what, expr string) {
	b.t.Helper()
	deadline := time.Now().Add(waitTimeout)
	var last error
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		cancel()
		if err == nil && ok {
			return
		}
		if b.ctx.Err() != nil {
			b.fail(what, b.ctx.Err())
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	if last == nil {
		last = errors.New("timed out")
	}
	b.fail("wait until "+what, last)
}

// waitText waits until the element sel is visible and its text holds
// want.
func (b *tab) waitText(sel, want string) {
	b.t.Helper()
	s, w := jsString(sel), jsString(want)
	b.until(fmt.Sprintf("%s shows %q", sel, want),
		`(() => { const e = document.querySelector(`+s+`); return !!e && e.checkVisibility() && e.textContent.includes(`+w+`); })()`)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (b *tab) text(sel string) string {
	b.t.Helper()
	return eval[string](b, `document.querySelector(`+jsString(sel)+`).textContent`)
}

// shot saves a screenshot of the page under the output directory and
// returns the PNG.
func (b *tab) shot(name string) []byte {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, waitTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.fail("screenshot "+name, err)
	}
	b.n++
	require.NoError(b.t, os.WriteFile(filepath.Join(b.out, fmt.Sprintf("%02d-%s.png", b.n, name)), png, 0o644))
	return png
}

// addAuthenticator plugs a virtual security key into the browser: CTAP2
// over USB, resident keys, user verification that passes, touches that
// happen by themselves.
func (b *tab) addAuthenticator() webauthn.AuthenticatorID {
	b.t.Helper()
	res, err := chromedp.Call(b.ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol:                    webauthn.AuthenticatorProtocolCtap2,
			Ctap2version:                webauthn.Ctap2versionCtap21,
			Transport:                   webauthn.AuthenticatorTransportUsb,
			HasResidentKey:              true,
			HasUserVerification:         true,
			IsUserVerified:              true,
			AutomaticPresenceSimulation: true,
		},
	})
	require.NoError(b.t, err)
	return res.AuthenticatorID
}

func (b *tab) removeAuthenticator(id webauthn.AuthenticatorID) {
	b.t.Helper()
	_, err := chromedp.Call(b.ctx, webauthn.RemoveVirtualAuthenticator, webauthn.RemoveVirtualAuthenticatorParams{AuthenticatorID: id})
	require.NoError(b.t, err)
}

// otpDevice computes the codes of an authenticator app or token, each
// step at most once, as the server accepts them.
type otpDevice struct {
	t      *testing.T
	secret string
	last   int64
}

// enrollCodes are two consecutive codes: the one before now and now's.
func (d *otpDevice) enrollCodes() (string, string) {
	now := time.Now()
	d.last = now.Unix() / 30
	return totpCode(d.t, d.secret, now.Add(-30*time.Second)), totpCode(d.t, d.secret, now)
}

// next is a code of a step not used yet: now's, or the next one (the
// server accepts one step either side).
func (d *otpDevice) next() string {
	step := max(time.Now().Unix()/30, d.last+1)
	d.last = step
	return totpCode(d.t, d.secret, time.Unix(step*30, 0))
}

// requestLog records the method, path and status of every request that
// match selects.
type requestLog struct {
	match func(r *http.Request) bool
	mu    sync.Mutex
	seen  []string
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !l.match(r) {
			h.ServeHTTP(w, r)
			return
		}
		rec := &recorder{header: http.Header{}}
		h.ServeHTTP(rec, r)
		rec.copyTo(w)
		l.mu.Lock()
		l.seen = append(l.seen, fmt.Sprintf("%s %s %d", r.Method, r.URL.Path, rec.status))
		l.mu.Unlock()
	})
}

func (l *requestLog) requests() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.seen...)
}

// TestBrowser walks the whole path in headless Chromium with the DevTools
// WebAuthn domain's virtual authenticators, by clicking and typing: sign
// up; assign a security key and keep the recovery codes; sign out and in
// with password and key; add an authenticator app (codes computed from
// the secret the page shows), a backup key and a hardware token (a PSKC
// seed file uploaded); rename, test and remove devices; sign in with the
// app and with a recovery code, which the second time is refused; as the
// administrator, deactivate another account's lost key (the account's
// event log shows it), which is then refused, and require MFA, which sends an account without a device to
// enrollment; and two tabs each register a key, finishing in the other
// order than they began. On the way: the session cookie's flags, a
// cross-site POST refused, and no console error on any page. Screenshots go to -out (or
// the test's temporary directory); -update-screenshot also writes
// screenshot.png.
func TestBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("the browser test does not run with -short")
	}
	chromium := findChromium(t)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	base := fmt.Sprintf("http://localhost:%d", ln.Addr().(*net.TCPAddr).Port)
	a := newTestApp(t, base)
	// The POSTs the browser marks cross-site, and the key registrations.
	cross := &requestLog{match: func(r *http.Request) bool {
		return r.Header.Get("Sec-Fetch-Site") == "cross-site" && r.Method != http.MethodGet
	}}
	keys := &requestLog{match: func(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/mfa/keys/") }}
	srv := httptest.NewUnstartedServer(cross.wrap(keys.wrap(a)))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	defer srv.Close()
	// A page of another site, for the cross-site request.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><title>another site</title><p id="out">sending</p><script>
fetch(%q, {method: "POST", mode: "no-cors", credentials: "include", headers: {"Content-Type": "text/plain"}, body: "{}"})
  .then(() => { document.getElementById("out").textContent = "sent"; }, () => { document.getElementById("out").textContent = "sent"; });
</script>`, base+"/mfa/recovery-codes")
	}))
	defer evil.Close()

	out := *outFlag
	if out == "" {
		out = t.TempDir()
	} else {
		require.NoError(t, os.MkdirAll(out, 0o755))
	}
	downloads := t.TempDir()

	root, cancelRoot := context.WithTimeout(context.Background(), browserTestTimeout)
	defer cancelRoot()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 900),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(root, opts...)
	defer cancelAlloc()
	b := &tab{t: t, base: base, out: out}
	ctx, cancelTab := chromedp.NewContext(actx, chromedp.WithListener(b.listen))
	defer cancelTab()
	b.ctx = ctx
	start, last := time.Now(), time.Now()
	step := func(name string) {
		t.Logf("%5.1fs (previous step %4.1fs) %s", time.Since(start).Seconds(), time.Since(last).Seconds(), name)
		last = time.Now()
	}
	require.NoError(t, chromedp.Do(ctx), "starting Chromium")
	t.Logf("Chromium %s; the app at %s; screenshots in %s", chromium, base, out)
	_, err = chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{})
	require.NoError(t, err)
	_, err = chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllow, DownloadPath: downloads,
	})
	require.NoError(t, err)
	firstKey := b.addAuthenticator()

	signOut := func() {
		b.click("#signout")
		b.waitPage("signin")
		b.waitText("#page-status", "You are signed out.")
	}
	signIn := func(name, password string) {
		b.fill("#name", name)
		b.fill("#password", password)
		b.click("#signin-submit")
	}

	step("sign up")
	// Sign up: the first account is the administrator.
	b.open("/")
	b.waitPage("signin")
	b.shot("signin")
	b.click("#signup-link")
	b.waitPage("signup")
	b.fill("#name", "alice")
	b.fill("#password", "alice's password")
	b.fill("#confirm", "alice's password")
	b.shot("signup")
	b.click("#signup-submit")
	b.waitPage("home")
	b.waitText("#mfa-status", "Protect your account")
	b.waitText("header .badge", "administrator")
	b.shot("home-without-mfa")

	step("assign a security key")
	// Assign a security key; the recovery codes come with the first device.
	b.click("#protect")
	b.waitPage("assign")
	b.fill("#device-name", "Blue key")
	b.click("#type-key")
	b.click("#assign-continue")
	b.visible("#key-panel")
	b.shot("assign-security-key")
	b.click("#register-key")
	b.visible("#recovery-panel")
	codes := eval[[]string](b, `Array.from(document.querySelectorAll("#recovery-codes li"), li => li.textContent)`)
	require.Len(t, codes, 10)
	b.shot("recovery-codes")
	b.click("#recovery-download")
	file := filepath.Join(downloads, "fidokit-recovery-codes.txt")
	require.Eventually(t, func() bool { _, err := os.Stat(file); return err == nil }, waitTimeout, 100*time.Millisecond, "the recovery codes download")
	saved, err := os.ReadFile(file)
	require.NoError(t, err)
	for _, c := range codes {
		assert.Contains(t, string(saved), c)
	}
	b.click("#recovery-done")
	b.waitPage("security")
	b.waitText("#devices", "Blue key")
	b.noConsoleErrors()

	step("the session cookie")
	// The session cookie: HttpOnly (no script sees it), Secure, SameSite=Strict.
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base}})
	require.NoError(t, err)
	var sess *network.Cookie
	for _, c := range cookies.Cookies {
		if c.Name == sessionCookie {
			sess = c
		}
	}
	require.NotNil(t, sess, "the session cookie")
	assert.True(t, sess.HTTPOnly, "HttpOnly")
	assert.True(t, sess.Secure, "Secure")
	assert.Equal(t, network.CookieSameSiteStrict, sess.SameSite)
	assert.NotContains(t, eval[string](b, `document.cookie`), sessionCookie+"=")

	step("sign in with password and key")
	// Sign out, and in with the password and the key.
	signOut()
	signIn("alice", "alice's password")
	b.waitPage("verify")
	b.shot("second-factor")
	b.click("#use-key")
	b.waitPage("home")
	b.waitText("#session-factor", "a security key (Blue key)")
	b.shot("home-signed-in-with-key")

	step("assign an authenticator app")
	// An authenticator app: the QR code, the secret, two consecutive codes.
	b.open("/security/assign")
	b.waitPage("assign")
	b.fill("#device-name", "Phone")
	b.click("#type-app")
	b.click("#assign-continue")
	b.visible("#app-panel")
	b.until("the QR code", `document.querySelector("#qr").src.startsWith("data:image/png;base64,") && document.querySelector("#qr").complete && document.querySelector("#qr").naturalWidth > 0`)
	b.click("#show-secret")
	b.visible("#secret-key")
	b.shot("assign-authenticator-app")
	phone := &otpDevice{t: t, secret: b.text("#secret-key")}
	require.Regexp(t, `^[A-Z2-7 ]{32,}$`, phone.secret)
	c1, c2 := phone.enrollCodes()
	b.fill("#app-code1", c1)
	b.fill("#app-code2", c2)
	b.click("#app-submit")
	b.waitPage("security")
	b.waitText("#page-status", "The device is assigned.")
	b.waitText("#devices", "Phone")

	step("assign a backup key")
	// A second key as a backup. The first is unplugged: the browser asks
	// every key, and the first would answer that it is registered already.
	b.removeAuthenticator(firstKey)
	backupKey := b.addAuthenticator()
	b.click("#assign-device")
	b.waitPage("assign")
	b.fill("#device-name", "Backup key")
	b.click("#type-key")
	b.click("#assign-continue")
	b.click("#register-key")
	b.waitPage("security")
	b.waitText("#devices", "Backup key")

	step("rename, test sign-in")
	// Rename the app; test a sign-in with the backup key.
	b.click(`tr.device[data-name="Phone"] .rename`)
	b.fill(`tr.device[data-name="Phone"] .rename-form input`, "Work phone")
	b.reloads(func() { b.click(`tr.device[data-name="Phone"] .rename-form button`) })
	b.waitText("#page-status", "The device is renamed.")
	b.waitText("#devices", "Work phone")
	b.click(`tr.device[data-name="Backup key"] .test`)
	b.waitText(`tr.device[data-name="Backup key"] .result`, "Test sign-in passed.")
	representative := b.shot("security-credentials")

	step("assign and remove a hardware token")
	// A hardware token from its vendor's seed file (PSKC), then removed.
	seed := make([]byte, 20)
	rand.Read(seed)
	pskc := filepath.Join(t.TempDir(), "GALT0001.pskc.xml")
	require.NoError(t, os.WriteFile(pskc, []byte(fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc">
  <KeyPackage>
    <DeviceInfo><Manufacturer>Example</Manufacturer><SerialNo>GALT0001</SerialNo></DeviceInfo>
    <Key Id="GALT0001" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp">
      <AlgorithmParameters><ResponseFormat Length="6" Encoding="DECIMAL"/></AlgorithmParameters>
      <Data>
        <Secret><PlainValue>%s</PlainValue></Secret>
        <TimeInterval><PlainValue>30</PlainValue></TimeInterval>
      </Data>
    </Key>
  </KeyPackage>
</KeyContainer>
`, base64.StdEncoding.EncodeToString(seed))), 0o600))
	fob := &otpDevice{t: t, secret: base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(seed)}
	b.click("#assign-device")
	b.waitPage("assign")
	b.fill("#device-name", "Key fob")
	b.click("#type-token")
	b.click("#assign-continue")
	b.fill("#token-serial", "GALT0001")
	b.do("choose the seed file", chromedp.SetUploadFiles(chromedp.CSS("#token-file"), []string{pskc}))
	b.shot("assign-hardware-token")
	b.click("#token-submit")
	b.visible("#token-finish")
	c1, c2 = fob.enrollCodes()
	b.fill("#token-code1", c1)
	b.fill("#token-code2", c2)
	b.click("#token-finish-submit")
	b.waitPage("security")
	b.waitText("#devices", "GALT0001")
	b.click(`tr.device[data-name="Key fob"] .remove`)
	b.waitText(`tr.device[data-name="Key fob"] .remove`, "Confirm remove")
	b.reloads(func() { b.click(`tr.device[data-name="Key fob"] .remove`) })
	b.waitText("#page-status", "The device is removed.")
	b.until("the token is gone", `!document.querySelector('tr.device[data-name="Key fob"]')`)
	b.noConsoleErrors()

	step("sign in with the app")
	// Sign in with the app's code.
	signOut()
	signIn("alice", "alice's password")
	b.waitPage("verify")
	b.fill("#totp-code", phone.next())
	b.click("#totp-submit")
	b.waitPage("home")
	b.waitText("#session-factor", "a code (Work phone)")

	step("sign in with a recovery code, twice")
	// Sign in with a recovery code; the same code a second time is refused.
	signOut()
	signIn("alice", "alice's password")
	b.waitPage("verify")
	b.fill("#recovery-code", codes[0])
	b.click("#recovery-submit")
	b.waitPage("home")
	b.waitText("#mfa-status", "9 recovery codes left")
	signOut()
	signIn("alice", "alice's password")
	b.waitPage("verify")
	b.fill("#recovery-code", strings.ToLower(codes[0]))
	b.click("#recovery-submit")
	b.waitText("#page-error", "That recovery code has already been used.")
	b.shot("recovery-code-refused")
	b.fill("#recovery-code", codes[1])
	b.click("#recovery-submit")
	b.waitPage("home")
	b.waitText("#mfa-status", "8 recovery codes left")

	step("a cross-site POST from a page")
	// Another site's page posts to the app, with the browser's cookies if
	// it would send them: refused as cross-origin, and nothing changed.
	other, cancelOther := chromedp.NewContext(ctx)
	octx, cancelWait := context.WithTimeout(other, waitTimeout)
	require.NoError(t, chromedp.Do(octx, chromedp.Navigate(evil.URL), chromedp.Poll[chromedp.Void](`document.getElementById("out").textContent === "sent"`)))
	cancelWait()
	cancelOther()
	assert.Contains(t, cross.requests(), "POST /mfa/recovery-codes 403")
	step("a cross-site POST with the cookie")
	// The same with the session cookie itself, from outside the browser.
	req, err := http.NewRequest("POST", base+"/mfa/recovery-codes", strings.NewReader("{}"))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	cookies, err = chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{base}})
	require.NoError(t, err)
	for _, c := range cookies.Cookies {
		if c.Name == sessionCookie {
			req.Header.Set("Cookie", sessionCookie+"="+c.Value)
		}
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var e apiErr
	require.NoError(t, json.NewDecoder(res.Body).Decode(&e))
	res.Body.Close()
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Equal(t, "cross_origin", e.Error.Code)
	b.open("/")
	b.waitPage("home")
	b.waitText("#mfa-status", "8 recovery codes left")

	step("a second account")
	// A second account, bob, with a key (on the backup authenticator) and an app.
	signOut()
	b.click("#signup-link")
	b.waitPage("signup")
	b.fill("#name", "bob")
	b.fill("#password", "bob's password")
	b.fill("#confirm", "bob's password")
	b.click("#signup-submit")
	b.waitPage("home")
	b.click("#protect")
	b.waitPage("assign")
	b.fill("#device-name", "Bob's key")
	b.click("#type-key")
	b.click("#assign-continue")
	b.click("#register-key")
	b.visible("#recovery-panel")
	b.click("#recovery-done")
	b.waitPage("security")
	b.click("#assign-device")
	b.waitPage("assign")
	b.fill("#device-name", "Bob's phone")
	b.click("#type-app")
	b.click("#assign-continue")
	b.click("#show-secret")
	b.visible("#secret-key")
	bobPhone := &otpDevice{t: t, secret: b.text("#secret-key")}
	c1, c2 = bobPhone.enrollCodes()
	b.fill("#app-code1", c1)
	b.fill("#app-code2", c2)
	b.click("#app-submit")
	b.waitPage("security")
	b.waitText("#devices", "Bob's phone")
	signOut()

	step("the administrator deactivates a lost key")
	// The administrator deactivates bob's lost key.
	signIn("alice", "alice's password")
	b.waitPage("verify")
	b.click("#use-key")
	b.waitPage("home")
	b.click("#nav-admin")
	b.waitPage("admin")
	b.waitText(`tr.account[data-name="alice"]`, "administrator")
	b.waitText(`tr.account[data-name="bob"] .mfa`, "On")
	b.shot("administration")
	b.click(`tr.account[data-name="bob"] .devices-link`)
	b.waitPage("admin-user")
	b.reloads(func() { b.click(`tr.device[data-name="Bob's key"] .deactivate`) })
	b.waitText("#page-status", "The device is deactivated")
	b.waitText(`tr.device[data-name="Bob's key"] .state`, "Deactivated")
	// The account's events, newest first: the deactivation, by alice,
	// from the browser's address.
	b.waitText(`#event-list tr.event:first-child[data-type="device_deactivated"] .device`, "Bob's key")
	b.waitText(`#event-list tr.event:first-child .actor`, "alice")
	b.waitText(`#event-list tr.event:first-child .remote`, "127.0.0.1")
	b.waitText(`#event-list tr.event[data-type="device_enrolled"]`, "Bob's phone")
	b.shot("administration-lost-key")

	step("require MFA")
	// Require MFA of everyone.
	b.open("/admin")
	b.waitPage("admin")
	b.click("#require-mfa")
	b.reloads(func() { b.click("#require-save") })
	b.waitText("#page-status", "Saved.")
	b.until("the switch is on", `document.querySelector("#require-mfa").checked`)
	b.noConsoleErrors()

	step("an account without MFA is sent to enrollment")
	// An account without a device is sent to enrollment.
	signOut()
	b.click("#signup-link")
	b.waitPage("signup")
	b.fill("#name", "carol")
	b.fill("#password", "carol's password")
	b.fill("#confirm", "carol's password")
	b.click("#signup-submit")
	b.waitPage("assign")
	b.waitText("#required", "Your administrator requires MFA")
	b.shot("mfa-required")
	b.open("/")
	b.waitPage("assign")
	b.until("sent to enrollment", `location.pathname === "/security/assign" && location.search.includes("required=1")`)
	signOut()

	step("the deactivated key is refused")
	// Bob's deactivated key is refused; his app still signs him in.
	signIn("bob", "bob's password")
	b.waitPage("verify")
	b.click("#use-key")
	b.waitText("#page-error", "no active security key")
	b.shot("deactivated-key-refused")
	b.fill("#totp-code", bobPhone.next())
	b.click("#totp-submit")
	b.waitPage("home")
	b.waitText("#session-factor", "a code (Bob's phone)")
	b.noConsoleErrors()

	step("two tabs each register a key, finishing in the other order")
	// Two tabs of one browser each register a key. The first tab's finish
	// is held at the network (the DevTools Fetch domain) while the second
	// tab begins and finishes its own; then the first's goes on. Each
	// ceremony's challenge ID travels with its own requests, so both
	// pass. Each tab has a fresh virtual key: the backup one holds a
	// credential of bob's, which the registration excludes.
	b.removeAuthenticator(backupKey)
	b.addAuthenticator()
	paused := make(chan fetch.RequestID, 1)
	lctx, cancelListen := context.WithCancel(ctx)
	defer cancelListen()
	require.NoError(t, chromedp.Listen(lctx, func(ev any) {
		if ev, ok := ev.(*fetch.EventRequestPaused); ok {
			select {
			case paused <- ev.RequestID:
			default:
			}
		}
	}))
	_, err = chromedp.Call(ctx, fetch.Enable, fetch.EnableParams{Patterns: []*fetch.RequestPattern{{URLPattern: "*/mfa/keys/finish"}}})
	require.NoError(t, err)
	before := len(keys.requests())
	b.open("/security/assign")
	b.waitPage("assign")
	b.fill("#device-name", "Tab one key")
	b.click("#type-key")
	b.click("#assign-continue")
	b.click("#register-key")
	var held fetch.RequestID
	select {
	case held = <-paused:
	case <-time.After(waitTimeout):
		b.fail("hold the first tab's finish", errors.New("no /mfa/keys/finish request"))
	}

	b2 := &tab{t: t, base: base, out: out}
	tab2, cancelTab2 := chromedp.NewContext(ctx, chromedp.WithListener(b2.listen))
	defer cancelTab2()
	b2.ctx = tab2
	_, err = chromedp.Call(tab2, webauthn.Enable, webauthn.EnableParams{})
	require.NoError(t, err)
	b2.addAuthenticator()
	b2.open("/security/assign")
	b2.waitPage("assign")
	b2.fill("#device-name", "Tab two key")
	b2.click("#type-key")
	b2.click("#assign-continue")
	b2.click("#register-key")
	b2.waitPage("security")
	b2.waitText("#devices", "Tab two key")
	b2.shot("second-tab-key")
	b2.noConsoleErrors()

	_, err = chromedp.Call(ctx, fetch.ContinueRequest, fetch.ContinueRequestParams{RequestID: held})
	require.NoError(t, err)
	_, err = chromedp.Call(ctx, fetch.Disable, cdp.Empty{})
	require.NoError(t, err)
	cancelListen()
	b.waitPage("security")
	b.waitText("#page-status", "The device is assigned.")
	b.waitText("#devices", "Tab one key")
	b.waitText("#devices", "Tab two key")
	b.shot("two-tabs-keys")
	assert.Equal(t, []string{
		"POST /mfa/keys/begin 200", "POST /mfa/keys/begin 200", // tab one's, tab two's
		"POST /mfa/keys/finish 201", "POST /mfa/keys/finish 201", // tab two's, tab one's
	}, keys.requests()[before:])
	cancelTab2()
	b.noConsoleErrors()

	if *updateScreenshot {
		require.NoError(t, os.WriteFile("screenshot.png", representative, 0o644))
	}
}
