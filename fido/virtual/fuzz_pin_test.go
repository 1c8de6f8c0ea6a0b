package virtual

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/fidokit/fidokit/internal/ctap"
)

// fuzzPIN is the PIN of the key the PIN fuzz targets drive.
const fuzzPIN = "1234"

// newFuzzPINKey makes the key of FuzzClientPIN and FuzzCredMgmt: a PIN,
// built-in UV that fails for the RP "fail.example", and discoverable
// credentials on three RPs with each credProtect level, one with a
// largeBlobKey. Its reset window is closed, so no input erases it.
func newFuzzPINKey(t testing.TB) *Key {
	t.Helper()
	clock := newTestClock()
	k := newTestKey(t, &Config{
		Rand: rand.NewChaCha8([32]byte{'f', 'u', 'z', 'z', 'p', 'i', 'n'}), Clock: clock.Now, MaxMsgSize: 7609,
		PIN: fuzzPIN, BuiltInUV: true, MaxUVRetries: 5,
		UserVerifier: func(_ context.Context, r UVRequest) error {
			if r.RPID == "fail.example" {
				return ErrUVFailed
			}
			return nil
		},
	})
	for i, c := range []struct{ user, rp string }{{"alice", testRPID}, {"bob", testRPID}, {"carol", "b.example"}, {"dave", "c.example"}} {
		r := mcRequest(c.user, true)
		r.RP.ID = c.rp
		withExt(r, "credProtect", i%3+1, "largeBlobKey", i == 0, "hmac-secret", true)
		if i != 0 {
			delete(r.Extensions, "largeBlobKey")
		}
		makeCredential(t, k, withToken(2, pinToken(t, k, 2, fuzzPIN, 0x01, ""), r))
	}
	clock.Advance(time.Hour)
	k.Replug() // no token outlives the set-up
	return k
}

// stateOf returns a deep copy of the key's persistent state.
func stateOf(t testing.TB, k *Key) state {
	t.Helper()
	var s state
	if err := json.Unmarshal(snapshot(t, k), &s); err != nil {
		t.Fatal(err)
	}
	return s
}

// restore puts back a state and replugs, so each fuzz input meets the
// same key.
func restore(t testing.TB, k *Key, s state) {
	t.Helper()
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	var fresh state
	if err := json.Unmarshal(b, &fresh); err != nil {
		t.Fatal(err)
	}
	k.mu.Lock()
	*k.st = fresh
	k.mu.Unlock()
	k.Replug()
}

// checkAnswer checks the form of an answer: a lone error status, or OK
// with nothing or one canonical CBOR item that decodes with decode.
func checkAnswer(t *testing.T, got []byte, decode func([]byte) error) ctap.Status {
	t.Helper()
	if len(got) == 0 {
		t.Fatal("empty answer")
	}
	s := ctap.Status(got[0])
	if s != ctap.StatusOK {
		if len(got) != 1 {
			t.Fatalf("error status %v with a body: %x", s, got)
		}
		return s
	}
	if body := got[1:]; len(body) > 0 {
		if err := ctap.CheckCanonical("response", body); err != nil {
			t.Fatalf("response body: %v", err)
		}
		if err := decode(body); err != nil {
			t.Fatalf("response: %v", err)
		}
	}
	return s
}

// FuzzClientPIN sends authenticatorClientPIN requests to a key with a
// PIN: raw parameters when raw is not empty, otherwise a request built
// from the other inputs and encrypted properly under a real key
// agreement, so that inputs reach the PIN checks. It never panics; a
// failed request changes nothing but what CTAP 2.1 §6.5.5 says a failure
// changes (a retry spent by a wrong PIN or finger, the retries restored
// by a right PIN before a later check failed); a successful setPIN or
// changePIN stores exactly the hash of the PIN sent.
func FuzzClientPIN(f *testing.F) {
	k := newFuzzPINKey(f)
	base := stateOf(f, k)
	f.Fuzz(func(t *testing.T, raw []byte, sub byte, proto byte, perms uint64, rpID, cur string, newPIN []byte) {
		defer restore(t, k, base)
		var req []byte
		if len(raw) > 0 {
			req = cmd(ctap.CmdClientPIN, raw)
		} else {
			r := clientPINRequest(t, k, sub, uint64(proto), perms, rpID, cur, newPIN)
			var err error
			if req, err = ctap.EncodeRequest(ctap.CmdClientPIN, r); err != nil {
				t.Fatal(err)
			}
		}
		before := stateOf(t, k)
		got := k.handleCBOR(context.Background(), req, nil)
		s := checkAnswer(t, got, func(b []byte) error { _, err := ctap.DecodeClientPINResponse(b); return err })
		after := stateOf(t, k)

		// clientPIN touches only the PIN and the retry counters.
		mask := func(s state) state {
			s.PINHash, s.PINCodePoints, s.PINRetries, s.UVRetries, s.ForcePINChange = nil, 0, 0, 0, false
			return s
		}
		if a, b := mask(before), mask(after); !jsonEqual(t, a, b) {
			t.Fatalf("clientPIN answered %v and changed more than the PIN", s)
		}
		if s == ctap.StatusOK {
			if !bytes.Equal(after.PINHash, before.PINHash) {
				if len(raw) > 0 {
					t.Fatal("a raw request changed the PIN") // it cannot know the shared secret
				}
				if want := pinHash(string(bytes.TrimRight(newPIN, "\x00"))); !bytes.Equal(after.PINHash, want) {
					t.Fatalf("stored PIN hash %x, want %x", after.PINHash, want)
				}
			}
			return
		}
		if !bytes.Equal(after.PINHash, before.PINHash) || after.PINCodePoints != before.PINCodePoints || after.ForcePINChange != before.ForcePINChange {
			t.Fatalf("a request answered %v changed the PIN", s)
		}
		restored := after.PINRetries == maxPINRetries && after.UVRetries == k.cfg.MaxUVRetries
		switch {
		case after.PINRetries == before.PINRetries && after.UVRetries == before.UVRetries:
		case after.PINRetries == before.PINRetries-1 && after.UVRetries == before.UVRetries &&
			(s == ctap.StatusPINInvalid || s == ctap.StatusPINBlocked || s == ctap.StatusPINAuthBlocked):
		case after.UVRetries == before.UVRetries-1 && after.PINRetries == before.PINRetries &&
			(s == ctap.StatusUVInvalid || s == ctap.StatusUVBlocked):
		case restored && (s == ctap.StatusPINPolicyViolation || s == ctap.StatusInvalidParameter || s == ctap.StatusPINAuthInvalid):
			// changePIN and the token subcommands check the new PIN and
			// forcePINChange after restoring the retries.
		default:
			t.Fatalf("a request answered %v took retries from %d/%d to %d/%d",
				s, before.PINRetries, before.UVRetries, after.PINRetries, after.UVRetries)
		}
	})
}

func jsonEqual(t *testing.T, a, b any) bool {
	t.Helper()
	x, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	y, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(x, y)
}

// clientPINRequest builds a well-formed request for subcommand sub.
func clientPINRequest(t testing.TB, k *Key, sub byte, v uint64, perms uint64, rpID, cur string, newPIN []byte) *ctap.ClientPINRequest {
	var p *platform
	if v == 1 || v == 2 {
		p = agree(t, k, v)
	} else {
		// A protocol the key does not speak: any key and secret will do.
		p = &platform{t: t, v: v, shared: make([]byte, 64), key: agree(t, k, 2).key}
	}
	padded := newPIN
	if n := len(padded); n < 64 {
		padded = append(bytes.Clone(padded), make([]byte, 64-n)...)
	} else if n%16 != 0 {
		padded = append(bytes.Clone(padded), make([]byte, 16-n%16)...)
	}
	var r *ctap.ClientPINRequest
	switch ctap.ClientPINSubCommand(sub) {
	case ctap.ClientPINSetPIN:
		r = p.setPINRequest(padded)
	case ctap.ClientPINChangePIN:
		r = p.changePINRequest(cur, padded)
	case ctap.ClientPINGetPINToken, ctap.ClientPINGetPinUvAuthTokenUsingPinWithPermissions:
		r = p.tokenRequest(cur, perms, rpID)
	default:
		r = &ctap.ClientPINRequest{KeyAgreement: p.key, RPID: rpID}
	}
	r.SubCommand, r.PinUvAuthProtocol, r.Permissions, r.RPID = ctap.ClientPINSubCommand(sub), v, perms, rpID
	return r
}

// fuzzSeed is one seed of a multi-argument fuzz target.
type fuzzSeed struct {
	name   string
	values []any
}

func clientPINSeeds() []fuzzSeed {
	s := func(name string, raw []byte, sub, proto byte, perms uint64, rpID, cur string, newPIN []byte) fuzzSeed {
		return fuzzSeed{name, []any{raw, sub, proto, perms, rpID, cur, newPIN}}
	}
	return []fuzzSeed{
		s("getPINRetries", nil, 1, 0, 0, "", "", nil),
		s("getKeyAgreement-1", nil, 2, 1, 0, "", "", nil),
		s("getKeyAgreement-2", nil, 2, 2, 0, "", "", nil),
		s("setPIN-already-set", nil, 3, 2, 0, "", "", []byte("5678")),
		s("changePIN", nil, 4, 2, 0, "", fuzzPIN, []byte("5678")),
		s("changePIN-1", nil, 4, 1, 0, "", fuzzPIN, []byte("87654321")),
		s("changePIN-wrong", nil, 4, 2, 0, "", "0000", []byte("5678")),
		s("changePIN-short", nil, 4, 2, 0, "", fuzzPIN, []byte("567")),
		s("changePIN-unpadded", nil, 4, 2, 0, "", fuzzPIN, bytes.Repeat([]byte("9"), 64)),
		s("changePIN-80", nil, 4, 2, 0, "", fuzzPIN, append([]byte("5678"), make([]byte, 76)...)),
		s("getPinToken", nil, 5, 1, 0, "", fuzzPIN, nil),
		s("getPinToken-permissions", nil, 5, 2, 3, "", fuzzPIN, nil),
		s("token-permissions", nil, 9, 2, 0x3f, testRPID, fuzzPIN, nil),
		s("token-wrong", nil, 9, 2, 1, "", "4321", nil),
		s("token-zero-permissions", nil, 9, 2, 0, "", fuzzPIN, nil),
		s("token-protocol-3", nil, 9, 3, 1, "", fuzzPIN, nil),
		s("uv-token", nil, 6, 2, 0x07, "", "", nil),
		s("uv-token-fails", nil, 6, 1, 0x01, "fail.example", "", nil),
		s("getUVRetries", nil, 7, 0, 0, "", "", nil),
		s("reserved", nil, 8, 2, 0, "", "", nil),
		s("raw-empty-map", []byte{0xa0}, 0, 0, 0, "", "", nil),
		s("raw-getPINRetries", mapOf(pair(2, 1)), 0, 0, 0, "", "", nil),
		s("raw-permissions-zero", mapOf(pair(1, 2), pair(2, 9), pair(9, 0)), 0, 0, 0, "", "", nil),
		s("raw-bad-key", mapOf(pair(1, 2), pair(2, 5), pair(3, map[int]any{1: 2}), pair(6, make([]byte, 32))), 0, 0, 0, "", "", nil),
		s("raw-truncated", []byte{0xa2, 0x01, 0x02, 0x02}, 0, 0, 0, "", "", nil),
	}
}

// FuzzCredMgmt sends credentialManagement, largeBlobs and config
// requests to a key with a PIN and credentials, signed with a token that
// has cm, lbw and acfg when sign is set. It never panics, a success
// decodes, a failure leaves the stored state exactly as it was, and the
// stored large-blob array always passes its integrity check.
func FuzzCredMgmt(f *testing.F) {
	k := newFuzzPINKey(f)
	base := stateOf(f, k)
	cmds := []ctap.Command{ctap.CmdCredentialManagement, ctap.CmdLargeBlobs, ctap.CmdConfig, ctap.CmdCredentialManagementPreview}
	f.Fuzz(func(t *testing.T, sel byte, sign bool, sub byte, params []byte, offset, length uint64) {
		defer restore(t, k, base)
		var tok []byte
		if sign {
			tok = pinToken(t, k, 2, fuzzPIN, 0x34, "")
		}
		c := cmds[int(sel)%len(cmds)]
		req := credMgmtRequest(c, tok, sub, params, offset, length)
		before := snapshot(t, k)
		got := k.handleCBOR(context.Background(), req, nil)
		s := checkAnswer(t, got, func(b []byte) error {
			switch c {
			case ctap.CmdLargeBlobs:
				_, err := ctap.DecodeLargeBlobsResponse(b)
				return err
			case ctap.CmdConfig:
				return fmt.Errorf("config answered %x", b)
			}
			_, err := ctap.DecodeCredMgmtResponse(b)
			return err
		})
		if s != ctap.StatusOK {
			checkUnchanged(t, k, before, fmt.Sprintf("%v answered %v", c, s))
		}
		k.mu.Lock()
		arr := k.largeBlobArray()
		k.mu.Unlock()
		if err := ctap.VerifyLargeBlobArray(arr); err != nil {
			t.Fatalf("stored large-blob array %x: %v", arr, err)
		}
	})
}

// credMgmtRequest builds a request for command c: for credential
// management and config, subcommand sub with params as the raw
// subCommandParams; for largeBlobs, a read of length bytes when sub is
// odd, or a write of params. tok, when not nil, signs it under protocol
// two.
func credMgmtRequest(c ctap.Command, tok []byte, sub byte, params []byte, offset, length uint64) []byte {
	if c == ctap.CmdLargeBlobs {
		r := &ctap.LargeBlobsRequest{Offset: offset}
		if sub%2 == 1 {
			r.Get = &length
		} else {
			r.Set = params
			if offset == 0 {
				r.Length = length
			}
		}
		if tok != nil {
			r.PinUvAuthProtocol, r.PinUvAuthParam = 2, authenticate(2, tok, r.AuthMessage())
		}
		req, _ := ctap.EncodeRequest(c, r)
		return req
	}
	entries := [][]byte{pair(1, sub)}
	if len(params) > 0 {
		entries = append(entries, append(ctap.MustMarshal(2), params...))
	}
	if tok != nil {
		msg := append([]byte{sub}, params...)
		if c == ctap.CmdConfig {
			msg = slices.Concat(bytes.Repeat([]byte{0xff}, 32), []byte{byte(ctap.CmdConfig), sub}, params)
		}
		entries = append(entries, pair(3, 2), pair(4, authenticate(2, tok, msg)))
	}
	return cmd(c, mapOf(entries...))
}

func credMgmtSeeds(k *Key) []fuzzSeed {
	k.mu.Lock()
	ids := [][]byte{}
	for _, c := range k.st.Credentials {
		ids = append(ids, c.ID)
	}
	k.mu.Unlock()
	enc := func(v any) []byte { return ctap.MustMarshal(v) }
	hash := sha256.Sum256([]byte(testRPID))
	s := func(name string, sel byte, sign bool, sub byte, params []byte, offset, length uint64) fuzzSeed {
		return fuzzSeed{name, []any{sel, sign, sub, params, offset, length}}
	}
	arr := ctap.SerializeLargeBlobArray(nil)
	return []fuzzSeed{
		s("metadata", 0, true, 1, nil, 0, 0),
		s("metadata-unsigned", 0, false, 1, nil, 0, 0),
		s("rps-begin", 0, true, 2, nil, 0, 0),
		s("rps-next", 0, false, 3, nil, 0, 0),
		s("creds-begin", 0, true, 4, enc(map[int]any{1: hash[:]}), 0, 0),
		s("creds-begin-short-hash", 0, true, 4, enc(map[int]any{1: hash[:16]}), 0, 0),
		s("delete", 0, true, 6, enc(map[int]any{2: map[string]any{"type": "public-key", "id": ids[1]}}), 0, 0),
		s("delete-unknown", 0, true, 6, enc(map[int]any{2: map[string]any{"type": "public-key", "id": []byte{1}}}), 0, 0),
		s("update", 0, true, 7, enc(map[int]any{2: map[string]any{"type": "public-key", "id": ids[0]},
			3: map[string]any{"id": []byte("alice"), "name": "Alice"}}), 0, 0),
		s("update-other-user", 0, true, 7, enc(map[int]any{2: map[string]any{"type": "public-key", "id": ids[0]},
			3: map[string]any{"id": []byte("mallory")}}), 0, 0),
		s("unknown-subcommand", 0, true, 0x20, nil, 0, 0),
		s("preview", 3, true, 1, nil, 0, 0),
		s("blob-read", 1, false, 1, nil, 0, 100),
		s("blob-write", 1, true, 0, arr, 0, uint64(len(arr))),
		s("blob-write-corrupt", 1, true, 0, append(bytes.Clone(arr[:16]), 0), 0, 17),
		s("blob-write-part", 1, true, 0, arr[:8], 0, 30),
		s("blob-write-unsigned", 1, false, 0, arr, 0, uint64(len(arr))),
		s("config-toggle", 2, true, 2, nil, 0, 0),
		s("config-toggle-unsigned", 2, false, 2, nil, 0, 0),
		s("config-min-pin", 2, true, 3, enc(map[int]any{1: 6, 2: []string{"a.example"}, 3: true}), 0, 0),
		s("config-lower-min-pin", 2, true, 3, enc(map[int]any{1: 3}), 0, 0),
		s("config-ep", 2, true, 1, nil, 0, 0),
	}
}
