package hid

import (
	"bytes"
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slowHandler is a device whose work takes a while: CBOR 0xBB takes
// cbor and ignores cancellation, as a key busy signing does; MSG takes
// msg, as a U2F request waiting for the key does while another host's
// command holds it. Other CBOR requests are echoed at once.
type slowHandler struct {
	cbor, msg time.Duration
	calls     atomic.Int32
}

func (h *slowHandler) CBOR(ctx context.Context, req []byte, status func(byte)) []byte {
	h.calls.Add(1)
	if req[0] == 0xBB {
		time.Sleep(h.cbor)
	}
	return append([]byte{0}, req...)
}

func (h *slowHandler) Msg(ctx context.Context, apdu []byte) []byte {
	time.Sleep(h.msg)
	return append(append([]byte{}, apdu...), 0x90, 0x00)
}

func (h *slowHandler) Wink() {}

// stallingConn wakes up late from its first timed-out Read, as a host
// process that was not scheduled for a while does: the device's reports
// arrive meanwhile, unread.
type stallingConn struct {
	Conn
	stall time.Duration
	once  sync.Once
	fired atomic.Bool
}

func (c *stallingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if IsTimeout(err) {
		c.once.Do(func() {
			time.Sleep(c.stall)
			c.fired.Store(true)
		})
	}
	return n, err
}

// Issue 13 item 2, the host's side: time in which the host itself did not
// run is not the device's silence.
func TestIssue13HostStallIsNotCountedAsKeySilence(t *testing.T) {
	const idle = 200 * time.Millisecond
	t.Run("answer queued during the stall", func(t *testing.T) {
		// A device silent for 350 ms (no KEEPALIVE), whose answer comes
		// while the host is stalled: the host's wake-up is 400 ms late.
		h := &slowHandler{cbor: 350 * time.Millisecond}
		host := startServer(t, &Server{Handler: h, KeepaliveInterval: time.Hour})
		conn := &stallingConn{Conn: host, stall: 400 * time.Millisecond}
		ch := openChannel(t, conn)
		ch.IdleTimeout = idle
		resp, err := ch.Transact(context.Background(), CmdCBOR, []byte{0xBB, 1}, nil)
		require.True(t, conn.fired.Load(), "the host never stalled")
		require.NoError(t, err)
		assert.Equal(t, []byte{0, 0xBB, 1}, resp)
	})
	t.Run("a silent device still times out", func(t *testing.T) {
		host := startServer(t, &Server{KeepaliveInterval: time.Hour})
		conn := &stallingConn{Conn: host, stall: 400 * time.Millisecond}
		ch := openChannel(t, conn)
		ch.IdleTimeout = idle
		start := time.Now()
		_, err := ch.Transact(context.Background(), CmdCBOR, []byte{0xAA}, nil) // never answered
		require.ErrorIs(t, err, ErrIdleTimeout)
		assert.Less(t, time.Since(start), 5*time.Second)
	})
}

// Issue 13 item 2, the device's side: KEEPALIVE every ~100 ms for a MSG
// request too, which can wait as long as a CBOR one (CTAP 2.1
// §11.2.9.2.1).
func TestIssue13KeepaliveWhileMSGWaits(t *testing.T) {
	h := &slowHandler{msg: 700 * time.Millisecond}
	host := startServer(t, &Server{Handler: h})
	ch := openChannel(t, host)
	ch.IdleTimeout = 300 * time.Millisecond
	var (
		mu    sync.Mutex
		times []time.Time
	)
	start := time.Now()
	resp, err := ch.Transact(context.Background(), CmdMsg, []byte{0, 3, 0, 0}, func(status byte) {
		mu.Lock()
		defer mu.Unlock()
		assert.Equal(t, KeepaliveProcessing, status)
		times = append(times, time.Now())
	})
	require.NoError(t, err)
	assert.Equal(t, []byte{0, 3, 0, 0, 0x90, 0}, resp)
	mu.Lock()
	defer mu.Unlock()
	// About 7 at 100 ms; fewer than 3 means no cadence at all.
	assert.GreaterOrEqual(t, len(times), 3, "KEEPALIVEs in %v", time.Since(start))
}

// Issue 13 items 1 and 2: a CTAPHID_INIT on a busy channel leaves the
// device ready for the next transaction at once (CTAP 2.1 §11.2.9.1.3),
// though its Handler is still busy with the abandoned request; so the
// call after a cancelled one gets its own answer, not ERR_CHANNEL_BUSY.
func TestIssue13ReInitLeavesTheDeviceReadyAtOnce(t *testing.T) {
	h := &slowHandler{cbor: 800 * time.Millisecond}
	host := startServer(t, &Server{Handler: h})
	ch := openChannel(t, host)
	cid := ch.Info().CID

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := ch.Transact(ctx, CmdCBOR, []byte{0xBB}, nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 600*time.Millisecond, "Transact waited for the cancelled answer")

	resp, err := ch.Transact(context.Background(), CmdCBOR, []byte{1, 2}, nil)
	require.NoError(t, err, "the call after the cancelled one")
	assert.Equal(t, []byte{0, 1, 2}, resp)
	assert.Less(t, time.Since(start), 700*time.Millisecond, "the device waited for the abandoned request")
	assert.NotEqual(t, cid, ch.Info().CID, "the channel was not replaced")
	require.NoError(t, ch.Ping(context.Background(), []byte("after")))
	assert.EqualValues(t, 2, h.calls.Load())
}

// Issue 13 item 1 at the channel level: stray continuation packets with
// no message in progress are skipped, before an answer and after one.
func TestIssue13StrayContinuationIgnored(t *testing.T) {
	host, dev := Pipe()
	t.Cleanup(func() { host.Close(); dev.Close() })
	const cid = 0x01020304
	go func() {
		buf := make([]byte, ReportSize+1)
		var re Reassembler
		for {
			n, err := dev.Read(buf)
			if err != nil {
				return
			}
			p, _ := ParsePacket(buf[1:n])
			msg, err := re.Push(p)
			if err != nil || msg == nil {
				continue
			}
			var data []byte
			switch msg.Cmd {
			case CmdInit:
				r := InitResponse{CID: cid, Version: ProtocolVersion, Capabilities: CapCBOR}
				copy(r.Nonce[:], msg.Data)
				data = r.Marshal()
			default:
				data = msg.Data
			}
			out, _ := AppendPackets(nil, msg.CID, msg.Cmd, data)
			stray := cont(msg.CID, 3)
			dev.Write(stray) // before the answer
			for off := 0; off < len(out); off += ReportSize {
				dev.Write(out[off : off+ReportSize])
			}
			dev.Write(stray) // and after it
		}
	}()
	ch := openChannel(t, host)
	for i := range 5 {
		data := bytes.Repeat([]byte{byte(i)}, 100) // two packets each way
		resp, err := ch.Transact(context.Background(), CmdCBOR, data, nil)
		require.NoError(t, err, "call %d", i)
		require.Equal(t, data, resp, "call %d", i)
	}
	assert.EqualValues(t, cid, ch.Info().CID, "a clean channel was resynchronised")
}
