package virtual

import (
	"crypto/ecdh"
	"crypto/rand"
	"crypto/sha256"
	"io"
	"time"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/pinuv"
)

// Timers of a pinUvAuthToken (CTAP 2.1 §6.5.2.1, §6.5.2.2).
const (
	// tokenInitialUsageLimit is how long a new token lives unless it is
	// used: the spec's default initial usage time limit for USB keys.
	tokenInitialUsageLimit = 30 * time.Second
	// tokenUserPresentLimit is how long the userPresent flag of a token
	// stays set after it is issued (the user present time limit).
	tokenUserPresentLimit = 30 * time.Second
	// tokenMaxUsagePeriod is the longest a token lives, used or not (the
	// max usage time period).
	tokenMaxUsagePeriod = 10 * time.Minute
)

// pinProtocols are the PIN/UV auth protocols a key speaks, preferred
// first, as getInfo lists them.
func (k *Key) pinProtocols() []uint64 {
	if !k.pinUvSupported() {
		return nil
	}
	if k.v20() {
		return []uint64{pinuv.VersionOne} // protocol two is CTAP 2.1's
	}
	return []uint64{pinuv.VersionTwo, pinuv.VersionOne}
}

// protocol returns the protocol v names if the key speaks it.
func (k *Key) protocol(v uint64) (pinuv.Protocol, bool) {
	for _, p := range k.pinProtocols() {
		if p == v {
			// IVs for protocol two come from crypto/rand: Config.Rand may
			// be a deterministic source, and a repeated IV under one
			// shared secret would leak plaintext equality.
			return pinuv.ByVersion(v)
		}
	}
	return nil, false
}

// tokenState is the pinUvAuthToken state of CTAP 2.1 §6.5.2.1: what the
// token in use may do and for whom. Only one token is in use at a time,
// issued under one protocol; the tokens of the other protocols are fresh
// random values nobody has.
type tokenState struct {
	inUse    bool
	protocol uint64
	perms    pinuv.Permission
	// rpID is the permissions RP ID; "" means none is associated yet.
	rpID         string
	userPresent  bool
	userVerified bool
	issued       time.Time
	// used is set by the first command the token authorises, which ends
	// the initial usage time limit.
	used bool
}

// pinUvAuth is the volatile PIN/UV state of a key: lost when it is
// unplugged, remade by Replug and reset (CTAP 2.1 §6.5.4 initialize).
type pinUvAuth struct {
	// keys are the key agreement keys, indexed by protocol version.
	keys [3]*ecdh.PrivateKey
	// tokens are the pinUvAuthTokens, indexed by protocol version.
	tokens [3][]byte
	tok    tokenState
	// mismatches counts wrong PINs in a row since power-up; at three the
	// key needs a power cycle (CTAP2_ERR_PIN_AUTH_BLOCKED).
	mismatches int
}

// maxConsecutiveMismatches is how many wrong PINs in a row block PIN
// entry until the key is unplugged (CTAP 2.1 §6.5.5.7.2 step 9.1.2).
const maxConsecutiveMismatches = 3

// powerUpPinUvAuth makes new key agreement keys and tokens for every
// protocol (CTAP 2.1 §6.5.4 initialize). The caller holds k.mu.
func (k *Key) powerUpPinUvAuth() error {
	var a pinUvAuth
	for _, v := range []uint64{pinuv.VersionOne, pinuv.VersionTwo} {
		key, err := ecdh.P256().GenerateKey(rand.Reader)
		if err != nil {
			return err
		}
		a.keys[v] = key
		if a.tokens[v], err = k.newToken(); err != nil {
			return err
		}
	}
	k.auth = a
	return nil
}

// newToken draws a pinUvAuthToken from crypto/rand rather than
// Config.Rand: tokens and key agreement keys live only until the next
// power-up, and keeping them out of Config.Rand's stream keeps a seeded
// key's credential IDs the same whatever PIN traffic came before.
func (k *Key) newToken() ([]byte, error) {
	t := make([]byte, pinuv.TokenLen)
	_, err := io.ReadFull(rand.Reader, t)
	return t, err
}

// regenerate replaces the key agreement key of protocol v (§6.5.4
// regenerate), as a wrong PIN requires, so that a platform must agree on
// a new shared secret. The caller holds k.mu.
func (k *Key) regenerate(v uint64) error {
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	k.auth.keys[v] = key
	return nil
}

// resetTokens makes new tokens for every protocol and stops using the old
// one (§6.5.4 resetPinUvAuthToken). The caller holds k.mu.
func (k *Key) resetTokens() error {
	for _, v := range []uint64{pinuv.VersionOne, pinuv.VersionTwo} {
		t, err := k.newToken()
		if err != nil {
			return err
		}
		k.auth.tokens[v] = t
	}
	k.auth.tok = tokenState{}
	return nil
}

// beginUsingToken starts the token of protocol v with perms (§6.5.2.2
// beginUsingPinUvAuthToken). The caller has just called resetTokens and
// holds k.mu.
func (k *Key) beginUsingToken(v uint64, perms pinuv.Permission, rpID string, userIsPresent bool) {
	k.auth.tok = tokenState{
		inUse: true, protocol: v, perms: perms, rpID: rpID,
		userPresent: userIsPresent, userVerified: true, issued: k.cfg.Clock(),
	}
}

// observeToken applies the usage timer (§6.5.2.2
// pinUvAuthTokenUsageTimerObserver), which this key runs whenever it
// looks at the token rather than on a timer. A CTAP 2.0 key's token lives
// until power-down, as CTAP 2.0 knew no timer. The caller holds k.mu.
func (k *Key) observeToken() {
	t := &k.auth.tok
	if !t.inUse || k.v20() {
		return
	}
	age := k.cfg.Clock().Sub(t.issued)
	switch {
	case age > tokenMaxUsagePeriod, !t.used && age > tokenInitialUsageLimit:
		k.auth.tok = tokenState{} // stopUsingPinUvAuthToken
	case age > tokenUserPresentLimit:
		t.userPresent = false
	}
}

// tokenCheck says what a command needs of the token that signed it.
type tokenCheck struct {
	// perm is the permission the command needs. A CTAP 2.0 key's tokens
	// predate permissions and may do anything.
	perm pinuv.Permission
	// rpID, when not empty, is the relying party the command acts for:
	// a token bound to another is refused.
	rpID string
	// rpIDHash is the same check for commands that know only the hash.
	rpIDHash []byte
	// unbound requires a token with no permissions RP ID, for commands
	// that act on every RP (getCredsMetadata, enumerateRPs).
	unbound bool
	// needUV requires the userVerified flag (makeCredential,
	// getAssertion).
	needUV bool
	// bind associates rpID with a token that has no permissions RP ID
	// yet (makeCredential and getAssertion, §6.1.2 step 11.1.5).
	bind bool
}

// checkToken verifies pinUvAuthParam over msg with the token of protocol
// v and applies c, returning StatusOK or the status to answer:
// PIN_AUTH_INVALID for a wrong, expired, unpermitted or misbound token, as
// §6.1.2 step 11.1, §6.2.2 step 6.1, §6.8, §6.10.2 and §6.11 answer. The
// protocol is one the key speaks. The caller holds k.mu.
func (k *Key) checkToken(v uint64, msg, param []byte, c tokenCheck) ctap.Status {
	p, ok := k.protocol(v)
	if !ok {
		return ctap.StatusInvalidParameter
	}
	k.observeToken()
	t := &k.auth.tok
	// Verify against the protocol's token even when none is in use, so
	// that timing does not say whether one is.
	valid := p.Verify(k.auth.tokens[v], msg, param)
	if !valid || !t.inUse || t.protocol != v {
		return ctap.StatusPINAuthInvalid
	}
	if !k.v20() {
		switch {
		case t.perms&c.perm != c.perm:
			return ctap.StatusPINAuthInvalid
		case c.unbound && t.rpID != "":
			return ctap.StatusPINAuthInvalid
		case c.rpID != "" && t.rpID != "" && t.rpID != c.rpID:
			return ctap.StatusPINAuthInvalid
		case c.rpIDHash != nil && t.rpID != "" && !equalHash(t.rpID, c.rpIDHash):
			return ctap.StatusPINAuthInvalid
		case c.needUV && !t.userVerified:
			return ctap.StatusPINAuthInvalid
		}
		if c.bind && t.rpID == "" {
			t.rpID = c.rpID
		}
	}
	t.used = true
	return ctap.StatusOK
}

func equalHash(rpID string, hash []byte) bool {
	h := sha256.Sum256([]byte(rpID))
	return string(h[:]) == string(hash)
}

// tokenUserPresent reports the token's userPresent flag (§6.5.2.2
// getUserPresentFlagValue). The caller holds k.mu.
func (k *Key) tokenUserPresent() bool {
	k.observeToken()
	return k.auth.tok.inUse && k.auth.tok.userPresent
}

// consumeToken clears the userPresent and userVerified flags and every
// permission but lbw once makeCredential or getAssertion has collected
// user presence (§6.1.2 step 14.3, §6.2.2 step 9.3), so that one token
// authorises one ceremony. A CTAP 2.0 token has no such limits. The
// caller holds k.mu.
func (k *Key) consumeToken() {
	t := &k.auth.tok
	if !t.inUse || k.v20() {
		return
	}
	t.userPresent, t.userVerified = false, false
	t.perms &= pinuv.PermLargeBlobWrite
}
