package virtual

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	cryptorand "crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"
)

// oidFIDOGenCEAAGUID is id-fido-gen-ce-aaguid, the certificate extension
// that names the authenticator model (WebAuthn L3 §8.2.1).
var oidFIDOGenCEAAGUID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 45724, 1, 1, 4}

// Subject of the packed batch attestation certificate. WebAuthn L3 §8.2.1
// requires C, O, CN and an OU of exactly "Authenticator Attestation".
const (
	batchCountry    = "US"
	batchOrg        = "fidokit"
	batchOrgUnit    = "Authenticator Attestation"
	batchCommonName = "fidokit virtual key batch"

	u2fCommonName = "fidokit virtual U2F key"

	defaultCACommonName = "fidokit virtual key attestation root"
)

// Validity periods. Leaves start an hour early so a relying party whose
// clock lags ours still accepts a freshly made key.
const (
	caValidity   = 20 * 365 * 24 * time.Hour
	leafValidity = 10 * 365 * 24 * time.Hour
	clockSkew    = time.Hour
)

// AttestationCA is the certificate authority that signs a virtual key's
// attestation certificates. Give your own in the key's configuration to make
// a fleet of virtual keys chain to one root a relying party trusts, or let
// the key make a self-signed one with [NewAttestationCA].
//
// An AttestationCA is only read after creation, so it is safe for concurrent
// use if Key is.
type AttestationCA struct {
	// Certificate is the CA certificate; attestation certificates name its
	// subject as their issuer.
	Certificate *x509.Certificate
	// Key signs attestation certificates. Its public key must match
	// Certificate's.
	Key crypto.Signer
}

// NewAttestationCA makes a self-signed ECDSA P-256 root for attestation
// certificates, valid for 20 years, with a random 128-bit serial number.
// An empty commonName gives a default. A nil rand means crypto/rand.Reader.
//
// The key is drawn from rand's bytes, so a deterministic rand gives a
// deterministic key; use that only in tests.
func NewAttestationCA(rand io.Reader, commonName string) (*AttestationCA, error) {
	rand = orDefaultRand(rand)
	if commonName == "" {
		commonName = defaultCACommonName
	}
	key, err := newP256Key(rand)
	if err != nil {
		return nil, fmt.Errorf("virtual: making attestation CA key: %w", err)
	}
	serial, err := randomSerial(rand)
	if err != nil {
		return nil, fmt.Errorf("virtual: making attestation CA serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			Organization: []string{batchOrg},
			CommonName:   commonName,
		},
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              now.Add(caValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		// Attestation certificates are issued directly under this root.
		MaxPathLen:     0,
		MaxPathLenZero: true,
	}
	der, err := x509.CreateCertificate(rand, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("virtual: creating attestation CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("virtual: parsing attestation CA certificate: %w", err)
	}
	return &AttestationCA{Certificate: cert, Key: key}, nil
}

// newBatchCertificate issues a packed attestation certificate for the model
// aaguid that meets WebAuthn L3 §8.2.1, and returns it with its key.
func newBatchCertificate(rand io.Reader, ca *AttestationCA, aaguid [16]byte) (der []byte, key *ecdsa.PrivateKey, err error) {
	// The extension value is the AAGUID as a DER OCTET STRING (04 10 …).
	ext, err := asn1.Marshal(aaguid[:])
	if err != nil {
		return nil, nil, fmt.Errorf("virtual: encoding aaguid extension: %w", err)
	}
	subject := pkix.Name{
		Country:            []string{batchCountry},
		Organization:       []string{batchOrg},
		OrganizationalUnit: []string{batchOrgUnit},
		CommonName:         batchCommonName,
	}
	extra := []pkix.Extension{{Id: oidFIDOGenCEAAGUID, Critical: false, Value: ext}}
	der, key, err = issueLeaf(rand, ca, subject, extra)
	if err != nil {
		return nil, nil, fmt.Errorf("virtual: issuing batch attestation certificate: %w", err)
	}
	return der, key, nil
}

// newU2FCertificate issues a fido-u2f attestation certificate and returns
// it with its key. FIDO U2F only requires a P-256 key, so the subject is
// free-form.
func newU2FCertificate(rand io.Reader, ca *AttestationCA) (der []byte, key *ecdsa.PrivateKey, err error) {
	subject := pkix.Name{
		Organization: []string{batchOrg},
		CommonName:   u2fCommonName,
	}
	der, key, err = issueLeaf(rand, ca, subject, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("virtual: issuing U2F attestation certificate: %w", err)
	}
	return der, key, nil
}

// issueLeaf makes a P-256 key and an end-entity certificate for it signed
// by ca.
func issueLeaf(rand io.Reader, ca *AttestationCA, subject pkix.Name, extra []pkix.Extension) ([]byte, *ecdsa.PrivateKey, error) {
	if ca == nil || ca.Certificate == nil || ca.Key == nil {
		return nil, nil, errors.New("attestation CA has no certificate or key")
	}
	rand = orDefaultRand(rand)
	key, err := newP256Key(rand)
	if err != nil {
		return nil, nil, err
	}
	serial, err := randomSerial(rand)
	if err != nil {
		return nil, nil, err
	}
	now := time.Now()
	notAfter := now.Add(leafValidity)
	// Outliving the issuer would only make a chain that fails later, so a
	// short-lived caller CA caps the leaf.
	if ca.Certificate.NotAfter.Before(notAfter) {
		notAfter = ca.Certificate.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               subject,
		NotBefore:             now.Add(-clockSkew),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  false,
		ExtraExtensions:       extra,
	}
	der, err := x509.CreateCertificate(rand, tmpl, ca.Certificate, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, nil, err
	}
	return der, key, nil
}

// randomSerial returns a positive serial number of 128 random bits, as
// RFC 5280 §4.1.2.2 asks (positive, at most 20 octets).
func randomSerial(rand io.Reader) (*big.Int, error) {
	var b [16]byte
	for range maxRandomTries {
		if _, err := io.ReadFull(rand, b[:]); err != nil {
			return nil, fmt.Errorf("reading random serial: %w", err)
		}
		if n := new(big.Int).SetBytes(b[:]); n.Sign() > 0 {
			return n, nil
		}
	}
	return nil, errors.New("random source returns only zeros")
}

// newP256Key draws a P-256 key from rand's bytes. It does not use
// ecdsa.GenerateKey because that ignores rand since Go 1.26, and an
// insecure seeded key must be reproducible.
func newP256Key(rand io.Reader) (*ecdsa.PrivateKey, error) {
	key, _, err := newP256KeyRaw(rand)
	return key, err
}

// newP256KeyRaw is newP256Key that also returns the key's scalar, which
// key.Bytes would give too, at a cost that shows in every registration.
func newP256KeyRaw(rand io.Reader) (*ecdsa.PrivateKey, []byte, error) {
	b := make([]byte, 32)
	for range maxRandomTries {
		if _, err := io.ReadFull(rand, b); err != nil {
			return nil, nil, fmt.Errorf("reading random key: %w", err)
		}
		// Rejection sampling: about 2^-32 of values are zero or not below
		// the group order and are drawn again.
		if key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), b); err == nil {
			return key, b, nil
		}
	}
	return nil, nil, errors.New("random source gives no valid P-256 scalar")
}

// maxRandomTries bounds rejection sampling so a broken random source (one
// that returns a constant) fails instead of looping forever.
const maxRandomTries = 64

// orDefaultRand returns rand, or crypto/rand.Reader when rand is nil.
func orDefaultRand(rand io.Reader) io.Reader {
	if rand == nil {
		return cryptorand.Reader
	}
	return rand
}
