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
// # PIN and user verification
//
// The key speaks authenticatorClientPIN (CTAP 2.1 §6.5) with PIN/UV auth
// protocols two and one: a PIN of 4 to 63 code points (at least
// minPINLength), 8 retries in all, CTAP2_ERR_PIN_AUTH_BLOCKED after three
// wrong PINs in a row until [Key.Replug], CTAP2_ERR_PIN_BLOCKED at none
// left. pinUvAuthTokens carry permissions (mc, ga, cm, lbw, acfg), an RP
// they are bound to, and the usage timer of §6.5.2 (30 s to first use, 10
// minutes at most, driven by Config.Clock); makeCredential and
// getAssertion consume a token's flags and permissions but lbw. A PIN can
// be set from the start with Config.PIN; the key keeps only its hash.
// Config.BuiltInUV adds a simulated fingerprint sensor, decided by a
// [UserVerifier] hook ([UVSucceed], the default, or [UVFail]), with its
// own retries.
//
// Credential management (§6.8; the prototype command 0x41 on a CTAP20
// key), authenticatorConfig (§6.11: toggleAlwaysUv and setMinPINLength),
// authenticatorLargeBlobs (§6.10) and the extensions credProtect,
// hmac-secret, credBlob, minPinLength and largeBlobKey (§12) are there
// too, each with a Config knob to turn it off. enableEnterpriseAttestation
// is left out: the key has no enterprise attestation, and answers it with
// CTAP2_ERR_INVALID_SUBCOMMAND.
//
// Where CTAP 2.1 leaves a choice, the key answers: PIN_NOT_SET to a
// clientPIN subcommand that needs a PIN when none is set, and to a
// non-empty pinUvAuthParam on a key with neither PIN nor built-in UV;
// UV_BLOCKED (not PIN_BLOCKED) when built-in UV is blocked in
// makeCredential and getAssertion; UNSUPPORTED_OPTION to hmac-secret
// with "up" false; KEY_STORE_FULL to more minPinLength RP IDs than
// maxRPIDsForSetMinPINLength (8). A correct PIN restores the built-in UV
// retries too.
//
// # Credentials
//
// A non-discoverable credential costs the key no storage: its ID is the
// private key sealed with AES-GCM under a secret the key holds, bound to
// the relying party, the same format U2F key handles use, so credentials
// move freely between CTAP2 and U2F (CTAP 2.1 §10). Its credProtect level
// and hmac-secret flag travel sealed in the ID too; its hmac-secret keys
// are derived from the ID under the secret. Discoverable credentials, the
// secret, the signature counter, the PIN hash, the retry counters, the
// config settings and the large-blob array persist in Config.StatePath,
// written atomically. The PIN itself is never stored, logged or put in an
// error.
package virtual

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"reflect"
	"slices"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/internal/hid"
	"github.com/fidokit/fidokit/internal/pinuv"
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
	// means 128. It must be at least 64, the length of this key's longest
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
	// file; [Key.AttestationRoot] returns its certificate. A key loaded
	// from StatePath keeps the CA it was made with; a different CA here
	// is an error.
	AttestationCA *AttestationCA
	// UserPresence decides touches. Nil means Approve.
	UserPresence UserPresence
	// UserPresenceTimeout bounds one wait for a touch, or for a finger on
	// the built-in UV sensor; when it passes the key answers
	// CTAP2_ERR_USER_ACTION_TIMEOUT. Zero means 30 s.
	UserPresenceTimeout time.Duration
	// Clock tells the time for the 10 s reset window after power-up, the
	// 30 s life of getNextAssertion state, the usage timer of
	// pinUvAuthTokens and credential creation times. Nil means time.Now.
	Clock func() time.Time
	// Rand is the source of the key's secrets, credential keys and IDs,
	// hmac-secret keys and largeBlobKeys. Nil means crypto/rand. The key
	// reads it one command at a time, so a deterministic source for tests
	// need not be safe for concurrent use. PIN/UV key agreement keys and
	// pinUvAuthTokens, which die at power-down, always come from
	// crypto/rand.
	Rand io.Reader
	// StatePath is the file that keeps the key's secrets, discoverable
	// credentials and counter across restarts. If it exists, New loads
	// it; otherwise New makes a key and saves it there. Either way New
	// first removes the temporary files (".<name>.tmp-*" beside it) that
	// a save interrupted by a crash leaves, since they hold the key's
	// secrets too; so one StatePath serves one Key at a time. Empty means
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
	// ForceUVOff clears the UV flag in the same way, after the key has
	// verified the user by PIN or built-in UV.
	ForceUVOff bool
	// BackupEligible and BackupState set the BE and BS flags on every
	// makeCredential and getAssertion, as a synced passkey provider
	// would (WebAuthn L3 §6.1.3); a hardware key sets neither. BS
	// without BE is the inconsistency a relying party must reject.
	// Like Chromium's virtual authenticator's backupEligibility and
	// backupState options.
	BackupEligible, BackupState bool

	// NoClientPIN makes a key without a PIN (CTAP 2.1 §6.5): getInfo
	// leaves the clientPin option out and authenticatorClientPIN offers
	// only what built-in UV needs. By default the key supports a PIN and
	// has none set (clientPin false).
	NoClientPIN bool
	// PIN is a PIN a new key starts with, for tests that need one from
	// the outset. It must follow the rules of setPIN (CTAP 2.1 §6.5.5.5:
	// 4 to 63 bytes of UTF-8 without NUL, at least MinPINLength code
	// points). The key keeps only LEFT(SHA-256(PIN), 16), as setPIN
	// would, and New clears the field in its copy of the Config. Empty
	// means no PIN. A key loaded from StatePath keeps the PIN it has.
	PIN string
	// MinPINLength is the minimum PIN length in Unicode code points of a
	// new or reset key (getInfo minPINLength, CTAP 2.1 §6.4); the
	// setMinPINLength subcommand can raise it. Zero means 4; at most 63.
	MinPINLength int
	// AlwaysUV is the alwaysUv setting of a new or reset key (CTAP 2.1
	// §6.11.2): every makeCredential and getAssertion then needs user
	// verification, and U2F is off.
	AlwaysUV bool

	// BuiltInUV gives the key built-in user verification, a simulated
	// fingerprint sensor (CTAP 2.1 §6.5.5.7.3): getInfo reports uv true,
	// the uv option of makeCredential and getAssertion works, and
	// getPinUvAuthTokenUsingUvWithPermissions issues tokens. Each attempt
	// asks UserVerifier.
	BuiltInUV bool
	// UserVerifier decides each built-in UV attempt. Nil means UVSucceed.
	UserVerifier UserVerifier
	// MaxUVRetries is how many failed built-in UV attempts in a row block
	// it (CTAP2_ERR_UV_BLOCKED; getUVRetries, §6.5.5.3). Zero means 25,
	// the most the spec allows.
	MaxUVRetries int

	// NoHMACSecret, NoCredProtect, NoCredBlob and NoMinPINLengthExtension
	// turn off the extension of that name (CTAP 2.1 §12.5, §12.1, §12.2,
	// §12.4); the key then ignores its input, as for any unknown
	// extension, and getInfo does not list it. A CTAP20 key supports only
	// hmac-secret and credProtect whatever these say.
	NoHMACSecret            bool
	NoCredProtect           bool
	NoCredBlob              bool
	NoMinPINLengthExtension bool
	// NoLargeBlobs turns off authenticatorLargeBlobs (CTAP 2.1 §6.10) and
	// the largeBlobKey extension (§12.3), which serves it. A CTAP20 key
	// has neither.
	NoLargeBlobs bool
	// MaxCredBlobLength is the longest credBlob the key stores (getInfo
	// maxCredBlobLength, CTAP 2.1 §12.2). Zero means 32, the least the
	// spec allows.
	MaxCredBlobLength int
	// MaxSerializedLargeBlobArray is the room for the large-blob array in
	// bytes (getInfo maxSerializedLargeBlobArray, CTAP 2.1 §6.10). Zero
	// means 1024, the least the spec allows.
	MaxSerializedLargeBlobArray int
}

// Key is a virtual security key. It is safe for concurrent use and, like a
// real key, handles one operation at a time: a command from a second host
// waits while the first one waits for a touch, until it is done or the
// second host cancels it. Each host's getNextAssertion and credential
// enumeration state is its own, so hosts that take turns neither disturb
// nor continue each other's.
type Key struct {
	cfg Config

	// op holds a token for the whole of one CTAP2 or U2F command; see
	// lockOp.
	op chan struct{}
	// approveAll is set when Config.UserPresence is Approve, whose answer
	// askPresence then gives without a goroutine, a timer and a context.
	approveAll bool

	mu       sync.Mutex // guards the fields below
	st       *state
	wrapper  *keyWrapper
	signers  signerCache // credentials' keys, parsed once
	batch    crypto.Signer
	u2f      crypto.Signer
	caCert   *x509.Certificate // the attestation root, parsed from st.CACert
	powerOn  time.Time
	u2fTouch *backgroundTouch
	closed   bool
	servers  map[*Server]struct{}
	// auth is the volatile PIN/UV state: key agreement keys, tokens and
	// the count of wrong PINs since power-up.
	auth pinUvAuth
	// hosts is what the key remembers between one host's commands, per
	// host; see hostState.
	hosts     map[hid.Origin]*hostState
	hostClock uint64 // orders hosts by last use, for forgetting the oldest
	// blobWrite is a large-blob array write in progress (§6.10.2); nil
	// when none is.
	blobWrite *largeBlobWrite

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
	// CredProtect is the credential's credProtect policy (CTAP 2.1
	// §12.1): 1 (userVerificationOptional, also for credentials made
	// without the extension), 2 or 3.
	CredProtect int
	// HMACSecret reports whether the credential was made with the
	// hmac-secret extension (§12.5).
	HMACSecret bool
	// CredBlob is the credBlob stored with it (§12.2), or nil.
	CredBlob []byte
	// LargeBlobKey is its largeBlobKey (§12.3), or nil.
	LargeBlobKey []byte
}

var errKeyClosed = errors.New("virtual: key is closed")

// New makes a key from cfg; nil means the defaults documented on Config.
// With cfg.StatePath naming an existing file the key is the one saved
// there (an unusable file gives a *StateError); otherwise a new key is
// made and, with a StatePath, saved. The key counts as plugged in from
// now: the reset window starts.
func New(cfg *Config) (*Key, error) {
	k := &Key{servers: map[*Server]struct{}{}, op: make(chan struct{}, 1)}
	if cfg != nil {
		k.cfg = *cfg
	}
	if err := k.cfg.fill(); err != nil {
		return nil, err
	}
	c := &k.cfg
	k.approveAll = reflect.ValueOf(c.UserPresence).Pointer() == reflect.ValueOf(Approve).Pointer()
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
		if k.st.migrated {
			k.st.UVRetries, k.st.MinPINLength, k.st.AlwaysUV = c.MaxUVRetries, c.MinPINLength, c.AlwaysUV
		}
		k.st.UVRetries = min(k.st.UVRetries, c.MaxUVRetries)
	} else {
		if k.st, err = newState(c.Rand, c.AAGUID, c.AttestationCA); err != nil {
			return nil, err
		}
		k.st.UVRetries, k.st.MinPINLength, k.st.AlwaysUV = c.MaxUVRetries, c.MinPINLength, c.AlwaysUV
		if c.PIN != "" {
			k.st.PINHash = pinuv.PINHash(c.PIN)
			k.st.PINCodePoints = utf8.RuneCountInString(c.PIN)
		}
		if err := k.save(); err != nil {
			return nil, err
		}
	}
	// The key knows its PIN only by its hash from here on.
	c.PIN = ""
	if k.wrapper, err = newKeyWrapper(k.st.WrapSecret); err != nil {
		return nil, err
	}
	if k.batch, err = k.st.batchKey(); err != nil {
		return nil, err
	}
	if k.u2f, err = k.st.u2fKey(); err != nil {
		return nil, err
	}
	if k.caCert, err = x509.ParseCertificate(k.st.CACert); err != nil {
		return nil, fmt.Errorf("virtual: parsing attestation CA certificate: %w", err)
	}
	k.powerOn = c.Clock()
	if err := k.powerUpPinUvAuth(); err != nil {
		return nil, fmt.Errorf("virtual: making key agreement keys: %w", err)
	}
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
		"MinPINLength": c.MinPINLength, "MaxUVRetries": c.MaxUVRetries,
		"MaxCredBlobLength": c.MaxCredBlobLength, "MaxSerializedLargeBlobArray": c.MaxSerializedLargeBlobArray,
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
	if c.MaxCredentialIDLength < maxWrappedIDLen {
		return fmt.Errorf("virtual: Config.MaxCredentialIDLength %d is shorter than the key's %d-byte credential IDs",
			c.MaxCredentialIDLength, maxWrappedIDLen)
	}
	if c.MinPINLength == 0 {
		c.MinPINLength = pinuv.MinPINCodePoints
	}
	if c.MinPINLength < pinuv.MinPINCodePoints || c.MinPINLength > pinuv.MaxPINBytes {
		return fmt.Errorf("virtual: Config.MinPINLength %d is outside %d..%d", c.MinPINLength, pinuv.MinPINCodePoints, pinuv.MaxPINBytes)
	}
	if c.MaxUVRetries == 0 {
		c.MaxUVRetries = maxUVRetries
	}
	if c.MaxUVRetries > maxUVRetries {
		return fmt.Errorf("virtual: Config.MaxUVRetries %d is above the %d CTAP 2.1 allows", c.MaxUVRetries, maxUVRetries)
	}
	if c.MaxCredBlobLength == 0 {
		c.MaxCredBlobLength = minCredBlobLength
	}
	if c.MaxCredBlobLength < minCredBlobLength {
		return fmt.Errorf("virtual: Config.MaxCredBlobLength %d is below the %d CTAP 2.1 requires", c.MaxCredBlobLength, minCredBlobLength)
	}
	if c.MaxSerializedLargeBlobArray == 0 {
		c.MaxSerializedLargeBlobArray = minLargeBlobArray
	}
	if c.MaxSerializedLargeBlobArray < minLargeBlobArray {
		return fmt.Errorf("virtual: Config.MaxSerializedLargeBlobArray %d is below the %d CTAP 2.1 requires",
			c.MaxSerializedLargeBlobArray, minLargeBlobArray)
	}
	if c.PIN != "" {
		if c.NoClientPIN {
			return errors.New("virtual: Config.PIN is set on a key with Config.NoClientPIN")
		}
		// The errors name the rule, never the PIN: a Config may come from
		// a file, and error text ends up in logs.
		if _, err := pinuv.PadPIN(c.PIN); err != nil {
			// pinuv's errors carry lengths, never the PIN.
			return fmt.Errorf("virtual: Config.PIN breaks the PIN rules of CTAP 2.1 §6.5.1: %w", err)
		}
		if utf8.RuneCountInString(c.PIN) < c.MinPINLength {
			return fmt.Errorf("virtual: Config.PIN is shorter than Config.MinPINLength %d", c.MinPINLength)
		}
	}
	if c.UserVerifier == nil {
		c.UserVerifier = UVSucceed
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
	k.op <- struct{}{}
	defer k.unlockOp()
	return errors.Join(errs...)
}

// lockOp waits until the key is free for one command: like a real key,
// it carries out one at a time, so a command from one host waits while
// another host's waits for a touch (the waiting host sees KEEPALIVE
// PROCESSING). The wait ends without the key when ctx is done, that is
// when the host sends CTAPHID_CANCEL, re-INITs its channel or goes away,
// so a cancelled command never runs later, after the host gave up on it,
// and the host's channel is free at once. lockOp reports whether it got
// the key; the caller then calls unlockOp when the command is done.
func (k *Key) lockOp(ctx context.Context) bool {
	select {
	case k.op <- struct{}{}:
	default:
		// Taken: wait. Only then is ctx's Done asked for, which for the
		// CTAPHID server's lazily made contexts is what costs.
		select {
		case k.op <- struct{}{}:
		case <-ctx.Done():
			return false
		}
	}
	if ctx.Err() != nil { // cancelled as the key came free
		k.unlockOp()
		return false
	}
	return true
}

// unlockOp ends a command that lockOp started.
func (k *Key) unlockOp() { <-k.op }

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

// AttestationRoot returns the certificate of the CA the key's attestation
// certificates chain to (packed batch and fido-u2f): Config.AttestationCA's,
// or, when that was nil, the self-signed root the key made with itself
// and keeps in its state file. Give it to a relying party that checks
// attestation, for instance in webauthn.Policy.AttestationRoots, to have it
// trust this key. Reset keeps it. The certificate is shared: do not modify
// it.
func (k *Key) AttestationRoot() *x509.Certificate { return k.caCert }

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
			CredProtect: c.protect(), HMACSecret: c.CredRandomWithUV != nil,
			CredBlob: bytes.Clone(c.CredBlob), LargeBlobKey: bytes.Clone(c.LargeBlobKey),
		})
	}
	return out
}

// Replug simulates unplugging the key and plugging it in again: the reset
// window (10 s after power-up, CTAP 2.1 §6.6) opens again; pending
// getNextAssertion state, U2F touches, credential management
// enumerations and large-blob writes are lost; the PIN/UV key agreement
// keys and pinUvAuthTokens are made anew (§6.5.4 initialize); and PIN
// entry blocked by three wrong PINs in a row (CTAP2_ERR_PIN_AUTH_BLOCKED)
// is open again, as a power cycle does. The PIN, its retries and all
// stored state are kept. Connected hosts stay connected.
func (k *Key) Replug() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.powerOn = k.cfg.Clock()
	k.hosts = nil
	k.blobWrite = nil
	if err := k.powerUpPinUvAuth(); err != nil {
		// Only a failing Config.Rand gets here. Without new keys and
		// tokens the old ones would outlive the power cycle, so none is
		// left usable instead.
		k.auth = pinUvAuth{}
	}
	k.dropFinishedTouch()
}

// PINRetries returns how many wrong PINs the key still allows
// (getPINRetries, CTAP 2.1 §6.5.5.2): 8 on a new key, 0 once the PIN is
// blocked.
func (k *Key) PINRetries() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.st.PINRetries
}

// UVRetries returns how many failed built-in UV attempts the key still
// allows (getUVRetries, CTAP 2.1 §6.5.5.3).
func (k *Key) UVRetries() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.st.UVRetries
}

// HasPIN reports whether a PIN is set (getInfo clientPin true, CTAP 2.1
// §6.4).
func (k *Key) HasPIN() bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.st.PINHash != nil
}

// maxHosts bounds the hosts whose state between commands a key keeps at
// once; the one heard from least recently is forgotten first.
const maxHosts = 16

// hostState is what a key remembers between one host's commands: the
// getAssertion parameters getNextAssertion works from (CTAP 2.1 §6.3) and
// a credential management enumeration (§6.8.3, §6.8.4). A host is one
// CTAPHID channel of one connection (hid.RequestOrigin). Within a host any
// other command ends them, as the spec says; another host's commands
// neither end nor continue them. A real key has one such state and simply
// answers the second of two hosts that interleave with NOT_ALLOWED; this
// one keeps both working, and never lets one host's getNextAssertion or
// getNextRP hand out what another host's getAssertion, or PIN-authorised
// enumeration, began.
type hostState struct {
	next *pendingAssertions
	enum *credEnum
	used uint64 // k.hostClock when last stored to
}

// host returns the state of host, making it (and forgetting the least
// recently used one beyond maxHosts) if need be. The caller holds k.mu.
func (k *Key) host(host hid.Origin) *hostState {
	k.hostClock++
	if h := k.hosts[host]; h != nil {
		h.used = k.hostClock
		return h
	}
	if k.hosts == nil {
		k.hosts = map[hid.Origin]*hostState{}
	}
	if len(k.hosts) >= maxHosts {
		var oldest hid.Origin
		first := true
		for o, h := range k.hosts {
			if first || h.used < k.hosts[oldest].used {
				oldest, first = o, false
			}
		}
		delete(k.hosts, oldest)
	}
	h := &hostState{used: k.hostClock}
	k.hosts[host] = h
	return h
}

// dropIdleHost forgets host once it has nothing to remember. The caller
// holds k.mu.
func (k *Key) dropIdleHost(host hid.Origin) {
	if h := k.hosts[host]; h != nil && h.next == nil && h.enum == nil {
		delete(k.hosts, host)
	}
}
