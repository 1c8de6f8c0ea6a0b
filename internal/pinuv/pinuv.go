// Package pinuv implements the PIN/UV auth protocols of CTAP 2.1 §6.5:
// protocol one (§6.5.6) and protocol two (§6.5.7), and the PIN encoding
// rules both ends share (§6.5.5). The same code serves the platform (the
// fido client) and the authenticator (fido/virtual), so that the two can
// only disagree when the spec is misread once, in one place.
//
// Start with [ByVersion] to pick the protocol a request names, or use
// [ProtocolOne] and [ProtocolTwo] directly. The platform calls
// [Protocol.Encapsulate] with the authenticator's key agreement key; the
// authenticator calls [Protocol.Decapsulate] with its own key. Both then
// hold the same shared secret and use Encrypt, Decrypt, Authenticate and
// Verify with it, or with a pinUvAuthToken.
//
// The package does not speak CBOR; internal/ctap holds the messages.
package pinuv

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Protocol is one PIN/UV auth protocol, the abstract interface of CTAP 2.1
// §6.5.4 without initialize, resetKeyAgreement and getPublicKey, which are
// the authenticator's key management and live with its state.
//
// Implementations are stateless values and safe for concurrent use.
type Protocol interface {
	// Version is the pinUvAuthProtocol number sent on the wire: 1 or 2.
	Version() uint64

	// Encapsulate is the platform's half of key agreement (§6.5.6
	// "encapsulate"): it makes an ephemeral P-256 key, agrees with peer,
	// the authenticator's key agreement key, and returns the ephemeral
	// public key to send as keyAgreement and the shared secret. It fails if
	// peer is nil or not on P-256.
	Encapsulate(peer *ecdh.PublicKey) (platformKey *ecdh.PublicKey, shared []byte, err error)

	// Decapsulate is the authenticator's half (§6.5.6 "decapsulate"): it
	// agrees own, its key agreement key, with peer, the platform's key
	// from the request, and returns the shared secret. An error here is
	// answered with CTAP1_ERR_INVALID_PARAMETER.
	Decapsulate(own *ecdh.PrivateKey, peer *ecdh.PublicKey) (shared []byte, err error)

	// Encrypt encrypts plaintext, whose length must be a multiple of 16,
	// under a shared secret from Encapsulate or Decapsulate.
	Encrypt(key, plaintext []byte) ([]byte, error)

	// Decrypt reverses Encrypt. It fails on a ciphertext of impossible
	// length; it cannot detect tampering, which is what Verify is for.
	// An error here is answered with CTAP2_ERR_PIN_AUTH_INVALID (or
	// CTAP1_ERR_INVALID_PARAMETER for hmac-secret salts).
	Decrypt(key, ciphertext []byte) ([]byte, error)

	// Authenticate computes the pinUvAuthParam of message under key, a
	// shared secret or a pinUvAuthToken.
	Authenticate(key, message []byte) []byte

	// Verify reports whether signature is Authenticate(key, message), in
	// constant time. A signature of the wrong length is invalid.
	Verify(key, message, signature []byte) bool
}

// Protocol versions, the values of pinUvAuthProtocol (CTAP 2.1 §6.5.4).
const (
	VersionOne uint64 = 1
	VersionTwo uint64 = 2
)

// Sizes fixed by CTAP 2.1 §6.5.
const (
	// TokenLen is the length of a pinUvAuthToken an authenticator issues
	// (§6.5.2.1: 32 bytes for both protocols in CTAP 2.1).
	TokenLen = 32
	// PINHashLen is the length of PINHash's output, LEFT(SHA-256(pin), 16)
	// (§6.5.5.6).
	PINHashLen = 16
	// PaddedPINLen is the length of a padded PIN, paddedPin (§6.5.5.5).
	PaddedPINLen = 64
	// MinPINCodePoints is the shortest PIN CTAP 2.1 allows anywhere, in
	// Unicode code points (§6.5.1); an authenticator may require more
	// (getInfo minPINLength, §6.4).
	MinPINCodePoints = 4
	// MaxPINBytes is the longest PIN in UTF-8 bytes (§6.5.1).
	MaxPINBytes = 63

	blockSize = aes.BlockSize
)

// ByVersion returns the protocol a pinUvAuthProtocol value names, with its
// zero configuration, or false for any other value. The caller answers
// false with CTAP1_ERR_INVALID_PARAMETER (CTAP 2.1 §6.5.5).
func ByVersion(v uint64) (Protocol, bool) {
	switch v {
	case VersionOne:
		return ProtocolOne{}, true
	case VersionTwo:
		return ProtocolTwo{}, true
	}
	return nil, false
}

// Compile-time checks that both protocols implement Protocol.
var (
	_ Protocol = ProtocolOne{}
	_ Protocol = ProtocolTwo{}
)

// Errors from the protocols. Each is returned wrapped with detail; match
// with errors.Is.
var (
	// ErrKeyAgreement reports a peer key that is nil, not on P-256, or
	// gives no shared secret.
	ErrKeyAgreement = errors.New("pinuv: key agreement failed")
	// ErrKeyLength reports a key of the wrong length for Encrypt or
	// Decrypt: 32 bytes for protocol one, 64 for protocol two.
	ErrKeyLength = errors.New("pinuv: key of wrong length")
	// ErrBlockLength reports a plaintext or ciphertext that is not whole
	// AES blocks (or, for protocol two, lacks its IV).
	ErrBlockLength = errors.New("pinuv: data not a whole number of AES blocks")
)

// ecdhX agrees own with peer on P-256 and returns Z, the x-coordinate of
// the shared point (§6.5.6 "ecdh"), which crypto/ecdh returns for NIST
// curves.
func ecdhX(own *ecdh.PrivateKey, peer *ecdh.PublicKey) ([]byte, error) {
	if own == nil || peer == nil {
		return nil, fmt.Errorf("%w: missing key", ErrKeyAgreement)
	}
	if own.Curve() != ecdh.P256() || peer.Curve() != ecdh.P256() {
		return nil, fmt.Errorf("%w: key not on P-256", ErrKeyAgreement)
	}
	z, err := own.ECDH(peer)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyAgreement, err)
	}
	return z, nil
}

// encapsulate is Encapsulate for both protocols, which differ only in kdf.
func encapsulate(peer *ecdh.PublicKey, kdf func(z []byte) []byte) (*ecdh.PublicKey, []byte, error) {
	if peer == nil || peer.Curve() != ecdh.P256() {
		return nil, nil, fmt.Errorf("%w: peer key not on P-256", ErrKeyAgreement)
	}
	// The rand argument is ignored since Go 1.26: ECDH keys always come
	// from the system's secure source.
	own, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pinuv: generating key agreement key: %w", err)
	}
	z, err := ecdhX(own, peer)
	if err != nil {
		return nil, nil, err
	}
	return own.PublicKey(), kdf(z), nil
}

// cbc runs AES-256-CBC over whole blocks in place of a copy of in.
func cbc(key, iv, in []byte, encrypt bool) ([]byte, error) {
	if len(in)%blockSize != 0 {
		return nil, fmt.Errorf("%w: %d bytes", ErrBlockLength, len(in))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKeyLength, err)
	}
	out := make([]byte, len(in))
	if encrypt {
		cipher.NewCBCEncrypter(b, iv).CryptBlocks(out, in)
	} else {
		cipher.NewCBCDecrypter(b, iv).CryptBlocks(out, in)
	}
	return out, nil
}

func hmacSHA256(key, message []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(message)
	return m.Sum(nil)
}

// ProtocolOne is PIN/UV auth protocol one (CTAP 2.1 §6.5.6), the CTAP 2.0
// protocol: SHA-256 of the ECDH secret as the only key, AES-256-CBC with a
// zero IV, and HMAC-SHA-256 truncated to 16 bytes. It has no settings; the
// zero value is ready to use.
type ProtocolOne struct{}

// Version returns VersionOne.
func (ProtocolOne) Version() uint64 { return VersionOne }

// kdf is SHA-256(Z) (§6.5.6 "kdf").
func (ProtocolOne) kdf(z []byte) []byte {
	h := sha256.Sum256(z)
	return h[:]
}

// Encapsulate implements Protocol; the shared secret is 32 bytes.
func (p ProtocolOne) Encapsulate(peer *ecdh.PublicKey) (*ecdh.PublicKey, []byte, error) {
	return encapsulate(peer, p.kdf)
}

// Decapsulate implements Protocol; the shared secret is 32 bytes.
func (p ProtocolOne) Decapsulate(own *ecdh.PrivateKey, peer *ecdh.PublicKey) ([]byte, error) {
	z, err := ecdhX(own, peer)
	if err != nil {
		return nil, err
	}
	return p.kdf(z), nil
}

// Encrypt is AES-256-CBC with an all-zero IV and no padding (§6.5.6
// "encrypt"). key must be the 32-byte shared secret and plaintext whole
// blocks. The zero IV is safe only because every plaintext protocol one
// encrypts (a padded PIN, a PIN hash, a token, salts) is either random or
// encrypted under a fresh shared secret.
func (ProtocolOne) Encrypt(key, plaintext []byte) ([]byte, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("%w: %d bytes, want 32", ErrKeyLength, len(key))
	}
	return cbc(key, make([]byte, blockSize), plaintext, true)
}

// Decrypt reverses Encrypt (§6.5.6 "decrypt").
func (ProtocolOne) Decrypt(key, ciphertext []byte) ([]byte, error) {
	if len(key) != 32 {
		return nil, fmt.Errorf("%w: %d bytes, want 32", ErrKeyLength, len(key))
	}
	return cbc(key, make([]byte, blockSize), ciphertext, false)
}

// Authenticate returns LEFT(HMAC-SHA-256(key, message), 16) (§6.5.6
// "authenticate"). key is used whole, whatever its length: a 32-byte
// shared secret, or a pinUvAuthToken of 16 or 32 bytes.
func (ProtocolOne) Authenticate(key, message []byte) []byte {
	return hmacSHA256(key, message)[:16]
}

// Verify implements Protocol. The signature must be exactly 16 bytes; the
// authenticator answers a failure with CTAP2_ERR_PIN_AUTH_INVALID.
func (p ProtocolOne) Verify(key, message, signature []byte) bool {
	if len(signature) != 16 {
		return false
	}
	return subtle.ConstantTimeCompare(p.Authenticate(key, message), signature) == 1
}

// ProtocolTwo is PIN/UV auth protocol two (CTAP 2.1 §6.5.7), the one
// FIPS-approved authenticators use: HKDF-SHA-256 derives separate HMAC and
// AES keys, AES-256-CBC uses a random IV sent before the ciphertext, and
// HMAC-SHA-256 is not truncated.
//
// The zero value is ready to use and safe for concurrent use if Rand is.
type ProtocolTwo struct {
	// Rand is the source of Encrypt's IVs; nil means crypto/rand.Reader.
	// Tests set it for repeatable ciphertexts. It does not affect the
	// ephemeral key of Encapsulate, which Go always draws from the system.
	Rand io.Reader
}

// Version returns VersionTwo.
func (ProtocolTwo) Version() uint64 { return VersionTwo }

// HKDF info strings of §6.5.7 "kdf".
const (
	hkdfInfoHMAC = "CTAP2 HMAC key"
	hkdfInfoAES  = "CTAP2 AES key"
)

// SharedSecretLen2 is the length of protocol two's shared secret: the
// HMAC key followed by the AES key (§6.5.7 "kdf").
const SharedSecretLen2 = 64

// kdf is HKDF-SHA-256(salt = 32 zero bytes, IKM = Z, L = 32, info =
// "CTAP2 HMAC key") || the same with info "CTAP2 AES key" (§6.5.7).
func (ProtocolTwo) kdf(z []byte) []byte {
	salt := make([]byte, 32)
	out := make([]byte, 0, SharedSecretLen2)
	for _, info := range []string{hkdfInfoHMAC, hkdfInfoAES} {
		k, err := hkdf.Key(sha256.New, z, salt, info, 32)
		if err != nil {
			// Only FIPS 140-only mode with a short Z can fail, and Z is
			// always 32 bytes.
			panic("pinuv: HKDF: " + err.Error())
		}
		out = append(out, k...)
	}
	return out
}

// Encapsulate implements Protocol; the shared secret is 64 bytes.
func (p ProtocolTwo) Encapsulate(peer *ecdh.PublicKey) (*ecdh.PublicKey, []byte, error) {
	return encapsulate(peer, p.kdf)
}

// Decapsulate implements Protocol; the shared secret is 64 bytes.
func (p ProtocolTwo) Decapsulate(own *ecdh.PrivateKey, peer *ecdh.PublicKey) ([]byte, error) {
	z, err := ecdhX(own, peer)
	if err != nil {
		return nil, err
	}
	return p.kdf(z), nil
}

// aesKey selects the AES half of a protocol two shared secret (§6.5.7:
// "discard the first 32 bytes of key").
func aesKey(key []byte) ([]byte, error) {
	if len(key) != SharedSecretLen2 {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrKeyLength, len(key), SharedSecretLen2)
	}
	return key[32:], nil
}

// Encrypt returns IV || AES-256-CBC(AES key, IV, plaintext) with a fresh
// random IV from Rand (§6.5.7 "encrypt"). key must be the 64-byte shared
// secret and plaintext whole blocks.
func (p ProtocolTwo) Encrypt(key, plaintext []byte) ([]byte, error) {
	k, err := aesKey(key)
	if err != nil {
		return nil, err
	}
	r := p.Rand
	if r == nil {
		r = rand.Reader
	}
	iv := make([]byte, blockSize)
	if _, err := io.ReadFull(r, iv); err != nil {
		return nil, fmt.Errorf("pinuv: reading IV: %w", err)
	}
	ct, err := cbc(k, iv, plaintext, true)
	if err != nil {
		return nil, err
	}
	return append(iv, ct...), nil
}

// Decrypt splits the IV off ciphertext and decrypts the rest (§6.5.7
// "decrypt"). A ciphertext shorter than one block, or not whole blocks
// after the IV, is an error.
func (ProtocolTwo) Decrypt(key, ciphertext []byte) ([]byte, error) {
	k, err := aesKey(key)
	if err != nil {
		return nil, err
	}
	if len(ciphertext) < blockSize {
		return nil, fmt.Errorf("%w: %d bytes, no room for the IV", ErrBlockLength, len(ciphertext))
	}
	return cbc(k, ciphertext[:blockSize], ciphertext[blockSize:], false)
}

// Authenticate returns HMAC-SHA-256(key, message), all 32 bytes (§6.5.7
// "authenticate"). A key longer than 32 bytes is cut to its first 32,
// which selects the HMAC half of a shared secret; a pinUvAuthToken is
// exactly 32 bytes and used whole.
func (ProtocolTwo) Authenticate(key, message []byte) []byte {
	if len(key) > 32 {
		key = key[:32]
	}
	return hmacSHA256(key, message)
}

// Verify implements Protocol. The signature must be exactly 32 bytes; the
// authenticator answers a failure with CTAP2_ERR_PIN_AUTH_INVALID.
func (p ProtocolTwo) Verify(key, message, signature []byte) bool {
	if len(signature) != sha256.Size {
		return false
	}
	return subtle.ConstantTimeCompare(p.Authenticate(key, message), signature) == 1
}

// Errors about PINs from PadPIN and UnpadPIN. An authenticator answers
// each with CTAP2_ERR_PIN_POLICY_VIOLATION (CTAP 2.1 §6.5.5.5), except
// ErrPaddedPINLength, which §6.5.5.5 answers with
// CTAP1_ERR_INVALID_PARAMETER.
var (
	ErrPINTooShort = errors.New("pinuv: PIN shorter than 4 code points")
	ErrPINTooLong  = errors.New("pinuv: PIN longer than 63 bytes")
	ErrPINNotUTF8  = errors.New("pinuv: PIN is not valid UTF-8")
	// ErrPINHasNUL reports a PIN containing U+0000. Padding is zero bytes,
	// so such a PIN cannot be told apart from a shorter one.
	ErrPINHasNUL       = errors.New("pinuv: PIN contains a NUL character")
	ErrPaddedPINLength = errors.New("pinuv: padded PIN is not 64 bytes")
)

// checkPIN applies the rules of CTAP 2.1 §6.5.1 that both ends share.
func checkPIN(pin string) error {
	switch {
	case !utf8.ValidString(pin):
		return ErrPINNotUTF8
	case strings.IndexByte(pin, 0) >= 0:
		return ErrPINHasNUL
	case len(pin) > MaxPINBytes:
		return fmt.Errorf("%w: %d bytes", ErrPINTooLong, len(pin))
	case utf8.RuneCountInString(pin) < MinPINCodePoints:
		return fmt.Errorf("%w: %d code points", ErrPINTooShort, utf8.RuneCountInString(pin))
	}
	return nil
}

// PadPIN returns paddedPin, the UTF-8 PIN followed by zero bytes to 64
// bytes, which the platform encrypts into newPinEnc (CTAP 2.1 §6.5.5.5,
// §6.5.5.6). The PIN must be valid UTF-8 of at least 4 code points and at
// most 63 bytes, without NUL; otherwise PadPIN returns an error wrapping
// ErrPINNotUTF8, ErrPINHasNUL, ErrPINTooLong or ErrPINTooShort. The
// platform checks an authenticator's larger minPINLength itself.
//
// The PIN is not normalised: the spec hashes the bytes as typed, so a
// platform that wants NFC must apply it before calling PadPIN and PINHash.
func PadPIN(pin string) ([]byte, error) {
	if err := checkPIN(pin); err != nil {
		return nil, err
	}
	b := make([]byte, PaddedPINLen)
	copy(b, pin)
	return b, nil
}

// UnpadPIN is the authenticator's inverse of PadPIN (CTAP 2.1 §6.5.5.5
// steps on paddedNewPin): b must be 64 bytes; the PIN is the bytes before
// the first zero byte, and every byte after it must be zero too, so that
// each PIN has one padded form. The PIN is then checked like PadPIN's
// input. Errors wrap ErrPaddedPINLength, ErrPINHasNUL (a non-zero byte
// after the first zero), ErrPINNotUTF8, ErrPINTooLong (no zero byte at
// all) or ErrPINTooShort. The caller compares the code-point count with
// its own minPINLength.
func UnpadPIN(b []byte) (string, error) {
	if len(b) != PaddedPINLen {
		return "", fmt.Errorf("%w: %d bytes", ErrPaddedPINLength, len(b))
	}
	n := 0
	for n < len(b) && b[n] != 0 {
		n++
	}
	for _, c := range b[n:] {
		if c != 0 {
			return "", ErrPINHasNUL
		}
	}
	pin := string(b[:n])
	if err := checkPIN(pin); err != nil {
		return "", err
	}
	return pin, nil
}

// PINHash returns LEFT(SHA-256(pin), 16), the form in which an
// authenticator stores a PIN and a platform proves it knows one
// (pinHashEnc, CTAP 2.1 §6.5.5.6 and §6.5.5.7). It hashes the UTF-8 bytes
// as they are, without padding or checks.
func PINHash(pin string) []byte {
	h := sha256.Sum256([]byte(pin))
	return h[:PINHashLen]
}

// Permission is a set of pinUvAuthToken permissions, the permissions
// parameter of authenticatorClientPIN (CTAP 2.1 §6.5.5.7).
type Permission uint64

// Permission bits (CTAP 2.1 §6.5.5.7, table "pinUvAuthToken permissions").
const (
	PermMakeCredential       Permission = 0x01 // mc: authenticatorMakeCredential
	PermGetAssertion         Permission = 0x02 // ga: authenticatorGetAssertion
	PermCredentialManagement Permission = 0x04 // cm: authenticatorCredentialManagement
	PermBioEnrollment        Permission = 0x08 // be: authenticatorBioEnrollment
	PermLargeBlobWrite       Permission = 0x10 // lbw: authenticatorLargeBlobs writes
	PermAuthenticatorConfig  Permission = 0x20 // acfg: authenticatorConfig
	// PermCredentialManagementReadOnly is pcmr from CTAP 2.2 §6.5.5.7,
	// listed so that String names it when a newer platform asks for it.
	PermCredentialManagementReadOnly Permission = 0x40
)

var permNames = []struct {
	p    Permission
	name string
}{
	{PermMakeCredential, "mc"},
	{PermGetAssertion, "ga"},
	{PermCredentialManagement, "cm"},
	{PermBioEnrollment, "be"},
	{PermLargeBlobWrite, "lbw"},
	{PermAuthenticatorConfig, "acfg"},
	{PermCredentialManagementReadOnly, "pcmr"},
}

// String lists the spec's abbreviations joined by "|", such as "mc|ga",
// with any unknown bits in hex at the end; the empty set is "none".
func (p Permission) String() string {
	if p == 0 {
		return "none"
	}
	var parts []string
	rest := p
	for _, n := range permNames {
		if p&n.p != 0 {
			parts = append(parts, n.name)
			rest &^= n.p
		}
	}
	if rest != 0 {
		parts = append(parts, fmt.Sprintf("0x%x", uint64(rest)))
	}
	return strings.Join(parts, "|")
}
