package fido

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"fmt"
	"sync"
	"time"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/hid"
)

// U2F keys answer "conditions not satisfied" until touched, so the client
// polls (FIDO U2F Raw Message Formats §4 and CTAP 2.1 §10.3). 100 ms
// matches the KEEPALIVE cadence of CTAP2 keys.
const u2fPollInterval = 100 * time.Millisecond

// u2f sends one APDU and returns the body and status word.
func (d *Device) u2f(ctx context.Context, ins, p1 byte, data []byte) ([]byte, ctap.StatusWord, error) {
	apdu := (&ctap.APDU{INS: ins, P1: p1, Data: data, Le: 65536}).Marshal()
	resp, err := d.ch.Transact(ctx, hid.CmdMsg, apdu, nil)
	if err != nil {
		return nil, 0, d.wrap("U2F", err)
	}
	body, sw, err := ctap.SplitStatusWord(resp)
	if err != nil {
		return nil, 0, &ResponseError{Op: "U2F", Err: err}
	}
	return body, sw, nil
}

// u2fUntilTouched repeats an APDU while the key waits for a touch.
func (d *Device) u2fUntilTouched(ctx context.Context, ins, p1 byte, data []byte) ([]byte, ctap.StatusWord, error) {
	var once sync.Once
	for {
		body, sw, err := d.u2f(ctx, ins, p1, data)
		if err != nil || sw != ctap.SWConditionsNotSatisfied {
			return body, sw, err
		}
		if d.prompt.Touch != nil {
			once.Do(d.prompt.Touch)
		}
		t := time.NewTimer(u2fPollInterval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, 0, fmt.Errorf("fido: U2F: %w", hid.ContextErr(ctx))
		case <-t.C:
		}
	}
}

func (d *Device) u2fInfo(ctx context.Context) (*Info, error) {
	body, sw, err := d.u2f(ctx, ctap.U2FVersion, 0, nil)
	if err != nil {
		return nil, err
	}
	if sw != ctap.SWNoError || string(body) != "U2F_V2" {
		return nil, &ResponseError{Op: "U2F version", Err: fmt.Errorf("version %q, status %v", body, sw)}
	}
	return &Info{
		Versions:                         []string{"U2F_V2"},
		Options:                          map[string]bool{},
		MaxMsgSize:                       hid.MaxMessageSize,
		Algorithms:                       []Algorithm{ES256},
		MaxCredentialCountInList:         1,
		RemainingDiscoverableCredentials: -1,
		Transports:                       []string{"usb"},
	}, nil
}

// u2fHolds reports whether the key recognises keyHandle for appParam, using
// a check-only authenticate, which needs no touch.
func (d *Device) u2fHolds(ctx context.Context, appParam [32]byte, keyHandle []byte) (bool, error) {
	if len(keyHandle) > 255 {
		return false, nil
	}
	data := make([]byte, 0, 65+len(keyHandle))
	data = append(data, make([]byte, 32)...) // challenge: unused by check-only
	data = append(data, appParam[:]...)
	data = append(data, byte(len(keyHandle)))
	data = append(data, keyHandle...)
	_, sw, err := d.u2f(ctx, ctap.U2FAuthenticate, ctap.U2FCheckOnly, data)
	if err != nil {
		return false, err
	}
	// "Conditions not satisfied" is the success answer of check-only.
	return sw == ctap.SWConditionsNotSatisfied, nil
}

// u2fTouch waits for a touch with a registration the key will not keep
// meaningful: a throwaway application parameter (CTAP 2.1 §10.3).
func (d *Device) u2fTouch(ctx context.Context) error {
	dummy := make([]byte, 64)
	copy(dummy[32:], "fidokit: touch to select this key")
	_, sw, err := d.u2fUntilTouched(ctx, ctap.U2FRegister, 0, dummy)
	if err != nil {
		return err
	}
	if sw != ctap.SWNoError {
		return fmt.Errorf("fido: U2F register: %w", sw)
	}
	return nil
}

func (d *Device) u2fRegister(ctx context.Context, req *MakeCredentialRequest) (*Attestation, error) {
	if req.Discoverable || req.UserVerification {
		return nil, fmt.Errorf("fido: makeCredential: discoverable credentials and user verification on a U2F key: %w", ErrNotSupported)
	}
	ok := len(req.Algorithms) == 0
	for _, a := range req.Algorithms {
		ok = ok || a == ES256
	}
	if !ok {
		return nil, fmt.Errorf("fido: makeCredential: U2F keys only do ES256: %w", ctap.StatusUnsupportedAlgorithm)
	}
	app := RPIDHash(req.RP.ID)
	for _, id := range req.ExcludeList {
		held, err := d.u2fHolds(ctx, app, id)
		if err != nil {
			return nil, err
		}
		if held {
			// As a CTAP2 key does, wait for the touch before saying so,
			// so a page cannot probe for keys silently.
			if err := d.u2fTouch(ctx); err != nil {
				return nil, err
			}
			return nil, fmt.Errorf("fido: makeCredential: %w", ctap.StatusCredentialExcluded)
		}
	}
	data := append(append([]byte{}, req.ClientDataHash...), app[:]...)
	body, sw, err := d.u2fUntilTouched(ctx, ctap.U2FRegister, 0, data)
	if err != nil {
		return nil, err
	}
	if sw != ctap.SWNoError {
		return nil, fmt.Errorf("fido: U2F register: %w", sw)
	}
	r, err := ctap.ParseU2FRegisterResponse(body)
	if err != nil {
		return nil, &ResponseError{Op: "U2F register", Err: err}
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), r.PublicKey)
	if err != nil {
		return nil, &ResponseError{Op: "U2F register", Err: fmt.Errorf("public key is not a P-256 point: %w", err)}
	}
	cose, err := ctap.MarshalPublicKey(pub)
	if err != nil {
		return nil, &ResponseError{Op: "U2F register", Err: err}
	}
	// WebAuthn L3 §8.6: a fido-u2f credential's authenticator data has a
	// zero AAGUID and counter; the statement is the certificate and the
	// U2F signature.
	ad := &ctap.AuthData{
		RPIDHash: app,
		Flags:    ctap.FlagUP | ctap.FlagAT,
		Attested: &ctap.AttestedCredential{CredentialID: r.KeyHandle, PublicKey: cose},
	}
	stmt, err := ctap.Marshal(map[string]any{"sig": r.Signature, "x5c": [][]byte{r.Certificate}})
	if err != nil {
		return nil, err
	}
	return attestationFrom(req.RP.ID, "fido-u2f", ad.Marshal(), stmt)
}

func (d *Device) u2fAuthenticate(ctx context.Context, req *GetAssertionRequest) ([]*Assertion, error) {
	if req.UserVerification {
		return nil, fmt.Errorf("fido: getAssertion: user verification on a U2F key: %w", ErrNotSupported)
	}
	if len(req.AllowList) == 0 {
		// U2F keys keep no credentials of their own.
		return nil, fmt.Errorf("fido: getAssertion: %w", ctap.StatusNoCredentials)
	}
	app := RPIDHash(req.RPID)
	for _, id := range req.AllowList {
		held, err := d.u2fHolds(ctx, app, id)
		if err != nil {
			return nil, err
		}
		if !held {
			continue
		}
		data := make([]byte, 0, 65+len(id))
		data = append(data, req.ClientDataHash...)
		data = append(data, app[:]...)
		data = append(data, byte(len(id)))
		data = append(data, id...)
		p1 := ctap.U2FEnforceUP
		if req.NoUserPresence {
			p1 = ctap.U2FDontEnforceUP
		}
		body, sw, err := d.u2fUntilTouched(ctx, ctap.U2FAuthenticate, p1, data)
		if err != nil {
			return nil, err
		}
		if sw != ctap.SWNoError {
			return nil, fmt.Errorf("fido: U2F authenticate: %w", sw)
		}
		r, err := ctap.ParseU2FAuthenticateResponse(body)
		if err != nil {
			return nil, &ResponseError{Op: "U2F authenticate", Err: err}
		}
		// The U2F signature covers appParam | UP | counter | challenge,
		// which is exactly authenticator data followed by the client data
		// hash (WebAuthn L3 §6.1).
		ad := &ctap.AuthData{RPIDHash: app, Flags: ctap.AuthDataFlags(r.UserPresence & 0x01), SignCount: r.Counter}
		return []*Assertion{{
			CredentialID: id,
			AuthData:     ad.Marshal(),
			Signature:    r.Signature,
			SignCount:    r.Counter,
			UserPresent:  r.UserPresence&0x01 != 0,
		}}, nil
	}
	return nil, fmt.Errorf("fido: getAssertion: %w", ctap.StatusNoCredentials)
}
