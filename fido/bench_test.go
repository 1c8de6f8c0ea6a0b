package fido_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
)

// The round-trip benchmarks put a number on what the protocol layers cost
// over the signature itself, which BenchmarkECDSAP256SignVerify measures:
// "inprocess" is CBOR and CTAPHID framing through an in-memory pipe,
// "socket" adds the SOCK_SEQPACKET socket, one datagram per 64-byte report.

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

func BenchmarkGetAssertion(b *testing.B) {
	for _, tr := range transports {
		b.Run(tr.name, func(b *testing.B) {
			dev := benchDevice(b, tr)
			ctx := context.Background()
			att, err := dev.MakeCredential(ctx, benchMakeCredentialRequest())
			if err != nil {
				b.Fatal(err)
			}
			hash := sha256.Sum256([]byte("client data"))
			req := &fido.GetAssertionRequest{RPID: testRPID, ClientDataHash: hash[:], AllowList: [][]byte{att.CredentialID}}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := dev.GetAssertion(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
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
