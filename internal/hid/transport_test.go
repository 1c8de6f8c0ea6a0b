package hid

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPipeBoundariesAndOrder(t *testing.T) {
	host, dev := Pipe()
	defer host.Close()
	out := make([]byte, ReportSize+1)
	for i := range 10 {
		out[1] = byte(i)
		if _, err := host.Write(out); err != nil {
			t.Fatal(err)
		}
	}
	buf := make([]byte, 100)
	for i := range 10 {
		n, err := dev.Read(buf)
		if err != nil || n != ReportSize+1 || buf[1] != byte(i) {
			t.Fatalf("read %d: n=%d err=%v byte=%d", i, n, err, buf[1])
		}
	}
	if _, err := dev.Write(make([]byte, ReportSize)); err != nil {
		t.Fatal(err)
	}
	if _, err := host.Read(make([]byte, 10)); !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("short buffer: %v", err)
	}
}

func TestPipeDeadline(t *testing.T) {
	host, dev := Pipe()
	defer dev.Close()
	buf := make([]byte, ReportSize)
	errc := make(chan error, 1)
	go func() { _, err := host.Read(buf); errc <- err }()
	// A deadline set while a Read is blocked wakes it.
	time.Sleep(10 * time.Millisecond)
	host.SetReadDeadline(time.Now())
	select {
	case err := <-errc:
		if !IsTimeout(err) || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("err = %v, want a timeout", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("deadline did not wake Read")
	}
	// Clearing it lets reads succeed again.
	host.SetReadDeadline(time.Time{})
	dev.Write(make([]byte, ReportSize))
	if _, err := host.Read(buf); err != nil {
		t.Fatalf("after clearing the deadline: %v", err)
	}
	host.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := host.Read(buf); !IsTimeout(err) {
		t.Fatalf("future deadline: %v", err)
	}
}

func TestPipeClose(t *testing.T) {
	host, dev := Pipe()
	host.Write(make([]byte, ReportSize+1))
	host.Close()
	host.Close() // idempotent
	buf := make([]byte, ReportSize+1)
	if _, err := dev.Read(buf); err != nil {
		t.Fatalf("queued report lost at close: %v", err)
	}
	if _, err := dev.Read(buf); !errors.Is(err, io.EOF) {
		t.Fatalf("after close: %v, want EOF", err)
	}
	if _, err := dev.Write(buf[:ReportSize]); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after close: %v", err)
	}
}

func TestSocket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !IsSocket(path) || l.Addr() != path {
		t.Fatal("no socket at the path")
	}
	ctx := context.Background()
	host, err := Dial(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Close()
	dev, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()

	raw := host.(*net.UnixConn)
	buf := make([]byte, 128)
	// Wrong sizes and report IDs are reported, and the link stays up.
	for _, bad := range [][]byte{make([]byte, 64), make([]byte, 66), append([]byte{1}, make([]byte, 64)...)} {
		raw.Write(bad)
		_, err := dev.Read(buf)
		var fe *FrameError
		if !errors.As(err, &fe) {
			t.Fatalf("%d-byte datagram: err = %v, want *FrameError", len(bad), err)
		}
	}
	report := append([]byte{0}, bytes.Repeat([]byte{7}, 64)...)
	if _, err := host.Write(report); err != nil {
		t.Fatal(err)
	}
	if n, err := dev.Read(buf); err != nil || !bytes.Equal(buf[:n], report) {
		t.Fatalf("read %x, %v", buf[:n], err)
	}
	dev.Write(report[1:])
	host.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := host.Read(buf); err != nil || n != ReportSize {
		t.Fatalf("host read %d, %v", n, err)
	}
	host.Close()
	if _, err := dev.Read(buf); !errors.Is(err, io.EOF) {
		t.Fatalf("after host close: %v", err)
	}
	if _, err := Listen(path); err == nil {
		t.Fatal("second Listen on a live socket succeeded")
	}
}

func TestSocketStaleAndNonSocket(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "key.sock")
	l, err := Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	// Leave the file behind as a crashed server would.
	l.l.SetUnlinkOnClose(false)
	l.Close()
	l2, err := Listen(path)
	if err != nil {
		t.Fatalf("stale socket not replaced: %v", err)
	}
	l2.Close()

	file := filepath.Join(dir, "file")
	os.WriteFile(file, []byte("keep me"), 0o600)
	if _, err := Listen(file); err == nil {
		t.Fatal("Listen clobbered a regular file")
	}
	if b, _ := os.ReadFile(file); string(b) != "keep me" {
		t.Fatal("regular file changed")
	}
}

func TestParseReportDescriptor(t *testing.T) {
	keyboard := []byte{0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, 0x05, 0x07, 0x19, 0xe0, 0x29, 0xe7, 0x15, 0x00, 0x25, 0x01,
		0x75, 0x01, 0x95, 0x08, 0x81, 0x02, 0x95, 0x01, 0x75, 0x08, 0x81, 0x01, 0xc0}
	tests := []struct {
		name    string
		desc    []byte
		want    ReportInfo
		fido    bool
		wantErr bool
	}{
		{"FIDO", FIDOReportDescriptor, ReportInfo{0xF1D0, 1, 64, 64}, true, false},
		{"keyboard", keyboard, ReportInfo{UsagePage: 1, Usage: 6, InputReportLen: 2}, false, false},
		{"extended usage", []byte{0x0b, 0x01, 0x00, 0xd0, 0xf1, 0xa1, 0x01, 0xc0}, ReportInfo{UsagePage: 0xF1D0, Usage: 1}, true, false},
		{"long item skipped", append([]byte{0xfe, 0x02, 0x10, 0xaa, 0xbb}, FIDOReportDescriptor...), ReportInfo{0xF1D0, 1, 64, 64}, true, false},
		{"truncated item", FIDOReportDescriptor[:2], ReportInfo{}, false, true},
		{"truncated long item", []byte{0xfe, 0x05, 0x10, 0x00}, ReportInfo{}, false, true},
		{"no collection", []byte{0x06, 0xd0, 0xf1}, ReportInfo{}, false, true},
		{"end without collection", []byte{0xc0}, ReportInfo{}, false, true},
		{"empty", nil, ReportInfo{}, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseReportDescriptor(tt.desc)
			if tt.wantErr {
				if !errors.Is(err, ErrBadDescriptor) {
					t.Fatalf("err = %v, want ErrBadDescriptor", err)
				}
				return
			}
			if err != nil || got != tt.want || got.IsFIDO() != tt.fido {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

// FuzzParseReportDescriptor checks that any descriptor parses or fails
// with ErrBadDescriptor, with report lengths no larger than the descriptor
// could express.
func FuzzParseReportDescriptor(f *testing.F) {
	f.Add(FIDOReportDescriptor)
	f.Add([]byte{0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, 0xc0})
	f.Add([]byte{0xfe, 0xff, 0x00})
	f.Add([]byte{0x97, 0xff, 0xff, 0xff, 0xff, 0x77, 0xff, 0xff, 0xff, 0xff, 0xa1, 0x01, 0x81, 0x02, 0xc0})
	f.Fuzz(func(t *testing.T, desc []byte) {
		info, err := ParseReportDescriptor(desc)
		if err != nil {
			if !errors.Is(err, ErrBadDescriptor) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		limit := len(desc) * 0xFFFF
		if info.InputReportLen < 0 || info.OutputReportLen < 0 || info.InputReportLen > limit || info.OutputReportLen > limit {
			t.Fatalf("report lengths %d/%d from %d bytes", info.InputReportLen, info.OutputReportLen, len(desc))
		}
	})
}

// fakeHidraw builds /sys/class/hidraw/<name> as the kernel lays it out:
// the class entry's device link points into the device tree, whose USB
// ancestor holds idVendor and the strings.
func fakeHidraw(t *testing.T, root, name string, desc []byte, uevent string, usb map[string]string) {
	t.Helper()
	devTree := filepath.Join(root, "devices", "usb1", "1-1", "1-1:1.0", "0003:1050:0407."+name)
	if err := os.MkdirAll(devTree, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(devTree, "report_descriptor"), desc, 0o644)
	os.WriteFile(filepath.Join(devTree, "uevent"), []byte(uevent), 0o644)
	usbDir := filepath.Join(root, "devices", "usb1", "1-1")
	for k, v := range usb {
		os.WriteFile(filepath.Join(usbDir, k), []byte(v+"\n"), 0o644)
	}
	class := filepath.Join(root, "class", "hidraw", name)
	os.MkdirAll(class, 0o755)
	if err := os.Symlink(devTree, filepath.Join(class, "device")); err != nil {
		t.Fatal(err)
	}
}

func TestEnumerateSysfs(t *testing.T) {
	root := t.TempDir()
	fakeHidraw(t, root, "hidraw3", FIDOReportDescriptor,
		"HID_ID=0003:00001050:00000407\nHID_NAME=Yubico YubiKey OTP+FIDO+CCID\nHID_UNIQ=\n",
		map[string]string{"idVendor": "1050", "manufacturer": "Yubico", "product": "YubiKey OTP+FIDO+CCID", "serial": "12345678"})
	// A keyboard is not listed.
	fakeHidraw(t, t.TempDir(), "hidraw0", []byte{0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, 0xc0}, "HID_ID=0003:000046D:0000C31C\n", nil)
	kb := t.TempDir()
	fakeHidraw(t, kb, "hidraw1", []byte{0x05, 0x01, 0x09, 0x06, 0xa1, 0x01, 0xc0}, "HID_ID=0003:0000046D:0000C31C\n", nil)
	os.Symlink(filepath.Join(kb, "class", "hidraw", "hidraw1"), filepath.Join(root, "class", "hidraw", "hidraw1"))
	// A key with no USB parent (say, over Bluetooth) and a garbage descriptor.
	other := filepath.Join(root, "class", "hidraw", "hidraw5", "device")
	os.MkdirAll(other, 0o755)
	os.WriteFile(filepath.Join(other, "report_descriptor"), FIDOReportDescriptor, 0o644)
	os.WriteFile(filepath.Join(other, "uevent"), []byte("HID_ID=0005:000020A0:000042B1\nHID_NAME=Token2\nHID_UNIQ=aa:bb\n"), 0o644)
	bad := filepath.Join(root, "class", "hidraw", "hidraw7", "device")
	os.MkdirAll(bad, 0o755)
	os.WriteFile(filepath.Join(bad, "report_descriptor"), []byte{0xff, 0xff}, 0o644)

	got, err := enumerate(filepath.Join(root, "class", "hidraw"), "/dev")
	if err != nil {
		t.Fatal(err)
	}
	want := []DeviceInfo{
		{Path: "/dev/hidraw3", VendorID: 0x1050, ProductID: 0x0407, Manufacturer: "Yubico", Product: "YubiKey OTP+FIDO+CCID", Serial: "12345678"},
		{Path: "/dev/hidraw5", VendorID: 0x20A0, ProductID: 0x42B1, Product: "Token2", Serial: "aa:bb"},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("device %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if none, err := enumerate(filepath.Join(root, "missing"), "/dev"); none != nil || err != nil {
		t.Fatalf("missing class dir: %v, %v", none, err)
	}
}

// TestOpenHidrawDeadline exercises the hidraw Conn path on a pollable
// file (a FIFO), since this machine has no hidraw node: writes go through,
// and a read deadline interrupts a blocked read.
func TestOpenHidrawDeadline(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := mkfifo(fifo); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	c, err := OpenHidraw(fifo)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	msg := bytes.Repeat([]byte{3}, ReportSize)
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, ReportSize)
	if n, err := c.Read(buf); err != nil || n != ReportSize {
		t.Fatalf("read %d, %v", n, err)
	}
	c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
	if _, err := c.Read(buf); !IsTimeout(err) {
		t.Fatalf("read past deadline: %v", err)
	}
	if _, err := OpenHidraw(filepath.Join(t.TempDir(), "nope")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing node: %v", err)
	}
}

func BenchmarkPipeReport(b *testing.B) {
	host, dev := Pipe()
	defer host.Close()
	out, in := make([]byte, ReportSize+1), make([]byte, ReportSize+1)
	b.ReportAllocs()
	for b.Loop() {
		host.Write(out)
		dev.Read(in)
	}
}

func BenchmarkSocketReport(b *testing.B) {
	path := filepath.Join(b.TempDir(), "s")
	l, err := Listen(path)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	host, _ := Dial(context.Background(), path)
	defer host.Close()
	dev, _ := l.Accept()
	defer dev.Close()
	out, in := make([]byte, ReportSize+1), make([]byte, ReportSize+1)
	b.ReportAllocs()
	for b.Loop() {
		host.Write(out)
		dev.Read(in)
	}
}
