package virtual

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/binary"
	"time"

	"github.com/fidokit/fidokit/internal/ctap"
)

// u2fTouchGrace is how long a U2F request waits for the touch it has just
// asked for before answering "conditions not satisfied". A real key
// answers at once and the host polls, about every 100 ms; waiting a moment
// lets a hook that approves at once, such as Approve, be seen by the
// request that asked, so automatic presence costs no poll.
const u2fTouchGrace = 20 * time.Millisecond

// swNoPreciseDiagnosis (ISO 7816-4 "6F00") answers a U2F request the key
// failed to carry out for reasons of its own, such as a state file it
// could not write.
const swNoPreciseDiagnosis ctap.StatusWord = 0x6F00

// backgroundTouch is a wait for a touch that a U2F request started. A U2F
// key does not block for a touch: it answers "conditions not satisfied"
// and the host polls, while the key's sensor waits on its own (FIDO U2F
// Raw Message Formats, "Registration Request Message"; CTAP 2.1 §10.3).
type backgroundTouch struct {
	done chan struct{} // closed when the hook has answered
	err  error         // the hook's answer, set before done is closed
}

// u2fPresence reports whether the person has touched the key for this
// request. The first request that needs a touch starts a wait in the
// background, unless one is running; the request that sees its outcome
// uses it up, so one touch approves one request, and after a refusal or a
// timeout the next request asks again. The caller holds k.op.
func (k *Key) u2fPresence(ctx context.Context, req PresenceRequest) bool {
	k.mu.Lock()
	if k.closed {
		k.mu.Unlock()
		return false
	}
	t := k.u2fTouch
	if t == nil {
		t = &backgroundTouch{done: make(chan struct{})}
		k.u2fTouch = t
		// Added under k.mu after checking k.closed, so never after Close
		// has started waiting.
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			t.err = k.askPresence(k.ctx, req)
			close(t.done)
		}()
	}
	k.mu.Unlock()
	timer := time.NewTimer(u2fTouchGrace)
	defer timer.Stop()
	select {
	case <-t.done:
	case <-timer.C:
		return false
	case <-ctx.Done():
		return false
	}
	k.mu.Lock()
	if k.u2fTouch == t {
		k.u2fTouch = nil
	}
	k.mu.Unlock()
	return t.err == nil
}

// dropFinishedTouch forgets a U2F touch that has been answered but not yet
// used, as a power cycle or a reset forgets it. The caller holds k.mu.
func (k *Key) dropFinishedTouch() {
	if t := k.u2fTouch; t != nil {
		select {
		case <-t.done:
			k.u2fTouch = nil
		default:
		}
	}
}

func withSW(body []byte, sw ctap.StatusWord) []byte {
	return binary.BigEndian.AppendUint16(body, uint16(sw))
}

// handleMsg answers one CTAPHID_MSG message, a U2F request APDU (CTAP 2.1
// §11.2.9.1.1; FIDO U2F Raw Message Formats). Every answer ends in a
// status word, and only a successful request changes the key's state.
func (k *Key) handleMsg(ctx context.Context, apdu []byte) []byte {
	if !k.lockOp(ctx) {
		// The host gave up while another host's command had the key
		// (CTAPHID_MSG has no cancel of its own, so this is a re-INIT
		// or a host gone): nobody reads the answer.
		return withSW(nil, ctap.SWConditionsNotSatisfied)
	}
	defer k.unlockOp()
	if k.isClosed() || k.cfg.NoU2F {
		// CTAPHID INIT reported NMSG, so a host should not get here.
		return withSW(nil, ctap.SWInsNotSupported)
	}
	k.mu.Lock()
	alwaysUV := k.st.AlwaysUV && !k.v20()
	k.mu.Unlock()
	if alwaysUV {
		// U2F cannot verify users, so alwaysUv turns it off (CTAP 2.1
		// §6.11.2).
		return withSW(nil, ctap.SWInsNotSupported)
	}
	// The class and the instruction are checked before the lengths, as
	// ISO 7816-4 cards and U2F keys do: an unknown instruction is
	// INS_NOT_SUPPORTED however its body is framed.
	if len(apdu) < 4 {
		return withSW(nil, ctap.SWWrongLength)
	}
	if apdu[0] != 0 {
		return withSW(nil, ctap.SWClaNotSupported)
	}
	switch apdu[1] {
	case ctap.U2FVersion, ctap.U2FRegister, ctap.U2FAuthenticate:
	default:
		return withSW(nil, ctap.SWInsNotSupported)
	}
	a, err := ctap.ParseAPDU(apdu)
	if err != nil {
		return withSW(nil, ctap.SWWrongLength) // every parse error is a length error
	}
	switch a.INS {
	case ctap.U2FVersion:
		if len(a.Data) != 0 {
			return withSW(nil, ctap.SWWrongLength)
		}
		return withSW([]byte("U2F_V2"), ctap.SWNoError)
	case ctap.U2FRegister:
		return k.u2fRegister(ctx, a)
	case ctap.U2FAuthenticate:
		return k.u2fAuthenticate(ctx, a)
	}
	return withSW(nil, ctap.SWInsNotSupported)
}

// u2fRegister answers U2F_REGISTER (FIDO U2F Raw Message Formats,
// "Registration Messages"). The key handle is a credential ID of the
// CTAP2 kind, bound to the application parameter, which is the SHA-256 of
// the RP ID for a WebAuthn client (CTAP 2.1 §10.2), so the credential
// works through authenticatorGetAssertion as well.
func (k *Key) u2fRegister(ctx context.Context, a *ctap.APDU) []byte {
	// P1 is not checked: hosts send 0x00 or 0x03, and registration always
	// needs a touch.
	if len(a.Data) != 64 {
		return withSW(nil, ctap.SWWrongLength)
	}
	var chal, app [32]byte
	copy(chal[:], a.Data[:32])
	copy(app[:], a.Data[32:])
	if !k.u2fPresence(ctx, PresenceRequest{Op: OpU2FRegister}) {
		return withSW(nil, ctap.SWConditionsNotSatisfied)
	}
	signer, raw, err := newPrivateKey(k.cfg.Rand, ctap.AlgES256)
	if err != nil {
		return withSW(nil, swNoPreciseDiagnosis)
	}
	pub, err := signer.Public().(*ecdsa.PublicKey).Bytes() // uncompressed point, 65 bytes
	if err != nil {
		return withSW(nil, swNoPreciseDiagnosis)
	}
	k.mu.Lock()
	kh, err := k.wrapper.wrap(k.cfg.Rand, app, ctap.AlgES256, raw)
	k.mu.Unlock()
	if err != nil {
		return withSW(nil, swNoPreciseDiagnosis)
	}
	// The attestation signature covers 0x00 | application | challenge |
	// key handle | public key.
	msg := bytes.Join([][]byte{{0}, app[:], chal[:], kh, pub}, nil)
	sig, err := k.sign(k.u2f, ctap.AlgES256, msg)
	if err != nil {
		return withSW(nil, swNoPreciseDiagnosis)
	}
	r := &ctap.U2FRegisterResponse{PublicKey: pub, KeyHandle: kh, Certificate: k.st.U2FCert, Signature: sig}
	return withSW(r.Marshal(), ctap.SWNoError)
}

// u2fAuthenticate answers U2F_AUTHENTICATE (FIDO U2F Raw Message Formats,
// "Authentication Messages"; P1 0x08 from CTAP 2.1 §10.3). Credentials
// made through CTAP2 with ES256 work too.
func (k *Key) u2fAuthenticate(ctx context.Context, a *ctap.APDU) []byte {
	// challenge (32) | application (32) | key handle length (1) | key handle
	d := a.Data
	if len(d) < 65 || len(d) != 65+int(d[64]) {
		return withSW(nil, ctap.SWWrongLength)
	}
	var chal, app [32]byte
	copy(chal[:], d[:32])
	copy(app[:], d[32:64])
	k.mu.Lock()
	c, ok := k.find(app, ctap.CredentialDescriptor{Type: "public-key", ID: d[65:]})
	k.mu.Unlock()
	// U2F signs with P-256 only, and cannot verify the user that a
	// credProtect userVerificationRequired credential needs (CTAP 2.1
	// §12.1).
	if !ok || c.alg != ctap.AlgES256 || c.protect == ctap.CredProtectUVRequired {
		return withSW(nil, ctap.SWWrongData)
	}
	var up byte
	switch a.P1 {
	case ctap.U2FCheckOnly:
		// "Conditions not satisfied" is how check-only says "mine".
		return withSW(nil, ctap.SWConditionsNotSatisfied)
	case ctap.U2FEnforceUP:
		if !k.u2fPresence(ctx, PresenceRequest{Op: OpU2FAuthenticate}) {
			return withSW(nil, ctap.SWConditionsNotSatisfied)
		}
		up = 0x01
	case ctap.U2FDontEnforceUP:
	default:
		return withSW(nil, ctap.SWWrongData)
	}
	if k.cfg.ForceUPOff {
		up = 0 // before signing: a valid signature over a false flag
	}
	signer, err := k.signers.get(c.alg, c.priv)
	if err != nil {
		return withSW(nil, swNoPreciseDiagnosis)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	n := k.st.Counter + 1
	// Signed: application | user presence | counter | challenge, which is
	// CTAP2 authenticator data followed by the client data hash.
	msg := make([]byte, 0, 32+1+4+32)
	msg = append(msg, app[:]...)
	msg = append(msg, up)
	msg = binary.BigEndian.AppendUint32(msg, n)
	msg = append(msg, chal[:]...)
	sig, err := k.sign(signer, c.alg, msg)
	if err != nil {
		return withSW(nil, swNoPreciseDiagnosis)
	}
	k.st.Counter = n
	if err := k.save(); err != nil {
		k.st.Counter = n - 1
		return withSW(nil, swNoPreciseDiagnosis)
	}
	r := &ctap.U2FAuthenticateResponse{UserPresence: up, Counter: n, Signature: sig}
	return withSW(r.Marshal(), ctap.SWNoError)
}
