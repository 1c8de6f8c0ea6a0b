package hid

import (
	"io"
	"os"
	"sync"
	"time"
)

// pipeDepth bounds the reports buffered in each direction of a Pipe. A
// writer blocks beyond it, as a USB endpoint stalls when nobody reads, so a
// runaway writer cannot grow memory without bound.
const pipeDepth = 256

// Pipe returns the two ends of an in-memory transport with hidraw framing,
// for running a host and a device (such as the virtual key) in one process.
//
// Every Write on one end is delivered whole by one Read on the other: host
// writes (ReportSize+1 bytes, report ID first) arrive at the device end,
// device writes (ReportSize bytes) at the host end. Write copies p, so the
// caller may reuse it at once. Up to 256 reports wait in each direction;
// a further Write blocks until the other end reads or either end closes.
// A Read whose p is shorter than the next report drops that report and
// returns io.ErrShortBuffer, as a datagram socket would truncate it.
//
// Both ends have SetReadDeadline with the semantics of net.Conn: an expired
// deadline fails pending and future Reads with an error for which IsTimeout
// and errors.Is(err, os.ErrDeadlineExceeded) hold, and the zero time clears
// it. The device end has the method too, though DeviceConn does not ask
// for it.
//
// Closing an end makes its own Reads and Writes fail with ErrClosed; the
// other end's Reads return what was already sent and then io.EOF, and its
// Writes fail with ErrClosed. Close is idempotent.
//
// Each end is safe for use by one reader and one writer at a time, and for
// Close and SetReadDeadline from any goroutine.
func Pipe() (Conn, DeviceConn) {
	toDevice, toHost := newPipeQueue(), newPipeQueue()
	host := &pipeConn{in: toHost, out: toDevice, closed: make(chan struct{})}
	dev := &pipeConn{in: toDevice, out: toHost, closed: make(chan struct{})}
	host.dl.init()
	dev.dl.init()
	host.peer, dev.peer = dev, host
	return host, dev
}

var (
	_ Conn       = (*pipeConn)(nil)
	_ DeviceConn = (*pipeConn)(nil)
)

// pipeQueue carries the reports of one direction. Its slots are reused, so
// a steady exchange of reports does not allocate.
type pipeQueue struct {
	mu    sync.Mutex
	slots [pipeDepth][]byte
	head  int // index of the oldest report
	n     int // reports queued

	// ready and space hold a token when the queue may have gained a report
	// or a free slot. A waiter that takes a token and leaves more behind
	// passes it on, so no wakeup is lost with a single-token channel.
	ready, space chan struct{}
}

func newPipeQueue() *pipeQueue {
	return &pipeQueue{ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// pipeConn is one end of a Pipe.
type pipeConn struct {
	in, out   *pipeQueue
	peer      *pipeConn
	closed    chan struct{} // closed by Close on this end
	closeOnce sync.Once
	dl        pipeDeadline
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Read returns the next report the other end wrote.
func (c *pipeConn) Read(p []byte) (int, error) {
	q := c.in
	for {
		expired := c.dl.wait()
		switch {
		case isClosed(c.closed):
			return 0, ErrClosed
		case isClosed(expired):
			// Like net.Conn: an expired deadline wins over queued data.
			return 0, os.ErrDeadlineExceeded
		}
		q.mu.Lock()
		if q.n > 0 {
			msg := q.slots[q.head]
			n := copy(p, msg)
			q.head = (q.head + 1) % pipeDepth
			q.n--
			if q.n > 0 {
				signal(q.ready)
			}
			q.mu.Unlock()
			signal(q.space)
			if n < len(msg) {
				return 0, io.ErrShortBuffer
			}
			return n, nil
		}
		q.mu.Unlock()
		// Sent reports are drained before the peer's close shows.
		if isClosed(c.peer.closed) {
			return 0, io.EOF
		}
		select {
		case <-q.ready:
		case <-c.closed:
		case <-c.peer.closed:
		case <-expired:
		}
	}
}

// Write sends p as one report to the other end.
func (c *pipeConn) Write(p []byte) (int, error) {
	q := c.out
	for {
		if isClosed(c.closed) || isClosed(c.peer.closed) {
			return 0, ErrClosed
		}
		q.mu.Lock()
		if q.n < pipeDepth {
			i := (q.head + q.n) % pipeDepth
			q.slots[i] = append(q.slots[i][:0], p...)
			q.n++
			if q.n < pipeDepth {
				signal(q.space)
			}
			q.mu.Unlock()
			signal(q.ready)
			return len(p), nil
		}
		q.mu.Unlock()
		select {
		case <-q.space:
		case <-c.closed:
		case <-c.peer.closed:
		}
	}
}

// SetReadDeadline bounds pending and future Reads; see Pipe.
func (c *pipeConn) SetReadDeadline(t time.Time) error {
	c.dl.set(t)
	return nil
}

// Close closes this end; see Pipe.
func (c *pipeConn) Close() error {
	c.closeOnce.Do(func() {
		close(c.closed)
		c.dl.set(time.Time{}) // stop a pending timer
	})
	return nil
}

// pipeDeadline is a settable deadline whose channel is closed once it
// passes, so a Read blocked in select wakes when the deadline expires or is
// moved into the past. The channel is replaced only after it was closed,
// so a Read waiting on an open channel keeps waiting on the current one
// when the deadline is moved into the future.
//
// One timer serves every deadline: a host sets one per report it waits
// for, and a new timer each time would allocate per report. A firing
// timer closes the channel only if the deadline in force then has passed,
// so a firing that raced with a later set does nothing.
type pipeDeadline struct {
	mu       sync.Mutex
	deadline time.Time // zero: none
	timer    *time.Timer
	expired  chan struct{}
}

func (d *pipeDeadline) init() { d.expired = make(chan struct{}) }

func (d *pipeDeadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.deadline = t
	if d.timer != nil {
		d.timer.Stop()
	}
	past := !t.IsZero() && !time.Now().Before(t)
	if past {
		if !isClosed(d.expired) {
			close(d.expired)
		}
		return
	}
	if isClosed(d.expired) {
		d.expired = make(chan struct{})
	}
	if t.IsZero() {
		return
	}
	if d.timer == nil {
		d.timer = time.AfterFunc(time.Until(t), d.fire)
	} else {
		d.timer.Reset(time.Until(t))
	}
}

func (d *pipeDeadline) fire() {
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case d.deadline.IsZero() || isClosed(d.expired):
	case time.Now().Before(d.deadline):
		// Early by the wall clock (a deadline without a monotonic
		// reading, a clock step): wait for the rest.
		d.timer.Reset(time.Until(d.deadline))
	default:
		close(d.expired)
	}
}

func (d *pipeDeadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.expired
}
