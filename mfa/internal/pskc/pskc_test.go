package pskc

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	algHOTP = "urn:ietf:params:xml:ns:keyprov:pskc:hotp"
	algTOTP = "urn:ietf:params:xml:ns:keyprov:pskc:totp"
)

// Values RFC 6030 states for its examples.
var (
	// rfcSecret is the HOTP secret of Figures 3, 5, 6, 7, 9 and 10: the
	// ASCII string 12345678901234567890, hex 3132...3930 (RFC 4226's
	// test key).
	rfcSecret = []byte("12345678901234567890")
	// rfcPSK is Figure 6's pre-shared key (§6.1).
	rfcPSK = mustHex("12345678901234567890123456789012")
	// rfcPassword is Figure 7's password (§6.2).
	rfcPassword = []byte("qwerty")
	// rfcMACKey6 and rfcMACKey7 are the MAC keys in Figures 6 and 7.
	rfcMACKey6 = mustHex("1122334455667788990011223344556677889900")
	rfcMACKey7 = mustHex("bdaab8d648e850d25a3289364f7d7eaaf53ce581")
	// rfcDerivedKey7 is Figure 7's PBKDF2 key from "qwerty".
	rfcDerivedKey7 = mustHex("651e63cd57008476af1ff6422cd02e41")

	// wrongPSK and wrongPassword are one bit or letter off.
	wrongPSK      = mustHex("12345678901234567890123456789013")
	wrongPassword = []byte("qwertz")
)

// The CipherValues of Figures 6 and 7: IV and ciphertext, base64.
const (
	fig6SecretB64 = "AAECAwQFBgcICQoLDA0OD+cIHItlB3Wra1DUpxVvOx2lef1VmNPCMl8jwZqIUqGv"
	fig6MACKeyB64 = "ESIzRFVmd4iZABEiM0RVZgKn6WjLaTC1sbeBMSvIhRejN9vJa2BOlSaMrR7I5wSX"
	fig7SecretB64 = "oTvo+S22nsmS2Z/RtcoF8Hfh+jzMe0RkiafpoDpnoZTjPYZu6V+A4aEn032yCr4f"
	fig7MACKeyB64 = "2GTTnLwM3I4e5IO5FkufoOEiOhNj91fhKRQBtBJYluUDsPOLTfUvoU2dStyOwYZx"
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// replace returns doc with old, which must occur in it exactly n times,
// replaced by new.
func replace(t testing.TB, doc []byte, old, new string, n int) []byte {
	t.Helper()
	require.Equal(t, n, bytes.Count(doc, []byte(old)), "occurrences of %q", old)
	return bytes.ReplaceAll(doc, []byte(old), []byte(new))
}

// cut returns doc without the text from start to end, inclusive, each
// of which must occur once.
func cut(t testing.TB, doc []byte, start, end string) []byte {
	t.Helper()
	require.Equal(t, 1, bytes.Count(doc, []byte(start)), "occurrences of %q", start)
	i := bytes.Index(doc, []byte(start))
	j := bytes.Index(doc[i:], []byte(end))
	require.GreaterOrEqual(t, j, 0, "%q after %q", end, start)
	return slices.Concat(doc[:i], doc[i+j+len(end):])
}

// flipBase64 returns b64 decoded, its first byte flipped, encoded again.
func flipBase64(t testing.TB, b64 string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(b64)
	require.NoError(t, err)
	b[0] ^= 0x01
	return base64.StdEncoding.EncodeToString(b)
}

// TestRFC6030Examples imports each example document of RFC 6030 to the
// keys the RFC states.
func TestRFC6030Examples(t *testing.T) {
	hotp := func(serial, manufacturer, id string, digits int) Key {
		return Key{
			Serial: serial, Manufacturer: manufacturer, ID: id, Algorithm: algHOTP,
			Secret: rfcSecret, Digits: digits, Encoding: "DECIMAL", Hash: "SHA1",
		}
	}
	bulk := func(serial, id string) Key { return hotp(serial, "TokenVendorAcme", id, 8) }
	tests := []struct {
		file string
		d    Decryption
		want []Key
	}{
		{"rfc6030-figure2.xml", Decryption{}, []Key{{
			ID: "12345678", Algorithm: algHOTP, Secret: []byte("1234"), Hash: "SHA1",
		}}},
		{"rfc6030-figure3.xml", Decryption{}, []Key{hotp("987654321", "Manufacturer", "12345678", 8)}},
		{"rfc6030-figure5.xml", Decryption{}, []Key{
			hotp("987654321", "Manufacturer", "12345678", 8),
			{
				Serial: "987654321", Manufacturer: "Manufacturer", ID: "123456781",
				Algorithm: "urn:ietf:params:xml:ns:keyprov:pskc:pin", Secret: []byte("1234"),
				Digits: 4, Encoding: "DECIMAL", Hash: "SHA1",
			},
		}},
		// §6.1: AES-128-CBC under the pre-shared key, HMAC-SHA1 MACs
		// keyed with the encrypted MACKey.
		{"rfc6030-figure6.xml", Decryption{PreSharedKey: rfcPSK}, []Key{hotp("987654321", "Manufacturer", "12345678", 8)}},
		// §6.2: PBKDF2 from "qwerty". python-pskc's transcription of
		// this figure calls its secret "12345678901234567890 hex"; what
		// it decrypts to with the stated password, its MAC verified, is
		// the ASCII string 12345678901234567890 (hex 3132...3930), the
		// same secret as the other figures.
		{"rfc6030-figure7.xml", Decryption{Password: rfcPassword}, []Key{hotp("987654321", "TokenVendorAcme", "123456", 8)}},
		// A pre-shared key and a password both given: each container
		// takes the one it needs.
		{"rfc6030-figure7.xml", Decryption{PreSharedKey: rfcPSK, Password: rfcPassword}, []Key{hotp("987654321", "TokenVendorAcme", "123456", 8)}},
		// §7: the signature is not verified, the key is read.
		{"rfc6030-figure9.xml", Decryption{}, []Key{hotp("0755225266", "TokenVendorAcme", "123", 6)}},
		// §8: two keys for device 9999999.
		{"rfc6030-figure10.xml", Decryption{}, []Key{
			bulk("654321", "1"), bulk("123456", "2"), bulk("9999999", "3"), bulk("9999999", "4"),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			keys, err := Parse(readTestdata(t, tt.file), tt.d)
			require.NoError(t, err)
			assert.Equal(t, tt.want, keys)
		})
	}
}

// TestRFC6030Intermediates checks the keys Figures 6 and 7 state along
// the way: the derived key and the MAC keys.
func TestRFC6030Intermediates(t *testing.T) {
	tests := []struct {
		file        string
		d           Decryption
		key, macKey []byte
	}{
		{"rfc6030-figure6.xml", Decryption{PreSharedKey: rfcPSK}, rfcPSK, rfcMACKey6},
		{"rfc6030-figure7.xml", Decryption{Password: rfcPassword}, rfcDerivedKey7, rfcMACKey7},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, err := readContainer(readTestdata(t, tt.file))
			require.NoError(t, err)
			s := &state{d: tt.d, lim: limits{maxIterations: maxIterations}, encryptionKey: c.encryptionKey, macMethod: c.macMethod}
			key, err := s.keyFor(algAES128CBC)
			require.NoError(t, err)
			assert.Equal(t, hex.EncodeToString(tt.key), hex.EncodeToString(key))
			macKey, h, err := s.mac()
			require.NoError(t, err)
			assert.Equal(t, hex.EncodeToString(tt.macKey), hex.EncodeToString(macKey))
			assert.Equal(t, sha1.Size, h().Size())
		})
	}
}

// negCase is a document Parse must refuse with err.
type negCase struct {
	name string
	doc  []byte
	d    Decryption
	err  error
}

// plainDoc wraps key packages in a KeyContainer.
func plainDoc(packages ...string) []byte {
	return []byte(`<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc">` +
		strings.Join(packages, "\n") + "\n</KeyContainer>\n")
}

// plainPackage is a key package with a plain secret.
func plainPackage(serial, algorithm, params, data string, secret []byte) string {
	return fmt.Sprintf(`<KeyPackage><DeviceInfo><SerialNo>%s</SerialNo></DeviceInfo>
<Key Id="%s" Algorithm="%s"><AlgorithmParameters>%s</AlgorithmParameters>
<Data><Secret><PlainValue>%s</PlainValue></Secret>%s</Data></Key></KeyPackage>`,
		serial, serial, algorithm, params, base64.StdEncoding.EncodeToString(secret), data)
}

// negativeCases are the documents Parse must refuse, with the error each
// must match. They are built from RFC 6030's figures, altered.
func negativeCases(t testing.TB) []negCase {
	t.Helper()
	fig2 := readTestdata(t, "rfc6030-figure2.xml")
	fig3 := readTestdata(t, "rfc6030-figure3.xml")
	fig6 := readTestdata(t, "rfc6030-figure6.xml")
	fig7 := readTestdata(t, "rfc6030-figure7.xml")
	psk := Decryption{PreSharedKey: rfcPSK}
	pw := Decryption{Password: rfcPassword}

	const (
		fig6Secret = fig6SecretB64
		fig6MAC    = "Su+NvtQfmvfJzF6bmQiJqoLRExc="
		fig7MAC    = "LP6xMvjtypbfT9PdkJhBZ+D6O4w="
	)
	fig6NoMAC := cut(t, cut(t, fig6, "<MACMethod", "</MACMethod>"), "<ValueMAC>", "</ValueMAC>")
	fig6Raw, err := base64.StdEncoding.DecodeString(fig6Secret)
	require.NoError(t, err)
	notBlocks := base64.StdEncoding.EncodeToString(append(slices.Clone(fig6Raw), 0))
	onlyIV := base64.StdEncoding.EncodeToString(fig6Raw[:aes.BlockSize])

	many := slices.Repeat([]string{"<KeyPackage/>"}, maxKeyPackages+1)
	big := slices.Concat(fig2, bytes.Repeat([]byte(" "), MaxSize+1-len(fig2)))

	// A MAC that verifies over a value whose padding is bad.
	badPadKey := bytes.Repeat([]byte{0x42}, 16)
	badPad := encryptedDoc(t, encSpec{psk: badPadKey, encAlg: algAES128CBC, macAlg: algHMACSHA256, macHash: sha256.New},
		[]encEntry{{serial: "1", raw: rawCBC(t, badPadKey, bytes.Repeat([]byte{0x11}, 32))}})
	// The same with a broken MAC: the MAC fails first.
	badPadBadMAC := replace(t, badPad, "<ValueMAC>", "<ValueMAC>AAAA", 1)

	totp := func(params, data string) []byte {
		return plainDoc(plainPackage("T1", algTOTP, params, data, rfcSecret))
	}

	return []negCase{
		// MACs.
		{"wrong ValueMAC", replace(t, fig6, fig6MAC, flipBase64(t, fig6MAC), 1), psk, ErrMAC},
		{"wrong ValueMAC, derived key", replace(t, fig7, fig7MAC, flipBase64(t, fig7MAC), 1), pw, ErrMAC},
		{"altered ciphertext", replace(t, fig6, fig6Secret, flipBase64(t, fig6Secret), 1), psk, ErrMAC},
		{"MACMethod but no ValueMAC", cut(t, fig6, "<ValueMAC>", "</ValueMAC>"), psk, ErrMAC},
		{"ValueMAC without MACMethod", cut(t, fig6, "<MACMethod", "</MACMethod>"), psk, ErrMalformed},
		{"ValueMAC not base64", replace(t, fig6, fig6MAC, "Su+Nvt*fmvfJzF6bmQiJqoLRExc=", 1), psk, ErrMalformed},
		{"bad MAC and bad padding", badPadBadMAC, Decryption{PreSharedKey: badPadKey}, ErrMAC},
		{"bad padding under a good MAC", badPad, Decryption{PreSharedKey: badPadKey}, ErrMalformed},

		// Keys.
		{"wrong pre-shared key", fig6, Decryption{PreSharedKey: wrongPSK}, ErrMAC},
		{"wrong password", fig7, Decryption{Password: wrongPassword}, ErrMAC},
		{"wrong pre-shared key, no MAC", fig6NoMAC, Decryption{PreSharedKey: wrongPSK}, ErrWrongKey},
		{"pre-shared key of 15 bytes", fig6, Decryption{PreSharedKey: rfcPSK[:15]}, ErrWrongKey},
		{"pre-shared key of 32 bytes for aes128-cbc", fig6, Decryption{PreSharedKey: slices.Concat(rfcPSK, rfcPSK)}, ErrWrongKey},
		{"no pre-shared key", fig6, Decryption{}, ErrKeyRequired},
		{"a password for a pre-shared key", fig6, pw, ErrKeyRequired},
		{"no password", fig7, Decryption{}, ErrKeyRequired},
		{"a pre-shared key for a password", fig7, psk, ErrKeyRequired},
		{"encrypted without EncryptionKey, no key", cut(t, fig6, "<EncryptionKey>", "</EncryptionKey>"), Decryption{}, ErrKeyRequired},

		// Not a document.
		{"empty", nil, Decryption{}, ErrMalformed},
		{"not XML", []byte("seed file"), Decryption{}, ErrMalformed},
		{"truncated", fig2[:len(fig2)/2], Decryption{}, ErrMalformed},
		{"truncated encrypted", fig6[:len(fig6)-20], psk, ErrMalformed},
		{"over MaxSize", big, Decryption{}, ErrMalformed},
		{"wrong root", replace(t, fig2, "KeyContainer", "KeyBox", 2), Decryption{}, ErrMalformed},
		{"wrong namespace", replace(t, fig2, `xmlns="urn:ietf:params:xml:ns:keyprov:pskc"`, `xmlns="urn:ietf:params:xml:ns:keyprov:pskc:1.0"`, 1), Decryption{}, ErrMalformed},
		{"no namespace", replace(t, fig2, `xmlns="urn:ietf:params:xml:ns:keyprov:pskc"`, ``, 1), Decryption{}, ErrMalformed},
		{"Version 2.0", replace(t, fig2, `Version="1.0"`, `Version="2.0"`, 1), Decryption{}, ErrMalformed},
		{"no Version", replace(t, fig2, `Version="1.0"`, ``, 1), Decryption{}, ErrMalformed},
		{"DOCTYPE", replace(t, fig2, "?>", `?><!DOCTYPE KeyContainer [<!ENTITY x "MTIzNA==">]>`, 1), Decryption{}, ErrMalformed},
		{"undefined entity", replace(t, fig2, "MTIzNA==", "&x;", 1), Decryption{}, ErrMalformed},
		{"second root", slices.Concat(fig2, []byte("<KeyContainer/>")), Decryption{}, ErrMalformed},
		{"text after root", slices.Concat(fig2, []byte("MTIzNA==")), Decryption{}, ErrMalformed},
		{"no key packages", plainDoc(), Decryption{}, ErrNoKeys},
		{"too many key packages", plainDoc(many...), Decryption{}, ErrMalformed},
		{"key package without Key", plainDoc("<KeyPackage/>"), Decryption{}, ErrMalformed},
		{"two Keys", replace(t, fig2, "</KeyPackage>", "<Key Algorithm='x'/></KeyPackage>", 1), Decryption{}, ErrMalformed},
		{"no Algorithm", replace(t, fig2, `Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:hotp"`, ``, 1), Decryption{}, ErrMalformed},
		{"no Secret (figure 4)", readTestdata(t, "rfc6030-figure4.xml"), Decryption{}, ErrMalformed},
		{"two Secrets", replace(t, fig2, "</Secret>", "</Secret><Secret><PlainValue>MTIzNA==</PlainValue></Secret>", 1), Decryption{}, ErrMalformed},
		{"PlainValue and EncryptedValue", replace(t, fig6, "<EncryptedValue>", "<PlainValue>MTIzNA==</PlainValue><EncryptedValue>", 1), psk, ErrMalformed},
		{"ValueMAC on a PlainValue", replace(t, fig2, "</PlainValue>", "</PlainValue><ValueMAC>AAAA</ValueMAC>", 1), Decryption{}, ErrMalformed},

		// Values.
		{"PlainValue not base64", replace(t, fig2, "MTIzNA==", "MTIzNA=*", 1), Decryption{}, ErrMalformed},
		{"CipherValue not base64", replace(t, fig6, fig6Secret, "*"+fig6Secret[1:], 1), psk, ErrMalformed},
		{"ciphertext not whole blocks", replace(t, fig6, fig6Secret, notBlocks, 1), psk, ErrMalformed},
		{"ciphertext only an IV", replace(t, fig6, fig6Secret, onlyIV, 1), psk, ErrMalformed},
		{"empty secret", replace(t, fig2, "MTIzNA==", "", 1), Decryption{}, ErrMalformed},
		{"secret of 129 bytes", plainDoc(plainPackage("1", algHOTP, "", "", bytes.Repeat([]byte{1}, 129))), Decryption{}, ErrMalformed},
		{"Counter not a number", replace(t, fig3, "<PlainValue>0</PlainValue>", "<PlainValue>TWELVE</PlainValue>", 1), Decryption{}, ErrMalformed},
		{"Counter negative", replace(t, fig3, "<PlainValue>0</PlainValue>", "<PlainValue>-1</PlainValue>", 1), Decryption{}, ErrMalformed},
		{"Counter over 64 bits", replace(t, fig3, "<PlainValue>0</PlainValue>", "<PlainValue>18446744073709551616</PlainValue>", 1), Decryption{}, ErrMalformed},
		{"4 digits on HOTP", replace(t, fig3, `Length="8"`, `Length="4"`, 1), Decryption{}, ErrMalformed},
		{"11 digits", replace(t, fig3, `Length="8"`, `Length="11"`, 1), Decryption{}, ErrMalformed},
		{"Length not a number", replace(t, fig3, `Length="8"`, `Length="eight"`, 1), Decryption{}, ErrMalformed},
		{"TimeInterval 3601", totp("", "<TimeInterval><PlainValue>3601</PlainValue></TimeInterval>"), Decryption{}, ErrMalformed},
		{"TimeInterval not a number", totp("", "<TimeInterval><PlainValue>30s</PlainValue></TimeInterval>"), Decryption{}, ErrMalformed},
		{"serial over 1024 bytes", plainDoc(plainPackage(strings.Repeat("9", 1025), algHOTP, "", "", rfcSecret)), Decryption{}, ErrMalformed},

		// Algorithms.
		{"kw-aes128", replace(t, fig6, "xmlenc#aes128-cbc", "xmlenc#kw-aes128", 2), psk, ErrUnsupported},
		{"tripledes-cbc", replace(t, fig6, "xmlenc#aes128-cbc", "xmlenc#tripledes-cbc", 2), psk, ErrUnsupported},
		{"no EncryptionMethod", cut(t, fig6, `<xenc:EncryptionMethod
                        Algorithm="http://www.w3.org/2001/04/xmlenc#aes128-cbc"/>`, "/>"), psk, ErrMalformed},
		{"hmac-md5", replace(t, fig6, "http://www.w3.org/2000/09/xmldsig#hmac-sha1", "http://www.w3.org/2001/04/xmldsig-more#hmac-md5", 1), psk, ErrUnsupported},
		{"asymmetric (figure 8)", readTestdata(t, "rfc6030-figure8.xml"), Decryption{}, ErrUnsupported},
		{"asymmetric (figure 8) with keys", readTestdata(t, "rfc6030-figure8.xml"), Decryption{PreSharedKey: rfcPSK, Password: rfcPassword}, ErrUnsupported},
		{"unknown key derivation", replace(t, fig7, "pkcs-5v2-0#pbkdf2", "pkcs-5v2-0#pbkdf1", 1), pw, ErrUnsupported},
		{"unknown PRF", replace(t, fig7, "<PRF/>", `<PRF Algorithm="http://www.w3.org/2001/04/xmldsig-more#hmac-md5"/>`, 1), pw, ErrUnsupported},
		{"IterationCount over the bound", replace(t, fig7, "<IterationCount>1000<", "<IterationCount>10000001<", 1), pw, ErrUnsupported},
		{"IterationCount over 64 bits", replace(t, fig7, "<IterationCount>1000<", "<IterationCount>99999999999999999999<", 1), pw, ErrMalformed},
		{"IterationCount 0", replace(t, fig7, "<IterationCount>1000<", "<IterationCount>0<", 1), pw, ErrMalformed},
		{"KeyLength 20", replace(t, fig7, "<KeyLength>16<", "<KeyLength>20<", 1), pw, ErrMalformed},
		{"KeyLength 32 for aes128-cbc", replace(t, fig7, "<KeyLength>16<", "<KeyLength>32<", 1), pw, ErrMalformed},
		{"no Salt", cut(t, fig7, "<Salt>", "</Salt>"), pw, ErrMalformed},
		{"hash SHA384", totp("<Suite>HMAC-SHA384</Suite>", ""), Decryption{}, ErrUnsupported},
	}
}

func TestParseRefuses(t *testing.T) {
	for _, tc := range negativeCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := Parse(tc.doc, tc.d)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.err)
			assert.Nil(t, keys)
			assert.True(t, strings.HasPrefix(err.Error(), "pskc: "), "message %q", err)
		})
	}
}

// TestErrorsKeepSecrets checks that no error message contains a secret,
// a key, a password or ciphertext, in any encoding.
func TestErrorsKeepSecrets(t *testing.T) {
	secrets := [][]byte{
		rfcSecret, []byte("1234"), rfcPSK, wrongPSK, rfcPassword, wrongPassword,
		rfcMACKey6, rfcMACKey7, rfcDerivedKey7,
	}
	// The IVs and ciphertexts of Figures 6 and 7, secrets and MAC keys.
	for _, b64 := range []string{fig6SecretB64, fig6MACKeyB64, fig7SecretB64, fig7MACKeyB64} {
		b, err := base64.StdEncoding.DecodeString(b64)
		require.NoError(t, err)
		secrets = append(secrets, b, b[aes.BlockSize:])
	}
	var forms []string
	for _, s := range secrets {
		forms = append(forms, string(s), hex.EncodeToString(s), strings.ToUpper(hex.EncodeToString(s)),
			base64.StdEncoding.EncodeToString(s), base64.RawStdEncoding.EncodeToString(s))
	}
	forms = append(forms, "MTIzNA", "AAECAwQFBgcICQoLDA0OD", "oTvo+S22nsmS2Z", "Su+NvtQf", "LP6xMvjt", "Ej7/PEpyEpw")

	var errs []error
	for _, tc := range negativeCases(t) {
		_, err := Parse(tc.doc, tc.d)
		require.Error(t, err, tc.name)
		errs = append(errs, err)
	}
	_, err := Find(nil, "987654321")
	errs = append(errs, err)
	for _, err := range errs {
		msg := err.Error()
		for _, f := range forms {
			assert.NotContains(t, msg, f)
		}
	}
}

func TestFind(t *testing.T) {
	keys, err := Parse(readTestdata(t, "rfc6030-figure10.xml"), Decryption{})
	require.NoError(t, err)

	k, err := Find(keys, "9999999")
	require.NoError(t, err)
	assert.Equal(t, "3", k.ID, "the first of the device's keys")
	assert.Same(t, &keys[2], k)

	for _, serial := range []string{"999999", "99999999", ""} {
		_, err := Find(keys, serial)
		assert.ErrorIs(t, err, ErrSerialNotFound, "serial %q", serial)
	}

	// Figure 2's key has no serial, and "" does not find it.
	keys, err = Parse(readTestdata(t, "rfc6030-figure2.xml"), Decryption{})
	require.NoError(t, err)
	_, err = Find(keys, "")
	assert.ErrorIs(t, err, ErrSerialNotFound)
}

// encSpec says how encryptedDoc encrypts and MACs.
type encSpec struct {
	psk     []byte
	encAlg  string           // EncryptionMethod URI
	macAlg  string           // MACMethod URI, "" for no MACs at all
	macHash func() hash.Hash // the hash of macAlg
	macKey  []byte           // nil for a random 32-byte MAC key
	noKey   bool             // MAC with the encryption key, no MACKey element
}

// encEntry is one TOTP key package of encryptedDoc: a serial and its
// secret's IV and ciphertext.
type encEntry struct {
	serial string
	raw    []byte
}

// encryptedDoc builds a container of TOTP keys (30-second steps, six
// digits) encrypted under spec.psk, each with a ValueMAC over its IV and
// ciphertext keyed with an encrypted MACKey (RFC 6030 §6.1.1).
func encryptedDoc(t testing.TB, spec encSpec, entries []encEntry) []byte {
	t.Helper()
	macKey := spec.macKey
	if macKey == nil {
		macKey = make([]byte, 32)
		_, err := rand.Read(macKey)
		require.NoError(t, err)
	}
	if spec.noKey {
		macKey = spec.psk
	}
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="UTF-8"?>
<KeyContainer Version="1.0" xmlns="urn:ietf:params:xml:ns:keyprov:pskc"
    xmlns:ds="http://www.w3.org/2000/09/xmldsig#"
    xmlns:xenc="http://www.w3.org/2001/04/xmlenc#">
  <EncryptionKey><ds:KeyName>Pre-shared-key</ds:KeyName></EncryptionKey>
`)
	if spec.macAlg != "" {
		fmt.Fprintf(&b, `  <MACMethod Algorithm="%s">`, spec.macAlg)
		if !spec.noKey {
			fmt.Fprintf(&b, `
    <MACKey>
      <xenc:EncryptionMethod Algorithm="%s"/>
      <xenc:CipherData><xenc:CipherValue>%s</xenc:CipherValue></xenc:CipherData>
    </MACKey>
  `, spec.encAlg, base64.StdEncoding.EncodeToString(sealCBC(t, spec.psk, macKey)))
		}
		b.WriteString("</MACMethod>\n")
	}
	for _, e := range entries {
		mac := ""
		if spec.macAlg != "" {
			m := hmac.New(spec.macHash, macKey)
			m.Write(e.raw)
			mac = "<ValueMAC>" + base64.StdEncoding.EncodeToString(m.Sum(nil)) + "</ValueMAC>"
		}
		fmt.Fprintf(&b, `  <KeyPackage>
    <DeviceInfo><Manufacturer>Test</Manufacturer><SerialNo>%s</SerialNo></DeviceInfo>
    <Key Id="%s" Algorithm="urn:ietf:params:xml:ns:keyprov:pskc:totp">
      <AlgorithmParameters><ResponseFormat Length="6" Encoding="DECIMAL"/></AlgorithmParameters>
      <Data>
        <Secret>
          <EncryptedValue>
            <xenc:EncryptionMethod Algorithm="%s"/>
            <xenc:CipherData><xenc:CipherValue>%s</xenc:CipherValue></xenc:CipherData>
          </EncryptedValue>
          %s
        </Secret>
        <Time><PlainValue>0</PlainValue></Time>
        <TimeInterval><PlainValue>30</PlainValue></TimeInterval>
      </Data>
    </Key>
  </KeyPackage>
`, e.serial, e.serial, spec.encAlg, base64.StdEncoding.EncodeToString(e.raw), mac)
	}
	b.WriteString("</KeyContainer>\n")
	return []byte(b.String())
}

// encryptedTOTPDoc builds a container of TOTP keys, one for each serial
// and secret, the secrets encrypted with AES-128-CBC under psk and
// MACed with HMAC-SHA256 under an encrypted MACKey, as a vendor ships
// them.
func encryptedTOTPDoc(t testing.TB, psk []byte, secrets map[string][]byte) []byte {
	t.Helper()
	var entries []encEntry
	for _, serial := range slices.Sorted(maps.Keys(secrets)) {
		entries = append(entries, encEntry{serial: serial, raw: sealCBC(t, psk, secrets[serial])})
	}
	return encryptedDoc(t, encSpec{psk: psk, encAlg: algAES128CBC, macAlg: algHMACSHA256, macHash: sha256.New}, entries)
}

// sealCBC pads plaintext (PKCS#7) and encrypts it with AES-CBC under a
// random IV, returning the IV and ciphertext.
func sealCBC(t testing.TB, key, plaintext []byte) []byte {
	t.Helper()
	n := aes.BlockSize - len(plaintext)%aes.BlockSize
	return rawCBC(t, key, slices.Concat(plaintext, bytes.Repeat([]byte{byte(n)}, n)))
}

// rawCBC encrypts whole blocks with AES-CBC under a random IV, padding
// them not at all.
func rawCBC(t testing.TB, key, blocks []byte) []byte {
	t.Helper()
	block, err := aes.NewCipher(key)
	require.NoError(t, err)
	out := make([]byte, aes.BlockSize+len(blocks))
	_, err = rand.Read(out[:aes.BlockSize])
	require.NoError(t, err)
	cipher.NewCBCEncrypter(block, out[:aes.BlockSize]).CryptBlocks(out[aes.BlockSize:], blocks)
	return out
}

func TestEncryptedTOTP(t *testing.T) {
	psk := mustHex("000102030405060708090a0b0c0d0e0f")
	secrets := map[string][]byte{
		"TOTP00000001": []byte("12345678901234567890"),
		"TOTP00000002": mustHex("3132333435363738393031323334353637383930313233343536373839303132"),
		"TOTP00000003": bytes.Repeat([]byte{0xa5}, 64),
		"TOTP00000004": bytes.Repeat([]byte{0x5a}, 16), // a whole block: a whole block of padding
	}
	doc := encryptedTOTPDoc(t, psk, secrets)

	keys, err := Parse(doc, Decryption{PreSharedKey: psk})
	require.NoError(t, err)
	require.Len(t, keys, len(secrets))
	for serial, secret := range secrets {
		k, err := Find(keys, serial)
		require.NoError(t, err, serial)
		assert.Equal(t, secret, k.Secret, serial)
		assert.True(t, k.TOTP(), serial)
		assert.Equal(t, 30, k.TimeStep, serial)
		assert.Equal(t, 6, k.Digits, serial)
		assert.Equal(t, "DECIMAL", k.Encoding, serial)
		assert.Equal(t, "SHA1", k.Hash, serial)
		assert.Equal(t, serial, k.ID, serial)
		assert.Equal(t, "Test", k.Manufacturer, serial)
	}
	_, err = Find(keys, "TOTP00000005")
	assert.ErrorIs(t, err, ErrSerialNotFound)

	_, err = Parse(doc, Decryption{PreSharedKey: wrongPSK[:16]})
	assert.ErrorIs(t, err, ErrMAC)
	_, err = Parse(doc, Decryption{})
	assert.ErrorIs(t, err, ErrKeyRequired)
}

// TestEncryptionVariants covers the other key sizes and MAC algorithms,
// and the MAC keyed with the encryption key when there is no MACKey.
func TestEncryptionVariants(t *testing.T) {
	secret := []byte("a TOTP seed of some length")
	tests := []struct {
		name string
		spec encSpec
	}{
		{"aes192-cbc, hmac-sha1", encSpec{psk: bytes.Repeat([]byte{1}, 24), encAlg: algAES192CBC, macAlg: algHMACSHA1, macHash: sha1.New}},
		{"aes256-cbc, hmac-sha512", encSpec{psk: bytes.Repeat([]byte{2}, 32), encAlg: algAES256CBC, macAlg: algHMACSHA512, macHash: sha512.New}},
		{"aes128-cbc, hmac-sha256, MAC key is the encryption key", encSpec{psk: bytes.Repeat([]byte{3}, 16), encAlg: algAES128CBC, macAlg: algHMACSHA256, macHash: sha256.New, noKey: true}},
		{"aes128-cbc, no MAC", encSpec{psk: bytes.Repeat([]byte{4}, 16), encAlg: algAES128CBC}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := encryptedDoc(t, tt.spec, []encEntry{{serial: "S1", raw: sealCBC(t, tt.spec.psk, secret)}})
			keys, err := Parse(doc, Decryption{PreSharedKey: tt.spec.psk})
			require.NoError(t, err)
			require.Len(t, keys, 1)
			assert.Equal(t, secret, keys[0].Secret)

			wrong := bytes.Clone(tt.spec.psk)
			wrong[0] ^= 1
			keys, err = Parse(doc, Decryption{PreSharedKey: wrong})
			if tt.spec.macAlg != "" {
				assert.ErrorIs(t, err, ErrMAC)
				return
			}
			// Without a MAC, only the padding shows a wrong key, and
			// about one garbage plaintext in 256 ends in valid padding
			// (the IV is random): then the secret is wrong, silently.
			if err == nil {
				require.Len(t, keys, 1)
				assert.NotEqual(t, secret, keys[0].Secret)
				return
			}
			assert.ErrorIs(t, err, ErrWrongKey)
		})
	}
}

// TestParseKeepsPreSharedKey checks that Parse leaves the caller's key
// as it was, even when the MAC key is the encryption key.
func TestParseKeepsPreSharedKey(t *testing.T) {
	psk := bytes.Repeat([]byte{7}, 16)
	doc := encryptedDoc(t, encSpec{psk: psk, encAlg: algAES128CBC, macAlg: algHMACSHA1, macHash: sha1.New, noKey: true},
		[]encEntry{{serial: "S1", raw: sealCBC(t, psk, rfcSecret)}})
	_, err := Parse(doc, Decryption{PreSharedKey: psk})
	require.NoError(t, err)
	assert.Equal(t, bytes.Repeat([]byte{7}, 16), psk)

	password := []byte("qwerty")
	_, err = Parse(readTestdata(t, "rfc6030-figure7.xml"), Decryption{Password: password})
	require.NoError(t, err)
	assert.Equal(t, []byte("qwerty"), password)
}

func TestHash(t *testing.T) {
	tests := []struct {
		suite, algorithm, want string
	}{
		{"", algTOTP, "SHA1"},
		{"HMAC-SHA1", algTOTP, "SHA1"},
		{"HMAC-SHA256", algTOTP, "SHA256"},
		{"hmac-sha512", algTOTP, "SHA512"},
		{"SHA-256", algTOTP, "SHA256"},
		{"OCRA-1:HOTP-SHA1-6:C-QN08-PSHA1", "urn:ietf:params:xml:ns:keyprov:pskc#OCRA-1", "SHA1"},
		{"OCRA-1:HOTP-SHA256-9:QN02-T2H", "urn:ietf:params:xml:ns:keyprov:pskc#OCRA-1", "SHA256"},
		{"", "urn:example:totp-sha512", "SHA512"},
		{"", "urn:example:shared-secret:totp", "SHA1"},
		{"HMAC-SHA256", "urn:example:totp-sha512", "SHA256"},
	}
	for _, tt := range tests {
		got, err := hashName(tt.suite, tt.algorithm)
		require.NoError(t, err, "%q %q", tt.suite, tt.algorithm)
		assert.Equal(t, tt.want, got, "%q %q", tt.suite, tt.algorithm)
	}
	for _, suite := range []string{"HMAC-SHA384", "SHA224", "SHA3-256"} {
		_, err := hashName(suite, algTOTP)
		assert.ErrorIs(t, err, ErrUnsupported, suite)
	}

	keys, err := Parse(plainDoc(plainPackage("T1", algTOTP, "<Suite>HMAC-SHA256</Suite>", "", rfcSecret)), Decryption{})
	require.NoError(t, err)
	assert.Equal(t, "SHA256", keys[0].Hash)
}

func TestTOTP(t *testing.T) {
	for alg, want := range map[string]bool{
		algTOTP: true,
		"urn:ietf:params:xml:ns:keyprov:pskc#totp": true,
		"URN:IETF:PARAMS:XML:NS:KEYPROV:PSKC:TOTP": true,
		algHOTP: false,
		"urn:ietf:params:xml:ns:keyprov:pskc:pin": false,
		"urn:example:totp-sha256":                 false,
		"":                                        false,
	} {
		k := Key{Algorithm: alg}
		assert.Equal(t, want, k.TOTP(), alg)
	}
}

func TestEncryptedCounter(t *testing.T) {
	psk := bytes.Repeat([]byte{9}, 16)
	doc := encryptedDoc(t, encSpec{psk: psk, encAlg: algAES128CBC, macAlg: algHMACSHA256, macHash: sha256.New, macKey: bytes.Repeat([]byte{8}, 32)},
		[]encEntry{{serial: "C1", raw: sealCBC(t, psk, rfcSecret)}})
	m := hmac.New(sha256.New, bytes.Repeat([]byte{8}, 32))
	raw := sealCBC(t, psk, []byte{0x01, 0x00})
	m.Write(raw)
	counter := fmt.Sprintf(`<Counter><EncryptedValue><xenc:EncryptionMethod Algorithm="%s"/><xenc:CipherData><xenc:CipherValue>%s</xenc:CipherValue></xenc:CipherData></EncryptedValue><ValueMAC>%s</ValueMAC></Counter>`,
		algAES128CBC, base64.StdEncoding.EncodeToString(raw), base64.StdEncoding.EncodeToString(m.Sum(nil)))
	doc = replace(t, doc, "<Time>", counter+"<Time>", 1)
	keys, err := Parse(doc, Decryption{PreSharedKey: psk})
	require.NoError(t, err)
	assert.Equal(t, uint64(256), keys[0].Counter)
}

func TestBOM(t *testing.T) {
	keys, err := Parse(slices.Concat([]byte("\ufeff"), readTestdata(t, "rfc6030-figure2.xml")), Decryption{})
	require.NoError(t, err)
	assert.Len(t, keys, 1)
}

// TestKeyPackageLimit checks that 10,000 key packages are read and
// 10,001 refused before any is looked at. (10,000 valid ones do not fit
// in MaxSize.)
func TestKeyPackageLimit(t *testing.T) {
	empty := func(n int) []byte {
		return plainDoc(slices.Repeat([]string{"<KeyPackage/>"}, n)...)
	}
	_, err := Parse(empty(maxKeyPackages), Decryption{})
	require.ErrorIs(t, err, ErrMalformed)
	assert.Contains(t, err.Error(), "key package 1: no Key")

	_, err = Parse(empty(maxKeyPackages+1), Decryption{})
	require.ErrorIs(t, err, ErrMalformed)
	assert.Contains(t, err.Error(), "more than 10000 key packages")
}

func TestKeyFormatRedacts(t *testing.T) {
	k := Key{Serial: "S1", Secret: rfcSecret, Hash: "SHA1"}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q"} {
		out := fmt.Sprintf(verb, k)
		assert.NotContains(t, out, string(rfcSecret), verb)
		assert.NotContains(t, out, hex.EncodeToString(rfcSecret), verb)
		assert.Contains(t, out, "redacted", verb)
	}
	assert.NotContains(t, fmt.Sprint([]Key{k}), string(rfcSecret))
}

func TestPKCS7Length(t *testing.T) {
	for n := 1; n <= aes.BlockSize; n++ {
		b := slices.Concat(bytes.Repeat([]byte{0xee}, aes.BlockSize-n), bytes.Repeat([]byte{byte(n)}, n))
		got, ok := pkcs7Length(b)
		assert.True(t, ok, n)
		assert.Equal(t, n, got)
	}
	bad := [][]byte{
		bytes.Repeat([]byte{0}, aes.BlockSize),
		bytes.Repeat([]byte{17}, aes.BlockSize),
		slices.Concat(bytes.Repeat([]byte{0xee}, 13), []byte{2, 3, 3}),
		slices.Concat(bytes.Repeat([]byte{0xee}, 15), []byte{0xff}),
		slices.Concat([]byte{15}, bytes.Repeat([]byte{16}, 15)),
	}
	for _, b := range bad {
		_, ok := pkcs7Length(b)
		assert.False(t, ok, "%x", b)
	}
}

// fuzzLimits lowers the PBKDF2 bound for the fuzz target, which would
// otherwise spend seconds on each 10,000,000-iteration document it
// makes; everything else is Parse's.
var fuzzLimits = limits{maxIterations: 20_000}

var sentinels = []error{ErrMalformed, ErrUnsupported, ErrKeyRequired, ErrMAC, ErrWrongKey, ErrNoKeys}

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.xml"))
	require.NoError(f, err)
	require.NotEmpty(f, files)
	for _, name := range files {
		f.Add(readTestdata(f, filepath.Base(name)))
	}
	f.Add(encryptedTOTPDoc(f, rfcPSK, map[string][]byte{"A": rfcSecret, "B": []byte("1234")}))
	for _, tc := range negativeCases(f) {
		if len(tc.doc) <= 16<<10 {
			f.Add(tc.doc)
		}
	}

	d := Decryption{PreSharedKey: rfcPSK, Password: rfcPassword}
	f.Fuzz(func(t *testing.T, doc []byte) {
		keys, err := parse(doc, d, fuzzLimits)
		if err != nil {
			assert.Nil(t, keys)
			assert.True(t, slices.ContainsFunc(sentinels, func(s error) bool { return errors.Is(err, s) }),
				"untyped error %q", err)
			msg := err.Error()
			assert.True(t, strings.HasPrefix(msg, "pskc: "), "message %q", msg)
			for _, s := range []string{hex.EncodeToString(rfcPSK), string(rfcPassword), base64.StdEncoding.EncodeToString(rfcPSK)} {
				assert.NotContains(t, msg, s)
			}
			return
		}
		require.NotEmpty(t, keys)
		assert.LessOrEqual(t, len(keys), maxKeyPackages)
		for _, k := range keys {
			assert.True(t, len(k.Secret) >= 1 && len(k.Secret) <= maxSecret, "secret of %d bytes", len(k.Secret))
			assert.True(t, k.Digits >= 0 && k.Digits <= 10, "digits %d", k.Digits)
			assert.True(t, k.TimeStep >= 0 && k.TimeStep <= maxTimeStep, "time step %d", k.TimeStep)
			assert.Contains(t, []string{"SHA1", "SHA256", "SHA512"}, k.Hash)
			assert.NotEmpty(t, k.Algorithm)
		}
	})
}
