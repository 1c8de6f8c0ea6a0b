package virtual

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/internal/hid"
)

// handler adapts a Key to the device side of CTAPHID.
type handler struct{ k *Key }

var _ hid.Handler = handler{}

func (h handler) CBOR(ctx context.Context, req []byte, status func(byte)) []byte {
	return h.k.handleCBOR(ctx, req, status)
}

func (h handler) Msg(ctx context.Context, apdu []byte) []byte { return h.k.handleMsg(ctx, apdu) }

// Wink does nothing: a real key blinks, and there is nothing to blink.
func (h handler) Wink() {}

// hidServer returns a CTAPHID server for one host of the key. The INIT
// capabilities follow the protocols the key speaks (CTAP 2.1
// §11.2.9.1.3): CBOR unless U2F-only, NMSG when it has no U2F.
func (k *Key) hidServer() *hid.Server {
	caps := hid.CapWink | hid.CapCBOR
	if k.cfg.U2FOnly {
		caps = hid.CapWink
	}
	if k.cfg.NoU2F {
		caps |= hid.CapNMSG
	}
	// Rand stays nil (crypto/rand): channel IDs are drawn from each
	// server's goroutine, and Config.Rand need not be safe for that.
	return &hid.Server{Handler: handler{k}, Capabilities: caps,
		Major: firmwareMajor, Minor: firmwareMinor, Build: firmwareBuild}
}

// Conn plugs the key in, in-process: it returns the host end of an
// in-memory CTAPHID transport that the key serves, for
// [fido.Opener.OpenConn] or any other host code. Closing the conn unplugs
// it and stops its server. Each Conn is a separate host; all share the
// key. After Close the conn reads EOF.
func (k *Key) Conn() fido.ReportConn {
	host, dev := hid.Pipe()
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.closed {
		dev.Close()
		return host
	}
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		k.hidServer().Serve(k.ctx, dev)
	}()
	return host
}

// Open plugs the key in, in-process, and opens it with o as fido.Open
// opens a real key; nil o means a zero fido.Opener. The returned device's
// DeviceInfo has Path "virtual" and Virtual set.
func (k *Key) Open(ctx context.Context, o *fido.Opener) (*fido.Device, error) {
	if o == nil {
		o = &fido.Opener{}
	}
	return o.OpenConn(ctx, k.Conn(), fido.DeviceInfo{Path: "virtual", Product: "fidokit virtual key", Virtual: true})
}

// Server serves a key on a socket; see [Key.Listen]. Its methods are safe
// for concurrent use.
type Server struct {
	k      *Key
	l      *hid.Listener
	path   string
	ctx    context.Context // ends at Close; every connection's server runs under it
	cancel context.CancelFunc
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// Listen serves the key on an AF_UNIX SOCK_SEQPACKET socket at path with
// hidraw framing, until Close (of the Server or the Key). fido.Open(ctx,
// path) opens it, as does any program pointed at it through the
// FIDOKIT_VIRTUAL_KEYS environment variable. Each connection is a separate
// host with its own CTAPHID server; all share the key. A stale socket left
// at path by a server that is gone is replaced. Only Linux has such
// sockets; elsewhere Listen fails (use Conn there).
func (k *Key) Listen(path string) (*Server, error) {
	if k.isClosed() {
		return nil, errKeyClosed
	}
	l, err := hid.Listen(path)
	if err != nil {
		return nil, err
	}
	s := &Server{k: k, l: l, path: path}
	s.ctx, s.cancel = context.WithCancel(k.ctx)
	k.mu.Lock()
	if k.closed { // Close ran while the socket was being made
		k.mu.Unlock()
		s.cancel()
		l.Close()
		return nil, errKeyClosed
	}
	k.servers[s] = struct{}{}
	s.wg.Add(1)
	k.mu.Unlock()
	go s.accept()
	return s, nil
}

// accept serves each host that connects until the listener closes.
func (s *Server) accept() {
	defer s.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		conn, err := s.l.Accept()
		if err != nil {
			if s.ctx.Err() != nil || errors.Is(err, hid.ErrClosed) {
				return
			}
			// Out of file descriptors or the like: wait and retry, as
			// net/http does, rather than spin or give up on the key.
			t := time.NewTimer(backoff)
			select {
			case <-s.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.k.hidServer().Serve(s.ctx, conn) // closes conn when it returns
		}()
	}
}

// Path returns the socket's path.
func (s *Server) Path() string { return s.path }

// Close stops accepting hosts, disconnects the connected ones, removes the
// socket and waits for the server's goroutines. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.cancel()
		s.closeErr = s.l.Close()
		s.wg.Wait()
		s.k.mu.Lock()
		delete(s.k.servers, s)
		s.k.mu.Unlock()
	})
	return s.closeErr
}
