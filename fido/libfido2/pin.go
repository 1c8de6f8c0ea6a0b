//go:build cgo

package libfido2

import (
	"context"
	"errors"
	"fmt"

	gofido2 "github.com/keys-pub/go-libfido2"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/internal/pinuv"
)

var (
	_ fido.PINManager        = (*Device)(nil)
	_ fido.CredentialManager = (*Device)(nil)
)

// maxPINPrompts bounds how often one operation asks for the PIN again
// after a wrong one; the key blocks PIN entry after three in a row anyway
// (CTAP 2.1 §6.5.5.7).
const maxPINPrompts = 8

// checkPIN refuses a PIN that no key accepts (CTAP 2.1 §6.5.1: 4 to 63
// bytes of UTF-8 once padded, no NUL), before it is sent.
func checkPIN(pin string) error {
	padded, err := pinuv.PadPIN(pin)
	if err != nil {
		return fmt.Errorf("%w: %w: %v", fido.ErrInvalidRequest, fido.StatusPINPolicyViolation, err)
	}
	clear(padded)
	return nil
}

// retries is the key's PIN retry counter, or -1 when it cannot be read.
// d.mu is held.
func (d *Device) retries(ctx context.Context) int {
	var n int
	if err := d.call(ctx, "getPINRetries", func() (err error) {
		n, err = d.dev.RetryCount()
		return err
	}); err != nil {
		return -1
	}
	return n
}

// pinError turns a refused PIN into a *fido.PINError carrying the retries
// left, and leaves other errors alone. d.mu is held.
func (d *Device) pinError(ctx context.Context, err error) error {
	if errors.Is(err, fido.StatusPINInvalid) || errors.Is(err, fido.StatusPINAuthBlocked) || errors.Is(err, fido.StatusPINBlocked) {
		n := -1
		if !errors.Is(err, fido.StatusPINAuthBlocked) {
			n = d.retries(ctx)
		}
		if errors.Is(err, fido.StatusPINBlocked) {
			n = 0
		}
		return &fido.PINError{Retries: n, Err: err}
	}
	return err
}

// askPIN asks the person for the PIN through Prompt.PIN. d.mu is held.
func (d *Device) askPIN(ctx context.Context, op, rpID string, retry bool) (string, error) {
	if d.prompt.PIN == nil {
		return "", fmt.Errorf("fido/libfido2: %s: %w", op, fido.ErrPINRequired)
	}
	req := fido.PINRequest{Op: op, RPID: rpID, Retries: d.retries(ctx), Retry: retry}
	pin, err := d.prompt.PIN(ctx, req)
	if err != nil {
		return "", fmt.Errorf("fido/libfido2: %s: %w: %w", op, fido.ErrPINRequired, err)
	}
	return pin, nil
}

// withPIN runs f, a go-libfido2 call that takes a PIN ("" for none). With
// needPIN it asks for the PIN first; otherwise it runs f without one and
// asks only when the key demands verification (CTAP 2.1 §6.1.2 step 6:
// CTAP2_ERR_PUAT_REQUIRED). After a wrong PIN it asks again, telling the
// person so, until the key accepts one or blocks PIN entry. d.mu is held.
func (d *Device) withPIN(ctx context.Context, op, rpID string, needPIN bool, f func(pin string) error) error {
	var pin string
	if needPIN {
		var err error
		if pin, err = d.askPIN(ctx, op, rpID, false); err != nil {
			return err
		}
	}
	for attempt := 1; ; attempt++ {
		err := f(pin)
		wrong := pin != "" && errors.Is(err, fido.StatusPINInvalid)
		demanded := pin == "" && errors.Is(err, fido.StatusPUATRequired) && d.info != nil && d.info.Options["clientPin"]
		if !wrong && !demanded || attempt > maxPINPrompts {
			return d.pinError(ctx, err)
		}
		// A wrong PIN is dropped here; if the person gives up, the
		// error still says how many tries are left.
		var askErr error
		if pin, askErr = d.askPIN(ctx, op, rpID, wrong); askErr != nil {
			if wrong {
				return errors.Join(askErr, d.pinError(ctx, err))
			}
			return askErr
		}
	}
}

// uvPlan decides how to meet a request for user verification (wanted),
// from the key's getInfo options (CTAP 2.1 §6.4): built-in verification
// (uv true, no PIN), the PIN, or an error when the key can do neither.
func uvPlan(info *fido.Info, op string, wanted bool) (uv gofido2.OptionValue, needPIN bool, err error) {
	if !wanted {
		return gofido2.Default, false, nil
	}
	pinSet, pinSupported := info.Option("clientPin")
	switch {
	case info.Options["uv"]:
		return gofido2.True, false, nil
	case pinSet:
		return gofido2.Default, true, nil
	case pinSupported:
		return gofido2.Default, false, fmt.Errorf("fido/libfido2: %s: user verification needs a PIN and the key has none set (see SetPIN): %w", op, fido.StatusPINNotSet)
	}
	return gofido2.Default, false, fmt.Errorf("fido/libfido2: %s: user verification asked of a key with neither a PIN nor built-in user verification: %w", op, fido.ErrNotSupported)
}

// SetPIN sets the PIN of a key that has none; see [fido.PINManager]: a
// key with a PIN gives fido.StatusNotAllowed, one without PIN support
// fido.ErrNotSupported. go-libfido2 does not report the key's minimum PIN
// length, so only the key refuses a PIN shorter than that
// (fido.StatusPINPolicyViolation). go-libfido2 hands the PIN to libfido2
// as a C string it never frees or clears.
func (d *Device) SetPIN(ctx context.Context, pin string) error {
	if err := checkPIN(pin); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.info = nil // clientPin may have changed since it was read
	info, err := d.infoLocked(ctx)
	if err != nil {
		return err
	}
	switch set, supported := info.Option("clientPin"); {
	case set:
		// fido.PINManager's answer; the key itself would say
		// CTAP2_ERR_PIN_AUTH_INVALID (CTAP 2.1 §6.5.5.5 step 3).
		return fmt.Errorf("fido/libfido2: setPIN: the key already has a PIN; use ChangePIN: %w", fido.StatusNotAllowed)
	case !supported:
		return fmt.Errorf("fido/libfido2: setPIN: the key has no PIN support: %w", fido.ErrNotSupported)
	}
	d.info = nil // clientPin changes
	return d.call(ctx, "setPIN", func() error { return d.dev.SetPIN(pin, "") })
}

// ChangePIN replaces the PIN; see [fido.PINManager]. A wrong oldPIN gives
// a *fido.PINError with the retries left.
func (d *Device) ChangePIN(ctx context.Context, oldPIN, newPIN string) error {
	if err := checkPIN(newPIN); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.info = nil // forcePINChange changes
	err := d.call(ctx, "changePIN", func() error { return d.dev.SetPIN(newPIN, oldPIN) })
	return d.pinError(ctx, err)
}

// PINRetries returns how many wrong PINs the key still accepts; see
// [fido.PINManager]. go-libfido2 does not report powerCycleState, so
// powerCycleRequired is always false.
func (d *Device) PINRetries(ctx context.Context) (retries int, powerCycleRequired bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	err = d.call(ctx, "getPINRetries", func() (err error) {
		retries, err = d.dev.RetryCount()
		return err
	})
	return retries, false, err
}

// UVRetries is not available through go-libfido2; it returns an error
// wrapping fido.ErrNotSupported.
func (d *Device) UVRetries(ctx context.Context) (int, error) { return 0, notSupported("getUVRetries") }

// credMgmt runs one credential management call (CTAP 2.1 §6.8) with the
// PIN, which go-libfido2 always needs for them. d.mu is held.
func (d *Device) credMgmt(ctx context.Context, op string, f func(pin string) error) error {
	info, err := d.infoLocked(ctx)
	if err != nil {
		return err
	}
	if !info.Options["credMgmt"] && !info.Options["credentialMgmtPreview"] {
		return fmt.Errorf("fido/libfido2: %s: the key has no credential management: %w", op, fido.ErrNotSupported)
	}
	if pinSet, ok := info.Option("clientPin"); !pinSet {
		if ok {
			return fmt.Errorf("fido/libfido2: %s: the key has no PIN set (see SetPIN): %w", op, fido.StatusPINNotSet)
		}
		return fmt.Errorf("fido/libfido2: %s: credential management without a PIN: %w", op, fido.ErrNotSupported)
	}
	return d.withPIN(ctx, "credentialManagement", "", true, func(pin string) error {
		return d.call(ctx, op, func() error { return f(pin) })
	})
}

// CredentialsMetadata counts the discoverable credentials on the key; see
// [fido.CredentialManager].
func (d *Device) CredentialsMetadata(ctx context.Context) (*fido.CredentialsMetadata, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var m *gofido2.CredentialsInfo
	err := d.credMgmt(ctx, "getCredsMetadata", func(pin string) (err error) {
		m, err = d.dev.CredentialsInfo(pin)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &fido.CredentialsMetadata{Existing: int(m.RKExisting), Remaining: int(m.RKRemaining)}, nil
}

// RelyingParties lists the relying parties the key holds discoverable
// credentials for; see [fido.CredentialManager].
func (d *Device) RelyingParties(ctx context.Context) ([]fido.RelyingParty, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var rps []*gofido2.RelyingParty
	err := d.credMgmt(ctx, "enumerateRPs", func(pin string) (err error) {
		rps, err = d.dev.RelyingParties(pin)
		return err
	})
	if errors.Is(err, fido.StatusNoCredentials) {
		return []fido.RelyingParty{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]fido.RelyingParty, 0, len(rps))
	for _, rp := range rps {
		out = append(out, fido.RelyingParty{ID: rp.ID, Name: rp.Name})
	}
	return out, nil
}

// Credentials lists the discoverable credentials the key holds for rpID;
// see [fido.CredentialManager]. go-libfido2 reports the ID, the user and
// the algorithm only: PublicKey, CredProtect and LargeBlobKey are empty.
func (d *Device) Credentials(ctx context.Context, rpID string) ([]fido.Credential, error) {
	if rpID == "" {
		return nil, invalidRequest("rpID is empty")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	var creds []*gofido2.Credential
	err := d.credMgmt(ctx, "enumerateCredentials", func(pin string) (err error) {
		creds, err = d.dev.Credentials(rpID, pin)
		return err
	})
	if errors.Is(err, fido.StatusNoCredentials) {
		return []fido.Credential{}, nil
	}
	if err != nil {
		return nil, err
	}
	out := make([]fido.Credential, 0, len(creds))
	for _, c := range creds {
		out = append(out, fido.Credential{
			ID:        c.ID,
			RP:        fido.RelyingParty{ID: rpID},
			User:      fido.User{ID: c.User.ID, Name: c.User.Name, DisplayName: c.User.DisplayName},
			Algorithm: fido.Algorithm(c.Type),
		})
	}
	return out, nil
}

// DeleteCredential deletes a discoverable credential; see
// [fido.CredentialManager].
func (d *Device) DeleteCredential(ctx context.Context, id []byte) error {
	if len(id) == 0 {
		return invalidRequest("credential ID is empty")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.credMgmt(ctx, "deleteCredential", func(pin string) error {
		return d.dev.DeleteCredential(id, pin)
	})
}

// UpdateUser is not available through go-libfido2; it returns an error
// wrapping fido.ErrNotSupported.
func (d *Device) UpdateUser(ctx context.Context, id []byte, user fido.User) error {
	return notSupported("updateUserInformation")
}
