package fidotest

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"sync"
	"testing"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
)

// pinPrompt is a Prompt.PIN that answers from a script and records what
// it was asked. It is safe for concurrent use.
type pinPrompt struct {
	mu      sync.Mutex
	answers []string // answered in order; the last one repeats
	asked   []fido.PINRequest
}

func (p *pinPrompt) set(answers ...string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.answers, p.asked = answers, nil
}

func (p *pinPrompt) requests() []fido.PINRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.asked)
}

func (p *pinPrompt) pin(ctx context.Context, req fido.PINRequest) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.asked = append(p.asked, req)
	if len(p.answers) == 0 {
		return "", errors.New("fidotest: no PIN to give")
	}
	pin := p.answers[0]
	if len(p.answers) > 1 {
		p.answers = p.answers[1:]
	}
	return pin, nil
}

// pinKey opens the implementation on a key with the suite's defaults
// (CTAP 2.1 unless cfg says otherwise) and sets its PIN to pin through
// PINManager. It skips the test when the implementation has no
// PINManager or the key offers no clientPin.
func (s *suite) pinKey(t *testing.T, cfg *virtual.Config, p *pinPrompt, pin string) (fido.Authenticator, fido.PINManager, *virtual.Key) {
	t.Helper()
	a, k := s.openWith(t, cfg, fido.Prompt{PIN: p.pin})
	pm, ok := a.(fido.PINManager)
	if !ok {
		t.Skipf("%T does not implement fido.PINManager", a)
	}
	info, err := a.Info(ctxT(t))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := info.Option("clientPin"); !ok {
		t.Skip("the virtual key does not offer clientPin")
	}
	if pin != "" {
		if err := pm.SetPIN(ctxT(t), pin); err != nil {
			t.Fatalf("SetPIN: %v", err)
		}
	}
	return a, pm, k
}

// testPIN checks PIN management (CTAP 2.1 §6.5) and the PIN as user
// verification in MakeCredential and GetAssertion, where the
// implementation is a fido.PINManager and the virtual key offers
// clientPin; credential management (§6.8) joins it where the
// implementation is a fido.CredentialManager.
func (s *suite) testPIN(t *testing.T) {
	t.Run("manage", s.testPINManage)
	t.Run("user verification", s.testPINUV)
	t.Run("blocking", s.testPINBlocking)
	t.Run("credential management", s.testCredentialManagement)
}

func (s *suite) testPINManage(t *testing.T) {
	p := &pinPrompt{}
	_, pm, _ := s.pinKey(t, s.keyConfig(), p, "")
	ctx := ctxT(t)
	retries := func(t *testing.T, want int) {
		t.Helper()
		n, _, err := pm.PINRetries(ctx)
		if err != nil {
			t.Fatalf("PINRetries: %v", err)
		}
		if n != want {
			t.Errorf("PINRetries = %d, want %d", n, want)
		}
	}

	t.Run("set", func(t *testing.T) {
		retries(t, 8)
		if err := pm.SetPIN(ctx, "12"); !errors.Is(err, fido.StatusPINPolicyViolation) {
			t.Errorf("SetPIN of 2 digits: %v, want StatusPINPolicyViolation", err)
		}
		if err := pm.SetPIN(ctx, "1234"); err != nil {
			t.Fatalf("SetPIN: %v", err)
		}
		// fido.PINManager's contract: StatusNotAllowed, whatever the key
		// would answer (CTAP 2.1 §6.5.5.5 step 3 has it answer
		// CTAP2_ERR_PIN_AUTH_INVALID).
		if err := pm.SetPIN(ctx, "4321"); !errors.Is(err, fido.StatusNotAllowed) {
			t.Errorf("SetPIN with a PIN set: %v, want StatusNotAllowed", err)
		}
	})
	t.Run("change", func(t *testing.T) {
		err := pm.ChangePIN(ctx, "0000", "5678")
		var pe *fido.PINError
		if !errors.As(err, &pe) || !errors.Is(err, fido.StatusPINInvalid) || pe.Retries != 7 {
			t.Errorf("ChangePIN with a wrong PIN: %v, want a *fido.PINError with StatusPINInvalid and 7 retries", err)
		}
		retries(t, 7)
		if err := pm.ChangePIN(ctx, "1234", "5678"); err != nil {
			t.Fatalf("ChangePIN: %v", err)
		}
		retries(t, 8)
		if err := pm.ChangePIN(ctx, "1234", "8765"); !errors.Is(err, fido.StatusPINInvalid) {
			t.Errorf("ChangePIN with the old PIN: %v, want StatusPINInvalid", err)
		}
		if err := pm.ChangePIN(ctx, "5678", "1"); !errors.Is(err, fido.StatusPINPolicyViolation) {
			t.Errorf("ChangePIN to 1 digit: %v, want StatusPINPolicyViolation", err)
		}
	})
}

func (s *suite) testPINUV(t *testing.T) {
	p := &pinPrompt{}
	a, _, k := s.pinKey(t, s.keyConfig(), p, "1234")

	var att *fido.Attestation
	t.Run("MakeCredential", func(t *testing.T) {
		p.set("1234")
		req := makeReq(t, "alice", true)
		req.UserVerification = true
		var err error
		if att, err = a.MakeCredential(ctxT(t), req); err != nil {
			t.Fatalf("MakeCredential with user verification: %v", err)
		}
		if !att.UserVerified || !att.UserPresent {
			t.Errorf("UP %v UV %v, want both", att.UserPresent, att.UserVerified)
		}
		if _, err := VerifyAttestation(att, RPID, req.ClientDataHash, s.roots); err != nil {
			t.Error(err)
		}
		asked := p.requests()
		if len(asked) != 1 || asked[0].Op != "makeCredential" || asked[0].RPID != RPID || asked[0].Retry || asked[0].Retries != 8 {
			t.Errorf("PIN requests %+v, want one for makeCredential on %s with 8 retries", asked, RPID)
		}
	})
	if att == nil {
		t.FailNow()
	}
	t.Run("GetAssertion after a wrong PIN", func(t *testing.T) {
		p.set("0000", "1234")
		req := &fido.GetAssertionRequest{RPID: RPID, ClientDataHash: hash(t), AllowList: [][]byte{att.CredentialID}, UserVerification: true}
		got, err := a.GetAssertion(ctxT(t), req)
		if err != nil {
			t.Fatalf("GetAssertion with user verification: %v", err)
		}
		if !got[0].UserVerified {
			t.Error("UV flag not set")
		}
		if err := VerifyAssertion(got[0], att.PublicKey, RPID, req.ClientDataHash); err != nil {
			t.Error(err)
		}
		asked := p.requests()
		if len(asked) != 2 || asked[0].Retry || !asked[1].Retry || asked[1].Retries != 7 {
			t.Errorf("PIN requests %+v, want a first one and a retry with 7 retries left", asked)
		}
	})
	t.Run("discoverable demands the PIN", func(t *testing.T) {
		// CTAP 2.1 §6.1.2 step 6: with a PIN set, a discoverable
		// credential needs verification even when not asked for.
		p.set("1234")
		before := len(k.Credentials())
		att, err := a.MakeCredential(ctxT(t), makeReq(t, "bob", true))
		if err != nil {
			t.Fatalf("MakeCredential: %v", err)
		}
		if !att.UserVerified || len(p.requests()) == 0 || len(k.Credentials()) != before+1 {
			t.Errorf("UV %v after %d PIN requests, %d credentials", att.UserVerified, len(p.requests()), len(k.Credentials()))
		}
	})
	t.Run("declined", func(t *testing.T) {
		p.set() // the callback declines
		req := makeReq(t, "carol", false)
		req.UserVerification = true
		if _, err := a.MakeCredential(ctxT(t), req); !errors.Is(err, fido.ErrPINRequired) {
			t.Errorf("MakeCredential with the PIN declined: %v, want ErrPINRequired", err)
		}
	})
}

func (s *suite) testPINBlocking(t *testing.T) {
	p := &pinPrompt{}
	_, pm, k := s.pinKey(t, s.keyConfig(), p, "1234")
	ctx := ctxT(t)
	for i, want := range []error{fido.StatusPINInvalid, fido.StatusPINInvalid, fido.StatusPINAuthBlocked} {
		err := pm.ChangePIN(ctx, "0000", "5678")
		var pe *fido.PINError
		if !errors.As(err, &pe) || !errors.Is(err, want) {
			t.Errorf("wrong PIN %d: %v, want a *fido.PINError matching %v", i+1, err, want)
		}
	}
	// Three in a row block PIN entry until a power cycle, even with the
	// right PIN (CTAP 2.1 §6.5.5.7).
	if err := pm.ChangePIN(ctx, "1234", "5678"); !errors.Is(err, fido.StatusPINAuthBlocked) {
		t.Errorf("right PIN after three wrong ones: %v, want StatusPINAuthBlocked", err)
	}
	k.Replug()
	if err := pm.ChangePIN(ctx, "1234", "5678"); err != nil {
		t.Errorf("right PIN after a replug: %v", err)
	}
	if n, _, err := pm.PINRetries(ctx); err != nil || n != 8 {
		t.Errorf("PINRetries after the right PIN = %d, %v; want 8", n, err)
	}
}

func (s *suite) testCredentialManagement(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  func(*virtual.Config)
	}{
		{"CTAP 2.1", func(*virtual.Config) {}},
		{"CTAP 2.0 preview", func(c *virtual.Config) { c.CTAPVersion = virtual.CTAP20 }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg := s.keyConfig()
			tt.cfg(cfg)
			p := &pinPrompt{}
			p.set("1234")
			a, _, k := s.pinKey(t, cfg, p, "1234")
			cm, ok := a.(fido.CredentialManager)
			if !ok {
				t.Skipf("%T does not implement fido.CredentialManager", a)
			}
			info, err := a.Info(ctxT(t))
			if err != nil {
				t.Fatal(err)
			}
			if !info.Options["credMgmt"] && !info.Options["credentialMgmtPreview"] {
				t.Skip("the virtual key does not offer credential management")
			}
			ctx := ctxT(t)
			alice := mustMake(t, a, makeReq(t, "alice", true))
			bob := mustMake(t, a, makeReq(t, "bob", true))
			other := makeReq(t, "carol", true)
			other.RP.ID = "other.example"
			carol := mustMake(t, a, other)

			m, err := cm.CredentialsMetadata(ctx)
			if err != nil {
				t.Fatalf("CredentialsMetadata: %v", err)
			}
			if m.Existing != 3 {
				t.Errorf("CredentialsMetadata.Existing = %d, want 3", m.Existing)
			}
			rps, err := cm.RelyingParties(ctx)
			if err != nil {
				t.Fatalf("RelyingParties: %v", err)
			}
			var ids []string
			for _, rp := range rps {
				ids = append(ids, rp.ID)
			}
			slices.Sort(ids)
			if !slices.Equal(ids, []string{RPID, "other.example"}) {
				t.Errorf("RelyingParties = %q, want %s and other.example", ids, RPID)
			}
			creds, err := cm.Credentials(ctx, RPID)
			if err != nil {
				t.Fatalf("Credentials: %v", err)
			}
			for _, want := range []*fido.Attestation{alice, bob} {
				if !slices.ContainsFunc(creds, func(c fido.Credential) bool { return bytes.Equal(c.ID, want.CredentialID) }) {
					t.Errorf("Credentials(%s) lacks %x", RPID, want.CredentialID)
				}
			}
			if len(creds) != 2 {
				t.Errorf("Credentials(%s) has %d credentials, want 2", RPID, len(creds))
			}
			if err := cm.DeleteCredential(ctx, alice.CredentialID); err != nil {
				t.Fatalf("DeleteCredential: %v", err)
			}
			if slices.ContainsFunc(k.Credentials(), func(c virtual.Credential) bool { return bytes.Equal(c.ID, alice.CredentialID) }) {
				t.Error("the key still holds the deleted credential")
			}
			if err := cm.DeleteCredential(ctx, alice.CredentialID); !errors.Is(err, fido.StatusNoCredentials) {
				t.Errorf("deleting it again: %v, want StatusNoCredentials", err)
			}
			if creds, err := cm.Credentials(ctx, "other.example"); err != nil || len(creds) != 1 || !bytes.Equal(creds[0].ID, carol.CredentialID) {
				t.Errorf("Credentials(other.example) = %v, %v; want carol's only", creds, err)
			}
			if creds, err := cm.Credentials(ctx, "nobody.example"); err != nil || len(creds) != 0 {
				t.Errorf("Credentials(nobody.example) = %v, %v; want none", creds, err)
			}
		})
	}
}
