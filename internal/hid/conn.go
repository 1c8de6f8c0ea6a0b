// Package hid implements CTAPHID (CTAP 2.1 §11.2), the framing that carries
// CTAP messages over USB HID reports, and the transports that move those
// reports: Linux hidraw, an AF_UNIX SOCK_SEQPACKET socket with hidraw framing,
// and an in-memory pipe.
//
// Both ends live here: [Channel] is the host side used by the fido client,
// [Serve] the device side used by the virtual authenticator.
package hid

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"
)

// ReportSize is the size of a CTAPHID report (CTAP 2.1 §11.2.4).
const ReportSize = 64

// Conn carries HID reports with hidraw framing. It is what the host sees of a
// device, whether /dev/hidrawN, a socket or a pipe:
//
//   - Write sends one output report: ReportSize+1 bytes, report ID 0 first.
//   - Read returns one input report of ReportSize bytes; p must hold them.
//   - SetReadDeadline bounds a pending or future Read, as on *os.File; a Read
//     past the deadline fails with an error for which IsTimeout is true.
//
// *os.File (hidraw) and *net.UnixConn (SOCK_SEQPACKET) satisfy it.
type Conn interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	SetReadDeadline(t time.Time) error
	Close() error
}

// DeviceConn is the device's end of a transport: Read returns what the host
// wrote (ReportSize+1 bytes, report ID first) and Write sends one input report
// of ReportSize bytes. Reads block until a report arrives or the connection
// is closed.
type DeviceConn interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	Close() error
}

// ErrUnsupported is returned by transports that this platform lacks, such as
// hidraw outside Linux.
var ErrUnsupported = errors.New("hid: transport not supported on this platform")

// ErrClosed is returned by operations on a closed pipe end.
var ErrClosed = errors.New("hid: connection closed")

// IsTimeout reports whether err is a read deadline expiring.
func IsTimeout(err error) bool {
	var t interface{ Timeout() bool }
	return errors.As(err, &t) && t.Timeout()
}

// FrameError reports a datagram from the host that is not a hidraw output
// report: not ReportSize+1 bytes, or not report ID 0. The transport stays
// usable; the datagram is dropped.
type FrameError struct {
	Len      int  // bytes in the datagram
	ReportID byte // first byte received
}

func (e *FrameError) Error() string {
	return fmt.Sprintf("hid: bad output report: %d bytes with report ID %d, want %d bytes with report ID 0",
		e.Len, e.ReportID, ReportSize+1)
}

// IsSocket reports whether path names a socket, such as a virtual key's.
func IsSocket(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode()&fs.ModeSocket != 0
}
