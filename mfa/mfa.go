package mfa

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/fidokit/fidokit/webauthn"
)

// Defaults of Config.
const (
	// DefaultEnrollmentTimeout is how long a TOTP enrollment may wait for
	// its two codes when Config.EnrollmentTimeout is zero.
	DefaultEnrollmentTimeout = 10 * time.Minute
)

// DefaultLockPolicy is the attempt limit when Config.Lock is zero: after 5
// consecutive wrong codes a factor is refused for a minute, then two,
// four, ... up to a day.
var DefaultLockPolicy = LockPolicy{Limit: 5, Base: time.Minute, Max: 24 * time.Hour}

// Limits on names, in bytes of UTF-8.
const (
	maxNameLen   = 128
	maxSerialLen = 64
	maxIssuerLen = 64
	// otpIDLen is the randomness of a TOTP device's ID.
	otpIDLen = 16
)

// Config sets up a [Manager]. RelyingParty and Keys are required; the zero
// value of every other field means the default documented on it.
type Config struct {
	// RelyingParty runs the security-key ceremonies. Its store must
	// implement [Store]: that one database holds the account's devices
	// of every type, so a security key is the relying party's credential
	// record itself, and the device limit is its
	// webauthn.Config.MaxCredentials (8 by default), counting every type.
	// Required.
	RelyingParty *webauthn.RelyingParty
	// Keys seals TOTP seeds at rest. Required.
	Keys *Keyring
	// Issuer is the service name authenticator apps show next to the
	// account ("Example Corp"). Empty means the relying party's name. It
	// must not contain a colon.
	Issuer string
	// EnrollmentTimeout is how long a TOTP enrollment may wait for its
	// codes. Zero means DefaultEnrollmentTimeout (10 minutes).
	EnrollmentTimeout time.Duration
	// Lock is the attempt limit for TOTP and recovery codes, per account
	// and factor. The zero value means DefaultLockPolicy.
	Lock LockPolicy
	// RecoveryHash is the cost of the recovery-code hash. The zero value
	// means DefaultRecoveryHash.
	RecoveryHash RecoveryHash
	// Roles returns an account's roles, such as RoleAdministrator, for
	// [Policy.Roles] and [Policy.AdministratorsNeedSecurityKey]: who is
	// an administrator is the application's to say. Nil means no
	// account has a role.
	Roles func(ctx context.Context, userID []byte) ([]string, error)
	// OnEvent, if not nil, is given each event of the log once the store
	// has committed it, such as [LogEvents] for log/slog. It is called
	// on the goroutine of the call that caused the event, so it must be
	// quick and safe for concurrent use.
	OnEvent func(ctx context.Context, e Event)
	// Now tells the time: TOTP steps, expiry, last-use times. Nil means
	// time.Now.
	Now func() time.Time
	// Rand is the source of secrets, recovery codes, salts and IDs. Nil
	// means crypto/rand.Reader; reads are serialised. Anything but a
	// cryptographically secure source is for tests only.
	Rand io.Reader
}

// Manager is account MFA for a service: the devices of every type an
// account holds, their enrollment, the recovery codes, and sign-in with
// any of them as the second factor. Make one with [New]. It is safe for
// concurrent use, and any number of Managers, in one process or many,
// may share one store: each TOTP step and recovery code is accepted once,
// and attempt counts are seen by all.
type Manager struct {
	rp       *webauthn.RelyingParty
	store    Store
	keys     *Keyring
	issuer   string
	timeout  time.Duration
	lock     LockPolicy
	hash     RecoveryHash
	now      func() time.Time
	randMu   sync.Mutex
	rand     io.Reader
	maxDevis int
	roles    func(ctx context.Context, userID []byte) ([]string, error)
	onEvent  func(ctx context.Context, e Event)
}

// New validates cfg and returns a Manager.
func New(cfg Config) (*Manager, error) {
	if cfg.RelyingParty == nil {
		return nil, errors.New("mfa: Config.RelyingParty is nil")
	}
	store, ok := cfg.RelyingParty.Store().(Store)
	if !ok {
		return nil, fmt.Errorf("mfa: the relying party's store (%T) does not implement mfa.Store; use one from package github.com/fidokit/fidokit/store or mfa.NewMemoryStore", cfg.RelyingParty.Store())
	}
	if cfg.Keys == nil {
		return nil, errors.New("mfa: Config.Keys is nil")
	}
	m := &Manager{
		rp:       cfg.RelyingParty,
		store:    store,
		keys:     cfg.Keys,
		issuer:   cfg.Issuer,
		timeout:  cfg.EnrollmentTimeout,
		lock:     cfg.Lock,
		hash:     cfg.RecoveryHash,
		now:      cfg.Now,
		rand:     cfg.Rand,
		maxDevis: cfg.RelyingParty.MaxCredentials(),
		roles:    cfg.Roles,
		onEvent:  cfg.OnEvent,
	}
	if m.issuer == "" {
		m.issuer = cfg.RelyingParty.Name()
	}
	if err := checkName("Config.Issuer", m.issuer, maxIssuerLen, false); err != nil || strings.ContainsRune(m.issuer, ':') {
		return nil, fmt.Errorf("mfa: Config.Issuer %q: want 1 to %d bytes of text without a colon", m.issuer, maxIssuerLen)
	}
	if m.timeout < 0 {
		return nil, fmt.Errorf("mfa: Config.EnrollmentTimeout is negative (%v)", m.timeout)
	}
	if m.timeout == 0 {
		m.timeout = DefaultEnrollmentTimeout
	}
	if m.lock == (LockPolicy{}) {
		m.lock = DefaultLockPolicy
	}
	if m.lock.Limit <= 0 || m.lock.Base <= 0 || m.lock.Max < m.lock.Base {
		return nil, fmt.Errorf("mfa: Config.Lock %+v: want Limit > 0 and 0 < Base <= Max", m.lock)
	}
	if m.hash == (RecoveryHash{}) {
		m.hash = DefaultRecoveryHash
	}
	if m.hash.Time == 0 || m.hash.MemoryKiB < 8 || m.hash.Threads == 0 {
		return nil, fmt.Errorf("mfa: Config.RecoveryHash %+v: every field must be positive (memory at least 8 KiB)", m.hash)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.rand == nil {
		m.rand = rand.Reader
	}
	return m, nil
}

// RelyingParty returns the relying party the Manager runs security-key
// ceremonies on.
func (m *Manager) RelyingParty() *webauthn.RelyingParty { return m.rp }

// random fills b from Config.Rand.
func (m *Manager) random(b []byte) error {
	m.randMu.Lock()
	defer m.randMu.Unlock()
	if _, err := io.ReadFull(m.rand, b); err != nil {
		return fmt.Errorf("mfa: reading randomness: %v", err)
	}
	return nil
}

// recoveryCode draws one recovery code from Config.Rand.
func (m *Manager) recoveryCode() (string, error) {
	m.randMu.Lock()
	defer m.randMu.Unlock()
	return newRecoveryCode(m.rand)
}

// Device IDs carry their kind, so one ID names a device of any type:
// "key_" + the credential ID, or "otp_" + the TOTP device's ID, each in
// unpadded base64url.
const (
	keyIDPrefix = "key_"
	otpIDPrefix = "otp_"
)

var b64 = base64.RawURLEncoding

func keyDeviceID(credID []byte) string { return keyIDPrefix + b64.EncodeToString(credID) }
func otpDeviceID(id []byte) string     { return otpIDPrefix + b64.EncodeToString(id) }

// parseDeviceID splits a device ID into its kind and raw ID.
func parseDeviceID(id string) (key bool, raw []byte, err error) {
	if len(id) > 4+1400 {
		return false, nil, fmt.Errorf("%w: device ID too long", ErrInvalidRequest)
	}
	var rest string
	switch {
	case strings.HasPrefix(id, keyIDPrefix):
		key, rest = true, id[len(keyIDPrefix):]
	case strings.HasPrefix(id, otpIDPrefix):
		rest = id[len(otpIDPrefix):]
	default:
		return false, nil, fmt.Errorf("%w: device ID %q", ErrUnknownDevice, id)
	}
	raw, err = b64.DecodeString(rest)
	if err != nil || len(raw) == 0 || (!key && len(raw) != otpIDLen) {
		return false, nil, fmt.Errorf("%w: device ID %q", ErrUnknownDevice, id)
	}
	return key, raw, nil
}

// checkName accepts 1 (0 if empty is allowed) to max bytes of UTF-8
// without control characters.
func checkName(what, s string, max int, emptyOK bool) error {
	switch {
	case s == "" && !emptyOK:
		return fmt.Errorf("%w: %s is empty", ErrInvalidRequest, what)
	case len(s) > max:
		return fmt.Errorf("%w: %s is longer than %d bytes", ErrInvalidRequest, what, max)
	case !utf8.ValidString(s):
		return fmt.Errorf("%w: %s is not valid UTF-8", ErrInvalidRequest, what)
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %s has a control character", ErrInvalidRequest, what)
		}
	}
	return nil
}

// checkUserID rejects what cannot be a user handle.
func checkUserID(id []byte) error {
	if len(id) == 0 || len(id) > 64 {
		return fmt.Errorf("%w: user ID must be 1 to 64 bytes", ErrInvalidRequest)
	}
	return nil
}

// storeErr maps a store's errors onto the Manager's.
func storeErr(op string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrReplay):
		return ErrCodeReused
	case errors.Is(err, webauthn.ErrInactive):
		return fmt.Errorf("mfa: %s: %w", op, err)
	case errors.Is(err, webauthn.ErrLimit):
		return ErrDeviceLimit
	}
	return fmt.Errorf("mfa: %s: %w", op, err)
}
