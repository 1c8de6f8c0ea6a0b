package virtual

import (
	"context"
	"crypto/subtle"
	"errors"
	"unicode/utf8"

	"github.com/fxamacker/cbor/v2"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/pinuv"
)

// definedPermissions are the pinUvAuthToken permissions of CTAP 2.1
// §6.5.5.7; others are ignored when a token is asked for.
const definedPermissions = pinuv.PermMakeCredential | pinuv.PermGetAssertion | pinuv.PermCredentialManagement |
	pinuv.PermBioEnrollment | pinuv.PermLargeBlobWrite | pinuv.PermAuthenticatorConfig

// legacyPermissions are what a token of a CTAP 2.0 key, or one from
// getPinToken on a 2.1 key, may do (CTAP 2.1 §6.5.5.7.1 step 14: the
// default permissions mc and ga).
const legacyPermissions = pinuv.PermMakeCredential | pinuv.PermGetAssertion

func (k *Key) v20() bool { return k.cfg.CTAPVersion == CTAP20 }

// clientPINSupported reports whether the key supports a PIN (getInfo
// clientPin present).
func (k *Key) clientPINSupported() bool { return !k.cfg.NoClientPIN }

// pinUvSupported reports whether the key has any way to verify a user, and
// so authenticatorClientPIN and PIN/UV auth protocols.
func (k *Key) pinUvSupported() bool { return !k.cfg.NoClientPIN || k.cfg.BuiltInUV }

// uvAvailable reports whether built-in UV can be asked for (getInfo uv
// true).
func (k *Key) uvAvailable() bool { return k.cfg.BuiltInUV }

// protected reports whether the key is "protected by some form of user
// verification" (CTAP 2.1 §6.1.2 step 6): a PIN is set or built-in UV is
// configured. The caller holds k.mu.
func (k *Key) protected() bool { return k.st.PINHash != nil || k.cfg.BuiltInUV }

// credMgmtSupported reports whether authenticatorCredentialManagement is
// there (0x0A on a 2.1 key, 0x41 on a 2.0 one): it needs a token, so a
// PIN or built-in UV.
func (k *Key) credMgmtSupported() bool { return k.pinUvSupported() }

// largeBlobsSupported reports whether authenticatorLargeBlobs is there.
func (k *Key) largeBlobsSupported() bool { return !k.v20() && !k.cfg.NoLargeBlobs }

// configSupported reports whether authenticatorConfig is there.
func (k *Key) configSupported() bool { return !k.v20() }

// unauthorized reports whether perms asks for something the key does
// not offer (CTAP 2.1 §6.5.5.7.2 step 4, §6.5.5.7.3 step 4), which is
// answered with CTAP2_ERR_UNAUTHORIZED_PERMISSION.
func (k *Key) unauthorized(perms pinuv.Permission, viaUV bool) bool {
	switch {
	case perms&pinuv.PermCredentialManagement != 0 && !k.credMgmtSupported():
		return true
	case perms&pinuv.PermBioEnrollment != 0: // no bioEnroll
		return true
	case perms&pinuv.PermLargeBlobWrite != 0 && !k.largeBlobsSupported():
		return true
	case perms&pinuv.PermAuthenticatorConfig != 0 && (!k.configSupported() || viaUV && !k.uvAvailable()):
		return true
	}
	return false
}

// clientPIN follows CTAP 2.1 §6.5.5. A CTAP20 key offers the subcommands
// CTAP 2.0 had (getPINRetries, getKeyAgreement, setPIN, changePIN,
// getPinToken); a key without a PIN only those built-in UV needs.
func (k *Key) clientPIN(ctx context.Context, params []byte, status func(byte)) []byte {
	if !k.pinUvSupported() {
		return statusOnly(ctap.StatusInvalidCommand)
	}
	r, err := ctap.DecodeClientPINRequest(params)
	if err != nil {
		return decodeFailure(err)
	}
	// The decoder cannot tell a permissions of 0 from none; §6.5.5.7
	// answers them differently.
	var present struct {
		Permissions *uint64 `cbor:"9,keyasint"`
	}
	if err := ctap.UnmarshalLenient("clientPIN request", params, &present); err != nil {
		return decodeFailure(err)
	}
	pin, uv, v21 := k.clientPINSupported(), k.uvAvailable(), !k.v20()
	switch {
	case r.SubCommand == ctap.ClientPINGetPINRetries && pin:
		return k.getPINRetries()
	case r.SubCommand == ctap.ClientPINGetKeyAgreement:
		return k.getKeyAgreement(r)
	case r.SubCommand == ctap.ClientPINSetPIN && pin:
		return k.setPIN(r)
	case r.SubCommand == ctap.ClientPINChangePIN && pin:
		return k.changePIN(r)
	case r.SubCommand == ctap.ClientPINGetPINToken && pin:
		if present.Permissions != nil || r.RPID != "" {
			// §6.5.5.7.1 steps 3 and 4, after the missing-parameter
			// and protocol checks of steps 1 and 2.
			if s := k.needProtocol(r.PinUvAuthProtocol, r.KeyAgreement != nil && r.PinHashEnc != nil); s != ctap.StatusOK {
				return statusOnly(s)
			}
			return statusOnly(ctap.StatusInvalidParameter)
		}
		return k.getPINToken(r, 0)
	case r.SubCommand == ctap.ClientPINGetPinUvAuthTokenUsingPinWithPermissions && pin && v21:
		if present.Permissions == nil {
			return statusOnly(ctap.StatusMissingParameter)
		}
		return k.getPINToken(r, pinuv.Permission(*present.Permissions))
	case r.SubCommand == ctap.ClientPINGetPinUvAuthTokenUsingUvWithPermissions && uv && v21:
		if present.Permissions == nil {
			return statusOnly(ctap.StatusMissingParameter)
		}
		return k.getUVToken(ctx, status, r, pinuv.Permission(*present.Permissions))
	case r.SubCommand == ctap.ClientPINGetUVRetries && uv && v21:
		k.mu.Lock()
		defer k.mu.Unlock()
		n := uint64(k.st.UVRetries)
		return ctap.EncodeResponse(&ctap.ClientPINResponse{UVRetries: &n})
	}
	return statusOnly(ctap.StatusInvalidSubcommand)
}

// needProtocol applies the first two steps of each subcommand: the
// mandatory parameters (MISSING_PARAMETER), protocol among them, and
// then a protocol the key speaks (INVALID_PARAMETER).
func (k *Key) needProtocol(v uint64, others bool) ctap.Status {
	if v == 0 || !others {
		return ctap.StatusMissingParameter
	}
	if _, ok := k.protocol(v); !ok {
		return ctap.StatusInvalidParameter
	}
	return ctap.StatusOK
}

// getPINRetries follows §6.5.5.2. powerCycleState is there only when
// true, after three wrong PINs in a row.
func (k *Key) getPINRetries() []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := uint64(k.st.PINRetries)
	return ctap.EncodeResponse(&ctap.ClientPINResponse{
		PinRetries: &n, PowerCycleState: k.auth.mismatches >= maxConsecutiveMismatches,
	})
}

// getKeyAgreement follows §6.5.5.4.
func (k *Key) getKeyAgreement(r *ctap.ClientPINRequest) []byte {
	if s := k.needProtocol(r.PinUvAuthProtocol, true); s != ctap.StatusOK {
		return statusOnly(s)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	key := k.auth.keys[r.PinUvAuthProtocol]
	if key == nil {
		return statusOnly(ctap.StatusOther) // Config.Rand failed at Replug
	}
	cose, err := ctap.EncodeKeyAgreement(key.PublicKey())
	if err != nil {
		return statusOnly(ctap.StatusOther)
	}
	return ctap.EncodeResponse(&ctap.ClientPINResponse{KeyAgreement: cose})
}

// decapsulate agrees on the shared secret with the platform's key
// (§6.5.6 decapsulate); a key that does not parse or agree is
// INVALID_PARAMETER. The caller holds k.mu.
func (k *Key) decapsulate(v uint64, p pinuv.Protocol, platformKey cbor.RawMessage) ([]byte, ctap.Status) {
	pub, err := ctap.ParseKeyAgreement(platformKey)
	if err != nil {
		return nil, ctap.StatusInvalidParameter
	}
	shared, err := p.Decapsulate(k.auth.keys[v], pub)
	if err != nil {
		return nil, ctap.StatusInvalidParameter
	}
	return shared, ctap.StatusOK
}

// newPIN decrypts and checks newPinEnc (§6.5.5.5 steps 6 to 10,
// §6.5.5.6 steps 9 to 14) and returns the new PIN's hash and length in
// code points. The PIN itself lives only in this function's locals.
func (k *Key) newPIN(p pinuv.Protocol, shared, newPinEnc []byte) ([]byte, int, ctap.Status) {
	padded, err := p.Decrypt(shared, newPinEnc)
	if err != nil {
		return nil, 0, ctap.StatusPINAuthInvalid
	}
	defer clear(padded)
	pin, err := pinuv.UnpadPIN(padded)
	switch {
	case errors.Is(err, pinuv.ErrPaddedPINLength):
		return nil, 0, ctap.StatusInvalidParameter
	case err != nil:
		return nil, 0, ctap.StatusPINPolicyViolation
	}
	n := utf8.RuneCountInString(pin)
	if n < k.st.MinPINLength {
		return nil, 0, ctap.StatusPINPolicyViolation
	}
	return pinuv.PINHash(pin), n, ctap.StatusOK
}

// setPIN follows §6.5.5.5.
func (k *Key) setPIN(r *ctap.ClientPINRequest) []byte {
	if s := k.needProtocol(r.PinUvAuthProtocol, r.KeyAgreement != nil && r.PinUvAuthParam != nil && r.NewPinEnc != nil); s != ctap.StatusOK {
		return statusOnly(s)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.st.PINHash != nil {
		return statusOnly(ctap.StatusPINAuthInvalid) // step 3
	}
	p, _ := k.protocol(r.PinUvAuthProtocol)
	shared, s := k.decapsulate(r.PinUvAuthProtocol, p, r.KeyAgreement)
	if s != ctap.StatusOK {
		return statusOnly(s)
	}
	if !p.Verify(shared, r.AuthMessage(), r.PinUvAuthParam) {
		return statusOnly(ctap.StatusPINAuthInvalid)
	}
	hash, n, s := k.newPIN(p, shared, r.NewPinEnc)
	if s != ctap.StatusOK {
		return statusOnly(s)
	}
	old := *k.st
	k.st.PINHash, k.st.PINCodePoints, k.st.PINRetries = hash, n, maxPINRetries
	if err := k.save(); err != nil {
		*k.st = old
		return statusOnly(ctap.StatusOther)
	}
	return statusOnly(ctap.StatusOK)
}

// pinUsable applies the checks that come before a PIN is tried: a PIN
// must be set (PIN_NOT_SET, which CTAP 2.1 leaves implicit), have retries
// left (PIN_BLOCKED) and not wait for a power cycle (PIN_AUTH_BLOCKED).
// The caller holds k.mu.
func (k *Key) pinUsable() ctap.Status {
	switch {
	case k.st.PINHash == nil:
		return ctap.StatusPINNotSet
	case k.st.PINRetries <= 0:
		return ctap.StatusPINBlocked
	case k.auth.mismatches >= maxConsecutiveMismatches:
		return ctap.StatusPINAuthBlocked
	}
	return ctap.StatusOK
}

// checkPINHash tries pinHashEnc against the stored PIN (§6.5.5.6 steps 6
// to 8, §6.5.5.7.2 steps 8 to 10): it spends a retry, and on a match
// gives back every PIN retry, and the UV retries, which a correct PIN
// also restores. On a mismatch it makes a new key agreement key, so the
// platform must start again, and answers PIN_BLOCKED, PIN_AUTH_BLOCKED
// or PIN_INVALID. The retries are saved either way. The caller holds
// k.mu.
func (k *Key) checkPINHash(v uint64, p pinuv.Protocol, shared, pinHashEnc []byte) ctap.Status {
	old := *k.st
	k.st.PINRetries--
	hash, err := p.Decrypt(shared, pinHashEnc)
	if err != nil || subtle.ConstantTimeCompare(hash, k.st.PINHash) != 1 {
		if err := k.save(); err != nil {
			*k.st = old
			return ctap.StatusOther
		}
		k.auth.mismatches++
		if err := k.regenerate(v); err != nil {
			k.auth.keys[v] = nil
		}
		switch {
		case k.st.PINRetries <= 0:
			return ctap.StatusPINBlocked
		case k.auth.mismatches >= maxConsecutiveMismatches:
			return ctap.StatusPINAuthBlocked
		}
		return ctap.StatusPINInvalid
	}
	k.st.PINRetries, k.st.UVRetries = maxPINRetries, k.cfg.MaxUVRetries
	k.auth.mismatches = 0
	if k.st.PINRetries != old.PINRetries || k.st.UVRetries != old.UVRetries {
		if err := k.save(); err != nil {
			*k.st = old
			return ctap.StatusOther
		}
	}
	return ctap.StatusOK
}

// changePIN follows §6.5.5.6.
func (k *Key) changePIN(r *ctap.ClientPINRequest) []byte {
	if s := k.needProtocol(r.PinUvAuthProtocol,
		r.KeyAgreement != nil && r.PinUvAuthParam != nil && r.NewPinEnc != nil && r.PinHashEnc != nil); s != ctap.StatusOK {
		return statusOnly(s)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if s := k.pinUsable(); s != ctap.StatusOK {
		return statusOnly(s)
	}
	v := r.PinUvAuthProtocol
	p, _ := k.protocol(v)
	shared, s := k.decapsulate(v, p, r.KeyAgreement)
	if s != ctap.StatusOK {
		return statusOnly(s)
	}
	if !p.Verify(shared, r.AuthMessage(), r.PinUvAuthParam) {
		return statusOnly(ctap.StatusPINAuthInvalid) // step 5: no retry spent
	}
	if s := k.checkPINHash(v, p, shared, r.PinHashEnc); s != ctap.StatusOK {
		return statusOnly(s)
	}
	hash, n, s := k.newPIN(p, shared, r.NewPinEnc)
	if s != ctap.StatusOK {
		return statusOnly(s)
	}
	if k.st.ForcePINChange && subtle.ConstantTimeCompare(hash, k.st.PINHash) == 1 {
		return statusOnly(ctap.StatusPINPolicyViolation) // step 13: a forced change must change it
	}
	old := *k.st
	k.st.PINHash, k.st.PINCodePoints, k.st.ForcePINChange = hash, n, false
	if err := k.save(); err != nil {
		*k.st = old
		return statusOnly(ctap.StatusOther)
	}
	if err := k.resetTokens(); err != nil { // step 19
		k.auth.tok = tokenState{}
	}
	return statusOnly(ctap.StatusOK)
}

// getPINToken follows §6.5.5.7.1 (getPinToken, perms 0) and §6.5.5.7.2
// (getPinUvAuthTokenUsingPinWithPermissions).
func (k *Key) getPINToken(r *ctap.ClientPINRequest, perms pinuv.Permission) []byte {
	legacy := r.SubCommand == ctap.ClientPINGetPINToken
	if s := k.needProtocol(r.PinUvAuthProtocol, r.KeyAgreement != nil && r.PinHashEnc != nil); s != ctap.StatusOK {
		return statusOnly(s)
	}
	if !legacy {
		if perms == 0 {
			return statusOnly(ctap.StatusInvalidParameter) // step 3
		}
		if k.unauthorized(perms, false) {
			return statusOnly(ctap.StatusUnauthorizedPermission) // step 4
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if s := k.pinUsable(); s != ctap.StatusOK {
		return statusOnly(s)
	}
	v := r.PinUvAuthProtocol
	p, _ := k.protocol(v)
	shared, s := k.decapsulate(v, p, r.KeyAgreement)
	if s != ctap.StatusOK {
		return statusOnly(s)
	}
	if s := k.checkPINHash(v, p, shared, r.PinHashEnc); s != ctap.StatusOK {
		return statusOnly(s)
	}
	if k.st.ForcePINChange {
		// Step 11: the platform should have the person change the PIN.
		return statusOnly(ctap.StatusPINPolicyViolation)
	}
	if legacy {
		perms = legacyPermissions
	}
	return k.issueToken(v, p, shared, perms&definedPermissions, r.RPID, false)
}

// issueToken makes a new token for protocol v, starts using it and
// answers with it encrypted under shared (§6.5.5.7.2 steps 13 to 17).
// The caller holds k.mu.
func (k *Key) issueToken(v uint64, p pinuv.Protocol, shared []byte, perms pinuv.Permission, rpID string, userIsPresent bool) []byte {
	if err := k.resetTokens(); err != nil {
		return statusOnly(ctap.StatusOther)
	}
	k.beginUsingToken(v, perms, rpID, userIsPresent)
	enc, err := p.Encrypt(shared, k.auth.tokens[v])
	if err != nil {
		k.auth.tok = tokenState{}
		return statusOnly(ctap.StatusOther)
	}
	return ctap.EncodeResponse(&ctap.ClientPINResponse{PinUvAuthToken: enc})
}

// getUVToken follows §6.5.5.7.3.
func (k *Key) getUVToken(ctx context.Context, status func(byte), r *ctap.ClientPINRequest, perms pinuv.Permission) []byte {
	if s := k.needProtocol(r.PinUvAuthProtocol, r.KeyAgreement != nil); s != ctap.StatusOK {
		return statusOnly(s)
	}
	if perms == 0 {
		return statusOnly(ctap.StatusInvalidParameter)
	}
	if k.unauthorized(perms, true) {
		return statusOnly(ctap.StatusUnauthorizedPermission)
	}
	v := r.PinUvAuthProtocol
	p, _ := k.protocol(v)
	k.mu.Lock()
	blocked := k.st.UVRetries <= 0
	// The platform's key is checked before the finger, so that a
	// malformed request costs the person nothing.
	shared, s := k.decapsulate(v, p, r.KeyAgreement)
	k.mu.Unlock()
	if blocked {
		return statusOnly(ctap.StatusUVBlocked) // step 7
	}
	if s != ctap.StatusOK {
		return statusOnly(s)
	}
	if s := k.performBuiltInUV(ctx, status, UVRequest{Op: OpGetPinUvAuthToken, RPID: r.RPID}, ctap.StatusUVInvalid); s != ctap.StatusOK {
		return statusOnly(s)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	// Step 13: a finger on the sensor is evidence of user presence.
	return k.issueToken(v, p, shared, perms&definedPermissions, r.RPID, true)
}
