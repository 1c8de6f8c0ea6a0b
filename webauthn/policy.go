package webauthn

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/go-webauthn/webauthn/metadata"
	"github.com/go-webauthn/webauthn/metadata/providers/memory"
	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	"github.com/google/uuid"
)

// Requirement is how strongly the relying party asks for something of the
// key: user verification (WebAuthn L3 §5.8.6) or a discoverable credential
// (§5.4.6). The zero value is Preferred.
type Requirement int

// Requirements.
const (
	// Preferred asks for it if the key can, and accepts its absence.
	Preferred Requirement = iota
	// Required refuses a response without it.
	Required
	// Discouraged asks the key not to.
	Discouraged
)

func (r Requirement) String() string {
	switch r {
	case Preferred:
		return "preferred"
	case Required:
		return "required"
	case Discouraged:
		return "discouraged"
	}
	return fmt.Sprintf("Requirement(%d)", int(r))
}

// AttestationPolicy says which authenticators may register, judged by the
// attestation statement a new credential comes with (WebAuthn L3 §6.5 and
// §7.1 steps 21 to 24).
type AttestationPolicy int

// Attestation policies.
const (
	// AttestationNone, the default, asks for no attestation ("none"
	// conveyance) and accepts any key. Right for most sites: it reveals
	// nothing about the person's key and excludes no one.
	AttestationNone AttestationPolicy = iota
	// AttestationAny asks for attestation ("direct") and accepts a key
	// only with a valid statement that has a certificate trust path (basic
	// or AttCA attestation); "none" and self attestation are refused. With
	// [Policy.AttestationRoots] the path must also chain to one of them.
	AttestationAny
	// AttestationAAGUIDs is AttestationAny, and the key's AAGUID (its
	// model) must be one of [Policy.AllowedAAGUIDs].
	AttestationAAGUIDs
	// AttestationMetadata is AttestationAny, and the key must be listed
	// in [Policy.Metadata] (a FIDO Metadata Service BLOB), its trust path
	// must chain to the attestation roots listed there, and none of its
	// status reports in effect may be one the FIDO Alliance marks
	// undesirable: REVOKED, RETIRED, ATTESTATION_KEY_COMPROMISE,
	// USER_VERIFICATION_BYPASS, USER_KEY_REMOTE_COMPROMISE or
	// USER_KEY_PHYSICAL_COMPROMISE.
	AttestationMetadata
)

func (p AttestationPolicy) String() string {
	switch p {
	case AttestationNone:
		return "none"
	case AttestationAny:
		return "any"
	case AttestationAAGUIDs:
		return "aaguids"
	case AttestationMetadata:
		return "metadata"
	}
	return fmt.Sprintf("AttestationPolicy(%d)", int(p))
}

// COSE algorithm identifiers (IANA "COSE Algorithms") for
// [Policy.Algorithms].
const (
	ES256 int64 = -7   // ECDSA P-256 with SHA-256
	EdDSA int64 = -8   // Ed25519
	ES384 int64 = -35  // ECDSA P-384 with SHA-384
	ES512 int64 = -36  // ECDSA P-521 with SHA-512
	PS256 int64 = -37  // RSASSA-PSS with SHA-256
	RS256 int64 = -257 // RSASSA-PKCS1-v1_5 with SHA-256
)

// supportedAlgorithms are those go-webauthn verifies and this package
// accepts in Policy.Algorithms.
var supportedAlgorithms = []int64{ES256, EdDSA, ES384, ES512, PS256, RS256}

// defaultAlgorithms is what a nil Policy.Algorithms means.
var defaultAlgorithms = []int64{ES256, EdDSA, RS256}

// Policy is what the relying party asks of keys and accepts from them. The
// zero value is a sensible default for a site that lets people add any
// security key: user verification and discoverable credentials preferred,
// no attestation, ES256, EdDSA and RS256.
type Policy struct {
	// UserVerification is whether keys must verify the person (PIN or
	// biometric) at registration and sign-in (WebAuthn L3 §5.8.6). Zero
	// means Preferred; Required rejects responses without the UV flag.
	UserVerification Requirement
	// Discoverable is whether new credentials should be discoverable
	// (resident keys), which sign-in without a user name needs (§5.4.6).
	// Zero means Preferred. Security keys have few slots for them (25 on
	// many); Discouraged saves them for keys used only as a second
	// factor.
	Discoverable Requirement
	// Attestation says which authenticators may register. Zero means
	// AttestationNone.
	Attestation AttestationPolicy
	// AllowedAAGUIDs are the authenticator models accepted under
	// AttestationAAGUIDs; it must be non-empty then and is ignored
	// otherwise.
	AllowedAAGUIDs [][16]byte
	// AttestationRoots, when not empty, are the only roots an attestation
	// certificate may chain to under AttestationAny, AttestationAAGUIDs
	// and AttestationMetadata (in addition to the metadata's own roots).
	AttestationRoots []*x509.Certificate
	// Metadata is the FIDO metadata used under AttestationMetadata; it
	// must be non-nil then. See [ParseMetadata].
	Metadata *Metadata
	// HardwareBound refuses credentials whose BE flag says they may be
	// backed up or synced (passkeys in a cloud account), accepting only
	// keys bound to one device.
	HardwareBound bool
	// AllowCloneWarning lets a key whose CloneWarning is set keep signing
	// in, as long as its counter increases from the last one accepted.
	// False, the default, refuses every sign-in with a flagged key
	// ([ErrCloneWarning]) until an administrator has checked it and
	// called [RelyingParty.ClearCloneWarning]. WebAuthn L3 §7.2 step 22
	// leaves the choice to the relying party; a flagged counter means that
	// another copy of the key's secret may have signed in.
	AllowCloneWarning bool
	// Algorithms are the COSE algorithms accepted for new credentials, in
	// order of preference (pubKeyCredParams, §5.4). Nil means ES256,
	// EdDSA, RS256. Each must be one of ES256, EdDSA, ES384, ES512, PS256
	// and RS256.
	Algorithms []int64
}

// policy is a validated Policy with its lookups prepared.
type policy struct {
	Policy
	algs   []protocol.CredentialParameter
	aaguid map[[16]byte]bool
	roots  *x509.CertPool
}

func (p Policy) compile() (*policy, error) {
	c := &policy{Policy: p}
	for name, r := range map[string]Requirement{"UserVerification": p.UserVerification, "Discoverable": p.Discoverable} {
		if r < Preferred || r > Discouraged {
			return nil, fmt.Errorf("webauthn: Policy.%s: unknown requirement %d", name, int(r))
		}
	}
	if p.Attestation < AttestationNone || p.Attestation > AttestationMetadata {
		return nil, fmt.Errorf("webauthn: Policy.Attestation: unknown policy %d", int(p.Attestation))
	}
	if p.Attestation == AttestationAAGUIDs && len(p.AllowedAAGUIDs) == 0 {
		return nil, errors.New("webauthn: Policy.AllowedAAGUIDs is empty under AttestationAAGUIDs")
	}
	if p.Attestation == AttestationMetadata && p.Metadata == nil {
		return nil, errors.New("webauthn: Policy.Metadata is nil under AttestationMetadata")
	}
	c.aaguid = make(map[[16]byte]bool, len(p.AllowedAAGUIDs))
	for _, a := range p.AllowedAAGUIDs {
		c.aaguid[a] = true
	}
	if len(p.AttestationRoots) > 0 {
		c.roots = x509.NewCertPool()
		for i, r := range p.AttestationRoots {
			if r == nil {
				return nil, fmt.Errorf("webauthn: Policy.AttestationRoots[%d] is nil", i)
			}
			c.roots.AddCert(r)
		}
	}
	algs := p.Algorithms
	if algs == nil {
		algs = defaultAlgorithms
	}
	if len(algs) == 0 {
		return nil, errors.New("webauthn: Policy.Algorithms is empty")
	}
	c.Algorithms = slices.Clone(algs)
	for _, a := range algs {
		if !slices.Contains(supportedAlgorithms, a) {
			return nil, fmt.Errorf("webauthn: Policy.Algorithms: COSE algorithm %d is not supported", a)
		}
		c.algs = append(c.algs, protocol.CredentialParameter{
			Type: protocol.PublicKeyCredentialType, Algorithm: webauthncose.COSEAlgorithmIdentifier(a),
		})
	}
	return c, nil
}

func (p *policy) userVerification() protocol.UserVerificationRequirement {
	switch p.UserVerification {
	case Required:
		return protocol.VerificationRequired
	case Discouraged:
		return protocol.VerificationDiscouraged
	}
	return protocol.VerificationPreferred
}

func (p *policy) residentKey() protocol.ResidentKeyRequirement {
	switch p.Discoverable {
	case Required:
		return protocol.ResidentKeyRequirementRequired
	case Discouraged:
		return protocol.ResidentKeyRequirementDiscouraged
	}
	return protocol.ResidentKeyRequirementPreferred
}

func (p *policy) conveyance() protocol.ConveyancePreference {
	if p.Attestation == AttestationNone {
		return protocol.PreferNoAttestation
	}
	return protocol.PreferDirectAttestation
}

// assess decides whether a verified attestation is trustworthy (WebAuthn L3
// §7.1 steps 23 and 24). attType is the attestation type go-webauthn's
// verification procedure returned ("basic_full", "basic_surrogate",
// "attca", "none", ...).
func (p *policy) assess(ctx context.Context, obj *protocol.AttestationObject, attType string, now time.Time) error {
	if p.Attestation == AttestationNone {
		return nil
	}
	const step = "§7.1 step 24"
	var x5c []any
	if v, ok := obj.AttStatement["x5c"].([]any); ok {
		x5c = v
	}
	switch attType {
	case string(metadata.BasicFull), string(metadata.AttCA), string(metadata.AnonCA):
	default:
		return reject(CeremonyRegistration, step, ErrAttestationUntrusted,
			"%s attestation (format %q) has no certificate trust path; policy %v needs one", attType, obj.Format, p.Attestation)
	}
	certs, err := parseX5C(x5c)
	if err != nil || len(certs) == 0 {
		return reject(CeremonyRegistration, step, ErrAttestationUntrusted, "attestation trust path: %v", err)
	}
	if p.roots != nil {
		inter := x509.NewCertPool()
		for _, c := range certs[1:] {
			inter.AddCert(c)
		}
		_, err := certs[0].Verify(x509.VerifyOptions{
			Roots: p.roots, Intermediates: inter, CurrentTime: now,
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
		})
		if err != nil {
			return reject(CeremonyRegistration, step, ErrAttestationUntrusted,
				"attestation certificate does not chain to Policy.AttestationRoots: %v", err)
		}
	}
	var aaguid [16]byte
	copy(aaguid[:], obj.AuthData.AttData.AAGUID)
	switch p.Attestation {
	case AttestationAAGUIDs:
		if !p.aaguid[aaguid] {
			return reject(CeremonyRegistration, step, ErrAttestationUntrusted,
				"AAGUID %s is not in Policy.AllowedAAGUIDs", uuid.UUID(aaguid))
		}
	case AttestationMetadata:
		// §7.1 step 23: the trust anchors come from the metadata entry for
		// the AAGUID; go-webauthn checks the entry, its status reports and
		// the chain to its roots.
		mds := &mdsAt{Provider: p.Metadata.provider, at: now}
		if perr := protocol.ValidateMetadataWithAuthenticatorData(ctx, mds, uuid.UUID(aaguid), attType, obj.Format, x5c, &obj.AuthData); perr != nil {
			detail := perr.Details
			if perr.DevInfo != "" {
				detail = perr.DevInfo
			}
			return reject(CeremonyRegistration, "§7.1 step 23", ErrAttestationUntrusted, "metadata: %s", detail)
		}
	}
	return nil
}

func parseX5C(x5c []any) ([]*x509.Certificate, error) {
	if len(x5c) == 0 {
		return nil, errors.New("no x5c")
	}
	var certs []*x509.Certificate
	for i, v := range x5c {
		der, ok := v.([]byte)
		if !ok {
			return nil, fmt.Errorf("x5c[%d] is not a byte string", i)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("x5c[%d]: %v", i, err)
		}
		certs = append(certs, c)
	}
	return certs, nil
}

// Metadata is a verified FIDO Metadata Service (MDS3) BLOB: the list of
// authenticator models, their attestation roots and status reports that
// [AttestationMetadata] checks new keys against. Get one with
// [ParseMetadata]. A Metadata is immutable and safe for concurrent use; to
// take up a newer BLOB, parse it and make a new [RelyingParty].
type Metadata struct {
	provider   *memory.Provider
	number     int
	nextUpdate time.Time
	entries    int
}

// ParseMetadata verifies and parses a FIDO MDS3 BLOB (FIDO Metadata
// Service v3 §3.1.7): a JWT whose x5c header chain must lead to root (for
// the production service, the "GlobalSign Root CA - R3" certificate the
// FIDO Alliance publishes), and whose signature must verify with the
// chain's first certificate. If the header has no x5c, root itself must
// have signed it. Certificate validity is checked at the current time, as
// go-webauthn does.
//
// The caller fetches the BLOB (https://mds3.fidoalliance.org/) and decides
// how often; the package never goes to the network. Entries that do not
// parse are skipped.
func ParseMetadata(blob []byte, root *x509.Certificate) (*Metadata, error) {
	if root == nil {
		return nil, errors.New("webauthn: parsing metadata: nil root certificate")
	}
	dec, err := metadata.NewDecoder(
		metadata.WithRootCertificate(base64.StdEncoding.EncodeToString(root.Raw)),
		metadata.WithIgnoreEntryParsingErrors(),
	)
	if err != nil {
		return nil, fmt.Errorf("webauthn: parsing metadata: %v", err)
	}
	payload, err := dec.DecodeBytes(blob)
	if err != nil {
		return nil, fmt.Errorf("webauthn: verifying metadata BLOB: %v", err)
	}
	md, err := dec.Parse(payload)
	if err != nil {
		return nil, fmt.Errorf("webauthn: parsing metadata BLOB: %v", err)
	}
	p, err := memory.New(memory.WithMetadata(md.ToMap()))
	if err != nil {
		return nil, fmt.Errorf("webauthn: loading metadata: %v", err)
	}
	mp, ok := p.(*memory.Provider)
	if !ok {
		return nil, fmt.Errorf("webauthn: loading metadata: unexpected provider %T", p)
	}
	return &Metadata{provider: mp, number: md.Parsed.Number, nextUpdate: md.Parsed.NextUpdate, entries: len(md.Parsed.Entries)}, nil
}

// Number is the BLOB's serial number ("no"), which increases with each
// BLOB the service publishes.
func (m *Metadata) Number() int { return m.number }

// NextUpdate is when the service promises a newer BLOB at the latest.
func (m *Metadata) NextUpdate() time.Time { return m.nextUpdate }

// Len is the number of authenticator entries that parsed.
func (m *Metadata) Len() int { return m.entries }

// mdsAt is the memory provider with status reports judged at the relying
// party's clock (Config.Now) rather than the wall clock.
type mdsAt struct {
	*memory.Provider
	at time.Time
}

func (m *mdsAt) ValidateStatusReports(ctx context.Context, reports []metadata.StatusReport) error {
	return metadata.ValidateStatusReportsAt(reports, nil, metadata.DefaultUndesiredAuthenticatorStatuses(), m.at)
}
