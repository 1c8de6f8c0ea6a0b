package fido

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/fidokit/fidokit/internal/hid"
)

// VirtualKeysEnv names the environment variable that lists virtual keys'
// socket paths, separated by the OS path list separator (':' on Linux).
// [Devices] lists them after the attached keys, so a program run against
// a virtual key (github.com/fidokit/fidokit/examples/virtualkey) finds it
// as it would find a real one.
const VirtualKeysEnv = "FIDOKIT_VIRTUAL_KEYS"

// DeviceInfo describes a key found by [Devices].
type DeviceInfo struct {
	// Path opens the key with [Open]: /dev/hidrawN, or a virtual key's
	// socket path.
	Path string
	// VendorID and ProductID are the USB IDs; zero for virtual keys.
	VendorID, ProductID uint16
	// Manufacturer, Product and Serial are the USB strings, where known.
	Manufacturer, Product, Serial string
	// Virtual is true for a virtual key's socket.
	Virtual bool
}

// ReportConn carries CTAPHID reports with hidraw framing: each Write is a
// 65-byte output report (report ID 0, then 64 bytes), each Read returns one
// 64-byte input report, and SetReadDeadline interrupts a Read, as on
// *os.File. It is the lowest seam of the client: an *os.File for
// /dev/hidrawN, a *net.UnixConn for a virtual key's socket, or any
// transport of your own.
type ReportConn = hid.Conn

// Devices lists the FIDO security keys attached over USB HID, and the
// virtual keys named in the FIDOKIT_VIRTUAL_KEYS environment variable. It
// returns an empty list, not an error, when there are none.
func Devices(ctx context.Context) ([]DeviceInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []DeviceInfo
	hw, err := hid.Enumerate()
	if err != nil && !errors.Is(err, hid.ErrUnsupported) {
		return nil, fmt.Errorf("fido: listing HID devices: %w", err)
	}
	for _, d := range hw {
		out = append(out, DeviceInfo{
			Path: d.Path, VendorID: d.VendorID, ProductID: d.ProductID,
			Manufacturer: d.Manufacturer, Product: d.Product, Serial: d.Serial,
		})
	}
	var virt []string
	for _, p := range filepath.SplitList(os.Getenv(VirtualKeysEnv)) {
		if p != "" && hid.IsSocket(p) {
			virt = append(virt, p)
		}
	}
	sort.Strings(virt)
	for _, p := range virt {
		out = append(out, DeviceInfo{Path: p, Product: "fidokit virtual key", Virtual: true})
	}
	return out, nil
}

// Opener opens keys with settings. The zero value is ready to use and is
// what [Open] uses.
type Opener struct {
	// Prompt reaches the person at the key. Zero: no prompts.
	Prompt Prompt
	// IdleTimeout bounds the key's silence within one operation. A key
	// sends KEEPALIVE every 100 ms while it waits for a touch, so silence
	// means it is gone: the operation fails with ErrDeviceGone. Only
	// reports on the operation's own channel count; another host's
	// traffic on the key does not, and neither does time in which this
	// process itself was not running. Zero means 3 seconds.
	IdleTimeout time.Duration
	// MaxOperationTime bounds each operation on a Device (a method call,
	// such as GetAssertion, from start to return, touch waits and PIN
	// prompts included) however long the key keeps sending KEEPALIVE, so
	// that a key which claims to work forever cannot hang a caller whose
	// context has no deadline. Past it the key is sent CTAPHID_CANCEL and
	// the operation fails with an error matching ErrOperationTimeout (and
	// context.DeadlineExceeded). The caller's context can only shorten
	// it. Zero means DefaultMaxOperationTime, 2 minutes: longer than keys
	// wait for a touch (about 30 seconds).
	MaxOperationTime time.Duration
}

// DefaultMaxOperationTime is what a zero Opener.MaxOperationTime means.
const DefaultMaxOperationTime = 2 * time.Minute

// Open opens the key at path with default settings; see [Opener.Open].
func Open(ctx context.Context, path string) (*Device, error) {
	return (&Opener{}).Open(ctx, path)
}

// Open opens the key at path: a hidraw node such as /dev/hidraw3, or a
// virtual key's socket. Opening allocates a CTAPHID channel and reads the
// key's info; on Linux the caller needs read and write access to the node
// (see the README for the udev rule). A missing path matches ErrNoDevice.
func (o *Opener) Open(ctx context.Context, path string) (*Device, error) {
	var (
		conn hid.Conn
		err  error
		info = DeviceInfo{Path: path}
	)
	switch {
	case hid.IsSocket(path):
		info.Virtual = true
		info.Product = "fidokit virtual key"
		conn, err = hid.Dial(ctx, path)
	default:
		if _, serr := os.Stat(path); errors.Is(serr, os.ErrNotExist) {
			return nil, fmt.Errorf("opening %s: %w", path, ErrNoDevice)
		}
		conn, err = hid.OpenHidraw(path)
		if errors.Is(err, hid.ErrUnsupported) {
			err = ErrUnsupportedPlatform
		}
	}
	if err != nil {
		return nil, fmt.Errorf("fido: opening %s: %w", path, err)
	}
	return o.OpenConn(ctx, conn, info)
}

// OpenConn opens a key over an already-open report connection, which the
// returned Device owns and closes. info describes the key; only Path is
// used, in errors.
func (o *Opener) OpenConn(ctx context.Context, conn ReportConn, info DeviceInfo) (*Device, error) {
	ch, err := hid.Open(ctx, conn)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("fido: opening %s: %w", info.Path, err)
	}
	ch.IdleTimeout = o.IdleTimeout
	d := &Device{ch: ch, info: info, prompt: o.Prompt, maxOp: o.MaxOperationTime}
	if d.maxOp <= 0 {
		d.maxOp = DefaultMaxOperationTime
	}
	init := ch.Info()
	d.cbor = init.Capabilities&hid.CapCBOR != 0
	return d, nil
}
