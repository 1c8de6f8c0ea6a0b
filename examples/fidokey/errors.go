package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/libfido2"
)

// noKeyError means no key was found where one was looked for: exit 3.
type noKeyError struct{ msg string }

func (e *noKeyError) Error() string { return e.msg }

func noKey(format string, args ...any) error { return &noKeyError{msg: fmt.Sprintf(format, args...)} }

// errNotConfirmed is a destructive command the person did not confirm.
var errNotConfirmed = errors.New("not confirmed")

// exitCode maps an error to the documented exit codes.
func exitCode(ctx context.Context, err error) int {
	var (
		ue *usageError
		nk *noKeyError
	)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		return exitUsage
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return exitInterrupted
	case pinBlocked(err):
		return exitPINBlocked
	case pinWrong(err):
		return exitWrongPIN
	case errors.As(err, &nk), errors.Is(err, fido.ErrNoDevice):
		return exitNoKey
	}
	return exitFailure
}

func pinBlocked(err error) bool {
	return errors.Is(err, fido.StatusPINBlocked) || errors.Is(err, fido.StatusPINAuthBlocked)
}

func pinWrong(err error) bool { return errors.Is(err, fido.StatusPINInvalid) }

// pinRetriesOf returns the retries left after a refused PIN, when known.
func pinRetriesOf(err error) (int, bool) {
	var pe *fido.PINError
	if errors.As(err, &pe) && pe.Retries >= 0 {
		return pe.Retries, true
	}
	return 0, false
}

// message is what the person reads for err: the conditions a person acts
// on get a sentence that says what to do; others keep the library's text.
func message(ctx context.Context, err error) string {
	var pe *fido.PINError
	hasPE := errors.As(err, &pe)
	retries := -1
	if hasPE {
		retries = pe.Retries
	}
	var (
		ue *usageError
		nk *noKeyError
		ns *noSecretError
		np *newPINRefused
	)
	switch {
	case errors.As(err, &ue):
		return ue.msg
	case errors.As(err, &ns) && !hasPE:
		return ns.msg
	case errors.As(err, &nk):
		return nk.msg
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		var ie *interruptedError
		if errors.As(err, &ie) {
			return ie.msg
		}
		return "cancelled"
	case errors.Is(err, fido.StatusPINBlocked):
		return "the PIN is blocked: no retries are left, and only 'fidokey reset' (which erases every credential) makes the key usable again"
	case errors.Is(err, fido.StatusPINAuthBlocked):
		return fmt.Sprintf("too many wrong PINs in a row: unplug the key and plug it in again before the next try (%s)", retriesLeft(retries))
	case errors.Is(err, fido.StatusPINInvalid):
		return fmt.Sprintf("wrong PIN (%s)", retriesLeft(retries))
	case errors.Is(err, fido.StatusPINNotSet):
		return "the key has no PIN, and this needs one: set it with 'fidokey pin set'"
	case errors.As(err, &np):
		return np.Error()
	case errors.Is(err, fido.StatusPINPolicyViolation) && !errors.Is(err, fido.ErrInvalidRequest):
		return "the key refuses its PIN until it is changed: run 'fidokey pin change' (" + err.Error() + ")"
	case errors.Is(err, fido.ErrPINRequired):
		return "the key's PIN is needed: give it with -pin-file FILE, in $FIDOKIT_PIN, or type it on a terminal (" + err.Error() + ")"
	case errors.Is(err, libfido2.ErrNeedsCgo):
		return "-libfido2: this fidokey was built without cgo (CGO_ENABLED=0), so it cannot use libfido2; build it with cgo and libfido2-dev"
	}
	return err.Error()
}

func retriesLeft(n int) string {
	switch {
	case n < 0:
		return "retries left unknown"
	case n == 1:
		return "1 retry left"
	}
	return fmt.Sprintf("%d retries left", n)
}
