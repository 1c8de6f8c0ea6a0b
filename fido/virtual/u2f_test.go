package virtual

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"slices"
	"testing"

	"github.com/fidokit/fidokit/internal/ctap"
)

var testApp = sha256.Sum256([]byte(testRPID))

func registerAPDU(chal []byte, app [32]byte) []byte {
	return (&ctap.APDU{INS: ctap.U2FRegister, P1: 0x03, Data: append(bytes.Clone(chal), app[:]...), Le: 65536}).Marshal()
}

func authenticateAPDU(p1 byte, chal []byte, app [32]byte, kh []byte) []byte {
	d := append(append(bytes.Clone(chal), app[:]...), byte(len(kh)))
	return (&ctap.APDU{INS: ctap.U2FAuthenticate, P1: p1, Data: append(d, kh...), Le: 65536}).Marshal()
}

func msg(t testing.TB, k *Key, apdu []byte) ([]byte, ctap.StatusWord) {
	t.Helper()
	body, sw, err := ctap.SplitStatusWord(k.handleMsg(context.Background(), apdu))
	if err != nil {
		t.Fatal(err)
	}
	return body, sw
}

// msgUntilTouched repeats an APDU while the key answers "conditions not
// satisfied", as a U2F host polls. Each try waits up to u2fTouchGrace for
// the background touch, so this polls without sleeping.
func msgUntilTouched(t testing.TB, k *Key, apdu []byte) ([]byte, ctap.StatusWord) {
	t.Helper()
	for range 1000 {
		if body, sw := msg(t, k, apdu); sw != ctap.SWConditionsNotSatisfied {
			return body, sw
		}
	}
	t.Fatal("the key never saw a touch")
	return nil, 0
}

func u2fRegister(t testing.TB, k *Key, app [32]byte) *ctap.U2FRegisterResponse {
	t.Helper()
	body, sw := msgUntilTouched(t, k, registerAPDU(cdh, app))
	if sw != ctap.SWNoError {
		t.Fatalf("register: %v", sw)
	}
	r, err := ctap.ParseU2FRegisterResponse(body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestU2FRegisterAndAuthenticate(t *testing.T) {
	k := newTestKey(t, nil)
	r := u2fRegister(t, k, testApp)

	// The attestation signature covers 0x00 | app | challenge | key
	// handle | public key, by the U2F attestation certificate's key.
	cert, err := x509.ParseCertificate(r.Certificate)
	if err != nil {
		t.Fatal(err)
	}
	signed := bytes.Join([][]byte{{0}, testApp[:], cdh, r.KeyHandle, r.PublicKey}, nil)
	h := sha256.Sum256(signed)
	if !ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), h[:], r.Signature) {
		t.Error("registration signature does not verify")
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), r.PublicKey)
	if err != nil {
		t.Fatal(err)
	}

	other := sha256.Sum256([]byte("other.example"))
	tampered := bytes.Clone(r.KeyHandle)
	tampered[len(tampered)-1] ^= 1
	last := k.Counter()
	tests := []struct {
		name string
		p1   byte
		app  [32]byte
		kh   []byte
		want ctap.StatusWord
		up   byte
	}{
		{"check-only, ours", ctap.U2FCheckOnly, testApp, r.KeyHandle, ctap.SWConditionsNotSatisfied, 0},
		{"check-only, other application", ctap.U2FCheckOnly, other, r.KeyHandle, ctap.SWWrongData, 0},
		{"check-only, tampered handle", ctap.U2FCheckOnly, testApp, tampered, ctap.SWWrongData, 0},
		{"enforce presence", ctap.U2FEnforceUP, testApp, r.KeyHandle, ctap.SWNoError, 1},
		{"don't enforce presence", ctap.U2FDontEnforceUP, testApp, r.KeyHandle, ctap.SWNoError, 0},
		{"enforce, other application", ctap.U2FEnforceUP, other, r.KeyHandle, ctap.SWWrongData, 0},
		{"unknown control byte", 0x05, testApp, r.KeyHandle, ctap.SWWrongData, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := snapshot(t, k)
			chal := bytes.Repeat([]byte{0x22}, 32)
			send := msg
			if tt.p1 == ctap.U2FEnforceUP {
				send = msgUntilTouched
			}
			body, sw := send(t, k, authenticateAPDU(tt.p1, chal, tt.app, tt.kh))
			if sw != tt.want {
				t.Fatalf("status %v, want %v", sw, tt.want)
			}
			if sw != ctap.SWNoError {
				checkUnchanged(t, k, before, "a failed authenticate")
				return
			}
			a, err := ctap.ParseU2FAuthenticateResponse(body)
			if err != nil {
				t.Fatal(err)
			}
			if a.UserPresence != tt.up || a.Counter != last+1 {
				t.Errorf("user presence %d, counter %d after %d", a.UserPresence, a.Counter, last)
			}
			last = a.Counter
			signed := append(append(testApp[:], a.UserPresence), binary.BigEndian.AppendUint32(nil, a.Counter)...)
			h := sha256.Sum256(append(signed, chal...))
			if !ecdsa.VerifyASN1(pub, h[:], a.Signature) {
				t.Error("authentication signature does not verify")
			}
		})
	}
}

func TestU2FBadRequests(t *testing.T) {
	k := newTestKey(t, nil)
	before := snapshot(t, k)
	for _, tt := range []struct {
		name string
		apdu []byte
		want ctap.StatusWord
	}{
		{"empty", nil, ctap.SWWrongLength},
		{"short header", []byte{0x00, 0x01}, ctap.SWWrongLength},
		{"Lc beyond the data", []byte{0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x40, 0x01}, ctap.SWWrongLength},
		{"bad CLA", []byte{0x80, 0x03, 0, 0}, ctap.SWClaNotSupported},
		{"unknown INS", []byte{0x00, 0x44, 0, 0}, ctap.SWInsNotSupported},
		{"version with data", (&ctap.APDU{INS: ctap.U2FVersion, Data: []byte{1}}).Marshal(), ctap.SWWrongLength},
		{"register of 63 bytes", (&ctap.APDU{INS: ctap.U2FRegister, Data: make([]byte, 63)}).Marshal(), ctap.SWWrongLength},
		{"register of 65 bytes", (&ctap.APDU{INS: ctap.U2FRegister, Data: make([]byte, 65)}).Marshal(), ctap.SWWrongLength},
		{"authenticate without key handle length", (&ctap.APDU{INS: ctap.U2FAuthenticate, P1: 3, Data: make([]byte, 64)}).Marshal(), ctap.SWWrongLength},
		{"authenticate with wrong key handle length", (&ctap.APDU{INS: ctap.U2FAuthenticate, P1: 3,
			Data: slices.Concat(cdh, testApp[:], []byte{20}, make([]byte, 10))}).Marshal(), ctap.SWWrongLength},
		{"unknown key handle", authenticateAPDU(3, cdh, testApp, make([]byte, 62)), ctap.SWWrongData},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, sw := msg(t, k, tt.apdu); sw != tt.want {
				t.Errorf("status %v, want %v", sw, tt.want)
			}
			checkUnchanged(t, k, before, "a rejected APDU")
		})
	}
	if body, sw := msg(t, k, (&ctap.APDU{INS: ctap.U2FVersion, Le: 256}).Marshal()); sw != ctap.SWNoError || string(body) != "U2F_V2" {
		t.Errorf("version: %q %v", body, sw)
	}
	if _, sw := msg(t, newTestKey(t, &Config{NoU2F: true}), (&ctap.APDU{INS: ctap.U2FVersion}).Marshal()); sw != ctap.SWInsNotSupported {
		t.Errorf("version on a key without U2F: %v", sw)
	}
}

// TestU2FPresence: a U2F key never blocks for a touch. It answers
// "conditions not satisfied" and waits for the touch in the background;
// one touch approves one request.
func TestU2FPresence(t *testing.T) {
	b := NewButton()
	k := newTestKey(t, &Config{UserPresence: b.Presence()})
	apdu := registerAPDU(cdh, testApp)
	if _, sw := msg(t, k, apdu); sw != ctap.SWConditionsNotSatisfied {
		t.Fatalf("untouched register: %v", sw)
	}
	if r := <-b.Waiting(); r.Op != OpU2FRegister {
		t.Errorf("touch requested for %+v", r)
	}
	// Until the touch, polls get the same answer.
	if _, sw := msg(t, k, apdu); sw != ctap.SWConditionsNotSatisfied {
		t.Fatalf("second poll: %v", sw)
	}
	b.Press()
	body, sw := msgUntilTouched(t, k, apdu)
	if sw != ctap.SWNoError {
		t.Fatalf("touched register: %v", sw)
	}
	r, _ := ctap.ParseU2FRegisterResponse(body)

	// The touch is used up: the next request needs another.
	auth := authenticateAPDU(ctap.U2FEnforceUP, cdh, testApp, r.KeyHandle)
	if _, sw := msg(t, k, auth); sw != ctap.SWConditionsNotSatisfied {
		t.Fatalf("authenticate after the touch was used: %v", sw)
	}
	// A refusal is used up too, and the next poll asks again.
	if r := <-b.Waiting(); r.Op != OpU2FAuthenticate {
		t.Errorf("touch requested for %+v", r)
	}
	b.Refuse()
	go func() { <-b.Waiting(); b.Press() }()
	if _, sw := msgUntilTouched(t, k, auth); sw != ctap.SWNoError {
		t.Fatalf("authenticate after refusing once, then pressing: %v", sw)
	}
}

// TestU2FAndCTAP2Interoperate: U2F key handles and CTAP2 credential IDs are
// one format bound to the RP ID hash, so each protocol uses the other's
// credentials (CTAP 2.1 §10).
func TestU2FAndCTAP2Interoperate(t *testing.T) {
	k := newTestKey(t, nil)
	t.Run("U2F credential through getAssertion", func(t *testing.T) {
		r := u2fRegister(t, k, testApp)
		pub, _ := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), r.PublicKey)
		cose, _ := ctap.MarshalPublicKey(pub)
		a, ad := getAssertion(t, k, ctap.CmdGetAssertion, gaRequest(r.KeyHandle))
		if !verify(t, cose, a.AuthData, cdh, a.Signature) || ad.Flags != ctap.FlagUP {
			t.Error("assertion by a U2F credential does not verify")
		}
	})
	for _, tt := range []struct {
		name string
		alg  int64
		rk   bool
		want ctap.StatusWord
	}{
		{"ES256 credential through U2F", ctap.AlgES256, false, ctap.SWNoError},
		{"discoverable ES256 credential through U2F", ctap.AlgES256, true, ctap.SWNoError},
		{"EdDSA credential through U2F", ctap.AlgEdDSA, false, ctap.SWWrongData},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, ad := makeCredential(t, k, mcRequest("alice", tt.rk, tt.alg))
			body, sw := msgUntilTouched(t, k, authenticateAPDU(ctap.U2FEnforceUP, cdh, testApp, ad.Attested.CredentialID))
			if sw != tt.want {
				t.Fatalf("status %v, want %v", sw, tt.want)
			}
			if sw != ctap.SWNoError {
				return
			}
			a, _ := ctap.ParseU2FAuthenticateResponse(body)
			// The U2F signed data is authenticator data followed by the
			// challenge.
			signed := (&ctap.AuthData{RPIDHash: testApp, Flags: ctap.AuthDataFlags(a.UserPresence), SignCount: a.Counter}).Marshal()
			if !verify(t, ad.Attested.PublicKey, signed, cdh, a.Signature) {
				t.Error("U2F signature by a CTAP2 credential does not verify")
			}
		})
	}
}

func TestU2FMisbehaviour(t *testing.T) {
	k := newTestKey(t, &Config{ForceUPOff: true, BadSignature: true})
	r := u2fRegister(t, k, testApp)
	cert, _ := x509.ParseCertificate(r.Certificate)
	h := sha256.Sum256(bytes.Join([][]byte{{0}, testApp[:], cdh, r.KeyHandle, r.PublicKey}, nil))
	if ecdsa.VerifyASN1(cert.PublicKey.(*ecdsa.PublicKey), h[:], r.Signature) {
		t.Error("registration signature verifies")
	}
	body, sw := msgUntilTouched(t, k, authenticateAPDU(ctap.U2FEnforceUP, cdh, testApp, r.KeyHandle))
	a, err := ctap.ParseU2FAuthenticateResponse(body)
	if sw != ctap.SWNoError || err != nil || a.UserPresence != 0 {
		t.Errorf("authenticate: %v %v %+v", sw, err, a)
	}
}
