//go:build !linux

package hid

import "context"

// Dial connects to a virtual key's socket. Only Linux has AF_UNIX
// SOCK_SEQPACKET sockets, so elsewhere it returns ErrUnsupported; serve a
// virtual key in-process with Pipe there.
func Dial(ctx context.Context, path string) (Conn, error) { return nil, ErrUnsupported }

// Listener is the device end of a virtual key's socket. Only Linux has
// one; elsewhere Listen returns ErrUnsupported.
type Listener struct{}

// Listen returns ErrUnsupported outside Linux.
func Listen(path string) (*Listener, error) { return nil, ErrUnsupported }

// Addr returns the path of the socket; outside Linux there is none.
func (l *Listener) Addr() string { return "" }

// Accept returns ErrUnsupported outside Linux.
func (l *Listener) Accept() (DeviceConn, error) { return nil, ErrUnsupported }

// Close does nothing outside Linux.
func (l *Listener) Close() error { return nil }
