package hid

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/internal/hid/hidtest"
)

// readOn reads reports until one on cid that is not a KEEPALIVE, skipping
// the other channels' traffic as a host sharing the device does. ok is
// false when none came in time.
func (h rawHost) readOn(cid uint32) (p Packet, ok bool) {
	h.t.Helper()
	// The other channel's KEEPALIVEs keep coming, so the wait has a
	// bound of its own.
	for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
		p, ok := h.read()
		if !ok {
			return Packet{}, false
		}
		if p.CID == cid && !(p.Init && p.Cmd == CmdKeepalive) {
			return p, true
		}
	}
	return Packet{}, false
}

// expectOn is expectError for a device whose other channels are busy.
func (h rawHost) expectOn(cid uint32, want Error) {
	h.t.Helper()
	p, ok := h.readOn(cid)
	require.True(h.t, ok, "no answer on %#x, want %v", cid, want)
	require.True(h.t, p.Init && p.Cmd == CmdError && Error(p.Data[0]) == want,
		"answer on %#x: cmd %v data %x, want %v", cid, p.Cmd, p.Data[:1], want)
}

// nothingOn checks that no report but KEEPALIVEs arrives on cid for a
// while.
func (h rawHost) nothingOn(cid uint32) {
	h.t.Helper()
	if p, ok := h.readOn(cid); ok {
		h.t.Fatalf("unexpected answer on %#x: cmd %v data %x", cid, p.Cmd, p.Data[:4])
	}
}

// sendPing writes a PING of n bytes (0x5A each) on cid, all its packets.
func (h rawHost) sendPing(cid uint32, n int) {
	h.t.Helper()
	out, err := AppendPackets(nil, cid, CmdPing, bytes.Repeat([]byte{0x5A}, n))
	require.NoError(h.t, err)
	for off := 0; off < len(out); off += ReportSize {
		h.write(out[off : off+ReportSize])
	}
}

// expectPing reads a whole PING answer of n bytes on cid.
func (h rawHost) expectPing(cid uint32, n int) {
	h.t.Helper()
	var re Reassembler
	for {
		p, ok := h.readOn(cid)
		require.True(h.t, ok, "PING answer on %#x incomplete", cid)
		msg, err := re.Push(p)
		require.NoError(h.t, err)
		if msg != nil {
			require.Equal(h.t, CmdPing, msg.Cmd)
			require.Equal(h.t, bytes.Repeat([]byte{0x5A}, n), msg.Data)
			return
		}
	}
}

// initOn sends CTAPHID_INIT on the broadcast channel and returns the
// allocated channel, skipping other channels' traffic.
func (h rawHost) initOn(nonce byte) uint32 {
	h.t.Helper()
	n := bytes.Repeat([]byte{nonce}, 8)
	h.write(header(BroadcastCID, CmdInit, 8, n))
	p, ok := h.readOn(BroadcastCID)
	require.True(h.t, ok, "no INIT answer")
	require.Equal(h.t, CmdInit, p.Cmd, "INIT answered with %v %x", p.Cmd, p.Data[:1])
	r, err := ParseInitResponse(p.Data[:p.BCNT])
	require.NoError(h.t, err)
	require.Equal(h.t, n, r.Nonce[:])
	return r.CID
}

// TestServerSharedByTwoHosts is issue 13 item 13: two hosts share one
// device, each on its own channel. While host A's transaction is in
// progress, host B's INIT on the broadcast channel allocates a channel and
// is answered; B's message on an allocated channel gets ERR_CHANNEL_BUSY
// once (not once per packet), on a channel never allocated
// ERR_INVALID_CHANNEL; and both hosts work afterwards.
func TestServerSharedByTwoHosts(t *testing.T) {
	t.Run("while processing", func(t *testing.T) {
		host := startServer(t, &Server{KeepaliveInterval: 20 * time.Millisecond})
		h := rawHost{t: t, conn: host}
		a, b := h.allocate(), h.allocate()
		h.write(header(a, CmdCBOR, 1, []byte{0xAA})) // A waits for a touch

		c := h.initOn(0xC1) // a third channel, allocated mid-transaction
		assert.NotContains(t, []uint32{a, b, 0, BroadcastCID}, c)
		h.sendPing(b, 200) // four packets, one answer
		h.expectOn(b, ErrChannelBusy)
		h.nothingOn(b)
		h.sendPing(c, 1)
		h.expectOn(c, ErrChannelBusy)
		h.write(header(c^0x5A5A, CmdPing, 1, nil))
		h.expectOn(c^0x5A5A, ErrInvalidChannel)
		// Re-INIT of B's own channel resynchronises it, not A's.
		h.write(header(b, CmdInit, 8, bytes.Repeat([]byte{0xB2}, 8)))
		p, ok := h.readOn(b)
		require.True(t, ok)
		require.Equal(t, CmdInit, p.Cmd)
		// B's CANCEL does not cancel A's request.
		h.write(header(b, CmdCancel, 0, nil))
		h.nothingOn(a)

		h.write(header(a, CmdCancel, 0, nil))
		p, ok = h.readOn(a)
		require.True(t, ok, "no answer to the cancelled request")
		assert.Equal(t, CmdCBOR, p.Cmd)
		assert.Equal(t, byte(0x2D), p.Data[0])
		for _, cid := range []uint32{a, b, c} {
			h.sendPing(cid, 200)
			h.expectPing(cid, 200)
		}
	})

	t.Run("while receiving", func(t *testing.T) {
		host := startServer(t, &Server{MessageTimeout: time.Second})
		h := rawHost{t: t, conn: host}
		a, b := h.allocate(), h.allocate()
		out, err := AppendPackets(nil, a, CmdPing, bytes.Repeat([]byte{0x5A}, 200))
		require.NoError(t, err)
		h.write(out[:ReportSize]) // A's init packet only

		c := h.initOn(0xC2)
		h.sendPing(b, 200)
		h.expectOn(b, ErrChannelBusy)
		h.nothingOn(b) // B's continuation packets were dropped silently
		h.write(header(c, CmdPing, 1, nil))
		h.expectOn(c, ErrChannelBusy)
		for off := ReportSize; off < len(out); off += ReportSize {
			h.write(out[off : off+ReportSize]) // A's message goes on
		}
		h.expectPing(a, 200)
		h.sendPing(b, 200)
		h.expectPing(b, 200)
	})

	t.Run("a full channel table keeps the busy channel", func(t *testing.T) {
		host := startServer(t, &Server{})
		h := rawHost{t: t, conn: host}
		a := h.allocate()
		h.write(header(a, CmdCBOR, 1, []byte{0xAA}))
		for i := range maxChannels + 1 {
			h.initOn(byte(i))
		}
		h.write(header(a, CmdCancel, 0, nil))
		p, ok := h.readOn(a)
		require.True(t, ok, "CANCEL on the busy channel went unheard")
		assert.Equal(t, byte(0x2D), p.Data[0])
		h.pingWorks(a)
	})

	t.Run("two clients keep working", func(t *testing.T) {
		host := startServer(t, &Server{Handler: slowEcho{&echoHandler{}}, Capabilities: CapCBOR})
		hosts := hidtest.Share(host, 2)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		var wg sync.WaitGroup
		errs := make([]error, len(hosts))
		busy := make([]int, len(hosts))
		for i, conn := range hosts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				busy[i], errs[i] = twoHostClient(ctx, conn, byte(i))
			}()
		}
		wg.Wait()
		for i, err := range errs {
			assert.NoError(t, err, "host %d", i)
		}
		t.Logf("ERR_CHANNEL_BUSY answers: %v", busy)
	})
}

// slowEcho echoes CBOR requests as echoHandler does, after a moment's
// work, so that two hosts' requests overlap.
type slowEcho struct{ *echoHandler }

func (h slowEcho) CBOR(ctx context.Context, req []byte, status func(byte)) []byte {
	time.Sleep(2 * time.Millisecond)
	return h.echoHandler.CBOR(ctx, req, status)
}

// twoHostClient runs transactions of its own, each with its own payload,
// retrying a moment after ERR_CHANNEL_BUSY as CTAPHID asks of clients, and
// checks that each gets its own answer.
func twoHostClient(ctx context.Context, conn hidtest.Conn, id byte) (busy int, err error) {
	ch, err := Open(ctx, conn)
	if err != nil {
		return 0, fmt.Errorf("opening: %w", err)
	}
	defer ch.Close()
	for i := range 40 {
		// Multi-packet requests, so a refused one has continuation
		// packets the device must not answer.
		req := bytes.Repeat([]byte{id, byte(i)}, 150+int(id)*50)
		binary.BigEndian.PutUint16(req[2:], uint16(i))
		for {
			resp, err := ch.Transact(ctx, CmdCBOR, req, nil)
			if errors.Is(err, ErrChannelBusy) {
				busy++
				time.Sleep(time.Millisecond)
				continue
			}
			if err != nil {
				return busy, fmt.Errorf("request %d: %w", i, err)
			}
			if !bytes.Equal(resp, append([]byte{0}, req...)) {
				return busy, fmt.Errorf("request %d: got the answer to another request (%x...)", i, resp[:5])
			}
			break
		}
	}
	return busy, nil
}
