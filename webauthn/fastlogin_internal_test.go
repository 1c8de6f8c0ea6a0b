package webauthn

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	gowebauthn "github.com/go-webauthn/webauthn/webauthn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// envelopes are sessions as FinishLogin and FinishRegistration find them.
func envelopes() []*sessionEnvelope {
	id := []byte("0123456789abcdef0123456789abcdef")
	at := time.Date(2026, 12, 2, 0, 47, 16, 532365390, time.UTC)
	return []*sessionEnvelope{
		{Session: gowebauthn.SessionData{Challenge: "GZxzdykI5VzFmzW57BLMO9SDq9540P66iTU5L8d1yjg", UserID: id, AllowedCredentialIDs: [][]byte{id, id[:3]}, Expires: at, UserVerification: protocol.VerificationPreferred}},
		{Session: gowebauthn.SessionData{Challenge: "x", Expires: at.In(time.FixedZone("X", 3600)), UserVerification: protocol.VerificationRequired}, Binding: id},
		{Session: gowebauthn.SessionData{Challenge: "<&>"}},
		{Session: gowebauthn.SessionData{Challenge: "c3", RelyingPartyID: "example.com", Origin: "https://example.com", Mediation: "conditional", AuthorizeUVInitialization: true}},
		{Session: gowebauthn.SessionData{Challenge: "c", AllowedCredentialIDs: [][]byte{{}}, UserID: []byte{}}},
		{Session: gowebauthn.SessionData{Challenge: "c", CredParams: []protocol.CredentialParameter{{Type: "public-key", Algorithm: -7}}}, Signup: &signup{Name: "alice"}},
		{Session: gowebauthn.SessionData{Challenge: "c", Extensions: protocol.SessionExtensions{AppID: "https://example.com"}}},
	}
}

// TestParseEnvelope: what parseEnvelope reads, it reads as encoding/json.
func TestParseEnvelope(t *testing.T) {
	fast := 0
	for _, env := range envelopes() {
		raw, err := json.Marshal(env)
		require.NoError(t, err)
		if checkParseEnvelope(t, raw) {
			fast++
		}
	}
	assert.Equal(t, 4, fast, "sign-in sessions parsed without encoding/json")
}

// checkParseEnvelope fails t if parseEnvelope reads raw other than as
// json.Unmarshal does, and reports whether it read it.
func checkParseEnvelope(t *testing.T, raw []byte) bool {
	t.Helper()
	var got sessionEnvelope
	if !parseEnvelope(raw, &got) {
		return false
	}
	var want sessionEnvelope
	require.NoError(t, json.Unmarshal(raw, &want), "parseEnvelope read %s, which encoding/json refuses", raw)
	assert.Equal(t, want, got, "%s", raw)
	assert.True(t, want.Session.Expires.Equal(got.Session.Expires))
	return true
}

func FuzzParseEnvelope(f *testing.F) {
	for _, env := range envelopes() {
		raw, err := json.Marshal(env)
		require.NoError(f, err)
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, raw []byte) { checkParseEnvelope(t, raw) })
}
