package hid

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sync"
	"testing"
	"time"
)

// newPipe returns a Pipe whose ends are closed when the test ends.
func newPipe(t testing.TB) (host, dev *pipeConn) {
	t.Helper()
	h, d := Pipe()
	t.Cleanup(func() { h.Close(); d.Close() })
	return h.(*pipeConn), d.(*pipeConn)
}

// testReport returns a datagram of n bytes whose content identifies seq.
func testReport(n int, seq byte) []byte {
	b := bytes.Repeat([]byte{seq}, n)
	if n > 0 {
		b[0] = 0
	}
	return b
}

// ioResult is a Read's or Write's outcome, sent from a goroutine.
type ioResult struct {
	n   int
	err error
}

func goRead(c interface{ Read([]byte) (int, error) }, p []byte) <-chan ioResult {
	ch := make(chan ioResult, 1)
	go func() {
		n, err := c.Read(p)
		ch <- ioResult{n, err}
	}()
	return ch
}

func goWrite(c interface{ Write([]byte) (int, error) }, p []byte) <-chan ioResult {
	ch := make(chan ioResult, 1)
	go func() {
		n, err := c.Write(p)
		ch <- ioResult{n, err}
	}()
	return ch
}

// awaitResult returns what ch delivers, failing the test if nothing comes.
func awaitResult(t *testing.T, ch <-chan ioResult, what string) ioResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatalf("%s: still blocked after 5s", what)
		return ioResult{}
	}
}

// stillBlocked fails the test if ch delivers within a short while.
func stillBlocked(t *testing.T, ch <-chan ioResult, what string) {
	t.Helper()
	select {
	case r := <-ch:
		t.Fatalf("%s returned (%d, %v), want it blocked", what, r.n, r.err)
	case <-time.After(30 * time.Millisecond):
	}
}

func TestPipeBoundaries(t *testing.T) {
	tests := []struct {
		name  string
		sizes []int
	}{
		{"output reports", []int{ReportSize + 1, ReportSize + 1, ReportSize + 1}},
		{"input reports", []int{ReportSize, ReportSize}},
		{"mixed sizes", []int{1, ReportSize + 1, 0, 300, ReportSize}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, dir := range []string{"host to device", "device to host"} {
				host, dev := newPipe(t)
				w, r := host, dev
				if dir == "device to host" {
					w, r = dev, host
				}
				for i, n := range tt.sizes {
					if got, err := w.Write(testReport(n, byte(i+1))); err != nil || got != n {
						t.Fatalf("%s: Write(%d bytes) = %d, %v", dir, n, got, err)
					}
				}
				buf := make([]byte, 1024)
				for i, n := range tt.sizes {
					got, err := r.Read(buf)
					if err != nil || !bytes.Equal(buf[:got], testReport(n, byte(i+1))) {
						t.Fatalf("%s: report %d: Read = %d bytes %x, %v; want %d bytes", dir, i, got, buf[:got], err, n)
					}
				}
			}
		})
	}
}

func TestPipeOrderAtDepth(t *testing.T) {
	host, dev := newPipe(t)
	// pipeDepth reports fit without a reader.
	p := make([]byte, ReportSize+1)
	for i := range pipeDepth {
		p[1] = byte(i)
		if _, err := host.Write(p); err != nil {
			t.Fatalf("Write %d: %v", i, err)
		}
	}
	buf := make([]byte, ReportSize+1)
	for i := range pipeDepth {
		if n, err := dev.Read(buf); err != nil || n != ReportSize+1 || buf[1] != byte(i) {
			t.Fatalf("Read %d = %d, %v, seq %d", i, n, err, buf[1])
		}
	}
}

func TestPipeWriteCopies(t *testing.T) {
	host, dev := newPipe(t)
	p := testReport(ReportSize+1, 1)
	host.Write(p)
	p[1] = 99 // the caller reuses its buffer at once
	buf := make([]byte, ReportSize+1)
	if _, err := dev.Read(buf); err != nil || buf[1] != 1 {
		t.Fatalf("Read = %x, %v; the pipe kept a reference to the caller's buffer", buf, err)
	}
}

func TestPipeShortBuffer(t *testing.T) {
	host, dev := newPipe(t)
	dev.Write(testReport(ReportSize, 1))
	dev.Write(testReport(ReportSize, 2))
	if _, err := host.Read(make([]byte, ReportSize-1)); !errors.Is(err, io.ErrShortBuffer) {
		t.Fatalf("Read into a short buffer: %v, want io.ErrShortBuffer", err)
	}
	// The report that did not fit is dropped, as on a datagram socket.
	buf := make([]byte, ReportSize)
	if _, err := host.Read(buf); err != nil || buf[1] != 2 {
		t.Fatalf("next Read = %x, %v; want report 2", buf, err)
	}
}

func TestPipeBackpressure(t *testing.T) {
	tests := []struct {
		name    string
		release func(host, dev *pipeConn)
		wantErr error
	}{
		{"reader frees a slot", func(host, dev *pipeConn) { dev.Read(make([]byte, ReportSize+1)) }, nil},
		{"reader closes", func(host, dev *pipeConn) { dev.Close() }, ErrClosed},
		{"writer closes", func(host, dev *pipeConn) { host.Close() }, ErrClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, dev := newPipe(t)
			p := make([]byte, ReportSize+1)
			for range pipeDepth {
				host.Write(p)
			}
			w := goWrite(host, p)
			stillBlocked(t, w, "Write to a full pipe")
			tt.release(host, dev)
			if r := awaitResult(t, w, "blocked Write"); !errors.Is(r.err, tt.wantErr) || (tt.wantErr == nil && r.err != nil) {
				t.Fatalf("blocked Write = %d, %v; want %v", r.n, r.err, tt.wantErr)
			}
		})
	}
}

func TestPipeDeadline(t *testing.T) {
	checkTimeout := func(t *testing.T, err error) {
		t.Helper()
		if !IsTimeout(err) || !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("err = %v, want a timeout matching os.ErrDeadlineExceeded", err)
		}
	}
	buf := make([]byte, ReportSize)

	t.Run("past deadline wakes a blocked Read", func(t *testing.T) {
		host, _ := newPipe(t)
		r := goRead(host, buf)
		stillBlocked(t, r, "Read")
		host.SetReadDeadline(time.Unix(1, 0))
		checkTimeout(t, awaitResult(t, r, "Read after deadline").err)
	})
	t.Run("future deadline expires while blocked", func(t *testing.T) {
		host, _ := newPipe(t)
		start := time.Now() // before the deadline is set, which counts from its own now
		host.SetReadDeadline(start.Add(20 * time.Millisecond))
		_, err := host.Read(buf)
		checkTimeout(t, err)
		if d := time.Since(start); d < 20*time.Millisecond {
			t.Fatalf("Read returned after %v, before the deadline", d)
		}
	})
	t.Run("expired deadline beats queued data", func(t *testing.T) {
		host, dev := newPipe(t)
		dev.Write(testReport(ReportSize, 1))
		host.SetReadDeadline(time.Now().Add(-time.Second))
		_, err := host.Read(buf)
		checkTimeout(t, err)
		_, err = host.Read(buf) // future Reads too
		checkTimeout(t, err)
		host.SetReadDeadline(time.Time{})
		if _, err := host.Read(buf); err != nil || buf[1] != 1 {
			t.Fatalf("Read after clearing = %x, %v; want the queued report", buf, err)
		}
	})
	t.Run("zero time clears a pending deadline", func(t *testing.T) {
		host, dev := newPipe(t)
		host.SetReadDeadline(time.Now().Add(10 * time.Millisecond))
		host.SetReadDeadline(time.Time{})
		r := goRead(host, buf)
		stillBlocked(t, r, "Read with a cleared deadline")
		dev.Write(testReport(ReportSize, 2))
		if got := awaitResult(t, r, "Read"); got.err != nil {
			t.Fatalf("Read = %v", got.err)
		}
	})
	t.Run("extending a deadline keeps a blocked Read waiting", func(t *testing.T) {
		host, dev := newPipe(t)
		host.SetReadDeadline(time.Now().Add(30 * time.Millisecond))
		r := goRead(host, buf)
		host.SetReadDeadline(time.Now().Add(time.Hour))
		stillBlocked(t, r, "Read after extending its deadline")
		stillBlocked(t, r, "Read after extending its deadline")
		dev.Write(testReport(ReportSize, 3))
		if got := awaitResult(t, r, "Read"); got.err != nil {
			t.Fatalf("Read = %v", got.err)
		}
	})
	t.Run("device end", func(t *testing.T) {
		_, dev := newPipe(t)
		r := goRead(dev, make([]byte, ReportSize+1))
		dev.SetReadDeadline(time.Now())
		checkTimeout(t, awaitResult(t, r, "device Read").err)
	})
}

func TestPipeClose(t *testing.T) {
	tests := []struct {
		name   string
		closer string // which end closes: "host" or "device"
	}{
		{"host closes", "host"},
		{"device closes", "device"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host, dev := newPipe(t)
			closer, other := host, dev
			if tt.closer == "device" {
				closer, other = dev, host
			}
			closer.Write(testReport(ReportSize, 1))
			closer.Write(testReport(ReportSize, 2))
			if err := closer.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := closer.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
			buf := make([]byte, ReportSize+1)
			for i := range 2 {
				if _, err := other.Read(buf); err != nil || buf[1] != byte(i+1) {
					t.Fatalf("Read %d after peer Close = %x, %v; want the sent report", i, buf[:2], err)
				}
			}
			for range 2 {
				if _, err := other.Read(buf); err != io.EOF {
					t.Fatalf("Read after draining = %v, want io.EOF", err)
				}
			}
			if _, err := other.Write(buf); !errors.Is(err, ErrClosed) {
				t.Fatalf("Write to a closed peer = %v, want ErrClosed", err)
			}
			if _, err := closer.Read(buf); !errors.Is(err, ErrClosed) {
				t.Fatalf("Read on the closed end = %v, want ErrClosed", err)
			}
			if _, err := closer.Write(buf); !errors.Is(err, ErrClosed) {
				t.Fatalf("Write on the closed end = %v, want ErrClosed", err)
			}
		})
	}
	t.Run("wakes blocked Reads", func(t *testing.T) {
		host, dev := newPipe(t)
		hr := goRead(host, make([]byte, ReportSize))
		dr := goRead(dev, make([]byte, ReportSize+1))
		stillBlocked(t, hr, "host Read")
		host.Close()
		if r := awaitResult(t, hr, "host Read"); !errors.Is(r.err, ErrClosed) {
			t.Errorf("Read on the end being closed = %v, want ErrClosed", r.err)
		}
		if r := awaitResult(t, dr, "device Read"); r.err != io.EOF {
			t.Errorf("Read on the peer = %v, want io.EOF", r.err)
		}
	})
}

// TestPipeConcurrent runs both directions at once with one reader and one
// writer per end, for the race detector and to check ordering under load.
func TestPipeConcurrent(t *testing.T) {
	host, dev := newPipe(t)
	const count = 5000
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	send := func(w interface{ Write([]byte) (int, error) }, size int) {
		defer wg.Done()
		p := make([]byte, size)
		for i := range count {
			p[1], p[2] = byte(i), byte(i>>8)
			if _, err := w.Write(p); err != nil {
				errs <- err
				return
			}
		}
	}
	recv := func(r interface{ Read([]byte) (int, error) }, size int) {
		defer wg.Done()
		p := make([]byte, size)
		for i := range count {
			n, err := r.Read(p)
			if err != nil || n != size || p[1] != byte(i) || p[2] != byte(i>>8) {
				errs <- errors.New("out of order or lost report")
				return
			}
		}
	}
	wg.Add(4)
	go send(host, ReportSize+1)
	go recv(dev, ReportSize+1)
	go send(dev, ReportSize)
	go recv(host, ReportSize)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// BenchmarkPipeRoundTrip measures one output report to the device and one
// input report back, a CTAPHID exchange's unit.
func BenchmarkPipeRoundTrip(b *testing.B) {
	host, dev := newPipe(b)
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
