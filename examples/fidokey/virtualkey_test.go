package main

import (
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
	"github.com/fidokit/fidokit/internal/hid"
)

// testKey is a virtual key a script started: served on $WORK/NAME.sock
// through a proxy that watches the CTAPHID traffic, so that a script can
// check what the key saw (a CTAPHID_CANCEL, say) rather than trust the
// command's word for it.
type testKey struct {
	name string
	sock string
	key  *virtual.Key
	l    *hid.Listener

	offset atomic.Int64 // added to the key's clock, in nanoseconds
	setup  atomic.Bool  // makecred is running: touches are approved silently

	touches  chan int32   // one per wait for a touch: the upNeeded count when it began
	upNeeded atomic.Int32 // KEEPALIVE(UPNEEDED) packets to hosts
	cancels  atomic.Int32 // CTAPHID_CANCEL packets from hosts
	answered atomic.Int32 // CBOR answers with CTAP2_ERR_KEEPALIVE_CANCEL

	wg sync.WaitGroup
}

// scriptKeys holds one script's keys, as a testscript value.
type scriptKeys struct {
	mu   sync.Mutex
	keys map[string]*testKey
}

const keysValue = "fidokey-test-keys"

func keysOf(ts *testscript.TestScript) *scriptKeys { return ts.Value(keysValue).(*scriptKeys) }

func (s *scriptKeys) get(ts *testscript.TestScript, name string) *testKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := s.keys[name]
	if k == nil {
		ts.Fatalf("no virtual key %q was started", name)
	}
	return k
}

// cmdVirtualKey is the script command virtualkey:
//
//	virtualkey start NAME [-pin PIN] [-presence auto|deny|never|DURATION] [-uv]
//	                      [-no-largeblobs] [-no-pin-support] [-u2f-only] [-ctap20]
//	                      [-always-uv] [-min-pin-length N] [-no-env]
//	    serves a new key on $WORK/NAME.sock until the script ends, and adds
//	    the socket to FIDOKIT_VIRTUAL_KEYS (unless -no-env).
//	virtualkey stop NAME          unplugs it (the socket goes away)
//	virtualkey replug NAME        unplugs and plugs it in again: the reset window restarts
//	virtualkey age NAME DURATION  moves the key's clock on, as if it had been plugged in longer
//	virtualkey waittouch NAME     waits until the key waits for a touch and has sent
//	                              the host two KEEPALIVE(UPNEEDED)
//	virtualkey saw NAME cancel    the key received CTAPHID_CANCEL and answered
//	                              CTAP2_ERR_KEEPALIVE_CANCEL (with !: it did not)
//	virtualkey check NAME WHAT VALUE...
//	    checks the key's state directly: "creds N", "pin set|unset",
//	    "retries N", "alwaysuv on|off", "minpin N", "user ID NAME",
//	    "blob ID FILE" (the large blob of credential ID holds FILE)
func cmdVirtualKey(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: virtualkey start|stop|replug|age|waittouch|saw|check NAME ...")
	}
	sub, name, rest := args[0], args[1], args[2:]
	keys := keysOf(ts)
	if sub != "saw" && sub != "check" && neg {
		ts.Fatalf("unsupported: ! virtualkey %s", sub)
	}
	switch sub {
	case "start":
		startKey(ts, keys, name, rest)
	case "stop":
		k := keys.get(ts, name)
		k.stop()
	case "replug":
		keys.get(ts, name).key.Replug()
	case "age":
		if len(rest) != 1 {
			ts.Fatalf("usage: virtualkey age NAME DURATION")
		}
		d, err := time.ParseDuration(rest[0])
		ts.Check(err)
		keys.get(ts, name).offset.Add(int64(d))
	case "waittouch":
		// The key waits for a touch, and has told the host so twice (a
		// KEEPALIVE every 100 ms), so the host has had time to prompt.
		k := keys.get(ts, name)
		timeout := time.After(20 * time.Second)
		var base int32
		select {
		case base = <-k.touches:
		case <-timeout:
			ts.Fatalf("virtual key %s: nothing waited for a touch within 20s", name)
		}
		for k.upNeeded.Load() < base+2 {
			select {
			case <-timeout:
				ts.Fatalf("virtual key %s: no KEEPALIVE(UPNEEDED) sent within 20s", name)
			case <-time.After(10 * time.Millisecond):
			}
		}
	case "saw":
		if len(rest) != 1 || rest[0] != "cancel" {
			ts.Fatalf("usage: virtualkey saw NAME cancel")
		}
		k := keys.get(ts, name)
		// The answer may still be on its way to the host; give it a moment.
		deadline := time.Now().Add(5 * time.Second)
		saw := func() bool { return k.cancels.Load() > 0 && k.answered.Load() > 0 }
		for !saw() && !neg && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		switch {
		case saw() && neg:
			ts.Fatalf("virtual key %s received CTAPHID_CANCEL", name)
		case !saw() && !neg:
			ts.Fatalf("virtual key %s: %d CTAPHID_CANCEL received, %d KEEPALIVE_CANCEL answers sent", name, k.cancels.Load(), k.answered.Load())
		}
	case "check":
		checkKey(ts, neg, keys.get(ts, name), rest)
	default:
		ts.Fatalf("unknown virtualkey subcommand %q", sub)
	}
}

func startKey(ts *testscript.TestScript, keys *scriptKeys, name string, args []string) {
	fs := flag.NewFlagSet("virtualkey start", flag.ContinueOnError)
	pin := fs.String("pin", "", "")
	presence := fs.String("presence", "auto", "")
	uv := fs.Bool("uv", false, "")
	noBlobs := fs.Bool("no-largeblobs", false, "")
	noPIN := fs.Bool("no-pin-support", false, "")
	u2f := fs.Bool("u2f-only", false, "")
	ctap20 := fs.Bool("ctap20", false, "")
	alwaysUV := fs.Bool("always-uv", false, "")
	minPIN := fs.Int("min-pin-length", 0, "")
	noEnv := fs.Bool("no-env", false, "")
	if err := fs.Parse(args); err != nil || fs.NArg() != 0 {
		ts.Fatalf("virtualkey start %s: bad flags %q (%v)", name, args, err)
	}
	k := &testKey{name: name, sock: filepath.Join(ts.Getenv("WORK"), name+".sock"), touches: make(chan int32, 64)}
	cfg := &virtual.Config{
		PIN: *pin, BuiltInUV: *uv, NoLargeBlobs: *noBlobs, NoClientPIN: *noPIN, U2FOnly: *u2f,
		AlwaysUV: *alwaysUV, MinPINLength: *minPIN,
		Clock: func() time.Time { return time.Now().Add(time.Duration(k.offset.Load())) },
	}
	if *ctap20 {
		cfg.CTAPVersion = virtual.CTAP20
	}
	var answer virtual.UserPresence
	switch *presence {
	case "auto":
		answer = virtual.Approve
	case "deny":
		answer = virtual.Deny
	case "never":
		answer = func(ctx context.Context, req virtual.PresenceRequest) error {
			<-ctx.Done()
			return ctx.Err()
		}
	default:
		d, err := time.ParseDuration(*presence)
		if err != nil {
			ts.Fatalf("virtualkey start %s: -presence %q: want auto, deny, never or a duration", name, *presence)
		}
		answer = virtual.ApproveAfter(d)
	}
	cfg.UserPresence = func(ctx context.Context, req virtual.PresenceRequest) error {
		if k.setup.Load() {
			return nil
		}
		select {
		case k.touches <- k.upNeeded.Load():
		default:
		}
		return answer(ctx, req)
	}
	var err error
	k.key, err = virtual.New(cfg)
	ts.Check(err)
	k.l, err = hid.Listen(k.sock)
	if err != nil {
		k.key.Close()
		ts.Fatalf("virtualkey start %s: %v", name, err)
	}
	k.wg.Add(1)
	go k.accept()
	keys.mu.Lock()
	if keys.keys[name] != nil {
		keys.mu.Unlock()
		k.stop()
		ts.Fatalf("virtual key %q started twice", name)
	}
	keys.keys[name] = k
	keys.mu.Unlock()
	ts.Defer(k.stop)
	if !*noEnv {
		list := ts.Getenv(fido.VirtualKeysEnv)
		if list != "" {
			list += string(os.PathListSeparator)
		}
		ts.Setenv(fido.VirtualKeysEnv, list+k.sock)
	}
}

// accept serves each host that connects by proxying it to a new
// in-process connection of the key.
func (k *testKey) accept() {
	defer k.wg.Done()
	for {
		dc, err := k.l.Accept()
		if err != nil {
			return // closed
		}
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			k.proxy(dc)
		}()
	}
}

// proxy copies reports between a host on the socket and the key,
// counting the host's CTAPHID_CANCEL packets and the key's
// CTAP2_ERR_KEEPALIVE_CANCEL answers (CTAP 2.1 §11.2.9.1.5).
//
// A host that sends CANCEL need not wait for the answer. When the host
// leaves with a CBOR request unanswered, the proxy keeps the key's end open
// for a while to see how the key ends it: at once with KEEPALIVE_CANCEL if
// it saw the CANCEL, or not until its own timeout if it did not.
func (k *testKey) proxy(dc hid.DeviceConn) {
	host := k.key.Conn()
	var requests, answers atomic.Int32 // CBOR requests sent, final CBOR answers received
	answered := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, hid.ReportSize)
		hostGone := false
		for {
			n, err := host.Read(buf)
			if err != nil {
				dc.Close()
				return
			}
			// An init packet: CID(4) | CMD|0x80 | BCNT(2) | data; a CBOR
			// answer's first data byte is its CTAP status.
			switch {
			case n != hid.ReportSize:
			case buf[4] == 0x80|byte(hid.CmdCBOR):
				if buf[7] == byte(fido.StatusKeepaliveCancel) {
					k.answered.Add(1)
				}
				answers.Add(1)
				select {
				case answered <- struct{}{}:
				default:
				}
			case buf[4] == 0x80|byte(hid.CmdKeepalive) && buf[7] == hid.KeepaliveUPNeeded:
				k.upNeeded.Add(1)
			}
			if !hostGone {
				if _, err := dc.Write(buf[:n]); err != nil {
					hostGone = true // keep watching the key's answers
				}
			}
		}
	}()
	buf := make([]byte, hid.ReportSize+1)
	for {
		n, err := dc.Read(buf)
		var fe *hid.FrameError
		if errors.As(err, &fe) {
			continue
		}
		if err != nil {
			break
		}
		// Report ID 0, then CID(4) | CMD|0x80.
		switch {
		case n != hid.ReportSize+1:
		case buf[5] == 0x80|byte(hid.CmdCancel):
			k.cancels.Add(1)
		case buf[5] == 0x80|byte(hid.CmdCBOR):
			requests.Add(1)
		}
		if _, err := host.Write(buf[:n]); err != nil {
			break
		}
	}
	linger := time.NewTimer(2 * time.Second)
	defer linger.Stop()
	for answers.Load() < requests.Load() {
		select {
		case <-answered:
			continue
		case <-linger.C:
		case <-done:
		}
		break
	}
	host.Close()
	<-done
	dc.Close()
}

// stop unplugs the key: the socket goes away and every host is cut off.
func (k *testKey) stop() {
	k.l.Close()
	k.key.Close() // ends every in-process connection, so the proxies end
	k.wg.Wait()
}

func checkKey(ts *testscript.TestScript, neg bool, k *testKey, args []string) {
	if len(args) < 2 {
		ts.Fatalf("usage: virtualkey check NAME WHAT VALUE...")
	}
	var got, want string
	switch what := args[0]; what {
	case "creds":
		got, want = strconv.Itoa(len(k.key.Credentials())), args[1]
	case "pin":
		got, want = "unset", args[1]
		if k.key.HasPIN() {
			got = "set"
		}
	case "retries":
		got, want = strconv.Itoa(k.key.PINRetries()), args[1]
	case "alwaysuv", "minpin":
		dev, err := k.key.Open(context.Background(), nil)
		ts.Check(err)
		info, err := dev.Info(context.Background())
		dev.Close()
		ts.Check(err)
		if what == "minpin" {
			got, want = strconv.Itoa(info.MinPINLength), args[1]
		} else {
			got, want = "off", args[1]
			if info.Options["alwaysUv"] {
				got = "on"
			}
		}
	case "user", "blob":
		if len(args) != 3 {
			ts.Fatalf("usage: virtualkey check NAME %s ID VALUE", what)
		}
		id, err := base64.RawURLEncoding.DecodeString(args[1])
		ts.Check(err)
		var c *virtual.Credential
		for _, x := range k.key.Credentials() {
			if string(x.ID) == string(id) {
				c = &x
			}
		}
		if c == nil {
			ts.Fatalf("virtual key %s holds no credential %s", k.name, args[1])
		}
		if what == "user" {
			got, want = c.UserName, args[2]
			break
		}
		dev, err := k.key.Open(context.Background(), nil)
		ts.Check(err)
		data, err := dev.ReadLargeBlob(context.Background(), c.LargeBlobKey)
		dev.Close()
		if errors.Is(err, fido.ErrNoLargeBlob) {
			data = nil
		} else {
			ts.Check(err)
		}
		got, want = string(data), ts.ReadFile(args[2])
	default:
		ts.Fatalf("virtualkey check: unknown %q", what)
	}
	if (got == want) == neg {
		ts.Fatalf("virtual key %s: %s is %q, want %s%q", k.name, args[0], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// cmdMakeCred is the script command
//
//	makecred NAME -rp RPID -user USER [-display NAME] [-pin PIN] [-largeblob] [-env VAR] [-key-file FILE]
//
// which makes a discoverable credential on virtual key NAME, in-process
// through package fido, puts its ID (base64url) in $VAR and, with
// -key-file, writes its largeBlobKey to FILE.
func cmdMakeCred(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: makecred NAME -rp RPID -user USER [...]")
	}
	fs := flag.NewFlagSet("makecred", flag.ContinueOnError)
	rp := fs.String("rp", "example.com", "")
	user := fs.String("user", "alice", "")
	display := fs.String("display", "", "")
	pin := fs.String("pin", "", "")
	largeBlob := fs.Bool("largeblob", false, "")
	env := fs.String("env", "", "")
	keyFile := fs.String("key-file", "", "")
	if err := fs.Parse(args[1:]); err != nil || fs.NArg() != 0 {
		ts.Fatalf("makecred: bad flags %q (%v)", args[1:], err)
	}
	k := keysOf(ts).get(ts, args[0])
	o := &fido.Opener{Prompt: fido.Prompt{PIN: func(ctx context.Context, req fido.PINRequest) (string, error) {
		if *pin == "" || req.Retry {
			return "", errors.New("makecred: no (right) -pin")
		}
		return *pin, nil
	}}}
	ctx := context.Background()
	k.setup.Store(true)
	defer k.setup.Store(false)
	dev, err := k.key.Open(ctx, o)
	ts.Check(err)
	defer dev.Close()
	att, err := dev.MakeCredential(ctx, &fido.MakeCredentialRequest{
		ClientDataHash: make([]byte, 32),
		RP:             fido.RelyingParty{ID: *rp},
		User:           fido.User{ID: []byte("id-" + *user), Name: *user, DisplayName: *display},
		Discoverable:   true,
		Extensions:     fido.MakeCredentialExtensions{LargeBlobKey: *largeBlob},
	})
	if err != nil {
		ts.Fatalf("makecred: %v", err)
	}
	if *env != "" {
		ts.Setenv(*env, base64.RawURLEncoding.EncodeToString(att.CredentialID))
	}
	if *keyFile != "" {
		if att.Extensions.LargeBlobKey == nil {
			ts.Fatalf("makecred: no largeBlobKey (use -largeblob)")
		}
		ts.Check(os.WriteFile(ts.MkAbs(*keyFile), att.Extensions.LargeBlobKey, 0o600))
	}
	fmt.Fprintf(ts.Stdout(), "made credential %x\n", att.CredentialID)
}
