package webauthn

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	gowebauthn "github.com/go-webauthn/webauthn/webauthn"
	"golang.org/x/net/publicsuffix"
)

// Defaults of Config.
const (
	// DefaultChallengeTimeout is how long a ceremony may take when
	// Config.ChallengeTimeout is zero: the default of WebAuthn L3 §15.1.
	DefaultChallengeTimeout = 5 * time.Minute
	// DefaultMaxCredentials is how many keys a user may hold when
	// Config.MaxCredentials is zero.
	DefaultMaxCredentials = 8
	// DefaultMaxChallengesPerUser is how many ceremonies one user may
	// have under way when Config.MaxChallengesPerUser is zero: more than
	// a person opens tabs, few enough that nobody can fill the store in
	// their name.
	DefaultMaxChallengesPerUser = 16
	// DefaultMaxChallenges is how many ceremonies may be under way in the
	// store in all when Config.MaxChallenges is zero. A challenge takes
	// about 400 bytes in the memory store and in SQLite alike, so the
	// default bounds them to about 40 MiB.
	DefaultMaxChallenges = 100_000
	// MinChallengeKeyLen is the shortest Config.ChallengeKey.
	MinChallengeKeyLen = 32
)

// Limits on names, in bytes of UTF-8.
const (
	maxUserNameLen = 256
	maxKeyNameLen  = 128
	// maxCredentialIDLen is WebAuthn L3 §7.1 step 25.
	maxCredentialIDLen = 1023
	// challengeLen is the size of a challenge and of a challenge ID's
	// randomness (WebAuthn L3 §13.4.3 asks for at least 16 bytes).
	challengeLen = 32
	// userIDLen is the size of a new user handle (§14.6.1: random, 64
	// bytes at most).
	userIDLen = 32
)

// Config sets up a [RelyingParty]. RPID, Origins and Store are required;
// the zero value of every other field means the default documented on it.
type Config struct {
	// RPID is the relying party ID (WebAuthn L3 §5.1.2): a domain such as
	// "example.com" that keys scope their credentials to. Required.
	RPID string
	// RPName is the name keys may show for the relying party. Empty means
	// RPID.
	RPName string
	// Origins are the web origins whose pages run the ceremonies, such as
	// "https://login.example.com": scheme, host and port only. Each
	// host must be RPID or a subdomain of it, and the scheme https (or
	// http on localhost). Required.
	Origins []string
	// Store keeps users, credentials and challenges. Required.
	Store Store
	// Policy is what the relying party asks of keys and accepts. The zero
	// value is documented on [Policy].
	Policy Policy
	// ChallengeTimeout is how long a ceremony may take from Begin to
	// Finish; it is also the timeout the options tell the browser. Zero
	// means DefaultChallengeTimeout (5 minutes).
	ChallengeTimeout time.Duration
	// MaxCredentials is the most keys (active or deactivated) a user may
	// hold. Zero means DefaultMaxCredentials (8); a negative value means
	// no limit.
	MaxCredentials int
	// MaxChallengesPerUser is the most ceremonies one user may have under
	// way: begun, neither finished nor expired. A Begin beyond it fails
	// with [ErrTooManyCeremonies]. Zero means DefaultMaxChallengesPerUser
	// (16); a negative value means no limit.
	MaxChallengesPerUser int
	// MaxChallenges is the most ceremonies under way in the store, for
	// all users and anonymous sign-ins together; a Begin beyond it fails
	// with [ErrTooManyCeremonies] until some finish or expire. Zero means
	// DefaultMaxChallenges (100,000); a negative value means no limit.
	// Relying parties sharing a store each apply their own limit to the
	// store's total. Expired challenges are removed by the store as new
	// ones are saved; nobody needs to call [RelyingParty.PurgeChallenges].
	MaxChallenges int
	// ChallengeKey, if not empty, makes discoverable sign-ins
	// ([RelyingParty.BeginDiscoverableLogin]) cost no storage: their
	// challenge ID is then a token holding the challenge and its expiry,
	// authenticated with HMAC-SHA256 under this key, instead of a stored
	// challenge, so that anonymous begins neither fill the store nor
	// count towards MaxChallenges. A sign-in that succeeds records the
	// token in the store until it expires, so a token still signs in
	// once; a rejected response leaves it usable until it expires
	// (unlike a stored challenge, which any Finish uses up).
	//
	// The key must be at least MinChallengeKeyLen (32) random bytes, kept
	// secret, and the same on every server that shares the store (a token
	// begun on one server is finished on another); servers' clocks must
	// agree to within a minute. Empty means discoverable sign-ins store
	// their challenges like every other ceremony.
	ChallengeKey []byte
	// Now tells the time: challenge expiry, creation and last-use times,
	// attestation certificate and metadata status dates. Nil means
	// time.Now.
	Now func() time.Time
	// Rand is the source of challenges, challenge IDs and user handles.
	// Nil means crypto/rand.Reader. Reads are serialised, so it need not
	// be safe for concurrent use; anything but a cryptographically secure
	// source is for tests only.
	Rand io.Reader
}

// RelyingParty runs WebAuthn registration and sign-in ceremonies for
// security keys, and manages users' keys, on top of go-webauthn and a
// [Store]. Make one with [New]. It is safe for concurrent use, and any
// number of RelyingParty values, in one process or many, may share a
// Store: challenges are single-use and sign counts monotonic across all of
// them.
type RelyingParty struct {
	rpID     string
	rpName   string
	origins  []string
	store    Store
	policy   *policy
	timeout  time.Duration
	maxCreds int
	limits   ChallengeLimits
	tokenKey []byte
	now      func() time.Time
	w        *gowebauthn.WebAuthn

	// slowLogin sends every sign-in through go-webauthn alone, the
	// trusted path the fast one (fastlogin.go) is tested against.
	slowLogin bool
	// fastOK is rp.fastConfig(), fixed at New.
	fastOK bool
	// originSet holds the configured origins as spelled, for the exact
	// compare that spares most sign-ins a URL parse.
	originSet map[string]struct{}
	// keys holds parsed credential public keys for the fast path.
	keys keyCache
	// fastSignIns counts signatures the fast path verified, for tests.
	fastSignIns atomic.Uint64

	randMu sync.Mutex
	rand   io.Reader
}

// New validates cfg and returns a RelyingParty. It refuses an RPID that
// is not a domain a browser would let a page use: one with a scheme, port
// or path, one that is not a lowercase ASCII domain name (IDNs in their
// punycode A-label form) or is an IP address, and a public suffix such as
// "com" or "co.uk" (which would scope credentials to every site under
// it). "localhost" and names under it are accepted for development.
func New(cfg Config) (*RelyingParty, error) {
	if err := checkRPID(cfg.RPID); err != nil {
		return nil, fmt.Errorf("webauthn: Config.RPID %w", err)
	}
	if cfg.Store == nil {
		return nil, errors.New("webauthn: Config.Store is nil")
	}
	if len(cfg.Origins) == 0 {
		return nil, errors.New("webauthn: Config.Origins is empty")
	}
	for _, o := range cfg.Origins {
		if err := checkOrigin(o, cfg.RPID); err != nil {
			return nil, fmt.Errorf("webauthn: Config.Origins: %w", err)
		}
	}
	if cfg.ChallengeTimeout < 0 {
		return nil, fmt.Errorf("webauthn: Config.ChallengeTimeout is negative (%v)", cfg.ChallengeTimeout)
	}
	if n := len(cfg.ChallengeKey); n > 0 && n < MinChallengeKeyLen {
		return nil, fmt.Errorf("webauthn: Config.ChallengeKey has %d bytes, want at least %d", n, MinChallengeKeyLen)
	}
	pol, err := cfg.Policy.compile()
	if err != nil {
		return nil, err
	}
	rp := &RelyingParty{
		rpID:     cfg.RPID,
		rpName:   cfg.RPName,
		origins:  append([]string(nil), cfg.Origins...),
		store:    cfg.Store,
		policy:   pol,
		timeout:  cfg.ChallengeTimeout,
		maxCreds: cfg.MaxCredentials,
		limits:   ChallengeLimits{PerUser: cfg.MaxChallengesPerUser, Total: cfg.MaxChallenges},
		now:      cfg.Now,
		rand:     cfg.Rand,
	}
	if rp.rpName == "" {
		rp.rpName = rp.rpID
	}
	if rp.timeout == 0 {
		rp.timeout = DefaultChallengeTimeout
	}
	if rp.maxCreds == 0 {
		rp.maxCreds = DefaultMaxCredentials
	}
	if rp.limits.PerUser == 0 {
		rp.limits.PerUser = DefaultMaxChallengesPerUser
	}
	if rp.limits.Total == 0 {
		rp.limits.Total = DefaultMaxChallenges
	}
	if len(cfg.ChallengeKey) > 0 {
		rp.tokenKey = append([]byte(nil), cfg.ChallengeKey...)
	}
	if rp.now == nil {
		rp.now = time.Now
	}
	if rp.rand == nil {
		rp.rand = rand.Reader
	}
	// go-webauthn builds the options and verifies responses. Its own
	// session expiry stays off: the Store enforces ours, by Config.Now.
	timeouts := gowebauthn.TimeoutConfig{Timeout: rp.timeout, TimeoutUVD: rp.timeout}
	rp.w, err = gowebauthn.New(&gowebauthn.Config{
		RPID:          rp.rpID,
		RPDisplayName: rp.rpName,
		RPOrigins:     rp.origins,
		Timeouts:      gowebauthn.TimeoutsConfig{Login: timeouts, Registration: timeouts},
	})
	if err != nil {
		return nil, fmt.Errorf("webauthn: configuring go-webauthn: %v", err)
	}
	rp.originSet = make(map[string]struct{}, len(rp.origins))
	for _, o := range rp.origins {
		rp.originSet[o] = struct{}{}
	}
	rp.fastOK = rp.fastConfig()
	return rp, nil
}

// checkRPID checks that id can be a relying party ID (WebAuthn L3
// §5.1.2): a valid domain, not a public suffix, or localhost. The WebAuthn
// client in package fido applies the same rules to what a relying party
// asks of it. A non-nil error completes "Config.RPID ...".
func checkRPID(id string) error {
	switch {
	case id == "":
		return errors.New("is empty")
	case strings.Contains(id, "://"):
		return fmt.Errorf("%q carries a scheme; want a bare domain such as example.com", id)
	case strings.ContainsAny(id, "/?#"):
		return fmt.Errorf("%q carries a path; want a bare domain such as example.com", id)
	case strings.ContainsAny(id, "@[]"):
		return fmt.Errorf("%q is not a domain; want a bare domain such as example.com", id)
	case strings.Contains(id, ":"):
		return fmt.Errorf("%q carries a port; want a bare domain such as example.com", id)
	}
	if r := checkDomain(id); r != "" {
		return errors.New(r)
	}
	// Names under localhost are special-use (RFC 6761) and on no public
	// suffix list; each is treated as registrable, for development.
	if isLocalhost(id) {
		return nil
	}
	if suffix, _ := publicsuffix.PublicSuffix(id); suffix == id {
		return fmt.Errorf("%q is a public suffix, shared by unrelated sites; use a domain you own, such as example.%s", id, id)
	}
	return nil
}

// checkDomain checks that s is a domain as a URL parser leaves it:
// lowercase ASCII labels of at most 63 bytes, at most 253 bytes in all,
// and not an IPv4 address, which the URL parser recognises by a numeric
// last label (WHATWG URL, "ends in a number"). A non-empty reason says why
// not. It is the check of package fido's WebAuthn client.
func checkDomain(s string) string {
	if len(s) > 253 {
		return fmt.Sprintf("%q is longer than 253 characters", s)
	}
	labels := strings.Split(s, ".")
	for _, l := range labels {
		if l == "" || len(l) > 63 {
			return fmt.Sprintf("%q has an empty or over-long label", s)
		}
		for i := 0; i < len(l); i++ {
			c := l[i]
			if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return fmt.Sprintf("%q is not a lowercase ASCII domain name (use the punycode A-label form)", s)
			}
		}
	}
	last := labels[len(labels)-1]
	hex, isHex := strings.CutPrefix(last, "0x")
	if strings.Trim(last, "0123456789") == "" || isHex && strings.Trim(hex, "0123456789abcdef") == "" {
		return fmt.Sprintf("%q is an IP address; WebAuthn needs a domain", s)
	}
	return ""
}

// isLocalhost reports whether host is localhost or under it (RFC 6761
// §6.3).
func isLocalhost(host string) bool {
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// checkOrigin checks that origin is a serialised origin whose host may use
// rpID (WebAuthn L3 §5.1.3: rpID must equal the host or be a registrable
// suffix of it).
func checkOrigin(origin, rpID string) error {
	u, err := url.Parse(origin)
	if err != nil {
		return fmt.Errorf("%q is not an origin: %v", origin, err)
	}
	if u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil || u.Opaque != "" {
		return fmt.Errorf("%q is not an origin (want scheme://host[:port], nothing more)", origin)
	}
	host := u.Hostname()
	local := host == "localhost" || strings.HasSuffix(host, ".localhost")
	if u.Scheme != "https" && !(u.Scheme == "http" && local) {
		return fmt.Errorf("origin %q: scheme must be https (or http for localhost)", origin)
	}
	if host != rpID && !strings.HasSuffix(host, "."+rpID) {
		return fmt.Errorf("origin %q: host is neither RPID %q nor a subdomain of it", origin, rpID)
	}
	// A parent of the host's public suffix is not registrable from below
	// it, as for "a.s3.amazonaws.com" and RPID "amazonaws.com".
	if suffix, _ := publicsuffix.PublicSuffix(host); !isLocalhost(host) && strings.HasSuffix(suffix, "."+rpID) {
		return fmt.Errorf("origin %q: RPID %q is a parent of the host's public suffix %s", origin, rpID, strconv.Quote(suffix))
	}
	return nil
}

// Begin is the first half of a ceremony: what to send to the browser (or a
// [github.com/fidokit/fidokit/fido.WebAuthnClient]) and the handle to
// finish it with.
type Begin struct {
	// ChallengeID names the outstanding challenge (or, for a
	// discoverable sign-in under Config.ChallengeKey, is a token holding
	// it, of about 100 characters); pass it to the Finish call. Keep it
	// with the person's browser session (the HTTP handler hands it to the
	// page and binds it to the browser: see WithSessionBinding); it is not
	// a secret of the same rank as a session token, but it is single-use.
	ChallengeID string
	// Options is the WebAuthn JSON serialisation of the options:
	// PublicKeyCredentialCreationOptionsJSON for a registration,
	// PublicKeyCredentialRequestOptionsJSON for a sign-in (WebAuthn L3
	// §5.1.8, §5.1.9). It is the inner object that
	// PublicKeyCredential.parseCreationOptionsFromJSON and
	// parseRequestOptionsFromJSON take, not wrapped in {"publicKey": ...};
	// fido.WebAuthnClient takes either form.
	Options json.RawMessage
	// Expires is when the challenge stops being accepted.
	Expires time.Time
}

// sessionEnvelope is what Challenge.Session holds: go-webauthn's session
// data, plus the account a sign-up will create.
type sessionEnvelope struct {
	Session gowebauthn.SessionData `json:"session"`
	Signup  *signup                `json:"signup,omitempty"`
	// Binding is SHA-256 of the session binding the ceremony began
	// under (WithSessionBinding), or empty.
	Binding []byte `json:"binding,omitempty"`
}

// signup is an account to create when its first key registers.
type signup struct {
	Name        string `json:"name"`
	DisplayName string `json:"displayName,omitempty"`
}

// waUser presents a user to go-webauthn.
type waUser struct {
	id          []byte
	name        string
	displayName string
	creds       []gowebauthn.Credential
}

func (u *waUser) WebAuthnID() []byte                           { return u.id }
func (u *waUser) WebAuthnName() string                         { return u.name }
func (u *waUser) WebAuthnDisplayName() string                  { return u.displayName }
func (u *waUser) WebAuthnCredentials() []gowebauthn.Credential { return u.creds }

var _ gowebauthn.User = (*waUser)(nil)

// random returns n bytes from Config.Rand.
func (rp *RelyingParty) random(n int) ([]byte, error) {
	b := make([]byte, n)
	rp.randMu.Lock()
	defer rp.randMu.Unlock()
	if _, err := io.ReadFull(rp.rand, b); err != nil {
		return nil, fmt.Errorf("webauthn: reading random bytes: %w", err)
	}
	return b, nil
}

// checkName checks a user or key name: valid UTF-8, no control
// characters, at most max bytes, and (unless empty is allowed) not empty.
func checkName(what, s string, max int, emptyOK bool) error {
	switch {
	case s == "" && !emptyOK:
		return fmt.Errorf("%w: %s is empty", ErrInvalidRequest, what)
	case len(s) > max:
		return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalidRequest, what, max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidRequest, what)
	case strings.ContainsFunc(s, unicode.IsControl):
		return fmt.Errorf("%w: %s contains control characters", ErrInvalidRequest, what)
	}
	return nil
}

func checkID(what string, id []byte) error {
	if len(id) == 0 {
		return fmt.Errorf("%w: %s is empty", ErrInvalidRequest, what)
	}
	return nil
}

// CreateUser stores a new user with a random 32-byte user handle (WebAuthn
// L3 §14.6.1). name identifies the account, such as an email address (1
// to 256 bytes); displayName may be empty. Errors: [ErrInvalidRequest]
// for a bad name, [ErrUserExists] if the name is taken.
func (rp *RelyingParty) CreateUser(ctx context.Context, name, displayName string) (*User, error) {
	if err := checkName("user name", name, maxUserNameLen, false); err != nil {
		return nil, err
	}
	if err := checkName("display name", displayName, maxUserNameLen, true); err != nil {
		return nil, err
	}
	id, err := rp.random(userIDLen)
	if err != nil {
		return nil, err
	}
	u := &User{ID: id, Name: name, DisplayName: displayName, Created: rp.now()}
	if err := rp.store.CreateUser(ctx, u); err != nil {
		if errors.Is(err, ErrExists) {
			return nil, fmt.Errorf("creating user %q: %w", name, ErrUserExists)
		}
		return nil, fmt.Errorf("webauthn: creating user: %w", err)
	}
	return rp.User(ctx, id)
}

// User returns the user with the given ID, or [ErrUnknownUser].
func (rp *RelyingParty) User(ctx context.Context, id []byte) (*User, error) {
	if err := checkID("user ID", id); err != nil {
		return nil, err
	}
	u, err := rp.store.User(ctx, id)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, ErrUnknownUser
		}
		return nil, fmt.Errorf("webauthn: reading user: %w", err)
	}
	return u, nil
}

// UserByName returns the user with the given name, or [ErrUnknownUser].
func (rp *RelyingParty) UserByName(ctx context.Context, name string) (*User, error) {
	if err := checkName("user name", name, maxUserNameLen, false); err != nil {
		return nil, err
	}
	u, err := rp.store.UserByName(ctx, name)
	if err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil, ErrUnknownUser
		}
		return nil, fmt.Errorf("webauthn: reading user: %w", err)
	}
	return u, nil
}

// saveChallenge stores a new challenge for a ceremony and returns its
// Begin with the options.
func (rp *RelyingParty) saveChallenge(ctx context.Context, c Ceremony, challenge, userID []byte, env *sessionEnvelope, options any) (*Begin, error) {
	opts, err := json.Marshal(options)
	if err != nil {
		return nil, fmt.Errorf("webauthn: encoding options: %w", err)
	}
	env.Binding = sessionBinding(ctx)
	session, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("webauthn: encoding session: %w", err)
	}
	idb, err := rp.random(challengeLen)
	if err != nil {
		return nil, err
	}
	ch := &Challenge{
		ID:        base64.RawURLEncoding.EncodeToString(idb),
		Challenge: challenge,
		Ceremony:  c,
		UserID:    userID,
		Session:   session,
		Expires:   rp.now().Add(rp.timeout),
	}
	if err := rp.store.SaveChallenge(ctx, ch, rp.now(), rp.limits); err != nil {
		if errors.Is(err, ErrTooManyCeremonies) {
			return nil, fmt.Errorf("starting a %s ceremony: %w", c, ErrTooManyCeremonies)
		}
		return nil, fmt.Errorf("webauthn: saving challenge: %w", err)
	}
	return &Begin{ChallengeID: ch.ID, Options: opts, Expires: ch.Expires}, nil
}

// takeChallenge takes the challenge id for one of the ceremonies wanted,
// so that it can never be used again, and decodes its session.
func (rp *RelyingParty) takeChallenge(ctx context.Context, id string, want ...Ceremony) (*Challenge, *sessionEnvelope, error) {
	c := want[0]
	if id == "" {
		return nil, nil, reject(c, "challenge", ErrChallengeUnknown, "no challenge ID")
	}
	if isToken(id) {
		return rp.openToken(id, want, sessionBinding(ctx))
	}
	ch, err := rp.store.TakeChallenge(ctx, id, rp.now())
	switch {
	case errors.Is(err, ErrNotFound):
		return nil, nil, reject(c, "challenge", ErrChallengeUnknown, "")
	case errors.Is(err, ErrExpired):
		return nil, nil, reject(c, "challenge", ErrExpired, "")
	case err != nil:
		return nil, nil, fmt.Errorf("webauthn: taking challenge: %w", err)
	}
	return rp.openChallenge(ctx, ch, want)
}

// openChallenge checks that a challenge taken from the store is for one
// of the ceremonies wanted and was issued to the caller's session, and
// decodes its session data.
func (rp *RelyingParty) openChallenge(ctx context.Context, ch *Challenge, want []Ceremony) (*Challenge, *sessionEnvelope, error) {
	c := want[0]
	ok := false
	for _, w := range want {
		ok = ok || ch.Ceremony == w
	}
	if !ok {
		return nil, nil, reject(c, "challenge", ErrChallengeUnknown, "the challenge was issued for %s", ch.Ceremony)
	}
	env := new(sessionEnvelope)
	// A sign-in's session parses without reflection; the rest, with it.
	if !parseEnvelope(ch.Session, env) {
		if err := json.Unmarshal(ch.Session, env); err != nil {
			return nil, nil, fmt.Errorf("webauthn: decoding stored session of challenge: %w", err)
		}
	}
	if !sameBinding(env.Binding, sessionBinding(ctx)) {
		return nil, nil, reject(c, "challenge", ErrChallengeUnknown, "the challenge was issued to another session")
	}
	return ch, env, nil
}

// takeSignIn takes a sign-in's challenge (as takeChallenge) and reads the
// key credentialID and its owner: with one call when the store is a
// [SignInStore], else one after another. rec is nil when there is no such
// key (or credentialID is nil: the response did not parse), u nil when
// its owner is gone.
//
// When the store is a [FinishStore], the challenge is only read, and held
// is true: the caller takes it with FinishSignIn, or with useUp if it
// rejects the response. A challenge that fails here is used up already.
func (rp *RelyingParty) takeSignIn(ctx context.Context, id string, credentialID []byte) (ch *Challenge, env *sessionEnvelope, rec *Credential, u *User, held bool, err error) {
	want := []Ceremony{CeremonyLogin, CeremonyDiscoverable}
	usable := id != "" && !isToken(id) && credentialID != nil
	if fs, ok := rp.store.(FinishStore); ok && usable {
		if ch, rec, u, err = fs.ReadSignIn(ctx, id, credentialID, rp.now()); err != nil {
			if errors.Is(err, ErrExpired) {
				rp.useUp(ctx, id) // removed, as TakeChallenge removes it
			}
			return nil, nil, nil, nil, false, signInChallengeErr(err, "reading")
		}
		if ch, env, err = rp.openChallenge(ctx, ch, want); err != nil {
			rp.useUp(ctx, id)
			return nil, nil, nil, nil, false, err
		}
		return ch, env, rec, u, true, nil
	}
	if ss, ok := rp.store.(SignInStore); ok && usable {
		if ch, rec, u, err = ss.TakeSignIn(ctx, id, credentialID, rp.now()); err != nil {
			return nil, nil, nil, nil, false, signInChallengeErr(err, "taking")
		}
		if ch, env, err = rp.openChallenge(ctx, ch, want); err != nil {
			return nil, nil, nil, nil, false, err
		}
		return ch, env, rec, u, false, nil
	}
	ch, env, rec, u, err = rp.takeAndRead(ctx, id, credentialID, want)
	return ch, env, rec, u, false, err
}

// signInChallengeErr is the error of a sign-in whose challenge the store
// did not give (doing it: "reading" or "taking").
func signInChallengeErr(err error, doing string) error {
	switch {
	case errors.Is(err, ErrNotFound):
		return reject(CeremonyLogin, "challenge", ErrChallengeUnknown, "")
	case errors.Is(err, ErrExpired):
		return reject(CeremonyLogin, "challenge", ErrExpired, "")
	}
	return fmt.Errorf("webauthn: %s challenge: %w", doing, err)
}

// useUp takes a challenge that ReadSignIn left stored, for a sign-in that
// is rejected: whatever the outcome, a challenge is used once. It runs
// even if ctx is cancelled, and a failure leaves the challenge to expire.
func (rp *RelyingParty) useUp(ctx context.Context, id string) {
	rp.store.TakeChallenge(context.WithoutCancel(ctx), id, rp.now())
}

// takeAndRead is takeSignIn for a store with neither FinishStore nor
// SignInStore.
func (rp *RelyingParty) takeAndRead(ctx context.Context, id string, credentialID []byte, want []Ceremony) (ch *Challenge, env *sessionEnvelope, rec *Credential, u *User, err error) {
	if ch, env, err = rp.takeChallenge(ctx, id, want...); err != nil || credentialID == nil {
		return ch, env, nil, nil, err
	}
	rec, err = rp.store.Credential(ctx, credentialID)
	switch {
	case errors.Is(err, ErrNotFound):
		return ch, env, nil, nil, nil
	case err != nil:
		return nil, nil, nil, nil, fmt.Errorf("webauthn: reading credential: %w", err)
	}
	u, err = rp.User(ctx, rec.UserID)
	switch {
	case errors.Is(err, ErrUnknownUser):
		return ch, env, rec, nil, nil
	case err != nil:
		return nil, nil, nil, nil, err
	}
	return ch, env, rec, u, nil
}
