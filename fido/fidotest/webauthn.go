package fidotest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/go-webauthn/webauthn/protocol"
	gowebauthn "github.com/go-webauthn/webauthn/webauthn"

	"github.com/fidokit/fidokit/fido"
)

// account is a relying party's user for go-webauthn.
type account struct {
	id    []byte
	name  string
	creds []gowebauthn.Credential
}

func (a *account) WebAuthnID() []byte                           { return a.id }
func (a *account) WebAuthnName() string                         { return a.name }
func (a *account) WebAuthnDisplayName() string                  { return "User " + a.name }
func (a *account) WebAuthnCredentials() []gowebauthn.Credential { return a.creds }

func (a *account) exclusions() []protocol.CredentialDescriptor {
	var out []protocol.CredentialDescriptor
	for _, c := range a.creds {
		out = append(out, c.Descriptor())
	}
	return out
}

// rpError adds go-webauthn's developer details, which its Error leaves
// out.
func rpError(err error) error {
	var pe *protocol.Error
	if errors.As(err, &pe) {
		return fmt.Errorf("%v (%s)", err, pe.DevInfo)
	}
	return err
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testWebAuthn runs what a browser and a relying party do: an enrollment
// and sign-ins through fido.WebAuthnClient on the implementation, each
// verified by go-webauthn, an independent relying party.
func (s *suite) testWebAuthn(t *testing.T) {
	a, _ := s.openWith(t, s.keyConfig(), fido.Prompt{})
	client := &fido.WebAuthnClient{Authenticator: a, Origin: Origin}
	rp, err := gowebauthn.New(&gowebauthn.Config{RPID: RPID, RPDisplayName: "Example", RPOrigins: []string{Origin}})
	if err != nil {
		t.Fatal(err)
	}
	alice := &account{id: []byte("alice-handle"), name: "alice"}

	register := func(t *testing.T, u *account, opts ...gowebauthn.RegistrationOption) (*gowebauthn.Credential, error) {
		t.Helper()
		opts = append(opts, gowebauthn.WithExclusions(u.exclusions()))
		creation, session, err := rp.BeginRegistration(u, opts...)
		if err != nil {
			t.Fatal(err)
		}
		response, err := client.Create(ctxT(t), mustJSON(t, creation))
		if err != nil {
			return nil, err
		}
		parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
		if err != nil {
			t.Fatalf("go-webauthn cannot parse the registration: %v\n%s", rpError(err), response)
		}
		cred, err := rp.CreateCredential(u, *session, parsed)
		if err != nil {
			t.Fatalf("go-webauthn refuses the registration: %v\n%s", rpError(err), response)
		}
		u.creds = append(u.creds, *cred)
		return cred, nil
	}

	t.Run("register with direct attestation", func(t *testing.T) {
		cred, err := register(t, alice, gowebauthn.WithConveyancePreference(protocol.PreferDirectAttestation))
		if err != nil {
			t.Fatalf("Create: %v", err)
		}
		if cred.AttestationFormat != "packed" || cred.AttestationType != "basic_full" {
			t.Errorf("attestation %s/%s, want packed/basic_full", cred.AttestationFormat, cred.AttestationType)
		}
		if !bytes.Equal(cred.Authenticator.AAGUID, s.aaguid[:]) {
			t.Errorf("AAGUID %x, want %x", cred.Authenticator.AAGUID, s.aaguid)
		}
	})
	if len(alice.creds) == 0 {
		t.FailNow()
	}

	t.Run("register again is refused", func(t *testing.T) {
		_, err := register(t, alice)
		if !errors.Is(err, fido.ErrInvalidState) || !errors.Is(err, fido.StatusCredentialExcluded) {
			t.Errorf("second Create for the same account: %v, want ErrInvalidState and StatusCredentialExcluded", err)
		}
	})

	t.Run("sign in", func(t *testing.T) {
		last := alice.creds[0].Authenticator.SignCount
		for i := range 2 {
			assertion, session, err := rp.BeginLogin(alice)
			if err != nil {
				t.Fatal(err)
			}
			response, err := client.Get(ctxT(t), mustJSON(t, assertion))
			if err != nil {
				t.Fatalf("Get: %v", err)
			}
			parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
			if err != nil {
				t.Fatalf("go-webauthn cannot parse the sign-in: %v\n%s", rpError(err), response)
			}
			cred, err := rp.ValidateLogin(alice, *session, parsed)
			if err != nil {
				t.Fatalf("go-webauthn refuses sign-in %d: %v\n%s", i, rpError(err), response)
			}
			if cred.Authenticator.CloneWarning || cred.Authenticator.SignCount <= last {
				t.Errorf("sign-in %d: counter %d after %d, clone warning %v", i, cred.Authenticator.SignCount, last, cred.Authenticator.CloneWarning)
			}
			last = cred.Authenticator.SignCount
		}
	})

	t.Run("passkey", func(t *testing.T) {
		bob := &account{id: []byte("bob-handle"), name: "bob"}
		if _, err := register(t, bob, gowebauthn.WithResidentKeyRequirement(protocol.ResidentKeyRequirementRequired)); err != nil {
			t.Fatalf("Create: %v", err)
		}
		assertion, session, err := rp.BeginDiscoverableLogin()
		if err != nil {
			t.Fatal(err)
		}
		response, err := client.Get(ctxT(t), mustJSON(t, assertion))
		if err != nil {
			t.Fatalf("Get: %v", err)
		}
		parsed, err := protocol.ParseCredentialRequestResponseBytes(response)
		if err != nil {
			t.Fatalf("go-webauthn cannot parse the sign-in: %v\n%s", rpError(err), response)
		}
		var found []byte
		_, err = rp.ValidateDiscoverableLogin(func(rawID, userHandle []byte) (gowebauthn.User, error) {
			found = userHandle
			if !bytes.Equal(userHandle, bob.id) {
				return nil, fmt.Errorf("unknown user handle %q", userHandle)
			}
			return bob, nil
		}, *session, parsed)
		if err != nil {
			t.Fatalf("go-webauthn refuses the passkey sign-in: %v\n%s", rpError(err), response)
		}
		if !bytes.Equal(found, bob.id) {
			t.Errorf("user handle %q, want %q", found, bob.id)
		}
	})
}
