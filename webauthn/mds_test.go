package webauthn_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/fidokit/fidokit/fido/virtual"
	"github.com/fidokit/fidokit/webauthn"
)

// mdsIssuer plays the FIDO Metadata Service: a root CA and a BLOB signing
// certificate under it.
type mdsIssuer struct {
	root     *x509.Certificate
	rootKey  *ecdsa.PrivateKey
	signer   *x509.Certificate
	signKey  *ecdsa.PrivateKey
	modified time.Time
}

func newMDSIssuer(t testing.TB) *mdsIssuer {
	t.Helper()
	now := time.Now()
	m := &mdsIssuer{modified: now}
	var err error
	if m.rootKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	rootTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test MDS root"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, rootTmpl, rootTmpl, &m.rootKey.PublicKey, m.rootKey)
	if err != nil {
		t.Fatal(err)
	}
	if m.root, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	if m.signKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	leafTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "test MDS BLOB signer"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if der, err = x509.CreateCertificate(rand.Reader, leafTmpl, m.root, &m.signKey.PublicKey, m.rootKey); err != nil {
		t.Fatal(err)
	}
	if m.signer, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	return m
}

// mdsEntry describes one authenticator model in a BLOB.
type mdsEntry struct {
	aaguid   [16]byte
	root     *x509.Certificate
	statuses []map[string]string // status reports, oldest first
}

// blob builds and signs an MDS3 BLOB (FIDO Metadata Service v3 §3.1.6):
// a JWT signed with ES256 whose x5c header carries the signing chain.
func (m *mdsIssuer) blob(t testing.TB, entries ...mdsEntry) []byte {
	t.Helper()
	var es []any
	for _, e := range entries {
		id := uuid.UUID(e.aaguid).String()
		es = append(es, map[string]any{
			"aaguid": id,
			"metadataStatement": map[string]any{
				"aaguid":                      id,
				"description":                 "fidokit virtual key",
				"authenticatorVersion":        1,
				"protocolFamily":              "fido2",
				"schema":                      3,
				"upv":                         []any{map[string]int{"major": 1, "minor": 1}},
				"authenticationAlgorithms":    []string{"secp256r1_ecdsa_sha256_raw", "ed25519_eddsa_sha512_raw"},
				"publicKeyAlgAndEncodings":    []string{"cose"},
				"attestationTypes":            []string{"basic_full"},
				"userVerificationDetails":     [][]map[string]string{{{"userVerificationMethod": "presence_internal"}}},
				"keyProtection":               []string{"software"},
				"matcherProtection":           []string{"software"},
				"attachmentHint":              []string{"external", "wired"},
				"tcDisplay":                   []string{},
				"attestationRootCertificates": []string{base64.StdEncoding.EncodeToString(e.root.Raw)},
			},
			"statusReports":          e.statuses,
			"timeOfLastStatusChange": m.modified.Format(time.DateOnly),
		})
	}
	payload, err := json.Marshal(map[string]any{
		"legalHeader": "test metadata, not for production",
		"no":          42,
		"nextUpdate":  m.modified.AddDate(0, 1, 0).Format(time.DateOnly),
		"entries":     es,
	})
	if err != nil {
		t.Fatal(err)
	}
	header, _ := json.Marshal(map[string]any{
		"alg": "ES256", "typ": "JWT",
		"x5c": []string{base64.StdEncoding.EncodeToString(m.signer.Raw), base64.StdEncoding.EncodeToString(m.root.Raw)},
	})
	signed := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	digest := sha256.Sum256([]byte(signed))
	r, s, err := ecdsa.Sign(rand.Reader, m.signKey, digest[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64) // JWS ES256: R || S, 32 bytes each
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return []byte(signed + "." + base64.RawURLEncoding.EncodeToString(sig))
}

func certified(date string) map[string]string {
	return map[string]string{"status": "FIDO_CERTIFIED", "effectiveDate": date}
}

var _ crypto.Signer = (*ecdsa.PrivateKey)(nil)

func TestMetadata(t *testing.T) {
	ca, err := virtual.NewAttestationCA(nil, "test virtual key CA")
	if err != nil {
		t.Fatal(err)
	}
	issuer := newMDSIssuer(t)
	otherAAGUID := [16]byte{0xaa, 0xbb}
	today := time.Now().Format(time.DateOnly)
	tomorrow := time.Now().AddDate(0, 0, 2).Format(time.DateOnly)
	tests := []struct {
		name    string
		entries []mdsEntry
		key     virtual.Config
		want    error
	}{
		{"listed and certified", []mdsEntry{{virtual.DefaultAAGUID, ca.Certificate, []map[string]string{certified("2024-01-01")}}},
			virtual.Config{AttestationCA: ca}, nil},
		{"unknown AAGUID", []mdsEntry{{otherAAGUID, ca.Certificate, []map[string]string{certified("2024-01-01")}}},
			virtual.Config{AttestationCA: ca}, webauthn.ErrAttestationUntrusted},
		{"revoked", []mdsEntry{{virtual.DefaultAAGUID, ca.Certificate, []map[string]string{
			certified("2024-01-01"), {"status": "REVOKED", "effectiveDate": today}}}},
			virtual.Config{AttestationCA: ca}, webauthn.ErrAttestationUntrusted},
		{"attestation key compromised", []mdsEntry{{virtual.DefaultAAGUID, ca.Certificate, []map[string]string{
			certified("2024-01-01"), {"status": "ATTESTATION_KEY_COMPROMISE", "effectiveDate": today}}}},
			virtual.Config{AttestationCA: ca}, webauthn.ErrAttestationUntrusted},
		{"user verification bypass", []mdsEntry{{virtual.DefaultAAGUID, ca.Certificate, []map[string]string{
			certified("2024-01-01"), {"status": "USER_VERIFICATION_BYPASS", "effectiveDate": today}}}},
			virtual.Config{AttestationCA: ca}, webauthn.ErrAttestationUntrusted},
		// Status reports count from their effective date by Config.Now.
		{"revocation not yet in effect", []mdsEntry{{virtual.DefaultAAGUID, ca.Certificate, []map[string]string{
			certified("2024-01-01"), {"status": "REVOKED", "effectiveDate": tomorrow}}}},
			virtual.Config{AttestationCA: ca}, nil},
		{"attestation chains to another root", []mdsEntry{{virtual.DefaultAAGUID, issuer.root, []map[string]string{certified("2024-01-01")}}},
			virtual.Config{AttestationCA: ca}, webauthn.ErrAttestationUntrusted},
		{"self attestation", []mdsEntry{{virtual.DefaultAAGUID, ca.Certificate, []map[string]string{certified("2024-01-01")}}},
			virtual.Config{AttestationCA: ca, Attestation: virtual.AttestationSelf}, webauthn.ErrAttestationUntrusted},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md, err := webauthn.ParseMetadata(issuer.blob(t, tt.entries...), issuer.root)
			if err != nil {
				t.Fatalf("ParseMetadata: %v", err)
			}
			if md.Number() != 42 || md.Len() != len(tt.entries) || md.NextUpdate().IsZero() {
				t.Errorf("metadata no %d, %d entries, next update %v", md.Number(), md.Len(), md.NextUpdate())
			}
			e := newEnv(t, func(c *webauthn.Config) {
				c.Policy = webauthn.Policy{Attestation: webauthn.AttestationMetadata, Metadata: md}
			})
			u := e.user("alice")
			before := e.snapshot()
			cred, err := e.key(&tt.key).Register(e.ctx, e.rp, u.ID, "")
			if tt.want == nil {
				if err != nil {
					t.Fatalf("registration refused: %v", err)
				}
				if cred.AttestationType != "basic_full" {
					t.Errorf("attestation type %q", cred.AttestationType)
				}
				return
			}
			wantErr(t, err, tt.want, "")
			if after := e.snapshot(); !after.equal(before) {
				t.Error("a refused registration changed the store")
			}
		})
	}
}

func TestParseMetadataRejects(t *testing.T) {
	ca, err := virtual.NewAttestationCA(nil, "")
	if err != nil {
		t.Fatal(err)
	}
	issuer, other := newMDSIssuer(t), newMDSIssuer(t)
	blob := issuer.blob(t, mdsEntry{virtual.DefaultAAGUID, ca.Certificate, []map[string]string{certified("2024-01-01")}})
	if _, err := webauthn.ParseMetadata(blob, other.root); err == nil {
		t.Error("ParseMetadata accepted a BLOB signed under another root")
	}
	tampered := append([]byte(nil), blob...)
	tampered[len(tampered)/2] ^= 1
	if _, err := webauthn.ParseMetadata(tampered, issuer.root); err == nil {
		t.Error("ParseMetadata accepted a tampered BLOB")
	}
	if _, err := webauthn.ParseMetadata([]byte("not a JWT"), issuer.root); err == nil {
		t.Error("ParseMetadata accepted garbage")
	}
	if _, err := webauthn.ParseMetadata(blob, nil); err == nil {
		t.Error("ParseMetadata accepted a nil root")
	}
}
