package hid

import (
	"bytes"
	"errors"
	"testing"
)

func reports(t testing.TB, cid uint32, cmd Command, data []byte) [][]byte {
	t.Helper()
	b, err := AppendPackets(nil, cid, cmd, data)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for off := 0; off < len(b); off += ReportSize {
		out = append(out, b[off:off+ReportSize])
	}
	return out
}

func TestFramingRoundTrip(t *testing.T) {
	for _, size := range []int{0, 1, 56, 57, 58, 116, 117, 118, 1024, MaxMessageSize} {
		data := bytes.Repeat([]byte{0xA5}, size)
		for i := range data {
			data[i] = byte(i * 7)
		}
		rs := reports(t, 0x01020304, CmdCBOR, data)
		wantPackets := 1
		if size > initDataLen {
			wantPackets += (size - initDataLen + contDataLen - 1) / contDataLen
		}
		if len(rs) != wantPackets {
			t.Errorf("size %d: %d packets, want %d", size, len(rs), wantPackets)
		}
		var r Reassembler
		var msg *Message
		for i, rep := range rs {
			p, err := ParsePacket(rep)
			if err != nil {
				t.Fatal(err)
			}
			if msg != nil {
				t.Fatalf("size %d: message complete before packet %d", size, i)
			}
			if msg, err = r.Push(p); err != nil {
				t.Fatalf("size %d packet %d: %v", size, i, err)
			}
		}
		if msg == nil || msg.CID != 0x01020304 || msg.Cmd != CmdCBOR || !bytes.Equal(msg.Data, data) {
			t.Errorf("size %d: reassembled %+v", size, msg)
		}
	}
}

func TestFramingTooLarge(t *testing.T) {
	if _, err := AppendPackets(nil, 1, CmdCBOR, make([]byte, MaxMessageSize+1)); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("err = %v, want ErrMessageTooLarge", err)
	}
}

func TestReassemblerErrors(t *testing.T) {
	data := make([]byte, 200) // init + 3 continuation packets
	rs := reports(t, 7, CmdMsg, data)
	parse := func(b []byte) Packet {
		p, err := ParsePacket(b)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	t.Run("wrong sequence", func(t *testing.T) {
		var r Reassembler
		r.Push(parse(rs[0]))
		if _, err := r.Push(parse(rs[2])); !errors.Is(err, ErrInvalidSeq) {
			t.Fatalf("err = %v, want ErrInvalidSeq", err)
		}
		if r.Active() {
			t.Fatal("message still active after a sequence error")
		}
	})
	t.Run("repeated sequence", func(t *testing.T) {
		var r Reassembler
		r.Push(parse(rs[0]))
		r.Push(parse(rs[1]))
		if _, err := r.Push(parse(rs[1])); !errors.Is(err, ErrInvalidSeq) {
			t.Fatalf("err = %v, want ErrInvalidSeq", err)
		}
	})
	t.Run("continuation without init", func(t *testing.T) {
		var r Reassembler
		if _, err := r.Push(parse(rs[1])); !errors.Is(err, ErrInvalidSeq) {
			t.Fatalf("err = %v, want ErrInvalidSeq", err)
		}
	})
	t.Run("BCNT over maximum", func(t *testing.T) {
		rep := append([]byte(nil), rs[0]...)
		rep[5], rep[6] = 0x1D, 0xBA // 7610
		var r Reassembler
		if _, err := r.Push(parse(rep)); !errors.Is(err, ErrInvalidLen) {
			t.Fatalf("err = %v, want ErrInvalidLen", err)
		}
		if r.Active() {
			t.Fatal("active after a rejected init packet")
		}
	})
	t.Run("short report", func(t *testing.T) {
		if _, err := ParsePacket(make([]byte, 63)); !errors.Is(err, ErrShortReport) {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestInitResponse(t *testing.T) {
	r := InitResponse{Nonce: [8]byte{1, 2, 3, 4, 5, 6, 7, 8}, CID: 0xCAFEF00D, Version: 2, Major: 1, Minor: 2, Build: 3, Capabilities: CapCBOR | CapWink}
	got, err := ParseInitResponse(r.Marshal())
	if err != nil || got != r {
		t.Fatalf("round trip = %+v, %v", got, err)
	}
	if _, err := ParseInitResponse(make([]byte, 16)); !errors.Is(err, ErrInvalidLen) {
		t.Fatalf("short INIT response: %v", err)
	}
}

// FuzzReassembler feeds arbitrary report sequences. Whatever reassembles
// must be exactly BCNT bytes long, within the CTAPHID limit, and reframe to
// the same init packet header; nothing may panic or grow without bound.
func FuzzReassembler(f *testing.F) {
	for _, size := range []int{0, 10, 57, 58, 300} {
		b, _ := AppendPackets(nil, 0x11223344, CmdCBOR, bytes.Repeat([]byte{0x42}, size))
		f.Add(b)
	}
	f.Add(bytes.Repeat([]byte{0xff}, 64))
	f.Add(append(bytes.Repeat([]byte{0}, 64), bytes.Repeat([]byte{1}, 64)...))
	f.Fuzz(func(t *testing.T, stream []byte) {
		var r Reassembler
		for off := 0; off+ReportSize <= len(stream); off += ReportSize {
			p, err := ParsePacket(stream[off : off+ReportSize])
			if err != nil {
				t.Fatal(err)
			}
			msg, err := r.Push(p)
			if err != nil {
				var he Error
				if !errors.As(err, &he) {
					t.Fatalf("untyped error %v", err)
				}
				continue
			}
			if msg == nil {
				if len(r.buf) > MaxMessageSize {
					t.Fatalf("buffer grew to %d", len(r.buf))
				}
				continue
			}
			if len(msg.Data) > MaxMessageSize {
				t.Fatalf("message of %d bytes", len(msg.Data))
			}
			again, err := AppendPackets(nil, msg.CID, msg.Cmd, msg.Data)
			if err != nil {
				t.Fatal(err)
			}
			q, _ := ParsePacket(again[:ReportSize])
			if q.CID != msg.CID || q.Cmd != msg.Cmd || q.BCNT != len(msg.Data) {
				t.Fatalf("reframed header %+v for message %+v", q, msg)
			}
		}
	})
}

func BenchmarkAppendPackets(b *testing.B) {
	data := make([]byte, 1024)
	buf := make([]byte, 0, 2048)
	b.ReportAllocs()
	for b.Loop() {
		buf, _ = AppendPackets(buf[:0], 1, CmdCBOR, data)
	}
	b.ReportMetric(float64(len(buf)/ReportSize), "packets/op")
}

func BenchmarkReassemble(b *testing.B) {
	data := make([]byte, 1024)
	raw, _ := AppendPackets(nil, 1, CmdCBOR, data)
	one, _ := AppendPackets(nil, 1, CmdCBOR, data[:8])
	var r Reassembler
	reassemble := func(raw []byte) func() {
		return func() {
			for off := 0; off < len(raw); off += ReportSize {
				p, _ := ParsePacket(raw[off : off+ReportSize])
				r.Push(p)
			}
		}
	}
	// The whole message is copied out once (Message and its Data); a
	// packet itself costs what a longer message costs more than a
	// one-packet one.
	packets := len(raw) / ReportSize
	perPacket := (testing.AllocsPerRun(100, reassemble(raw)) - testing.AllocsPerRun(100, reassemble(one))) / float64(packets-1)
	b.ReportAllocs()
	for b.Loop() {
		reassemble(raw)()
	}
	b.ReportMetric(float64(packets), "packets/op")
	b.ReportMetric(perPacket, "allocs/packet")
}
