package webauthn

import (
	"errors"
	"fmt"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
)

// sentinel is an error value that also matches a broader one, so that
// errors.Is(ErrCredentialExists, ErrExists) holds. Sentinels are compared
// by identity and never copied.
type sentinel struct {
	msg    string
	parent error
}

func (e *sentinel) Error() string { return e.msg }

// Is reports whether target is the broader error this one refines.
func (e *sentinel) Is(target error) bool { return e.parent != nil && target == e.parent }

func newSentinel(msg string, parent error) error { return &sentinel{msg: msg, parent: parent} }

// Errors of the relying party. Each names one reason a request fails, so
// callers (and tests) tell them apart with errors.Is. A ceremony that
// rejects a response returns a [*VerificationError] wrapping one of them;
// [ErrorCode] gives the stable code the HTTP handler reports for each.
//
// Some failures reuse the [Store] errors, which mean the same thing here:
// [ErrExpired] (the challenge's time passed), [ErrInactive] (the key is
// deactivated), [ErrLimit] (the user holds [Config.MaxCredentials] keys)
// and [ErrTooManyCeremonies] (a Begin found [Config.MaxChallengesPerUser]
// or [Config.MaxChallenges] ceremonies under way).
var (
	// ErrVerification matches every [*VerificationError]: the response
	// was rejected. On its own (no more specific error in the chain) it
	// means a check of go-webauthn failed that this package does not
	// classify further.
	ErrVerification = errors.New("webauthn: response rejected")

	// ErrInvalidRequest: an argument is empty, too long or not valid
	// UTF-8, such as a key name, a user name or a user ID.
	ErrInvalidRequest = errors.New("webauthn: invalid request")
	// ErrMalformedResponse: the credential JSON, its client data or its
	// CBOR do not parse (WebAuthn L3 §7.1 steps 3 to 13, §7.2 steps 3 to
	// 9), or the credential ID is longer than 1023 bytes (§7.1 step 25).
	ErrMalformedResponse = errors.New("webauthn: malformed credential response")
	// ErrWrongType: the client data type is not webauthn.create for a
	// registration or webauthn.get for a sign-in (§7.1 step 7, §7.2 step
	// 10).
	ErrWrongType = errors.New("webauthn: client data has the wrong type")
	// ErrChallengeMismatch: the client data carries another challenge
	// than the one issued (§7.1 step 8, §7.2 step 11).
	ErrChallengeMismatch = errors.New("webauthn: challenge does not match")
	// ErrChallengeUnknown: no outstanding challenge has this ID: it was
	// never issued, was already used (every Finish call uses it up,
	// whatever the outcome), or was issued for another ceremony or user.
	// It matches ErrNotFound. An expired challenge is [ErrExpired].
	ErrChallengeUnknown = newSentinel("webauthn: challenge unknown or already used", ErrNotFound)
	// ErrOrigin: the client data names an origin not in [Config.Origins],
	// or a cross-origin (iframe) ceremony (§7.1 steps 9 to 11, §7.2 steps
	// 12 to 14).
	ErrOrigin = errors.New("webauthn: origin not allowed")
	// ErrRPIDHash: the authenticator data is scoped to another relying
	// party ID (§7.1 step 14, §7.2 step 15).
	ErrRPIDHash = errors.New("webauthn: authenticator data is for another relying party ID")
	// ErrUserPresence: the UP flag is not set (§7.1 step 15, §7.2 step
	// 16).
	ErrUserPresence = errors.New("webauthn: user presence flag not set")
	// ErrUserVerification: [Policy.UserVerification] is [Required] and
	// the UV flag is not set (§7.1 step 16, §7.2 step 17).
	ErrUserVerification = errors.New("webauthn: user verification required but not performed")
	// ErrBackupFlags: BS is set without BE, or BE differs from the one
	// recorded at registration (§7.1 step 17, §7.2 steps 18 and 19).
	ErrBackupFlags = errors.New("webauthn: inconsistent backup flags")
	// ErrBackupEligible: [Policy.HardwareBound] is set and the key says
	// the credential may be backed up (BE), so it is not bound to one
	// device (§7.1 step 18).
	ErrBackupEligible = errors.New("webauthn: credential is backup eligible, not hardware bound")
	// ErrAlgorithm: the credential's algorithm is not one of
	// [Policy.Algorithms] (§7.1 step 20).
	ErrAlgorithm = errors.New("webauthn: credential algorithm not allowed")
	// ErrAttestationInvalid: the attestation statement does not verify
	// (§7.1 steps 21 and 22).
	ErrAttestationInvalid = errors.New("webauthn: attestation statement invalid")
	// ErrAttestationUntrusted: the attestation verified but [Policy]
	// does not trust it: none or self attestation where a certificate is
	// required, a chain to no trusted root, an AAGUID not allowed, or an
	// authenticator the metadata does not list or reports as
	// compromised (§7.1 steps 23 and 24).
	ErrAttestationUntrusted = errors.New("webauthn: attestation not trusted")
	// ErrCredentialExists: the credential ID is already registered, to
	// this or another user (§7.1 step 26). It matches ErrExists.
	ErrCredentialExists = newSentinel("webauthn: credential already registered", ErrExists)
	// ErrUnknownCredential: no registered credential has this ID, the
	// sign-in used a credential not offered in allowCredentials (§7.2
	// steps 5 and 6), or a key-management call named a key the user does
	// not hold. It matches ErrNotFound.
	ErrUnknownCredential = newSentinel("webauthn: unknown credential", ErrNotFound)
	// ErrCredentialOwner: a sign-in for one user presented a credential
	// registered to another (§7.2 step 6).
	ErrCredentialOwner = errors.New("webauthn: credential belongs to another user")
	// ErrUserHandle: the response's user handle is missing from a
	// discoverable sign-in or names another user than the credential's
	// owner (§7.2 step 6).
	ErrUserHandle = errors.New("webauthn: user handle does not match")
	// ErrSignature: the assertion signature does not verify with the
	// credential's public key (§7.2 step 21).
	ErrSignature = errors.New("webauthn: bad signature")
	// ErrSignCount: the signature counter did not increase, a sign that
	// the key may have been cloned (§7.2 step 22). The credential's
	// CloneWarning is set; the sign-in is refused.
	ErrSignCount = errors.New("webauthn: signature counter did not increase (possible cloned key)")
	// ErrCloneWarning: the credential's CloneWarning is set (an earlier
	// sign-in failed with ErrSignCount) and [Policy.AllowCloneWarning] is
	// not, so the key may not sign in until an administrator has checked
	// it and called [RelyingParty.ClearCloneWarning]. It is reported only
	// for a response whose signature verified.
	ErrCloneWarning = errors.New("webauthn: credential flagged as possibly cloned")

	// ErrUnknownUser: no user has this ID or name. It matches ErrNotFound.
	ErrUnknownUser = newSentinel("webauthn: unknown user", ErrNotFound)
	// ErrUserExists: the user name is taken. It matches ErrExists.
	ErrUserExists = newSentinel("webauthn: user name taken", ErrExists)
	// ErrNoCredentials: the user has no active key to sign in with.
	ErrNoCredentials = errors.New("webauthn: user has no active credentials")
)

// VerificationError reports a registration or sign-in response that the
// relying party rejected, with the step of WebAuthn L3 §7.1 or §7.2 that
// failed. Err is one of the package's errors (such as [ErrOrigin]); the
// VerificationError unwraps to it and also matches [ErrVerification].
//
// Nothing was stored because of a rejected response, except that the
// challenge is used up (a [Config.ChallengeKey] token is used up only by
// a sign-in that succeeds) and, for [ErrSignCount], the credential's
// CloneWarning is set.
type VerificationError struct {
	// Ceremony is the ceremony the challenge was issued for.
	Ceremony Ceremony
	// Step is the failed step, such as "§7.2 step 12" (WebAuthn Level 3
	// numbering), or a short description for checks outside the spec's
	// steps.
	Step string
	// Err is the reason, one of the package's errors.
	Err error
	// Detail says more, for people and logs; it is not for matching. It
	// may include go-webauthn's developer message.
	Detail string
}

func (e *VerificationError) Error() string {
	var b strings.Builder
	b.WriteString("webauthn: ")
	if e.Ceremony != "" {
		b.WriteString(string(e.Ceremony))
		b.WriteString(": ")
	}
	if e.Step != "" {
		b.WriteString(e.Step)
		b.WriteString(": ")
	}
	b.WriteString(strings.TrimPrefix(e.Err.Error(), "webauthn: "))
	if e.Detail != "" {
		b.WriteString(": ")
		b.WriteString(e.Detail)
	}
	return b.String()
}

// Unwrap returns Err.
func (e *VerificationError) Unwrap() error { return e.Err }

// Is makes every VerificationError match ErrVerification.
func (e *VerificationError) Is(target error) bool { return target == ErrVerification }

// reject builds a VerificationError.
func reject(c Ceremony, step string, err error, format string, args ...any) *VerificationError {
	d := format
	if len(args) > 0 {
		d = fmt.Sprintf(format, args...)
	}
	return &VerificationError{Ceremony: c, Step: step, Err: err, Detail: d}
}

// errorCodes lists the codes [ErrorCode] returns, most specific first.
var errorCodes = []struct {
	err  error
	code string
}{
	{ErrInvalidRequest, "invalid_request"},
	{ErrMalformedResponse, "malformed_response"},
	{ErrWrongType, "wrong_type"},
	{ErrChallengeMismatch, "challenge_mismatch"},
	{ErrChallengeUnknown, "challenge_unknown"},
	{ErrExpired, "challenge_expired"},
	{ErrOrigin, "origin_mismatch"},
	{ErrRPIDHash, "rp_id_mismatch"},
	{ErrUserPresence, "user_presence_missing"},
	{ErrUserVerification, "user_verification_missing"},
	{ErrBackupFlags, "backup_flags_invalid"},
	{ErrBackupEligible, "backup_eligible"},
	{ErrAlgorithm, "algorithm_not_allowed"},
	{ErrAttestationInvalid, "attestation_invalid"},
	{ErrAttestationUntrusted, "attestation_untrusted"},
	{ErrCredentialExists, "credential_exists"},
	{ErrLimit, "credential_limit"},
	{ErrUnknownCredential, "credential_unknown"},
	{ErrCredentialOwner, "credential_wrong_user"},
	{ErrUserHandle, "user_handle_mismatch"},
	{ErrInactive, "credential_deactivated"},
	{ErrSignCount, "sign_count_regression"},
	{ErrCloneWarning, "credential_clone_warning"},
	{ErrTooManyCeremonies, "too_many_ceremonies"},
	{ErrSignature, "bad_signature"},
	{ErrUnknownUser, "user_unknown"},
	{ErrUserExists, "user_exists"},
	{ErrNoCredentials, "no_credentials"},
	{ErrVerification, "verification_failed"},
}

// ErrorCode returns the stable, machine-readable code for err that the
// HTTP handler puts in its error bodies ("challenge_expired",
// "bad_signature", ...; the package documentation lists them all), or
// "internal" for an error that is none of the package's, such as a
// failing store.
func ErrorCode(err error) string {
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "internal"
}

// classify maps an error of go-webauthn to our error and a detail string.
// go-webauthn's *protocol.Error values are copied by WithDetails and
// friends, so they cannot be matched by identity (its issues #365 and
// #550); we match on their Type and, where one Type covers several
// failures, on their messages. The upstream error does not become part of
// our chain: only its text survives, in the detail.
func classify(err error, fallback error) (error, string) {
	var pe *protocol.Error
	if !errors.As(err, &pe) {
		return fallback, err.Error()
	}
	detail := pe.Details
	if pe.DevInfo != "" {
		detail += " (" + pe.DevInfo + ")"
	}
	text := strings.ToLower(pe.Details + " " + pe.DevInfo)
	has := func(s ...string) bool {
		for _, x := range s {
			if strings.Contains(text, x) {
				return true
			}
		}
		return false
	}
	switch pe.Type {
	case protocol.ErrAssertionSignature.Type:
		return ErrSignature, detail
	case protocol.ErrChallengeMismatch.Type:
		return ErrChallengeMismatch, detail
	case protocol.ErrUnsupportedAlgorithm.Type, protocol.ErrUnsupportedKey.Type:
		return ErrAlgorithm, detail
	case protocol.ErrMetadata.Type, protocol.ErrPolicyRestriction.Type:
		return ErrAttestationUntrusted, detail
	case protocol.ErrParsingData.Type:
		return ErrMalformedResponse, detail
	case protocol.ErrAttestationFormat.Type, protocol.ErrAttestation.Type, protocol.ErrAttestationCertificate.Type:
		if has("algorithm not supported") {
			return ErrAlgorithm, detail
		}
		return ErrAttestationInvalid, detail
	case protocol.ErrVerification.Type, protocol.ErrBadRequest.Type, protocol.ErrAuthData.Type:
		switch {
		case has("ceremony type"):
			return ErrWrongType, detail
		case has("challenge"):
			return ErrChallengeMismatch, detail
		case has("origin"):
			return ErrOrigin, detail
		case has("rp hash"):
			return ErrRPIDHash, detail
		case has("user presence"):
			return ErrUserPresence, detail
		case has("user verification"):
			return ErrUserVerification, detail
		case has("backup"):
			return ErrBackupFlags, detail
		case has("user handle"):
			return ErrUserHandle, detail
		case has("expired"):
			return ErrExpired, detail
		case has("parse error", "unmarshal", "decod"):
			return ErrMalformedResponse, detail
		case has("attested credential id"):
			return ErrMalformedResponse, detail
		}
	}
	return fallback, detail
}
