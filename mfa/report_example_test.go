package mfa_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/csv"
	"log"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/webauthn"
)

// Write the audit report (the credential report) as CSV: who has MFA,
// with which devices, and which administrator lacks a security key.
func ExampleManager_WriteReportCSV() {
	ctx := context.Background()
	// A fixed clock and fixed user handles keep this output stable; a
	// service leaves Config.Now nil and lets rp.CreateUser draw handles.
	now := time.Date(2026, 12, 1, 9, 30, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	store := mfa.NewMemoryStore()
	rp, err := webauthn.New(webauthn.Config{
		RPID: "example.com", Origins: []string{"https://example.com"}, Store: store, Now: clock,
	})
	if err != nil {
		log.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	keys, err := mfa.NewKeyring("2026-12", map[string][]byte{"2026-12": key})
	if err != nil {
		log.Fatal(err)
	}
	root, alice := []byte("admin-01"), []byte("user-001")
	m, err := mfa.New(mfa.Config{
		RelyingParty: rp, Keys: keys, Issuer: "Example", Now: clock,
		// Who is an administrator is the application's to say.
		Roles: func(ctx context.Context, userID []byte) ([]string, error) {
			if string(userID) == string(root) {
				return []string{mfa.RoleAdministrator}, nil
			}
			return nil, nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, u := range []*webauthn.User{
		{ID: root, Name: "root@example.com", Created: now.Add(-30 * 24 * time.Hour)},
		{ID: alice, Name: "alice@example.com", Created: now.Add(-2 * time.Hour)},
	} {
		if err := store.CreateUser(ctx, u); err != nil {
			log.Fatal(err)
		}
	}
	// The administrator has only an authenticator app; alice only
	// recovery codes, one of them used.
	e, err := m.BeginApp(ctx, root, "Phone")
	if err != nil {
		log.Fatal(err)
	}
	uri := e.URI.Reveal()
	if _, err := m.FinishEnrollment(ctx, root, e.ID, phoneCode(uri, now.Add(-30*time.Second)), phoneCode(uri, now)); err != nil {
		log.Fatal(err)
	}
	set, err := m.GenerateRecoveryCodes(ctx, alice)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := m.VerifyRecoveryCode(ctx, alice, set.Codes[0].Reveal()); err != nil {
		log.Fatal(err)
	}

	if err := m.WriteReportCSV(ctx, os.Stdout, mfa.ReportOptions{}); err != nil {
		log.Fatal(err)
	}
	// Output:
	// user,user_id,user_creation_time,mfa_active,security_keys,security_key_last_used,authenticator_apps,authenticator_app_last_used,hardware_tokens,hardware_token_last_used,deactivated_devices,recovery_codes_left,administrator,administrator_without_security_key,unused_devices,clone_warning,locked_factors
	// root@example.com,YWRtaW4tMDE,2026-11-01T09:30:00Z,true,0,N/A,1,N/A,0,N/A,0,0,true,true,0,false,
	// alice@example.com,dXNlci0wMDE,2026-12-01T07:30:00Z,false,0,N/A,0,N/A,0,N/A,0,9,false,false,0,false,
}

// The CSV the example prints starts with the documented header, whatever
// the accounts.
func TestReportCSVHeader(t *testing.T) {
	m, _ := newExampleManager()
	var buf bytes.Buffer
	require.NoError(t, m.WriteReportCSV(t.Context(), &buf, mfa.ReportOptions{}))
	rows, err := csv.NewReader(&buf).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 2, "the header and the example's one account")
	assert.Equal(t, mfa.ReportColumns(), rows[0])
}
