package fido

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/hid"
	"github.com/fidokit/fidokit/internal/pinuv"
)

// maxAccounts bounds the numberOfCredentials a discoverable GetAssertion
// follows: far more accounts for one relying party than any key holds,
// and few enough that a key claiming absurd numbers cannot make the client
// collect assertions without bound.
const maxAccounts = 10000

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
	maxOp  time.Duration // Opener.MaxOperationTime, defaulted

	mu      sync.Mutex // serialises multi-message operations
	getInfo *Info      // cached authenticatorGetInfo

	// forceProtocol, when non-zero, is the only PIN/UV auth protocol the
	// client will speak, so that tests exercise protocol one on keys that
	// offer both.
	forceProtocol int
}

var _ Authenticator = (*Device)(nil)

// DeviceInfo returns what was known about the key when it was opened.
func (d *Device) DeviceInfo() DeviceInfo { return d.info }

// Close releases the key.
func (d *Device) Close() error { return d.ch.Close() }

// Wink asks the key to identify itself, by blinking for instance.
func (d *Device) Wink(ctx context.Context) error {
	ctx, cancel := d.opContext(ctx)
	defer cancel()
	if err := d.ch.Wink(ctx); err != nil {
		return d.wrap("wink", err)
	}
	return nil
}

// opContext bounds one operation by Opener.MaxOperationTime; past it, ctx
// ends with ErrOperationTimeout as its cause. It is
// context.WithTimeoutCause without the timer and channel made per
// operation, which only a wait on its Done needs.
func (d *Device) opContext(ctx context.Context) (context.Context, func()) {
	return hid.OperationContext(ctx, d.maxOp, ErrOperationTimeout)
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
			return nil, fmt.Errorf("fido: %s: %w", op, errors.Join(hid.ContextErr(ctx), status))
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
	ctx, cancel := d.opContext(ctx)
	defer cancel()
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
	info.MaxSerializedLargeBlobArray = int(min(r.MaxSerializedLargeBlobArray, 1<<24))
	info.ForcePINChange = r.ForcePINChange
	info.MaxCredBlobLength = int(min(r.MaxCredBlobLength, 1<<16))
	info.MaxRPIDsForSetMinPINLength = int(min(r.MaxRPIDsForSetMinPINLength, 1<<16))
	info.PreferredPlatformUVAttempts = int(min(r.PreferredPlatformUvAttempts, 1<<8))
	info.UVModality = r.UVModality
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

// MakeCredential creates a credential on the key (enrolls it) (CTAP 2.1
// §6.1). The key waits for a touch; Prompt.Touch is called when it starts
// waiting.
//
// When req.UserVerification is set, or the key demands verification
// (alwaysUv, or a PIN set without makeCredUvNotRqd, CTAP 2.1 §6.1.2), the
// client obtains a pinUvAuthToken with the makeCredential permission for
// req.RP.ID, by built-in verification or by the PIN from Prompt.PIN, and
// sends pinUvAuthParam; a key with built-in verification but no token
// support is asked with the "uv" option instead.
//
// Errors: ErrInvalidRequest for a malformed request; an error matching
// StatusCredentialExcluded when the key holds a credential from
// ExcludeList; ErrPINRequired when a PIN is needed and Prompt.PIN is nil or
// declined; a [*PINError] for a PIN the key refused; StatusPINNotSet when
// verification is asked of a key whose PIN is not set;
// StatusPINPolicyViolation when the key wants its PIN changed first;
// ErrNotSupported when the key can verify no one, or cannot honour an
// enforced credProtect; StatusUVBlocked when built-in verification is
// blocked and there is no PIN; other [Status] values from the key.
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
	if err := checkMakeCredentialExtensions(req); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := d.opContext(ctx)
	defer cancel()
	info, err := d.infoLocked(ctx)
	if err != nil {
		return nil, err
	}
	if !d.cbor {
		if x := req.Extensions; x.EnforceCredProtect && x.CredProtect > CredProtectUVOptional {
			return nil, fmt.Errorf("fido: makeCredential: credProtect on a U2F key: %w", ErrNotSupported)
		}
		return d.u2fRegister(ctx, req)
	}
	return d.makeCredential(ctx, info, req, nil)
}

// uvPlan is how a command gets the person verified.
type uvPlan int

const (
	uvNone    uvPlan = iota // no verification
	uvBuiltIn               // the "uv" option: the key verifies within the command
	uvToken                 // a pinUvAuthToken and pinUvAuthParam
)

// planUV decides how to verify the person for makeCredential or
// getAssertion (CTAP 2.1 §6.1 and §6.2, the platform's part): a token
// whenever the key issues tokens for its built-in verification or has a
// PIN, and the "uv" option for keys with built-in verification but no
// tokens (CTAP 2.0 biometric keys). wanted says verification is needed.
// Without any means, it fails with StatusPINNotSet (a PIN could be set)
// or ErrNotSupported.
func planUV(info *Info, op string, wanted bool) (uvPlan, error) {
	if !wanted {
		return uvNone, nil
	}
	builtIn, tokens := info.opt(optUV), info.opt(ctap.OptPinUvAuthToken)
	pinSet, pinSupported := info.Option(optClientPIN)
	switch {
	case builtIn && tokens:
		return uvToken, nil
	case builtIn:
		return uvBuiltIn, nil
	case pinSet:
		return uvToken, nil
	case pinSupported:
		return uvNone, fmt.Errorf("fido: %s: user verification needs a PIN and the key has none set (see SetPIN): %w", op, StatusPINNotSet)
	}
	return uvNone, fmt.Errorf("fido: %s: user verification asked of a key with neither a PIN nor built-in user verification: %w", op, ErrNotSupported)
}

// protected reports whether the key has some form of user verification
// configured, so that it may demand a pinUvAuthParam (CTAP 2.1 §6.1.2).
func protected(info *Info) bool { return info.opt(optClientPIN) || info.opt(optUV) }

// needsToken reports whether err is a key asking for the user
// verification the client did not provide: CTAP2_ERR_PUAT_REQUIRED (CTAP
// 2.0's PIN_REQUIRED), or built-in verification that is blocked.
func needsToken(err error) bool {
	return errors.Is(err, StatusPUATRequired) || errors.Is(err, StatusUVBlocked)
}

// canToken reports whether the key can issue a pinUvAuthToken at all.
func canToken(info *Info) bool {
	return info.opt(optClientPIN) || info.opt(optUV) && info.opt(ctap.OptPinUvAuthToken)
}

// makeCredential runs authenticatorMakeCredential with the mutex held. A
// non-nil tok is used as is (tests reuse tokens this way); otherwise one is
// obtained when the plan needs it and wiped before returning.
func (d *Device) makeCredential(ctx context.Context, info *Info, req *MakeCredentialRequest, tok *pinToken) (*Attestation, error) {
	const op = "makeCredential"
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
	ext, err := makeCredentialExtensions(info, req)
	if err != nil {
		return nil, err
	}
	p.Extensions = ext
	// CTAP 2.1 §6.1.2: a protected key demands verification for
	// every credential unless makeCredUvNotRqd lets non-discoverable ones
	// through; asking up front saves a refused round trip.
	demanded := info.opt(ctap.OptAlwaysUv) ||
		protected(info) && !(info.opt(ctap.OptMakeCredUvNotRqd) && !req.Discoverable)
	plan := uvToken
	if tok == nil {
		plan, err = planUV(info, op, req.UserVerification || demanded)
		if err != nil && !req.UserVerification {
			// Only a demand the key made: let the key answer for itself.
			plan, err = uvNone, nil
		}
		if err != nil {
			return nil, err
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
	tr := tokenRequest{op: op, perms: pinuv.PermMakeCredential, rpID: req.RP.ID}
	if tok == nil && plan == uvToken {
		if tok, err = d.token(ctx, info, tr); err != nil {
			return nil, err
		}
		defer tok.wipe()
	}
	body, err := d.sendMakeCredential(ctx, p, req.Discoverable, plan, tok)
	if err != nil && needsToken(err) && plan != uvToken && canToken(info) {
		// The key wants verification the client did not plan for (its
		// getInfo was stale, or its built-in verification is blocked):
		// get a token, by PIN if built-in verification just failed, and
		// ask once more. Nothing was signed yet.
		tr.skipUV = plan == uvBuiltIn
		tok, terr := d.token(ctx, info, tr)
		if terr != nil {
			return nil, fmt.Errorf("%w; then getting a pinUvAuthToken: %w", err, terr)
		}
		defer tok.wipe()
		body, err = d.sendMakeCredential(ctx, p, req.Discoverable, uvToken, tok)
	}
	if err != nil {
		return nil, err
	}
	r, err := ctap.DecodeMakeCredentialResponse(body)
	if err != nil {
		return nil, &ResponseError{Op: op, Err: err}
	}
	att, err := attestationFrom(req.RP.ID, r.Format, r.AuthData, r.AttStmt)
	if err != nil {
		return nil, err
	}
	if err := attestationExtensions(att, req, r); err != nil {
		return nil, err
	}
	return att, nil
}

// sendMakeCredential sends p with the options and pinUvAuthParam of plan.
func (d *Device) sendMakeCredential(ctx context.Context, p *ctap.MakeCredentialRequest, rk bool, plan uvPlan, tok *pinToken) ([]byte, error) {
	p.Options, p.PinUvAuthParam, p.PinUvAuthProtocol = nil, nil, 0
	if rk || plan == uvBuiltIn {
		p.Options = map[string]bool{}
		if rk {
			p.Options[ctap.OptRK] = true
		}
		if plan == uvBuiltIn {
			p.Options[ctap.OptUV] = true
		}
	}
	if plan == uvToken {
		p.PinUvAuthParam = tok.auth(p.ClientDataHash)
		p.PinUvAuthProtocol = tok.proto.Version()
	}
	return d.call(ctx, ctap.CmdMakeCredential, p, d.touchOnce())
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
	alg, pub, err := ctap.ParsePublicKey(ad.Attested.PublicKey)
	if err != nil {
		return nil, &ResponseError{Op: "makeCredential", Err: err}
	}
	return &Attestation{
		parsed:       pub,
		parsedFrom:   ad.Attested.PublicKey,
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

// GetAssertion signs in with the key (CTAP 2.1 §6.2 and §6.3). With an
// AllowList the key uses the first listed credential it holds; without one
// it returns an assertion for every discoverable credential it holds for
// the RP, newest first, however many the key reports (numberOfCredentials)
// up to 10000; a key reporting more fails with ErrTooManyAccounts rather
// than have accounts left out.
//
// When req.UserVerification is set, or the key has alwaysUv, the client
// obtains a pinUvAuthToken with the getAssertion permission for req.RPID,
// as [Device.MakeCredential] does. Credentials with credProtect
// CredProtectUVRequired are invisible without it.
//
// Errors: ErrInvalidRequest for a malformed request; an error matching
// StatusNoCredentials when the key holds none of the credentials asked
// for; ErrTooManyAccounts; the PIN and verification errors of
// [Device.MakeCredential]; other [Status] values from the key.
func (d *Device) GetAssertion(ctx context.Context, req *GetAssertionRequest) ([]*Assertion, error) {
	if err := checkHash(req.ClientDataHash); err != nil {
		return nil, err
	}
	if req.RPID == "" {
		return nil, invalidRequest("RPID is empty")
	}
	if err := checkGetAssertionExtensions(req); err != nil {
		return nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := d.opContext(ctx)
	defer cancel()
	info, err := d.infoLocked(ctx)
	if err != nil {
		return nil, err
	}
	if !d.cbor {
		return d.u2fAuthenticate(ctx, req)
	}
	return d.getAssertion(ctx, info, req, nil)
}

// getAssertion runs authenticatorGetAssertion and getNextAssertion with
// the mutex held; tok is as for makeCredential.
func (d *Device) getAssertion(ctx context.Context, info *Info, req *GetAssertionRequest, tok *pinToken) ([]*Assertion, error) {
	const op = "getAssertion"
	plan := uvToken
	if tok == nil {
		var err error
		if plan, err = planUV(info, op, req.UserVerification || info.opt(ctap.OptAlwaysUv)); err != nil {
			return nil, err
		}
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
	tr := tokenRequest{op: op, perms: pinuv.PermGetAssertion, rpID: req.RPID}
	if tok == nil && plan == uvToken {
		var err error
		if tok, err = d.token(ctx, info, tr); err != nil {
			return nil, err
		}
		defer tok.wipe()
	}
	body, hs, err := d.sendGetAssertion(ctx, info, p, req, plan, tok)
	if err != nil && needsToken(err) && plan != uvToken && canToken(info) {
		tr.skipUV = plan == uvBuiltIn
		tok, terr := d.token(ctx, info, tr)
		if terr != nil {
			return nil, fmt.Errorf("%w; then getting a pinUvAuthToken: %w", err, terr)
		}
		defer tok.wipe()
		body, hs, err = d.sendGetAssertion(ctx, info, p, req, uvToken, tok)
	}
	defer hs.wipe()
	if err != nil {
		return nil, err
	}
	first, err := d.assertionFrom(req, allow, body, hs)
	if err != nil {
		return nil, err
	}
	// Every account the key reports is collected (CTAP 2.1 §6.3), so that
	// each can be chosen; a count past maxAccounts is refused, not cut.
	n := first.n
	if n > maxAccounts {
		return nil, fmt.Errorf("fido: getAssertion: the key reports %d accounts for %q, more than the %d the client collects: %w",
			n, req.RPID, maxAccounts, ErrTooManyAccounts)
	}
	out := make([]*Assertion, 1, n)
	out[0] = first.a
	seen := map[string]bool{string(first.a.CredentialID): true}
	for i := 1; i < n; i++ {
		body, err := d.call(ctx, ctap.CmdGetNextAssertion, nil, nil)
		if err != nil {
			return nil, err
		}
		next, err := d.assertionFrom(req, allow, body, hs)
		if err != nil {
			return nil, err
		}
		id := string(next.a.CredentialID)
		if seen[id] {
			return nil, &ResponseError{Op: "getNextAssertion", Err: fmt.Errorf("credential %x returned twice", next.a.CredentialID)}
		}
		seen[id] = true
		out = append(out, next.a)
	}
	return out, nil
}

// sendGetAssertion sends p with the options, pinUvAuthParam and extensions
// of plan and req. The hmac-secret key agreement is made here, after any
// token was obtained, since a key may replace its key agreement key while
// issuing one; the returned state decrypts the outputs and is wiped by the
// caller.
func (d *Device) sendGetAssertion(ctx context.Context, info *Info, p *ctap.GetAssertionRequest, req *GetAssertionRequest, plan uvPlan, tok *pinToken) ([]byte, *hmacSecretState, error) {
	p.Options, p.PinUvAuthParam, p.PinUvAuthProtocol = nil, nil, 0
	if req.NoUserPresence || plan == uvBuiltIn {
		p.Options = map[string]bool{}
		if req.NoUserPresence {
			p.Options[ctap.OptUP] = false
		}
		if plan == uvBuiltIn {
			p.Options[ctap.OptUV] = true
		}
	}
	if plan == uvToken {
		p.PinUvAuthParam = tok.auth(p.ClientDataHash)
		p.PinUvAuthProtocol = tok.proto.Version()
	}
	ext, hs, err := d.getAssertionExtensions(ctx, info, req)
	if err != nil {
		return nil, nil, err
	}
	p.Extensions = ext
	body, err := d.call(ctx, ctap.CmdGetAssertion, p, d.touchOnce())
	if err != nil {
		hs.wipe()
		return nil, nil, err
	}
	return body, hs, nil
}

type assertionAndCount struct {
	a *Assertion
	n int
}

func (d *Device) assertionFrom(req *GetAssertionRequest, allow [][]byte, body []byte, hs *hmacSecretState) (assertionAndCount, error) {
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
	if err := assertionExtensions(a, req, ad, r, hs); err != nil {
		return assertionAndCount{}, err
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
	ctx, cancel := d.opContext(ctx)
	defer cancel()
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
	ctx, cancel := d.opContext(ctx)
	defer cancel()
	if !d.cbor {
		return fmt.Errorf("fido: reset: %w", ErrNotSupported)
	}
	_, err := d.call(ctx, ctap.CmdReset, nil, d.touchOnce())
	d.getInfo = nil
	return err
}
