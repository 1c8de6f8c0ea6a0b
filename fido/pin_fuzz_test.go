package fido

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/hid"
)

// fuzzKey answers getInfo as a CTAP 2.1 key with a PIN and every feature
// this client drives, and every other command with the same fuzzed
// response: what a broken or hostile key could send to the PIN, credential
// management and large-blob code.
type fuzzKey struct{ answer []byte }

func (f *fuzzKey) CBOR(ctx context.Context, req []byte, status func(byte)) []byte {
	if ctap.Command(req[0]) == ctap.CmdGetInfo {
		return ctap.EncodeResponse(&ctap.GetInfoResponse{
			Versions: []string{"FIDO_2_1"}, AAGUID: make([]byte, 16), MaxMsgSize: 1024,
			Extensions: []string{ctap.ExtHMACSecret, ctap.ExtCredBlob, ctap.ExtLargeBlobKey},
			Options: map[string]bool{
				ctap.OptClientPIN: true, ctap.OptPinUvAuthToken: true, ctap.OptCredMgmt: true,
				ctap.OptLargeBlobs: true, ctap.OptAuthnrCfg: true, ctap.OptSetMinPINLength: true, ctap.OptAlwaysUv: false,
			},
			PinUvAuthProtocols: []uint64{2, 1}, MaxCredentialCountInList: 8,
		})
	}
	return f.answer
}

func (f *fuzzKey) Msg(ctx context.Context, apdu []byte) []byte { return []byte{0x6D, 0x00} }
func (f *fuzzKey) Wink()                                       {}

// FuzzHostileKeyPIN checks that whatever a key answers, the PIN, token,
// extension, credential management, config and large-blob code returns
// (a bounded number of prompts, no panic) with an error of a documented
// kind.
func FuzzHostileKeyPIN(f *testing.F) {
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	ka, _ := ctap.EncodeKeyAgreement(priv.PublicKey())
	retries := uint64(8)
	zero := uint64(0)
	for _, r := range []any{
		&ctap.ClientPINResponse{KeyAgreement: ka},
		&ctap.ClientPINResponse{PinRetries: &retries},
		&ctap.ClientPINResponse{PinRetries: &zero, PowerCycleState: true},
		&ctap.ClientPINResponse{PinUvAuthToken: make([]byte, 48)},
		&ctap.ClientPINResponse{KeyAgreement: ka, PinRetries: &retries, PinUvAuthToken: make([]byte, 48)},
		&ctap.CredMgmtResponse{TotalRPs: 1 << 40, RP: &ctap.RPEntity{ID: "x"}, RPIDHash: make([]byte, 32)},
		&ctap.LargeBlobsResponse{Config: make([]byte, 960)},
		&ctap.LargeBlobsResponse{Config: ctap.InitialLargeBlobArray()},
	} {
		f.Add(ctap.EncodeResponse(r))
	}
	f.Add([]byte{byte(ctap.StatusPINInvalid)})
	f.Add([]byte{byte(ctap.StatusPINAuthBlocked)})
	f.Add([]byte{})
	f.Add([]byte{0})
	f.Fuzz(func(t *testing.T, answer []byte) {
		if len(answer) > hid.MaxMessageSize {
			t.Skip("no CTAPHID message carries it")
		}
		host, dev := hid.Pipe()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		go (&hid.Server{Handler: &fuzzKey{answer: answer}, Capabilities: hid.CapCBOR}).Serve(ctx, dev)
		prompts := 0
		d, err := (&Opener{IdleTimeout: time.Second, Prompt: Prompt{PIN: func(context.Context, PINRequest) (string, error) {
			prompts++
			return "correct horse", nil
		}}}).OpenConn(ctx, host, DeviceInfo{Path: "fuzz"})
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		hash := make([]byte, 32)
		key := make([]byte, 32)
		calls := map[string]func() error{
			"SetPIN":     func() error { return d.SetPIN(ctx, "new pin") },
			"ChangePIN":  func() error { return d.ChangePIN(ctx, "old pin", "new pin") },
			"PINRetries": func() error { _, _, err := d.PINRetries(ctx); return err },
			"GetAssertion": func() error {
				_, err := d.GetAssertion(ctx, &GetAssertionRequest{RPID: "example.com", ClientDataHash: hash, UserVerification: true,
					Extensions: GetAssertionExtensions{HMACSecret: &HMACSecretInput{Salt1: key}, CredBlob: true, LargeBlobKey: true}})
				return err
			},
			"MakeCredential": func() error {
				_, err := d.MakeCredential(ctx, &MakeCredentialRequest{ClientDataHash: hash, RP: RelyingParty{ID: "example.com"}, User: User{ID: []byte{1}},
					Discoverable: true, Extensions: MakeCredentialExtensions{HMACSecret: true, CredBlob: []byte{1}, LargeBlobKey: true}})
				return err
			},
			"RelyingParties": func() error { _, err := d.RelyingParties(ctx); return err },
			"Credentials":    func() error { _, err := d.Credentials(ctx, "example.com"); return err },
			"Metadata":       func() error { _, err := d.CredentialsMetadata(ctx); return err },
			"Delete":         func() error { return d.DeleteCredential(ctx, []byte{1}) },
			"SetMinPIN":      func() error { return d.SetMinPINLength(ctx, 6, nil, false) },
			"ReadLargeBlob":  func() error { _, err := d.ReadLargeBlob(ctx, key); return err },
			"WriteLargeBlob": func() error { return d.WriteLargeBlob(ctx, key, []byte("x")) },
		}
		for name, call := range calls {
			prompts = 0
			err := call()
			if prompts > maxPINRetries {
				t.Fatalf("%s: %d PIN prompts", name, prompts)
			}
			if err == nil {
				continue
			}
			var st Status
			switch {
			case errors.Is(err, ErrInvalidResponse), errors.As(err, &st), errors.Is(err, ErrPINRequired),
				errors.Is(err, ErrNotSupported), errors.Is(err, ErrNoLargeBlob), errors.Is(err, ErrDeviceGone):
			default:
				t.Fatalf("%s: error of no documented kind: %v", name, err)
			}
		}
	})
}
