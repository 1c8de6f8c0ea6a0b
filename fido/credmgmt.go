package fido

import (
	"context"
	"errors"
	"fmt"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/pinuv"
)

// CredentialManager lists, deletes and edits the discoverable credentials
// a key stores (CTAP 2.1 §6.8). [Device] implements it, and so may other
// backends; find out with a type assertion.
//
// Every method needs a pinUvAuthToken with the credential management
// permission, so the key's PIN is asked for through Prompt.PIN (or its
// built-in user verification is used). Besides the errors listed per
// method, each may return ErrPINRequired, a [*PINError], StatusPINNotSet
// (the key has no PIN; set one first), StatusUnauthorizedPermission, and
// ErrNotSupported for a key without credential management.
type CredentialManager interface {
	// CredentialsMetadata counts the discoverable credentials stored and
	// the room left (CTAP 2.1 §6.8.2).
	CredentialsMetadata(ctx context.Context) (*CredentialsMetadata, error)
	// RelyingParties lists the relying parties the key holds credentials
	// for (CTAP 2.1 §6.8.3); none is an empty list, not an error.
	RelyingParties(ctx context.Context) ([]RelyingParty, error)
	// Credentials lists the credentials the key holds for rpID (CTAP 2.1
	// §6.8.4); none is an empty list, not an error.
	Credentials(ctx context.Context, rpID string) ([]Credential, error)
	// DeleteCredential deletes the credential with ID id (CTAP 2.1
	// §6.8.5). An unknown ID gives an error matching StatusNoCredentials.
	DeleteCredential(ctx context.Context, id []byte) error
	// UpdateUser replaces the user name and display name stored with the
	// credential id (CTAP 2.1 §6.8.6). user.ID must be the credential's
	// user handle; the key refuses another with StatusInvalidParameter. An
	// unknown credential gives StatusNoCredentials.
	UpdateUser(ctx context.Context, id []byte, user User) error
}

var _ CredentialManager = (*Device)(nil)

// CredentialsMetadata is what getCredsMetadata reports (CTAP 2.1 §6.8.2).
type CredentialsMetadata struct {
	// Existing is how many discoverable credentials the key stores.
	Existing int
	// Remaining estimates how many more fit.
	Remaining int
}

// Credential is a discoverable credential stored on a key, as credential
// management reports it (CTAP 2.1 §6.8.4).
type Credential struct {
	// ID is the credential ID.
	ID []byte
	// RP is the relying party; Name is empty unless the key stored one.
	RP RelyingParty
	// User is the account the credential is for.
	User User
	// PublicKey is the credential public key as a COSE_Key.
	PublicKey []byte
	// Algorithm is the credential's algorithm, from PublicKey.
	Algorithm Algorithm
	// CredProtect is the credential's protection policy; 0 when the key
	// did not say.
	CredProtect CredProtect
	// LargeBlobKey is the credential's key to the large-blob store; nil
	// when it has none.
	LargeBlobKey []byte
}

// maxEnumerated bounds the getNext calls of one enumeration, whatever
// total a key claims.
const maxEnumerated = 1024

// credMgmtCommand picks authenticatorCredentialManagement, or its
// prototype 0x41 on keys that implemented a CTAP 2.1 draft (getInfo option
// credentialMgmtPreview, versions FIDO_2_1_PRE).
func credMgmtCommand(info *Info) (ctap.Command, error) {
	switch {
	case info.opt(ctap.OptCredMgmt):
		return ctap.CmdCredentialManagement, nil
	case info.opt(ctap.OptCredentialMgmtPreview):
		return ctap.CmdCredentialManagementPreview, nil
	}
	return 0, fmt.Errorf("fido: credentialManagement: %w", ErrNotSupported)
}

// credMgmtSession is one credential management operation: the command to
// use and the token that authenticates its first subcommand.
type credMgmtSession struct {
	d   *Device
	cmd ctap.Command
	tok *pinToken
}

// beginCredMgmt checks the key supports credential management and obtains
// a token with only the cm permission, bound to rpID when not empty. The
// caller wipes the session.
func (d *Device) beginCredMgmt(ctx context.Context, rpID string) (*credMgmtSession, error) {
	info, err := d.cborInfo(ctx, "credentialManagement")
	if err != nil {
		return nil, err
	}
	cmd, err := credMgmtCommand(info)
	if err != nil {
		return nil, err
	}
	tok, err := d.token(ctx, info, tokenRequest{op: "credentialManagement", perms: pinuv.PermCredentialManagement, rpID: rpID})
	if err != nil {
		return nil, err
	}
	return &credMgmtSession{d: d, cmd: cmd, tok: tok}, nil
}

func (s *credMgmtSession) wipe() { s.tok.wipe() }

// call runs one subcommand; authenticated ones carry pinUvAuthParam over
// subCommand || subCommandParams (CTAP 2.1 §6.8).
func (s *credMgmtSession) call(ctx context.Context, sub ctap.CredMgmtSubCommand, params *ctap.CredMgmtParams, authenticated bool) (*ctap.CredMgmtResponse, error) {
	r := &ctap.CredMgmtRequest{SubCommand: sub}
	r.SetParams(params)
	if authenticated {
		r.PinUvAuthProtocol = s.tok.proto.Version()
		r.PinUvAuthParam = s.tok.auth(r.AuthMessage())
	}
	body, err := s.d.call(ctx, s.cmd, r, nil)
	if err != nil {
		return nil, err
	}
	if len(body) == 0 {
		return &ctap.CredMgmtResponse{}, nil
	}
	resp, err := ctap.DecodeCredMgmtResponse(body)
	if err != nil {
		return nil, &ResponseError{Op: sub.String(), Err: err}
	}
	return resp, nil
}

// CredentialsMetadata implements [CredentialManager] (CTAP 2.1 §6.8.2).
func (d *Device) CredentialsMetadata(ctx context.Context) (*CredentialsMetadata, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := d.opContext(ctx)
	defer cancel()
	s, err := d.beginCredMgmt(ctx, "")
	if err != nil {
		return nil, err
	}
	defer s.wipe()
	r, err := s.call(ctx, ctap.CredMgmtGetCredsMetadata, nil, true)
	if err != nil {
		return nil, err
	}
	if r.ExistingResidentCredentialsCount == nil || r.MaxPossibleRemainingResidentCredentialsCount == nil {
		return nil, &ResponseError{Op: "getCredsMetadata", Err: errors.New("missing counts")}
	}
	return &CredentialsMetadata{
		Existing:  int(min(*r.ExistingResidentCredentialsCount, 1<<16)),
		Remaining: int(min(*r.MaxPossibleRemainingResidentCredentialsCount, 1<<16)),
	}, nil
}

// RelyingParties implements [CredentialManager] (CTAP 2.1 §6.8.3).
func (d *Device) RelyingParties(ctx context.Context) ([]RelyingParty, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := d.opContext(ctx)
	defer cancel()
	s, err := d.beginCredMgmt(ctx, "")
	if err != nil {
		return nil, err
	}
	defer s.wipe()
	r, err := s.call(ctx, ctap.CredMgmtEnumerateRPsBegin, nil, true)
	if errors.Is(err, StatusNoCredentials) {
		return []RelyingParty{}, nil
	}
	if err != nil {
		return nil, err
	}
	total := int(min(r.TotalRPs, maxEnumerated))
	var out []RelyingParty
	for i := 0; ; i++ {
		if r.RP == nil || r.RPIDHash == nil {
			return nil, &ResponseError{Op: "enumerateRPs", Err: errors.New("missing rp or rpIDHash")}
		}
		// The ID is taken as given: CTAP 2.1 §6.8.7 lets a key store long
		// RP IDs truncated, so it need not hash to rpIDHash.
		out = append(out, RelyingParty{ID: r.RP.ID, Name: r.RP.Name})
		if i+1 >= total {
			return out, nil
		}
		if r, err = s.call(ctx, ctap.CredMgmtEnumerateRPsGetNextRP, nil, false); err != nil {
			return nil, err
		}
	}
}

// Credentials implements [CredentialManager] (CTAP 2.1 §6.8.4). The token
// it obtains is bound to rpID, where the key supports that.
func (d *Device) Credentials(ctx context.Context, rpID string) ([]Credential, error) {
	if rpID == "" {
		return nil, invalidRequest("rpID is empty")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := d.opContext(ctx)
	defer cancel()
	s, err := d.beginCredMgmt(ctx, rpID)
	if err != nil {
		return nil, err
	}
	defer s.wipe()
	return s.credentials(ctx, rpID)
}

func (s *credMgmtSession) credentials(ctx context.Context, rpID string) ([]Credential, error) {
	hash := RPIDHash(rpID)
	r, err := s.call(ctx, ctap.CredMgmtEnumerateCredentialsBegin, &ctap.CredMgmtParams{RPIDHash: hash[:]}, true)
	if errors.Is(err, StatusNoCredentials) {
		return []Credential{}, nil
	}
	if err != nil {
		return nil, err
	}
	total := int(min(r.TotalCredentials, maxEnumerated))
	var out []Credential
	for i := 0; ; i++ {
		c, err := credentialFrom(rpID, r)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
		if i+1 >= total {
			return out, nil
		}
		if r, err = s.call(ctx, ctap.CredMgmtEnumerateCredentialsGetNextCredential, nil, false); err != nil {
			return nil, err
		}
	}
}

func credentialFrom(rpID string, r *ctap.CredMgmtResponse) (Credential, error) {
	const op = "enumerateCredentials"
	if r.User == nil || r.CredentialID == nil || r.PublicKey == nil {
		return Credential{}, &ResponseError{Op: op, Err: errors.New("missing user, credentialID or publicKey")}
	}
	alg, _, err := ctap.ParsePublicKey(r.PublicKey)
	if err != nil {
		return Credential{}, &ResponseError{Op: op, Err: err}
	}
	if r.LargeBlobKey != nil && len(r.LargeBlobKey) != largeBlobKeyLen {
		return Credential{}, &ResponseError{Op: op, Err: fmt.Errorf("largeBlobKey of %d bytes", len(r.LargeBlobKey))}
	}
	return Credential{
		ID:           r.CredentialID.ID,
		RP:           RelyingParty{ID: rpID},
		User:         User{ID: r.User.ID, Name: r.User.Name, DisplayName: r.User.DisplayName},
		PublicKey:    r.PublicKey,
		Algorithm:    Algorithm(alg),
		CredProtect:  CredProtect(min(r.CredProtect, 255)),
		LargeBlobKey: r.LargeBlobKey,
	}, nil
}

// DeleteCredential implements [CredentialManager] (CTAP 2.1 §6.8.5).
func (d *Device) DeleteCredential(ctx context.Context, id []byte) error {
	if len(id) == 0 {
		return invalidRequest("credential ID is empty")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := d.opContext(ctx)
	defer cancel()
	s, err := d.beginCredMgmt(ctx, "")
	if err != nil {
		return err
	}
	defer s.wipe()
	_, err = s.call(ctx, ctap.CredMgmtDeleteCredential, &ctap.CredMgmtParams{
		CredentialID: &ctap.CredentialDescriptor{Type: "public-key", ID: id},
	}, true)
	d.getInfo = nil // remainingDiscoverableCredentials changed
	return err
}

// UpdateUser implements [CredentialManager] (CTAP 2.1 §6.8.6).
func (d *Device) UpdateUser(ctx context.Context, id []byte, user User) error {
	if len(id) == 0 {
		return invalidRequest("credential ID is empty")
	}
	if n := len(user.ID); n < 1 || n > 64 {
		return invalidRequest("user.ID is %d bytes, want 1 to 64", n)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := d.opContext(ctx)
	defer cancel()
	s, err := d.beginCredMgmt(ctx, "")
	if err != nil {
		return err
	}
	defer s.wipe()
	_, err = s.call(ctx, ctap.CredMgmtUpdateUserInformation, &ctap.CredMgmtParams{
		CredentialID: &ctap.CredentialDescriptor{Type: "public-key", ID: id},
		User:         &ctap.UserEntity{ID: user.ID, Name: user.Name, DisplayName: user.DisplayName},
	}, true)
	return err
}
