package hid

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"
)

// Handler answers the messages a CTAPHID device receives. Implementations
// see whole, reassembled messages and never see framing; [RequestOrigin]
// of the ctx they get names the host's channel.
type Handler interface {
	// CBOR handles a CTAPHID_CBOR request: a CTAP2 command byte and its
	// parameters. It returns the response: a status byte and CBOR. ctx is
	// cancelled when the host sends CTAPHID_CANCEL or re-INITs the channel;
	// status sets what the periodic KEEPALIVE reports (KeepaliveProcessing
	// or KeepaliveUPNeeded).
	//
	// A re-INIT abandons the request at once (CTAP 2.1 §11.2.9.1.3): the
	// Server takes the next one while the abandoned call is still
	// returning, and drops its answer. So calls may overlap then, as they
	// do anyway for a Handler that serves several hosts.
	CBOR(ctx context.Context, req []byte, status func(byte)) []byte
	// Msg handles a CTAPHID_MSG request: a U2F (CTAP1) APDU. It returns
	// the response APDU, status word last.
	Msg(ctx context.Context, apdu []byte) []byte
	// Wink asks the device to identify itself.
	Wink()
}

// Server runs the device side of CTAPHID over a DeviceConn: it allocates
// channels, reassembles messages, answers framing errors with
// CTAPHID_ERROR, sends KEEPALIVE while the Handler works on a CBOR or MSG
// request (CTAP 2.1 §11.2.9.2.1: at least every 100 ms), and turns
// CTAPHID_CANCEL into context cancellation. The zero value of each field
// but Handler is a sensible default.
type Server struct {
	Handler Handler
	// Capabilities are the INIT capability flags (CapWink, CapCBOR, CapNMSG).
	Capabilities byte
	// Major, Minor and Build are the device version INIT reports.
	Major, Minor, Build byte
	// KeepaliveInterval is how often KEEPALIVE is sent while a CBOR or
	// MSG request is processed. Zero means 100 ms.
	KeepaliveInterval time.Duration
	// MessageTimeout bounds the gap between packets of one message; a
	// message not completed in time is dropped with ERR_MSG_TIMEOUT. Zero
	// means one second.
	MessageTimeout time.Duration
	// Rand is the source of channel IDs. Nil means crypto/rand.
	Rand io.Reader
}

// Origin names where a request came from: one channel of one Server's
// connection. Two Origins are equal only for the same channel of the same
// Serve call, so a device that keeps state between commands (CTAP's
// getNextAssertion, credential management enumerations) can keep each
// host's apart. The zero Origin is that of a request that came through no
// Server.
type Origin struct {
	st  *serveState
	cid uint32
}

type originKey struct{}

// RequestOrigin returns the Origin of the request whose Handler call ctx
// belongs to: the zero Origin for a ctx that no Server made.
func RequestOrigin(ctx context.Context) Origin {
	o, _ := ctx.Value(originKey{}).(Origin)
	return o
}

// maxChannels bounds the channel table; the oldest allocation is forgotten
// first, as real keys with fixed tables do.
const maxChannels = 256

type running struct {
	cid    uint32
	cmd    Command
	ctx    *lazyCtx // the Handler's; abort cancels the call
	status atomic.Uint32
}

// serveState is one Serve call's. Its reader handles each report as it
// reads it, the worker answers a request as soon as the Handler returns,
// and timers send KEEPALIVE and time out messages, each under mu, with no
// goroutine between them to hand messages to: each handoff is a
// scheduler wakeup, and they were most of what a message cost besides
// the Handler.
type serveState struct {
	s    *Server
	conn DeviceConn

	mu       sync.Mutex // guards all below, and writes to conn
	out      []byte
	channels []uint32
	re       Reassembler
	busy     *running
	lockCID  uint32
	lockEnd  time.Time
	done     bool  // Serve returned or is returning: nothing more is sent
	err      error // a failed write outside the reader, for Serve to return
	// keepalive sends KEEPALIVE while busy; msgTimer fires at msgDue
	// for the message being received.
	keepalive *time.Timer
	msgTimer  *time.Timer
	msgDue    time.Time
	// work takes a Handler call when the worker goroutine is idle; when
	// it is still returning from an abandoned call, the next call gets a
	// goroutine of its own, so calls may overlap as Handler says.
	work chan func()
}

// Serve answers requests on conn until ctx is done or conn fails. It closes
// conn before returning. It returns nil when conn reaches EOF or ctx ends.
func (s *Server) Serve(ctx context.Context, conn DeviceConn) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer conn.Close()
	// A Read blocked when ctx ends is woken by closing conn.
	stopClose := context.AfterFunc(ctx, func() { conn.Close() })
	defer stopClose()

	st := &serveState{s: s, conn: conn, work: make(chan func())}
	st.keepalive = time.AfterFunc(time.Hour, st.keepaliveTick)
	st.keepalive.Stop()
	st.msgTimer = time.AfterFunc(time.Hour, st.messageTimeout)
	st.msgTimer.Stop()
	defer func() {
		st.mu.Lock()
		st.done = true
		if st.busy != nil {
			st.busy.ctx.abort()
		}
		st.keepalive.Stop()
		st.msgTimer.Stop()
		st.mu.Unlock()
	}()
	go func() {
		// The Handler's calls run here, on one goroutine whose stack has
		// grown to what they need, rather than each on a new one that
		// grows its stack again.
		for {
			select {
			case f := <-st.work:
				f()
			case <-ctx.Done():
				return
			}
		}
	}()
	// One buffer serves every report: nothing keeps a report once
	// handled, so reading allocates nothing per report.
	buf := make([]byte, ReportSize+1)
	var fe *FrameError // out here: errors.As makes it escape
	for {
		n, err := conn.Read(buf)
		for err != nil && errors.As(err, &fe) {
			// A malformed datagram is dropped; the link stays up.
			n, err = conn.Read(buf)
		}
		if err != nil {
			st.mu.Lock()
			werr := st.err
			st.mu.Unlock()
			switch {
			case ctx.Err() != nil:
				// Whatever failed as ctx ended, Serve was told to stop.
				return nil
			case werr != nil:
				return werr
			case errors.Is(err, io.EOF), errors.Is(err, ErrClosed):
				return nil
			}
			return err
		}
		// hidraw framing: report ID 0 then 64 bytes; anything else is
		// not a CTAPHID report and is dropped.
		if n != ReportSize+1 || buf[0] != 0 {
			continue
		}
		st.mu.Lock()
		err = st.report(ctx, buf[1:])
		st.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// report handles one report from the host and brings the timers in step
// with the state it leaves; st.mu is held.
func (st *serveState) report(ctx context.Context, b []byte) error {
	wasActive := st.re.Active()
	wasBusy := st.busy
	if err := st.packet(ctx, b); err != nil {
		return err
	}
	if st.re.Active() && !wasActive {
		st.msgDue = time.Now().Add(st.s.messageTimeout())
		st.msgTimer.Reset(st.s.messageTimeout())
	} else if !st.re.Active() && wasActive {
		st.msgTimer.Stop()
	}
	switch {
	case st.busy == nil && wasBusy != nil:
		// A re-INIT abandoned the request: its answer, when it comes, is
		// not sent, and neither are more KEEPALIVEs.
		st.keepalive.Stop()
	case st.busy != nil && st.busy != wasBusy:
		// The KEEPALIVE cadence covers MSG too: a U2F request can wait as
		// long as a CBOR one for a Handler that serves another host
		// meanwhile.
		st.keepalive.Reset(st.s.keepaliveInterval())
	}
	return nil
}

// failed records a write that failed outside the reader and closes conn,
// so that the reader wakes and Serve returns err; st.mu is held.
func (st *serveState) failed(err error) {
	if st.err == nil {
		st.err = err
	}
	st.done = true
	st.conn.Close()
}

// keepaliveTick sends KEEPALIVE for the request in progress, if any, and
// arms the next one.
func (st *serveState) keepaliveTick() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done || st.busy == nil {
		return
	}
	if err := st.send(st.busy.cid, CmdKeepalive, []byte{byte(st.busy.status.Load())}); err != nil {
		st.failed(err)
		return
	}
	st.keepalive.Reset(st.s.keepaliveInterval())
}

// messageTimeout drops a message whose packets stopped coming in time,
// with ERR_MSG_TIMEOUT.
func (st *serveState) messageTimeout() {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done || !st.re.Active() {
		return
	}
	if wait := time.Until(st.msgDue); wait > 0 {
		// Fired for an earlier message, as this one started.
		st.msgTimer.Reset(wait)
		return
	}
	cid := st.re.CID()
	st.re.Reset()
	if err := st.fail(cid, ErrMsgTimeout); err != nil {
		st.failed(err)
	}
}

// finish sends the Handler's answer to b, unless b was abandoned.
func (st *serveState) finish(b *running, resp []byte) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.done || st.busy != b {
		return
	}
	st.busy = nil
	st.keepalive.Stop()
	if err := st.send(b.cid, b.cmd, resp); err != nil {
		st.failed(err)
	}
}

func (s *Server) keepaliveInterval() time.Duration {
	if s.KeepaliveInterval > 0 {
		return s.KeepaliveInterval
	}
	return 100 * time.Millisecond
}

func (s *Server) messageTimeout() time.Duration {
	if s.MessageTimeout > 0 {
		return s.MessageTimeout
	}
	return time.Second
}

func (st *serveState) send(cid uint32, cmd Command, data []byte) error {
	var err error
	st.out, err = AppendPackets(st.out[:0], cid, cmd, data)
	if err != nil {
		// A handler answer too large to frame is the device's fault; the
		// host gets ERR_OTHER rather than a truncated message.
		st.out, _ = AppendPackets(st.out[:0], cid, CmdError, []byte{byte(ErrOther)})
	}
	for off := 0; off < len(st.out); off += ReportSize {
		if _, err := st.conn.Write(st.out[off : off+ReportSize]); err != nil {
			return err
		}
	}
	return nil
}

func (st *serveState) fail(cid uint32, e Error) error {
	return st.send(cid, CmdError, []byte{byte(e)})
}

func (st *serveState) allocated(cid uint32) bool {
	for _, c := range st.channels {
		if c == cid {
			return true
		}
	}
	return false
}

// newChannel allocates a channel. A full table forgets its oldest channel
// that is not in use: never the one whose message is being received or
// processed, nor the one holding the lock, so that a host allocating
// channel after channel cannot take another's from under it mid-transaction.
func (st *serveState) newChannel() (uint32, error) {
	r := st.s.Rand
	if r == nil {
		r = rand.Reader
	}
	var b [4]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, err
		}
		cid := binary.BigEndian.Uint32(b[:])
		if cid == 0 || cid == BroadcastCID || st.allocated(cid) {
			continue
		}
		if len(st.channels) >= maxChannels {
			for i, c := range st.channels {
				if !st.inUse(c) {
					st.channels = append(st.channels[:i], st.channels[i+1:]...)
					break
				}
			}
		}
		st.channels = append(st.channels, cid)
		return cid, nil
	}
}

// inUse reports whether channel cid has a transaction in progress or
// holds the lock.
func (st *serveState) inUse(cid uint32) bool {
	return (st.busy != nil && st.busy.cid == cid) || (st.re.Active() && st.re.CID() == cid) ||
		(st.lockCID == cid && time.Now().Before(st.lockEnd))
}

// packet handles one report from the host (CTAP 2.1 §11.2.4 and §11.2.9).
//
// Several hosts may share the device, each on its own channel, and each
// sees its own answers only: a message on another allocated channel while
// a transaction is in progress (a message being received, processed or
// answered) gets ERR_CHANNEL_BUSY, one on a channel never allocated gets
// ERR_INVALID_CHANNEL, and CTAPHID_INIT is answered at any time. Only the
// init packet of a refused message is answered: its continuation packets,
// like any continuation packet that is not part of the message being
// received, are dropped without a word, so a host that retries after
// ERR_CHANNEL_BUSY reads the answer to its retry, not a stale error for
// the rest of its first attempt.
func (st *serveState) packet(ctx context.Context, report []byte) error {
	p, err := ParsePacket(report)
	if err != nil {
		return nil
	}
	if !p.Init {
		if !st.re.Active() || st.re.CID() != p.CID {
			// Spurious continuation packets without an init packet are
			// ignored (CTAP 2.1 §11.2.4), as are those of a message
			// that was refused or of another channel's.
			return nil
		}
		msg, err := st.re.Continue(p)
		return st.reassembled(ctx, p.CID, msg, err)
	}
	if p.Cmd == CmdInit {
		return st.init(p)
	}
	if p.CID == 0 || p.CID == BroadcastCID || !st.allocated(p.CID) {
		return st.fail(p.CID, ErrInvalidChannel)
	}
	if p.Cmd == CmdCancel {
		// CANCEL has no answer of its own; the cancelled request answers
		// with CTAP2_ERR_KEEPALIVE_CANCEL.
		if st.busy != nil && st.busy.cid == p.CID {
			st.busy.ctx.abort()
		}
		return nil
	}
	if st.lockCID != 0 && st.lockCID != p.CID && time.Now().Before(st.lockEnd) {
		return st.fail(p.CID, ErrLockRequired)
	}
	if st.busy != nil || (st.re.Active() && st.re.CID() != p.CID) {
		return st.fail(p.CID, ErrChannelBusy)
	}
	var msg *Message
	if st.re.Active() {
		// A new init packet in the middle of this channel's own message.
		msg, err = st.re.Continue(p)
	} else {
		msg, err = st.re.Start(p)
	}
	return st.reassembled(ctx, p.CID, msg, err)
}

// reassembled goes on from a packet fed to the reassembler: a framing
// error is answered and drops the message, a whole message is dispatched.
func (st *serveState) reassembled(ctx context.Context, cid uint32, msg *Message, err error) error {
	if err != nil {
		// Declared only here: errors.As makes it escape, which would
		// cost an allocation per packet.
		var herr Error
		if errors.As(err, &herr) {
			st.re.Reset()
			return st.fail(cid, herr)
		}
	}
	if msg == nil {
		return nil
	}
	return st.dispatch(ctx, msg)
}

func (st *serveState) init(p Packet) error {
	if p.BCNT != 8 {
		return st.fail(p.CID, ErrInvalidLen)
	}
	resp := InitResponse{
		Version:      ProtocolVersion,
		Major:        st.s.Major,
		Minor:        st.s.Minor,
		Build:        st.s.Build,
		Capabilities: st.s.Capabilities,
	}
	copy(resp.Nonce[:], p.Data[:8])
	switch {
	case p.CID == BroadcastCID:
		cid, err := st.newChannel()
		if err != nil {
			return err
		}
		resp.CID = cid
	case st.allocated(p.CID):
		// Re-INIT on a channel resynchronises it: whatever it was doing is
		// abandoned, and the device is ready for a new transaction at
		// once (CTAP 2.1 §11.2.9.1.3), though the abandoned Handler call
		// may still be returning.
		if st.re.Active() && st.re.CID() == p.CID {
			st.re.Reset()
		}
		if st.busy != nil && st.busy.cid == p.CID {
			st.busy.ctx.abort()
			st.busy = nil
		}
		resp.CID = p.CID
	default:
		return st.fail(p.CID, ErrInvalidChannel)
	}
	return st.send(p.CID, CmdInit, resp.Marshal())
}

func (st *serveState) dispatch(ctx context.Context, msg *Message) error {
	caps := st.s.Capabilities
	switch msg.Cmd {
	case CmdPing:
		return st.send(msg.CID, CmdPing, msg.Data)
	case CmdWink:
		if caps&CapWink == 0 {
			return st.fail(msg.CID, ErrInvalidCmd)
		}
		if len(msg.Data) != 0 {
			return st.fail(msg.CID, ErrInvalidLen)
		}
		st.s.Handler.Wink()
		return st.send(msg.CID, CmdWink, nil)
	case CmdLock:
		if len(msg.Data) != 1 {
			return st.fail(msg.CID, ErrInvalidLen)
		}
		if msg.Data[0] > 10 {
			return st.fail(msg.CID, ErrInvalidPar)
		}
		st.lockCID, st.lockEnd = msg.CID, time.Now().Add(time.Duration(msg.Data[0])*time.Second)
		if msg.Data[0] == 0 {
			st.lockCID = 0
		}
		return st.send(msg.CID, CmdLock, nil)
	case CmdCBOR:
		if caps&CapCBOR == 0 {
			return st.fail(msg.CID, ErrInvalidCmd)
		}
		if len(msg.Data) == 0 {
			return st.fail(msg.CID, ErrInvalidLen)
		}
	case CmdMsg:
		if caps&CapNMSG != 0 {
			return st.fail(msg.CID, ErrInvalidCmd)
		}
	default:
		return st.fail(msg.CID, ErrInvalidCmd)
	}
	// The Handler's context is cancelled only by CANCEL, a re-INIT or the
	// end of Serve; made lazily, it costs no channel or registration with
	// ctx for the calls that never wait on it.
	hctx := &lazyCtx{parent: ctx, origin: Origin{st: st, cid: msg.CID}, hasOrigin: true}
	b := &running{cid: msg.CID, cmd: msg.Cmd, ctx: hctx}
	b.status.Store(uint32(KeepaliveProcessing))
	st.busy = b
	call := func() {
		defer hctx.release()
		var resp []byte
		if msg.Cmd == CmdCBOR {
			resp = st.s.Handler.CBOR(hctx, msg.Data, func(s byte) { b.status.Store(uint32(s)) })
		} else {
			resp = st.s.Handler.Msg(hctx, msg.Data)
		}
		st.finish(b, resp)
	}
	select {
	case st.work <- call:
	default:
		go call()
	}
	return nil
}
