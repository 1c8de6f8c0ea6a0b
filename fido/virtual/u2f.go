package virtual

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"time"

	"github.com/fidokit/fidokit/internal/ctap"
)

// backgroundTouch is a touch request a U2F command started. A U2F key does
// not block for a touch: it answers "conditions not satisfied" and the host
// polls, while the key's sensor waits on its own (FIDO U2F raw message
// formats §4.3; CTAP 2.1 §10.3).
type backgroundTouch struct {
	done chan struct{}
	err  error
}

// u2fPresence reports whether the person touched the key since the last
// U2F request that needed it, starting to wait for a touch if nobody is.
// An approval is used up by one request. The caller holds k.op.
func (k *Key) u2fPresence(op string, app [32]byte) bool {
	k.mu.Lock()
	t := k.u2fTouch
	if t == nil {
		t = &backgroundTouch{done: make(chan struct{})}
		k.u2fTouch = t
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			ctx, cancel := context.WithTimeout(k.ctx, k.cfg.UserPresenceTimeout)
			defer cancel()
			t.err = k.cfg.UserPresence(ctx, PresenceRequest{Op: op})
			close(t.done)
		}()
	}
	k.mu.Unlock()
	// A touch that comes at once (an approving hook) is seen by this very
	// request rather than the next poll.
	timer := time.NewTimer(20 * time.Millisecond)
	defer timer.Stop()
	select {
	case <-t.done:
	case <-timer.C:
		return false
	}
	k.mu.Lock()
	k.u2fTouch = nil
	k.mu.Unlock()
	return t.err == nil
}

func withSW(body []byte, sw ctap.StatusWord) []byte {
	return binary.BigEndian.AppendUint16(body, uint16(sw))
}

// handleMsg answers one U2F APDU.
func (k *Key) handleMsg(apdu []byte) []byte {
	k.op.Lock()
	defer k.op.Unlock()
	a, err := ctap.ParseAPDU(apdu)
	if err != nil {
		var sw ctap.StatusWord
		if errors.As(err, &sw) {
			return withSW(nil, sw)
		}
		return withSW(nil, ctap.SWWrongLength)
	}
	if a.CLA != 0 {
		return withSW(nil, ctap.SWClaNotSupported)
	}
	switch a.INS {
	case ctap.U2FVersion:
		if len(a.Data) != 0 {
			return withSW(nil, ctap.SWWrongLength)
		}
		return withSW([]byte("U2F_V2"), ctap.SWNoError)
	case ctap.U2FRegister:
		return k.u2fRegister(a)
	case ctap.U2FAuthenticate:
		return k.u2fAuthenticate(a)
	}
	return withSW(nil, ctap.SWInsNotSupported)
}

func (k *Key) u2fRegister(a *ctap.APDU) []byte {
	if len(a.Data) != 64 {
		return withSW(nil, ctap.SWWrongLength)
	}
	var chal, app [32]byte
	copy(chal[:], a.Data[:32])
	copy(app[:], a.Data[32:])
	if !k.u2fPresence("U2F register", app) {
		return withSW(nil, ctap.SWConditionsNotSatisfied)
	}
	signer, raw, err := newPrivateKey(k.cfg.Rand, ctap.AlgES256)
	if err != nil {
		return withSW(nil, ctap.SWWrongData)
	}
	pub, err := signer.Public().(*ecdsa.PublicKey).Bytes()
	if err != nil {
		return withSW(nil, ctap.SWWrongData)
	}
	k.mu.Lock()
	kh, err := k.wrapper.wrap(k.cfg.Rand, app, ctap.AlgES256, raw)
	k.mu.Unlock()
	if err != nil {
		return withSW(nil, ctap.SWWrongData)
	}
	// The registration signature covers 0x00 | app | challenge | key
	// handle | public key (U2F raw message formats §4.3).
	msg := bytes.Join([][]byte{{0}, app[:], chal[:], kh, pub}, nil)
	sig, err := k.sign(k.u2f, ctap.AlgES256, msg)
	if err != nil {
		return withSW(nil, ctap.SWWrongData)
	}
	r := &ctap.U2FRegisterResponse{PublicKey: pub, KeyHandle: kh, Certificate: k.st.U2FCert, Signature: sig}
	return withSW(r.Marshal(), ctap.SWNoError)
}

func (k *Key) u2fAuthenticate(a *ctap.APDU) []byte {
	d := a.Data
	if len(d) < 65 || len(d) != 65+int(d[64]) {
		return withSW(nil, ctap.SWWrongLength)
	}
	var chal, app [32]byte
	copy(chal[:], d[:32])
	copy(app[:], d[32:64])
	kh := d[65:]
	k.mu.Lock()
	alg, priv, ok := k.wrapper.unwrap(app, kh)
	k.mu.Unlock()
	if !ok || alg != ctap.AlgES256 {
		return withSW(nil, ctap.SWWrongData)
	}
	var up byte
	switch a.P1 {
	case ctap.U2FCheckOnly:
		// "Conditions not satisfied" is how check-only says "mine".
		return withSW(nil, ctap.SWConditionsNotSatisfied)
	case ctap.U2FEnforceUP:
		if !k.u2fPresence("U2F authenticate", app) {
			return withSW(nil, ctap.SWConditionsNotSatisfied)
		}
		up = 1
	case ctap.U2FDontEnforceUP:
	default:
		return withSW(nil, ctap.SWWrongData)
	}
	if k.cfg.ForceUPOff {
		up = 0
	}
	signer, err := signerFromRaw(alg, priv)
	if err != nil {
		return withSW(nil, ctap.SWWrongData)
	}
	k.mu.Lock()
	k.st.Counter++
	counter := k.st.Counter
	if err := k.save(); err != nil {
		k.st.Counter--
		k.mu.Unlock()
		return withSW(nil, ctap.SWWrongData)
	}
	k.mu.Unlock()
	// Signed: app | user presence | counter | challenge.
	msg := make([]byte, 0, 69)
	msg = append(msg, app[:]...)
	msg = append(msg, up)
	msg = binary.BigEndian.AppendUint32(msg, counter)
	msg = append(msg, chal[:]...)
	sig, err := k.sign(signer, alg, msg)
	if err != nil {
		return withSW(nil, ctap.SWWrongData)
	}
	r := &ctap.U2FAuthenticateResponse{UserPresence: up, Counter: counter, Signature: sig}
	return withSW(r.Marshal(), ctap.SWNoError)
}
