package mfa

import (
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
)

// TOTP parameters of a new authenticator app: the defaults every app
// supports (RFC 6238 §4, Google Authenticator's key URI format).
const (
	// AppSecretBytes is the size of an app's secret: 160 bits, RFC 4226
	// §4's recommendation.
	AppSecretBytes = 20
	// AppDigits is an app's code length.
	AppDigits = 6
	// AppPeriod is an app's time step, in seconds.
	AppPeriod = 30
	// AppHash is an app's HMAC hash.
	AppHash = "SHA1"
)

// Windows of time steps around the server's clock (plus a device's
// recorded drift).
const (
	// SignInWindow is how many steps either side a sign-in code may be
	// from: one, for clocks a few seconds apart and a code typed as it
	// changes (RFC 6238 §5.2 recommends at most one).
	SignInWindow = 1
	// ResyncWindow is how many steps either side the two codes of a
	// resync, or of a hardware token's enrollment, may be from: about
	// five minutes at 30 s, for a token whose clock drifted.
	ResyncWindow = 10
)

// minSecretBytes is RFC 4226 §4 R6's floor: a shared secret of at least
// 128 bits. maxSecretBytes bounds what a seed file or a person may hand
// in (SHA-512's block size).
const (
	minSecretBytes = 16
	maxSecretBytes = 128
)

// b32 is the base32 of otpauth URIs and of secrets typed by hand: RFC
// 4648 without padding.
var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// otpParams are a TOTP device's parameters.
type otpParams struct {
	hash   string
	digits int
	period int
}

func (p otpParams) algorithm() (otp.Algorithm, error) {
	switch p.hash {
	case "SHA1":
		return otp.AlgorithmSHA1, nil
	case "SHA256":
		return otp.AlgorithmSHA256, nil
	case "SHA512":
		return otp.AlgorithmSHA512, nil
	}
	return 0, fmt.Errorf("%w: hash %q", ErrNotTOTP, p.hash)
}

func (p otpParams) check() error {
	if _, err := p.algorithm(); err != nil {
		return err
	}
	if p.digits < 6 || p.digits > 8 {
		return fmt.Errorf("%w: %d digits (want 6 to 8)", ErrNotTOTP, p.digits)
	}
	if p.period < 10 || p.period > 300 {
		return fmt.Errorf("%w: time step %d s (want 10 to 300)", ErrNotTOTP, p.period)
	}
	return nil
}

// step is the RFC 6238 §4.2 time counter T at t.
func (p otpParams) step(t time.Time) int64 { return t.Unix() / int64(p.period) }

// generator computes a device's codes. It holds the seed in the base32
// form pquerna/otp takes; keep it only for one verification.
type generator struct {
	secret string
	opts   hotp.ValidateOpts
}

func newGenerator(seed []byte, p otpParams) (*generator, error) {
	alg, err := p.algorithm()
	if err != nil {
		return nil, err
	}
	return &generator{secret: b32.EncodeToString(seed), opts: hotp.ValidateOpts{Digits: otp.Digits(p.digits), Algorithm: alg}}, nil
}

// code is the code at time step s (RFC 6238 is HOTP over the step).
func (g *generator) code(s int64) string {
	if s < 0 {
		return ""
	}
	c, err := hotp.GenerateCodeCustom(g.secret, uint64(s), g.opts)
	if err != nil {
		// The secret is our own base32 and the options are checked:
		// this cannot fail.
		panic("mfa: computing a TOTP code: " + err.Error())
	}
	return c
}

// match returns the step in [from, to] whose code is c; it compares in
// constant time and looks at every step, so timing tells nothing.
func (g *generator) match(c string, from, to int64) (int64, bool) {
	found, ok := int64(0), false
	for s := from; s <= to; s++ {
		if subtle.ConstantTimeCompare([]byte(g.code(s)), []byte(c)) == 1 && !ok {
			found, ok = s, true
		}
	}
	return found, ok
}

// matchPair returns the step s in [from, to-1] with code(s) == c1 and
// code(s+1) == c2: two consecutive codes, in order. When both codes are
// the device's but not consecutive the error is ErrNotConsecutive, else
// ErrInvalidCode.
func (g *generator) matchPair(c1, c2 string, from, to int64) (int64, error) {
	for s := from; s < to; s++ {
		a := subtle.ConstantTimeCompare([]byte(g.code(s)), []byte(c1))
		b := subtle.ConstantTimeCompare([]byte(g.code(s+1)), []byte(c2))
		if a&b == 1 {
			return s, nil
		}
	}
	_, ok1 := g.match(c1, from, to)
	_, ok2 := g.match(c2, from, to)
	if ok1 && ok2 {
		return 0, ErrNotConsecutive
	}
	return 0, ErrInvalidCode
}

// maxTypedLen bounds what is read of typed input before any parsing.
const maxTypedLen = 64

// parseCode turns what a person typed into a code of digits digits:
// spaces and hyphens are dropped ("123 456").
func parseCode(typed string, digits int) (string, error) {
	if len(typed) > maxTypedLen {
		return "", fmt.Errorf("%w: too long", ErrMalformedCode)
	}
	var b strings.Builder
	for _, r := range typed {
		switch {
		case r == ' ' || r == '-' || r == '\t':
		case r >= '0' && r <= '9':
			b.WriteRune(r)
		default:
			return "", fmt.Errorf("%w: a code is digits only", ErrMalformedCode)
		}
	}
	if b.Len() != digits {
		return "", fmt.Errorf("%w: want %d digits, got %d", ErrMalformedCode, digits, b.Len())
	}
	return b.String(), nil
}

// ParseSecret reads a TOTP secret typed by hand or printed on a token's
// card: base32 (RFC 4648), case-insensitive, spaces, hyphens and padding
// ignored, at least 128 bits. Errors wrap [ErrInvalidSecret] and never
// contain the secret.
func ParseSecret(typed string) ([]byte, error) {
	if len(typed) > 2*maxSecretBytes*8/5 {
		return nil, fmt.Errorf("%w: too long", ErrInvalidSecret)
	}
	clean := strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-', '\t', '=':
			return -1
		}
		if r >= 'a' && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, typed)
	seed, err := b32.DecodeString(clean)
	if err != nil {
		return nil, fmt.Errorf("%w: not base32", ErrInvalidSecret)
	}
	if len(seed) < minSecretBytes || len(seed) > maxSecretBytes {
		return nil, fmt.Errorf("%w: %d bits (want %d to %d)", ErrInvalidSecret, 8*len(seed), 8*minSecretBytes, 8*maxSecretBytes)
	}
	return seed, nil
}

// groupSecret writes a base32 secret in groups of four for typing:
// "JBSW Y3DP EHPK 3PXP".
func groupSecret(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s[i:min(i+4, len(s))])
	}
	return b.String()
}
