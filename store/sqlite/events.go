package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/fidokit/fidokit/mfa"
)

// This file holds the event log of [mfa.Store] (migration
// 0004_events.sql) and the helpers that append events in the
// transaction of the change they record.

// querier is what a change runs its statements on: the database, or the
// transaction that appends its events too.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// change runs fn, a change of one statement or several, with evs: on the
// database when there are no events (one atomic statement, as before),
// else in one IMMEDIATE transaction that appends them after fn.
func (s *Store) change(ctx context.Context, evs []mfa.Event, fn func(q querier) error) error {
	if len(evs) == 0 {
		return s.write(ctx, fn)
	}
	tx, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := insertEvents(ctx, tx, evs); err != nil {
		return err
	}
	return tx.Commit()
}

const eventColumns = `id, at, type, user_id, device_id, factor, actor_id, remote_addr, user_agent, detail`

// insertEvents appends evs on q, in one statement.
func insertEvents(ctx context.Context, q querier, evs []mfa.Event) error {
	if len(evs) == 0 {
		return nil
	}
	var b strings.Builder
	b.WriteString(`INSERT INTO mfa_events (` + eventColumns + `) VALUES `)
	args := make([]any, 0, 10*len(evs))
	for i, e := range evs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
		args = append(args, blob(e.ID), micros(e.Time), string(e.Type), blob(e.UserID), e.DeviceID,
			string(e.Factor), nullBlob(e.ActorID), e.RemoteAddr, e.UserAgent, e.Detail)
	}
	_, err := q.ExecContext(ctx, b.String(), args...)
	if isUnique(err) {
		return fmt.Errorf("appending events: %w", mfa.ErrEventExists)
	}
	return err
}

// AppendEvents implements [mfa.Store.AppendEvents].
func (s *Store) AppendEvents(ctx context.Context, evs ...mfa.Event) error {
	err := s.write(ctx, func(q querier) error { return insertEvents(ctx, q, evs) })
	if err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return nil
}

// Events implements [mfa.Store.Events] with one range scan of an index:
// (user_id, at, id) for one account, (at, id) for all. The cursor is a
// row-value comparison, which SQLite uses as an index bound.
func (s *Store) Events(ctx context.Context, q mfa.EventQuery) ([]*mfa.Event, error) {
	var (
		where []string
		args  []any
	)
	if len(q.UserID) > 0 {
		where, args = append(where, "user_id = ?"), append(args, blob(q.UserID))
	}
	if !q.Since.IsZero() {
		where, args = append(where, "at >= ?"), append(args, micros(q.Since))
	}
	if !q.Until.IsZero() {
		where, args = append(where, "at < ?"), append(args, micros(q.Until))
	}
	order := "ASC"
	if q.After != nil {
		op := ">"
		if q.Newest {
			op = "<"
		}
		where, args = append(where, "(at, id) "+op+" (?, ?)"), append(args, micros(q.After.Time), blob(q.After.ID))
	}
	if q.Newest {
		order = "DESC"
	}
	query := `SELECT ` + eventColumns + ` FROM mfa_events`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	limit := q.Limit
	if limit <= 0 {
		limit = -1
	}
	query += ` ORDER BY at ` + order + `, id ` + order + ` LIMIT ?`
	args = append(args, limit)
	rows, err := s.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite: reading events: %w", err)
	}
	defer rows.Close()
	out := []*mfa.Event{}
	for rows.Next() {
		var (
			e        mfa.Event
			at       int64
			typ, fac string
			id, user []byte
			actor    []byte
			deviceID string
			addr, ua string
			detail   string
		)
		if err := rows.Scan(&id, &at, &typ, &user, &deviceID, &fac, &actor, &addr, &ua, &detail); err != nil {
			return nil, fmt.Errorf("sqlite: reading events: %w", err)
		}
		e.ID, e.Time, e.Type, e.UserID = readBlob(id), fromMicros(at), mfa.EventType(typ), readBlob(user)
		e.DeviceID, e.Factor, e.ActorID = deviceID, mfa.Factor(fac), readBlob(actor)
		e.RemoteAddr, e.UserAgent, e.Detail = addr, ua, detail
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlite: reading events: %w", err)
	}
	return out, nil
}

// PurgeEvents implements [mfa.Store.PurgeEvents].
func (s *Store) PurgeEvents(ctx context.Context, before time.Time) (int, error) {
	var n int64
	err := s.write(ctx, func(q querier) (err error) {
		n, err = affected(q.ExecContext(ctx, `DELETE FROM mfa_events WHERE at < ?`, micros(before)))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: purging events: %w", err)
	}
	return int(n), nil
}
