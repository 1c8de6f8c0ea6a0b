package mfa_test

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/webauthn"
	"github.com/fidokit/fidokit/webauthn/webauthntest"
)

// The QR code of an app enrollment decodes, with an independent decoder
// (zbarimg from Debian's zbar-tools), to exactly the otpauth URI, and that
// URI carries what every app needs.
func TestAppQRCodeDecodes(t *testing.T) {
	zbarimg := needTool(t, "zbarimg", "zbar-tools")
	s := newStack(t, mfa.NewMemoryStore(), newClock(), nil)
	u := s.user(t, "alice@example.com")
	e, err := s.m.BeginApp(t.Context(), u.ID, "Phone")
	require.NoError(t, err)

	png := filepath.Join(t.TempDir(), "qr.png")
	require.NoError(t, os.WriteFile(png, e.QR, 0o600))
	out, err := exec.Command(zbarimg, "--quiet", "--raw", png).Output()
	require.NoError(t, err)
	decoded := strings.TrimRight(string(out), "\n")
	assert.Equal(t, e.URI.Reveal(), decoded)

	assert.True(t, strings.HasPrefix(decoded, "otpauth://totp/fidokit%20test:alice@example.com?"), decoded)
	ph := scan(t, decoded)
	assert.Equal(t, "fidokit test", ph.key.Issuer())
	assert.Equal(t, "alice@example.com", ph.key.AccountName())
	assert.Equal(t, "SHA1", ph.key.Algorithm().String())
	assert.Equal(t, 6, ph.key.Digits().Length())
	assert.EqualValues(t, 30, ph.key.Period())
	assert.Len(t, strings.ReplaceAll(e.Secret.Reveal(), " ", ""), 32, "160 bits in base32")
	assert.Equal(t, strings.ReplaceAll(e.Secret.Reveal(), " ", ""), ph.key.Secret())
	assert.Regexp(t, `^([A-Z2-7]{4} ){7}[A-Z2-7]{4}$`, e.Secret.Reveal())
}

func TestAppEnrollmentRefusals(t *testing.T) {
	ctx := t.Context()
	s := newStack(t, mfa.NewMemoryStore(), newClock(), nil)
	u := s.user(t, "bob@example.com")
	e, err := s.m.BeginApp(ctx, u.ID, "Phone")
	require.NoError(t, err)
	ph := scan(t, e.URI.Reveal())
	other, err := s.m.BeginApp(ctx, u.ID, "Other phone")
	require.NoError(t, err)
	otherPhone := scan(t, other.URI.Reveal())
	now := s.clock.Now()
	prev, cur, next := ph.code(now.Add(-30*time.Second)), ph.code(now), ph.code(now.Add(30*time.Second))

	for _, tc := range []struct {
		name         string
		code1, code2 string
		want         error
	}{
		{"one code", cur, "", mfa.ErrMalformedCode},
		{"the same code twice", cur, cur, mfa.ErrNotConsecutive},
		{"not consecutive", ph.code(now.Add(-60 * time.Second)), cur, mfa.ErrNotConsecutive},
		{"in the wrong order", cur, prev, mfa.ErrNotConsecutive},
		{"from another secret", otherPhone.code(now.Add(-30 * time.Second)), otherPhone.code(now), mfa.ErrInvalidCode},
		{"one from another secret", prev, otherPhone.code(now), mfa.ErrInvalidCode},
		{"too old", ph.code(now.Add(-120 * time.Second)), ph.code(now.Add(-90 * time.Second)), mfa.ErrInvalidCode},
		{"letters", "abcdef", cur, mfa.ErrMalformedCode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.m.FinishEnrollment(ctx, u.ID, e.ID, tc.code1, tc.code2)
			assert.ErrorIs(t, err, tc.want)
			ds, err := s.m.Devices(ctx, u.ID)
			require.NoError(t, err)
			assert.Empty(t, ds, "a refused enrollment stores nothing")
		})
	}

	t.Run("another account's enrollment", func(t *testing.T) {
		eve := s.user(t, "eve@example.com")
		_, err := s.m.FinishEnrollment(ctx, eve.ID, e.ID, prev, cur)
		assert.ErrorIs(t, err, mfa.ErrUnknownEnrollment)
	})

	// The clock may be one step either way: the person's second code can
	// be the next one.
	d, err := s.m.FinishEnrollment(ctx, u.ID, e.ID, cur, next)
	require.NoError(t, err)
	assert.Equal(t, mfa.AuthenticatorApp, d.Type)
	assert.Equal(t, "Phone", d.Name)

	t.Run("completed once", func(t *testing.T) {
		_, err := s.m.FinishEnrollment(ctx, u.ID, e.ID, cur, next)
		assert.ErrorIs(t, err, mfa.ErrUnknownEnrollment)
	})
	t.Run("enrollment codes do not sign in", func(t *testing.T) {
		_, err := s.m.VerifyTOTP(ctx, u.ID, next)
		assert.ErrorIs(t, err, mfa.ErrCodeReused)
		_, err = s.m.VerifyTOTP(ctx, u.ID, cur)
		assert.ErrorIs(t, err, mfa.ErrCodeReused)
	})
	t.Run("expired", func(t *testing.T) {
		e, err := s.m.BeginApp(ctx, u.ID, "Late phone")
		require.NoError(t, err)
		ph := scan(t, e.URI.Reveal())
		s.clock.Add(mfa.DefaultEnrollmentTimeout)
		now := s.clock.Now()
		_, err = s.m.FinishEnrollment(ctx, u.ID, e.ID, ph.code(now.Add(-30*time.Second)), ph.code(now))
		assert.ErrorIs(t, err, mfa.ErrEnrollmentExpired)
		n, err := s.m.PurgeEnrollments(ctx)
		require.NoError(t, err)
		assert.Equal(t, 2, n, "the late one and the other phone's")
		_, err = s.m.FinishEnrollment(ctx, u.ID, e.ID, ph.code(now.Add(-30*time.Second)), ph.code(now))
		assert.ErrorIs(t, err, mfa.ErrUnknownEnrollment)
	})
}

func TestTOTPSignIn(t *testing.T) {
	ctx := t.Context()
	s := newStack(t, mfa.NewMemoryStore(), newClock(), nil)
	u := s.user(t, "carol@example.com")

	_, err := s.m.VerifyTOTP(ctx, u.ID, "123456")
	assert.ErrorIs(t, err, mfa.ErrNotEnrolled)

	d, ph := s.enrollApp(t, u.ID, "Phone")
	s.nextStep()
	code := ph.code(s.clock.Now())
	v, err := s.m.VerifyTOTP(ctx, u.ID, code[:3]+" "+code[3:])
	require.NoError(t, err)
	assert.Equal(t, mfa.FactorTOTP, v.Factor)
	assert.Equal(t, d.ID, v.Device.ID)
	assert.Equal(t, s.clock.Now(), v.At)
	assert.False(t, v.PhishingResistant())

	_, err = s.m.VerifyTOTP(ctx, u.ID, code)
	assert.ErrorIs(t, err, mfa.ErrCodeReused, "a time step is accepted once")
	assert.ErrorIs(t, err, mfa.ErrReplay)

	// One step of skew either way passes; two do not.
	s.nextStep()
	s.nextStep()
	now := s.clock.Now()
	_, err = s.m.VerifyTOTP(ctx, u.ID, ph.code(now.Add(-60*time.Second)))
	assert.ErrorIs(t, err, mfa.ErrInvalidCode)
	_, err = s.m.VerifyTOTP(ctx, u.ID, ph.code(now.Add(30*time.Second)))
	require.NoError(t, err, "a phone one step ahead")
	_, err = s.m.VerifyTOTP(ctx, u.ID, ph.code(now))
	assert.ErrorIs(t, err, mfa.ErrCodeReused, "an earlier step after a later one is a replay")

	got, err := s.m.Device(ctx, u.ID, d.ID)
	require.NoError(t, err)
	assert.Equal(t, now, got.LastUsed)
}

func TestTOTPLockout(t *testing.T) {
	ctx := t.Context()
	s := newStack(t, mfa.NewMemoryStore(), newClock(), nil)
	u := s.user(t, "dave@example.com")
	_, ph := s.enrollApp(t, u.ID, "Phone")
	s.nextStep()
	right := ph.code(s.clock.Now())
	wrong := "000000"
	if wrong == right {
		wrong = "111111"
	}
	for i := 1; i < 5; i++ {
		_, err := s.m.VerifyTOTP(ctx, u.ID, wrong)
		require.ErrorIs(t, err, mfa.ErrInvalidCode)
		require.NotErrorIs(t, err, mfa.ErrLocked, "failure %d", i)
	}
	_, err := s.m.VerifyTOTP(ctx, u.ID, wrong)
	assert.ErrorIs(t, err, mfa.ErrInvalidCode)
	var le *mfa.LockedError
	require.ErrorAs(t, err, &le, "the fifth wrong code locks")
	assert.Equal(t, mfa.FactorTOTP, le.Factor)
	assert.Equal(t, s.clock.Now().Add(time.Minute), le.Until)

	_, err = s.m.VerifyTOTP(ctx, u.ID, right)
	require.ErrorAs(t, err, &le, "even the right code waits")
	assert.Contains(t, err.Error(), "until")

	// Recovery codes are another factor, with their own count.
	_, err = s.m.GenerateRecoveryCodes(ctx, u.ID)
	require.NoError(t, err)
	_, err = s.m.VerifyRecoveryCode(ctx, u.ID, "0000-0000-0000-0000")
	assert.ErrorIs(t, err, mfa.ErrInvalidCode)
	assert.NotErrorIs(t, err, mfa.ErrLocked)

	s.clock.Add(time.Minute)
	_, err = s.m.VerifyTOTP(ctx, u.ID, wrong)
	require.ErrorAs(t, err, &le, "the sixth failure locks for longer")
	assert.Equal(t, s.clock.Now().Add(2*time.Minute), le.Until)

	s.clock.Add(2 * time.Minute)
	_, err = s.m.VerifyTOTP(ctx, u.ID, ph.code(s.clock.Now()))
	require.NoError(t, err)
	a, err := s.m.Attempts(ctx, u.ID, mfa.FactorTOTP)
	require.NoError(t, err)
	assert.Zero(t, a.Failures, "a success resets the count")
}

func TestRecoveryCodes(t *testing.T) {
	ctx := t.Context()
	s := newStack(t, mfa.NewMemoryStore(), newClock(), nil)
	u := s.user(t, "erin@example.com")

	_, err := s.m.VerifyRecoveryCode(ctx, u.ID, "K7QM-2XHD-9RTB-W4NE")
	assert.ErrorIs(t, err, mfa.ErrNoRecoveryCodes)

	set, err := s.m.GenerateRecoveryCodes(ctx, u.ID)
	require.NoError(t, err)
	require.Len(t, set.Codes, mfa.RecoveryCodeCount)
	left, err := s.m.RecoveryCodesLeft(ctx, u.ID)
	require.NoError(t, err)
	assert.Equal(t, 10, left)

	for i, c := range set.Codes[:4] {
		typed := c.Reveal()
		if i%2 == 1 {
			typed = strings.ToLower(strings.ReplaceAll(typed, "-", " "))
		}
		v, err := s.m.VerifyRecoveryCode(ctx, u.ID, typed)
		require.NoError(t, err)
		assert.Equal(t, mfa.FactorRecoveryCode, v.Factor)
		assert.Equal(t, 9-i, v.RecoveryCodesLeft)
		_, err = s.m.VerifyRecoveryCode(ctx, u.ID, c.Reveal())
		assert.ErrorIs(t, err, mfa.ErrCodeReused, "code %d works once", i)
	}

	fresh, err := s.m.GenerateRecoveryCodes(ctx, u.ID)
	require.NoError(t, err)
	for _, c := range set.Codes[4:] {
		_, err := s.m.VerifyRecoveryCode(ctx, u.ID, c.Reveal())
		assert.ErrorIs(t, err, mfa.ErrInvalidCode, "a new set voids every old code")
		require.NoError(t, s.m.Unlock(ctx, u.ID, mfa.FactorRecoveryCode))
	}
	for i, c := range fresh.Codes {
		v, err := s.m.VerifyRecoveryCode(ctx, u.ID, c.Reveal())
		require.NoError(t, err)
		assert.Equal(t, 9-i, v.RecoveryCodesLeft)
	}
	_, err = s.m.VerifyRecoveryCode(ctx, u.ID, fresh.Codes[0].Reveal())
	assert.ErrorIs(t, err, mfa.ErrCodeReused)
	_, err = s.m.VerifyRecoveryCode(ctx, u.ID, set.Codes[9].Reveal())
	assert.ErrorIs(t, err, mfa.ErrNoRecoveryCodes, "once all are used, any other code meets an empty set")
	f, err := s.m.Factors(ctx, u.ID)
	require.NoError(t, err)
	assert.Zero(t, f.RecoveryCodes)
}

func TestHardwareToken(t *testing.T) {
	ctx := t.Context()
	s := newStack(t, mfa.NewMemoryStore(), newClock(), nil)
	u := s.user(t, "frank@example.com")
	secret := "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
	tok := scan(t, "otpauth://totp/token?secret="+secret)
	// The fob's clock runs four steps fast.
	fob := func(at time.Time) string { return tok.code(at.Add(4 * 30 * time.Second)) }

	e, err := s.m.BeginToken(ctx, u.ID, mfa.Token{Serial: "GALT10001234", Secret: strings.ToLower(secret)})
	require.NoError(t, err)
	assert.Equal(t, mfa.HardwareToken, e.Type)
	assert.Equal(t, "Hardware token GALT10001234", e.Name)
	assert.True(t, e.Secret.IsZero() && e.URI.IsZero() && e.QR == nil, "a token's seed is never shown back")

	now := s.clock.Now()
	d, err := s.m.FinishEnrollment(ctx, u.ID, e.ID, fob(now.Add(-30*time.Second)), fob(now))
	require.NoError(t, err, "a drifted token enrolls within the resync window")
	assert.Equal(t, "GALT10001234", d.Serial)

	s.nextStep()
	_, err = s.m.VerifyTOTP(ctx, u.ID, fob(s.clock.Now()))
	require.NoError(t, err, "sign-in looks around the recorded drift")

	t.Run("serial taken", func(t *testing.T) {
		g := s.user(t, "grace@example.com")
		e, err := s.m.BeginToken(ctx, g.ID, mfa.Token{Serial: "GALT10001234", Secret: secret})
		require.NoError(t, err)
		now := s.clock.Now()
		_, err = s.m.FinishEnrollment(ctx, g.ID, e.ID, fob(now.Add(-30*time.Second)), fob(now))
		assert.ErrorIs(t, err, mfa.ErrSerialTaken)
		assert.ErrorIs(t, err, webauthn.ErrExists)
	})
	t.Run("resync", func(t *testing.T) {
		// Later the fob drifts to nine steps fast; codes stop passing.
		fob9 := func(at time.Time) string { return tok.code(at.Add(9 * 30 * time.Second)) }
		s.nextStep()
		s.nextStep()
		s.nextStep()
		now := s.clock.Now()
		_, err := s.m.VerifyTOTP(ctx, u.ID, fob9(now))
		assert.ErrorIs(t, err, mfa.ErrInvalidCode)
		d2, err := s.m.Resync(ctx, u.ID, d.ID, fob9(now.Add(-30*time.Second)), fob9(now))
		require.NoError(t, err)
		assert.Equal(t, d.ID, d2.ID)
		s.nextStep()
		_, err = s.m.VerifyTOTP(ctx, u.ID, fob9(s.clock.Now()))
		assert.NoError(t, err)
	})
	t.Run("bad input", func(t *testing.T) {
		for _, tc := range []struct {
			tok  mfa.Token
			want error
		}{
			{mfa.Token{Secret: secret}, mfa.ErrInvalidRequest},
			{mfa.Token{Serial: "X1"}, mfa.ErrInvalidRequest},
			{mfa.Token{Serial: "X1", Secret: "JBSWY3DPEHPK3PXP"}, mfa.ErrInvalidSecret},
			{mfa.Token{Serial: "X1", Secret: "not base 32!"}, mfa.ErrInvalidSecret},
			{mfa.Token{Serial: "X1", Secret: secret, Digits: 4}, mfa.ErrNotTOTP},
			{mfa.Token{Serial: "X1", Secret: secret, SeedFile: []byte("<x/>")}, mfa.ErrInvalidRequest},
			{mfa.Token{Serial: "X\x001", Secret: secret}, mfa.ErrInvalidRequest},
		} {
			_, err := s.m.BeginToken(ctx, u.ID, tc.tok)
			assert.ErrorIs(t, err, tc.want, "%+v", tc.tok.Serial)
			if err != nil {
				assert.NotContains(t, err.Error(), secret)
			}
		}
	})
}

func TestDeviceLifecycle(t *testing.T) {
	ctx := t.Context()
	s := newStack(t, mfa.NewMemoryStore(), newClock(), nil)
	u := s.user(t, "heidi@example.com")
	key := webauthntest.NewClient(t, webauthntest.Options{})
	kd := s.registerKey(t, key, u.ID, "Blue key")
	s.clock.Add(time.Second)
	ad, ph := s.enrollApp(t, u.ID, "Phone")

	ds, err := s.m.Devices(ctx, u.ID)
	require.NoError(t, err)
	require.Len(t, ds, 2)
	assert.Equal(t, []mfa.DeviceType{mfa.SecurityKey, mfa.AuthenticatorApp}, []mfa.DeviceType{ds[0].Type, ds[1].Type})
	assert.Equal(t, kd.ID, ds[0].ID)
	assert.NotNil(t, ds[0].Key, "a key device is the relying party's credential")
	f, err := s.m.Factors(ctx, u.ID)
	require.NoError(t, err)
	assert.True(t, f.Enabled())
	assert.Equal(t, mfa.Factors{SecurityKeys: 1, Apps: 1}, *f)

	for _, d := range []*mfa.Device{kd, ad} {
		t.Run(string(d.Type), func(t *testing.T) {
			require.NoError(t, s.m.Rename(ctx, u.ID, d.ID, "Renamed "+string(d.Type)))
			got, err := s.m.Device(ctx, u.ID, d.ID)
			require.NoError(t, err)
			assert.Equal(t, "Renamed "+string(d.Type), got.Name)
			assert.ErrorIs(t, s.m.Rename(ctx, u.ID, d.ID, ""), mfa.ErrInvalidRequest)

			require.NoError(t, s.m.Deactivate(ctx, u.ID, d.ID))
			got, err = s.m.Device(ctx, u.ID, d.ID)
			require.NoError(t, err)
			assert.False(t, got.Active())
			require.NoError(t, s.m.Deactivate(ctx, u.ID, d.ID), "deactivating twice changes nothing")
			require.NoError(t, s.m.Reactivate(ctx, u.ID, d.ID))
			got, err = s.m.Device(ctx, u.ID, d.ID)
			require.NoError(t, err)
			assert.True(t, got.Active())

			other := s.user(t, "not-heidi-"+string(d.Type)+"@example.com")
			assert.ErrorIs(t, s.m.Deactivate(ctx, other.ID, d.ID), mfa.ErrUnknownDevice, "another account's device is no device")
			assert.ErrorIs(t, s.m.Delete(ctx, other.ID, d.ID), mfa.ErrUnknownDevice)
		})
	}

	t.Run("a deactivated device cannot be used", func(t *testing.T) {
		require.NoError(t, s.m.Deactivate(ctx, u.ID, ad.ID))
		s.nextStep()
		_, err := s.m.VerifyTOTP(ctx, u.ID, ph.code(s.clock.Now()))
		assert.ErrorIs(t, err, mfa.ErrNotEnrolled)
		require.NoError(t, s.m.Deactivate(ctx, u.ID, kd.ID))
		_, err = s.signInWithKey(ctx, key, u.ID)
		assert.ErrorIs(t, err, webauthn.ErrNoCredentials)
		f, err := s.m.Factors(ctx, u.ID)
		require.NoError(t, err)
		assert.False(t, f.Enabled())

		require.NoError(t, s.m.Reactivate(ctx, u.ID, kd.ID))
		v, err := s.signInWithKey(ctx, key, u.ID)
		require.NoError(t, err)
		assert.True(t, v.PhishingResistant())
		assert.Equal(t, kd.ID, v.Device.ID)
	})
	t.Run("delete", func(t *testing.T) {
		require.NoError(t, s.m.Delete(ctx, u.ID, ad.ID))
		require.NoError(t, s.m.Delete(ctx, u.ID, kd.ID))
		assert.ErrorIs(t, s.m.Delete(ctx, u.ID, kd.ID), mfa.ErrUnknownDevice)
		ds, err := s.m.Devices(ctx, u.ID)
		require.NoError(t, err)
		assert.Empty(t, ds)
	})
	t.Run("bad IDs", func(t *testing.T) {
		for _, id := range []string{"", "key_", "otp_AAAA", "xyz_AAAA", "otp_!!!!", strings.Repeat("k", 5000)} {
			err := s.m.Deactivate(ctx, u.ID, id)
			assert.True(t, errors.Is(err, mfa.ErrUnknownDevice) || errors.Is(err, mfa.ErrInvalidRequest), "%q: %v", id, err)
		}
	})
}

// The device limit counts every type, whichever is added last.
func TestDeviceLimit(t *testing.T) {
	ctx := t.Context()
	s := newStack(t, mfa.NewMemoryStore(), newClock(), &stackOptions{hash: cheapHash, maxDevices: 3})
	u := s.user(t, "ivan@example.com")
	key := webauthntest.NewClient(t, webauthntest.Options{})
	s.registerKey(t, key, u.ID, "Key")
	s.enrollApp(t, u.ID, "Phone 1")
	// Both begun before either finishes: the store's check decides.
	e, err := s.m.BeginApp(ctx, u.ID, "Phone 3")
	require.NoError(t, err)
	s.enrollApp(t, u.ID, "Phone 2")

	_, err = s.m.BeginApp(ctx, u.ID, "Phone 4")
	assert.ErrorIs(t, err, mfa.ErrDeviceLimit)
	_, err = s.m.BeginKeyRegistration(ctx, u.ID)
	assert.ErrorIs(t, err, mfa.ErrDeviceLimit)
	ph := scan(t, e.URI.Reveal())
	now := s.clock.Now()
	_, err = s.m.FinishEnrollment(ctx, u.ID, e.ID, ph.code(now.Add(-30*time.Second)), ph.code(now))
	assert.ErrorIs(t, err, mfa.ErrDeviceLimit)
	assert.ErrorIs(t, err, webauthn.ErrLimit)

	// A key begun under the limit is refused at finish when an app
	// filled the last place meanwhile.
	v := s.user(t, "judy@example.com")
	s.registerKey(t, key, v.ID, "Key")
	s.enrollApp(t, v.ID, "Phone 1")
	b, err := s.m.BeginKeyRegistration(ctx, v.ID)
	require.NoError(t, err)
	s.enrollApp(t, v.ID, "Phone 2")
	key2 := webauthntest.NewClient(t, webauthntest.Options{})
	resp, err := key2.Create(ctx, b.Options)
	require.NoError(t, err)
	_, err = s.m.FinishKeyRegistration(ctx, b.ChallengeID, resp, "Key 2")
	assert.ErrorIs(t, err, mfa.ErrDeviceLimit)
	ds, err := s.m.Devices(ctx, v.ID)
	require.NoError(t, err)
	assert.Len(t, ds, 3)
}

func TestRotateKeys(t *testing.T) {
	ctx := t.Context()
	store := mfa.NewMemoryStore()
	c := newClock()
	s := newStack(t, store, c, nil)
	u := s.user(t, "ken@example.com")
	d, ph := s.enrollApp(t, u.ID, "Phone")
	_, _ = s.enrollApp(t, u.ID, "Phone 2")

	newKey := bytes.Repeat([]byte{7}, 32)
	both, err := mfa.NewKeyring("test-2", map[string][]byte{"test-1": testKey, "test-2": newKey})
	require.NoError(t, err)
	m2, err := mfa.New(mfa.Config{RelyingParty: s.rp, Keys: both, Now: c.Now, RecoveryHash: cheapHash})
	require.NoError(t, err)
	n, err := m2.RotateKeys(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	n, err = m2.RotateKeys(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "nothing left under the old key")

	onlyNew, err := mfa.NewKeyring("test-2", map[string][]byte{"test-2": newKey})
	require.NoError(t, err)
	m3, err := mfa.New(mfa.Config{RelyingParty: s.rp, Keys: onlyNew, Now: c.Now, RecoveryHash: cheapHash})
	require.NoError(t, err)
	c.Add(30 * time.Second)
	v, err := m3.VerifyTOTP(ctx, u.ID, ph.code(c.Now()))
	require.NoError(t, err, "the old key can go once rotation is done")
	assert.Equal(t, d.ID, v.Device.ID)

	c.Add(30 * time.Second)
	_, err = s.m.VerifyTOTP(ctx, u.ID, ph.code(c.Now()))
	assert.ErrorIs(t, err, mfa.ErrSealed, "a keyring without the key cannot open the seed")
	assert.NotContains(t, err.Error(), string(newKey))
}

func TestNewRejects(t *testing.T) {
	rp, err := webauthn.New(webauthn.Config{RPID: testRPID, Origins: []string{testOrigin}, Store: webauthn.NewMemoryStore()})
	require.NoError(t, err)
	keys, err := mfa.NewKeyring("k", map[string][]byte{"k": testKey})
	require.NoError(t, err)
	_, err = mfa.New(mfa.Config{RelyingParty: rp, Keys: keys})
	assert.ErrorContains(t, err, "does not implement mfa.Store", "a store without MFA tables would split the device list")
	rp2, err := webauthn.New(webauthn.Config{RPID: testRPID, Origins: []string{testOrigin}, Store: mfa.NewMemoryStore()})
	require.NoError(t, err)
	_, err = mfa.New(mfa.Config{RelyingParty: rp2})
	assert.Error(t, err)
	_, err = mfa.New(mfa.Config{RelyingParty: rp2, Keys: keys, Issuer: "a:b"})
	assert.Error(t, err)
	_, err = mfa.New(mfa.Config{RelyingParty: rp2, Keys: keys})
	assert.NoError(t, err)
}
