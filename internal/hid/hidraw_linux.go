package hid

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// DeviceInfo describes a FIDO HID device found by Enumerate.
type DeviceInfo struct {
	Path                          string
	VendorID, ProductID           uint16
	Manufacturer, Product, Serial string
}

// Enumerate lists FIDO devices among /sys/class/hidraw, reading each report
// descriptor from sysfs, so it needs no device access, no ioctl and no
// libudev.
func Enumerate() ([]DeviceInfo, error) { return enumerate("/sys/class/hidraw", "/dev") }

func enumerate(classDir, devDir string) ([]DeviceInfo, error) {
	entries, err := os.ReadDir(classDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no hidraw support or no HID devices
	}
	if err != nil {
		return nil, fmt.Errorf("hid: listing %s: %w", classDir, err)
	}
	var out []DeviceInfo
	for _, e := range entries {
		name := e.Name()
		if !strings.HasPrefix(name, "hidraw") {
			continue
		}
		dev := filepath.Join(classDir, name, "device")
		desc, err := os.ReadFile(filepath.Join(dev, "report_descriptor"))
		if err != nil {
			continue
		}
		ri, err := ParseReportDescriptor(desc)
		if err != nil || !ri.IsFIDO() {
			continue
		}
		info := DeviceInfo{Path: filepath.Join(devDir, name)}
		readUevent(filepath.Join(dev, "uevent"), &info)
		readUSBStrings(dev, &info)
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// readUevent fills IDs and names from HID_ID=bus:vendor:product, HID_NAME
// and HID_UNIQ.
func readUevent(path string, info *DeviceInfo) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		switch k {
		case "HID_ID":
			parts := strings.Split(v, ":")
			if len(parts) == 3 {
				vid, _ := strconv.ParseUint(parts[1], 16, 32)
				pid, _ := strconv.ParseUint(parts[2], 16, 32)
				info.VendorID, info.ProductID = uint16(vid), uint16(pid)
			}
		case "HID_NAME":
			info.Product = v
		case "HID_UNIQ":
			info.Serial = v
		}
	}
}

// readUSBStrings walks up from the HID device to its USB device, whose
// manufacturer, product and serial files are the key's own strings.
func readUSBStrings(dev string, info *DeviceInfo) {
	dir, err := filepath.EvalSymlinks(dev)
	if err != nil {
		return
	}
	for i := 0; i < 6 && dir != "/" && dir != "."; i++ {
		if _, err := os.Stat(filepath.Join(dir, "idVendor")); err == nil {
			read := func(name string, dst *string) {
				if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
					if s := strings.TrimSpace(string(b)); s != "" {
						*dst = s
					}
				}
			}
			read("manufacturer", &info.Manufacturer)
			read("product", &info.Product)
			read("serial", &info.Serial)
			return
		}
		dir = filepath.Dir(dir)
	}
}

// OpenHidraw opens a /dev/hidrawN node. The *os.File is registered with
// Go's poller (character devices are pollable), so SetReadDeadline works.
func OpenHidraw(path string) (Conn, error) {
	f, err := os.OpenFile(path, os.O_RDWR|syscall.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrPermission) {
		return nil, fmt.Errorf("hid: opening %s: %w (give your user access with a udev rule; see the README)", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("hid: opening %s: %w", path, err)
	}
	return f, nil
}
