package sqlite

import (
	"context"
	"database/sql"
	"runtime"
	"sync"
)

// This file holds what keeps the cost of a call near the cost of its
// statements: statements prepared once per connection, a pool that keeps
// its connections, and one writer at a time in the process.
//
// SQLite parses a statement on every prepare, and parsing a sign-in's
// statements (with the triggers they fire) costs about as much as the
// signature check; database/sql keeps a *sql.Stmt prepared on each
// connection it has run on, so a cache of them by query text parses each
// statement once per connection. Writers are serialised here rather than
// in SQLite's busy handler, which sleeps (1, 2, 5, 10 ms, ...) instead of
// waiting for the lock to be released, and whose waiting connections keep
// the WAL from being reset.

// maxCachedStatements bounds the cache: the queries are constants or a
// few shapes of one (the event listing), so this is never reached in
// practice, and beyond it statements are simply prepared each time.
const maxCachedStatements = 256

// checkpointEvery is how many commits of a Store pass between the WAL
// checkpoints its background goroutine runs (see checkpointer): at 3 to
// 5 pages a commit, a WAL of about 2 MiB.
const checkpointEvery = 128

// maxUncheckpointed is how many commits may pile up while a checkpoint
// is under way (its fsync is slow, say) before writers wait for it to
// finish, so that the WAL stays bounded.
const maxUncheckpointed = 2 * checkpointEvery

// autocheckpointPages is PRAGMA wal_autocheckpoint on the pool's
// connections: only a backstop, should the WAL grow this large before
// the background checkpoint (another process writing fast, say).
const autocheckpointPages = 2000

// poolSize is how many connections the pool keeps open and idle: enough
// for every core to read while one writes.
func poolSize() int { return max(4, 2*runtime.GOMAXPROCS(0)) }

// stmtCache prepares each query once on the database and hands out the
// *sql.Stmt, which database/sql prepares on each connection once.
type stmtCache struct {
	db *sql.DB
	mu sync.RWMutex
	m  map[string]*sql.Stmt
}

func newStmtCache(db *sql.DB) *stmtCache {
	return &stmtCache{db: db, m: make(map[string]*sql.Stmt)}
}

// get returns the prepared statement for query, or nil if it cannot be
// cached (the caller then runs the query unprepared, which reports any
// error in it).
func (c *stmtCache) get(ctx context.Context, query string) *sql.Stmt {
	c.mu.RLock()
	st := c.m[query]
	c.mu.RUnlock()
	if st != nil {
		return st
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.m[query]; st != nil {
		return st
	}
	if len(c.m) >= maxCachedStatements {
		return nil
	}
	st, err := c.db.PrepareContext(ctx, query)
	if err != nil {
		return nil
	}
	c.m[query] = st
	return st
}

func (c *stmtCache) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, st := range c.m {
		st.Close()
	}
	clear(c.m)
}

// ExecContext, QueryContext and QueryRowContext make the cache a querier
// on the database.
func (c *stmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := c.get(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.db.ExecContext(ctx, query, args...)
}

func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := c.get(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.db.QueryContext(ctx, query, args...)
}

func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := c.get(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.db.QueryRowContext(ctx, query, args...)
}

// readQuerier runs read-only statements from the cache without handing
// their context to database/sql and the driver, each of which would
// start a goroutine per statement to watch it (a one-row read: 8.3-10.6
// us and 30 allocations watched, 6.7-6.9 us and 23 not, in
// BenchmarkReadContext): a read in WAL mode takes no lock anyone holds
// for long, so there is no wait to cut short. A context already done
// still fails the statement.
type readQuerier struct{ c *stmtCache }

func readContext(ctx context.Context) context.Context {
	if ctx.Err() != nil {
		return ctx // database/sql reports it
	}
	return context.WithoutCancel(ctx)
}

func (r readQuerier) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return r.c.QueryContext(readContext(ctx), query, args...)
}

func (r readQuerier) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	return r.c.QueryRowContext(readContext(ctx), query, args...)
}

// writeTx is an IMMEDIATE transaction that holds the process's writer
// slot until it commits or rolls back; its statements come from the
// cache, reused on the transaction's connection.
type writeTx struct {
	tx      *sql.Tx
	s       *Store
	c       *stmtCache
	release func()
	once    sync.Once
}

func (t *writeTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st := t.c.get(ctx, query); st != nil {
		return t.tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return t.tx.ExecContext(ctx, query, args...)
}

func (t *writeTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st := t.c.get(ctx, query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.tx.QueryContext(ctx, query, args...)
}

func (t *writeTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st := t.c.get(ctx, query); st != nil {
		return t.tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.tx.QueryRowContext(ctx, query, args...)
}

// Commit commits and frees the writer slot.
func (t *writeTx) Commit() error {
	defer t.done()
	err := t.tx.Commit()
	if err == nil {
		t.s.committed()
	}
	return err
}

// Rollback rolls back, if not yet committed, and frees the writer slot.
func (t *writeTx) Rollback() error {
	defer t.done()
	return t.tx.Rollback()
}

func (t *writeTx) done() { t.once.Do(t.release) }

// lockWriter takes the process's writer slot, or gives up with ctx.
// While the background checkpoint is maxUncheckpointed commits behind,
// it waits for that first.
func (s *Store) lockWriter(ctx context.Context) error {
	if s.commits.Load() >= maxUncheckpointed {
		s.ckptMu.Lock()
		done := s.ckptDone
		s.ckptMu.Unlock()
		if s.commits.Load() >= maxUncheckpointed {
			select {
			case <-done:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return s.takeWriter(ctx)
}

// takeWriter takes the writer slot, or gives up with ctx.
func (s *Store) takeWriter(ctx context.Context) error {
	select {
	case s.writer <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) unlockWriter() { <-s.writer }

// begin starts a write transaction (BEGIN IMMEDIATE, by _txlock) in the
// writer slot.
func (s *Store) begin(ctx context.Context) (*writeTx, error) {
	if err := s.lockWriter(ctx); err != nil {
		return nil, err
	}
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		s.unlockWriter()
		return nil, err
	}
	return &writeTx{tx: tx, s: s, c: s.q, release: s.unlockWriter}, nil
}

// write runs fn, a write of one statement (or of statements each atomic
// on its own), in the writer slot.
func (s *Store) write(ctx context.Context, fn func(q querier) error) error {
	if err := s.lockWriter(ctx); err != nil {
		return err
	}
	defer s.unlockWriter()
	err := fn(s.q)
	if err == nil {
		s.committed()
	}
	return err
}

// committed counts a commit, and every checkpointEvery of them wakes the
// checkpointer.
func (s *Store) committed() {
	if s.commits.Add(1)%checkpointEvery == 0 {
		select {
		case s.checkpoint <- struct{}{}:
		default: // one is due already
		}
	}
}

// checkpointer copies the WAL back into the database file when
// committed asks, until ctx is done.
//
// SQLite's own automatic checkpoint runs in the commit that crosses its
// threshold, holding the writer slot, so one commit in a few hundred
// waited for the pages copied and for two fsyncs, the first of which
// writes out the whole WAL (commits are not synced, synchronous=NORMAL):
// milliseconds. Here that first pass runs beside the commits, a PASSIVE
// checkpoint that copies what no reader still needs without waiting for
// anyone. It cannot finish the WAL while commits go on, though, and
// SQLite starts the WAL over from its beginning only once all of it is
// copied. So a second pass in the writer slot copies the few frames
// committed meanwhile, syncing only those and the database file, and the
// next writer starts the WAL over. Should the first pass take so long
// that maxUncheckpointed commits pile up, writers wait for the second.
func (s *Store) checkpointer(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	defer s.checkpointed()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.checkpoint:
		}
		// A failure (SQLITE_BUSY: another process is checkpointing)
		// leaves the frames to the next one, or to the automatic
		// checkpoint, the backstop.
		s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
		if s.takeWriter(ctx) != nil {
			return
		}
		s.db.ExecContext(ctx, `PRAGMA wal_checkpoint(PASSIVE)`)
		s.checkpointed()
		s.unlockWriter()
	}
}

// checkpointed restarts the count of commits and lets the writers that
// wait for the checkpoint go on.
func (s *Store) checkpointed() {
	s.commits.Store(0)
	select {
	case <-s.checkpoint: // for commits that came before
	default:
	}
	s.ckptMu.Lock()
	close(s.ckptDone)
	s.ckptDone = make(chan struct{})
	s.ckptMu.Unlock()
}
