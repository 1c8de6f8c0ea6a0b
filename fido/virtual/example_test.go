package virtual_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
)

// A virtual key enrolled and used through the fido client, as a real key
// would be.
func Example() {
	ctx := context.Background()
	k, err := virtual.New(nil) // in memory; every touch approved
	if err != nil {
		log.Fatal(err)
	}
	defer k.Close()
	dev, err := k.Open(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()

	challenge := sha256.Sum256([]byte("client data"))
	att, err := dev.MakeCredential(ctx, &fido.MakeCredentialRequest{
		ClientDataHash: challenge[:],
		RP:             fido.RelyingParty{ID: "example.com"},
		User:           fido.User{ID: []byte("user-1"), Name: "alice"},
		Algorithms:     []fido.Algorithm{fido.EdDSA},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(att.Format, att.Algorithm, att.SignCount)

	as, err := dev.GetAssertion(ctx, &fido.GetAssertionRequest{
		RPID: "example.com", ClientDataHash: challenge[:], AllowList: [][]byte{att.CredentialID},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(as[0].UserPresent, as[0].SignCount)
	// Output:
	// packed EdDSA 1
	// true 2
}

// A test that plays the person: the key asks, the test refuses.
func ExampleButton() {
	ctx := context.Background()
	b := virtual.NewButton()
	k, err := virtual.New(&virtual.Config{UserPresence: b.Presence()})
	if err != nil {
		log.Fatal(err)
	}
	defer k.Close()
	dev, err := k.Open(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer dev.Close()

	go func() {
		req := <-b.Waiting() // the key is waiting for a touch
		fmt.Println("touch requested:", req.Op, req.RPID)
		b.Refuse()
	}()
	challenge := sha256.Sum256([]byte("client data"))
	_, err = dev.MakeCredential(ctx, &fido.MakeCredentialRequest{
		ClientDataHash: challenge[:], RP: fido.RelyingParty{ID: "example.com"}, User: fido.User{ID: []byte{1}},
	})
	fmt.Println(errors.Is(err, fido.StatusOperationDenied))
	// Output:
	// touch requested: makeCredential example.com
	// true
}
