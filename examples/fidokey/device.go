package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/libfido2"
)

// key is an open security key, from either backend. The management
// interfaces (fido.PINManager and the others) and Wink and Reset are found
// by type assertion, as package fido documents.
type key interface {
	fido.Authenticator
	DeviceInfo() fido.DeviceInfo
}

type (
	winker   interface{ Wink(context.Context) error }
	resetter interface{ Reset(context.Context) error }
)

// unsupported rewords a backend's "not supported" error: through
// libfido2 it means go-libfido2 has no call for the operation (the
// backend's own text says "by this key").
func (a *app) unsupported(cmd string, err error) error {
	if a.libfido2 && errors.Is(err, fido.ErrNotSupported) {
		return fmt.Errorf("%s: not supported by libfido2: go-libfido2 has no call for it", cmd)
	}
	return err
}

// virtualProduct is how package fido names a virtual key.
const virtualProduct = "fidokit virtual key"

// backendName names the backend in messages.
func (a *app) backendName() string {
	if a.libfido2 {
		return "libfido2"
	}
	return "fidokit's pure-Go client"
}

// virtualKeys returns the sockets FIDOKIT_VIRTUAL_KEYS names, sorted as
// fido.Devices lists them, or an error naming an entry that is not a
// socket with a virtual key listening on it. (fido.Devices skips such
// entries silently.)
func (a *app) virtualKeys() ([]string, error) {
	var out []string
	for _, p := range filepath.SplitList(a.getenv(fido.VirtualKeysEnv)) {
		if p == "" {
			continue
		}
		if err := checkSocket(p); err != nil {
			return nil, noKey("%s names %s", fido.VirtualKeysEnv, err)
		}
		out = append(out, p)
	}
	sort.Strings(out)
	return out, nil
}

// checkSocket reports why path is not a socket a virtual key listens on.
// Its errors read after "path": "x.sock, which does not exist".
func checkSocket(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%s, which does not exist", path)
	case err != nil:
		return fmt.Errorf("%s, which cannot be read: %v", path, err)
	case fi.Mode().Type() != fs.ModeSocket:
		return fmt.Errorf("%s, which is not a socket", path)
	}
	c, err := net.DialTimeout("unixpacket", path, 2*time.Second)
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%s, where no virtual key is listening", path)
	case err != nil:
		return fmt.Errorf("%s, which is not a virtual key's socket (%v)", path, unwrapAll(err))
	}
	c.Close()
	return nil
}

// devices lists the keys the backend finds, then the virtual keys.
func (a *app) devices() ([]fido.DeviceInfo, error) {
	virt, err := a.virtualKeys()
	if err != nil {
		return nil, err
	}
	if !a.libfido2 {
		// fido.Devices lists the same sockets after the attached keys.
		return fido.Devices(a.ctx)
	}
	out, err := libfido2.Devices(a.ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range virt {
		out = append(out, fido.DeviceInfo{Path: p, Product: virtualProduct, Virtual: true})
	}
	return out, nil
}

// chooseDevice returns the key to use: -device, or the only key found.
func (a *app) chooseDevice() (fido.DeviceInfo, error) {
	if a.device != "" {
		if err := preflight(a.device); err != nil {
			return fido.DeviceInfo{}, err
		}
		info := fido.DeviceInfo{Path: a.device}
		if fi, err := os.Stat(a.device); err == nil && fi.Mode().Type() == fs.ModeSocket {
			info.Virtual, info.Product = true, virtualProduct
		} else if !a.libfido2 {
			// Take the USB strings from the listing, if it has the path.
			if list, err := fido.Devices(a.ctx); err == nil {
				for _, d := range list {
					if d.Path == a.device {
						info = d
					}
				}
			}
		}
		return info, nil
	}
	list, err := a.devices()
	if err != nil {
		return fido.DeviceInfo{}, err
	}
	switch len(list) {
	case 0:
		return fido.DeviceInfo{}, noKey("no security key found: plug one in, or name a virtual key's socket in %s", fido.VirtualKeysEnv)
	case 1:
		return list[0], nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d security keys found; choose one with -device:", len(list))
	for _, d := range list {
		fmt.Fprintf(&b, "\n  %s", describe(d))
	}
	return fido.DeviceInfo{}, &usageError{msg: b.String()}
}

// preflight checks that path can be a key, so that a missing file or
// one that is no key gets one plain sentence, whichever the backend.
func preflight(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return noKey("-device %s does not exist", path)
	case err != nil:
		return fmt.Errorf("-device %s: %w", path, unwrapAll(err))
	}
	switch t := fi.Mode().Type(); {
	case t == fs.ModeSocket:
		if err := checkSocket(path); err != nil {
			return noKey("-device %s", err)
		}
	case t == fs.ModeDevice|fs.ModeCharDevice:
		// A hidraw node, or some other character device: opening tells.
	case fi.IsDir():
		return noKey("-device %s is a directory, not a security key", path)
	case fi.Mode().IsRegular():
		return noKey("-device %s is a regular file, not a security key", path)
	default:
		return noKey("-device %s is not a security key (%s)", path, t)
	}
	return nil
}

// open opens the chosen key with the command's prompts.
func (a *app) open() (key, fido.DeviceInfo, error) {
	info, err := a.chooseDevice()
	if err != nil {
		return nil, info, err
	}
	k, err := a.openDevice(info)
	return k, info, err
}

// openDevice opens the key info describes.
func (a *app) openDevice(info fido.DeviceInfo) (key, error) {
	var err error
	prompt := fido.Prompt{PIN: a.promptPIN, Touch: a.promptTouch}
	var k key
	if a.libfido2 {
		var d *libfido2.Device
		d, err = (&libfido2.Opener{Prompt: prompt}).Open(a.ctx, info.Path)
		if err == nil {
			k = d
		}
	} else {
		var d *fido.Device
		d, err = (&fido.Opener{Prompt: prompt}).Open(a.ctx, info.Path)
		if err == nil {
			k = d
		}
	}
	if err != nil {
		return nil, a.openError(info.Path, err)
	}
	return k, nil
}

// openError says once why path did not open. Package fido wraps its
// transport's errors ("fido: opening P: hid: opening P: …"), so only the
// cause is kept.
func (a *app) openError(path string, err error) error {
	switch {
	case a.ctx.Err() != nil:
		return err
	case errors.Is(err, libfido2.ErrNeedsCgo):
		return err
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("cannot open %s: permission denied; a udev rule must give your user access to FIDO hidraw devices (see the README)", path)
	case a.libfido2:
		// libfido2's reasons are in its text; they do not repeat.
		return err
	}
	return noKey("%s is not a security key: it did not answer as one (%v)", path, unwrapAll(err))
}

// unwrapAll returns the innermost error that err wraps.
func unwrapAll(err error) error {
	for {
		next := errors.Unwrap(err)
		if next == nil {
			return err
		}
		err = next
	}
}

// promptTouch is the Prompt.Touch callback.
func (a *app) promptTouch() {
	msg := a.touch
	if msg == "" {
		msg = "Touch your security key."
	}
	a.note("%s", msg)
}

// describe is one line about a key, for list and for errors listing keys.
func describe(d fido.DeviceInfo) string {
	var parts []string
	parts = append(parts, d.Path)
	if d.VendorID != 0 || d.ProductID != 0 {
		parts = append(parts, fmt.Sprintf("%04x:%04x", d.VendorID, d.ProductID))
	}
	name := strings.TrimSpace(d.Manufacturer + " " + d.Product)
	if name != "" {
		parts = append(parts, name)
	}
	if d.Serial != "" {
		parts = append(parts, "serial "+d.Serial)
	}
	return strings.Join(parts, "  ")
}

// deviceJSON is the "device" object of every document.
type deviceJSON struct {
	Path         string `json:"path"`
	Virtual      bool   `json:"virtual"`
	VendorID     uint16 `json:"vendorId"`
	ProductID    uint16 `json:"productId"`
	Manufacturer string `json:"manufacturer"`
	Product      string `json:"product"`
	Serial       string `json:"serial"`
}

func deviceDoc(d fido.DeviceInfo) deviceJSON {
	return deviceJSON{
		Path: d.Path, Virtual: d.Virtual, VendorID: d.VendorID, ProductID: d.ProductID,
		Manufacturer: d.Manufacturer, Product: d.Product, Serial: d.Serial,
	}
}
