package webauthn

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncbor"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	gowebauthn "github.com/go-webauthn/webauthn/webauthn"
)

// maxSignInRetries bounds the compare-and-set loop on a credential's sign
// count. Each retry means another sign-in with the same credential
// succeeded in between; a handful is plenty.
const maxSignInRetries = 8

// BeginRegistration starts registering a new key for an existing user
// (WebAuthn L3 §7.1 steps 1 and 2). The options exclude every key the user
// already holds (excludeCredentials), so a key cannot be registered twice.
//
// Errors: [ErrUnknownUser]; [ErrLimit] if the user already holds
// [Config.MaxCredentials] keys; [ErrTooManyCeremonies] if the user has
// [Config.MaxChallengesPerUser] ceremonies under way, or the store
// [Config.MaxChallenges].
func (rp *RelyingParty) BeginRegistration(ctx context.Context, userID []byte) (*Begin, error) {
	u, err := rp.User(ctx, userID)
	if err != nil {
		return nil, err
	}
	creds, err := rp.store.Credentials(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("webauthn: reading credentials: %w", err)
	}
	if rp.maxCreds > 0 && len(creds) >= rp.maxCreds {
		return nil, fmt.Errorf("registering a key for user %q: %w (%d)", u.Name, ErrLimit, rp.maxCreds)
	}
	return rp.beginRegistration(ctx, u, nil, creds)
}

// BeginSignup starts registering the first key of a new account, which is
// created only when [RelyingParty.FinishRegistration] succeeds: an
// abandoned sign-up leaves nothing behind and holds no name. name and
// displayName are as for [RelyingParty.CreateUser].
//
// Errors: [ErrInvalidRequest] for a bad name; [ErrUserExists] if the name
// is taken (checked again when the account is created);
// [ErrTooManyCeremonies] if the store has [Config.MaxChallenges]
// ceremonies under way.
func (rp *RelyingParty) BeginSignup(ctx context.Context, name, displayName string) (*Begin, error) {
	if err := checkName("user name", name, maxUserNameLen, false); err != nil {
		return nil, err
	}
	if err := checkName("display name", displayName, maxUserNameLen, true); err != nil {
		return nil, err
	}
	switch _, err := rp.store.UserByName(ctx, name); {
	case err == nil:
		return nil, fmt.Errorf("signing up %q: %w", name, ErrUserExists)
	case !errors.Is(err, ErrNotFound):
		return nil, fmt.Errorf("webauthn: reading user: %w", err)
	}
	id, err := rp.random(userIDLen)
	if err != nil {
		return nil, err
	}
	u := &User{ID: id, Name: name, DisplayName: displayName}
	return rp.beginRegistration(ctx, u, &signup{Name: name, DisplayName: displayName}, nil)
}

func (rp *RelyingParty) beginRegistration(ctx context.Context, u *User, su *signup, creds []*Credential) (*Begin, error) {
	challenge, err := rp.random(challengeLen)
	if err != nil {
		return nil, err
	}
	exclude := make([]protocol.CredentialDescriptor, 0, len(creds))
	for _, c := range creds {
		exclude = append(exclude, descriptor(c))
	}
	p := rp.policy
	rk := p.residentKey()
	creation, session, err := rp.w.BeginRegistration(
		&waUser{id: u.ID, name: u.Name, displayName: u.DisplayName},
		gowebauthn.WithCredentialParameters(p.algs),
		gowebauthn.WithExclusions(exclude),
		gowebauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			AuthenticatorAttachment: protocol.CrossPlatform,
			ResidentKey:             rk,
			RequireResidentKey:      protocol.ResidentKeyNotRequired(),
			UserVerification:        p.userVerification(),
		}),
		gowebauthn.WithResidentKeyRequirement(rk),
		gowebauthn.WithConveyancePreference(p.conveyance()),
		func(o *protocol.PublicKeyCredentialCreationOptions) error {
			o.Challenge = challenge
			return nil
		},
	)
	if err != nil {
		return nil, fmt.Errorf("webauthn: building creation options: %v", err)
	}
	env := &sessionEnvelope{Session: *session, Signup: su}
	return rp.saveChallenge(ctx, CeremonyRegistration, challenge, u.ID, env, creation.Response)
}

// descriptor is a PublicKeyCredentialDescriptor (WebAuthn L3 §5.8.3) for c.
func descriptor(c *Credential) protocol.CredentialDescriptor {
	d := protocol.CredentialDescriptor{Type: protocol.PublicKeyCredentialType, CredentialID: c.ID}
	for _, t := range c.Transports {
		d.Transport = append(d.Transport, protocol.AuthenticatorTransport(t))
	}
	return d
}

// FinishRegistration verifies a registration response and stores the new
// key under keyName (WebAuthn L3 §7.1 steps 3 to 29). challengeID is
// [Begin.ChallengeID]; response is the RegistrationResponseJSON
// (PublicKeyCredential.toJSON() of the created credential); keyName is
// what the person calls the key, at most 128 bytes, possibly empty. For a
// sign-up ([RelyingParty.BeginSignup]) the account is created too; the
// credential's UserID names it.
//
// The challenge is used up by the call whatever the outcome. A rejected
// response gives a [*VerificationError] wrapping the reason
// ([ErrChallengeUnknown], [ErrExpired], [ErrMalformedResponse],
// [ErrWrongType], [ErrChallengeMismatch], [ErrOrigin], [ErrRPIDHash],
// [ErrUserPresence], [ErrUserVerification], [ErrBackupFlags],
// [ErrBackupEligible], [ErrAlgorithm], [ErrAttestationInvalid],
// [ErrAttestationUntrusted], [ErrCredentialExists], [ErrLimit],
// [ErrUserExists] or [ErrUnknownUser]) and stores nothing. A bad keyName
// is [ErrInvalidRequest], reported before the challenge is touched.
func (rp *RelyingParty) FinishRegistration(ctx context.Context, challengeID string, response []byte, keyName string) (*Credential, error) {
	_, c, err := rp.finishRegistration(ctx, challengeID, response, keyName, nil)
	return c, err
}

// finishRegistration is FinishRegistration, also returning the user (new
// for a sign-up). With a non-nil bind, the challenge must have been issued
// for the account bind accepts (the HTTP handler's signed-in user).
func (rp *RelyingParty) finishRegistration(ctx context.Context, challengeID string, response []byte, keyName string,
	bind func(userID []byte, signup bool) bool) (*User, *Credential, error) {
	const c = CeremonyRegistration
	if err := checkName("key name", keyName, maxKeyNameLen, true); err != nil {
		return nil, nil, err
	}
	ch, env, err := rp.takeChallenge(ctx, challengeID, c)
	if err != nil {
		return nil, nil, err
	}
	if bind != nil && !bind(ch.UserID, env.Signup != nil) {
		return nil, nil, reject(c, "challenge", ErrChallengeUnknown, "the challenge was issued for another account")
	}
	// §7.1 step 25, ahead of its turn: go-webauthn's parsing (step 13)
	// would refuse a long credential ID as malformed authenticator data,
	// without saying why.
	if n := attestedCredentialIDLen(response); n > maxCredentialIDLen {
		return nil, nil, reject(c, "§7.1 step 25", ErrMalformedResponse, "credential ID of %d bytes is longer than %d", n, maxCredentialIDLen)
	}
	// §7.1 steps 3 to 6 and 13: parse the credential, its client data
	// and its attestation object.
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		_, detail := classify(err, ErrMalformedResponse)
		return nil, nil, reject(c, "§7.1 steps 3 to 13", ErrMalformedResponse, "%s", detail)
	}
	var u *User
	if env.Signup != nil {
		u = &User{ID: ch.UserID, Name: env.Signup.Name, DisplayName: env.Signup.DisplayName}
	} else if u, err = rp.User(ctx, ch.UserID); err != nil {
		if errors.Is(err, ErrUnknownUser) {
			return nil, nil, reject(c, "account", ErrUnknownUser, "the account was removed during the ceremony")
		}
		return nil, nil, err
	}

	att := &parsed.Response.AttestationObject
	cd := clientDataOf(&parsed.Response.CollectedClientData)
	if err := rp.checkClientData(c, &cd, &env.Session, protocol.CreateCeremony); err != nil {
		return nil, nil, err
	}
	if err := rp.checkAuthData(c, &att.AuthData, nil); err != nil {
		return nil, nil, err
	}
	// §7.1 step 20: the algorithm must be one the options offered.
	var pk webauthncose.PublicKeyData
	if err := webauthncbor.Unmarshal(att.AuthData.AttData.CredentialPublicKey, &pk); err != nil {
		return nil, nil, reject(c, "§7.1 step 20", ErrMalformedResponse, "credential public key: %v", err)
	}
	if !containsAlg(rp.policy.Algorithms, pk.Algorithm) {
		return nil, nil, reject(c, "§7.1 step 20", ErrAlgorithm, "COSE algorithm %d is not in Policy.Algorithms %v", pk.Algorithm, rp.policy.Algorithms)
	}

	// §7.1 step 21: a format go-webauthn can verify.
	switch protocol.AttestationFormat(att.Format) {
	case protocol.AttestationFormatNone, protocol.AttestationFormatPacked, protocol.AttestationFormatFIDOUniversalSecondFactor,
		protocol.AttestationFormatTPM, protocol.AttestationFormatAndroidKey, protocol.AttestationFormatAndroidSafetyNet,
		protocol.AttestationFormatApple, protocol.AttestationFormatCompound:
	default:
		return nil, nil, reject(c, "§7.1 step 21", ErrAttestationInvalid, "unknown attestation statement format %q", att.Format)
	}
	// go-webauthn repeats the checks above and runs the attestation
	// statement format's verification procedure (§7.1 steps 21 and 22).
	wc, err := rp.w.CreateCredential(&waUser{id: u.ID, name: u.Name, displayName: u.DisplayName}, env.Session, parsed)
	if err != nil {
		reason, detail := classify(err, ErrAttestationInvalid)
		return nil, nil, reject(c, "§7.1 step 22", reason, "%s", detail)
	}
	// §7.1 steps 23 and 24: is the attestation trustworthy?
	if err := rp.policy.assess(ctx, att, wc.AttestationType, rp.now()); err != nil {
		return nil, nil, err
	}

	flags := att.AuthData.Flags
	cred := &Credential{
		ID:                wc.ID,
		UserID:            u.ID,
		Name:              keyName,
		PublicKey:         wc.PublicKey,
		Algorithm:         pk.Algorithm,
		AAGUID:            wc.Authenticator.AAGUID,
		AttestationFormat: wc.AttestationFormat,
		AttestationType:   wc.AttestationType,
		UserVerified:      flags.HasUserVerified(),
		BackupEligible:    flags.HasBackupEligible(),
		BackupState:       flags.HasBackupState(),
		SignCount:         att.AuthData.Counter,
		Created:           rp.now(),
	}
	for _, t := range wc.Transport {
		cred.Transports = append(cred.Transports, string(t))
	}

	// §7.1 steps 26 to 29: store the credential, refusing an ID already
	// registered, atomically with the limit.
	if env.Signup != nil {
		// The account and its first key are stored in one transaction,
		// so a sign-up that fails leaves no account behind.
		u.Created = rp.now()
		err = rp.store.CreateUserWithCredential(ctx, u, cred)
		if errors.Is(err, ErrExists) {
			if _, uerr := rp.store.UserByName(ctx, u.Name); uerr == nil {
				if _, cerr := rp.store.Credential(ctx, cred.ID); cerr != nil {
					return nil, nil, reject(c, "account", ErrUserExists, "%q was taken during the ceremony", u.Name)
				}
			}
		}
	} else {
		err = rp.store.AddCredential(ctx, cred, rp.maxCreds)
	}
	if err != nil {
		switch {
		// ErrExists alone does not say what exists: something else the
		// store writes with the key (an event of the change, say) may
		// have collided. Only a key stored under this ID is step 26.
		case errors.Is(err, ErrExists) && rp.credentialStored(ctx, cred.ID):
			return nil, nil, reject(c, "§7.1 step 26", ErrCredentialExists, "")
		case errors.Is(err, ErrLimit):
			return nil, nil, reject(c, "credential limit", ErrLimit, "the user holds %d keys", rp.maxCreds)
		case errors.Is(err, ErrNotFound):
			return nil, nil, reject(c, "account", ErrUnknownUser, "the account was removed during the ceremony")
		}
		return nil, nil, fmt.Errorf("webauthn: storing credential: %w", err)
	}
	stored, err := rp.store.Credential(ctx, cred.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("webauthn: reading stored credential: %w", err)
	}
	if env.Signup != nil {
		if u, err = rp.User(ctx, u.ID); err != nil {
			return nil, nil, err
		}
	}
	return u, stored, nil
}

func containsAlg(algs []int64, a int64) bool {
	for _, x := range algs {
		if x == a {
			return true
		}
	}
	return false
}

// steps are the spec steps of the checks shared by both ceremonies.
type steps struct {
	typ, challenge, origin, crossOrigin, topOrigin, rpIDHash, up, uv, backup string
}

var (
	registrationSteps = steps{"§7.1 step 7", "§7.1 step 8", "§7.1 step 9", "§7.1 step 10", "§7.1 step 11",
		"§7.1 step 14", "§7.1 step 15", "§7.1 step 16", "§7.1 step 17"}
	loginSteps = steps{"§7.2 step 10", "§7.2 step 11", "§7.2 step 12", "§7.2 step 13", "§7.2 step 14",
		"§7.2 step 15", "§7.2 step 16", "§7.2 step 17", "§7.2 step 18"}
)

func stepsOf(c Ceremony) *steps {
	if c == CeremonyRegistration {
		return &registrationSteps
	}
	return &loginSteps
}

// checkClientData runs the client data steps (§7.1 steps 7 to 11, §7.2
// steps 10 to 14) ahead of go-webauthn, which repeats them, so that each
// failure has its own error.
func (rp *RelyingParty) checkClientData(c Ceremony, cd *clientData, s *gowebauthn.SessionData, want protocol.CeremonyType) error {
	st := stepsOf(c)
	if cd.typ != string(want) {
		return reject(c, st.typ, ErrWrongType, "got %q, want %q", cd.typ, want)
	}
	if subtle.ConstantTimeCompare([]byte(cd.challenge), []byte(s.Challenge)) != 1 {
		return reject(c, st.challenge, ErrChallengeMismatch, "")
	}
	if !rp.originAllowed(cd.origin) {
		return reject(c, st.origin, ErrOrigin, "origin %q is not one of %q", cd.origin, rp.origins)
	}
	// This relying party does not run ceremonies in cross-origin iframes.
	if cd.crossOrigin {
		return reject(c, st.crossOrigin, ErrOrigin, "cross-origin ceremony (crossOrigin true)")
	}
	if cd.topOrigin != "" {
		return reject(c, st.topOrigin, ErrOrigin, "cross-origin ceremony (topOrigin %q)", cd.topOrigin)
	}
	return nil
}

// checkAuthData runs the authenticator data steps (§7.1 steps 14 to 18,
// §7.2 steps 15 to 19). rec is the credential record for a sign-in, nil
// for a registration.
func (rp *RelyingParty) checkAuthData(c Ceremony, ad *protocol.AuthenticatorData, rec *Credential) error {
	st := stepsOf(c)
	want := sha256.Sum256([]byte(rp.rpID))
	if !bytes.Equal(ad.RPIDHash, want[:]) {
		return reject(c, st.rpIDHash, ErrRPIDHash, "rpIdHash %x is not SHA-256(%q)", ad.RPIDHash, rp.rpID)
	}
	if !ad.Flags.HasUserPresent() {
		return reject(c, st.up, ErrUserPresence, "")
	}
	if rp.policy.UserVerification == Required && !ad.Flags.HasUserVerified() {
		return reject(c, st.uv, ErrUserVerification, "")
	}
	be, bs := ad.Flags.HasBackupEligible(), ad.Flags.HasBackupState()
	if !be && bs {
		return reject(c, st.backup, ErrBackupFlags, "BS set without BE")
	}
	if rec == nil {
		if rp.policy.HardwareBound && be {
			return reject(c, "§7.1 step 18", ErrBackupEligible, "")
		}
	} else if be != rec.BackupEligible {
		return reject(c, "§7.2 step 19", ErrBackupFlags, "BE %v, but %v at registration", be, rec.BackupEligible)
	}
	return nil
}

// BeginLogin starts a sign-in for a user who named their account (WebAuthn
// L3 §7.2 steps 1 and 2): the options allow the user's active keys only.
//
// Errors: [ErrUnknownUser]; [ErrNoCredentials] if the user has no active
// key; [ErrTooManyCeremonies] as for [RelyingParty.BeginRegistration].
func (rp *RelyingParty) BeginLogin(ctx context.Context, userID []byte) (*Begin, error) {
	if err := checkID("user ID", userID); err != nil {
		return nil, err
	}
	u, creds, err := rp.loginUser(ctx, userID, "")
	if err != nil {
		return nil, err
	}
	return rp.beginLogin(ctx, u, creds)
}

// beginLoginByName is BeginLogin for the user named name (the handler's
// /login/begin), with the errors of [RelyingParty.UserByName] and
// BeginLogin, reading the user once.
func (rp *RelyingParty) beginLoginByName(ctx context.Context, name string) (*Begin, error) {
	if err := checkName("user name", name, maxUserNameLen, false); err != nil {
		return nil, err
	}
	u, creds, err := rp.loginUser(ctx, nil, name)
	if err != nil {
		return nil, err
	}
	return rp.beginLogin(ctx, u, creds)
}

// loginUser reads the user with the given ID (or, if id is nil, the given
// name) and their credentials: in one call if the store is a
// [BeginStore], else one after the other. Errors: [ErrUnknownUser].
func (rp *RelyingParty) loginUser(ctx context.Context, id []byte, name string) (*User, []*Credential, error) {
	if bs, ok := rp.store.(BeginStore); ok {
		u, creds, err := bs.UserWithCredentials(ctx, id, name)
		switch {
		case errors.Is(err, ErrNotFound):
			return nil, nil, ErrUnknownUser
		case err != nil:
			return nil, nil, fmt.Errorf("webauthn: reading user: %w", err)
		}
		return u, creds, nil
	}
	var (
		u   *User
		err error
	)
	if id != nil {
		u, err = rp.store.User(ctx, id)
	} else {
		u, err = rp.store.UserByName(ctx, name)
	}
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil, ErrUnknownUser
	case err != nil:
		return nil, nil, fmt.Errorf("webauthn: reading user: %w", err)
	}
	creds, err := rp.store.Credentials(ctx, u.ID)
	if err != nil {
		return nil, nil, fmt.Errorf("webauthn: reading credentials: %w", err)
	}
	return u, creds, nil
}

// beginLogin is BeginLogin for the user u, read with creds.
func (rp *RelyingParty) beginLogin(ctx context.Context, u *User, creds []*Credential) (*Begin, error) {
	var allow []protocol.CredentialDescriptor
	for _, c := range creds {
		if c.Active() {
			allow = append(allow, descriptor(c))
		}
	}
	if len(allow) == 0 {
		return nil, fmt.Errorf("signing in %q: %w", u.Name, ErrNoCredentials)
	}
	challenge, err := rp.random(challengeLen)
	if err != nil {
		return nil, err
	}
	wu := &waUser{id: u.ID, name: u.Name, displayName: u.DisplayName}
	for _, d := range allow {
		wu.creds = append(wu.creds, gowebauthn.Credential{ID: d.CredentialID})
	}
	assertion, session, err := rp.w.BeginLogin(wu,
		gowebauthn.WithChallenge(challenge),
		gowebauthn.WithUserVerification(rp.policy.userVerification()),
		gowebauthn.WithAllowedCredentials(allow),
	)
	if err != nil {
		return nil, fmt.Errorf("webauthn: building request options: %v", err)
	}
	return rp.saveChallenge(ctx, CeremonyLogin, challenge, u.ID, &sessionEnvelope{Session: *session}, assertion.Response)
}

// BeginDiscoverableLogin starts a sign-in without a user name (WebAuthn L3
// §7.2 steps 1 and 2, empty allowCredentials): the key offers its
// discoverable credentials for the relying party and the response's user
// handle names the account. Under [Config.ChallengeKey] it stores
// nothing; otherwise it stores a challenge like every Begin, and fails
// with [ErrTooManyCeremonies] when [Config.MaxChallenges] are under way.
func (rp *RelyingParty) BeginDiscoverableLogin(ctx context.Context) (*Begin, error) {
	challenge, err := rp.random(challengeLen)
	if err != nil {
		return nil, err
	}
	assertion, session, err := rp.w.BeginDiscoverableLogin(
		gowebauthn.WithChallenge(challenge),
		gowebauthn.WithUserVerification(rp.policy.userVerification()),
	)
	if err != nil {
		return nil, fmt.Errorf("webauthn: building request options: %v", err)
	}
	if rp.tokenKey != nil {
		return rp.beginToken(challenge, sessionBinding(ctx), assertion.Response)
	}
	return rp.saveChallenge(ctx, CeremonyDiscoverable, challenge, nil, &sessionEnvelope{Session: *session}, assertion.Response)
}

// FinishLogin verifies a sign-in response (WebAuthn L3 §7.2 steps 3 to
// 25) for a challenge from [RelyingParty.BeginLogin] or
// [RelyingParty.BeginDiscoverableLogin], and returns the user who signed in
// and the key as the sign-in left it. response is the
// AuthenticationResponseJSON (PublicKeyCredential.toJSON()).
//
// The sign count is updated with a compare-and-set in the store, so that
// of two sign-ins racing with one credential only a counter that
// increases is accepted; a counter that does not increase (unless both it
// and the stored one are zero, as for keys without counters) flags the
// credential as possibly cloned (CloneWarning) and refuses the sign-in
// with [ErrSignCount]. Later sign-ins with a flagged key are refused with
// [ErrCloneWarning], whatever their counter, until
// [RelyingParty.ClearCloneWarning], unless [Policy.AllowCloneWarning].
//
// The challenge is used up by the call whatever the outcome, except a
// [Config.ChallengeKey] token, which only a successful sign-in uses up. A
// rejected response gives a [*VerificationError] wrapping the reason
// ([ErrChallengeUnknown], [ErrExpired], [ErrMalformedResponse],
// [ErrUnknownCredential], [ErrCredentialOwner], [ErrUserHandle],
// [ErrWrongType], [ErrChallengeMismatch], [ErrOrigin], [ErrRPIDHash],
// [ErrUserPresence], [ErrUserVerification], [ErrBackupFlags],
// [ErrSignature], [ErrInactive], [ErrCloneWarning] or [ErrSignCount]) and
// changes nothing stored except the CloneWarning of [ErrSignCount].
func (rp *RelyingParty) FinishLogin(ctx context.Context, challengeID string, response []byte) (*User, *Credential, error) {
	// §7.2 steps 3 to 9: the fast parse (fastlogin.go) takes the plain
	// responses browsers send; go-webauthn parses the rest and reports
	// what is wrong with them. The response is parsed before the
	// challenge is taken so that one store call can take the challenge
	// and read the key it names; what is wrong with either is reported
	// in the order of the steps: the challenge first.
	var a assertion
	var malformed error
	if rp.slowLogin || !parseAssertion(response, &a) {
		parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
		if err != nil {
			malformed = err
		} else {
			a.fromParsed(parsed)
		}
	}
	var credentialID []byte
	if malformed == nil {
		credentialID = a.rawID
	}
	ch, env, rec, u, held, err := rp.takeSignIn(ctx, challengeID, credentialID)
	if err != nil {
		return nil, nil, err
	}
	if held {
		// FinishSignIn takes the challenge with the first count update;
		// a rejection before that takes it here.
		defer func() {
			if held {
				rp.useUp(ctx, ch.ID)
			}
		}()
	}
	c := ch.Ceremony
	if malformed != nil {
		_, detail := classify(malformed, ErrMalformedResponse)
		return nil, nil, reject(c, "§7.2 steps 3 to 9", ErrMalformedResponse, "%s", detail)
	}

	// §7.2 steps 5 and 6: identify the credential and its owner.
	if rec == nil {
		return nil, nil, reject(c, "§7.2 step 6", ErrUnknownCredential, "")
	}
	handle := a.userHandle
	session := env.Session
	if c == CeremonyLogin {
		if !bytes.Equal(rec.UserID, ch.UserID) {
			return nil, nil, reject(c, "§7.2 step 6", ErrCredentialOwner, "")
		}
		allowed := false
		for _, id := range session.AllowedCredentialIDs {
			allowed = allowed || bytes.Equal(id, rec.ID)
		}
		if !allowed {
			return nil, nil, reject(c, "§7.2 step 5", ErrUnknownCredential, "credential not in allowCredentials")
		}
		if len(handle) > 0 && !bytes.Equal(handle, ch.UserID) {
			return nil, nil, reject(c, "§7.2 step 6", ErrUserHandle, "userHandle names another account")
		}
	} else {
		if len(handle) == 0 {
			return nil, nil, reject(c, "§7.2 step 6", ErrUserHandle, "userHandle missing from a discoverable sign-in")
		}
		if !bytes.Equal(handle, rec.UserID) {
			return nil, nil, reject(c, "§7.2 step 6", ErrUserHandle, "userHandle is not the credential's owner")
		}
	}
	if u == nil {
		return nil, nil, reject(c, "§7.2 step 6", ErrUnknownUser, "the credential's account is gone")
	}

	// §7.2 steps 10 to 19, ahead of go-webauthn, which repeats them.
	if err := rp.checkClientData(c, &a.clientData, &session, protocol.AssertCeremony); err != nil {
		return nil, nil, err
	}
	ad := &a.authData
	if err := rp.checkAuthData(c, ad, rec); err != nil {
		return nil, nil, err
	}

	// §7.2 steps 20 and 21 (the signature). We checked allowCredentials
	// ourselves, so go-webauthn sees only this credential.
	session.AllowedCredentialIDs = nil
	if ok, err := rp.fastSignature(c, &a, u, rec, &session); ok {
		if err != nil {
			return nil, nil, err
		}
	} else if err := rp.validateLogin(c, &a, u, rec, session, response); err != nil {
		return nil, nil, err
	}
	// A deactivated key is refused only once it has proved itself, so
	// that nobody without it learns it is deactivated; so is a key that
	// may have been cloned.
	if !rec.Active() {
		return nil, nil, reject(c, "credential record", ErrInactive, "")
	}
	if err := rp.checkCloneWarning(c, rec); err != nil {
		return nil, nil, err
	}
	// A challenge token is used up only now, by a verified sign-in.
	if isToken(ch.ID) {
		if err := rp.spendToken(ctx, ch); err != nil {
			return nil, nil, err
		}
	}

	// §7.2 steps 22 and 24: the sign count, as a compare-and-set.
	now := rp.now()
	count := ad.Counter
	for range maxSignInRetries {
		if (count != 0 || rec.SignCount != 0) && count <= rec.SignCount {
			if held {
				// The count may be one that a finish of this same
				// challenge set after ReadSignIn read it: only the
				// finish that takes the challenge may judge the count.
				_, err := rp.store.TakeChallenge(ctx, ch.ID, now)
				switch {
				case errors.Is(err, ErrNotFound):
					held = false
					return nil, nil, reject(c, "challenge", ErrChallengeUnknown, "used by another sign-in meanwhile")
				case err != nil && !errors.Is(err, ErrExpired): // expired is taken all the same
					return nil, nil, fmt.Errorf("webauthn: taking challenge: %w", err)
				}
				held = false
			}
			if err := rp.store.FlagClone(ctx, rec.ID); err != nil && !errors.Is(err, ErrNotFound) {
				return nil, nil, fmt.Errorf("webauthn: flagging possible clone: %w", err)
			}
			return nil, nil, reject(c, "§7.2 step 22", ErrSignCount, "counter %d after %d", count, rec.SignCount)
		}
		in := SignIn{
			CredentialID: rec.ID, OldCount: rec.SignCount, NewCount: count,
			BackupState: ad.Flags.HasBackupState(), At: now,
		}
		var err error
		if held {
			var taken bool
			taken, err = rp.store.(FinishStore).FinishSignIn(ctx, ch.ID, in)
			if err == nil && !taken {
				// Another finish of this challenge took it first.
				held = false
				return nil, nil, reject(c, "challenge", ErrChallengeUnknown, "used by another sign-in meanwhile")
			}
			// Taken, whether or not the count was set; if the store
			// failed before taking it, the deferred useUp does.
			held = !taken
		} else {
			err = rp.store.RecordSignIn(ctx, in)
		}
		switch {
		case err == nil:
			rec.SignCount = count
			rec.BackupState = ad.Flags.HasBackupState()
			// As the store keeps it, so the caller sees what a later
			// read returns.
			rec.LastUsed = now.UTC().Truncate(time.Microsecond)
			return u, rec, nil
		case errors.Is(err, ErrConflict):
			// Another sign-in moved the counter; decide again on the
			// stored one.
			if rec, err = rp.store.Credential(ctx, rec.ID); err != nil {
				if errors.Is(err, ErrNotFound) {
					return nil, nil, reject(c, "§7.2 step 24", ErrUnknownCredential, "the credential was deleted during the sign-in")
				}
				return nil, nil, fmt.Errorf("webauthn: reading credential: %w", err)
			}
			// A sign-in that raced with this one may have flagged it.
			if err := rp.checkCloneWarning(c, rec); err != nil {
				return nil, nil, err
			}
		case errors.Is(err, ErrInactive):
			return nil, nil, reject(c, "§7.2 step 24", ErrInactive, "deactivated during the sign-in")
		case errors.Is(err, ErrNotFound):
			return nil, nil, reject(c, "§7.2 step 24", ErrUnknownCredential, "the credential was deleted during the sign-in")
		default:
			return nil, nil, fmt.Errorf("webauthn: recording sign-in: %w", err)
		}
	}
	return nil, nil, fmt.Errorf("webauthn: recording sign-in: sign count changed %d times concurrently", maxSignInRetries)
}

// validateLogin has go-webauthn verify the signature (§7.2 steps 20 and
// 21) and repeat the checks before it, on its own parse of the response.
func (rp *RelyingParty) validateLogin(c Ceremony, a *assertion, u *User, rec *Credential, session gowebauthn.SessionData, response []byte) error {
	parsed := a.parsed
	if parsed == nil {
		// A fast-parsed response whose credential the fast path does
		// not verify; go-webauthn accepts every response the fast
		// parser does.
		var err error
		if parsed, err = protocol.ParseCredentialRequestResponseBytes(response); err != nil {
			_, detail := classify(err, ErrMalformedResponse)
			return reject(c, "§7.2 steps 3 to 9", ErrMalformedResponse, "%s", detail)
		}
	}
	wu := &waUser{id: u.ID, name: u.Name, displayName: u.DisplayName, creds: []gowebauthn.Credential{{
		ID:                rec.ID,
		PublicKey:         rec.PublicKey,
		AttestationType:   rec.AttestationType,
		AttestationFormat: rec.AttestationFormat,
		Flags:             gowebauthn.CredentialFlags{BackupEligible: rec.BackupEligible, BackupState: rec.BackupState},
		Authenticator:     gowebauthn.Authenticator{AAGUID: rec.AAGUID, SignCount: rec.SignCount},
	}}}
	var err error
	if c == CeremonyLogin {
		_, err = rp.w.ValidateLogin(wu, session, parsed)
	} else {
		_, err = rp.w.ValidateDiscoverableLogin(func(rawID, userHandle []byte) (gowebauthn.User, error) { return wu, nil }, session, parsed)
	}
	if err != nil {
		reason, detail := classify(err, ErrVerification)
		return reject(c, "§7.2 step 21", reason, "%s", detail)
	}
	return nil
}

// checkCloneWarning refuses a credential flagged as possibly cloned,
// unless the policy allows it.
func (rp *RelyingParty) checkCloneWarning(c Ceremony, rec *Credential) error {
	if rec.CloneWarning && !rp.policy.AllowCloneWarning {
		return reject(c, "credential record", ErrCloneWarning, "an administrator must clear the clone warning")
	}
	return nil
}

// attestedCredentialIDLen returns the length of the credential ID in the
// attested credential data of a RegistrationResponseJSON (WebAuthn L3
// §6.5.1), or -1 if the response does not get that far in parsing; the
// parse proper reports why.
func attestedCredentialIDLen(response []byte) int {
	var r struct {
		Response struct {
			AttestationObject string `json:"attestationObject"`
		} `json:"response"`
	}
	if json.Unmarshal(response, &r) != nil {
		return -1
	}
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(r.Response.AttestationObject, "="))
	if err != nil {
		return -1
	}
	var ao struct {
		AuthData []byte `cbor:"authData"`
	}
	if webauthncbor.Unmarshal(raw, &ao) != nil {
		return -1
	}
	// rpIdHash (32) | flags (1) | signCount (4) | aaguid (16) | L (2) | ...
	const flagAT, offset = 0x40, 32 + 1 + 4 + 16
	ad := ao.AuthData
	if len(ad) < offset+2 || ad[32]&flagAT == 0 {
		return -1
	}
	return int(binary.BigEndian.Uint16(ad[offset:]))
}

// credentialStored reports whether a key with this ID is stored.
func (rp *RelyingParty) credentialStored(ctx context.Context, id []byte) bool {
	_, err := rp.store.Credential(ctx, id)
	return err == nil
}
