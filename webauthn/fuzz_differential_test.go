package webauthn_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
	"github.com/fidokit/fidokit/webauthn"
	"github.com/fidokit/fidokit/webauthn/webauthntest"
)

// FuzzFinishLoginDifferential feeds each response to both sign-in paths,
// the fast one and go-webauthn alone, each on its own fresh and identical
// relying party (same store contents, same challenge), and fails on any
// difference: accepted or rejected, the error's class (errors.Is against
// every exported error), its stable code and step, and what the store
// holds afterwards.
//
// The stored state is testdata/fuzzlogin.json: alice with an ES256 and an
// EdDSA key, and bob with none. Every relying party draws its randomness
// from the same seeded generator, so each begins with the same challenge
// and the corpus in testdata/fuzz/FuzzFinishLoginDifferential (real
// responses of the virtual keys to it, and tampered ones) stays valid.
// -update-fuzzlogin makes new keys and rewrites both.

var updateFuzzLogin = flag.Bool("update-fuzzlogin", false, "regenerate testdata/fuzzlogin.json and the FuzzFinishLoginDifferential corpus")

const fuzzLoginFixture = "testdata/fuzzlogin.json"

// loginFixture is what the relying parties of the differential fuzz
// target hold before the sign-in.
type loginFixture struct {
	Users       []webauthn.User
	Credentials []webauthn.Credential
}

// fuzzEpoch is the relying parties' clock, fixed so that their stored
// times agree.
var fuzzEpoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// outcome is what one FinishLogin did.
type outcome struct {
	err    error
	userID []byte
	cred   *webauthn.Credential
	after  []webauthn.Credential
	// fast is whether the fast path verified the signature.
	fast bool
}

// run signs in on a fresh relying party holding fx, on the slow or the
// fast path, for a discoverable or a named (alice's) sign-in.
func (fx *loginFixture) run(t testing.TB, slow, discoverable bool, resp []byte) outcome {
	t.Helper()
	ctx := t.Context()
	rp, b := fx.begin(t, slow, discoverable)
	u, c, err := rp.FinishLogin(ctx, b.ChallengeID, resp)
	o := outcome{err: err, cred: c, fast: webauthn.FastSignIns(rp) > 0}
	if u != nil {
		o.userID = u.ID
	}
	for _, c := range fx.Credentials {
		got, err := rp.Credential(ctx, fx.Users[0].ID, c.ID)
		require.NoError(t, err)
		o.after = append(o.after, *got)
	}
	return o
}

// begin makes a fresh relying party holding fx and begins a sign-in.
func (fx *loginFixture) begin(t testing.TB, slow, discoverable bool) (*webauthn.RelyingParty, *webauthn.Begin) {
	t.Helper()
	ctx := t.Context()
	mem := webauthn.NewMemoryStore()
	for i := range fx.Users {
		u := fx.Users[i]
		require.NoError(t, mem.CreateUser(ctx, &u))
	}
	for i := range fx.Credentials {
		c := fx.Credentials[i]
		require.NoError(t, mem.AddCredential(ctx, &c, 0))
	}
	rp, err := webauthn.New(webauthn.Config{
		RPID:    testRPID,
		Origins: []string{testOrigin},
		Store:   mem,
		Now:     func() time.Time { return fuzzEpoch },
		Rand:    rand.NewChaCha8([32]byte{'f', 'u', 'z', 'z'}),
	})
	require.NoError(t, err)
	webauthn.SetSlowLogin(rp, slow)
	var b *webauthn.Begin
	if discoverable {
		b, err = rp.BeginDiscoverableLogin(ctx)
	} else {
		b, err = rp.BeginLogin(ctx, fx.Users[0].ID)
	}
	require.NoError(t, err)
	return rp, b
}

// sentinels are the exported errors a FinishLogin error is classed by.
var sentinels = []error{
	webauthn.ErrVerification, webauthn.ErrInvalidRequest, webauthn.ErrMalformedResponse, webauthn.ErrWrongType,
	webauthn.ErrChallengeMismatch, webauthn.ErrChallengeUnknown, webauthn.ErrOrigin, webauthn.ErrRPIDHash,
	webauthn.ErrUserPresence, webauthn.ErrUserVerification, webauthn.ErrBackupFlags, webauthn.ErrBackupEligible,
	webauthn.ErrAlgorithm, webauthn.ErrAttestationInvalid, webauthn.ErrAttestationUntrusted,
	webauthn.ErrCredentialExists, webauthn.ErrUnknownCredential, webauthn.ErrCredentialOwner, webauthn.ErrUserHandle,
	webauthn.ErrSignature, webauthn.ErrSignCount, webauthn.ErrCloneWarning, webauthn.ErrUnknownUser,
	webauthn.ErrUserExists, webauthn.ErrNoCredentials, webauthn.ErrNotFound, webauthn.ErrExists,
	webauthn.ErrExpired, webauthn.ErrInactive, webauthn.ErrLimit, webauthn.ErrConflict, webauthn.ErrTooManyCeremonies,
}

// class describes err by what callers can see of it.
func class(err error) string {
	if err == nil {
		return "accepted"
	}
	var b strings.Builder
	b.WriteString(webauthn.ErrorCode(err))
	var ve *webauthn.VerificationError
	if errors.As(err, &ve) {
		fmt.Fprintf(&b, " at %q", ve.Step)
	}
	for i, s := range sentinels {
		if errors.Is(err, s) {
			fmt.Fprintf(&b, " %d", i)
		}
	}
	return b.String()
}

// sameOutcome fails t if the two paths did not do the same.
func sameOutcome(t testing.TB, fast, slow outcome) {
	t.Helper()
	assert.Equal(t, class(slow.err), class(fast.err), "error class (fast %v, slow %v)", fast.err, slow.err)
	assert.Equal(t, slow.userID, fast.userID, "user signed in")
	assert.Equal(t, slow.cred, fast.cred, "credential returned")
	assert.Equal(t, slow.after, fast.after, "credentials stored")
}

func FuzzFinishLoginDifferential(f *testing.F) {
	if *updateFuzzLogin {
		writeFuzzLoginCorpus(f)
	}
	raw, err := os.ReadFile(fuzzLoginFixture)
	require.NoError(f, err)
	var fx loginFixture
	require.NoError(f, json.Unmarshal(raw, &fx))
	require.Len(f, fx.Users, 2)
	f.Add(false, []byte(`{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"","signature":""}}`))
	f.Fuzz(func(t *testing.T, discoverable bool, resp []byte) {
		fast := fx.run(t, false, discoverable, resp)
		slow := fx.run(t, true, discoverable, resp)
		sameOutcome(t, fast, slow)
		if testing.Verbose() {
			t.Logf("%s (fast path %v)", class(fast.err), fast.fast)
		}
		if fast.err != nil && !errors.Is(fast.err, webauthn.ErrVerification) {
			t.Errorf("FinishLogin = %v, want a verification error", fast.err)
		}
	})
}

// writeFuzzLoginCorpus makes the fixture (registering new virtual keys)
// and the seed corpus: the keys' responses to the fixture's challenge,
// and tampered copies.
func writeFuzzLoginCorpus(t testing.TB) {
	e := newEnv(t, nil)
	alice, bob := e.user("alice"), e.user("bob")
	kES := e.key(&virtual.Config{Algorithms: []fido.Algorithm{fido.ES256}})
	kEd := e.key(&virtual.Config{Algorithms: []fido.Algorithm{fido.EdDSA}})
	cES := e.register(kES, alice, "ES256")
	cEd := e.register(kEd, alice, "EdDSA")
	fx := loginFixture{Users: []webauthn.User{*alice, *bob}, Credentials: []webauthn.Credential{*cES, *cEd}}
	raw, err := json.MarshalIndent(fx, "", "\t")
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(fuzzLoginFixture, append(raw, '\n'), 0o644))
	// Reload, so that the records are exactly as the target sees them.
	fx = loginFixture{}
	require.NoError(t, json.Unmarshal(raw, &fx))

	dir := filepath.Join("testdata", "fuzz", "FuzzFinishLoginDifferential")
	require.NoError(t, os.RemoveAll(dir))
	require.NoError(t, os.MkdirAll(dir, 0o755))
	n := 0
	seed := func(name string, discoverable bool, resp []byte) {
		n++
		body := fmt.Sprintf("go test fuzz v1\nbool(%v)\n[]byte(%q)\n", discoverable, resp)
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("%02d-%s", n, name)), []byte(body), 0o644))
	}
	keys := []struct {
		name string
		k    *webauthntest.Client
		cred *webauthn.Credential
	}{
		{"es256", kES, cES},
		{"eddsa", kEd, cEd},
	}
	for _, key := range keys {
		for _, disc := range []bool{false, true} {
			kind := key.name
			if disc {
				kind += "-discoverable"
			}
			_, b := fx.begin(t, false, disc)
			opts := b.Options
			if !disc {
				// Only this key, as a person would pick it.
				opts = editJSON(t, opts, func(m map[string]any) {
					m["allowCredentials"] = []any{map[string]any{"type": "public-key", "id": b64(key.cred.ID)}}
				})
			}
			resp, err := key.k.Get(t.Context(), opts)
			require.NoError(t, err)
			seed(kind+"-valid", disc, resp)
			ts := tampers(t, bob.ID)
			for _, name := range slices.Sorted(maps.Keys(ts)) {
				seed(kind+"-"+name, disc, ts[name](resp))
			}
			// Client data the client lied about, signed by the key.
			challenge := challengeOf(t, b.Options)
			var allow []byte
			if !disc {
				allow = key.cred.ID
			}
			signed := func(name, typ, challenge, origin, extra string, noUP bool) {
				cdj := clientData(typ, challenge, origin, extra)
				seed(kind+"-cdj-"+name, disc, assertion(t, key.k, testRPID, allow, cdj, noUP))
			}
			signed("wrong-type", "webauthn.create", challenge, testOrigin, "", false)
			signed("wrong-challenge", "webauthn.get", b64(randomBytes(32)), testOrigin, "", false)
			signed("wrong-origin", "webauthn.get", challenge, "https://evil.example.com", "", false)
			signed("origin-other-spelling", "webauthn.get", challenge, "HTTPS://Login.Example.com:443", "", false)
			signed("origin-with-path", "webauthn.get", challenge, testOrigin+"/login", "", false)
			signed("top-origin", "webauthn.get", challenge, testOrigin, `,"topOrigin":"https://example.org"`, false)
			signed("up-off", "webauthn.get", challenge, testOrigin, "", true)
			signed("extra-member", "webauthn.get", challenge, testOrigin, `,"other_keys_can_be_added_here":"do not compare clientDataJSON against a template"`, false)
			signed("member-in-other-case", "webauthn.get", challenge, testOrigin, `,"Type":"webauthn.create"`, false)
			signed("token-binding", "webauthn.get", challenge, testOrigin, `,"tokenBinding":{"status":"bogus"}`, false)
			signed("duplicate-type", "webauthn.get", challenge, testOrigin, `,"type":"webauthn.create"`, false)
			signed("cross-origin", "webauthn.get", challenge, testOrigin, `,"crossOrigin":true`, false)
			signed("no-origin", "", challenge, "", "", false)
			// JSON escapes, which go-webauthn decodes.
			cdj := bytes.Replace(clientData("webauthn.get", challenge, testOrigin, ""), []byte("https://"), []byte(`https:\/\/`), 1)
			seed(kind+"-cdj-escaped-origin", disc, assertion(t, key.k, testRPID, allow, cdj, false))
			cdj = []byte(" \n" + string(clientData("webauthn.get", challenge, testOrigin, "")) + "\t")
			seed(kind+"-cdj-whitespace", disc, assertion(t, key.k, testRPID, allow, cdj, false))
		}
	}
}

// tampers are edits of a valid response, each one way a client or an
// attacker might change it.
func tampers(t testing.TB, otherUser []byte) map[string]func([]byte) []byte {
	resp := func(edit func(r map[string]any)) func([]byte) []byte {
		return func(b []byte) []byte { return editJSON(t, b, func(m map[string]any) { edit(obj(m, "response")) }) }
	}
	top := func(edit func(m map[string]any)) func([]byte) []byte {
		return func(b []byte) []byte { return editJSON(t, b, edit) }
	}
	bin := func(member string, edit func(v []byte) []byte) func([]byte) []byte {
		return resp(func(r map[string]any) { r[member] = b64(edit(unb64(t, r[member].(string)))) })
	}
	text := func(old, new string) func([]byte) []byte {
		return func(b []byte) []byte { return []byte(strings.Replace(string(b), old, new, 1)) }
	}
	flags := func(set, clear byte) func([]byte) []byte {
		return bin("authenticatorData", func(ad []byte) []byte {
			ad[32] = ad[32]&^clear | set
			return ad
		})
	}
	return map[string]func([]byte) []byte{
		"sig-flip-last":  bin("signature", func(s []byte) []byte { s[len(s)-1] ^= 1; return s }),
		"sig-flip-first": bin("signature", func(s []byte) []byte { s[0] ^= 0x20; return s }),
		"sig-trailing":   bin("signature", func(s []byte) []byte { return append(s, 0) }),
		"sig-truncated":  bin("signature", func(s []byte) []byte { return s[:len(s)-1] }),
		"sig-empty":      bin("signature", func(s []byte) []byte { return nil }),
		// r with a needless leading zero: BER, not DER.
		"sig-nonminimal": bin("signature", func(s []byte) []byte {
			if len(s) < 4 || s[0] != 0x30 || s[2] != 0x02 {
				return s
			}
			out := []byte{0x30, s[1] + 1, 0x02, s[3] + 1, 0}
			return append(out, s[4:]...)
		}),
		// The SEQUENCE length in long form: BER, not DER.
		"sig-long-length": bin("signature", func(s []byte) []byte {
			if len(s) < 2 || s[0] != 0x30 {
				return s
			}
			return append([]byte{0x30, 0x81, s[1]}, s[2:]...)
		}),
		"rpidhash":              bin("authenticatorData", func(ad []byte) []byte { ad[0] ^= 1; return ad }),
		"authdata-extra":        bin("authenticatorData", func(ad []byte) []byte { return append(ad, 0) }),
		"authdata-short":        bin("authenticatorData", func(ad []byte) []byte { return ad[:36] }),
		"counter-zero":          bin("authenticatorData", func(ad []byte) []byte { copy(ad[33:37], []byte{0, 0, 0, 0}); return ad }),
		"flag-up-off":           flags(0, 0x01),
		"flag-uv-on":            flags(0x04, 0),
		"flag-bs-without-be":    flags(0x10, 0),
		"flag-be":               flags(0x08, 0),
		"flag-at":               flags(0x40, 0),
		"flag-ed":               flags(0x80, 0),
		"wrong-type":            top(func(m map[string]any) { m["type"] = "public-key-x" }),
		"type-escaped":          text(`"type":"public-key"`, `"type":"public\u002dkey"`),
		"sig-bad-base64":        resp(func(r map[string]any) { r["signature"] = "***" + r["signature"].(string) }),
		"sig-padded":            resp(func(r map[string]any) { r["signature"] = r["signature"].(string) + "==" }),
		"cdj-bad-base64":        resp(func(r map[string]any) { r["clientDataJSON"] = "!" + r["clientDataJSON"].(string) }),
		"cdj-not-json":          bin("clientDataJSON", func(c []byte) []byte { return c[:len(c)-1] }),
		"cdj-trailing":          bin("clientDataJSON", func(c []byte) []byte { return append(c, " x"...) }),
		"rawid-padded":          top(func(m map[string]any) { m["rawId"] = m["rawId"].(string) + "=" }),
		"id-padded":             top(func(m map[string]any) { m["id"] = m["id"].(string) + "=" }),
		"id-other":              top(func(m map[string]any) { m["id"] = b64(randomBytes(32)) }),
		"id-missing":            top(func(m map[string]any) { delete(m, "id") }),
		"id-upper-case-key":     text(`"id":`, `"ID":`),
		"rawid-unknown":         top(func(m map[string]any) { id := b64(randomBytes(32)); m["id"], m["rawId"] = id, id }),
		"extra-member":          top(func(m map[string]any) { m["foo"] = 1 }),
		"extra-response-member": resp(func(r map[string]any) { r["attestationObject"] = "oA" }),
		"duplicate-type":        text(`{`, `{"type":"public-key-x",`),
		"duplicate-id":          text(`{`, `{"id":"AAAA",`),
		"duplicate-user-handle": text(`"userHandle":`, `"userHandle":null,"userHandle":`),
		"user-handle-other":     resp(func(r map[string]any) { r["userHandle"] = b64(otherUser) }),
		"user-handle-null":      resp(func(r map[string]any) { r["userHandle"] = nil }),
		"user-handle-absent":    resp(func(r map[string]any) { delete(r, "userHandle") }),
		"user-handle-empty":     resp(func(r map[string]any) { r["userHandle"] = "" }),
		"user-handle-number":    resp(func(r map[string]any) { r["userHandle"] = 7 }),
		"ext-appid":             top(func(m map[string]any) { m["clientExtensionResults"] = map[string]any{"appid": true} }),
		"ext-null":              top(func(m map[string]any) { m["clientExtensionResults"] = nil }),
		"ext-unsolicited": top(func(m map[string]any) {
			m["clientExtensionResults"] = map[string]any{"credProps": map[string]any{"rk": true}}
		}),
		"attachment-platform": top(func(m map[string]any) { m["authenticatorAttachment"] = "platform" }),
		"attachment-number":   top(func(m map[string]any) { m["authenticatorAttachment"] = 5 }),
		"indented": func(b []byte) []byte {
			var out bytes.Buffer
			require.NoError(t, json.Indent(&out, b, "", "  "))
			return out.Bytes()
		},
		"trailing-space":   func(b []byte) []byte { return append(bytes.Clone(b), " \n"...) },
		"trailing-garbage": func(b []byte) []byte { return append(bytes.Clone(b), 'x') },
		"truncated":        func(b []byte) []byte { return b[:len(b)/2] },
		"not-an-object":    func(b []byte) []byte { return []byte(`[` + string(b) + `]`) },
	}
}
