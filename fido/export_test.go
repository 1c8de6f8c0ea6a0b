package fido

import (
	"context"

	"github.com/fidokit/fidokit/internal/pinuv"
)

// Test hooks for the external tests, which cannot be in package fido
// because they use fido/virtual, which imports fido.

// ForcePINProtocol makes d speak only PIN/UV auth protocol v, so that tests
// exercise protocol one on keys that prefer two.
func ForcePINProtocol(d *Device, v int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.forceProtocol = v
}

// TestToken is a pinUvAuthToken obtained outside an operation, so that a
// test can present it where it should be refused.
type TestToken struct{ tok *pinToken }

// Token obtains a token with perms, bound to rpID when not empty, the way
// operations do (built-in UV, else Prompt.PIN).
func Token(ctx context.Context, d *Device, perms pinuv.Permission, rpID string) (*TestToken, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	info, err := d.infoLocked(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := d.token(ctx, info, tokenRequest{op: "test", perms: perms, rpID: rpID})
	if err != nil {
		return nil, err
	}
	return &TestToken{tok: tok}, nil
}

// CredentialsWithToken enumerates rpID's credentials authenticated with tok.
func CredentialsWithToken(ctx context.Context, d *Device, tok *TestToken, rpID string) ([]Credential, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	info, err := d.infoLocked(ctx)
	if err != nil {
		return nil, err
	}
	cmd, err := credMgmtCommand(info)
	if err != nil {
		return nil, err
	}
	return (&credMgmtSession{d: d, cmd: cmd, tok: tok.tok}).credentials(ctx, rpID)
}

// GetAssertionWithToken signs in authenticated with tok.
func GetAssertionWithToken(ctx context.Context, d *Device, tok *TestToken, req *GetAssertionRequest) ([]*Assertion, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	info, err := d.infoLocked(ctx)
	if err != nil {
		return nil, err
	}
	return d.getAssertion(ctx, info, req, tok.tok)
}

// MakeCredentialWithToken enrolls authenticated with tok.
func MakeCredentialWithToken(ctx context.Context, d *Device, tok *TestToken, req *MakeCredentialRequest) (*Attestation, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	info, err := d.infoLocked(ctx)
	if err != nil {
		return nil, err
	}
	return d.makeCredential(ctx, info, req, tok.tok)
}

// ToggleAlwaysUVWithToken runs toggleAlwaysUv authenticated with tok.
func ToggleAlwaysUVWithToken(ctx context.Context, d *Device, tok *TestToken) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	info, err := d.configInfo(ctx, "toggleAlwaysUv", "alwaysUv")
	if err != nil {
		return err
	}
	return d.configWithToken(ctx, info, 0x02, nil, tok.tok)
}
