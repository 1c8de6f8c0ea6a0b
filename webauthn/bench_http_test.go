package webauthn_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/internal/cpuclock"
	"github.com/fidokit/fidokit/internal/pgtest"
	"github.com/fidokit/fidokit/store/postgres"
	"github.com/fidokit/fidokit/store/sqlite"
	"github.com/fidokit/fidokit/webauthn"
	"github.com/fidokit/fidokit/webauthn/webauthntest"
)

// benchWorkers is how many virtual keys the client sub-benchmark runs at
// once.
const benchWorkers = 8

// benchClients are the numbers of browsers that sign in at once in
// BenchmarkHTTPSignIn, each a user with a virtual key of their own and a
// cookie jar.
var benchClients = []int{1, 8, 64}

// benchCores is the number of cores of the verify-bound limit: the
// machine the project is measured on has two, so no relying party there
// can do more than benchCores sign-ins per P-256 verify time.
const benchCores = 2

// The relying party of BenchmarkHTTPSignIn runs in a child process, the
// test binary run again for TestBenchRPServer, so that its CPU time is
// told apart from the load generator's.
const (
	// benchRPEnv tells the child which store to serve: "memory",
	// "sqlite:<path>" or "postgres:<connection URL>".
	benchRPEnv = "FIDOKIT_BENCH_RP"
	// benchRPProfileEnv, if set (by whoever runs the benchmark), is a
	// directory where each child writes a CPU profile of its whole life,
	// named after its sub-benchmark (benchRPNameEnv, set by the parent).
	benchRPProfileEnv = "FIDOKIT_BENCH_RP_CPUPROFILE"
	benchRPNameEnv    = "FIDOKIT_BENCH_RP_NAME"
	// benchRPListening starts the line on which the child tells its
	// handler's base URL.
	benchRPListening = "fidokit bench RP listening on "
)

// BenchmarkHTTPSignIn measures sign-ins through the HTTP handler: POST
// /login/begin and /login/finish over loopback HTTP with a cookie jar,
// the assertion made by a virtual key in between, for each store with 1,
// 8 and 64 browsers at once (memory/clients=8, ...). One op is one
// sign-in. The relying party runs in a child process of its own (see
// TestBenchRPServer) holding the store, users signed up through the
// handler; this process is the load generator.
//
// Metrics: signins/s, their throughput; x-limit, that throughput over
// the verify-bound limit, benchCores (2) over the time of one P-256
// verify (p256VerifyFloor, the median of samples taken in the same run
// before and after); rp-cpu-x-verify and gen-cpu-x-verify, the CPU time
// (user and system) per sign-in of the relying party's process and of
// the load generator's, over that verify time; on PostgreSQL also
// db-cpu-x-verify, that of the database's server processes (the backends
// connected to the benchmark's database), which share the machine's
// cores. allocs/op and B/op are
// the load generator's. Each run checks that the store recorded exactly
// b.N sign-ins, reading the keys' stored counts through GET /keys.
//
// postgres/servers=2 runs two relying-party processes on one PostgreSQL
// database, each client signing in always to the same one of them (half
// the clients each); x-one-server is its throughput over that of one of
// the two servers serving all the clients, measured in the same run just
// before.
//
// The client sub-benchmark is the virtual key's share alone (the
// WebAuthn client turning request options into an assertion over
// in-memory CTAPHID, benchWorkers at once).
//
// FIDOKIT_BENCH_RP_CPUPROFILE=<dir> makes each relying-party process
// write a CPU profile there.
func BenchmarkHTTPSignIn(b *testing.B) {
	b.Run("client", benchAssertions)
	for _, store := range []string{"memory", "sqlite", "postgres"} {
		b.Run(store, func(b *testing.B) {
			if store == "postgres" {
				pgtest.URL(b)
			}
			for _, n := range benchClients {
				benchSignInFixture(b, fmt.Sprintf("clients=%d", n), &signInFixture{store: store, servers: 1, clients: n})
			}
			if store != "postgres" {
				return
			}
			b.Run("servers=2", func(b *testing.B) {
				for _, n := range []int{8, 64} {
					benchSignInFixture(b, fmt.Sprintf("clients=%d", n), &signInFixture{store: store, servers: 2, clients: n})
				}
			})
		})
	}
}

// benchSignInFixture runs fx as the sub-benchmark name of owner, then
// stops its servers.
func benchSignInFixture(owner *testing.B, name string, fx *signInFixture) {
	fx.owner = owner
	owner.Cleanup(func() { fx.close() })
	owner.Run(name, fx.bench)
	fx.close()
}

// TestBenchRPServer is the relying party of BenchmarkHTTPSignIn, run in
// a child process: it serves the handler of e2eServe on a store of its
// own (benchRPEnv) on 127.0.0.1, prints the base URL, and serves until
// its standard input is closed.
func TestBenchRPServer(t *testing.T) {
	spec := os.Getenv(benchRPEnv)
	if spec == "" {
		t.Skip("only a child process of BenchmarkHTTPSignIn")
	}
	if dir := os.Getenv(benchRPProfileEnv); dir != "" {
		f, err := os.Create(filepath.Join(dir, os.Getenv(benchRPNameEnv)+".pprof"))
		require.NoError(t, err)
		require.NoError(t, pprof.StartCPUProfile(f))
		defer func() {
			pprof.StopCPUProfile()
			assert.NoError(t, f.Close())
		}()
	}
	ctx := t.Context()
	var store webauthn.Store
	switch kind, arg, _ := strings.Cut(spec, ":"); kind {
	case "memory":
		store = webauthn.NewMemoryStore()
	case "sqlite":
		s, err := sqlite.Open(ctx, arg)
		require.NoError(t, err)
		defer s.Close()
		store = s
	case "postgres":
		s, err := postgres.Open(ctx, arg)
		require.NoError(t, err)
		defer s.Close()
		store = s
	default:
		t.Fatalf("%s=%q: no such store", benchRPEnv, spec)
	}
	sessions := &e2eSessions{}
	h, err := e2eRelyingParty(t, store).Handler(webauthn.HandlerConfig{
		CurrentUser: sessions.currentUser,
		OnLogin:     sessions.onLogin,
		AllowSignup: true,
		CookiePath:  e2ePrefix,
		OnError:     func(r *http.Request, err error) { t.Errorf("%s %s: internal error: %v", r.Method, r.URL.Path, err) },
	})
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle(e2ePrefix+"/", http.StripPrefix(e2ePrefix, h))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := &http.Server{Handler: mux}
	go srv.Serve(ln)
	fmt.Println(benchRPListening + "http://" + ln.Addr().String() + e2ePrefix)
	io.Copy(io.Discard, os.Stdin)
	assert.NoError(t, srv.Close())
}

// rpServer is a relying-party process, TestBenchRPServer in a child.
type rpServer struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	url    string        // the handler's base URL
	out    bytes.Buffer  // the child's other output, once done is closed
	stderr bytes.Buffer  // its standard error, once it has exited
	done   chan struct{} // closed when the child's output has ended
}

// startRPServer starts a relying-party process on the store of spec
// (see benchRPEnv) and waits for its URL.
func startRPServer(spec, name string) (*rpServer, error) {
	s := &rpServer{done: make(chan struct{})}
	s.cmd = exec.Command(os.Args[0], "-test.run=^TestBenchRPServer$", "-test.count=1")
	s.cmd.Env = append(os.Environ(), benchRPEnv+"="+spec, benchRPNameEnv+"="+name)
	s.cmd.Stderr = &s.stderr
	var err error
	if s.stdin, err = s.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := s.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	urlc := make(chan string, 1)
	go func() {
		defer close(s.done)
		br := bufio.NewReader(stdout)
		for {
			line, err := br.ReadString('\n')
			if u, ok := strings.CutPrefix(line, benchRPListening); ok {
				urlc <- strings.TrimSpace(u)
				break
			}
			s.out.WriteString(line)
			if err != nil {
				close(urlc)
				return
			}
		}
		io.Copy(&s.out, br)
	}()
	select {
	case u, ok := <-urlc:
		if ok {
			s.url = u
			return s, nil
		}
	case <-time.After(time.Minute):
	}
	return nil, fmt.Errorf("relying-party process %s: no URL: %w", name, s.stop())
}

// cpu is the CPU time the process has used so far.
func (s *rpServer) cpu() (time.Duration, bool) { return cpuclock.Process(s.cmd.Process.Pid) }

// stop closes the child's standard input, which ends it, killing it if it
// has not ended after a while, and returns its failure if it failed.
func (s *rpServer) stop() error {
	s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		s.cmd.Process.Kill()
		<-s.done
	}
	if err := s.cmd.Wait(); err != nil {
		return fmt.Errorf("relying-party process: %v\n%s%s", err, &s.out, &s.stderr)
	}
	return nil
}

// signInFixture is one sub-benchmark of BenchmarkHTTPSignIn: its
// relying-party processes and its users, set up on its first run and kept
// for the next (the testing package runs a benchmark again for each b.N)
// until owner, the benchmark above it, stops them.
type signInFixture struct {
	owner            *testing.B
	store            string // memory, sqlite or postgres
	servers, clients int

	ready  bool
	closed bool
	rps    []*rpServer
	users  []*benchUser
	tr     *http.Transport
	db     *pgx.Conn // on PostgreSQL, for the backends' process IDs
}

// benchUser is one browser of a signInFixture.
type benchUser struct {
	name string
	// hs are the user's virtual key at each server, all on the one
	// cookie jar of the user's browser.
	hs []*webauthntest.HTTP
	// last is the server of the last sign-in, which holds the session.
	last int
	// count is the stored sign count at the last check.
	count uint32
}

// outliving is a testing.TB for what a signInFixture sets up once and
// keeps across runs: cleanups, temporary directories and the context are
// those of owner (the embedded TB), which outlives the runs; failures and
// skips go to cur, the run setting up.
type outliving struct {
	testing.TB
	cur testing.TB
}

func (o outliving) Fatal(args ...any)                 { o.cur.Helper(); o.cur.Fatal(args...) }
func (o outliving) Fatalf(format string, args ...any) { o.cur.Helper(); o.cur.Fatalf(format, args...) }
func (o outliving) FailNow()                          { o.cur.FailNow() }
func (o outliving) Skip(args ...any)                  { o.cur.Helper(); o.cur.Skip(args...) }
func (o outliving) Skipf(format string, args ...any)  { o.cur.Helper(); o.cur.Skipf(format, args...) }
func (o outliving) SkipNow()                          { o.cur.SkipNow() }

func (fx *signInFixture) setup(b *testing.B) {
	start := time.Now()
	tb := outliving{TB: fx.owner, cur: b}
	var spec string
	switch fx.store {
	case "memory":
		spec = "memory"
	case "sqlite":
		spec = "sqlite:" + filepath.Join(fx.owner.TempDir(), "webauthn.db")
	case "postgres":
		url := pgtest.New(tb)
		spec = "postgres:" + url
		db, err := pgx.Connect(b.Context(), url)
		require.NoError(b, err)
		fx.db = db
	}
	name := strings.NewReplacer("/", "-", "=", "").Replace(strings.TrimPrefix(b.Name(), "Benchmark"))
	// One after the other: each opening migrates the database.
	for i := range fx.servers {
		s, err := startRPServer(spec, fmt.Sprintf("%s-%d", name, i))
		require.NoError(b, err)
		fx.rps = append(fx.rps, s)
	}
	// One transport keeps a connection per browser and server alive, as
	// browsers do.
	fx.tr = http.DefaultTransport.(*http.Transport).Clone()
	fx.tr.MaxIdleConns = 0
	fx.tr.MaxIdleConnsPerHost = fx.clients

	fx.users = make([]*benchUser, fx.clients)
	for i := range fx.users {
		key := e2eKey(tb)
		jar, err := cookiejar.New(nil)
		require.NoError(b, err)
		hc := &http.Client{Transport: fx.tr, Jar: jar}
		u := &benchUser{name: fmt.Sprintf("bench%d@example.com", i)}
		for _, s := range fx.rps {
			u.hs = append(u.hs, key.HTTP(s.url, hc))
		}
		fx.users[i] = u
	}
	// Sign-ups through the first server, benchWorkers at once.
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs error
	)
	sem := make(chan struct{}, benchWorkers)
	for _, u := range fx.users {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, k, err := u.hs[0].Signup(b.Context(), u.name, "", "")
			if err != nil {
				mu.Lock()
				errs = errors.Join(errs, fmt.Errorf("sign-up of %s: %w", u.name, err))
				mu.Unlock()
				return
			}
			u.count = k.SignCount
		})
	}
	wg.Wait()
	require.NoError(b, errs)
	fx.ready = true
	b.Logf("%d servers and %d users set up in %v", fx.servers, fx.clients, time.Since(start).Round(time.Millisecond))
}

// close stops the servers; a server that failed fails owner.
func (fx *signInFixture) close() {
	if fx.closed {
		return
	}
	fx.closed = true
	for _, s := range fx.rps {
		if err := s.stop(); err != nil {
			fx.owner.Error(err)
		}
	}
	if fx.tr != nil {
		fx.tr.CloseIdleConnections()
	}
	if fx.db != nil {
		fx.db.Close(fx.owner.Context())
	}
}

func (fx *signInFixture) bench(b *testing.B) {
	if !fx.ready {
		fx.setup(b)
	}
	verify := p256VerifyFloor()
	verify()
	floors := sample(200, verify)
	var one signInPhase
	if fx.servers > 1 {
		one = fx.phase(b, b.N, 1)
		fx.check(b, b.N)
	}
	b.ReportAllocs()
	b.ResetTimer()
	r := fx.phase(b, b.N, fx.servers)
	b.StopTimer()
	floors = append(floors, sample(200, verify)...)
	fx.check(b, b.N)

	v := median(floors)
	rate := float64(b.N) / r.wall.Seconds()
	b.ReportMetric(rate, "signins/s")
	b.ReportMetric(rate/(benchCores/v.Seconds()), "x-limit")
	if r.cpuOK {
		perVerify := float64(b.N) * float64(v)
		b.ReportMetric(float64(r.rpCPU)/perVerify, "rp-cpu-x-verify")
		b.ReportMetric(float64(r.genCPU)/perVerify, "gen-cpu-x-verify")
		if fx.db != nil {
			b.ReportMetric(float64(r.dbCPU)/perVerify, "db-cpu-x-verify")
		}
	}
	if fx.servers > 1 {
		b.ReportMetric(one.wall.Seconds()/r.wall.Seconds(), "x-one-server")
	}
}

// signInPhase is what one phase of sign-ins took: wall time, and the CPU
// time of the relying-party processes (all of them), of this one and of
// the database's backends.
type signInPhase struct {
	wall, rpCPU, genCPU, dbCPU time.Duration
	cpuOK                      bool
}

// phase runs n sign-ins, with the fixture's clients at once, on the
// first servers of its servers: client i signs in to server i%servers.
func (fx *signInFixture) phase(b *testing.B, n, servers int) signInPhase {
	ctx := b.Context()
	rpCPUs := func() (time.Duration, bool) {
		var sum time.Duration
		for _, s := range fx.rps {
			d, ok := s.cpu()
			if !ok {
				return 0, false
			}
			sum += d
		}
		return sum, true
	}
	db0 := fx.backendCPU(b)
	rp0, ok1 := rpCPUs()
	gen0, ok2 := cpuclock.Self()
	wall := runWorkers(b, fx.clients, n, func(i int) error {
		u := fx.users[i]
		s := i % servers
		u.last = s
		_, _, err := u.hs[s].Login(ctx, u.name)
		return err
	})
	rp1, ok3 := rpCPUs()
	gen1, ok4 := cpuclock.Self()
	var db time.Duration
	for pid, d := range fx.backendCPU(b) {
		db += d - db0[pid] // a backend started since counts whole
	}
	return signInPhase{wall: wall, rpCPU: rp1 - rp0, genCPU: gen1 - gen0, dbCPU: db, cpuOK: ok1 && ok2 && ok3 && ok4}
}

// backendCPU is the CPU time so far of each PostgreSQL backend connected
// to the fixture's database but for fx.db's own, by process ID; none if
// the store is not PostgreSQL or /proc cannot tell (the server is on
// another machine).
func (fx *signInFixture) backendCPU(b *testing.B) map[int]time.Duration {
	if fx.db == nil {
		return nil
	}
	rows, err := fx.db.Query(b.Context(),
		`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	require.NoError(b, err)
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	require.NoError(b, err)
	cpu := make(map[int]time.Duration, len(pids))
	for _, pid := range pids {
		if d, ok := cpuclock.Process(int(pid)); ok {
			cpu[int(pid)] = d
		}
	}
	return cpu
}

// check checks that the store recorded n sign-ins since the last check,
// from the keys' counts as GET /keys shows them.
func (fx *signInFixture) check(b *testing.B, n int) {
	total := 0
	for _, u := range fx.users {
		keys, err := u.hs[u.last].Keys(b.Context())
		require.NoError(b, err, "GET /keys of %s", u.name)
		require.Len(b, keys, 1, "keys of %s", u.name)
		total += int(keys[0].SignCount - u.count)
		u.count = keys[0].SignCount
	}
	assert.Equal(b, n, total, "sign-ins the store recorded")
}

// runWorkers runs n operations with workers goroutines; do gets the
// worker index. It returns the wall time. An error fails b and stops the
// worker.
func runWorkers(b *testing.B, workers, n int, do func(w int) error) time.Duration {
	var (
		next atomic.Int64
		wg   sync.WaitGroup
	)
	start := time.Now()
	for w := range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(n) {
				if err := do(w); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}

func benchAssertions(b *testing.B) {
	ctx := b.Context()
	rp := e2eRelyingParty(b, webauthn.NewMemoryStore())
	keys := make([]*webauthntest.Client, benchWorkers)
	options := make([][]byte, benchWorkers)
	for w := range keys {
		u, err := rp.CreateUser(ctx, fmt.Sprintf("bench%d@example.com", w), "")
		require.NoError(b, err)
		keys[w] = e2eKey(b)
		_, err = keys[w].Register(ctx, rp, u.ID, "")
		require.NoError(b, err)
		begin, err := rp.BeginLogin(ctx, u.ID)
		require.NoError(b, err)
		options[w] = begin.Options
	}
	b.ReportAllocs()
	b.ResetTimer()
	elapsed := runWorkers(b, benchWorkers, b.N, func(w int) error {
		_, err := keys[w].Get(ctx, options[w])
		return err
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "assertions/s")
}
