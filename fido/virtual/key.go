// Package virtual is a software FIDO2 (CTAP 2.1) and U2F security key for
// tests and demos. It speaks CTAPHID, the wire protocol of USB keys, so the
// code above it runs exactly as it would with hardware:
//
//	k, err := virtual.New(nil)              // in memory, touches approved
//	dev, err := k.Open(ctx, nil)            // a *fido.Device, in-process
//	srv, err := k.Listen("/tmp/key.sock")   // or serve it on a socket
//
// [Config] sets what the key can do (algorithms, discoverable credential
// slots, message and list limits, CTAP 2.0 or 2.1, U2F only or no U2F,
// attestation) and how it misbehaves on purpose (a forced status per
// command, bad signatures, UP or UV flags cleared, a counter rolled back
// with [Key.SetCounter]), so that code can be tested against keys that do
// not follow the rules. The knobs follow Chromium's virtual CTAP2 device.
//
// # User presence
//
// Every touch goes through a [UserPresence] hook: [Approve] (the default),
// [Deny], [ApproveAfter], or a [Button] that a test presses when the key
// asks, without sleeping.
//
// # Credentials
//
// A non-discoverable credential costs the key no storage: its ID is the
// private key sealed with AES-GCM under a secret the key holds, bound to
// the relying party, the same format U2F key handles use, so credentials
// move freely between CTAP2 and U2F (CTAP 2.1 §10). Discoverable
// credentials, the secret and the signature counter persist in
// Config.StatePath, written atomically.
package virtual

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/internal/hid"
)

// DefaultAAGUID identifies the fidokit virtual key model
// (f1d06b17-5e11-4a1f-9c0d-1d0c17f1d001). Keys made with a zero
// Config.AAGUID report it.
var DefaultAAGUID = [16]byte{0xf1, 0xd0, 0x6b, 0x17, 0x5e, 0x11, 0x4a, 0x1f, 0x9c, 0x0d, 0x1d, 0x0c, 0x17, 0xf1, 0xd0, 0x01}

// AttestationFormat is how the key attests new credentials (WebAuthn L3
// §8).
type AttestationFormat int

// Attestation formats.
const (
	// AttestationPacked is packed attestation (WebAuthn L3 §8.2) with a
	// batch certificate chained to Config.AttestationCA, as
	// FIDO-certified keys do.
	AttestationPacked AttestationFormat = iota
	// AttestationSelf is packed self attestation: signed by the new
	// credential's own key, with no certificate.
	AttestationSelf
	// AttestationNone is the "none" format (WebAuthn L3 §8.7) with an
	// empty statement.
	AttestationNone
)

// CTAPVersion is the newest CTAP version a key claims.
type CTAPVersion int

// CTAP versions.
const (
	// CTAP21 claims FIDO_2_0 and FIDO_2_1 and answers the 2.1 commands
	// and getInfo fields.
	CTAP21 CTAPVersion = iota
	// CTAP20 claims FIDO_2_0 only: no authenticatorSelection, no getInfo
	// fields newer than CTAP 2.0 (maxCredentialCountInList onwards), and
	// makeCredential refuses the "up" option, which 2.0 does not define
	// for it.
	CTAP20
)

// Firmware version, reported by getInfo (firmwareVersion) and CTAPHID
// INIT (major, minor, build).
const (
	firmwareMajor, firmwareMinor, firmwareBuild = 0, 1, 0
)

// Limits of the CTAP transport and of this key.
const (
	defaultResidentKeySlots = 25
	defaultMaxMsgSize       = 1200
	defaultMaxCredsInList   = 8
	defaultMaxCredIDLength  = 128
	defaultPresenceTimeout  = 30 * time.Second
	// resetWindow is how long after power-up authenticatorReset is
	// accepted (CTAP 2.1 §6.6).
	resetWindow = 10 * time.Second
	// nextAssertionTimeout is how long getNextAssertion state lives after
	// the last getAssertion or getNextAssertion (CTAP 2.1 §6.2.2 step
	// 12.2.2.3, §6.3).
	nextAssertionTimeout = 30 * time.Second
	// residentIDLen is the length of a discoverable credential's random
	// ID: far more than the 100 bits of entropy WebAuthn L3 §4 asks of
	// credential IDs.
	residentIDLen = 32
)

// Config sets up a virtual key. A nil *Config, and the zero value of each
// field, mean the defaults documented on the field.
type Config struct {
	// AAGUID is the key model's AAGUID. Zero means DefaultAAGUID. A key
	// loaded from StatePath keeps the AAGUID it was made with; a
	// different non-zero AAGUID here is an error.
	AAGUID [16]byte
	// Algorithms are the credential algorithms the key offers, preferred
	// first: fido.ES256 and fido.EdDSA. Nil means both, ES256 first; an
	// empty, non-nil slice means none, so every makeCredential fails.
	Algorithms []fido.Algorithm
	// ResidentKeySlots is how many discoverable credentials fit. Zero
	// means 25.
	ResidentKeySlots int
	// MaxMsgSize is the largest CTAP request the key accepts, in bytes,
	// reported in getInfo. Zero means 1200; values above 7609, the
	// CTAPHID limit, are lowered to it. Below 1024 breaks CTAP 2.1 §6.4,
	// which may be what a test wants.
	MaxMsgSize int
	// MaxCredentialCountInList bounds allow and exclude lists; longer
	// lists are refused with CTAP2_ERR_LIMIT_EXCEEDED. Zero means 8.
	MaxCredentialCountInList int
	// MaxCredentialIDLength is the maxCredentialIdLength getInfo reports;
	// longer IDs in allow and exclude lists are never the key's. Zero
	// means 128. It must be at least 62, the length of this key's
	// credential IDs.
	MaxCredentialIDLength int
	// CTAPVersion is the CTAP version claimed. Zero means CTAP21.
	CTAPVersion CTAPVersion
	// U2FOnly makes an old CTAP1/U2F-only key: CTAPHID INIT does not
	// offer CBOR.
	U2FOnly bool
	// NoU2F makes a CTAP2-only key: CTAPHID INIT reports NMSG, getInfo
	// does not list U2F_V2. U2FOnly and NoU2F together are an error.
	NoU2F bool
	// Attestation is the attestation format. Zero means
	// AttestationPacked.
	Attestation AttestationFormat
	// AttestationCA issues the batch and U2F attestation certificates of
	// a new key. Nil means a CA generated with the key, kept in its state
	// file. A key loaded from StatePath keeps the CA it was made with; a
	// different CA here is an error.
	AttestationCA *AttestationCA
	// UserPresence decides touches. Nil means Approve.
	UserPresence UserPresence
	// UserPresenceTimeout bounds one wait for a touch; when it passes the
	// key answers CTAP2_ERR_USER_ACTION_TIMEOUT. Zero means 30 s.
	UserPresenceTimeout time.Duration
	// Clock tells the time for the 10 s reset window after power-up, the
	// 30 s life of getNextAssertion state and credential creation times.
	// Nil means time.Now.
	Clock func() time.Time
	// Rand is the source of the key's secrets, credential keys and IDs.
	// Nil means crypto/rand. The key reads it one command at a time, so a
	// deterministic source for tests need not be safe for concurrent use.
	Rand io.Reader
	// StatePath is the file that keeps the key's secrets, discoverable
	// credentials and counter across restarts. If it exists, New loads
	// it; otherwise New makes a key and saves it there. Empty means
	// memory only.
	StatePath string

	// StatusOverride answers each listed CTAP command byte (such as 0x01
	// for authenticatorMakeCredential) with the given status, without
	// doing anything: a key that fails on purpose.
	StatusOverride map[byte]fido.Status
	// BadSignature corrupts every signature the key makes (assertions,
	// attestations, U2F), keeping it well-formed but invalid.
	BadSignature bool
	// ForceUPOff clears the UP flag (and the U2F user presence byte)
	// although the person touched the key. The flag is cleared before
	// signing, so the signature is valid over the wrong flag: the lie a
	// relying party must catch by checking flags, not signatures.
	ForceUPOff bool
	// ForceUVOff clears the UV flag in the same way. This key has no
	// user verification yet, so it never sets UV and the knob has no
	// effect until PIN/UV support arrives.
	ForceUVOff bool
}

// Key is a virtual security key. It is safe for concurrent use and, like a
// real key, handles one operation at a time: a command from a second host
// waits while the first one waits for a touch.
type Key struct {
	cfg Config

	op sync.Mutex // held for the whole of one CTAP2 or U2F command

	mu       sync.Mutex // guards the fields below
	st       *state
	wrapper  *keyWrapper
	batch    crypto.Signer
	u2f      crypto.Signer
	powerOn  time.Time
	next     *pendingAssertions
	u2fTouch *backgroundTouch
	closed   bool
	servers  map[*Server]struct{}

	ctx    context.Context // cancelled by Close; bounds every server and background touch
	cancel context.CancelFunc
	wg     sync.WaitGroup // servers of Conn and background touches
}

// Credential describes a discoverable credential held by a Key.
type Credential struct {
	// ID is the credential ID.
	ID []byte
	// RPID is the relying party the credential is for.
	RPID string
	// UserID is the relying party's user handle; UserName and
	// UserDisplayName are the account names it gave, if any.
	UserID          []byte
	UserName        string
	UserDisplayName string
	// Algorithm is the credential's signature algorithm.
	Algorithm fido.Algorithm
	// Created is when the key made the credential, by Config.Clock.
	Created time.Time
}

var errKeyClosed = errors.New("virtual: key is closed")

// New makes a key from cfg; nil means the defaults documented on Config.
// With cfg.StatePath naming an existing file the key is the one saved
// there (an unusable file gives a *StateError); otherwise a new key is
// made and, with a StatePath, saved. The key counts as plugged in from
// now: the reset window starts.
func New(cfg *Config) (*Key, error) {
	k := &Key{servers: map[*Server]struct{}{}}
	if cfg != nil {
		k.cfg = *cfg
	}
	if err := k.cfg.fill(); err != nil {
		return nil, err
	}
	c := &k.cfg
	var err error
	if c.StatePath != "" {
		k.st, err = loadState(c.StatePath)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	if k.st != nil {
		if err := k.checkLoaded(cfg); err != nil {
			return nil, err
		}
	} else {
		if k.st, err = newState(c.Rand, c.AAGUID, c.AttestationCA); err != nil {
			return nil, err
		}
		if err := k.save(); err != nil {
			return nil, err
		}
	}
	if k.wrapper, err = newKeyWrapper(k.st.WrapSecret); err != nil {
		return nil, err
	}
	if k.batch, err = k.st.batchKey(); err != nil {
		return nil, err
	}
	if k.u2f, err = k.st.u2fKey(); err != nil {
		return nil, err
	}
	k.powerOn = c.Clock()
	// Close, not a caller's context, ends the key's servers: a key
	// outlives the request that made it, as a plugged-in key would.
	k.ctx, k.cancel = context.WithCancel(context.Background())
	return k, nil
}

// fill validates c and replaces zero values with defaults. Slices and maps
// are copied, so the caller may change its Config afterwards.
func (c *Config) fill() error {
	for name, v := range map[string]int{
		"ResidentKeySlots": c.ResidentKeySlots, "MaxMsgSize": c.MaxMsgSize,
		"MaxCredentialCountInList": c.MaxCredentialCountInList, "MaxCredentialIDLength": c.MaxCredentialIDLength,
	} {
		if v < 0 {
			return fmt.Errorf("virtual: Config.%s is negative (%d)", name, v)
		}
	}
	if c.UserPresenceTimeout < 0 {
		return fmt.Errorf("virtual: Config.UserPresenceTimeout is negative (%v)", c.UserPresenceTimeout)
	}
	if c.U2FOnly && c.NoU2F {
		return errors.New("virtual: Config.U2FOnly and Config.NoU2F leave the key no protocol")
	}
	if c.CTAPVersion != CTAP21 && c.CTAPVersion != CTAP20 {
		return fmt.Errorf("virtual: unknown Config.CTAPVersion %d", c.CTAPVersion)
	}
	if c.Attestation < AttestationPacked || c.Attestation > AttestationNone {
		return fmt.Errorf("virtual: unknown Config.Attestation %d", c.Attestation)
	}
	if c.AAGUID == ([16]byte{}) {
		c.AAGUID = DefaultAAGUID
	}
	if c.Algorithms == nil {
		c.Algorithms = []fido.Algorithm{fido.ES256, fido.EdDSA}
	}
	c.Algorithms = slices.Clone(c.Algorithms)
	for _, a := range c.Algorithms {
		if a != fido.ES256 && a != fido.EdDSA {
			return fmt.Errorf("virtual: Config.Algorithms: %v is not supported (only ES256 and EdDSA)", a)
		}
	}
	if c.ResidentKeySlots == 0 {
		c.ResidentKeySlots = defaultResidentKeySlots
	}
	if c.MaxMsgSize == 0 {
		c.MaxMsgSize = defaultMaxMsgSize
	}
	c.MaxMsgSize = min(c.MaxMsgSize, hid.MaxMessageSize)
	if c.MaxCredentialCountInList == 0 {
		c.MaxCredentialCountInList = defaultMaxCredsInList
	}
	if c.MaxCredentialIDLength == 0 {
		c.MaxCredentialIDLength = defaultMaxCredIDLength
	}
	if c.MaxCredentialIDLength < wrappedIDLen {
		return fmt.Errorf("virtual: Config.MaxCredentialIDLength %d is shorter than the key's %d-byte credential IDs",
			c.MaxCredentialIDLength, wrappedIDLen)
	}
	if c.UserPresence == nil {
		c.UserPresence = Approve
	}
	if c.UserPresenceTimeout == 0 {
		c.UserPresenceTimeout = defaultPresenceTimeout
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	c.StatusOverride = maps.Clone(c.StatusOverride)
	return nil
}

// checkLoaded refuses a state file that contradicts the caller's explicit
// settings, which would otherwise be ignored without a word.
func (k *Key) checkLoaded(cfg *Config) error {
	if cfg == nil {
		return nil
	}
	if cfg.AAGUID != ([16]byte{}) && cfg.AAGUID != k.st.AAGUID {
		return fmt.Errorf("virtual: state file %s is a key with AAGUID %x, not Config.AAGUID %x",
			k.cfg.StatePath, k.st.AAGUID, cfg.AAGUID)
	}
	if ca := cfg.AttestationCA; ca != nil && ca.Certificate != nil && !bytes.Equal(ca.Certificate.Raw, k.st.CACert) {
		return fmt.Errorf("virtual: state file %s is a key of another attestation CA than Config.AttestationCA", k.cfg.StatePath)
	}
	return nil
}

// save writes the state to Config.StatePath, if any. The caller holds
// k.mu or has the key to itself.
func (k *Key) save() error {
	if k.cfg.StatePath == "" {
		return nil
	}
	return k.st.save(k.cfg.StatePath)
}

// Close unplugs the key: it stops every server (those of Conn, Open and
// Listen), ends any wait for a touch and waits for them. The state file is
// kept up to date by every command, so nothing is lost. Close is
// idempotent; the key answers no host afterwards.
func (k *Key) Close() error {
	k.mu.Lock()
	k.closed = true
	servers := slices.Collect(maps.Keys(k.servers))
	k.mu.Unlock()
	k.cancel()
	var errs []error
	for _, s := range servers {
		errs = append(errs, s.Close())
	}
	k.wg.Wait()
	// A handler that a server started before it stopped may still hold
	// the key; wait for it, so the state file is not written after Close.
	// Later handlers see k.closed and do nothing.
	k.op.Lock()
	defer k.op.Unlock()
	return errors.Join(errs...)
}

// Counter returns the global signature counter, the signCount of the
// latest authenticator data.
func (k *Key) Counter() uint32 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.st.Counter
}

// SetCounter sets the signature counter, for instance back to an earlier
// value, as a cloned key would be (WebAuthn L3 §6.1.1). The next signature
// carries n+1. It is saved to the state file; the error is the saving's.
func (k *Key) SetCounter(n uint32) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	old := k.st.Counter
	k.st.Counter = n
	if err := k.save(); err != nil {
		k.st.Counter = old
		return err
	}
	return nil
}

// Credentials lists the discoverable credentials the key holds, oldest
// first. The result is a copy.
func (k *Key) Credentials() []Credential {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]Credential, 0, len(k.st.Credentials))
	for _, c := range k.st.Credentials {
		out = append(out, Credential{
			ID: bytes.Clone(c.ID), RPID: c.RPID, UserID: bytes.Clone(c.UserID),
			UserName: c.UserName, UserDisplayName: c.UserDisplayName,
			Algorithm: fido.Algorithm(c.Alg), Created: c.Created,
		})
	}
	return out
}

// Replug simulates unplugging the key and plugging it in again: the reset
// window (10 s after power-up, CTAP 2.1 §6.6) opens again, and pending
// getNextAssertion state and U2F touches are lost, as a power cycle loses
// them. Connected hosts stay connected.
func (k *Key) Replug() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.powerOn = k.cfg.Clock()
	k.next = nil
	k.dropFinishedTouch()
}
