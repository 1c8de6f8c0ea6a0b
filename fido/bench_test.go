package fido_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
)

// The round-trip benchmarks put a number on what the protocol layers cost
// over the cryptography the operation cannot do without. Each reports
// x-floor: its time per operation over that floor's, timed in the same
// run, since absolute times on shared machines are noise and ratios carry
// over. "inprocess" is CBOR and CTAPHID framing through an in-memory pipe,
// "socket" adds the SOCK_SEQPACKET socket, one datagram per 64-byte report.

// loopWithFloor runs op b.N times and after each, with the benchmark's
// timer stopped, the floor once, and reports x-floor: the time in op over
// the time in the floor. Interleaving them means that the bursts of load
// on a shared machine weigh on both alike, where a floor timed once
// before the loop would meet other bursts than the loop does.
func loopWithFloor(b *testing.B, op, floor func()) {
	b.Helper()
	floor() // warm up
	var inOp, inFloor time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		start := time.Now()
		op()
		inOp += time.Since(start)
		b.StopTimer()
		start = time.Now()
		floor()
		inFloor += time.Since(start)
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(inOp)/float64(inFloor), "x-floor")
}

// signFloor is what an assertion cannot do without: SHA-256 over the
// authenticator data and client data hash, and one P-256 signature.
func signFloor() func() {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	var msg [37 + 32]byte
	return func() {
		h := sha256.Sum256(msg[:])
		if _, err := ecdsa.SignASN1(rand.Reader, priv, h[:]); err != nil {
			panic(err)
		}
	}
}

// ceremonyFloor is what a registration and a sign-in through a WebAuthn
// client cannot do without: a new P-256 credential key, and for each of
// the two ceremonies SHA-256 of the client data, SHA-256 of the signed
// data and one P-256 signature (self attestation, then the assertion).
func ceremonyFloor() func() {
	sign := signFloor()
	cdj := make([]byte, 120)
	return func() {
		if _, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		for range 2 {
			sha256.Sum256(cdj)
			sign()
		}
	}
}

func benchDevice(b *testing.B, tr transport) *fido.Device {
	b.Helper()
	return tr.open(b, newKey(b, &virtual.Config{}))
}

func benchMakeCredentialRequest() *fido.MakeCredentialRequest {
	hash := sha256.Sum256([]byte("client data"))
	return &fido.MakeCredentialRequest{
		ClientDataHash: hash[:],
		RP:             fido.RelyingParty{ID: testRPID, Name: "Example"},
		User:           fido.User{ID: []byte("id-alice"), Name: "alice"},
	}
}

func BenchmarkMakeCredential(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			dev := benchDevice(b, tr)
			req := benchMakeCredentialRequest()
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if _, err := dev.MakeCredential(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGetAssertion is one ES256 assertion for a known credential,
// against the floor of one SHA-256 and one P-256 signature.
func BenchmarkGetAssertion(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			dev := benchDevice(b, tr)
			ctx := context.Background()
			att, err := dev.MakeCredential(ctx, benchMakeCredentialRequest())
			require.NoError(b, err)
			hash := sha256.Sum256([]byte("client data"))
			req := &fido.GetAssertionRequest{RPID: testRPID, ClientDataHash: hash[:], AllowList: [][]byte{att.CredentialID}}
			loopWithFloor(b, func() {
				if _, err := dev.GetAssertion(ctx, req); err != nil {
					b.Fatal(err)
				}
			}, signFloor())
		})
	}
}

// BenchmarkCeremony is a registration and a sign-in through a
// WebAuthnClient, options JSON in and response JSON out, as a browser
// would run them, against ceremonyFloor.
func BenchmarkCeremony(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			c := &fido.WebAuthnClient{Authenticator: benchDevice(b, tr), Origin: testOrigin}
			ctx := context.Background()
			challenge := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
			create := []byte(fmt.Sprintf(`{"publicKey":{"rp":{"id":%q,"name":"Example"},`+
				`"user":{"id":"aWQtYWxpY2U","name":"alice","displayName":"Alice"},"challenge":%q,`+
				`"pubKeyCredParams":[{"type":"public-key","alg":-7}],"timeout":60000,`+
				`"authenticatorSelection":{"residentKey":"discouraged","userVerification":"discouraged"},`+
				`"attestation":"none"}}`, testRPID, challenge))
			get := func(id string) []byte {
				return []byte(fmt.Sprintf(`{"publicKey":{"challenge":%q,"timeout":60000,"rpId":%q,`+
					`"allowCredentials":[{"type":"public-key","id":%q}],"userVerification":"discouraged"}}`,
					challenge, testRPID, id))
			}
			// A first ceremony checks the options and warms the device's
			// cached getInfo.
			reg, err := c.Create(ctx, create)
			require.NoError(b, err)
			_, err = c.Get(ctx, get(credentialID(b, reg)))
			require.NoError(b, err)
			loopWithFloor(b, func() {
				reg, err := c.Create(ctx, create)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := c.Get(ctx, get(credentialID(b, reg))); err != nil {
					b.Fatal(err)
				}
			}, ceremonyFloor())
		})
	}
}

// credentialID finds the "id" member at the start of a
// RegistrationResponseJSON without a JSON decoder, so that the benchmark
// times the client rather than its own parsing.
func credentialID(b *testing.B, reg []byte) string {
	const prefix = `{"id":"`
	if len(reg) < len(prefix) || string(reg[:len(prefix)]) != prefix {
		b.Fatalf("registration response starts %.20q", reg)
	}
	rest := reg[len(prefix):]
	for i, c := range rest {
		if c == '"' {
			return string(rest[:i])
		}
	}
	b.Fatal("registration response id unterminated")
	return ""
}

// BenchmarkGetAssertionPIN is GetAssertion with user verification by PIN
// on a key without built-in UV, in process: what the PIN/UV auth protocol
// adds (getKeyAgreement, an ECDH, getPinUvAuthTokenUsingPinWithPermissions
// with its AES and HMAC, then pinUvAuthParam) over BenchmarkGetAssertion,
// for each protocol the key may offer.
func BenchmarkGetAssertionPIN(b *testing.B) {
	ctx := context.Background()
	k := newKey(b, &virtual.Config{PIN: "4711-bench"})
	dev, err := k.Open(ctx, &fido.Opener{Prompt: fido.Prompt{
		PIN: func(context.Context, fido.PINRequest) (string, error) { return "4711-bench", nil },
	}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { dev.Close() })
	att, err := dev.MakeCredential(ctx, benchMakeCredentialRequest())
	if err != nil {
		b.Fatal(err)
	}
	hash := sha256.Sum256([]byte("client data"))
	req := &fido.GetAssertionRequest{RPID: testRPID, ClientDataHash: hash[:], AllowList: [][]byte{att.CredentialID}, UserVerification: true}
	b.ReportAllocs()
	for b.Loop() {
		as, err := dev.GetAssertion(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if !as[0].UserVerified {
			b.Fatal("assertion without UV")
		}
	}
}

// BenchmarkECDSAP256SignVerify is the floor under the round trips: one
// ES256 signature over a 32-byte hash and its verification.
func BenchmarkECDSAP256SignVerify(b *testing.B) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	hash := sha256.Sum256([]byte("authenticator data and client data hash"))
	b.ReportAllocs()
	for b.Loop() {
		sig, err := ecdsa.SignASN1(rand.Reader, priv, hash[:])
		if err != nil {
			b.Fatal(err)
		}
		if !ecdsa.VerifyASN1(&priv.PublicKey, hash[:], sig) {
			b.Fatal("signature does not verify")
		}
	}
}
