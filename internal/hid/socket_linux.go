package hid

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
)

// Dial connects to a virtual key's socket: an AF_UNIX SOCK_SEQPACKET socket
// that keeps hidraw framing, one datagram per report. The returned Conn is
// a *net.UnixConn.
func Dial(ctx context.Context, path string) (Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "unixpacket", path)
	if err != nil {
		return nil, fmt.Errorf("hid: connecting to %s: %w", path, err)
	}
	return c.(*net.UnixConn), nil
}

// Listener accepts hosts on a virtual key's socket.
type Listener struct {
	l    *net.UnixListener
	path string
}

// Listen creates the socket at path. A stale socket left by a server that
// is gone is replaced; a live one, or a file that is not a socket, is an
// error.
func Listen(path string) (*Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("hid: %s exists and is not a socket", path)
		}
		c, err := net.Dial("unixpacket", path)
		if err == nil {
			c.Close()
			return nil, fmt.Errorf("hid: %s: a server is already listening", path)
		}
		if !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.EPROTOTYPE) {
			return nil, fmt.Errorf("hid: checking %s: %w", path, err)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("hid: removing stale socket: %w", err)
		}
	}
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: path, Net: "unixpacket"})
	if err != nil {
		return nil, fmt.Errorf("hid: listening on %s: %w", path, err)
	}
	return &Listener{l: l, path: path}, nil
}

// Addr returns the socket path.
func (l *Listener) Addr() string { return l.path }

// Accept waits for the next host and returns the device end of its
// connection.
func (l *Listener) Accept() (DeviceConn, error) {
	c, err := l.l.AcceptUnix()
	if err != nil {
		return nil, err
	}
	return &socketDevice{c: c, buf: make([]byte, ReportSize+2)}, nil
}

// Close stops listening and removes the socket file.
func (l *Listener) Close() error { return l.l.Close() }

// socketDevice is the device end of a socket connection. It checks that
// every datagram is one hidraw output report.
type socketDevice struct {
	c   *net.UnixConn
	buf []byte // one byte larger than a report, to see oversized datagrams
}

func (s *socketDevice) Read(p []byte) (int, error) {
	n, _, flags, _, err := s.c.ReadMsgUnix(s.buf, nil)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, io.EOF // SOCK_SEQPACKET: the host closed
	}
	if flags&syscall.MSG_TRUNC != 0 || n != ReportSize+1 || s.buf[0] != 0 {
		return 0, &FrameError{Len: n, ReportID: s.buf[0]}
	}
	if len(p) < n {
		return 0, io.ErrShortBuffer
	}
	return copy(p, s.buf[:n]), nil
}

func (s *socketDevice) Write(p []byte) (int, error) { return s.c.Write(p) }

func (s *socketDevice) Close() error { return s.c.Close() }
