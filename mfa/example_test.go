package mfa_test

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/webauthn"
)

// newExampleManager is the set-up every example shares: a relying party
// on a store that holds MFA devices too, and a keyring for TOTP seeds.
func newExampleManager() (*mfa.Manager, *webauthn.User) {
	ctx := context.Background()
	rp, err := webauthn.New(webauthn.Config{
		RPID:    "example.com",
		Origins: []string{"https://example.com"},
		Store:   mfa.NewMemoryStore(), // or store/sqlite, store/postgres
	})
	if err != nil {
		log.Fatal(err)
	}
	key := make([]byte, 32) // in a service: from its secrets manager
	rand.Read(key)
	keys, err := mfa.NewKeyring("2026-12", map[string][]byte{"2026-12": key})
	if err != nil {
		log.Fatal(err)
	}
	m, err := mfa.New(mfa.Config{RelyingParty: rp, Keys: keys, Issuer: "Example"})
	if err != nil {
		log.Fatal(err)
	}
	user, err := rp.CreateUser(ctx, "alice@example.com", "Alice")
	if err != nil {
		log.Fatal(err)
	}
	return m, user
}

// phoneCode plays the person's authenticator app: it reads the otpauth URI
// (from the QR code) and computes the code at t.
func phoneCode(uri string, t time.Time) string {
	k, err := otp.NewKeyFromURL(uri)
	if err != nil {
		log.Fatal(err)
	}
	code, err := totp.GenerateCode(k.Secret(), t)
	if err != nil {
		log.Fatal(err)
	}
	return code
}

// Enroll an authenticator app and sign in with it as the second factor.
func ExampleManager_BeginApp() {
	ctx := context.Background()
	m, user := newExampleManager()

	e, err := m.BeginApp(ctx, user.ID, "Phone")
	if err != nil {
		log.Fatal(err)
	}
	// Show e.QR (a PNG) and, behind "show secret key", e.Secret.Reveal();
	// then ask for two consecutive codes.
	now := time.Now()
	first, second := phoneCode(e.URI.Reveal(), now.Add(-30*time.Second)), phoneCode(e.URI.Reveal(), now)
	d, err := m.FinishEnrollment(ctx, user.ID, e.ID, first, second)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("enrolled:", d.Name, d.Type)

	// At sign-in, after the password: the current code passes, once.
	_, err = m.VerifyTOTP(ctx, user.ID, second)
	fmt.Println("the enrollment's code again:", errors.Is(err, mfa.ErrCodeReused))
	code := phoneCode(e.URI.Reveal(), now.Add(30*time.Second)) // the phone's next code
	v, err := m.VerifyTOTP(ctx, user.ID, code)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("second factor:", v.Factor, v.Device.Name)
	// Output:
	// enrolled: Phone authenticator_app
	// the enrollment's code again: true
	// second factor: totp Phone
}

// Hand out recovery codes, then use one to sign in.
func ExampleManager_GenerateRecoveryCodes() {
	ctx := context.Background()
	m, user := newExampleManager()

	set, err := m.GenerateRecoveryCodes(ctx, user.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(set.Codes), "codes, shown once; printed by accident they read", set.Codes[0])
	// for _, c := range set.Codes { fmt.Println(c.Reveal()) } // "K7QM-2XHD-9RTB-W4NE"

	v, err := m.VerifyRecoveryCode(ctx, user.ID, set.Codes[0].Reveal())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("signed in with a recovery code;", v.RecoveryCodesLeft, "left")
	_, err = m.VerifyRecoveryCode(ctx, user.ID, set.Codes[0].Reveal())
	fmt.Println("again:", errors.Is(err, mfa.ErrCodeReused))
	// Output:
	// 10 codes, shown once; printed by accident they read [redacted]
	// signed in with a recovery code; 9 left
	// again: true
}

// Require MFA, a recent one from a security key, for everything under
// /admin/.
func ExampleManager_Require() {
	m, user := newExampleManager()
	// The application's own session: here a stub that says the person
	// signed in with a password and passed an authenticator app's code
	// an hour ago.
	session := func(r *http.Request) (mfa.Session, error) {
		return mfa.Session{UserID: user.ID, MFAAt: time.Now().Add(-time.Hour), MFAFactor: mfa.FactorTOTP}, nil
	}
	admin := http.NewServeMux() // the pages to protect
	admin.HandleFunc("/admin/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprintln(w, "admin page") })

	mux := http.NewServeMux()
	mux.Handle("/admin/", m.Require(mfa.Policy{MaxAge: 15 * time.Minute, PhishingResistant: true}, session, nil)(admin))

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/admin/users", nil))
	var refusal struct {
		Error struct {
			Code          string `json:"code"`
			MaxAgeSeconds int    `json:"maxAgeSeconds"`
		} `json:"error"`
	}
	json.Unmarshal(rec.Body.Bytes(), &refusal)
	fmt.Println(rec.Code, refusal.Error.Code, refusal.Error.MaxAgeSeconds)
	// Output:
	// 401 mfa_stale 900
}

// The examples' set-up gives a fresh account with no device yet, so what
// they print is what enrolling does.
func TestExampleSetup(t *testing.T) {
	m, user := newExampleManager()
	f, err := m.Factors(t.Context(), user.ID)
	require.NoError(t, err)
	assert.False(t, f.Required())
}
