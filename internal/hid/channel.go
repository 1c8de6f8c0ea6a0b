package hid

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Defaults for a Channel's timeouts.
const (
	// DefaultIdleTimeout bounds the silence between two reports of one
	// response. Devices send KEEPALIVE every 100 ms while they work, so a
	// longer silence means the device is gone or wedged.
	DefaultIdleTimeout = 3 * time.Second
	// cancelDrain bounds how long Transact waits for the device's answer
	// to CANCEL before giving the channel up.
	cancelDrain = 2 * time.Second
)

// ErrIdleTimeout means a device stopped answering in the middle of a
// transaction.
var ErrIdleTimeout = errors.New("ctaphid: device stopped answering")

// ProtocolError reports a device response that breaks CTAPHID framing.
type ProtocolError struct{ Reason string }

func (e *ProtocolError) Error() string { return "ctaphid: bad response from device: " + e.Reason }

// Channel is an allocated CTAPHID channel on a device: the host side of the
// protocol. Its methods serialise their transactions, so a Channel is safe
// for concurrent use; the device itself sees one transaction at a time.
type Channel struct {
	conn Conn
	// IdleTimeout overrides DefaultIdleTimeout when non-zero. Set it before
	// the first transaction.
	IdleTimeout time.Duration

	mu   sync.Mutex
	init InitResponse
	out  []byte // reused framing buffer
	in   []byte // reused report buffer
	re   Reassembler
}

// Open allocates a channel on the device behind conn with CTAPHID_INIT. The
// Channel owns conn from then on and closes it in Close.
func Open(ctx context.Context, conn Conn) (*Channel, error) {
	c := &Channel{conn: conn, in: make([]byte, ReportSize)}
	if err := c.allocate(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Info returns the device's INIT response.
func (c *Channel) Info() InitResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.init
}

// Close releases the channel and closes the connection.
func (c *Channel) Close() error { return c.conn.Close() }

func (c *Channel) allocate(ctx context.Context) error {
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.send(BroadcastCID, CmdInit, nonce[:]); err != nil {
		return err
	}
	for {
		msg, err := c.receive(ctx, BroadcastCID, CmdInit, nil)
		if err != nil {
			return fmt.Errorf("ctaphid: allocating channel: %w", err)
		}
		r, err := ParseInitResponse(msg)
		if err != nil {
			return &ProtocolError{Reason: "short INIT response"}
		}
		// Another host's INIT answer on the broadcast channel: keep waiting.
		if !bytes.Equal(r.Nonce[:], nonce[:]) {
			continue
		}
		if r.CID == 0 || r.CID == BroadcastCID {
			return &ProtocolError{Reason: fmt.Sprintf("INIT allocated reserved channel %#x", r.CID)}
		}
		c.init = r
		return nil
	}
}

// Transact sends one request and returns the response payload. While the
// device works it sends KEEPALIVE; each one is passed to keepalive (which
// may be nil). A CTAPHID_ERROR answer is returned as an Error.
//
// When ctx is done during a CBOR transaction, Transact sends CTAPHID_CANCEL,
// drains the device's final answer and returns an error wrapping ctx.Err().
func (c *Channel) Transact(ctx context.Context, cmd Command, data []byte, keepalive func(status byte)) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cid := c.init.CID
	if err := c.send(cid, cmd, data); err != nil {
		return nil, err
	}
	resp, err := c.receive(ctx, cid, cmd, keepalive)
	if err == nil || ctx.Err() == nil {
		return resp, err
	}
	// The caller gave up: tell the device, so it stops waiting for a touch,
	// and read its final frame so the next transaction starts clean.
	if cmd == CmdCBOR {
		if serr := c.send(cid, CmdCancel, nil); serr != nil {
			return nil, errors.Join(ctx.Err(), serr)
		}
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelDrain)
		_, derr := c.receive(dctx, cid, cmd, nil)
		cancel()
		if derr != nil && !errors.Is(derr, context.DeadlineExceeded) {
			return nil, fmt.Errorf("%w (device answered cancel with: %v)", ctx.Err(), derr)
		}
	}
	return nil, ctx.Err()
}

func (c *Channel) send(cid uint32, cmd Command, data []byte) error {
	var err error
	c.out, err = AppendPackets(c.out[:0], cid, cmd, data)
	if err != nil {
		return err
	}
	var report [ReportSize + 1]byte
	for off := 0; off < len(c.out); off += ReportSize {
		// hidraw framing: report ID 0, then the 64-byte report.
		copy(report[1:], c.out[off:off+ReportSize])
		if _, err := c.conn.Write(report[:]); err != nil {
			return fmt.Errorf("ctaphid: writing report: %w", err)
		}
	}
	return nil
}

// receive reads reports until a whole response for cid arrives. Reports for
// other channels are skipped, as a host sharing a device must.
func (c *Channel) receive(ctx context.Context, cid uint32, cmd Command, keepalive func(byte)) ([]byte, error) {
	idle := c.IdleTimeout
	if idle == 0 {
		idle = DefaultIdleTimeout
	}
	// Cancellation interrupts a blocked Read through its deadline.
	interrupted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		c.conn.SetReadDeadline(time.Unix(1, 0))
		close(interrupted)
	})
	defer func() {
		// A callback already running must finish first, or its past
		// deadline can land on the next receive (the drain after CANCEL)
		// and fail it at once.
		if !stop() {
			<-interrupted
		}
		c.conn.SetReadDeadline(time.Time{})
	}()
	c.re.Reset()
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		deadline := time.Now().Add(idle)
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			deadline = d
		}
		if err := c.conn.SetReadDeadline(deadline); err != nil {
			return nil, fmt.Errorf("ctaphid: setting read deadline: %w", err)
		}
		if ctx.Err() != nil { // lost a race with AfterFunc
			return nil, ctx.Err()
		}
		n, err := c.conn.Read(c.in)
		if err != nil {
			if IsTimeout(err) {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				return nil, ErrIdleTimeout
			}
			return nil, fmt.Errorf("ctaphid: reading report: %w", err)
		}
		if n < ReportSize {
			return nil, &ProtocolError{Reason: fmt.Sprintf("%d-byte report", n)}
		}
		p, _ := ParsePacket(c.in[:n])
		if p.CID != cid {
			continue
		}
		if p.Init {
			switch p.Cmd {
			case CmdKeepalive:
				if keepalive != nil && p.BCNT >= 1 {
					keepalive(p.Data[0])
				}
				continue
			case CmdError:
				if p.BCNT < 1 {
					return nil, &ProtocolError{Reason: "empty ERROR"}
				}
				return nil, Error(p.Data[0])
			case cmd:
			default:
				return nil, &ProtocolError{Reason: fmt.Sprintf("answer %v to %v", p.Cmd, cmd)}
			}
		}
		msg, err := c.re.Push(p)
		if err != nil {
			return nil, &ProtocolError{Reason: "continuation packet out of sequence"}
		}
		if msg != nil {
			return msg.Data, nil
		}
	}
}

// Ping sends data with CTAPHID_PING and checks that it comes back.
func (c *Channel) Ping(ctx context.Context, data []byte) error {
	resp, err := c.Transact(ctx, CmdPing, data, nil)
	if err != nil {
		return err
	}
	if !bytes.Equal(resp, data) {
		return &ProtocolError{Reason: "PING echoed different data"}
	}
	return nil
}

// Wink asks the device to identify itself (blink, beep).
func (c *Channel) Wink(ctx context.Context) error {
	_, err := c.Transact(ctx, CmdWink, nil, nil)
	return err
}

// Lock reserves the device for this channel for seconds (0 releases,
// at most 10), per CTAP 2.1 §11.2.9.2.4.
func (c *Channel) Lock(ctx context.Context, seconds byte) error {
	_, err := c.Transact(ctx, CmdLock, []byte{seconds}, nil)
	return err
}
