package virtual

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"io"
	"time"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/hid"
)

// pendingAssertions is the state getNextAssertion works from: the
// remembered getAssertion parameters, the credentials not yet returned and
// the timer (CTAP 2.1 §6.2.2 step 12.2.2, §6.3).
type pendingAssertions struct {
	creds    []candidate
	hash     []byte
	rpIDHash [32]byte
	flags    ctap.AuthDataFlags
	expires  time.Time
}

// candidate is a credential able to sign for an RP.
type candidate struct {
	id       []byte
	alg      int64
	priv     []byte
	userID   []byte
	resident bool
}

func statusOnly(s ctap.Status) []byte { return []byte{byte(s)} }

func nopStatus(byte) {}

// handleCBOR answers one CTAPHID_CBOR message: a CTAP2 command byte and
// its CBOR parameters (CTAP 2.1 §6, §8.1). The answer is a lone error
// status, or status 0 followed by at most one CBOR item. status reports
// what the CTAPHID KEEPALIVE says (processing, or waiting for a touch);
// ctx is cancelled by CTAPHID_CANCEL. A rejected request leaves the key's
// state as it was.
func (k *Key) handleCBOR(ctx context.Context, req []byte, status func(byte)) []byte {
	if status == nil {
		status = nopStatus
	}
	if len(req) == 0 {
		// Not even a command byte: an invalid message length (§8.2).
		return statusOnly(ctap.StatusInvalidLength)
	}
	k.op.Lock()
	defer k.op.Unlock()
	if k.isClosed() {
		return statusOnly(ctap.StatusOther)
	}
	if k.cfg.U2FOnly {
		// CTAPHID INIT offered no CBOR, so a host should not get here.
		return statusOnly(ctap.StatusInvalidCommand)
	}
	cmd, params := ctap.Command(req[0]), req[1:]
	if s, ok := k.cfg.StatusOverride[byte(cmd)]; ok {
		return statusOnly(s)
	}
	if cmd != ctap.CmdGetNextAssertion {
		// Only getNextAssertion continues a getAssertion; anything else
		// in between ends it (§6.3).
		k.mu.Lock()
		k.next = nil
		k.mu.Unlock()
	}
	if len(req) > k.cfg.MaxMsgSize {
		// A message longer than the maxMsgSize of getInfo (§6.4). CTAP
		// 2.1 added REQUEST_TOO_LARGE for "cannot handle this request due
		// to memory constraints" (§8.2); a 2.0 key has only
		// INVALID_LENGTH.
		if k.cfg.CTAPVersion == CTAP20 {
			return statusOnly(ctap.StatusInvalidLength)
		}
		return statusOnly(ctap.StatusRequestTooLarge)
	}
	noParams := func(f func() []byte) []byte {
		if len(params) != 0 {
			return statusOnly(ctap.StatusInvalidLength)
		}
		return f()
	}
	switch cmd {
	case ctap.CmdGetInfo:
		return noParams(k.getInfo)
	case ctap.CmdMakeCredential:
		return k.makeCredential(ctx, params, status)
	case ctap.CmdGetAssertion:
		return k.getAssertion(ctx, params, status)
	case ctap.CmdGetNextAssertion:
		return noParams(k.getNextAssertion)
	case ctap.CmdReset:
		return noParams(func() []byte { return k.reset(ctx, status) })
	case ctap.CmdSelection:
		if k.cfg.CTAPVersion == CTAP21 {
			// §6.9: wait for a touch, so the person picks this key.
			return noParams(func() []byte { return statusOnly(k.presence(ctx, status, PresenceRequest{Op: OpSelection})) })
		}
	}
	// clientPin, credentialManagement, bioEnrollment, largeBlobs and
	// config are not implemented yet, and getInfo does not claim them.
	return statusOnly(ctap.StatusInvalidCommand)
}

func (k *Key) isClosed() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.closed
}

// getInfo follows CTAP 2.1 §6.4.
func (k *Key) getInfo() []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	versions := []string{"FIDO_2_0"}
	if k.cfg.CTAPVersion == CTAP21 {
		versions = append(versions, "FIDO_2_1")
	}
	if !k.cfg.NoU2F {
		versions = append(versions, "U2F_V2")
	}
	r := &ctap.GetInfoResponse{
		Versions: versions,
		AAGUID:   bytes.Clone(k.st.AAGUID[:]),
		// No clientPin and no uv: this key verifies nobody yet. "up"
		// true: it can test user presence.
		Options:    map[string]bool{ctap.OptRK: true, ctap.OptUP: true, ctap.OptPlat: false},
		MaxMsgSize: uint64(k.cfg.MaxMsgSize),
	}
	if k.cfg.CTAPVersion == CTAP21 {
		// Members 0x07 onwards are CTAP 2.1's; a 2.0 key leaves them out.
		r.MaxCredentialCountInList = uint64(k.cfg.MaxCredentialCountInList)
		r.MaxCredentialIDLength = uint64(k.cfg.MaxCredentialIDLength)
		r.Transports = []string{"usb"}
		for _, a := range k.cfg.Algorithms {
			r.Algorithms = append(r.Algorithms, ctap.CredentialParam{Type: "public-key", Alg: int64(a)})
		}
		r.FirmwareVersion = firmwareMajor<<16 | firmwareMinor<<8 | firmwareBuild
		left := uint64(max(k.cfg.ResidentKeySlots-len(k.st.Credentials), 0))
		r.RemainingDiscoverableCredentials = &left
	}
	return ctap.EncodeResponse(r)
}

// presence waits for a touch and returns the status to go on with:
// StatusOK, or the error to answer. While it waits, KEEPALIVE says
// UPNEEDED (CTAP 2.1 §11.2.9.2.1).
//
// A refusal is CTAP2_ERR_OPERATION_DENIED. A timeout is
// CTAP2_ERR_USER_ACTION_TIMEOUT: §6.1.2 and §6.2.2 fold timeouts into
// OPERATION_DENIED, but §6.6 and §6.9 use the specific code, and it lets a
// caller tell a person who refused from one who was away. A host's
// CTAPHID_CANCEL is CTAP2_ERR_KEEPALIVE_CANCEL (§11.2.9.1.5), whatever the
// hook says.
func (k *Key) presence(ctx context.Context, status func(byte), req PresenceRequest) ctap.Status {
	status(hid.KeepaliveUPNeeded)
	defer status(hid.KeepaliveProcessing)
	err := k.askPresence(ctx, req)
	switch {
	case ctx.Err() != nil:
		return ctap.StatusKeepaliveCancel
	case err == nil:
		return ctap.StatusOK
	case errors.Is(err, errPresenceTimeout):
		return ctap.StatusUserActionTimeout
	default:
		return ctap.StatusOperationDenied
	}
}

func decodeFailure(err error) []byte {
	var se *ctap.SyntaxError
	if errors.As(err, &se) {
		return statusOnly(se.Status())
	}
	return statusOnly(ctap.StatusInvalidCBOR)
}

// pinUvAuth answers a request that carries a pinUvAuthParam (CTAP 2.1
// §6.1.2 and §6.2.2, steps 1 and 2). This key has neither a PIN nor
// built-in user verification yet; it behaves as a key that supports a PIN
// with none set, which is what platforms probe for.
//
// PIN/UV support plugs in here: verifying the param against a
// pinUvAuthToken (step 11 of §6.1.2, step 6 of §6.2.2) and setting UV.
func (k *Key) pinUvAuth(ctx context.Context, status func(byte), param []byte, protocol uint64, req PresenceRequest) ctap.Status {
	if len(param) == 0 {
		// Step 1: an empty pinUvAuthParam asks for a touch, so that a
		// CTAP 2.0 platform can have the person pick one of several keys;
		// then the key says whether it has a PIN.
		if s := k.presence(ctx, status, req); s != ctap.StatusOK {
			return s
		}
		return ctap.StatusPINNotSet
	}
	if protocol == 0 {
		return ctap.StatusMissingParameter // step 2.2
	}
	return ctap.StatusInvalidParameter // step 2.1: getInfo lists no pinUvAuthProtocols
}

// find returns the key's credential with the descriptor's ID if it is
// bound to rpIDHash: a discoverable one, or a wrapped key sealed for it.
// The caller holds k.mu.
func (k *Key) find(rpIDHash [32]byte, d ctap.CredentialDescriptor) (candidate, bool) {
	// WebAuthn L3 §5.8.3: descriptors of unknown types are ignored. An ID
	// longer than the maxCredentialIdLength in getInfo is none of ours.
	if d.Type != "public-key" || len(d.ID) > k.cfg.MaxCredentialIDLength {
		return candidate{}, false
	}
	for _, c := range k.st.Credentials {
		if bytes.Equal(c.ID, d.ID) && sha256.Sum256([]byte(c.RPID)) == rpIDHash {
			return candidate{id: c.ID, alg: c.Alg, priv: c.PrivateKey, userID: c.UserID, resident: true}, true
		}
	}
	alg, priv, ok := k.wrapper.unwrap(rpIDHash, d.ID)
	if !ok {
		return candidate{}, false
	}
	return candidate{id: d.ID, alg: alg, priv: priv}, true
}

// forced applies the UP and UV misbehaviours to authenticator data flags.
func (k *Key) forced(f ctap.AuthDataFlags) ctap.AuthDataFlags {
	if k.cfg.ForceUPOff {
		f &^= ctap.FlagUP
	}
	if k.cfg.ForceUVOff {
		f &^= ctap.FlagUV
	}
	return f
}

// makeCredential follows CTAP 2.1 §6.1.2, by step number.
func (k *Key) makeCredential(ctx context.Context, params []byte, status func(byte)) []byte {
	r, err := ctap.DecodeMakeCredentialRequest(params)
	if err != nil {
		return decodeFailure(err)
	}
	touch := PresenceRequest{Op: OpMakeCredential, RPID: r.RP.ID}
	// Steps 1 and 2.
	if r.PinUvAuthParam != nil {
		return statusOnly(k.pinUvAuth(ctx, status, r.PinUvAuthParam, r.PinUvAuthProtocol, touch))
	}
	// Step 3: the first supported algorithm the RP accepts.
	var alg int64
	for _, p := range r.PubKeyCredParams {
		if p.Type == "public-key" && k.supports(p.Alg) {
			alg = p.Alg
			break
		}
	}
	if alg == 0 {
		return statusOnly(ctap.StatusUnsupportedAlgorithm)
	}
	// Step 5: options.
	if r.Options[ctap.OptUV] {
		return statusOnly(ctap.StatusInvalidOption) // 5: no built-in user verification
	}
	if up, ok := r.Options[ctap.OptUP]; ok && (!up || k.cfg.CTAPVersion == CTAP20) {
		// CTAP 2.1 accepts "up": true and refuses false; CTAP 2.0 §5.1
		// step 5 refuses an option that is known but not valid for the
		// command, and "up" is not one of makeCredential's there.
		return statusOnly(ctap.StatusInvalidOption)
	}
	rk := r.Options[ctap.OptRK]
	// Step 9: not an enterprise attestation capable key.
	if r.EnterpriseAttestation != 0 {
		return statusOnly(ctap.StatusInvalidParameter)
	}
	if len(r.ExcludeList) > k.cfg.MaxCredentialCountInList {
		return statusOnly(ctap.StatusLimitExceeded) // longer than getInfo's maxCredentialCountInList
	}
	rpIDHash := sha256.Sum256([]byte(r.RP.ID))
	// Step 12: a credential of this key for this RP in the excludeList.
	k.mu.Lock()
	excluded := false
	for _, d := range r.ExcludeList {
		if _, ok := k.find(rpIDHash, d); ok {
			excluded = true
			break
		}
	}
	k.mu.Unlock()
	if excluded {
		// The touch comes first, so that a site cannot learn silently
		// which keys a person holds.
		if s := k.presence(ctx, status, touch); s != ctap.StatusOK {
			return statusOnly(s)
		}
		return statusOnly(ctap.StatusCredentialExcluded)
	}
	// Step 14: user presence.
	if s := k.presence(ctx, status, touch); s != ctap.StatusOK {
		return statusOnly(s)
	}
	// Step 15: extensions are ignored; this key supports none yet.

	k.mu.Lock()
	defer k.mu.Unlock()
	// Step 17: a discoverable credential replaces the one for the same RP
	// and user; otherwise it needs a free slot.
	replaces := -1
	if rk {
		for i, c := range k.st.Credentials {
			if c.RPID == r.RP.ID && bytes.Equal(c.UserID, r.User.ID) {
				replaces = i
			}
		}
		if replaces < 0 && len(k.st.Credentials) >= k.cfg.ResidentKeySlots {
			return statusOnly(ctap.StatusKeyStoreFull)
		}
	}
	// Step 16: the key pair.
	signer, raw, err := newPrivateKey(k.cfg.Rand, alg)
	if err != nil {
		return statusOnly(ctap.StatusOther)
	}
	cose, err := ctap.MarshalPublicKey(signer.Public())
	if err != nil {
		return statusOnly(ctap.StatusOther)
	}
	var id []byte
	if rk {
		id = make([]byte, residentIDLen)
		if _, err := io.ReadFull(k.cfg.Rand, id); err != nil {
			return statusOnly(ctap.StatusOther)
		}
	} else if id, err = k.wrapper.wrap(k.cfg.Rand, rpIDHash, alg, raw); err != nil {
		// Step 18: the ID is the sealed private key.
		return statusOnly(ctap.StatusOther)
	}
	count := k.st.Counter + 1
	ad := (&ctap.AuthData{
		RPIDHash:  rpIDHash,
		Flags:     k.forced(ctap.FlagUP), // step 14.3
		SignCount: count,
		Attested:  &ctap.AttestedCredential{AAGUID: k.st.AAGUID, CredentialID: id, PublicKey: cose},
	}).Marshal()
	// Step 19.
	format, stmt, err := k.attest(alg, signer, append(bytes.Clone(ad), r.ClientDataHash...))
	if err != nil {
		return statusOnly(ctap.StatusOther)
	}
	old := *k.st
	old.Credentials = append([]residentCredential(nil), k.st.Credentials...)
	if rk {
		c := residentCredential{
			ID: id, RPID: r.RP.ID, RPName: r.RP.Name, UserID: r.User.ID,
			UserName: r.User.Name, UserDisplayName: r.User.DisplayName,
			Alg: alg, PrivateKey: raw, Created: k.cfg.Clock().UTC().Round(0),
		}
		if replaces >= 0 {
			k.st.Credentials = append(k.st.Credentials[:replaces:replaces], k.st.Credentials[replaces+1:]...)
		}
		k.st.Credentials = append(k.st.Credentials, c) // newest last
	}
	k.st.Counter = count
	if err := k.save(); err != nil {
		*k.st = old // a key that could not store the credential has none
		return statusOnly(ctap.StatusOther)
	}
	return ctap.EncodeResponse(&ctap.MakeCredentialResponse{Format: format, AuthData: ad, AttStmt: stmt})
}

func (k *Key) supports(alg int64) bool {
	for _, a := range k.cfg.Algorithms {
		if int64(a) == alg {
			return true
		}
	}
	return false
}

// attest makes the attestation statement over authData||clientDataHash
// (WebAuthn L3 §8.2 packed, §8.7 none).
func (k *Key) attest(alg int64, credKey crypto.Signer, signed []byte) (string, []byte, error) {
	switch k.cfg.Attestation {
	case AttestationNone:
		return "none", ctap.MustMarshal(map[string]any{}), nil
	case AttestationSelf:
		sig, err := k.sign(credKey, alg, signed)
		if err != nil {
			return "", nil, err
		}
		return "packed", ctap.MustMarshal(map[string]any{"alg": alg, "sig": sig}), nil
	default:
		sig, err := k.sign(k.batch, ctap.AlgES256, signed)
		if err != nil {
			return "", nil, err
		}
		return "packed", ctap.MustMarshal(map[string]any{"alg": ctap.AlgES256, "sig": sig, "x5c": [][]byte{k.st.BatchCert}}), nil
	}
}

// sign signs msg, spoiling the signature if Config.BadSignature says so.
func (k *Key) sign(signer crypto.Signer, alg int64, msg []byte) ([]byte, error) {
	sig, err := sign(signer, alg, msg)
	if err == nil && k.cfg.BadSignature {
		sig[len(sig)-1] ^= 0x01 // still well-formed, never valid
	}
	return sig, err
}

// getAssertion follows CTAP 2.1 §6.2.2, by step number.
func (k *Key) getAssertion(ctx context.Context, params []byte, status func(byte)) []byte {
	r, err := ctap.DecodeGetAssertionRequest(params)
	if err != nil {
		return decodeFailure(err)
	}
	touch := PresenceRequest{Op: OpGetAssertion, RPID: r.RPID}
	// Steps 1 and 2.
	if r.PinUvAuthParam != nil {
		return statusOnly(k.pinUvAuth(ctx, status, r.PinUvAuthParam, r.PinUvAuthProtocol, touch))
	}
	// Step 4: options.
	if r.Options[ctap.OptUV] {
		return statusOnly(ctap.StatusInvalidOption) // 4.3.1: no built-in user verification
	}
	if _, ok := r.Options[ctap.OptRK]; ok {
		return statusOnly(ctap.StatusUnsupportedOption) // 4.4
	}
	up := true // 4.5: absent means true
	if v, ok := r.Options[ctap.OptUP]; ok {
		up = v
	}
	if len(r.AllowList) > k.cfg.MaxCredentialCountInList {
		return statusOnly(ctap.StatusLimitExceeded)
	}
	// Step 7: the applicable credentials.
	rpIDHash := sha256.Sum256([]byte(r.RPID))
	var creds []candidate
	k.mu.Lock()
	if len(r.AllowList) > 0 {
		// 7.1 and 11.1: any denoted credential will do; this key takes
		// the first one listed that is its own.
		for _, d := range r.AllowList {
			if c, ok := k.find(rpIDHash, d); ok {
				creds = append(creds, c)
				break
			}
		}
	} else {
		// 7.2 and 12.2.1: discoverable credentials, newest first.
		for i := len(k.st.Credentials) - 1; i >= 0; i-- {
			if c := k.st.Credentials[i]; c.RPID == r.RPID {
				creds = append(creds, candidate{id: c.ID, alg: c.Alg, priv: c.PrivateKey, userID: c.UserID, resident: true})
			}
		}
	}
	k.mu.Unlock()
	if len(creds) == 0 {
		return statusOnly(ctap.StatusNoCredentials) // 7.6, before any touch
	}
	// Step 9: user presence, unless the platform asked for none.
	var flags ctap.AuthDataFlags
	if up {
		if s := k.presence(ctx, status, touch); s != ctap.StatusOK {
			return statusOnly(s)
		}
		flags |= ctap.FlagUP
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	count := 0 // 11.2: no numberOfCredentials with an allowList
	if len(r.AllowList) == 0 {
		count = len(creds)
		if count > 1 {
			// 12.2.2: no display, so remember the rest for
			// getNextAssertion and start the timer.
			k.next = &pendingAssertions{creds: creds[1:], hash: r.ClientDataHash, rpIDHash: rpIDHash,
				flags: flags, expires: k.cfg.Clock().Add(nextAssertionTimeout)}
		}
	}
	return k.assert(creds[0], rpIDHash, r.ClientDataHash, flags, count)
}

// assert signs with one credential (§6.2.2 step 13) and counts the
// signature. The caller holds k.mu.
func (k *Key) assert(c candidate, rpIDHash [32]byte, hash []byte, flags ctap.AuthDataFlags, count int) []byte {
	signer, err := signerFromRaw(c.alg, c.priv)
	if err != nil {
		return statusOnly(ctap.StatusOther)
	}
	n := k.st.Counter + 1
	ad := (&ctap.AuthData{RPIDHash: rpIDHash, Flags: k.forced(flags), SignCount: n}).Marshal()
	sig, err := k.sign(signer, c.alg, append(bytes.Clone(ad), hash...))
	if err != nil {
		return statusOnly(ctap.StatusOther)
	}
	k.st.Counter = n
	if err := k.save(); err != nil {
		k.st.Counter = n - 1
		return statusOnly(ctap.StatusOther)
	}
	resp := &ctap.GetAssertionResponse{
		Credential:          &ctap.CredentialDescriptor{Type: "public-key", ID: c.id},
		AuthData:            ad,
		Signature:           sig,
		NumberOfCredentials: count,
	}
	if c.resident {
		// 12.3: "User identifiable information (name, DisplayName, icon)
		// ... MUST NOT be returned if user verification is not done by
		// the authenticator." This key verifies nobody, so only the user
		// ID leaves it.
		resp.User = &ctap.UserEntity{ID: c.userID}
	}
	return ctap.EncodeResponse(resp)
}

// getNextAssertion follows CTAP 2.1 §6.3.
func (k *Key) getNextAssertion() []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := k.next
	now := k.cfg.Clock()
	switch {
	case n == nil, len(n.creds) == 0: // steps 1 and 2
		k.next = nil
		return statusOnly(ctap.StatusNotAllowed)
	case now.After(n.expires): // step 3
		k.next = nil
		return statusOnly(ctap.StatusNotAllowed)
	}
	c := n.creds[0]
	n.creds = n.creds[1:]
	n.expires = now.Add(nextAssertionTimeout) // step 6: reset the timer
	if len(n.creds) == 0 {
		k.next = nil
	}
	return k.assert(c, n.rpIDHash, n.hash, n.flags, 0)
}

// reset follows CTAP 2.1 §6.6: only within 10 s of power-up, and only with
// a touch. It erases the discoverable credentials and makes a new wrapping
// secret, so the IDs of non-discoverable ones stop working too. The
// signature counter is kept, so relying parties never see it go back.
func (k *Key) reset(ctx context.Context, status func(byte)) []byte {
	k.mu.Lock()
	late := k.cfg.Clock().Sub(k.powerOn) > resetWindow
	k.mu.Unlock()
	if late {
		return statusOnly(ctap.StatusNotAllowed)
	}
	if s := k.presence(ctx, status, PresenceRequest{Op: OpReset}); s != ctap.StatusOK {
		return statusOnly(s)
	}
	secret := make([]byte, wrapSecretLen)
	if _, err := io.ReadFull(k.cfg.Rand, secret); err != nil {
		return statusOnly(ctap.StatusOther)
	}
	w, err := newKeyWrapper(secret)
	if err != nil {
		return statusOnly(ctap.StatusOther)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	old := *k.st
	k.st.Credentials, k.st.WrapSecret = nil, secret
	if err := k.save(); err != nil {
		*k.st = old
		return statusOnly(ctap.StatusOther)
	}
	k.wrapper = w
	k.dropFinishedTouch()
	return statusOnly(ctap.StatusOK)
}
