package sqlite_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"github.com/fidokit/fidokit/store/sqlite"
	"github.com/fidokit/fidokit/webauthn"
)

func ExampleOpen() {
	dir, err := os.MkdirTemp("", "fidokit-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	ctx := context.TODO()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "fidokit.db"))
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	err = store.CreateUser(ctx, &webauthn.User{
		ID:      []byte{0x8c, 0x1f, 0x52, 0x07},
		Name:    "ada@example.com",
		Created: time.Now(),
	})
	if err != nil {
		log.Fatal(err)
	}
	u, err := store.UserByName(ctx, "ada@example.com")
	if err != nil {
		log.Fatal(err)
	}
	// One store serves both packages: security keys for webauthn, TOTP
	// devices (and recovery codes) for mfa.
	keys, err := store.Credentials(ctx, u.ID)
	if err != nil {
		log.Fatal(err)
	}
	totp, err := store.OTPDevices(ctx, u.ID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s has %d security keys and %d TOTP devices\n", u.Name, len(keys), len(totp))
	// Output: ada@example.com has 0 security keys and 0 TOTP devices
}
