package mfa

import (
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// RFC 6238 Appendix B: the seeds are ASCII digits, 20, 32 and 64 bytes
// for SHA-1, SHA-256 and SHA-512; 8 digits, 30 s.
func TestTOTPRFC6238Vectors(t *testing.T) {
	seeds := map[string]string{
		"SHA1":   "12345678901234567890",
		"SHA256": "12345678901234567890123456789012",
		"SHA512": "1234567890123456789012345678901234567890123456789012345678901234",
	}
	for _, v := range []struct {
		unix                 int64
		sha1, sha256, sha512 string
	}{
		{59, "94287082", "46119246", "90693936"},
		{1111111109, "07081804", "68084774", "25091201"},
		{1111111111, "14050471", "67062674", "99943326"},
		{1234567890, "89005924", "91819424", "93441116"},
		{2000000000, "69279037", "90698825", "38618901"},
		{20000000000, "65353130", "77737706", "47863826"},
	} {
		for hash, want := range map[string]string{"SHA1": v.sha1, "SHA256": v.sha256, "SHA512": v.sha512} {
			t.Run(hash+"/"+time.Unix(v.unix, 0).UTC().Format(time.RFC3339), func(t *testing.T) {
				p := otpParams{hash: hash, digits: 8, period: 30}
				require.NoError(t, p.check())
				g, err := newGenerator([]byte(seeds[hash]), p)
				require.NoError(t, err)
				s := p.step(time.Unix(v.unix, 0))
				assert.Equal(t, want, g.code(s))
				got, ok := g.match(want, s-1, s+1)
				assert.True(t, ok)
				assert.Equal(t, s, got)
			})
		}
	}
}

// needTool finds an independent program the test compares against. In CI
// a missing one fails the test; elsewhere it skips, saying what to
// install.
func needTool(t *testing.T, name, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found: install Debian's %s (scripts/test.sh does)", name, pkg)
	}
	t.Skipf("%s not found: apt-get install %s", name, pkg)
	return ""
}

// oathtool (Debian's oathtool package, from OATH Toolkit) computes the
// same codes from the same base32 secret and time.
func TestTOTPMatchesOathtool(t *testing.T) {
	oathtool := needTool(t, "oathtool", "oathtool")
	seed := []byte("\x8f\x1a\x00\xff\x10\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\x01\x02")
	secret := b32.EncodeToString(seed)
	for _, tc := range []struct {
		hash   string
		digits int
		period int
	}{
		{"SHA1", 6, 30}, {"SHA256", 8, 30}, {"SHA512", 7, 60}, {"SHA1", 6, 60},
	} {
		for _, unix := range []int64{0, 59, 1111111111, 1764547200, 1798761599} {
			p := otpParams{hash: tc.hash, digits: tc.digits, period: tc.period}
			g, err := newGenerator(seed, p)
			require.NoError(t, err)
			out, err := exec.Command(oathtool, "--totp="+tc.hash, "-b",
				"-d", itoa(tc.digits), "-s", itoa(tc.period)+"s",
				"-N", "@"+itoa64(unix), secret).CombinedOutput()
			require.NoError(t, err, "oathtool: %s", out)
			assert.Equal(t, strings.TrimSpace(string(out)), g.code(p.step(time.Unix(unix, 0))),
				"%s %d digits %d s at %d", tc.hash, tc.digits, tc.period, unix)
		}
	}
}

func itoa(n int) string     { return strconv.Itoa(n) }
func itoa64(n int64) string { return strconv.FormatInt(n, 10) }

// cryptoRand is crypto/rand as an io.Reader value.
type cryptoRand struct{}

func (cryptoRand) Read(b []byte) (int, error) { return rand.Read(b) }

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }

func TestParseCode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		ok   bool
	}{
		{"123456", "123456", true},
		{" 123 456 ", "123456", true},
		{"123-456", "123456", true},
		{"12345", "", false},
		{"1234567", "", false},
		{"12345a", "", false},
		{"１２３４５６", "", false}, // full-width digits are not ASCII digits
		{strings.Repeat("1", 100), "", false},
		{"", "", false},
	} {
		got, err := parseCode(tc.in, 6)
		if tc.ok {
			assert.NoError(t, err, tc.in)
			assert.Equal(t, tc.want, got)
		} else {
			assert.ErrorIs(t, err, ErrMalformedCode, tc.in)
			if tc.in != "" {
				assert.NotContains(t, err.Error(), tc.in)
			}
		}
	}
}

func TestParseRecoveryCode(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"K7QM-2XHD-9RTB-W4NE", "K7QM2XHD9RTBW4NE"},
		{"k7qm 2xhd 9rtb w4ne", "K7QM2XHD9RTBW4NE"},
		{"K7QM2XHD9RTBW4NE", "K7QM2XHD9RTBW4NE"},
		{"0IL0-0000-0000-0000", "0110000000000000"},
		{"oooo-oooo-oooo-oooo", "0000000000000000"},
	} {
		got, err := parseRecoveryCode(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got)
	}
	for _, in := range []string{"", "K7QM-2XHD-9RTB", "K7QM-2XHD-9RTB-W4NEX", "UUUU-UUUU-UUUU-UUUU", "K7QM_2XHD_9RTB_W4NE", "ÄÄÄÄ-ÄÄÄÄ-ÄÄÄÄ-ÄÄÄÄ"} {
		_, err := parseRecoveryCode(in)
		assert.ErrorIs(t, err, ErrMalformedCode, in)
	}
}

func TestRecoveryCodeShape(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		c, err := newRecoveryCode(cryptoRand{})
		require.NoError(t, err)
		require.Len(t, c, 16)
		f := formatRecoveryCode(c)
		assert.Regexp(t, `^[0-9A-HJKMNP-TV-Z]{4}(-[0-9A-HJKMNP-TV-Z]{4}){3}$`, f)
		back, err := parseRecoveryCode(strings.ToLower(f))
		require.NoError(t, err)
		assert.Equal(t, c, back)
		assert.False(t, seen[c])
		seen[c] = true
	}
}

func TestLockPolicyUntil(t *testing.T) {
	p := LockPolicy{Limit: 5, Base: time.Minute, Max: 10 * time.Minute}
	now := time.Unix(1_800_000_000, 0)
	for failures, want := range map[int]time.Duration{4: 0, 5: time.Minute, 6: 2 * time.Minute, 7: 4 * time.Minute, 8: 8 * time.Minute, 9: 10 * time.Minute, 60: 10 * time.Minute} {
		got := p.Until(failures, now)
		if want == 0 {
			assert.True(t, got.IsZero(), "%d failures", failures)
			continue
		}
		assert.Equal(t, now.Add(want), got, "%d failures", failures)
	}
}

func TestKeyring(t *testing.T) {
	k1 := make([]byte, 32)
	k2 := append(make([]byte, 31), 1)
	old, err := NewKeyring("a", map[string][]byte{"a": k1})
	require.NoError(t, err)
	both, err := NewKeyring("b", map[string][]byte{"a": k1, "b": k2})
	require.NoError(t, err)
	ctx1, ctx2 := sealContext([]byte("user"), []byte("dev1")), sealContext([]byte("user"), []byte("dev2"))

	s, err := old.seal([]byte("seed"), ctx1)
	require.NoError(t, err)
	assert.Equal(t, "a", s.KeyID)
	assert.NotContains(t, string(s.Box), "seed")
	got, err := both.open(s, ctx1)
	require.NoError(t, err)
	assert.Equal(t, "seed", string(got))

	_, err = both.open(s, ctx2)
	assert.ErrorIs(t, err, ErrSealed, "a box moved to another record must not open")
	s2, err := both.seal([]byte("seed"), ctx1)
	require.NoError(t, err)
	_, err = old.open(s2, ctx1)
	assert.ErrorIs(t, err, ErrSealed)
	s2.Box[len(s2.Box)-1] ^= 1
	_, err = both.open(s2, ctx1)
	assert.ErrorIs(t, err, ErrSealed)
	assert.NotContains(t, both.String(), string(k2))

	for _, bad := range []map[string][]byte{{"a": k1[:16]}, {"": k1}, {"b": k1}} {
		_, err := NewKeyring("a", bad)
		assert.Error(t, err)
	}
}

func TestSecretNeverPrints(t *testing.T) {
	s := Secret{"JBSW Y3DP EHPK 3PXP"}
	for _, out := range []string{s.String(), s.GoString(), sprintf("%v %s %q %+v %#v %x", s, s, s, s, s, s)} {
		assert.NotContains(t, out, "JBSW")
	}
	_, err := s.MarshalJSON()
	assert.Error(t, err)
	assert.Equal(t, "JBSW Y3DP EHPK 3PXP", s.Reveal())
}

func TestGroupSecret(t *testing.T) {
	assert.Equal(t, "JBSW Y3DP EHPK 3PXP", groupSecret("JBSWY3DPEHPK3PXP"))
	assert.Equal(t, "ABCD E", groupSecret("ABCDE"))
}

func TestParseSecret(t *testing.T) {
	seed, err := ParseSecret("jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp")
	require.NoError(t, err)
	assert.Len(t, seed, 20)
	for _, bad := range []string{"JBSWY3DPEHPK3PXP" /* 80 bits */, "not base32!", strings.Repeat("A", 1000)} {
		_, err := ParseSecret(bad)
		assert.ErrorIs(t, err, ErrInvalidSecret)
		assert.NotContains(t, err.Error(), bad)
	}
}
