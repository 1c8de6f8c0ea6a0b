package storetest

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/webauthn"
)

// This file checks the [mfa.Store] contract beyond the embedded
// [webauthn.Store]: TOTP enrollments and devices, time steps, recovery
// codes, attempt counters, and the device limit that keys and TOTP
// devices share. Users and keys are made through the webauthn.Store
// methods, as in Run.

type mfaTest struct {
	name string
	fn   func(t *testing.T, s mfa.Store)
}

// RunMFA runs the [mfa.Store] contract tests, each as a subtest on a
// fresh, empty store from newStore. It covers only the methods mfa.Store
// adds and the device limit it shares with AddCredential; call [Run] as
// well for the embedded [webauthn.Store]. newStore should register any
// cleanup with t.Cleanup and fail t if the store cannot be opened.
func RunMFA(t *testing.T, newStore func(t *testing.T) mfa.Store) {
	t.Helper()
	groups := []struct {
		name  string
		tests []mfaTest
	}{
		{"OTPEnrollment", otpEnrollmentTests},
		{"OTPDevice", otpDeviceTests},
		{"OTPStep", otpStepTests},
		{"DeviceLimit", deviceLimitTests},
		{"RecoveryCodes", recoveryTests},
		{"Attempts", attemptTests},
		{"Users", userListTests},
		{"Context", mfaContextTests},
		{"Concurrent", mfaConcurrentTests},
		{"Events", eventTests},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					tc.fn(t, newStore(t))
				})
			}
		})
	}
}

// RunMFAShared runs the races that must hold across processes on a and
// b, two handles (two connection pools, two opened files) on one
// database: a TOTP time step accepted once, a recovery code used once, an
// enrollment completed once, failure counts that lose no update, and a
// device limit that holds for keys and TOTP devices together. The
// database need not be empty; each subtest uses fresh random IDs.
// Passing the same store twice is allowed and checks only the
// single-handle case.
func RunMFAShared(t *testing.T, a, b mfa.Store) {
	t.Helper()
	t.Run("Visible", func(t *testing.T) { mfaSharedVisible(t, a, b) })
	t.Run("AdvanceOTPStep", func(t *testing.T) { raceAdvanceOTPStep(t, a, b) })
	t.Run("UseRecoveryCode", func(t *testing.T) { raceUseRecoveryCode(t, a, b) })
	t.Run("CompleteOTPEnrollment", func(t *testing.T) { raceCompleteOTPEnrollment(t, a, b) })
	t.Run("RecordFailure", func(t *testing.T) { raceRecordFailure(t, a, b) })
	t.Run("DeviceLimit", func(t *testing.T) { raceDeviceLimit(t, a, b) })
}

// ---- fixtures ----

// fullOTPDevice returns a hardware token of userID with every field set
// to a distinctive value. The sealed box is random bytes: stores keep it
// as given.
func fullOTPDevice(t *testing.T, userID []byte) *mfa.OTPDevice {
	t.Helper()
	box := randBytes(t, 12+20+16)
	box[0], box[1] = 0x00, 0xff // NUL and high bytes survive
	return &mfa.OTPDevice{
		ID:       randBytes(t, 16),
		UserID:   bytes.Clone(userID),
		Type:     mfa.HardwareToken,
		Name:     "Key fob ✓",
		Serial:   fmt.Sprintf("SN-%x", randBytes(t, 6)),
		Secret:   mfa.Sealed{KeyID: "2025-03", Box: box},
		Hash:     "SHA256",
		Digits:   8,
		Period:   60,
		LastStep: 29_000_000,
		Drift:    -2,
		Created:  base.Add(time.Hour),
		LastUsed: base.Add(2 * time.Hour),
	}
}

// appDevice returns an authenticator app of userID: no serial, never
// used.
func appDevice(t *testing.T, userID []byte) *mfa.OTPDevice {
	t.Helper()
	d := fullOTPDevice(t, userID)
	d.Type, d.Name, d.Serial = mfa.AuthenticatorApp, "Phone", ""
	d.Hash, d.Digits, d.Period = "SHA1", 6, 30
	d.LastStep, d.Drift, d.LastUsed = 0, 0, time.Time{}
	return d
}

// enrollmentFor returns the pending enrollment that d completes.
func enrollmentFor(d *mfa.OTPDevice, expires time.Time) *mfa.OTPEnrollment {
	return &mfa.OTPEnrollment{
		ID:      bytes.Clone(d.ID),
		UserID:  bytes.Clone(d.UserID),
		Type:    d.Type,
		Name:    d.Name,
		Serial:  d.Serial,
		Secret:  mfa.Sealed{KeyID: d.Secret.KeyID, Box: bytes.Clone(d.Secret.Box)},
		Hash:    d.Hash,
		Digits:  d.Digits,
		Period:  d.Period,
		Expires: expires,
	}
}

// mustSaveEnrollment stores the enrollment d completes and returns it.
func mustSaveEnrollment(t *testing.T, s mfa.Store, d *mfa.OTPDevice) *mfa.OTPEnrollment {
	t.Helper()
	e := enrollmentFor(d, base.Add(10*time.Minute))
	require.NoError(t, s.SaveOTPEnrollment(t.Context(), e), "SaveOTPEnrollment")
	return e
}

// mustEnroll stores d through SaveOTPEnrollment and
// CompleteOTPEnrollment, without a limit.
func mustEnroll(t *testing.T, s mfa.Store, d *mfa.OTPDevice) *mfa.OTPDevice {
	t.Helper()
	mustSaveEnrollment(t, s, d)
	require.NoError(t, s.CompleteOTPEnrollment(t.Context(), d, 0), "CompleteOTPEnrollment")
	return d
}

// mustOTPDevice stores a fresh full device for userID and returns it.
func mustOTPDevice(t *testing.T, s mfa.Store, userID []byte) *mfa.OTPDevice {
	t.Helper()
	return mustEnroll(t, s, fullOTPDevice(t, userID))
}

// recoverySet returns a set of n codes for userID with random hashes.
func recoverySet(t *testing.T, userID []byte, n int) *mfa.RecoveryCodes {
	t.Helper()
	r := &mfa.RecoveryCodes{UserID: bytes.Clone(userID), ID: randBytes(t, 16), Salt: randBytes(t, 16), Created: base.Add(3 * time.Hour)}
	for range n {
		r.Hashes = append(r.Hashes, randBytes(t, 32))
	}
	return r
}

// mustRecoveryCodes stores a fresh set of n codes for userID.
func mustRecoveryCodes(t *testing.T, s mfa.Store, userID []byte, n int) *mfa.RecoveryCodes {
	t.Helper()
	r := recoverySet(t, userID, n)
	require.NoError(t, s.ReplaceRecoveryCodes(t.Context(), r), "ReplaceRecoveryCodes")
	return r
}

// ---- comparison ----

func assertBytes(t *testing.T, what string, got, want []byte) bool {
	t.Helper()
	return assert.Truef(t, bytes.Equal(got, want), "%s = %x, want %x", what, got, want)
}

func assertTime(t *testing.T, what string, got, want time.Time) bool {
	t.Helper()
	return assert.Truef(t, timeEq(got, want), "%s = %v (%v), want %v (UTC, within 1µs)", what, got, got.Location(), want.UTC())
}

func checkOTPDevice(t *testing.T, what string, got, want *mfa.OTPDevice) {
	t.Helper()
	require.NotNil(t, got, what)
	assertBytes(t, what+": ID", got.ID, want.ID)
	assertBytes(t, what+": UserID", got.UserID, want.UserID)
	assert.Equal(t, want.Type, got.Type, "%s: Type", what)
	assert.Equal(t, want.Name, got.Name, "%s: Name", what)
	assert.Equal(t, want.Serial, got.Serial, "%s: Serial", what)
	assert.Equal(t, want.Secret.KeyID, got.Secret.KeyID, "%s: Secret.KeyID", what)
	assertBytes(t, what+": Secret.Box", got.Secret.Box, want.Secret.Box)
	assert.Equal(t, want.Hash, got.Hash, "%s: Hash", what)
	assert.Equal(t, want.Digits, got.Digits, "%s: Digits", what)
	assert.Equal(t, want.Period, got.Period, "%s: Period", what)
	assert.Equal(t, want.LastStep, got.LastStep, "%s: LastStep", what)
	assert.Equal(t, want.Drift, got.Drift, "%s: Drift", what)
	assertTime(t, what+": Created", got.Created, want.Created)
	assertTime(t, what+": LastUsed", got.LastUsed, want.LastUsed)
	assertTime(t, what+": Deactivated", got.Deactivated, want.Deactivated)
	assert.Equal(t, want.Active(), got.Active(), "%s: Active()", what)
}

func checkOTPEnrollment(t *testing.T, what string, got, want *mfa.OTPEnrollment) {
	t.Helper()
	require.NotNil(t, got, what)
	assertBytes(t, what+": ID", got.ID, want.ID)
	assertBytes(t, what+": UserID", got.UserID, want.UserID)
	assert.Equal(t, want.Type, got.Type, "%s: Type", what)
	assert.Equal(t, want.Name, got.Name, "%s: Name", what)
	assert.Equal(t, want.Serial, got.Serial, "%s: Serial", what)
	assert.Equal(t, want.Secret.KeyID, got.Secret.KeyID, "%s: Secret.KeyID", what)
	assertBytes(t, what+": Secret.Box", got.Secret.Box, want.Secret.Box)
	assert.Equal(t, want.Hash, got.Hash, "%s: Hash", what)
	assert.Equal(t, want.Digits, got.Digits, "%s: Digits", what)
	assert.Equal(t, want.Period, got.Period, "%s: Period", what)
	assertTime(t, what+": Expires", got.Expires, want.Expires)
}

// checkRecoveryCodes compares a read set with want, whose Used holds the
// expected use times (nil: none used).
func checkRecoveryCodes(t *testing.T, what string, got, want *mfa.RecoveryCodes) {
	t.Helper()
	require.NotNil(t, got, what)
	assertBytes(t, what+": UserID", got.UserID, want.UserID)
	assertBytes(t, what+": ID", got.ID, want.ID)
	assertBytes(t, what+": Salt", got.Salt, want.Salt)
	assertTime(t, what+": Created", got.Created, want.Created)
	require.Len(t, got.Hashes, len(want.Hashes), "%s: Hashes", what)
	require.Len(t, got.Used, len(want.Hashes), "%s: Used", what)
	for i := range want.Hashes {
		assertBytes(t, fmt.Sprintf("%s: Hashes[%d]", what, i), got.Hashes[i], want.Hashes[i])
		var used time.Time
		if i < len(want.Used) {
			used = want.Used[i]
		}
		assertTime(t, fmt.Sprintf("%s: Used[%d]", what, i), got.Used[i], used)
	}
}

func checkAttempts(t *testing.T, what string, got, want mfa.Attempts) {
	t.Helper()
	assert.Equal(t, want.Failures, got.Failures, "%s: Failures", what)
	assertTime(t, what+": LockedUntil", got.LockedUntil, want.LockedUntil)
}

// otpDeviceIs checks that the stored device still equals want.
func otpDeviceIs(t *testing.T, s mfa.Store, what string, want *mfa.OTPDevice) {
	t.Helper()
	got, err := s.OTPDevice(t.Context(), want.ID)
	require.NoError(t, err, "%s: OTPDevice", what)
	checkOTPDevice(t, what, got, want)
}

// otpDeviceGone checks that no device with id is stored.
func otpDeviceGone(t *testing.T, s mfa.Store, what string, id []byte) {
	t.Helper()
	_, err := s.OTPDevice(t.Context(), id)
	assert.ErrorIs(t, err, webauthn.ErrNotFound, "%s: OTPDevice", what)
}

// enrollmentIs checks that the pending enrollment still equals want.
func enrollmentIs(t *testing.T, s mfa.Store, what string, want *mfa.OTPEnrollment) {
	t.Helper()
	got, err := s.OTPEnrollment(t.Context(), want.UserID, want.ID)
	require.NoError(t, err, "%s: OTPEnrollment", what)
	checkOTPEnrollment(t, what, got, want)
}

// enrollmentGone checks that userID has no pending enrollment id.
func enrollmentGone(t *testing.T, s mfa.Store, what string, userID, id []byte) {
	t.Helper()
	_, err := s.OTPEnrollment(t.Context(), userID, id)
	assert.ErrorIs(t, err, webauthn.ErrNotFound, "%s: OTPEnrollment", what)
}

// countOTPDevices returns how many TOTP devices userID holds.
func countOTPDevices(t *testing.T, s mfa.Store, userID []byte) int {
	t.Helper()
	ds, err := s.OTPDevices(t.Context(), userID)
	require.NoError(t, err, "OTPDevices")
	return len(ds)
}

// countDevices returns how many devices of every type userID holds.
func countDevices(t *testing.T, s mfa.Store, userID []byte) int {
	t.Helper()
	return countCredentials(t, s, userID) + countOTPDevices(t, s, userID)
}

// recoveryIs checks the stored set of r.UserID against want.
func recoveryIs(t *testing.T, s mfa.Store, what string, want *mfa.RecoveryCodes) {
	t.Helper()
	got, err := s.RecoveryCodes(t.Context(), want.UserID)
	require.NoError(t, err, "%s: RecoveryCodes", what)
	checkRecoveryCodes(t, what, got, want)
}

// ---- TOTP enrollments ----

var otpEnrollmentTests = []mfaTest{
	{"RoundTrip", func(t *testing.T, s mfa.Store) {
		u := mustUser(t, s)
		full := enrollmentFor(fullOTPDevice(t, u.ID), base.Add(10*time.Minute+1500))
		app := enrollmentFor(appDevice(t, u.ID), base.Add(time.Minute))
		app.Name = ""
		expired := enrollmentFor(appDevice(t, u.ID), base.Add(-time.Hour))
		for _, tc := range []struct {
			name string
			e    *mfa.OTPEnrollment
		}{
			{"hardware token", full},
			{"app without a name", app},
			{"already expired", expired},
		} {
			require.NoError(t, s.SaveOTPEnrollment(t.Context(), tc.e), "%s: SaveOTPEnrollment", tc.name)
			enrollmentIs(t, s, tc.name, tc.e)
		}
		// Only the owner's ID finds it; an enrollment is not a device.
		other := mustUser(t, s)
		enrollmentGone(t, s, "other user's ID", other.ID, full.ID)
		enrollmentGone(t, s, "unknown ID", u.ID, randBytes(t, 16))
		enrollmentGone(t, s, "nil IDs", nil, nil)
		otpDeviceGone(t, s, "enrollment read as a device", full.ID)
		assert.Zero(t, countDevices(t, s, u.ID), "pending enrollments are not devices")
	}},
	{"UnknownUser", func(t *testing.T, s mfa.Store) {
		e := enrollmentFor(fullOTPDevice(t, randBytes(t, 32)), base.Add(time.Hour))
		assert.ErrorIs(t, s.SaveOTPEnrollment(t.Context(), e), webauthn.ErrNotFound, "SaveOTPEnrollment")
		enrollmentGone(t, s, "after failed SaveOTPEnrollment", e.UserID, e.ID)
	}},
	{"DuplicateID", func(t *testing.T, s mfa.Store) {
		alice, bob := mustUser(t, s), mustUser(t, s)
		orig := mustSaveEnrollment(t, s, fullOTPDevice(t, alice.ID))
		for _, tc := range []struct {
			name  string
			owner []byte
		}{
			{"same user", alice.ID},
			{"other user", bob.ID},
		} {
			dup := enrollmentFor(appDevice(t, tc.owner), base.Add(time.Hour))
			dup.ID = bytes.Clone(orig.ID)
			assert.ErrorIs(t, s.SaveOTPEnrollment(t.Context(), dup), webauthn.ErrExists, "%s: SaveOTPEnrollment", tc.name)
			enrollmentIs(t, s, tc.name+": original", orig)
		}
		enrollmentGone(t, s, "bob's duplicate", bob.ID, orig.ID)
	}},
	{"Complete", func(t *testing.T, s mfa.Store) {
		alice, bob := mustUser(t, s), mustUser(t, s)
		d := fullOTPDevice(t, alice.ID)
		e := mustSaveEnrollment(t, s, d)

		// Another user's ID, or an ID never saved, completes nothing.
		stolen := *d
		stolen.UserID = bob.ID
		assert.ErrorIs(t, s.CompleteOTPEnrollment(t.Context(), &stolen, 0), webauthn.ErrNotFound, "other user's enrollment")
		unknown := fullOTPDevice(t, alice.ID)
		assert.ErrorIs(t, s.CompleteOTPEnrollment(t.Context(), unknown, 0), webauthn.ErrNotFound, "unknown enrollment")
		otpDeviceGone(t, s, "unknown enrollment", unknown.ID)
		enrollmentIs(t, s, "after failed completions", e)
		assert.Zero(t, countOTPDevices(t, s, bob.ID), "bob's devices")

		require.NoError(t, s.CompleteOTPEnrollment(t.Context(), d, 5), "CompleteOTPEnrollment")
		otpDeviceIs(t, s, "completed device", d)
		enrollmentGone(t, s, "completed enrollment", alice.ID, d.ID)
		assert.ErrorIs(t, s.CompleteOTPEnrollment(t.Context(), d, 5), webauthn.ErrNotFound, "second CompleteOTPEnrollment")
		assert.Equal(t, 1, countOTPDevices(t, s, alice.ID), "alice's devices")
	}},
	{"Serial", func(t *testing.T, s mfa.Store) {
		alice, bob := mustUser(t, s), mustUser(t, s)
		token := mustOTPDevice(t, s, alice.ID)

		// Another token with the serial, of any user, is refused and the
		// enrollment stays.
		for _, owner := range []*webauthn.User{alice, bob} {
			dup := fullOTPDevice(t, owner.ID)
			dup.Serial = token.Serial
			e := mustSaveEnrollment(t, s, dup) // pending enrollments may share a serial
			assert.ErrorIs(t, s.CompleteOTPEnrollment(t.Context(), dup, 0), webauthn.ErrExists, "serial of %s's token", alice.Name)
			otpDeviceGone(t, s, "token with a taken serial", dup.ID)
			enrollmentIs(t, s, "enrollment with a taken serial", e)
		}
		assert.Equal(t, 1, countOTPDevices(t, s, alice.ID), "alice's devices")
		assert.Zero(t, countOTPDevices(t, s, bob.ID), "bob's devices")

		// Apps have no serial: any number of them.
		for _, owner := range []*webauthn.User{alice, alice, bob, bob} {
			mustEnroll(t, s, appDevice(t, owner.ID))
		}
		assert.Equal(t, 3, countOTPDevices(t, s, alice.ID), "alice's devices")

		// Once the token is deleted its serial is free.
		require.NoError(t, s.DeleteOTPDevice(t.Context(), alice.ID, token.ID), "DeleteOTPDevice")
		again := fullOTPDevice(t, bob.ID)
		again.Serial = token.Serial
		mustEnroll(t, s, again)
		otpDeviceIs(t, s, "token re-enrolled by another user", again)
	}},
	{"Purge", func(t *testing.T, s mfa.Store) {
		u := mustUser(t, s)
		now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
		n, err := s.PurgeOTPEnrollments(t.Context(), now)
		require.NoError(t, err, "PurgeOTPEnrollments on an empty store")
		assert.Zero(t, n, "PurgeOTPEnrollments on an empty store")
		var expired, live []*mfa.OTPEnrollment
		for _, d := range []time.Duration{-24 * time.Hour, -time.Second, -time.Microsecond, 0} {
			e := enrollmentFor(appDevice(t, u.ID), now.Add(d))
			require.NoError(t, s.SaveOTPEnrollment(t.Context(), e), "SaveOTPEnrollment")
			expired = append(expired, e)
		}
		for _, d := range []time.Duration{time.Microsecond, time.Minute, 24 * time.Hour} {
			e := enrollmentFor(appDevice(t, u.ID), now.Add(d))
			require.NoError(t, s.SaveOTPEnrollment(t.Context(), e), "SaveOTPEnrollment")
			live = append(live, e)
		}
		// A completed one is a device now, whatever its enrollment said.
		done := appDevice(t, u.ID)
		require.NoError(t, s.SaveOTPEnrollment(t.Context(), enrollmentFor(done, now.Add(-time.Hour))), "SaveOTPEnrollment")
		require.NoError(t, s.CompleteOTPEnrollment(t.Context(), done, 0), "CompleteOTPEnrollment")

		n, err = s.PurgeOTPEnrollments(t.Context(), now.In(time.FixedZone("Z", 9*3600)))
		require.NoError(t, err, "PurgeOTPEnrollments")
		assert.Equal(t, len(expired), n, "PurgeOTPEnrollments")
		n, err = s.PurgeOTPEnrollments(t.Context(), now)
		require.NoError(t, err, "second PurgeOTPEnrollments")
		assert.Zero(t, n, "second PurgeOTPEnrollments")
		for _, e := range expired {
			enrollmentGone(t, s, "purged", e.UserID, e.ID)
		}
		for _, e := range live {
			enrollmentIs(t, s, "live after purge", e)
		}
		otpDeviceIs(t, s, "device after purge", done)
	}},
	{"Copies", func(t *testing.T, s mfa.Store) {
		u := mustUser(t, s)
		e := enrollmentFor(fullOTPDevice(t, u.ID), base.Add(time.Hour))
		require.NoError(t, s.SaveOTPEnrollment(t.Context(), e), "SaveOTPEnrollment")
		want := *e
		want.ID, want.UserID, want.Secret.Box = bytes.Clone(e.ID), bytes.Clone(e.UserID), bytes.Clone(e.Secret.Box)
		e.ID[0] ^= 0xff
		e.UserID[0] ^= 0xff
		e.Secret.Box[0] ^= 0xff
		enrollmentIs(t, s, "after the caller changed its input", &want)
		got, err := s.OTPEnrollment(t.Context(), want.UserID, want.ID)
		require.NoError(t, err, "OTPEnrollment")
		got.ID[0] ^= 0xff
		got.Secret.Box[0] ^= 0xff
		enrollmentIs(t, s, "after the caller changed a result", &want)
	}},
}

// ---- TOTP devices ----

var otpDeviceTests = []mfaTest{
	{"RoundTrip", func(t *testing.T, s mfa.Store) {
		u := mustUser(t, s)
		full := fullOTPDevice(t, u.ID)
		app := appDevice(t, u.ID)
		app.Name = ""
		extremes := fullOTPDevice(t, u.ID)
		extremes.Hash, extremes.Digits, extremes.Period = "SHA512", 6, 1
		extremes.LastStep, extremes.Drift = 1<<62, 1<<20
		extremes.Deactivated = base.Add(5 * time.Hour)
		extremes.Created = time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC)
		extremes.Secret = mfa.Sealed{KeyID: "schlüssel ✓", Box: randBytes(t, 4096)}
		for _, tc := range []struct {
			name string
			d    *mfa.OTPDevice
		}{
			{"hardware token", full},
			{"app", app},
			{"extremes", extremes},
		} {
			mustEnroll(t, s, tc.d)
			otpDeviceIs(t, s, tc.name, tc.d)
		}
		list, err := s.OTPDevices(t.Context(), u.ID)
		require.NoError(t, err, "OTPDevices")
		require.Len(t, list, 3, "OTPDevices")
		for _, d := range list {
			if bytes.Equal(d.ID, full.ID) {
				checkOTPDevice(t, "OTPDevices[full]", d, full)
			}
		}
		// Devices and keys are separate lists.
		assert.Zero(t, countCredentials(t, s, u.ID), "Credentials")
	}},
	{"NotFound", func(t *testing.T, s mfa.Store) {
		u := mustUser(t, s)
		d := mustOTPDevice(t, s, u.ID)
		c := mustCredential(t, s, u.ID)
		for _, id := range [][]byte{randBytes(t, 16), d.ID[:15], append(bytes.Clone(d.ID), 0), u.ID, c.ID, nil} {
			_, err := s.OTPDevice(t.Context(), id)
			assert.ErrorIs(t, err, webauthn.ErrNotFound, "OTPDevice(%x)", id)
		}
	}},
	{"ListOrder", func(t *testing.T, s mfa.Store) {
		alice, bob := mustUser(t, s), mustUser(t, s)
		// Enrolled out of order; listed oldest first. Two share a time:
		// they keep the order they were added in.
		offsets := []time.Duration{3 * time.Hour, time.Hour, 5 * time.Hour, time.Microsecond, 2 * time.Hour, 2 * time.Hour}
		var added []*mfa.OTPDevice
		for _, off := range offsets {
			d := appDevice(t, alice.ID)
			d.Created = base.Add(off)
			added = append(added, mustEnroll(t, s, d))
			mustEnroll(t, s, appDevice(t, bob.ID)) // interleaved with another user's
		}
		want := []*mfa.OTPDevice{added[3], added[1], added[4], added[5], added[0], added[2]}
		got, err := s.OTPDevices(t.Context(), alice.ID)
		require.NoError(t, err, "OTPDevices")
		require.Len(t, got, len(want), "OTPDevices")
		for i := range want {
			checkOTPDevice(t, fmt.Sprintf("OTPDevices[%d]", i), got[i], want[i])
		}
		assert.Equal(t, len(offsets), countOTPDevices(t, s, bob.ID), "bob's devices")
	}},
	{"ListNone", func(t *testing.T, s mfa.Store) {
		u := mustUser(t, s)
		mustCredential(t, s, u.ID)
		mustSaveEnrollment(t, s, appDevice(t, u.ID))
		for _, tc := range []struct {
			name string
			id   []byte
		}{
			{"user with a key and a pending enrollment", u.ID},
			{"unknown user", randBytes(t, 32)},
			{"nil user ID", nil},
		} {
			got, err := s.OTPDevices(t.Context(), tc.id)
			require.NoError(t, err, tc.name)
			assert.NotNil(t, got, "%s: OTPDevices must be an empty non-nil slice", tc.name)
			assert.Empty(t, got, tc.name)
		}
		got, err := s.ListOTPDevices(t.Context(), nil, 10)
		require.NoError(t, err, "ListOTPDevices")
		assert.Empty(t, got, "ListOTPDevices")
	}},
	{"ListCursor", func(t *testing.T, s mfa.Store) {
		users := []*webauthn.User{mustUser(t, s), mustUser(t, s), mustUser(t, s)}
		var ids [][]byte
		for i := range 11 {
			d := appDevice(t, users[i%len(users)].ID)
			switch i { // bytewise means unsigned, and a shared prefix
			case 0:
				d.ID[0], d.ID[15] = 0x00, 0x01
			case 1:
				d.ID[0] = 0xff
			case 2, 3:
				d.ID = bytes.Clone(ids[0])
				d.ID[15] = byte(0x7f + i - 2) // 0x7f, 0x80
			}
			mustEnroll(t, s, d)
			ids = append(ids, d.ID)
		}
		slices.SortFunc(ids, bytes.Compare)
		for _, limit := range []int{1, 3, 11, 100} {
			var got [][]byte
			var after []byte
			for page := 0; ; page++ {
				require.Less(t, page, 20, "limit %d: too many pages", limit)
				list, err := s.ListOTPDevices(t.Context(), after, limit)
				require.NoError(t, err, "ListOTPDevices")
				require.LessOrEqual(t, len(list), limit, "ListOTPDevices page size")
				if len(list) == 0 {
					break
				}
				for _, d := range list {
					got = append(got, d.ID)
				}
				after = list[len(list)-1].ID
			}
			assert.Equal(t, ids, got, "limit %d: every device once, in ID order", limit)
		}
		// A cursor between IDs, and past the last one.
		mid := bytes.Clone(ids[5])
		mid = append(mid, 0) // just after ids[5]
		list, err := s.ListOTPDevices(t.Context(), mid, 2)
		require.NoError(t, err, "ListOTPDevices")
		require.Len(t, list, 2, "ListOTPDevices after a cursor between IDs")
		assertBytes(t, "first after the cursor", list[0].ID, ids[6])
		list, err = s.ListOTPDevices(t.Context(), ids[len(ids)-1], 5)
		require.NoError(t, err, "ListOTPDevices")
		assert.Empty(t, list, "ListOTPDevices after the last ID")
		// Pages carry the full devices.
		d := mustOTPDevice(t, s, users[0].ID)
		list, err = s.ListOTPDevices(t.Context(), nil, 100)
		require.NoError(t, err, "ListOTPDevices")
		for _, got := range list {
			if bytes.Equal(got.ID, d.ID) {
				checkOTPDevice(t, "ListOTPDevices", got, d)
			}
		}
	}},
	{"Rename", func(t *testing.T, s mfa.Store) {
		alice, bob := mustUser(t, s), mustUser(t, s)
		d := mustOTPDevice(t, s, alice.ID)
		for _, name := range []string{"Work phone", "", "Schlüssel 🔑"} {
			require.NoError(t, s.RenameOTPDevice(t.Context(), alice.ID, d.ID, name), "RenameOTPDevice")
			d.Name = name
			otpDeviceIs(t, s, "after RenameOTPDevice", d)
		}
		for _, tc := range []struct {
			name     string
			user, id []byte
		}{
			{"other user's ID", bob.ID, d.ID},
			{"unknown user", randBytes(t, 32), d.ID},
			{"unknown device", alice.ID, randBytes(t, 16)},
		} {
			assert.ErrorIs(t, s.RenameOTPDevice(t.Context(), tc.user, tc.id, "stolen"), webauthn.ErrNotFound, tc.name)
			otpDeviceIs(t, s, tc.name+": unchanged", d)
		}
	}},
	{"Deactivate", func(t *testing.T, s mfa.Store) {
		alice, bob := mustUser(t, s), mustUser(t, s)
		d := mustOTPDevice(t, s, alice.ID)
		at := base.Add(24*time.Hour + 123456789)
		require.NoError(t, s.DeactivateOTPDevice(t.Context(), alice.ID, d.ID, at), "DeactivateOTPDevice")
		d.Deactivated = at
		otpDeviceIs(t, s, "after DeactivateOTPDevice", d)
		for _, tc := range []struct {
			name     string
			user, id []byte
			at       time.Time
		}{
			{"other user's ID reactivating", bob.ID, d.ID, time.Time{}},
			{"other user's ID deactivating", bob.ID, d.ID, base},
			{"unknown device", alice.ID, randBytes(t, 16), base},
		} {
			assert.ErrorIs(t, s.DeactivateOTPDevice(t.Context(), tc.user, tc.id, tc.at), webauthn.ErrNotFound, tc.name)
			otpDeviceIs(t, s, tc.name+": unchanged", d)
		}
		require.NoError(t, s.DeactivateOTPDevice(t.Context(), alice.ID, d.ID, time.Time{}), "reactivating")
		d.Deactivated = time.Time{}
		otpDeviceIs(t, s, "after reactivating", d)
	}},
	{"Delete", func(t *testing.T, s mfa.Store) {
		alice, bob := mustUser(t, s), mustUser(t, s)
		d := mustOTPDevice(t, s, alice.ID)
		keep := mustOTPDevice(t, s, alice.ID)
		for _, tc := range []struct {
			name     string
			user, id []byte
		}{
			{"other user's ID", bob.ID, d.ID},
			{"unknown user", randBytes(t, 32), d.ID},
			{"unknown device", alice.ID, randBytes(t, 16)},
		} {
			assert.ErrorIs(t, s.DeleteOTPDevice(t.Context(), tc.user, tc.id), webauthn.ErrNotFound, tc.name)
			otpDeviceIs(t, s, tc.name+": unchanged", d)
		}
		require.NoError(t, s.DeleteOTPDevice(t.Context(), alice.ID, d.ID), "DeleteOTPDevice")
		otpDeviceGone(t, s, "after DeleteOTPDevice", d.ID)
		assert.ErrorIs(t, s.DeleteOTPDevice(t.Context(), alice.ID, d.ID), webauthn.ErrNotFound, "second DeleteOTPDevice")
		otpDeviceIs(t, s, "the other device", keep)
		assert.Equal(t, 1, countOTPDevices(t, s, alice.ID), "devices after delete")
		// The ID is free again.
		again := fullOTPDevice(t, bob.ID)
		again.ID = bytes.Clone(d.ID)
		mustEnroll(t, s, again)
		otpDeviceIs(t, s, "re-enrolled", again)
	}},
	{"Copies", func(t *testing.T, s mfa.Store) {
		u := mustUser(t, s)
		d := fullOTPDevice(t, u.ID)
		mustEnroll(t, s, d)
		want := *d
		want.ID, want.UserID, want.Secret.Box = bytes.Clone(d.ID), bytes.Clone(d.UserID), bytes.Clone(d.Secret.Box)
		d.ID[0] ^= 0xff
		d.UserID[0] ^= 0xff
		d.Secret.Box[0] ^= 0xff
		otpDeviceIs(t, s, "after the caller changed its input", &want)
		got, err := s.OTPDevice(t.Context(), want.ID)
		require.NoError(t, err, "OTPDevice")
		got.Secret.Box[0] ^= 0xff
		got.UserID[0] ^= 0xff
		list, err := s.OTPDevices(t.Context(), want.UserID)
		require.NoError(t, err, "OTPDevices")
		list[0].ID[0] ^= 0xff
		list[0].Secret.Box[1] ^= 0xff
		otpDeviceIs(t, s, "after the caller changed results", &want)
	}},
}

// ---- time steps and resealing ----

var otpStepTests = []mfaTest{
	{"Advance", func(t *testing.T, s mfa.Store) {
		alice, bob := mustUser(t, s), mustUser(t, s)
		at := base.Add(48*time.Hour + 987654321)
		for _, tc := range []struct {
			name  string
			setup func(d *mfa.OTPDevice) // before storing
			user  func(d *mfa.OTPDevice) []byte
			id    func(d *mfa.OTPDevice) []byte
			step  func(d *mfa.OTPDevice) int64
			err   error
		}{
			{name: "next step", step: func(d *mfa.OTPDevice) int64 { return d.LastStep + 1 }},
			{name: "a later step", step: func(d *mfa.OTPDevice) int64 { return d.LastStep + 1000 }},
			{name: "first use", setup: func(d *mfa.OTPDevice) { d.LastStep, d.LastUsed = 0, time.Time{} },
				step: func(d *mfa.OTPDevice) int64 { return 1 }},
			{name: "same step", step: func(d *mfa.OTPDevice) int64 { return d.LastStep }, err: mfa.ErrReplay},
			{name: "earlier step", step: func(d *mfa.OTPDevice) int64 { return d.LastStep - 1 }, err: mfa.ErrReplay},
			{name: "deactivated", setup: func(d *mfa.OTPDevice) { d.Deactivated = base },
				step: func(d *mfa.OTPDevice) int64 { return d.LastStep + 1 }, err: webauthn.ErrInactive},
			{name: "other user's ID", user: func(*mfa.OTPDevice) []byte { return bob.ID },
				step: func(d *mfa.OTPDevice) int64 { return d.LastStep + 1 }, err: webauthn.ErrNotFound},
			{name: "unknown device", id: func(d *mfa.OTPDevice) []byte { return append(bytes.Clone(d.ID), 1) },
				step: func(d *mfa.OTPDevice) int64 { return d.LastStep + 1 }, err: webauthn.ErrNotFound},
		} {
			d := fullOTPDevice(t, alice.ID)
			if tc.setup != nil {
				tc.setup(d)
			}
			mustEnroll(t, s, d)
			user, id, step := d.UserID, d.ID, tc.step(d)
			if tc.user != nil {
				user = tc.user(d)
			}
			if tc.id != nil {
				id = tc.id(d)
			}
			err := s.AdvanceOTPStep(t.Context(), user, id, step, at)
			want := *d
			if tc.err != nil {
				assert.ErrorIs(t, err, tc.err, tc.name)
			} else {
				assert.NoError(t, err, tc.name)
				want.LastStep, want.LastUsed = step, at
			}
			otpDeviceIs(t, s, tc.name, &want)
		}
	}},
	{"AdvanceSequence", func(t *testing.T, s mfa.Store) {
		u := mustUser(t, s)
		d := mustOTPDevice(t, s, u.ID)
		for i := range 5 {
			step, at := d.LastStep+int64(i%2+1), base.Add(time.Duration(i+1)*time.Minute)
			require.NoError(t, s.AdvanceOTPStep(t.Context(), u.ID, d.ID, step, at), "AdvanceOTPStep #%d", i)
			d.LastStep, d.LastUsed = step, at
			otpDeviceIs(t, s, fmt.Sprintf("after AdvanceOTPStep #%d", i), d)
			// The same code again is a replay.
			assert.ErrorIs(t, s.AdvanceOTPStep(t.Context(), u.ID, d.ID, step, at.Add(time.Second)), mfa.ErrReplay, "replayed step")
			otpDeviceIs(t, s, "after a replay", d)
		}
		// Reactivated devices accept codes again.
		require.NoError(t, s.DeactivateOTPDevice(t.Context(), u.ID, d.ID, base), "DeactivateOTPDevice")
		assert.ErrorIs(t, s.AdvanceOTPStep(t.Context(), u.ID, d.ID, d.LastStep+1, base), webauthn.ErrInactive, "while deactivated")
		require.NoError(t, s.DeactivateOTPDevice(t.Context(), u.ID, d.ID, time.Time{}), "reactivating")
		assert.NoError(t, s.AdvanceOTPStep(t.Context(), u.ID, d.ID, d.LastStep+1, base), "after reactivating")
	}},
	{"Resync", func(t *testing.T, s mfa.Store) {
		alice, bob := mustUser(t, s), mustUser(t, s)
		d := mustOTPDevice(t, s, alice.ID)
		for _, drift := range []int{3, -5, 0} {
			step := d.LastStep + 7
			require.NoError(t, s.ResyncOTPDevice(t.Context(), alice.ID, d.ID, drift, step), "ResyncOTPDevice(%d)", drift)
			d.Drift, d.LastStep = drift, step // LastUsed stays
			otpDeviceIs(t, s, "after ResyncOTPDevice", d)
		}
		for _, tc := range []struct {
			name     string
			user, id []byte
			step     int64
			err      error
		}{
			{"same step", alice.ID, d.ID, d.LastStep, mfa.ErrReplay},
			{"earlier step", alice.ID, d.ID, d.LastStep - 3, mfa.ErrReplay},
			{"other user's ID", bob.ID, d.ID, d.LastStep + 1, webauthn.ErrNotFound},
			{"unknown device", alice.ID, randBytes(t, 16), d.LastStep + 1, webauthn.ErrNotFound},
		} {
			assert.ErrorIs(t, s.ResyncOTPDevice(t.Context(), tc.user, tc.id, 9, tc.step), tc.err, tc.name)
			otpDeviceIs(t, s, tc.name+": unchanged", d)
		}
		require.NoError(t, s.DeactivateOTPDevice(t.Context(), alice.ID, d.ID, base), "DeactivateOTPDevice")
		d.Deactivated = base
		assert.ErrorIs(t, s.ResyncOTPDevice(t.Context(), alice.ID, d.ID, 9, d.LastStep+1), webauthn.ErrInactive, "deactivated")
		otpDeviceIs(t, s, "deactivated: unchanged", d)
	}},
	{"Reseal", func(t *testing.T, s mfa.Store) {
		u := mustUser(t, s)
		d := mustOTPDevice(t, s, u.ID)
		other := mustOTPDevice(t, s, u.ID)
		next := mfa.Sealed{KeyID: "2026-12", Box: randBytes(t, 48)}
		require.NoError(t, s.ResealOTPDevice(t.Context(), d.ID, d.Secret.KeyID, next), "ResealOTPDevice")
		d.Secret = mfa.Sealed{KeyID: next.KeyID, Box: bytes.Clone(next.Box)}
		otpDeviceIs(t, s, "after ResealOTPDevice", d)
		otpDeviceIs(t, s, "other device", other)

		// The old key ID no longer matches: another rotation got there.
		later := mfa.Sealed{KeyID: "2027-06", Box: randBytes(t, 48)}
		assert.ErrorIs(t, s.ResealOTPDevice(t.Context(), d.ID, "2025-03", later), webauthn.ErrConflict, "stale key ID")
		otpDeviceIs(t, s, "after a stale reseal", d)
		assert.ErrorIs(t, s.ResealOTPDevice(t.Context(), randBytes(t, 16), "2026-12", later), webauthn.ErrNotFound, "unknown device")

		// Deactivated devices are resealed too: rotation covers every
		// stored secret.
		require.NoError(t, s.DeactivateOTPDevice(t.Context(), u.ID, other.ID, base), "DeactivateOTPDevice")
		other.Deactivated = base
		require.NoError(t, s.ResealOTPDevice(t.Context(), other.ID, other.Secret.KeyID, later), "ResealOTPDevice of a deactivated device")
		other.Secret = later
		otpDeviceIs(t, s, "deactivated after ResealOTPDevice", other)
	}},
}

// ---- the shared device limit ----

var deviceLimitTests = []mfaTest{
	{"Shared", func(t *testing.T, s mfa.Store) {
		const limit = 5
		u := mustUser(t, s)
		for range 3 {
			require.NoError(t, s.AddCredential(t.Context(), fullCredential(t, u.ID), limit), "AddCredential")
		}
		for range limit - 3 {
			d := appDevice(t, u.ID)
			mustSaveEnrollment(t, s, d)
			require.NoError(t, s.CompleteOTPEnrollment(t.Context(), d, limit), "CompleteOTPEnrollment")
		}
		require.Equal(t, limit, countDevices(t, s, u.ID), "devices at the limit")

		// Now neither type fits, and failing changes nothing.
		key := fullCredential(t, u.ID)
		assert.ErrorIs(t, s.AddCredential(t.Context(), key, limit), webauthn.ErrLimit, "AddCredential at the limit")
		credentialGone(t, s, "key over the limit", key.ID)
		app := appDevice(t, u.ID)
		e := mustSaveEnrollment(t, s, app) // pending enrollments do not count
		assert.ErrorIs(t, s.CompleteOTPEnrollment(t.Context(), app, limit), webauthn.ErrLimit, "CompleteOTPEnrollment at the limit")
		otpDeviceGone(t, s, "device over the limit", app.ID)
		enrollmentIs(t, s, "enrollment refused at the limit", e)
		assert.Equal(t, limit, countDevices(t, s, u.ID), "devices after refusals")

		// A higher limit, no limit, or another user is not affected.
		require.NoError(t, s.CompleteOTPEnrollment(t.Context(), app, limit+1), "CompleteOTPEnrollment with a higher limit")
		for _, l := range []int{0, -1} {
			d := appDevice(t, u.ID)
			mustSaveEnrollment(t, s, d)
			require.NoError(t, s.CompleteOTPEnrollment(t.Context(), d, l), "CompleteOTPEnrollment with limit %d", l)
		}
		other := mustUser(t, s)
		require.NoError(t, s.AddCredential(t.Context(), fullCredential(t, other.ID), limit), "another user's key")
		d := appDevice(t, other.ID)
		mustSaveEnrollment(t, s, d)
		require.NoError(t, s.CompleteOTPEnrollment(t.Context(), d, limit), "another user's device")
	}},
	{"OTPDevicesCountForKeys", func(t *testing.T, s mfa.Store) {
		u := mustUser(t, s)
		a, b := mustEnroll(t, s, appDevice(t, u.ID)), mustOTPDevice(t, s, u.ID)
		// Deactivated devices count; deleted ones do not.
		require.NoError(t, s.DeactivateOTPDevice(t.Context(), u.ID, a.ID, base), "DeactivateOTPDevice")
		key := fullCredential(t, u.ID)
		assert.ErrorIs(t, s.AddCredential(t.Context(), key, 2), webauthn.ErrLimit, "AddCredential with two devices, limit 2")
		credentialGone(t, s, "key over the limit", key.ID)
		require.NoError(t, s.DeleteOTPDevice(t.Context(), u.ID, b.ID), "DeleteOTPDevice")
		require.NoError(t, s.AddCredential(t.Context(), key, 2), "AddCredential after a delete")
	}},
	{"KeysCountForOTPDevices", func(t *testing.T, s mfa.Store) {
		u := mustUser(t, s)
		a, b := mustCredential(t, s, u.ID), mustCredential(t, s, u.ID)
		require.NoError(t, s.DeactivateCredential(t.Context(), u.ID, a.ID, base), "DeactivateCredential")
		d := fullOTPDevice(t, u.ID)
		e := mustSaveEnrollment(t, s, d)
		assert.ErrorIs(t, s.CompleteOTPEnrollment(t.Context(), d, 2), webauthn.ErrLimit, "CompleteOTPEnrollment with two keys, limit 2")
		enrollmentIs(t, s, "enrollment refused at the limit", e)
		otpDeviceGone(t, s, "device over the limit", d.ID)
		require.NoError(t, s.DeleteCredential(t.Context(), u.ID, b.ID), "DeleteCredential")
		require.NoError(t, s.CompleteOTPEnrollment(t.Context(), d, 2), "CompleteOTPEnrollment after a delete")
		otpDeviceIs(t, s, "device after a delete", d)
	}},
}

// ---- recovery codes ----

var recoveryTests = []mfaTest{
	{"RoundTrip", func(t *testing.T, s mfa.Store) {
		u := mustUser(t, s)
		r := recoverySet(t, u.ID, 10)
		r.Hashes[0][0], r.Hashes[9][31] = 0x00, 0xff
		in := *r
		in.Used = make([]time.Time, 10)
		in.Used[2] = base // ignored on the way in
		require.NoError(t, s.ReplaceRecoveryCodes(t.Context(), &in), "ReplaceRecoveryCodes")
		recoveryIs(t, s, "RecoveryCodes", r)
		got, err := s.RecoveryCodes(t.Context(), u.ID)
		require.NoError(t, err, "RecoveryCodes")
		assert.Equal(t, 10, got.Left(), "Left()")
	}},
	{"NotFound", func(t *testing.T, s mfa.Store) {
		u := mustUser(t, s)
		_, err := s.RecoveryCodes(t.Context(), u.ID)
		assert.ErrorIs(t, err, webauthn.ErrNotFound, "RecoveryCodes of a user without a set")
		r := recoverySet(t, randBytes(t, 32), 4)
		assert.ErrorIs(t, s.ReplaceRecoveryCodes(t.Context(), r), webauthn.ErrNotFound, "ReplaceRecoveryCodes for an unknown user")
		_, err = s.RecoveryCodes(t.Context(), r.UserID)
		assert.ErrorIs(t, err, webauthn.ErrNotFound, "RecoveryCodes after a failed ReplaceRecoveryCodes")
		_, err = s.UseRecoveryCode(t.Context(), u.ID, r.ID, 0, base)
		assert.ErrorIs(t, err, webauthn.ErrNotFound, "UseRecoveryCode without a set")
		assert.ErrorIs(t, s.DeleteRecoveryCodes(t.Context(), u.ID), webauthn.ErrNotFound, "DeleteRecoveryCodes without a set")
	}},
	{"Use", func(t *testing.T, s mfa.Store) {
		alice, bob := mustUser(t, s), mustUser(t, s)
		r := mustRecoveryCodes(t, s, alice.ID, 10)
		theirs := mustRecoveryCodes(t, s, bob.ID, 10)
		want := *r
		want.Used = make([]time.Time, 10)
		at := base.Add(72*time.Hour + 4321)
		left, err := s.UseRecoveryCode(t.Context(), alice.ID, r.ID, 3, at)
		require.NoError(t, err, "UseRecoveryCode")
		assert.Equal(t, 9, left, "left after one")
		want.Used[3] = at
		recoveryIs(t, s, "after UseRecoveryCode", &want)

		// The same code again is a replay and changes nothing.
		_, err = s.UseRecoveryCode(t.Context(), alice.ID, r.ID, 3, at.Add(time.Hour))
		assert.ErrorIs(t, err, mfa.ErrReplay, "reused code")
		recoveryIs(t, s, "after a reuse", &want)

		for _, tc := range []struct {
			name      string
			user, set []byte
			index     int
		}{
			{"index -1", alice.ID, r.ID, -1},
			{"index past the end", alice.ID, r.ID, 10},
			{"far index", alice.ID, r.ID, 1000},
			{"unknown set", alice.ID, randBytes(t, 16), 4},
			{"another user's set", alice.ID, theirs.ID, 4},
			{"set of another user", bob.ID, r.ID, 4},
			{"unknown user", randBytes(t, 32), r.ID, 4},
		} {
			_, err := s.UseRecoveryCode(t.Context(), tc.user, tc.set, tc.index, at)
			assert.ErrorIs(t, err, webauthn.ErrNotFound, tc.name)
		}
		recoveryIs(t, s, "after misses", &want)
		recoveryIs(t, s, "bob's set", theirs)

		// Use them all.
		for i, n := 0, 9; i < 10; i++ {
			if i == 3 {
				continue
			}
			n--
			left, err := s.UseRecoveryCode(t.Context(), alice.ID, r.ID, i, at.Add(time.Duration(i)*time.Second))
			require.NoError(t, err, "UseRecoveryCode(%d)", i)
			assert.Equal(t, n, left, "left after code %d", i)
			want.Used[i] = at.Add(time.Duration(i) * time.Second)
		}
		recoveryIs(t, s, "all used", &want)
		got, err := s.RecoveryCodes(t.Context(), alice.ID)
		require.NoError(t, err, "RecoveryCodes")
		assert.Zero(t, got.Left(), "Left() when all are used")
	}},
	{"Replace", func(t *testing.T, s mfa.Store) {
		u := mustUser(t, s)
		old := mustRecoveryCodes(t, s, u.ID, 10)
		_, err := s.UseRecoveryCode(t.Context(), u.ID, old.ID, 1, base)
		require.NoError(t, err, "UseRecoveryCode")
		r := recoverySet(t, u.ID, 5) // fewer codes than before
		r.Created = base.Add(100 * time.Hour)
		require.NoError(t, s.ReplaceRecoveryCodes(t.Context(), r), "ReplaceRecoveryCodes")
		recoveryIs(t, s, "the new set, none used", r)
		for _, i := range []int{0, 1, 7} {
			_, err := s.UseRecoveryCode(t.Context(), u.ID, old.ID, i, base)
			assert.ErrorIs(t, err, webauthn.ErrNotFound, "UseRecoveryCode(%d) of the old set", i)
		}
		_, err = s.UseRecoveryCode(t.Context(), u.ID, r.ID, 7, base)
		assert.ErrorIs(t, err, webauthn.ErrNotFound, "index past the new set's end")
		recoveryIs(t, s, "after uses of the old set", r)
		left, err := s.UseRecoveryCode(t.Context(), u.ID, r.ID, 1, base)
		require.NoError(t, err, "UseRecoveryCode of the new set")
		assert.Equal(t, 4, left, "left in the new set")
	}},
	{"Delete", func(t *testing.T, s mfa.Store) {
		alice, bob := mustUser(t, s), mustUser(t, s)
		r := mustRecoveryCodes(t, s, alice.ID, 6)
		keep := mustRecoveryCodes(t, s, bob.ID, 6)
		assert.ErrorIs(t, s.DeleteRecoveryCodes(t.Context(), randBytes(t, 32)), webauthn.ErrNotFound, "unknown user")
		require.NoError(t, s.DeleteRecoveryCodes(t.Context(), alice.ID), "DeleteRecoveryCodes")
		_, err := s.RecoveryCodes(t.Context(), alice.ID)
		assert.ErrorIs(t, err, webauthn.ErrNotFound, "RecoveryCodes after delete")
		_, err = s.UseRecoveryCode(t.Context(), alice.ID, r.ID, 0, base)
		assert.ErrorIs(t, err, webauthn.ErrNotFound, "UseRecoveryCode after delete")
		assert.ErrorIs(t, s.DeleteRecoveryCodes(t.Context(), alice.ID), webauthn.ErrNotFound, "second DeleteRecoveryCodes")
		recoveryIs(t, s, "bob's set", keep)
		// A new set can follow.
		again := mustRecoveryCodes(t, s, alice.ID, 3)
		recoveryIs(t, s, "new set after delete", again)
	}},
	{"Copies", func(t *testing.T, s mfa.Store) {
		u := mustUser(t, s)
		r := mustRecoveryCodes(t, s, u.ID, 3)
		want := *r
		want.UserID, want.ID, want.Salt = bytes.Clone(r.UserID), bytes.Clone(r.ID), bytes.Clone(r.Salt)
		want.Hashes = nil
		for _, h := range r.Hashes {
			want.Hashes = append(want.Hashes, bytes.Clone(h))
		}
		r.ID[0] ^= 0xff
		r.Salt[0] ^= 0xff
		r.Hashes[1][0] ^= 0xff
		recoveryIs(t, s, "after the caller changed its input", &want)
		got, err := s.RecoveryCodes(t.Context(), want.UserID)
		require.NoError(t, err, "RecoveryCodes")
		got.Salt[0] ^= 0xff
		got.Hashes[0][0] ^= 0xff
		got.Used[0] = base
		recoveryIs(t, s, "after the caller changed a result", &want)
	}},
}

// ---- attempt counters ----

var attemptTests = []mfaTest{
	{"Zero", func(t *testing.T, s mfa.Store) {
		u := mustUser(t, s)
		for _, user := range [][]byte{u.ID, randBytes(t, 32), nil} {
			a, err := s.Attempts(t.Context(), user, mfa.FactorTOTP)
			require.NoError(t, err, "Attempts")
			checkAttempts(t, "Attempts before any failure", a, mfa.Attempts{})
		}
		require.NoError(t, s.ResetAttempts(t.Context(), u.ID, mfa.FactorTOTP), "ResetAttempts of nothing")
	}},
	{"RecordFailure", func(t *testing.T, s mfa.Store) {
		u := mustUser(t, s)
		p := mfa.LockPolicy{Limit: 3, Base: time.Minute, Max: 10 * time.Minute}
		for n := 1; n <= 8; n++ {
			now := base.Add(time.Duration(n) * time.Second)
			got, err := s.RecordFailure(t.Context(), u.ID, mfa.FactorTOTP, now, p)
			require.NoError(t, err, "RecordFailure #%d", n)
			want := mfa.Attempts{Failures: n, LockedUntil: p.Until(n, now)}
			checkAttempts(t, fmt.Sprintf("RecordFailure #%d", n), got, want)
			read, err := s.Attempts(t.Context(), u.ID, mfa.FactorTOTP)
			require.NoError(t, err, "Attempts")
			checkAttempts(t, fmt.Sprintf("Attempts after #%d", n), read, want)
			switch n {
			case 2:
				assert.True(t, read.LockedUntil.IsZero(), "locked before the limit")
			case 3:
				assertTime(t, "lock at the limit", read.LockedUntil, now.Add(time.Minute))
			case 8:
				assertTime(t, "lock at the cap", read.LockedUntil, now.Add(10*time.Minute))
			}
		}
		// Factors and users are counted apart.
		a, err := s.Attempts(t.Context(), u.ID, mfa.FactorRecoveryCode)
		require.NoError(t, err, "Attempts")
		checkAttempts(t, "another factor", a, mfa.Attempts{})
		other := mustUser(t, s)
		a, err = s.Attempts(t.Context(), other.ID, mfa.FactorTOTP)
		require.NoError(t, err, "Attempts")
		checkAttempts(t, "another user", a, mfa.Attempts{})
		a, err = s.RecordFailure(t.Context(), u.ID, mfa.FactorRecoveryCode, base, p)
		require.NoError(t, err, "RecordFailure")
		checkAttempts(t, "first failure of another factor", a, mfa.Attempts{Failures: 1})
	}},
	{"LockKept", func(t *testing.T, s mfa.Store) {
		// A policy that gives no lock leaves the one recorded.
		u := mustUser(t, s)
		p := mfa.LockPolicy{Limit: 1, Base: time.Hour, Max: time.Hour}
		a, err := s.RecordFailure(t.Context(), u.ID, mfa.FactorSecurityKey, base, p)
		require.NoError(t, err, "RecordFailure")
		locked := base.Add(time.Hour)
		checkAttempts(t, "locked", a, mfa.Attempts{Failures: 1, LockedUntil: locked})
		a, err = s.RecordFailure(t.Context(), u.ID, mfa.FactorSecurityKey, base.Add(time.Minute), mfa.LockPolicy{})
		require.NoError(t, err, "RecordFailure without a lock policy")
		checkAttempts(t, "lock kept", a, mfa.Attempts{Failures: 2, LockedUntil: locked})
		a, err = s.Attempts(t.Context(), u.ID, mfa.FactorSecurityKey)
		require.NoError(t, err, "Attempts")
		checkAttempts(t, "lock kept", a, mfa.Attempts{Failures: 2, LockedUntil: locked})
	}},
	{"UnknownUser", func(t *testing.T, s mfa.Store) {
		id := randBytes(t, 32)
		_, err := s.RecordFailure(t.Context(), id, mfa.FactorTOTP, base, mfa.LockPolicy{Limit: 1, Base: time.Minute})
		assert.ErrorIs(t, err, webauthn.ErrNotFound, "RecordFailure for an unknown user")
		a, err := s.Attempts(t.Context(), id, mfa.FactorTOTP)
		require.NoError(t, err, "Attempts")
		checkAttempts(t, "after a failed RecordFailure", a, mfa.Attempts{})
	}},
	{"Reset", func(t *testing.T, s mfa.Store) {
		u := mustUser(t, s)
		p := mfa.LockPolicy{Limit: 2, Base: time.Minute, Max: time.Hour}
		for range 3 {
			for _, f := range []mfa.Factor{mfa.FactorTOTP, mfa.FactorRecoveryCode} {
				_, err := s.RecordFailure(t.Context(), u.ID, f, base, p)
				require.NoError(t, err, "RecordFailure")
			}
		}
		require.NoError(t, s.ResetAttempts(t.Context(), u.ID, mfa.FactorTOTP), "ResetAttempts")
		a, err := s.Attempts(t.Context(), u.ID, mfa.FactorTOTP)
		require.NoError(t, err, "Attempts")
		checkAttempts(t, "after ResetAttempts", a, mfa.Attempts{})
		a, err = s.Attempts(t.Context(), u.ID, mfa.FactorRecoveryCode)
		require.NoError(t, err, "Attempts")
		checkAttempts(t, "the other factor", a, mfa.Attempts{Failures: 3, LockedUntil: p.Until(3, base)})
		a, err = s.RecordFailure(t.Context(), u.ID, mfa.FactorTOTP, base, p)
		require.NoError(t, err, "RecordFailure after a reset")
		checkAttempts(t, "first failure after a reset", a, mfa.Attempts{Failures: 1})
	}},
}

// ---- context ----

var mfaContextTests = []mfaTest{
	{"Canceled", func(t *testing.T, s mfa.Store) {
		u := mustUser(t, s)
		d := mustOTPDevice(t, s, u.ID)
		pending := fullOTPDevice(t, u.ID)
		e := mustSaveEnrollment(t, s, pending)
		r := mustRecoveryCodes(t, s, u.ID, 4)
		p := mfa.LockPolicy{Limit: 1, Base: time.Minute}
		_, err := s.RecordFailure(t.Context(), u.ID, mfa.FactorTOTP, base, p)
		require.NoError(t, err, "RecordFailure")
		attempts := mfa.Attempts{Failures: 1, LockedUntil: p.Until(1, base)}

		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		newE := enrollmentFor(appDevice(t, u.ID), base.Add(time.Hour))
		for _, tc := range []struct {
			name string
			call func() error
		}{
			{"SaveOTPEnrollment", func() error { return s.SaveOTPEnrollment(ctx, newE) }},
			{"OTPEnrollment", func() error { _, err := s.OTPEnrollment(ctx, u.ID, e.ID); return err }},
			{"CompleteOTPEnrollment", func() error { return s.CompleteOTPEnrollment(ctx, pending, 10) }},
			{"PurgeOTPEnrollments", func() error { _, err := s.PurgeOTPEnrollments(ctx, base.Add(48*time.Hour)); return err }},
			{"OTPDevice", func() error { _, err := s.OTPDevice(ctx, d.ID); return err }},
			{"OTPDevices", func() error { _, err := s.OTPDevices(ctx, u.ID); return err }},
			{"ListOTPDevices", func() error { _, err := s.ListOTPDevices(ctx, nil, 10); return err }},
			{"Users", func() error { _, err := s.Users(ctx, nil, 10); return err }},
			{"RenameOTPDevice", func() error { return s.RenameOTPDevice(ctx, u.ID, d.ID, "x") }},
			{"DeactivateOTPDevice", func() error { return s.DeactivateOTPDevice(ctx, u.ID, d.ID, base) }},
			{"DeleteOTPDevice", func() error { return s.DeleteOTPDevice(ctx, u.ID, d.ID) }},
			{"AdvanceOTPStep", func() error { return s.AdvanceOTPStep(ctx, u.ID, d.ID, d.LastStep+1, base) }},
			{"ResyncOTPDevice", func() error { return s.ResyncOTPDevice(ctx, u.ID, d.ID, 1, d.LastStep+1) }},
			{"ResealOTPDevice", func() error {
				return s.ResealOTPDevice(ctx, d.ID, d.Secret.KeyID, mfa.Sealed{KeyID: "new", Box: []byte{1}})
			}},
			{"ReplaceRecoveryCodes", func() error { return s.ReplaceRecoveryCodes(ctx, recoverySet(t, u.ID, 2)) }},
			{"RecoveryCodes", func() error { _, err := s.RecoveryCodes(ctx, u.ID); return err }},
			{"UseRecoveryCode", func() error { _, err := s.UseRecoveryCode(ctx, u.ID, r.ID, 0, base); return err }},
			{"DeleteRecoveryCodes", func() error { return s.DeleteRecoveryCodes(ctx, u.ID) }},
			{"Attempts", func() error { _, err := s.Attempts(ctx, u.ID, mfa.FactorTOTP); return err }},
			{"RecordFailure", func() error { _, err := s.RecordFailure(ctx, u.ID, mfa.FactorTOTP, base, p); return err }},
			{"ResetAttempts", func() error { return s.ResetAttempts(ctx, u.ID, mfa.FactorTOTP) }},
		} {
			assert.ErrorIs(t, tc.call(), context.Canceled, "%s with a canceled context", tc.name)
		}
		// Nothing changed.
		enrollmentGone(t, s, "enrollment saved under a canceled context", newE.UserID, newE.ID)
		enrollmentIs(t, s, "enrollment completed under a canceled context", e)
		otpDeviceGone(t, s, "device completed under a canceled context", pending.ID)
		otpDeviceIs(t, s, "device changed under a canceled context", d)
		recoveryIs(t, s, "recovery codes changed under a canceled context", r)
		a, err := s.Attempts(t.Context(), u.ID, mfa.FactorTOTP)
		require.NoError(t, err, "Attempts")
		checkAttempts(t, "attempts changed under a canceled context", a, attempts)
	}},
}

// ---- concurrency ----

var mfaConcurrentTests = []mfaTest{
	{"AdvanceOTPStep", func(t *testing.T, s mfa.Store) { raceAdvanceOTPStep(t, s, s) }},
	{"UseRecoveryCode", func(t *testing.T, s mfa.Store) { raceUseRecoveryCode(t, s, s) }},
	{"CompleteOTPEnrollment", func(t *testing.T, s mfa.Store) { raceCompleteOTPEnrollment(t, s, s) }},
	{"RecordFailure", func(t *testing.T, s mfa.Store) { raceRecordFailure(t, s, s) }},
	{"DeviceLimit", func(t *testing.T, s mfa.Store) { raceDeviceLimit(t, s, s) }},
}

// pickMFA alternates between two handles.
func pickMFA(i int, a, b mfa.Store) mfa.Store {
	if i%2 == 0 {
		return a
	}
	return b
}

// race2 runs f(a) and f(b) at once, n rounds, and returns how many calls
// of each round succeeded; f returns (won, err), and err fails t.
func race2(t *testing.T, rounds int, a, b mfa.Store, f func(round int, s mfa.Store) (bool, error)) {
	t.Helper()
	for round := range rounds {
		var wins atomic.Int32
		parallel(t, 2, func(i int) error {
			won, err := f(round, pickMFA(i, a, b))
			if won {
				wins.Add(1)
			}
			return err
		})
		if w := wins.Load(); w != 1 {
			t.Fatalf("round %d: %d of 2 concurrent calls succeeded, want exactly 1", round, w)
		}
	}
}

func mfaSharedVisible(t *testing.T, a, b mfa.Store) {
	u := mustUser(t, a)
	d := fullOTPDevice(t, u.ID)
	mustSaveEnrollment(t, a, d)
	require.NoError(t, b.CompleteOTPEnrollment(t.Context(), d, 0), "CompleteOTPEnrollment through the other handle")
	otpDeviceIs(t, a, "device through the first handle", d)
	require.NoError(t, a.AdvanceOTPStep(t.Context(), u.ID, d.ID, d.LastStep+1, base), "AdvanceOTPStep")
	assert.ErrorIs(t, b.AdvanceOTPStep(t.Context(), u.ID, d.ID, d.LastStep+1, base), mfa.ErrReplay, "the same step through the other handle")
	r := mustRecoveryCodes(t, b, u.ID, 3)
	recoveryIs(t, a, "recovery codes through the other handle", r)
	_, err := a.RecordFailure(t.Context(), u.ID, mfa.FactorTOTP, base, mfa.LockPolicy{})
	require.NoError(t, err, "RecordFailure")
	got, err := b.Attempts(t.Context(), u.ID, mfa.FactorTOTP)
	require.NoError(t, err, "Attempts through the other handle")
	checkAttempts(t, "attempts through the other handle", got, mfa.Attempts{Failures: 1})
}

// raceAdvanceOTPStep: 50 rounds of two calls for the same step; exactly
// one is accepted, the other is a replay.
func raceAdvanceOTPStep(t *testing.T, a, b mfa.Store) {
	const rounds = 50
	u := mustUser(t, a)
	d := mustOTPDevice(t, a, u.ID)
	race2(t, rounds, a, b, func(round int, s mfa.Store) (bool, error) {
		err := s.AdvanceOTPStep(t.Context(), u.ID, d.ID, d.LastStep+int64(round)+1, base.Add(time.Duration(round)*time.Second))
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, mfa.ErrReplay):
			return false, nil
		}
		return false, fmt.Errorf("AdvanceOTPStep: %w", err)
	})
	got, err := a.OTPDevice(t.Context(), d.ID)
	require.NoError(t, err, "OTPDevice")
	assert.Equal(t, d.LastStep+rounds, got.LastStep, "LastStep after the races")
}

// raceUseRecoveryCode: each code of a set raced by two calls; exactly
// one uses it, the other is a replay; then many calls on one code.
func raceUseRecoveryCode(t *testing.T, a, b mfa.Store) {
	const codes = 20
	u := mustUser(t, a)
	r := mustRecoveryCodes(t, a, u.ID, codes+1)
	race2(t, codes, a, b, func(round int, s mfa.Store) (bool, error) {
		left, err := s.UseRecoveryCode(t.Context(), u.ID, r.ID, round, base)
		switch {
		case err == nil:
			if want := codes - round; left != want {
				return true, fmt.Errorf("UseRecoveryCode(%d) left %d, want %d", round, left, want)
			}
			return true, nil
		case errors.Is(err, mfa.ErrReplay):
			return false, nil
		}
		return false, fmt.Errorf("UseRecoveryCode: %w", err)
	})
	const n = 20
	var wins atomic.Int32
	parallel(t, n, func(i int) error {
		_, err := pickMFA(i, a, b).UseRecoveryCode(t.Context(), u.ID, r.ID, codes, base)
		switch {
		case err == nil:
			wins.Add(1)
			return nil
		case errors.Is(err, mfa.ErrReplay):
			return nil
		}
		return fmt.Errorf("UseRecoveryCode: %w", err)
	})
	assert.EqualValues(t, 1, wins.Load(), "concurrent UseRecoveryCode of one code by %d callers that succeeded", n)
	got, err := a.RecoveryCodes(t.Context(), u.ID)
	require.NoError(t, err, "RecoveryCodes")
	assert.Zero(t, got.Left(), "Left() after the races")
}

// raceCompleteOTPEnrollment: rounds of two calls completing one
// enrollment; exactly one stores the device, the other finds no
// enrollment.
func raceCompleteOTPEnrollment(t *testing.T, a, b mfa.Store) {
	const rounds = 20
	u := mustUser(t, a)
	devices := make([]*mfa.OTPDevice, rounds)
	for i := range devices {
		devices[i] = fullOTPDevice(t, u.ID)
		mustSaveEnrollment(t, a, devices[i])
	}
	race2(t, rounds, a, b, func(round int, s mfa.Store) (bool, error) {
		err := s.CompleteOTPEnrollment(t.Context(), devices[round], 100)
		switch {
		case err == nil:
			return true, nil
		case errors.Is(err, webauthn.ErrNotFound):
			return false, nil
		}
		return false, fmt.Errorf("CompleteOTPEnrollment: %w", err)
	})
	assert.Equal(t, rounds, countOTPDevices(t, a, u.ID), "devices after the races")
}

// raceRecordFailure: 30 concurrent failures count to 30, each call
// seeing a different count.
func raceRecordFailure(t *testing.T, a, b mfa.Store) {
	const n = 30
	u := mustUser(t, a)
	p := mfa.LockPolicy{Limit: 10, Base: time.Second, Max: time.Hour}
	now := base.Add(time.Minute)
	seen := make([]int, n)
	parallel(t, n, func(i int) error {
		got, err := pickMFA(i, a, b).RecordFailure(t.Context(), u.ID, mfa.FactorTOTP, now, p)
		if err != nil {
			return fmt.Errorf("RecordFailure: %w", err)
		}
		seen[i] = got.Failures
		if !timeEq(got.LockedUntil, p.Until(got.Failures, now)) {
			return fmt.Errorf("RecordFailure: %d failures locked until %v, want %v", got.Failures, got.LockedUntil, p.Until(got.Failures, now))
		}
		return nil
	})
	slices.Sort(seen)
	for i, f := range seen {
		if !assert.Equal(t, i+1, f, "sorted failure counts the calls returned") {
			break
		}
	}
	got, err := a.Attempts(t.Context(), u.ID, mfa.FactorTOTP)
	require.NoError(t, err, "Attempts")
	checkAttempts(t, "after the races", got, mfa.Attempts{Failures: n, LockedUntil: p.Until(n, now)})
}

// raceDeviceLimit: 24 concurrent adds of keys and TOTP devices for one
// user with limit 8; exactly 8 succeed, whatever their type.
func raceDeviceLimit(t *testing.T, a, b mfa.Store) {
	const n, limit = 24, 8
	u := mustUser(t, a)
	devices := make([]*mfa.OTPDevice, n)
	for i := 1; i < n; i += 2 {
		devices[i] = appDevice(t, u.ID)
		mustSaveEnrollment(t, a, devices[i])
	}
	var wins, limited atomic.Int32
	parallel(t, n, func(i int) error {
		s := pickMFA(i/2, a, b) // both types through both handles
		var err error
		if devices[i] == nil {
			err = s.AddCredential(t.Context(), fullCredential(t, u.ID), limit)
		} else {
			err = s.CompleteOTPEnrollment(t.Context(), devices[i], limit)
		}
		switch {
		case err == nil:
			wins.Add(1)
			return nil
		case errors.Is(err, webauthn.ErrLimit):
			limited.Add(1)
			return nil
		}
		return fmt.Errorf("adding device %d: %w", i, err)
	})
	assert.EqualValues(t, limit, wins.Load(), "concurrent adds with limit %d that succeeded", limit)
	assert.EqualValues(t, n-limit, limited.Load(), "concurrent adds with limit %d that hit it", limit)
	assert.Equal(t, limit, countDevices(t, a, u.ID), "devices of every type after the races")
	// Refused enrollments are still pending.
	for i := 1; i < n; i += 2 {
		if _, err := a.OTPDevice(t.Context(), devices[i].ID); errors.Is(err, webauthn.ErrNotFound) {
			_, err := a.OTPEnrollment(t.Context(), u.ID, devices[i].ID)
			assert.NoError(t, err, "enrollment %d refused at the limit", i)
		}
	}
}

// ---- secrets at rest ----

// Markers are the plaintexts [RunNoPlaintext] seals and hashes before it
// stores them; none may appear in the database in any encoding.
var (
	markerSeed       = []byte("FIDOKIT-MARKER-TOTP-SEED-7f3a")
	markerEnrollSeed = []byte("FIDOKIT-MARKER-ENROLL-SEED-91c")
	markerCodes      = []string{"FIDOKIT-MARKER-CODE-4d2e", "FIDOKIT-MARKER-CODE-b8a0"}
)

// RunNoPlaintext stores through s a TOTP device and a pending enrollment
// whose secrets it sealed (AES-256-GCM under a random key) from known
// plaintext markers, and a recovery set whose hashes it computed from
// marker codes, then fails t if dump — every byte of the database, such
// as the file of a SQLite store or every row of every table as text —
// holds a marker in plain, hex or base32 form. A store only ever sees
// sealed boxes and hashes; this guards against one that starts keeping
// a plaintext.
func RunNoPlaintext(t *testing.T, s mfa.Store, dump func(t *testing.T) []byte) {
	t.Helper()
	key := randBytes(t, 32)
	block, err := aes.NewCipher(key)
	require.NoError(t, err)
	aead, err := cipher.NewGCM(block)
	require.NoError(t, err)
	seal := func(secret []byte) mfa.Sealed {
		nonce := randBytes(t, aead.NonceSize())
		return mfa.Sealed{KeyID: "test", Box: aead.Seal(nonce, nonce, secret, nil)}
	}

	u := mustUser(t, s)
	d := fullOTPDevice(t, u.ID)
	d.Secret = seal(markerSeed)
	mustEnroll(t, s, d)
	pending := fullOTPDevice(t, u.ID)
	pending.Secret = seal(markerEnrollSeed)
	mustSaveEnrollment(t, s, pending)
	r := recoverySet(t, u.ID, 0)
	for _, code := range markerCodes {
		mac := hmac.New(sha256.New, r.Salt)
		mac.Write([]byte(code))
		r.Hashes = append(r.Hashes, mac.Sum(nil))
	}
	require.NoError(t, s.ReplaceRecoveryCodes(t.Context(), r), "ReplaceRecoveryCodes")
	_, err = s.UseRecoveryCode(t.Context(), u.ID, r.ID, 0, base)
	require.NoError(t, err, "UseRecoveryCode")
	require.NoError(t, s.AdvanceOTPStep(t.Context(), u.ID, d.ID, d.LastStep+1, base), "AdvanceOTPStep")

	raw := dump(t)
	require.NotEmpty(t, raw, "dump")
	// The dump must hold what was stored, or the check proves nothing.
	require.True(t, bytes.Contains(raw, d.Secret.Box) || bytes.Contains(bytes.ToLower(raw), []byte(hex.EncodeToString(d.Secret.Box))),
		"dump does not contain the stored sealed box, raw or hex")
	for _, m := range append([][]byte{markerSeed, markerEnrollSeed}, []byte(markerCodes[0]), []byte(markerCodes[1])) {
		for _, form := range []string{
			string(m),
			hex.EncodeToString(m),
			strings.ToUpper(hex.EncodeToString(m)),
			base32.StdEncoding.EncodeToString(m),
			base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(m),
			strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(m)),
		} {
			assert.False(t, bytes.Contains(raw, []byte(form)), "the database holds the plaintext marker %q as %q", m, form)
		}
	}
}

// ---- the account listing ----

var userListTests = []mfaTest{
	{"Empty", func(t *testing.T, s mfa.Store) {
		for _, after := range [][]byte{nil, {}, {0x00}, bytes.Repeat([]byte{0xff}, 64)} {
			got, err := s.Users(t.Context(), after, 10)
			require.NoError(t, err, "Users after %x", after)
			assert.NotNil(t, got, "Users must return an empty non-nil slice")
			assert.Empty(t, got, "Users after %x", after)
		}
	}},
	{"Cursor", func(t *testing.T, s mfa.Store) {
		var ids [][]byte
		want := map[string]*webauthn.User{}
		for i := range 11 {
			u := &webauthn.User{
				ID:          randBytes(t, 32),
				Name:        randName(t, "list"),
				DisplayName: fmt.Sprintf("User %d", i),
				Created:     base.Add(time.Duration(i) * time.Minute),
			}
			switch i { // bytewise means unsigned, shorter first on a shared prefix
			case 0:
				u.ID = []byte{0x00}
			case 1:
				u.ID = []byte{0x00, 0x00}
			case 2:
				u.ID[0] = 0xff
				u.ID[31] = 0x00 // not one of the next two's
			case 3, 4:
				u.ID = bytes.Clone(ids[2])
				u.ID[31] = byte(0x7f + i - 3) // 0x7f, 0x80
			case 5:
				u.ID = bytes.Repeat([]byte{0x80}, 64)
			}
			require.NoError(t, s.CreateUser(t.Context(), u), "CreateUser")
			ids = append(ids, u.ID)
			want[string(u.ID)] = u
		}
		slices.SortFunc(ids, bytes.Compare)
		for _, limit := range []int{1, 3, 10, 11, 100} {
			var got [][]byte
			var after []byte
			for page := 0; ; page++ {
				require.Less(t, page, 20, "limit %d: too many pages", limit)
				list, err := s.Users(t.Context(), after, limit)
				require.NoError(t, err, "Users")
				require.LessOrEqual(t, len(list), limit, "Users page size")
				if len(list) == 0 {
					break
				}
				for _, u := range list {
					got = append(got, u.ID)
				}
				after = list[len(list)-1].ID
			}
			assert.Equal(t, ids, got, "limit %d: every user once, in ID order", limit)
		}
		all, err := s.Users(t.Context(), nil, 0)
		require.NoError(t, err, "Users without a limit")
		require.Len(t, all, len(ids), "Users without a limit lists everyone")
		for _, u := range all {
			w := want[string(u.ID)]
			require.NotNil(t, w, "Users listed an unknown ID %x", u.ID)
			assert.Equal(t, w.Name, u.Name, "Name")
			assert.Equal(t, w.DisplayName, u.DisplayName, "DisplayName")
			assertTime(t, "Created", u.Created, w.Created)
		}
		// A cursor between IDs, one that is not an ID, and the last ID.
		mid := append(bytes.Clone(ids[5]), 0) // just after ids[5]
		list, err := s.Users(t.Context(), mid, 2)
		require.NoError(t, err, "Users")
		require.Len(t, list, 2, "Users after a cursor between IDs")
		assertBytes(t, "first after the cursor", list[0].ID, ids[6])
		list, err = s.Users(t.Context(), ids[len(ids)-1], 5)
		require.NoError(t, err, "Users")
		assert.Empty(t, list, "Users after the last ID")
		// The page is the caller's.
		list, err = s.Users(t.Context(), nil, 1)
		require.NoError(t, err, "Users")
		require.Len(t, list, 1)
		list[0].ID[0] ^= 0xff
		again, err := s.Users(t.Context(), nil, 1)
		require.NoError(t, err, "Users")
		assertBytes(t, "first ID after the caller changed its copy", again[0].ID, ids[0])
	}},
}
