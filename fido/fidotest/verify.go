package fidotest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/internal/ctap"
)

// The checks below recompute what a relying party checks, from the raw
// bytes and the standard library, rather than trusting the fields the
// implementation parsed out.

// packedStatement is a packed or fido-u2f attestation statement (WebAuthn
// L3 §8.2, §8.6).
type packedStatement struct {
	Alg int64    `cbor:"alg,omitempty"`
	Sig []byte   `cbor:"sig"`
	X5C [][]byte `cbor:"x5c,omitempty"`
}

// VerifyAttestation checks att as a relying party would for the packed
// (batch or self), fido-u2f and none formats: the authenticator data is
// for rpID and names the credential att describes, and the statement's
// signature over authData || clientDataHash verifies, with the
// certificate chaining to roots when there is one (roots nil: chain not
// checked). It returns the leaf certificate, if any.
func VerifyAttestation(att *fido.Attestation, rpID string, clientDataHash []byte, roots *x509.CertPool) (*x509.Certificate, error) {
	ad, err := ctap.ParseAuthData(att.AuthData)
	if err != nil {
		return nil, fmt.Errorf("authenticator data: %w", err)
	}
	if ad.RPIDHash != fido.RPIDHash(rpID) {
		return nil, errors.New("authenticator data is for another RP ID")
	}
	if ad.Attested == nil {
		return nil, errors.New("authenticator data has no attested credential")
	}
	if !bytes.Equal(ad.Attested.CredentialID, att.CredentialID) || !bytes.Equal(ad.Attested.PublicKey, att.PublicKey) {
		return nil, errors.New("Attestation.CredentialID or PublicKey differ from the authenticator data")
	}
	credAlg, credPub, err := ctap.ParsePublicKey(att.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("credential public key: %w", err)
	}
	if fido.Algorithm(credAlg) != att.Algorithm {
		return nil, fmt.Errorf("Attestation.Algorithm %v, key is %v", att.Algorithm, fido.Algorithm(credAlg))
	}
	if att.Format == "none" {
		var m map[string]any
		if err := ctap.Unmarshal("attStmt", att.Statement, &m); err != nil || len(m) != 0 {
			return nil, fmt.Errorf("none statement is not an empty map: %x", att.Statement)
		}
		return nil, nil
	}
	var st packedStatement
	if err := ctap.Unmarshal("attStmt", att.Statement, &st); err != nil {
		return nil, fmt.Errorf("statement: %w", err)
	}
	var leaf *x509.Certificate
	if len(st.X5C) > 0 {
		if leaf, err = x509.ParseCertificate(st.X5C[0]); err != nil {
			return nil, fmt.Errorf("attestation certificate: %w", err)
		}
		if roots != nil {
			if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
				return nil, fmt.Errorf("attestation certificate does not chain to the CA: %w", err)
			}
		}
	}
	switch att.Format {
	case "packed":
		signed := append(bytes.Clone(att.AuthData), clientDataHash...)
		if leaf == nil { // self attestation (§8.2 step 3)
			if st.Alg != credAlg {
				return nil, fmt.Errorf("self attestation alg %d, credential alg %d", st.Alg, credAlg)
			}
			return nil, ctap.VerifySignature(st.Alg, credPub, signed, st.Sig)
		}
		return leaf, ctap.VerifySignature(st.Alg, leaf.PublicKey, signed, st.Sig)
	case "fido-u2f":
		if leaf == nil {
			return nil, errors.New("fido-u2f statement without a certificate")
		}
		pub, ok := credPub.(*ecdsa.PublicKey)
		if !ok {
			return nil, fmt.Errorf("fido-u2f credential key is %T", credPub)
		}
		ecdhPub, err := pub.ECDH()
		if err != nil {
			return nil, err
		}
		// §8.6 step 5: 0x00 || rpIdHash || clientDataHash ||
		// credentialId || publicKeyU2F.
		var signed []byte
		signed = append(signed, 0)
		signed = append(signed, ad.RPIDHash[:]...)
		signed = append(signed, clientDataHash...)
		signed = append(signed, att.CredentialID...)
		signed = append(signed, ecdhPub.Bytes()...)
		return leaf, ctap.VerifySignature(ctap.AlgES256, leaf.PublicKey, signed, st.Sig)
	}
	return nil, fmt.Errorf("format %q is not one the suite verifies", att.Format)
}

// VerifyAssertion checks a's signature over authData || clientDataHash
// with the COSE public key the credential was attested with, and that
// its authenticator data is for rpID and agrees with a's flags and
// counter.
func VerifyAssertion(a *fido.Assertion, publicKey []byte, rpID string, clientDataHash []byte) error {
	ad, err := ctap.ParseAuthData(a.AuthData)
	if err != nil {
		return fmt.Errorf("authenticator data: %w", err)
	}
	if ad.RPIDHash != fido.RPIDHash(rpID) {
		return errors.New("authenticator data is for another RP ID")
	}
	if up := ad.Flags&ctap.FlagUP != 0; up != a.UserPresent {
		return fmt.Errorf("UP flag %v, Assertion.UserPresent %v", up, a.UserPresent)
	}
	if uv := ad.Flags&ctap.FlagUV != 0; uv != a.UserVerified {
		return fmt.Errorf("UV flag %v, Assertion.UserVerified %v", uv, a.UserVerified)
	}
	if ad.SignCount != a.SignCount {
		return fmt.Errorf("signCount %d, Assertion.SignCount %d", ad.SignCount, a.SignCount)
	}
	alg, pub, err := ctap.ParsePublicKey(publicKey)
	if err != nil {
		return fmt.Errorf("credential public key: %w", err)
	}
	return ctap.VerifySignature(alg, pub, append(bytes.Clone(a.AuthData), clientDataHash...), a.Signature)
}
