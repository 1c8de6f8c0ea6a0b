package hid

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The virtual key's socket is AF_UNIX SOCK_SEQPACKET: connected like a
// stream, so a server sees each host come and go, and datagram-preserving
// like hidraw, so one write is one report. A program that speaks hidraw
// needs only to be pointed at it.
const socketNetwork = "unixpacket"

// Dial connects to a virtual key's socket at path. The returned Conn is a
// *net.UnixConn: Write sends one output report of ReportSize+1 bytes,
// report ID 0 first, and Read returns one input report of ReportSize bytes.
// ctx bounds only the connecting.
func Dial(ctx context.Context, path string) (Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, socketNetwork, path)
	if err != nil {
		return nil, fmt.Errorf("hid: dialing %s: %w", path, err)
	}
	return c.(*net.UnixConn), nil
}

// Listener is the device end of a virtual key's socket: it accepts hosts,
// each as its own DeviceConn. Its methods are safe for concurrent use.
type Listener struct {
	l         *net.UnixListener
	path      string
	closeOnce sync.Once
	closeErr  error
}

// Listen creates a SOCK_SEQPACKET socket at path and listens on it.
//
// A socket file left behind by a server that is gone (nobody accepts on
// it) is replaced. Anything else at path is left alone and Listen fails
// with an error matching fs.ErrExist: a socket a server is still listening
// on, or a file that is not a socket.
func Listen(path string) (*Listener, error) {
	if err := removeStaleSocket(path); err != nil {
		return nil, err
	}
	l, err := net.ListenUnix(socketNetwork, &net.UnixAddr{Name: path, Net: socketNetwork})
	if err != nil {
		return nil, fmt.Errorf("hid: listening on %s: %w", path, err)
	}
	// Already net's default for a listener that created its socket file;
	// explicit because Listener.Close promises the removal.
	l.SetUnlinkOnClose(true)
	return &Listener{l: l, path: path}, nil
}

// removeStaleSocket removes the socket at path if no server listens on it.
// Between the check and the removal another server could start; two
// servers racing for one path is a setup error this does not guard.
func removeStaleSocket(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("hid: listening on %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("hid: listening on %s: %w and is not a socket; not replacing it", path, fs.ErrExist)
	}
	// Only a socket nobody listens on refuses a connection. A live socket
	// of another type answers EPROTOTYPE and must not be removed either.
	c, err := net.DialTimeout(socketNetwork, path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("hid: listening on %s: %w: another server is listening on it", path, fs.ErrExist)
	}
	if !errors.Is(err, unix.ECONNREFUSED) {
		return fmt.Errorf("hid: listening on %s: %w: probing the socket there: %v", path, fs.ErrExist, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("hid: removing stale socket %s: %w", path, err)
	}
	return nil
}

// Addr returns the path of the socket.
func (l *Listener) Addr() string { return l.path }

// Accept waits for the next host and returns the device end of its
// connection. After Close it fails with an error matching ErrClosed and
// net.ErrClosed.
func (l *Listener) Accept() (DeviceConn, error) {
	c, err := l.l.AcceptUnix()
	if errors.Is(err, net.ErrClosed) {
		return nil, fmt.Errorf("%w: accepting on %s: %w", ErrClosed, l.path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("hid: accepting on %s: %w", l.path, err)
	}
	return newSocketDeviceConn(c)
}

// Close stops listening and removes the socket file. Connections already
// accepted stay open. Close is idempotent.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { l.closeErr = l.l.Close() })
	return l.closeErr
}

// socketDeviceConn is the device end of one host's connection. It checks
// that every datagram is one hidraw output report, reporting others as
// *FrameError without losing the connection.
type socketDeviceConn struct {
	c  *net.UnixConn
	rc syscall.RawConn

	// The receive callback's arguments and results live here rather than
	// in a closure, so a Read does not allocate; rmu serializes Reads.
	rmu    sync.Mutex
	recvFn func(fd uintptr) bool
	p      []byte
	n      int
	empty  bool // a zero-length datagram, not the end of the connection
	err    error

	closeOnce sync.Once
	closeErr  error
}

func newSocketDeviceConn(c *net.UnixConn) (*socketDeviceConn, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("hid: accepting: %w", err)
	}
	s := &socketDeviceConn{c: c, rc: rc}
	s.recvFn = s.recv
	return s, nil
}

var _ DeviceConn = (*socketDeviceConn)(nil)

// recv runs under the poller: it returns false to wait for readability.
func (s *socketDeviceConn) recv(fd uintptr) bool {
	// MSG_TRUNC makes recv report a datagram's real length even when it
	// is longer than p, so an oversized one is seen, not silently cut.
	n, err := recvNoAddr(fd, s.p, unix.MSG_TRUNC)
	if err == unix.EAGAIN {
		return false
	}
	s.n, s.err, s.empty = n, err, false
	if err == nil && n == 0 {
		// On SOCK_SEQPACKET both the end of the connection and a
		// zero-length datagram read as 0 bytes. At the end, a further
		// peek reads 0 again; after an empty datagram it finds the next
		// one or nothing yet.
		var b [1]byte
		m, perr := recvNoAddr(fd, b[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		s.empty = perr == unix.EAGAIN || (perr == nil && m > 0)
	}
	return true
}

// recvNoAddr is recv(2): unix.Recvfrom would allocate the sender's
// address, which a connected socket does not need, on every report.
func recvNoAddr(fd uintptr, p []byte, flags int) (int, error) {
	var ptr unsafe.Pointer
	if len(p) > 0 {
		ptr = unsafe.Pointer(&p[0])
	}
	n, _, errno := unix.Syscall6(unix.SYS_RECVFROM, fd, uintptr(ptr), uintptr(len(p)), uintptr(flags), 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// Read returns the next output report from the host: ReportSize+1 bytes,
// report ID 0 first. p must hold that many bytes, or Read fails with
// io.ErrShortBuffer without consuming anything. A datagram of another size
// or report ID is consumed and reported as *FrameError; the connection
// stays usable. When the host has gone, Read returns io.EOF.
func (s *socketDeviceConn) Read(p []byte) (int, error) {
	if len(p) < ReportSize+1 {
		return 0, io.ErrShortBuffer
	}
	s.rmu.Lock()
	defer s.rmu.Unlock()
	s.p = p
	err := s.rc.Read(s.recvFn)
	s.p = nil
	if err == nil {
		err = s.err
	}
	switch {
	case err != nil:
		if errors.Is(err, net.ErrClosed) {
			return 0, fmt.Errorf("%w: reading report: %w", ErrClosed, err)
		}
		return 0, fmt.Errorf("hid: reading report: %w", err)
	case s.n == 0 && !s.empty:
		return 0, io.EOF
	case s.n != ReportSize+1 || p[0] != 0:
		fe := &FrameError{Len: s.n}
		if s.n > 0 {
			fe.ReportID = p[0]
		}
		return 0, fe
	}
	return s.n, nil
}

// Write sends one input report of exactly ReportSize bytes to the host, as
// a hidraw device delivers it; any other length is refused, since the host
// would read it as a report anyway.
func (s *socketDeviceConn) Write(p []byte) (int, error) {
	if len(p) != ReportSize {
		return 0, fmt.Errorf("hid: writing a %d-byte input report, want %d bytes", len(p), ReportSize)
	}
	n, err := s.c.Write(p)
	if errors.Is(err, net.ErrClosed) {
		return n, fmt.Errorf("%w: writing report: %w", ErrClosed, err)
	}
	return n, err
}

// Close closes the connection; the host's reads then return io.EOF. Close
// is idempotent.
func (s *socketDeviceConn) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.c.Close() })
	return s.closeErr
}
