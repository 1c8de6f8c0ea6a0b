package mfa_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"log"
	"log/slog"
	"os"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/webauthn"
)

// Config.OnEvent is given every event of the log once it is committed:
// here both printed and logged with log/slog through LogEvents. Events
// hold no secret, so they can go to any log.
func ExampleLogEvents() {
	ctx := context.Background()
	rp, err := webauthn.New(webauthn.Config{
		RPID: "example.com", Origins: []string{"https://example.com"},
		Store: mfa.NewMemoryStore(),
	})
	if err != nil {
		log.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	keys, err := mfa.NewKeyring("2026-12", map[string][]byte{"2026-12": key})
	if err != nil {
		log.Fatal(err)
	}
	// The log's time, IDs and account are left out only to make this
	// example's output the same on every run.
	logger := slog.New(slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{
		ReplaceAttr: func(groups []string, a slog.Attr) slog.Attr {
			switch a.Key {
			case "time", "id", "user", "actor":
				return slog.Attr{}
			}
			return a
		},
	}))
	logEvent := mfa.LogEvents(logger)
	m, err := mfa.New(mfa.Config{
		RelyingParty: rp, Keys: keys, Issuer: "Example",
		OnEvent: func(ctx context.Context, e mfa.Event) {
			fmt.Println("event:", e.Type)
			logEvent(ctx, e)
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	user, err := rp.CreateUser(ctx, "alice@example.com", "Alice")
	if err != nil {
		log.Fatal(err)
	}

	// An administrator acts, from the address and browser the caller
	// says.
	ctx = mfa.WithActor(ctx, mfa.Actor{ID: []byte("admin-1"), RemoteAddr: "203.0.113.7", UserAgent: "console"})
	set, err := m.GenerateRecoveryCodes(ctx, user.ID)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := m.VerifyRecoveryCode(ctx, user.ID, "0000-0000-0000-0000"); err == nil {
		log.Fatal("a wrong code passed")
	}
	if err := m.Unlock(ctx, user.ID, mfa.FactorRecoveryCode); err != nil {
		log.Fatal(err)
	}

	evs, err := m.Events(ctx, mfa.EventQuery{UserID: user.ID, Newest: true, Limit: 1})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("newest:", evs[0].Type, "by", string(evs[0].ActorID), "codes shown:", len(set.Codes))
	// Output:
	// event: recovery_codes_generated
	// level=INFO msg="mfa event" event.type=recovery_codes_generated event.remote_addr=203.0.113.7 event.user_agent=console
	// event: second_factor_failed
	// level=INFO msg="mfa event" event.type=second_factor_failed event.factor=recovery_code event.remote_addr=203.0.113.7 event.user_agent=console event.detail=invalid_code
	// event: attempts_reset
	// level=INFO msg="mfa event" event.type=attempts_reset event.factor=recovery_code event.remote_addr=203.0.113.7 event.user_agent=console
	// newest: attempts_reset by admin-1 codes shown: 10
}
