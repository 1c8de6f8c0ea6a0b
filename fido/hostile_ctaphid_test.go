package fido

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/hid"
)

// Issue 13, items 1 and 3: a key's answer never goes to the wrong request,
// and no key can hold an operation beyond Opener.MaxOperationTime. The key
// here is scripted at the CTAPHID level, over the in-memory transport, so
// that it can misbehave in ways hid.Server never would.

// scriptedKey is a CTAPHID device that a test scripts. Its loop reassembles
// what the host sends and hands each whole message but CANCEL to handle,
// on the loop's goroutine; handle answers with the send helpers, at once
// or later from goroutines of its own. INIT and getInfo have default
// answers (answerInit, answerInfo) that handle calls when it does not
// script them.
type scriptedKey struct {
	t      *testing.T
	conn   hid.DeviceConn
	handle func(k *scriptedKey, m *hid.Message)

	wmu     sync.Mutex // one report at a time
	nextCID uint32     // loop goroutine only

	mu      sync.Mutex
	cancels []uint32 // channels CANCEL came on
	closed  chan struct{}
}

// openScriptedKey opens a Device with o on a fake key that handle scripts.
func openScriptedKey(t *testing.T, o *Opener, handle func(k *scriptedKey, m *hid.Message)) (*Device, *scriptedKey) {
	t.Helper()
	host, dev := hid.Pipe()
	k := &scriptedKey{t: t, conn: dev, handle: handle, nextCID: 0x0100, closed: make(chan struct{})}
	loopDone := make(chan struct{})
	go func() {
		defer close(loopDone)
		k.loop()
	}()
	d, err := o.OpenConn(context.Background(), host, DeviceInfo{Path: "fake"})
	require.NoError(t, err)
	t.Cleanup(func() {
		d.Close()
		close(k.closed) // stops the key's own late senders
		dev.Close()
		<-loopDone
	})
	return d, k
}

func (k *scriptedKey) loop() {
	var re hid.Reassembler
	buf := make([]byte, hid.ReportSize+1)
	for {
		n, err := k.conn.Read(buf)
		if err != nil {
			return
		}
		p, err := hid.ParsePacket(buf[1:n])
		if err != nil {
			continue
		}
		var msg *hid.Message
		switch {
		case p.Init:
			msg, err = re.Start(p)
		case re.Active() && re.CID() == p.CID:
			msg, err = re.Continue(p)
		}
		if err != nil || msg == nil {
			continue
		}
		if msg.Cmd == hid.CmdCancel {
			k.mu.Lock()
			k.cancels = append(k.cancels, msg.CID)
			k.mu.Unlock()
			continue
		}
		k.handle(k, msg)
	}
}

// send writes one message as a device does.
func (k *scriptedKey) send(cid uint32, cmd hid.Command, data []byte) {
	out, err := hid.AppendPackets(nil, cid, cmd, data)
	if err != nil {
		k.t.Errorf("fake key: framing %v: %v", cmd, err)
		return
	}
	for off := 0; off < len(out); off += hid.ReportSize {
		k.report(out[off : off+hid.ReportSize])
	}
}

// report writes one raw report; a closed transport is ignored, since
// late senders may outlive the test.
func (k *scriptedKey) report(r []byte) {
	k.wmu.Lock()
	defer k.wmu.Unlock()
	k.conn.Write(r)
}

// strayContinuation writes a continuation packet that belongs to no
// message.
func (k *scriptedKey) strayContinuation(cid uint32, seq byte) {
	r := make([]byte, hid.ReportSize)
	binary.BigEndian.PutUint32(r, cid)
	r[4] = seq
	copy(r[5:], "stray")
	k.report(r)
}

func (k *scriptedKey) keepalive(cid uint32, status byte) {
	k.send(cid, hid.CmdKeepalive, []byte{status})
}

// later runs f after d, unless the test ended.
func (k *scriptedKey) later(d time.Duration, f func()) {
	go func() {
		select {
		case <-time.After(d):
			f()
		case <-k.closed:
		}
	}()
}

// every runs f every d until stop is closed or the test ends.
func (k *scriptedKey) every(d time.Duration, stop <-chan struct{}, f func()) {
	go func() {
		t := time.NewTicker(d)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				f()
			case <-stop:
				return
			case <-k.closed:
				return
			}
		}
	}()
}

func (k *scriptedKey) cancelCount() int {
	k.mu.Lock()
	defer k.mu.Unlock()
	return len(k.cancels)
}

// answerInit answers CTAPHID_INIT as a key does: a new channel for the
// broadcast channel, the same one otherwise.
func (k *scriptedKey) answerInit(m *hid.Message) {
	r := hid.InitResponse{CID: m.CID, Version: hid.ProtocolVersion, Capabilities: hid.CapCBOR}
	copy(r.Nonce[:], m.Data)
	if m.CID == hid.BroadcastCID {
		r.CID = k.nextCID
		k.nextCID++
	}
	k.send(m.CID, hid.CmdInit, r.Marshal())
}

// defaults answers INIT and getInfo and reports whether m was one of them.
func (k *scriptedKey) defaults(m *hid.Message) bool {
	switch {
	case m.Cmd == hid.CmdInit:
		k.answerInit(m)
	case m.Cmd == hid.CmdCBOR && len(m.Data) > 0 && ctap.Command(m.Data[0]) == ctap.CmdGetInfo:
		k.send(m.CID, hid.CmdCBOR, ctap.EncodeResponse(&ctap.GetInfoResponse{
			Versions: []string{"FIDO_2_1"}, AAGUID: make([]byte, 16), MaxCredentialCountInList: 8}))
	default:
		return false
	}
	return true
}

const fakeRPID = "example.com"

// fakeAssertion is the key's answer to a getAssertion for clientDataHash:
// its "signature" is the hash itself, so a test can tell which request an
// answer was for.
func fakeAssertion(clientDataHash []byte, numberOfCredentials int, credID []byte) []byte {
	ad := (&ctap.AuthData{RPIDHash: RPIDHash(fakeRPID), Flags: ctap.FlagUP, SignCount: 1}).Marshal()
	return ctap.EncodeResponse(&ctap.GetAssertionResponse{
		Credential:          &ctap.CredentialDescriptor{Type: "public-key", ID: credID},
		AuthData:            ad,
		Signature:           clientDataHash,
		User:                &ctap.UserEntity{ID: credID},
		NumberOfCredentials: numberOfCredentials,
	})
}

// assertionRequest is a getAssertion the key received.
type assertionRequest struct {
	n    int // 1 for the first the key saw
	cid  uint32
	hash []byte
}

// assertions scripts a fake key's getAssertion answers with answer,
// which is called with each request in turn; INIT and getInfo get their
// default answers.
func assertions(t *testing.T, answer func(k *scriptedKey, r assertionRequest)) func(k *scriptedKey, m *hid.Message) {
	n := 0
	return func(k *scriptedKey, m *hid.Message) {
		if k.defaults(m) {
			return
		}
		if m.Cmd != hid.CmdCBOR || len(m.Data) == 0 || ctap.Command(m.Data[0]) != ctap.CmdGetAssertion {
			k.send(m.CID, hid.CmdError, []byte{byte(hid.ErrInvalidCmd)})
			return
		}
		req, err := ctap.DecodeGetAssertionRequest(m.Data[1:])
		if !assert.NoError(t, err) {
			return
		}
		n++
		answer(k, assertionRequest{n: n, cid: m.CID, hash: req.ClientDataHash})
	}
}

// answerNow answers r properly.
func answerNow(k *scriptedKey, r assertionRequest) {
	k.send(r.cid, hid.CmdCBOR, fakeAssertion(r.hash, 0, []byte{1}))
}

// signIn runs a GetAssertion whose client data hash names call i, and
// checks that an answer it gets is its own.
func signIn(t *testing.T, ctx context.Context, d *Device, i int) error {
	t.Helper()
	hash := sha256.Sum256([]byte(fmt.Sprintf("call %d", i)))
	as, err := d.GetAssertion(ctx, &GetAssertionRequest{RPID: fakeRPID, ClientDataHash: hash[:], AllowList: [][]byte{{1}}})
	if err != nil {
		return err
	}
	require.Len(t, as, 1)
	for j := range 10 {
		other := sha256.Sum256([]byte(fmt.Sprintf("call %d", j)))
		if j != i && bytes.Equal(as[0].Signature, other[:]) {
			t.Fatalf("call %d got the answer to call %d", i, j)
		}
	}
	require.Equal(t, hash[:], as[0].Signature, "call %d got an answer to no request made", i)
	return nil
}

// typedErr checks that err is one of the errors a misbehaving key may
// cause: never a success carrying another request's answer (signIn checks
// that), never an untyped error.
func typedErr(t *testing.T, err error) {
	t.Helper()
	require.Error(t, err)
	var re *ResponseError
	var he HIDError
	ok := errors.Is(err, ErrDeviceGone) || errors.As(err, &re) || errors.As(err, &he) ||
		errors.Is(err, ErrOperationTimeout) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
	assert.True(t, ok, "error %v is none of the typed errors", err)
}

func TestIssue13HostileKeyAnswersGoToTheirOwnRequest(t *testing.T) {
	const idle = 150 * time.Millisecond
	tests := []struct {
		name string
		// first misbehaves in answering the first request, and closes
		// done when it is through; later requests are answered properly.
		first func(t *testing.T, k *scriptedKey, r assertionRequest, done chan<- struct{})
		// resync, if set, handles INIT on the first request's channel: the
		// host resynchronising it.
		resync func(k *scriptedKey, m *hid.Message, first assertionRequest, done chan<- struct{})
		// timeout, if set, is the first call's deadline; the misbehaviour
		// follows the caller giving up.
		timeout time.Duration
		// wantErr says the first call fails, with a typed error.
		wantErr bool
	}{
		{name: "late answer, queued before the next request", wantErr: true,
			first: func(t *testing.T, k *scriptedKey, r assertionRequest, done chan<- struct{}) {
				k.later(3*idle, func() { answerNow(k, r); close(done) })
			}},
		{name: "late answer, after the key acknowledged the resynchronisation", wantErr: true,
			first: func(t *testing.T, k *scriptedKey, r assertionRequest, done chan<- struct{}) {}, // silent
			resync: func(k *scriptedKey, m *hid.Message, first assertionRequest, done chan<- struct{}) {
				// The INIT should abort the request; this key answers it
				// anyway, on the channel the request came on.
				k.answerInit(m)
				answerNow(k, first)
				close(done)
			}},
		{name: "late answer twice, after the caller gave up", timeout: 50 * time.Millisecond, wantErr: true,
			first: func(t *testing.T, k *scriptedKey, r assertionRequest, done chan<- struct{}) {
				k.keepalive(r.cid, hid.KeepaliveUPNeeded)
				k.later(200*time.Millisecond, func() { answerNow(k, r); answerNow(k, r); close(done) })
			}},
		{name: "stray continuation after a complete answer",
			first: func(t *testing.T, k *scriptedKey, r assertionRequest, done chan<- struct{}) {
				answerNow(k, r)
				k.strayContinuation(r.cid, 0)
				k.strayContinuation(r.cid, 5)
				close(done)
			}},
		{name: "stray continuation before the answer",
			first: func(t *testing.T, k *scriptedKey, r assertionRequest, done chan<- struct{}) {
				k.strayContinuation(r.cid, 0)
				answerNow(k, r)
				close(done)
			}},
		{name: "answer for another command, then the real one", wantErr: true,
			first: func(t *testing.T, k *scriptedKey, r assertionRequest, done chan<- struct{}) {
				k.send(r.cid, hid.CmdPing, []byte("old ping"))
				answerNow(k, r)
				close(done)
			}},
		{name: "broken sequence, then the real answer", wantErr: true,
			first: func(t *testing.T, k *scriptedKey, r assertionRequest, done chan<- struct{}) {
				out, err := hid.AppendPackets(nil, r.cid, hid.CmdCBOR, fakeAssertion(r.hash, 0, bytes.Repeat([]byte{1}, 100)))
				if assert.NoError(t, err) && assert.Greater(t, len(out), 2*hid.ReportSize) {
					k.report(out[:hid.ReportSize])
					k.report(out[2*hid.ReportSize : 3*hid.ReportSize]) // seq 1 before seq 0
				}
				answerNow(k, r)
				close(done)
			}},
		{name: "CTAPHID error, then the answer", wantErr: true,
			first: func(t *testing.T, k *scriptedKey, r assertionRequest, done chan<- struct{}) {
				k.send(r.cid, hid.CmdError, []byte{byte(hid.ErrOther)})
				answerNow(k, r)
				close(done)
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan struct{})
			var first *assertionRequest // the key's goroutine only
			var firstCID atomic.Uint32
			answer := assertions(t, func(k *scriptedKey, r assertionRequest) {
				if r.n > 1 {
					answerNow(k, r)
					return
				}
				first = &r
				firstCID.Store(r.cid)
				tt.first(t, k, r, done)
			})
			d, _ := openScriptedKey(t, &Opener{IdleTimeout: idle}, func(k *scriptedKey, m *hid.Message) {
				if tt.resync != nil && m.Cmd == hid.CmdInit && first != nil && m.CID == first.cid {
					tt.resync(k, m, *first, done)
					first = nil
					return
				}
				answer(k, m)
			})

			ctx := context.Background()
			if tt.timeout > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.timeout)
				defer cancel()
			}
			err := signIn(t, ctx, d, 0)
			if tt.wantErr {
				typedErr(t, err)
			} else {
				require.NoError(t, err)
			}
			if tt.resync == nil {
				select {
				case <-done:
				case <-time.After(5 * time.Second):
					t.Fatal("the key never misbehaved")
				}
			}
			for i := 1; i <= 3; i++ {
				require.NoError(t, signIn(t, context.Background(), d, i), "call %d after the misbehaviour", i)
			}
			if tt.resync != nil {
				select {
				case <-done:
				default:
					t.Fatal("the host never resynchronised the channel")
				}
			}
			if tt.wantErr {
				// A fresh channel: what the key still sends on the old
				// one goes unread.
				assert.NotEqual(t, firstCID.Load(), d.ch.Info().CID, "the channel was not replaced after the failure")
			}
		})
	}
}

func TestIssue13KeepaliveOnlyKeyStopsAtMaxOperationTime(t *testing.T) {
	const maxOp = 300 * time.Millisecond
	stop := make(chan struct{})
	defer close(stop)
	d, k := openScriptedKey(t, &Opener{IdleTimeout: 100 * time.Millisecond, MaxOperationTime: maxOp},
		assertions(t, func(k *scriptedKey, r assertionRequest) {
			if r.n == 1 {
				// Busy for ever: KEEPALIVE every 20 ms, CANCEL ignored.
				k.every(20*time.Millisecond, stop, func() { k.keepalive(r.cid, hid.KeepaliveProcessing) })
				return
			}
			answerNow(k, r)
		}))
	start := time.Now()
	err := signIn(t, context.Background(), d, 0)
	elapsed := time.Since(start)
	require.ErrorIs(t, err, ErrOperationTimeout)
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.GreaterOrEqual(t, elapsed, maxOp)
	assert.Less(t, elapsed, maxOp+time.Second, "the call outlived the maximum operation time")
	assert.Eventually(t, func() bool { return k.cancelCount() > 0 }, 5*time.Second, 10*time.Millisecond,
		"the key was not sent CTAPHID_CANCEL")
	// The key keeps sending KEEPALIVE on the old channel; the next call
	// is not disturbed by it.
	require.NoError(t, signIn(t, context.Background(), d, 1))
}

func TestIssue13MaxOperationTimeDefault(t *testing.T) {
	d, _ := openScriptedKey(t, &Opener{}, assertions(t, answerNow))
	assert.Equal(t, 2*time.Minute, d.maxOp)
	assert.Equal(t, DefaultMaxOperationTime, d.maxOp)
	// The caller's deadline still wins when it is sooner.
	stop := make(chan struct{})
	defer close(stop)
	d, _ = openScriptedKey(t, &Opener{}, assertions(t, func(k *scriptedKey, r assertionRequest) {
		k.every(20*time.Millisecond, stop, func() { k.keepalive(r.cid, hid.KeepaliveUPNeeded) })
	}))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	err := signIn(t, ctx, d, 0)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.NotErrorIs(t, err, ErrOperationTimeout)
}

func TestIssue13OtherChannelsTrafficDoesNotExtendIdleTimeout(t *testing.T) {
	const idle = 200 * time.Millisecond
	stop := make(chan struct{})
	d, _ := openScriptedKey(t, &Opener{IdleTimeout: idle, MaxOperationTime: time.Minute},
		assertions(t, func(k *scriptedKey, r assertionRequest) {
			if r.n > 1 {
				answerNow(k, r)
				return
			}
			// Silent on the host's channel; busy on another host's.
			other := r.cid + 0x1000
			k.every(10*time.Millisecond, stop, func() {
				k.keepalive(other, hid.KeepaliveUPNeeded)
				k.send(other, hid.CmdPing, bytes.Repeat([]byte{7}, 100))
				k.strayContinuation(other, 9)
			})
		}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := signIn(t, ctx, d, 0)
	elapsed := time.Since(start)
	close(stop)
	require.ErrorIs(t, err, ErrDeviceGone)
	assert.Less(t, elapsed, idle+2*time.Second, "the other channel's traffic kept the call waiting")
	require.NoError(t, signIn(t, context.Background(), d, 1))
}

// discoverable scripts a key whose discoverable getAssertion reports
// claimed accounts and answers getNextAssertion with the credentials ids
// gives in turn.
func discoverable(t *testing.T, claimed int, ids func(i int) []byte, nexts *atomic.Int32) func(k *scriptedKey, m *hid.Message) {
	var hash []byte
	i := 0
	return func(k *scriptedKey, m *hid.Message) {
		if k.defaults(m) {
			return
		}
		switch ctap.Command(m.Data[0]) {
		case ctap.CmdGetAssertion:
			req, err := ctap.DecodeGetAssertionRequest(m.Data[1:])
			if !assert.NoError(t, err) {
				return
			}
			hash, i = req.ClientDataHash, 0
			k.send(m.CID, hid.CmdCBOR, fakeAssertion(hash, claimed, ids(0)))
		case ctap.CmdGetNextAssertion:
			nexts.Add(1)
			i++
			k.send(m.CID, hid.CmdCBOR, fakeAssertion(hash, 0, ids(i)))
		}
	}
}

// TestIssue13AccountCountBounded is issue 13 item 4 against a lying key:
// the client follows numberOfCredentials to the end, but refuses a count
// past what it collects with ErrTooManyAccounts, before asking for any,
// and a key repeating a credential with a ResponseError.
func TestIssue13AccountCountBounded(t *testing.T) {
	hash := sha256.Sum256([]byte("discoverable"))
	req := &GetAssertionRequest{RPID: fakeRPID, ClientDataHash: hash[:]}
	distinct := func(i int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(i)) }

	t.Run("all reported accounts", func(t *testing.T) {
		var nexts atomic.Int32
		d, _ := openScriptedKey(t, &Opener{}, discoverable(t, 300, distinct, &nexts))
		as, err := d.GetAssertion(context.Background(), req)
		require.NoError(t, err)
		assert.Len(t, as, 300)
		assert.EqualValues(t, 299, nexts.Load())
	})
	t.Run("more than the client collects", func(t *testing.T) {
		var nexts atomic.Int32
		d, _ := openScriptedKey(t, &Opener{}, discoverable(t, maxAccounts+1, distinct, &nexts))
		_, err := d.GetAssertion(context.Background(), req)
		require.ErrorIs(t, err, ErrTooManyAccounts)
		assert.Contains(t, err.Error(), fmt.Sprint(maxAccounts+1))
		assert.Zero(t, nexts.Load(), "getNextAssertion was sent")
	})
	t.Run("credential repeated", func(t *testing.T) {
		var nexts atomic.Int32
		d, _ := openScriptedKey(t, &Opener{}, discoverable(t, 5, func(i int) []byte { return distinct(min(i, 2)) }, &nexts))
		_, err := d.GetAssertion(context.Background(), req)
		var re *ResponseError
		require.ErrorAs(t, err, &re)
		assert.Contains(t, err.Error(), "twice")
	})
}
