package fido

import (
	"encoding/base64"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// checkResponseJSON holds registrationJSON and authenticationJSON to
// json.Marshal of the structs they stand in for.
func checkResponseJSON(t *testing.T, credID, cdj, authData, sig, pub []byte, transports []string, alg int64, ext map[string]any) {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	reg := registrationResponseJSON{
		ID: b64(credID), RawID: b64(credID),
		Response: attestationResponseJSON{
			ClientDataJSON: b64(cdj), AuthenticatorData: b64(authData), Transports: transports,
			PublicKeyAlgorithm: alg, AttestationObject: b64(sig),
		},
		AuthenticatorAttachment: "cross-platform", ClientExtensionResults: ext, Type: "public-key",
	}
	if len(pub) > 0 {
		reg.Response.PublicKey = b64(pub)
	}
	want, wantErr := json.Marshal(&reg)
	got, err := registrationJSON(credID, cdj, authData, transports, pub, alg, sig, ext)
	require.Equal(t, wantErr == nil, err == nil, "json.Marshal: %v, registrationJSON: %v", wantErr, err)
	assert.Equal(t, string(want), string(got))

	auth := authenticationResponseJSON{
		ID: b64(credID), RawID: b64(credID),
		Response:                assertionResponseJSON{ClientDataJSON: b64(cdj), AuthenticatorData: b64(authData), Signature: b64(sig), UserHandle: b64(pub)},
		AuthenticatorAttachment: "cross-platform", ClientExtensionResults: ext, Type: "public-key",
	}
	want, wantErr = json.Marshal(&auth)
	got, err = authenticationJSON(credID, cdj, authData, sig, pub, ext)
	require.Equal(t, wantErr == nil, err == nil, "json.Marshal: %v, authenticationJSON: %v", wantErr, err)
	assert.Equal(t, string(want), string(got))
}

func TestResponseJSON(t *testing.T) {
	for _, tt := range []struct {
		name       string
		transports []string
		pub        []byte
		ext        map[string]any
	}{
		{"plain", []string{"usb"}, []byte{1, 2, 3}, map[string]any{}},
		{"nil extensions", []string{"nfc", "usb"}, nil, nil},
		{"extension results", []string{"usb"}, []byte{0xff}, map[string]any{"credProps": map[string]bool{"rk": true}, "<&>": "\u2028"}},
		{"escaped transport", []string{"<usb>", "\"q\"", "\xff"}, []byte{}, map[string]any{"largeBlob": map[string]any{"blob": []byte{1}}}},
		{"unmarshalable extension", nil, []byte{1}, map[string]any{"x": func() {}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			checkResponseJSON(t, []byte("credential id"), []byte(`{"type":"webauthn.create"}`), make([]byte, 37),
				make([]byte, 71), tt.pub, tt.transports, -7, tt.ext)
		})
	}
}

// FuzzResponseJSON is TestResponseJSON over any bytes and strings.
func FuzzResponseJSON(f *testing.F) {
	f.Add([]byte("id"), []byte(`{"type":"webauthn.get"}`), make([]byte, 37), make([]byte, 70), []byte{1}, "usb", "credProps", "x", int64(-7))
	f.Add([]byte{}, []byte{}, []byte{}, []byte{}, []byte{}, "<\xff>", "", "\u2028", int64(1<<62))
	f.Fuzz(func(t *testing.T, credID, cdj, authData, sig, pub []byte, transport, extKey, extVal string, alg int64) {
		ext := map[string]any{}
		if extKey != "" {
			ext[extKey] = extVal
		}
		checkResponseJSON(t, credID, cdj, authData, sig, pub, []string{transport, "usb"}, alg, ext)
	})
}
