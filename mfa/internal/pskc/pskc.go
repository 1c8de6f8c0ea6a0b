// Package pskc reads the seed files that hardware OTP token vendors ship
// with their tokens: Portable Symmetric Key Containers, RFC 6030.
//
// Start with [Parse], which returns every key of a container decrypted,
// then pick a token's key with [Find]:
//
//	keys, err := pskc.Parse(doc, pskc.Decryption{PreSharedKey: psk})
//	if err != nil { ... }
//	k, err := pskc.Find(keys, serial)
//
// # What is read
//
// The KeyContainer (RFC 6030 §4) must be version "1.0" in the namespace
// urn:ietf:params:xml:ns:keyprov:pskc. Of each KeyPackage it reads the
// DeviceInfo (§4.3.1), the Key's Id and Algorithm (§4.1), its
// AlgorithmParameters (§4.3.4) and the Data elements Secret, Counter and
// TimeInterval (§4.1), each either a PlainValue or an EncryptedValue.
// Containers with several keys (bulk provisioning, §8) are the common
// case. Policy (§5), key derivation values without a Secret (§4.4) and
// everything else are not interpreted; a key without a Secret is an
// error, since a token's seed is what this package is for. Below the
// root, elements are matched by local name in any namespace, as vendors
// are loose about prefixes; a repeated element is an error. The document
// is UTF-8, a byte order mark allowed, without a DOCTYPE.
//
// # Encryption
//
// Encrypted values (§6) are AES-128/192/256 in CBC mode (XML Encryption
// aes128-cbc, aes192-cbc, aes256-cbc), the IV prepended to the
// ciphertext and the plaintext PKCS#7 padded (§6.4). The key is a
// pre-shared key named by ds:KeyName (§6.1) or derived from a password
// with PBKDF2 (§6.2, RFC 8018). Each encrypted value's ValueMAC, an HMAC
// (SHA-1, SHA-256 or SHA-512) over the IV and ciphertext keyed with the
// container's encrypted MACKey (§6.1.1), is checked before the value is
// decrypted. Asymmetric encryption (§6.3), key wrap and the other
// algorithms of §6.1 are not implemented: they fail with
// [ErrUnsupported].
//
// The container's digital signature (§7), if any, is not verified: the
// MAC shows that whoever made the container knew the encryption key, no
// more. A container without MACs has no integrity protection at all, and
// a wrong key then goes unnoticed whenever the garbage it decrypts to
// happens to end in valid padding.
//
// # Why no PSKC library
//
// No maintained Go PSKC library reads encrypted containers, and the
// subset of the format a seed file import needs is small: this package
// is encoding/xml and the standard library's crypto, nothing else.
//
// # Errors
//
// Every error matches one of the sentinels below with errors.Is; its
// message starts with "pskc: " and never contains a secret, a key, a
// password or ciphertext.
package pskc

import (
	"errors"
	"fmt"
	"strings"
)

// MaxSize is the largest document Parse accepts (1 MiB).
const MaxSize = 1 << 20

// Limits on what a container may hold; past them Parse fails with
// ErrMalformed (ErrUnsupported for the iteration count).
const (
	maxKeyPackages = 10_000     // KeyPackages in one container
	maxSecret      = 128        // bytes of a Secret (and of a MAC key)
	maxTimeStep    = 3600       // seconds of a TimeInterval
	maxIterations  = 10_000_000 // PBKDF2 iterations, against CPU exhaustion
	maxText        = 1024       // bytes of a serial, an ID, an algorithm URI
	maxSalt        = 1024       // bytes of a PBKDF2 salt
)

// Errors of Parse and Find. Match them with errors.Is; the errors
// returned wrap them with context (which key package, which element) but
// never with secret values.
var (
	// ErrMalformed: not a PSKC document this package reads: not
	// well-formed XML, not a version 1.0 KeyContainer, a required
	// element missing or repeated, bad base64, a number out of range,
	// ciphertext that is not whole blocks, bad padding in a value whose
	// MAC verified, or a document over MaxSize.
	ErrMalformed = errors.New("pskc: malformed container")
	// ErrUnsupported: an encryption, MAC, key-derivation or
	// pseudorandom function algorithm this package does not implement,
	// asymmetric encryption (RFC 6030 §6.3), a hash other than SHA-1,
	// SHA-256 and SHA-512, or a PBKDF2 iteration count over 10,000,000.
	ErrUnsupported = errors.New("pskc: unsupported algorithm")
	// ErrKeyRequired: the container holds encrypted values and
	// Decryption lacks the pre-shared key or password they need.
	ErrKeyRequired = errors.New("pskc: container is encrypted and the key or password it needs was not given")
	// ErrMAC: an encrypted value's MAC does not verify, is missing
	// although the container declares a MACMethod, or the MAC key does
	// not decrypt. This is what a wrong pre-shared key or password
	// shows up as in containers with MACs, which RFC 6030 §6.1.1
	// requires.
	ErrMAC = errors.New("pskc: MAC does not verify (wrong key or password, or altered container)")
	// ErrWrongKey: a value without a MAC does not decrypt with the key
	// or password given (its padding is invalid), or the pre-shared key
	// is not the length its algorithm needs.
	ErrWrongKey = errors.New("pskc: value does not decrypt with the key or password given")
	// ErrSerialNotFound: Find found no key with that serial number.
	ErrSerialNotFound = errors.New("pskc: no key with that serial number")
	// ErrNoKeys: the container holds no KeyPackage.
	ErrNoKeys = errors.New("pskc: container holds no keys")
)

// Key is one key package of a container, decrypted. It is a plain value:
// Parse returns a new slice of them on every call. Its Format method
// redacts Secret, so that printing a Key does not leak it.
type Key struct {
	// Serial is DeviceInfo/SerialNo; empty if absent.
	Serial string
	// Manufacturer is DeviceInfo/Manufacturer; empty if absent.
	Manufacturer string
	// ID is the Key element's Id attribute; empty if absent.
	ID string
	// Algorithm is the Key's Algorithm URI (RFC 6030 §10), e.g.
	// "urn:ietf:params:xml:ns:keyprov:pskc:hotp" or
	// "urn:ietf:params:xml:ns:keyprov:pskc:totp".
	Algorithm string
	// Secret is the key value, Data/Secret, decrypted: 1 to 128 bytes.
	Secret []byte
	// Digits is AlgorithmParameters/ResponseFormat@Length: 0 if absent
	// (or 0), else 6 to 10, or 1 to 10 for a PIN (the PIN profile of
	// RFC 6030 §10.2, as in Figure 5).
	Digits int
	// Encoding is ResponseFormat@Encoding ("DECIMAL", "HEXADECIMAL",
	// ...); empty if absent.
	Encoding string
	// Hash is "SHA1", "SHA256" or "SHA512": the first hash named in
	// AlgorithmParameters/Suite (as in "HMAC-SHA256" or an OCRA suite),
	// else in the Algorithm URI, else "SHA1".
	Hash string
	// TimeStep is Data/TimeInterval in seconds (TOTP), 0 to 3600; 0 if
	// absent.
	TimeStep int
	// Counter is Data/Counter (HOTP); 0 if absent.
	Counter uint64
}

// TOTP reports whether the key is a time-based (TOTP) key: its Algorithm
// ends in ":totp" (urn:ietf:params:xml:ns:keyprov:pskc:totp) or "#totp"
// (as in older drafts' urn:ietf:params:xml:ns:keyprov:pskc#totp), in any
// case.
func (k *Key) TOTP() bool {
	a := strings.ToLower(k.Algorithm)
	return strings.HasSuffix(a, ":totp") || strings.HasSuffix(a, "#totp")
}

// Format prints the key with its Secret redacted, for every verb.
func (k Key) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "pskc.Key{Serial:%q Manufacturer:%q ID:%q Algorithm:%q Secret:[redacted, %d bytes] Digits:%d Encoding:%q Hash:%q TimeStep:%d Counter:%d}",
		k.Serial, k.Manufacturer, k.ID, k.Algorithm, len(k.Secret), k.Digits, k.Encoding, k.Hash, k.TimeStep, k.Counter)
}

// Decryption holds what decrypts an encrypted container. The zero value
// decrypts only containers without encrypted values; Parse needs only
// the one its container uses, and neither is modified.
type Decryption struct {
	// PreSharedKey is the AES key for containers whose EncryptionKey
	// names a pre-shared key (ds:KeyName, RFC 6030 §6.1): 16 bytes for
	// aes128-cbc, 24 for aes192-cbc, 32 for aes256-cbc. It is also used
	// for encrypted values in a container with no EncryptionKey at all.
	PreSharedKey []byte
	// Password derives the key, with PBKDF2, for containers whose
	// EncryptionKey is a DerivedKey (RFC 6030 §6.2). Its bytes are used
	// as they are (normally UTF-8).
	Password []byte
}

// Parse reads a PSKC document and returns every key package in it, in
// document order, each decrypted and its MAC checked. A document that
// fails anywhere yields no keys at all. Parse is safe for concurrent
// use.
func Parse(doc []byte, d Decryption) ([]Key, error) {
	return parse(doc, d, limits{maxIterations: maxIterations})
}

// Find returns the first key, in document order, whose Serial equals
// serial (a device may hold several keys, RFC 6030 §8), as a pointer
// into keys; or an error wrapping ErrSerialNotFound. An empty serial
// matches no key.
func Find(keys []Key, serial string) (*Key, error) {
	if serial != "" {
		for i := range keys {
			if keys[i].Serial == serial {
				return &keys[i], nil
			}
		}
	}
	return nil, fmt.Errorf("%w: %q", ErrSerialNotFound, serial)
}

// limits are the bounds Parse enforces that tests may lower: the fuzz
// target would otherwise spend seconds on each 10,000,000-iteration
// PBKDF2 it finds.
type limits struct {
	maxIterations int
}

// parseError is an error of Parse: a sentinel, the key package it
// occurred in (1-based, 0 for the container) and what was wrong. The
// detail is built only from constant text and numbers, never from the
// document's values.
type parseError struct {
	kind   error
	pkg    int
	detail string
}

func (e *parseError) Error() string {
	s := e.kind.Error()
	if e.pkg > 0 {
		s += fmt.Sprintf(": key package %d", e.pkg)
	}
	if e.detail != "" {
		s += ": " + e.detail
	}
	return s
}

func (e *parseError) Unwrap() error { return e.kind }

// fail returns a parseError of kind. format and args must be constant
// text and numbers: nothing read from the document goes into an error.
func fail(kind error, format string, args ...any) error {
	return &parseError{kind: kind, detail: fmt.Sprintf(format, args...)}
}

// inPackage records in err which key package it occurred in.
func inPackage(err error, pkg int) error {
	var pe *parseError
	if errors.As(err, &pe) && pe.pkg == 0 {
		pe.pkg = pkg
	}
	return err
}
