// Package virtual is a software FIDO2 (CTAP 2.1) and U2F security key for
// tests and demos. It speaks CTAPHID, the wire protocol of USB keys, so the
// code above it runs exactly as with hardware:
//
//	k, err := virtual.New(nil)          // in memory, touches approved
//	dev, err := k.Open(ctx, nil)        // a *fido.Device, in-process
//	srv, err := k.Listen("/tmp/key.sock") // or serve it on a socket
//
// [Config] sets what the key can do (algorithms, discoverable credential
// slots, message limits, CTAP2 or U2F only, attestation) and how it
// misbehaves on purpose (a forced status, a bad signature, a cleared UP
// flag, a rolled-back counter via [Key.SetCounter]), so that code can be
// tested against keys that do not follow the rules. [Button] scripts the
// person touching it.
//
// A non-discoverable credential costs the key no storage: its ID is the
// private key sealed with AES-GCM under a secret the key holds, bound to
// the relying party. Discoverable credentials, the secret and the signature
// counter persist in Config.StatePath, written atomically.
package virtual

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sync"
	"time"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/hid"
)

// DefaultAAGUID identifies the fidokit virtual key model.
var DefaultAAGUID = [16]byte{0xf1, 0xd0, 0x6b, 0x17, 0x5e, 0x11, 0x4a, 0x1f, 0x9c, 0x0d, 0x1d, 0x0c, 0x17, 0xf1, 0xd0, 0x01}

// AttestationType is how the key attests new credentials.
type AttestationType int

// Attestation types (WebAuthn L3 §6.5.3, §8.2).
const (
	// AttestationPacked is packed attestation with a batch certificate
	// chained to Config.AttestationCA, as FIDO-certified keys do.
	AttestationPacked AttestationType = iota
	// AttestationSelf is packed self attestation: signed by the new
	// credential's own key, no certificate.
	AttestationSelf
	// AttestationNone is the "none" format with an empty statement.
	AttestationNone
)

// CTAPVersion is the newest CTAP version the key claims.
type CTAPVersion int

// CTAP versions.
const (
	CTAP21 CTAPVersion = iota // FIDO_2_0 and FIDO_2_1
	CTAP20                    // FIDO_2_0 only: no authenticatorSelection
)

// Firmware version reported in getInfo and CTAPHID INIT.
const (
	firmwareMajor, firmwareMinor, firmwareBuild = 0, 1, 0
)

// Config sets up a virtual key. A nil *Config, and the zero value of each
// field, mean the defaults documented on the field.
type Config struct {
	// AAGUID is the key model's AAGUID. Zero means DefaultAAGUID.
	AAGUID [16]byte
	// Algorithms the key offers, preferred first. Nil means ES256, EdDSA.
	Algorithms []fido.Algorithm
	// ResidentKeySlots is how many discoverable credentials fit. Zero
	// means 25.
	ResidentKeySlots int
	// MaxMsgSize is the largest CTAP request accepted. Zero means 1200,
	// as on common keys; at most 7609.
	MaxMsgSize int
	// MaxCredentialCountInList bounds allow and exclude lists. Zero means 8.
	MaxCredentialCountInList int
	// Version is the CTAP version claimed. Zero means CTAP 2.1.
	Version CTAPVersion
	// U2FOnly makes a CTAP1/U2F-only key: no CBOR capability.
	U2FOnly bool
	// NoU2F makes a CTAP2-only key: no CTAPHID_MSG.
	NoU2F bool
	// Attestation is the attestation type. Zero means AttestationPacked.
	Attestation AttestationType
	// AttestationCA issues the batch and U2F certificates. Nil means a CA
	// generated with the key (and kept in its state file).
	AttestationCA *AttestationCA
	// UserPresence decides touches. Nil means Approve.
	UserPresence UserPresence
	// UserPresenceTimeout bounds a wait for a touch. Zero means 30 s.
	UserPresenceTimeout time.Duration
	// Clock tells the time, for the reset window. Nil means time.Now.
	Clock func() time.Time
	// Rand is the source of keys and IDs. Nil means crypto/rand.
	Rand io.Reader
	// StatePath is the file that keeps the key's secrets, discoverable
	// credentials and counter across restarts. Empty means memory only.
	StatePath string

	// StatusOverride answers the listed CTAP command bytes with the given
	// status without doing anything: a key that fails on purpose.
	StatusOverride map[byte]fido.Status
	// BadSignature makes every signature invalid.
	BadSignature bool
	// ForceUPOff clears the UP flag in authenticator data although the
	// person touched the key (the signature covers the cleared flag).
	ForceUPOff bool
}

// Key is a virtual security key. It is safe for concurrent use and, like a
// real key, handles one CTAP operation at a time.
type Key struct {
	cfg    Config
	ctx    context.Context // ends at Close; bounds background presence
	cancel context.CancelFunc
	wg     sync.WaitGroup

	op sync.Mutex // one CTAP operation at a time

	mu       sync.Mutex // guards the fields below
	st       *state
	wrapper  *keyWrapper
	batch    crypto.Signer
	u2f      crypto.Signer
	powerOn  time.Time
	next     *pendingAssertions
	u2fTouch *backgroundTouch
}

// Credential describes a discoverable credential held by a Key.
type Credential struct {
	ID        []byte
	RPID      string
	UserID    []byte
	UserName  string
	Algorithm fido.Algorithm
	Created   time.Time
}

// New makes a key. With cfg.StatePath naming an existing file the key is
// the one saved there; otherwise a new key is made (and saved there).
func New(cfg *Config) (*Key, error) {
	k := &Key{}
	if cfg != nil {
		k.cfg = *cfg
	}
	c := &k.cfg
	if c.AAGUID == ([16]byte{}) {
		c.AAGUID = DefaultAAGUID
	}
	if c.Algorithms == nil {
		c.Algorithms = []fido.Algorithm{fido.ES256, fido.EdDSA}
	}
	if c.ResidentKeySlots <= 0 {
		c.ResidentKeySlots = 25
	}
	if c.MaxMsgSize <= 0 {
		c.MaxMsgSize = 1200
	}
	c.MaxMsgSize = min(c.MaxMsgSize, hid.MaxMessageSize)
	if c.MaxCredentialCountInList <= 0 {
		c.MaxCredentialCountInList = 8
	}
	if c.UserPresence == nil {
		c.UserPresence = Approve
	}
	if c.UserPresenceTimeout <= 0 {
		c.UserPresenceTimeout = 30 * time.Second
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	var err error
	if c.StatePath != "" {
		k.st, err = loadState(c.StatePath)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("virtual: %w", err)
		}
	}
	if k.st == nil {
		if k.st, err = newState(c.Rand, c.AAGUID, c.AttestationCA); err != nil {
			return nil, fmt.Errorf("virtual: making key: %w", err)
		}
		if err := k.save(); err != nil {
			return nil, err
		}
	}
	if err := k.loadSecrets(); err != nil {
		return nil, err
	}
	k.powerOn = c.Clock()
	k.ctx, k.cancel = context.WithCancel(context.Background())
	return k, nil
}

func (k *Key) loadSecrets() error {
	var err error
	if k.wrapper, err = newKeyWrapper(k.st.WrapSecret); err != nil {
		return fmt.Errorf("virtual: %w", err)
	}
	if k.batch, err = k.st.batchKey(); err != nil {
		return fmt.Errorf("virtual: %w", err)
	}
	if k.u2f, err = k.st.u2fKey(); err != nil {
		return fmt.Errorf("virtual: %w", err)
	}
	return nil
}

func (k *Key) save() error {
	if k.cfg.StatePath == "" {
		return nil
	}
	if err := k.st.save(k.cfg.StatePath); err != nil {
		return fmt.Errorf("virtual: saving state: %w", err)
	}
	return nil
}

// Close stops every server of the key. The state file is always up to
// date, so nothing is lost.
func (k *Key) Close() error {
	k.cancel()
	k.wg.Wait()
	return nil
}

// Counter returns the global signature counter.
func (k *Key) Counter() uint32 {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.st.Counter
}

// SetCounter sets the signature counter, for instance back to an earlier
// value to act as a cloned key would. It is saved.
func (k *Key) SetCounter(n uint32) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.st.Counter = n
	return k.save()
}

// Credentials lists the discoverable credentials the key holds, oldest
// first.
func (k *Key) Credentials() []Credential {
	k.mu.Lock()
	defer k.mu.Unlock()
	out := make([]Credential, 0, len(k.st.Credentials))
	for _, c := range k.st.Credentials {
		out = append(out, Credential{ID: bytes.Clone(c.ID), RPID: c.RPID, UserID: bytes.Clone(c.UserID),
			UserName: c.UserName, Algorithm: fido.Algorithm(c.Alg), Created: c.Created})
	}
	return out
}

// Replug simulates unplugging the key and plugging it in again: the reset
// window (10 s after power-up) opens again and pending getNextAssertion
// state is dropped.
func (k *Key) Replug() {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.powerOn = k.cfg.Clock()
	k.next = nil
}

func (k *Key) supports(alg int64) bool {
	for _, a := range k.cfg.Algorithms {
		if int64(a) == alg {
			return true
		}
	}
	return false
}

// pendingAssertions is getNextAssertion's state (CTAP 2.1 §6.3).
type pendingAssertions struct {
	creds    []candidate
	hash     []byte
	rpIDHash [32]byte
	up       bool
	expires  time.Time
}

// candidate is a credential able to sign for an RP.
type candidate struct {
	id       []byte
	alg      int64
	priv     []byte
	userID   []byte
	resident bool
}

func statusOnly(s ctap.Status) []byte { return []byte{byte(s)} }

// handleCBOR answers one CTAP2 request: command byte, then CBOR.
func (k *Key) handleCBOR(ctx context.Context, req []byte, status func(byte)) []byte {
	if len(req) == 0 {
		return statusOnly(ctap.StatusInvalidLength)
	}
	if len(req) > k.cfg.MaxMsgSize {
		// CTAP 2.1 §8.2: a request longer than maxMsgSize.
		return statusOnly(ctap.StatusInvalidLength)
	}
	k.op.Lock()
	defer k.op.Unlock()
	cmd, params := ctap.Command(req[0]), req[1:]
	if s, ok := k.cfg.StatusOverride[byte(cmd)]; ok {
		return statusOnly(s)
	}
	if cmd != ctap.CmdGetNextAssertion {
		k.mu.Lock()
		k.next = nil // any other command ends getNextAssertion (§6.3)
		k.mu.Unlock()
	}
	noParams := func(f func() []byte) []byte {
		if len(params) != 0 {
			return statusOnly(ctap.StatusInvalidLength)
		}
		return f()
	}
	switch cmd {
	case ctap.CmdGetInfo:
		return noParams(k.getInfo)
	case ctap.CmdMakeCredential:
		return k.makeCredential(ctx, params, status)
	case ctap.CmdGetAssertion:
		return k.getAssertion(ctx, params, status)
	case ctap.CmdGetNextAssertion:
		return noParams(k.getNextAssertion)
	case ctap.CmdReset:
		return noParams(func() []byte { return k.reset(ctx, status) })
	case ctap.CmdSelection:
		if k.cfg.Version == CTAP20 {
			return statusOnly(ctap.StatusInvalidCommand)
		}
		return noParams(func() []byte { return statusOnly(k.presence(ctx, status, "selection", "")) })
	}
	return statusOnly(ctap.StatusInvalidCommand)
}

func (k *Key) getInfo() []byte {
	versions := []string{"FIDO_2_0"}
	if k.cfg.Version == CTAP21 {
		versions = append(versions, "FIDO_2_1")
	}
	if !k.cfg.NoU2F {
		versions = append(versions, "U2F_V2")
	}
	r := &ctap.GetInfoResponse{
		Versions:                 versions,
		AAGUID:                   k.st.AAGUID[:],
		Options:                  map[string]bool{ctap.OptRK: true, ctap.OptUP: true, ctap.OptPlat: false},
		MaxMsgSize:               uint64(k.cfg.MaxMsgSize),
		MaxCredentialCountInList: uint64(k.cfg.MaxCredentialCountInList),
		MaxCredentialIDLength:    128,
		Transports:               []string{"usb"},
		FirmwareVersion:          firmwareMajor<<16 | firmwareMinor<<8 | firmwareBuild,
	}
	for _, a := range k.cfg.Algorithms {
		r.Algorithms = append(r.Algorithms, ctap.CredentialParam{Type: "public-key", Alg: int64(a)})
	}
	if k.cfg.Version == CTAP21 {
		k.mu.Lock()
		left := uint64(max(k.cfg.ResidentKeySlots-len(k.st.Credentials), 0))
		k.mu.Unlock()
		r.RemainingDiscoverableCredentials = &left
	}
	return ctap.EncodeResponse(r)
}

// presence waits for a touch and returns the status to answer with.
func (k *Key) presence(ctx context.Context, status func(byte), op, rpID string) ctap.Status {
	status(hid.KeepaliveUPNeeded)
	defer status(hid.KeepaliveProcessing)
	pctx, cancel := context.WithTimeout(ctx, k.cfg.UserPresenceTimeout)
	defer cancel()
	err := k.cfg.UserPresence(pctx, PresenceRequest{Op: op, RPID: rpID})
	switch {
	case err == nil:
		return ctap.StatusOK
	case ctx.Err() != nil:
		return ctap.StatusKeepaliveCancel
	case pctx.Err() != nil:
		return ctap.StatusUserActionTimeout
	default:
		return ctap.StatusOperationDenied
	}
}

func decodeFailure(err error) []byte {
	var se *ctap.SyntaxError
	if errors.As(err, &se) {
		return statusOnly(se.Status())
	}
	return statusOnly(ctap.StatusInvalidCBOR)
}

// owned returns the credential with this ID if it is the key's and for the
// RP: a discoverable one, or a wrapped key sealed for this RP.
func (k *Key) owned(rpID string, rpIDHash [32]byte, id []byte) (candidate, bool) {
	for _, c := range k.st.Credentials {
		if c.RPID == rpID && bytes.Equal(c.ID, id) {
			return candidate{id: c.ID, alg: c.Alg, priv: c.PrivateKey, userID: c.UserID, resident: true}, true
		}
	}
	alg, priv, ok := k.wrapper.unwrap(rpIDHash, id)
	if !ok {
		return candidate{}, false
	}
	return candidate{id: id, alg: alg, priv: priv}, true
}

// makeCredential follows CTAP 2.1 §6.1.2.
func (k *Key) makeCredential(ctx context.Context, params []byte, status func(byte)) []byte {
	r, err := ctap.DecodeMakeCredentialRequest(params)
	if err != nil {
		return decodeFailure(err)
	}
	// Step 1: a zero-length pinUvAuthParam asks for a touch; this key has
	// no PIN yet, so after the touch it says so.
	if r.PinUvAuthParam != nil {
		if len(r.PinUvAuthParam) == 0 {
			if s := k.presence(ctx, status, "makeCredential", r.RP.ID); s != ctap.StatusOK {
				return statusOnly(s)
			}
		}
		return statusOnly(ctap.StatusPINNotSet)
	}
	var alg int64
	for _, p := range r.PubKeyCredParams {
		if p.Type == "public-key" && k.supports(p.Alg) {
			alg = p.Alg
			break
		}
	}
	if alg == 0 {
		return statusOnly(ctap.StatusUnsupportedAlgorithm)
	}
	if up, ok := r.Options[ctap.OptUP]; ok && !up {
		return statusOnly(ctap.StatusInvalidOption)
	}
	if r.Options[ctap.OptUV] {
		return statusOnly(ctap.StatusInvalidOption) // no built-in user verification
	}
	rk := r.Options[ctap.OptRK]
	if len(r.ExcludeList) > k.cfg.MaxCredentialCountInList {
		return statusOnly(ctap.StatusLimitExceeded)
	}
	rpIDHash := sha256.Sum256([]byte(r.RP.ID))
	k.mu.Lock()
	excluded := false
	for _, d := range r.ExcludeList {
		if _, ok := k.owned(r.RP.ID, rpIDHash, d.ID); ok && d.Type == "public-key" {
			excluded = true
			break
		}
	}
	replaces, full := -1, false
	for i, c := range k.st.Credentials {
		if c.RPID == r.RP.ID && bytes.Equal(c.UserID, r.User.ID) {
			replaces = i
		}
	}
	if rk && replaces < 0 && len(k.st.Credentials) >= k.cfg.ResidentKeySlots {
		full = true
	}
	k.mu.Unlock()
	if excluded {
		// Step 7: wait for the touch first, so that a site cannot find out
		// silently which keys a person has.
		if s := k.presence(ctx, status, "makeCredential", r.RP.ID); s != ctap.StatusOK {
			return statusOnly(s)
		}
		return statusOnly(ctap.StatusCredentialExcluded)
	}
	if full {
		return statusOnly(ctap.StatusKeyStoreFull)
	}
	if s := k.presence(ctx, status, "makeCredential", r.RP.ID); s != ctap.StatusOK {
		return statusOnly(s)
	}

	signer, raw, err := newPrivateKey(k.cfg.Rand, alg)
	if err != nil {
		return statusOnly(ctap.StatusOther)
	}
	cose, err := ctap.MarshalPublicKey(signer.Public())
	if err != nil {
		return statusOnly(ctap.StatusOther)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	var id []byte
	if rk {
		id = make([]byte, 32)
		if _, err := io.ReadFull(k.cfg.Rand, id); err != nil {
			return statusOnly(ctap.StatusOther)
		}
	} else if id, err = k.wrapper.wrap(k.cfg.Rand, rpIDHash, alg, raw); err != nil {
		return statusOnly(ctap.StatusOther)
	}
	old := *k.st
	old.Credentials = append([]residentCredential(nil), k.st.Credentials...)
	if rk {
		c := residentCredential{ID: id, RPID: r.RP.ID, RPName: r.RP.Name, UserID: r.User.ID,
			UserName: r.User.Name, UserDisplayName: r.User.DisplayName, Alg: alg, PrivateKey: raw,
			Created: k.cfg.Clock().UTC()}
		if replaces >= 0 {
			k.st.Credentials = append(k.st.Credentials[:replaces], k.st.Credentials[replaces+1:]...)
		}
		k.st.Credentials = append(k.st.Credentials, c)
	}
	k.st.Counter++
	flags := ctap.FlagUP
	if k.cfg.ForceUPOff {
		flags &^= ctap.FlagUP
	}
	ad := (&ctap.AuthData{
		RPIDHash:  rpIDHash,
		Flags:     flags,
		SignCount: k.st.Counter,
		Attested:  &ctap.AttestedCredential{AAGUID: k.st.AAGUID, CredentialID: id, PublicKey: cose},
	}).Marshal()
	format, stmt, err := k.attest(alg, signer, append(bytes.Clone(ad), r.ClientDataHash...))
	if err != nil {
		*k.st = old
		return statusOnly(ctap.StatusOther)
	}
	if err := k.save(); err != nil {
		*k.st = old // a key that could not store the credential has none
		return statusOnly(ctap.StatusOther)
	}
	return ctap.EncodeResponse(&ctap.MakeCredentialResponse{Format: format, AuthData: ad, AttStmt: stmt})
}

// attest makes the attestation statement over authData||clientDataHash
// (WebAuthn L3 §8.2 packed, §8.7 none).
func (k *Key) attest(alg int64, credKey crypto.Signer, signed []byte) (string, []byte, error) {
	switch k.cfg.Attestation {
	case AttestationNone:
		return "none", ctap.MustMarshal(map[string]any{}), nil
	case AttestationSelf:
		sig, err := k.sign(credKey, alg, signed)
		if err != nil {
			return "", nil, err
		}
		return "packed", ctap.MustMarshal(map[string]any{"alg": alg, "sig": sig}), nil
	default:
		sig, err := k.sign(k.batch, ctap.AlgES256, signed)
		if err != nil {
			return "", nil, err
		}
		return "packed", ctap.MustMarshal(map[string]any{"alg": ctap.AlgES256, "sig": sig, "x5c": [][]byte{k.st.BatchCert}}), nil
	}
}

func (k *Key) sign(signer crypto.Signer, alg int64, msg []byte) ([]byte, error) {
	sig, err := sign(signer, alg, msg)
	if err == nil && k.cfg.BadSignature {
		sig[len(sig)-1] ^= 0x01 // still well-formed, never valid
	}
	return sig, err
}

// getAssertion follows CTAP 2.1 §6.2.2.
func (k *Key) getAssertion(ctx context.Context, params []byte, status func(byte)) []byte {
	r, err := ctap.DecodeGetAssertionRequest(params)
	if err != nil {
		return decodeFailure(err)
	}
	if r.PinUvAuthParam != nil {
		return statusOnly(ctap.StatusPINNotSet)
	}
	if _, ok := r.Options[ctap.OptRK]; ok {
		return statusOnly(ctap.StatusUnsupportedOption)
	}
	if r.Options[ctap.OptUV] {
		return statusOnly(ctap.StatusInvalidOption)
	}
	up := true
	if v, ok := r.Options[ctap.OptUP]; ok {
		up = v
	}
	if len(r.AllowList) > k.cfg.MaxCredentialCountInList {
		return statusOnly(ctap.StatusLimitExceeded)
	}
	rpIDHash := sha256.Sum256([]byte(r.RPID))
	var creds []candidate
	k.mu.Lock()
	if len(r.AllowList) > 0 {
		for _, d := range r.AllowList {
			if c, ok := k.owned(r.RPID, rpIDHash, d.ID); ok && d.Type == "public-key" {
				creds = append(creds, c)
				break
			}
		}
	} else {
		for i := len(k.st.Credentials) - 1; i >= 0; i-- { // newest first
			c := k.st.Credentials[i]
			if c.RPID == r.RPID {
				creds = append(creds, candidate{id: c.ID, alg: c.Alg, priv: c.PrivateKey, userID: c.UserID, resident: true})
			}
		}
	}
	k.mu.Unlock()
	if len(creds) == 0 {
		return statusOnly(ctap.StatusNoCredentials)
	}
	if up {
		if s := k.presence(ctx, status, "getAssertion", r.RPID); s != ctap.StatusOK {
			return statusOnly(s)
		}
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	count := 0
	if len(r.AllowList) == 0 {
		count = len(creds)
		if count > 1 {
			k.next = &pendingAssertions{creds: creds[1:], hash: r.ClientDataHash, rpIDHash: rpIDHash, up: up,
				expires: k.cfg.Clock().Add(30 * time.Second)}
		}
	}
	return k.assert(creds[0], rpIDHash, r.ClientDataHash, up, count)
}

// assert signs with one credential. The caller holds k.mu.
func (k *Key) assert(c candidate, rpIDHash [32]byte, hash []byte, up bool, count int) []byte {
	signer, err := signerFromRaw(c.alg, c.priv)
	if err != nil {
		return statusOnly(ctap.StatusOther)
	}
	k.st.Counter++
	if err := k.save(); err != nil {
		k.st.Counter--
		return statusOnly(ctap.StatusOther)
	}
	var flags ctap.AuthDataFlags
	if up && !k.cfg.ForceUPOff {
		flags |= ctap.FlagUP
	}
	ad := (&ctap.AuthData{RPIDHash: rpIDHash, Flags: flags, SignCount: k.st.Counter}).Marshal()
	sig, err := k.sign(signer, c.alg, append(bytes.Clone(ad), hash...))
	if err != nil {
		return statusOnly(ctap.StatusOther)
	}
	resp := &ctap.GetAssertionResponse{
		Credential:          &ctap.CredentialDescriptor{Type: "public-key", ID: c.id},
		AuthData:            ad,
		Signature:           sig,
		NumberOfCredentials: count,
	}
	if c.resident {
		// CTAP 2.1 §6.2.2: without user verification only the user ID,
		// never the names, leaves the key.
		resp.User = &ctap.UserEntity{ID: c.userID}
	}
	return ctap.EncodeResponse(resp)
}

// getNextAssertion follows CTAP 2.1 §6.3.
func (k *Key) getNextAssertion() []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := k.next
	if n == nil || len(n.creds) == 0 || k.cfg.Clock().After(n.expires) {
		k.next = nil
		return statusOnly(ctap.StatusNotAllowed)
	}
	c := n.creds[0]
	n.creds = n.creds[1:]
	n.expires = k.cfg.Clock().Add(30 * time.Second)
	return k.assert(c, n.rpIDHash, n.hash, n.up, 0)
}

// reset follows CTAP 2.1 §6.6: only within 10 s of power-up, and only
// with a touch.
func (k *Key) reset(ctx context.Context, status func(byte)) []byte {
	k.mu.Lock()
	late := k.cfg.Clock().Sub(k.powerOn) > 10*time.Second
	k.mu.Unlock()
	if late {
		return statusOnly(ctap.StatusNotAllowed)
	}
	if s := k.presence(ctx, status, "reset", ""); s != ctap.StatusOK {
		return statusOnly(s)
	}
	secret := make([]byte, 32)
	if _, err := io.ReadFull(k.cfg.Rand, secret); err != nil {
		return statusOnly(ctap.StatusOther)
	}
	w, err := newKeyWrapper(secret)
	if err != nil {
		return statusOnly(ctap.StatusOther)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	old := *k.st
	k.st.Credentials, k.st.WrapSecret = nil, secret
	if err := k.save(); err != nil {
		*k.st = old
		return statusOnly(ctap.StatusOther)
	}
	k.wrapper = w
	return statusOnly(ctap.StatusOK)
}
