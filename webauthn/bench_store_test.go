package webauthn_test

import (
	"context"
	"io"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/internal/pgtest"
	"github.com/fidokit/fidokit/store/postgres"
	"github.com/fidokit/fidokit/store/sqlite"
	"github.com/fidokit/fidokit/webauthn"
)

// BenchmarkFinishLoginStore is BenchmarkFinishLogin (ES256, both paths)
// on the stores that keep their data in a database: SQLite, and
// PostgreSQL on the server of FIDOKIT_POSTGRES_URL. x-floor is the wall
// time per sign-in over one P-256 verify; cpu-x-floor, the relying
// party's own CPU time per sign-in (the database server's is not in it).
// For PostgreSQL, round-trips is how many times per sign-in the store
// sent a request and waited for the answer, counted by a proxy on the
// connection for sign-ins after the timed ones.
func BenchmarkFinishLoginStore(b *testing.B) {
	for _, p := range loginPaths {
		b.Run("sqlite/"+p.name, func(b *testing.B) {
			s, err := sqlite.Open(b.Context(), b.TempDir()+"/webauthn.db")
			require.NoError(b, err)
			b.Cleanup(func() { s.Close() })
			benchmarkFinishLogin(b, s, fido.ES256, p.slow, p256VerifyFloor, nil)
		})
	}
	for _, p := range loginPaths {
		b.Run("postgres/"+p.name, func(b *testing.B) {
			db := pgtest.New(b)
			s, err := postgres.Open(b.Context(), db)
			require.NoError(b, err)
			b.Cleanup(s.Close)
			benchmarkFinishLogin(b, s, fido.ES256, p.slow, p256VerifyFloor, func(e *env, next func() (string, []byte), _ time.Duration) {
				b.ReportMetric(pgRoundTrips(b, e, db, next), "round-trips")
			})
		})
	}
}

// BenchmarkBeginLogin is BeginLogin for a user with one key, on each
// store: the challenge made, its session encoded and stored. x-floor is
// its time over one P-256 verify, so that begin and finish compare. Each
// challenge is taken again outside the timer, so the store holds one at
// a time, as a person's sign-in does.
func BenchmarkBeginLogin(b *testing.B) {
	for _, be := range e2eBackends {
		b.Run(be.name, func(b *testing.B) {
			store := be.open(b, 1)[0]
			e := newEnv(b, func(c *webauthn.Config) { c.Store = store })
			e.store = store
			u := e.user("alice")
			e.register(e.key(nil), u, "")
			verify := p256VerifyFloor()
			floors := sample(200, verify)
			ops := make([]time.Duration, 0, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				start := time.Now()
				begin, err := e.rp.BeginLogin(e.ctx, u.ID)
				ops = append(ops, time.Since(start))
				require.NoError(b, err)
				b.StopTimer()
				_, err = store.TakeChallenge(e.ctx, begin.ChallengeID, time.Now())
				require.NoError(b, err)
				b.StartTimer()
			}
			b.StopTimer()
			floors = append(floors, sample(200, verify)...)
			b.ReportMetric(float64(mean(ops))/float64(mean(floors)), "x-floor")
			b.ReportMetric(float64(median(ops))/float64(median(floors)), "x-floor-p50")
		})
	}
}

// pgRoundTrips is the mean number of round trips a sign-in makes to
// PostgreSQL, through a relying party whose store connects to db through
// a counting proxy.
func pgRoundTrips(b *testing.B, e *env, db string, next func() (string, []byte)) float64 {
	b.Helper()
	proxy := newFlightProxy(b, db)
	s, err := postgres.Open(e.ctx, proxy.url)
	require.NoError(b, err)
	defer s.Close()
	rp := e.newRP(func(c *webauthn.Config) { c.Store = s })
	const n = 20
	total := 0
	for i := range n + 1 {
		id, resp := next()
		before := proxy.flights.Load()
		_, _, err := rp.FinishLogin(e.ctx, id, resp)
		require.NoError(b, err)
		if i > 0 { // the first warms the pool's connection
			total += int(proxy.flights.Load() - before)
		}
	}
	return float64(total) / n
}

// flightProxy forwards TCP connections to a PostgreSQL server and counts
// flights: each time a client sends after the server last spoke (or
// first), which is one round trip however many messages (a pipelined
// batch, say) and TCP segments it takes.
type flightProxy struct {
	url     string
	flights atomic.Int64
}

func newFlightProxy(b *testing.B, connString string) *flightProxy {
	b.Helper()
	u, err := url.Parse(connString)
	require.NoError(b, err)
	target := u.Host
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(b, err)
	p := &flightProxy{}
	u.Host = l.Addr().String()
	p.url = u.String()
	var wg sync.WaitGroup
	b.Cleanup(func() { l.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { p.forward(c, target) })
		}
	})
	return p
}

func (p *flightProxy) forward(client net.Conn, target string) {
	defer client.Close()
	var d net.Dialer
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	server, err := d.DialContext(ctx, "tcp", target)
	cancel()
	if err != nil {
		return
	}
	defer server.Close()
	// serverSpoke is set when the server sends and cleared when the
	// client does: a client send that clears it starts a flight.
	var serverSpoke atomic.Bool
	serverSpoke.Store(true)
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn, fromClient bool) {
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if fromClient {
					if serverSpoke.Swap(false) {
						p.flights.Add(1)
					}
				} else {
					serverSpoke.Store(true)
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				if err != io.EOF {
					return
				}
				return
			}
		}
	}
	go pipe(server, client, true)
	go pipe(client, server, false)
	<-done
}
