package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode/utf8"

	"github.com/fidokit/fidokit/fido"
)

// terminal asks the person: prompts go to standard error, answers come
// from standard input, a line each, without echo for secrets when standard
// input is a terminal.
type terminal struct {
	in     io.Reader
	r      *bufio.Reader
	out    io.Writer
	broken error // set when a read was abandoned; later reads fail with it
}

func newTerminal(in io.Reader, out io.Writer) *terminal {
	return &terminal{in: in, r: bufio.NewReader(in), out: out}
}

// noSecretError means a PIN was needed and none was given.
type noSecretError struct{ msg string }

func (e *noSecretError) Error() string { return e.msg }

// errNoInput means standard input ended before an answer.
var errNoInput = errors.New("no answer: standard input is empty")

// readLine prints prompt and reads one line, without its line ending. A
// cancelled ctx abandons the read (and turns echo back on).
func (t *terminal) readLine(ctx context.Context, prompt string, secret bool) (string, error) {
	if t.broken != nil {
		return "", t.broken
	}
	fmt.Fprint(t.out, prompt)
	restore, quiet := func() {}, false
	if secret {
		restore, quiet = noEcho(t.in)
	}
	done := func() {
		restore()
		if quiet {
			fmt.Fprintln(t.out) // the Enter was not echoed either
		}
	}
	type answer struct {
		line string
		err  error
	}
	ch := make(chan answer, 1)
	go func() {
		line, err := t.r.ReadString('\n')
		ch <- answer{line, err}
	}()
	var ans answer
	select {
	case ans = <-ch:
	case <-ctx.Done():
		done()
		t.broken = ctx.Err()
		return "", ctx.Err()
	}
	done()
	switch {
	case errors.Is(ans.err, io.EOF) && ans.line == "":
		fmt.Fprintln(t.out) // end the prompt's line
		return "", errNoInput
	case ans.err != nil && !errors.Is(ans.err, io.EOF):
		return "", fmt.Errorf("reading standard input: %w", ans.err)
	}
	return strings.TrimRight(ans.line, "\r\n"), nil
}

// confirm asks the person to type yes; anything else, or no answer, is
// errNotConfirmed.
func (a *app) confirm(question string) error {
	line, err := a.term.readLine(a.ctx, question+"\nType yes to go on: ", false)
	if errors.Is(err, errNoInput) {
		return fmt.Errorf("%w: no answer on standard input (type yes, or pass -force)", errNotConfirmed)
	}
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "yes" {
		return fmt.Errorf("%w: the answer was not yes", errNotConfirmed)
	}
	return nil
}

// secret is where a PIN comes from: a file named by a flag, an
// environment variable, or the terminal. It is read at most once per run.
type secret struct {
	what   string  // "PIN", "new PIN"
	file   *string // the -pin-file or -new-pin-file value
	env    string  // FIDOKIT_PIN or FIDOKIT_NEW_PIN
	getenv func(string) string
	term   *terminal

	value string
	have  bool
}

// origin names a fixed source ("-pin-file FILE", "$FIDOKIT_PIN"), or is
// empty for the terminal.
func (s *secret) origin() string {
	switch {
	case *s.file != "":
		if s.what == "PIN" {
			return "-pin-file " + *s.file
		}
		return "-new-pin-file " + *s.file
	case s.getenv(s.env) != "":
		return "$" + s.env
	}
	return ""
}

// get returns the secret, reading it from its source the first time, and
// prompting with prompt on the terminal.
func (s *secret) get(ctx context.Context, prompt string) (string, error) {
	if s.have {
		return s.value, nil
	}
	var v string
	switch {
	case *s.file != "":
		b, err := os.ReadFile(*s.file)
		if err != nil {
			return "", fmt.Errorf("reading the %s: %w", s.what, err)
		}
		v, _, _ = strings.Cut(string(b), "\n")
		v = strings.TrimSuffix(v, "\r")
		if v == "" {
			return "", fmt.Errorf("the %s file %s is empty", s.what, *s.file)
		}
	case s.getenv(s.env) != "":
		v = s.getenv(s.env)
	default:
		var err error
		if v, err = s.term.readLine(ctx, prompt, true); err != nil {
			if errors.Is(err, errNoInput) {
				flag := "-pin-file"
				if s.what != "PIN" {
					flag = "-new-pin-file"
				}
				return "", &noSecretError{fmt.Sprintf("no %s given: use %s FILE, $%s, or type it on a terminal", s.what, flag, s.env)}
			}
			return "", err
		}
		if v == "" {
			return "", fmt.Errorf("no %s typed", s.what)
		}
	}
	s.value, s.have = v, true
	return v, nil
}

// forget drops the secret read, so that the next get reads it again.
func (s *secret) forget() { s.value, s.have = "", false }

// promptPIN is the Prompt.PIN callback: the PIN from its source, asked for
// once per run and reused for every token the command needs. After a wrong
// PIN it asks again on the terminal, but never tries a PIN from a file or
// the environment twice.
func (a *app) promptPIN(ctx context.Context, req fido.PINRequest) (string, error) {
	if req.Retry {
		a.pin.forget()
		if o := a.pin.origin(); o != "" {
			return "", fmt.Errorf("not trying the PIN from %s again", o)
		}
		a.note("Wrong PIN (%s).", retriesLeft(req.Retries))
	}
	prompt := "PIN of the security key: "
	if req.Retries >= 0 && req.Retries <= 3 {
		prompt = fmt.Sprintf("PIN of the security key (%s): ", retriesLeft(req.Retries))
	}
	return a.pin.get(ctx, prompt)
}

// currentPIN returns the key's PIN for pin change, which takes it
// directly rather than through Prompt.PIN.
func (a *app) currentPIN() (string, error) {
	return a.pin.get(a.ctx, "Current PIN: ")
}

// askNewPIN returns the new PIN for pin set and pin change, checked
// against the rules of CTAP 2.1 §6.5.1 and the key's minimum length, so
// that a PIN the key would refuse is caught before anything is sent.
func (a *app) askNewPIN(minLen int) (string, error) {
	minLen = max(minLen, 4)
	check := func(pin string) error {
		switch {
		case utf8.RuneCountInString(pin) < minLen:
			return fmt.Errorf("the new PIN must be at least %d characters long (the key's minimum)", minLen)
		case len(pin) > 63:
			return errors.New("the new PIN must be at most 63 bytes long")
		case !utf8.ValidString(pin) || strings.ContainsRune(pin, 0):
			return errors.New("the new PIN must be UTF-8 text without NUL characters")
		}
		return nil
	}
	if a.newPIN.origin() != "" {
		pin, err := a.newPIN.get(a.ctx, "")
		if err != nil {
			return "", err
		}
		return pin, check(pin)
	}
	first, err := a.newPIN.get(a.ctx, fmt.Sprintf("New PIN (at least %d characters): ", minLen))
	if err != nil {
		return "", err
	}
	if err := check(first); err != nil {
		return "", err
	}
	again, err := a.term.readLine(a.ctx, "New PIN again: ", true)
	if errors.Is(err, errNoInput) {
		return "", errors.New("the new PIN was given once: type it twice")
	}
	if err != nil {
		return "", err
	}
	if again != first {
		return "", errors.New("the two new PINs differ; nothing was changed")
	}
	return first, nil
}
