package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/webauthn"
)

// This file checks the event log of [mfa.Store]: each changing method
// appends the events its context carries for it in the change's own
// transaction, and only if it makes the change; and the cursor query.

// eventOp is one changing method: prepare makes what it changes and
// returns the call and a check of whether the change was made.
type eventOp struct {
	name string
	op   mfa.StoreOp
	// key: the method is about a security key, whose events get its
	// device ID from the store (mfa.KeyEvents).
	key     bool
	prepare func(t *testing.T, s mfa.Store, u *webauthn.User) (call func(ctx context.Context) error, changed func(t *testing.T) bool)
}

var eventOps = []eventOp{
	{"AddCredential", mfa.OpAddCredential, true, func(t *testing.T, s mfa.Store, u *webauthn.User) (func(context.Context) error, func(*testing.T) bool) {
		c := fullCredential(t, u.ID)
		return func(ctx context.Context) error { return s.AddCredential(ctx, c, 0) },
			func(t *testing.T) bool { _, err := s.Credential(t.Context(), c.ID); return err == nil }
	}},
	{"CreateUserWithCredential", mfa.OpCreateUserWithCredential, true, func(t *testing.T, s mfa.Store, u *webauthn.User) (func(context.Context) error, func(*testing.T) bool) {
		nu := &webauthn.User{ID: randBytes(t, 32), Name: randName(t, "user"), DisplayName: "Grace", Created: base}
		c := fullCredential(t, nu.ID)
		return func(ctx context.Context) error { return s.CreateUserWithCredential(ctx, nu, c) },
			func(t *testing.T) bool { _, err := s.User(t.Context(), nu.ID); return err == nil }
	}},
	{"RenameCredential", mfa.OpRenameCredential, false, func(t *testing.T, s mfa.Store, u *webauthn.User) (func(context.Context) error, func(*testing.T) bool) {
		c := mustCredential(t, s, u.ID)
		return func(ctx context.Context) error { return s.RenameCredential(ctx, u.ID, c.ID, "Renamed") },
			func(t *testing.T) bool {
				g, err := s.Credential(t.Context(), c.ID)
				return err == nil && g.Name == "Renamed"
			}
	}},
	{"DeactivateCredential", mfa.OpDeactivateCredential, false, func(t *testing.T, s mfa.Store, u *webauthn.User) (func(context.Context) error, func(*testing.T) bool) {
		c := mustCredential(t, s, u.ID)
		return func(ctx context.Context) error { return s.DeactivateCredential(ctx, u.ID, c.ID, base) },
			func(t *testing.T) bool { g, err := s.Credential(t.Context(), c.ID); return err == nil && !g.Active() }
	}},
	{"DeleteCredential", mfa.OpDeleteCredential, false, func(t *testing.T, s mfa.Store, u *webauthn.User) (func(context.Context) error, func(*testing.T) bool) {
		c := mustCredential(t, s, u.ID)
		return func(ctx context.Context) error { return s.DeleteCredential(ctx, u.ID, c.ID) },
			func(t *testing.T) bool {
				_, err := s.Credential(t.Context(), c.ID)
				return errors.Is(err, webauthn.ErrNotFound)
			}
	}},
	{"RecordSignIn", mfa.OpRecordSignIn, true, func(t *testing.T, s mfa.Store, u *webauthn.User) (func(context.Context) error, func(*testing.T) bool) {
		c := mustCredential(t, s, u.ID)
		return func(ctx context.Context) error {
				return s.RecordSignIn(ctx, signIn(c.ID, c.SignCount, c.SignCount+1, true, base))
			},
			func(t *testing.T) bool {
				g, err := s.Credential(t.Context(), c.ID)
				return err == nil && g.SignCount == c.SignCount+1
			}
	}},
	{"FinishSignIn", mfa.OpRecordSignIn, true, func(t *testing.T, s mfa.Store, u *webauthn.User) (func(context.Context) error, func(*testing.T) bool) {
		fs := finishStore(t, s) // skips the subtest if s has no FinishSignIn
		c := mustCredential(t, s, u.ID)
		ch := mustChallenge(t, s, base.Add(time.Hour))
		return func(ctx context.Context) error {
				ok, err := fs.FinishSignIn(ctx, ch.ID, signIn(c.ID, c.SignCount, c.SignCount+1, true, base))
				if err == nil && !ok {
					return errors.New("FinishSignIn did not take the challenge")
				}
				return err
			},
			func(t *testing.T) bool {
				g, err := s.Credential(t.Context(), c.ID)
				return err == nil && g.SignCount == c.SignCount+1
			}
	}},
	{"FlagClone", mfa.OpFlagClone, true, func(t *testing.T, s mfa.Store, u *webauthn.User) (func(context.Context) error, func(*testing.T) bool) {
		c := mustCredential(t, s, u.ID)
		return func(ctx context.Context) error { return s.FlagClone(ctx, c.ID) },
			func(t *testing.T) bool {
				g, err := s.Credential(t.Context(), c.ID)
				return err == nil && g.CloneWarning
			}
	}},
	{"CompleteOTPEnrollment", mfa.OpCompleteOTPEnrollment, false, func(t *testing.T, s mfa.Store, u *webauthn.User) (func(context.Context) error, func(*testing.T) bool) {
		d := fullOTPDevice(t, u.ID)
		mustSaveEnrollment(t, s, d)
		return func(ctx context.Context) error { return s.CompleteOTPEnrollment(ctx, d, 0) },
			func(t *testing.T) bool { _, err := s.OTPDevice(t.Context(), d.ID); return err == nil }
	}},
	{"RenameOTPDevice", mfa.OpRenameOTPDevice, false, func(t *testing.T, s mfa.Store, u *webauthn.User) (func(context.Context) error, func(*testing.T) bool) {
		d := mustOTPDevice(t, s, u.ID)
		return func(ctx context.Context) error { return s.RenameOTPDevice(ctx, u.ID, d.ID, "Renamed") },
			func(t *testing.T) bool {
				g, err := s.OTPDevice(t.Context(), d.ID)
				return err == nil && g.Name == "Renamed"
			}
	}},
	{"DeactivateOTPDevice", mfa.OpDeactivateOTPDevice, false, func(t *testing.T, s mfa.Store, u *webauthn.User) (func(context.Context) error, func(*testing.T) bool) {
		d := mustOTPDevice(t, s, u.ID)
		return func(ctx context.Context) error { return s.DeactivateOTPDevice(ctx, u.ID, d.ID, base) },
			func(t *testing.T) bool { g, err := s.OTPDevice(t.Context(), d.ID); return err == nil && !g.Active() }
	}},
	{"DeleteOTPDevice", mfa.OpDeleteOTPDevice, false, func(t *testing.T, s mfa.Store, u *webauthn.User) (func(context.Context) error, func(*testing.T) bool) {
		d := mustOTPDevice(t, s, u.ID)
		return func(ctx context.Context) error { return s.DeleteOTPDevice(ctx, u.ID, d.ID) },
			func(t *testing.T) bool {
				_, err := s.OTPDevice(t.Context(), d.ID)
				return errors.Is(err, webauthn.ErrNotFound)
			}
	}},
	{"AdvanceOTPStep", mfa.OpAdvanceOTPStep, false, func(t *testing.T, s mfa.Store, u *webauthn.User) (func(context.Context) error, func(*testing.T) bool) {
		d := mustOTPDevice(t, s, u.ID)
		return func(ctx context.Context) error { return s.AdvanceOTPStep(ctx, u.ID, d.ID, d.LastStep+1, base) },
			func(t *testing.T) bool {
				g, err := s.OTPDevice(t.Context(), d.ID)
				return err == nil && g.LastStep == d.LastStep+1
			}
	}},
	{"ResyncOTPDevice", mfa.OpResyncOTPDevice, false, func(t *testing.T, s mfa.Store, u *webauthn.User) (func(context.Context) error, func(*testing.T) bool) {
		d := mustOTPDevice(t, s, u.ID)
		return func(ctx context.Context) error { return s.ResyncOTPDevice(ctx, u.ID, d.ID, 3, d.LastStep+2) },
			func(t *testing.T) bool { g, err := s.OTPDevice(t.Context(), d.ID); return err == nil && g.Drift == 3 }
	}},
	{"ReplaceRecoveryCodes", mfa.OpReplaceRecoveryCodes, false, func(t *testing.T, s mfa.Store, u *webauthn.User) (func(context.Context) error, func(*testing.T) bool) {
		old := mustRecoveryCodes(t, s, u.ID, 4)
		r := recoverySet(t, u.ID, 10)
		return func(ctx context.Context) error { return s.ReplaceRecoveryCodes(ctx, r) },
			func(t *testing.T) bool {
				g, err := s.RecoveryCodes(t.Context(), u.ID)
				require.NoError(t, err)
				return !bytes.Equal(g.ID, old.ID)
			}
	}},
	{"UseRecoveryCode", mfa.OpUseRecoveryCode, false, func(t *testing.T, s mfa.Store, u *webauthn.User) (func(context.Context) error, func(*testing.T) bool) {
		r := mustRecoveryCodes(t, s, u.ID, 4)
		return func(ctx context.Context) error { _, err := s.UseRecoveryCode(ctx, u.ID, r.ID, 2, base); return err },
			func(t *testing.T) bool {
				g, err := s.RecoveryCodes(t.Context(), u.ID)
				require.NoError(t, err)
				return g.Left() == 3
			}
	}},
	{"RecordFailure", mfa.OpRecordFailure, false, func(t *testing.T, s mfa.Store, u *webauthn.User) (func(context.Context) error, func(*testing.T) bool) {
		return func(ctx context.Context) error {
				_, err := s.RecordFailure(ctx, u.ID, mfa.FactorTOTP, base, mfa.DefaultLockPolicy)
				return err
			},
			func(t *testing.T) bool {
				a, err := s.Attempts(t.Context(), u.ID, mfa.FactorTOTP)
				require.NoError(t, err)
				return a.Failures == 1
			}
	}},
	{"ResetAttempts", mfa.OpResetAttempts, false, func(t *testing.T, s mfa.Store, u *webauthn.User) (func(context.Context) error, func(*testing.T) bool) {
		_, err := s.RecordFailure(t.Context(), u.ID, mfa.FactorTOTP, base, mfa.DefaultLockPolicy)
		require.NoError(t, err)
		return func(ctx context.Context) error { return s.ResetAttempts(ctx, u.ID, mfa.FactorTOTP) },
			func(t *testing.T) bool {
				a, err := s.Attempts(t.Context(), u.ID, mfa.FactorTOTP)
				require.NoError(t, err)
				return a.Failures == 0
			}
	}},
}

var eventTests = []mfaTest{
	{"Appended", testEventsAppended},
	{"Atomic", testEventsAtomic},
	{"OnlyItsOwn", testEventsOnlyItsOwn},
	{"FailedChange", testEventsFailedChange},
	{"FinishSignIn", testEventsFinishSignIn},
	{"Lock", testEventsLock},
	{"Append", testAppendEvents},
	{"Query", testEventsQuery},
	{"Purge", testPurgeEvents},
}

var eventSeq int

// newEvent returns an event of userID with every field set.
func newEvent(t *testing.T, userID []byte, typ mfa.EventType, at time.Time) mfa.Event {
	t.Helper()
	eventSeq++
	return mfa.Event{
		ID: randBytes(t, 16), Time: at, Type: typ, UserID: bytes.Clone(userID),
		DeviceID: fmt.Sprintf("otp_%d", eventSeq), Factor: mfa.FactorTOTP, ActorID: randBytes(t, 32),
		RemoteAddr: "192.0.2.7", UserAgent: "Mozilla/5.0 ✓", Detail: "détail",
	}
}

func checkEvent(t *testing.T, what string, got *mfa.Event, want mfa.Event) {
	t.Helper()
	assertBytes(t, what+".ID", got.ID, want.ID)
	assertTime(t, what+".Time", got.Time, want.Time)
	assertBytes(t, what+".UserID", got.UserID, want.UserID)
	assertBytes(t, what+".ActorID", got.ActorID, want.ActorID)
	assert.Equal(t, want.Type, got.Type, what+".Type")
	assert.Equal(t, want.DeviceID, got.DeviceID, what+".DeviceID")
	assert.Equal(t, want.Factor, got.Factor, what+".Factor")
	assert.Equal(t, want.RemoteAddr, got.RemoteAddr, what+".RemoteAddr")
	assert.Equal(t, want.UserAgent, got.UserAgent, what+".UserAgent")
	assert.Equal(t, want.Detail, got.Detail, what+".Detail")
}

func allEvents(t *testing.T, s mfa.Store) []*mfa.Event {
	t.Helper()
	evs, err := s.Events(t.Context(), mfa.EventQuery{})
	require.NoError(t, err, "Events")
	return evs
}

// testEventsAppended: each method appends its context's events with its
// change, key methods filling in the device (and, where known, the
// account).
func testEventsAppended(t *testing.T, s mfa.Store) {
	for _, o := range eventOps {
		t.Run(o.name, func(t *testing.T) {
			u := mustUser(t, s)
			call, changed := o.prepare(t, s, u)
			before := len(allEvents(t, s))
			e1 := newEvent(t, u.ID, mfa.EventDeviceEnrolled, base.Add(time.Minute))
			e2 := newEvent(t, u.ID, mfa.EventSecondFactor, base.Add(time.Minute))
			if o.key {
				e1.DeviceID = ""
			}
			require.NoError(t, call(mfa.WithStoreEvents(t.Context(), o.op, e1, e2)))
			assert.True(t, changed(t), "the change is made")
			got, err := s.Events(t.Context(), mfa.EventQuery{UserID: u.ID})
			require.NoError(t, err)
			if o.name == "CreateUserWithCredential" {
				require.Len(t, allEvents(t, s), before+2)
				return
			}
			require.Len(t, got, 2)
			for _, g := range got {
				switch {
				case bytes.Equal(g.ID, e1.ID):
					if o.key {
						assert.Regexp(t, `^key_[A-Za-z0-9_-]+$`, g.DeviceID, "the store names the key")
						e1.DeviceID = g.DeviceID
					}
					checkEvent(t, "first", g, e1)
				default:
					checkEvent(t, "second", g, e2)
				}
			}
		})
	}
}

// testEventsAtomic: an event that cannot be appended (its ID is taken)
// undoes the change.
func testEventsAtomic(t *testing.T, s mfa.Store) {
	for _, o := range eventOps {
		t.Run(o.name, func(t *testing.T) {
			u := mustUser(t, s)
			call, changed := o.prepare(t, s, u)
			planted := newEvent(t, u.ID, mfa.EventDeviceRenamed, base)
			require.NoError(t, s.AppendEvents(t.Context(), planted))
			before := len(allEvents(t, s))
			dup := newEvent(t, u.ID, mfa.EventDeviceDeleted, base.Add(time.Minute))
			dup.ID = bytes.Clone(planted.ID)
			err := call(mfa.WithStoreEvents(t.Context(), o.op, newEvent(t, u.ID, mfa.EventDeviceDeleted, base), dup))
			require.Error(t, err)
			assert.ErrorIs(t, err, mfa.ErrEventExists)
			assert.ErrorIs(t, err, webauthn.ErrExists)
			assert.False(t, changed(t), "no change without its events")
			assert.Len(t, allEvents(t, s), before, "no event of a change rolled back")
		})
	}
}

// testEventsOnlyItsOwn: a method appends only the events carried for it.
func testEventsOnlyItsOwn(t *testing.T, s mfa.Store) {
	for _, o := range eventOps {
		t.Run(o.name, func(t *testing.T) {
			u := mustUser(t, s)
			call, changed := o.prepare(t, s, u)
			before := len(allEvents(t, s))
			other := mfa.OpAddCredential
			if o.op == other {
				other = mfa.OpDeleteOTPDevice
			}
			require.NoError(t, call(mfa.WithStoreEvents(t.Context(), other, newEvent(t, u.ID, mfa.EventDeviceDeleted, base))))
			assert.True(t, changed(t))
			assert.Len(t, allEvents(t, s), before)
		})
	}
}

// testEventsFailedChange: a method that fails appends nothing.
func testEventsFailedChange(t *testing.T, s mfa.Store) {
	ctx := t.Context()
	u := mustUser(t, s)
	ghost := randBytes(t, 16)
	with := func(op mfa.StoreOp) context.Context {
		return mfa.WithStoreEvents(ctx, op, newEvent(t, u.ID, mfa.EventDeviceDeleted, base))
	}
	d := mustOTPDevice(t, s, u.ID)
	c := mustCredential(t, s, u.ID)
	r := mustRecoveryCodes(t, s, u.ID, 2)
	_, err := s.UseRecoveryCode(ctx, u.ID, r.ID, 0, base)
	require.NoError(t, err)
	fails := map[string]error{
		"RenameOTPDevice":      s.RenameOTPDevice(with(mfa.OpRenameOTPDevice), u.ID, ghost, "x"),
		"DeleteOTPDevice":      s.DeleteOTPDevice(with(mfa.OpDeleteOTPDevice), u.ID, ghost),
		"DeactivateCredential": s.DeactivateCredential(with(mfa.OpDeactivateCredential), u.ID, ghost, base),
		"AdvanceOTPStep":       s.AdvanceOTPStep(with(mfa.OpAdvanceOTPStep), u.ID, d.ID, d.LastStep, base),
		"RecordSignIn":         s.RecordSignIn(with(mfa.OpRecordSignIn), signIn(c.ID, c.SignCount+5, c.SignCount+6, false, base)),
		"FlagClone":            s.FlagClone(with(mfa.OpFlagClone), ghost),
		"CompleteOTPEnrollment": s.CompleteOTPEnrollment(with(mfa.OpCompleteOTPEnrollment),
			fullOTPDevice(t, u.ID), 0),
		"AddCredential": s.AddCredential(with(mfa.OpAddCredential), c, 0),
	}
	_, fails["UseRecoveryCode"] = s.UseRecoveryCode(with(mfa.OpUseRecoveryCode), u.ID, r.ID, 0, base)
	_, fails["RecordFailure"] = s.RecordFailure(with(mfa.OpRecordFailure), randBytes(t, 32), mfa.FactorTOTP, base, mfa.DefaultLockPolicy)
	for name, err := range fails {
		assert.Error(t, err, name)
	}
	assert.Empty(t, allEvents(t, s), "a failed change appends nothing")
}

// testEventsFinishSignIn: FinishSignIn appends RecordSignIn's events
// exactly when it sets the sign count: not when the challenge is no
// longer stored, nor when it takes the challenge but the update fails
// (ErrConflict, ErrInactive, ErrNotFound); and an event that cannot be
// appended leaves the challenge stored as well as the count unchanged.
func testEventsFinishSignIn(t *testing.T, s mfa.Store) {
	fs := finishStore(t, s)
	for _, tc := range []struct {
		name string
		// prepare returns the challenge ID and update to finish with.
		prepare func(t *testing.T, c *webauthn.Credential, ch *webauthn.Challenge) (string, webauthn.SignIn)
		taken   bool
		err     error // nil: the count is set and the event appended
	}{
		{"Success", func(t *testing.T, c *webauthn.Credential, ch *webauthn.Challenge) (string, webauthn.SignIn) {
			return ch.ID, signIn(c.ID, c.SignCount, c.SignCount+1, true, base)
		}, true, nil},
		{"UnknownChallenge", func(t *testing.T, c *webauthn.Credential, ch *webauthn.Challenge) (string, webauthn.SignIn) {
			return "ch-none", signIn(c.ID, c.SignCount, c.SignCount+1, true, base)
		}, false, nil},
		{"AlreadyFinished", func(t *testing.T, c *webauthn.Credential, ch *webauthn.Challenge) (string, webauthn.SignIn) {
			ok, err := fs.FinishSignIn(t.Context(), ch.ID, signIn(c.ID, c.SignCount, c.SignCount+1, true, base))
			require.NoError(t, err)
			require.True(t, ok)
			c.SignCount++
			return ch.ID, signIn(c.ID, c.SignCount, c.SignCount+1, true, base)
		}, false, nil},
		{"Conflict", func(t *testing.T, c *webauthn.Credential, ch *webauthn.Challenge) (string, webauthn.SignIn) {
			return ch.ID, signIn(c.ID, c.SignCount+5, c.SignCount+6, true, base)
		}, true, webauthn.ErrConflict},
		{"Inactive", func(t *testing.T, c *webauthn.Credential, ch *webauthn.Challenge) (string, webauthn.SignIn) {
			require.NoError(t, s.DeactivateCredential(t.Context(), c.UserID, c.ID, base))
			return ch.ID, signIn(c.ID, c.SignCount, c.SignCount+1, true, base)
		}, true, webauthn.ErrInactive},
		{"UnknownCredential", func(t *testing.T, c *webauthn.Credential, ch *webauthn.Challenge) (string, webauthn.SignIn) {
			return ch.ID, signIn(randBytes(t, 48), c.SignCount, c.SignCount+1, true, base)
		}, true, webauthn.ErrNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := mustUser(t, s)
			c := mustCredential(t, s, u.ID)
			ch := mustChallenge(t, s, base.Add(time.Hour))
			id, in := tc.prepare(t, c, ch)
			e := newEvent(t, u.ID, mfa.EventSecondFactor, base.Add(time.Minute))
			e.DeviceID = "" // the store names the key
			ctx := mfa.WithStoreEvents(t.Context(), mfa.OpRecordSignIn, e)
			ok, err := fs.FinishSignIn(ctx, id, in)
			assert.Equal(t, tc.taken, ok, "taken")
			if tc.err != nil {
				assert.ErrorIs(t, err, tc.err)
			} else {
				assert.NoError(t, err)
			}
			got, err := s.Events(t.Context(), mfa.EventQuery{UserID: u.ID})
			require.NoError(t, err)
			if !tc.taken || tc.err != nil {
				assert.Empty(t, got, "FinishSignIn that set no count appends nothing")
				return
			}
			want := mfa.KeyEvents(ctx, mfa.OpRecordSignIn, nil, in.CredentialID)
			require.Len(t, want, 1)
			require.Len(t, got, 1, "exactly the event carried for RecordSignIn")
			checkEvent(t, "event", got[0], want[0])
		})
	}
	t.Run("EventExists", func(t *testing.T) {
		u := mustUser(t, s)
		c := mustCredential(t, s, u.ID)
		ch := mustChallenge(t, s, base.Add(time.Hour))
		planted := newEvent(t, u.ID, mfa.EventDeviceRenamed, base)
		require.NoError(t, s.AppendEvents(t.Context(), planted))
		dup := newEvent(t, u.ID, mfa.EventSecondFactor, base.Add(time.Minute))
		dup.ID = bytes.Clone(planted.ID)
		_, err := fs.FinishSignIn(mfa.WithStoreEvents(t.Context(), mfa.OpRecordSignIn, dup), ch.ID, signIn(c.ID, c.SignCount, c.SignCount+1, true, base))
		assert.ErrorIs(t, err, mfa.ErrEventExists)
		credentialIs(t, s, "credential", c)
		got, err := s.TakeChallenge(t.Context(), ch.ID, base)
		require.NoError(t, err, "the challenge is left stored when the events cannot be appended")
		checkChallenge(t, "challenge", got, ch)
		evs, err := s.Events(t.Context(), mfa.EventQuery{UserID: u.ID})
		require.NoError(t, err)
		assert.Len(t, evs, 1, "only the planted event")
	})
}

// testEventsLock: RecordFailure appends OpLock's events exactly when the
// failure locks the factor, with the lock's end in Detail.
func testEventsLock(t *testing.T, s mfa.Store) {
	u := mustUser(t, s)
	p := mfa.LockPolicy{Limit: 3, Base: time.Minute, Max: time.Hour}
	for i := 1; i <= 4; i++ {
		fail := newEvent(t, u.ID, mfa.EventSecondFactorFailed, base.Add(time.Duration(i)*time.Second))
		lock := newEvent(t, u.ID, mfa.EventLockout, fail.Time)
		ctx := mfa.WithStoreEvents(mfa.WithStoreEvents(t.Context(), mfa.OpRecordFailure, fail), mfa.OpLock, lock)
		a, err := s.RecordFailure(ctx, u.ID, mfa.FactorRecoveryCode, fail.Time, p)
		require.NoError(t, err)
		got, err := s.Events(t.Context(), mfa.EventQuery{UserID: u.ID, Since: fail.Time, Until: fail.Time.Add(time.Microsecond)})
		require.NoError(t, err)
		if i < p.Limit {
			require.Len(t, got, 1, "failure %d: not locked", i)
			checkEvent(t, "failure", got[0], fail)
			continue
		}
		require.Len(t, got, 2, "failure %d locks", i)
		lock.Detail = a.LockedUntil.UTC().Format(time.RFC3339)
		for _, g := range got {
			if g.Type == mfa.EventLockout {
				checkEvent(t, "lock", g, lock)
			} else {
				checkEvent(t, "failure", g, fail)
			}
		}
	}
}

func testAppendEvents(t *testing.T, s mfa.Store) {
	u := mustUser(t, s)
	a, b := newEvent(t, u.ID, mfa.EventPolicyRefused, base), newEvent(t, u.ID, mfa.EventSecondFactorFailed, base.Add(time.Second))
	a.ActorID, a.DeviceID, a.Factor, a.RemoteAddr, a.UserAgent, a.Detail = nil, "", "", "", "", ""
	require.NoError(t, s.AppendEvents(t.Context(), a, b))
	got := allEvents(t, s)
	require.Len(t, got, 2)
	checkEvent(t, "a", got[0], a)
	checkEvent(t, "b", got[1], b)
	require.NoError(t, s.AppendEvents(t.Context()), "no events is no error")

	c := newEvent(t, u.ID, mfa.EventPolicyRefused, base)
	err := s.AppendEvents(t.Context(), c, mfa.Event{ID: a.ID, Time: base, Type: mfa.EventLockout, UserID: u.ID})
	assert.ErrorIs(t, err, mfa.ErrEventExists)
	assert.Len(t, allEvents(t, s), 2, "all or nothing")
}

// testEventsQuery: account, time range, both orders, and paging with a
// cursor through events that share times.
func testEventsQuery(t *testing.T, s mfa.Store) {
	ctx := t.Context()
	u1, u2 := mustUser(t, s), mustUser(t, s)
	var want1 []mfa.Event
	for i := range 25 {
		// Five events per second, so the cursor must break ties by ID.
		at := base.Add(time.Duration(i/5) * time.Second)
		e1, e2 := newEvent(t, u1.ID, mfa.EventSecondFactor, at), newEvent(t, u2.ID, mfa.EventSecondFactor, at)
		require.NoError(t, s.AppendEvents(ctx, e1, e2))
		want1 = append(want1, e1)
	}
	order := func(evs []mfa.Event, newest bool) []string {
		cp := append([]mfa.Event(nil), evs...)
		for i := range cp {
			for j := i + 1; j < len(cp); j++ {
				c := cp[i].Time.Compare(cp[j].Time)
				if c == 0 {
					c = bytes.Compare(cp[i].ID, cp[j].ID)
				}
				if (c > 0) != newest {
					cp[i], cp[j] = cp[j], cp[i]
				}
			}
		}
		var ids []string
		for _, e := range cp {
			ids = append(ids, fmt.Sprintf("%x", e.ID))
		}
		return ids
	}
	for _, newest := range []bool{false, true} {
		t.Run(fmt.Sprintf("Newest=%v", newest), func(t *testing.T) {
			var ids []string
			q := mfa.EventQuery{UserID: u1.ID, Newest: newest, Limit: 4}
			for pages := 0; ; pages++ {
				require.Less(t, pages, 10, "paging ends")
				page, err := s.Events(ctx, q)
				require.NoError(t, err)
				if len(page) == 0 {
					break
				}
				assert.LessOrEqual(t, len(page), 4)
				for _, e := range page {
					assert.Equal(t, u1.ID, e.UserID)
					ids = append(ids, fmt.Sprintf("%x", e.ID))
				}
				q.After = page[len(page)-1]
			}
			assert.Equal(t, order(want1, newest), ids, "every event once, in order")
		})
	}
	t.Run("Range", func(t *testing.T) {
		got, err := s.Events(ctx, mfa.EventQuery{UserID: u1.ID, Since: base.Add(time.Second), Until: base.Add(3 * time.Second)})
		require.NoError(t, err)
		assert.Equal(t, order(want1[5:15], false), idsOf(got))
		all, err := s.Events(ctx, mfa.EventQuery{Since: base.Add(4 * time.Second)})
		require.NoError(t, err)
		assert.Len(t, all, 10, "both accounts' last second")
		none, err := s.Events(ctx, mfa.EventQuery{UserID: randBytes(t, 32)})
		require.NoError(t, err)
		assert.NotNil(t, none)
		assert.Empty(t, none)
	})
}

func idsOf(evs []*mfa.Event) []string {
	var ids []string
	for _, e := range evs {
		ids = append(ids, fmt.Sprintf("%x", e.ID))
	}
	return ids
}

func testPurgeEvents(t *testing.T, s mfa.Store) {
	u := mustUser(t, s)
	for i := range 6 {
		require.NoError(t, s.AppendEvents(t.Context(), newEvent(t, u.ID, mfa.EventSecondFactor, base.Add(time.Duration(i)*time.Hour))))
	}
	n, err := s.PurgeEvents(t.Context(), base.Add(4*time.Hour))
	require.NoError(t, err)
	assert.Equal(t, 4, n)
	got := allEvents(t, s)
	require.Len(t, got, 2)
	assertTime(t, "oldest kept", got[0].Time, base.Add(4*time.Hour))
}
