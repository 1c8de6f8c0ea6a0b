package mfa_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/webauthn"
)

// httpCodes are the error codes the handler documents: its own and, for
// the security key, package webauthn's.
var httpCodes = map[string]bool{
	"invalid_request": true, "malformed_code": true, "invalid_code": true, "not_consecutive": true,
	"invalid_secret": true, "not_totp": true, "seed_file_malformed": true, "seed_file_unsupported": true,
	"seed_file_key_required": true, "seed_file_mac": true, "seed_file_wrong_key": true,
	"unauthenticated": true, "device_deactivated": true, "forbidden": true, "cross_origin": true,
	"enrollment_unknown": true, "device_unknown": true, "not_enrolled": true, "no_recovery_codes": true,
	"serial_not_found": true, "not_found": true, "method_not_allowed": true, "code_reused": true,
	"device_limit": true, "serial_taken": true, "enrollment_expired": true, "request_too_large": true,
	"unsupported_media_type": true, "locked": true, "internal": true,
	// webauthn's
	"malformed_response": true, "wrong_type": true, "challenge_mismatch": true, "challenge_unknown": true,
	"challenge_expired": true, "origin_mismatch": true, "rp_id_mismatch": true, "user_presence_missing": true,
	"user_verification_missing": true, "backup_flags_invalid": true, "algorithm_not_allowed": true,
	"attestation_invalid": true, "verification_failed": true, "backup_eligible": true,
	"attestation_untrusted": true, "credential_wrong_user": true, "user_handle_mismatch": true,
	"credential_deactivated": true, "sign_count_regression": true, "bad_signature": true,
	"credential_unknown": true, "user_unknown": true, "no_credentials": true, "credential_exists": true,
	"credential_limit": true, "user_exists": true,
}

// fuzzRoute is a POST route and the members of its success answer (none
// for a 204).
type fuzzRoute struct {
	path    string // {app}, {token}, {alice}, {bob} are filled in
	success []string
}

var fuzzRoutes = []fuzzRoute{
	{"/totp/begin", []string{"enrollment"}},
	{"/totp/finish", []string{"device"}},
	{"/token/begin", []string{"enrollment"}},
	{"/devices/{app}/rename", []string{"device"}},
	{"/devices/{app}/deactivate", []string{"device"}},
	{"/devices/{app}/reactivate", []string{"device"}},
	{"/devices/{token}/resync", []string{"device"}},
	{"/recovery-codes", []string{"codes", "created"}},
	{"/verify/totp", []string{"verification"}},
	{"/verify/recovery-code", []string{"verification"}},
	{"/verify/key/begin", []string{"challengeId", "publicKey"}},
	{"/verify/key/finish", []string{"verification"}},
	{"/users/{alice}/devices/{token}/deactivate", []string{"device"}},
	{"/users/{alice}/devices/{app}/reactivate", []string{"device"}},
	{"/users/{bob}/unlock", nil},
	{"/keys/begin", []string{"challengeId", "publicKey"}},
	{"/keys/finish", []string{"device"}},
}

// fuzzEnv is one deterministic service: the same seeds from the same
// randomness at the same fixed time, so every run of the target meets
// the same state and a crasher replays. Alice has two TOTP devices (one
// drifted two steps), recovery codes and a pending enrollment; Bob has
// nothing.
type fuzzEnv struct {
	m          *mfa.Manager
	h          http.Handler
	alice, bob *webauthn.User
	app, token string
	pending    string
	// Codes valid at fuzzNow, for the seeds.
	appCode, tokenCode1, tokenCode2, pending1, pending2 string
	recovery                                            []string
	secrets                                             []string
}

// fuzzNow is the fixed time of every request.
var fuzzNow = time.Date(2026, 3, 1, 12, 0, 5, 0, time.UTC)

func newFuzzEnv(t testing.TB) *fuzzEnv {
	t.Helper()
	ctx := context.Background()
	clock := &httpClock{t: fuzzNow.Add(-2 * time.Minute)}
	store := mfa.NewMemoryStore()
	rp, err := webauthn.New(webauthn.Config{
		RPID: "localhost", Origins: []string{"https://localhost"}, Store: store,
		Now: clock.Now, Rand: rand.NewChaCha8([32]byte{1}),
	})
	require.NoError(t, err)
	keys, err := mfa.NewKeyring("k1", map[string][]byte{"k1": bytes.Repeat([]byte{9}, 32)})
	require.NoError(t, err)
	m, err := mfa.New(mfa.Config{
		RelyingParty: rp, Keys: keys, Now: clock.Now, Rand: rand.NewChaCha8([32]byte{2}),
		RecoveryHash: mfa.RecoveryHash{Time: 1, MemoryKiB: 8, Threads: 1},
	})
	require.NoError(t, err)
	e := &fuzzEnv{m: m}
	e.alice, err = rp.CreateUser(ctx, "alice@example.com", "Alice")
	require.NoError(t, err)
	e.bob, err = rp.CreateUser(ctx, "bob@example.com", "Bob")
	require.NoError(t, err)

	// Alice's devices and pending enrollment are hardware tokens from
	// known seeds: an app's enrollment draws a QR code, which would cost
	// most of the run. Her "app" is in step with the clock, her token two
	// steps ahead.
	enroll := func(serial string, seed []byte, drift int) (string, *httpTOTP) {
		tok := httpToken(seed)
		e.secrets = append(e.secrets, tok.secret)
		en, err := m.BeginToken(ctx, e.alice.ID, mfa.Token{Serial: serial, Secret: tok.secret})
		require.NoError(t, err)
		at := clock.Now().Add(time.Duration(drift) * 30 * time.Second)
		d, err := m.FinishEnrollment(ctx, e.alice.ID, en.ID, tok.code(t, at.Add(-30*time.Second)), tok.code(t, at))
		require.NoError(t, err)
		return d.ID, tok
	}
	clock.Add(30 * time.Second)
	var app, tok *httpTOTP
	e.app, app = enroll("F-0", []byte("fuzz app seed, twenty+ bytes"), 0)
	clock.Add(30 * time.Second)
	e.token, tok = enroll("F-1", []byte("fuzz token seed, twenty+ bytes"), 2)
	pend := httpToken([]byte("fuzz pending seed, twenty+ bytes"))
	e.secrets = append(e.secrets, pend.secret)
	en, err := m.BeginToken(ctx, e.alice.ID, mfa.Token{Serial: "F-9", Secret: pend.secret})
	require.NoError(t, err)
	e.pending = en.ID

	set, err := m.GenerateRecoveryCodes(ctx, e.alice.ID)
	require.NoError(t, err)
	for _, c := range set.Codes {
		e.recovery = append(e.recovery, c.Reveal())
		e.secrets = append(e.secrets, c.Reveal(), strings.ReplaceAll(c.Reveal(), "-", ""))
	}

	clock.Add(fuzzNow.Sub(clock.Now()))
	e.appCode = app.code(t, fuzzNow)
	e.tokenCode1 = tok.code(t, fuzzNow.Add(3*30*time.Second))
	e.tokenCode2 = tok.code(t, fuzzNow.Add(4*30*time.Second))
	e.pending1 = pend.code(t, fuzzNow.Add(-30*time.Second))
	e.pending2 = pend.code(t, fuzzNow)

	e.h, err = m.Handler(mfa.HandlerConfig{
		CurrentUser: func(r *http.Request) ([]byte, error) { return e.alice.ID, nil },
		OnVerified:  func(http.ResponseWriter, *http.Request, *mfa.Verification) error { return nil },
		Authorize: func(r *http.Request, actor, target []byte) error {
			return nil // Alice administers everyone, herself included
		},
		OnError: func(r *http.Request, err error) { t.Errorf("%s: internal error: %v", r.URL.Path, err) },
	})
	require.NoError(t, err)
	return e
}

func (e *fuzzEnv) path(r fuzzRoute) string {
	b64 := base64.RawURLEncoding.EncodeToString
	return strings.NewReplacer("{app}", e.app, "{token}", e.token, "{alice}", b64(e.alice.ID), "{bob}", b64(e.bob.ID)).Replace(r.path)
}

// fuzzState is what a refused request must leave as it was.
type fuzzState struct {
	Alice, Bob         []*mfa.Device
	AliceLeft, BobLeft int
}

func (e *fuzzEnv) state(t *testing.T) fuzzState {
	t.Helper()
	ctx := context.Background()
	var s fuzzState
	var err error
	s.Alice, err = e.m.Devices(ctx, e.alice.ID)
	require.NoError(t, err)
	s.Bob, err = e.m.Devices(ctx, e.bob.ID)
	require.NoError(t, err)
	s.AliceLeft, err = e.m.RecoveryCodesLeft(ctx, e.alice.ID)
	require.NoError(t, err)
	s.BobLeft, err = e.m.RecoveryCodesLeft(ctx, e.bob.ID)
	require.NoError(t, err)
	return s
}

// FuzzHandlerJSON posts arbitrary bodies to every POST route for a
// signed-in user: the answer is never a 500, always a JSON object of the
// route's success shape or a documented error, and a refused request
// changes nothing stored.
func FuzzHandlerJSON(f *testing.F) {
	e := newFuzzEnv(f)
	seeds := map[int][]string{
		0:  {`{"name":"Phone 2"}`, `{}`, ``, `{"name":""}`, `{"name":"` + strings.Repeat("x", 200) + `"}`, `{"name":1}`},
		1:  {`{"id":"` + e.pending + `","code1":"` + e.pending1 + `","code2":"` + e.pending2 + `"}`, `{"id":"` + e.pending + `","code1":"000000","code2":"111111"}`, `{"id":"otp_x","code1":"1","code2":"2"}`},
		2:  {`{"serial":"F-2","secret":"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}`, `{"serial":"F-3","seedFile":"` + base64.StdEncoding.EncodeToString(httpPSKC("F-3", []byte("0123456789abcdef0123"))) + `"}`, `{"serial":"F-4","seedFile":"PEtleUNvbnRhaW5lci8+","preSharedKey":"00ff","password":"pw"}`, `{"serial":"F-5","secret":"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP","digits":8,"period":60}`},
		3:  {`{"name":"Work phone"}`, `{"name":"\u0000"}`, `{}`},
		4:  {``, `{}`, `null`, `[]`},
		5:  {``, `{}`},
		6:  {`{"code1":"` + e.tokenCode1 + `","code2":"` + e.tokenCode2 + `"}`, `{"code1":"123456","code2":"123456"}`},
		7:  {``, `{}`, `{"n":1}`},
		8:  {`{"code":"` + e.appCode + `"}`, `{"code":"000000"}`, `{"code":"12 34 56"}`, `{"code":"` + strings.Repeat("9", 100) + `"}`},
		9:  {`{"code":"` + e.recovery[0] + `"}`, `{"code":"` + strings.ToLower(e.recovery[1]) + `"}`, `{"code":"0000-0000-0000-0000"}`, `{"code":"iloU"}`},
		10: {``, `{}`},
		11: {`{"credential":{}}`, `{"credential":null}`, `{"credential":{"id":"AA","rawId":"AA","type":"public-key","response":{}}}`},
		12: {``, `{}`},
		13: {``, `{}`},
		14: {`{"factor":"totp"}`, `{"factor":"recovery_code"}`, `{"factor":"x"}`, `{}`},
		15: {``, `{}`, `{"name":"x"}`},
		16: {`{"challengeId":"x","name":"Key","credential":{}}`, `{"credential":null}`, `{"challengeId":"","credential":{"id":"AA","rawId":"AA","type":"public-key","response":{}}}`},
	}
	for i, bodies := range seeds {
		for _, b := range bodies {
			f.Add(uint8(i), []byte(b))
		}
	}
	f.Fuzz(func(t *testing.T, route uint8, body []byte) {
		e := newFuzzEnv(t)
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		before := e.state(t)

		w := httptest.NewRecorder()
		req := httptest.NewRequest("POST", e.path(rt), bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		e.h.ServeHTTP(w, req)

		require.NotEqual(t, http.StatusInternalServerError, w.Code, "body: %s", w.Body)
		assert.Equal(t, "no-store", w.Header().Get("Cache-Control"))
		if w.Code == http.StatusNoContent {
			assert.Nil(t, rt.success, "%s answered 204", rt.path)
			assert.Empty(t, w.Body.Bytes())
			return
		}
		assert.Equal(t, "application/json", w.Header().Get("Content-Type"))
		var obj map[string]json.RawMessage
		require.NoError(t, json.Unmarshal(w.Body.Bytes(), &obj), "body: %s", w.Body)
		require.NotNil(t, obj, "not an object: %s", w.Body)
		if w.Code < 300 {
			assert.Len(t, obj, len(rt.success), "body: %s", w.Body)
			for _, k := range rt.success {
				assert.Contains(t, obj, k, "body: %s", w.Body)
			}
			return
		}
		require.GreaterOrEqual(t, w.Code, 400)
		require.Less(t, w.Code, 500)
		require.Len(t, obj, 1, "body: %s", w.Body)
		var errBody struct {
			Code    string    `json:"code"`
			Message string    `json:"message"`
			Until   time.Time `json:"until"`
		}
		dec := json.NewDecoder(bytes.NewReader(obj["error"]))
		dec.DisallowUnknownFields()
		require.NoError(t, dec.Decode(&errBody), "body: %s", w.Body)
		assert.True(t, httpCodes[errBody.Code], "undocumented code %q", errBody.Code)
		assert.NotEmpty(t, errBody.Message)
		for _, s := range e.secrets {
			assert.NotContains(t, w.Body.String(), s, "an error answer holds a secret")
		}
		assert.Equal(t, before, e.state(t), "a refused request changed what is stored")
	})
}
