// Command virtualkey serves a virtual FIDO2/U2F security key on a socket
// until interrupted, so that any fidokit program (or a libfido2 program
// through the preload shim) can use it as it would a USB key:
//
//	go run ./examples/virtualkey -socket /tmp/key.sock -state /tmp/key.json
//	FIDOKIT_VIRTUAL_KEYS=/tmp/key.sock go run ./examples/enroll
//
// Touches are approved automatically unless -presence says otherwise.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/fidokit/fidokit/fido/virtual"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "virtualkey:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, in io.Reader, out io.Writer) error {
	fs := flag.NewFlagSet("virtualkey", flag.ContinueOnError)
	fs.SetOutput(out)
	socket := fs.String("socket", "", "socket path to serve the key on (required)")
	state := fs.String("state", "", "file that keeps the key's credentials across restarts (default: memory only)")
	presence := fs.String("presence", "auto", "how touches are answered: auto, deny, or stdin (press Enter to touch)")
	u2fOnly := fs.Bool("u2f-only", false, "act as an old U2F-only key")
	attestation := fs.String("attestation", "packed", "attestation type: packed, self or none")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *socket == "" || fs.NArg() != 0 {
		fs.Usage()
		return fmt.Errorf("-socket is required")
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
		b := virtual.NewButton()
		cfg.UserPresence = b.Presence()
		go pressOnEnter(ctx, b, in, out)
	default:
		return fmt.Errorf("unknown -presence %q", *presence)
	}
	k, err := virtual.New(cfg)
	if err != nil {
		return err
	}
	defer k.Close()
	srv, err := k.Listen(*socket)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "virtual key ready on %s (set FIDOKIT_VIRTUAL_KEYS=%s)\n", *socket, *socket)
	<-ctx.Done()
	return srv.Close()
}

// pressOnEnter tells the person when the key wants a touch and presses the
// button when they press Enter.
func pressOnEnter(ctx context.Context, b *virtual.Button, in io.Reader, out io.Writer) {
	lines := bufio.NewScanner(in)
	for {
		select {
		case <-ctx.Done():
			return
		case req := <-b.Waiting():
			fmt.Fprintf(out, "Touch requested (%s %s); press Enter\n", req.Op, req.RPID)
			if !lines.Scan() {
				return
			}
			b.Press()
		}
	}
}
