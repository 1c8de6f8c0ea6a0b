package mfa_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/webauthn"
	"github.com/fidokit/fidokit/webauthn/webauthntest"
)

func TestRequireMFA(t *testing.T) {
	ctx := t.Context()
	c := newClock()
	store := mfa.NewMemoryStore()
	rp, err := webauthn.New(webauthn.Config{RPID: testRPID, Origins: []string{testOrigin}, Store: store, Now: c.Now})
	require.NoError(t, err)
	keys, err := mfa.NewKeyring("k", map[string][]byte{"k": testKey})
	require.NoError(t, err)
	admins := map[string]bool{}
	m, err := mfa.New(mfa.Config{RelyingParty: rp, Keys: keys, Now: c.Now, RecoveryHash: cheapHash,
		Roles: func(ctx context.Context, userID []byte) ([]string, error) {
			if admins[string(userID)] {
				return []string{mfa.RoleAdministrator}, nil
			}
			return nil, nil
		}})
	require.NoError(t, err)
	s := &stack{rp: rp, m: m, clock: c, store: store}

	appUser := s.user(t, "app@example.com")
	s.enrollApp(t, appUser.ID, "Phone")
	keyUser := s.user(t, "key@example.com")
	s.registerKey(t, webauthntest.NewClient(t, webauthntest.Options{}), keyUser.ID, "Key")
	adminApp := s.user(t, "admin-app@example.com")
	s.enrollApp(t, adminApp.ID, "Phone")
	admins[string(adminApp.ID)] = true
	adminKey := s.user(t, "admin-key@example.com")
	s.registerKey(t, webauthntest.NewClient(t, webauthntest.Options{}), adminKey.ID, "Key")
	admins[string(adminKey.ID)] = true
	newcomer := s.user(t, "new@example.com")

	type body struct {
		Error struct {
			Code          string   `json:"code"`
			Message       string   `json:"message"`
			Factors       []string `json:"factors"`
			MaxAgeSeconds int64    `json:"maxAgeSeconds"`
		} `json:"error"`
	}
	serve := func(t *testing.T, p mfa.Policy, sess mfa.Session, sessErr error) (int, body, bool) {
		t.Helper()
		called := false
		h := m.Require(p, func(*http.Request) (mfa.Session, error) { return sess, sessErr }, nil)(
			http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { called = true }))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", "/admin/", nil))
		var b body
		if !called {
			require.NoError(t, json.Unmarshal(rec.Body.Bytes(), &b), rec.Body.String())
			assert.Equal(t, "no-store", rec.Header().Get("Cache-Control"))
		}
		return rec.Code, b, called
	}
	now := c.Now()
	fresh := func(u *webauthn.User, f mfa.Factor) mfa.Session {
		return mfa.Session{UserID: u.ID, MFAAt: now.Add(-time.Minute), MFAFactor: f}
	}
	step := mfa.Policy{MaxAge: 15 * time.Minute}

	for _, tc := range []struct {
		name    string
		p       mfa.Policy
		sess    mfa.Session
		status  int
		code    string
		factors []string
	}{
		{"no session", mfa.Policy{}, mfa.Session{}, 401, "mfa_required", []string{}},
		{"first factor only", mfa.Policy{}, mfa.Session{UserID: appUser.ID}, 401, "mfa_required", []string{"totp"}},
		{"first factor only, key", mfa.Policy{}, mfa.Session{UserID: keyUser.ID}, 401, "mfa_required", []string{"security_key"}},
		{"fresh TOTP", step, fresh(appUser, mfa.FactorTOTP), 200, "", nil},
		{"stale TOTP", step, mfa.Session{UserID: appUser.ID, MFAAt: now.Add(-16 * time.Minute), MFAFactor: mfa.FactorTOTP}, 401, "mfa_stale", []string{"totp"}},
		{"TOTP where a key is required", mfa.Policy{PhishingResistant: true}, fresh(appUser, mfa.FactorTOTP), 403, "mfa_not_phishing_resistant", []string{"security_key"}},
		{"a key where a key is required", mfa.Policy{PhishingResistant: true}, fresh(keyUser, mfa.FactorSecurityKey), 200, "", nil},
		{"an administrator with only an app", mfa.Policy{AdministratorsNeedSecurityKey: true}, fresh(adminApp, mfa.FactorTOTP), 403, "mfa_security_key_required", []string{"security_key"}},
		{"an administrator with a key", mfa.Policy{AdministratorsNeedSecurityKey: true}, fresh(adminKey, mfa.FactorSecurityKey), 200, "", nil},
		{"a non-administrator under the admin policy", mfa.Policy{AdministratorsNeedSecurityKey: true}, fresh(appUser, mfa.FactorTOTP), 200, "", nil},
		{"policy for administrators only: others pass", mfa.Policy{Roles: []string{mfa.RoleAdministrator}}, mfa.Session{UserID: appUser.ID}, 200, "", nil},
		{"policy for administrators only: an administrator", mfa.Policy{Roles: []string{mfa.RoleAdministrator}}, mfa.Session{UserID: adminKey.ID}, 401, "mfa_required", []string{"security_key"}},
		{"no device, within the grace period", mfa.Policy{EnrollmentGrace: time.Hour}, mfa.Session{UserID: newcomer.ID}, 200, "", nil},
		{"no device, no grace", mfa.Policy{}, mfa.Session{UserID: newcomer.ID}, 403, "mfa_enrollment_required", []string{"security_key", "authenticator_app", "hardware_token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, b, called := serve(t, tc.p, tc.sess, nil)
			if tc.status == 200 {
				assert.True(t, called, "the handler runs")
				return
			}
			assert.False(t, called, "the wrapped handler must not run")
			assert.Equal(t, tc.status, status)
			assert.Equal(t, tc.code, b.Error.Code)
			assert.NotEmpty(t, b.Error.Message)
			if tc.factors != nil {
				assert.Equal(t, tc.factors, b.Error.Factors)
			}
			if tc.p.MaxAge > 0 && tc.code == "mfa_stale" {
				assert.EqualValues(t, 900, b.Error.MaxAgeSeconds)
			}
		})
	}

	t.Run("grace ends", func(t *testing.T) {
		c.Add(2 * time.Hour)
		status, b, called := serve(t, mfa.Policy{EnrollmentGrace: time.Hour}, mfa.Session{UserID: newcomer.ID}, nil)
		assert.False(t, called)
		assert.Equal(t, 403, status)
		assert.Equal(t, "mfa_enrollment_required", b.Error.Code)
	})
	t.Run("every device deactivated", func(t *testing.T) {
		lost := s.user(t, "lost@example.com")
		d, _ := s.enrollApp(t, lost.ID, "Phone")
		require.NoError(t, m.Deactivate(ctx, lost.ID, d.ID))
		// No recovery code: nothing lets the password alone in, and
		// the account is not offered enrollment either.
		status, b, called := serve(t, mfa.Policy{EnrollmentGrace: 24 * time.Hour}, mfa.Session{UserID: lost.ID}, nil)
		assert.False(t, called)
		assert.Equal(t, 401, status)
		assert.Equal(t, "mfa_required", b.Error.Code)
		assert.Empty(t, b.Error.Factors)
		_, err := m.GenerateRecoveryCodes(ctx, lost.ID)
		require.NoError(t, err)
		_, b, _ = serve(t, mfa.Policy{}, mfa.Session{UserID: lost.ID}, nil)
		assert.Equal(t, "mfa_required", b.Error.Code)
		assert.Equal(t, []string{"recovery_code"}, b.Error.Factors, "a recovery code is the way back in")
		f, err := m.Factors(ctx, lost.ID)
		require.NoError(t, err)
		assert.False(t, f.Enabled())
		assert.True(t, f.Required())
		assert.Equal(t, 1, f.Deactivated)
	})
	t.Run("session error", func(t *testing.T) {
		status, b, called := serve(t, mfa.Policy{}, mfa.Session{}, errors.New("session store down"))
		assert.False(t, called)
		assert.Equal(t, 500, status)
		assert.Equal(t, "internal", b.Error.Code)
		assert.NotContains(t, b.Error.Message, "session store")
	})
	t.Run("Check in Go", func(t *testing.T) {
		err := m.Check(ctx, mfa.Policy{PhishingResistant: true}, fresh(appUser, mfa.FactorTOTP))
		var re *mfa.RefusalError
		require.ErrorAs(t, err, &re)
		assert.ErrorIs(t, err, mfa.ErrNotPhishingResistant)
		assert.True(t, slices.Equal(re.Factors, []string{"security_key"}))
	})
}
