package fido

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/fxamacker/cbor/v2"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/pinuv"
)

// This file turns the typed extension inputs of MakeCredentialRequest and
// GetAssertionRequest into the CTAP extension maps (CTAP 2.1 §12), and the
// key's outputs back into typed fields, doing the client's part of
// hmac-secret (key agreement, salt encryption, output decryption).

// hmacSaltLen is the length of an hmac-secret salt and output (CTAP 2.1
// §12.5).
const hmacSaltLen = 32

// largeBlobKeyLen is the length of a largeBlobKey (CTAP 2.1 §12.3).
const largeBlobKeyLen = 32

// supportsExtension reports whether the key lists a CTAP extension in
// getInfo (CTAP 2.1 §6.4).
func supportsExtension(info *Info, id string) bool { return slices.Contains(info.Extensions, id) }

// checkMakeCredentialExtensions rejects inputs no key could accept, before
// anything is sent.
func checkMakeCredentialExtensions(req *MakeCredentialRequest) error {
	x := &req.Extensions
	if x.CredProtect < 0 || x.CredProtect > CredProtectUVRequired {
		return invalidRequest("Extensions.CredProtect is %d, want 0 to 3", int(x.CredProtect))
	}
	if x.LargeBlobKey && !req.Discoverable {
		// CTAP 2.1 §12.3: large blobs belong to discoverable credentials.
		return invalidRequest("Extensions.LargeBlobKey needs a Discoverable credential")
	}
	if x.CredBlob != nil && len(x.CredBlob) == 0 {
		return invalidRequest("Extensions.CredBlob is empty; use nil for none")
	}
	return nil
}

// makeCredentialExtensions builds the extensions map of makeCredential.
// Extensions the key does not list are left out, as a browser does, except
// an enforced credProtect, which fails (CTAP 2.1 §12.1,
// enforceCredentialProtectionPolicy).
func makeCredentialExtensions(info *Info, req *MakeCredentialRequest) (map[string]cbor.RawMessage, error) {
	x := &req.Extensions
	var e ctap.MakeCredentialExtensions
	if x.HMACSecret && supportsExtension(info, ctap.ExtHMACSecret) {
		e.HMACSecret = true
	}
	if x.CredProtect != 0 {
		switch {
		case supportsExtension(info, ctap.ExtCredProtect):
			e.CredProtect = uint64(x.CredProtect)
		case x.EnforceCredProtect && x.CredProtect > CredProtectUVOptional:
			return nil, fmt.Errorf("fido: makeCredential: credProtect %v enforced but the key does not support credProtect: %w", x.CredProtect, ErrNotSupported)
		}
	}
	if x.CredBlob != nil && supportsExtension(info, ctap.ExtCredBlob) {
		e.CredBlob = x.CredBlob
	}
	if x.MinPINLength && supportsExtension(info, ctap.ExtMinPinLength) {
		e.MinPinLength = true
	}
	if x.LargeBlobKey && supportsExtension(info, ctap.ExtLargeBlobKey) {
		e.LargeBlobKey = true
	}
	return e.Map(), nil
}

// attestationExtensions fills att.Extensions from the authenticator data
// and the response, and checks an enforced credProtect was honoured.
func attestationExtensions(att *Attestation, req *MakeCredentialRequest, r *ctap.MakeCredentialResponse) error {
	ad, err := ctap.ParseAuthData(att.AuthData)
	if err != nil {
		return &ResponseError{Op: "makeCredential", Err: err}
	}
	o, err := ctap.DecodeMakeCredentialExtensionOutputs(ad.Extensions)
	if err != nil {
		return &ResponseError{Op: "makeCredential", Err: err}
	}
	att.Extensions = AttestationExtensions{
		HMACSecret:     o.HMACSecret,
		CredProtect:    CredProtect(min(o.CredProtect, 255)),
		CredBlobStored: o.CredBlob != nil && *o.CredBlob,
		MinPINLength:   int(min(o.MinPinLength, 1<<16)),
	}
	if r.LargeBlobKey != nil {
		if len(r.LargeBlobKey) != largeBlobKeyLen {
			return &ResponseError{Op: "makeCredential", Err: fmt.Errorf("largeBlobKey of %d bytes", len(r.LargeBlobKey))}
		}
		att.Extensions.LargeBlobKey = r.LargeBlobKey
	}
	x := &req.Extensions
	if x.EnforceCredProtect && x.CredProtect > CredProtectUVOptional && att.Extensions.CredProtect < x.CredProtect {
		// The credential exists, but not with the protection the caller
		// required; saying so is all a client can do.
		return fmt.Errorf("fido: makeCredential: credProtect %v enforced but the key applied %v: %w", x.CredProtect, att.Extensions.CredProtect, ErrNotSupported)
	}
	return nil
}

// checkGetAssertionExtensions rejects malformed hmac-secret salts before
// anything is sent.
func checkGetAssertionExtensions(req *GetAssertionRequest) error {
	h := req.Extensions.HMACSecret
	if h == nil {
		return nil
	}
	if len(h.Salt1) != hmacSaltLen {
		return invalidRequest("Extensions.HMACSecret.Salt1 is %d bytes, want 32", len(h.Salt1))
	}
	if h.Salt2 != nil && len(h.Salt2) != hmacSaltLen {
		return invalidRequest("Extensions.HMACSecret.Salt2 is %d bytes, want 32 or none", len(h.Salt2))
	}
	return nil
}

// hmacSecretState is the client's side of one hmac-secret exchange: the
// shared secret that encrypted the salts and will decrypt the outputs.
type hmacSecretState struct {
	proto  pinuv.Protocol
	shared []byte
	salts  int // 1 or 2
}

// wipe zeroes the shared secret; it is safe on nil.
func (s *hmacSecretState) wipe() {
	if s != nil {
		clear(s.shared)
	}
}

// getAssertionExtensions builds the extensions map of getAssertion. For
// hmac-secret it agrees a shared secret with the key and sends the salts
// encrypted under it, with saltAuth (CTAP 2.1 §12.5). Extensions the key
// does not list are left out.
func (d *Device) getAssertionExtensions(ctx context.Context, info *Info, req *GetAssertionRequest) (map[string]cbor.RawMessage, *hmacSecretState, error) {
	x := &req.Extensions
	var e ctap.GetAssertionExtensions
	var hs *hmacSecretState
	if x.HMACSecret != nil && supportsExtension(info, ctap.ExtHMACSecret) {
		proto, err := d.pinProtocol(info)
		if err != nil {
			return nil, nil, err
		}
		platformKey, shared, err := d.keyAgreement(ctx, proto)
		if err != nil {
			return nil, nil, err
		}
		hs = &hmacSecretState{proto: proto, shared: shared, salts: 1}
		salts := make([]byte, 0, 2*hmacSaltLen)
		salts = append(salts, x.HMACSecret.Salt1...)
		if x.HMACSecret.Salt2 != nil {
			salts = append(salts, x.HMACSecret.Salt2...)
			hs.salts = 2
		}
		saltEnc, err := proto.Encrypt(shared, salts)
		if err != nil {
			hs.wipe()
			return nil, nil, fmt.Errorf("fido: getAssertion: encrypting hmac-secret salts: %w", err)
		}
		in := &ctap.HMACSecretInput{
			KeyAgreement: platformKey,
			SaltEnc:      saltEnc,
			SaltAuth:     proto.Authenticate(shared, saltEnc),
		}
		// Absent means protocol one (CTAP 2.1 §12.5), and CTAP 2.0 keys
		// know no other, so the field is sent only for protocol two.
		if proto.Version() != pinuv.VersionOne {
			in.PinUvAuthProtocol = proto.Version()
		}
		e.HMACSecret = in
	}
	if x.CredBlob && supportsExtension(info, ctap.ExtCredBlob) {
		e.CredBlob = true
	}
	if x.LargeBlobKey && supportsExtension(info, ctap.ExtLargeBlobKey) {
		e.LargeBlobKey = true
	}
	return e.Map(), hs, nil
}

// assertionExtensions fills a.Extensions from one getAssertion or
// getNextAssertion response.
func assertionExtensions(a *Assertion, req *GetAssertionRequest, ad *ctap.AuthData, r *ctap.GetAssertionResponse, hs *hmacSecretState) error {
	o, err := ctap.DecodeGetAssertionExtensionOutputs(ad.Extensions)
	if err != nil {
		return &ResponseError{Op: "getAssertion", Err: err}
	}
	if o.HMACSecret != nil {
		if hs == nil {
			return &ResponseError{Op: "getAssertion", Err: errors.New("hmac-secret output without a request for it")}
		}
		out, err := hs.decrypt(o.HMACSecret)
		if err != nil {
			return err
		}
		a.Extensions.HMACSecret = out
	}
	if req.Extensions.CredBlob && o.CredBlob != nil {
		a.Extensions.CredBlob = o.CredBlob
	}
	if r.LargeBlobKey != nil {
		if len(r.LargeBlobKey) != largeBlobKeyLen {
			return &ResponseError{Op: "getAssertion", Err: fmt.Errorf("largeBlobKey of %d bytes", len(r.LargeBlobKey))}
		}
		a.Extensions.LargeBlobKey = r.LargeBlobKey
	}
	return nil
}

// decrypt recovers the hmac-secret outputs (CTAP 2.1 §12.5): one 32-byte
// output per salt, encrypted under the shared secret.
func (s *hmacSecretState) decrypt(enc []byte) (*HMACSecretOutput, error) {
	plain, err := s.proto.Decrypt(s.shared, enc)
	if err != nil {
		return nil, &ResponseError{Op: "getAssertion", Err: fmt.Errorf("hmac-secret output: %w", err)}
	}
	if len(plain) != s.salts*hmacSaltLen {
		return nil, &ResponseError{Op: "getAssertion", Err: fmt.Errorf("hmac-secret output of %d bytes for %d salts", len(plain), s.salts)}
	}
	out := &HMACSecretOutput{Output1: plain[:hmacSaltLen]}
	if s.salts == 2 {
		out.Output2 = plain[hmacSaltLen:]
	}
	return out, nil
}
