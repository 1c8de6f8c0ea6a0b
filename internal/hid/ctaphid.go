package hid

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// CTAPHID constants (CTAP 2.1 §11.2.4 - §11.2.9).
const (
	// BroadcastCID is the channel on which INIT allocates a channel.
	BroadcastCID uint32 = 0xffffffff
	// MaxMessageSize is the largest CTAPHID payload: one init packet and
	// 128 continuation packets.
	MaxMessageSize = initDataLen + 128*contDataLen // 7609

	initDataLen = ReportSize - 7
	contDataLen = ReportSize - 5
	// ProtocolVersion is the CTAPHID protocol version INIT reports.
	ProtocolVersion = 2
)

// Command is a CTAPHID command, without the init-packet bit 0x80.
type Command byte

// CTAPHID commands (CTAP 2.1 §11.2.9).
const (
	CmdPing      Command = 0x01
	CmdMsg       Command = 0x03
	CmdLock      Command = 0x04
	CmdInit      Command = 0x06
	CmdWink      Command = 0x08
	CmdCBOR      Command = 0x10
	CmdCancel    Command = 0x11
	CmdKeepalive Command = 0x3B
	CmdError     Command = 0x3F
)

func (c Command) String() string {
	switch c {
	case CmdPing:
		return "PING"
	case CmdMsg:
		return "MSG"
	case CmdLock:
		return "LOCK"
	case CmdInit:
		return "INIT"
	case CmdWink:
		return "WINK"
	case CmdCBOR:
		return "CBOR"
	case CmdCancel:
		return "CANCEL"
	case CmdKeepalive:
		return "KEEPALIVE"
	case CmdError:
		return "ERROR"
	}
	return fmt.Sprintf("0x%02x", byte(c))
}

// Capability flags in the INIT response (CTAP 2.1 §11.2.9.1.3).
const (
	CapWink byte = 0x01 // the device implements WINK
	CapCBOR byte = 0x04 // the device implements CBOR (CTAP2)
	CapNMSG byte = 0x08 // the device does not implement MSG (CTAP1/U2F)
)

// Keepalive status codes (CTAP 2.1 §11.2.9.2.1).
const (
	KeepaliveProcessing byte = 1
	KeepaliveUPNeeded   byte = 2
)

// Error is a CTAPHID_ERROR code (CTAP 2.1 §11.2.9.1.6). Compare with
// errors.Is.
type Error byte

// CTAPHID error codes.
const (
	ErrInvalidCmd     Error = 0x01
	ErrInvalidPar     Error = 0x02
	ErrInvalidLen     Error = 0x03
	ErrInvalidSeq     Error = 0x04
	ErrMsgTimeout     Error = 0x05
	ErrChannelBusy    Error = 0x06
	ErrLockRequired   Error = 0x0A
	ErrInvalidChannel Error = 0x0B
	ErrOther          Error = 0x7F
)

func (e Error) Error() string {
	name := map[Error]string{
		ErrInvalidCmd:     "ERR_INVALID_CMD",
		ErrInvalidPar:     "ERR_INVALID_PAR",
		ErrInvalidLen:     "ERR_INVALID_LEN",
		ErrInvalidSeq:     "ERR_INVALID_SEQ",
		ErrMsgTimeout:     "ERR_MSG_TIMEOUT",
		ErrChannelBusy:    "ERR_CHANNEL_BUSY",
		ErrLockRequired:   "ERR_LOCK_REQUIRED",
		ErrInvalidChannel: "ERR_INVALID_CHANNEL",
		ErrOther:          "ERR_OTHER",
	}[e]
	if name == "" {
		return fmt.Sprintf("ctaphid: error 0x%02x", byte(e))
	}
	return fmt.Sprintf("ctaphid: %s (0x%02x)", name, byte(e))
}

// Errors from the framing layer itself (not sent by a device).
var (
	// ErrMessageTooLarge means a payload exceeds MaxMessageSize.
	ErrMessageTooLarge = errors.New("ctaphid: message larger than 7609 bytes")
	// ErrShortReport means a report shorter than ReportSize was read.
	ErrShortReport = errors.New("ctaphid: short report")
)

// Message is one reassembled CTAPHID message.
type Message struct {
	CID  uint32
	Cmd  Command
	Data []byte
}

// Packet is a parsed 64-byte CTAPHID report.
type Packet struct {
	CID  uint32
	Init bool    // init packet (bit 7 of byte 4 set)
	Cmd  Command // init packets only
	BCNT int     // init packets only: total payload length
	Seq  byte    // continuation packets only
	Data []byte  // payload bytes carried by this packet (aliases the report)
}

// ParsePacket parses a 64-byte report. Data aliases report.
func ParsePacket(report []byte) (Packet, error) {
	if len(report) < ReportSize {
		return Packet{}, ErrShortReport
	}
	report = report[:ReportSize]
	p := Packet{CID: binary.BigEndian.Uint32(report)}
	if report[4]&0x80 != 0 {
		p.Init = true
		p.Cmd = Command(report[4] & 0x7f)
		p.BCNT = int(binary.BigEndian.Uint16(report[5:7]))
		p.Data = report[7:]
	} else {
		p.Seq = report[4]
		p.Data = report[5:]
	}
	return p, nil
}

// AppendPackets appends the reports that carry one message (each exactly
// ReportSize bytes, zero padded) to dst and returns the extended slice.
// Reusing dst across calls keeps framing free of allocations.
func AppendPackets(dst []byte, cid uint32, cmd Command, data []byte) ([]byte, error) {
	if len(data) > MaxMessageSize {
		return dst, ErrMessageTooLarge
	}
	var hdr [7]byte
	binary.BigEndian.PutUint32(hdr[:], cid)
	hdr[4] = byte(cmd) | 0x80
	binary.BigEndian.PutUint16(hdr[5:], uint16(len(data)))
	dst = append(dst, hdr[:]...)
	n := min(len(data), initDataLen)
	dst = appendPadded(dst, data[:n], initDataLen)
	data = data[n:]
	for seq := byte(0); len(data) > 0; seq++ {
		dst = binary.BigEndian.AppendUint32(dst, cid)
		dst = append(dst, seq)
		n := min(len(data), contDataLen)
		dst = appendPadded(dst, data[:n], contDataLen)
		data = data[n:]
	}
	return dst, nil
}

func appendPadded(dst, b []byte, size int) []byte {
	dst = append(dst, b...)
	for range size - len(b) {
		dst = append(dst, 0)
	}
	return dst
}

// Reassembler collects the packets of one message on one channel. The zero
// value is ready; it is not safe for concurrent use.
type Reassembler struct {
	active bool
	cid    uint32
	cmd    Command
	need   int
	seq    byte
	buf    []byte
}

// Active reports whether a message is partly received.
func (r *Reassembler) Active() bool { return r.active }

// CID is the channel of the message in progress.
func (r *Reassembler) CID() uint32 { return r.cid }

// Reset drops any message in progress.
func (r *Reassembler) Reset() { r.active = false; r.buf = r.buf[:0] }

// Start begins a message from an init packet. It returns the message when
// the init packet carries all of it. A BCNT over MaxMessageSize is
// ErrInvalidLen and leaves the reassembler idle.
func (r *Reassembler) Start(p Packet) (msg *Message, err error) {
	r.Reset()
	if !p.Init {
		return nil, ErrInvalidSeq
	}
	if p.BCNT > MaxMessageSize {
		return nil, ErrInvalidLen
	}
	r.active, r.cid, r.cmd, r.need, r.seq = true, p.CID, p.Cmd, p.BCNT, 0
	r.buf = append(r.buf[:0], p.Data[:min(len(p.Data), p.BCNT)]...)
	return r.done(), nil
}

// Continue adds a continuation packet of the message in progress. A wrong
// sequence number is ErrInvalidSeq and drops the message.
func (r *Reassembler) Continue(p Packet) (msg *Message, err error) {
	if !r.active || p.Init || p.CID != r.cid {
		return nil, ErrInvalidSeq
	}
	if p.Seq != r.seq || p.Seq > 127 {
		r.Reset()
		return nil, ErrInvalidSeq
	}
	r.seq++
	r.buf = append(r.buf, p.Data[:min(len(p.Data), r.need-len(r.buf))]...)
	return r.done(), nil
}

func (r *Reassembler) done() *Message {
	if len(r.buf) < r.need {
		return nil
	}
	r.active = false
	// The message owns a copy, so the reassembler's buffer can be reused.
	return &Message{CID: r.cid, Cmd: r.cmd, Data: append([]byte(nil), r.buf...)}
}

// Push feeds one packet on the reassembler's channel, starting or
// continuing a message as the packet says.
func (r *Reassembler) Push(p Packet) (*Message, error) {
	if p.Init {
		return r.Start(p)
	}
	return r.Continue(p)
}

// InitResponse is the payload of a CTAPHID_INIT response (CTAP 2.1
// §11.2.9.1.3).
type InitResponse struct {
	Nonce        [8]byte
	CID          uint32
	Version      byte // CTAPHID protocol version, 2
	Major, Minor byte
	Build        byte
	Capabilities byte
}

// Marshal encodes the 17-byte INIT response.
func (r InitResponse) Marshal() []byte {
	b := make([]byte, 17)
	copy(b, r.Nonce[:])
	binary.BigEndian.PutUint32(b[8:], r.CID)
	b[12], b[13], b[14], b[15], b[16] = r.Version, r.Major, r.Minor, r.Build, r.Capabilities
	return b
}

// ParseInitResponse decodes an INIT response. Devices may append bytes;
// fewer than 17 is ErrInvalidLen.
func ParseInitResponse(b []byte) (InitResponse, error) {
	if len(b) < 17 {
		return InitResponse{}, ErrInvalidLen
	}
	var r InitResponse
	copy(r.Nonce[:], b)
	r.CID = binary.BigEndian.Uint32(b[8:])
	r.Version, r.Major, r.Minor, r.Build, r.Capabilities = b[12], b[13], b[14], b[15], b[16]
	return r, nil
}
