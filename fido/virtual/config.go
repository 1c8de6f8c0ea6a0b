package virtual

import (
	"slices"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/pinuv"
)

// maxMinPINLengthRPIDs is how many relying parties setMinPINLength can
// name to receive the minPinLength extension (getInfo
// maxRPIDsForSetMinPINLength, CTAP 2.1 §6.4).
const maxMinPINLengthRPIDs = 8

// config follows CTAP 2.1 §6.11: toggleAlwaysUv and setMinPINLength.
// enableEnterpriseAttestation (§6.11.1) is left out, as this key has no
// enterprise attestation, and vendorPrototype (§6.11.3) names no
// commands; both are CTAP2_ERR_INVALID_SUBCOMMAND.
func (k *Key) config(params []byte) []byte {
	r, err := ctap.DecodeConfigRequest(params)
	if err != nil {
		return decodeFailure(err)
	}
	switch {
	case r.SubCommand == ctap.ConfigToggleAlwaysUv:
	case r.SubCommand == ctap.ConfigSetMinPINLength && k.clientPINSupported():
	default:
		return statusOnly(ctap.StatusInvalidSubcommand)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	// A key that nobody can verify on, and that does not insist on it,
	// lets anyone configure it: there is no one to ask.
	if k.protected() || k.st.AlwaysUV {
		if r.PinUvAuthParam == nil {
			return statusOnly(ctap.StatusPUATRequired)
		}
		if s := k.checkPinUvParam(r.PinUvAuthProtocol); s != ctap.StatusOK {
			return statusOnly(s)
		}
		if s := k.checkToken(r.PinUvAuthProtocol, r.AuthMessage(), r.PinUvAuthParam,
			tokenCheck{perm: pinuv.PermAuthenticatorConfig}); s != ctap.StatusOK {
			return statusOnly(s)
		}
	}
	old := *k.st
	if r.SubCommand == ctap.ConfigToggleAlwaysUv {
		k.st.AlwaysUV = !k.st.AlwaysUV // §6.11.2
	} else if s := k.setMinPINLength(r.MinPINLength); s != ctap.StatusOK {
		return statusOnly(s)
	}
	if err := k.save(); err != nil {
		*k.st = old
		return statusOnly(ctap.StatusOther)
	}
	return statusOnly(ctap.StatusOK)
}

// setMinPINLength applies §6.11.4 to the state: the minimum may only
// grow (PIN_POLICY_VIOLATION), the RP ID list replaces the one before
// (KEY_STORE_FULL beyond maxRPIDsForSetMinPINLength), and a PIN now
// shorter than the minimum, or forceChangePin, sets forcePINChange (which
// needs a PIN: PIN_NOT_SET). p nil changes nothing. The caller holds k.mu
// and saves.
func (k *Key) setMinPINLength(p *ctap.SetMinPINLengthParams) ctap.Status {
	if p == nil {
		return ctap.StatusOK
	}
	n := k.st.MinPINLength
	if p.NewMinPINLength != 0 {
		if p.NewMinPINLength < uint64(n) || p.NewMinPINLength > pinuv.MaxPINBytes {
			return ctap.StatusPINPolicyViolation
		}
		n = int(p.NewMinPINLength)
	}
	if len(p.MinPinLengthRPIDs) > maxMinPINLengthRPIDs {
		return ctap.StatusKeyStoreFull
	}
	if p.ForceChangePin && k.st.PINHash == nil {
		return ctap.StatusPINNotSet
	}
	k.st.MinPINLength = n
	if p.MinPinLengthRPIDs != nil {
		k.st.MinPINLengthRPIDs = slices.Clone(p.MinPinLengthRPIDs)
	}
	if k.st.PINHash != nil && (p.ForceChangePin || k.st.PINCodePoints < n) {
		k.st.ForcePINChange = true
	}
	return ctap.StatusOK
}
