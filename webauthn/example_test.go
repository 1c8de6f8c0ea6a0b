package webauthn_test

import (
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"sync"

	"github.com/fidokit/fidokit/webauthn"
	"github.com/fidokit/fidokit/webauthn/webauthntest"
)

// The HTTP API in a web application: the application keeps its own
// sessions (here a map behind a cookie) and tells the handler who is
// signed in; a virtual key plays the person's security key and browser.
func ExampleRelyingParty_Handler() {
	ctx := context.Background()
	rp, err := webauthn.New(webauthn.Config{
		RPID:    "localhost",
		Origins: []string{"https://localhost"},
		Store:   webauthn.NewMemoryStore(),
	})
	if err != nil {
		log.Fatal(err)
	}

	var mu sync.Mutex
	sessions := map[string][]byte{} // session cookie → user ID
	h, err := rp.Handler(webauthn.HandlerConfig{
		CurrentUser: func(r *http.Request) ([]byte, error) {
			c, err := r.Cookie("session")
			if err != nil {
				return nil, nil
			}
			mu.Lock()
			defer mu.Unlock()
			return sessions[c.Value], nil
		},
		OnLogin: func(w http.ResponseWriter, r *http.Request, u *webauthn.User, c *webauthn.Credential) error {
			mu.Lock()
			defer mu.Unlock()
			token := fmt.Sprintf("session-%d", len(sessions)) // use random tokens in real code
			sessions[token] = u.ID
			http.SetCookie(w, &http.Cookie{Name: "session", Value: token, Path: "/", HttpOnly: true, Secure: true})
			return nil
		},
		AllowSignup: true,
		CookiePath:  "/webauthn/",
	})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/webauthn/", http.StripPrefix("/webauthn", h))
	srv := httptest.NewTLSServer(mux)
	defer srv.Close()

	key, err := webauthntest.New(ctx, webauthntest.Options{Origin: "https://localhost"})
	if err != nil {
		log.Fatal(err)
	}
	defer key.Close()
	browser := srv.Client()
	browser.Jar, _ = cookiejar.New(nil)
	api := key.HTTP(srv.URL+"/webauthn", browser)

	user, k, err := api.Signup(ctx, "alice@example.com", "Alice", "Blue key")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("signed up %s with %q\n", user.Name, k.Name)
	keys, err := api.Keys(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d key, active %v\n", len(keys), keys[0].Active)
	user, _, err = api.Login(ctx, "") // discoverable: no user name
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("signed in as %s\n", user.Name)
	// Output:
	// signed up alice@example.com with "Blue key"
	// 1 key, active true
	// signed in as alice@example.com
}
