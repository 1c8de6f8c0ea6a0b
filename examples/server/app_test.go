package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
	"github.com/fidokit/fidokit/mfa"
)

func TestPasswordHash(t *testing.T) {
	h, err := testPasswordHash.hash("correct horse")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(h, "$argon2id$v=19$m=1024,t=1,p=1$"), h)
	assert.True(t, verifyPassword(h, "correct horse"))
	assert.False(t, verifyPassword(h, "correct horsE"))
	assert.False(t, verifyPassword(h, ""))
	h2, err := testPasswordHash.hash("correct horse")
	require.NoError(t, err)
	assert.NotEqual(t, h, h2, "each hash has its own salt")
	for _, bad := range []string{"", "$argon2i$v=19$m=1024,t=1,p=1$AAAA$AAAA", "$argon2id$v=19$m=1024,t=0,p=1$AAAA$AAAA", "$argon2id$v=19$x$AAAA$AAAA", "plain"} {
		assert.False(t, verifyPassword(bad, "correct horse"), bad)
	}
}

// TestSignupAndPassword: sign up, out and in with a password; the cookie
// is HttpOnly, Secure and SameSite=Strict; only a hash is stored.
func TestSignupAndPassword(t *testing.T) {
	a := newTestApp(t, "http://localhost:8080")
	c := newClient(t, a)

	res, _ := c.get("/")
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/signin", res.Header.Get("Location"))

	res, _ = c.form("/signup", url.Values{"name": {"alice"}, "password": {"password one"}, "confirm": {"password one"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/", res.Header.Get("Location"))
	ck := c.cookies[sessionCookie]
	require.NotNil(t, ck, "a session cookie")
	assert.True(t, ck.HttpOnly, "HttpOnly")
	assert.True(t, ck.Secure, "Secure")
	assert.Equal(t, http.SameSiteStrictMode, ck.SameSite)
	assert.Equal(t, "/", ck.Path)
	assert.Len(t, ck.Value, 43, "32 random bytes in base64url")

	res, body := c.get("/")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, body, "Hello, alice")
	assert.Contains(t, body, "Protect your account")
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	assert.Contains(t, res.Header.Get("Content-Security-Policy"), "script-src 'self'")

	res, _ = c.form("/signout", nil)
	assert.Equal(t, "/signin?signedout=1", res.Header.Get("Location"))
	assert.Empty(t, c.cookies[sessionCookie])
	res, _ = c.get("/")
	assert.Equal(t, "/signin", res.Header.Get("Location"))

	res, body = c.form("/signin", url.Values{"name": {"alice"}, "password": {"password two"}})
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Contains(t, body, "That name and password do not match an account")
	assert.Nil(t, c.cookies[sessionCookie])
	res, body = c.form("/signin", url.Values{"name": {"nobody"}, "password": {"password one"}})
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Contains(t, body, "That name and password do not match an account", "the same answer for an unknown name")

	res = c.signin("ALICE", "password one")
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/", res.Header.Get("Location"), "no MFA: signed in with the password")
	res, _ = c.get("/")
	assert.Equal(t, http.StatusOK, res.StatusCode)

	// The accounts file holds a hash, not the password.
	var stored string
	require.NoError(t, a.acc.db.QueryRow(`SELECT password FROM accounts WHERE name = 'alice'`).Scan(&stored))
	assert.True(t, strings.HasPrefix(stored, "$argon2id$"))
	assert.NotContains(t, stored, "password one")
}

func TestSignupRefusals(t *testing.T) {
	a := newTestApp(t, "http://localhost:8080")
	c := newClient(t, a)
	for _, tc := range []struct {
		name, password, confirm, want string
		status                        int
	}{
		{"", "password one", "password one", "Choose a name", http.StatusBadRequest},
		{" alice", "password one", "password one", "cannot start or end with a space", http.StatusBadRequest},
		{"alice", "short", "short", "at least 8 characters", http.StatusBadRequest},
		{"alice", "password one", "password two", "not the same", http.StatusBadRequest},
	} {
		res, body := c.form("/signup", url.Values{"name": {tc.name}, "password": {tc.password}, "confirm": {tc.confirm}})
		assert.Equal(t, tc.status, res.StatusCode, tc.want)
		assert.Contains(t, body, tc.want)
	}
	c.signup("alice", "password one")
	other := newClient(t, a)
	res, body := other.form("/signup", url.Values{"name": {"Alice"}, "password": {"password two"}, "confirm": {"password two"}})
	assert.Equal(t, http.StatusConflict, res.StatusCode)
	assert.Contains(t, body, "That name is taken")
	assert.Nil(t, other.cookies[sessionCookie])
}

// TestSecondFactorRouting: an account with MFA is pending after its
// password, reaches only the second-factor step, and is signed in (under
// a new session ID) once a factor passes.
func TestSecondFactorRouting(t *testing.T) {
	a := newTestApp(t, "http://localhost:8080")
	c := newClient(t, a)
	c.signup("alice", "password one")
	// A second browser signed in before the account had MFA.
	early := newClient(t, a)
	require.Equal(t, "/", early.signin("alice", "password one").Header.Get("Location"))

	secret := c.addApp("Phone")
	res, body := c.get("/")
	require.Equal(t, http.StatusOK, res.StatusCode, "enrolling counts as passing the device in this session")
	assert.Contains(t, body, "MFA is on")

	// The early session now needs the second factor too.
	res, _ = early.get("/security")
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/signin/verify?next=%2Fsecurity", res.Header.Get("Location"))
	var e apiErr
	res = early.json("GET", "/mfa/devices", nil, &e)
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Equal(t, "unauthenticated", e.Error.Code)

	res, _ = c.form("/signout", nil)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	res = c.signin("alice", "password one")
	require.Equal(t, "/signin/verify", res.Header.Get("Location"))
	pendingID := c.cookies[sessionCookie].Value

	for _, path := range []string{"/", "/security", "/security/assign", "/admin"} {
		res, _ = c.get(path)
		assert.Equal(t, http.StatusSeeOther, res.StatusCode, path)
		assert.True(t, strings.HasPrefix(res.Header.Get("Location"), "/signin/verify?next="), path)
	}
	for _, call := range [][2]string{{"GET", "/mfa/devices"}, {"POST", "/mfa/totp/begin"}, {"POST", "/mfa/recovery-codes"}, {"POST", "/mfa/keys/begin"}} {
		e = apiErr{}
		res = c.json(call[0], call[1], nil, &e)
		assert.Equal(t, http.StatusUnauthorized, res.StatusCode, call)
		assert.Equal(t, "unauthenticated", e.Error.Code, call)
	}
	res, body = c.get("/signin/verify")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, body, `id="totp-form"`)
	assert.NotContains(t, body, `id="use-key"`, "no security key on this account")

	e = apiErr{}
	res = c.json("POST", "/mfa/verify/totp", map[string]string{"code": "000000"}, &e)
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "invalid_code", e.Error.Code)
	assert.Equal(t, "That code is not right. Check the device and try again.", e.Error.Message)

	code := totpCode(t, secret, time.Now().Add(30*time.Second)) // the enrollment used the current step
	var v struct {
		Verification struct{ Factor, DeviceID string } `json:"verification"`
	}
	res = c.json("POST", "/mfa/verify/totp", map[string]string{"code": code}, &v)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "totp", v.Verification.Factor)
	assert.NotEqual(t, pendingID, c.cookies[sessionCookie].Value, "a new session ID once signed in")
	res, body = c.get("/")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, body, "You confirmed this sign-in with a code (Phone)")

	e = apiErr{}
	res = c.json("POST", "/mfa/verify/totp", map[string]string{"code": code}, &e)
	assert.Equal(t, http.StatusConflict, res.StatusCode)
	assert.Equal(t, "code_reused", e.Error.Code)
	assert.Equal(t, "That code has already been used — wait for the next one.", e.Error.Message)

	// The old pending ID is gone.
	stale := newClient(t, a)
	stale.cookies[sessionCookie] = &http.Cookie{Name: sessionCookie, Value: pendingID}
	res, _ = stale.get("/")
	assert.Equal(t, "/signin", res.Header.Get("Location"))
}

// TestKeyRegistration: security keys are registered through mfa's
// routes, /mfa/keys/begin and /mfa/keys/finish. The challenge ID travels
// in the body, bound to the browser (mfa's binding cookie) and to the
// account: two ceremonies begun in one browser both finish, in either
// order, and neither another browser nor another account in the same
// browser can finish one.
func TestKeyRegistration(t *testing.T) {
	origin := "http://localhost:8080"
	a := newTestApp(t, origin)
	ctx := context.Background()
	c := newClient(t, a)
	c.signup("alice", "password one")
	bob := newClient(t, a)
	bob.signup("bob", "password two")

	type begin struct {
		ChallengeID string          `json:"challengeId"`
		PublicKey   json.RawMessage `json:"publicKey"`
	}
	var b1, b2, b3, b4 begin
	require.Equal(t, http.StatusOK, c.json("POST", "/mfa/keys/begin", nil, &b1).StatusCode)
	binding := c.cookies[mfa.DefaultBindingCookieName]
	require.NotNil(t, binding, "the begin binds the ceremony to the browser")
	assert.True(t, binding.HttpOnly, "HttpOnly")
	assert.True(t, binding.Secure, "Secure")
	assert.Equal(t, http.SameSiteStrictMode, binding.SameSite)
	assert.Equal(t, "/mfa/", binding.Path)
	require.Equal(t, http.StatusOK, c.json("POST", "/mfa/keys/begin", map[string]any{}, &b2).StatusCode)
	require.NotEqual(t, b1.ChallengeID, b2.ChallengeID)
	assert.Equal(t, binding.Value, c.cookies[mfa.DefaultBindingCookieName].Value, "one binding for the browser")
	require.Equal(t, http.StatusOK, c.json("POST", "/mfa/keys/begin", nil, &b3).StatusCode)
	require.Equal(t, http.StatusOK, c.json("POST", "/mfa/keys/begin", nil, &b4).StatusCode)

	register := func(b begin) json.RawMessage {
		k, err := virtual.New(nil)
		require.NoError(t, err)
		t.Cleanup(func() { k.Close() })
		dev, err := k.Open(ctx, nil)
		require.NoError(t, err)
		t.Cleanup(func() { dev.Close() })
		resp, err := (&fido.WebAuthnClient{Authenticator: dev, Origin: origin}).Create(ctx, b.PublicKey)
		require.NoError(t, err)
		return resp
	}
	cred1, cred2, cred3, cred4 := register(b1), register(b2), register(b3), register(b4)

	// Bob cannot finish Alice's ceremonies: not from his browser, nor
	// with her browser's binding cookie. (The relying party takes a
	// challenge when a finish names it, so a refused finish spends it:
	// these are ceremonies of their own.)
	var e apiErr
	res := bob.json("POST", "/mfa/keys/finish", map[string]any{"challengeId": b3.ChallengeID, "name": "Stolen", "credential": cred3}, &e)
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "challenge_unknown", e.Error.Code, "another browser")
	bob.cookies[mfa.DefaultBindingCookieName] = binding
	e = apiErr{}
	res = bob.json("POST", "/mfa/keys/finish", map[string]any{"challengeId": b4.ChallengeID, "name": "Stolen", "credential": cred4}, &e)
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "challenge_unknown", e.Error.Code, "another account in the same browser")

	// Finished in the other order than begun, as two tabs would.
	var d struct {
		Device struct{ ID, Type, Name string } `json:"device"`
	}
	res = c.json("POST", "/mfa/keys/finish", map[string]any{"challengeId": b2.ChallengeID, "name": "Backup key", "credential": cred2}, &d)
	require.Equal(t, http.StatusCreated, res.StatusCode)
	assert.Equal(t, "security_key", d.Device.Type)
	assert.Equal(t, "Backup key", d.Device.Name)
	backupID := d.Device.ID
	res = c.json("POST", "/mfa/keys/finish", map[string]any{"challengeId": b1.ChallengeID, "name": "Blue key", "credential": cred1}, &d)
	require.Equal(t, http.StatusCreated, res.StatusCode)
	assert.Equal(t, "Blue key", d.Device.Name)

	// Registering counts as passing the key in this session: no
	// second-factor step, and home says which key.
	res, body := c.get("/")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, body, "You confirmed this sign-in with a security key (Backup key)")
	assert.NotEmpty(t, backupID)

	e = apiErr{}
	res = c.json("POST", "/mfa/keys/finish", map[string]any{"challengeId": b1.ChallengeID, "name": "Again", "credential": cred1}, &e)
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "challenge_unknown", e.Error.Code, "a challenge finishes once")
	for name, body := range map[string]map[string]any{
		"unknown ID": {"challengeId": "x", "name": "n", "credential": cred1},
		"no ID":      {"name": "n", "credential": cred1},
	} {
		e = apiErr{}
		res = c.json("POST", "/mfa/keys/finish", body, &e)
		assert.Equal(t, http.StatusBadRequest, res.StatusCode, name)
		assert.Equal(t, "challenge_unknown", e.Error.Code, name)
	}
	e = apiErr{}
	res = c.json("POST", "/mfa/keys/finish", map[string]any{"challengeId": "x", "name": "n", "credential": cred1, "extra": 1}, &e)
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "invalid_request", e.Error.Code)
	e = apiErr{}
	res = c.json("POST", "/mfa/keys/finish", map[string]any{"challengeId": "x", "name": "n"}, &e)
	assert.Equal(t, http.StatusBadRequest, res.StatusCode)
	assert.Equal(t, "invalid_request", e.Error.Code, "no credential")

	var list struct {
		Devices []struct{ Name string } `json:"devices"`
	}
	require.Equal(t, http.StatusOK, c.json("GET", "/mfa/devices", nil, &list).StatusCode)
	assert.Len(t, list.Devices, 2)
	require.Equal(t, http.StatusOK, bob.json("GET", "/mfa/devices", nil, &list).StatusCode)
	assert.Empty(t, list.Devices, "nothing landed on bob's account")

	// A form's body is refused: the routes take JSON only. (A begin
	// without a body needs none; another site's is refused as
	// cross-origin, see TestCrossOrigin, and carries no session cookie.)
	for _, path := range []string{"/mfa/keys/begin", "/mfa/keys/finish"} {
		res, body = c.do("POST", path, "application/x-www-form-urlencoded", strings.NewReader("name=Form+key"))
		assert.Equal(t, http.StatusUnsupportedMediaType, res.StatusCode, path)
		assert.Contains(t, body, "unsupported_media_type", path)
	}

	// Nobody signed in: no ceremony.
	anon := newClient(t, a)
	e = apiErr{}
	res = anon.json("POST", "/mfa/keys/begin", nil, &e)
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Equal(t, "unauthenticated", e.Error.Code)

	// The app's own key routes are gone.
	res = c.json("POST", "/api/keys/begin", nil, nil)
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
}

// TestAdministrator: the first account manages others' devices; nobody
// else does.
func TestAdministrator(t *testing.T) {
	a := newTestApp(t, "http://localhost:8080")
	alice := newClient(t, a)
	alice.signup("alice", "password one")
	bob := newClient(t, a)
	bob.signup("bob", "password two")
	bob.addApp("Bob's phone")

	res, body := bob.get("/admin")
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Contains(t, body, "Only the administrator")
	acc, err := a.acc.list(context.Background())
	require.NoError(t, err)
	require.Len(t, acc, 2)
	aliceID := base64.RawURLEncoding.EncodeToString(acc[0].UserID)
	bobID := base64.RawURLEncoding.EncodeToString(acc[1].UserID)
	var e apiErr
	res = bob.json("GET", "/mfa/users/"+aliceID+"/devices", nil, &e)
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Equal(t, "forbidden", e.Error.Code)

	res, body = alice.get("/admin")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, body, "/admin/users/"+bobID)
	// Each line is the audit report's.
	rows := adminRows(t, body)
	require.Contains(t, rows, "alice")
	require.Contains(t, rows, "bob")
	assert.Contains(t, rows["alice"], "administrator")
	assert.Contains(t, rows["alice"], "Off")
	assert.Contains(t, rows["alice"], "Administrator without a security key")
	assert.Contains(t, rows["bob"], "On")
	assert.Contains(t, rows["bob"], "0 keys, 1 app, 0 tokens")
	assert.Contains(t, rows["bob"], "No recovery codes")
	assert.NotContains(t, rows["bob"], "administrator")

	res, body = alice.get("/admin/report.csv")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "text/csv; charset=utf-8", res.Header.Get("Content-Type"))
	assert.Contains(t, res.Header.Get("Content-Disposition"), "attachment")
	lines := strings.Split(strings.TrimSpace(body), "\n")
	require.Len(t, lines, 3, "the header and two accounts")
	assert.True(t, strings.HasPrefix(lines[0], "user,user_id,"), lines[0])
	res, _ = bob.get("/admin/report.csv")
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	res, body = alice.get("/admin/users/" + bobID)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, body, "Bob&#39;s phone")

	var list struct {
		Devices []struct {
			ID     string `json:"id"`
			Active bool   `json:"active"`
		} `json:"devices"`
	}
	require.Equal(t, http.StatusOK, alice.json("GET", "/mfa/users/"+bobID+"/devices", nil, &list).StatusCode)
	require.Len(t, list.Devices, 1)
	res = alice.json("POST", "/mfa/users/"+bobID+"/devices/"+list.Devices[0].ID+"/deactivate", nil, nil)
	require.Equal(t, http.StatusOK, res.StatusCode)
	require.Equal(t, http.StatusOK, alice.json("GET", "/mfa/users/"+bobID+"/devices", nil, &list).StatusCode)
	assert.False(t, list.Devices[0].Active)
	_, body = alice.get("/admin")
	rows = adminRows(t, body)
	assert.Contains(t, rows["bob"], "Off", "a deactivated device is no MFA")
	assert.Contains(t, rows["bob"], "1 deactivated")

	// The account's page shows its events from mfa's log, newest first:
	// the deactivation by alice, after bob's own enrollment.
	res, body = alice.get("/admin/users/" + bobID)
	require.Equal(t, http.StatusOK, res.StatusCode)
	evs := eventRows(t, body)
	require.NotEmpty(t, evs)
	assert.Equal(t, "device_deactivated", evs[0].Type, "%+v", evs)
	assert.Contains(t, evs[0].Text, "Device deactivated")
	assert.Contains(t, evs[0].Text, "Bob's phone")
	assert.Contains(t, evs[0].Text, "alice", "the administrator did it")
	assert.Contains(t, evs[0].Text, "192.0.2.1", "from her address")
	var enrolled *eventRow
	for i := range evs {
		if evs[i].Type == "device_enrolled" {
			enrolled = &evs[i]
		}
	}
	require.NotNil(t, enrolled, "%+v", evs)
	assert.Contains(t, enrolled.Text, "Bob's phone")
	assert.Contains(t, enrolled.Text, "bob", "bob enrolled it himself")
	assert.NotContains(t, enrolled.Text, "alice")

	res, _ = alice.get("/admin/users/" + aliceID + "x")
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
}

// TestRequireMFA: with the switch on, an account without a device is sent
// to enrollment and reaches only the enrollment routes; an administrator
// without a security key is sent to register one.
func TestRequireMFA(t *testing.T) {
	a := newTestApp(t, "http://localhost:8080")
	alice := newClient(t, a)
	alice.signup("alice", "password one")
	carol := newClient(t, a)
	carol.signup("carol", "password three")

	res, _ := carol.form("/admin/require-mfa", url.Values{"require": {"on"}})
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "only the administrator flips the switch")
	res, _ = alice.form("/admin/require-mfa", url.Values{"require": {"on"}})
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/admin?saved=1", res.Header.Get("Location"))

	res, _ = alice.get("/admin")
	assert.Equal(t, "/security/assign?required=1&type=security_key", res.Header.Get("Location"), "administrators need a key")
	var kb struct {
		ChallengeID string `json:"challengeId"`
	}
	res = alice.json("POST", "/mfa/keys/begin", nil, &kb)
	assert.Equal(t, http.StatusOK, res.StatusCode, "the key registration is open to the administrator sent to it")
	assert.NotEmpty(t, kb.ChallengeID)

	res, _ = carol.get("/")
	assert.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/security/assign?required=1", res.Header.Get("Location"))
	res, body := carol.get("/security/assign?required=1")
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Contains(t, body, "Your administrator requires MFA")
	res, _ = carol.get("/security")
	assert.Equal(t, http.StatusOK, res.StatusCode)

	var e struct {
		Error struct {
			Code    string   `json:"code"`
			Factors []string `json:"factors"`
		} `json:"error"`
	}
	res = carol.json("POST", "/mfa/devices/otp_AAAAAAAAAAAAAAAAAAAAAA/rename", map[string]string{"name": "x"}, &e)
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Equal(t, "mfa_enrollment_required", e.Error.Code)
	assert.Contains(t, e.Error.Factors, "authenticator_app")

	carol.addApp("Carol's phone") // the enrollment routes are open to her
	var rc struct {
		Codes []string `json:"codes"`
	}
	res = carol.json("POST", "/mfa/recovery-codes", nil, &rc)
	require.Equal(t, http.StatusCreated, res.StatusCode)
	assert.Len(t, rc.Codes, 10)
	res, body = carol.get("/")
	require.Equal(t, http.StatusOK, res.StatusCode, "enrolled: through")
	assert.Contains(t, body, "MFA is on")

	res, _ = alice.form("/admin/require-mfa", nil)
	assert.Equal(t, "/security/assign?required=1&type=security_key", res.Header.Get("Location"),
		"the administrator must register a key before changing anything, the switch included")
}

// TestCrossOrigin: state-changing requests from another site are refused,
// by the app's forms and JSON routes and by mfa's.
func TestCrossOrigin(t *testing.T) {
	a := newTestApp(t, "http://localhost:8080")
	c := newClient(t, a)
	c.signup("alice", "password one")
	c.header.Set("Sec-Fetch-Site", "cross-site")
	c.header.Set("Origin", "http://evil.example")

	res, _ := c.form("/signout", nil)
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	for _, path := range []string{"/mfa/keys/begin", "/mfa/keys/finish", "/mfa/totp/begin", "/mfa/verify/totp"} {
		var e apiErr
		res = c.json("POST", path, map[string]string{}, &e)
		assert.Equal(t, http.StatusForbidden, res.StatusCode, path)
		assert.Equal(t, "cross_origin", e.Error.Code, path)
		assert.Equal(t, "Requests from other sites are not allowed.", e.Error.Message, path)
	}
	res, _ = c.get("/")
	assert.Equal(t, http.StatusOK, res.StatusCode, "a cross-site GET is a navigation, and harmless")
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/security": "/security", "": "/", "//evil.example": "/", "/\\evil.example": "/",
		"https://evil.example/": "/", "javascript:alert(1)": "/",
	} {
		assert.Equal(t, want, safeNext(in), in)
	}
}

func TestListenLoopbackOnly(t *testing.T) {
	_, err := listen("0.0.0.0:0")
	assert.ErrorContains(t, err, "serves http://localhost only")
	_, err = listen("192.0.2.1:0")
	assert.Error(t, err)
	ln, err := listen("localhost:0")
	require.NoError(t, err)
	ln.Close()
}

// TestRun starts the command as main does, on a free port and a fresh
// data directory, and stops it.
func TestRun(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-data", dir, "-admin", "root"}, pw, testWriter{t})
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	require.True(t, sc.Scan(), "the first line")
	line := sc.Text()
	require.Regexp(t, `^fidokit demo: open http://localhost:\d+$`, line)
	var rest []string
	for range 3 {
		require.True(t, sc.Scan())
		rest = append(rest, sc.Text())
	}
	go io.Copy(io.Discard, pr)
	assert.Contains(t, rest[0], filepath.Join(dir, "accounts.db"))
	assert.Contains(t, rest[1], filepath.Join(dir, "fidokit.db"))
	assert.Contains(t, rest[2], "administrator: root")

	// The printed origin is the one to use; the server listens on 127.0.0.1.
	port := strings.TrimPrefix(line, "fidokit demo: open http://localhost:")
	res, err := http.Get("http://127.0.0.1:" + port + "/signin")
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)

	fi, err := os.Stat(filepath.Join(dir, "seal.key"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the sealing key is the owner's only")
	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("run did not stop")
	}

	// A second start keeps the key.
	k1, err := os.ReadFile(filepath.Join(dir, "seal.key"))
	require.NoError(t, err)
	_, err = loadKeyring(filepath.Join(dir, "seal.key"))
	require.NoError(t, err)
	k2, err := os.ReadFile(filepath.Join(dir, "seal.key"))
	require.NoError(t, err)
	assert.Equal(t, k1, k2)

	assert.Error(t, run(context.Background(), []string{"-addr", "0.0.0.0:0", "-data", dir}, io.Discard, io.Discard))
	assert.Error(t, run(context.Background(), []string{"extra"}, io.Discard, io.Discard))
}

// TestRunPostgres runs the command on PostgreSQL (-db postgres://...), in
// a fresh database on the server FIDOKIT_POSTGRES_URL names (bash
// scripts/test.sh starts one); it skips without one, except in CI.
func TestRunPostgres(t *testing.T) {
	base := os.Getenv("FIDOKIT_POSTGRES_URL")
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("FIDOKIT_POSTGRES_URL is not set: PostgreSQL is required in CI; run bash scripts/test.sh")
		}
		t.Skip("FIDOKIT_POSTGRES_URL is not set; bash scripts/test.sh starts a PostgreSQL server and sets it")
	}
	u, err := url.Parse(base)
	require.NoError(t, err)
	name := fmt.Sprintf("fidokit_server_test_%d", time.Now().UnixNano())
	admin := func(sql string) {
		conn, err := pgx.Connect(context.Background(), base)
		require.NoError(t, err)
		defer conn.Close(context.Background())
		_, err = conn.Exec(context.Background(), sql)
		require.NoError(t, err)
	}
	admin("CREATE DATABASE " + name)
	t.Cleanup(func() { admin("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)") })
	u.Path = "/" + name

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-data", t.TempDir(), "-db", u.String()}, pw, testWriter{t})
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	require.True(t, sc.Scan())
	port := strings.TrimPrefix(sc.Text(), "fidokit demo: open http://localhost:")
	var lines []string
	for range 3 {
		require.True(t, sc.Scan())
		lines = append(lines, sc.Text())
	}
	go io.Copy(io.Discard, pr)
	assert.Contains(t, lines[1], "devices:  PostgreSQL", "the URL, which may hold a password, is not printed")

	// Sign up and enroll an app through the real server: the devices land in PostgreSQL.
	jar := map[string]string{}
	post := func(path, ctype, body string) *http.Response {
		req, err := http.NewRequest("POST", "http://127.0.0.1:"+port+path, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", ctype)
		for k, v := range jar {
			req.AddCookie(&http.Cookie{Name: k, Value: v})
		}
		res, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
		require.NoError(t, err)
		for _, c := range res.Cookies() {
			jar[c.Name] = c.Value
		}
		return res
	}
	res := post("/signup", "application/x-www-form-urlencoded", "name=pat&password=password+one&confirm=password+one")
	res.Body.Close()
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	res = post("/mfa/totp/begin", "application/json", `{"name":"Phone"}`)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)

	conn, err := pgx.Connect(context.Background(), u.String())
	require.NoError(t, err)
	defer conn.Close(context.Background())
	var n int
	require.NoError(t, conn.QueryRow(context.Background(), `SELECT count(*) FROM webauthn_users`).Scan(&n))
	assert.Equal(t, 1, n)
	cancel()
	require.NoError(t, <-done)
}
