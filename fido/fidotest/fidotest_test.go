package fidotest_test

import (
	"flag"
	"testing"

	"github.com/fidokit/fidokit/fido/fidotest"
)

// wipeKey allows the hardware tier's destructive steps on the key named
// by FIDOKIT_TEST_DEVICE. Never set by default.
var wipeKey = flag.Bool("fido-wipe-key", false, "let the hardware tier reset the key in "+fidotest.DeviceEnv+" and change its PIN (erases every credential on it)")

// The pure-Go client, reaching the virtual key as a program reaches a real
// one: through a socket with hidraw framing.
func TestSocket(t *testing.T) { fidotest.Run(t, fidotest.OpenSocket, nil) }

// The pure-Go client on a key plugged in in process.
func TestInProcess(t *testing.T) { fidotest.Run(t, fidotest.OpenInProcess, nil) }

// TestHardware is the hardware tier: the suite against a real key, when
// FIDOKIT_TEST_DEVICE names one, destructive steps only with
// -fido-wipe-key:
//
//	FIDOKIT_TEST_DEVICE=/dev/hidraw3 go test -run TestHardware -v ./fido/fidotest/
//	FIDOKIT_TEST_DEVICE=/dev/hidraw3 go test -run TestHardware -v ./fido/fidotest/ -fido-wipe-key
func TestHardware(t *testing.T) {
	a := fidotest.OpenHardware(t)
	fidotest.RunHardware(t, a, fidotest.HardwareOptions{Wipe: *wipeKey})
}

// The hardware tier itself is tested on a fresh virtual key on a socket,
// opened by path as a real key is, with every destructive step: a fresh
// key is within its reset window.
func TestHardwareTierOnVirtualKey(t *testing.T) {
	path := fidotest.Serve(t, fidotest.NewKey(t, nil))
	t.Setenv(fidotest.DeviceEnv, path)
	t.Setenv(fidotest.PINEnv, "fidotest-pin")
	a := fidotest.OpenHardware(t)
	fidotest.RunHardware(t, a, fidotest.HardwareOptions{Wipe: true})
}
