package main

import (
	"errors"
	"flag"
	"fmt"

	"github.com/fidokit/fidokit/fido"
)

func newPINFlag(fs *flag.FlagSet, a *app) {
	fs.StringVar(&a.newPINFile, "new-pin-file", "", "read the new PIN from the first line of `file` (default: $FIDOKIT_NEW_PIN, else ask twice)")
}

// pinManager returns the key's PIN management, or says the backend has
// none.
func (a *app) pinManager(k key, what string) (fido.PINManager, error) {
	pm, ok := k.(fido.PINManager)
	if !ok {
		return nil, fmt.Errorf("%s: not supported by %s", what, a.backendName())
	}
	return pm, nil
}

var cmdPINSet = &command{
	name:    "pin set",
	summary: "set the PIN of a key that has none",
	flags:   newPINFlag,
	run: func(a *app, args []string) error {
		if err := noArgs("pin set", args); err != nil {
			return err
		}
		return a.withKey(func(k key, d fido.DeviceInfo) error {
			pm, err := a.pinManager(k, "pin set")
			if err != nil {
				return err
			}
			info, err := k.Info(a.ctx)
			if err != nil {
				return err
			}
			switch set, supported := info.Option("clientPin"); {
			case !supported:
				return errors.New("the key has no PIN support")
			case set:
				return errors.New("the key already has a PIN: change it with 'fidokey pin change'")
			}
			pin, err := a.askNewPIN(info.MinPINLength)
			if err != nil {
				return err
			}
			if err := pm.SetPIN(a.ctx, pin); err != nil {
				return newPINError(err)
			}
			doc := struct {
				Device deviceJSON `json:"device"`
				PINSet bool       `json:"pinSet"`
			}{deviceDoc(d), true}
			return a.result(doc, func() { a.say("PIN set on %s.", d.Path) })
		})
	},
}

var cmdPINChange = &command{
	name:    "pin change",
	summary: "change the key's PIN",
	pin:     true,
	flags:   newPINFlag,
	run: func(a *app, args []string) error {
		if err := noArgs("pin change", args); err != nil {
			return err
		}
		return a.withKey(func(k key, d fido.DeviceInfo) error {
			pm, err := a.pinManager(k, "pin change")
			if err != nil {
				return err
			}
			info, err := k.Info(a.ctx)
			if err != nil {
				return err
			}
			switch set, supported := info.Option("clientPin"); {
			case !supported:
				return errors.New("the key has no PIN support")
			case !set:
				return errors.New("the key has no PIN yet: set one with 'fidokey pin set'")
			}
			// A blocked PIN would only cost the person typing it.
			if n, pc, err := pm.PINRetries(a.ctx); err == nil && (n == 0 || pc) {
				st := fido.StatusPINBlocked
				if n > 0 {
					st = fido.StatusPINAuthBlocked
				}
				return &fido.PINError{Retries: n, Err: st}
			}
			old, err := a.currentPIN()
			if err != nil {
				return err
			}
			pin, err := a.askNewPIN(info.MinPINLength)
			if err != nil {
				return err
			}
			if err := pm.ChangePIN(a.ctx, old, pin); err != nil {
				return newPINError(err)
			}
			doc := struct {
				Device     deviceJSON `json:"device"`
				PINChanged bool       `json:"pinChanged"`
			}{deviceDoc(d), true}
			return a.result(doc, func() { a.say("PIN changed on %s.", d.Path) })
		})
	},
}

var cmdPINRetries = &command{
	name:    "pin retries",
	summary: "show how many wrong PINs (and failed fingerprints) the key still accepts",
	run: func(a *app, args []string) error {
		if err := noArgs("pin retries", args); err != nil {
			return err
		}
		return a.withKey(func(k key, d fido.DeviceInfo) error {
			pm, err := a.pinManager(k, "pin retries")
			if err != nil {
				return err
			}
			info, err := k.Info(a.ctx)
			if err != nil {
				return err
			}
			n, pc, err := pm.PINRetries(a.ctx)
			if err != nil {
				return err
			}
			doc := struct {
				Device             deviceJSON `json:"device"`
				PINRetries         int        `json:"pinRetries"`
				PowerCycleRequired bool       `json:"powerCycleRequired"`
				UVRetries          *int       `json:"uvRetries,omitempty"`
			}{Device: deviceDoc(d), PINRetries: n, PowerCycleRequired: pc}
			if _, builtIn := info.Option("uv"); builtIn {
				uv, err := pm.UVRetries(a.ctx)
				if err != nil && !errors.Is(err, fido.ErrNotSupported) {
					return err
				}
				if err == nil {
					doc.UVRetries = &uv
				}
			}
			return a.result(doc, func() {
				a.say("PIN: %s.", retriesLeft(n))
				if set, _ := info.Option("clientPin"); !set {
					a.say("(No PIN is set.)")
				}
				if n == 0 {
					a.say("The PIN is blocked; only a reset makes the key usable again.")
				}
				if pc {
					a.say("The key takes no PIN until it is unplugged and plugged in again.")
				}
				if doc.UVRetries != nil {
					a.say("Built-in user verification: %s.", retriesLeft(*doc.UVRetries))
				}
			})
		})
	},
}

// newPINError explains a new PIN the key refused: it has rules of its own
// beyond those askNewPIN checks (CTAP 2.1 §6.5.1 lets keys add some).
func newPINError(err error) error {
	var pe *fido.PINError
	if errors.Is(err, fido.StatusPINPolicyViolation) && !errors.As(err, &pe) {
		return &newPINRefused{err}
	}
	return err
}

// newPINRefused is a new PIN that breaks the key's rules.
type newPINRefused struct{ err error }

func (e *newPINRefused) Error() string {
	return fmt.Sprintf("the key refused the new PIN: it breaks the key's PIN rules (%v)", e.err)
}
