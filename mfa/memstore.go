package mfa

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/fidokit/fidokit/webauthn"
)

// MemoryStore is a [Store] in process memory, for tests, examples and
// single-process demos: a [webauthn.MemoryStore] for users, keys and
// challenges, plus the MFA records. Its contents are lost when the process
// exits; use package github.com/fidokit/fidokit/store/sqlite or
// store/postgres for anything else.
//
// It is safe for concurrent use; every method is atomic. Use it, not its
// embedded webauthn.MemoryStore, as the relying party's store, so that
// the device limit counts every type.
//
// The zero value is not usable; call [NewMemoryStore].
type MemoryStore struct {
	*webauthn.MemoryStore

	// mu guards the maps below and is held around every embedded call
	// that must be atomic with them (AddCredential's shared limit).
	mu       sync.Mutex
	devices  map[string]*OTPDevice // by string(ID)
	seq      map[string]uint64     // insertion order, the tie-break of Created
	next     uint64
	pending  map[string]*OTPEnrollment
	recovery map[string]*RecoveryCodes // by string(UserID)
	attempts map[string]Attempts       // by string(UserID) + "\x00" + factor
	events   []*Event                  // in the order appended
	eventIDs map[string]bool
}

var (
	_ Store                = (*MemoryStore)(nil)
	_ webauthn.FinishStore = (*MemoryStore)(nil)
)

// NewMemoryStore returns an empty in-memory store.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{
		MemoryStore: webauthn.NewMemoryStore(),
		devices:     make(map[string]*OTPDevice),
		seq:         make(map[string]uint64),
		pending:     make(map[string]*OTPEnrollment),
		recovery:    make(map[string]*RecoveryCodes),
		attempts:    make(map[string]Attempts),
		eventIDs:    make(map[string]bool),
	}
}

func memTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return bytes.Clone(b)
}

func copyOTPDevice(d *OTPDevice) *OTPDevice {
	c := *d
	c.ID, c.UserID = clone(d.ID), clone(d.UserID)
	c.Secret.Box = clone(d.Secret.Box)
	c.Created, c.LastUsed, c.Deactivated = memTime(d.Created), memTime(d.LastUsed), memTime(d.Deactivated)
	return &c
}

func copyEnrollment(e *OTPEnrollment) *OTPEnrollment {
	c := *e
	c.ID, c.UserID = clone(e.ID), clone(e.UserID)
	c.Secret.Box = clone(e.Secret.Box)
	c.Expires = memTime(e.Expires)
	return &c
}

func copyRecovery(r *RecoveryCodes, withUsed bool) *RecoveryCodes {
	c := &RecoveryCodes{UserID: clone(r.UserID), ID: clone(r.ID), Salt: clone(r.Salt), Created: memTime(r.Created)}
	for _, h := range r.Hashes {
		c.Hashes = append(c.Hashes, clone(h))
	}
	c.Used = make([]time.Time, len(r.Hashes))
	if withUsed {
		for i := range c.Used {
			if i < len(r.Used) {
				c.Used[i] = memTime(r.Used[i])
			}
		}
	}
	return c
}

func memErr(op string, err error) error { return fmt.Errorf("memory store: %s: %w", op, err) }

func (m *MemoryStore) userExists(ctx context.Context, id []byte) error {
	_, err := m.MemoryStore.User(ctx, id)
	return err
}

// countOTP is how many TOTP devices the user holds; m.mu is held.
func (m *MemoryStore) countOTP(userID []byte) int {
	n := 0
	for _, d := range m.devices {
		if bytes.Equal(d.UserID, userID) {
			n++
		}
	}
	return n
}

// AddCredential implements [webauthn.Store.AddCredential], with limit
// counting the user's TOTP devices too.
func (m *MemoryStore) AddCredential(ctx context.Context, c *webauthn.Credential, limit int) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if limit > 0 {
		limit -= m.countOTP(c.UserID)
		if limit <= 0 {
			if err := m.userExists(ctx, c.UserID); err != nil {
				return err
			}
			return memErr("adding credential", webauthn.ErrLimit)
		}
	}
	evs := KeyEvents(ctx, OpAddCredential, c.UserID, c.ID)
	if err := m.checkEvents(evs); err != nil {
		return memErr("adding credential", err)
	}
	if err := m.MemoryStore.AddCredential(ctx, c, limit); err != nil {
		return err
	}
	m.addEvents(evs)
	return nil
}

// keyChange runs one of the embedded store's changes to a security key
// with its events, under m.mu so that they are appended together.
func (m *MemoryStore) keyChange(op string, evs []Event, change func() error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkEvents(evs); err != nil {
		return memErr(op, err)
	}
	if err := change(); err != nil {
		return err
	}
	m.addEvents(evs)
	return nil
}

// CreateUserWithCredential implements
// [webauthn.Store.CreateUserWithCredential], with its events.
func (m *MemoryStore) CreateUserWithCredential(ctx context.Context, u *webauthn.User, c *webauthn.Credential) error {
	return m.keyChange("creating user", KeyEvents(ctx, OpCreateUserWithCredential, c.UserID, c.ID), func() error {
		return m.MemoryStore.CreateUserWithCredential(ctx, u, c)
	})
}

// RenameCredential implements [webauthn.Store.RenameCredential], with
// its events.
func (m *MemoryStore) RenameCredential(ctx context.Context, userID, id []byte, name string) error {
	return m.keyChange("renaming credential", StoreEvents(ctx, OpRenameCredential), func() error {
		return m.MemoryStore.RenameCredential(ctx, userID, id, name)
	})
}

// DeactivateCredential implements [webauthn.Store.DeactivateCredential],
// with its events.
func (m *MemoryStore) DeactivateCredential(ctx context.Context, userID, id []byte, at time.Time) error {
	return m.keyChange("deactivating credential", StoreEvents(ctx, OpDeactivateCredential), func() error {
		return m.MemoryStore.DeactivateCredential(ctx, userID, id, at)
	})
}

// DeleteCredential implements [webauthn.Store.DeleteCredential], with
// its events.
func (m *MemoryStore) DeleteCredential(ctx context.Context, userID, id []byte) error {
	return m.keyChange("deleting credential", StoreEvents(ctx, OpDeleteCredential), func() error {
		return m.MemoryStore.DeleteCredential(ctx, userID, id)
	})
}

// RecordSignIn implements [webauthn.Store.RecordSignIn], with its events.
func (m *MemoryStore) RecordSignIn(ctx context.Context, s webauthn.SignIn) error {
	return m.keyChange("recording sign-in", KeyEvents(ctx, OpRecordSignIn, nil, s.CredentialID), func() error {
		return m.MemoryStore.RecordSignIn(ctx, s)
	})
}

// FinishSignIn implements [webauthn.FinishStore.FinishSignIn], with
// RecordSignIn's events, appended only when the sign count was set.
func (m *MemoryStore) FinishSignIn(ctx context.Context, id string, s webauthn.SignIn) (bool, error) {
	var taken bool
	err := m.keyChange("recording sign-in", KeyEvents(ctx, OpRecordSignIn, nil, s.CredentialID), func() error {
		var err error
		taken, err = m.MemoryStore.FinishSignIn(ctx, id, s)
		if err == nil && !taken {
			return errNotTaken // no change, so no events
		}
		return err
	})
	if errors.Is(err, errNotTaken) {
		return false, nil
	}
	return taken, err
}

// errNotTaken tells keyChange that FinishSignIn changed nothing.
var errNotTaken = errors.New("challenge not taken")

// FlagClone implements [webauthn.Store.FlagClone], with its events.
func (m *MemoryStore) FlagClone(ctx context.Context, id []byte) error {
	return m.keyChange("flagging clone", KeyEvents(ctx, OpFlagClone, nil, id), func() error {
		return m.MemoryStore.FlagClone(ctx, id)
	})
}

// checkEvents reports whether evs can be appended; m.mu is held. It runs
// before a change, so that a change whose events cannot be appended is
// not made.
func (m *MemoryStore) checkEvents(evs []Event) error {
	seen := map[string]bool{}
	for _, e := range evs {
		if m.eventIDs[string(e.ID)] || seen[string(e.ID)] {
			return fmt.Errorf("event %x: %w", e.ID, ErrEventExists)
		}
		seen[string(e.ID)] = true
	}
	return nil
}

// addEvents appends evs, which checkEvents passed; m.mu is held.
func (m *MemoryStore) addEvents(evs []Event) {
	for _, e := range evs {
		c := copyEvent(&e)
		m.events = append(m.events, c)
		m.eventIDs[string(c.ID)] = true
	}
}

func copyEvent(e *Event) *Event {
	c := *e
	c.ID, c.UserID, c.ActorID = clone(e.ID), clone(e.UserID), clone(e.ActorID)
	c.Time = memTime(e.Time)
	return &c
}

// AppendEvents implements [Store.AppendEvents].
func (m *MemoryStore) AppendEvents(ctx context.Context, evs ...Event) error {
	if err := ctx.Err(); err != nil {
		return memErr("appending events", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.checkEvents(evs); err != nil {
		return memErr("appending events", err)
	}
	m.addEvents(evs)
	return nil
}

// Events implements [Store.Events].
func (m *MemoryStore) Events(ctx context.Context, q EventQuery) ([]*Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, memErr("reading events", err)
	}
	// Bounds to the microsecond, as the stored times and as SQL stores
	// compare them.
	q.Since, q.Until = memTime(q.Since), memTime(q.Until)
	if q.After != nil {
		q.After = copyEvent(q.After)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []*Event{}
	for _, e := range m.events {
		if q.Match(e) {
			out = append(out, copyEvent(e))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		c := compareEvents(out[i], out[j])
		if q.Newest {
			return c > 0
		}
		return c < 0
	})
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// PurgeEvents implements [Store.PurgeEvents].
func (m *MemoryStore) PurgeEvents(ctx context.Context, before time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, memErr("purging events", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	before = memTime(before)
	kept := m.events[:0]
	for _, e := range m.events {
		if e.Time.Before(before) {
			delete(m.eventIDs, string(e.ID))
			continue
		}
		kept = append(kept, e)
	}
	n := len(m.events) - len(kept)
	clear(m.events[len(kept):])
	m.events = kept
	return n, nil
}

// SaveOTPEnrollment implements [Store.SaveOTPEnrollment].
func (m *MemoryStore) SaveOTPEnrollment(ctx context.Context, e *OTPEnrollment) error {
	if err := ctx.Err(); err != nil {
		return memErr("saving enrollment", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.userExists(ctx, e.UserID); err != nil {
		return memErr("saving enrollment", err)
	}
	if _, ok := m.pending[string(e.ID)]; ok {
		return memErr("saving enrollment", webauthn.ErrExists)
	}
	if _, ok := m.devices[string(e.ID)]; ok {
		return memErr("saving enrollment", webauthn.ErrExists)
	}
	m.pending[string(e.ID)] = copyEnrollment(e)
	return nil
}

// OTPEnrollment implements [Store.OTPEnrollment].
func (m *MemoryStore) OTPEnrollment(ctx context.Context, userID, id []byte) (*OTPEnrollment, error) {
	if err := ctx.Err(); err != nil {
		return nil, memErr("reading enrollment", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.pending[string(id)]
	if !ok || !bytes.Equal(e.UserID, userID) {
		return nil, memErr("reading enrollment", webauthn.ErrNotFound)
	}
	return copyEnrollment(e), nil
}

// CompleteOTPEnrollment implements [Store.CompleteOTPEnrollment].
func (m *MemoryStore) CompleteOTPEnrollment(ctx context.Context, d *OTPDevice, limit int) error {
	if err := ctx.Err(); err != nil {
		return memErr("completing enrollment", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.pending[string(d.ID)]
	if !ok || !bytes.Equal(e.UserID, d.UserID) {
		return memErr("completing enrollment", webauthn.ErrNotFound)
	}
	if limit > 0 {
		creds, err := m.MemoryStore.Credentials(ctx, d.UserID)
		if err != nil {
			return memErr("completing enrollment", err)
		}
		if len(creds)+m.countOTP(d.UserID) >= limit {
			return memErr("completing enrollment", webauthn.ErrLimit)
		}
	}
	if d.Serial != "" {
		for _, o := range m.devices {
			if o.Serial == d.Serial {
				return memErr("completing enrollment: serial", webauthn.ErrExists)
			}
		}
	}
	evs := StoreEvents(ctx, OpCompleteOTPEnrollment)
	if err := m.checkEvents(evs); err != nil {
		return memErr("completing enrollment", err)
	}
	delete(m.pending, string(d.ID))
	m.devices[string(d.ID)] = copyOTPDevice(d)
	m.next++
	m.seq[string(d.ID)] = m.next
	m.addEvents(evs)
	return nil
}

// PurgeOTPEnrollments implements [Store.PurgeOTPEnrollments].
func (m *MemoryStore) PurgeOTPEnrollments(ctx context.Context, now time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, memErr("purging enrollments", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for id, e := range m.pending {
		if !e.Expires.After(now) {
			delete(m.pending, id)
			n++
		}
	}
	return n, nil
}

// OTPDevice implements [Store.OTPDevice].
func (m *MemoryStore) OTPDevice(ctx context.Context, id []byte) (*OTPDevice, error) {
	if err := ctx.Err(); err != nil {
		return nil, memErr("reading device", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[string(id)]
	if !ok {
		return nil, memErr("reading device", webauthn.ErrNotFound)
	}
	return copyOTPDevice(d), nil
}

// OTPDevices implements [Store.OTPDevices].
func (m *MemoryStore) OTPDevices(ctx context.Context, userID []byte) ([]*OTPDevice, error) {
	if err := ctx.Err(); err != nil {
		return nil, memErr("reading devices", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []*OTPDevice{}
	for _, d := range m.devices {
		if bytes.Equal(d.UserID, userID) {
			out = append(out, copyOTPDevice(d))
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return m.seq[string(out[i].ID)] < m.seq[string(out[j].ID)]
	})
	return out, nil
}

// ListOTPDevices implements [Store.ListOTPDevices].
func (m *MemoryStore) ListOTPDevices(ctx context.Context, after []byte, limit int) ([]*OTPDevice, error) {
	if err := ctx.Err(); err != nil {
		return nil, memErr("listing devices", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []*OTPDevice{}
	for _, d := range m.devices {
		if bytes.Compare(d.ID, after) > 0 {
			out = append(out, copyOTPDevice(d))
		}
	}
	sort.Slice(out, func(i, j int) bool { return bytes.Compare(out[i].ID, out[j].ID) < 0 })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// owned returns one of userID's devices; m.mu is held.
func (m *MemoryStore) owned(userID, id []byte) (*OTPDevice, error) {
	d, ok := m.devices[string(id)]
	if !ok || !bytes.Equal(d.UserID, userID) {
		return nil, webauthn.ErrNotFound
	}
	return d, nil
}

// RenameOTPDevice implements [Store.RenameOTPDevice].
func (m *MemoryStore) RenameOTPDevice(ctx context.Context, userID, id []byte, name string) error {
	return m.update(ctx, "renaming device", OpRenameOTPDevice, userID, id, func(d *OTPDevice) error { d.Name = name; return nil })
}

// DeactivateOTPDevice implements [Store.DeactivateOTPDevice].
func (m *MemoryStore) DeactivateOTPDevice(ctx context.Context, userID, id []byte, at time.Time) error {
	return m.update(ctx, "deactivating device", OpDeactivateOTPDevice, userID, id, func(d *OTPDevice) error { d.Deactivated = memTime(at); return nil })
}

// AdvanceOTPStep implements [Store.AdvanceOTPStep].
func (m *MemoryStore) AdvanceOTPStep(ctx context.Context, userID, id []byte, step int64, at time.Time) error {
	return m.update(ctx, "advancing step", OpAdvanceOTPStep, userID, id, func(d *OTPDevice) error {
		switch {
		case !d.Active():
			return webauthn.ErrInactive
		case d.LastStep >= step:
			return ErrReplay
		}
		d.LastStep, d.LastUsed = step, memTime(at)
		return nil
	})
}

// ResyncOTPDevice implements [Store.ResyncOTPDevice].
func (m *MemoryStore) ResyncOTPDevice(ctx context.Context, userID, id []byte, drift int, step int64) error {
	return m.update(ctx, "resyncing device", OpResyncOTPDevice, userID, id, func(d *OTPDevice) error {
		switch {
		case !d.Active():
			return webauthn.ErrInactive
		case d.LastStep >= step:
			return ErrReplay
		}
		d.LastStep, d.Drift = step, drift
		return nil
	})
}

func (m *MemoryStore) update(ctx context.Context, op string, eop StoreOp, userID, id []byte, f func(*OTPDevice) error) error {
	if err := ctx.Err(); err != nil {
		return memErr(op, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d, err := m.owned(userID, id)
	if err != nil {
		return memErr(op, err)
	}
	c := copyOTPDevice(d)
	if err := f(c); err != nil {
		return memErr(op, err)
	}
	evs := StoreEvents(ctx, eop)
	if err := m.checkEvents(evs); err != nil {
		return memErr(op, err)
	}
	m.devices[string(id)] = c
	m.addEvents(evs)
	return nil
}

// DeleteOTPDevice implements [Store.DeleteOTPDevice].
func (m *MemoryStore) DeleteOTPDevice(ctx context.Context, userID, id []byte) error {
	if err := ctx.Err(); err != nil {
		return memErr("deleting device", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, err := m.owned(userID, id); err != nil {
		return memErr("deleting device", err)
	}
	evs := StoreEvents(ctx, OpDeleteOTPDevice)
	if err := m.checkEvents(evs); err != nil {
		return memErr("deleting device", err)
	}
	delete(m.devices, string(id))
	delete(m.seq, string(id))
	m.addEvents(evs)
	return nil
}

// ResealOTPDevice implements [Store.ResealOTPDevice].
func (m *MemoryStore) ResealOTPDevice(ctx context.Context, id []byte, oldKeyID string, s Sealed) error {
	if err := ctx.Err(); err != nil {
		return memErr("re-sealing device", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.devices[string(id)]
	switch {
	case !ok:
		return memErr("re-sealing device", webauthn.ErrNotFound)
	case d.Secret.KeyID != oldKeyID:
		return memErr("re-sealing device", webauthn.ErrConflict)
	}
	c := copyOTPDevice(d)
	c.Secret = Sealed{KeyID: s.KeyID, Box: clone(s.Box)}
	m.devices[string(id)] = c
	return nil
}

// ReplaceRecoveryCodes implements [Store.ReplaceRecoveryCodes].
func (m *MemoryStore) ReplaceRecoveryCodes(ctx context.Context, r *RecoveryCodes) error {
	if err := ctx.Err(); err != nil {
		return memErr("replacing recovery codes", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.userExists(ctx, r.UserID); err != nil {
		return memErr("replacing recovery codes", err)
	}
	evs := StoreEvents(ctx, OpReplaceRecoveryCodes)
	if err := m.checkEvents(evs); err != nil {
		return memErr("replacing recovery codes", err)
	}
	m.recovery[string(r.UserID)] = copyRecovery(r, false)
	m.addEvents(evs)
	return nil
}

// RecoveryCodes implements [Store.RecoveryCodes].
func (m *MemoryStore) RecoveryCodes(ctx context.Context, userID []byte) (*RecoveryCodes, error) {
	if err := ctx.Err(); err != nil {
		return nil, memErr("reading recovery codes", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recovery[string(userID)]
	if !ok {
		return nil, memErr("reading recovery codes", webauthn.ErrNotFound)
	}
	return copyRecovery(r, true), nil
}

// UseRecoveryCode implements [Store.UseRecoveryCode].
func (m *MemoryStore) UseRecoveryCode(ctx context.Context, userID, setID []byte, index int, at time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, memErr("using recovery code", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recovery[string(userID)]
	switch {
	case !ok || !bytes.Equal(r.ID, setID) || index < 0 || index >= len(r.Hashes):
		return 0, memErr("using recovery code", webauthn.ErrNotFound)
	case !r.Used[index].IsZero():
		return 0, memErr("using recovery code", ErrReplay)
	}
	left := r.Left() - 1
	evs := RecoveryCodeEvents(ctx, left)
	if err := m.checkEvents(evs); err != nil {
		return 0, memErr("using recovery code", err)
	}
	r.Used[index] = memTime(at)
	m.addEvents(evs)
	return left, nil
}

// DeleteRecoveryCodes implements [Store.DeleteRecoveryCodes].
func (m *MemoryStore) DeleteRecoveryCodes(ctx context.Context, userID []byte) error {
	if err := ctx.Err(); err != nil {
		return memErr("deleting recovery codes", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.recovery[string(userID)]; !ok {
		return memErr("deleting recovery codes", webauthn.ErrNotFound)
	}
	delete(m.recovery, string(userID))
	return nil
}

func attemptsKey(userID []byte, f Factor) string { return string(userID) + "\x00" + string(f) }

// Attempts implements [Store.Attempts].
func (m *MemoryStore) Attempts(ctx context.Context, userID []byte, f Factor) (Attempts, error) {
	if err := ctx.Err(); err != nil {
		return Attempts{}, memErr("reading attempts", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.attempts[attemptsKey(userID, f)], nil
}

// RecordFailure implements [Store.RecordFailure].
func (m *MemoryStore) RecordFailure(ctx context.Context, userID []byte, f Factor, now time.Time, p LockPolicy) (Attempts, error) {
	if err := ctx.Err(); err != nil {
		return Attempts{}, memErr("recording failure", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.userExists(ctx, userID); err != nil {
		return Attempts{}, memErr("recording failure", err)
	}
	k := attemptsKey(userID, f)
	a := m.attempts[k]
	a.Failures++
	evs := StoreEvents(ctx, OpRecordFailure)
	if u := p.Until(a.Failures, now); !u.IsZero() {
		a.LockedUntil = memTime(u)
		evs = append(evs, LockEvents(ctx, a.LockedUntil)...)
	}
	if err := m.checkEvents(evs); err != nil {
		return Attempts{}, memErr("recording failure", err)
	}
	m.attempts[k] = a
	m.addEvents(evs)
	return a, nil
}

// ResetAttempts implements [Store.ResetAttempts].
func (m *MemoryStore) ResetAttempts(ctx context.Context, userID []byte, f Factor) error {
	if err := ctx.Err(); err != nil {
		return memErr("resetting attempts", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	evs := StoreEvents(ctx, OpResetAttempts)
	if err := m.checkEvents(evs); err != nil {
		return memErr("resetting attempts", err)
	}
	delete(m.attempts, attemptsKey(userID, f))
	m.addEvents(evs)
	return nil
}
