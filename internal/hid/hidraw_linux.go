package hid

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// DeviceInfo describes a FIDO HID device that Enumerate found.
type DeviceInfo struct {
	// Path is the device node to pass to OpenHidraw, such as /dev/hidraw3.
	Path string
	// VendorID and ProductID are the USB (or Bluetooth) IDs; zero when
	// the kernel does not say.
	VendorID, ProductID uint16
	// Manufacturer, Product and Serial are the device's own USB strings
	// when it is on USB; otherwise Product is the kernel's HID name and
	// Serial its unique ID (HID_UNIQ). Any may be empty.
	Manufacturer, Product, Serial string
}

// Where Linux exposes hidraw devices.
const (
	sysfsHidrawDir = "/sys/class/hidraw"
	devNodeDir     = "/dev"
)

// busUSB is BUS_USB in the bus field of the kernel's HID_ID.
const busUSB = 0x0003

// Enumerate lists the FIDO devices among the hidraw devices, in device
// number order. It reads each device's report descriptor, IDs and strings
// from sysfs, so it needs no access to the device nodes, no ioctl and no
// libudev. A device whose sysfs entries cannot be read is left out. With
// no hidraw devices at all it returns nil and no error.
func Enumerate() ([]DeviceInfo, error) { return enumerate(sysfsHidrawDir, devNodeDir) }

// enumerate is Enumerate with its directories as parameters, so tests can
// point it at a fake sysfs tree.
func enumerate(sysClassHidraw, devDir string) ([]DeviceInfo, error) {
	entries, err := os.ReadDir(sysClassHidraw)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no hidraw driver loaded or no HID device yet
	}
	if err != nil {
		return nil, fmt.Errorf("hid: listing hidraw devices: %w", err)
	}
	var out []DeviceInfo
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "hidraw") {
			continue
		}
		dev := filepath.Join(sysClassHidraw, name, "device")
		if !isFIDODevice(dev) {
			continue
		}
		info := DeviceInfo{Path: filepath.Join(devDir, name)}
		bus, hasBus := readUevent(filepath.Join(dev, "uevent"), &info)
		if !hasBus || bus == busUSB {
			readUSBStrings(dev, &info)
		}
		out = append(out, info)
	}
	// hidraw2 before hidraw10: the names differ only in the number.
	slices.SortFunc(out, func(a, b DeviceInfo) int {
		return cmp.Or(cmp.Compare(len(a.Path), len(b.Path)), strings.Compare(a.Path, b.Path))
	})
	return out, nil
}

// isFIDODevice reports whether the HID device at the sysfs directory dev
// has a FIDO report descriptor.
func isFIDODevice(dev string) bool {
	b, err := readSmallFile(filepath.Join(dev, "report_descriptor"), maxDescriptorLen)
	if err != nil {
		return false
	}
	ri, err := ParseReportDescriptor(b)
	return err == nil && ri.IsFIDO()
}

// readSmallFile reads at most limit bytes of a sysfs attribute; a larger
// file is an error, not a truncated read.
func readSmallFile(path string, limit int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(b) > limit {
		return nil, fmt.Errorf("hid: %s is larger than %d bytes", path, limit)
	}
	return b, nil
}

// readUevent fills info from a HID device's uevent: HID_ID (bus, vendor
// and product in hex, as in 0003:00001050:00000407), HID_NAME and HID_UNIQ.
// It returns the bus, and whether HID_ID gave one.
func readUevent(path string, info *DeviceInfo) (bus uint16, ok bool) {
	b, err := readSmallFile(path, 4096)
	if err != nil {
		return 0, false
	}
	for line := range strings.Lines(string(b)) {
		key, val, found := strings.Cut(strings.TrimSuffix(line, "\n"), "=")
		if !found {
			continue
		}
		switch key {
		case "HID_ID":
			f := strings.Split(val, ":")
			if len(f) != 3 {
				continue
			}
			busID, err1 := strconv.ParseUint(f[0], 16, 16)
			vid, err2 := strconv.ParseUint(f[1], 16, 32)
			pid, err3 := strconv.ParseUint(f[2], 16, 32)
			if err1 != nil || err2 != nil || err3 != nil {
				continue
			}
			// IDs are 32-bit in the kernel but 16-bit on every bus that
			// carries FIDO keys.
			bus, ok = uint16(busID), true
			info.VendorID, info.ProductID = uint16(vid), uint16(pid)
		case "HID_NAME":
			info.Product = val
		case "HID_UNIQ":
			info.Serial = val
		}
	}
	return bus, ok
}

// maxUSBWalk bounds the walk from a HID device up to its USB device. In
// sysfs the HID device sits under the USB interface, which sits under the
// USB device: two steps.
const maxUSBWalk = 3

// readUSBStrings overrides info's IDs and strings with the USB device's
// own, found by walking up from the HID device's resolved sysfs directory
// to the first directory with an idVendor file. A USB device whose
// idVendor differs from the HID vendor ID is some other device, such as a
// hub, and is ignored.
func readUSBStrings(dev string, info *DeviceInfo) {
	dir, err := filepath.EvalSymlinks(dev)
	if err != nil {
		return
	}
	for range maxUSBWalk {
		dir = filepath.Dir(dir)
		if dir == filepath.Dir(dir) {
			return // reached the root
		}
		b, err := readSmallFile(filepath.Join(dir, "idVendor"), 64)
		if err != nil {
			continue
		}
		vid, err := strconv.ParseUint(strings.TrimSpace(string(b)), 16, 16)
		if err != nil || (info.VendorID != 0 && uint16(vid) != info.VendorID) {
			return
		}
		info.VendorID = uint16(vid)
		if b, err := readSmallFile(filepath.Join(dir, "idProduct"), 64); err == nil {
			if pid, err := strconv.ParseUint(strings.TrimSpace(string(b)), 16, 16); err == nil && info.ProductID == 0 {
				info.ProductID = uint16(pid)
			}
		}
		for _, s := range []struct {
			file string
			dst  *string
		}{
			{"manufacturer", &info.Manufacturer},
			{"product", &info.Product},
			{"serial", &info.Serial},
		} {
			if b, err := readSmallFile(filepath.Join(dir, s.file), 1024); err == nil {
				if v := strings.TrimSpace(string(b)); v != "" {
					*s.dst = v
				}
			}
		}
		return
	}
}

// OpenHidraw opens a hidraw device node, such as /dev/hidraw3, for reading
// and writing reports. The returned Conn is an *os.File registered with
// Go's poller, since character devices are pollable on Linux, so
// SetReadDeadline interrupts a blocked Read. Without access to the node,
// the error matches fs.ErrPermission.
func OpenHidraw(path string) (Conn, error) {
	f, err := os.OpenFile(path, os.O_RDWR|unix.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("hid: opening %s: %w (a udev rule must give your user access to FIDO hidraw devices; see the README)", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("hid: opening %s: %w", path, err)
	}
	// A regular file or directory opens fine but would read EOF at once
	// and ignore deadlines; say so now instead.
	if fi, err := f.Stat(); err != nil || fi.Mode().IsRegular() || fi.IsDir() {
		f.Close()
		if err == nil {
			err = errors.New("not a device")
		}
		return nil, fmt.Errorf("hid: opening %s: %w", path, err)
	}
	return f, nil
}
