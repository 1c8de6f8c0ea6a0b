package hid

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"
)

// echoHandler is a transport-level test device: CBOR requests starting with
// 0xAA wait for cancellation (reporting UPNEEDED), others are echoed with a
// status byte of 0. The real authenticator is tested in fido/virtual.
type echoHandler struct{ winks chan struct{} }

func (h *echoHandler) CBOR(ctx context.Context, req []byte, status func(byte)) []byte {
	if req[0] == 0xAA {
		status(KeepaliveUPNeeded)
		<-ctx.Done()
		return []byte{0x2D} // CTAP2_ERR_KEEPALIVE_CANCEL
	}
	return append([]byte{0}, req...)
}

func (h *echoHandler) Msg(ctx context.Context, apdu []byte) []byte {
	return append(append([]byte{}, apdu...), 0x90, 0x00)
}

func (h *echoHandler) Wink() {
	select {
	case h.winks <- struct{}{}:
	default:
	}
}

func startServer(t *testing.T, s *Server) Conn {
	t.Helper()
	host, dev := Pipe()
	if s.Handler == nil {
		s.Handler = &echoHandler{winks: make(chan struct{}, 1)}
	}
	if s.Capabilities == 0 {
		s.Capabilities = CapCBOR | CapWink
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, dev) }()
	t.Cleanup(func() {
		cancel()
		host.Close()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return host
}

func openChannel(t *testing.T, host Conn) *Channel {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ch, err := Open(ctx, host)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return ch
}

func TestChannelTransact(t *testing.T) {
	host := startServer(t, &Server{Major: 1, Minor: 2, Build: 3})
	ch := openChannel(t, host)
	ctx := context.Background()
	if info := ch.Info(); info.Version != ProtocolVersion || info.Major != 1 || info.Capabilities != CapCBOR|CapWink {
		t.Errorf("INIT response %+v", info)
	}
	for _, size := range []int{1, 57, 58, 1000, MaxMessageSize - 1} {
		req := bytes.Repeat([]byte{0x04}, size)
		resp, err := ch.Transact(ctx, CmdCBOR, req, nil)
		if err != nil {
			t.Fatalf("CBOR %d bytes: %v", size, err)
		}
		if !bytes.Equal(resp, append([]byte{0}, req...)) {
			t.Fatalf("CBOR %d bytes: wrong echo", size)
		}
	}
	if err := ch.Ping(ctx, []byte("hello")); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	if err := ch.Wink(ctx); err != nil {
		t.Fatalf("Wink: %v", err)
	}
	resp, err := ch.Transact(ctx, CmdMsg, []byte{0, 3, 0, 0}, nil)
	if err != nil || !bytes.Equal(resp, []byte{0, 3, 0, 0, 0x90, 0}) {
		t.Fatalf("MSG = %x, %v", resp, err)
	}
}

func TestChannelCancel(t *testing.T) {
	host := startServer(t, &Server{KeepaliveInterval: 10 * time.Millisecond})
	ch := openChannel(t, host)
	ctx, cancel := context.WithCancel(context.Background())
	upneeded := make(chan struct{})
	var seen bool
	errc := make(chan error, 1)
	go func() {
		_, err := ch.Transact(ctx, CmdCBOR, []byte{0xAA}, func(s byte) {
			if s == KeepaliveUPNeeded && !seen {
				seen = true
				close(upneeded)
			}
		})
		errc <- err
	}()
	select {
	case <-upneeded:
	case <-time.After(5 * time.Second):
		t.Fatal("no KEEPALIVE UPNEEDED")
	}
	cancel()
	select {
	case err := <-errc:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Transact did not return after cancel")
	}
	// The channel still works: the next transaction resynchronises it,
	// dropping the cancelled answer.
	if err := ch.Ping(context.Background(), []byte{1, 2, 3}); err != nil {
		t.Fatalf("Ping after cancel: %v", err)
	}
}

// rawHost drives a server with hand-made reports, as a hostile or buggy
// host would.
type rawHost struct {
	t    *testing.T
	conn Conn
}

func (h rawHost) write(report []byte) {
	h.t.Helper()
	out := make([]byte, ReportSize+1)
	copy(out[1:], report)
	if _, err := h.conn.Write(out); err != nil {
		h.t.Fatal(err)
	}
}

func (h rawHost) read() (Packet, bool) {
	h.t.Helper()
	buf := make([]byte, ReportSize)
	h.conn.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	n, err := h.conn.Read(buf)
	if IsTimeout(err) {
		return Packet{}, false
	}
	if err != nil || n != ReportSize {
		h.t.Fatalf("read: %d, %v", n, err)
	}
	p, _ := ParsePacket(buf)
	return p, true
}

func (h rawHost) expectError(cid uint32, want Error) {
	h.t.Helper()
	p, ok := h.read()
	if !ok {
		h.t.Fatalf("no answer, want %v", want)
	}
	if p.CID != cid || !p.Init || p.Cmd != CmdError || Error(p.Data[0]) != want {
		h.t.Fatalf("answer cid=%#x cmd=%v data=%x, want %v on %#x", p.CID, p.Cmd, p.Data[:1], want, cid)
	}
}

func (h rawHost) allocate() uint32 {
	h.t.Helper()
	nonce := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	h.write(header(BroadcastCID, CmdInit, 8, nonce))
	p, ok := h.read()
	if !ok || p.Cmd != CmdInit {
		h.t.Fatalf("INIT answer %+v", p)
	}
	r, err := ParseInitResponse(p.Data[:p.BCNT])
	if err != nil || !bytes.Equal(r.Nonce[:], nonce) {
		h.t.Fatalf("INIT response %+v %v", r, err)
	}
	return r.CID
}

func (h rawHost) pingWorks(cid uint32) {
	h.t.Helper()
	h.write(header(cid, CmdPing, 3, []byte{9, 8, 7}))
	p, ok := h.read()
	if !ok || p.CID != cid || p.Cmd != CmdPing || !bytes.Equal(p.Data[:3], []byte{9, 8, 7}) {
		h.t.Fatalf("PING answer %+v, ok=%v", p, ok)
	}
}

func header(cid uint32, cmd Command, bcnt int, data []byte) []byte {
	b := make([]byte, ReportSize)
	binary.BigEndian.PutUint32(b, cid)
	b[4] = byte(cmd) | 0x80
	binary.BigEndian.PutUint16(b[5:], uint16(bcnt))
	copy(b[7:], data)
	return b
}

func cont(cid uint32, seq byte) []byte {
	b := make([]byte, ReportSize)
	binary.BigEndian.PutUint32(b, cid)
	b[4] = seq
	return b
}

func TestServerFramingErrors(t *testing.T) {
	tests := []struct {
		name string
		run  func(h rawHost, cid uint32)
	}{
		{"wrong sequence number", func(h rawHost, cid uint32) {
			h.write(header(cid, CmdPing, 100, nil))
			h.write(cont(cid, 1))
			h.expectError(cid, ErrInvalidSeq)
		}},
		{"repeated sequence number", func(h rawHost, cid uint32) {
			h.write(header(cid, CmdPing, 200, nil))
			h.write(cont(cid, 0))
			h.write(cont(cid, 0))
			h.expectError(cid, ErrInvalidSeq)
		}},
		{"BCNT over 7609", func(h rawHost, cid uint32) {
			h.write(header(cid, CmdCBOR, MaxMessageSize+1, nil))
			h.expectError(cid, ErrInvalidLen)
		}},
		{"continuation without init is ignored", func(h rawHost, cid uint32) {
			h.write(cont(cid, 0))
			if p, ok := h.read(); ok {
				t.Fatalf("answered a spurious continuation with %+v", p)
			}
		}},
		{"unknown command", func(h rawHost, cid uint32) {
			h.write(header(cid, 0x33, 0, nil))
			h.expectError(cid, ErrInvalidCmd)
		}},
		{"channel never allocated", func(h rawHost, cid uint32) {
			h.write(header(cid+1, CmdPing, 1, nil))
			h.expectError(cid+1, ErrInvalidChannel)
		}},
		{"broadcast channel for a message", func(h rawHost, cid uint32) {
			h.write(header(BroadcastCID, CmdPing, 1, nil))
			h.expectError(BroadcastCID, ErrInvalidChannel)
		}},
		{"channel zero", func(h rawHost, cid uint32) {
			h.write(header(0, CmdPing, 1, nil))
			h.expectError(0, ErrInvalidChannel)
		}},
		{"INIT of wrong length", func(h rawHost, cid uint32) {
			h.write(header(BroadcastCID, CmdInit, 7, nil))
			h.expectError(BroadcastCID, ErrInvalidLen)
		}},
		{"empty CBOR", func(h rawHost, cid uint32) {
			h.write(header(cid, CmdCBOR, 0, nil))
			h.expectError(cid, ErrInvalidLen)
		}},
		{"other channel busy mid-message", func(h rawHost, cid uint32) {
			other := h.allocate()
			h.write(header(cid, CmdPing, 100, nil))
			h.write(header(other, CmdPing, 1, nil))
			h.expectError(other, ErrChannelBusy)
			h.write(cont(cid, 0))
			p, ok := h.read()
			if !ok || p.Cmd != CmdPing || p.BCNT != 100 {
				t.Fatalf("first message not completed: %+v", p)
			}
			h.read() // its continuation packet
		}},
		{"other channel busy while processing", func(h rawHost, cid uint32) {
			other := h.allocate()
			h.write(header(cid, CmdCBOR, 1, []byte{0xAA}))
			h.write(header(other, CmdPing, 1, nil))
			for {
				p, ok := h.read()
				if !ok {
					t.Fatal("no CHANNEL_BUSY")
				}
				if p.CID == other {
					if p.Cmd != CmdError || Error(p.Data[0]) != ErrChannelBusy {
						t.Fatalf("answer %+v", p)
					}
					break
				}
			}
			h.write(header(cid, CmdCancel, 0, nil))
			for {
				p, ok := h.read()
				if !ok {
					t.Fatal("no answer to the cancelled request")
				}
				if p.Cmd == CmdCBOR {
					if p.Data[0] != 0x2D {
						t.Fatalf("cancelled request answered %x", p.Data[0])
					}
					break
				}
			}
		}},
		{"message timeout", func(h rawHost, cid uint32) {
			h.write(header(cid, CmdPing, 100, nil))
			h.expectError(cid, ErrMsgTimeout)
		}},
		{"lock held by another channel", func(h rawHost, cid uint32) {
			other := h.allocate()
			h.write(header(other, CmdLock, 1, []byte{5}))
			if p, ok := h.read(); !ok || p.Cmd != CmdLock {
				t.Fatalf("LOCK answer %+v", p)
			}
			h.write(header(cid, CmdPing, 1, nil))
			h.expectError(cid, ErrLockRequired)
			h.write(header(other, CmdLock, 1, []byte{0}))
			h.read()
		}},
		{"lock longer than 10 s", func(h rawHost, cid uint32) {
			h.write(header(cid, CmdLock, 1, []byte{11}))
			h.expectError(cid, ErrInvalidPar)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := startServer(t, &Server{MessageTimeout: 100 * time.Millisecond})
			h := rawHost{t: t, conn: host}
			cid := h.allocate()
			tt.run(h, cid)
			h.pingWorks(cid) // the device recovered
		})
	}
}

func TestServerCapabilities(t *testing.T) {
	host := startServer(t, &Server{Capabilities: CapNMSG}) // no CBOR, no MSG, no WINK
	h := rawHost{t: t, conn: host}
	cid := h.allocate()
	for _, cmd := range []Command{CmdCBOR, CmdMsg, CmdWink} {
		h.write(header(cid, cmd, 1, []byte{4}))
		h.expectError(cid, ErrInvalidCmd)
	}
}

func TestReInitAbandonsRequest(t *testing.T) {
	host := startServer(t, &Server{})
	h := rawHost{t: t, conn: host}
	cid := h.allocate()
	h.write(header(cid, CmdCBOR, 1, []byte{0xAA}))
	nonce := []byte{8, 7, 6, 5, 4, 3, 2, 1}
	h.write(header(cid, CmdInit, 8, nonce))
	for {
		p, ok := h.read()
		if !ok {
			t.Fatal("no INIT answer")
		}
		if p.Cmd == CmdKeepalive {
			continue
		}
		if p.Cmd != CmdInit || !bytes.Equal(p.Data[:8], nonce) || binary.BigEndian.Uint32(p.Data[8:]) != cid {
			t.Fatalf("answer %+v", p)
		}
		break
	}
	// The abandoned request's answer never arrives; the channel works.
	for {
		p, ok := h.read()
		if !ok {
			break
		}
		if p.Cmd != CmdKeepalive {
			t.Fatalf("abandoned request answered: %+v", p)
		}
	}
	h.pingWorks(cid)
}

// BenchmarkChannelRoundTrip measures a 1 KiB CBOR round trip through the
// host channel, the in-memory pipe and the device server; packets/op shows
// what the allocations are spread over.
func BenchmarkChannelRoundTrip(b *testing.B) {
	host, dev := Pipe()
	s := &Server{Handler: &echoHandler{}, Capabilities: CapCBOR}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Serve(ctx, dev)
	ch, err := Open(ctx, host)
	if err != nil {
		b.Fatal(err)
	}
	defer ch.Close()
	req := make([]byte, 1024)
	req[0] = 1
	// What a packet costs beyond the message it is part of: the
	// allocations of a 1 KiB round trip (18 + 18 packets) less those of
	// a one-packet round trip (1 + 1), over the 34 packets between them.
	transact := func(req []byte) func() {
		return func() {
			if _, err := ch.Transact(ctx, CmdCBOR, req, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	for range pipeDepth / 18 { // every slot of the pipe's queues used once
		transact(req)()
	}
	perPacket := (testing.AllocsPerRun(100, transact(req)) - testing.AllocsPerRun(100, transact(req[:8]))) / 34
	b.ReportAllocs()
	for b.Loop() {
		transact(req)()
	}
	b.ReportMetric(36, "packets/op")
	b.ReportMetric(perPacket, "allocs/packet")
}
