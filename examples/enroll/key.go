package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
	"github.com/fidokit/fidokit/mfa"
)

var randReader io.Reader = rand.Reader

// virtualDemoPIN is the PIN a virtual key is given, so that the guide
// runs without a terminal. It protects nothing: the virtual key lives in
// a temporary file unless -state names one.
const virtualDemoPIN = "fidokit-demo"

// keySet closes what the run opened, last first.
type keySet struct{ closers []func() }

func (k *keySet) onClose(f func()) { k.closers = append(k.closers, f) }

func (k *keySet) closeAll() {
	for i := len(k.closers) - 1; i >= 0; i-- {
		k.closers[i]()
	}
}

// attachedKeys lists real keys and the virtual keys of
// FIDOKIT_VIRTUAL_KEYS, refusing an entry there that is not a listening
// socket: a typo must not make the guide "succeed" on a throwaway key.
func attachedKeys(ctx context.Context) ([]fido.DeviceInfo, error) {
	for _, p := range filepath.SplitList(os.Getenv(fido.VirtualKeysEnv)) {
		if p == "" {
			continue
		}
		fi, err := os.Stat(p)
		if err != nil {
			return nil, fmt.Errorf("%s names %s: %w", fido.VirtualKeysEnv, p, err)
		}
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("%s names %s, which is not a socket (start one with go run ./examples/virtualkey -socket %s)", fido.VirtualKeysEnv, p, p)
		}
	}
	keys, err := fido.Devices(ctx)
	if err != nil {
		return nil, fmt.Errorf("listing security keys: %w", err)
	}
	return keys, nil
}

// enrollKey finds a key (or makes a virtual one), protects it with a PIN,
// and registers it on the account.
func (g *guide) enrollKey(ctx context.Context) error {
	dev, isVirtual, err := g.openKey(ctx)
	if err != nil {
		return err
	}
	info, err := dev.Info(ctx)
	if err != nil {
		return fmt.Errorf("reading the key: %w", err)
	}
	g.say("          Protocols %v, algorithms %v", info.Versions, info.Algorithms)
	if err := g.protect(ctx, dev, info, isVirtual); err != nil {
		return err
	}

	client := &fido.WebAuthnClient{Authenticator: dev, Origin: "https://" + g.o.rpID}
	b, err := g.m.BeginKeyRegistration(ctx, g.user.ID)
	if err != nil {
		return err
	}
	tctx, cancel := context.WithTimeout(ctx, g.o.timeout)
	resp, err := client.Create(tctx, b.Options)
	cancel()
	if err != nil {
		return fmt.Errorf("registering the key: %w", err)
	}
	name := fmt.Sprintf("Security key %d", len(g.added)+1)
	d, err := g.m.FinishKeyRegistration(ctx, b.ChallengeID, resp, name)
	if err != nil {
		return fmt.Errorf("the relying party refused the key: %w", err)
	}
	g.say("          Registered %q (%s attestation)", d.Name, d.Key.AttestationFormat)
	g.added = append(g.added, &added{dev: d, signIn: func(ctx context.Context) (*mfa.Verification, error) {
		b, err := g.m.BeginSecurityKey(ctx, g.user.ID)
		if err != nil {
			return nil, err
		}
		tctx, cancel := context.WithTimeout(ctx, g.o.timeout)
		defer cancel()
		resp, err := client.Get(tctx, b.Options)
		if err != nil {
			return nil, err
		}
		v, err := g.m.FinishSecurityKey(ctx, g.user.ID, b.ChallengeID, resp)
		if err == nil && v.Device.ID != d.ID {
			return nil, fmt.Errorf("the key signed in as %s, not the key just registered", v.Device.ID)
		}
		return v, err
	}})
	return nil
}

// openKey opens the key to enroll: -device, else the first attached key
// not used yet, else a new virtual key.
func (g *guide) openKey(ctx context.Context) (fido.Authenticator, bool, error) {
	pins := &pinSource{g: g}
	opener := &fido.Opener{Prompt: fido.Prompt{
		Touch: func() { g.say("          Touch your security key...") },
		PIN:   pins.ask,
	}}
	used := len(g.added) > 0
	if !g.virtual {
		path := g.o.device
		if path != "" && used {
			g.say("          Unplug the first key and plug in the backup key, then press Enter.")
			if _, err := g.term.readLine(""); err != nil {
				return nil, false, err
			}
			path = ""
		}
		if path == "" {
			keys, err := attachedKeys(ctx)
			if err != nil {
				return nil, false, err
			}
			if len(keys) == 0 {
				return nil, false, fmt.Errorf("no security key found: %w", fido.ErrNoDevice)
			}
			path = keys[0].Path
			g.say("          Found %s %s at %s", keys[0].Manufacturer, keys[0].Product, path)
		} else if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
			return nil, false, fmt.Errorf("-device %s: no such file", path)
		}
		dev, err := opener.Open(ctx, path)
		if err != nil {
			// Name the path once: the layers below each say "opening P".
			return nil, false, fmt.Errorf("%s is not a security key (%v)", path, innermost(err))
		}
		g.keys.onClose(func() { dev.Close() })
		return dev, false, nil
	}

	state := g.o.state
	if state == "" || used {
		d, err := os.MkdirTemp("", "fidokit-key-")
		if err != nil {
			return nil, false, err
		}
		g.keys.onClose(func() { os.RemoveAll(d) })
		state = filepath.Join(d, "virtual-key.json")
	}
	// The virtual key asks for a touch and "touches" itself shortly
	// after, so the prompts read as they would with a real key.
	k, err := virtual.New(&virtual.Config{StatePath: state, UserPresence: virtual.ApproveAfter(300 * time.Millisecond)})
	if err != nil {
		return nil, false, fmt.Errorf("starting the virtual key: %w", err)
	}
	g.say("          Virtual key ready (state in %s)", state)
	dev, err := k.Open(ctx, opener)
	if err != nil {
		k.Close()
		return nil, false, err
	}
	g.keys.onClose(func() { dev.Close(); k.Close() })
	return dev, true, nil
}

// protect offers a key without a PIN one.
func (g *guide) protect(ctx context.Context, dev fido.Authenticator, info *fido.Info, isVirtual bool) error {
	pinSet, pinSupported := info.Option("clientPin")
	pm, canManage := dev.(fido.PINManager)
	switch {
	case pinSet:
		if canManage {
			if n, _, err := pm.PINRetries(ctx); err == nil {
				g.say("          The key has a PIN (%d tries left); you will be asked for it when the key needs it.", n)
				return nil
			}
		}
		g.say("          The key has a PIN; you will be asked for it when the key needs it.")
		return nil
	case !pinSupported || !canManage:
		g.say("          The key has no PIN support; it will be used with a touch only.")
		return nil
	case g.o.noPIN:
		g.say("          The key has no PIN; skipping as asked (-no-pin). Anyone holding it can use it.")
		return nil
	}
	g.say("          The key has no PIN. Setting one, so that a lost key is useless to whoever finds it.")
	pins := &pinSource{g: g, virtual: isVirtual}
	pin, err := pins.newPIN(info.MinPINLength)
	if err != nil {
		return err
	}
	err = pm.SetPIN(ctx, pin)
	if errors.Is(err, fido.StatusPINPolicyViolation) {
		return fmt.Errorf("setting the PIN: the key refused it (at least %d characters): %w", max(info.MinPINLength, 4), err)
	}
	if err != nil {
		return fmt.Errorf("setting the PIN: %w", err)
	}
	g.say("          PIN set. The key will ask for it to register and to sign in.")
	return nil
}

// pinSource answers the key's requests for its PIN: from -pin-file or
// FIDOKIT_PIN on the first try, the demo PIN for a virtual key, else
// typed on the terminal without echo.
type pinSource struct {
	g       *guide
	virtual bool
	refused bool
}

func (p *pinSource) given() (string, error) {
	if p.g.o.pinFile != "" {
		b, err := os.ReadFile(p.g.o.pinFile)
		if err != nil {
			return "", fmt.Errorf("reading -pin-file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if pin := os.Getenv("FIDOKIT_PIN"); pin != "" {
		return pin, nil
	}
	if p.virtual || p.g.virtual {
		return virtualDemoPIN, nil
	}
	return "", nil
}

// ask is the Prompt.PIN callback.
func (p *pinSource) ask(ctx context.Context, req fido.PINRequest) (string, error) {
	if req.Retry {
		p.g.say("          Wrong PIN; %d tries left before the key locks.", req.Retries)
	}
	if !req.Retry && !p.refused {
		pin, err := p.given()
		if err != nil || pin != "" {
			return pin, err
		}
	}
	// A given PIN the key refused is not offered again.
	p.refused = p.refused || req.Retry
	return p.g.term.readSecret(fmt.Sprintf("          Enter the PIN of your security key (%d tries left): ", req.Retries))
}

// newPIN returns the PIN to set: given, or typed twice.
func (p *pinSource) newPIN(minLen int) (string, error) {
	pin, err := p.given()
	if err != nil || pin != "" {
		return pin, err
	}
	first, err := p.g.term.readSecret(fmt.Sprintf("          Choose a PIN (at least %d characters): ", max(minLen, 4)))
	if err != nil {
		return "", err
	}
	again, err := p.g.term.readSecret("          Enter it again: ")
	if err != nil {
		return "", err
	}
	if first != again {
		return "", errors.New("setting the PIN: the two PINs differ")
	}
	return first, nil
}

// terminal reads answers, and PINs without echo when in is a terminal.
type terminal struct {
	in   *bufio.Reader
	file io.Reader
	out  io.Writer
}

func newTerminal(in io.Reader, out io.Writer) *terminal {
	return &terminal{in: bufio.NewReader(in), file: in, out: out}
}

// interactive reports whether a person is at the terminal to answer.
func (t *terminal) interactive() bool { return isTerminal(t.file) }

var errNoInput = errors.New("no answer (nothing to read on standard input; see -h for flags that answer instead)")

func (t *terminal) readLine(prompt string) (string, error) {
	fmt.Fprint(t.out, prompt)
	line, err := t.in.ReadString('\n')
	line = strings.TrimSpace(line)
	if line == "" && err != nil {
		if errors.Is(err, io.EOF) {
			return "", errNoInput
		}
		return "", err
	}
	return line, nil
}

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
		return "", errors.New("no PIN given (type it on a terminal, or use -pin-file or FIDOKIT_PIN)")
	}
	return line, nil
}

// innermost is the error at the bottom of err's chain.
func innermost(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}
