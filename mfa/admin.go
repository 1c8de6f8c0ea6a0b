package mfa

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// This file holds what an administrator needs beyond the device
// lifecycle of devices.go: the accounts with their MFA status (pages of
// the audit report), one account with its recent events, and the
// JSON routes for them.

// Limits of [Manager.Accounts].
const (
	DefaultAccountLimit = 100
	MaxAccountLimit     = 1000
)

// Accounts returns a page of the audit report ([Manager.Report]): the
// reports of up to limit accounts whose user ID is greater than after
// (nil: from the first), in user ID order. Pass the last UserID of a page
// as after for the next; an empty page is the end. A limit of 0 means
// DefaultAccountLimit. Errors: ErrInvalidRequest.
func (m *Manager) Accounts(ctx context.Context, after []byte, limit int, opts ReportOptions) ([]*AccountReport, error) {
	switch {
	case limit < 0 || limit > MaxAccountLimit:
		return nil, fmt.Errorf("%w: account limit %d: want 0 to %d", ErrInvalidRequest, limit, MaxAccountLimit)
	case opts.UnusedFor < 0:
		return nil, fmt.Errorf("%w: ReportOptions.UnusedFor is negative (%v)", ErrInvalidRequest, opts.UnusedFor)
	}
	if limit == 0 {
		limit = DefaultAccountLimit
	}
	if opts.UnusedFor == 0 {
		opts.UnusedFor = DefaultUnusedFor
	}
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultReportParallel
	}
	users, err := m.store.Users(ctx, after, limit)
	if err != nil {
		return nil, storeErr("listing accounts", err)
	}
	reports := make([]*AccountReport, len(users))
	if err := m.reportPage(ctx, users, m.now(), opts, reports, make([]error, len(users))); err != nil {
		return nil, err
	}
	return reports, nil
}

// Account returns one account's line of the audit report. Errors:
// webauthn.ErrUnknownUser.
func (m *Manager) Account(ctx context.Context, userID []byte, opts ReportOptions) (*AccountReport, error) {
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	if opts.UnusedFor < 0 {
		return nil, fmt.Errorf("%w: ReportOptions.UnusedFor is negative (%v)", ErrInvalidRequest, opts.UnusedFor)
	}
	if opts.UnusedFor == 0 {
		opts.UnusedFor = DefaultUnusedFor
	}
	u, err := m.rp.User(ctx, userID)
	if err != nil {
		return nil, err
	}
	return m.accountReport(ctx, u, m.now(), opts.UnusedFor)
}

// EventJSON is an [Event] as the HTTP API shows it: IDs in base64url
// without padding, the time in RFC 3339 (UTC, to the microsecond), empty
// fields left out.
type EventJSON struct {
	ID         string    `json:"id"`
	Time       time.Time `json:"time"`
	Type       EventType `json:"type"`
	UserID     string    `json:"userId"`
	DeviceID   string    `json:"deviceId,omitempty"`
	Factor     Factor    `json:"factor,omitempty"`
	ActorID    string    `json:"actorId,omitempty"`
	RemoteAddr string    `json:"remoteAddr,omitempty"`
	UserAgent  string    `json:"userAgent,omitempty"`
	Detail     string    `json:"detail,omitempty"`
}

func eventJSON(e *Event) EventJSON {
	j := EventJSON{
		ID: b64.EncodeToString(e.ID), Time: e.Time.UTC(), Type: e.Type, UserID: b64.EncodeToString(e.UserID),
		DeviceID: e.DeviceID, Factor: e.Factor, RemoteAddr: e.RemoteAddr, UserAgent: e.UserAgent, Detail: e.Detail,
	}
	if len(e.ActorID) > 0 {
		j.ActorID = b64.EncodeToString(e.ActorID)
	}
	return j
}

// EventCursor is the opaque "next" of an event listing: the last event's
// time and ID, for [EventQuery.After].
func EventCursor(e *Event) string {
	b := binary.BigEndian.AppendUint64(nil, uint64(e.Time.UnixMicro()))
	return b64.EncodeToString(append(b, e.ID...))
}

// ParseEventCursor reads an [EventCursor] back into an event that
// [EventQuery.After] takes. Errors: ErrInvalidRequest.
func ParseEventCursor(s string) (*Event, error) {
	b, err := b64.DecodeString(s)
	if err != nil || len(b) < 9 || len(b) > 8+64 {
		return nil, fmt.Errorf("%w: event cursor %q", ErrInvalidRequest, truncate(s, 40))
	}
	us := int64(binary.BigEndian.Uint64(b))
	return &Event{Time: time.UnixMicro(us).UTC(), ID: b[8:]}, nil
}

// query reads the listing parameters of an administrator GET: only those
// named in allowed, each at most once.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("%w: query: %v", ErrInvalidRequest, err)
	}
	for k, vs := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok || len(vs) != 1 {
			return nil, fmt.Errorf("%w: query parameter %q", ErrInvalidRequest, truncate(k, 40))
		}
	}
	return q, nil
}

func queryInt(q url.Values, name string, max int) (int, error) {
	s := q.Get(name)
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		return 0, fmt.Errorf("%w: %s %q: want 1 to %d", ErrInvalidRequest, name, truncate(s, 20), max)
	}
	return n, nil
}

func queryTime(q url.Values, name string) (time.Time, error) {
	s := q.Get(name)
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%w: %s %q is not RFC 3339", ErrInvalidRequest, name, truncate(s, 40))
	}
	return t, nil
}

// authorizeAll checks that the signed-in user may see every account:
// HandlerConfig.Authorize with a nil target.
func (h *handler) authorizeAll(r *http.Request) error {
	actor, err := h.requireUser(r)
	if err != nil {
		return err
	}
	if h.cfg.Authorize == nil {
		return fmt.Errorf("%w: no HandlerConfig.Authorize", errForbidden)
	}
	if err := h.cfg.Authorize(r, actor, nil); err != nil {
		return fmt.Errorf("%w: %v", errForbidden, err)
	}
	return nil
}

// adminAccounts is GET /users: a page of the audit report.
func (h *handler) adminAccounts(w http.ResponseWriter, r *http.Request) error {
	if err := h.authorizeAll(r); err != nil {
		return err
	}
	q, err := query(r, "after", "limit")
	if err != nil {
		return err
	}
	limit, err := queryInt(q, "limit", MaxAccountLimit)
	if err != nil {
		return err
	}
	var after []byte
	if s := q.Get("after"); s != "" {
		if after, err = base64.RawURLEncoding.DecodeString(s); err != nil {
			return fmt.Errorf("%w: after %q is not base64url", ErrInvalidRequest, truncate(s, 40))
		}
	}
	rs, err := h.m.Accounts(r.Context(), after, limit, ReportOptions{})
	if err != nil {
		return err
	}
	out := make([]*jsonAccount, len(rs))
	for i, a := range rs {
		out[i] = a.jsonValue()
	}
	var next *string
	if len(rs) > 0 {
		s := b64.EncodeToString(rs[len(rs)-1].UserID)
		next = &s
	}
	writeJSON(w, http.StatusOK, map[string]any{"accounts": out, "next": next})
	return nil
}

// recentEvents is how many events GET /users/{user} shows.
const recentEvents = 50

// adminAccount is GET /users/{user}: the account's report line and its
// newest events.
func (h *handler) adminAccount(w http.ResponseWriter, r *http.Request) error {
	target, err := h.adminTarget(r)
	if err != nil {
		return err
	}
	if _, err := query(r); err != nil {
		return err
	}
	a, err := h.m.Account(r.Context(), target, ReportOptions{})
	if err != nil {
		return err
	}
	evs, err := h.m.Events(r.Context(), EventQuery{UserID: target, Newest: true, Limit: recentEvents})
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{"account": a.jsonValue(), "events": eventsJSON(evs)})
	return nil
}

func eventsJSON(evs []*Event) []EventJSON {
	out := make([]EventJSON, len(evs))
	for i, e := range evs {
		out[i] = eventJSON(e)
	}
	return out
}

// adminEvents is GET /users/{user}/events and GET /events.
func (h *handler) adminEvents(w http.ResponseWriter, r *http.Request) error {
	var target []byte
	var err error
	if r.PathValue("user") != "" {
		target, err = h.adminTarget(r)
	} else {
		err = h.authorizeAll(r)
	}
	if err != nil {
		return err
	}
	q, err := query(r, "since", "until", "after", "limit", "order")
	if err != nil {
		return err
	}
	eq := EventQuery{UserID: target}
	if eq.Limit, err = queryInt(q, "limit", MaxEventLimit); err != nil {
		return err
	}
	if eq.Since, err = queryTime(q, "since"); err != nil {
		return err
	}
	if eq.Until, err = queryTime(q, "until"); err != nil {
		return err
	}
	switch q.Get("order") {
	case "", "newest":
		eq.Newest = true
	case "oldest":
	default:
		return fmt.Errorf("%w: order %q: want newest or oldest", ErrInvalidRequest, truncate(q.Get("order"), 20))
	}
	if s := q.Get("after"); s != "" {
		if eq.After, err = ParseEventCursor(s); err != nil {
			return err
		}
	}
	evs, err := h.m.Events(r.Context(), eq)
	if err != nil {
		return err
	}
	var next *string
	if len(evs) > 0 {
		s := EventCursor(evs[len(evs)-1])
		next = &s
	}
	writeJSON(w, http.StatusOK, map[string]any{"events": eventsJSON(evs), "next": next})
	return nil
}
