package webauthn

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/base64"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/protocol/webauthncose"
	gowebauthn "github.com/go-webauthn/webauthn/webauthn"
	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// The sign-in fast path. go-webauthn parses an AuthenticationResponseJSON
// with encoding/json and reflection, re-parses the COSE public key and
// re-encodes the DER signature on every sign-in; for ES256 and EdDSA
// credentials this file does the same work once, by hand.
//
// It must be exactly as strict as go-webauthn, which stays the reference
// (RelyingParty.slowLogin, FuzzFinishLoginDifferential). The rule that
// keeps it so: the fast parser accepts only a plain subset of what
// go-webauthn accepts (known members in their exact spelling, each once;
// strings of printable ASCII without escapes; authenticator data without
// attested credential data or extensions) and yields the same values for
// it. Anything else, including every input go-webauthn would reject, is
// handed to go-webauthn whole, so each error comes from the one place it
// always came from.

// assertion is a sign-in response as FinishLogin checks it, from either
// parser.
type assertion struct {
	rawID      []byte
	userHandle []byte
	clientData clientData
	authData   protocol.AuthenticatorData
	// rawClientData and rawAuthData are the signed bytes; sig signs them.
	rawClientData []byte
	rawAuthData   []byte
	sig           []byte
	// parsed is go-webauthn's parse, nil after a fast parse.
	parsed *protocol.ParsedCredentialAssertionData
}

// clientData holds the members of CollectedClientData (WebAuthn L3
// §5.8.1) that the ceremonies check.
type clientData struct {
	typ, challenge, origin, topOrigin string
	crossOrigin                       bool
}

func clientDataOf(cd *protocol.CollectedClientData) clientData {
	return clientData{typ: string(cd.Type), challenge: cd.Challenge, origin: cd.Origin, topOrigin: cd.TopOrigin, crossOrigin: cd.CrossOrigin}
}

// fromParsed fills a from go-webauthn's parse.
func (a *assertion) fromParsed(p *protocol.ParsedCredentialAssertionData) {
	*a = assertion{
		rawID:         p.RawID,
		userHandle:    p.Response.UserHandle,
		clientData:    clientDataOf(&p.Response.CollectedClientData),
		authData:      p.Response.AuthenticatorData,
		rawClientData: p.Raw.AssertionResponse.ClientDataJSON,
		rawAuthData:   p.Raw.AssertionResponse.AuthenticatorData,
		sig:           p.Response.Signature,
		parsed:        p,
	}
}

// authDataLen is the length of authenticator data with neither attested
// credential data nor extensions (WebAuthn L3 §6.1), all a sign-in needs.
const authDataLen = 37

// jsonScan reads the plain JSON the fast parser accepts. Every method
// reports false for anything outside that subset.
type jsonScan struct {
	b []byte
	i int
}

func (s *jsonScan) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

// next skips white space and consumes c if it comes next.
func (s *jsonScan) next(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes, whose JSON
// decoding is its raw bytes.
func (s *jsonScan) str() ([]byte, bool) {
	if !s.next('"') {
		return nil, false
	}
	start := s.i
	for ; s.i < len(s.b); s.i++ {
		switch c := s.b[s.i]; {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, true
		case c < 0x20 || c > 0x7e || c == '\\':
			return nil, false
		}
	}
	return nil, false
}

// lit consumes the literal word if it comes next.
func (s *jsonScan) lit(word string) bool {
	s.ws()
	if bytes.HasPrefix(s.b[s.i:], []byte(word)) {
		s.i += len(word)
		return true
	}
	return false
}

// object reads an object, calling member for each key with the scanner
// at its value; member reads the value or reports false.
func (s *jsonScan) object(member func(key []byte) bool) bool {
	if !s.next('{') {
		return false
	}
	if s.next('}') {
		return true
	}
	for {
		k, ok := s.str()
		if !ok || !s.next(':') || !member(k) {
			return false
		}
		if s.next('}') {
			return true
		}
		if !s.next(',') {
			return false
		}
	}
}

// end reports whether only white space is left.
func (s *jsonScan) end() bool {
	s.ws()
	return s.i == len(s.b)
}

// decodeB64 decodes a base64url member value as go-webauthn's URLEncodedBase64
// does (trailing '=' trimmed, then unpadded base64url), appending to buf.
func decodeB64(buf, v []byte) ([]byte, []byte, bool) {
	for len(v) > 0 && v[len(v)-1] == '=' {
		v = v[:len(v)-1]
	}
	n := len(buf)
	buf = slices.Grow(buf, base64.RawURLEncoding.DecodedLen(len(v)))
	m, err := base64.RawURLEncoding.Decode(buf[n:n+base64.RawURLEncoding.DecodedLen(len(v))], v)
	if err != nil {
		return buf, nil, false
	}
	buf = buf[:n+m]
	return buf, buf[n : n+m : n+m], true
}

// parseAssertion is the fast parse of an AuthenticationResponseJSON
// (WebAuthn L3 §5.1.4.1; what go-webauthn's
// ParseCredentialRequestResponseBytes does). It reports false, leaving
// the response to go-webauthn, unless the response is in the plain
// subset described above and go-webauthn would accept it with the values
// it yields.
func parseAssertion(response []byte, a *assertion) bool {
	var id, rawID, typ, cdj, ad, sig, handle []byte
	var seenResp, seenExt, seenAttach, seenHandle bool
	s := jsonScan{b: response}
	// once records a string member seen for the first time.
	once := func(dst *[]byte) bool {
		if *dst != nil {
			return false
		}
		v, ok := s.str()
		if v == nil {
			v = []byte{}
		}
		*dst = v
		return ok
	}
	top := func(k []byte) bool {
		switch string(k) {
		case "id":
			return once(&id)
		case "rawId":
			return once(&rawID)
		case "type":
			return once(&typ)
		case "authenticatorAttachment":
			// Ignored by go-webauthn unless it is one of the two
			// known values; either way it decides nothing here.
			var v []byte
			ok := !seenAttach && once(&v)
			seenAttach = true
			return ok
		case "clientExtensionResults":
			// Only an empty object: outputs are checked against the
			// extensions requested, which go-webauthn does.
			ok := !seenExt && s.next('{') && s.next('}')
			seenExt = true
			return ok
		case "response":
			if seenResp {
				return false
			}
			seenResp = true
			return s.object(func(k []byte) bool {
				switch string(k) {
				case "clientDataJSON":
					return once(&cdj)
				case "authenticatorData":
					return once(&ad)
				case "signature":
					return once(&sig)
				case "userHandle":
					if seenHandle {
						return false
					}
					seenHandle = true
					// null is no user handle, as for go-webauthn.
					return s.lit("null") || once(&handle)
				}
				return false
			})
		}
		return false
	}
	if !s.object(top) || !s.end() {
		return false
	}
	if len(id) == 0 || string(typ) != string(protocol.PublicKeyCredentialType) || cdj == nil || ad == nil || sig == nil || rawID == nil {
		return false
	}
	// One buffer for every decoded member; the decoded id only needs to
	// match rawId (it is decoded without trimming '=', as go-webauthn
	// decodes it).
	buf := make([]byte, 0, (len(id)+len(rawID)+len(cdj)+len(ad)+len(sig)+len(handle))*3/4+8)
	decID := buf[:base64.RawURLEncoding.DecodedLen(len(id))]
	n, err := base64.RawURLEncoding.Decode(decID, id)
	if err != nil || n == 0 {
		return false
	}
	decID = decID[:n]
	buf = buf[n:n]
	var out assertion
	ok := true
	if buf, out.rawID, ok = decodeB64(buf, rawID); !ok || !bytes.Equal(out.rawID, decID) {
		return false
	}
	if buf, out.rawClientData, ok = decodeB64(buf, cdj); !ok {
		return false
	}
	if buf, out.rawAuthData, ok = decodeB64(buf, ad); !ok {
		return false
	}
	if buf, out.sig, ok = decodeB64(buf, sig); !ok {
		return false
	}
	if handle != nil {
		if _, out.userHandle, ok = decodeB64(buf, handle); !ok {
			return false
		}
	}
	if !parseClientData(out.rawClientData, &out.clientData) {
		return false
	}
	raw := out.rawAuthData
	if len(raw) != authDataLen {
		return false
	}
	flags := protocol.AuthenticatorFlags(raw[32])
	if flags.HasAttestedCredentialData() || flags.HasExtensions() {
		return false
	}
	out.authData = protocol.AuthenticatorData{
		RPIDHash: raw[:32:32],
		Flags:    flags,
		Counter:  uint32(raw[33])<<24 | uint32(raw[34])<<16 | uint32(raw[35])<<8 | uint32(raw[36]),
	}
	*a = out
	return true
}

// clientDataFields are the JSON names of go-webauthn's
// CollectedClientData fields. encoding/json matches member names to them
// case-insensitively, so a member spelled like one in another case is
// left to go-webauthn.
var clientDataFields = []string{"type", "challenge", "origin", "topOrigin", "crossOrigin", "tokenBinding", "new_keys_may_be_added_here"}

// parseClientData is the fast parse of the client data JSON (WebAuthn L3
// §5.8.1.2: a JSON object, parsed as such by relying parties), as
// encoding/json decodes it into go-webauthn's CollectedClientData.
// Members other than the five checked are skipped if their values are
// plain strings (browsers add some); tokenBinding, which go-webauthn
// checks, is left to it.
func parseClientData(b []byte, cd *clientData) bool {
	s := jsonScan{b: b}
	var typ, challenge, origin, topOrigin []byte
	var seenCross bool
	once := func(dst *[]byte) bool {
		if *dst != nil {
			return false
		}
		v, ok := s.str()
		if v == nil {
			v = []byte{}
		}
		*dst = v
		return ok
	}
	ok := s.object(func(k []byte) bool {
		switch string(k) {
		case "type":
			return once(&typ)
		case "challenge":
			return once(&challenge)
		case "origin":
			return once(&origin)
		case "topOrigin":
			return once(&topOrigin)
		case "crossOrigin":
			if seenCross {
				return false
			}
			seenCross = true
			if s.lit("true") {
				cd.crossOrigin = true
				return true
			}
			return s.lit("false")
		}
		for _, f := range clientDataFields {
			if strings.EqualFold(string(k), f) {
				return false
			}
		}
		_, ok := s.str()
		return ok
	})
	if !ok || !s.end() {
		return false
	}
	cd.typ, cd.challenge, cd.origin, cd.topOrigin = string(typ), string(challenge), string(origin), string(topOrigin)
	return true
}

// originAllowed reports whether origin is one of the configured origins,
// by go-webauthn's rules (protocol.IsOriginInHaystack: scheme and host
// compared case-insensitively, default ports dropped, any path ignored).
// An origin spelled exactly as configured, as browsers send it, matches
// without parsing a URL.
func (rp *RelyingParty) originAllowed(origin string) bool {
	if _, ok := rp.originSet[origin]; ok {
		return true
	}
	return protocol.IsOriginInHaystack(origin, rp.origins)
}

// fastConfig reports whether go-webauthn is configured so that, for a
// response the fast parser accepted and FinishLogin's own checks passed,
// its ValidateLogin checks nothing but the signature: no metadata, DER
// signatures only, the relying party's own ID and origins.
func (rp *RelyingParty) fastConfig() bool {
	c := rp.w.Config
	return c.MDS == nil && c.Signature.ECDSAEncoding != protocol.ECDSASignatureEncodingBER && c.RPID == rp.rpID && slices.Equal(c.RPOrigins, rp.origins)
}

// fastSignature verifies the signature of a fast-parsed response (§7.2
// steps 20 and 21), reporting handled false if go-webauthn must do it:
// a credential of another algorithm, or session data asking go-webauthn
// for more than the checks FinishLogin already ran.
func (rp *RelyingParty) fastSignature(c Ceremony, a *assertion, u *User, rec *Credential, s *gowebauthn.SessionData) (handled bool, err error) {
	if !rp.fastOK || a.parsed != nil || !rp.fastSession(c, a, u, rec, s) {
		return false, nil
	}
	k := rp.keys.get(rec.ID, rec.PublicKey)
	if k == nil {
		return false, nil
	}
	rp.fastSignIns.Add(1)
	if !k.verify(a.rawAuthData, a.rawClientData, a.sig) {
		return true, reject(c, "§7.2 step 21", ErrSignature, "the assertion signature does not verify")
	}
	return true, nil
}

// fastSession reports whether go-webauthn's ValidateLogin (or
// ValidateDiscoverableLogin) would, on this session, check only what
// FinishLogin has checked already, plus the signature. Each condition
// mirrors one of its checks; a response failing one goes to go-webauthn,
// which reports the failure.
func (rp *RelyingParty) fastSession(c Ceremony, a *assertion, u *User, rec *Credential, s *gowebauthn.SessionData) bool {
	if c == CeremonyLogin {
		if !bytes.Equal(u.ID, s.UserID) {
			return false
		}
	} else if len(s.UserID) != 0 {
		return false
	}
	if len(a.userHandle) > 0 && !bytes.Equal(a.userHandle, u.ID) || !bytes.Equal(rec.ID, a.rawID) {
		return false
	}
	if !s.Expires.IsZero() && s.Expires.Before(time.Now()) {
		return false
	}
	// The session challenge must decode to at least 16 bytes
	// (go-webauthn's validateSessionChallenge).
	var ch [64]byte
	if len(s.Challenge) > 85 {
		return false
	}
	if n, err := base64.RawURLEncoding.Decode(ch[:], []byte(s.Challenge)); err != nil || n < protocol.MinimumChallengeLength {
		return false
	}
	if s.UserVerification == protocol.VerificationRequired && !a.authData.Flags.HasUserVerified() {
		return false
	}
	return (s.RelyingPartyID == "" || s.RelyingPartyID == rp.rpID) && s.Origin == "" &&
		len(s.AllowedCredentialIDs) == 0 && s.Extensions.IsZero() && !s.AuthorizeUVInitialization
}

// keyCache holds credential public keys parsed, so that a sign-in does
// not parse COSE again. It is keyed by credential ID and checked against
// the stored key's bytes, so a changed record never uses a stale key. It
// is safe for concurrent use.
type keyCache struct {
	mu   sync.RWMutex
	keys map[string]*cachedKey
}

// maxCachedKeys bounds the cache: about 200 bytes a key, so 1 MB or so.
const maxCachedKeys = 4096

type cachedKey struct {
	cose []byte
	// ec or ed is the key; neither for an algorithm the fast path
	// leaves to go-webauthn.
	ec *ecdsa.PublicKey
	ed ed25519.PublicKey
}

// get returns the parsed key of credential id whose COSE encoding is
// cose, or nil if the fast path does not verify its algorithm.
func (kc *keyCache) get(id, cose []byte) *cachedKey {
	kc.mu.RLock()
	k := kc.keys[string(id)]
	kc.mu.RUnlock()
	if k == nil || !bytes.Equal(k.cose, cose) {
		k = parseKey(cose)
		kc.mu.Lock()
		if kc.keys == nil {
			kc.keys = make(map[string]*cachedKey)
		}
		if _, ok := kc.keys[string(id)]; !ok && len(kc.keys) >= maxCachedKeys {
			// Evict one key at random (map order), which keeps the
			// cache bounded without bookkeeping.
			for old := range kc.keys {
				delete(kc.keys, old)
				break
			}
		}
		kc.keys[string(id)] = k
		kc.mu.Unlock()
	}
	if k.ec == nil && k.ed == nil {
		return nil
	}
	return k
}

// parseKey parses a credential public key with go-webauthn's parser, so
// that both paths accept the same keys, and keeps ES256 and EdDSA keys.
func parseKey(cose []byte) *cachedKey {
	k := &cachedKey{cose: bytes.Clone(cose)}
	pk, err := webauthncose.ParsePublicKey(cose)
	if err != nil {
		return k
	}
	switch pk := pk.(type) {
	case webauthncose.EC2PublicKeyData:
		if webauthncose.COSEAlgorithmIdentifier(pk.Algorithm) == webauthncose.AlgES256 {
			// ParsePublicKey checked the curve, the coordinates'
			// lengths and that the point is on the curve.
			k.ec = &ecdsa.PublicKey{Curve: elliptic.P256(), X: new(big.Int).SetBytes(pk.XCoord), Y: new(big.Int).SetBytes(pk.YCoord)}
		}
	case webauthncose.OKPPublicKeyData:
		if webauthncose.COSEAlgorithmIdentifier(pk.Algorithm) == webauthncose.AlgEdDSA && len(pk.XCoord) == ed25519.PublicKeySize {
			k.ed = ed25519.PublicKey(bytes.Clone(pk.XCoord))
		}
	}
	return k
}

// verify checks sig over authData || SHA-256(clientDataJSON) (WebAuthn
// L3 §7.2 steps 20 and 21).
func (k *cachedKey) verify(authData, clientDataJSON, sig []byte) bool {
	var msg [authDataLen + sha256.Size]byte
	if len(authData) != authDataLen {
		return false
	}
	copy(msg[:], authData)
	h := sha256.Sum256(clientDataJSON)
	copy(msg[authDataLen:], h[:])
	if k.ed != nil {
		return ed25519.Verify(k.ed, msg[:], sig)
	}
	if !strictECDSASignature(sig) {
		return false
	}
	digest := sha256.Sum256(msg[:])
	return ecdsa.VerifyASN1(k.ec, digest[:], sig)
}

// strictECDSASignature reports whether sig is a DER Ecdsa-Sig-Value
// (RFC 3279 §2.2.3): a SEQUENCE of two positive, minimally encoded
// INTEGERs and nothing after it, which is all go-webauthn accepts (it
// re-encodes the signature and compares).
func strictECDSASignature(sig []byte) bool {
	in := cryptobyte.String(sig)
	var seq cryptobyte.String
	var r, s []byte
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1Integer(&r) || !seq.ReadASN1Integer(&s) || !seq.Empty() {
		return false
	}
	return positive(r) && positive(s)
}

// positive reports whether a big-endian magnitude from ReadASN1Integer
// (which refuses negative numbers) is not zero.
func positive(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return true
		}
	}
	return false
}

// parseEnvelope decodes a stored session envelope as json.Unmarshal
// would, for the members a sign-in's session has, as json.Marshal wrote
// them: each once, spelled exactly, plain strings. It reports false,
// leaving the envelope to encoding/json, for anything else (a
// registration's credParams, a sign-up, extensions). It spares a sign-in
// encoding/json's reflection, a tenth of its cost.
func parseEnvelope(b []byte, env *sessionEnvelope) bool {
	var out sessionEnvelope
	s := jsonScan{b: b}
	var seen uint32
	// first reports whether member bit is seen for the first time.
	first := func(bit uint32) bool {
		if seen&bit != 0 {
			return false
		}
		seen |= bit
		return true
	}
	// bytesOf decodes a []byte member as encoding/json does: standard
	// base64, "" an empty (not nil) slice, null nil.
	bytesOf := func(dst *[]byte) bool {
		if s.lit("null") {
			return true
		}
		v, ok := s.str()
		if !ok {
			return false
		}
		d := make([]byte, base64.StdEncoding.DecodedLen(len(v)))
		n, err := base64.StdEncoding.Decode(d, v)
		*dst = d[:n]
		return err == nil
	}
	str := func(dst *string) bool {
		v, ok := s.str()
		*dst = string(v)
		return ok
	}
	sd := &out.Session
	session := func(k []byte) bool {
		switch string(k) {
		case "challenge":
			return first(1<<0) && str(&sd.Challenge)
		case "rpId":
			return first(1<<1) && str(&sd.RelyingPartyID)
		case "origin":
			return first(1<<2) && str(&sd.Origin)
		case "user_id":
			return first(1<<3) && bytesOf(&sd.UserID)
		case "allowed_credentials":
			if !first(1<<4) || !s.next('[') {
				return false
			}
			sd.AllowedCredentialIDs = [][]byte{}
			if s.next(']') {
				return true
			}
			for {
				var id []byte
				if !bytesOf(&id) {
					return false
				}
				sd.AllowedCredentialIDs = append(sd.AllowedCredentialIDs, id)
				if s.next(']') {
					return true
				}
				if !s.next(',') {
					return false
				}
			}
		case "expires":
			if !first(1 << 5) {
				return false
			}
			s.ws()
			start := s.i
			if _, ok := s.str(); !ok {
				return false
			}
			return sd.Expires.UnmarshalJSON(s.b[start:s.i]) == nil
		case "userVerification":
			var v string
			ok := first(1<<6) && str(&v)
			sd.UserVerification = protocol.UserVerificationRequirement(v)
			return ok
		case "mediation":
			var v string
			ok := first(1<<7) && str(&v)
			sd.Mediation = protocol.CredentialMediationRequirement(v)
			return ok
		case "authorizeUVInitialization":
			if !first(1 << 8) {
				return false
			}
			sd.AuthorizeUVInitialization = s.lit("true")
			return sd.AuthorizeUVInitialization || s.lit("false")
		}
		return false
	}
	ok := s.object(func(k []byte) bool {
		switch string(k) {
		case "session":
			return first(1<<16) && s.object(session)
		case "binding":
			return first(1<<17) && bytesOf(&out.Binding)
		}
		return false
	})
	if !ok || !s.end() {
		return false
	}
	*env = out
	return true
}
