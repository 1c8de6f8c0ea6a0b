package main

import (
	"errors"
	"flag"
	"fmt"
	"strconv"
	"strings"

	"github.com/fidokit/fidokit/fido"
)

// configurator returns the key's authenticatorConfig, or says the backend
// has none.
func (a *app) configurator(k key, what string) (fido.Configurator, error) {
	c, ok := k.(fido.Configurator)
	if !ok {
		return nil, fmt.Errorf("%s: not supported by %s", what, a.backendName())
	}
	return c, nil
}

var cmdConfigAlwaysUV = &command{
	name:    "config always-uv",
	args:    "on|off",
	summary: "require user verification (PIN or fingerprint) for every use of the key, or stop requiring it",
	pin:     true,
	run: func(a *app, args []string) error {
		var want bool
		switch {
		case len(args) == 1 && args[0] == "on":
			want = true
		case len(args) == 1 && args[0] == "off":
		default:
			return usagef("config always-uv", "config always-uv takes on or off")
		}
		return a.withKey(func(k key, d fido.DeviceInfo) error {
			cfg, err := a.configurator(k, "config always-uv")
			if err != nil {
				return err
			}
			info, err := k.Info(a.ctx)
			if err != nil {
				return err
			}
			cur, ok := info.Option("alwaysUv")
			if !ok {
				return fmt.Errorf("config always-uv: the key has no alwaysUv setting: %w", fido.ErrNotSupported)
			}
			changed := cur != want
			if changed {
				if err := cfg.ToggleAlwaysUV(a.ctx); err != nil {
					return configError(err)
				}
				if info, err = k.Info(a.ctx); err != nil {
					return err
				}
				cur, _ = info.Option("alwaysUv")
			}
			doc := struct {
				Device   deviceJSON `json:"device"`
				AlwaysUV bool       `json:"alwaysUv"`
				Changed  bool       `json:"changed"`
			}{deviceDoc(d), cur, changed}
			return a.result(doc, func() {
				state := "off: a touch is enough where a relying party does not ask for verification"
				if cur {
					state = "on: every use of the key needs its PIN or built-in user verification"
				}
				if changed {
					a.say("alwaysUv is now %s.", state)
				} else {
					a.say("alwaysUv was already %s.", state)
				}
			})
		})
	},
}

// listFlag is a flag that may be repeated.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

var cmdConfigMinPIN = &command{
	name:    "config min-pin-length",
	args:    "N",
	summary: "raise the minimum PIN length, and name relying parties that may read it",
	pin:     true,
	flags: func(fs *flag.FlagSet, a *app) {
		fs.Var(&a.flagRPs, "rp", "a relying party `id` that may read the minimum through the minPinLength extension (repeatable)")
		fs.BoolVar(&a.forceChange, "force-change", false, "make the key refuse its PIN until it is changed")
	},
	run: func(a *app, args []string) error {
		if len(args) != 1 {
			return usagef("config min-pin-length", "config min-pin-length takes one number")
		}
		n, err := strconv.Atoi(args[0])
		if err != nil || n < 4 || n > 63 {
			return usagef("config min-pin-length", "the minimum PIN length must be a number from 4 to 63, not %q", args[0])
		}
		return a.withKey(func(k key, d fido.DeviceInfo) error {
			cfg, err := a.configurator(k, "config min-pin-length")
			if err != nil {
				return err
			}
			info, err := k.Info(a.ctx)
			if err != nil {
				return err
			}
			if _, ok := info.Option("setMinPINLength"); !ok {
				return fmt.Errorf("config min-pin-length: the key cannot change its minimum PIN length: %w", fido.ErrNotSupported)
			}
			if n < info.MinPINLength {
				return fmt.Errorf("the minimum PIN length can only be raised, and it is %d already; only a reset lowers it", info.MinPINLength)
			}
			changed := n > info.MinPINLength || len(a.flagRPs) > 0 || a.forceChange
			if changed {
				newLen := n
				if n == info.MinPINLength {
					newLen = 0 // as it is
				}
				if err := cfg.SetMinPINLength(a.ctx, newLen, a.flagRPs, a.forceChange); err != nil {
					return configError(err)
				}
				if info, err = k.Info(a.ctx); err != nil {
					return err
				}
			}
			doc := struct {
				Device         deviceJSON `json:"device"`
				MinPINLength   int        `json:"minPinLength"`
				ForcePINChange bool       `json:"forcePinChange"`
				RPIDs          []string   `json:"rpIds"`
				Changed        bool       `json:"changed"`
			}{deviceDoc(d), info.MinPINLength, info.ForcePINChange, nonNil([]string(a.flagRPs)), changed}
			return a.result(doc, func() {
				if changed {
					a.say("The minimum PIN length is now %d.", info.MinPINLength)
				} else {
					a.say("The minimum PIN length was already %d.", info.MinPINLength)
				}
				if len(a.flagRPs) > 0 {
					a.say("Relying parties that may read it: %s.", strings.Join(a.flagRPs, ", "))
				}
				if info.ForcePINChange {
					a.say("The key refuses its PIN until it is changed: run 'fidokey pin change'.")
				}
			})
		})
	},
}

// configError explains the refusal of a key with alwaysUv on and no PIN:
// it takes settings only with user verification (CTAP 2.1 §6.11), which
// needs a PIN.
func configError(err error) error {
	if errors.Is(err, fido.StatusPUATRequired) {
		return fmt.Errorf("with alwaysUv on, the key changes its settings only after user verification, and it has no PIN: set one with 'fidokey pin set' first (%v)", err)
	}
	return err
}
