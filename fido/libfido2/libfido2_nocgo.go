//go:build !cgo

package libfido2

import (
	"context"
	"fmt"

	"github.com/fidokit/fidokit/fido"
)

// Device is a key opened through libfido2. Without cgo none can be
// opened; every method returns an error matching [ErrNeedsCgo].
type Device struct{}

var (
	_ fido.Authenticator     = (*Device)(nil)
	_ fido.PINManager        = (*Device)(nil)
	_ fido.CredentialManager = (*Device)(nil)
)

func needsCgoErr(op string) error { return fmt.Errorf("fido/libfido2: %s: %w", op, ErrNeedsCgo) }

// Devices returns an error matching [ErrNeedsCgo]: this build has no cgo.
func Devices(ctx context.Context) ([]fido.DeviceInfo, error) { return nil, needsCgoErr("listing keys") }

// Open returns an error matching [ErrNeedsCgo]: this build has no cgo.
func (o *Opener) Open(ctx context.Context, path string) (*Device, error) {
	return nil, needsCgoErr("opening " + path)
}

// DeviceInfo returns a zero DeviceInfo.
func (d *Device) DeviceInfo() fido.DeviceInfo { return fido.DeviceInfo{} }

// Close does nothing.
func (d *Device) Close() error { return nil }

// Info returns an error matching [ErrNeedsCgo].
func (d *Device) Info(ctx context.Context) (*fido.Info, error) { return nil, needsCgoErr("getInfo") }

// MakeCredential returns an error matching [ErrNeedsCgo].
func (d *Device) MakeCredential(ctx context.Context, req *fido.MakeCredentialRequest) (*fido.Attestation, error) {
	return nil, needsCgoErr("makeCredential")
}

// GetAssertion returns an error matching [ErrNeedsCgo].
func (d *Device) GetAssertion(ctx context.Context, req *fido.GetAssertionRequest) ([]*fido.Assertion, error) {
	return nil, needsCgoErr("getAssertion")
}

// Reset returns an error matching [ErrNeedsCgo].
func (d *Device) Reset(ctx context.Context) error { return needsCgoErr("reset") }

// Wink returns an error matching [ErrNeedsCgo].
func (d *Device) Wink(ctx context.Context) error { return needsCgoErr("wink") }

// Selection returns an error matching [ErrNeedsCgo].
func (d *Device) Selection(ctx context.Context) error { return needsCgoErr("selection") }

// SetPIN returns an error matching [ErrNeedsCgo].
func (d *Device) SetPIN(ctx context.Context, pin string) error { return needsCgoErr("setPIN") }

// ChangePIN returns an error matching [ErrNeedsCgo].
func (d *Device) ChangePIN(ctx context.Context, oldPIN, newPIN string) error {
	return needsCgoErr("changePIN")
}

// PINRetries returns an error matching [ErrNeedsCgo].
func (d *Device) PINRetries(ctx context.Context) (retries int, powerCycleRequired bool, err error) {
	return 0, false, needsCgoErr("getPINRetries")
}

// UVRetries returns an error matching [ErrNeedsCgo].
func (d *Device) UVRetries(ctx context.Context) (int, error) { return 0, needsCgoErr("getUVRetries") }

// CredentialsMetadata returns an error matching [ErrNeedsCgo].
func (d *Device) CredentialsMetadata(ctx context.Context) (*fido.CredentialsMetadata, error) {
	return nil, needsCgoErr("getCredsMetadata")
}

// RelyingParties returns an error matching [ErrNeedsCgo].
func (d *Device) RelyingParties(ctx context.Context) ([]fido.RelyingParty, error) {
	return nil, needsCgoErr("enumerateRPs")
}

// Credentials returns an error matching [ErrNeedsCgo].
func (d *Device) Credentials(ctx context.Context, rpID string) ([]fido.Credential, error) {
	return nil, needsCgoErr("enumerateCredentials")
}

// DeleteCredential returns an error matching [ErrNeedsCgo].
func (d *Device) DeleteCredential(ctx context.Context, id []byte) error {
	return needsCgoErr("deleteCredential")
}

// UpdateUser returns an error matching [ErrNeedsCgo].
func (d *Device) UpdateUser(ctx context.Context, id []byte, user fido.User) error {
	return needsCgoErr("updateUserInformation")
}
