//go:build !cgo

package libfido2_test

import (
	"context"
	"errors"
	"testing"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/libfido2"
)

// Without cgo the package still builds, and says why nothing works.
func TestNeedsCgo(t *testing.T) {
	ctx := context.Background()
	_, err := libfido2.Open(ctx, "/dev/hidraw0")
	if !errors.Is(err, libfido2.ErrNeedsCgo) || !errors.Is(err, fido.ErrUnsupportedPlatform) {
		t.Errorf("Open: %v, want ErrNeedsCgo and ErrUnsupportedPlatform", err)
	}
	if _, err := libfido2.Devices(ctx); !errors.Is(err, libfido2.ErrNeedsCgo) {
		t.Errorf("Devices: %v, want ErrNeedsCgo", err)
	}
	var d libfido2.Device
	if _, err := d.Info(ctx); !errors.Is(err, libfido2.ErrNeedsCgo) {
		t.Errorf("Info: %v, want ErrNeedsCgo", err)
	}
}
