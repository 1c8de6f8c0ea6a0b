package hid

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listenTemp listens on a socket in a fresh temporary directory.
func listenTemp(t testing.TB) *Listener {
	t.Helper()
	l, err := Listen(filepath.Join(t.TempDir(), "key.sock"))
	if err != nil {
		t.Fatalf("Listen: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// socketPair connects a host to a fresh listener and returns both ends.
func socketPair(t testing.TB) (host *net.UnixConn, dev DeviceConn) {
	t.Helper()
	l := listenTemp(t)
	c, err := Dial(context.Background(), l.Addr())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	dev, err = l.Accept()
	if err != nil {
		t.Fatalf("Accept: %v", err)
	}
	t.Cleanup(func() { dev.Close() })
	host = c.(*net.UnixConn)
	// A stuck test fails instead of hanging.
	host.SetReadDeadline(time.Now().Add(10 * time.Second))
	return host, dev
}

func TestSocketFraming(t *testing.T) {
	host, dev := socketPair(t)
	buf := make([]byte, 2*ReportSize)
	// Several reports in a row keep their boundaries both ways: a
	// datagram socket must not merge or split them as a stream would.
	for i := range 3 {
		if n, err := host.Write(testReport(ReportSize+1, byte(i+1))); err != nil || n != ReportSize+1 {
			t.Fatalf("host Write = %d, %v", n, err)
		}
		if n, err := dev.Write(testReport(ReportSize, byte(i+1))); err != nil || n != ReportSize {
			t.Fatalf("device Write = %d, %v", n, err)
		}
	}
	for i := range 3 {
		n, err := dev.Read(buf)
		if want := testReport(ReportSize+1, byte(i+1)); err != nil || !bytes.Equal(buf[:n], want) {
			t.Fatalf("device Read %d = %x, %v; want %x", i, buf[:n], err, want)
		}
		n, err = host.Read(buf)
		if want := testReport(ReportSize, byte(i+1)); err != nil || !bytes.Equal(buf[:n], want) {
			t.Fatalf("host Read %d = %x, %v; want %x", i, buf[:n], err, want)
		}
	}
}

func TestSocketFrameError(t *testing.T) {
	tests := []struct {
		name     string
		datagram []byte
		wantLen  int
		wantID   byte
	}{
		{"input-sized", testReport(ReportSize, 5), ReportSize, 0},
		{"one byte long", testReport(ReportSize+2, 5), ReportSize + 2, 0},
		{"far too long", testReport(1000, 5), 1000, 0},
		{"report ID 1", append([]byte{1}, make([]byte, ReportSize)...), ReportSize + 1, 1},
		{"one byte", []byte{7}, 1, 7},
		{"empty", nil, 0, 0},
	}
	host, dev := socketPair(t)
	buf := make([]byte, ReportSize+1)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := host.Write(tt.datagram); err != nil {
				t.Fatalf("host Write: %v", err)
			}
			_, err := dev.Read(buf)
			var fe *FrameError
			if !errors.As(err, &fe) {
				t.Fatalf("Read = %v, want *FrameError", err)
			}
			if fe.Len != tt.wantLen || fe.ReportID != tt.wantID {
				t.Fatalf("FrameError = %+v, want Len %d ReportID %d", fe, tt.wantLen, tt.wantID)
			}
			if fe.Error() == "" {
				t.Fatal("empty message")
			}
			// The connection stays usable.
			good := testReport(ReportSize+1, byte(i+1))
			host.Write(good)
			if n, err := dev.Read(buf); err != nil || !bytes.Equal(buf[:n], good) {
				t.Fatalf("Read after the bad datagram = %x, %v", buf[:n], err)
			}
		})
	}
}

func TestSocketShortBuffers(t *testing.T) {
	host, dev := socketPair(t)
	good := testReport(ReportSize+1, 9)
	host.Write(good)
	if _, err := dev.Read(make([]byte, ReportSize)); !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("device Read into %d bytes = %v, want io.ErrShortBuffer", ReportSize, err)
	}
	// Nothing was consumed.
	buf := make([]byte, ReportSize+1)
	if n, err := dev.Read(buf); err != nil || !bytes.Equal(buf[:n], good) {
		t.Fatalf("Read = %x, %v", buf[:n], err)
	}
	for _, n := range []int{0, ReportSize - 1, ReportSize + 1} {
		if _, err := dev.Write(make([]byte, n)); err == nil {
			t.Errorf("device Write of %d bytes succeeded, want an error", n)
		}
	}
}

func TestSocketClose(t *testing.T) {
	t.Run("host closes", func(t *testing.T) {
		host, dev := socketPair(t)
		host.Write(testReport(ReportSize+1, 1))
		host.Close()
		buf := make([]byte, ReportSize+1)
		if _, err := dev.Read(buf); err != nil {
			t.Fatalf("Read of the report sent before Close: %v", err)
		}
		for range 2 {
			if _, err := dev.Read(buf); err != io.EOF {
				t.Fatalf("Read after host Close = %v, want io.EOF", err)
			}
		}
	})
	t.Run("device closes", func(t *testing.T) {
		host, dev := socketPair(t)
		if err := dev.Close(); err != nil {
			t.Fatal(err)
		}
		if err := dev.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
		if _, err := host.Read(make([]byte, ReportSize)); err != io.EOF {
			t.Fatalf("host Read = %v, want io.EOF", err)
		}
		if _, err := dev.Read(make([]byte, ReportSize+1)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Read on the closed device end = %v, want ErrClosed", err)
		}
		if _, err := dev.Write(make([]byte, ReportSize)); !errors.Is(err, ErrClosed) {
			t.Fatalf("Write on the closed device end = %v, want ErrClosed", err)
		}
	})
	t.Run("Close wakes a blocked device Read", func(t *testing.T) {
		_, dev := socketPair(t)
		r := goRead(dev, make([]byte, ReportSize+1))
		stillBlocked(t, r, "device Read")
		dev.Close()
		if got := awaitResult(t, r, "device Read"); !errors.Is(got.err, ErrClosed) {
			t.Fatalf("Read = %v, want ErrClosed", got.err)
		}
	})
}

func TestSocketHostDeadline(t *testing.T) {
	host, _ := socketPair(t)
	r := goRead(host, make([]byte, ReportSize))
	stillBlocked(t, r, "host Read")
	host.SetReadDeadline(time.Unix(1, 0))
	if got := awaitResult(t, r, "host Read"); !IsTimeout(got.err) || !errors.Is(got.err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read = %v, want a timeout", got.err)
	}
}

// staleSocket leaves a socket file at path with nobody listening, as a
// server that crashed would.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		t.Fatal(err)
	}
}

func TestListen(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, path string)
		wantErr bool
		kept    bool // the file at path must survive a failed Listen
	}{
		{"nothing there", func(t *testing.T, path string) {}, false, false},
		{"stale socket", staleSocket, false, false},
		{"live server", func(t *testing.T, path string) {
			l, err := Listen(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}, true, true},
		{"live stream socket", func(t *testing.T, path string) {
			l, err := net.Listen("unix", path)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { l.Close() })
		}, true, true},
		{"regular file", func(t *testing.T, path string) {
			if err := os.WriteFile(path, []byte("keep me"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, true, true},
		{"directory", func(t *testing.T, path string) {
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}, true, true},
		{"symlink to a socket", func(t *testing.T, path string) {
			target := path + ".target"
			staleSocket(t, target)
			if err := os.Symlink(target, path); err != nil {
				t.Fatal(err)
			}
		}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key.sock")
			tt.setup(t, path)
			before, _ := os.Lstat(path)
			l, err := Listen(path)
			if tt.wantErr {
				if err == nil {
					l.Close()
					t.Fatal("Listen succeeded")
				}
				if !errors.Is(err, fs.ErrExist) {
					t.Errorf("err = %v, want it to match fs.ErrExist", err)
				}
				after, _ := os.Lstat(path)
				if tt.kept && (after == nil || !os.SameFile(before, after)) {
					t.Error("Listen replaced the file")
				}
				return
			}
			if err != nil {
				t.Fatalf("Listen: %v", err)
			}
			if l.Addr() != path || !IsSocket(path) {
				t.Fatalf("Addr = %q, IsSocket = %v", l.Addr(), IsSocket(path))
			}
			if err := l.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := l.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("socket file left after Close: %v", err)
			}
			if _, err := l.Accept(); !errors.Is(err, ErrClosed) || !errors.Is(err, net.ErrClosed) {
				t.Fatalf("Accept after Close = %v, want ErrClosed", err)
			}
		})
	}
}

func TestListenerCloseWakesAccept(t *testing.T) {
	l := listenTemp(t)
	done := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		done <- err
	}()
	time.Sleep(20 * time.Millisecond)
	l.Close()
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("Accept = %v, want ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Accept still blocked after Close")
	}
}

func TestDial(t *testing.T) {
	dir := t.TempDir()
	canceled, cancel := context.WithCancel(context.Background())
	cancel()
	tests := []struct {
		name string
		ctx  context.Context
		path string
		is   error
	}{
		{"missing socket", context.Background(), filepath.Join(dir, "missing"), fs.ErrNotExist},
		{"canceled context", canceled, listenTemp(t).Addr(), context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Dial(tt.ctx, tt.path)
			if err == nil {
				c.Close()
				t.Fatal("Dial succeeded")
			}
			if !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want %v", err, tt.is)
			}
		})
	}
}

func TestIsSocket(t *testing.T) {
	dir := t.TempDir()
	sock := listenTemp(t).Addr()
	file := filepath.Join(dir, "file")
	os.WriteFile(file, nil, 0o600)
	link := filepath.Join(dir, "link")
	os.Symlink(sock, link)
	tests := []struct {
		name string
		path string
		want bool
	}{
		{"socket", sock, true},
		{"symlink to a socket", link, true}, // as fido.Open follows it
		{"regular file", file, false},
		{"directory", dir, false},
		{"missing", filepath.Join(dir, "missing"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsSocket(tt.path); got != tt.want {
				t.Fatalf("IsSocket(%s) = %v, want %v", tt.path, got, tt.want)
			}
		})
	}
}

// BenchmarkSocketRoundTrip measures one output report to the device and
// one input report back over the socket.
func BenchmarkSocketRoundTrip(b *testing.B) {
	host, dev := socketPair(b)
	host.SetReadDeadline(time.Time{})
	out, in := make([]byte, ReportSize+1), make([]byte, ReportSize+1)
	roundTrip := func() {
		if _, err := host.Write(out); err != nil {
			b.Fatal(err)
		}
		if _, err := dev.Read(in); err != nil {
			b.Fatal(err)
		}
		if _, err := dev.Write(in[1:]); err != nil {
			b.Fatal(err)
		}
		if _, err := host.Read(in); err != nil {
			b.Fatal(err)
		}
	}
	for range pipeDepth { // a pipe's queue slots are made on first use
		roundTrip()
	}
	perPacket := testing.AllocsPerRun(100, roundTrip) / 2
	b.ReportAllocs()
	b.SetBytes(2 * ReportSize)
	for b.Loop() {
		roundTrip()
	}
	b.ReportMetric(perPacket, "allocs/packet")
}

// TestSocketChannel runs a Channel's messages, up to the largest, over
// the socket.
func TestSocketChannel(t *testing.T) {
	l := listenTemp(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go func() {
		dev, err := l.Accept()
		if err != nil {
			return
		}
		(&Server{Handler: &echoHandler{winks: make(chan struct{}, 1)}, Capabilities: CapCBOR | CapWink}).Serve(ctx, dev)
	}()
	c, err := Dial(ctx, l.Addr())
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	ch, err := Open(ctx, c)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { ch.Close() })
	for _, n := range []int{0, 57, 58, 1000, MaxMessageSize} {
		data := bytes.Repeat([]byte{byte(n)}, n)
		if err := ch.Ping(ctx, data); err != nil {
			t.Fatalf("Ping of %d bytes: %v", n, err)
		}
	}
}
