package hid

import (
	"io"
	"os"
	"sync"
	"time"
)

// pipeDepth bounds the reports buffered in each direction; a writer blocks
// beyond it, as a USB endpoint would.
const pipeDepth = 256

// Pipe returns the two ends of an in-memory transport: host writes (65
// bytes, report ID first) arrive whole at the device end, device writes
// (64-byte reports) at the host end. Closing either end closes both; reads
// then drain what was sent and return io.EOF. Each end is safe for one
// concurrent reader and one concurrent writer.
func Pipe() (Conn, DeviceConn) {
	p := &pipe{
		toDevice: make(chan []byte, pipeDepth),
		toHost:   make(chan []byte, pipeDepth),
		done:     make(chan struct{}),
	}
	host := &pipeEnd{p: p, in: p.toHost, out: p.toDevice, dl: newDeadline()}
	dev := &pipeEnd{p: p, in: p.toDevice, out: p.toHost, dl: newDeadline()}
	return host, dev
}

type pipe struct {
	toDevice, toHost chan []byte
	once             sync.Once
	done             chan struct{}
}

type pipeEnd struct {
	p       *pipe
	in, out chan []byte
	dl      *deadline
}

func (e *pipeEnd) Write(b []byte) (int, error) {
	select {
	case <-e.p.done:
		return 0, ErrClosed
	default:
	}
	msg := append([]byte(nil), b...) // the caller may reuse b
	select {
	case e.out <- msg:
		return len(b), nil
	case <-e.p.done:
		return 0, ErrClosed
	}
}

func (e *pipeEnd) Read(b []byte) (int, error) {
	deliver := func(msg []byte) (int, error) {
		if len(b) < len(msg) {
			return 0, io.ErrShortBuffer
		}
		return copy(b, msg), nil
	}
	// Sent data is delivered before a close or an expired deadline.
	select {
	case msg := <-e.in:
		return deliver(msg)
	default:
	}
	select {
	case msg := <-e.in:
		return deliver(msg)
	case <-e.p.done:
		select {
		case msg := <-e.in:
			return deliver(msg)
		default:
			return 0, io.EOF
		}
	case <-e.dl.wait():
		return 0, os.ErrDeadlineExceeded
	}
}

func (e *pipeEnd) SetReadDeadline(t time.Time) error {
	e.dl.set(t)
	return nil
}

func (e *pipeEnd) Close() error {
	e.p.once.Do(func() { close(e.p.done) })
	return nil
}

// deadline is a settable read deadline whose wait channel is closed when it
// passes, so a blocked Read wakes when the deadline moves into the past.
type deadline struct {
	mu     sync.Mutex
	timer  *time.Timer
	expire chan struct{}
}

func newDeadline() *deadline { return &deadline{expire: make(chan struct{})} }

func (d *deadline) set(t time.Time) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timer != nil && !d.timer.Stop() {
		<-d.expire // the timer fired: wait until it has closed expire
	}
	d.timer = nil
	expired := isClosed(d.expire)
	if t.IsZero() || time.Until(t) > 0 {
		if expired {
			d.expire = make(chan struct{})
		}
		if !t.IsZero() {
			ch := d.expire
			d.timer = time.AfterFunc(time.Until(t), func() { close(ch) })
		}
		return
	}
	if !expired {
		close(d.expire)
	}
}

func (d *deadline) wait() <-chan struct{} {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.expire
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
