// Command enroll walks a person through protecting an account with a
// security key: find the key, register it with a relying party, then sign in
// with it to prove it works.
//
// With a key plugged in it uses that key; with none, or with -virtual, it
// uses a virtual key so the whole path can be tried on any machine:
//
//	go run ./examples/enroll
//	go run ./examples/enroll -device /dev/hidraw3 -user alice@example.com
//
// The relying party runs in this process on github.com/go-webauthn/webauthn,
// which verifies the attestation and the sign-in signature independently of
// fidokit.
package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
	"github.com/go-webauthn/webauthn/protocol"
	gowebauthn "github.com/go-webauthn/webauthn/webauthn"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "enroll:", err)
		os.Exit(1)
	}
}

type options struct {
	virtual  bool
	device   string
	state    string
	rpID     string
	userName string
	timeout  time.Duration
}

func parseFlags(args []string, out io.Writer) (*options, error) {
	fs := flag.NewFlagSet("enroll", flag.ContinueOnError)
	fs.SetOutput(out)
	o := &options{}
	fs.BoolVar(&o.virtual, "virtual", false, "use a virtual key even when a real one is attached")
	fs.StringVar(&o.device, "device", "", "path of the key to use (default: the first attached key)")
	fs.StringVar(&o.state, "state", "", "virtual key state file (default: a temporary file)")
	fs.StringVar(&o.rpID, "rp", "example.com", "relying party ID to register with")
	fs.StringVar(&o.userName, "user", "alice@example.com", "account name")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "how long to wait for each touch")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() != 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return o, nil
}

// user is the account being protected, as the relying party sees it.
type user struct {
	id    []byte
	name  string
	creds []gowebauthn.Credential
}

func (u *user) WebAuthnID() []byte                           { return u.id }
func (u *user) WebAuthnName() string                         { return u.name }
func (u *user) WebAuthnDisplayName() string                  { return u.name }
func (u *user) WebAuthnCredentials() []gowebauthn.Credential { return u.creds }

func run(ctx context.Context, args []string, out io.Writer) error {
	o, err := parseFlags(args, out)
	if err != nil {
		return err
	}
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	prompt := fido.Prompt{Touch: func() { say("          Touch your security key...") }}

	say("Step 1/4  Looking for a security key")
	dev, cleanup, err := openKey(ctx, o, prompt, say)
	if err != nil {
		return err
	}
	defer cleanup()

	say("Step 2/4  Reading the key")
	info, err := dev.Info(ctx)
	if err != nil {
		return fmt.Errorf("reading key info: %w", err)
	}
	say("          Protocols %v, algorithms %v", info.Versions, info.Algorithms)

	origin := "https://" + o.rpID
	rp, err := gowebauthn.New(&gowebauthn.Config{RPID: o.rpID, RPDisplayName: o.rpID, RPOrigins: []string{origin}})
	if err != nil {
		return fmt.Errorf("setting up the relying party: %w", err)
	}
	u := &user{id: []byte(o.userName), name: o.userName}
	client := &fido.WebAuthnClient{Authenticator: dev, Origin: origin}

	say("Step 3/4  Registering the key with %s for %s", o.rpID, o.userName)
	creation, session, err := rp.BeginRegistration(u,
		gowebauthn.WithConveyancePreference(protocol.PreferDirectAttestation))
	if err != nil {
		return fmt.Errorf("starting registration: %w", err)
	}
	cred, err := ceremony(ctx, o.timeout, creation, client.Create)
	if err != nil {
		return fmt.Errorf("registering the key: %w", err)
	}
	parsedReg, err := protocol.ParseCredentialCreationResponseBytes(cred)
	if err != nil {
		return fmt.Errorf("relying party could not read the registration: %w", err)
	}
	c, err := rp.CreateCredential(u, *session, parsedReg)
	if err != nil {
		return fmt.Errorf("relying party refused the registration: %w", err)
	}
	u.creds = append(u.creds, *c)
	say("          Registered credential %s (%s attestation)", short(c.ID), c.AttestationFormat)

	say("Step 4/4  Signing in with the key to prove it works")
	assertion, session, err := rp.BeginLogin(u)
	if err != nil {
		return fmt.Errorf("starting sign-in: %w", err)
	}
	resp, err := ceremony(ctx, o.timeout, assertion, client.Get)
	if err != nil {
		return fmt.Errorf("signing in: %w", err)
	}
	parsedLogin, err := protocol.ParseCredentialRequestResponseBytes(resp)
	if err != nil {
		return fmt.Errorf("relying party could not read the sign-in: %w", err)
	}
	used, err := rp.ValidateLogin(u, *session, parsedLogin)
	if err != nil {
		return fmt.Errorf("relying party refused the sign-in: %w", err)
	}
	say("          Signed in as %s with credential %s (signature counter %d)", o.userName, short(used.ID), used.Authenticator.SignCount)
	say("Done. The key protects %s. Register a second key as a backup, and keep your recovery codes.", o.userName)
	return nil
}

// ceremony marshals the relying party's options, runs one WebAuthn client
// call on them with a deadline, and returns the credential JSON.
func ceremony(ctx context.Context, timeout time.Duration, options any, call func(context.Context, []byte) ([]byte, error)) ([]byte, error) {
	b, err := json.Marshal(options)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return call(ctx, b)
}

// openKey opens the key to enroll: the one named by -device, else the first
// attached key, else a virtual key.
func openKey(ctx context.Context, o *options, prompt fido.Prompt, say func(string, ...any)) (fido.Authenticator, func(), error) {
	opener := &fido.Opener{Prompt: prompt}
	path := o.device
	if path == "" && !o.virtual {
		keys, err := fido.Devices(ctx)
		if err != nil {
			return nil, nil, fmt.Errorf("listing security keys: %w", err)
		}
		if len(keys) > 0 {
			path = keys[0].Path
			say("          Found %s %s at %s", keys[0].Manufacturer, keys[0].Product, path)
		}
	}
	if path != "" {
		dev, err := opener.Open(ctx, path)
		if err != nil {
			return nil, nil, err
		}
		return dev, func() { dev.Close() }, nil
	}

	if !o.virtual {
		say("          No security key is attached; using a virtual key instead.")
	}
	state := o.state
	var tmp string
	if state == "" {
		d, err := os.MkdirTemp("", "fidokit-enroll-")
		if err != nil {
			return nil, nil, err
		}
		tmp = d
		state = filepath.Join(d, "virtual-key.json")
	}
	// The virtual key asks for a touch and "touches" itself shortly after,
	// so the prompts read as they would with a real key.
	k, err := virtual.New(&virtual.Config{StatePath: state, UserPresence: virtual.ApproveAfter(300 * time.Millisecond)})
	if err != nil {
		return nil, nil, fmt.Errorf("starting the virtual key: %w", err)
	}
	say("          Virtual key ready (state in %s)", state)
	dev, err := k.Open(ctx, opener)
	if err != nil {
		k.Close()
		return nil, nil, err
	}
	return dev, func() {
		dev.Close()
		k.Close()
		if tmp != "" {
			os.RemoveAll(tmp)
		}
	}, nil
}

func short(id []byte) string {
	s := hex.EncodeToString(id)
	if len(s) > 16 {
		s = s[:16] + "..."
	}
	return s
}
