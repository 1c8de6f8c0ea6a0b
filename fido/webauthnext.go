package fido

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
)

// This file is the WebAuthn client's side of extensions (WebAuthn L3 §9,
// §10 and CTAP 2.1 §12): it reads the extension inputs of options JSON,
// maps them onto CTAP extensions, and builds clientExtensionResults.
// Unknown extensions are ignored, as WebAuthn L3 §9 asks of clients.

// creationExtensions are the extension inputs of creation options this
// client acts on.
type creationExtensions struct {
	CredProps          bool        // credProps (WebAuthn L3 §10.1.3)
	CredProtect        CredProtect // credentialProtectionPolicy (CTAP 2.1 §12.1); 0: absent
	EnforceCredProtect bool        // enforceCredentialProtectionPolicy
	CredBlob           []byte      // credBlob (CTAP 2.1 §12.2); nil: absent
	MinPINLength       bool        // minPinLength (CTAP 2.1 §12.4)
	HMACCreateSecret   bool        // hmacCreateSecret (CTAP 2.1 §12.5)
	PRF                bool        // prf (WebAuthn L3 §10.1.4) present
}

// prfValues is AuthenticationExtensionsPRFValues (WebAuthn L3 §10.1.4).
type prfValues struct {
	First, Second []byte // Second nil: absent
}

// requestExtensions are the extension inputs of request options this
// client acts on.
type requestExtensions struct {
	GetCredBlob bool // getCredBlob (CTAP 2.1 §12.2)
	// PRFEval is prf.eval; nil: absent.
	PRFEval *prfValues
	// PRFByCredential is prf.evalByCredential, keyed by the decoded
	// credential ID as a string; nil: absent.
	PRFByCredential map[string]prfValues
	PRF             bool // prf present
	// HMACGetSecret is hmacGetSecret (CTAP 2.1 §12.5, the salts as
	// given); nil: absent. prf takes precedence, both being hmac-secret.
	HMACGetSecret *HMACSecretInput
}

// credProtectPolicies maps CredentialProtectionPolicy strings (CTAP 2.1
// §12.1) to levels.
var credProtectPolicies = map[string]CredProtect{
	"userVerificationOptional":                     CredProtectUVOptional,
	"userVerificationOptionalWithCredentialIDList": CredProtectUVOptionalWithCredentialIDList,
	"userVerificationRequired":                     CredProtectUVRequired,
}

// boolean decodes an optional boolean member.
func (p *optionsParser) boolean(o jsonObject, parent, name string) bool {
	raw := o[name]
	if !present(raw) {
		return false
	}
	var b bool
	if err := json.Unmarshal(raw, &b); err != nil {
		p.fail(join(parent, name), "not a JSON boolean")
	}
	return b
}

// prfValues decodes AuthenticationExtensionsPRFValuesJSON: first required,
// second optional, both Base64URLString.
func (p *optionsParser) prfValues(field string, raw json.RawMessage) prfValues {
	o := p.object(field, raw)
	if o == nil {
		return prfValues{}
	}
	return prfValues{First: p.bytes(o, field, "first", false), Second: p.bytes(o, field, "second", true)}
}

// creationExtensions reads the "extensions" member of creation options.
func (p *optionsParser) creationExtensions(o jsonObject) creationExtensions {
	var x creationExtensions
	raw := o["extensions"]
	if !present(raw) {
		return x
	}
	const f = "extensions"
	e := p.object(f, raw)
	if e == nil {
		return x
	}
	x.CredProps = p.boolean(e, f, "credProps")
	if s, ok := p.str(e, f, "credentialProtectionPolicy", true); ok {
		// An unknown policy is ignored, as an unknown enumeration value
		// is (WebAuthn L3 §2.1.1).
		x.CredProtect = credProtectPolicies[s]
	}
	x.EnforceCredProtect = p.boolean(e, f, "enforceCredentialProtectionPolicy")
	x.CredBlob = p.bytes(e, f, "credBlob", true)
	x.MinPINLength = p.boolean(e, f, "minPinLength")
	x.HMACCreateSecret = p.boolean(e, f, "hmacCreateSecret")
	if raw := e["prf"]; present(raw) {
		// prf.eval at creation needs hmac-secret-mc (CTAP 2.2), which
		// CTAP 2.1 keys lack: it is read for its syntax and not used,
		// and no results are returned, as WebAuthn L3 §10.1.4 allows.
		prf := p.object(f+".prf", raw)
		if prf != nil && present(prf["eval"]) {
			p.prfValues(f+".prf.eval", prf["eval"])
		}
		x.PRF = true
	}
	return x
}

// requestExtensions reads the "extensions" member of request options and
// checks prf.evalByCredential against allowCredentials (WebAuthn L3
// §10.1.4, authentication step 1: NotSupportedError without
// allowCredentials, SyntaxError for a key that is not one of them).
func (p *optionsParser) requestExtensions(o jsonObject, allow []descriptor) requestExtensions {
	var x requestExtensions
	raw := o["extensions"]
	if !present(raw) {
		return x
	}
	const f = "extensions"
	e := p.object(f, raw)
	if e == nil {
		return x
	}
	x.GetCredBlob = p.boolean(e, f, "getCredBlob")
	if raw := e["hmacGetSecret"]; present(raw) {
		field := f + ".hmacGetSecret"
		if h := p.object(field, raw); h != nil {
			x.HMACGetSecret = &HMACSecretInput{Salt1: p.bytes(h, field, "salt1", false), Salt2: p.bytes(h, field, "salt2", true)}
			if p.err == nil && (len(x.HMACGetSecret.Salt1) != hmacSaltLen || x.HMACGetSecret.Salt2 != nil && len(x.HMACGetSecret.Salt2) != hmacSaltLen) {
				p.fail(field, "salts must be 32 bytes")
			}
		}
	}
	raw = e["prf"]
	if !present(raw) {
		return x
	}
	x.PRF = true
	prf := p.object(f+".prf", raw)
	if prf == nil {
		return x
	}
	if present(prf["eval"]) {
		v := p.prfValues(f+".prf.eval", prf["eval"])
		x.PRFEval = &v
	}
	if raw := prf["evalByCredential"]; present(raw) {
		field := f + ".prf.evalByCredential"
		by := p.object(field, raw)
		if len(by) > 0 && len(allow) == 0 {
			p.fail(field, "given without allowCredentials: %w", ErrNotSupported)
			return x
		}
		x.PRFByCredential = map[string]prfValues{}
		for k, v := range by {
			id, err := decodeBase64URL(k)
			if err != nil || len(id) == 0 || !allowed(allow, id) {
				p.fail(field, "key %q is not the ID of a credential in allowCredentials", k)
				return x
			}
			x.PRFByCredential[string(id)] = p.prfValues(field+"."+k, v)
		}
	}
	return x
}

func allowed(allow []descriptor, id []byte) bool {
	for _, d := range allow {
		if d.Type == "public-key" && bytes.Equal(d.ID, id) {
			return true
		}
	}
	return false
}

// prfSalt maps a PRF input onto an hmac-secret salt: SHA-256("WebAuthn
// PRF" || 0x00 || input) (WebAuthn L3 §10.1.4), so that inputs chosen by a
// website never collide with salts other users of hmac-secret choose.
func prfSalt(input []byte) []byte {
	h := sha256.New()
	h.Write([]byte("WebAuthn PRF"))
	h.Write([]byte{0})
	h.Write(input)
	return h.Sum(nil)
}

// hmacInput returns the hmac-secret salts for PRF values.
func (v *prfValues) hmacInput() *HMACSecretInput {
	in := &HMACSecretInput{Salt1: prfSalt(v.First)}
	if v.Second != nil {
		in.Salt2 = prfSalt(v.Second)
	}
	return in
}

// apply sets the CTAP extension inputs of a makeCredential request.
func (x *creationExtensions) apply(req *MakeCredentialRequest) {
	req.Extensions = MakeCredentialExtensions{
		HMACSecret:         x.PRF || x.HMACCreateSecret,
		CredProtect:        x.CredProtect,
		EnforceCredProtect: x.EnforceCredProtect,
		CredBlob:           x.CredBlob,
		MinPINLength:       x.MinPINLength,
	}
	if len(x.CredBlob) == 0 {
		req.Extensions.CredBlob = nil
	}
}

// results builds clientExtensionResults for a registration (WebAuthn L3
// §5.1.3 and §10).
func (x *creationExtensions) results(att *Attestation, discoverable bool) map[string]any {
	out := map[string]any{}
	if x.CredProps {
		// §10.1.3: rk is the client's knowledge of whether the
		// credential is discoverable, which it asked for itself.
		out["credProps"] = map[string]any{"rk": discoverable}
	}
	if x.CredBlob != nil {
		out["credBlob"] = att.Extensions.CredBlobStored
	}
	if x.HMACCreateSecret {
		out["hmacCreateSecret"] = att.Extensions.HMACSecret
	}
	if x.PRF {
		out["prf"] = map[string]any{"enabled": att.Extensions.HMACSecret}
	}
	return out
}

// prfFor picks the PRF values for a credential: its own from
// evalByCredential, else eval (WebAuthn L3 §10.1.4). It returns nil when
// there are none.
func (x *requestExtensions) prfFor(id []byte) *prfValues {
	if v, ok := x.PRFByCredential[string(id)]; ok && id != nil {
		return &v
	}
	return x.PRFEval
}

// results builds clientExtensionResults for a sign-in.
func (x *requestExtensions) results(a *Assertion) map[string]any {
	out := map[string]any{}
	if x.GetCredBlob {
		out["getCredBlob"] = b64(a.Extensions.CredBlob)
	}
	if x.PRF {
		prf := map[string]any{}
		if h := a.Extensions.HMACSecret; h != nil {
			r := map[string]any{"first": b64(h.Output1)}
			if h.Output2 != nil {
				r["second"] = b64(h.Output2)
			}
			prf["results"] = r
		}
		out["prf"] = prf
	}
	if x.HMACGetSecret != nil && !x.PRF {
		if h := a.Extensions.HMACSecret; h != nil {
			r := map[string]any{"output1": b64(h.Output1)}
			if h.Output2 != nil {
				r["output2"] = b64(h.Output2)
			}
			out["hmacGetSecret"] = r
		}
	}
	return out
}

// credProtectError reports an enforced policy the key cannot honour, as
// the ceremony's NotAllowedError (CTAP 2.1 §12.1).
func credProtectError(info *Info, x *creationExtensions) error {
	if x.EnforceCredProtect && x.CredProtect > CredProtectUVOptional && !supportsExtension(info, "credProtect") {
		return &CeremonyError{Err: fmt.Errorf("credentialProtectionPolicy %v enforced but the key does not support credProtect: %w", x.CredProtect, ErrNotSupported)}
	}
	return nil
}

// prepareExtensions sets the CTAP extension inputs of a getAssertion
// request. For prf with evalByCredential and several allowed credentials
// it first asks the key silently (up=false, as browsers do) which of them
// it holds, so that the salts are that credential's; a key that answers
// nothing gets prf.eval.
func (c *WebAuthnClient) prepareExtensions(ctx context.Context, req *GetAssertionRequest, x *requestExtensions) error {
	req.Extensions.CredBlob = x.GetCredBlob
	if !x.PRF {
		req.Extensions.HMACSecret = x.HMACGetSecret
		return nil
	}
	var id []byte
	if len(x.PRFByCredential) > 0 {
		switch {
		case len(req.AllowList) == 1:
			id = req.AllowList[0]
		default:
			probe := &GetAssertionRequest{RPID: req.RPID, ClientDataHash: req.ClientDataHash, AllowList: req.AllowList, NoUserPresence: true}
			as, err := c.Authenticator.GetAssertion(ctx, probe)
			if ctx.Err() != nil {
				return err
			}
			if err == nil && len(as) > 0 {
				id = as[0].CredentialID
				req.AllowList = [][]byte{id}
			}
		}
	}
	if v := x.prfFor(id); v != nil {
		req.Extensions.HMACSecret = v.hmacInput()
	}
	return nil
}
