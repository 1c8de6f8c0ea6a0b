package webauthntest_test

import (
	"context"
	"fmt"
	"log"

	"github.com/fidokit/fidokit/webauthn"
	"github.com/fidokit/fidokit/webauthn/webauthntest"
)

// A relying party enrolls a virtual security key and signs in with it.
func Example() {
	ctx := context.Background()
	rp, err := webauthn.New(webauthn.Config{
		RPID:    "localhost",
		Origins: []string{"https://localhost"},
		Store:   webauthn.NewMemoryStore(),
	})
	if err != nil {
		log.Fatal(err)
	}
	c, err := webauthntest.New(ctx, webauthntest.Options{Origin: "https://localhost"})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()

	alice, err := rp.CreateUser(ctx, "alice@example.com", "Alice")
	if err != nil {
		log.Fatal(err)
	}
	cred, err := c.Register(ctx, rp, alice.ID, "Blue key")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("registered %q (%s attestation)\n", cred.Name, cred.AttestationFormat)

	u, cred, err := c.Login(ctx, rp, alice.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("signed in as %s with %q\n", u.Name, cred.Name)

	// A discoverable sign-in: the key names the account.
	u, _, err = c.LoginDiscoverable(ctx, rp)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("the key chose %s\n", u.Name)
	// Output:
	// registered "Blue key" (none attestation)
	// signed in as alice@example.com with "Blue key"
	// the key chose alice@example.com
}
