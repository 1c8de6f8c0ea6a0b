package pinuv

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
	"testing/iotest"
)

func unhex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// fixedKey returns a P-256 key with every scalar byte set to b, so that
// tests are repeatable.
func fixedKey(tb testing.TB, b byte) *ecdh.PrivateKey {
	tb.Helper()
	k, err := ecdh.P256().NewPrivateKey(bytes.Repeat([]byte{b}, 32))
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

// Independent reference computations, written against the stdlib
// primitives directly rather than through the package.

func refHMAC(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// refHKDF is RFC 5869 with SHA-256 for one output block, spelled out with
// HMAC so that it does not share code with crypto/hkdf.
func refHKDF(ikm, salt []byte, info string) []byte {
	prk := refHMAC(salt, ikm)
	return refHMAC(prk, append([]byte(info), 1))
}

func refCBC(tb testing.TB, key, iv, pt []byte) []byte {
	tb.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		tb.Fatal(err)
	}
	out := make([]byte, len(pt))
	cipher.NewCBCEncrypter(b, iv).CryptBlocks(out, pt)
	return out
}

func TestByVersion(t *testing.T) {
	for _, tc := range []struct {
		v    uint64
		ok   bool
		want Protocol
	}{
		{0, false, nil},
		{1, true, ProtocolOne{}},
		{2, true, ProtocolTwo{}},
		{3, false, nil},
		{1 << 40, false, nil},
	} {
		p, ok := ByVersion(tc.v)
		if ok != tc.ok || p != tc.want {
			t.Errorf("ByVersion(%d) = %v, %v; want %v, %v", tc.v, p, ok, tc.want, tc.ok)
		}
		if ok && p.Version() != tc.v {
			t.Errorf("ByVersion(%d).Version() = %d", tc.v, p.Version())
		}
	}
}

func TestKeyAgreement(t *testing.T) {
	auth := fixedKey(t, 0x11) // the authenticator's key agreement key
	plat := fixedKey(t, 0x22)
	z, err := plat.ECDH(auth.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	zero := make([]byte, 32)
	want := map[uint64][]byte{
		1: func() []byte { h := sha256.Sum256(z); return h[:] }(),
		2: append(refHKDF(z, zero, "CTAP2 HMAC key"), refHKDF(z, zero, "CTAP2 AES key")...),
	}
	for _, p := range []Protocol{ProtocolOne{}, ProtocolTwo{}} {
		t.Run(fmt.Sprintf("v%d", p.Version()), func(t *testing.T) {
			// Both directions agree, and with the reference kdf.
			a, err := p.Decapsulate(auth, plat.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			b, err := p.Decapsulate(plat, auth.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(a, b) || !bytes.Equal(a, want[p.Version()]) {
				t.Fatalf("shared secrets %x, %x; want %x", a, b, want[p.Version()])
			}

			// Encapsulate makes a fresh key whose secret the authenticator
			// reproduces from the public half.
			pub, shared, err := p.Encapsulate(auth.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			again, err := p.Decapsulate(auth, pub)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(shared, again) {
				t.Fatalf("encapsulated %x, decapsulated %x", shared, again)
			}
			pub2, _, err := p.Encapsulate(auth.PublicKey())
			if err != nil {
				t.Fatal(err)
			}
			if pub.Equal(pub2) {
				t.Fatal("Encapsulate reused its ephemeral key")
			}

			x, err := ecdh.X25519().GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			for name, f := range map[string]func() error{
				"nil peer": func() error { _, _, err := p.Encapsulate(nil); return err },
				"X25519 peer": func() error {
					_, _, err := p.Encapsulate(x.PublicKey())
					return err
				},
				"nil own": func() error { _, err := p.Decapsulate(nil, auth.PublicKey()); return err },
				"nil peer decap": func() error {
					_, err := p.Decapsulate(auth, nil)
					return err
				},
				"X25519 own": func() error { _, err := p.Decapsulate(x, auth.PublicKey()); return err },
				"X25519 peer decap": func() error {
					_, err := p.Decapsulate(auth, x.PublicKey())
					return err
				},
			} {
				if err := f(); !errors.Is(err, ErrKeyAgreement) {
					t.Errorf("%s: error %v, want ErrKeyAgreement", name, err)
				}
			}
		})
	}
}

func TestProtocolOneCrypto(t *testing.T) {
	p := ProtocolOne{}
	key := bytes.Repeat([]byte{0x5a}, 32)
	for _, n := range []int{0, 16, 32, 64} {
		pt := make([]byte, n)
		for i := range pt {
			pt[i] = byte(i * 7)
		}
		ct, err := p.Encrypt(key, pt)
		if err != nil {
			t.Fatal(err)
		}
		if want := refCBC(t, key, make([]byte, 16), pt); !bytes.Equal(ct, want) {
			t.Fatalf("Encrypt(%d bytes) = %x, want %x", n, ct, want)
		}
		back, err := p.Decrypt(key, ct)
		if err != nil || !bytes.Equal(back, pt) {
			t.Fatalf("Decrypt = %x, %v; want %x", back, err, pt)
		}
	}
	for _, n := range []int{1, 15, 17, 63} {
		if _, err := p.Encrypt(key, make([]byte, n)); !errors.Is(err, ErrBlockLength) {
			t.Errorf("Encrypt(%d bytes): %v, want ErrBlockLength", n, err)
		}
		if _, err := p.Decrypt(key, make([]byte, n)); !errors.Is(err, ErrBlockLength) {
			t.Errorf("Decrypt(%d bytes): %v, want ErrBlockLength", n, err)
		}
	}
	for _, n := range []int{0, 16, 31, 33, 64} {
		if _, err := p.Encrypt(make([]byte, n), make([]byte, 16)); !errors.Is(err, ErrKeyLength) {
			t.Errorf("Encrypt with %d-byte key: %v, want ErrKeyLength", n, err)
		}
		if _, err := p.Decrypt(make([]byte, n), make([]byte, 16)); !errors.Is(err, ErrKeyLength) {
			t.Errorf("Decrypt with %d-byte key: %v, want ErrKeyLength", n, err)
		}
	}

	msg := []byte("message")
	for _, k := range [][]byte{key, bytes.Repeat([]byte{1}, 16)} { // shared secret, 16-byte token
		sig := p.Authenticate(k, msg)
		if want := refHMAC(k, msg)[:16]; !bytes.Equal(sig, want) {
			t.Fatalf("Authenticate = %x, want %x", sig, want)
		}
		checkVerify(t, p, k, msg, sig)
	}
}

func TestProtocolTwoCrypto(t *testing.T) {
	shared := make([]byte, 64)
	for i := range shared {
		shared[i] = byte(i)
	}
	hmacKey, aesKey := shared[:32], shared[32:]
	iv := unhex(t, "000102030405060708090a0b0c0d0e0f")
	p := ProtocolTwo{Rand: bytes.NewReader(bytes.Repeat(iv, 8))}
	for _, n := range []int{0, 16, 64} {
		pt := bytes.Repeat([]byte{byte(n)}, n)
		ct, err := p.Encrypt(shared, pt)
		if err != nil {
			t.Fatal(err)
		}
		want := append(bytes.Clone(iv), refCBC(t, aesKey, iv, pt)...)
		if !bytes.Equal(ct, want) {
			t.Fatalf("Encrypt(%d bytes) = %x, want %x", n, ct, want)
		}
		back, err := p.Decrypt(shared, ct)
		if err != nil || !bytes.Equal(back, pt) {
			t.Fatalf("Decrypt = %x, %v; want %x", back, err, pt)
		}
	}

	// The default source gives a fresh IV each time.
	def := ProtocolTwo{}
	a, err := def.Encrypt(shared, make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	b, err := def.Encrypt(shared, make([]byte, 16))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a[:16], b[:16]) {
		t.Fatal("two encryptions used the same IV")
	}

	if _, err := (ProtocolTwo{Rand: iotest.ErrReader(errors.New("no entropy"))}).Encrypt(shared, make([]byte, 16)); err == nil {
		t.Fatal("Encrypt succeeded without randomness")
	}
	for _, n := range []int{0, 15} {
		if _, err := def.Decrypt(shared, make([]byte, n)); !errors.Is(err, ErrBlockLength) {
			t.Errorf("Decrypt(%d bytes): %v, want ErrBlockLength", n, err)
		}
	}
	for _, n := range []int{17, 31, 47} {
		if _, err := def.Decrypt(shared, make([]byte, n)); !errors.Is(err, ErrBlockLength) {
			t.Errorf("Decrypt(%d bytes): %v, want ErrBlockLength", n, err)
		}
		if _, err := def.Encrypt(shared, make([]byte, n-16)); !errors.Is(err, ErrBlockLength) {
			t.Errorf("Encrypt(%d bytes): %v, want ErrBlockLength", n-16, err)
		}
	}
	for _, n := range []int{0, 32, 63, 65} {
		if _, err := def.Encrypt(make([]byte, n), make([]byte, 16)); !errors.Is(err, ErrKeyLength) {
			t.Errorf("Encrypt with %d-byte key: %v, want ErrKeyLength", n, err)
		}
		if _, err := def.Decrypt(make([]byte, n), make([]byte, 32)); !errors.Is(err, ErrKeyLength) {
			t.Errorf("Decrypt with %d-byte key: %v, want ErrKeyLength", n, err)
		}
	}

	msg := []byte("message")
	// With the shared secret only the HMAC half keys the MAC.
	sig := def.Authenticate(shared, msg)
	if want := refHMAC(hmacKey, msg); !bytes.Equal(sig, want) {
		t.Fatalf("Authenticate(shared) = %x, want %x", sig, want)
	}
	checkVerify(t, def, shared, msg, sig)
	// A pinUvAuthToken is used whole.
	token := bytes.Repeat([]byte{0xA5}, TokenLen)
	sig = def.Authenticate(token, msg)
	if want := refHMAC(token, msg); !bytes.Equal(sig, want) {
		t.Fatalf("Authenticate(token) = %x, want %x", sig, want)
	}
	checkVerify(t, def, token, msg, sig)
}

// checkVerify checks that sig verifies and that every alteration of it,
// the key or the message fails.
func checkVerify(t *testing.T, p Protocol, key, msg, sig []byte) {
	t.Helper()
	if !p.Verify(key, msg, sig) {
		t.Fatal("Verify rejected a good signature")
	}
	for i := range sig {
		bad := bytes.Clone(sig)
		bad[i] ^= 0x01
		if p.Verify(key, msg, bad) {
			t.Fatalf("Verify accepted a signature with byte %d flipped", i)
		}
	}
	full := refHMAC(key[:min(len(key), 32)], msg)
	for _, bad := range [][]byte{nil, {}, sig[:len(sig)-1], append(bytes.Clone(sig), 0), full[:16], full} {
		if len(bad) == len(sig) && bytes.Equal(bad, sig) {
			continue
		}
		if p.Verify(key, msg, bad) {
			t.Fatalf("Verify accepted a %d-byte signature", len(bad))
		}
	}
	if p.Verify(key, append(bytes.Clone(msg), 0), sig) {
		t.Fatal("Verify accepted a longer message")
	}
	otherKey := bytes.Clone(key)
	otherKey[0] ^= 0x80
	if p.Verify(otherKey, msg, sig) {
		t.Fatal("Verify accepted another key")
	}
}

// TestPythonFido2Vectors checks protocol one against the fixed values of
// python-fido2's tests/test_ctap2.py (TestClientPin, before 2025), which
// were produced by that independent implementation: a platform key with a
// known scalar, a device key agreement key, and the messages of
// getPinToken, setPIN and changePIN built on them.
func TestPythonFido2Vectors(t *testing.T) {
	platPriv := unhex(t, "7452E599FEE739D8A653F6A507343D12D382249108A651402520B72F24FE7684")
	platX := unhex(t, "44D78D7989B97E62EA993496C9EF6E8FD58B8B00715F9A89153DDD9C4657E47F")
	platY := unhex(t, "EC802EE7D22BD4E100F12E48537EB4E7E96ED3A47A0A3BD5F5EEAB65001664F9")
	devX := unhex(t, "0501D5BC78DA9252560A26CB08FCC60CBE0B6D3B8E1D1FCEE514FAC0AF675168")
	devY := unhex(t, "D551B3ED46F665731F95B4532939C25D91DB7EB844BD96D4ABD4083785F8DF47")
	shared := unhex(t, "c42a039d548100dfba521e487debcbbb8b66bb7496f8b1862a7a395ed83e1a1c")

	plat, err := ecdh.P256().NewPrivateKey(platPriv)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := plat.PublicKey().Bytes(), append(append([]byte{4}, platX...), platY...); !bytes.Equal(got, want) {
		t.Fatalf("platform public key %x, want %x", got, want)
	}
	dev, err := ecdh.P256().NewPublicKey(append(append([]byte{4}, devX...), devY...))
	if err != nil {
		t.Fatal(err)
	}
	p := ProtocolOne{}
	got, err := p.Decapsulate(plat, dev)
	if err != nil || !bytes.Equal(got, shared) {
		t.Fatalf("shared secret %x, %v; want %x", got, err, shared)
	}

	encrypt := func(pt []byte) []byte {
		ct, err := p.Encrypt(shared, pt)
		if err != nil {
			t.Fatal(err)
		}
		return ct
	}
	pad := func(pin string) []byte {
		b, err := PadPIN(pin)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	pinHashEnc := unhex(t, "afe8327ce416da8ee3d057589c2ce1a9")
	setEnc := encrypt(pad("1234"))
	changeEnc := encrypt(pad("4321"))
	token, err := p.Decrypt(shared, unhex(t, "7A9F98E31B77BE90F9C64D12E9635040"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		got, want []byte
	}{
		{"pinHashEnc of 1234", encrypt(PINHash("1234")), pinHashEnc},
		{"decrypted pinUvAuthToken", token, unhex(t, "aff12c6dcfbf9df52f7a09211e8865cd")},
		{"setPIN newPinEnc", setEnc, unhex(t, "0222fc42c6dd76a274a7057858b9b29d98e8a722ec2dc6668476168c5320473cec9907b4cd76ce7943c96ba5683943211d84471e64d9c51e54763488cd66526a")},
		{"setPIN pinUvAuthParam", p.Authenticate(shared, setEnc), unhex(t, "7b40c084ccc5794194189ab57836475f")},
		{"changePIN newPinEnc", changeEnc, unhex(t, "4280e14aac4fcbf02dd079985f0c0ffc9ea7d5f9c173fd1a4c843826f7590cb3c2d080c6923e2fe6d7a52c31ea1309d3fcca3dedae8a2ef14b6330cafc79339e")},
		{"changePIN pinUvAuthParam", p.Authenticate(shared, append(bytes.Clone(changeEnc), pinHashEnc...)), unhex(t, "fb97e92f3724d7c85e001d7f93e6490a")},
	} {
		if !bytes.Equal(tc.got, tc.want) {
			t.Errorf("%s = %x, want %x", tc.name, tc.got, tc.want)
		}
	}
}

func TestPadPIN(t *testing.T) {
	for _, tc := range []struct {
		name string
		pin  string
		err  error
	}{
		{"4 ASCII", "1234", nil},
		{"3 ASCII", "123", ErrPINTooShort},
		{"empty", "", ErrPINTooShort},
		{"4 code points in 8 bytes", "ÄÖÜß", nil},
		{"3 code points in 6 bytes", "ÄÖÜ", ErrPINTooShort},
		{"1 emoji of 4 bytes", "🔑", ErrPINTooShort},
		{"4 emoji", "🔑🔑🔑🔑", nil},
		{"63 bytes", strings.Repeat("a", 63), nil},
		{"64 bytes", strings.Repeat("a", 64), ErrPINTooLong},
		{"63 bytes ending in a 2-byte rune", strings.Repeat("a", 61) + "ß", nil},
		{"64 bytes ending in a 2-byte rune", strings.Repeat("a", 62) + "ß", ErrPINTooLong},
		{"invalid UTF-8", "12\xff34", ErrPINNotUTF8},
		{"truncated rune", "1234\xc3", ErrPINNotUTF8},
		{"NUL inside", "12\x0034", ErrPINHasNUL},
		{"NUL at end", "1234\x00", ErrPINHasNUL},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := PadPIN(tc.pin)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
				t.Fatalf("PadPIN(%q) error %v, want %v", tc.pin, err, tc.err)
			}
			if err != nil {
				return
			}
			want := make([]byte, 64)
			copy(want, tc.pin)
			if !bytes.Equal(b, want) {
				t.Fatalf("PadPIN(%q) = %x, want %x", tc.pin, b, want)
			}
			back, err := UnpadPIN(b)
			if err != nil || back != tc.pin {
				t.Fatalf("UnpadPIN = %q, %v; want %q", back, err, tc.pin)
			}
		})
	}
}

func TestUnpadPIN(t *testing.T) {
	pad := func(s string, n int) []byte {
		b := make([]byte, n)
		copy(b, s)
		return b
	}
	for _, tc := range []struct {
		name string
		in   []byte
		want string
		err  error
	}{
		{"ok", pad("1234", 64), "1234", nil},
		{"multi-byte", pad("ÄÖÜß", 64), "ÄÖÜß", nil},
		{"63 bytes", pad(strings.Repeat("7", 63), 64), strings.Repeat("7", 63), nil},
		{"no zero byte", bytes.Repeat([]byte{'7'}, 64), "", ErrPINTooLong},
		{"63 bytes in 65", pad("1234", 65), "", ErrPaddedPINLength},
		{"32 bytes", pad("1234", 32), "", ErrPaddedPINLength},
		{"empty", nil, "", ErrPaddedPINLength},
		{"all zero", make([]byte, 64), "", ErrPINTooShort},
		{"3 code points", pad("ÄÖÜ", 64), "", ErrPINTooShort},
		{"byte after padding", append(pad("1234", 63), 1), "", ErrPINHasNUL},
		{"NUL inside", pad("12\x0034", 64), "", ErrPINHasNUL},
		{"invalid UTF-8", pad("12\xff34", 64), "", ErrPINNotUTF8},
		{"rune cut by padding", pad("123\xc3", 64), "", ErrPINNotUTF8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := UnpadPIN(tc.in)
			if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) || got != tc.want {
				t.Fatalf("UnpadPIN = %q, %v; want %q, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestPINHash(t *testing.T) {
	for _, pin := range []string{"1234", "ÄÖÜß", "", strings.Repeat("x", 63)} {
		want := sha256.Sum256([]byte(pin))
		if got := PINHash(pin); !bytes.Equal(got, want[:16]) {
			t.Errorf("PINHash(%q) = %x, want %x", pin, got, want[:16])
		}
	}
	// LEFT(SHA-256("1234"), 16), by hand.
	if got := PINHash("1234"); !bytes.Equal(got, unhex(t, "03ac674216f3e15c761ee1a5e255f067")) {
		t.Errorf("PINHash(1234) = %x", got)
	}
}

func TestPermissionString(t *testing.T) {
	for _, tc := range []struct {
		p    Permission
		want string
	}{
		{0, "none"},
		{PermMakeCredential, "mc"},
		{PermMakeCredential | PermGetAssertion, "mc|ga"},
		{PermCredentialManagement | PermBioEnrollment | PermLargeBlobWrite | PermAuthenticatorConfig, "cm|be|lbw|acfg"},
		{PermCredentialManagementReadOnly, "pcmr"},
		{PermGetAssertion | 0x180, "ga|0x180"},
	} {
		if got := tc.p.String(); got != tc.want {
			t.Errorf("Permission(%#x).String() = %q, want %q", uint64(tc.p), got, tc.want)
		}
	}
	// The bit values are the spec's table.
	for p, want := range map[Permission]uint64{
		PermMakeCredential: 0x01, PermGetAssertion: 0x02, PermCredentialManagement: 0x04,
		PermBioEnrollment: 0x08, PermLargeBlobWrite: 0x10, PermAuthenticatorConfig: 0x20,
	} {
		if uint64(p) != want {
			t.Errorf("%v = %#x, want %#x", p, uint64(p), want)
		}
	}
}
