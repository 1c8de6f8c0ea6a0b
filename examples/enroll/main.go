// Command enroll walks a person through protecting an account with a
// security key: find the key, protect it with a PIN, register it with a
// relying party, then sign in with it to prove it works.
//
// With a key plugged in it uses that key; with none, or with -virtual, it
// uses a virtual key so the whole path can be tried on any machine:
//
//	go run ./examples/enroll
//	go run ./examples/enroll -device /dev/hidraw3 -user alice@example.com
//
// A key without a PIN is offered one (CTAP 2.1 §6.5.5.5): the PIN comes
// from -pin, or is typed on the terminal; a virtual key gets a demo PIN
// unless -pin says otherwise, so that the path runs unattended. -no-pin
// skips the step. Once the key has a PIN, registration and sign-in ask for
// user verification, and the key's PIN is asked for (or taken from -pin)
// only when the key needs it.
//
// The relying party runs in this process on github.com/go-webauthn/webauthn,
// which verifies the attestation and the sign-in signature independently of
// fidokit.
package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
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
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout); err != nil {
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
	pin      string
	noPIN    bool
}

// virtualDemoPIN is the PIN a virtual key is given when -pin is not set,
// so that the guided flow runs without a terminal. It protects nothing: the
// virtual key lives in a temporary file unless -state names one.
const virtualDemoPIN = "fidokit-demo"

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
	fs.StringVar(&o.pin, "pin", "", "PIN to set on a key that has none, and to give when the key asks (default: type it; a virtual key gets a demo PIN)")
	fs.BoolVar(&o.noPIN, "no-pin", false, "do not set a PIN on a key that has none")
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

func run(ctx context.Context, args []string, in io.Reader, out io.Writer) error {
	o, err := parseFlags(args, out)
	if err != nil {
		return err
	}
	say := func(format string, a ...any) { fmt.Fprintf(out, format+"\n", a...) }
	term := &terminal{in: bufio.NewReader(in), file: in, out: out}
	// The PIN is asked for only when the key needs it, and is not kept
	// here beyond the flags it came from.
	pins := &pinSource{flag: o.pin, term: term}
	prompt := fido.Prompt{
		Touch: func() { say("          Touch your security key...") },
		PIN:   pins.ask,
	}

	say("Step 1/5  Looking for a security key")
	dev, virtualKey, cleanup, err := openKey(ctx, o, prompt, say)
	if err != nil {
		return err
	}
	defer cleanup()
	if virtualKey && pins.flag == "" {
		pins.flag = virtualDemoPIN
	}

	say("Step 2/5  Reading the key")
	info, err := dev.Info(ctx)
	if err != nil {
		return fmt.Errorf("reading key info: %w", err)
	}
	say("          Protocols %v, algorithms %v", info.Versions, info.Algorithms)

	say("Step 3/5  Protecting the key with a PIN")
	verify, err := protect(ctx, dev, info, o, pins, say)
	if err != nil {
		return err
	}
	uv := protocol.VerificationDiscouraged
	if verify {
		uv = protocol.VerificationRequired
	}

	origin := "https://" + o.rpID
	rp, err := gowebauthn.New(&gowebauthn.Config{RPID: o.rpID, RPDisplayName: o.rpID, RPOrigins: []string{origin}})
	if err != nil {
		return fmt.Errorf("setting up the relying party: %w", err)
	}
	u := &user{id: []byte(o.userName), name: o.userName}
	client := &fido.WebAuthnClient{Authenticator: dev, Origin: origin}

	say("Step 4/5  Registering the key with %s for %s", o.rpID, o.userName)
	creation, session, err := rp.BeginRegistration(u,
		gowebauthn.WithConveyancePreference(protocol.PreferDirectAttestation),
		gowebauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{UserVerification: uv}))
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

	say("Step 5/5  Signing in with the key to prove it works")
	assertion, session, err := rp.BeginLogin(u, gowebauthn.WithUserVerification(uv))
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

// protect offers a key without a PIN one, and reports whether the key can
// verify the person (a PIN or built-in verification), in which case the
// ceremonies require it.
func protect(ctx context.Context, dev fido.Authenticator, info *fido.Info, o *options, pins *pinSource, say func(string, ...any)) (bool, error) {
	builtIn, _ := info.Option("uv")
	pinSet, pinSupported := info.Option("clientPin")
	pm, canManage := dev.(fido.PINManager)
	switch {
	case pinSet:
		if canManage {
			if n, _, err := pm.PINRetries(ctx); err == nil {
				say("          The key has a PIN (%d tries left); you will be asked for it when the key needs it.", n)
				return true, nil
			}
		}
		say("          The key has a PIN; you will be asked for it when the key needs it.")
		return true, nil
	case !pinSupported || !canManage:
		say("          The key has no PIN support; it will be used with a touch only.")
		return builtIn, nil
	case o.noPIN:
		say("          The key has no PIN; skipping as asked (-no-pin). Anyone holding it can use it.")
		return builtIn, nil
	}
	say("          The key has no PIN. Setting one, so that a lost key is useless to whoever finds it.")
	pin, err := pins.newPIN(info.MinPINLength)
	if err != nil {
		return false, err
	}
	err = pm.SetPIN(ctx, pin)
	if errors.Is(err, fido.StatusPINPolicyViolation) {
		return false, fmt.Errorf("setting the PIN: the key refused it (at least %d characters): %w", max(info.MinPINLength, 4), err)
	}
	if err != nil {
		return false, fmt.Errorf("setting the PIN: %w", err)
	}
	say("          PIN set. The key will ask for it to register and to sign in.")
	return true, nil
}

// pinSource answers the key's requests for its PIN: with -pin (or the
// virtual key's demo PIN) on the first try, else by asking on the
// terminal.
type pinSource struct {
	flag string
	term *terminal
}

// ask is the Prompt.PIN callback.
func (p *pinSource) ask(ctx context.Context, req fido.PINRequest) (string, error) {
	if req.Retry {
		// A PIN the key refused is not offered again.
		p.flag = ""
		fmt.Fprintf(p.term.out, "          Wrong PIN; %d tries left before the key locks.\n", req.Retries)
	}
	if p.flag != "" {
		return p.flag, nil
	}
	return p.term.readSecret(fmt.Sprintf("          Enter the PIN of your security key (%d tries left): ", req.Retries))
}

// newPIN returns the PIN to set: -pin, or one typed twice.
func (p *pinSource) newPIN(minLen int) (string, error) {
	if p.flag != "" {
		return p.flag, nil
	}
	first, err := p.term.readSecret(fmt.Sprintf("          Choose a PIN (at least %d characters): ", max(minLen, 4)))
	if err != nil {
		return "", err
	}
	again, err := p.term.readSecret("          Enter it again: ")
	if err != nil {
		return "", err
	}
	if first != again {
		return "", errors.New("setting the PIN: the two PINs differ")
	}
	p.flag = first
	return first, nil
}

// terminal reads PINs, without echo when in is a terminal.
type terminal struct {
	in   *bufio.Reader
	file io.Reader
	out  io.Writer
}

var errNoPIN = errors.New("no PIN given (use -pin, or run in a terminal)")

func (t *terminal) readSecret(prompt string) (string, error) {
	fmt.Fprint(t.out, prompt)
	restore := noEcho(t.file)
	line, err := t.in.ReadString('\n')
	restore()
	fmt.Fprintln(t.out)
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading the PIN: %w", err)
		}
		return "", errNoPIN
	}
	return line, nil
}

// openKey opens the key to enroll: the one named by -device, else the first
// attached key, else a virtual key, which it reports.
func openKey(ctx context.Context, o *options, prompt fido.Prompt, say func(string, ...any)) (fido.Authenticator, bool, func(), error) {
	opener := &fido.Opener{Prompt: prompt}
	path := o.device
	if path == "" && !o.virtual {
		keys, err := fido.Devices(ctx)
		if err != nil {
			return nil, false, nil, fmt.Errorf("listing security keys: %w", err)
		}
		if len(keys) > 0 {
			path = keys[0].Path
			say("          Found %s %s at %s", keys[0].Manufacturer, keys[0].Product, path)
		}
	}
	if path != "" {
		dev, err := opener.Open(ctx, path)
		if err != nil {
			return nil, false, nil, err
		}
		return dev, false, func() { dev.Close() }, nil
	}

	if !o.virtual {
		say("          No security key is attached; using a virtual key instead.")
	}
	state := o.state
	var tmp string
	if state == "" {
		d, err := os.MkdirTemp("", "fidokit-enroll-")
		if err != nil {
			return nil, false, nil, err
		}
		tmp = d
		state = filepath.Join(d, "virtual-key.json")
	}
	// The virtual key asks for a touch and "touches" itself shortly after,
	// so the prompts read as they would with a real key.
	k, err := virtual.New(&virtual.Config{StatePath: state, UserPresence: virtual.ApproveAfter(300 * time.Millisecond)})
	if err != nil {
		return nil, false, nil, fmt.Errorf("starting the virtual key: %w", err)
	}
	say("          Virtual key ready (state in %s)", state)
	dev, err := k.Open(ctx, opener)
	if err != nil {
		k.Close()
		return nil, false, nil, err
	}
	return dev, true, func() {
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
