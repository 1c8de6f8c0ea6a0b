package virtual

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"io"
	"slices"

	"github.com/fxamacker/cbor/v2"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/pinuv"
)

// Extension limits (CTAP 2.1 §12).
const (
	// minCredBlobLength is the least maxCredBlobLength CTAP 2.1 §12.2
	// allows.
	minCredBlobLength = 32
	// largeBlobKeyLen is the length of a largeBlobKey (§12.3).
	largeBlobKeyLen = 32
	// saltLen is the length of one hmac-secret salt (§12.5).
	saltLen = 32
)

// cborFalse is the CBOR encoding of false.
var cborFalse = []byte{0xf4}

// extSupported reports whether the key offers the extension id (CTAP
// 2.1 §12). A CTAP20 key offers only what CTAP 2.0 defined or keys of
// its time had: hmac-secret and credProtect. hmac-secret needs the key
// agreement of authenticatorClientPIN, so a key with neither a PIN nor
// built-in UV cannot offer it.
func (k *Key) extSupported(id string) bool {
	switch id {
	case ctap.ExtHMACSecret:
		return !k.cfg.NoHMACSecret && k.pinUvSupported()
	case ctap.ExtCredProtect:
		return !k.cfg.NoCredProtect
	case ctap.ExtCredBlob:
		return !k.v20() && !k.cfg.NoCredBlob
	case ctap.ExtMinPinLength:
		return !k.v20() && !k.cfg.NoMinPINLengthExtension && k.clientPINSupported()
	case ctap.ExtLargeBlobKey:
		return k.largeBlobsSupported()
	}
	return false
}

// extensionList is getInfo's extensions (§6.4), nil for none.
func (k *Key) extensionList() []string {
	var ids []string
	for _, id := range []string{ctap.ExtCredBlob, ctap.ExtCredProtect, ctap.ExtHMACSecret, ctap.ExtLargeBlobKey, ctap.ExtMinPinLength} {
		if k.extSupported(id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// mcExtensions is what makeCredential does with its extension inputs.
type mcExtensions struct {
	protect      int  // credProtect policy asked for, 0 if none
	hmacSecret   bool // hmac-secret: true
	credBlob     []byte
	hasCredBlob  bool // credBlob was sent, perhaps empty
	minPINLength bool
	largeBlobKey bool
}

// mcExtensions decodes the extension inputs of makeCredential, keeping
// only those the key supports (§6.1.2 step 15: the others are ignored).
// A largeBlobKey other than true, or without rk, is INVALID_OPTION
// (§12.3), checked here rather than after the touch.
func (k *Key) mcExtensions(r *ctap.MakeCredentialRequest, rk bool) (*mcExtensions, ctap.Status) {
	in, err := ctap.DecodeMakeCredentialExtensions(r.Extensions)
	if err != nil {
		return nil, statusOf(err)
	}
	var e mcExtensions
	if k.extSupported(ctap.ExtCredProtect) && in.CredProtect >= ctap.CredProtectUVOptional && in.CredProtect <= ctap.CredProtectUVRequired {
		// A policy outside 1..3 is one this key does not know, and so
		// ignores, like an unknown extension.
		e.protect = int(in.CredProtect)
	}
	e.hmacSecret = in.HMACSecret && k.extSupported(ctap.ExtHMACSecret)
	if _, ok := r.Extensions[ctap.ExtCredBlob]; ok && k.extSupported(ctap.ExtCredBlob) {
		e.credBlob, e.hasCredBlob = in.CredBlob, true
	}
	e.minPINLength = in.MinPinLength && k.extSupported(ctap.ExtMinPinLength)
	if raw, ok := r.Extensions[ctap.ExtLargeBlobKey]; ok && k.extSupported(ctap.ExtLargeBlobKey) {
		if isFalse(raw) || !rk {
			return nil, ctap.StatusInvalidOption
		}
		e.largeBlobKey = true
	}
	return &e, ctap.StatusOK
}

// statusOf is the status a decoding error is answered with.
func statusOf(err error) ctap.Status {
	return ctap.Status(decodeFailure(err)[0])
}

// gaExtensions is what getAssertion does with its extension inputs; it
// lives on in pendingAssertions for getNextAssertion.
type gaExtensions struct {
	hmac         *hmacSecretRequest
	credBlob     bool
	largeBlobKey bool
}

// hmacSecretRequest is an hmac-secret input that has been checked: the
// shared secret and the salts (§12.5).
type hmacSecretRequest struct {
	p      pinuv.Protocol
	shared []byte
	salts  []byte // salt1, or salt1 || salt2
}

// gaExtensions decodes the extension inputs of getAssertion and checks
// an hmac-secret input against the key's key agreement key (§12.5):
// PIN_AUTH_INVALID for a protocol the key does not speak or a saltAuth
// that does not verify, INVALID_PARAMETER for a bad key or salts. The
// caller holds k.mu.
func (k *Key) gaExtensions(r *ctap.GetAssertionRequest) (*gaExtensions, ctap.Status) {
	in, err := ctap.DecodeGetAssertionExtensions(r.Extensions)
	if err != nil {
		return nil, statusOf(err)
	}
	var e gaExtensions
	e.credBlob = in.CredBlob && k.extSupported(ctap.ExtCredBlob)
	if raw, ok := r.Extensions[ctap.ExtLargeBlobKey]; ok && k.extSupported(ctap.ExtLargeBlobKey) {
		if isFalse(raw) {
			return nil, ctap.StatusInvalidOption
		}
		e.largeBlobKey = true
	}
	if in.HMACSecret == nil || !k.extSupported(ctap.ExtHMACSecret) {
		return &e, ctap.StatusOK
	}
	h := in.HMACSecret
	v := h.PinUvAuthProtocol
	if v == 0 {
		v = pinuv.VersionOne
	}
	p, ok := k.protocol(v)
	if !ok {
		return nil, ctap.StatusPINAuthInvalid
	}
	shared, s := k.decapsulate(v, p, h.KeyAgreement)
	if s != ctap.StatusOK {
		return nil, s
	}
	if !p.Verify(shared, h.SaltEnc, h.SaltAuth) {
		return nil, ctap.StatusPINAuthInvalid
	}
	salts, err := p.Decrypt(shared, h.SaltEnc)
	if err != nil || (len(salts) != saltLen && len(salts) != 2*saltLen) {
		return nil, ctap.StatusInvalidParameter
	}
	e.hmac = &hmacSecretRequest{p: p, shared: shared, salts: salts}
	return &e, ctap.StatusOK
}

// output computes the hmac-secret output for a credential with key
// credRandom: encrypt(shared, HMAC-SHA-256(credRandom, salt1) [||
// HMAC-SHA-256(credRandom, salt2)]) (§12.5).
func (h *hmacSecretRequest) output(credRandom []byte) ([]byte, error) {
	var out []byte
	for salt := range slices.Chunk(h.salts, saltLen) {
		m := hmac.New(sha256.New, credRandom)
		m.Write(salt)
		out = m.Sum(out)
	}
	defer clear(out)
	return h.p.Encrypt(h.shared, out)
}

// readRandom returns n bytes from Config.Rand.
func (k *Key) readRandom(n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := io.ReadFull(k.cfg.Rand, b)
	return b, err
}

// isFalse reports whether a raw extension value is CBOR false.
func isFalse(raw cbor.RawMessage) bool { return bytes.Equal(raw, cborFalse) }
