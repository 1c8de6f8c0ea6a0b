package webauthn

import (
	"bytes"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// loginBodies are bodies of /login/begin and /login/finish: what clients
// send, and every shape the fast path must leave to encoding/json or
// decide as it does (case, null, escapes, unknown members, other types,
// white space, invalid JSON).
var loginBodies = []string{
	`{}`, `null`, `[]`, `"x"`, `1`, ` { } `,
	`{"name":"alice@example.com"}`, `{"NAME":"alice@example.com"}`, `{"Name":"al\u0069ce"}`,
	`{"name":null}`, `{"name":1}`, `{"name":{}}`, `{"name":"a","other":1}`, `{"nam":"a"}`,
	`{"name":"é"}`, "{\"name\":\"a\u2028b\"}", `{"n\u0061me":"a"}`, `{"name":"a"} `, `{"name":"a"}x`,
	`{"challengeId":"abc","credential":{"id":"AAAA","rawId":"AAAA","type":"public-key","response":{"clientDataJSON":"e30","authenticatorData":"AA","signature":"AA","userHandle":null},"clientExtensionResults":{}}}`,
	` {"credential" : [1, {"a":"}"}] , "CHALLENGEID" : "x" } `,
	`{"challengeId":"abc","credential":null}`, `{"challengeId":"abc","credential":"str\"ing"}`,
	`{"challengeId":"abc","credential":-1.5e3}`, `{"challengeId":"abc","credential":true}`,
	`{"challengeId":"abc"}`, `{"credential":{}}`, `{"challengeId":null,"credential":{}}`,
	`{"challengeId":"a\"b","credential":{}}`, `{"challengeId":5,"credential":{}}`,
	`{"challengeId":"abc","credential":{},"extra":1}`, `{"challengeId":"abc","credential":{}`,
	`{"challengeId":"abc","credential":{},}`, `{"challengeId":"abc" "credential":{}}`,
	`{"challengeId":"abc","credential":{}}{}`, "{\"challengeId\":\"abc\",\"credential\":{\"a\":[]}}\n",
	`{"challengeId":"abc","credential":{"nested":{"deep":[[[{"x":"]}"}]]]}}}`,
}

// TestLoginBodies checks the sign-in routes' body readers against
// encoding/json on loginBodies, and that they take the fast path on what
// clients send.
func TestLoginBodies(t *testing.T) {
	for _, b := range loginBodies {
		checkLoginBodies(t, []byte(b))
	}
	var raw [2][]byte
	assert.True(t, fastObject([]byte(loginBodies[19]), []string{"challengeid", "credential"}, raw[:]), "a browser's finish body")
	assert.True(t, fastObject([]byte(` {"credential" : [1, {"a":"}"}] , "CHALLENGEID" : "x" } `), []string{"challengeid", "credential"}, raw[:]))
	assert.Equal(t, `[1, {"a":"}"}]`, string(raw[1]))
	assert.Equal(t, `"x"`, string(raw[0]))
	raw = [2][]byte{}
	assert.True(t, fastObject([]byte(`{"name":"alice@example.com"}`), []string{"name"}, raw[:1]))
	assert.False(t, fastObject([]byte(`{"n\u0061me":"a"}`), []string{"name"}, raw[:1]), "escaped names are left to encoding/json")
}

// FuzzLoginBodies checks that the sign-in routes' body readers decode
// every body as encoding/json does (DisallowUnknownFields, nothing after
// the value): the same fields, and an error exactly when it fails; and
// that whenever the fast path decides, encoding/json succeeds.
func FuzzLoginBodies(f *testing.F) {
	for _, b := range loginBodies {
		f.Add([]byte(b))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkLoginBodies(t, b) })
}

func checkLoginBodies(t *testing.T, b []byte) {
	t.Helper()
	var fastB, slowB loginBeginBody
	errFast, errSlow := fastB.decode(b), decodeJSON(b, &slowB)
	assert.Equal(t, errSlow == nil, errFast == nil, "begin %q: %v, encoding/json %v", b, errFast, errSlow)
	assert.Equal(t, slowB, fastB, "begin %q", b)
	var raw [2][]byte
	if fastObject(b, []string{"name"}, raw[:1]) {
		if _, ok := plainString(raw[0]); ok {
			require.NoError(t, errSlow, "begin %q: decided fast, but encoding/json fails", b)
		}
	}

	var fastF, slowF loginFinishBody
	errFast, errSlow = fastF.decode(b), decodeJSON(b, &slowF)
	assert.Equal(t, errSlow == nil, errFast == nil, "finish %q: %v, encoding/json %v", b, errFast, errSlow)
	assert.Equal(t, slowF.ChallengeID, fastF.ChallengeID, "finish %q", b)
	assert.Equal(t, string(slowF.Credential), string(fastF.Credential), "finish %q", b)
	assert.Equal(t, slowF.Credential == nil, fastF.Credential == nil, "finish %q: nil credential", b)
	raw = [2][]byte{}
	if fastObject(b, []string{"challengeid", "credential"}, raw[:]) {
		if _, ok := plainString(raw[0]); ok {
			require.NoError(t, errSlow, "finish %q: decided fast, but encoding/json fails", b)
		}
	}
	if len(fastF.Credential) > 0 && len(b) > 0 {
		// The credential is the caller's, not a window on the body.
		fastF.Credential[0] ^= 0xff
		assert.NotEqual(t, string(slowF.Credential), string(fastF.Credential))
	}
}

// TestReadAll: readAll reads what io.ReadAll reads, whatever the hint
// and however the reader splits the body.
func TestReadAll(t *testing.T) {
	bodies := []string{"", "x", strings.Repeat("a", readBodyHint), strings.Repeat("b", 3*readBodyHint+7), loginBodies[19]}
	for _, body := range bodies {
		for _, hint := range []int64{-1, 0, 1, int64(len(body)) - 1, int64(len(body)), int64(len(body)) + 1, 1 << 30} {
			for _, wrap := range []func(io.Reader) io.Reader{
				func(r io.Reader) io.Reader { return r },
				iotest.OneByteReader, iotest.HalfReader, iotest.DataErrReader,
			} {
				got, err := readAll(wrap(strings.NewReader(body)), hint)
				require.NoError(t, err)
				assert.True(t, bytes.Equal([]byte(body), got), "len %d, hint %d", len(body), hint)
			}
		}
	}
	_, err := readAll(iotest.ErrReader(io.ErrUnexpectedEOF), 10)
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}

// BenchmarkLoginFinishBody is the decoding of a browser's /login/finish
// body: fast, the handler's; json, encoding/json's with
// DisallowUnknownFields, as before.
func BenchmarkLoginFinishBody(b *testing.B) {
	body := []byte(`{"challengeId":"` + strings.Repeat("A", 43) + `","credential":{"id":"` + strings.Repeat("B", 86) +
		`","rawId":"` + strings.Repeat("B", 86) + `","type":"public-key","response":{"clientDataJSON":"` + strings.Repeat("C", 200) +
		`","authenticatorData":"` + strings.Repeat("D", 50) + `","signature":"` + strings.Repeat("E", 96) +
		`","userHandle":"` + strings.Repeat("F", 43) + `"},"clientExtensionResults":{},"authenticatorAttachment":"cross-platform"}}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v loginFinishBody
			if err := v.decode(body); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var v loginFinishBody
			if err := decodeJSON(body, &v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
