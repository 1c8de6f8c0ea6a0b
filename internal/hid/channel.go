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
	// idleSlice is the longest single wait for a report. Waking up at
	// least this often is how a Channel notices that it was not running
	// itself (see starvedAfter).
	idleSlice = 100 * time.Millisecond
	// starvedAfter is how much later than asked a wait must end for the
	// Channel to conclude that its own process was not scheduled. Such a
	// stall is not the device's silence, and is not counted against the
	// idle timeout: the device's reports may be queued unread, or, for a
	// device in the same process such as the virtual key, the device was
	// starved of the same CPU.
	starvedAfter = 100 * time.Millisecond
)

// ErrIdleTimeout means a device stopped answering in the middle of a
// transaction.
var ErrIdleTimeout = errors.New("ctaphid: device stopped answering")

// ProtocolError reports a device response that breaks CTAPHID framing.
type ProtocolError struct{ Reason string }

func (e *ProtocolError) Error() string { return "ctaphid: bad response from device: " + e.Reason }

// ContextErr returns ctx's error, carrying its cause too when that says
// more (context.WithTimeoutCause and the like), so that callers can match
// either with errors.Is.
func ContextErr(ctx context.Context) error {
	err := ctx.Err()
	cause := context.Cause(ctx)
	switch {
	case err == nil, cause == nil, cause == err:
		return err
	case errors.Is(cause, err):
		return cause
	}
	return fmt.Errorf("%w: %w", err, cause)
}

// Channel is an allocated CTAPHID channel on a device: the host side of the
// protocol. Its methods serialise their transactions, so a Channel is safe
// for concurrent use; the device itself sees one transaction at a time.
//
// A transaction that ends without its answer (an idle timeout, a
// cancellation, a response that breaks framing, a lost channel) leaves the
// device and the Channel out of step: the device may still be working on
// the request, or its answer may still be on the way. The next transaction
// therefore resynchronises first (CTAP 2.1 §11.2.9.1.3): CTAPHID_INIT on
// the channel makes the device abandon what it was doing for it, and a new
// channel, allocated with a broadcast INIT, leaves whatever the device
// still sends on the old one unread. An answer is only ever taken from the
// channel the request was sent on, after the request was sent, so the
// answer to an older request is not delivered to a newer one.
type Channel struct {
	conn Conn
	// IdleTimeout overrides DefaultIdleTimeout when non-zero. Set it before
	// the first transaction.
	IdleTimeout time.Duration

	mu    sync.Mutex
	init  InitResponse
	stale bool   // out of step with the device: resynchronise before reuse
	out   []byte // reused framing buffer
	in    []byte // reused report buffer
	// report is the reused output report, report ID 0 first; always 0,
	// since only its last ReportSize bytes are written.
	report [ReportSize + 1]byte
	re     Reassembler
	// dl is the read deadline in force on conn, when dlSet says it is
	// known; see receive.
	dl    time.Time
	dlSet bool
}

// setReadDeadline sets conn's read deadline and remembers it.
func (c *Channel) setReadDeadline(t time.Time) error {
	if err := c.conn.SetReadDeadline(t); err != nil {
		c.dlSet = false
		return err
	}
	c.dl, c.dlSet = t, true
	return nil
}

// Open allocates a channel on the device behind conn with CTAPHID_INIT. The
// Channel owns conn from then on and closes it in Close.
func Open(ctx context.Context, conn Conn) (*Channel, error) {
	c := &Channel{conn: conn, in: make([]byte, ReportSize)}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.allocate(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Info returns the device's INIT response. Its CID changes when the
// Channel resynchronises.
func (c *Channel) Info() InitResponse {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.init
}

// Close releases the channel and closes the connection.
func (c *Channel) Close() error { return c.conn.Close() }

// allocate gets a channel with a broadcast INIT; c.mu is held.
func (c *Channel) allocate(ctx context.Context) error {
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return err
	}
	if err := c.send(BroadcastCID, CmdInit, nonce[:]); err != nil {
		return err
	}
	var r InitResponse
	var bad error
	// Another host's INIT answer on the broadcast channel is skipped, and
	// does not count as the device answering.
	_, err := c.receive(ctx, BroadcastCID, CmdInit, nil, func(msg []byte) bool {
		r, bad = ParseInitResponse(msg)
		if bad != nil {
			bad = &ProtocolError{Reason: "short INIT response"}
			return true
		}
		return bytes.Equal(r.Nonce[:], nonce[:])
	})
	if err == nil {
		err = bad
	}
	if err != nil {
		return fmt.Errorf("ctaphid: allocating channel: %w", err)
	}
	if r.CID == 0 || r.CID == BroadcastCID {
		return &ProtocolError{Reason: fmt.Sprintf("INIT allocated reserved channel %#x", r.CID)}
	}
	c.init = r
	return nil
}

// resync brings a stale channel back in step with the device; c.mu is
// held. INIT on the old channel aborts the device's transaction on it (CTAP
// 2.1 §11.2.9.1.3); the broadcast INIT after it allocates a new channel.
// The device handles the two in order, so once the new channel's answer
// is in, the old transaction is over, and everything the device sent
// before it, the old transaction's late answer included, has been read
// and dropped. Whatever a device that ignores the abort still sends comes
// on the old channel, which is no longer read.
func (c *Channel) resync(ctx context.Context) error {
	var nonce [8]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return err
	}
	if err := c.send(c.init.CID, CmdInit, nonce[:]); err != nil {
		return fmt.Errorf("ctaphid: resynchronising channel: %w", err)
	}
	if err := c.allocate(ctx); err != nil {
		return fmt.Errorf("ctaphid: resynchronising channel: %w", err)
	}
	c.stale = false
	return nil
}

// inStep reports whether a transaction that failed with err leaves the
// device and the Channel in step: the device answered the request in full
// on the channel with an error that refuses it.
func inStep(err error) bool {
	var e Error
	if !errors.As(err, &e) {
		return false
	}
	switch e {
	case ErrInvalidCmd, ErrInvalidPar, ErrInvalidLen, ErrChannelBusy, ErrLockRequired:
		return true
	}
	// ERR_INVALID_SEQ and ERR_MSG_TIMEOUT mean the device saw broken
	// framing, ERR_INVALID_CHANNEL that it forgot the channel.
	return false
}

// Transact sends one request and returns the response payload. While the
// device works it sends KEEPALIVE; each one is passed to keepalive (which
// may be nil). A CTAPHID_ERROR answer is returned as an Error.
//
// Transact waits as long as the device keeps sending KEEPALIVE, up to
// ctx's deadline; a silence longer than the idle timeout ends it with
// ErrIdleTimeout. Reports on other channels are skipped and do not count as
// the device answering.
//
// When ctx is done during a CBOR transaction, Transact sends CTAPHID_CANCEL,
// so that the device stops waiting for a touch, and returns an error
// wrapping ctx.Err() (and its cause) at once. The device's final answer is
// read and dropped when the next transaction resynchronises the channel.
func (c *Channel) Transact(ctx context.Context, cmd Command, data []byte, keepalive func(status byte)) ([]byte, error) {
	if ctx.Err() != nil {
		return nil, ContextErr(ctx)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stale {
		if err := c.resync(ctx); err != nil {
			return nil, err
		}
	}
	cid := c.init.CID
	if err := c.send(cid, cmd, data); err != nil {
		c.stale = true
		return nil, err
	}
	resp, err := c.receive(ctx, cid, cmd, keepalive, nil)
	if err == nil {
		return resp, nil
	}
	if !inStep(err) {
		c.stale = true
	}
	if ctx.Err() == nil {
		return nil, err
	}
	// The caller gave up: tell the device, so it stops waiting for a touch.
	if cmd == CmdCBOR {
		if serr := c.send(cid, CmdCancel, nil); serr != nil {
			return nil, errors.Join(ContextErr(ctx), serr)
		}
	}
	return nil, ContextErr(ctx)
}

func (c *Channel) send(cid uint32, cmd Command, data []byte) error {
	var err error
	c.out, err = AppendPackets(c.out[:0], cid, cmd, data)
	if err != nil {
		return err
	}
	report := c.report[:] // a local array would escape through Write
	for off := 0; off < len(c.out); off += ReportSize {
		// hidraw framing: report ID 0, then the 64-byte report.
		copy(report[1:], c.out[off:off+ReportSize])
		if _, err := c.conn.Write(report[:]); err != nil {
			return fmt.Errorf("ctaphid: writing report: %w", err)
		}
	}
	return nil
}

// receive reads reports until a whole response for cid arrives that accept
// (nil: any) takes. Reports for other channels are skipped, as a host
// sharing a device must, and so are continuation packets with no message
// in progress. Only a report on cid that is part of an answer (KEEPALIVE
// included) shows that the device is still there and restarts the idle
// timer; a message that accept refuses does not.
func (c *Channel) receive(ctx context.Context, cid uint32, cmd Command, keepalive func(byte), accept func([]byte) bool) ([]byte, error) {
	idle := c.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}
	// Cancellation interrupts a blocked Read through its deadline. A
	// context that is never done needs no callback, which saves its
	// allocations on every transaction; nor does the deadline of an
	// OperationContext, which bounds the reads below by itself.
	var (
		interrupted chan struct{}
		stop        func() bool
	)
	if watch := watched(ctx); watch.Done() != nil {
		interrupted = make(chan struct{})
		stop = context.AfterFunc(watch, func() {
			c.conn.SetReadDeadline(time.Unix(1, 0))
			close(interrupted)
		})
	}
	defer func() {
		// A callback already running must finish first, and its past
		// deadline be lifted, or it lands on the next receive and fails
		// it at once.
		if stop != nil && !stop() {
			<-interrupted
			c.setReadDeadline(time.Time{})
		}
	}()
	c.re.Reset()
	now := time.Now()
	heard := now // the device's last sign of life
	for {
		if ctxErrAt(ctx, now) != nil {
			return nil, ContextErr(ctx)
		}
		silentUntil := heard.Add(idle)
		if !now.Before(silentUntil) {
			return nil, ErrIdleTimeout
		}
		deadline := now.Add(idleSlice)
		if silentUntil.Before(deadline) {
			deadline = silentUntil
		}
		if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
			if !now.Before(d) {
				<-ctx.Done() // due at once; its timer has yet to run
				return nil, ContextErr(ctx)
			}
			deadline = d
		}
		// The deadline in force is kept while it is no later than this
		// one and at least half a slice away: setting one costs a timer
		// update, and would otherwise be paid for every report.
		if c.dlSet && !c.dl.IsZero() && !c.dl.After(deadline) && c.dl.Sub(now) >= idleSlice/2 {
			deadline = c.dl
		} else if err := c.setReadDeadline(deadline); err != nil {
			return nil, fmt.Errorf("ctaphid: setting read deadline: %w", err)
		}
		if ctxErrAt(ctx, now) != nil { // lost a race with AfterFunc
			return nil, ContextErr(ctx)
		}
		n, err := c.conn.Read(c.in)
		now = time.Now()
		if err != nil {
			if !IsTimeout(err) {
				return nil, fmt.Errorf("ctaphid: reading report: %w", err)
			}
			// Woken much later than asked: this process was not
			// running, so it could not have heard the device. That
			// time does not count as the device's silence.
			if late := now.Sub(deadline); late > starvedAfter {
				heard = heard.Add(late)
			}
			continue
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
				heard = now
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
		} else if !c.re.Active() {
			// A continuation packet with no message in progress, such
			// as one trailing a complete answer, is ignored, as CTAP 2.1
			// §11.2.4 has devices do with spurious continuations.
			continue
		}
		msg, err := c.re.Push(p)
		if err != nil {
			return nil, &ProtocolError{Reason: "continuation packet out of sequence"}
		}
		switch {
		case msg == nil:
			heard = now
		case accept == nil || accept(msg.Data):
			return msg.Data, nil
		}
	}
}

// ctxErrAt is ctx.Err() at about now, which spares an OperationContext
// reading the clock again.
func ctxErrAt(ctx context.Context, now time.Time) error {
	if c, ok := ctx.(*lazyCtx); ok {
		return c.errAt(now)
	}
	return ctx.Err()
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
