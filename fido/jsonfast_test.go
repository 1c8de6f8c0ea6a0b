package fido

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// quickJSONSeeds are options documents and JSON at the edges of what the
// fast path handles.
var quickJSONSeeds = []string{
	`{"publicKey":{"rp":{"id":"example.com","name":"Example"},"user":{"id":"aWQ","name":"alice","displayName":"Alice"},` +
		`"challenge":"AAAA","pubKeyCredParams":[{"type":"public-key","alg":-7},{"type":"public-key","alg":-257}],` +
		`"timeout":60000,"excludeCredentials":[{"type":"public-key","id":"AQID","transports":["usb","nfc"]}],` +
		`"authenticatorSelection":{"residentKey":"required","requireResidentKey":true,"userVerification":"preferred"},` +
		`"attestation":"direct","extensions":{"credProps":true,"prf":{"eval":{"first":"AAAA"}}}}}`,
	`{"challenge":"AAAA","rpId":"example.com","allowCredentials":[],"userVerification":"discouraged"}`,
	` { "a" : [ 1 , -0.5e+3 , true , false , null , "x\"y\u00e9\n" , { } , [ ] ] } `,
	`{"a":1,"a":2}`, `{"a\u0062":1}`, `{"\u00e9":1}`, `{"é":"é"}`, "{\"a\xff\":1}", "{\"a\":\"\xff\"}",
	`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":1e}`, `{"a":-}`, `{"a":tru}`, `{"a":"\x"}`, `{"a":"\u12"}`,
	"{\"a\":\"\t\"}", `{"a":1,}`, `{,}`, `{"a" 1}`, `{"a":1}x`, `{"a":1} `, `[1,2]`, `[]`, `[1,]`, `null`, `""`,
	`"plain"`, `"esc\"aped"`, `"\u0041"`, `{"a":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}`,
	``, `{`, `[`, `"`, `{"a":{"b":{"c":"d"}}}`,
}

// FuzzQuickJSON holds the fast JSON path to encoding/json: whatever it
// accepts, json.Unmarshal accepts too and decodes to the same value.
func FuzzQuickJSON(f *testing.F) {
	for _, s := range quickJSONSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if o, ok := quickObject(data); ok {
			var want jsonObject
			require.NoError(t, json.Unmarshal(data, &want), "quickObject accepted %q", data)
			require.NotNil(t, want)
			assert.Equal(t, want, o, "%q", data)
		}
		if a, ok := quickArray(data); ok {
			var want []json.RawMessage
			require.NoError(t, json.Unmarshal(data, &want), "quickArray accepted %q", data)
			assert.Equal(t, want, a, "%q", data)
		}
		if s, ok := quickStr(data); ok {
			var want string
			require.NoError(t, json.Unmarshal(data, &want), "quickStr accepted %q", data)
			assert.Equal(t, want, s, "%q", data)
		}
		// Whatever json.Unmarshal refuses, the fast path refuses too.
		if !json.Valid(data) {
			_, ok1 := quickObject(data)
			_, ok2 := quickArray(data)
			_, ok3 := quickStr(data)
			assert.False(t, ok1 || ok2 || ok3, "invalid JSON %q accepted", data)
		}
	})
}

// TestQuickJSONTakesOptions makes sure that ordinary options take the fast
// path, or it proves nothing and saves nothing.
func TestQuickJSONTakesOptions(t *testing.T) {
	o, ok := quickObject([]byte(quickJSONSeeds[0]))
	require.True(t, ok)
	pk, ok := quickObject(o["publicKey"])
	require.True(t, ok)
	params, ok := quickArray(pk["pubKeyCredParams"])
	require.True(t, ok)
	assert.Len(t, params, 2)
	s, ok := quickStr(pk["attestation"])
	require.True(t, ok)
	assert.Equal(t, "direct", s)
}
