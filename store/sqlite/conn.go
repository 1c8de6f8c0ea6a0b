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

// writeTx is an IMMEDIATE transaction that holds the process's writer
// slot until it commits or rolls back; its statements come from the
// cache, reused on the transaction's connection.
type writeTx struct {
	tx      *sql.Tx
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
	return t.tx.Commit()
}

// Rollback rolls back, if not yet committed, and frees the writer slot.
func (t *writeTx) Rollback() error {
	defer t.done()
	return t.tx.Rollback()
}

func (t *writeTx) done() { t.once.Do(t.release) }

// lockWriter takes the process's writer slot, or gives up with ctx.
func (s *Store) lockWriter(ctx context.Context) error {
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
	return &writeTx{tx: tx, c: s.q, release: s.unlockWriter}, nil
}

// write runs fn, a write of one statement (or of statements each atomic
// on its own), in the writer slot.
func (s *Store) write(ctx context.Context, fn func(q querier) error) error {
	if err := s.lockWriter(ctx); err != nil {
		return err
	}
	defer s.unlockWriter()
	return fn(s.q)
}
