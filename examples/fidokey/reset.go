package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/fidokit/fidokit/fido"
)

// interruptedError is a cancelled wait for the person, with what it
// means; it matches context.Canceled.
type interruptedError struct {
	msg string
	err error
}

func (e *interruptedError) Error() string { return e.msg }
func (e *interruptedError) Unwrap() error { return e.err }

// resetRule is CTAP 2.1 §6.6's advice, which keys follow or tighten
// (YubiKeys take a reset only in the first 5 seconds).
const resetRule = "A key accepts a reset only within 10 seconds of being plugged in (a YubiKey within 5)."

var cmdReset = &command{
	name:    "reset",
	summary: "erase every credential on the key, its PIN and its settings",
	flags: func(fs *flag.FlagSet, a *app) {
		fs.BoolVar(&a.force, "force", false, "do not ask for confirmation")
	},
	run: func(a *app, args []string) error {
		if err := noArgs("reset", args); err != nil {
			return err
		}
		d, err := a.chooseDevice()
		if err != nil {
			return err
		}
		if !a.force {
			a.note("Resetting %s erases every credential on it (no account can sign in with it any more), its PIN and its settings. There is no undo.", describe(d))
			a.note("%s If it has been plugged in longer, unplug it and plug it in again now; then type yes at once.", resetRule)
			if err := a.confirm("Reset the key?"); err != nil {
				return fmt.Errorf("reset %w; nothing was erased", err)
			}
			if a.device == "" {
				// Plugged in again, a key may have a new path.
				if d, err = a.chooseDevice(); err != nil {
					return err
				}
			}
		}
		k, err := a.openDevice(d)
		if err != nil {
			return err
		}
		defer k.Close()
		r, ok := k.(resetter)
		if !ok {
			return fmt.Errorf("reset: not supported by %s", a.backendName())
		}
		a.touch = "Touch the key to confirm the reset (Ctrl-C to stop)."
		err = r.Reset(a.ctx)
		switch {
		case err == nil:
		case a.ctx.Err() != nil && errors.Is(err, context.Canceled):
			return &interruptedError{msg: "cancelled: the key was told to stop waiting for the touch; nothing was erased", err: err}
		case errors.Is(err, fido.StatusNotAllowed):
			return fmt.Errorf("the key refused the reset: it accepts one only within 10 seconds of being plugged in (a YubiKey within 5). Unplug it, plug it in again and run 'fidokey reset' at once (%v)", err)
		case errors.Is(err, fido.StatusOperationDenied):
			return fmt.Errorf("the touch was refused; nothing was erased (%v)", err)
		case errors.Is(err, fido.StatusUserActionTimeout), errors.Is(err, fido.StatusActionTimeout):
			return fmt.Errorf("nobody touched the key in time; nothing was erased (%v)", err)
		default:
			return err
		}
		doc := struct {
			Device deviceJSON `json:"device"`
			Reset  bool       `json:"reset"`
		}{deviceDoc(d), true}
		return a.result(doc, func() { a.say("Reset %s: it holds no credentials and no PIN.", d.Path) })
	},
}
