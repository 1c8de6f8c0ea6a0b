package pskc

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"hash"
	"strings"
)

// Algorithm URIs (RFC 6030 §6.1, §6.1.1, §6.2).
const (
	algAES128CBC = "http://www.w3.org/2001/04/xmlenc#aes128-cbc"
	algAES192CBC = "http://www.w3.org/2001/04/xmlenc#aes192-cbc"
	algAES256CBC = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"

	algHMACSHA1   = "http://www.w3.org/2000/09/xmldsig#hmac-sha1"
	algHMACSHA256 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
	algHMACSHA512 = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha512"

	// RFC 6030 §6.2 names PBKDF2 ".../pkcs-5#pbkdf2", while its own
	// Figure 7 uses ".../pkcs-5v2-0#pbkdf2", as vendors do; XML
	// Encryption 1.1 has its own URI. All three are accepted.
	algPBKDF2         = "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5v2-0#pbkdf2"
	algPBKDF2RFC6030  = "http://www.rsasecurity.com/rsalabs/pkcs/schemas/pkcs-5#pbkdf2"
	algPBKDF2XMLEnc11 = "http://www.w3.org/2009/xmlenc11#pbkdf2"
)

// cbcKeySize returns the key size of a supported encryption algorithm.
func cbcKeySize(uri string) (int, bool) {
	switch uri {
	case algAES128CBC:
		return 16, true
	case algAES192CBC:
		return 24, true
	case algAES256CBC:
		return 32, true
	}
	return 0, false
}

// hmacHash returns the hash of a supported HMAC algorithm URI, used for
// MACs and for PBKDF2's pseudorandom function alike.
func hmacHash(uri string) (func() hash.Hash, bool) {
	switch uri {
	case algHMACSHA1:
		return sha1.New, true
	case algHMACSHA256:
		return sha256.New, true
	case algHMACSHA512:
		return sha512.New, true
	}
	return nil, false
}

// maxCiphertext is the longest IV and ciphertext read: a 128-byte value
// padded to 144 bytes, after a 16-byte IV.
const maxCiphertext = aes.BlockSize + maxSecret + aes.BlockSize

// state is what decrypting one container needs, worked out once, when
// the first encrypted value needs it.
type state struct {
	d             Decryption
	lim           limits
	encryptionKey *xmlEncryptionKey
	macMethod     *xmlMACMethod

	keyDone    bool
	key        []byte // aliases d.PreSharedKey unless derived
	keyDerived bool
	keyErr     error

	macDone  bool
	macKey   []byte // aliases key when the container has no MACKey
	macOwned bool   // macKey was decrypted here, not aliased
	macHash  func() hash.Hash
	macErr   error
}

// wipe zeroes the keys this state made (never the caller's).
func (s *state) wipe() {
	if s.macOwned {
		clear(s.macKey)
	}
	if s.keyDerived {
		clear(s.key)
	}
}

// decrypt checks an EncryptedValue's MAC and then decrypts it. mac is
// its ValueMAC, nil if it has none.
func (s *state) decrypt(enc *xmlEncrypted, mac *string, what string) ([]byte, error) {
	alg, raw, err := ciphertext(enc, what)
	if err != nil {
		return nil, err
	}
	key, err := s.keyFor(alg)
	if err != nil {
		return nil, err
	}
	switch {
	case mac != nil:
		// RFC 6030 §6.1.1: the MAC is over the CipherValue, IV and
		// ciphertext, and is checked before anything is decrypted.
		macKey, h, err := s.mac()
		if err != nil {
			return nil, err
		}
		want, err := decodeBase64(*mac)
		if err != nil {
			return nil, fail(ErrMalformed, "%s ValueMAC is not base64", what)
		}
		m := hmac.New(h, macKey)
		m.Write(raw)
		if !hmac.Equal(m.Sum(nil), want) {
			return nil, fail(ErrMAC, "%s", what)
		}
	case s.macMethod != nil:
		return nil, fail(ErrMAC, "%s has no ValueMAC though the container has a MACMethod", what)
	}
	plain, ok := cbcDecrypt(key, raw)
	if !ok {
		if mac != nil {
			// The MAC verified, so the key is right: the sender padded
			// badly.
			return nil, fail(ErrMalformed, "%s has bad padding", what)
		}
		return nil, fail(ErrWrongKey, "%s", what)
	}
	return plain, nil
}

// ciphertext returns an encrypted value's algorithm, checked to be
// supported, and its IV and ciphertext, checked to be whole blocks.
func ciphertext(enc *xmlEncrypted, what string) (string, []byte, error) {
	m, err := atMostOne(enc.Method, what+" EncryptionMethod")
	if err != nil {
		return "", nil, err
	}
	if m == nil {
		return "", nil, fail(ErrMalformed, "%s has no EncryptionMethod", what)
	}
	alg := strings.TrimSpace(m.Algorithm)
	if _, ok := cbcKeySize(alg); !ok {
		return "", nil, fail(ErrUnsupported, "%s EncryptionMethod is not aes128-cbc, aes192-cbc or aes256-cbc", what)
	}
	cd, err := atMostOne(enc.CipherData, what+" CipherData")
	if err != nil {
		return "", nil, err
	}
	if cd == nil {
		return "", nil, fail(ErrMalformed, "%s has no CipherData", what)
	}
	if len(cd.Reference) > 0 {
		return "", nil, fail(ErrUnsupported, "%s has a CipherReference", what)
	}
	v, err := atMostOne(cd.Value, what+" CipherValue")
	if err != nil {
		return "", nil, err
	}
	if v == nil {
		return "", nil, fail(ErrMalformed, "%s has no CipherValue", what)
	}
	raw, err := decodeBase64(*v)
	if err != nil {
		return "", nil, fail(ErrMalformed, "%s CipherValue is not base64", what)
	}
	if len(raw) < 2*aes.BlockSize || len(raw)%aes.BlockSize != 0 {
		return "", nil, fail(ErrMalformed, "%s CipherValue is not an IV and whole blocks of ciphertext", what)
	}
	if len(raw) > maxCiphertext {
		return "", nil, fail(ErrMalformed, "%s CipherValue is over %d bytes", what, maxCiphertext)
	}
	return alg, raw, nil
}

// keyFor returns the container's encryption key, checked to fit alg.
func (s *state) keyFor(alg string) ([]byte, error) {
	if !s.keyDone {
		s.key, s.keyDerived, s.keyErr = s.encryptionKeyOf()
		s.keyDone = true
	}
	if s.keyErr != nil {
		return nil, s.keyErr
	}
	if size, _ := cbcKeySize(alg); len(s.key) != size {
		if s.keyDerived {
			return nil, fail(ErrMalformed, "PBKDF2 KeyLength does not fit the encryption algorithm")
		}
		return nil, fail(ErrWrongKey, "the pre-shared key is not %d bytes, as its algorithm needs", size)
	}
	return s.key, nil
}

// encryptionKeyOf works out the encryption key from the container's
// EncryptionKey element and the caller's Decryption.
func (s *state) encryptionKeyOf() (key []byte, derived bool, err error) {
	ek := s.encryptionKey
	if ek == nil {
		// No EncryptionKey, though values are encrypted: only a
		// pre-shared key can be meant.
		if len(s.d.PreSharedKey) == 0 {
			return nil, false, fail(ErrKeyRequired, "values are encrypted with a pre-shared key")
		}
		return s.d.PreSharedKey, false, nil
	}
	switch {
	case len(ek.Other) > 0:
		return nil, false, fail(ErrUnsupported, "EncryptionKey is not a pre-shared key (ds:KeyName) or a DerivedKey; asymmetric keys (RFC 6030 §6.3) are not supported")
	case len(ek.KeyName) > 0 && len(ek.DerivedKey) > 0:
		return nil, false, fail(ErrMalformed, "EncryptionKey has both a KeyName and a DerivedKey")
	case len(ek.KeyName) > 1 || len(ek.DerivedKey) > 1:
		return nil, false, fail(ErrMalformed, "EncryptionKey has more than one key")
	case len(ek.KeyName) == 1:
		if len(s.d.PreSharedKey) == 0 {
			return nil, false, fail(ErrKeyRequired, "values are encrypted with a pre-shared key")
		}
		return s.d.PreSharedKey, false, nil
	case len(ek.DerivedKey) == 1:
		key, err := s.derive(&ek.DerivedKey[0])
		return key, true, err
	}
	return nil, false, fail(ErrMalformed, "EncryptionKey is empty")
}

// derive checks a DerivedKey's PBKDF2 parameters (RFC 8018 PBKDF2-params,
// in the XML form of XML Encryption 1.1) and derives the key from the
// password.
func (s *state) derive(dk *xmlDerivedKey) ([]byte, error) {
	m, err := atMostOne(dk.Method, "KeyDerivationMethod")
	if err != nil {
		return nil, err
	}
	if m == nil {
		return nil, fail(ErrMalformed, "DerivedKey has no KeyDerivationMethod")
	}
	switch strings.TrimSpace(m.Algorithm) {
	case algPBKDF2, algPBKDF2RFC6030, algPBKDF2XMLEnc11:
	default:
		return nil, fail(ErrUnsupported, "KeyDerivationMethod is not PBKDF2")
	}
	p, err := atMostOne(m.Params, "PBKDF2-params")
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fail(ErrMalformed, "KeyDerivationMethod has no PBKDF2-params")
	}

	saltElem, err := atMostOne(p.Salt, "Salt")
	if err != nil {
		return nil, err
	}
	if saltElem == nil {
		return nil, fail(ErrMalformed, "PBKDF2-params has no Salt")
	}
	if len(saltElem.OtherSource) > 0 {
		return nil, fail(ErrUnsupported, "PBKDF2 Salt OtherSource")
	}
	specified, err := atMostOne(saltElem.Specified, "Salt Specified")
	if err != nil {
		return nil, err
	}
	if specified == nil {
		return nil, fail(ErrMalformed, "PBKDF2 Salt has no Specified value")
	}
	salt, err := decodeBase64(*specified)
	if err != nil {
		return nil, fail(ErrMalformed, "PBKDF2 Salt is not base64")
	}
	if len(salt) < 1 || len(salt) > maxSalt {
		return nil, fail(ErrMalformed, "PBKDF2 Salt is not 1 to %d bytes", maxSalt)
	}

	iterText, err := atMostOne(p.IterationCount, "IterationCount")
	if err != nil {
		return nil, err
	}
	if iterText == nil {
		return nil, fail(ErrMalformed, "PBKDF2-params has no IterationCount")
	}
	iter, err := parseUint(*iterText, ^uint64(0), "IterationCount")
	if err != nil {
		return nil, err
	}
	if iter == 0 {
		return nil, fail(ErrMalformed, "IterationCount is 0")
	}
	if iter > uint64(s.lim.maxIterations) {
		return nil, fail(ErrUnsupported, "IterationCount is over %d", s.lim.maxIterations)
	}

	lenText, err := atMostOne(p.KeyLength, "KeyLength")
	if err != nil {
		return nil, err
	}
	if lenText == nil {
		return nil, fail(ErrMalformed, "PBKDF2-params has no KeyLength")
	}
	keyLen, err := parseUint(*lenText, 32, "KeyLength")
	if err != nil {
		return nil, err
	}
	if keyLen != 16 && keyLen != 24 && keyLen != 32 {
		return nil, fail(ErrMalformed, "KeyLength is not 16, 24 or 32")
	}

	prf := sha1.New // RFC 8018 PBKDF2-params' default, hmac-sha1
	if e, err := atMostOne(p.PRF, "PRF"); err != nil {
		return nil, err
	} else if e != nil && strings.TrimSpace(e.Algorithm) != "" {
		// Figure 7 has an empty <PRF/>, which is the default.
		h, ok := hmacHash(strings.TrimSpace(e.Algorithm))
		if !ok {
			return nil, fail(ErrUnsupported, "PBKDF2 PRF is not hmac-sha1, hmac-sha256 or hmac-sha512")
		}
		prf = h
	}

	if len(s.d.Password) == 0 {
		return nil, fail(ErrKeyRequired, "values are encrypted with a key derived from a password")
	}
	key, err := pbkdf2.Key(prf, string(s.d.Password), salt, int(iter), int(keyLen))
	if err != nil {
		// Only in FIPS 140-3 mode, for parameters it does not approve.
		return nil, fail(ErrUnsupported, "PBKDF2 parameters refused by the crypto module")
	}
	return key, nil
}

// mac returns the container's MAC key and hash (RFC 6030 §6.1.1).
func (s *state) mac() ([]byte, func() hash.Hash, error) {
	if !s.macDone {
		s.macKey, s.macHash, s.macErr = s.macOf()
		s.macOwned = s.macErr == nil && s.macMethod != nil && len(s.macMethod.MACKey) == 1
		s.macDone = true
	}
	return s.macKey, s.macHash, s.macErr
}

func (s *state) macOf() ([]byte, func() hash.Hash, error) {
	mm := s.macMethod
	if mm == nil {
		// The drafts before RFC 6030 had a MACAlgorithm element instead;
		// only the RFC's MACMethod is read.
		return nil, nil, fail(ErrMalformed, "ValueMAC without a MACMethod")
	}
	h, ok := hmacHash(strings.TrimSpace(mm.Algorithm))
	if !ok {
		return nil, nil, fail(ErrUnsupported, "MACMethod is not hmac-sha1, hmac-sha256 or hmac-sha512")
	}
	mk, err := atMostOne(mm.MACKey, "MACKey")
	if err != nil {
		return nil, nil, err
	}
	if mk == nil {
		// No MACKey (perhaps a MACKeyReference): the MAC key is the
		// encryption key, as in the drafts before RFC 6030. RFC 6030's
		// own examples (Figures 6 and 7) carry a MACKey, encrypted with
		// the encryption key, and that is what senders should do.
		if s.keyErr != nil || len(s.key) == 0 {
			return nil, nil, fail(ErrKeyRequired, "no MAC key")
		}
		return s.key, h, nil
	}
	alg, raw, err := ciphertext(mk, "MACKey")
	if err != nil {
		return nil, nil, err
	}
	key, err := s.keyFor(alg)
	if err != nil {
		return nil, nil, err
	}
	macKey, ok := cbcDecrypt(key, raw)
	if !ok {
		// Nothing authenticates the MAC key itself, so bad padding
		// means a wrong key or an altered container: either way the
		// MACs cannot be checked. Reporting it as a MAC failure also
		// gives a padding oracle nothing to tell apart.
		return nil, nil, fail(ErrMAC, "MACKey does not decrypt")
	}
	if len(macKey) < 1 || len(macKey) > maxSecret {
		clear(macKey)
		return nil, nil, fail(ErrMalformed, "MACKey is not 1 to %d bytes", maxSecret)
	}
	return macKey, h, nil
}

// cbcDecrypt decrypts an IV and whole blocks of ciphertext with AES-CBC
// and removes the PKCS#7 padding (RFC 6030 §6.4), reporting bad padding
// as !ok. key must be 16, 24 or 32 bytes.
func cbcDecrypt(key, raw []byte) ([]byte, bool) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, false
	}
	iv, ct := raw[:aes.BlockSize], raw[aes.BlockSize:]
	buf := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(buf, ct)
	n, ok := pkcs7Length(buf)
	if !ok {
		clear(buf)
		return nil, false
	}
	out := bytes.Clone(buf[:len(buf)-n])
	clear(buf)
	return out, true
}

// pkcs7Length returns the length of the PKCS#7 padding ending b (whole
// blocks, at least one), checking every byte of the last block in the
// same time whatever its value.
func pkcs7Length(b []byte) (int, bool) {
	last := b[len(b)-aes.BlockSize:]
	n := int(last[aes.BlockSize-1])
	good := subtle.ConstantTimeLessOrEq(1, n) & subtle.ConstantTimeLessOrEq(n, aes.BlockSize)
	for i := range aes.BlockSize {
		// last[len-1-i] is padding when i < n, and must then equal n.
		inPad := subtle.ConstantTimeLessOrEq(i+1, n)
		eq := subtle.ConstantTimeByteEq(last[aes.BlockSize-1-i], byte(n))
		good &= subtle.ConstantTimeSelect(inPad, eq, 1)
	}
	return n, good == 1
}
