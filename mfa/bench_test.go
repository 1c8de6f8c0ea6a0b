package mfa_test

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/binary"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/crypto/argon2"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/webauthn/webauthntest"
)

// Each benchmark reports x-floor: its time per operation over the time of
// the cryptography the operation cannot do without, measured in the same
// run (absolute times on shared machines are noise; ratios carry over).

// floorNs times f over n runs and returns nanoseconds per run.
func floorNs(n int, f func()) float64 {
	f() // warm up
	start := time.Now()
	for range n {
		f()
	}
	return float64(time.Since(start).Nanoseconds()) / float64(n)
}

// totpFloor is what one TOTP check must compute: open the sealed seed
// (AES-256-GCM over 20 bytes) and HMAC-SHA-1 three time steps (the ±1
// window).
func totpFloor() func() {
	key := make([]byte, 32)
	seed := make([]byte, 20)
	rand.Read(key)
	rand.Read(seed)
	block, _ := aes.NewCipher(key)
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, aead.NonceSize())
	box := aead.Seal(nil, nonce, seed, []byte("context"))
	var counter [8]byte
	return func() {
		s, err := aead.Open(nil, nonce, box, []byte("context"))
		if err != nil {
			panic(err)
		}
		for i := range 3 {
			binary.BigEndian.PutUint64(counter[:], uint64(i))
			m := hmac.New(sha1.New, s)
			m.Write(counter[:])
			m.Sum(nil)
		}
	}
}

func reportFloor(b *testing.B, start time.Time, floor float64) {
	per := float64(time.Since(start).Nanoseconds()) / float64(b.N)
	b.ReportMetric(per/floor, "x-floor")
}

// BenchmarkVerifyTOTP is a TOTP second factor per store: read the
// account's devices, check the code, advance the step by compare-and-set,
// reset the attempt count.
func BenchmarkVerifyTOTP(b *testing.B) {
	for _, kind := range storeKinds() {
		b.Run(kind.name, func(b *testing.B) {
			s := newStack(b, kind.new(b), newClock(), nil)
			u := s.user(b, "bench@example.com")
			_, ph := s.enrollApp(b, u.ID, "Phone")
			codes := make([]string, b.N)
			t0 := s.clock.Now()
			for i := range codes {
				codes[i] = ph.code(t0.Add(time.Duration(i+1) * 30 * time.Second))
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for i := range b.N {
				s.nextStep()
				_, err := s.m.VerifyTOTP(b.Context(), u.ID, codes[i])
				require.NoError(b, err)
			}
			b.StopTimer()
			reportFloor(b, start, floorNs(2000, totpFloor()))
		})
	}
}

// BenchmarkVerifyRecoveryCode is a recovery code checked at the default
// hash cost (mfa.DefaultRecoveryHash: argon2id, 1 pass over 8 MiB),
// against the floor of one such hash: the check computes one per attempt
// whatever the number of codes.
func BenchmarkVerifyRecoveryCode(b *testing.B) {
	s := newStack(b, mfa.NewMemoryStore(), newClock(), &stackOptions{hash: mfa.DefaultRecoveryHash})
	u := s.user(b, "bench@example.com")
	var set *mfa.RecoveryCodeSet
	b.ReportAllocs()
	b.ResetTimer()
	var spent time.Duration
	for i := range b.N {
		if i%mfa.RecoveryCodeCount == 0 {
			var err error
			set, err = s.m.GenerateRecoveryCodes(b.Context(), u.ID)
			require.NoError(b, err)
		}
		start := time.Now()
		_, err := s.m.VerifyRecoveryCode(b.Context(), u.ID, set.Codes[i%mfa.RecoveryCodeCount].Reveal())
		require.NoError(b, err)
		spent += time.Since(start)
	}
	b.StopTimer()
	h := mfa.DefaultRecoveryHash
	salt := make([]byte, 16)
	floor := floorNs(5, func() { argon2.IDKey([]byte("K7QM2XHD9RTBW4NE"), salt, h.Time, h.MemoryKiB, h.Threads, 32) })
	b.ReportMetric(float64(spent.Nanoseconds())/float64(b.N)/floor, "x-floor")
}

// BenchmarkSecondFactorKey is the security-key second factor per store:
// begin (a challenge stored) and finish (one P-256 verify, the sign count
// compare-and-set), the virtual key's signing outside the timer.
func BenchmarkSecondFactorKey(b *testing.B) {
	for _, kind := range storeKinds() {
		b.Run(kind.name, func(b *testing.B) {
			s := newStack(b, kind.new(b), newClock(), nil)
			u := s.user(b, "bench@example.com")
			key := webauthntest.NewClient(b, webauthntest.Options{})
			s.registerKey(b, key, u.ID, "Key")
			b.ReportAllocs()
			b.ResetTimer()
			var spent time.Duration
			for range b.N {
				start := time.Now()
				begin, err := s.m.BeginSecurityKey(b.Context(), u.ID)
				require.NoError(b, err)
				spent += time.Since(start)
				resp, err := key.Get(b.Context(), begin.Options)
				require.NoError(b, err)
				start = time.Now()
				_, err = s.m.FinishSecurityKey(b.Context(), u.ID, begin.ChallengeID, resp)
				require.NoError(b, err)
				spent += time.Since(start)
			}
			b.StopTimer()
			b.ReportMetric(float64(spent.Nanoseconds())/float64(b.N)/floorNs(200, p256VerifyFloor()), "x-floor")
		})
	}
}

// p256VerifyFloor is the one signature check a security-key sign-in
// needs.
func p256VerifyFloor() func() {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	digest := sha256.Sum256([]byte("authenticatorData || SHA-256(clientDataJSON)"))
	sig, _ := ecdsa.SignASN1(rand.Reader, priv, digest[:])
	return func() {
		if !ecdsa.VerifyASN1(&priv.PublicKey, digest[:], sig) {
			panic("signature does not verify")
		}
	}
}
