// Command virtualkey serves a virtual FIDO2/U2F security key on a socket
// until interrupted, so that any fidokit program (or a libfido2 program
// through the preload shim) can use it as it would a USB key:
//
//	go run ./examples/virtualkey -socket /tmp/key.sock -state /tmp/key.json
//	FIDOKIT_VIRTUAL_KEYS=/tmp/key.sock go run ./examples/enroll
//
// Flags:
//
//	-socket PATH       where to serve the key (required)
//	-state FILE        keep credentials and counter in FILE across runs
//	-presence MODE     auto (approve every touch), deny, or stdin (press
//	                   Enter to touch the key when asked)
//	-u2f-only          act as an old U2F-only key
//	-attestation FMT   packed (default), self or none
//
// Once the key is served it prints one line, "virtual key ready on PATH
// (set FIDOKIT_VIRTUAL_KEYS=PATH)". SIGINT or SIGTERM stops it and removes
// the socket.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/fidokit/fidokit/fido/virtual"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case err != nil:
		fmt.Fprintln(os.Stderr, "virtualkey:", err)
		os.Exit(1)
	}
}

// run serves the key that args describe until ctx ends. Touches in stdin
// mode are read from in; messages go to out.
func run(ctx context.Context, args []string, in io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("virtualkey", flag.ContinueOnError)
	fs.SetOutput(out)
	socket := fs.String("socket", "", "socket `path` to serve the key on (required)")
	state := fs.String("state", "", "`file` that keeps the key's credentials across runs (default: memory only)")
	presence := fs.String("presence", "auto", "how touches are answered: auto, deny, or stdin (press Enter to touch)")
	u2fOnly := fs.Bool("u2f-only", false, "act as an old U2F-only key")
	attestation := fs.String("attestation", "packed", "attestation `format`: packed, self or none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *socket == "" || fs.NArg() != 0 {
		fs.Usage()
		return errors.New("-socket is required, and nothing else")
	}
	cfg := &virtual.Config{StatePath: *state, U2FOnly: *u2fOnly}
	switch *attestation {
	case "packed":
		cfg.Attestation = virtual.AttestationPacked
	case "self":
		cfg.Attestation = virtual.AttestationSelf
	case "none":
		cfg.Attestation = virtual.AttestationNone
	default:
		return fmt.Errorf("unknown -attestation %q", *attestation)
	}
	switch *presence {
	case "auto":
	case "deny":
		cfg.UserPresence = virtual.Deny
	case "stdin":
		cfg.UserPresence = enterToTouch(ctx, in, out)
	default:
		return fmt.Errorf("unknown -presence %q", *presence)
	}

	k, err := virtual.New(cfg)
	if err != nil {
		return err
	}
	srv, err := k.Listen(*socket)
	if err != nil {
		k.Close()
		return err
	}
	fmt.Fprintf(out, "virtual key ready on %s (set FIDOKIT_VIRTUAL_KEYS=%s)\n", *socket, *socket)
	<-ctx.Done()
	return errors.Join(srv.Close(), k.Close())
}

// enterToTouch returns a presence hook that asks the person to press Enter
// and approves when they do. An Enter while the key is not asking is
// dropped, so it cannot approve a later request by surprise; at the end of
// the input every request is refused.
func enterToTouch(ctx context.Context, in io.Reader, out io.Writer) virtual.UserPresence {
	var (
		enter   = make(chan struct{})
		mu      sync.Mutex // guards asking
		asking  bool
		prompts sync.Mutex // one prompt at a time: a U2F touch can overlap a CTAP2 one
	)
	go func() {
		defer close(enter)
		lines := bufio.NewScanner(in)
		for lines.Scan() {
			mu.Lock()
			a := asking
			mu.Unlock()
			if !a {
				continue // nobody is asking
			}
			select {
			case enter <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return func(ctx context.Context, req virtual.PresenceRequest) error {
		prompts.Lock()
		defer prompts.Unlock()
		// An Enter meant for a request that has ended may be on its way;
		// take it now so it does not approve this one.
		select {
		case _, ok := <-enter:
			if !ok {
				return virtual.ErrDenied
			}
		default:
		}
		mu.Lock()
		asking = true
		mu.Unlock()
		defer func() {
			mu.Lock()
			asking = false
			mu.Unlock()
		}()
		if req.RPID != "" {
			fmt.Fprintf(out, "Touch requested for RP %s (%s); press Enter\n", req.RPID, req.Op)
		} else {
			fmt.Fprintf(out, "Touch requested (%s); press Enter\n", req.Op)
		}
		select {
		case _, ok := <-enter:
			if !ok {
				return virtual.ErrDenied
			}
			return nil
		case <-ctx.Done():
			fmt.Fprintln(out, "Touch request ended")
			return ctx.Err()
		}
	}
}
