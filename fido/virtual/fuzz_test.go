package virtual

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/fidokit/fidokit/internal/ctap"
)

var updateCorpus = flag.Bool("update-corpus", false, "rewrite the seed corpora under testdata/fuzz")

// newFuzzKey makes the key the fuzz targets and their seed corpora share.
// Its secrets come from a fixed seed, so credential IDs and key handles in
// the corpus are the key's own; it holds discoverable credentials on
// testRPID, and its reset window is closed so that no input erases them.
func newFuzzKey(t testing.TB) (*Key, [][]byte) {
	t.Helper()
	clock := newTestClock()
	k := newTestKey(t, &Config{
		Rand:       rand.NewChaCha8([32]byte{'f', 'i', 'd', 'o', 'k', 'i', 't'}),
		Clock:      clock.Now,
		MaxMsgSize: 7609,
	})
	var ids [][]byte
	for _, tt := range []struct {
		user string
		rk   bool
		alg  int64
	}{{"alice", true, ctap.AlgES256}, {"bob", true, ctap.AlgEdDSA}, {"carol", false, ctap.AlgES256}} {
		_, ad := makeCredential(t, k, mcRequest(tt.user, tt.rk, tt.alg))
		ids = append(ids, ad.Attested.CredentialID)
	}
	clock.Advance(time.Hour)
	return k, ids
}

// FuzzHandleCBOR sends a command byte and arbitrary parameters. It never
// panics; every answer is a lone non-zero status, or status 0 followed by
// nothing or by one canonical CBOR item that decodes as the command's
// response; and a rejected request leaves the key's state as it was.
func FuzzHandleCBOR(f *testing.F) {
	k, _ := newFuzzKey(f)
	f.Fuzz(func(t *testing.T, c byte, params []byte) {
		before := snapshot(t, k)
		counter := k.Counter()
		got := k.handleCBOR(context.Background(), append([]byte{c}, params...), nil)
		if len(got) == 0 {
			t.Fatal("empty answer")
		}
		if got[0] != 0 {
			if len(got) != 1 {
				t.Fatalf("error status %#x with a body: %x", got[0], got)
			}
			checkUnchanged(t, k, before, fmt.Sprintf("a request answered %v", ctap.Status(got[0])))
			return
		}
		body := got[1:]
		if len(body) > 0 {
			if err := ctap.CheckCanonical("response", body); err != nil {
				t.Fatalf("response body: %v", err)
			}
		}
		var err error
		signs := false
		switch ctap.Command(c) {
		case ctap.CmdGetInfo:
			_, err = ctap.DecodeGetInfoResponse(body)
		case ctap.CmdMakeCredential:
			var r *ctap.MakeCredentialResponse
			if r, err = ctap.DecodeMakeCredentialResponse(body); err == nil {
				_, err = ctap.ParseAuthData(r.AuthData)
			}
			signs = true
		case ctap.CmdGetAssertion, ctap.CmdGetNextAssertion:
			var r *ctap.GetAssertionResponse
			if r, err = ctap.DecodeGetAssertionResponse(body); err == nil {
				_, err = ctap.ParseAuthData(r.AuthData)
			}
			signs = true
		case ctap.CmdSelection, ctap.CmdReset:
			if len(body) != 0 {
				err = fmt.Errorf("%v answered %x", ctap.Command(c), body)
			}
		case ctap.CmdClientPIN:
			if len(body) > 0 {
				_, err = ctap.DecodeClientPINResponse(body)
			}
		case ctap.CmdCredentialManagement, ctap.CmdCredentialManagementPreview:
			if len(body) > 0 {
				_, err = ctap.DecodeCredMgmtResponse(body)
			}
		case ctap.CmdLargeBlobs:
			if len(body) > 0 {
				_, err = ctap.DecodeLargeBlobsResponse(body)
			}
		case ctap.CmdConfig:
			if len(body) != 0 {
				err = fmt.Errorf("config answered %x", body)
			}
		default:
			t.Fatalf("command %#x succeeded", c)
		}
		if err != nil {
			t.Fatalf("%v response: %v", ctap.Command(c), err)
		}
		if signs && k.Counter() != counter+1 {
			t.Fatalf("counter %d after %d", k.Counter(), counter)
		}
	})
}

// FuzzHandleMsg sends arbitrary U2F APDUs. Every answer ends in a status
// word; a failure is the status word alone and leaves the key's state as
// it was; a success parses as the instruction's response.
func FuzzHandleMsg(f *testing.F) {
	k, _ := newFuzzKey(f)
	f.Fuzz(func(t *testing.T, apdu []byte) {
		before := snapshot(t, k)
		got := k.handleMsg(context.Background(), apdu)
		body, sw, err := ctap.SplitStatusWord(got)
		if err != nil {
			t.Fatalf("answer %x: %v", got, err)
		}
		if sw != ctap.SWNoError {
			if len(body) != 0 {
				t.Fatalf("%v with a body: %x", sw, got)
			}
			checkUnchanged(t, k, before, fmt.Sprintf("an APDU answered %v", sw))
			return
		}
		switch apdu[1] { // a success implies a parsed header
		case ctap.U2FVersion:
			err = nil
			if string(body) != "U2F_V2" {
				err = fmt.Errorf("version %q", body)
			}
		case ctap.U2FRegister:
			_, err = ctap.ParseU2FRegisterResponse(body)
		case ctap.U2FAuthenticate:
			_, err = ctap.ParseU2FAuthenticateResponse(body)
		default:
			t.Fatalf("instruction %#x succeeded", apdu[1])
		}
		if err != nil {
			t.Fatalf("response: %v", err)
		}
	})
}

// TestFuzzSeeds rewrites the seed corpora with -update-corpus; otherwise it
// checks that every seed is still there, so a renamed field in the
// messages cannot leave the fuzzers with stale seeds unnoticed.
func TestFuzzSeeds(t *testing.T) {
	k, ids := newFuzzKey(t)
	r := u2fRegister(t, k, testApp)
	cborSeeds, msgSeeds := fuzzSeeds(ids, r.KeyHandle)
	write := func(target, name string, values ...any) {
		var b bytes.Buffer
		b.WriteString("go test fuzz v1\n")
		for _, v := range values {
			switch v := v.(type) {
			case byte:
				fmt.Fprintf(&b, "byte(%s)\n", strconv.QuoteRune(rune(v)))
			case []byte:
				fmt.Fprintf(&b, "[]byte(%s)\n", strconv.Quote(string(v)))
			case string:
				fmt.Fprintf(&b, "string(%s)\n", strconv.Quote(v))
			case uint64:
				fmt.Fprintf(&b, "uint64(%d)\n", v)
			case bool:
				fmt.Fprintf(&b, "bool(%v)\n", v)
			default:
				t.Fatalf("seed value of type %T", v)
			}
		}
		path := filepath.Join("testdata", "fuzz", target, name)
		if *updateCorpus {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			return
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, b.Bytes()) {
			t.Errorf("seed %s is stale or missing (run go test ./fido/virtual -run TestFuzzSeeds -update-corpus): %v", path, err)
		}
	}
	for _, s := range cborSeeds {
		write("FuzzHandleCBOR", s.name, s.cmd, s.params)
	}
	for _, s := range msgSeeds {
		write("FuzzHandleMsg", s.name, s.apdu)
	}
	for _, s := range clientPINSeeds() {
		write("FuzzClientPIN", s.name, s.values...)
	}
	for _, s := range credMgmtSeeds(newFuzzPINKey(t)) {
		write("FuzzCredMgmt", s.name, s.values...)
	}
}

type cborSeed struct {
	name   string
	cmd    byte
	params []byte
}

type msgSeed struct {
	name string
	apdu []byte
}

// fuzzSeeds returns valid and invalid requests for the fuzz key, whose
// credential IDs are ids (alice and bob discoverable, carol not) and whose
// U2F key handle for testApp is kh.
func fuzzSeeds(ids [][]byte, kh []byte) ([]cborSeed, []msgSeed) {
	enc := func(v any) []byte { return ctap.MustMarshal(v) }
	withOpts := func(r *ctap.MakeCredentialRequest, o map[string]bool) *ctap.MakeCredentialRequest {
		r.Options = o
		return r
	}
	excl := mcRequest("dave", false)
	excl.ExcludeList = []ctap.CredentialDescriptor{{Type: "public-key", ID: ids[2]}}
	pinTouch := mcRequest("dave", false)
	pinTouch.PinUvAuthParam, pinTouch.PinUvAuthProtocol = []byte{}, 1
	upOff := gaRequest(ids[2])
	upOff.Options = map[string]bool{ctap.OptUP: false}
	mc, ga := byte(ctap.CmdMakeCredential), byte(ctap.CmdGetAssertion)
	hash := pair(1, cdh)
	rp := pair(2, map[string]any{"id": testRPID})
	user := pair(3, map[string]any{"id": []byte{1}})
	algs := pair(4, []any{map[string]any{"type": "public-key", "alg": -7}})

	cbor := []cborSeed{
		{"getInfo", byte(ctap.CmdGetInfo), nil},
		{"makeCredential", mc, enc(mcRequest("dave", false))},
		{"makeCredential-rk-eddsa", mc, enc(mcRequest("erin", true, ctap.AlgEdDSA))},
		{"makeCredential-up-true", mc, enc(withOpts(mcRequest("dave", false), map[string]bool{"up": true}))},
		{"makeCredential-excluded", mc, enc(excl)},
		{"makeCredential-pin-touch", mc, enc(pinTouch)},
		{"makeCredential-uv", mc, enc(withOpts(mcRequest("dave", false), map[string]bool{"uv": true}))},
		{"makeCredential-rs256-only", mc, enc(mcRequest("dave", false, ctap.AlgRS256))},
		{"makeCredential-duplicate-key", mc, mapOf(hash, rp, user, algs, hash)},
		{"makeCredential-unsorted", mc, mapOf(rp, hash, user, algs)},
		{"makeCredential-trailing", mc, append(mapOf(hash, rp, user, algs), 0)},
		{"makeCredential-wrong-type", mc, mapOf(pair(1, "hash"), rp, user, algs)},
		{"makeCredential-missing-user", mc, mapOf(hash, rp, algs)},
		{"makeCredential-deep", mc, mapOf(hash, rp, user, algs, append([]byte{0x06}, bytes.Repeat([]byte{0x81}, 20)...))},
		{"getAssertion-discoverable", ga, enc(gaRequest())},
		{"getAssertion-allowList", ga, enc(gaRequest([]byte("other"), ids[2]))},
		{"getAssertion-up-false", ga, enc(upOff)},
		{"getAssertion-rk-option", ga, mapOf(pair(1, testRPID), pair(2, cdh), pair(5, map[string]bool{"rk": true}))},
		{"getAssertion-u2f-handle", ga, enc(gaRequest(kh))},
		{"getNextAssertion", byte(ctap.CmdGetNextAssertion), nil},
		{"selection", byte(ctap.CmdSelection), nil},
		{"reset", byte(ctap.CmdReset), nil},
		{"clientPin", byte(ctap.CmdClientPIN), mapOf(pair(1, 1), pair(2, 2))},
		{"unknown-command", 0x55, []byte{0xA0}},
	}
	auth := func(p1 byte, handle []byte) []byte { return authenticateAPDU(p1, cdh, testApp, handle) }
	msgs := []msgSeed{
		{"version", (&ctap.APDU{INS: ctap.U2FVersion}).Marshal()},
		{"version-short-le", []byte{0, ctap.U2FVersion, 0, 0, 0}},
		{"register", registerAPDU(cdh, testApp)},
		{"register-short-form", append([]byte{0, ctap.U2FRegister, 3, 0, 64}, append(bytes.Clone(cdh), testApp[:]...)...)},
		{"authenticate-check", auth(ctap.U2FCheckOnly, kh)},
		{"authenticate-enforce", auth(ctap.U2FEnforceUP, kh)},
		{"authenticate-dont-enforce", auth(ctap.U2FDontEnforceUP, kh)},
		{"authenticate-ctap2-credential", auth(ctap.U2FEnforceUP, ids[2])},
		{"authenticate-unknown-handle", auth(ctap.U2FEnforceUP, []byte("unknown"))},
		{"bad-cla", []byte{0x80, ctap.U2FVersion, 0, 0}},
		{"unknown-ins", []byte{0, 0x44, 0, 0}},
		{"truncated", []byte{0, ctap.U2FRegister, 0, 0, 0, 0, 64, 1, 2}},
	}
	return cbor, msgs
}
