package fido

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/hid"
)

// maxAssertions bounds how many getNextAssertion calls one GetAssertion
// makes, whatever numberOfCredentials a key claims.
const maxAssertions = 256

// Device is a security key opened by [Open]: the pure-Go client over
// CTAPHID. It speaks CTAP2 when the key advertises CBOR and U2F otherwise.
//
// A Device is safe for concurrent use; operations are serialised, and a
// key itself handles one at a time. Other programs may open the same key;
// the key arbitrates between channels.
type Device struct {
	ch     *hid.Channel
	info   DeviceInfo
	prompt Prompt
	cbor   bool

	mu      sync.Mutex // serialises multi-message operations
	getInfo *Info      // cached authenticatorGetInfo
}

var _ Authenticator = (*Device)(nil)

// DeviceInfo returns what was known about the key when it was opened.
func (d *Device) DeviceInfo() DeviceInfo { return d.info }

// Close releases the key.
func (d *Device) Close() error { return d.ch.Close() }

// Wink asks the key to identify itself, by blinking for instance.
func (d *Device) Wink(ctx context.Context) error {
	if err := d.ch.Wink(ctx); err != nil {
		return d.wrap("wink", err)
	}
	return nil
}

// touchOnce returns a keepalive handler that calls Prompt.Touch at most once.
func (d *Device) touchOnce() func(byte) {
	var once sync.Once
	return func(status byte) {
		if status == hid.KeepaliveUPNeeded && d.prompt.Touch != nil {
			once.Do(d.prompt.Touch)
		}
	}
}

func (d *Device) wrap(op string, err error) error {
	switch {
	case errors.Is(err, hid.ErrIdleTimeout):
		return fmt.Errorf("fido: %s: %w", op, ErrDeviceGone)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("fido: %s: %w", op, err)
	}
	var pe *hid.ProtocolError
	if errors.As(err, &pe) {
		return &ResponseError{Op: op, Err: err}
	}
	return fmt.Errorf("fido: %s: %w", op, err)
}

// call runs one CTAP2 command and returns the CBOR body of a successful
// response. A non-zero status is returned as a Status error.
func (d *Device) call(ctx context.Context, cmd ctap.Command, params any, keepalive func(byte)) ([]byte, error) {
	op := cmd.String()
	req, err := ctap.EncodeRequest(cmd, params)
	if err != nil {
		return nil, fmt.Errorf("%w: encoding %s: %v", ErrInvalidRequest, op, err)
	}
	if d.getInfo != nil && d.getInfo.MaxMsgSize > 0 && len(req) > d.getInfo.MaxMsgSize {
		return nil, fmt.Errorf("fido: %s: request of %d bytes exceeds the key's maxMsgSize of %d: %w",
			op, len(req), d.getInfo.MaxMsgSize, ctap.StatusRequestTooLarge)
	}
	resp, err := d.ch.Transact(ctx, hid.CmdCBOR, req, keepalive)
	if err != nil {
		return nil, d.wrap(op, err)
	}
	status, body, err := ctap.ParseResponse(resp)
	if err != nil {
		return nil, &ResponseError{Op: op, Err: err}
	}
	if status != ctap.StatusOK {
		// A key answering a cancelled request with KEEPALIVE_CANCEL is
		// reported as the caller's cancellation too.
		if ctx.Err() != nil {
			return nil, fmt.Errorf("fido: %s: %w", op, errors.Join(ctx.Err(), status))
		}
		return nil, fmt.Errorf("fido: %s: %w", op, status)
	}
	return body, nil
}

// Info describes the key. It is read once and cached; a U2F-only key is
// described as supporting "U2F_V2" and ES256.
func (d *Device) Info(ctx context.Context) (*Info, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.infoLocked(ctx)
}

func (d *Device) infoLocked(ctx context.Context) (*Info, error) {
	if d.getInfo != nil {
		return d.getInfo, nil
	}
	if !d.cbor {
		info, err := d.u2fInfo(ctx)
		if err != nil {
			return nil, err
		}
		d.getInfo = info
		return info, nil
	}
	body, err := d.call(ctx, ctap.CmdGetInfo, nil, nil)
	if err != nil {
		return nil, err
	}
	r, err := ctap.DecodeGetInfoResponse(body)
	if err != nil {
		return nil, &ResponseError{Op: "getInfo", Err: err}
	}
	info := &Info{
		Versions:                         r.Versions,
		Extensions:                       r.Extensions,
		Options:                          r.Options,
		MaxMsgSize:                       int(min(r.MaxMsgSize, hid.MaxMessageSize)),
		MaxCredentialCountInList:         int(min(r.MaxCredentialCountInList, 1<<16)),
		MaxCredentialIDLength:            int(min(r.MaxCredentialIDLength, 1<<16)),
		Transports:                       r.Transports,
		FirmwareVersion:                  r.FirmwareVersion,
		MinPINLength:                     int(min(r.MinPINLength, 1<<16)),
		RemainingDiscoverableCredentials: -1,
	}
	if info.MaxMsgSize == 0 {
		// CTAP 2.1 §6.4: absent means the 1024-byte minimum.
		info.MaxMsgSize = 1024
	}
	if info.Options == nil {
		info.Options = map[string]bool{}
	}
	copy(info.AAGUID[:], r.AAGUID)
	for _, p := range r.PinUvAuthProtocols {
		info.PINUVAuthProtocols = append(info.PINUVAuthProtocols, int(min(p, 1<<16)))
	}
	for _, a := range r.Algorithms {
		if a.Type == "public-key" {
			info.Algorithms = append(info.Algorithms, Algorithm(a.Alg))
		}
	}
	if len(r.Algorithms) == 0 {
		info.Algorithms = []Algorithm{ES256} // CTAP 2.1 §6.4: absent means ES256
	}
	if r.RemainingDiscoverableCredentials != nil {
		info.RemainingDiscoverableCredentials = int(min(*r.RemainingDiscoverableCredentials, 1<<16))
	}
	d.getInfo = info
	return info, nil
}

func checkHash(h []byte) error {
	if len(h) != 32 {
		return invalidRequest("ClientDataHash is %d bytes, want 32", len(h))
	}
	return nil
}

// MakeCredential creates a credential on the key (enrolls it). The key
// waits for a touch; Prompt.Touch is called when it starts waiting.
func (d *Device) MakeCredential(ctx context.Context, req *MakeCredentialRequest) (*Attestation, error) {
	if err := checkHash(req.ClientDataHash); err != nil {
		return nil, err
	}
	if req.RP.ID == "" {
		return nil, invalidRequest("RP.ID is empty")
	}
	if n := len(req.User.ID); n < 1 || n > 64 {
		return nil, invalidRequest("User.ID is %d bytes, want 1 to 64", n)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	info, err := d.infoLocked(ctx)
	if err != nil {
		return nil, err
	}
	if !d.cbor {
		return d.u2fRegister(ctx, req)
	}
	algs := req.Algorithms
	if len(algs) == 0 {
		algs = []Algorithm{ES256}
	}
	p := &ctap.MakeCredentialRequest{
		ClientDataHash: req.ClientDataHash,
		RP:             &ctap.RPEntity{ID: req.RP.ID, Name: req.RP.Name},
		User:           &ctap.UserEntity{ID: req.User.ID, Name: req.User.Name, DisplayName: req.User.DisplayName},
	}
	for _, a := range algs {
		p.PubKeyCredParams = append(p.PubKeyCredParams, ctap.CredentialParam{Type: "public-key", Alg: int64(a)})
	}
	if req.Discoverable || req.UserVerification {
		p.Options = map[string]bool{}
		if req.Discoverable {
			p.Options[ctap.OptRK] = true
		}
		if req.UserVerification {
			p.Options[ctap.OptUV] = true
		}
	}
	// A key can only check as many excluded IDs at once as its limits
	// allow; larger lists are probed silently in batches first, as
	// browsers do, and only a batch that matches goes to makeCredential.
	exclude, err := d.findExcluded(ctx, info, req.RP.ID, req.ExcludeList)
	if err != nil {
		return nil, err
	}
	for _, id := range exclude {
		p.ExcludeList = append(p.ExcludeList, ctap.CredentialDescriptor{Type: "public-key", ID: id})
	}
	body, err := d.call(ctx, ctap.CmdMakeCredential, p, d.touchOnce())
	if err != nil {
		return nil, err
	}
	r, err := ctap.DecodeMakeCredentialResponse(body)
	if err != nil {
		return nil, &ResponseError{Op: "makeCredential", Err: err}
	}
	return attestationFrom(req.RP.ID, r.Format, r.AuthData, r.AttStmt)
}

func attestationFrom(rpID, format string, authData, stmt []byte) (*Attestation, error) {
	ad, err := ctap.ParseAuthData(authData)
	if err != nil {
		return nil, &ResponseError{Op: "makeCredential", Err: err}
	}
	if ad.Attested == nil {
		return nil, &ResponseError{Op: "makeCredential", Err: errors.New("authenticator data has no attested credential")}
	}
	if ad.RPIDHash != RPIDHash(rpID) {
		return nil, &ResponseError{Op: "makeCredential", Err: errors.New("authenticator data is for another relying party")}
	}
	alg, _, err := ctap.ParsePublicKey(ad.Attested.PublicKey)
	if err != nil {
		return nil, &ResponseError{Op: "makeCredential", Err: err}
	}
	return &Attestation{
		Format:       format,
		AuthData:     authData,
		Statement:    stmt,
		CredentialID: ad.Attested.CredentialID,
		PublicKey:    ad.Attested.PublicKey,
		Algorithm:    Algorithm(alg),
		AAGUID:       ad.Attested.AAGUID,
		SignCount:    ad.SignCount,
		UserPresent:  ad.Flags&ctap.FlagUP != 0,
		UserVerified: ad.Flags&ctap.FlagUV != 0,
	}, nil
}

// listLimit is how many credential IDs fit in one request to this key.
func listLimit(info *Info) int {
	if info.MaxCredentialCountInList > 0 {
		return info.MaxCredentialCountInList
	}
	return 1 // CTAP 2.1 §6.4: a key that states no limit may take only one
}

// findExcluded returns the part of ids to send in makeCredential's
// excludeList: all of them when they fit, or the batch that a silent probe
// found on the key, or none.
func (d *Device) findExcluded(ctx context.Context, info *Info, rpID string, ids [][]byte) ([][]byte, error) {
	limit := listLimit(info)
	if len(ids) <= limit {
		return ids, nil
	}
	for start := 0; start < len(ids); start += limit {
		batch := ids[start:min(start+limit, len(ids))]
		found, err := d.probe(ctx, rpID, batch)
		if err != nil {
			return nil, err
		}
		if found != nil {
			return [][]byte{found}, nil
		}
	}
	return nil, nil
}

// probe asks the key, without waiting for a touch, which credential of ids
// it holds for rpID. It returns nil when none.
func (d *Device) probe(ctx context.Context, rpID string, ids [][]byte) ([]byte, error) {
	hash := make([]byte, 32) // any value: the signature is discarded
	p := &ctap.GetAssertionRequest{RPID: rpID, ClientDataHash: hash, Options: map[string]bool{ctap.OptUP: false}}
	for _, id := range ids {
		p.AllowList = append(p.AllowList, ctap.CredentialDescriptor{Type: "public-key", ID: id})
	}
	body, err := d.call(ctx, ctap.CmdGetAssertion, p, nil)
	if errors.Is(err, ctap.StatusNoCredentials) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	r, err := ctap.DecodeGetAssertionResponse(body)
	if err != nil {
		return nil, &ResponseError{Op: "getAssertion", Err: err}
	}
	if r.Credential != nil {
		return r.Credential.ID, nil
	}
	if len(ids) == 1 {
		return ids[0], nil
	}
	return nil, &ResponseError{Op: "getAssertion", Err: errors.New("no credential in answer to a multi-credential allowList")}
}

// GetAssertion signs in with the key. With an AllowList the key uses the
// first listed credential it holds; without one it returns an assertion for
// every discoverable credential it holds for the RP, newest first.
func (d *Device) GetAssertion(ctx context.Context, req *GetAssertionRequest) ([]*Assertion, error) {
	if err := checkHash(req.ClientDataHash); err != nil {
		return nil, err
	}
	if req.RPID == "" {
		return nil, invalidRequest("RPID is empty")
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	info, err := d.infoLocked(ctx)
	if err != nil {
		return nil, err
	}
	if !d.cbor {
		return d.u2fAuthenticate(ctx, req)
	}
	allow := req.AllowList
	if limit := listLimit(info); len(allow) > limit {
		allow = nil
		for start := 0; start < len(req.AllowList) && allow == nil; start += limit {
			found, err := d.probe(ctx, req.RPID, req.AllowList[start:min(start+limit, len(req.AllowList))])
			if err != nil {
				return nil, err
			}
			if found != nil {
				allow = [][]byte{found}
			}
		}
		if allow == nil {
			return nil, fmt.Errorf("fido: getAssertion: %w", ctap.StatusNoCredentials)
		}
	}
	p := &ctap.GetAssertionRequest{RPID: req.RPID, ClientDataHash: req.ClientDataHash}
	for _, id := range allow {
		p.AllowList = append(p.AllowList, ctap.CredentialDescriptor{Type: "public-key", ID: id})
	}
	if req.NoUserPresence || req.UserVerification {
		p.Options = map[string]bool{}
		if req.NoUserPresence {
			p.Options[ctap.OptUP] = false
		}
		if req.UserVerification {
			p.Options[ctap.OptUV] = true
		}
	}
	body, err := d.call(ctx, ctap.CmdGetAssertion, p, d.touchOnce())
	if err != nil {
		return nil, err
	}
	first, err := d.assertionFrom(req, allow, body)
	if err != nil {
		return nil, err
	}
	out := []*Assertion{first.a}
	n := min(first.n, maxAssertions)
	for i := 1; i < n; i++ {
		body, err := d.call(ctx, ctap.CmdGetNextAssertion, nil, nil)
		if err != nil {
			return nil, err
		}
		next, err := d.assertionFrom(req, allow, body)
		if err != nil {
			return nil, err
		}
		out = append(out, next.a)
	}
	return out, nil
}

type assertionAndCount struct {
	a *Assertion
	n int
}

func (d *Device) assertionFrom(req *GetAssertionRequest, allow [][]byte, body []byte) (assertionAndCount, error) {
	r, err := ctap.DecodeGetAssertionResponse(body)
	if err != nil {
		return assertionAndCount{}, &ResponseError{Op: "getAssertion", Err: err}
	}
	ad, err := ctap.ParseAuthData(r.AuthData)
	if err != nil {
		return assertionAndCount{}, &ResponseError{Op: "getAssertion", Err: err}
	}
	if ad.RPIDHash != RPIDHash(req.RPID) {
		return assertionAndCount{}, &ResponseError{Op: "getAssertion", Err: errors.New("authenticator data is for another relying party")}
	}
	a := &Assertion{
		AuthData:     r.AuthData,
		Signature:    r.Signature,
		SignCount:    ad.SignCount,
		UserPresent:  ad.Flags&ctap.FlagUP != 0,
		UserVerified: ad.Flags&ctap.FlagUV != 0,
	}
	switch {
	case r.Credential != nil:
		a.CredentialID = r.Credential.ID
	case len(allow) == 1:
		// CTAP 2.1 §6.2: the key may omit the credential when the
		// allowList had exactly one.
		a.CredentialID = allow[0]
	default:
		return assertionAndCount{}, &ResponseError{Op: "getAssertion", Err: errors.New("no credential in response")}
	}
	if len(allow) > 0 && !containsID(allow, a.CredentialID) {
		return assertionAndCount{}, &ResponseError{Op: "getAssertion", Err: errors.New("key signed with a credential not in the allowList")}
	}
	if r.User != nil {
		a.User = &User{ID: r.User.ID, Name: r.User.Name, DisplayName: r.User.DisplayName}
	}
	n := r.NumberOfCredentials
	if n < 1 {
		n = 1
	}
	return assertionAndCount{a: a, n: n}, nil
}

func containsID(ids [][]byte, id []byte) bool {
	for _, x := range ids {
		if bytes.Equal(x, id) {
			return true
		}
	}
	return false
}

// Selection waits for a touch, so that a person can pick this key among
// several (CTAP 2.1 §6.9). Keys older than CTAP 2.1 are asked for a touch
// the way browsers do: a makeCredential with an empty pinUvAuthParam, or a
// U2F registration.
func (d *Device) Selection(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	info, err := d.infoLocked(ctx)
	if err != nil {
		return err
	}
	switch {
	case !d.cbor:
		return d.u2fTouch(ctx)
	case info.Supports("FIDO_2_1"):
		_, err := d.call(ctx, ctap.CmdSelection, nil, d.touchOnce())
		return err
	default:
		p := &ctap.MakeCredentialRequest{
			ClientDataHash:   make([]byte, 32),
			RP:               &ctap.RPEntity{ID: ".dummy"},
			User:             &ctap.UserEntity{ID: []byte{1}, Name: "dummy"},
			PubKeyCredParams: []ctap.CredentialParam{{Type: "public-key", Alg: ctap.AlgES256}},
			PinUvAuthParam:   []byte{},
		}
		_, err := d.call(ctx, ctap.CmdMakeCredential, p, d.touchOnce())
		// CTAP 2.0 §5.5.8.1: after the touch the key reports the PIN state.
		if errors.Is(err, ctap.StatusPINNotSet) || errors.Is(err, ctap.StatusPINInvalid) || errors.Is(err, ctap.StatusPINAuthInvalid) {
			return nil
		}
		return err
	}
}

// Reset erases every credential on the key and its PIN (CTAP 2.1 §6.6).
// Keys accept it only within seconds of being plugged in, and only with a
// touch. There is no undo.
func (d *Device) Reset(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.cbor {
		return fmt.Errorf("fido: reset: %w", ErrNotSupported)
	}
	_, err := d.call(ctx, ctap.CmdReset, nil, d.touchOnce())
	d.getInfo = nil
	return err
}
