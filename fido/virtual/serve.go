package virtual

import (
	"context"
	"errors"
	"sync"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/internal/hid"
)

// handler adapts a Key to the CTAPHID device side.
type handler struct{ k *Key }

func (h handler) CBOR(ctx context.Context, req []byte, status func(byte)) []byte {
	return h.k.handleCBOR(ctx, req, status)
}

func (h handler) Msg(ctx context.Context, apdu []byte) []byte { return h.k.handleMsg(apdu) }

func (h handler) Wink() {}

var _ hid.Handler = handler{}

func (k *Key) hidServer() *hid.Server {
	caps := hid.CapWink | hid.CapCBOR
	if k.cfg.U2FOnly {
		caps = hid.CapWink
	}
	if k.cfg.NoU2F {
		caps |= hid.CapNMSG
	}
	return &hid.Server{Handler: handler{k}, Capabilities: caps,
		Major: firmwareMajor, Minor: firmwareMinor, Build: firmwareBuild}
}

func (k *Key) serve(conn hid.DeviceConn) {
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		k.hidServer().Serve(k.ctx, conn)
	}()
}

// Conn plugs the key in, in-process: it returns the host end of an
// in-memory CTAPHID transport served by the key, for
// [fido.Opener.OpenConn]. Closing the conn unplugs it.
func (k *Key) Conn() fido.ReportConn {
	host, dev := hid.Pipe()
	k.serve(dev)
	return host
}

// Open plugs the key in, in-process, and opens it with o (nil means
// defaults), as fido.Open opens a real key.
func (k *Key) Open(ctx context.Context, o *fido.Opener) (*fido.Device, error) {
	if o == nil {
		o = &fido.Opener{}
	}
	return o.OpenConn(ctx, k.Conn(), fido.DeviceInfo{Path: "virtual", Product: "fidokit virtual key", Virtual: true})
}

// Server serves a key on a socket; see [Key.Listen].
type Server struct {
	l    *hid.Listener
	path string
	wg   sync.WaitGroup
}

// Listen serves the key on an AF_UNIX SOCK_SEQPACKET socket at path, with
// hidraw framing, until Close. fido.Open(ctx, path) opens it, as does any
// program pointed at the socket through FIDOKIT_VIRTUAL_KEYS. Each
// connection is a separate host.
func (k *Key) Listen(path string) (*Server, error) {
	l, err := hid.Listen(path)
	if err != nil {
		return nil, err
	}
	s := &Server{l: l, path: path}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			k.serve(conn)
		}
	}()
	return s, nil
}

// Path returns the socket path.
func (s *Server) Path() string { return s.path }

// Close stops accepting hosts and removes the socket. Connected hosts are
// served until they disconnect or the key is closed.
func (s *Server) Close() error {
	err := s.l.Close()
	s.wg.Wait()
	if errors.Is(err, context.Canceled) {
		err = nil
	}
	return err
}
