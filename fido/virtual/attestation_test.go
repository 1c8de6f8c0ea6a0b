package virtual

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"slices"
	"testing"
	"time"
)

// testCA returns a fresh attestation CA for one test.
func testCA(t *testing.T) *AttestationCA {
	t.Helper()
	ca, err := NewAttestationCA(nil, "")
	if err != nil {
		t.Fatalf("NewAttestationCA: %v", err)
	}
	return ca
}

// verifyChain checks that der chains to ca, for any key usage, as a relying
// party checking an attestation would.
func verifyChain(t *testing.T, der []byte, ca *AttestationCA) *x509.Certificate {
	t.Helper()
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatalf("parsing leaf: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Certificate)
	if _, err := leaf.Verify(x509.VerifyOptions{
		Roots:     roots,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		t.Fatalf("verifying leaf against CA: %v", err)
	}
	return leaf
}

// within reports whether got is d or closer to want.
func within(got, want time.Time, d time.Duration) bool {
	diff := got.Sub(want)
	return diff <= d && diff >= -d
}

func TestNewAttestationCA(t *testing.T) {
	tests := []struct {
		name, commonName, wantCN string
	}{
		{"default name", "", defaultCACommonName},
		{"given name", "Example Corp FIDO Root", "Example Corp FIDO Root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Now()
			ca, err := NewAttestationCA(nil, tt.commonName)
			if err != nil {
				t.Fatalf("NewAttestationCA: %v", err)
			}
			c := ca.Certificate
			if c.Subject.CommonName != tt.wantCN {
				t.Errorf("CN = %q, want %q", c.Subject.CommonName, tt.wantCN)
			}
			if !c.BasicConstraintsValid || !c.IsCA {
				t.Errorf("BasicConstraintsValid=%v IsCA=%v, want both true", c.BasicConstraintsValid, c.IsCA)
			}
			if c.KeyUsage&x509.KeyUsageCertSign == 0 {
				t.Errorf("KeyUsage %b lacks CertSign", c.KeyUsage)
			}
			if err := c.CheckSignatureFrom(c); err != nil {
				t.Errorf("not self-signed: %v", err)
			}
			pub, isEC := c.PublicKey.(*ecdsa.PublicKey)
			if !isEC || pub.Curve != elliptic.P256() {
				t.Errorf("public key %T, want ECDSA P-256", c.PublicKey)
			}
			if !pub.Equal(ca.Key.Public()) {
				t.Error("Key does not match Certificate")
			}
			if c.SerialNumber.Sign() <= 0 || c.SerialNumber.BitLen() > 128 {
				t.Errorf("serial %v not a positive 128-bit number", c.SerialNumber)
			}
			if got, want := c.NotAfter, now.Add(20*365*24*time.Hour); !within(got, want, time.Minute) {
				t.Errorf("NotAfter = %v, want about %v", got, want)
			}
			if c.NotBefore.After(now) {
				t.Errorf("NotBefore = %v is after now %v", c.NotBefore, now)
			}
		})
	}
}

func TestNewAttestationCADeterministic(t *testing.T) {
	a, err := NewAttestationCA(testRand(1), "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewAttestationCA(testRand(1), "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewAttestationCA(testRand(2), "")
	if err != nil {
		t.Fatal(err)
	}
	pa := a.Key.Public().(*ecdsa.PublicKey)
	if !pa.Equal(b.Key.Public()) {
		t.Error("same seed gave different CA keys")
	}
	if pa.Equal(c.Key.Public()) {
		t.Error("different seeds gave the same CA key")
	}
	if a.Certificate.SerialNumber.Cmp(b.Certificate.SerialNumber) != 0 {
		t.Error("same seed gave different serials")
	}
}

func TestNewAttestationCABadRand(t *testing.T) {
	tests := []struct {
		name string
		rand io.Reader
	}{
		{"error", errReader{}},
		{"short", bytes.NewReader(make([]byte, 10))},
		// All zeros is never a valid scalar; this must end, not spin.
		{"zeros", zeroReader{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := NewAttestationCA(tt.rand, ""); err == nil {
				t.Fatal("NewAttestationCA succeeded with a broken random source")
			}
		})
	}
}

func TestNewBatchCertificate(t *testing.T) {
	ca := testCA(t)
	tests := []struct {
		name   string
		aaguid [16]byte
	}{
		{"zero aaguid", [16]byte{}},
		{"ascii aaguid", [16]byte([]byte("fidokit-aaguid!!"))},
		{"all ones", [16]byte(bytes.Repeat([]byte{0xff}, 16))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now := time.Now()
			der, key, err := newBatchCertificate(nil, ca, tt.aaguid)
			if err != nil {
				t.Fatalf("newBatchCertificate: %v", err)
			}
			leaf := verifyChain(t, der, ca)

			// WebAuthn L3 §8.2.1, item by item.
			if leaf.Version != 3 {
				t.Errorf("Version = %d, want 3", leaf.Version)
			}
			subj := leaf.Subject
			if !slices.Equal(subj.Country, []string{"US"}) {
				t.Errorf("C = %q, want [US]", subj.Country)
			}
			if !slices.Equal(subj.Organization, []string{"fidokit"}) {
				t.Errorf("O = %q, want [fidokit]", subj.Organization)
			}
			if !slices.Equal(subj.OrganizationalUnit, []string{"Authenticator Attestation"}) {
				t.Errorf("OU = %q, want exactly [Authenticator Attestation]", subj.OrganizationalUnit)
			}
			if subj.CommonName == "" {
				t.Error("CN is empty")
			}
			if !leaf.BasicConstraintsValid {
				t.Error("Basic Constraints extension absent")
			}
			if leaf.IsCA {
				t.Error("CA = true, want false")
			}
			if len(leaf.UnhandledCriticalExtensions) != 0 {
				t.Errorf("unhandled critical extensions %v", leaf.UnhandledCriticalExtensions)
			}
			var found []pkix.Extension
			for _, ext := range leaf.Extensions {
				if ext.Id.Equal(oidFIDOGenCEAAGUID) {
					found = append(found, ext)
				}
			}
			if len(found) != 1 {
				t.Fatalf("found %d id-fido-gen-ce-aaguid extensions, want 1", len(found))
			}
			if found[0].Critical {
				t.Error("aaguid extension is critical")
			}
			want := append([]byte{0x04, 0x10}, tt.aaguid[:]...)
			if !bytes.Equal(found[0].Value, want) {
				t.Errorf("aaguid extension value = %x, want %x", found[0].Value, want)
			}

			if !within(leaf.NotBefore, now.Add(-time.Hour), time.Minute) {
				t.Errorf("NotBefore = %v, want about an hour before %v", leaf.NotBefore, now)
			}
			if !within(leaf.NotAfter, now.Add(10*365*24*time.Hour), time.Minute) {
				t.Errorf("NotAfter = %v, want about 10 years after %v", leaf.NotAfter, now)
			}
			if leaf.SerialNumber.Sign() <= 0 || leaf.SerialNumber.BitLen() > 128 {
				t.Errorf("serial %v not a positive 128-bit number", leaf.SerialNumber)
			}
			if key.Curve != elliptic.P256() || !key.PublicKey.Equal(leaf.PublicKey) {
				t.Error("returned key is not the certificate's P-256 key")
			}
		})
	}
}

func TestNewU2FCertificate(t *testing.T) {
	ca := testCA(t)
	der, key, err := newU2FCertificate(nil, ca)
	if err != nil {
		t.Fatalf("newU2FCertificate: %v", err)
	}
	leaf := verifyChain(t, der, ca)
	pub, isEC := leaf.PublicKey.(*ecdsa.PublicKey)
	if !isEC || pub.Curve != elliptic.P256() {
		t.Fatalf("public key %T, want ECDSA P-256", leaf.PublicKey)
	}
	if !key.PublicKey.Equal(pub) {
		t.Error("returned key is not the certificate's key")
	}
	if leaf.IsCA {
		t.Error("U2F attestation certificate is a CA")
	}
}

// signerOnly hides a key's concrete type, as an HSM-backed signer would.
type signerOnly struct{ s crypto.Signer }

func (s signerOnly) Public() crypto.PublicKey { return s.s.Public() }
func (s signerOnly) Sign(r io.Reader, d []byte, o crypto.SignerOpts) ([]byte, error) {
	return s.s.Sign(r, d, o)
}

func TestLeafUnderCallerCA(t *testing.T) {
	// A caller's CA that expires in a year, with a signer of unknown type.
	key, err := newP256Key(testRand(7))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(42),
		Subject:               pkix.Name{CommonName: "caller root"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(nil, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &AttestationCA{Certificate: cert, Key: signerOnly{key}}

	batch, _, err := newBatchCertificate(nil, ca, [16]byte{1})
	if err != nil {
		t.Fatalf("newBatchCertificate: %v", err)
	}
	leaf := verifyChain(t, batch, ca)
	if leaf.NotAfter.After(cert.NotAfter) {
		t.Errorf("leaf NotAfter %v outlives CA %v", leaf.NotAfter, cert.NotAfter)
	}
	if leaf.Issuer.CommonName != "caller root" {
		t.Errorf("issuer = %v", leaf.Issuer)
	}
}

func TestIssueLeafBadCA(t *testing.T) {
	ca := testCA(t)
	other := testCA(t)
	tests := []struct {
		name string
		ca   *AttestationCA
	}{
		{"nil", nil},
		{"no certificate", &AttestationCA{Key: ca.Key}},
		{"no key", &AttestationCA{Certificate: ca.Certificate}},
		{"key of another CA", &AttestationCA{Certificate: ca.Certificate, Key: other.Key}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := newBatchCertificate(nil, tt.ca, [16]byte{}); err == nil {
				t.Error("newBatchCertificate succeeded")
			}
			if _, _, err := newU2FCertificate(nil, tt.ca); err == nil {
				t.Error("newU2FCertificate succeeded")
			}
		})
	}
}

// errReader fails every read.
type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("entropy exhausted") }

// zeroReader returns zeros forever.
type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
