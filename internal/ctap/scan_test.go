package ctap

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// decodeTargets are fresh values of every type decodeMessage fills.
var decodeTargets = []func() any{
	func() any { return new(MakeCredentialRequest) },
	func() any { return new(GetAssertionRequest) },
	func() any { return new(MakeCredentialResponse) },
	func() any { return new(GetAssertionResponse) },
	func() any { return new(GetInfoResponse) },
	func() any { return new(ClientPINRequest) },
	func() any { return new(ClientPINResponse) },
	func() any { return new(CredMgmtRequest) },
	func() any { return new(CredMgmtResponse) },
	func() any { return new(ConfigRequest) },
	func() any { return new(LargeBlobsRequest) },
	func() any { return new(LargeBlobsResponse) },
	func() any { return new(HMACSecretInput) },
	func() any { return new(map[int64]any) },
	func() any { return new(any) },
}

// differentialSeeds are the inputs of every decode fuzz target in this
// package, with the package's own seeds, and encodings at the edges of
// what quickCanonical proves: floats, simple values, tags, the limits.
func differentialSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	var seeds [][]byte
	for _, in := range fuzzSeeds(tb) {
		seeds = append(seeds, in...)
	}
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "*", "*"))
	require.NoError(tb, err)
	for _, name := range files {
		b, err := os.ReadFile(name)
		require.NoError(tb, err)
		body, ok := strings.CutPrefix(string(b), "go test fuzz v1\n[]byte(")
		if !ok {
			continue
		}
		// A target with more arguments has its []byte first.
		body, _, _ = strings.Cut(body, "\n")
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimSpace(body), ")"))
		require.NoError(tb, err, name)
		seeds = append(seeds, []byte(s))
	}
	for _, h := range []string{
		"", "00", "17", "1818", "1817", "190100", "1900ff", "3bffffffffffffffff", "3b7fffffffffffffff",
		"f4", "f5", "f6", "f7", "f0", "f820", "f81f", "f93c00", "fa3f800000", "fb3ff0000000000000",
		"fb7ff8000000000000", "c0", "c1a0", "5f40ff", "9fff", "bfff", "7f60ff", "62c328", "61ff",
		"a10040", "a2000001", "a2010000", "a2000000", "a1410000", "a18000", "a1a000", "a1f400",
		"a16161f6", "a16161f7", "a2616100626262f5", "a26262620061610f", "a21818002000", "a220001818",
		"a10281fb7ff8000000000000", "a104a16178fb7ff8000000000000", "a10482010203", "a1028201", "a1024201ff",
		"818181818181818100", "81818181818181818100", "8181818181818181818100",
	} {
		seeds = append(seeds, unhex(tb, h))
	}
	long := []byte{0x99, 0x01, 0x00} // 256 elements: the limit
	for range 256 {
		long = append(long, 0)
	}
	seeds = append(seeds, long, append([]byte{0x99, 0x01, 0x01}, append(long[3:], 0)...))
	return seeds
}

// FuzzDecodeDifferential holds the fast path of the CBOR checks to the
// slow one it stands in for: on every input, CheckCanonical and
// decodeMessage must accept and refuse exactly what checkCanonicalSlow and
// decodeMessageSlow do, with the same sentinel, and decode the same value.
func FuzzDecodeDifferential(f *testing.F) {
	for _, s := range differentialSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if quickCanonical(data) {
			require.NoError(t, checkCanonicalSlow("x", data), "quickCanonical accepted %x", data)
		}
		sameError(t, checkCanonicalSlow("x", data), CheckCanonical("x", data))
		var req, slowReq GetAssertionRequest
		if fastGetAssertionRequest(data, &req) {
			require.NoError(t, decodeMessageSlow("x", data, &slowReq), "fastGetAssertionRequest accepted %x", data)
			assert.Equal(t, slowReq, req)
		}
		var resp, slowResp GetAssertionResponse
		if fastGetAssertionResponse(data, &resp) {
			require.NoError(t, decodeMessageSlow("x", data, &slowResp), "fastGetAssertionResponse accepted %x", data)
			assert.Equal(t, slowResp, resp)
		}
		var mc, slowMC MakeCredentialRequest
		if fastMakeCredentialRequest(data, &mc) {
			require.NoError(t, decodeMessageSlow("x", data, &slowMC), "fastMakeCredentialRequest accepted %x", data)
			assert.Equal(t, slowMC, mc)
		}
		var mcr, slowMCR MakeCredentialResponse
		if fastMakeCredentialResponse(data, &mcr) {
			require.NoError(t, decodeMessageSlow("x", data, &slowMCR), "fastMakeCredentialResponse accepted %x", data)
			assert.Equal(t, slowMCR, mcr)
		}
		for _, target := range decodeTargets {
			fast, slow := target(), target()
			errFast := decodeMessage("x", data, fast)
			errSlow := decodeMessageSlow("x", data, slow)
			sameError(t, errSlow, errFast)
			if errSlow == nil && !assert.ObjectsAreEqual(slow, fast) {
				// NaN is not equal to itself; its encoding is.
				assert.Equal(t, MustMarshal(slow), MustMarshal(fast), "decoding %x into %T", data, fast)
			}
		}
	})
}

func sameError(t *testing.T, want, got error) {
	t.Helper()
	if want == nil || got == nil {
		require.Equal(t, want == nil, got == nil, "slow: %v, fast: %v", want, got)
		return
	}
	var w, g *SyntaxError
	require.True(t, errors.As(want, &w), "slow error %v", want)
	require.True(t, errors.As(got, &g), "fast error %v", got)
	assert.Equal(t, w.What, g.What)
	assert.Equal(t, w.Err, g.Err, "slow: %v, fast: %v", want, got)
}

// TestQuickChecksAcceptMessages makes sure the fast path is the one taken
// for the messages the package itself encodes, or there is no speed to
// prove equal.
func TestQuickChecksAcceptMessages(t *testing.T) {
	for name, v := range map[string]any{
		"makeCredential request":  sampleMakeCredentialRequest(),
		"getAssertion request":    sampleGetAssertionRequest(),
		"makeCredential response": sampleMakeCredentialResponse(t),
		"getAssertion response":   sampleGetAssertionResponse(t),
		"getInfo response":        sampleGetInfoResponse(),
	} {
		enc := MustMarshal(v)
		assert.True(t, quickCanonical(enc), name)
		assert.True(t, quickFaithful(enc, enc), name)
	}
	var mc MakeCredentialRequest
	assert.True(t, fastMakeCredentialRequest(MustMarshal(sampleMakeCredentialRequest()), &mc))
	assert.Equal(t, *sampleMakeCredentialRequest(), mc)
	var mcr MakeCredentialResponse
	assert.True(t, fastMakeCredentialResponse(MustMarshal(sampleMakeCredentialResponse(t)), &mcr))
	assert.Equal(t, *sampleMakeCredentialResponse(t), mcr)
	var req GetAssertionRequest
	assert.True(t, fastGetAssertionRequest(MustMarshal(sampleGetAssertionRequest()), &req))
	assert.Equal(t, *sampleGetAssertionRequest(), req)
	var resp GetAssertionResponse
	assert.True(t, fastGetAssertionResponse(MustMarshal(sampleGetAssertionResponse(t)), &resp))
	assert.Equal(t, *sampleGetAssertionResponse(t), resp)
}

func BenchmarkDecodeGetAssertionRequest(b *testing.B) {
	data := MustMarshal(sampleGetAssertionRequest())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeGetAssertionRequest(data); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeGetAssertionResponse(b *testing.B) {
	data := MustMarshal(sampleGetAssertionResponse(b))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeGetAssertionResponse(data); err != nil {
			b.Fatal(err)
		}
	}
}
