//go:build cgo

package libfido2

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	gofido2 "github.com/keys-pub/go-libfido2"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/internal/ctap"
)

// TestTranslate checks that every go-libfido2 error comes out as the value
// package fido uses for the same condition, however go-libfido2 wrapped
// it.
func TestTranslate(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"PIN invalid", gofido2.ErrPinInvalid, fido.StatusPINInvalid},
		{"PIN auth blocked", gofido2.ErrPinAuthBlocked, fido.StatusPINAuthBlocked},
		{"PIN not set", gofido2.ErrPinNotSet, fido.StatusPINNotSet},
		{"PIN required", gofido2.ErrPinRequired, fido.StatusPUATRequired},
		{"PIN policy", gofido2.ErrPinPolicyViolation, fido.StatusPINPolicyViolation},
		{"no credentials", gofido2.ErrNoCredentials, fido.StatusNoCredentials},
		{"operation denied", gofido2.ErrOperationDenied, fido.StatusOperationDenied},
		{"not allowed", gofido2.ErrNotAllowed, fido.StatusNotAllowed},
		{"keepalive cancel", gofido2.ErrKeepaliveCancel, fido.StatusKeepaliveCancel},
		{"unsupported option", gofido2.ErrUnsupportedOption, fido.StatusUnsupportedOption},
		{"invalid option", gofido2.ErrInvalidOption, fido.StatusInvalidOption},
		{"action timeout", gofido2.ErrActionTimeout, ctap.StatusActionTimeout},
		{"UP required", gofido2.ErrUPRequired, fido.StatusUPRequired},
		{"invalid command", gofido2.ErrInvalidCommand, fido.StatusInvalidCommand},
		{"invalid length", gofido2.ErrInvalidLength, fido.StatusInvalidLength},
		{"missing parameter", gofido2.ErrMissingParameter, fido.StatusMissingParameter},
		{"invalid credential", gofido2.ErrInvalidCredential, fido.StatusInvalidCredential},
		{"other", gofido2.ErrOther, fido.StatusOther},
		{"code: credential excluded", gofido2.Error{Code: 0x19}, fido.StatusCredentialExcluded},
		{"code: PIN blocked", gofido2.Error{Code: 0x32}, fido.StatusPINBlocked},
		{"code: UV blocked", gofido2.Error{Code: 0x3c}, fido.StatusUVBlocked},
		{"code: unsupported algorithm", gofido2.Error{Code: 0x26}, fido.StatusUnsupportedAlgorithm},
		{"TX", gofido2.ErrTX, fido.ErrDeviceGone},
		{"RX", gofido2.ErrRX, fido.ErrDeviceGone},
		{"RX not CBOR", gofido2.ErrRXNotCBOR, fido.ErrInvalidResponse},
		{"RX invalid CBOR", gofido2.ErrRXInvalidCBOR, fido.ErrInvalidResponse},
		{"invalid argument", gofido2.ErrInvalidArgument, fido.ErrInvalidRequest},
		{"U2F needs a touch", gofido2.ErrUserPresenceRequired, fido.StatusUPRequired},
		{"U2F-only key", gofido2.ErrNotFIDO2, fido.ErrNotSupported},
		{"cannot open", fmt.Errorf("failed to open: %w", gofido2.ErrInternal), errCannotOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// go-libfido2 wraps its values with github.com/pkg/errors,
			// which unwraps like %w.
			wrapped := tt.err
			if !strings.HasPrefix(tt.err.Error(), "failed to") {
				wrapped = fmt.Errorf("failed to do it: %w", tt.err)
			}
			got := translate(context.Background(), "op", wrapped)
			if !errors.Is(got, tt.want) {
				t.Errorf("translate(%v) = %v, want a match for %v", wrapped, got, tt.want)
			}
			if errors.Is(got, context.Canceled) {
				t.Errorf("translate(%v) = %v matches context.Canceled", wrapped, got)
			}
		})
	}

	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		got := translate(ctx, "makeCredential", gofido2.ErrKeepaliveCancel)
		if !errors.Is(got, context.Canceled) || !errors.Is(got, fido.StatusKeepaliveCancel) {
			t.Errorf("translate under a cancelled context = %v, want context.Canceled and StatusKeepaliveCancel", got)
		}
	})
	t.Run("internal, not opening", func(t *testing.T) {
		got := translate(context.Background(), "op", fmt.Errorf("failed to make credential: %w", gofido2.ErrInternal))
		if errors.Is(got, errCannotOpen) {
			t.Errorf("translate = %v, an internal error after opening is not errCannotOpen", got)
		}
	})
}

func TestStatement(t *testing.T) {
	sig := []byte{1, 2, 3}
	tests := []struct {
		format string
		alg    fido.Algorithm
		cert   []byte
		want   map[string]any
	}{
		{"none", fido.ES256, nil, map[string]any{}},
		{"packed", fido.EdDSA, nil, map[string]any{"alg": int64(fido.EdDSA), "sig": sig}},
		{"tpm", fido.ES256, []byte{9}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			got, err := statement(tt.format, tt.alg, sig, tt.cert)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == nil {
				if got != nil {
					t.Errorf("statement(%s) = %x, want nil", tt.format, got)
				}
				return
			}
			want, err := ctap.Marshal(tt.want)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != string(want) {
				t.Errorf("statement(%s) = %x, want %x", tt.format, got, want)
			}
		})
	}
	if _, err := statement("fido-u2f", fido.ES256, sig, nil); err == nil {
		t.Error("fido-u2f statement without a certificate")
	}
	if _, err := statement("packed", fido.ES256, sig, []byte("not DER")); err == nil {
		t.Error("packed statement with a malformed certificate")
	}
}
