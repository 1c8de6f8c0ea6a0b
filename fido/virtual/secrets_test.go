package virtual

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/fidokit/fidokit/internal/ctap"
)

// TestNoPINInState exercises every PIN path on a key with a state file,
// then looks for the PINs in the file in every form a careless encoder
// might leave them: the state holds PIN hashes, never PINs.
func TestNoPINInState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.json")
	pins := []string{"735921", "480163", "correct horse battery", "9157-2240"}
	k := newTestKey(t, &Config{StatePath: path, PIN: pins[3], BuiltInUV: true})
	// The Config's PIN is in the first saved state, or not at all.
	pinToken(t, k, 2, pins[3], 0x01, "")
	p := agree(t, k, 2)
	if s, _ := do(t, k, ctap.CmdClientPIN, p.changePINRequest(pins[3], padPIN(pins[0]))); s != ctap.StatusOK {
		t.Fatal(s)
	}
	for _, v := range protocols {
		p := agree(t, k, v)
		p.token(k, p.tokenRequest(pins[1], 0x01, "")) // wrong
		p = agree(t, k, v)
		do(t, k, ctap.CmdClientPIN, p.changePINRequest(pins[1], padPIN(pins[2]))) // wrong current PIN
		k.Replug()                                                                // before the third in a row blocks
	}
	tok := pinToken(t, k, 1, pins[0], 0x35, "")
	configure(t, k, 1, tok, ctap.ConfigSetMinPINLength, &ctap.SetMinPINLengthParams{NewMinPINLength: 8})
	blobWrite(t, k, 1, tok, serialize(), 100)
	p = agree(t, k, 2)
	if s, _ := do(t, k, ctap.CmdClientPIN, p.changePINRequest(pins[0], padPIN(pins[2]))); s != ctap.StatusOK {
		t.Fatalf("changePIN: %v", s)
	}
	makeCredential(t, k, withToken(2, pinToken(t, k, 2, pins[2], 0x01, ""), withExt(mcRequest("a", true), "hmac-secret", true)))
	k.Close()

	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, pin := range pins {
		b := []byte(pin)
		padded := padPIN(pin)
		forms := map[string]string{
			"plain": pin, "hex": hex.EncodeToString(b), "HEX": strings.ToUpper(hex.EncodeToString(b)),
			"base64": base64.StdEncoding.EncodeToString(b), "base64 raw": base64.RawStdEncoding.EncodeToString(b),
			"base64url":     base64.RawURLEncoding.EncodeToString(b),
			"padded base64": base64.StdEncoding.EncodeToString(padded), "padded hex": hex.EncodeToString(padded),
		}
		for name, f := range forms {
			if bytes.Contains(data, []byte(f)) {
				t.Errorf("the state file holds PIN %d in %s form", len(pin), name)
			}
		}
	}
	// What is there is the hash of the current PIN.
	k2 := newTestKey(t, &Config{StatePath: path})
	pinToken(t, k2, 2, pins[2], 0x01, "")
	if !bytes.Contains(data, []byte(base64.StdEncoding.EncodeToString(pinHash(pins[2])))) {
		t.Error("the state file does not hold the PIN hash")
	}
}

// TestResetClears: authenticatorReset forgets the PIN and everything set
// with it, and the key agreement, so old tokens die.
func TestResetClears(t *testing.T) {
	clock := newTestClock()
	k := newTestKey(t, &Config{PIN: "1234", BuiltInUV: true, Clock: clock.Now, UserVerifier: UVFail})
	tok := pinToken(t, k, 2, "1234", 0x33, "")
	makeCredential(t, k, withToken(2, tok, withExt(mcRequest("a", true), "largeBlobKey", true)))
	tok = pinToken(t, k, 2, "1234", 0x30, "")
	configure(t, k, 2, tok, ctap.ConfigToggleAlwaysUv, nil)
	configure(t, k, 2, tok, ctap.ConfigSetMinPINLength, &ctap.SetMinPINLengthParams{NewMinPINLength: 8, MinPinLengthRPIDs: []string{"x"}})
	blobWrite(t, k, 2, tok, serialize([]byte{0xa0}), 100)
	uvToken(t, k, 2, 0x01, "") // a failed finger
	p := agree(t, k, 2)
	p.token(k, p.tokenRequest("0000", 0x01, "")) // a wrong PIN

	clock.Advance(5 * time.Second)
	if s, _ := do(t, k, ctap.CmdReset, nil); s != ctap.StatusOK {
		t.Fatalf("reset: %v", s)
	}
	i := info(t, k)
	switch {
	case i.Options["clientPin"], i.Options["alwaysUv"], i.MinPINLength != 4, i.ForcePINChange:
		t.Errorf("getInfo after reset: %+v", i)
	case k.PINRetries() != 8, k.UVRetries() != 25, len(k.Credentials()) != 0:
		t.Errorf("after reset: %d PIN retries, %d UV retries, %d credentials", k.PINRetries(), k.UVRetries(), len(k.Credentials()))
	}
	if got := blobRead(t, k, 100); !bytes.Equal(got, ctap.InitialLargeBlobArray()) {
		t.Errorf("large blobs after reset: %x", got)
	}
	k.mu.Lock()
	rpids := k.st.MinPINLengthRPIDs
	k.mu.Unlock()
	if rpids != nil {
		t.Errorf("minPinLength RP IDs after reset: %v", rpids)
	}
	// The old key agreement is gone: a shared secret from before does
	// not set a PIN.
	if s, _ := do(t, k, ctap.CmdClientPIN, p.setPINRequest(padPIN("5678"))); s != ctap.StatusPINAuthInvalid {
		t.Errorf("setPIN under the old key agreement: %v", s)
	}
	setPIN(t, k, 2, "5678")
}
