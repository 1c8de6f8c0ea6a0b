package virtual

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/fidokit/fidokit/internal/ctap"
)

// This file is the platform's half of the PIN/UV auth protocols (CTAP 2.1
// §6.5.6 and §6.5.7), written again here from the standard library and
// the spec rather than taken from internal/pinuv, which the key uses: a
// misreading of the spec shared by both ends would otherwise pass every
// test.

// platform is one key agreement with the key under protocol v.
type platform struct {
	t      testing.TB
	v      uint64
	shared []byte
	// key is our public key as the COSE_Key the requests carry.
	key cbor.RawMessage
}

// agree runs getKeyAgreement and derives the shared secret.
func agree(t testing.TB, k *Key, v uint64) *platform {
	t.Helper()
	s, body := do(t, k, ctap.CmdClientPIN, &ctap.ClientPINRequest{PinUvAuthProtocol: v, SubCommand: ctap.ClientPINGetKeyAgreement})
	if s != ctap.StatusOK {
		t.Fatalf("getKeyAgreement: %v", s)
	}
	var resp struct {
		KeyAgreement map[int]any `cbor:"1,keyasint"`
	}
	if err := cbor.Unmarshal(body, &resp); err != nil {
		t.Fatalf("getKeyAgreement response: %v", err)
	}
	// COSE_Key (RFC 9052 §7, CTAP 2.1 §6.5.6 getPublicKey): kty 2 (EC2),
	// alg -25 (ECDH-ES+HKDF-256), crv 1 (P-256), x, y.
	m := resp.KeyAgreement
	x, _ := m[-2].([]byte)
	y, _ := m[-3].([]byte)
	if m[1] != uint64(2) || m[3] != int64(-25) || m[-1] != uint64(1) || len(x) != 32 || len(y) != 32 {
		t.Fatalf("key agreement key %v", m)
	}
	peer, err := ecdh.P256().NewPublicKey(append(append([]byte{4}, x...), y...))
	if err != nil {
		t.Fatal(err)
	}
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	z, err := priv.ECDH(peer) // the x-coordinate of the shared point
	if err != nil {
		t.Fatal(err)
	}
	p := &platform{t: t, v: v}
	switch v {
	case 1: // §6.5.6 kdf: SHA-256(Z)
		h := sha256.Sum256(z)
		p.shared = h[:]
	case 2: // §6.5.7 kdf: HKDF-SHA-256 with a zero salt, twice
		salt := make([]byte, 32)
		hmacKey, _ := hkdf.Key(sha256.New, z, salt, "CTAP2 HMAC key", 32)
		aesKey, _ := hkdf.Key(sha256.New, z, salt, "CTAP2 AES key", 32)
		p.shared = append(hmacKey, aesKey...)
	default:
		t.Fatalf("protocol %d", v)
	}
	pub := priv.PublicKey().Bytes() // 0x04 | x | y
	p.key = ctap.MustMarshal(map[int]any{1: 2, 3: -25, -1: 1, -2: pub[1:33], -3: pub[33:]})
	return p
}

// aesKey is the encryption key: the whole shared secret for protocol one,
// its second half for protocol two.
func (p *platform) aesKey() []byte {
	if p.v == 1 {
		return p.shared
	}
	return p.shared[32:]
}

// encrypt is AES-256-CBC without padding: with a zero IV for protocol one,
// with a random IV sent first for protocol two.
func (p *platform) encrypt(plain []byte) []byte {
	p.t.Helper()
	block, err := aes.NewCipher(p.aesKey())
	if err != nil {
		p.t.Fatal(err)
	}
	iv := make([]byte, 16)
	if p.v == 2 {
		rand.Read(iv)
	}
	out := make([]byte, len(plain))
	cipher.NewCBCEncrypter(block, iv).CryptBlocks(out, plain)
	if p.v == 2 {
		out = append(iv, out...)
	}
	return out
}

func (p *platform) decrypt(ct []byte) []byte {
	p.t.Helper()
	block, err := aes.NewCipher(p.aesKey())
	if err != nil {
		p.t.Fatal(err)
	}
	iv := make([]byte, 16)
	if p.v == 2 {
		iv, ct = ct[:16], ct[16:]
	}
	if len(ct)%16 != 0 {
		p.t.Fatalf("ciphertext of %d bytes", len(ct))
	}
	out := make([]byte, len(ct))
	cipher.NewCBCDecrypter(block, iv).CryptBlocks(out, ct)
	return out
}

// authenticate is HMAC-SHA-256, cut to 16 bytes for protocol one; for
// protocol two a shared secret contributes only its first (HMAC) half.
func authenticate(v uint64, key, msg []byte) []byte {
	if v == 2 && len(key) > 32 {
		key = key[:32]
	}
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	sum := m.Sum(nil)
	if v == 1 {
		return sum[:16]
	}
	return sum
}

func (p *platform) authenticate(msg []byte) []byte { return authenticate(p.v, p.shared, msg) }

// padPIN is the PIN followed by zero bytes to 64.
func padPIN(pin string) []byte {
	b := make([]byte, 64)
	copy(b, pin)
	return b
}

// pinHash is LEFT(SHA-256(pin), 16).
func pinHash(pin string) []byte {
	h := sha256.Sum256([]byte(pin))
	return h[:16]
}

// setPINRequest builds setPIN with a padded PIN of any form.
func (p *platform) setPINRequest(padded []byte) *ctap.ClientPINRequest {
	enc := p.encrypt(padded)
	return &ctap.ClientPINRequest{PinUvAuthProtocol: p.v, SubCommand: ctap.ClientPINSetPIN,
		KeyAgreement: p.key, NewPinEnc: enc, PinUvAuthParam: p.authenticate(enc)}
}

func (p *platform) changePINRequest(cur string, padded []byte) *ctap.ClientPINRequest {
	newEnc, hashEnc := p.encrypt(padded), p.encrypt(pinHash(cur))
	return &ctap.ClientPINRequest{PinUvAuthProtocol: p.v, SubCommand: ctap.ClientPINChangePIN,
		KeyAgreement: p.key, NewPinEnc: newEnc, PinHashEnc: hashEnc,
		PinUvAuthParam: p.authenticate(append(bytes.Clone(newEnc), hashEnc...))}
}

// tokenRequest asks for a token with the PIN: getPinToken when perms is
// 0, getPinUvAuthTokenUsingPinWithPermissions otherwise.
func (p *platform) tokenRequest(pin string, perms uint64, rpID string) *ctap.ClientPINRequest {
	r := &ctap.ClientPINRequest{PinUvAuthProtocol: p.v, SubCommand: ctap.ClientPINGetPinUvAuthTokenUsingPinWithPermissions,
		KeyAgreement: p.key, PinHashEnc: p.encrypt(pinHash(pin)), Permissions: perms, RPID: rpID}
	if perms == 0 {
		r.SubCommand = ctap.ClientPINGetPINToken
	}
	return r
}

// token sends a token request and decrypts the token it gets.
func (p *platform) token(k *Key, r *ctap.ClientPINRequest) ([]byte, ctap.Status) {
	p.t.Helper()
	s, body := do(p.t, k, ctap.CmdClientPIN, r)
	if s != ctap.StatusOK {
		return nil, s
	}
	resp, err := ctap.DecodeClientPINResponse(body)
	if err != nil {
		p.t.Fatal(err)
	}
	tok := p.decrypt(resp.PinUvAuthToken)
	if len(tok) != 32 {
		p.t.Fatalf("token of %d bytes", len(tok))
	}
	return tok, s
}

// setPIN sets pin with a fresh key agreement under protocol v.
func setPIN(t testing.TB, k *Key, v uint64, pin string) {
	t.Helper()
	if s, _ := do(t, k, ctap.CmdClientPIN, agree(t, k, v).setPINRequest(padPIN(pin))); s != ctap.StatusOK {
		t.Fatalf("setPIN: %v", s)
	}
}

// pinToken gets a token with the PIN under protocol v.
func pinToken(t testing.TB, k *Key, v uint64, pin string, perms uint64, rpID string) []byte {
	t.Helper()
	p := agree(t, k, v)
	tok, s := p.token(k, p.tokenRequest(pin, perms, rpID))
	if s != ctap.StatusOK {
		t.Fatalf("getting a token: %v", s)
	}
	return tok
}

// uvToken gets a token with built-in UV under protocol v.
func uvToken(t testing.TB, k *Key, v uint64, perms uint64, rpID string) ([]byte, ctap.Status) {
	t.Helper()
	p := agree(t, k, v)
	return p.token(k, &ctap.ClientPINRequest{PinUvAuthProtocol: v, SubCommand: ctap.ClientPINGetPinUvAuthTokenUsingUvWithPermissions,
		KeyAgreement: p.key, Permissions: perms, RPID: rpID})
}

// retries asks getPINRetries.
func retries(t testing.TB, k *Key) (int, bool) {
	t.Helper()
	s, body := do(t, k, ctap.CmdClientPIN, &ctap.ClientPINRequest{SubCommand: ctap.ClientPINGetPINRetries})
	if s != ctap.StatusOK {
		t.Fatalf("getPINRetries: %v", s)
	}
	r, err := ctap.DecodeClientPINResponse(body)
	if err != nil || r.PinRetries == nil {
		t.Fatalf("getPINRetries: %v %+v", err, r)
	}
	return int(*r.PinRetries), r.PowerCycleState
}

// withToken signs a makeCredential or getAssertion request with tok.
func withToken[R *ctap.MakeCredentialRequest | *ctap.GetAssertionRequest](v uint64, tok []byte, r R) R {
	switch r := any(r).(type) {
	case *ctap.MakeCredentialRequest:
		r.PinUvAuthParam, r.PinUvAuthProtocol = authenticate(v, tok, r.ClientDataHash), v
	case *ctap.GetAssertionRequest:
		r.PinUvAuthParam, r.PinUvAuthProtocol = authenticate(v, tok, r.ClientDataHash), v
	}
	return r
}

var protocols = []uint64{1, 2}

func protoName(v uint64) string { return map[uint64]string{1: "protocol one", 2: "protocol two"}[v] }
