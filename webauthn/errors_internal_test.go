package webauthn

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
)

// TestClassify maps go-webauthn's errors, which are copies of its
// sentinels and cannot be matched by identity, onto ours.
func TestClassify(t *testing.T) {
	tests := []struct {
		err  error
		want error
	}{
		{protocol.ErrAssertionSignature.WithDetails("Error validating the assertion signature: x"), ErrSignature},
		{protocol.ErrVerification.WithDetails("Error validating ceremony type"), ErrWrongType},
		{protocol.ErrVerification.WithDetails("Error validating challenge"), ErrChallengeMismatch},
		{protocol.ErrVerification.WithDetails("Error validating origin"), ErrOrigin},
		{protocol.ErrVerification.WithDetails("Error validating top origin"), ErrOrigin},
		{protocol.ErrVerification.WithInfo("RP Hash mismatch. Expected 00 and Received 01"), ErrRPIDHash},
		{protocol.ErrVerification.WithInfo("User presence required but flag not set by authenticator"), ErrUserPresence},
		{protocol.ErrVerification.WithInfo("User verification required but flag not set by authenticator"), ErrUserVerification},
		{protocol.ErrBadRequest.WithDetails("Backup State Flag is true but Backup Eligible flag is false which is invalid"), ErrBackupFlags},
		{protocol.ErrBadRequest.WithDetails("User handle and User ID do not match"), ErrUserHandle},
		{protocol.ErrBadRequest.WithDetails("Session has Expired"), ErrExpired},
		{protocol.ErrBadRequest.WithDetails("Parse error for Registration"), ErrMalformedResponse},
		{protocol.ErrAttestationFormat.WithInfo("Credential public key algorithm not supported"), ErrAlgorithm},
		{protocol.ErrInvalidAttestation.WithDetails("Signature validation error"), ErrAttestationInvalid},
		{protocol.ErrAttestationCertificate.WithDetails("Attestation Certificate Country Code is invalid"), ErrAttestationInvalid},
		{protocol.ErrMetadata.WithInfo("no entry"), ErrAttestationUntrusted},
		{protocol.ErrPolicyRestriction.WithInfo("Credential is Backup Eligible"), ErrAttestationUntrusted},
		{protocol.ErrParsingData.WithDetails("Error parsing attestation response"), ErrMalformedResponse},
		{protocol.ErrUnsupportedAlgorithm, ErrAlgorithm},
		{fmt.Errorf("wrapped: %w", protocol.ErrAssertionSignature.WithDetails("x")), ErrSignature},
		{protocol.ErrNotImplemented, ErrVerification},
		{errors.New("not from go-webauthn"), ErrVerification},
	}
	for _, tt := range tests {
		got, detail := classify(tt.err, ErrVerification)
		if got != tt.want {
			t.Errorf("classify(%q) = %v, want %v", tt.err, got, tt.want)
		}
		if detail == "" {
			t.Errorf("classify(%q) lost the detail", tt.err)
		}
	}
}

func TestErrorIdentity(t *testing.T) {
	ve := reject(CeremonyLogin, "§7.2 step 21", ErrSignature, "")
	wrapped := fmt.Errorf("handling: %w", ve)
	for _, target := range []error{ErrSignature, ErrVerification} {
		if !errors.Is(wrapped, target) {
			t.Errorf("%v does not match %v", wrapped, target)
		}
	}
	if errors.Is(wrapped, ErrOrigin) {
		t.Error("a signature error matches ErrOrigin")
	}
	for _, c := range []struct{ err, parent error }{
		{ErrCredentialExists, ErrExists}, {ErrUserExists, ErrExists},
		{ErrUnknownCredential, ErrNotFound}, {ErrUnknownUser, ErrNotFound}, {ErrChallengeUnknown, ErrNotFound},
	} {
		if !errors.Is(c.err, c.parent) {
			t.Errorf("%v does not match %v", c.err, c.parent)
		}
	}
	if errors.Is(ErrUnknownUser, ErrUnknownCredential) || errors.Is(ErrNotFound, ErrUnknownUser) {
		t.Error("sentinels sharing a parent match each other")
	}
	if got := ve.Error(); got != "webauthn: login: §7.2 step 21: bad signature" {
		t.Errorf("Error() = %q", got)
	}
}

func TestErrorCodesDistinct(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range errorCodes {
		if seen[c.code] {
			t.Errorf("code %q twice", c.code)
		}
		seen[c.code] = true
		if got := ErrorCode(reject(CeremonyRegistration, "", c.err, "")); got != c.code {
			t.Errorf("ErrorCode(%v) = %q, want %q", c.err, got, c.code)
		}
	}
	for _, e := range httpErrors {
		if seen[e.code] {
			t.Errorf("code %q twice", e.code)
		}
		seen[e.code] = true
	}
	if got := ErrorCode(errors.New("disk on fire")); got != "internal" {
		t.Errorf("ErrorCode(other) = %q", got)
	}
	if _, status := httpStatus(ErrNotFound); status != 500 {
		t.Errorf("a raw store ErrNotFound is status %d; the relying party must map it", status)
	}
}

// TestEveryCodeHasMessage: every code the handler can answer with has a
// fixed message (the body never falls back to the error's text) and the
// new ones their status.
func TestEveryCodeHasMessage(t *testing.T) {
	var codes []string
	for _, c := range errorCodes {
		codes = append(codes, c.code)
	}
	for _, e := range httpErrors {
		codes = append(codes, e.code)
	}
	codes = append(codes, "internal")
	for _, code := range codes {
		if codeMessage[code] == "" {
			t.Errorf("code %q has no message", code)
		}
	}
	for code, want := range map[string]int{
		"too_many_ceremonies":      http.StatusTooManyRequests,
		"credential_clone_warning": http.StatusForbidden,
		"cross_origin":             http.StatusForbidden,
	} {
		found := codeStatus[code]
		for _, e := range httpErrors {
			if e.code == code {
				found = e.status
			}
		}
		if found != want {
			t.Errorf("code %q has status %d, want %d", code, found, want)
		}
	}
}
