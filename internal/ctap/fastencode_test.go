package ctap

import (
	"testing"

	"github.com/fxamacker/cbor/v2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// encodeTargets are the messages with hand-written encoders, as values to
// decode into.
var encodeTargets = []func() any{
	func() any { return new(GetAssertionRequest) },
	func() any { return new(GetAssertionResponse) },
	func() any { return new(MakeCredentialRequest) },
	func() any { return new(MakeCredentialResponse) },
}

// mutate changes the fields of v that CBOR decoding cannot reach or rarely
// does: invalid UTF-8, raw extension values that are not canonical, nil
// against empty, negative counts.
func mutate(v any, s string, raw []byte, n int64, flags uint8) {
	bit := func(i uint) bool { return flags&(1<<i) != 0 }
	switch m := v.(type) {
	case *GetAssertionRequest:
		if bit(0) {
			m.RPID = s
		}
		if bit(1) {
			if m.Options == nil {
				m.Options = map[string]bool{}
			}
			m.Options[s] = bit(2)
		}
		if bit(3) {
			if m.Extensions == nil {
				m.Extensions = map[string]cbor.RawMessage{}
			}
			m.Extensions[s] = raw
		}
		if bit(4) {
			m.AllowList = append(m.AllowList, CredentialDescriptor{Type: s, ID: raw, Transports: []string{s}})
		}
		if bit(5) {
			m.PinUvAuthParam = raw
		}
		if bit(6) {
			m.PinUvAuthProtocol = uint64(n)
		}
		if bit(7) {
			m.ClientDataHash = nil
		}
	case *GetAssertionResponse:
		if bit(0) {
			m.Credential = &CredentialDescriptor{Type: s, ID: raw}
		}
		if bit(1) {
			m.User = &UserEntity{ID: raw, Name: s, DisplayName: s, Icon: s}
		}
		if bit(2) {
			m.NumberOfCredentials = int(n)
		}
		if bit(3) {
			m.UserSelected = !m.UserSelected
		}
		if bit(4) {
			m.LargeBlobKey = raw
		}
		if bit(5) {
			m.Signature = raw
		}
		if bit(6) {
			m.AuthData = nil
		}
	case *MakeCredentialRequest:
		if bit(0) {
			m.RP = &RPEntity{ID: s, Name: s, Icon: s}
		}
		if bit(1) {
			m.User = &UserEntity{ID: raw, Name: s}
		}
		if bit(2) {
			m.PubKeyCredParams = append(m.PubKeyCredParams, CredentialParam{Type: s, Alg: n})
		}
		if bit(3) {
			if m.Extensions == nil {
				m.Extensions = map[string]cbor.RawMessage{}
			}
			m.Extensions[s] = raw
		}
		if bit(4) {
			if m.Options == nil {
				m.Options = map[string]bool{}
			}
			m.Options[s] = bit(5)
		}
		if bit(6) {
			m.PinUvAuthParam = raw
		}
		if bit(7) {
			m.EnterpriseAttestation = uint64(n)
		}
	case *MakeCredentialResponse:
		if bit(0) {
			m.Format = s
		}
		if bit(1) {
			m.AttStmt = raw
		}
		if bit(2) {
			m.EpAtt = true
		}
		if bit(3) {
			m.LargeBlobKey = raw
		}
	}
}

// FuzzEncodeDifferential holds the hand-written encoders to fxamacker's
// Marshal: for every value they accept, they must write exactly Marshal's
// bytes. The values are decoded from the fuzzer's CBOR, leniently, and
// then changed by mutate.
func FuzzEncodeDifferential(f *testing.F) {
	for _, v := range []any{sampleGetAssertionRequest(), sampleGetAssertionResponse(f),
		sampleMakeCredentialRequest(), sampleMakeCredentialResponse(f)} {
		enc := MustMarshal(v)
		f.Add(enc, "", []byte(nil), int64(0), uint8(0))
		f.Add(enc, "up", []byte{0xf5}, int64(-3), uint8(0xff))
		f.Add(enc, "x\xff", []byte{0x18, 0x01}, int64(1<<40), uint8(0x5a))
	}
	f.Fuzz(func(t *testing.T, data []byte, s string, raw []byte, n int64, flags uint8) {
		for _, target := range encodeTargets {
			v := target()
			if anyDec.Unmarshal(data, v) != nil {
				continue
			}
			mutate(v, s, raw, n, flags)
			fast, ok := appendFast(nil, v)
			if !ok {
				continue
			}
			want, err := encMode.Marshal(v)
			require.NoError(t, err, "the fast encoder took %#v, which Marshal refuses", v)
			assert.Equal(t, want, fast, "encoding %#v", v)
		}
	})
}

// TestFastEncodersTaken makes sure the hand-written encoders do take the
// messages the client and the virtual key send.
func TestFastEncodersTaken(t *testing.T) {
	for _, v := range []any{sampleGetAssertionRequest(), sampleGetAssertionResponse(t),
		sampleMakeCredentialRequest(), sampleMakeCredentialResponse(t)} {
		fast, ok := appendFast(nil, v)
		require.True(t, ok, "%T", v)
		assert.Equal(t, MustMarshal(v), fast, "%T", v)
	}
	req, err := EncodeRequest(CmdGetAssertion, sampleGetAssertionRequest())
	require.NoError(t, err)
	assert.Equal(t, append([]byte{byte(CmdGetAssertion)}, MustMarshal(sampleGetAssertionRequest())...), req)
	var nilReq *GetAssertionRequest
	req, err = EncodeRequest(CmdGetAssertion, nilReq)
	require.NoError(t, err)
	assert.Equal(t, []byte{byte(CmdGetAssertion)}, req)
}

func BenchmarkEncodeGetAssertionResponse(b *testing.B) {
	r := sampleGetAssertionResponse(b)
	b.ReportAllocs()
	for b.Loop() {
		EncodeResponse(r)
	}
}
