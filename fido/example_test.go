package fido_test

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"slices"
	"strings"

	"github.com/go-webauthn/webauthn/protocol"
	gowebauthn "github.com/go-webauthn/webauthn/webauthn"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
)

// exampleUser is the relying party's account in ExampleWebAuthnClient.
type exampleUser struct {
	creds []gowebauthn.Credential
}

func (u *exampleUser) WebAuthnID() []byte                           { return []byte("user-42") }
func (u *exampleUser) WebAuthnName() string                         { return "alice@example.com" }
func (u *exampleUser) WebAuthnDisplayName() string                  { return "Alice" }
func (u *exampleUser) WebAuthnCredentials() []gowebauthn.Credential { return u.creds }

// A WebAuthnClient stands in for the browser between a relying party (here
// go-webauthn) and a key (here a virtual one): it enrolls the key, then
// signs in with it.
func ExampleWebAuthnClient() {
	ctx := context.Background()

	key, err := virtual.New(&virtual.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer key.Close()
	dev, err := key.Open(ctx, &fido.Opener{})
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()
	client := &fido.WebAuthnClient{Authenticator: dev, Origin: "https://login.example.com"}

	rp, err := gowebauthn.New(&gowebauthn.Config{
		RPID:          "example.com",
		RPDisplayName: "Example",
		RPOrigins:     []string{"https://login.example.com"},
	})
	if err != nil {
		log.Fatal(err)
	}
	user := &exampleUser{}

	// Enroll: the relying party's options in, the browser's JSON out.
	creation, session, err := rp.BeginRegistration(user, gowebauthn.WithConveyancePreference(protocol.PreferDirectAttestation))
	if err != nil {
		log.Fatal(err)
	}
	options, _ := json.Marshal(creation)
	response, err := client.Create(ctx, options)
	if err != nil {
		log.Fatal(err)
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		log.Fatal(err)
	}
	cred, err := rp.CreateCredential(user, *session, parsed)
	if err != nil {
		log.Fatal(err)
	}
	user.creds = append(user.creds, *cred)
	fmt.Println("registered with", cred.AttestationFormat, "attestation")

	// Sign in.
	assertion, session, err := rp.BeginLogin(user)
	if err != nil {
		log.Fatal(err)
	}
	options, _ = json.Marshal(assertion)
	response, err = client.Get(ctx, options)
	if err != nil {
		log.Fatal(err)
	}
	signedIn, err := protocol.ParseCredentialRequestResponseBytes(response)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := rp.ValidateLogin(user, *session, signedIn); err != nil {
		log.Fatal(err)
	}
	fmt.Println("signed in as", user.WebAuthnName())
	// Output:
	// registered with packed attestation
	// signed in as alice@example.com
}

// Open a security key plugged in over USB and ask what it supports. It
// needs a real key, so it is compiled but not run.
func ExampleOpen() {
	ctx := context.Background()
	keys, err := fido.Devices(ctx)
	if err != nil {
		log.Fatal(err)
	}
	if len(keys) == 0 {
		log.Fatal("no security key found")
	}
	dev, err := fido.Open(ctx, keys[0].Path)
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()
	info, err := dev.Info(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(keys[0].Product, info.Versions)
}

// Set a PIN on a new key, then enroll with user verification: the client
// asks Prompt.PIN for the PIN only when the key needs it.
func ExampleDevice_SetPIN() {
	ctx := context.Background()
	key, err := virtual.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer key.Close()
	dev, err := key.Open(ctx, &fido.Opener{Prompt: fido.Prompt{
		PIN: func(ctx context.Context, req fido.PINRequest) (string, error) {
			fmt.Printf("PIN asked for %s on %s (%d tries left)\n", req.Op, req.RPID, req.Retries)
			return "4096-lemon", nil // in a program: read it from the person
		},
	}})
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()

	if err := dev.SetPIN(ctx, "4096-lemon"); err != nil {
		log.Fatal(err)
	}
	hash := sha256.Sum256([]byte("client data"))
	att, err := dev.MakeCredential(ctx, &fido.MakeCredentialRequest{
		ClientDataHash:   hash[:],
		RP:               fido.RelyingParty{ID: "example.com"},
		User:             fido.User{ID: []byte("user-42"), Name: "alice@example.com"},
		UserVerification: true,
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("user verified:", att.UserVerified)

	// A wrong PIN says how many tries are left.
	err = dev.ChangePIN(ctx, "not-the-pin", "8192-lime")
	var pe *fido.PINError
	if errors.As(err, &pe) && errors.Is(err, fido.StatusPINInvalid) {
		fmt.Println("wrong PIN,", pe.Retries, "tries left")
	}
	// Output:
	// PIN asked for makeCredential on example.com (8 tries left)
	// user verified: true
	// wrong PIN, 7 tries left
}

// List and delete the discoverable credentials a key holds, as a key
// manager does.
func ExampleDevice_Credentials() {
	ctx := context.Background()
	key, err := virtual.New(&virtual.Config{PIN: "4096-lemon"})
	if err != nil {
		log.Fatal(err)
	}
	defer key.Close()
	dev, err := key.Open(ctx, &fido.Opener{Prompt: fido.Prompt{
		PIN: func(context.Context, fido.PINRequest) (string, error) { return "4096-lemon", nil },
	}})
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()
	for _, u := range []string{"alice", "bob"} {
		hash := sha256.Sum256([]byte("client data"))
		if _, err := dev.MakeCredential(ctx, &fido.MakeCredentialRequest{
			ClientDataHash: hash[:],
			RP:             fido.RelyingParty{ID: "example.com", Name: "Example"},
			User:           fido.User{ID: []byte("id-" + u), Name: u + "@example.com"},
			Discoverable:   true,
		}); err != nil {
			log.Fatal(err)
		}
	}

	var cm fido.CredentialManager = dev // or any backend that offers it
	rps, err := cm.RelyingParties(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for _, rp := range rps {
		creds, err := cm.Credentials(ctx, rp.ID)
		if err != nil {
			log.Fatal(err)
		}
		slices.SortFunc(creds, func(a, b fido.Credential) int { return strings.Compare(a.User.Name, b.User.Name) })
		for _, c := range creds {
			fmt.Println(rp.ID, c.User.Name, c.Algorithm)
		}
		if err := cm.DeleteCredential(ctx, creds[0].ID); err != nil {
			log.Fatal(err)
		}
	}
	md, err := cm.CredentialsMetadata(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(md.Existing, "credential left")
	// Output:
	// example.com alice@example.com ES256
	// example.com bob@example.com ES256
	// 1 credential left
}

// Keep a small secret with a credential in the key's large-blob store.
func ExampleDevice_WriteLargeBlob() {
	ctx := context.Background()
	key, err := virtual.New(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer key.Close()
	dev, err := key.Open(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()
	hash := sha256.Sum256([]byte("client data"))
	att, err := dev.MakeCredential(ctx, &fido.MakeCredentialRequest{
		ClientDataHash: hash[:],
		RP:             fido.RelyingParty{ID: "example.com"},
		User:           fido.User{ID: []byte("user-42")},
		Discoverable:   true,
		Extensions:     fido.MakeCredentialExtensions{LargeBlobKey: true},
	})
	if err != nil {
		log.Fatal(err)
	}
	blobKey := att.Extensions.LargeBlobKey
	if err := dev.WriteLargeBlob(ctx, blobKey, []byte("ssh certificate, say")); err != nil {
		log.Fatal(err)
	}
	data, err := dev.ReadLargeBlob(ctx, blobKey)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", data)
	// Output: ssh certificate, say
}
