package fido

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/pinuv"
)

// PINManager manages a key's PIN (CTAP 2.1 §6.5). [Device] implements it,
// and so may other backends; find out with a type assertion:
//
//	if pm, ok := auth.(fido.PINManager); ok { ... }
//
// PINs are UTF-8 strings of at least 4 Unicode code points (or the key's
// Info.MinPINLength, if larger) and at most 63 bytes, without NUL
// characters. Implementations never keep a PIN beyond the call, nor put it
// in an error or a log.
type PINManager interface {
	// SetPIN sets the PIN of a key that has none (CTAP 2.1 §6.5.5.5).
	// A PIN that breaks the rules above gives an error matching both
	// ErrInvalidRequest and StatusPINPolicyViolation, with nothing sent;
	// a key that already has a PIN gives StatusNotAllowed (use
	// ChangePIN); a key without PIN support gives ErrNotSupported.
	SetPIN(ctx context.Context, pin string) error
	// ChangePIN replaces the PIN (CTAP 2.1 §6.5.5.6). A wrong oldPIN gives
	// a [*PINError]; a newPIN that breaks the rules gives an error
	// matching StatusPINPolicyViolation. It also clears a forced PIN
	// change (Info.ForcePINChange).
	ChangePIN(ctx context.Context, oldPIN, newPIN string) error
	// PINRetries returns how many wrong PINs the key still accepts before
	// it blocks the PIN for good, and whether it refuses PINs until it is
	// unplugged and plugged in again (CTAP 2.1 §6.5.5.2).
	PINRetries(ctx context.Context) (retries int, powerCycleRequired bool, err error)
	// UVRetries returns how many failed built-in user verifications
	// (fingerprints and the like) the key still accepts before it falls
	// back to the PIN alone (CTAP 2.1 §6.5.5.3). A key without built-in
	// user verification gives ErrNotSupported.
	UVRetries(ctx context.Context) (int, error)
}

var _ PINManager = (*Device)(nil)

// Option names this file reads from getInfo (CTAP 2.1 §6.4).
const (
	optUV        = ctap.OptUV
	optClientPIN = ctap.OptClientPIN
)

// opt reports whether a getInfo option is present and true.
func (i *Info) opt(id string) bool { return i.Options[id] }

// pinToken is a pinUvAuthToken with the protocol it was issued under
// (CTAP 2.1 §6.5.2). It lives for one public call and is zeroed when that
// call returns, so no token outlives the operation it was obtained for.
type pinToken struct {
	proto pinuv.Protocol
	token []byte
}

// auth returns the pinUvAuthParam of message (CTAP 2.1 §6.5.4
// "authenticate").
func (t *pinToken) auth(message []byte) []byte { return t.proto.Authenticate(t.token, message) }

// wipe zeroes the token; it is safe on nil.
func (t *pinToken) wipe() {
	if t != nil {
		clear(t.token)
	}
}

// pinProtocol picks the PIN/UV auth protocol to speak with the key: two
// when offered, else one (CTAP 2.1 §6.5.4; keys list their protocols in
// getInfo, preferred first, and CTAP 2.0 keys that list none speak one).
// Tests force one with Device.forceProtocol.
func (d *Device) pinProtocol(info *Info) (pinuv.Protocol, error) {
	offered := info.PINUVAuthProtocols
	if len(offered) == 0 {
		offered = []int{1}
	}
	want := []int{2, 1}
	if d.forceProtocol != 0 {
		want = []int{d.forceProtocol}
	}
	for _, v := range want {
		if slices.Contains(offered, v) {
			p, _ := pinuv.ByVersion(uint64(v))
			return p, nil
		}
	}
	return nil, fmt.Errorf("fido: the key offers PIN/UV auth protocols %v, none of which this client speaks: %w", info.PINUVAuthProtocols, ErrNotSupported)
}

// clientPIN runs one authenticatorClientPIN subcommand (CTAP 2.1 §6.5.5).
// Subcommands that answer with no body give an empty response.
func (d *Device) clientPIN(ctx context.Context, req *ctap.ClientPINRequest, keepalive func(byte)) (*ctap.ClientPINResponse, error) {
	body, err := d.call(ctx, ctap.CmdClientPIN, req, keepalive)
	if err != nil {
		return nil, err
	}
	if len(body) == 0 {
		return &ctap.ClientPINResponse{}, nil
	}
	r, err := ctap.DecodeClientPINResponse(body)
	if err != nil {
		return nil, &ResponseError{Op: req.SubCommand.String(), Err: err}
	}
	return r, nil
}

// keyAgreement runs getKeyAgreement and the platform's half of the key
// agreement (CTAP 2.1 §6.5.5.4, §6.5.6 "encapsulate"): it returns the
// platform key to send and the shared secret, which the caller zeroes.
func (d *Device) keyAgreement(ctx context.Context, proto pinuv.Protocol) (cbor.RawMessage, []byte, error) {
	r, err := d.clientPIN(ctx, &ctap.ClientPINRequest{PinUvAuthProtocol: proto.Version(), SubCommand: ctap.ClientPINGetKeyAgreement}, nil)
	if err != nil {
		return nil, nil, err
	}
	if r.KeyAgreement == nil {
		return nil, nil, &ResponseError{Op: "getKeyAgreement", Err: errors.New("no keyAgreement in response")}
	}
	peer, err := ctap.ParseKeyAgreement(r.KeyAgreement)
	if err != nil {
		return nil, nil, &ResponseError{Op: "getKeyAgreement", Err: err}
	}
	own, shared, err := proto.Encapsulate(peer)
	if err != nil {
		return nil, nil, &ResponseError{Op: "getKeyAgreement", Err: err}
	}
	platformKey, err := ctap.EncodeKeyAgreement(own)
	if err != nil {
		clear(shared)
		return nil, nil, fmt.Errorf("fido: encoding the key agreement key: %w", err)
	}
	return platformKey, shared, nil
}

// checkNewPIN applies the PIN rules of CTAP 2.1 §6.5.1 and the key's
// minPINLength (§6.4) to a PIN about to be set, and returns it padded to
// 64 bytes (§6.5.5.5). The caller zeroes the result. Errors match both
// ErrInvalidRequest (nothing was sent) and StatusPINPolicyViolation (what
// the key would have said); they never contain the PIN.
func checkNewPIN(info *Info, pin string) ([]byte, error) {
	padded, err := pinuv.PadPIN(pin)
	if err != nil {
		return nil, fmt.Errorf("%w: %w: %v", ErrInvalidRequest, StatusPINPolicyViolation, err)
	}
	if n := utf8.RuneCountInString(pin); n < info.MinPINLength {
		clear(padded)
		return nil, fmt.Errorf("%w: %w: PIN of %d code points, the key's minimum is %d", ErrInvalidRequest, StatusPINPolicyViolation, n, info.MinPINLength)
	}
	return padded, nil
}

// checkPINForm rejects a PIN given for verification that no key can hold
// (CTAP 2.1 §6.5.1), so that it does not cost a retry. The key's current
// minimum is not applied: a PIN set before the minimum was raised is still
// the PIN (§6.11.4 forces a change instead).
func checkPINForm(pin string) error {
	padded, err := pinuv.PadPIN(pin)
	if err != nil {
		return fmt.Errorf("%w: %w: %v", ErrInvalidRequest, StatusPINPolicyViolation, err)
	}
	clear(padded)
	return nil
}

// cborInfo returns the key's info, or ErrNotSupported for a U2F-only key,
// which has no PIN, credential management or configuration.
func (d *Device) cborInfo(ctx context.Context, op string) (*Info, error) {
	if !d.cbor {
		return nil, fmt.Errorf("fido: %s: U2F key: %w", op, ErrNotSupported)
	}
	return d.infoLocked(ctx)
}

// SetPIN sets the PIN of a key that has none (CTAP 2.1 §6.5.5.5); see
// [PINManager.SetPIN] for the rules and errors. Afterwards the key asks for
// the PIN wherever it requires user verification.
func (d *Device) SetPIN(ctx context.Context, pin string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := d.opContext(ctx)
	defer cancel()
	// The PIN may have been set since getInfo was read (by another
	// program, say), and keys disagree on how to refuse a second setPIN
	// (CTAP 2.0: NOT_ALLOWED; CTAP 2.1 §6.5.5.5: PIN_AUTH_INVALID), so
	// the client asks afresh and answers alike for both.
	d.getInfo = nil
	info, err := d.cborInfo(ctx, "setPIN")
	if err != nil {
		return err
	}
	pinSet, ok := info.Option(optClientPIN)
	if !ok {
		return fmt.Errorf("fido: setPIN: the key has no PIN support: %w", ErrNotSupported)
	}
	if pinSet {
		return fmt.Errorf("fido: setPIN: the key already has a PIN; use ChangePIN: %w", StatusNotAllowed)
	}
	padded, err := checkNewPIN(info, pin)
	if err != nil {
		return fmt.Errorf("fido: setPIN: %w", err)
	}
	defer clear(padded)
	proto, err := d.pinProtocol(info)
	if err != nil {
		return err
	}
	platformKey, shared, err := d.keyAgreement(ctx, proto)
	if err != nil {
		return err
	}
	defer clear(shared)
	newPinEnc, err := proto.Encrypt(shared, padded)
	if err != nil {
		return fmt.Errorf("fido: setPIN: encrypting: %w", err)
	}
	_, err = d.clientPIN(ctx, &ctap.ClientPINRequest{
		PinUvAuthProtocol: proto.Version(),
		SubCommand:        ctap.ClientPINSetPIN,
		KeyAgreement:      platformKey,
		NewPinEnc:         newPinEnc,
		PinUvAuthParam:    proto.Authenticate(shared, newPinEnc),
	}, nil)
	d.getInfo = nil // clientPin, forcePINChange and the like changed
	return err
}

// ChangePIN replaces the key's PIN (CTAP 2.1 §6.5.5.6); see
// [PINManager.ChangePIN] for the errors.
func (d *Device) ChangePIN(ctx context.Context, oldPIN, newPIN string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := d.opContext(ctx)
	defer cancel()
	info, err := d.cborInfo(ctx, "changePIN")
	if err != nil {
		return err
	}
	if _, ok := info.Option(optClientPIN); !ok {
		return fmt.Errorf("fido: changePIN: the key has no PIN support: %w", ErrNotSupported)
	}
	if err := checkPINForm(oldPIN); err != nil {
		return fmt.Errorf("fido: changePIN: current PIN: %w", err)
	}
	padded, err := checkNewPIN(info, newPIN)
	if err != nil {
		return fmt.Errorf("fido: changePIN: new PIN: %w", err)
	}
	defer clear(padded)
	proto, err := d.pinProtocol(info)
	if err != nil {
		return err
	}
	platformKey, shared, err := d.keyAgreement(ctx, proto)
	if err != nil {
		return err
	}
	defer clear(shared)
	hash := pinuv.PINHash(oldPIN)
	defer clear(hash)
	pinHashEnc, err := proto.Encrypt(shared, hash)
	if err != nil {
		return fmt.Errorf("fido: changePIN: encrypting: %w", err)
	}
	newPinEnc, err := proto.Encrypt(shared, padded)
	if err != nil {
		return fmt.Errorf("fido: changePIN: encrypting: %w", err)
	}
	req := &ctap.ClientPINRequest{
		PinUvAuthProtocol: proto.Version(),
		SubCommand:        ctap.ClientPINChangePIN,
		KeyAgreement:      platformKey,
		NewPinEnc:         newPinEnc,
		PinHashEnc:        pinHashEnc,
	}
	req.PinUvAuthParam = proto.Authenticate(shared, req.AuthMessage())
	_, err = d.clientPIN(ctx, req, nil)
	d.getInfo = nil
	if err != nil {
		return d.pinFailure(ctx, "changePIN", err)
	}
	return nil
}

// pinFailure turns a refused PIN into a *PINError with the retries left,
// asked of the key (CTAP 2.1 §6.5.5.2); other errors pass through.
func (d *Device) pinFailure(ctx context.Context, op string, err error) error {
	var st Status
	if !errors.As(err, &st) {
		return err
	}
	pe := &PINError{Retries: -1, Err: st}
	switch st {
	case StatusPINBlocked:
		pe.Retries = 0
	case StatusPINInvalid, StatusPINAuthBlocked:
		if n, _, rerr := d.pinRetries(ctx); rerr == nil {
			pe.Retries = n
		}
	default:
		return err
	}
	return fmt.Errorf("fido: %s: %w", op, pe)
}

// PINRetries returns the key's PIN retry counter and whether it needs a
// power cycle before it takes another PIN (CTAP 2.1 §6.5.5.2). A key
// without PIN support gives ErrNotSupported.
func (d *Device) PINRetries(ctx context.Context) (retries int, powerCycleRequired bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := d.opContext(ctx)
	defer cancel()
	info, err := d.cborInfo(ctx, "getPINRetries")
	if err != nil {
		return 0, false, err
	}
	if _, ok := info.Option(optClientPIN); !ok {
		return 0, false, fmt.Errorf("fido: getPINRetries: the key has no PIN support: %w", ErrNotSupported)
	}
	return d.pinRetries(ctx)
}

func (d *Device) pinRetries(ctx context.Context) (int, bool, error) {
	req := &ctap.ClientPINRequest{SubCommand: ctap.ClientPINGetPINRetries}
	if d.getInfo != nil {
		if p, err := d.pinProtocol(d.getInfo); err == nil {
			req.PinUvAuthProtocol = p.Version()
		}
	}
	r, err := d.clientPIN(ctx, req, nil)
	if err != nil {
		return 0, false, err
	}
	if r.PinRetries == nil {
		return 0, false, &ResponseError{Op: "getPINRetries", Err: errors.New("no pinRetries in response")}
	}
	return int(min(*r.PinRetries, 255)), r.PowerCycleState, nil
}

// UVRetries returns how many failed built-in user verifications the key
// still accepts (CTAP 2.1 §6.5.5.3). A key without built-in user
// verification gives ErrNotSupported.
func (d *Device) UVRetries(ctx context.Context) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := d.opContext(ctx)
	defer cancel()
	info, err := d.cborInfo(ctx, "getUVRetries")
	if err != nil {
		return 0, err
	}
	if _, ok := info.Option(optUV); !ok {
		return 0, fmt.Errorf("fido: getUVRetries: the key has no built-in user verification: %w", ErrNotSupported)
	}
	req := &ctap.ClientPINRequest{SubCommand: ctap.ClientPINGetUVRetries}
	if p, err := d.pinProtocol(info); err == nil {
		req.PinUvAuthProtocol = p.Version()
	}
	r, err := d.clientPIN(ctx, req, nil)
	if err != nil {
		return 0, err
	}
	if r.UVRetries == nil {
		return 0, &ResponseError{Op: "getUVRetries", Err: errors.New("no uvRetries in response")}
	}
	return int(min(*r.UVRetries, 255)), nil
}

// tokenRequest says what a pinUvAuthToken is for.
type tokenRequest struct {
	op    string           // for PINRequest.Op and errors
	perms pinuv.Permission // exactly what the operation needs
	rpID  string           // the permissions RP ID; "" for none
	// skipUV goes straight to the PIN: built-in verification already
	// failed in the command itself.
	skipUV bool
}

// token obtains a pinUvAuthToken with exactly the permissions asked for
// (CTAP 2.1 §6.5.5.7): by built-in user verification when the key has it
// and issues tokens for it (getPinUvAuthTokenUsingUvWithPermissions, tried
// preferredPlatformUvAttempts times), else by PIN
// (getPinUvAuthTokenUsingPinWithPermissions, or getPinToken on keys older
// than CTAP 2.1), asking Prompt.PIN. The caller wipes the token.
func (d *Device) token(ctx context.Context, info *Info, tr tokenRequest) (*pinToken, error) {
	proto, err := d.pinProtocol(info)
	if err != nil {
		return nil, err
	}
	var uvErr error
	if !tr.skipUV && info.opt(optUV) && info.opt(ctap.OptPinUvAuthToken) {
		attempts := max(info.PreferredPlatformUVAttempts, 1)
		for range attempts {
			tok, err := d.tokenByUV(ctx, proto, tr)
			if err == nil {
				return tok, nil
			}
			uvErr = err
			if !errors.Is(err, StatusUVInvalid) {
				break
			}
		}
		// Only a failed or blocked verification falls back to the PIN;
		// anything else (a timeout, a cancel, a key gone) is the answer.
		if !errors.Is(uvErr, StatusUVInvalid) && !errors.Is(uvErr, StatusUVBlocked) {
			return nil, uvErr
		}
	}
	pinSet, pinSupported := info.Option(optClientPIN)
	switch {
	case pinSet && info.opt(ctap.OptNoMcGaPermsWithClientPIN) && tr.perms&(pinuv.PermMakeCredential|pinuv.PermGetAssertion) != 0:
		err := fmt.Errorf("fido: %s: the key gives no makeCredential or getAssertion permission for a PIN, only for built-in user verification: %w", tr.op, ErrNotSupported)
		if uvErr != nil {
			err = fmt.Errorf("%w; built-in user verification: %w", err, uvErr)
		}
		return nil, err
	case pinSet:
		return d.tokenByPIN(ctx, info, proto, tr, uvErr != nil || tr.skipUV)
	case uvErr != nil:
		return nil, uvErr
	case pinSupported:
		return nil, fmt.Errorf("fido: %s: user verification needs a PIN and the key has none set (see SetPIN): %w", tr.op, StatusPINNotSet)
	}
	return nil, fmt.Errorf("fido: %s: the key has neither a PIN nor built-in user verification: %w", tr.op, ErrNotSupported)
}

// tokenByUV runs getPinUvAuthTokenUsingUvWithPermissions (CTAP 2.1
// §6.5.5.7.3). The key verifies the person itself and may wait for a
// touch.
func (d *Device) tokenByUV(ctx context.Context, proto pinuv.Protocol, tr tokenRequest) (*pinToken, error) {
	platformKey, shared, err := d.keyAgreement(ctx, proto)
	if err != nil {
		return nil, err
	}
	defer clear(shared)
	r, err := d.clientPIN(ctx, &ctap.ClientPINRequest{
		PinUvAuthProtocol: proto.Version(),
		SubCommand:        ctap.ClientPINGetPinUvAuthTokenUsingUvWithPermissions,
		KeyAgreement:      platformKey,
		Permissions:       uint64(tr.perms),
		RPID:              tr.rpID,
	}, d.touchOnce())
	if err != nil {
		return nil, err
	}
	return decryptToken(proto, shared, r)
}

// tokenByPIN asks Prompt.PIN for the PIN and exchanges it for a token,
// asking again after each wrong PIN until the key blocks it.
func (d *Device) tokenByPIN(ctx context.Context, info *Info, proto pinuv.Protocol, tr tokenRequest, uvFailed bool) (*pinToken, error) {
	// Asking the counter first means a blocked PIN is reported without
	// bothering the person, and the prompt can say how many tries are left.
	retries, powerCycle, err := d.pinRetries(ctx)
	if err != nil {
		return nil, err
	}
	if retries == 0 {
		return nil, fmt.Errorf("fido: %s: %w", tr.op, &PINError{Retries: 0, Err: StatusPINBlocked})
	}
	if powerCycle {
		return nil, fmt.Errorf("fido: %s: %w", tr.op, &PINError{Retries: retries, Err: StatusPINAuthBlocked})
	}
	if info.ForcePINChange {
		// The key would refuse even the right PIN (CTAP 2.1 §6.5.5.7.2);
		// asking the person for it first would only waste their time.
		return nil, fmt.Errorf("fido: %s: the key requires its PIN to be changed first (see ChangePIN): %w", tr.op, StatusPINPolicyViolation)
	}
	if d.prompt.PIN == nil {
		return nil, fmt.Errorf("fido: %s: no Prompt.PIN to ask for it: %w", tr.op, ErrPINRequired)
	}
	req := PINRequest{Op: tr.op, RPID: tr.rpID, Retries: retries, UVFailed: uvFailed}
	var wrong error // the last wrong-PIN error, when asking again
	// A key allows at most maxPINRetries wrong PINs (CTAP 2.1 §6.5.2);
	// the bound keeps a key that never counts down from looping a
	// scripted callback forever.
	for range maxPINRetries {
		pin, err := d.prompt.PIN(ctx, req)
		if err != nil {
			if wrong != nil {
				return nil, fmt.Errorf("%w; then asking for the PIN again: %w: %w", wrong, ErrPINRequired, err)
			}
			return nil, fmt.Errorf("fido: %s: asking for the PIN: %w: %w", tr.op, ErrPINRequired, err)
		}
		if err := checkPINForm(pin); err != nil {
			return nil, fmt.Errorf("fido: %s: the PIN given: %w", tr.op, err)
		}
		tok, err := d.tokenWithPIN(ctx, info, proto, pin, tr)
		if err == nil {
			return tok, nil
		}
		if errors.Is(err, StatusPINPolicyViolation) {
			d.getInfo = nil // forcePINChange was set behind the client's back
			return nil, fmt.Errorf("fido: %s: the key requires its PIN to be changed first (see ChangePIN): %w", tr.op, err)
		}
		var pe *PINError
		if !errors.As(err, &pe) || pe.Err != StatusPINInvalid || pe.Retries == 0 {
			return nil, err
		}
		wrong = err
		req.Retry, req.Retries = true, pe.Retries
	}
	return nil, wrong
}

// maxPINRetries is the most wrong PINs a key may allow (CTAP 2.1 §6.5.2:
// a retry counter of at most 8).
const maxPINRetries = 8

// tokenWithPIN exchanges one PIN for a token: getKeyAgreement, then
// getPinUvAuthTokenUsingPinWithPermissions (CTAP 2.1 §6.5.5.7.2) or, on a
// key without pinUvAuthToken, getPinToken (§6.5.5.7.1), which grants
// everything and binds no RP. A fresh key agreement each time matters: the
// key replaces its own after a wrong PIN.
func (d *Device) tokenWithPIN(ctx context.Context, info *Info, proto pinuv.Protocol, pin string, tr tokenRequest) (*pinToken, error) {
	platformKey, shared, err := d.keyAgreement(ctx, proto)
	if err != nil {
		return nil, err
	}
	defer clear(shared)
	hash := pinuv.PINHash(pin)
	defer clear(hash)
	pinHashEnc, err := proto.Encrypt(shared, hash)
	if err != nil {
		return nil, fmt.Errorf("fido: %s: encrypting: %w", tr.op, err)
	}
	req := &ctap.ClientPINRequest{
		PinUvAuthProtocol: proto.Version(),
		SubCommand:        ctap.ClientPINGetPINToken,
		KeyAgreement:      platformKey,
		PinHashEnc:        pinHashEnc,
	}
	if info.opt(ctap.OptPinUvAuthToken) {
		req.SubCommand = ctap.ClientPINGetPinUvAuthTokenUsingPinWithPermissions
		req.Permissions = uint64(tr.perms)
		req.RPID = tr.rpID
	}
	r, err := d.clientPIN(ctx, req, nil)
	if err != nil {
		return nil, d.pinFailure(ctx, tr.op, err)
	}
	return decryptToken(proto, shared, r)
}

// decryptToken recovers the token from a getPinToken or
// getPinUvAuthToken* response (CTAP 2.1 §6.5.5.7). Protocol two tokens are
// 32 bytes; protocol one allows any whole number of blocks up to 64 bytes,
// as CTAP 2.0 keys issued 16-byte ones.
func decryptToken(proto pinuv.Protocol, shared []byte, r *ctap.ClientPINResponse) (*pinToken, error) {
	if r.PinUvAuthToken == nil {
		return nil, &ResponseError{Op: "getPinUvAuthToken", Err: errors.New("no pinUvAuthToken in response")}
	}
	tok, err := proto.Decrypt(shared, r.PinUvAuthToken)
	if err != nil {
		return nil, &ResponseError{Op: "getPinUvAuthToken", Err: err}
	}
	ok := len(tok) == pinuv.TokenLen
	if proto.Version() == pinuv.VersionOne {
		ok = len(tok) > 0 && len(tok) <= 64 && len(tok)%16 == 0
	}
	if !ok {
		clear(tok)
		return nil, &ResponseError{Op: "getPinUvAuthToken", Err: fmt.Errorf("token of %d bytes", len(r.PinUvAuthToken))}
	}
	return &pinToken{proto: proto, token: tok}, nil
}
