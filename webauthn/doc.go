// Package webauthn is a WebAuthn relying party for security keys: it
// enrolls keys (registration) and signs people in with them
// (authentication), keeps users, keys and single-use challenges in a
// [Store], applies a [Policy] on which keys to accept, and manages each
// key's life (rename, deactivate, reactivate, delete). It builds on
// github.com/go-webauthn/webauthn and keeps that package's types out of
// its API.
//
// Start with [New]:
//
//	rp, err := webauthn.New(webauthn.Config{
//		RPID:    "example.com",
//		Origins: []string{"https://login.example.com"},
//		Store:   webauthn.NewMemoryStore(), // or store/sqlite, store/postgres
//	})
//
// Then either mount the JSON API of [RelyingParty.Handler] for a web page,
// or run the ceremonies yourself:
//
//	b, err := rp.BeginRegistration(ctx, user.ID)       // b.Options to the browser
//	cred, err := rp.FinishRegistration(ctx, b.ChallengeID, responseJSON, "Blue key")
//	b, err = rp.BeginLogin(ctx, user.ID)                // or BeginDiscoverableLogin
//	user, cred, err := rp.FinishLogin(ctx, b.ChallengeID, responseJSON)
//
// Options and responses are the WebAuthn JSON serialisation (WebAuthn L3
// §5.1.8, §5.1.9 and PublicKeyCredential.toJSON()), what a browser's
// PublicKeyCredential.parseCreationOptionsFromJSON and toJSON() use, and
// what [github.com/fidokit/fidokit/fido.WebAuthnClient] produces from a
// real or virtual key. Package
// [github.com/fidokit/fidokit/webauthn/webauthntest] drives a relying party
// with a virtual key in tests.
//
// # Ceremonies
//
// Every Begin stores a challenge of 32 random bytes with the ceremony,
// the user and go-webauthn's session data, valid for
// [Config.ChallengeTimeout]; every Finish takes it from the store,
// atomically, so that it is used once, by one server, whatever the
// outcome. A registration takes it first; a sign-in on a [FinishStore]
// (all three of fidokit's stores) reads it with the key, and takes it
// together with the sign count's update once the assertion is verified,
// or at once when the sign-in is refused: one read and one write per
// sign-in. Registration asks for a cross-platform authenticator (a
// security key), excludes the keys the user already holds and stops at
// [Config.MaxCredentials] keys. Sign-in allows the user's active keys, or
// any discoverable credential for the relying party. After go-webauthn
// verifies a sign-in, the sign count is updated with a compare-and-set in
// the store: a counter that does not increase marks the key as possibly
// cloned and refuses the sign-in.
//
// Outstanding challenges are bounded: at most
// [Config.MaxChallengesPerUser] (16) per user and [Config.MaxChallenges]
// (100,000) in the store; a Begin beyond either fails with
// [ErrTooManyCeremonies] (HTTP 429). The store removes expired challenges
// itself whenever it saves one, a bounded number per call, so nothing
// needs to purge them. With [Config.ChallengeKey] set, a discoverable
// sign-in stores nothing when it begins: its challenge ID is a signed,
// expiring token, recorded in the store only once a sign-in with it
// succeeds, so anonymous begins can neither fill the store nor lock
// others out at the limit.
//
// # Possibly cloned keys
//
// A key whose counter went back (WebAuthn L3 §7.2 step 22) is flagged:
// its CloneWarning is set, and that sign-in fails with [ErrSignCount].
// By default a flagged key then cannot sign in at all, whatever counter
// it presents, and fails with [ErrCloneWarning], until an administrator
// who has checked it calls [RelyingParty.ClearCloneWarning] (or
// deactivates or deletes it). [Policy.AllowCloneWarning] lets flagged
// keys keep signing in with increasing counters instead; the flag then
// stays for the application to show.
//
// Each step of WebAuthn Level 3 §7.1 and §7.2 that can fail has its own
// error, matched with errors.Is; a rejected response is a
// [*VerificationError] naming the step (Level 3 numbering, as in the
// Candidate Recommendation of January 2025). The checks with distinct
// errors run here, before go-webauthn runs all of its own, so that each
// failure is classified exactly rather than guessed from go-webauthn's
// messages.
//
// # Errors and HTTP status codes
//
// [ErrorCode] turns an error into a stable code; the HTTP handler answers
// every error with {"error": {"code": ..., "message": ...}} and this
// status:
//
//	code                       status  error
//	invalid_request            400     ErrInvalidRequest: bad JSON body, name or ID
//	malformed_response         400     ErrMalformedResponse
//	wrong_type                 400     ErrWrongType
//	challenge_mismatch         400     ErrChallengeMismatch
//	challenge_unknown          400     ErrChallengeUnknown (also: no challengeId nor ceremony cookie, or another browser's)
//	challenge_expired          400     ErrExpired
//	origin_mismatch            400     ErrOrigin
//	rp_id_mismatch             400     ErrRPIDHash
//	user_presence_missing      400     ErrUserPresence
//	user_verification_missing  400     ErrUserVerification
//	backup_flags_invalid       400     ErrBackupFlags
//	algorithm_not_allowed      400     ErrAlgorithm
//	attestation_invalid        400     ErrAttestationInvalid
//	verification_failed        400     ErrVerification (any other rejection)
//	unauthenticated            401     nobody signed in (HandlerConfig.CurrentUser)
//	backup_eligible            403     ErrBackupEligible
//	attestation_untrusted      403     ErrAttestationUntrusted
//	credential_wrong_user      403     ErrCredentialOwner
//	user_handle_mismatch       403     ErrUserHandle
//	credential_deactivated     403     ErrInactive
//	credential_clone_warning   403     ErrCloneWarning
//	sign_count_regression      403     ErrSignCount
//	bad_signature              403     ErrSignature
//	cross_origin               403     a POST or DELETE from another origin (see Handler)
//	credential_unknown         404     ErrUnknownCredential
//	user_unknown               404     ErrUnknownUser
//	no_credentials             404     ErrNoCredentials
//	not_found                  404     no such endpoint
//	method_not_allowed         405     wrong method (with an Allow header)
//	credential_exists          409     ErrCredentialExists
//	credential_limit           409     ErrLimit
//	user_exists                409     ErrUserExists
//	signed_in                  409     a sign-up (/register/begin with a name) while someone is signed in
//	request_too_large          413     body over HandlerConfig.MaxBodyBytes
//	unsupported_media_type     415     a POST not marked application/json in UTF-8
//	too_many_ceremonies        429     ErrTooManyCeremonies
//	internal                   500     anything else, such as a failing store
//
// The message is a fixed sentence for the code, never the error's text.
//
// The handler does not limit request rates; put it behind whatever limits
// sign-in attempts in your application. The challenge limits keep the
// store bounded, but a flood that reaches MaxChallenges refuses everyone's
// Begin until challenges expire, and one at MaxChallengesPerUser refuses
// that user's; a rate limit in front keeps that from happening, and
// Config.ChallengeKey keeps anonymous sign-ins out of the count. Sign-in by user name tells an
// unknown name (user_unknown) and a user without keys (no_credentials)
// apart, so it reveals which names exist; discoverable sign-in does not.
//
// # Attestation
//
// By default no attestation is asked for and every key is accepted.
// [AttestationAny], [AttestationAAGUIDs] and [AttestationMetadata] ask for
// it and accept only keys whose statement verifies with a certificate
// chain, optionally to [Policy.AttestationRoots], of allowed models, or
// listed without a compromise in a FIDO Metadata Service BLOB the caller
// fetches and hands to [ParseMetadata].
package webauthn
