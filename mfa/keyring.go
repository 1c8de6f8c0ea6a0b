package mfa

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"
	"unicode/utf8"
)

// ErrSealed reports a sealed secret that cannot be opened: sealed under a
// key the [Keyring] does not hold, or altered. The message names the key
// ID, never the secret.
var ErrSealed = errors.New("mfa: sealed secret cannot be opened")

// Keyring holds the AES-256 keys that seal TOTP seeds at rest. One key is
// current and seals everything new; the others only open what they
// sealed earlier, until [Manager.RotateKeys] has re-sealed it. The keys
// are the application's (from a secrets manager, a KMS-unwrapped data key,
// or a file only the service can read); the database never holds them.
//
// A Keyring is safe for concurrent use. It never prints its keys.
type Keyring struct {
	current string
	aeads   map[string]cipher.AEAD
}

// NewKeyring returns a keyring sealing with keys[current]. Every key is
// 32 bytes (AES-256); IDs are 1 to 64 bytes of UTF-8 and are stored next
// to each sealed secret, so choose ones that stay meaningful ("2026-12").
// The keyring copies nothing it does not need: it keeps only the ciphers.
func NewKeyring(current string, keys map[string][]byte) (*Keyring, error) {
	if _, ok := keys[current]; !ok {
		return nil, fmt.Errorf("mfa: keyring: no key with the current ID %q", current)
	}
	k := &Keyring{current: current, aeads: make(map[string]cipher.AEAD, len(keys))}
	for id, key := range keys {
		if id == "" || len(id) > 64 || !utf8.ValidString(id) {
			return nil, fmt.Errorf("mfa: keyring: key ID %q: want 1 to 64 bytes of UTF-8", id)
		}
		if len(key) != 32 {
			return nil, fmt.Errorf("mfa: keyring: key %q is %d bytes, want 32", id, len(key))
		}
		block, err := aes.NewCipher(key)
		if err != nil {
			return nil, fmt.Errorf("mfa: keyring: key %q: %v", id, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("mfa: keyring: key %q: %v", id, err)
		}
		k.aeads[id] = aead
	}
	return k, nil
}

// Current is the ID of the key that seals new secrets.
func (k *Keyring) Current() string { return k.current }

// String names the keyring's key IDs, never the keys.
func (k *Keyring) String() string {
	return fmt.Sprintf("mfa.Keyring(current %q, %d keys)", k.current, len(k.aeads))
}

// seal encrypts secret under the current key, bound to context (the
// record the secret belongs to), so a sealed box moved to another record
// does not open.
func (k *Keyring) seal(secret, context []byte) (Sealed, error) {
	aead := k.aeads[k.current]
	nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(secret)+aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return Sealed{}, fmt.Errorf("mfa: sealing: %v", err)
	}
	return Sealed{KeyID: k.current, Box: aead.Seal(nonce, nonce, secret, context)}, nil
}

// open decrypts s, which must have been sealed with the same context.
func (k *Keyring) open(s Sealed, context []byte) ([]byte, error) {
	aead, ok := k.aeads[s.KeyID]
	if !ok {
		return nil, fmt.Errorf("%w: key %q is not in the keyring", ErrSealed, s.KeyID)
	}
	if len(s.Box) < aead.NonceSize()+aead.Overhead() {
		return nil, fmt.Errorf("%w: box too short", ErrSealed)
	}
	n := aead.NonceSize()
	secret, err := aead.Open(nil, s.Box[:n], s.Box[n:], context)
	if err != nil {
		return nil, fmt.Errorf("%w: key %q: authentication failed", ErrSealed, s.KeyID)
	}
	return secret, nil
}

// sealContext binds a TOTP seed to its user and device (or enrollment:
// a device keeps its enrollment's ID, so the box moves over unchanged).
func sealContext(userID, id []byte) []byte {
	c := make([]byte, 0, 32+len(userID)+len(id))
	c = append(c, "fidokit mfa totp seed v1"...)
	c = append(c, byte(len(userID)))
	c = append(c, userID...)
	return append(c, id...)
}
