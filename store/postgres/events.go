package postgres

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/fidokit/fidokit/mfa"
)

// This file holds the event log of [mfa.Store] (migration
// 0004_events.sql) and the helpers that append events in the
// transaction of the change they record.

// querier is what a change runs its statements on: the pool, or the
// transaction that appends its events too.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// change runs fn, a change of one statement or several, with evs: on the
// pool when there are no events (one atomic statement, as before), else
// in one transaction that appends them after fn.
func (s *Store) change(ctx context.Context, evs []mfa.Event, fn func(q querier) error) error {
	if len(evs) == 0 {
		return fn(s.pool)
	}
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return insertEvents(ctx, tx, evs)
	})
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
		b.WriteString("(")
		for j := range 10 {
			if j > 0 {
				b.WriteString(", ")
			}
			b.WriteString("$" + strconv.Itoa(10*i+j+1))
		}
		b.WriteString(")")
		args = append(args, bytea(e.ID), ts(e.Time), string(e.Type), bytea(e.UserID), e.DeviceID,
			string(e.Factor), nullBytea(e.ActorID), e.RemoteAddr, e.UserAgent, e.Detail)
	}
	_, err := q.Exec(ctx, b.String(), args...)
	if sqlState(err) == uniqueViolation {
		return fmt.Errorf("appending events: %w", mfa.ErrEventExists)
	}
	return err
}

// AppendEvents implements [mfa.Store.AppendEvents].
func (s *Store) AppendEvents(ctx context.Context, evs ...mfa.Event) error {
	if err := insertEvents(ctx, s.pool, evs); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}

// Events implements [mfa.Store.Events] with one range scan of an index:
// (user_id, at, id) for one account, (at, id) for all; the cursor is a
// row-value comparison, which PostgreSQL uses as an index bound.
func (s *Store) Events(ctx context.Context, q mfa.EventQuery) ([]*mfa.Event, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	if len(q.UserID) > 0 {
		where = append(where, "user_id = "+arg(bytea(q.UserID)))
	}
	if !q.Since.IsZero() {
		where = append(where, "at >= "+arg(ts(q.Since)))
	}
	if !q.Until.IsZero() {
		where = append(where, "at < "+arg(ts(q.Until)))
	}
	order, op := "ASC", ">"
	if q.Newest {
		order, op = "DESC", "<"
	}
	if q.After != nil {
		where = append(where, "(at, id) "+op+" ("+arg(ts(q.After.Time))+", "+arg(bytea(q.After.ID))+")")
	}
	query := `SELECT ` + eventColumns + ` FROM mfa_events`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY at ` + order + `, id ` + order
	if q.Limit > 0 {
		query += ` LIMIT ` + arg(q.Limit)
	}
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("postgres: reading events: %w", err)
	}
	defer rows.Close()
	out := []*mfa.Event{}
	for rows.Next() {
		var (
			e        mfa.Event
			at       time.Time
			typ, fac string
		)
		if err := rows.Scan(&e.ID, &at, &typ, &e.UserID, &e.DeviceID, &fac, &e.ActorID,
			&e.RemoteAddr, &e.UserAgent, &e.Detail); err != nil {
			return nil, fmt.Errorf("postgres: reading events: %w", err)
		}
		e.ID, e.UserID, e.ActorID = readBytes(e.ID), readBytes(e.UserID), readBytes(e.ActorID)
		e.Time, e.Type, e.Factor = fromTS(at), mfa.EventType(typ), mfa.Factor(fac)
		out = append(out, &e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: reading events: %w", err)
	}
	return out, nil
}

// PurgeEvents implements [mfa.Store.PurgeEvents].
func (s *Store) PurgeEvents(ctx context.Context, before time.Time) (int, error) {
	tag, err := s.pool.Exec(ctx, `DELETE FROM mfa_events WHERE at < $1`, ts(before))
	if err != nil {
		return 0, fmt.Errorf("postgres: purging events: %w", err)
	}
	return int(tag.RowsAffected()), nil
}
