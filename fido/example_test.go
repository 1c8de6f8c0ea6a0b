package fido_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

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
