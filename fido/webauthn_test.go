package fido

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/fidokit/fidokit/internal/ctap"
)

// fakeKey is an Authenticator that records requests and answers with
// canned results, for testing the client's mapping without a wire.
type fakeKey struct {
	info *Info

	mu  sync.Mutex
	mc  []*MakeCredentialRequest
	ga  []*GetAssertionRequest
	err error // returned by MakeCredential and GetAssertion when set
	// block makes MakeCredential and GetAssertion wait for ctx, as a key
	// waiting for a touch does.
	block bool
	// att answers MakeCredential; as answers GetAssertion.
	att *Attestation
	as  []*Assertion
}

var _ Authenticator = (*fakeKey)(nil)

func (k *fakeKey) Info(context.Context) (*Info, error) { return k.info, nil }
func (k *fakeKey) Close() error                        { return nil }

func (k *fakeKey) MakeCredential(ctx context.Context, req *MakeCredentialRequest) (*Attestation, error) {
	k.mu.Lock()
	k.mc = append(k.mc, req)
	k.mu.Unlock()
	if k.block {
		<-ctx.Done()
		return nil, fmt.Errorf("fido: makeCredential: %w", errors.Join(ctx.Err(), StatusKeepaliveCancel))
	}
	if k.err != nil {
		return nil, k.err
	}
	return k.att, nil
}

func (k *fakeKey) GetAssertion(ctx context.Context, req *GetAssertionRequest) ([]*Assertion, error) {
	k.mu.Lock()
	k.ga = append(k.ga, req)
	k.mu.Unlock()
	if k.block {
		<-ctx.Done()
		return nil, fmt.Errorf("fido: getAssertion: %w", errors.Join(ctx.Err(), StatusKeepaliveCancel))
	}
	if k.err != nil {
		return nil, k.err
	}
	return k.as, nil
}

func (k *fakeKey) calls() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.mc) + len(k.ga)
}

// testAttestation builds an attestation for rpID with a fresh P-256 key, in
// format "packed" with an x5c chain unless self is set.
func testAttestation(t *testing.T, rpID string, aaguid [16]byte, self bool) (*Attestation, *ecdsa.PrivateKey) {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cose, err := ctap.MarshalPublicKey(&priv.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	credID := []byte("credential-" + rpID)
	ad := (&ctap.AuthData{
		RPIDHash:  RPIDHash(rpID),
		Flags:     ctap.FlagUP,
		SignCount: 1,
		Attested:  &ctap.AttestedCredential{AAGUID: aaguid, CredentialID: credID, PublicKey: cose},
	}).Marshal()
	stmt := map[string]any{"alg": int64(-7), "sig": []byte{0x30, 0x00}}
	if !self {
		stmt["x5c"] = [][]byte{{0x30, 0x03, 0x02, 0x01, 0x01}}
	}
	return &Attestation{
		Format:       "packed",
		AuthData:     ad,
		Statement:    ctap.MustMarshal(stmt),
		CredentialID: credID,
		PublicKey:    cose,
		Algorithm:    ES256,
		AAGUID:       aaguid,
		SignCount:    1,
		UserPresent:  true,
	}, priv
}

func b64s(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

// creationJSON is minimal creation options for rp "example.com" with
// extra members merged in (a nil value deletes a member).
func creationJSON(t *testing.T, extra map[string]any) []byte {
	t.Helper()
	o := map[string]any{
		"rp":               map[string]any{"id": "example.com", "name": "Example"},
		"user":             map[string]any{"id": b64s("user-1"), "name": "alice", "displayName": "Alice"},
		"challenge":        b64s("0123456789abcdef"),
		"pubKeyCredParams": []any{map[string]any{"type": "public-key", "alg": -7}},
	}
	for k, v := range extra {
		if v == nil {
			delete(o, k)
		} else {
			o[k] = v
		}
	}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func requestJSON(t *testing.T, extra map[string]any) []byte {
	t.Helper()
	o := map[string]any{"challenge": b64s("0123456789abcdef"), "rpId": "example.com"}
	for k, v := range extra {
		if v == nil {
			delete(o, k)
		} else {
			o[k] = v
		}
	}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestClientDataJSON(t *testing.T) {
	got := clientDataJSON("webauthn.create", []byte{0xfb, 0xff, 0x00}, "https://example.com")
	want := `{"type":"webauthn.create","challenge":"-_8A","origin":"https://example.com","crossOrigin":false}`
	if string(got) != want {
		t.Errorf("clientDataJSON =\n%s\nwant\n%s", got, want)
	}
	var v struct {
		Type, Challenge, Origin string
		CrossOrigin             bool
	}
	if err := json.Unmarshal(got, &v); err != nil {
		t.Fatalf("clientDataJSON is not JSON: %v", err)
	}
}

func TestCCDToString(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `""`},
		{"abc", `"abc"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"\x00\x1f\n\t", `"\u0000\u001f\u000a\u0009"`},
		{"<&>'", `"<&>'"`},                   // no HTML escaping
		{"\x7f", "\"\x7f\""},                 // DEL is not escaped
		{"é€😀", `"é€😀"`},                     // UTF-8 as is
		{"\u2028\u2029", "\"\u2028\u2029\""}, // unlike encoding/json
	}
	for _, tt := range tests {
		got := string(appendCCDString(nil, tt.in))
		if got != tt.want {
			t.Errorf("CCDToString(%q) = %s, want %s", tt.in, got, tt.want)
		}
		var back string
		if err := json.Unmarshal([]byte(got), &back); err != nil || back != tt.in {
			t.Errorf("CCDToString(%q) = %s does not decode back: %q, %v", tt.in, got, back, err)
		}
	}
}

func TestCheckOrigin(t *testing.T) {
	tests := []struct {
		name, origin, rpID string
		rpIDPresent        bool
		wantRPID           string // "" means refused
	}{
		{"host default", "https://example.com", "", false, "example.com"},
		{"host equal", "https://example.com", "example.com", true, "example.com"},
		{"parent domain", "https://login.example.com", "example.com", true, "example.com"},
		{"deep parent", "https://a.b.example.co.uk", "example.co.uk", true, "example.co.uk"},
		{"port", "https://example.com:8443", "example.com", true, "example.com"},
		{"localhost http", "http://localhost:8080", "", false, "localhost"},
		{"localhost https", "https://localhost", "localhost", true, "localhost"},
		{"localhost subdomain http", "http://app.localhost:3000", "app.localhost", true, "app.localhost"},
		{"localhost parent", "http://app.localhost", "localhost", true, "localhost"},
		{"unknown tld", "https://a.test.internal", "test.internal", true, "test.internal"},

		{"other domain", "https://example.com", "example.org", true, ""},
		{"suffix without dot", "https://badexample.com", "example.com", true, ""},
		{"child of host", "https://example.com", "login.example.com", true, ""},
		{"public suffix", "https://example.com", "com", true, ""},
		{"private public suffix", "https://alice.github.io", "github.io", true, ""},
		{"host is a public suffix", "https://github.io", "", false, ""},
		{"parent of public suffix", "https://b.s3.amazonaws.com", "amazonaws.com", true, ""},
		{"empty rp.id", "https://example.com", "", true, ""},
		{"uppercase rp.id", "https://example.com", "Example.com", true, ""},
		{"http not localhost", "http://example.com", "", false, ""},
		{"http localhost lookalike", "http://localhost.example.com", "", false, ""},
		{"ftp", "ftp://example.com", "", false, ""},
		{"ipv4", "https://127.0.0.1", "", false, ""},
		{"ipv4 rp.id", "https://127.0.0.1", "127.0.0.1", true, ""},
		{"ipv6", "https://[::1]", "", false, ""},
		{"numeric tld", "https://1.2.3", "", false, ""},
		{"hex ip", "https://0x7f.0x1", "", false, ""},
		{"hex-like tld", "https://a.0xfood", "", false, "a.0xfood"},
		{"path", "https://example.com/", "", false, ""},
		{"query", "https://example.com?x", "", false, ""},
		{"userinfo", "https://u@example.com", "", false, ""},
		{"default port", "https://example.com:443", "", false, ""},
		{"bad port", "https://example.com:99999", "", false, ""},
		{"leading zero port", "https://example.com:0443", "", false, ""},
		{"empty port", "https://example.com:", "", false, ""},
		{"uppercase host", "https://Example.com", "", false, ""},
		{"unicode host", "https://bücher.example", "", false, ""},
		{"no scheme", "example.com", "", false, ""},
		{"empty", "", "", false, ""},
		{"trailing dot", "https://example.com.", "", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			origin, rpID, err := checkOrigin(tt.origin, tt.rpID, tt.rpIDPresent)
			if tt.wantRPID == "" {
				var oe *OriginError
				if !errors.As(err, &oe) || !errors.Is(err, ErrSecurity) {
					t.Fatalf("checkOrigin(%q, %q) = %q, %v; want an *OriginError", tt.origin, tt.rpID, rpID, err)
				}
				if oe.Origin != tt.origin || oe.Reason == "" {
					t.Errorf("OriginError = %+v", oe)
				}
				return
			}
			if err != nil || rpID != tt.wantRPID || origin != tt.origin {
				t.Fatalf("checkOrigin(%q, %q) = %q, %q, %v; want %q", tt.origin, tt.rpID, origin, rpID, err, tt.wantRPID)
			}
		})
	}
}

func TestParseCreationOptions(t *testing.T) {
	// As go-webauthn's protocol.CredentialCreation marshals it.
	wrapped := []byte(`{"publicKey":{"rp":{"name":"Example","id":"example.com"},` +
		`"user":{"name":"alice","displayName":"Alice","id":"dXNlci0x"},` +
		`"challenge":"MDEyMzQ1Njc4OWFiY2RlZg","pubKeyCredParams":[{"type":"public-key","alg":-7},{"type":"public-key","alg":-8}],` +
		`"timeout":300000,"excludeCredentials":[{"type":"public-key","id":"AQID","transports":["usb","nfc"]}],` +
		`"authenticatorSelection":{"residentKey":"preferred","userVerification":"discouraged"},"attestation":"direct"},"mediation":""}`)
	got, err := parseCreationOptions(wrapped)
	if err != nil {
		t.Fatal(err)
	}
	want := &creationOptions{
		RP:               RelyingParty{ID: "example.com", Name: "Example"},
		RPIDPresent:      true,
		User:             User{ID: []byte("user-1"), Name: "alice", DisplayName: "Alice"},
		Challenge:        []byte("0123456789abcdef"),
		Params:           []credParam{{"public-key", ES256}, {"public-key", EdDSA}},
		Timeout:          5 * time.Minute,
		Exclude:          []descriptor{{Type: "public-key", ID: []byte{1, 2, 3}, Transports: []string{"usb", "nfc"}}},
		ResidentKey:      "preferred",
		UserVerification: "discouraged",
		Attestation:      "direct",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseCreationOptions =\n%+v\nwant\n%+v", got, want)
	}

	// Padded base64url, unknown members and unknown enumeration values.
	got, err = parseCreationOptions(creationJSON(t, map[string]any{
		"challenge":   "MDEyMzQ1Njc4OWFiY2RlZg==",
		"future":      true,
		"attestation": "bogus",
		"authenticatorSelection": map[string]any{
			"residentKey": "sometimes", "requireResidentKey": true, "authenticatorAttachment": "cross-platform",
		},
		"timeout": 1500.7,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if string(got.Challenge) != "0123456789abcdef" || got.Attestation != "" || got.ResidentKey != "" ||
		!got.RequireResidentKey || got.Attachment != "cross-platform" || got.Timeout != 1500*time.Millisecond {
		t.Errorf("parseCreationOptions = %+v", got)
	}
}

func TestParseCreationOptionsErrors(t *testing.T) {
	tests := []struct {
		name  string
		data  []byte
		field string
	}{
		{"not json", []byte(`{`), ""},
		{"array", []byte(`[]`), ""},
		{"null", []byte(`null`), ""},
		{"publicKey not object", []byte(`{"publicKey":1}`), "publicKey"},
		{"no rp", creationJSON(t, map[string]any{"rp": nil}), "rp"},
		{"rp not object", creationJSON(t, map[string]any{"rp": "x"}), "rp"},
		{"rp without name", creationJSON(t, map[string]any{"rp": map[string]any{"id": "example.com"}}), "rp.name"},
		{"rp.id number", creationJSON(t, map[string]any{"rp": map[string]any{"id": 1, "name": "x"}}), "rp.id"},
		{"no user", creationJSON(t, map[string]any{"user": nil}), "user"},
		{"no user.id", creationJSON(t, map[string]any{"user": map[string]any{"name": "a", "displayName": "A"}}), "user.id"},
		{"empty user.id", creationJSON(t, map[string]any{"user": map[string]any{"id": "", "name": "a", "displayName": "A"}}), "user.id"},
		{"long user.id", creationJSON(t, map[string]any{"user": map[string]any{"id": b64s(strings.Repeat("x", 65)), "name": "a", "displayName": "A"}}), "user.id"},
		{"user.id not base64url", creationJSON(t, map[string]any{"user": map[string]any{"id": "a+b/", "name": "a", "displayName": "A"}}), "user.id"},
		{"no user.displayName", creationJSON(t, map[string]any{"user": map[string]any{"id": "AQ", "name": "a"}}), "user.displayName"},
		{"no challenge", creationJSON(t, map[string]any{"challenge": nil}), "challenge"},
		{"challenge line break", creationJSON(t, map[string]any{"challenge": "AAAA\nAAAA"}), "challenge"},
		{"bad padding", creationJSON(t, map[string]any{"challenge": "AAA=="}), "challenge"},
		{"params not array", creationJSON(t, map[string]any{"pubKeyCredParams": map[string]any{}}), "pubKeyCredParams"},
		{"param without alg", creationJSON(t, map[string]any{"pubKeyCredParams": []any{map[string]any{"type": "public-key"}}}), "pubKeyCredParams[0].alg"},
		{"param alg too big", creationJSON(t, map[string]any{"pubKeyCredParams": []any{map[string]any{"type": "public-key", "alg": 1 << 40}}}), "pubKeyCredParams[0].alg"},
		{"param alg fraction", creationJSON(t, map[string]any{"pubKeyCredParams": []any{map[string]any{"type": "public-key", "alg": -7.5}}}), "pubKeyCredParams[0].alg"},
		{"param without type", creationJSON(t, map[string]any{"pubKeyCredParams": []any{map[string]any{"alg": -7}}}), "pubKeyCredParams[0].type"},
		{"negative timeout", creationJSON(t, map[string]any{"timeout": -1}), "timeout"},
		{"string timeout", creationJSON(t, map[string]any{"timeout": "60000"}), "timeout"},
		{"exclude id missing", creationJSON(t, map[string]any{"excludeCredentials": []any{map[string]any{"type": "public-key"}}}), "excludeCredentials[0].id"},
		{"exclude transport number", creationJSON(t, map[string]any{"excludeCredentials": []any{map[string]any{"type": "public-key", "id": "AQ", "transports": []any{1}}}}), "excludeCredentials[0].transports[0]"},
		{"selection not object", creationJSON(t, map[string]any{"authenticatorSelection": []any{}}), "authenticatorSelection"},
		{"requireResidentKey string", creationJSON(t, map[string]any{"authenticatorSelection": map[string]any{"requireResidentKey": "yes"}}), "authenticatorSelection.requireResidentKey"},
		{"attestation number", creationJSON(t, map[string]any{"attestation": 1}), "attestation"},
		{"too large", append(creationJSON(t, nil), bytes.Repeat([]byte(" "), maxOptionsSize)...), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseCreationOptions(tt.data)
			var oe *OptionsError
			if !errors.As(err, &oe) || !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("parseCreationOptions = %v; want an *OptionsError", err)
			}
			if oe.Field != tt.field {
				t.Errorf("Field = %q, want %q (%v)", oe.Field, tt.field, err)
			}
		})
	}
}

func TestParseRequestOptions(t *testing.T) {
	got, err := parseRequestOptions([]byte(`{"publicKey":{"challenge":"AQIDBA","timeout":60000,"rpId":"example.com",` +
		`"allowCredentials":[{"type":"public-key","id":"BQY"}],"userVerification":"required"},"mediation":""}`))
	if err != nil {
		t.Fatal(err)
	}
	want := &requestOptions{
		Challenge:        []byte{1, 2, 3, 4},
		Timeout:          time.Minute,
		RPID:             "example.com",
		RPIDPresent:      true,
		Allow:            []descriptor{{Type: "public-key", ID: []byte{5, 6}}},
		UserVerification: "required",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseRequestOptions =\n%+v\nwant\n%+v", got, want)
	}
	for _, tt := range []struct {
		data  string
		field string
	}{
		{`{}`, "challenge"},
		{`{"challenge":1}`, "challenge"},
		{`{"challenge":"AA","rpId":false}`, "rpId"},
		{`{"challenge":"AA","allowCredentials":{}}`, "allowCredentials"},
		{`{"challenge":"AA","allowCredentials":[1]}`, "allowCredentials[0]"},
		{`{"challenge":"AA","allowCredentials":[{"type":"public-key","id":"*"}]}`, "allowCredentials[0].id"},
		{`{"challenge":"AA","userVerification":["required"]}`, "userVerification"},
	} {
		_, err := parseRequestOptions([]byte(tt.data))
		var oe *OptionsError
		if !errors.As(err, &oe) || oe.Field != tt.field {
			t.Errorf("parseRequestOptions(%s) = %v; want an *OptionsError for %q", tt.data, err, tt.field)
		}
	}
}

// registration is RegistrationResponseJSON as a relying party reads it.
type registration struct {
	ID, RawID, Type, AuthenticatorAttachment string
	ClientExtensionResults                   map[string]any
	Response                                 struct {
		ClientDataJSON, AuthenticatorData, AttestationObject, PublicKey string
		Transports                                                      []string
		PublicKeyAlgorithm                                              *int64
	}
}

type attObject struct {
	Fmt      string          `cbor:"fmt"`
	AttStmt  cbor.RawMessage `cbor:"attStmt"`
	AuthData []byte          `cbor:"authData"`
}

func decodeB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("%q is not unpadded base64url: %v", s, err)
	}
	return b
}

func TestCreate(t *testing.T) {
	aaguid := [16]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	att, priv := testAttestation(t, "example.com", aaguid, false)
	key := &fakeKey{
		info: &Info{Versions: []string{"FIDO_2_1"}, Options: map[string]bool{"rk": true, "uv": true}, Transports: []string{"nfc", "usb"}},
		att:  att,
	}
	c := &WebAuthnClient{Authenticator: key, Origin: "https://login.example.com"}
	out, err := c.Create(context.Background(), creationJSON(t, map[string]any{
		"pubKeyCredParams": []any{
			map[string]any{"type": "public-key", "alg": -8},
			map[string]any{"type": "password", "alg": -7},
			map[string]any{"type": "public-key", "alg": -65535},
		},
		"excludeCredentials": []any{
			map[string]any{"type": "public-key", "id": "AQID"},
			map[string]any{"type": "other", "id": "BAUG"},
		},
		"authenticatorSelection": map[string]any{"residentKey": "preferred"},
		"attestation":            "direct",
	}))
	if err != nil {
		t.Fatal(err)
	}
	req := key.mc[0]
	if !reflect.DeepEqual(req.Algorithms, []Algorithm{EdDSA, -65535}) {
		t.Errorf("Algorithms = %v", req.Algorithms)
	}
	if !reflect.DeepEqual(req.ExcludeList, [][]byte{{1, 2, 3}}) {
		t.Errorf("ExcludeList = %v", req.ExcludeList)
	}
	if !req.Discoverable || !req.UserVerification {
		t.Errorf("Discoverable, UserVerification = %v, %v; want both (preferred on a key with rk and uv)", req.Discoverable, req.UserVerification)
	}
	if req.RP != (RelyingParty{ID: "example.com", Name: "Example"}) || string(req.User.ID) != "user-1" || req.User.Name != "alice" || req.User.DisplayName != "Alice" {
		t.Errorf("RP, User = %+v, %+v", req.RP, req.User)
	}
	wantCDJ := `{"type":"webauthn.create","challenge":"` + b64s("0123456789abcdef") + `","origin":"https://login.example.com","crossOrigin":false}`
	if h := sha256.Sum256([]byte(wantCDJ)); !bytes.Equal(req.ClientDataHash, h[:]) {
		t.Errorf("ClientDataHash is not the hash of %s", wantCDJ)
	}

	var r registration
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	id := base64.RawURLEncoding.EncodeToString(att.CredentialID)
	if r.ID != id || r.RawID != id || r.Type != "public-key" || r.AuthenticatorAttachment != "cross-platform" {
		t.Errorf("response = %s", out)
	}
	if r.ClientExtensionResults == nil || len(r.ClientExtensionResults) != 0 {
		t.Errorf("clientExtensionResults = %v, want {}", r.ClientExtensionResults)
	}
	if string(decodeB64(t, r.Response.ClientDataJSON)) != wantCDJ {
		t.Errorf("clientDataJSON = %s", decodeB64(t, r.Response.ClientDataJSON))
	}
	if !bytes.Equal(decodeB64(t, r.Response.AuthenticatorData), att.AuthData) {
		t.Error("authenticatorData differs from the key's")
	}
	if !reflect.DeepEqual(r.Response.Transports, []string{"nfc", "usb"}) {
		t.Errorf("transports = %v", r.Response.Transports)
	}
	if r.Response.PublicKeyAlgorithm == nil || *r.Response.PublicKeyAlgorithm != -7 {
		t.Errorf("publicKeyAlgorithm = %v", r.Response.PublicKeyAlgorithm)
	}
	pub, err := x509.ParsePKIXPublicKey(decodeB64(t, r.Response.PublicKey))
	if err != nil || !priv.PublicKey.Equal(pub) {
		t.Errorf("publicKey = %v, %v; want the credential key", pub, err)
	}
	var ao attObject
	rawAO := decodeB64(t, r.Response.AttestationObject)
	if err := ctap.Unmarshal("attestation object", rawAO, &ao); err != nil {
		t.Fatalf("attestationObject is not canonical CBOR: %v", err)
	}
	if ao.Fmt != "packed" || !bytes.Equal(ao.AttStmt, att.Statement) || !bytes.Equal(ao.AuthData, att.AuthData) {
		t.Errorf("attestationObject = %+v; want the key's, unchanged, for direct", ao)
	}
	if !bytes.HasPrefix(rawAO, []byte{0xa3, 0x63, 'f', 'm', 't'}) {
		t.Errorf("attestationObject does not start with fmt: % x", rawAO[:8])
	}
}

func TestCreateAttestationConveyance(t *testing.T) {
	aaguid := [16]byte{0xaa, 15: 0xbb}
	tests := []struct {
		name       string
		conveyance any // nil: absent
		self       bool
		aaguid     [16]byte
		wantFmt    string
	}{
		{"absent means none", nil, false, aaguid, "none"},
		{"none", "none", false, aaguid, "none"},
		{"unknown means none", "bogus", false, aaguid, "none"},
		{"indirect", "indirect", false, aaguid, "packed"},
		{"direct", "direct", false, aaguid, "packed"},
		{"enterprise", "enterprise", false, aaguid, "packed"},
		{"none keeps self attestation", "none", true, [16]byte{}, "packed"},
		{"none replaces self with an AAGUID", "none", true, aaguid, "none"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			att, _ := testAttestation(t, "example.com", tt.aaguid, tt.self)
			c := &WebAuthnClient{Authenticator: &fakeKey{info: &Info{}, att: att}, Origin: "https://example.com"}
			out, err := c.Create(context.Background(), creationJSON(t, map[string]any{"attestation": tt.conveyance}))
			if err != nil {
				t.Fatal(err)
			}
			var r registration
			if err := json.Unmarshal(out, &r); err != nil {
				t.Fatal(err)
			}
			var ao attObject
			if err := ctap.Unmarshal("attestation object", decodeB64(t, r.Response.AttestationObject), &ao); err != nil {
				t.Fatal(err)
			}
			if ao.Fmt != tt.wantFmt {
				t.Errorf("fmt = %q, want %q", ao.Fmt, tt.wantFmt)
			}
			if tt.wantFmt == "none" && !bytes.Equal(ao.AttStmt, []byte{0xa0}) {
				t.Errorf("attStmt = % x, want an empty map", []byte(ao.AttStmt))
			}
			// WebAuthn L3 §5.1.3 replaces only fmt and attStmt; the
			// authenticator data, AAGUID included, is the key's.
			if !bytes.Equal(ao.AuthData, att.AuthData) {
				t.Error("authData changed")
			}
		})
	}
}

func TestCreateRequirements(t *testing.T) {
	tests := []struct {
		name      string
		options   map[string]bool // the key's options
		selection map[string]any
		wantRK    bool
		wantUV    bool
		wantErr   error
	}{
		{"defaults on a capable key", map[string]bool{"rk": true, "uv": true}, nil, false, true, nil},
		{"defaults on a U2F key", nil, nil, false, false, nil},
		{"rk required", map[string]bool{"rk": true}, map[string]any{"residentKey": "required"}, true, false, nil},
		{"rk required unsupported", map[string]bool{"rk": false}, map[string]any{"residentKey": "required"}, false, false, ErrNotAllowed},
		{"rk preferred without rk", nil, map[string]any{"residentKey": "preferred"}, false, false, nil},
		{"rk discouraged overrides legacy", map[string]bool{"rk": true}, map[string]any{"residentKey": "discouraged", "requireResidentKey": true}, false, false, nil},
		{"legacy requireResidentKey", map[string]bool{"rk": true}, map[string]any{"requireResidentKey": true}, true, false, nil},
		{"unknown residentKey falls back to legacy", map[string]bool{"rk": true}, map[string]any{"residentKey": "x", "requireResidentKey": true}, true, false, nil},
		{"uv required", map[string]bool{"uv": true}, map[string]any{"userVerification": "required"}, false, true, nil},
		{"uv required, PIN set", map[string]bool{"uv": false, "clientPin": true}, map[string]any{"userVerification": "required"}, false, true, nil},
		{"uv preferred, PIN set", map[string]bool{"clientPin": true}, map[string]any{"userVerification": "preferred"}, false, true, nil},
		{"uv required, PIN not set", map[string]bool{"uv": false, "clientPin": false}, map[string]any{"userVerification": "required"}, false, false, ErrNotAllowed},
		{"uv required, neither", map[string]bool{"rk": true}, map[string]any{"userVerification": "required"}, false, false, ErrNotAllowed},
		{"uv discouraged", map[string]bool{"uv": true}, map[string]any{"userVerification": "discouraged"}, false, false, nil},
		{"platform attachment", nil, map[string]any{"authenticatorAttachment": "platform"}, false, false, ErrNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			att, _ := testAttestation(t, "example.com", [16]byte{}, false)
			key := &fakeKey{info: &Info{Options: tt.options}, att: att}
			c := &WebAuthnClient{Authenticator: key, Origin: "https://example.com"}
			extra := map[string]any{}
			if tt.selection != nil {
				extra["authenticatorSelection"] = tt.selection
			}
			_, err := c.Create(context.Background(), creationJSON(t, extra))
			if tt.wantErr != nil {
				var ce *CeremonyError
				if !errors.Is(err, tt.wantErr) || !errors.As(err, &ce) || !errors.Is(err, ErrNotSupported) {
					t.Fatalf("Create = %v, want a *CeremonyError matching %v and ErrNotSupported", err, tt.wantErr)
				}
				if key.calls() != 0 {
					t.Error("the key was asked anyway")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := key.mc[0]; got.Discoverable != tt.wantRK || got.UserVerification != tt.wantUV {
				t.Errorf("Discoverable, UserVerification = %v, %v; want %v, %v", got.Discoverable, got.UserVerification, tt.wantRK, tt.wantUV)
			}
		})
	}
}

func TestCreateDefaultAlgorithms(t *testing.T) {
	for _, params := range []any{nil, []any{}} {
		att, _ := testAttestation(t, "example.com", [16]byte{}, false)
		key := &fakeKey{info: &Info{}, att: att}
		c := &WebAuthnClient{Authenticator: key, Origin: "https://example.com"}
		extra := map[string]any{"pubKeyCredParams": params}
		if params == nil {
			extra["pubKeyCredParams"] = nil
		}
		if _, err := c.Create(context.Background(), creationJSON(t, extra)); err != nil {
			t.Fatal(err)
		}
		if got := key.mc[0].Algorithms; !reflect.DeepEqual(got, []Algorithm{ES256, RS256}) {
			t.Errorf("pubKeyCredParams %v: Algorithms = %v, want ES256, RS256 (WebAuthn L3 §5.1.3)", params, got)
		}
	}
	c := &WebAuthnClient{Authenticator: &fakeKey{info: &Info{}}, Origin: "https://example.com"}
	_, err := c.Create(context.Background(), creationJSON(t, map[string]any{
		"pubKeyCredParams": []any{map[string]any{"type": "password", "alg": -7}},
	}))
	var oe *OptionsError
	if !errors.As(err, &oe) || oe.Field != "pubKeyCredParams" || !errors.Is(err, ErrNotSupported) {
		t.Errorf("Create with no public-key params = %v, want an *OptionsError matching ErrNotSupported", err)
	}
}

func TestCreateOriginRefused(t *testing.T) {
	key := &fakeKey{info: &Info{}}
	c := &WebAuthnClient{Authenticator: key, Origin: "https://example.org"}
	_, err := c.Create(context.Background(), creationJSON(t, nil))
	var oe *OriginError
	if !errors.As(err, &oe) || !errors.Is(err, ErrSecurity) || oe.RPID != "example.com" {
		t.Fatalf("Create = %v, want an *OriginError for example.com", err)
	}
	if key.calls() != 0 {
		t.Error("the key was asked")
	}
	// Without rp.id the origin's host is the RP ID.
	att, _ := testAttestation(t, "example.org", [16]byte{}, false)
	key.att = att
	if _, err := c.Create(context.Background(), creationJSON(t, map[string]any{"rp": map[string]any{"name": "Example"}})); err != nil {
		t.Fatal(err)
	}
	if key.mc[0].RP.ID != "example.org" {
		t.Errorf("RP.ID = %q, want the origin's host", key.mc[0].RP.ID)
	}
}

func TestCeremonyErrors(t *testing.T) {
	tests := []struct {
		name         string
		keyErr       error
		wantNotAllow bool
	}{
		{"denied", fmt.Errorf("fido: makeCredential: %w", StatusOperationDenied), true},
		{"touch timeout", fmt.Errorf("fido: makeCredential: %w", StatusUserActionTimeout), true},
		{"gone", fmt.Errorf("fido: makeCredential: %w", ErrDeviceGone), true},
		{"excluded", fmt.Errorf("fido: makeCredential: %w", StatusCredentialExcluded), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &WebAuthnClient{Authenticator: &fakeKey{info: &Info{}, err: tt.keyErr}, Origin: "https://example.com"}
			_, err := c.Create(context.Background(), creationJSON(t, nil))
			var ce *CeremonyError
			if !errors.As(err, &ce) || !errors.Is(err, tt.keyErr) {
				t.Fatalf("Create = %v, want a *CeremonyError wrapping %v", err, tt.keyErr)
			}
			if errors.Is(err, ErrNotAllowed) != tt.wantNotAllow || errors.Is(err, ErrInvalidState) == tt.wantNotAllow {
				t.Errorf("Create = %v: matches ErrNotAllowed %v, ErrInvalidState %v", err, errors.Is(err, ErrNotAllowed), errors.Is(err, ErrInvalidState))
			}
		})
	}
}

func TestCeremonyTimeoutAndCancel(t *testing.T) {
	key := &fakeKey{info: &Info{}, block: true}
	c := &WebAuthnClient{Authenticator: key, Origin: "https://example.com"}

	// The options' timeout is the browser's lifetimeTimer: NotAllowedError.
	start := time.Now()
	_, err := c.Get(context.Background(), requestJSON(t, map[string]any{"timeout": 50}))
	if !errors.Is(err, ErrNotAllowed) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Get after the timeout = %v, want ErrNotAllowed and DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timeout of 50 ms took %v", d)
	}

	// The caller's cancellation is the browser's AbortError: the context's
	// error, not a CeremonyError.
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err = c.Create(ctx, creationJSON(t, nil))
	var ce *CeremonyError
	if !errors.Is(err, context.Canceled) || errors.As(err, &ce) {
		t.Errorf("Create after cancel = %v, want context.Canceled and no CeremonyError", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err = c.Create(ctx, creationJSON(t, nil))
	if !errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ce) {
		t.Errorf("Create past the caller's deadline = %v, want DeadlineExceeded and no CeremonyError", err)
	}
}

func TestCeremonyTimeoutClamp(t *testing.T) {
	for _, tt := range []struct{ in, want time.Duration }{
		{0, defaultCeremonyTimeout},
		{time.Second, time.Second},
		{time.Hour, maxCeremonyTimeout},
	} {
		ctx, cancel := ceremonyContext(context.Background(), tt.in)
		deadline, ok := ctx.Deadline()
		cancel()
		if got := time.Until(deadline); !ok || got > tt.want || got < tt.want-time.Minute {
			t.Errorf("timeout %v: deadline in %v, want about %v", tt.in, got, tt.want)
		}
	}
}

func TestGet(t *testing.T) {
	a1 := &Assertion{CredentialID: []byte{1}, AuthData: []byte("ad1"), Signature: []byte("sig1"), User: &User{ID: []byte("u1"), Name: "one"}}
	a2 := &Assertion{CredentialID: []byte{2}, AuthData: []byte("ad2"), Signature: []byte("sig2"), User: &User{ID: []byte("u2"), Name: "two"}}
	key := &fakeKey{info: &Info{Options: map[string]bool{"uv": true}}, as: []*Assertion{a1, a2}}
	var offered []*Assertion
	c := &WebAuthnClient{
		Authenticator: key,
		Origin:        "https://www.example.com",
		SelectAccount: func(as []*Assertion) (int, error) { offered = as; return 1, nil },
	}
	out, err := c.Get(context.Background(), requestJSON(t, map[string]any{"userVerification": "discouraged"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(offered) != 2 {
		t.Errorf("SelectAccount saw %d accounts", len(offered))
	}
	req := key.ga[0]
	if req.RPID != "example.com" || req.UserVerification || len(req.AllowList) != 0 {
		t.Errorf("request = %+v", req)
	}
	var r struct {
		ID, RawID, Type, AuthenticatorAttachment string
		ClientExtensionResults                   map[string]any
		Response                                 map[string]string
	}
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	if r.ID != "Ag" || r.RawID != "Ag" || r.Type != "public-key" || r.AuthenticatorAttachment != "cross-platform" || r.ClientExtensionResults == nil {
		t.Errorf("response = %s", out)
	}
	wantCDJ := `{"type":"webauthn.get","challenge":"` + b64s("0123456789abcdef") + `","origin":"https://www.example.com","crossOrigin":false}`
	if got := string(decodeB64(t, r.Response["clientDataJSON"])); got != wantCDJ {
		t.Errorf("clientDataJSON = %s", got)
	}
	if h := sha256.Sum256([]byte(wantCDJ)); !bytes.Equal(req.ClientDataHash, h[:]) {
		t.Error("ClientDataHash is not the hash of clientDataJSON")
	}
	if r.Response["authenticatorData"] != b64s("ad2") || r.Response["signature"] != b64s("sig2") || r.Response["userHandle"] != b64s("u2") {
		t.Errorf("response = %v, want the second account", r.Response)
	}

	// One account, no user: no chooser and no userHandle.
	key.as = []*Assertion{{CredentialID: []byte{3}, AuthData: []byte("ad"), Signature: []byte("s")}}
	c.SelectAccount = func([]*Assertion) (int, error) { t.Error("SelectAccount called for one account"); return 0, nil }
	out, err = c.Get(context.Background(), requestJSON(t, map[string]any{
		"allowCredentials": []any{map[string]any{"type": "public-key", "id": "Aw"}, map[string]any{"type": "x", "id": "BA"}},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(out, []byte("userHandle")) {
		t.Errorf("response has a userHandle: %s", out)
	}
	if req := key.ga[1]; !reflect.DeepEqual(req.AllowList, [][]byte{{3}}) || !req.UserVerification {
		t.Errorf("request = %+v, want allowList [3] and uv (preferred, key has uv)", req)
	}
}

func TestGetSelectAccountErrors(t *testing.T) {
	as := []*Assertion{{CredentialID: []byte{1}}, {CredentialID: []byte{2}}}
	c := &WebAuthnClient{Authenticator: &fakeKey{info: &Info{}, as: as}, Origin: "https://example.com"}
	cancelled := errors.New("person closed the chooser")
	c.SelectAccount = func([]*Assertion) (int, error) { return 0, cancelled }
	if _, err := c.Get(context.Background(), requestJSON(t, nil)); !errors.Is(err, ErrNotAllowed) || !errors.Is(err, cancelled) {
		t.Errorf("Get = %v, want ErrNotAllowed wrapping the chooser's error", err)
	}
	c.SelectAccount = func([]*Assertion) (int, error) { return 2, nil }
	if _, err := c.Get(context.Background(), requestJSON(t, nil)); err == nil || errors.Is(err, ErrNotAllowed) {
		t.Errorf("Get with an out-of-range choice = %v", err)
	}
}

func TestGetOnlyForeignAllowCredentials(t *testing.T) {
	key := &fakeKey{info: &Info{}}
	c := &WebAuthnClient{Authenticator: key, Origin: "https://example.com"}
	_, err := c.Get(context.Background(), requestJSON(t, map[string]any{
		"allowCredentials": []any{map[string]any{"type": "x", "id": "BA"}},
	}))
	if !errors.Is(err, ErrNotAllowed) || !errors.Is(err, StatusNoCredentials) || key.calls() != 0 {
		t.Errorf("Get = %v, want ErrNotAllowed and StatusNoCredentials without asking the key", err)
	}
}

func TestAttestationObjectRejectsBadStatement(t *testing.T) {
	for _, stmt := range [][]byte{nil, {0x80}, {0x01}} {
		if _, err := attestationObject("packed", []byte{1}, stmt); err == nil {
			t.Errorf("attestationObject accepted statement % x", stmt)
		}
	}
}

// encodeCreationOptions writes options back in the JSON form, for the
// round-trip check of the fuzz target.
func encodeCreationOptions(o *creationOptions) []byte {
	rp := map[string]any{"name": o.RP.Name}
	if o.RPIDPresent {
		rp["id"] = o.RP.ID
	}
	m := map[string]any{
		"rp":        rp,
		"user":      map[string]any{"id": b64(o.User.ID), "name": o.User.Name, "displayName": o.User.DisplayName},
		"challenge": b64(o.Challenge),
	}
	params := []any{}
	for _, p := range o.Params {
		params = append(params, map[string]any{"type": p.Type, "alg": int64(p.Alg)})
	}
	m["pubKeyCredParams"] = params
	if o.Timeout != 0 {
		m["timeout"] = o.Timeout / time.Millisecond
	}
	m["excludeCredentials"] = encodeDescriptors(o.Exclude)
	sel := map[string]any{"requireResidentKey": o.RequireResidentKey}
	for k, v := range map[string]string{"authenticatorAttachment": o.Attachment, "residentKey": o.ResidentKey, "userVerification": o.UserVerification} {
		if v != "" {
			sel[k] = v
		}
	}
	m["authenticatorSelection"] = sel
	if o.Attestation != "" {
		m["attestation"] = o.Attestation
	}
	ext := map[string]any{
		"credProps":                         o.Ext.CredProps,
		"enforceCredentialProtectionPolicy": o.Ext.EnforceCredProtect,
		"minPinLength":                      o.Ext.MinPINLength,
		"hmacCreateSecret":                  o.Ext.HMACCreateSecret,
	}
	if o.Ext.CredProtect != 0 {
		ext["credentialProtectionPolicy"] = o.Ext.CredProtect.String()
	}
	if o.Ext.CredBlob != nil {
		ext["credBlob"] = b64(o.Ext.CredBlob)
	}
	if o.Ext.PRF {
		ext["prf"] = map[string]any{}
	}
	m["extensions"] = ext
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func encodeRequestOptions(o *requestOptions) []byte {
	m := map[string]any{"challenge": b64(o.Challenge), "allowCredentials": encodeDescriptors(o.Allow)}
	if o.Timeout != 0 {
		m["timeout"] = o.Timeout / time.Millisecond
	}
	if o.RPIDPresent {
		m["rpId"] = o.RPID
	}
	if o.UserVerification != "" {
		m["userVerification"] = o.UserVerification
	}
	ext := map[string]any{"getCredBlob": o.Ext.GetCredBlob}
	if h := o.Ext.HMACGetSecret; h != nil {
		hs := map[string]any{"salt1": b64(h.Salt1)}
		if h.Salt2 != nil {
			hs["salt2"] = b64(h.Salt2)
		}
		ext["hmacGetSecret"] = hs
	}
	if o.Ext.PRF {
		prf := map[string]any{}
		values := func(v prfValues) map[string]any {
			m := map[string]any{"first": b64(v.First)}
			if v.Second != nil {
				m["second"] = b64(v.Second)
			}
			return m
		}
		if o.Ext.PRFEval != nil {
			prf["eval"] = values(*o.Ext.PRFEval)
		}
		if o.Ext.PRFByCredential != nil {
			by := map[string]any{}
			for id, v := range o.Ext.PRFByCredential {
				by[b64([]byte(id))] = values(v)
			}
			prf["evalByCredential"] = by
		}
		ext["prf"] = prf
	}
	m["extensions"] = ext
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

func encodeDescriptors(ds []descriptor) []any {
	out := []any{}
	for _, d := range ds {
		e := map[string]any{"type": d.Type, "id": b64(d.ID)}
		if d.Transports != nil {
			e["transports"] = d.Transports
		}
		out = append(out, e)
	}
	return out
}

// FuzzParseCreationOptions checks that parseCreationOptions never panics,
// fails only with an *OptionsError, and that what it accepts keeps its
// meaning when written back out and parsed again.
func FuzzParseCreationOptions(f *testing.F) {
	f.Add([]byte(`{"rp":{"id":"example.com","name":"x"},"user":{"id":"AQ","name":"a","displayName":"A"},"challenge":"AAAA","pubKeyCredParams":[]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := parseCreationOptions(data)
		if err != nil {
			var oe *OptionsError
			if !errors.As(err, &oe) || !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("error %v (%T) is not an *OptionsError", err, err)
			}
			return
		}
		if n := len(o.User.ID); n < 1 || n > 64 {
			t.Fatalf("accepted user.id of %d bytes", n)
		}
		again, err := parseCreationOptions(encodeCreationOptions(o))
		if err != nil {
			t.Fatalf("re-parsing %s: %v", encodeCreationOptions(o), err)
		}
		if !reflect.DeepEqual(o, again) {
			t.Fatalf("round trip changed the options:\n%+v\n%+v", o, again)
		}
	})
}

// FuzzParseRequestOptions is FuzzParseCreationOptions for request options.
func FuzzParseRequestOptions(f *testing.F) {
	f.Add([]byte(`{"challenge":"AAAA","rpId":"example.com","allowCredentials":[{"type":"public-key","id":"AQ"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		o, err := parseRequestOptions(data)
		if err != nil {
			var oe *OptionsError
			if !errors.As(err, &oe) || !errors.Is(err, ErrInvalidOptions) {
				t.Fatalf("error %v (%T) is not an *OptionsError", err, err)
			}
			return
		}
		again, err := parseRequestOptions(encodeRequestOptions(o))
		if err != nil {
			t.Fatalf("re-parsing %s: %v", encodeRequestOptions(o), err)
		}
		if !reflect.DeepEqual(o, again) {
			t.Fatalf("round trip changed the options:\n%+v\n%+v", o, again)
		}
	})
}

func TestConcurrentUse(t *testing.T) {
	att, _ := testAttestation(t, "example.com", [16]byte{}, false)
	key := &fakeKey{info: &Info{}, att: att, as: []*Assertion{{CredentialID: []byte{1}, AuthData: []byte("ad"), Signature: []byte("s")}}}
	c := &WebAuthnClient{Authenticator: key, Origin: "https://example.com"}
	create, get := creationJSON(t, nil), requestJSON(t, nil)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			if _, err := c.Create(context.Background(), create); err != nil {
				t.Error(err)
			}
			if _, err := c.Get(context.Background(), get); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if n := key.calls(); n != 16 {
		t.Errorf("key saw %d requests, want 16", n)
	}
}
