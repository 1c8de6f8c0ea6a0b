//go:build !linux

package hid

import "context"

// Dial is Linux only: other systems lack AF_UNIX SOCK_SEQPACKET. Use a
// virtual key in-process there.
func Dial(ctx context.Context, path string) (Conn, error) { return nil, ErrUnsupported }

// Listener accepts hosts on a virtual key's socket (Linux only).
type Listener struct{}

// Listen is Linux only; it returns ErrUnsupported.
func Listen(path string) (*Listener, error) { return nil, ErrUnsupported }

// Addr returns the socket path.
func (l *Listener) Addr() string { return "" }

// Accept returns ErrUnsupported.
func (l *Listener) Accept() (DeviceConn, error) { return nil, ErrUnsupported }

// Close does nothing.
func (l *Listener) Close() error { return nil }
