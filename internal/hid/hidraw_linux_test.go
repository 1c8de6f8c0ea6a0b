package hid

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeHidraw describes one hidraw device in a fake sysfs tree.
type fakeHidraw struct {
	name   string            // hidrawN
	devDir string            // the HID device's directory under devices/
	desc   []byte            // report_descriptor; nil for none
	uevent string            // the HID device's uevent; "" for none
	usbDir string            // the USB device's directory under devices/, or ""
	usb    map[string]string // its attribute files
}

// writeFile writes a file, creating its directory.
func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// relSymlink makes link point at target with a relative path, as sysfs does.
func relSymlink(t *testing.T, target, link string) {
	t.Helper()
	rel, err := filepath.Rel(filepath.Dir(link), target)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(link), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(rel, link); err != nil {
		t.Fatal(err)
	}
}

// makeSysfs builds the devices in a fresh tree laid out as Linux does:
// /sys/class/hidraw/hidrawN links to devices/.../<HID device>/hidraw/hidrawN,
// whose device link points back up to the HID device, which sits under a
// USB interface under the USB device. It returns the class directory.
func makeSysfs(t *testing.T, devs ...fakeHidraw) string {
	t.Helper()
	root := t.TempDir()
	class := filepath.Join(root, "class", "hidraw")
	if err := os.MkdirAll(class, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, d := range devs {
		hid := filepath.Join(root, "devices", d.devDir)
		if err := os.MkdirAll(hid, 0o755); err != nil {
			t.Fatal(err)
		}
		if d.desc != nil {
			writeFile(t, filepath.Join(hid, "report_descriptor"), d.desc)
		}
		if d.uevent != "" {
			writeFile(t, filepath.Join(hid, "uevent"), []byte(d.uevent))
		}
		classDev := filepath.Join(hid, "hidraw", d.name)
		writeFile(t, filepath.Join(classDev, "dev"), []byte("242:0\n"))
		relSymlink(t, hid, filepath.Join(classDev, "device"))
		relSymlink(t, classDev, filepath.Join(class, d.name))
		for file, v := range d.usb {
			writeFile(t, filepath.Join(root, "devices", d.usbDir, file), []byte(v+"\n"))
		}
	}
	return class
}

const yubiKeyUSB = "pci0000:00/0000:00:14.0/usb1/1-2"

var yubiKeyStrings = map[string]string{
	"idVendor": "1050", "idProduct": "0407",
	"manufacturer": "Yubico", "product": "YubiKey OTP+FIDO+CCID", "serial": "23456789",
}

func TestEnumerate(t *testing.T) {
	tests := []struct {
		name string
		devs []fakeHidraw
		want []DeviceInfo
	}{
		{
			name: "YubiKey with USB strings",
			devs: []fakeHidraw{{
				name: "hidraw3", devDir: yubiKeyUSB + "/1-2:1.1/0003:1050:0407.0003", desc: FIDOReportDescriptor,
				uevent: "DRIVER=hid-generic\nHID_ID=0003:00001050:00000407\nHID_NAME=Yubico YubiKey OTP+FIDO+CCID\nHID_PHYS=usb-0000:00:14.0-2/input1\nHID_UNIQ=\nMODALIAS=hid:b0003g0001v00001050p00000407\n",
				usbDir: yubiKeyUSB, usb: yubiKeyStrings,
			}},
			want: []DeviceInfo{{Path: "/dev/hidraw3", VendorID: 0x1050, ProductID: 0x0407,
				Manufacturer: "Yubico", Product: "YubiKey OTP+FIDO+CCID", Serial: "23456789"}},
		},
		{
			name: "keyboard skipped",
			devs: []fakeHidraw{{
				name: "hidraw0", devDir: "pci0000:00/usb1/1-1/1-1:1.0/0003:046D:C31C.0001", desc: keyboardDescriptor,
				uevent: "HID_ID=0003:0000046D:0000C31C\nHID_NAME=Logitech USB Keyboard\n",
				usbDir: "pci0000:00/usb1/1-1", usb: map[string]string{"idVendor": "046d", "product": "USB Keyboard"},
			}},
		},
		{
			name: "no USB parent",
			devs: []fakeHidraw{{
				name: "hidraw1", devDir: "virtual/misc/uhid/0003:1209:F1D0.0002", desc: FIDOReportDescriptor,
				uevent: "HID_ID=0003:00001209:0000F1D0\nHID_NAME=fidokit virtual key\nHID_UNIQ=fidokit-1\n",
			}},
			want: []DeviceInfo{{Path: "/dev/hidraw1", VendorID: 0x1209, ProductID: 0xF1D0, Product: "fidokit virtual key", Serial: "fidokit-1"}},
		},
		{
			name: "Bluetooth key behind a USB adapter keeps its own strings",
			devs: []fakeHidraw{{
				name: "hidraw4", devDir: "pci0000:00/usb1/1-5/1-5:1.0/0005:096E:0858.0004", desc: FIDOReportDescriptor,
				uevent: "HID_ID=0005:0000096E:00000858\nHID_NAME=FT BLE key\nHID_UNIQ=aa:bb:cc:dd:ee:ff\n",
				usbDir: "pci0000:00/usb1/1-5", usb: map[string]string{"idVendor": "8087", "manufacturer": "Intel", "product": "Bluetooth adapter"},
			}},
			want: []DeviceInfo{{Path: "/dev/hidraw4", VendorID: 0x096E, ProductID: 0x0858, Product: "FT BLE key", Serial: "aa:bb:cc:dd:ee:ff"}},
		},
		{
			name: "USB parent of another vendor ignored",
			devs: []fakeHidraw{{
				name: "hidraw5", devDir: "pci0000:00/usb1/1-6/1-6:1.0/0003:20A0:42B1.0005", desc: FIDOReportDescriptor,
				uevent: "HID_ID=0003:000020A0:000042B1\nHID_NAME=Nitrokey FIDO2\n",
				usbDir: "pci0000:00/usb1/1-6", usb: map[string]string{"idVendor": "05e3", "product": "USB2.0 Hub"},
			}},
			want: []DeviceInfo{{Path: "/dev/hidraw5", VendorID: 0x20A0, ProductID: 0x42B1, Product: "Nitrokey FIDO2"}},
		},
		{
			name: "no uevent, IDs from the USB device",
			devs: []fakeHidraw{{
				name: "hidraw2", devDir: yubiKeyUSB + "/1-2:1.1/0003:1050:0407.0006", desc: FIDOReportDescriptor,
				usbDir: yubiKeyUSB, usb: yubiKeyStrings,
			}},
			want: []DeviceInfo{{Path: "/dev/hidraw2", VendorID: 0x1050, ProductID: 0x0407,
				Manufacturer: "Yubico", Product: "YubiKey OTP+FIDO+CCID", Serial: "23456789"}},
		},
		{
			name: "garbage and missing descriptors skipped",
			devs: []fakeHidraw{
				{name: "hidraw6", devDir: "virtual/misc/uhid/0003:0001:0001.0007", desc: []byte{0x06, 0xd0}, uevent: "HID_ID=0003:00000001:00000001\n"},
				{name: "hidraw7", devDir: "virtual/misc/uhid/0003:0001:0001.0008", desc: bytes.Repeat([]byte{0xff}, 64)},
				{name: "hidraw8", devDir: "virtual/misc/uhid/0003:0001:0001.0009", uevent: "HID_ID=0003:00000001:00000001\n"},
			},
		},
		{
			name: "sorted by device number",
			devs: []fakeHidraw{
				{name: "hidraw10", devDir: "virtual/misc/uhid/0003:1209:F1D0.000A", desc: FIDOReportDescriptor, uevent: "HID_ID=0003:00001209:0000F1D0\n"},
				{name: "hidraw9", devDir: "virtual/misc/uhid/0003:1209:F1D0.000B", desc: FIDOReportDescriptor, uevent: "HID_ID=0003:00001209:0000F1D0\n"},
				{name: "hidraw1", devDir: "virtual/misc/uhid/0003:1209:F1D0.000C", desc: FIDOReportDescriptor, uevent: "HID_ID=0003:00001209:0000F1D0\n"},
			},
			want: []DeviceInfo{
				{Path: "/dev/hidraw1", VendorID: 0x1209, ProductID: 0xF1D0},
				{Path: "/dev/hidraw9", VendorID: 0x1209, ProductID: 0xF1D0},
				{Path: "/dev/hidraw10", VendorID: 0x1209, ProductID: 0xF1D0},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			class := makeSysfs(t, tt.devs...)
			got, err := enumerate(class, "/dev")
			if err != nil {
				t.Fatalf("enumerate: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d devices %+v, want %+v", len(got), got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("device %d = %+v\nwant       %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestEnumerateClassDir(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	writeFile(t, notDir, nil)
	tests := []struct {
		name    string
		class   string
		wantErr bool
	}{
		{"missing class directory means no devices", filepath.Join(dir, "missing"), false},
		{"empty class directory", dir, false},
		{"unreadable class directory", notDir, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := enumerate(tt.class, "/dev")
			if (err != nil) != tt.wantErr || got != nil {
				t.Fatalf("enumerate = %v, %v; want nil, error %v", got, err, tt.wantErr)
			}
		})
	}
	// This machine's own /sys: whatever is there, listing must not fail.
	if _, err := Enumerate(); err != nil {
		t.Errorf("Enumerate: %v", err)
	}
}

// fifo makes a FIFO; opened read-write, it loops writes back to reads
// through the kernel and is pollable, like a hidraw node.
func fifo(t *testing.T, mode uint32) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hidraw0")
	if err := unix.Mkfifo(path, mode); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	return path
}

func TestOpenHidraw(t *testing.T) {
	c, err := OpenHidraw(fifo(t, 0o600))
	if err != nil {
		t.Fatalf("OpenHidraw: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	if _, ok := c.(*os.File); !ok {
		t.Fatalf("Conn is %T, want *os.File", c)
	}
	in := testReport(ReportSize, 4)
	if n, err := c.Write(in); err != nil || n != ReportSize {
		t.Fatalf("Write = %d, %v", n, err)
	}
	buf := make([]byte, ReportSize)
	if n, err := c.Read(buf); err != nil || !bytes.Equal(buf[:n], in) {
		t.Fatalf("Read = %x, %v", buf[:n], err)
	}

	// The poller makes deadlines work: one wakes a blocked Read.
	r := goRead(c, buf)
	stillBlocked(t, r, "Read")
	if err := c.SetReadDeadline(time.Unix(1, 0)); err != nil {
		t.Fatalf("SetReadDeadline: %v", err)
	}
	if got := awaitResult(t, r, "Read"); !IsTimeout(got.err) || !errors.Is(got.err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past the deadline = %v, want a timeout", got.err)
	}
	// Clearing it makes reports readable again.
	c.SetReadDeadline(time.Time{})
	c.Write(in)
	if _, err := c.Read(buf); err != nil {
		t.Fatalf("Read after clearing the deadline: %v", err)
	}
}

// TestOpenHidrawCharDevice checks on a character device, as hidraw nodes
// are, that Go's poller takes it so a deadline interrupts a blocked Read.
func TestOpenHidrawCharDevice(t *testing.T) {
	c, err := OpenHidraw("/dev/ptmx") // a pseudo-terminal master
	if err != nil {
		t.Skipf("no /dev/ptmx: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	r := goRead(c, make([]byte, ReportSize))
	if got := awaitResult(t, r, "Read"); !IsTimeout(got.err) {
		t.Fatalf("Read past the deadline = %v, want a timeout", got.err)
	}
}

func TestOpenHidrawErrors(t *testing.T) {
	dir := t.TempDir()
	regular := filepath.Join(dir, "regular")
	writeFile(t, regular, []byte("not a device"))
	tests := []struct {
		name string
		path string
		is   error // nil: any error
	}{
		{"missing", filepath.Join(dir, "missing"), fs.ErrNotExist},
		{"regular file", regular, nil},
		{"directory", dir, nil},
	}
	if os.Geteuid() != 0 { // root opens anything
		tests = append(tests, struct {
			name string
			path string
			is   error
		}{"no permission", fifo(t, 0), fs.ErrPermission})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := OpenHidraw(tt.path)
			if err == nil {
				c.Close()
				t.Fatal("OpenHidraw succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
		})
	}
}
