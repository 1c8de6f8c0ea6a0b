// Package webauthntest drives a WebAuthn relying party with a virtual
// security key in tests, as net/http/httptest drives HTTP handlers. A
// [Client] is a software key ([virtual.Key], in process, touches approved)
// plus the WebAuthn client a browser would be ([fido.WebAuthnClient]), so
// a test can register and sign in through a [webauthn.RelyingParty]
// directly or through its HTTP handler:
//
//	c := webauthntest.NewClient(t, webauthntest.Options{Origin: "https://login.example.com"})
//	cred, err := c.Register(ctx, rp, user.ID, "Blue key")
//	u, cred, err := c.Login(ctx, rp, user.ID)
//
//	h := c.HTTP(srv.URL, nil)    // the handler's JSON API, with a cookie jar
//	key, err := h.Register(ctx, "Blue key")
//
// The key is reachable with [Client.Key], so a test can make it misbehave
// (roll its counter back, and more through [virtual.Config]). For a relying
// party that requires user verification, [Options.PIN] gives the key a PIN
// and the client the same PIN to answer with; for one that checks
// attestation, [Client.AttestationRoot] is the root to trust.
package webauthntest

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
	"github.com/fidokit/fidokit/webauthn"
)

// Options configure a Client. The zero value is a default virtual key
// acting for https://localhost.
type Options struct {
	// Origin is the web origin the client acts for, as a browser would
	// report it, such as "https://login.example.com". Empty means
	// "https://localhost".
	Origin string
	// Key configures the virtual key (algorithms, attestation, deliberate
	// misbehaviour, ...). Nil means virtual's defaults: touches are
	// approved at once.
	Key *virtual.Config
	// SelectAccount picks one of several accounts the key offers in a
	// discoverable sign-in, as a browser's account chooser does. Nil
	// means the newest.
	SelectAccount func([]*fido.Assertion) (int, error)
	// PIN is the key's PIN, all a relying party that requires user
	// verification needs: a new key starts with it (as with Key.PIN) and
	// the client gives it whenever the key asks for it (as Prompt.PIN
	// would). It must follow the PIN rules of virtual.Config.PIN. Empty
	// means no PIN, unless Key.PIN or Prompt.PIN set one; setting PIN
	// and a different Key.PIN, or PIN and Prompt.PIN, is an error.
	PIN string
	// Prompt reaches the person at the key: Prompt.Touch is told when the
	// key waits for a touch, and Prompt.PIN gives the key's PIN (see
	// virtual.Config.PIN) when user verification is asked for; PIN above
	// is the short way to both a key's PIN and this callback. The zero
	// value prompts nobody, so without PIN operations that need the PIN
	// fail with fido.ErrPINRequired.
	Prompt fido.Prompt
}

// Client is a virtual security key in a WebAuthn client. It is safe for
// concurrent use; the key serves one operation at a time.
type Client struct {
	key *virtual.Key
	dev *fido.Device
	wa  *fido.WebAuthnClient
}

// New makes a Client with a new virtual key, plugged in in process. Close
// it when done.
func New(ctx context.Context, opts Options) (*Client, error) {
	if opts.Origin == "" {
		opts.Origin = "https://localhost"
	}
	if opts.PIN != "" {
		// Copies, so the caller's Config is left as it was.
		var cfg virtual.Config
		if opts.Key != nil {
			cfg = *opts.Key
		}
		switch {
		case cfg.PIN != "" && cfg.PIN != opts.PIN:
			return nil, errors.New("webauthntest: Options.PIN and Options.Key.PIN differ")
		case opts.Prompt.PIN != nil:
			return nil, errors.New("webauthntest: Options.PIN and Options.Prompt.PIN are both set")
		}
		cfg.PIN = opts.PIN
		opts.Key = &cfg
		pin := opts.PIN
		opts.Prompt.PIN = func(context.Context, fido.PINRequest) (string, error) { return pin, nil }
	}
	k, err := virtual.New(opts.Key)
	if err != nil {
		return nil, fmt.Errorf("webauthntest: making virtual key: %w", err)
	}
	dev, err := k.Open(ctx, &fido.Opener{Prompt: opts.Prompt})
	if err != nil {
		k.Close()
		return nil, fmt.Errorf("webauthntest: opening virtual key: %w", err)
	}
	return &Client{
		key: k,
		dev: dev,
		wa:  &fido.WebAuthnClient{Authenticator: dev, Origin: opts.Origin, SelectAccount: opts.SelectAccount},
	}, nil
}

// NewClient is New for a test: it fails t if the key cannot be made, and
// closes the client when the test ends.
func NewClient(t testing.TB, opts Options) *Client {
	t.Helper()
	c, err := New(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// Close unplugs and closes the key.
func (c *Client) Close() error {
	return errors.Join(c.dev.Close(), c.key.Close())
}

// Key returns the virtual key, for instance to roll back its counter with
// SetCounter.
func (c *Client) Key() *virtual.Key { return c.key }

// AttestationRoot returns the root certificate the key's attestation
// certificates chain to: the one it made for itself unless
// Options.Key.AttestationCA gave one (see [virtual.Key.AttestationRoot]).
// A relying party that checks attestation trusts the key with it in
// webauthn.Policy.AttestationRoots.
func (c *Client) AttestationRoot() *x509.Certificate { return c.key.AttestationRoot() }

// WebAuthn returns the WebAuthn client, whose Authenticator field is the
// opened key, for tests that craft responses themselves.
func (c *Client) WebAuthn() *fido.WebAuthnClient { return c.wa }

// Create runs navigator.credentials.create() on options, returning the
// RegistrationResponseJSON.
func (c *Client) Create(ctx context.Context, options []byte) ([]byte, error) {
	return c.wa.Create(ctx, options)
}

// Get runs navigator.credentials.get() on options, returning the
// AuthenticationResponseJSON.
func (c *Client) Get(ctx context.Context, options []byte) ([]byte, error) {
	return c.wa.Get(ctx, options)
}

// Register registers the key for the user with rp and names it keyName.
func (c *Client) Register(ctx context.Context, rp *webauthn.RelyingParty, userID []byte, keyName string) (*webauthn.Credential, error) {
	b, err := rp.BeginRegistration(ctx, userID)
	if err != nil {
		return nil, err
	}
	resp, err := c.wa.Create(ctx, b.Options)
	if err != nil {
		return nil, err
	}
	return rp.FinishRegistration(ctx, b.ChallengeID, resp, keyName)
}

// Signup creates an account with the key as its first key.
func (c *Client) Signup(ctx context.Context, rp *webauthn.RelyingParty, name, displayName, keyName string) (*webauthn.User, *webauthn.Credential, error) {
	b, err := rp.BeginSignup(ctx, name, displayName)
	if err != nil {
		return nil, nil, err
	}
	resp, err := c.wa.Create(ctx, b.Options)
	if err != nil {
		return nil, nil, err
	}
	cred, err := rp.FinishRegistration(ctx, b.ChallengeID, resp, keyName)
	if err != nil {
		return nil, nil, err
	}
	u, err := rp.User(ctx, cred.UserID)
	return u, cred, err
}

// Login signs the user in to rp with the key.
func (c *Client) Login(ctx context.Context, rp *webauthn.RelyingParty, userID []byte) (*webauthn.User, *webauthn.Credential, error) {
	b, err := rp.BeginLogin(ctx, userID)
	if err != nil {
		return nil, nil, err
	}
	return c.finishLogin(ctx, rp, b)
}

// LoginDiscoverable signs in to rp without naming the user: the key picks
// the account (Options.SelectAccount decides among several).
func (c *Client) LoginDiscoverable(ctx context.Context, rp *webauthn.RelyingParty) (*webauthn.User, *webauthn.Credential, error) {
	b, err := rp.BeginDiscoverableLogin(ctx)
	if err != nil {
		return nil, nil, err
	}
	return c.finishLogin(ctx, rp, b)
}

func (c *Client) finishLogin(ctx context.Context, rp *webauthn.RelyingParty, b *webauthn.Begin) (*webauthn.User, *webauthn.Credential, error) {
	resp, err := c.wa.Get(ctx, b.Options)
	if err != nil {
		return nil, nil, err
	}
	return rp.FinishLogin(ctx, b.ChallengeID, resp)
}

// HTTPError is an error response of the relying party's HTTP handler.
type HTTPError struct {
	// Status is the HTTP status code.
	Status int
	// Code and Message are the members of the JSON error body; Code is
	// what webauthn.ErrorCode gives.
	Code, Message string
}

func (e *HTTPError) Error() string {
	return fmt.Sprintf("webauthntest: HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// HTTP is the key used through a relying party's HTTP handler, as a page
// in a browser would use it. Its HTTP client keeps cookies: the handler's
// binding and ceremony cookies and whatever session the application sets.
// Each ceremony sends its begin answer's challengeId back to the finish,
// so several may run at once on one cookie jar, as in several tabs of one
// browser.
type HTTP struct {
	c    *Client
	base string
	hc   *http.Client
}

// HTTP returns a handle on the handler served at baseURL (the prefix the
// handler is mounted under, such as srv.URL+"/webauthn"). hc carries the
// requests; nil means a new client. If hc has no cookie jar, a copy with
// a new jar is used; pass one client to several Clients to use several
// keys in one browser session.
func (c *Client) HTTP(baseURL string, hc *http.Client) *HTTP {
	if hc == nil {
		hc = &http.Client{}
	}
	if hc.Jar == nil {
		cp := *hc
		cp.Jar, _ = cookiejar.New(nil)
		hc = &cp
	}
	return &HTTP{c: c, base: strings.TrimRight(baseURL, "/"), hc: hc}
}

// Client returns the HTTP client, with its cookie jar.
func (h *HTTP) Client() *http.Client { return h.hc }

// Do sends a request with a JSON body (none if body is nil) and decodes a
// successful JSON answer into out (unless nil). A POST carries
// Content-Type application/json even without a body, as the handler
// requires. An error answer is an *HTTPError.
func (h *HTTP) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil || method == http.MethodPost {
		// The handler takes JSON only, also on a POST without a body.
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error struct{ Code, Message string }
		}
		json.Unmarshal(data, &e)
		return &HTTPError{Status: resp.StatusCode, Code: e.Error.Code, Message: e.Error.Message}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("webauthntest: decoding %s %s answer: %w", method, path, err)
		}
	}
	return nil
}

type beginAnswer struct {
	ChallengeID string          `json:"challengeId"`
	PublicKey   json.RawMessage `json:"publicKey"`
}

type finishAnswer struct {
	User webauthn.UserJSON `json:"user"`
	Key  webauthn.KeyJSON  `json:"key"`
}

// Signup creates an account through POST /register/begin with a name (the
// handler must allow sign-ups) and registers the key as its first key.
// The handler's OnLogin signs the new account in.
func (h *HTTP) Signup(ctx context.Context, name, displayName, keyName string) (*webauthn.UserJSON, *webauthn.KeyJSON, error) {
	return h.register(ctx, map[string]string{"name": name, "displayName": displayName}, keyName)
}

// Register adds the key to the signed-in user's account.
func (h *HTTP) Register(ctx context.Context, keyName string) (*webauthn.KeyJSON, error) {
	_, k, err := h.register(ctx, nil, keyName)
	return k, err
}

func (h *HTTP) register(ctx context.Context, begin any, keyName string) (*webauthn.UserJSON, *webauthn.KeyJSON, error) {
	var b beginAnswer
	if err := h.Do(ctx, "POST", "/register/begin", begin, &b); err != nil {
		return nil, nil, err
	}
	resp, err := h.c.wa.Create(ctx, b.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	var f finishAnswer
	if err := h.Do(ctx, "POST", "/register/finish", map[string]any{"challengeId": b.ChallengeID, "keyName": keyName, "credential": json.RawMessage(resp)}, &f); err != nil {
		return nil, nil, err
	}
	return &f.User, &f.Key, nil
}

// Login signs in through /login/begin and /login/finish; an empty name
// means a discoverable sign-in.
func (h *HTTP) Login(ctx context.Context, name string) (*webauthn.UserJSON, *webauthn.KeyJSON, error) {
	var begin any
	if name != "" {
		begin = map[string]string{"name": name}
	}
	var b beginAnswer
	if err := h.Do(ctx, "POST", "/login/begin", begin, &b); err != nil {
		return nil, nil, err
	}
	resp, err := h.c.wa.Get(ctx, b.PublicKey)
	if err != nil {
		return nil, nil, err
	}
	var f finishAnswer
	if err := h.Do(ctx, "POST", "/login/finish", map[string]any{"challengeId": b.ChallengeID, "credential": json.RawMessage(resp)}, &f); err != nil {
		return nil, nil, err
	}
	return &f.User, &f.Key, nil
}

// Keys lists the signed-in user's keys.
func (h *HTTP) Keys(ctx context.Context) ([]webauthn.KeyJSON, error) {
	var out struct {
		Keys []webauthn.KeyJSON `json:"keys"`
	}
	if err := h.Do(ctx, "GET", "/keys", nil, &out); err != nil {
		return nil, err
	}
	return out.Keys, nil
}

func (h *HTTP) keyOp(ctx context.Context, id, op string, body any) (*webauthn.KeyJSON, error) {
	var out struct {
		Key webauthn.KeyJSON `json:"key"`
	}
	if err := h.Do(ctx, "POST", "/keys/"+url.PathEscape(id)+"/"+op, body, &out); err != nil {
		return nil, err
	}
	return &out.Key, nil
}

// Rename renames one of the signed-in user's keys (id as in KeyJSON.ID).
func (h *HTTP) Rename(ctx context.Context, id, name string) (*webauthn.KeyJSON, error) {
	return h.keyOp(ctx, id, "rename", map[string]string{"keyName": name})
}

// Deactivate deactivates one of the signed-in user's keys.
func (h *HTTP) Deactivate(ctx context.Context, id string) (*webauthn.KeyJSON, error) {
	return h.keyOp(ctx, id, "deactivate", nil)
}

// Reactivate reactivates one of the signed-in user's keys.
func (h *HTTP) Reactivate(ctx context.Context, id string) (*webauthn.KeyJSON, error) {
	return h.keyOp(ctx, id, "reactivate", nil)
}

// Delete deletes one of the signed-in user's keys.
func (h *HTTP) Delete(ctx context.Context, id string) error {
	return h.Do(ctx, "DELETE", "/keys/"+url.PathEscape(id), nil, nil)
}
