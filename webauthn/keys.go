package webauthn

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Credentials returns the user's keys, active and deactivated, oldest
// first. A user without keys gets an empty slice; an unknown user
// [ErrUnknownUser].
func (rp *RelyingParty) Credentials(ctx context.Context, userID []byte) ([]*Credential, error) {
	if err := checkID("user ID", userID); err != nil {
		return nil, err
	}
	creds, err := rp.store.Credentials(ctx, userID)
	if err != nil {
		return nil, fmt.Errorf("webauthn: reading credentials: %w", err)
	}
	if len(creds) == 0 {
		// Tell "no keys" from "no such user".
		if _, err := rp.User(ctx, userID); err != nil {
			return nil, err
		}
	}
	return creds, nil
}

// Credential returns one of the user's keys, or [ErrUnknownCredential] if
// the user holds no key with that ID.
func (rp *RelyingParty) Credential(ctx context.Context, userID, credentialID []byte) (*Credential, error) {
	if err := checkIDs(userID, credentialID); err != nil {
		return nil, err
	}
	c, err := rp.store.Credential(ctx, credentialID)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, ErrUnknownCredential
	case err != nil:
		return nil, fmt.Errorf("webauthn: reading credential: %w", err)
	case string(c.UserID) != string(userID):
		// Another user's key is, to this user, no key at all.
		return nil, ErrUnknownCredential
	}
	return c, nil
}

// RenameCredential sets the name of one of the user's keys (at most 128
// bytes of UTF-8 without control characters; empty clears it). Errors:
// [ErrInvalidRequest], [ErrUnknownCredential].
func (rp *RelyingParty) RenameCredential(ctx context.Context, userID, credentialID []byte, name string) error {
	if err := checkIDs(userID, credentialID); err != nil {
		return err
	}
	if err := checkName("key name", name, maxKeyNameLen, true); err != nil {
		return err
	}
	return storeErr("renaming key", rp.store.RenameCredential(ctx, userID, credentialID, name))
}

// DeactivateCredential stops one of the user's keys from signing in, for
// instance because it was lost, while keeping its record; sign-ins with
// it fail with [ErrInactive] and [RelyingParty.BeginLogin] leaves it out.
// Deactivating a deactivated key changes nothing. Errors:
// [ErrUnknownCredential].
func (rp *RelyingParty) DeactivateCredential(ctx context.Context, userID, credentialID []byte) error {
	c, err := rp.Credential(ctx, userID, credentialID)
	if err != nil {
		return err
	}
	if !c.Active() {
		return nil
	}
	return storeErr("deactivating key", rp.store.DeactivateCredential(ctx, userID, credentialID, rp.now()))
}

// ReactivateCredential lets a deactivated key sign in again. Reactivating
// an active key changes nothing. Errors: [ErrUnknownCredential].
func (rp *RelyingParty) ReactivateCredential(ctx context.Context, userID, credentialID []byte) error {
	if err := checkIDs(userID, credentialID); err != nil {
		return err
	}
	return storeErr("reactivating key", rp.store.DeactivateCredential(ctx, userID, credentialID, time.Time{}))
}

// DeleteCredential removes one of the user's keys for good. The key
// itself still holds the credential; registering it again makes a new
// one. Errors: [ErrUnknownCredential].
func (rp *RelyingParty) DeleteCredential(ctx context.Context, userID, credentialID []byte) error {
	if err := checkIDs(userID, credentialID); err != nil {
		return err
	}
	return storeErr("deleting key", rp.store.DeleteCredential(ctx, userID, credentialID))
}

func checkIDs(userID, credentialID []byte) error {
	if err := checkID("user ID", userID); err != nil {
		return err
	}
	return checkID("credential ID", credentialID)
}

// storeErr maps a key-management store error to ours.
func storeErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrNotFound):
		return ErrUnknownCredential
	}
	return fmt.Errorf("webauthn: %s: %w", op, err)
}

// ClearCloneWarning clears the CloneWarning of one of the user's keys,
// which a sign-in with a counter that did not increase set, so that the
// key may sign in again (under the default [Policy]). It is for an
// administrator who has satisfied themselves that no copy of the key is
// in use, for instance because its owner still holds it and a counter
// reset explains the regression; otherwise deactivate or delete the key.
// The next sign-in must still present a counter above the last one
// accepted. Clearing a clear flag changes nothing. Errors:
// [ErrUnknownCredential].
func (rp *RelyingParty) ClearCloneWarning(ctx context.Context, userID, credentialID []byte) error {
	if err := checkIDs(userID, credentialID); err != nil {
		return err
	}
	return storeErr("clearing clone warning", rp.store.ClearCloneWarning(ctx, userID, credentialID))
}

// PurgeChallenges removes all the challenges that have expired, which
// abandoned ceremonies leave in the store, and reports how many. The
// store removes expired challenges itself as new ones are saved, so
// calling it is never necessary; it frees the space of a burst of
// ceremonies at once.
func (rp *RelyingParty) PurgeChallenges(ctx context.Context) (int, error) {
	n, err := rp.store.PurgeChallenges(ctx, rp.now())
	if err != nil {
		return n, fmt.Errorf("webauthn: purging challenges: %w", err)
	}
	return n, nil
}

// Store returns the store the relying party keeps its users, keys and
// challenges in, so that a layer above (account MFA) can keep its own
// records in the same database.
func (rp *RelyingParty) Store() Store { return rp.store }

// MaxCredentials is the most keys a user may hold ([Config.MaxCredentials]
// after defaults); zero or less means no limit. A store that also holds
// other MFA devices counts them towards the same limit.
func (rp *RelyingParty) MaxCredentials() int { return rp.maxCreds }

// Name is the relying party's name ([Config.RPName], or its ID).
func (rp *RelyingParty) Name() string { return rp.rpName }

// ID is the relying party ID ([Config.RPID]).
func (rp *RelyingParty) ID() string { return rp.rpID }
