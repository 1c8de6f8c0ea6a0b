package webauthn

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	gowebauthn "github.com/go-webauthn/webauthn/webauthn"
)

// A challenge token is the challenge ID of a discoverable sign-in begun
// under Config.ChallengeKey: tokenPrefix, then base64url (no padding) of
//
//	expires (8 bytes, Unix microseconds, big endian) | challenge (32) | tag (32)
//
// where tag is HMAC-SHA256 under the key of tokenContext | RPID | 0x00 |
// expires | challenge, or, for a sign-in begun under a session binding
// (WithSessionBinding), of boundTokenContext | SHA-256(binding) | RPID |
// 0x00 | expires | challenge: the binding is not in the token, only in
// its tag, so a token opens only with the binding it was made under. Nothing is stored at Begin; a sign-in that succeeds
// stores the token as a spent challenge (Store.SaveChallenge with the
// token as ID), so that a second one with it fails with ErrExists.
// Stored challenge IDs are base64url without '.', so the two never meet.
const (
	tokenPrefix  = "t1."
	tokenContext = "fidokit webauthn discoverable challenge v1\x00"
	// boundTokenContext is the context of the tag of a token made under
	// a session binding.
	boundTokenContext = "fidokit webauthn bound discoverable challenge v1\x00"
	tokenLen          = 8 + challengeLen + sha256.Size
	// spentMargin keeps a spent token stored past its expiry, so that a
	// server whose clock is behind still finds it spent.
	spentMargin = time.Minute
)

func isToken(id string) bool { return strings.HasPrefix(id, tokenPrefix) }

// tokenTag is the tag of payload; binding is the session binding's hash,
// or nil.
func (rp *RelyingParty) tokenTag(payload, binding []byte) []byte {
	mac := hmac.New(sha256.New, rp.tokenKey)
	if len(binding) == 0 {
		mac.Write([]byte(tokenContext))
	} else {
		mac.Write([]byte(boundTokenContext))
		mac.Write(binding) // always sha256.Size bytes
	}
	mac.Write([]byte(rp.rpID))
	mac.Write([]byte{0})
	mac.Write(payload)
	return mac.Sum(nil)
}

// beginToken is the Begin of a discoverable sign-in under a challenge
// key: the options for challenge, and a token as the challenge ID, bound
// to binding (a session binding's hash, or nil).
func (rp *RelyingParty) beginToken(challenge, binding []byte, options any) (*Begin, error) {
	opts, err := json.Marshal(options)
	if err != nil {
		return nil, fmt.Errorf("webauthn: encoding options: %w", err)
	}
	expires := storeTime(rp.now().Add(rp.timeout))
	payload := binary.BigEndian.AppendUint64(make([]byte, 0, tokenLen), uint64(expires.UnixMicro()))
	payload = append(payload, challenge...)
	tok := append(payload, rp.tokenTag(payload, binding)...)
	return &Begin{ChallengeID: tokenPrefix + base64.RawURLEncoding.EncodeToString(tok), Options: opts, Expires: expires}, nil
}

// openToken checks a challenge token and returns the challenge and
// session it stands for, as takeChallenge does for a stored one. The
// token is not spent: FinishLogin spends it once the sign-in is verified.
// binding is the finishing session's binding hash, or nil.
func (rp *RelyingParty) openToken(id string, want []Ceremony, binding []byte) (*Challenge, *sessionEnvelope, error) {
	c := want[0]
	const step = "challenge"
	ok := false
	for _, w := range want {
		ok = ok || w == CeremonyDiscoverable
	}
	if rp.tokenKey == nil || !ok {
		return nil, nil, reject(c, step, ErrChallengeUnknown, "")
	}
	// Strict: one token has one spelling, the ID its spending is
	// recorded under.
	tok, err := base64.RawURLEncoding.Strict().DecodeString(id[len(tokenPrefix):])
	if err != nil || len(tok) != tokenLen {
		return nil, nil, reject(c, step, ErrChallengeUnknown, "")
	}
	payload, tag := tok[:8+challengeLen], tok[8+challengeLen:]
	if !hmac.Equal(tag, rp.tokenTag(payload, binding)) {
		return nil, nil, reject(c, step, ErrChallengeUnknown, "")
	}
	c = CeremonyDiscoverable
	expires := time.UnixMicro(int64(binary.BigEndian.Uint64(payload))).UTC()
	if !storeTime(rp.now()).Before(expires) {
		return nil, nil, reject(c, step, ErrExpired, "")
	}
	challenge := payload[8:]
	session, err := rp.discoverableSession(challenge)
	if err != nil {
		return nil, nil, err
	}
	ch := &Challenge{ID: id, Challenge: challenge, Ceremony: c, Expires: expires}
	return ch, &sessionEnvelope{Session: *session}, nil
}

// discoverableSession builds go-webauthn's session data for a
// discoverable sign-in with challenge, exactly as
// BeginDiscoverableLogin gets it.
func (rp *RelyingParty) discoverableSession(challenge []byte) (*gowebauthn.SessionData, error) {
	_, session, err := rp.w.BeginDiscoverableLogin(
		gowebauthn.WithChallenge(challenge),
		gowebauthn.WithUserVerification(rp.policy.userVerification()),
	)
	if err != nil {
		return nil, fmt.Errorf("webauthn: building request options: %v", err)
	}
	return session, nil
}

// spendToken records that a challenge token signed in, so that no other
// sign-in, on any server sharing the store, accepts it. It is not
// subject to the challenge limits: only verified sign-ins spend tokens.
func (rp *RelyingParty) spendToken(ctx context.Context, ch *Challenge) error {
	spent := &Challenge{ID: ch.ID, Challenge: ch.Challenge, Ceremony: ch.Ceremony, Expires: ch.Expires.Add(spentMargin)}
	err := rp.store.SaveChallenge(ctx, spent, rp.now(), ChallengeLimits{})
	switch {
	case errors.Is(err, ErrExists):
		return reject(ch.Ceremony, "challenge", ErrChallengeUnknown, "the challenge was already used")
	case err != nil:
		return fmt.Errorf("webauthn: recording the challenge as used: %w", err)
	}
	return nil
}
