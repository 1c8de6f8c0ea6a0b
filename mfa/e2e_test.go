package mfa_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/webauthn/webauthntest"
)

// pskcDoc writes a vendor seed file as RFC 6030 §6.1 has it: each
// token's secret AES-128-CBC encrypted under a pre-shared key, with an
// HMAC-SHA256 over IV || ciphertext keyed by a MAC key that is itself
// encrypted under the pre-shared key. It is written here, by hand, so the
// importer is checked against an independent writer.
func pskcDoc(t testing.TB, psk []byte, tokens map[string][]byte) []byte {
	t.Helper()
	enc := func(plain []byte) string {
		block, err := aes.NewCipher(psk)
		require.NoError(t, err)
		pad := aes.BlockSize - len(plain)%aes.BlockSize
		msg := append(bytes.Clone(plain), bytes.Repeat([]byte{byte(pad)}, pad)...)
		out := make([]byte, aes.BlockSize+len(msg))
		_, err = rand.Read(out[:aes.BlockSize])
		require.NoError(t, err)
		cipher.NewCBCEncrypter(block, out[:aes.BlockSize]).CryptBlocks(out[aes.BlockSize:], msg)
		return base64.StdEncoding.EncodeToString(out)
	}
	macKey := make([]byte, 32)
	_, err := rand.Read(macKey)
	require.NoError(t, err)
	var b strings.Builder
	fmt.Fprintf(&b, `<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc"
    xmlns:ds="http://www.w3.org/2000/09/xmldsig#" xmlns:xenc="http://www.w3.org/2001/04/xmlenc#">
  <EncryptionKey><ds:KeyName>Pre-shared-key</ds:KeyName></EncryptionKey>
  <MACMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#hmac-sha256">
    <MACKey>
      <xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
      <xenc:CipherData><xenc:CipherValue>%s</xenc:CipherValue></xenc:CipherData>
    </MACKey>
  </MACMethod>
`, enc(macKey))
	for serial, secret := range tokens {
		ct := enc(secret)
		raw, err := base64.StdEncoding.DecodeString(ct)
		require.NoError(t, err)
		mac := hmac.New(sha256.New, macKey)
		mac.Write(raw)
		fmt.Fprintf(&b, `  <KeyPackage>
    <DeviceInfo><Manufacturer>Galt</Manufacturer><SerialNo>%s</SerialNo></DeviceInfo>
    <Key Id="%s" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp">
      <AlgorithmParameters><ResponseFormat Length="6" Encoding="DECIMAL"/></AlgorithmParameters>
      <Data>
        <Secret>
          <EncryptedValue>
            <xenc:EncryptionMethod Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>
            <xenc:CipherData><xenc:CipherValue>%s</xenc:CipherValue></xenc:CipherData>
          </EncryptedValue>
          <ValueMAC>%s</ValueMAC>
        </Secret>
        <Time><PlainValue>0</PlainValue></Time>
        <TimeInterval><PlainValue>30</PlainValue></TimeInterval>
      </Data>
    </Key>
  </KeyPackage>
`, serial, serial, ct, base64.StdEncoding.EncodeToString(mac.Sum(nil)))
	}
	b.WriteString("</KeyContainer>\n")
	return []byte(b.String())
}

// secrets collects every secret a test handed out, in every form a leak
// could take, to grep logs, errors and databases for.
type secrets struct {
	mu    sync.Mutex
	forms []string
}

func (s *secrets) seed(seed []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(seed)
	s.forms = append(s.forms, string(seed), b, strings.ToLower(b), hex.EncodeToString(seed), base64.StdEncoding.EncodeToString(seed), base64.RawURLEncoding.EncodeToString(seed))
}

func (s *secrets) recoveryCode(c string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.forms = append(s.forms, c, strings.ReplaceAll(c, "-", ""), strings.ToLower(strings.ReplaceAll(c, "-", "")))
}

func (s *secrets) assertAbsent(t *testing.T, where string, data []byte) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	require.NotEmpty(t, s.forms)
	for _, f := range s.forms {
		assert.False(t, bytes.Contains(data, []byte(f)), "a secret (%d bytes) in %s", len(f), where)
	}
}

// decodeQR reads the otpauth URI back from an enrollment's PNG with
// zbarimg, as a phone's camera would.
func decodeQR(t *testing.T, zbarimg string, png []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "qr.png")
	require.NoError(t, os.WriteFile(path, png, 0o600))
	out, err := exec.Command(zbarimg, "--quiet", "--raw", path).Output()
	require.NoError(t, err)
	return strings.TrimRight(string(out), "\n")
}

// End to end, per store: enroll a security key, an authenticator app
// (codes computed from the decoded QR code) and a hardware token (from an
// encrypted seed file); sign in with each as the second factor;
// deactivate one; use recovery codes until none is left. Meanwhile every
// error and result is logged, and the log and the database are then
// searched for every secret handed out.
func TestEndToEnd(t *testing.T) {
	zbarimg := needTool(t, "zbarimg", "zbar-tools")
	for _, kind := range storeKinds() {
		t.Run(kind.name, func(t *testing.T) {
			store := kind.new(t)
			ctx := t.Context()
			s := newStack(t, store, newClock(), nil)
			var logBuf bytes.Buffer
			log := slog.New(slog.NewJSONHandler(&logBuf, nil))
			logged := func(what string, v any, err error) {
				log.Info(what, "value", v, "error", fmt.Sprintf("%+v", err))
			}
			var leak secrets

			u := s.user(t, "root@example.com")

			// 1. A security key.
			key := webauthntest.NewClient(t, webauthntest.Options{})
			kd := s.registerKey(t, key, u.ID, "YubiKey 5C")
			logged("key", kd, nil)

			// 2. An authenticator app, from the QR code.
			s.clock.Add(time.Second)
			e, err := s.m.BeginApp(ctx, u.ID, "Phone")
			require.NoError(t, err)
			logged("app enrollment", e, err)
			ph := scan(t, decodeQR(t, zbarimg, e.QR))
			appSeed, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(ph.key.Secret())
			require.NoError(t, err)
			leak.seed(appSeed)
			now := s.clock.Now()
			_, err = s.m.FinishEnrollment(ctx, u.ID, e.ID, ph.code(now), ph.code(now.Add(-30*time.Second)))
			logged("wrong order", nil, err)
			require.ErrorIs(t, err, mfa.ErrNotConsecutive)
			ad, err := s.m.FinishEnrollment(ctx, u.ID, e.ID, ph.code(now.Add(-30*time.Second)), ph.code(now))
			require.NoError(t, err)
			logged("app", ad, err)

			// 3. A hardware token from its vendor's encrypted seed file.
			psk := bytes.Repeat([]byte{0x42}, 16)
			tokenSeed := []byte("hardware token seed #2")
			otherSeed := []byte("hardware token seed #1")
			leak.seed(tokenSeed)
			leak.seed(otherSeed)
			doc := pskcDoc(t, psk, map[string][]byte{"GALT0001": otherSeed, "GALT0002": tokenSeed})
			_, err = s.m.BeginToken(ctx, u.ID, mfa.Token{Serial: "GALT0002", SeedFile: doc, PreSharedKey: bytes.Repeat([]byte{0x41}, 16)})
			logged("wrong psk", nil, err)
			require.ErrorIs(t, err, mfa.ErrSeedFileMAC)
			_, err = s.m.BeginToken(ctx, u.ID, mfa.Token{Serial: "GALT0003", SeedFile: doc, PreSharedKey: psk})
			logged("missing serial", nil, err)
			require.ErrorIs(t, err, mfa.ErrSerialNotFound)
			te, err := s.m.BeginToken(ctx, u.ID, mfa.Token{Serial: "GALT0002", SeedFile: doc, PreSharedKey: psk})
			require.NoError(t, err)
			logged("token enrollment", te, err)
			fob := scan(t, "otpauth://totp/fob?secret="+base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(tokenSeed))
			now = s.clock.Now()
			td, err := s.m.FinishEnrollment(ctx, u.ID, te.ID, fob.code(now.Add(-30*time.Second)), fob.code(now))
			require.NoError(t, err)
			logged("token", td, err)

			// 4. Recovery codes, shown once.
			set, err := s.m.GenerateRecoveryCodes(ctx, u.ID)
			require.NoError(t, err)
			logged("recovery codes", set, err)
			for _, c := range set.Codes {
				leak.recoveryCode(c.Reveal())
			}

			ds, err := s.m.Devices(ctx, u.ID)
			require.NoError(t, err)
			require.Len(t, ds, 3)
			assert.Equal(t, []mfa.DeviceType{mfa.SecurityKey, mfa.AuthenticatorApp, mfa.HardwareToken}, []mfa.DeviceType{ds[0].Type, ds[1].Type, ds[2].Type})
			f, err := s.m.Factors(ctx, u.ID)
			require.NoError(t, err)
			assert.Equal(t, mfa.Factors{SecurityKeys: 1, Apps: 1, Tokens: 1, RecoveryCodes: 10}, *f)

			// 5. Sign in with each as the second factor.
			s.nextStep()
			v, err := s.signInWithKey(ctx, key, u.ID)
			require.NoError(t, err)
			assert.Equal(t, kd.ID, v.Device.ID)
			v, err = s.m.VerifyTOTP(ctx, u.ID, ph.code(s.clock.Now()))
			require.NoError(t, err)
			assert.Equal(t, ad.ID, v.Device.ID)
			v, err = s.m.VerifyTOTP(ctx, u.ID, fob.code(s.clock.Now()))
			require.NoError(t, err)
			assert.Equal(t, td.ID, v.Device.ID)
			_, err = s.m.VerifyTOTP(ctx, u.ID, ph.code(s.clock.Now()))
			logged("replay", nil, err)
			assert.ErrorIs(t, err, mfa.ErrCodeReused)
			ds, err = s.m.Devices(ctx, u.ID)
			require.NoError(t, err)
			for _, d := range ds {
				assert.Equal(t, s.clock.Now().UTC(), d.LastUsed.UTC(), "%s last used", d.Type)
			}

			// 6. The phone is lost: an administrator deactivates it.
			require.NoError(t, s.m.Deactivate(ctx, u.ID, ad.ID))
			s.nextStep()
			_, err = s.m.VerifyTOTP(ctx, u.ID, ph.code(s.clock.Now()))
			logged("lost phone", nil, err)
			assert.ErrorIs(t, err, mfa.ErrInvalidCode)
			_, err = s.m.VerifyTOTP(ctx, u.ID, fob.code(s.clock.Now()))
			assert.NoError(t, err, "the token still works")

			// 7. Recovery codes until none is left.
			for i, c := range set.Codes {
				v, err := s.m.VerifyRecoveryCode(ctx, u.ID, c.Reveal())
				require.NoError(t, err)
				assert.Equal(t, 9-i, v.RecoveryCodesLeft)
				logged("recovery", v, err)
			}
			_, err = s.m.VerifyRecoveryCode(ctx, u.ID, set.Codes[3].Reveal())
			logged("used code", nil, err)
			assert.ErrorIs(t, err, mfa.ErrCodeReused)
			_, err = s.m.VerifyRecoveryCode(ctx, u.ID, "AAAA-BBBB-CCCC-DDDD")
			logged("no codes", nil, err)
			assert.ErrorIs(t, err, mfa.ErrNoRecoveryCodes)
			left, err := s.m.RecoveryCodesLeft(ctx, u.ID)
			require.NoError(t, err)
			assert.Zero(t, left)

			leak.assertAbsent(t, "the log", logBuf.Bytes())
			read := 0
			if path, ok := sqliteFiles.Load(store); ok {
				leak.assertAbsent(t, "the SQLite file", sqliteBytes(t, path.(string)))
				read++
			}
			if url, ok := postgresURLs.Load(store); ok {
				leak.assertAbsent(t, "the PostgreSQL tables", postgresDump(t, url.(string)))
				read++
			}
			assert.Equal(t, kind.name != "memory", read == 1, "the database was read raw")
		})
	}
}

// sqliteBytes reads the database file and its write-ahead log.
func sqliteBytes(t *testing.T, path string) []byte {
	t.Helper()
	var all []byte
	for _, p := range []string{path, path + "-wal", path + "-journal"} {
		b, err := os.ReadFile(p)
		if err == nil {
			all = append(all, b...)
		}
	}
	require.NotEmpty(t, all)
	return all
}

// postgresDump returns every row of every table of the public schema as
// text, bytea columns in hex and escape form both.
func postgresDump(t *testing.T, url string) []byte {
	t.Helper()
	require.NotEmpty(t, url)
	ctx := context.WithoutCancel(t.Context())
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'`)
	require.NoError(t, err)
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	require.NoError(t, err)
	require.NotEmpty(t, tables)
	var out bytes.Buffer
	for _, tbl := range tables {
		for _, form := range []string{"hex", "escape"} {
			_, err := conn.Exec(ctx, "SET bytea_output = "+form)
			require.NoError(t, err)
			rows, err := conn.Query(ctx, fmt.Sprintf(`SELECT t::text FROM %s t`, pgx.Identifier{tbl}.Sanitize()))
			require.NoError(t, err)
			texts, err := pgx.CollectRows(rows, pgx.RowTo[string])
			require.NoError(t, err)
			for _, s := range texts {
				out.WriteString(s)
				out.WriteByte('\n')
			}
		}
	}
	return out.Bytes()
}

// Two servers on one database race the same code: exactly one accepts
// it, 50 rounds out of 50, for TOTP and for recovery codes; a lockout on
// one server holds on the other.
func TestRacingServers(t *testing.T) {
	for _, kind := range storeKinds() {
		if kind.shared == nil {
			continue
		}
		t.Run(kind.name, func(t *testing.T) {
			ctx := t.Context()
			a, b := kind.shared(t)
			c := newClock()
			sa, sb := newStack(t, a, c, nil), newStack(t, b, c, nil)
			u := sa.user(t, "race@example.com")
			_, ph := sa.enrollApp(t, u.ID, "Phone")

			race := func(f func(s *stack) error) (wins int, errs []error) {
				var wg sync.WaitGroup
				results := make([]error, 2)
				start := make(chan struct{})
				for i, s := range []*stack{sa, sb} {
					wg.Add(1)
					go func() {
						defer wg.Done()
						<-start
						results[i] = f(s)
					}()
				}
				close(start)
				wg.Wait()
				for _, err := range results {
					if err == nil {
						wins++
					} else {
						errs = append(errs, err)
					}
				}
				return wins, errs
			}

			for round := range 50 {
				c.Add(30 * time.Second)
				code := ph.code(c.Now())
				wins, errs := race(func(s *stack) error { _, err := s.m.VerifyTOTP(ctx, u.ID, code); return err })
				require.Equal(t, 1, wins, "TOTP round %d: %v", round, errs)
				require.ErrorIs(t, errs[0], mfa.ErrCodeReused)
			}

			var set *mfa.RecoveryCodeSet
			for round := range 50 {
				if round%mfa.RecoveryCodeCount == 0 {
					var err error
					set, err = sa.m.GenerateRecoveryCodes(ctx, u.ID)
					require.NoError(t, err)
				}
				code := set.Codes[round%mfa.RecoveryCodeCount].Reveal()
				wins, errs := race(func(s *stack) error { _, err := s.m.VerifyRecoveryCode(ctx, u.ID, code); return err })
				require.Equal(t, 1, wins, "recovery round %d: %v", round, errs)
				require.ErrorIs(t, errs[0], mfa.ErrCodeReused)
			}

			for range 5 {
				_, err := sa.m.VerifyTOTP(ctx, u.ID, "000000")
				require.Error(t, err)
			}
			c.Add(30 * time.Second)
			_, err := sb.m.VerifyTOTP(ctx, u.ID, ph.code(c.Now()))
			var le *mfa.LockedError
			require.ErrorAs(t, err, &le, "the other server sees the lock")
		})
	}
}

// A seed file that cannot be read gives a typed error and stores nothing.
func TestSeedFileErrors(t *testing.T) {
	ctx := t.Context()
	s := newStack(t, mfa.NewMemoryStore(), newClock(), nil)
	u := s.user(t, "oscar@example.com")
	psk := bytes.Repeat([]byte{0x17}, 16)
	seed := []byte("a token seed of 20 b")
	doc := pskcDoc(t, psk, map[string][]byte{"GALT0001": seed})
	mac := bytes.Index(doc, []byte("<ValueMAC>")) + len("<ValueMAC>")
	badMAC := bytes.Clone(doc)
	if badMAC[mac] == 'A' {
		badMAC[mac] = 'B'
	} else {
		badMAC[mac] = 'A'
	}
	hotp := bytes.ReplaceAll(doc, []byte("pskc:totp"), []byte("pskc:hotp"))

	for _, tc := range []struct {
		name string
		tok  mfa.Token
		want error
	}{
		{"wrong MAC", mfa.Token{Serial: "GALT0001", SeedFile: badMAC, PreSharedKey: psk}, mfa.ErrSeedFileMAC},
		{"wrong key", mfa.Token{Serial: "GALT0001", SeedFile: doc, PreSharedKey: bytes.Repeat([]byte{0x18}, 16)}, mfa.ErrSeedFileMAC},
		{"no key", mfa.Token{Serial: "GALT0001", SeedFile: doc}, mfa.ErrSeedFileKeyRequired},
		{"missing serial", mfa.Token{Serial: "GALT0002", SeedFile: doc, PreSharedKey: psk}, mfa.ErrSerialNotFound},
		{"malformed XML", mfa.Token{Serial: "GALT0001", SeedFile: doc[:len(doc)/2], PreSharedKey: psk}, mfa.ErrSeedFileMalformed},
		{"not XML", mfa.Token{Serial: "GALT0001", SeedFile: []byte("GALT0001,JBSWY3DPEHPK3PXP"), PreSharedKey: psk}, mfa.ErrSeedFileMalformed},
		{"an event-based token", mfa.Token{Serial: "GALT0001", SeedFile: hotp, PreSharedKey: psk}, mfa.ErrNotTOTP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.m.BeginToken(ctx, u.ID, tc.tok)
			require.ErrorIs(t, err, tc.want)
			var leak secrets
			leak.seed(seed)
			leak.seed(psk)
			leak.assertAbsent(t, "the error", []byte(err.Error()))
		})
	}
	s.clock.Add(mfa.DefaultEnrollmentTimeout)
	n, err := s.m.PurgeEnrollments(ctx)
	require.NoError(t, err)
	assert.Zero(t, n, "no pending enrollment was stored")
	ds, err := s.m.Devices(ctx, u.ID)
	require.NoError(t, err)
	assert.Empty(t, ds)
}
