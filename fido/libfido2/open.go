package libfido2

import (
	"context"
	"errors"
	"fmt"

	"github.com/fidokit/fidokit/fido"
)

// ErrNeedsCgo is returned by every function of a build without cgo
// (CGO_ENABLED=0), where libfido2 cannot be linked. It also matches
// fido.ErrUnsupportedPlatform.
var ErrNeedsCgo error = needsCgo{}

type needsCgo struct{}

func (needsCgo) Error() string { return "fido/libfido2: requires cgo (built with CGO_ENABLED=0)" }

// Is makes ErrNeedsCgo match fido.ErrUnsupportedPlatform.
func (needsCgo) Is(target error) bool { return target == fido.ErrUnsupportedPlatform }

// Opener opens keys with settings. The zero value is ready to use and is
// what [Open] uses.
type Opener struct {
	// Prompt reaches the person at the key; see the package doc for when
	// libfido2 lets Touch be called. Zero: no prompts.
	Prompt fido.Prompt
}

// Open opens the key at path with default settings; see [Opener.Open].
func Open(ctx context.Context, path string) (*Device, error) {
	return (&Opener{}).Open(ctx, path)
}

// notSupported is the error of an operation go-libfido2 has no call for.
func notSupported(op string) error {
	return fmt.Errorf("fido/libfido2: %s: %w (go-libfido2 has no call for it)", op, fido.ErrNotSupported)
}

// errClosed is returned by operations on a closed Device.
var errClosed = errors.New("fido/libfido2: device is closed")
