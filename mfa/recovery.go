package mfa

import (
	"crypto/subtle"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Recovery codes are NIST SP 800-63B §5.1.2 look-up secrets.
const (
	// RecoveryCodeCount is how many codes a set holds.
	RecoveryCodeCount = 10
	// recoveryCodeLen is a code's length in symbols of recoveryAlphabet:
	// 16 × 5 = 80 bits from crypto/rand (SP 800-63B asks for at least 64).
	recoveryCodeLen = 16
	// recoverySaltLen is the set's salt (SP 800-63B §5.1.1.2: at least 32
	// bits).
	recoverySaltLen = 16
	recoveryHashLen = 32
)

// recoveryAlphabet is Crockford's base32: digits and capitals without I,
// L, O and U, so that no two symbols look alike. Typed input maps I and L
// to 1 and O to 0.
const recoveryAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// RecoveryHash is the cost of the argon2id hash recovery codes are stored
// under (RFC 9106). SP 800-63B §5.1.1.2 asks for a salted key-derivation
// function for look-up secrets of under 112 bits; a code's 80 bits already
// put an offline search out of reach, so the cost only has to be honest,
// not high, and it is paid once per attempt (one salt per set, compared
// against every unused code).
type RecoveryHash struct {
	// Time is argon2id's number of passes.
	Time uint32
	// MemoryKiB is its memory in KiB.
	MemoryKiB uint32
	// Threads is its parallelism.
	Threads uint8
}

// DefaultRecoveryHash is the cost when [Config.RecoveryHash] is zero:
// argon2id with one pass over 8 MiB and one thread, about 10 to 20 ms of
// one core per attempt. That is below OWASP's settings for passwords on
// purpose: a person chooses a password, while a recovery code is 80
// random bits, and the attempt limit bounds online guessing; the hash
// only has to make a stolen table worthless, which 2^80 guesses do.
var DefaultRecoveryHash = RecoveryHash{Time: 1, MemoryKiB: 8 * 1024, Threads: 1}

func (h RecoveryHash) sum(code string, salt []byte) []byte {
	return argon2.IDKey([]byte(code), salt, h.Time, h.MemoryKiB, h.Threads, recoveryHashLen)
}

// newRecoveryCode draws one code from r: recoveryCodeLen symbols, each
// by rejection-free masking (the alphabet has exactly 32 symbols).
func newRecoveryCode(r io.Reader) (string, error) {
	var buf [recoveryCodeLen]byte
	if _, err := io.ReadFull(r, buf[:]); err != nil {
		return "", fmt.Errorf("mfa: drawing a recovery code: %v", err)
	}
	for i, b := range buf {
		buf[i] = recoveryAlphabet[b&31]
	}
	return string(buf[:]), nil
}

// formatRecoveryCode writes a normalised code for people: four groups of
// four, "K7QM-2XHD-9RTB-W4NE".
func formatRecoveryCode(c string) string {
	return c[0:4] + "-" + c[4:8] + "-" + c[8:12] + "-" + c[12:16]
}

// parseRecoveryCode normalises what a person typed: case, spaces and
// hyphens do not matter, and I, L and O read as 1, 1 and 0.
func parseRecoveryCode(typed string) (string, error) {
	if len(typed) > maxTypedLen {
		return "", fmt.Errorf("%w: too long", ErrMalformedCode)
	}
	var b strings.Builder
	for _, r := range typed {
		switch {
		case r == ' ' || r == '-' || r == '\t':
			continue
		case r >= 'a' && r <= 'z':
			r -= 'a' - 'A'
		}
		switch r {
		case 'I', 'L':
			r = '1'
		case 'O':
			r = '0'
		}
		if r > 0x7f || !strings.ContainsRune(recoveryAlphabet, r) {
			return "", fmt.Errorf("%w: a recovery code has only digits and letters other than U", ErrMalformedCode)
		}
		b.WriteRune(r)
	}
	if b.Len() != recoveryCodeLen {
		return "", fmt.Errorf("%w: a recovery code has %d letters and digits, got %d", ErrMalformedCode, recoveryCodeLen, b.Len())
	}
	return b.String(), nil
}

// matchRecoveryCode returns the index of the code in set whose hash is
// sum, used or not, comparing with every one in constant time.
func matchRecoveryCode(set *RecoveryCodes, sum []byte) (int, bool) {
	found, ok := -1, false
	for i, h := range set.Hashes {
		if subtle.ConstantTimeCompare(h, sum) == 1 && !ok {
			found, ok = i, true
		}
	}
	return found, ok
}
