package mfa_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/mfa"
)

// fuzzStack is one account with an app, a hardware token and recovery
// codes, and an attempt limit too high to reach, so that every input is
// judged on its own.
func fuzzStack(f *testing.F) (*stack, []byte, *phone, *mfa.RecoveryCodeSet) {
	s := newStack(f, mfa.NewMemoryStore(), newClock(), &stackOptions{hash: cheapHash, lock: mfa.LockPolicy{Limit: 1 << 30, Base: time.Second, Max: time.Second}})
	u := s.user(f, "fuzz@example.com")
	_, ph := s.enrollApp(f, u.ID, "Phone")
	set, err := s.m.GenerateRecoveryCodes(f.Context(), u.ID)
	require.NoError(f, err)
	return s, u.ID, ph, set
}

// snapshot is the account's stored state, minus attempt counters.
func snapshot(t *testing.T, s *stack, userID []byte) ([]*mfa.Device, int) {
	ds, err := s.m.Devices(t.Context(), userID)
	require.NoError(t, err)
	left, err := s.m.RecoveryCodesLeft(t.Context(), userID)
	require.NoError(t, err)
	return ds, left
}

// typed reports whether err is one of the errors a code check documents.
func typed(err error, allowed ...error) bool {
	for _, a := range allowed {
		if errors.Is(err, a) {
			return true
		}
	}
	return false
}

// FuzzVerifyTOTP feeds typed input to a TOTP sign-in: it passes only as
// the current code, fails with a documented error otherwise, and a failure
// changes no device.
func FuzzVerifyTOTP(f *testing.F) {
	s, userID, ph, _ := fuzzStack(f)
	s.nextStep()
	current := ph.code(s.clock.Now())
	for _, seed := range []string{current, "000000", "123 456", "12-34-56", "", "1234567", "abcdef", "１２３４５６", "\x00\x00\x00\x00\x00\x00", current + " "} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, code string) {
		before, left := snapshot(t, s, userID)
		v, err := s.m.VerifyTOTP(t.Context(), userID, code)
		after, leftAfter := snapshot(t, s, userID)
		assert.Equal(t, left, leftAfter)
		if err == nil {
			assert.Equal(t, mfa.FactorTOTP, v.Factor)
			s.nextStep() // the next input meets a fresh step
			return
		}
		assert.True(t, typed(err, mfa.ErrMalformedCode, mfa.ErrInvalidCode, mfa.ErrCodeReused), "untyped error %v", err)
		if len(code) > 3 {
			assert.NotContains(t, err.Error(), code, "an error never echoes the input")
		}
		assert.Equal(t, before, after, "a refused code changes no device")
	})
}

// FuzzVerifyRecoveryCode does the same for recovery codes: only one of the
// set's codes passes, once.
func FuzzVerifyRecoveryCode(f *testing.F) {
	s, userID, _, set := fuzzStack(f)
	for _, seed := range []string{set.Codes[0].Reveal(), "0000-0000-0000-0000", "k7qm 2xhd 9rtb w4ne", "", "UUUU-UUUU-UUUU-UUUU", "----------------", "K7QM2XHD9RTBW4NEK", "\xff\xfe"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, code string) {
		before, left := snapshot(t, s, userID)
		v, err := s.m.VerifyRecoveryCode(t.Context(), userID, code)
		after, leftAfter := snapshot(t, s, userID)
		assert.Equal(t, before, after)
		if err == nil {
			assert.Equal(t, left-1, v.RecoveryCodesLeft)
			assert.Equal(t, left-1, leftAfter)
			return
		}
		assert.Equal(t, left, leftAfter, "a refused code uses none up")
		assert.True(t, typed(err, mfa.ErrMalformedCode, mfa.ErrInvalidCode, mfa.ErrCodeReused, mfa.ErrNoRecoveryCodes), "untyped error %v", err)
		if len(code) > 3 {
			assert.NotContains(t, err.Error(), code)
		}
	})
}

// FuzzParseSecret feeds a typed hardware-token secret: either 128 bits or
// more of base32, or ErrInvalidSecret that does not echo it.
func FuzzParseSecret(f *testing.F) {
	for _, seed := range []string{"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP", "jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp", "JBSWY3DPEHPK3PXP", "====", "", "0189", "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PX="} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, typed string) {
		seed, err := mfa.ParseSecret(typed)
		if err != nil {
			assert.ErrorIs(t, err, mfa.ErrInvalidSecret)
			if len(typed) > 3 {
				assert.NotContains(t, err.Error(), typed)
			}
			return
		}
		assert.GreaterOrEqual(t, len(seed), 16)
	})
}
