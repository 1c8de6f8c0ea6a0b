// Package hidtest holds test helpers for CTAPHID transports.
//
// It imports nothing of package hid, so that package's own tests can use
// it; its types satisfy hid.Conn and fido.ReportConn by their methods.
package hidtest

import (
	"net"
	"os"
	"sync"
	"time"
)

// Conn is what Share shares and hands out: the host end of a HID
// transport with hidraw framing (hid.Conn).
type Conn interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	SetReadDeadline(t time.Time) error
	Close() error
}

// viewDepth bounds the reports each host view buffers. A view that falls
// further behind loses the oldest, as a Linux hidraw reader does (its
// kernel buffer holds 64 reports).
const viewDepth = 1024

// Share makes n hosts out of one host end, as several programs opening one
// /dev/hidrawN are: each host's Read sees every report the device sends,
// and their Writes reach the device one whole report at a time, in some
// order. Closing every returned Conn closes conn. It is for tests of
// devices that several hosts use at once.
func Share(conn Conn, n int) []Conn {
	s := &shared{conn: conn, left: n}
	views := make([]Conn, n)
	for i := range views {
		v := &view{s: s, in: make(chan []byte, viewDepth), closed: make(chan struct{}), dl: make(chan struct{})}
		s.views = append(s.views, v)
		views[i] = v
	}
	go s.pump()
	return views
}

type shared struct {
	conn  Conn
	wmu   sync.Mutex // one report at a time to the device
	mu    sync.Mutex // guards left
	left  int        // views not yet closed
	views []*view
}

// pump copies each report the device sends to every view.
func (s *shared) pump() {
	buf := make([]byte, 1024)
	for {
		n, err := s.conn.Read(buf)
		if err != nil {
			for _, v := range s.views {
				v.fail(err)
			}
			return
		}
		for _, v := range s.views {
			v.deliver(append([]byte(nil), buf[:n]...))
		}
	}
}

type view struct {
	s      *shared
	in     chan []byte
	closed chan struct{}
	once   sync.Once

	mu       sync.Mutex
	deadline time.Time
	dl       chan struct{} // closed and replaced when the deadline changes
	err      error         // the shared connection's read error
}

func (v *view) deliver(b []byte) {
	for {
		select {
		case v.in <- b:
			return
		case <-v.closed:
			return
		default:
		}
		select { // full: drop the oldest report
		case <-v.in:
		default:
		}
	}
}

func (v *view) fail(err error) {
	v.mu.Lock()
	v.err = err
	v.mu.Unlock()
	close(v.in)
}

// Read returns the next report the device sent, honouring the deadline
// as net.Conn does.
func (v *view) Read(p []byte) (int, error) {
	for {
		v.mu.Lock()
		deadline, changed := v.deadline, v.dl
		v.mu.Unlock()
		var timeout <-chan time.Time
		var timer *time.Timer
		if !deadline.IsZero() {
			d := time.Until(deadline)
			if d <= 0 {
				return 0, os.ErrDeadlineExceeded
			}
			timer = time.NewTimer(d)
			timeout = timer.C
		}
		n, again, err := v.wait(p, timeout, changed)
		if timer != nil {
			timer.Stop()
		}
		if !again {
			return n, err
		}
	}
}

// wait waits for a report, the deadline, a new deadline (again) or Close.
func (v *view) wait(p []byte, timeout <-chan time.Time, changed <-chan struct{}) (n int, again bool, err error) {
	select {
	case b, ok := <-v.in:
		if !ok {
			v.mu.Lock()
			defer v.mu.Unlock()
			return 0, false, v.err
		}
		return copy(p, b), false, nil
	case <-timeout:
		return 0, false, os.ErrDeadlineExceeded
	case <-changed:
		return 0, true, nil
	case <-v.closed:
		return 0, false, net.ErrClosed
	}
}

// Write sends one report to the device.
func (v *view) Write(p []byte) (int, error) {
	select {
	case <-v.closed:
		return 0, net.ErrClosed
	default:
	}
	v.s.wmu.Lock()
	defer v.s.wmu.Unlock()
	return v.s.conn.Write(p)
}

// SetReadDeadline bounds pending and future Reads.
func (v *view) SetReadDeadline(t time.Time) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.deadline = t
	close(v.dl)
	v.dl = make(chan struct{})
	return nil
}

// Close closes this host's view; the last Close closes the shared
// connection.
func (v *view) Close() error {
	var err error
	v.once.Do(func() {
		close(v.closed)
		v.s.mu.Lock()
		v.s.left--
		last := v.s.left == 0
		v.s.mu.Unlock()
		if last {
			err = v.s.conn.Close()
		}
	})
	return err
}
