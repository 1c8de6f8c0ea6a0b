package webauthn

import (
	"context"
	"errors"
	"time"
)

// Errors a [Store] returns. Every implementation wraps exactly these, so
// callers and the relying party branch with errors.Is whatever the backend.
var (
	// ErrNotFound: no such user, credential or challenge (a challenge
	// already taken is not found).
	ErrNotFound = errors.New("webauthn: not found")
	// ErrExists: a user ID or name, a credential ID or a challenge ID is
	// already stored.
	ErrExists = errors.New("webauthn: already exists")
	// ErrConflict: a compare-and-set found a different sign count than
	// the caller read; the caller reloads and decides again.
	ErrConflict = errors.New("webauthn: sign count changed concurrently")
	// ErrLimit: the user already holds the most credentials allowed.
	ErrLimit = errors.New("webauthn: credential limit reached")
	// ErrExpired: the challenge was found but its time had passed; it is
	// removed all the same.
	ErrExpired = errors.New("webauthn: challenge expired")
	// ErrInactive: the credential has been deactivated.
	ErrInactive = errors.New("webauthn: credential deactivated")
	// ErrTooManyCeremonies: SaveChallenge found as many outstanding
	// challenges as [ChallengeLimits] allow, for the user or in all; the
	// challenge is not stored.
	ErrTooManyCeremonies = errors.New("webauthn: too many ceremonies under way")
)

// User is an account that can hold security keys.
type User struct {
	// ID is the user handle (WebAuthn L3 §5.4.3): 1 to 64 random bytes
	// that carry nothing personal. Unique.
	ID []byte
	// Name is the account name shown when choosing an account, such as
	// an email address. Unique.
	Name string
	// DisplayName is a human-friendly name; may be empty.
	DisplayName string
	// Created is when the user was stored.
	Created time.Time
}

// Credential is a registered security key: the WebAuthn L3 §4 credential
// record plus what a person needs to manage it.
type Credential struct {
	// ID is the credential ID, unique across all users.
	ID []byte
	// UserID is the owner's [User.ID].
	UserID []byte
	// Name is what the person called the key ("Blue YubiKey"); may be
	// empty.
	Name string
	// PublicKey is the credential public key as a COSE_Key.
	PublicKey []byte
	// Algorithm is the COSE algorithm identifier of PublicKey (-7 ES256,
	// -8 EdDSA, -257 RS256).
	Algorithm int64
	// AAGUID identifies the authenticator model (16 bytes; all zero when
	// not disclosed).
	AAGUID []byte
	// AttestationFormat is the attestation statement format ("packed",
	// "fido-u2f", "none", ...).
	AttestationFormat string
	// AttestationType is the attestation type the relying party verified
	// ("basic_full", "self", "none", ...).
	AttestationType string
	// Transports are the transport hints the client reported ("usb",
	// "nfc", ...).
	Transports []string
	// UserVerified records whether the key verified the user (PIN or
	// biometric) at registration.
	UserVerified bool
	// BackupEligible and BackupState are the BE and BS flags. BE never
	// changes for a credential; BS may.
	BackupEligible bool
	BackupState    bool
	// SignCount is the last signature counter accepted.
	SignCount uint32
	// CloneWarning is set when a sign-in presented a counter that did not
	// increase: the key may have been cloned. It stays set until
	// [RelyingParty.ClearCloneWarning]; while it is set, the key cannot
	// sign in unless [Policy.AllowCloneWarning].
	CloneWarning bool
	// Deactivated is when an administrator or the person deactivated the
	// key; zero while active. A deactivated key cannot sign in.
	Deactivated time.Time
	// Created is when the key was registered; LastUsed when it last
	// signed in (zero if never).
	Created  time.Time
	LastUsed time.Time
}

// Active reports whether the credential may sign in.
func (c *Credential) Active() bool { return c.Deactivated.IsZero() }

// Ceremony names what a challenge was issued for.
type Ceremony string

// The ceremonies a challenge can belong to.
const (
	CeremonyRegistration Ceremony = "registration"
	CeremonyLogin        Ceremony = "login"
	// CeremonyDiscoverable is a sign-in without a user named up front;
	// the key chooses the account.
	CeremonyDiscoverable Ceremony = "discoverable"
)

// Challenge is an outstanding ceremony: issued by a Begin call, consumed
// exactly once by the matching Finish.
type Challenge struct {
	// ID is a random handle for the ceremony (what the session cookie
	// carries). Unique.
	ID string
	// Challenge is the 32 random bytes the key signs over.
	Challenge []byte
	// Ceremony is what the challenge was issued for.
	Ceremony Ceremony
	// UserID is the user the ceremony is for; nil for a discoverable
	// sign-in.
	UserID []byte
	// Session is opaque state the relying party needs to finish; stores
	// keep it byte for byte.
	Session []byte
	// Expires is when the challenge stops being accepted.
	Expires time.Time
}

// ChallengeLimits bound the outstanding challenges [Store.SaveChallenge]
// lets accumulate. A challenge is outstanding from SaveChallenge until it
// is taken or expires; an expired challenge never counts.
type ChallengeLimits struct {
	// PerUser is the most outstanding challenges with one (non-empty)
	// UserID; zero or less means no limit. Challenges without a UserID
	// (discoverable sign-ins) count only towards Total.
	PerUser int
	// Total is the most outstanding challenges in the store; zero or
	// less means no limit.
	Total int
}

// SignIn is the update a successful sign-in makes to a credential: a
// compare-and-set on its sign count.
type SignIn struct {
	// CredentialID is the credential that signed in.
	CredentialID []byte
	// OldCount is the sign count the relying party read before verifying;
	// NewCount the one the key presented.
	OldCount, NewCount uint32
	// BackupState is the BS flag of this assertion.
	BackupState bool
	// At becomes the credential's LastUsed.
	At time.Time
}

// Store keeps users, their credentials and outstanding challenges. All
// methods are safe for concurrent use, also across processes sharing one
// database: that is what makes a challenge single-use and a counter
// monotonic when several servers share a store.
//
// Times are stored in UTC with at least microsecond precision. Slices a
// method returns are the caller's to keep. A method that fails changes
// nothing.
type Store interface {
	// CreateUser stores a new user. ErrExists if its ID or Name is taken.
	CreateUser(ctx context.Context, u *User) error
	// User returns the user with the given ID, or ErrNotFound.
	User(ctx context.Context, id []byte) (*User, error)
	// UserByName returns the user with the given name, or ErrNotFound.
	UserByName(ctx context.Context, name string) (*User, error)
	// CreateUserWithCredential stores a new user and its first credential
	// (c.UserID == u.ID) in one transaction, so that a sign-up whose key
	// cannot be stored leaves no account behind. ErrExists if the user ID
	// or name or the credential ID is taken.
	CreateUserWithCredential(ctx context.Context, u *User, c *Credential) error

	// AddCredential stores a new credential for c.UserID. ErrNotFound if
	// the user does not exist; ErrExists if any user holds a credential
	// with c.ID; ErrLimit if the user already holds limit credentials
	// (active or not), checked atomically with the insert. limit <= 0
	// means no limit.
	AddCredential(ctx context.Context, c *Credential, limit int) error
	// Credential returns the credential with the given ID, or ErrNotFound.
	Credential(ctx context.Context, id []byte) (*Credential, error)
	// Credentials returns a user's credentials, oldest first; none is
	// an empty slice and no error.
	Credentials(ctx context.Context, userID []byte) ([]*Credential, error)
	// RenameCredential sets the name of one of userID's credentials, or
	// returns ErrNotFound if the user has no such credential.
	RenameCredential(ctx context.Context, userID, id []byte, name string) error
	// DeactivateCredential sets Deactivated to at (at non-zero), or back
	// to zero to reactivate (at zero). ErrNotFound as for Rename.
	DeactivateCredential(ctx context.Context, userID, id []byte, at time.Time) error
	// DeleteCredential removes one of userID's credentials, or returns
	// ErrNotFound.
	DeleteCredential(ctx context.Context, userID, id []byte) error
	// RecordSignIn atomically sets SignCount to s.NewCount, BackupState
	// and LastUsed if and only if the stored SignCount still equals
	// s.OldCount and the credential is active. ErrConflict if the count
	// differs, ErrInactive if deactivated, ErrNotFound if absent.
	RecordSignIn(ctx context.Context, s SignIn) error
	// FlagClone sets CloneWarning on a credential, or returns ErrNotFound.
	FlagClone(ctx context.Context, id []byte) error
	// ClearCloneWarning clears CloneWarning on one of userID's
	// credentials, or returns ErrNotFound if the user has no such
	// credential. Clearing a clear flag changes nothing.
	ClearCloneWarning(ctx context.Context, userID, id []byte) error

	// SaveChallenge stores an outstanding challenge. ErrExists if its ID
	// is taken; ErrTooManyCeremonies if the store already holds
	// limits.PerUser outstanding challenges for c.UserID or limits.Total
	// in all. Challenges that expired at or before now do not count.
	//
	// SaveChallenge also deletes challenges that expired at or before
	// now, so that abandoned ceremonies do not accumulate: at least 16 of
	// them (the oldest first) on every call, whatever the limits, and all
	// of them before it refuses a challenge for limits.Total. The work of
	// a call is bounded but for that last case, in which each expired
	// challenge is deleted once. A caller need not purge;
	// [Store.PurgeChallenges] remains for removing all of them at once.
	//
	// A store whose writers are serialised (the memory and SQLite stores)
	// enforces the limits exactly. A store shared by several servers may
	// let concurrent calls overshoot Total by about as many calls as run
	// at once, but it must enforce PerUser exactly.
	SaveChallenge(ctx context.Context, c *Challenge, now time.Time, limits ChallengeLimits) error
	// TakeChallenge removes and returns the challenge with the given ID,
	// atomically: of any number of concurrent calls for one ID, across
	// processes, at most one gets it. ErrNotFound if unknown or already
	// taken; ErrExpired (removing it) if now is at or after its Expires.
	TakeChallenge(ctx context.Context, id string, now time.Time) (*Challenge, error)
	// PurgeChallenges removes every challenge that expired at or before
	// now and reports how many it removed.
	PurgeChallenges(ctx context.Context, now time.Time) (int, error)
}

// SignInStore is a [Store] that reads what a sign-in needs in one call,
// which a store that talks to a database server makes one round trip:
// [RelyingParty.FinishLogin] uses it when the store has it, and
// otherwise calls TakeChallenge, Credential and User one after another.
type SignInStore interface {
	Store
	// TakeSignIn takes the challenge with the given ID exactly as
	// TakeChallenge does (the same atomicity and errors: ErrNotFound,
	// ErrExpired), and with it reads the credential credentialID and the
	// user who owns it. cred is nil if there is no such credential, and
	// user nil if there is none or its owner is gone; neither is an
	// error. The challenge is taken whatever the credential lookup finds.
	TakeSignIn(ctx context.Context, id string, credentialID []byte, now time.Time) (ch *Challenge, cred *Credential, user *User, err error)
}

// FinishStore is a [Store] that completes a sign-in with one write: the
// challenge is read with the credential and its owner first
// (ReadSignIn), and only once the assertion is verified taken together
// with the sign count's compare-and-set (FinishSignIn), in one
// transaction. A sign-in then costs one read and one commit, where
// TakeSignIn and RecordSignIn are two commits. [RelyingParty.FinishLogin]
// uses it when the store has it (in preference to [SignInStore]), and
// takes the challenge with TakeChallenge when it rejects the response,
// so that the challenge is used up whatever the outcome, as before.
type FinishStore interface {
	Store
	// ReadSignIn reads the challenge with the given ID, leaving it
	// stored, together with the credential credentialID and the user
	// who owns it. ErrNotFound if there is no such challenge; ErrExpired
	// if now is at or after its Expires. cred is nil if there is no such
	// credential, and user nil if there is none or its owner is gone;
	// neither is an error.
	ReadSignIn(ctx context.Context, id string, credentialID []byte, now time.Time) (ch *Challenge, cred *Credential, user *User, err error)
	// FinishSignIn takes the challenge with the given ID and, in the same
	// transaction, makes the update of RecordSignIn(s). Of any number of
	// concurrent calls that take one challenge (FinishSignIn,
	// TakeChallenge, TakeSignIn), across processes, at most one gets it.
	//
	// taken is false if the challenge was no longer stored (another call
	// took it, or it was purged); then nothing changed and err is nil.
	// Otherwise err is what RecordSignIn(s) would return (ErrConflict,
	// ErrInactive, ErrNotFound for the credential), and on such an error
	// the challenge is taken all the same and nothing else changed: the
	// caller has used it up and may retry RecordSignIn alone. Any other
	// error (the store failing) comes with taken false and changes
	// nothing, the challenge included. Expiry is not checked again:
	// ReadSignIn did.
	FinishSignIn(ctx context.Context, id string, s SignIn) (taken bool, err error)
}

// BeginStore is a [Store] that reads a user together with their
// credentials in one call, which a store that talks to a database server
// makes one round trip and an SQL store one statement:
// [RelyingParty.BeginLogin] (and the handler's /login/begin by name)
// uses it when the store has it, and otherwise calls User (or
// UserByName) and Credentials one after the other.
type BeginStore interface {
	Store
	// UserWithCredentials returns the user with the given ID or, if id
	// is nil, the user with the given name, together with that user's
	// credentials as Credentials returns them (oldest first; none is an
	// empty slice), read at one point in time: no credential added or
	// removed concurrently shows in one and not the other. ErrNotFound
	// if there is no such user.
	UserWithCredentials(ctx context.Context, id []byte, name string) (*User, []*Credential, error)
}
