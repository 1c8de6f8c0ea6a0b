package mfa

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/fidokit/fidokit/webauthn"
)

// Device is one MFA device of an account, of any type. Security keys are
// the relying party's credential records themselves, not copies.
type Device struct {
	// ID names the device among all of every type; pass it to Rename,
	// Deactivate, Reactivate and Delete. It is not secret.
	ID string
	// UserID is the owner.
	UserID []byte
	// Type is SecurityKey, AuthenticatorApp or HardwareToken.
	Type DeviceType
	// Name is what the person called it; may be empty for a key.
	Name string
	// Serial is a hardware token's serial number; empty otherwise.
	Serial string
	// Created is when it was enrolled; LastUsed when it last passed a
	// sign-in (zero if never); Deactivated when it was deactivated (zero
	// while active).
	Created, LastUsed, Deactivated time.Time
	// CloneWarning is set on a security key whose signature counter went
	// backwards: it may have been cloned.
	CloneWarning bool
	// Key is the security key's credential record; nil for other types.
	Key *webauthn.Credential
}

// Active reports whether the device may be used.
func (d *Device) Active() bool { return d.Deactivated.IsZero() }

func keyDevice(c *webauthn.Credential) *Device {
	return &Device{
		ID: keyDeviceID(c.ID), UserID: c.UserID, Type: SecurityKey, Name: c.Name,
		Created: c.Created, LastUsed: c.LastUsed, Deactivated: c.Deactivated,
		CloneWarning: c.CloneWarning, Key: c,
	}
}

func otpDevice(d *OTPDevice) *Device {
	return &Device{
		ID: otpDeviceID(d.ID), UserID: d.UserID, Type: d.Type, Name: d.Name, Serial: d.Serial,
		Created: d.Created, LastUsed: d.LastUsed, Deactivated: d.Deactivated,
	}
}

// Devices returns the account's devices of every type, active and
// deactivated, oldest first. Errors: webauthn.ErrUnknownUser.
func (m *Manager) Devices(ctx context.Context, userID []byte) ([]*Device, error) {
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	creds, err := m.rp.Credentials(ctx, userID)
	if err != nil {
		return nil, err
	}
	otps, err := m.store.OTPDevices(ctx, userID)
	if err != nil {
		return nil, storeErr("reading devices", err)
	}
	ds := make([]*Device, 0, len(creds)+len(otps))
	for _, c := range creds {
		ds = append(ds, keyDevice(c))
	}
	for _, d := range otps {
		ds = append(ds, otpDevice(d))
	}
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].Created.Before(ds[j].Created) })
	return ds, nil
}

// Device returns one of the account's devices. Errors: ErrUnknownDevice.
func (m *Manager) Device(ctx context.Context, userID []byte, deviceID string) (*Device, error) {
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	key, raw, err := parseDeviceID(deviceID)
	if err != nil {
		return nil, err
	}
	if key {
		c, err := m.rp.Credential(ctx, userID, raw)
		if errors.Is(err, webauthn.ErrUnknownCredential) {
			return nil, ErrUnknownDevice
		}
		if err != nil {
			return nil, err
		}
		return keyDevice(c), nil
	}
	d, err := m.store.OTPDevice(ctx, raw)
	switch {
	case errors.Is(err, webauthn.ErrNotFound):
		return nil, ErrUnknownDevice
	case err != nil:
		return nil, storeErr("reading device", err)
	case string(d.UserID) != string(userID):
		// Another account's device is, to this one, no device at all.
		return nil, ErrUnknownDevice
	}
	return otpDevice(d), nil
}

// Rename sets a device's name (at most 128 bytes of UTF-8 without control
// characters). Errors: ErrInvalidRequest, ErrUnknownDevice.
func (m *Manager) Rename(ctx context.Context, userID []byte, deviceID, name string) error {
	if err := checkName("device name", name, maxNameLen, false); err != nil {
		return err
	}
	return m.change(ctx, userID, deviceID, EventDeviceRenamed, name,
		func(ctx context.Context, id []byte) error { return m.rp.RenameCredential(ctx, userID, id, name) },
		func(ctx context.Context, id []byte) error { return m.store.RenameOTPDevice(ctx, userID, id, name) })
}

// Deactivate stops a device from being used, as an administrator does
// for a lost one; its record stays, and [Manager.Reactivate] undoes it.
// Deactivating a deactivated device changes nothing (and records no
// event). An administrator may deactivate any account's device:
// authorising that is the caller's business; say who acts with
// [WithActor]. Errors: ErrUnknownDevice.
func (m *Manager) Deactivate(ctx context.Context, userID []byte, deviceID string) error {
	return m.change(ctx, userID, deviceID, EventDeviceDeactivated, "",
		func(ctx context.Context, id []byte) error {
			c, err := m.rp.Credential(ctx, userID, id)
			if err != nil {
				return err
			}
			if !c.Active() {
				return errUnchanged
			}
			return m.rp.DeactivateCredential(ctx, userID, id)
		},
		func(ctx context.Context, id []byte) error {
			d, err := m.store.OTPDevice(ctx, id)
			if err != nil || string(d.UserID) != string(userID) {
				return webauthn.ErrNotFound
			}
			if !d.Active() {
				return errUnchanged
			}
			return m.store.DeactivateOTPDevice(ctx, userID, id, m.now())
		})
}

// Reactivate lets a deactivated device be used again. Reactivating an
// active device changes nothing (and records no event). Errors:
// ErrUnknownDevice.
func (m *Manager) Reactivate(ctx context.Context, userID []byte, deviceID string) error {
	return m.change(ctx, userID, deviceID, EventDeviceReactivated, "",
		func(ctx context.Context, id []byte) error {
			c, err := m.rp.Credential(ctx, userID, id)
			if err != nil {
				return err
			}
			if c.Active() {
				return errUnchanged
			}
			return m.rp.ReactivateCredential(ctx, userID, id)
		},
		func(ctx context.Context, id []byte) error {
			d, err := m.store.OTPDevice(ctx, id)
			if err != nil || string(d.UserID) != string(userID) {
				return webauthn.ErrNotFound
			}
			if d.Active() {
				return errUnchanged
			}
			return m.store.DeactivateOTPDevice(ctx, userID, id, time.Time{})
		})
}

// Delete removes a device for good; a TOTP seed goes with it. Errors:
// ErrUnknownDevice.
func (m *Manager) Delete(ctx context.Context, userID []byte, deviceID string) error {
	return m.change(ctx, userID, deviceID, EventDeviceDeleted, "",
		func(ctx context.Context, id []byte) error { return m.rp.DeleteCredential(ctx, userID, id) },
		func(ctx context.Context, id []byte) error { return m.store.DeleteOTPDevice(ctx, userID, id) })
}

// errUnchanged is a change that had nothing to do: no error, no event.
var errUnchanged = errors.New("unchanged")

// keyOps and otpOps are the store methods that make each change, which
// carry its event.
var (
	keyOps = map[EventType]StoreOp{
		EventDeviceRenamed: OpRenameCredential, EventDeviceDeactivated: OpDeactivateCredential,
		EventDeviceReactivated: OpDeactivateCredential, EventDeviceDeleted: OpDeleteCredential,
	}
	otpOps = map[EventType]StoreOp{
		EventDeviceRenamed: OpRenameOTPDevice, EventDeviceDeactivated: OpDeactivateOTPDevice,
		EventDeviceReactivated: OpDeactivateOTPDevice, EventDeviceDeleted: OpDeleteOTPDevice,
	}
)

// change routes one lifecycle operation to the relying party for a key or
// to the store for a TOTP device, with the same errors for both, and its
// event t.
func (m *Manager) change(ctx context.Context, userID []byte, deviceID string, t EventType, detail string, key, otp func(ctx context.Context, id []byte) error) error {
	if err := checkUserID(userID); err != nil {
		return err
	}
	isKey, raw, err := parseDeviceID(deviceID)
	if err != nil {
		return err
	}
	op := otpOps[t]
	if isKey {
		op = keyOps[t]
	}
	ectx, ev, err := m.withEvent(ctx, op, t, userID, m.now(), func(e *Event) { e.DeviceID, e.Detail = deviceID, detail })
	if err != nil {
		return err
	}
	if isKey {
		err = key(ectx, raw)
	} else {
		err = otp(ectx, raw)
	}
	switch {
	case err == nil:
		m.emit(ctx, ev)
		return nil
	case errors.Is(err, errUnchanged):
		return nil
	case errors.Is(err, webauthn.ErrNotFound), errors.Is(err, webauthn.ErrUnknownCredential):
		return ErrUnknownDevice
	}
	return fmt.Errorf("mfa: changing device: %w", err)
}

// countDevices is how many devices of every type the account holds.
func (m *Manager) countDevices(ctx context.Context, userID []byte) (int, error) {
	creds, err := m.store.Credentials(ctx, userID)
	if err != nil {
		return 0, storeErr("counting devices", err)
	}
	otps, err := m.store.OTPDevices(ctx, userID)
	if err != nil {
		return 0, storeErr("counting devices", err)
	}
	return len(creds) + len(otps), nil
}
