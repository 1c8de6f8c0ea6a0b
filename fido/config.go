package fido

import (
	"context"
	"fmt"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/pinuv"
)

// Configurator changes a key's settings with authenticatorConfig (CTAP 2.1
// §6.11). [Device] implements it, and so may other backends; find out with
// a type assertion.
//
// On a key with a PIN or built-in user verification, each call needs a
// pinUvAuthToken with the authenticatorConfig permission, so it may return
// the PIN errors of [CredentialManager]. A key without authenticatorConfig
// gives ErrNotSupported. enableEnterpriseAttestation (§6.11.1) is not
// offered: it only matters to managed fleets with vendor-provisioned
// enterprise attestation, which this library does not request.
type Configurator interface {
	// ToggleAlwaysUV turns the key's alwaysUv setting on or off (CTAP 2.1
	// §6.11.2): when on, every makeCredential and getAssertion needs user
	// verification. A key that cannot turn it off (a FIPS key, say)
	// answers StatusOperationDenied. Read the new value from
	// Info.Options["alwaysUv"].
	ToggleAlwaysUV(ctx context.Context) error
	// SetMinPINLength raises the key's minimum PIN length to n Unicode
	// code points (0 leaves it as it is), adds rpIDs to the relying
	// parties that may read the minimum through the minPinLength
	// extension, and with forceChange makes the key refuse its current
	// PIN until it is changed (CTAP 2.1 §6.11.4). Lowering the minimum
	// gives StatusPINPolicyViolation; a key with a PIN shorter than n is
	// forced to change it anyway.
	SetMinPINLength(ctx context.Context, n int, rpIDs []string, forceChange bool) error
}

var _ Configurator = (*Device)(nil)

// config runs one authenticatorConfig subcommand, authenticated when the
// key is protected by a PIN or built-in verification (CTAP 2.1 §6.11: an
// unprotected key takes it without pinUvAuthParam). params is nil or a
// CBOR map.
func (d *Device) config(ctx context.Context, info *Info, sub ctap.ConfigSubCommand, params any) error {
	var tok *pinToken
	if protected(info) {
		var err error
		if tok, err = d.token(ctx, info, tokenRequest{op: "config", perms: pinuv.PermAuthenticatorConfig}); err != nil {
			return err
		}
		defer tok.wipe()
	}
	return d.configWithToken(ctx, info, sub, params, tok)
}

// configWithToken sends the subcommand, authenticated with tok unless it
// is nil.
func (d *Device) configWithToken(ctx context.Context, info *Info, sub ctap.ConfigSubCommand, params any, tok *pinToken) error {
	r := &ctap.ConfigRequest{SubCommand: sub}
	if err := r.SetParams(params); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidRequest, err)
	}
	if tok != nil {
		r.PinUvAuthProtocol = tok.proto.Version()
		r.PinUvAuthParam = tok.auth(r.AuthMessage())
	}
	_, err := d.call(ctx, ctap.CmdConfig, r, nil)
	d.getInfo = nil // alwaysUv, minPINLength or forcePINChange changed
	return err
}

func (d *Device) configInfo(ctx context.Context, op, option string) (*Info, error) {
	info, err := d.cborInfo(ctx, op)
	if err != nil {
		return nil, err
	}
	if !info.opt(ctap.OptAuthnrCfg) {
		return nil, fmt.Errorf("fido: %s: the key has no authenticatorConfig: %w", op, ErrNotSupported)
	}
	if option != "" {
		if _, ok := info.Option(option); !ok {
			return nil, fmt.Errorf("fido: %s: the key does not support it: %w", op, ErrNotSupported)
		}
	}
	return info, nil
}

// ToggleAlwaysUV implements [Configurator] (CTAP 2.1 §6.11.2).
func (d *Device) ToggleAlwaysUV(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := d.opContext(ctx)
	defer cancel()
	info, err := d.configInfo(ctx, "toggleAlwaysUv", ctap.OptAlwaysUv)
	if err != nil {
		return err
	}
	return d.config(ctx, info, ctap.ConfigToggleAlwaysUv, nil)
}

// SetMinPINLength implements [Configurator] (CTAP 2.1 §6.11.4). Besides the
// errors of [Configurator], a length outside 0 to 63 or more rpIDs than
// Info.MaxRPIDsForSetMinPINLength give ErrInvalidRequest with nothing sent.
func (d *Device) SetMinPINLength(ctx context.Context, n int, rpIDs []string, forceChange bool) error {
	if n < 0 || n > pinuv.MaxPINBytes {
		return invalidRequest("minimum PIN length %d, want 0 to %d", n, pinuv.MaxPINBytes)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ctx, cancel := d.opContext(ctx)
	defer cancel()
	info, err := d.configInfo(ctx, "setMinPINLength", ctap.OptSetMinPINLength)
	if err != nil {
		return err
	}
	if len(rpIDs) > info.MaxRPIDsForSetMinPINLength {
		return invalidRequest("%d RP IDs, the key takes at most %d", len(rpIDs), info.MaxRPIDsForSetMinPINLength)
	}
	var params *ctap.SetMinPINLengthParams
	if n != 0 || len(rpIDs) > 0 || forceChange {
		params = &ctap.SetMinPINLengthParams{NewMinPINLength: uint64(n), MinPinLengthRPIDs: rpIDs, ForceChangePin: forceChange}
	}
	return d.config(ctx, info, ctap.ConfigSetMinPINLength, params)
}
