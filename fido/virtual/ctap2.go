package virtual

import (
	"bytes"
	"context"
	"crypto"
	"crypto/sha256"
	"errors"
	"io"
	"slices"
	"time"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/hid"
	"github.com/fidokit/fidokit/internal/pinuv"
)

// pendingAssertions is the state getNextAssertion works from: the
// remembered getAssertion parameters, the credentials not yet returned and
// the timer (CTAP 2.1 §6.2.2 step 12.2.2, §6.3).
type pendingAssertions struct {
	creds    []candidate
	hash     []byte
	rpIDHash [32]byte
	flags    ctap.AuthDataFlags
	ext      *gaExtensions
	expires  time.Time
}

// candidate is a credential able to sign for an RP, with what its
// extensions need.
type candidate struct {
	id       []byte
	alg      int64
	priv     []byte
	resident bool
	// user is the user of a discoverable credential.
	user ctap.UserEntity
	// protect is the credProtect policy, 1 to 3.
	protect int
	// credRandomUV and credRandomNoUV are the hmac-secret keys, nil for
	// a credential made without hmac-secret.
	credRandomUV, credRandomNoUV []byte
	credBlob                     []byte
	largeBlobKey                 []byte
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
	if !k.lockOp(ctx) {
		// Cancelled while another host's command had the key.
		return statusOnly(ctap.StatusKeepaliveCancel)
	}
	defer k.unlockOp()
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
	host := hid.RequestOrigin(ctx)
	k.mu.Lock()
	if h := k.hosts[host]; h != nil {
		if cmd != ctap.CmdGetNextAssertion {
			// Only getNextAssertion continues a getAssertion; anything
			// else in between ends it (§6.3).
			h.next = nil
		}
		if cmd != ctap.CmdCredentialManagement && cmd != ctap.CmdCredentialManagementPreview {
			// Likewise for a credential management enumeration
			// (§6.8.3, §6.8.4).
			h.enum = nil
		}
		k.dropIdleHost(host)
	}
	k.mu.Unlock()
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
		return noParams(func() []byte { return k.getNextAssertion(host) })
	case ctap.CmdReset:
		return noParams(func() []byte { return k.reset(ctx, status) })
	case ctap.CmdSelection:
		if !k.v20() {
			// §6.9: wait for a touch, so the person picks this key.
			return noParams(func() []byte { return statusOnly(k.presence(ctx, status, PresenceRequest{Op: OpSelection})) })
		}
	case ctap.CmdClientPIN:
		return k.clientPIN(ctx, params, status)
	case ctap.CmdCredentialManagement:
		// A CTAP 2.0 key of the FIDO_2_1_PRE era answers only the
		// prototype command.
		if !k.v20() && k.credMgmtSupported() {
			return k.credentialManagement(host, params)
		}
	case ctap.CmdCredentialManagementPreview:
		// A 2.1 key answers the prototype command as well, as shipping
		// 2.1 keys do, because platforms such as libfido2 before 1.15
		// send only 0x41.
		if k.credMgmtSupported() {
			return k.credentialManagement(host, params)
		}
	case ctap.CmdLargeBlobs:
		if k.largeBlobsSupported() {
			return k.largeBlobs(params)
		}
	case ctap.CmdConfig:
		if k.configSupported() {
			return k.config(params)
		}
	}
	// bioEnrollment is not implemented, and getInfo does not claim it.
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
	if !k.v20() {
		versions = append(versions, "FIDO_2_1")
	}
	if !k.cfg.NoU2F {
		versions = append(versions, "U2F_V2")
	}
	// "up" true: it can test user presence. Every other option reflects
	// the key's configuration and, for clientPin and alwaysUv, its state.
	opts := map[string]bool{ctap.OptRK: true, ctap.OptUP: true, ctap.OptPlat: false}
	if k.clientPINSupported() {
		opts[ctap.OptClientPIN] = k.st.PINHash != nil
	}
	if k.uvAvailable() {
		opts[ctap.OptUV] = true
	}
	if k.v20() {
		if k.credMgmtSupported() {
			opts[ctap.OptCredentialMgmtPreview] = true
		}
	} else {
		if k.pinUvSupported() {
			opts[ctap.OptPinUvAuthToken] = true
			opts[ctap.OptCredMgmt] = true
			if k.credMgmtSupported() {
				opts[ctap.OptCredentialMgmtPreview] = true
			}
		}
		if k.uvAvailable() {
			opts[ctap.OptUvAcfg] = true
		}
		opts[ctap.OptAuthnrCfg] = true
		opts[ctap.OptAlwaysUv] = k.st.AlwaysUV
		// §6.4: alwaysUv true requires makeCredUvNotRqd false.
		opts[ctap.OptMakeCredUvNotRqd] = !k.st.AlwaysUV
		if k.clientPINSupported() {
			opts[ctap.OptSetMinPINLength] = true
		}
		if k.largeBlobsSupported() {
			opts[ctap.OptLargeBlobs] = true
		}
	}
	r := &ctap.GetInfoResponse{
		Versions:           versions,
		Extensions:         k.extensionList(),
		AAGUID:             bytes.Clone(k.st.AAGUID[:]),
		Options:            opts,
		MaxMsgSize:         uint64(k.cfg.MaxMsgSize),
		PinUvAuthProtocols: k.pinProtocols(),
	}
	if !k.v20() {
		// Members 0x07 onwards are CTAP 2.1's; a 2.0 key leaves them out.
		r.MaxCredentialCountInList = uint64(k.cfg.MaxCredentialCountInList)
		r.MaxCredentialIDLength = uint64(k.cfg.MaxCredentialIDLength)
		r.Transports = []string{"usb"}
		for _, a := range k.cfg.Algorithms {
			r.Algorithms = append(r.Algorithms, ctap.CredentialParam{Type: "public-key", Alg: int64(a)})
		}
		if k.largeBlobsSupported() {
			r.MaxSerializedLargeBlobArray = uint64(k.cfg.MaxSerializedLargeBlobArray)
		}
		if k.clientPINSupported() {
			r.ForcePINChange = k.st.ForcePINChange
			r.MinPINLength = uint64(k.st.MinPINLength)
			r.MaxRPIDsForSetMinPINLength = maxMinPINLengthRPIDs
		}
		r.FirmwareVersion = firmwareMajor<<16 | firmwareMinor<<8 | firmwareBuild
		if k.extSupported(ctap.ExtCredBlob) {
			r.MaxCredBlobLength = uint64(k.cfg.MaxCredBlobLength)
		}
		if k.uvAvailable() {
			r.PreferredPlatformUvAttempts = preferredPlatformUvAttempts
			r.UVModality = uvModalityFingerprint
		}
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

// touchProbe answers a zero-length pinUvAuthParam (CTAP 2.1 §6.1.2 and
// §6.2.2 step 1): a touch, so that a platform can have the person pick
// one of several keys, then whether the key has a PIN: PIN_INVALID if
// it has one, PIN_NOT_SET if not.
func (k *Key) touchProbe(ctx context.Context, status func(byte), req PresenceRequest) ctap.Status {
	if s := k.presence(ctx, status, req); s != ctap.StatusOK {
		return s
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.st.PINHash != nil {
		return ctap.StatusPINInvalid
	}
	return ctap.StatusPINNotSet
}

// checkPinUvParam applies step 2 of §6.1.2 and §6.2.2 to a request with
// a pinUvAuthParam: the protocol must be present (MISSING_PARAMETER) and
// one the key speaks (INVALID_PARAMETER).
func (k *Key) checkPinUvParam(protocol uint64) ctap.Status {
	if protocol == 0 {
		return ctap.StatusMissingParameter
	}
	if _, ok := k.protocol(protocol); !ok {
		return ctap.StatusInvalidParameter
	}
	return ctap.StatusOK
}

// uvRequired is the status for a request that needs user verification
// and has none: PUAT_REQUIRED when the platform can get a token with a
// PIN, OPERATION_DENIED otherwise (§6.1.2 steps 6 to 8, §6.2.2 step 5).
// pinSet says whether a PIN must already be set (steps 7 and 8: "the
// ClientPin option ID is true") or need only be supported (step 6).
func (k *Key) uvRequired(pinSet bool) ctap.Status {
	ok := k.clientPINSupported()
	if pinSet {
		ok = k.st.PINHash != nil
	}
	if ok {
		return ctap.StatusPUATRequired
	}
	return ctap.StatusOperationDenied
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
	for i := range k.st.Credentials {
		if c := &k.st.Credentials[i]; bytes.Equal(c.ID, d.ID) && sha256.Sum256([]byte(c.RPID)) == rpIDHash {
			return residentCandidate(c), true
		}
	}
	alg, priv, ext, ok := k.wrapper.unwrapExt(rpIDHash, d.ID)
	if !ok {
		return candidate{}, false
	}
	c := candidate{id: d.ID, alg: alg, priv: priv, protect: ext.protect}
	if ext.hmacSecret {
		c.credRandomUV, c.credRandomNoUV = k.wrapper.credRandom(d.ID, true), k.wrapper.credRandom(d.ID, false)
	}
	return c, true
}

func residentCandidate(c *residentCredential) candidate {
	return candidate{
		id: c.ID, alg: c.Alg, priv: c.PrivateKey, resident: true, protect: c.protect(),
		user:         ctap.UserEntity{ID: c.UserID, Name: c.UserName, DisplayName: c.UserDisplayName},
		credRandomUV: c.CredRandomWithUV, credRandomNoUV: c.CredRandomWithoutUV,
		credBlob: c.CredBlob, largeBlobKey: c.LargeBlobKey,
	}
}

// forced applies the UP and UV misbehaviours and the configured backup
// flags to authenticator data flags.
func (k *Key) forced(f ctap.AuthDataFlags) ctap.AuthDataFlags {
	if k.cfg.ForceUPOff {
		f &^= ctap.FlagUP
	}
	if k.cfg.ForceUVOff {
		f &^= ctap.FlagUV
	}
	if k.cfg.BackupEligible {
		f |= ctap.FlagBE
	}
	if k.cfg.BackupState {
		f |= ctap.FlagBS
	}
	return f
}

// verifyUser runs step 11 of §6.1.2 (step 6 of §6.2.2): a pinUvAuthParam
// is checked against the token, with perm, for rpID; otherwise the uv
// option asks built-in UV. It returns whether the user was verified and
// whether that was also evidence of presence (a finger on the sensor).
func (k *Key) verifyUser(ctx context.Context, status func(byte), param []byte, protocol uint64, msg []byte,
	uvOpt bool, perm pinuv.Permission, op Operation, rpID string) (uv, present bool, s ctap.Status) {
	switch {
	case param != nil:
		k.mu.Lock()
		defer k.mu.Unlock()
		if !k.protected() {
			// No token can exist without a PIN or built-in UV; CTAP 2.0
			// §5.1 answered such a request with PIN_NOT_SET.
			return false, false, ctap.StatusPINNotSet
		}
		s := k.checkToken(protocol, msg, param, tokenCheck{perm: perm, rpID: rpID, needUV: true, bind: true})
		return s == ctap.StatusOK, false, s
	case uvOpt:
		s := k.performBuiltInUV(ctx, status, UVRequest{Op: op, RPID: rpID}, ctap.StatusOperationDenied)
		return s == ctap.StatusOK, s == ctap.StatusOK, s
	}
	return false, false, ctap.StatusOK
}

// makeCredential follows CTAP 2.1 §6.1.2, by step number.
func (k *Key) makeCredential(ctx context.Context, params []byte, status func(byte)) []byte {
	r, err := ctap.DecodeMakeCredentialRequest(params)
	if err != nil {
		return decodeFailure(err)
	}
	touch := PresenceRequest{Op: OpMakeCredential, RPID: r.RP.ID}
	hasParam := r.PinUvAuthParam != nil
	// Step 1.
	if hasParam && len(r.PinUvAuthParam) == 0 && k.pinUvSupported() {
		return statusOnly(k.touchProbe(ctx, status, touch))
	}
	// Step 2.
	if hasParam {
		if s := k.checkPinUvParam(r.PinUvAuthProtocol); s != ctap.StatusOK {
			return statusOnly(s)
		}
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
	// Step 5: options. A pinUvAuthParam makes "uv" false (5.2).
	uvOpt := r.Options[ctap.OptUV] && !hasParam
	if uvOpt && !k.uvAvailable() {
		return statusOnly(ctap.StatusInvalidOption) // 5.3: no built-in user verification
	}
	if up, ok := r.Options[ctap.OptUP]; ok && (!up || k.v20()) {
		// CTAP 2.1 accepts "up": true and refuses false; CTAP 2.0 §5.1
		// step 5 refuses an option that is known but not valid for the
		// command, and "up" is not one of makeCredential's there.
		return statusOnly(ctap.StatusInvalidOption)
	}
	rk := r.Options[ctap.OptRK]
	ext, s := k.mcExtensions(r, rk)
	if s != ctap.StatusOK {
		return statusOnly(s)
	}
	k.mu.Lock()
	protected := k.protected()
	alwaysUV := k.st.AlwaysUV && !k.v20()
	makeCredUvNotRqd := !k.v20() && !alwaysUV
	// Step 6: alwaysUv.
	if alwaysUV {
		if !protected {
			s = k.uvRequired(false)
		} else if !hasParam && k.uvAvailable() {
			uvOpt = true // 6.3
		} else if !hasParam && !uvOpt {
			s = k.uvRequired(false) // 6.4
		}
	}
	// Steps 7 and 8: makeCredUvNotRqd lets a key with a PIN make
	// non-discoverable credentials without it; a CTAP 2.0 key (which
	// does not claim it) requires the PIN for any credential
	// (CTAP2_ERR_PIN_REQUIRED, the same byte as PUAT_REQUIRED).
	if s == ctap.StatusOK && protected && !uvOpt && !hasParam && (rk || !makeCredUvNotRqd) {
		s = k.uvRequired(true)
	}
	k.mu.Unlock()
	if s != ctap.StatusOK {
		return statusOnly(s)
	}
	// Step 9: not an enterprise attestation capable key.
	if r.EnterpriseAttestation != 0 {
		return statusOnly(ctap.StatusInvalidParameter)
	}
	if len(r.ExcludeList) > k.cfg.MaxCredentialCountInList {
		return statusOnly(ctap.StatusLimitExceeded) // longer than getInfo's maxCredentialCountInList
	}
	// Steps 10 and 11: user verification.
	uv, uvPresent, s := k.verifyUser(ctx, status, r.PinUvAuthParam, r.PinUvAuthProtocol, r.ClientDataHash,
		uvOpt, pinuv.PermMakeCredential, OpMakeCredential, r.RP.ID)
	if s != ctap.StatusOK {
		return statusOnly(s)
	}
	rpIDHash := sha256.Sum256([]byte(r.RP.ID))
	// Step 12: a credential of this key for this RP in the excludeList,
	// unless it is one that needs user verification and there was none.
	k.mu.Lock()
	excluded := false
	for _, d := range r.ExcludeList {
		if c, ok := k.find(rpIDHash, d); ok && (c.protect != ctap.CredProtectUVRequired || uv) {
			excluded = true
			break
		}
	}
	present := uvPresent || hasParam && k.tokenUserPresent()
	k.mu.Unlock()
	if excluded {
		// The touch comes first, so that a site cannot learn silently
		// which keys a person holds.
		if !present {
			if s := k.presence(ctx, status, touch); s != ctap.StatusOK {
				return statusOnly(s)
			}
		}
		return statusOnly(ctap.StatusCredentialExcluded)
	}
	// Step 14: user presence, unless the token or the finger on the
	// sensor already showed it.
	if !present {
		if s := k.presence(ctx, status, touch); s != ctap.StatusOK {
			return statusOnly(s)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.consumeToken() // 14.3
	flags := ctap.FlagUP
	if uv {
		flags |= ctap.FlagUV
	}

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
	// The first assertion will not parse the key again.
	k.signers.add(alg, raw, signer)
	cose, err := ctap.MarshalPublicKey(signer.Public())
	if err != nil {
		return statusOnly(ctap.StatusOther)
	}
	// Step 15: extensions.
	protect := max(ext.protect, ctap.CredProtectUVOptional)
	var out ctap.MakeCredentialExtensionOutputs
	if ext.protect != 0 {
		out.CredProtect = uint64(ext.protect)
	}
	out.HMACSecret = ext.hmacSecret
	c := residentCredential{
		RPID: r.RP.ID, RPName: r.RP.Name, UserID: r.User.ID,
		UserName: r.User.Name, UserDisplayName: r.User.DisplayName,
		Alg: alg, PrivateKey: raw, Created: k.cfg.Clock().UTC().Round(0),
		CredProtect: protect,
	}
	if ext.hasCredBlob {
		// Non-discoverable credentials keep nothing but their ID, which
		// has no room for a blob (§12.2 lets a key refuse).
		stored := rk && len(ext.credBlob) <= k.cfg.MaxCredBlobLength
		if stored && len(ext.credBlob) > 0 {
			c.CredBlob = bytes.Clone(ext.credBlob)
		}
		out.CredBlob = &stored
	}
	if ext.minPINLength && slices.Contains(k.st.MinPINLengthRPIDs, r.RP.ID) {
		// §12.4: only relying parties the key was configured to tell.
		out.MinPinLength = uint64(k.st.MinPINLength)
	}
	var id []byte
	if rk {
		if id, err = k.readRandom(residentIDLen); err != nil {
			return statusOnly(ctap.StatusOther)
		}
		if ext.hmacSecret {
			if c.CredRandomWithUV, err = k.readRandom(credRandomLen); err != nil {
				return statusOnly(ctap.StatusOther)
			}
			if c.CredRandomWithoutUV, err = k.readRandom(credRandomLen); err != nil {
				return statusOnly(ctap.StatusOther)
			}
		}
		if ext.largeBlobKey {
			if c.LargeBlobKey, err = k.readRandom(largeBlobKeyLen); err != nil {
				return statusOnly(ctap.StatusOther)
			}
		}
	} else if id, err = k.wrapper.wrapExt(k.cfg.Rand, rpIDHash, alg, raw, credExt{protect: protect, hmacSecret: ext.hmacSecret}); err != nil {
		// Step 18: the ID is the sealed private key.
		return statusOnly(ctap.StatusOther)
	}
	c.ID = id
	count := k.st.Counter + 1
	ad := (&ctap.AuthData{
		RPIDHash:   rpIDHash,
		Flags:      k.forced(flags),
		SignCount:  count,
		Attested:   &ctap.AttestedCredential{AAGUID: k.st.AAGUID, CredentialID: id, PublicKey: cose},
		Extensions: out.Marshal(),
	}).Marshal()
	// Step 19.
	format, stmt, err := k.attest(alg, signer, append(bytes.Clone(ad), r.ClientDataHash...))
	if err != nil {
		return statusOnly(ctap.StatusOther)
	}
	old := *k.st
	old.Credentials = append([]residentCredential(nil), k.st.Credentials...)
	if rk {
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
	return ctap.EncodeResponse(&ctap.MakeCredentialResponse{Format: format, AuthData: ad, AttStmt: stmt, LargeBlobKey: c.LargeBlobKey})
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
	hasParam := r.PinUvAuthParam != nil
	// Step 1.
	if hasParam && len(r.PinUvAuthParam) == 0 && k.pinUvSupported() {
		return statusOnly(k.touchProbe(ctx, status, touch))
	}
	// Step 2.
	if hasParam {
		if s := k.checkPinUvParam(r.PinUvAuthProtocol); s != ctap.StatusOK {
			return statusOnly(s)
		}
	}
	// Step 4: options.
	uvOpt := r.Options[ctap.OptUV] && !hasParam
	if uvOpt && !k.uvAvailable() {
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
	k.mu.Lock()
	// Step 10's extension inputs are checked now, before a finger or a
	// touch is spent on a request that would fail.
	ext, s := k.gaExtensions(r)
	if s == ctap.StatusOK && ext.hmac != nil && !up {
		// hmac-secret outputs are secrets worth a touch: without one,
		// this key refuses rather than answering without them.
		s = ctap.StatusUnsupportedOption
	}
	protected := k.protected()
	// Step 5: alwaysUv, for requests that test presence.
	if s == ctap.StatusOK && k.st.AlwaysUV && !k.v20() && up {
		if !protected {
			s = k.uvRequired(false)
		} else if !hasParam && k.uvAvailable() {
			uvOpt = true
		} else if !hasParam && !uvOpt {
			s = k.uvRequired(false)
		}
	}
	k.mu.Unlock()
	if s != ctap.StatusOK {
		return statusOnly(s)
	}
	// Step 6: user verification.
	uv, uvPresent, s := k.verifyUser(ctx, status, r.PinUvAuthParam, r.PinUvAuthProtocol, r.ClientDataHash,
		uvOpt, pinuv.PermGetAssertion, OpGetAssertion, r.RPID)
	if s != ctap.StatusOK {
		return statusOnly(s)
	}
	// Step 7: the applicable credentials, without those whose credProtect
	// policy needs user verification there was none of (§12.1).
	rpIDHash := sha256.Sum256([]byte(r.RPID))
	var creds []candidate
	k.mu.Lock()
	if len(r.AllowList) > 0 {
		// 7.1 and 11.1: any denoted credential will do; this key takes
		// the first one listed that is its own and usable.
		for _, d := range r.AllowList {
			if c, ok := k.find(rpIDHash, d); ok && (c.protect < ctap.CredProtectUVRequired || uv) {
				creds = append(creds, c)
				break
			}
		}
	} else {
		// 7.2 and 12.2.1: discoverable credentials, newest first.
		for i := len(k.st.Credentials) - 1; i >= 0; i-- {
			if c := &k.st.Credentials[i]; c.RPID == r.RPID && (c.protect() == ctap.CredProtectUVOptional || uv) {
				creds = append(creds, residentCandidate(c))
			}
		}
	}
	present := uvPresent || hasParam && k.tokenUserPresent()
	k.mu.Unlock()
	if len(creds) == 0 {
		return statusOnly(ctap.StatusNoCredentials) // 7.6, before any touch
	}
	// Step 9: user presence, unless the platform asked for none or the
	// token or the finger already showed it.
	var flags ctap.AuthDataFlags
	if up {
		if !present {
			if s := k.presence(ctx, status, touch); s != ctap.StatusOK {
				return statusOnly(s)
			}
		}
		flags |= ctap.FlagUP
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if up {
		k.consumeToken() // 9.3
	}
	if uv {
		flags |= ctap.FlagUV
	}
	count := 0 // 11.2: no numberOfCredentials with an allowList
	if len(r.AllowList) == 0 {
		count = len(creds)
		if count > 1 {
			// 12.2.2: no display, so remember the rest for
			// getNextAssertion and start the timer.
			k.host(hid.RequestOrigin(ctx)).next = &pendingAssertions{creds: creds[1:], hash: r.ClientDataHash,
				rpIDHash: rpIDHash, flags: flags, ext: ext, expires: k.cfg.Clock().Add(nextAssertionTimeout)}
		}
	}
	return k.assert(creds[0], rpIDHash, r.ClientDataHash, flags, ext, count, count > 1)
}

// assert signs with one credential (§6.2.2 step 13) and counts the
// signature. severalAccounts says that the request found more than one
// discoverable credential for the RP, the one case in which the user's
// name and display name go with user.id. The caller holds k.mu.
func (k *Key) assert(c candidate, rpIDHash [32]byte, hash []byte, flags ctap.AuthDataFlags, ext *gaExtensions,
	count int, severalAccounts bool) []byte {
	signer, err := k.signers.get(c.alg, c.priv)
	if err != nil {
		return statusOnly(ctap.StatusOther)
	}
	uv := flags&ctap.FlagUV != 0
	// Step 10: extension outputs.
	var out ctap.GetAssertionExtensionOutputs
	if ext.hmac != nil && c.credRandomUV != nil {
		// §12.5: which CredRandom depends on whether the user was
		// verified, so outputs differ with and without UV.
		cr := c.credRandomNoUV
		if uv {
			cr = c.credRandomUV
		}
		if out.HMACSecret, err = ext.hmac.output(cr); err != nil {
			return statusOnly(ctap.StatusOther)
		}
	}
	if ext.credBlob {
		out.CredBlob = append([]byte{}, c.credBlob...) // present, if empty
	}
	n := k.st.Counter + 1
	ad := (&ctap.AuthData{RPIDHash: rpIDHash, Flags: k.forced(flags), SignCount: n, Extensions: out.Marshal()}).Marshal()
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
		// The user member (0x04) of the response: "User identifiable
		// information (name, DisplayName, icon) MUST NOT be returned if
		// user verification is not done by the authenticator", and "for
		// single account per RP case, authenticator returns "id" field
		// to the platform"; only "for multiple accounts per RP case,
		// where the authenticator does not have a display,
		// authenticator returns "id" as well as other fields", for the
		// platform's account chooser. So the names go only with UV and
		// more than one account; an allowList names a single one.
		resp.User = &ctap.UserEntity{ID: c.user.ID}
		if uv && severalAccounts {
			u := c.user
			resp.User = &u
		}
		if ext.largeBlobKey {
			resp.LargeBlobKey = c.largeBlobKey
		}
	}
	return ctap.EncodeResponse(resp)
}

// getNextAssertion follows CTAP 2.1 §6.3, for the host's own getAssertion.
func (k *Key) getNextAssertion(host hid.Origin) []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	defer k.dropIdleHost(host)
	h := k.hosts[host]
	if h == nil { // step 1: nothing remembered for this host
		return statusOnly(ctap.StatusNotAllowed)
	}
	n := h.next
	now := k.cfg.Clock()
	switch {
	case n == nil, len(n.creds) == 0: // steps 1 and 2
		h.next = nil
		return statusOnly(ctap.StatusNotAllowed)
	case now.After(n.expires): // step 3
		h.next = nil
		return statusOnly(ctap.StatusNotAllowed)
	}
	for len(n.creds) > 0 {
		c := n.creds[0]
		n.creds = n.creds[1:]
		if c.resident {
			// As stored now: another host may have deleted the
			// credential, or replaced or renamed it, since.
			i := slices.IndexFunc(k.st.Credentials, func(rc residentCredential) bool { return bytes.Equal(rc.ID, c.id) })
			if i < 0 {
				continue
			}
			c = residentCandidate(&k.st.Credentials[i])
		}
		n.expires = now.Add(nextAssertionTimeout) // step 6: reset the timer
		if len(n.creds) == 0 {
			h.next = nil
		}
		// Pending assertions exist only for more than one account.
		return k.assert(c, n.rpIDHash, n.hash, n.flags, n.ext, 0, true)
	}
	h.next = nil
	return statusOnly(ctap.StatusNotAllowed)
}

// reset follows CTAP 2.1 §6.6: only within 10 s of power-up, and only with
// a touch. It erases the discoverable credentials and makes a new wrapping
// secret, so the IDs of non-discoverable ones stop working too; it removes
// the PIN, gives back every PIN and UV retry, returns the config settings
// (alwaysUv, minimum PIN length) to those of Config, empties the
// large-blob array and makes new key agreement keys and tokens. The
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
	k.st.PINHash, k.st.PINCodePoints, k.st.PINRetries, k.st.UVRetries = nil, 0, maxPINRetries, k.cfg.MaxUVRetries
	k.st.AlwaysUV, k.st.MinPINLength, k.st.MinPINLengthRPIDs, k.st.ForcePINChange = k.cfg.AlwaysUV, k.cfg.MinPINLength, nil, false
	k.st.LargeBlobs = nil
	if err := k.save(); err != nil {
		*k.st = old
		return statusOnly(ctap.StatusOther)
	}
	k.wrapper = w
	k.signers.clear()
	k.hosts = nil // every host's getNextAssertion and enumeration state is of credentials now gone
	k.blobWrite = nil
	if err := k.powerUpPinUvAuth(); err != nil {
		k.auth = pinUvAuth{}
	}
	k.dropFinishedTouch()
	return statusOnly(ctap.StatusOK)
}
