package mfa

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/fidokit/fidokit/webauthn"
)

// EventType names what an [Event] records. The values are stable: they
// are stored, exported in JSON and matched by log queries.
type EventType string

// The events. Each change a [Manager] makes to an account's devices,
// recovery codes or attempt counters has its event, written by the store
// in the change's own transaction; the attempts that change nothing
// (a code already used, a rejected security key, a policy refusal) are
// appended on their own.
const (
	// EventDeviceEnrolled: a device of any type was added.
	EventDeviceEnrolled EventType = "device_enrolled"
	// EventDeviceRenamed: a device's name changed; Detail is the new
	// name.
	EventDeviceRenamed EventType = "device_renamed"
	// EventDeviceDeactivated: a device was deactivated (a lost key).
	EventDeviceDeactivated EventType = "device_deactivated"
	// EventDeviceReactivated: a deactivated device may be used again.
	EventDeviceReactivated EventType = "device_reactivated"
	// EventDeviceDeleted: a device was removed for good.
	EventDeviceDeleted EventType = "device_deleted"
	// EventDeviceResynced: a TOTP device's clock drift was measured
	// again; Detail is the drift in time steps.
	EventDeviceResynced EventType = "device_resynced"
	// EventSecondFactor: a second factor passed; Factor says which and
	// DeviceID which device (none for a recovery code, which has
	// EventRecoveryCodeUsed as well).
	EventSecondFactor EventType = "second_factor_succeeded"
	// EventSecondFactorFailed: a second factor was refused; Detail is
	// the error code ("invalid_code", "code_reused", a webauthn code such
	// as "bad_signature").
	EventSecondFactorFailed EventType = "second_factor_failed"
	// EventRecoveryCodeUsed: a recovery code was used up; Detail is how
	// many are left.
	EventRecoveryCodeUsed EventType = "recovery_code_used"
	// EventRecoveryCodesGenerated: a new set of recovery codes replaced
	// any earlier one.
	EventRecoveryCodesGenerated EventType = "recovery_codes_generated"
	// EventLockout: wrong codes locked a factor; Detail is when the lock
	// ends (RFC 3339).
	EventLockout EventType = "lockout_started"
	// EventAttemptsReset: an administrator cleared a factor's failure
	// count and lock.
	EventAttemptsReset EventType = "attempts_reset"
	// EventCloneWarning: a security key's signature counter went
	// backwards, so it may have been cloned; it is refused until the
	// warning is cleared.
	EventCloneWarning EventType = "clone_warning_raised"
	// EventPolicyRefused: [Manager.Require] or [Manager.Check] refused a
	// request; Detail is the refusal code ("mfa_stale", ...).
	EventPolicyRefused EventType = "policy_refused"
)

// ErrEventExists is what a [Store] returns, wrapped, when an event's ID
// is taken; it matches webauthn.ErrExists too. The change the event
// went with is not made.
var ErrEventExists = fmt.Errorf("event ID taken: %w", webauthn.ErrExists)

// Event is one entry of the event log. Nothing secret is in it: no
// code, seed, PIN or recovery code, only what happened to which device
// of which account, who did it and from where.
type Event struct {
	// ID is 16 random bytes.
	ID []byte
	// Time is when it happened, in UTC to the microsecond.
	Time time.Time
	// Type is what happened.
	Type EventType
	// UserID is the account it happened to.
	UserID []byte
	// DeviceID is the device's [Device.ID], or empty.
	DeviceID string
	// Factor is the second factor an attempt used, or empty.
	Factor Factor
	// ActorID is who did it, as the caller said with [WithActor]: the
	// account itself, or an administrator. Empty when not said.
	ActorID []byte
	// RemoteAddr and UserAgent are the request's, as the caller said with
	// [WithActor]; the HTTP handler fills them in.
	RemoteAddr, UserAgent string
	// Detail is a short value that depends on Type (a new name, an error
	// code); see the EventType constants.
	Detail string
}

// LogValue makes an Event a group of attributes for log/slog, IDs in
// base64url.
func (e Event) LogValue() slog.Value {
	attrs := []slog.Attr{
		slog.String("type", string(e.Type)),
		slog.Time("time", e.Time),
		slog.String("user", b64.EncodeToString(e.UserID)),
	}
	add := func(k, v string) {
		if v != "" {
			attrs = append(attrs, slog.String(k, v))
		}
	}
	add("device", e.DeviceID)
	add("factor", string(e.Factor))
	if len(e.ActorID) > 0 {
		add("actor", b64.EncodeToString(e.ActorID))
	}
	add("remote_addr", e.RemoteAddr)
	add("user_agent", e.UserAgent)
	add("detail", e.Detail)
	attrs = append(attrs, slog.String("id", b64.EncodeToString(e.ID)))
	return slog.GroupValue(attrs...)
}

// LogEvents returns a Config.OnEvent hook that logs each event at level
// Info with the message "mfa event".
func LogEvents(l *slog.Logger) func(context.Context, Event) {
	return func(ctx context.Context, e Event) {
		l.LogAttrs(ctx, slog.LevelInfo, "mfa event", slog.Any("event", e))
	}
}

// Actor is who makes a change and from where, for the events it causes.
type Actor struct {
	// ID is the acting account: the person, or an administrator.
	ID []byte
	// RemoteAddr is the client's address; UserAgent its User-Agent.
	RemoteAddr, UserAgent string
}

type actorKey struct{}

// Limits on what an actor's strings may put in an event, so that a
// client cannot fill the log through its User-Agent.
const (
	maxRemoteAddrLen = 64
	maxUserAgentLen  = 256
)

// WithActor returns a context that makes the events of the Manager's
// calls under it name a as their actor.
func WithActor(ctx context.Context, a Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

func actorFrom(ctx context.Context) Actor {
	a, _ := ctx.Value(actorKey{}).(Actor)
	return a
}

// StoreOp names a [Store] method that appends the events a Manager hands
// it, for [StoreEvents].
type StoreOp string

// The store methods that append events: each writes StoreEvents(ctx, op)
// in the transaction of its change, and only if the change is made.
// RecordFailure writes OpRecordFailure's events, and OpLock's as well
// when the failure locks the factor.
const (
	OpCreateUserWithCredential StoreOp = "CreateUserWithCredential"
	OpAddCredential            StoreOp = "AddCredential"
	OpRenameCredential         StoreOp = "RenameCredential"
	OpDeactivateCredential     StoreOp = "DeactivateCredential"
	OpDeleteCredential         StoreOp = "DeleteCredential"
	OpRecordSignIn             StoreOp = "RecordSignIn"
	OpFlagClone                StoreOp = "FlagClone"
	OpCompleteOTPEnrollment    StoreOp = "CompleteOTPEnrollment"
	OpRenameOTPDevice          StoreOp = "RenameOTPDevice"
	OpDeactivateOTPDevice      StoreOp = "DeactivateOTPDevice"
	OpDeleteOTPDevice          StoreOp = "DeleteOTPDevice"
	OpAdvanceOTPStep           StoreOp = "AdvanceOTPStep"
	OpResyncOTPDevice          StoreOp = "ResyncOTPDevice"
	OpReplaceRecoveryCodes     StoreOp = "ReplaceRecoveryCodes"
	OpUseRecoveryCode          StoreOp = "UseRecoveryCode"
	OpRecordFailure            StoreOp = "RecordFailure"
	OpLock                     StoreOp = "RecordFailure/lock"
	OpResetAttempts            StoreOp = "ResetAttempts"
)

type eventsKey struct{}

// pendingEvents is what a context carries for the store: events per
// method. A Manager operation makes several store calls (a read, the
// change, a reset of the attempt count); each event belongs to one.
type pendingEvents struct {
	parent *pendingEvents
	op     StoreOp
	events []Event
}

// WithStoreEvents returns a context under which the store method op
// appends evs with its change: how a [Manager] hands a change's events
// to its [Store], exported for the contract tests of store
// implementations. The relying party's calls pass the context on to the
// store, so key changes get their events the same way.
func WithStoreEvents(ctx context.Context, op StoreOp, evs ...Event) context.Context {
	parent, _ := ctx.Value(eventsKey{}).(*pendingEvents)
	return context.WithValue(ctx, eventsKey{}, &pendingEvents{parent: parent, op: op, events: evs})
}

// StoreEvents returns the events a [Store] method must append in the
// transaction of the change it makes under ctx, for store
// implementations. A method writes them only if it makes its change,
// and writes nothing when there are none.
func StoreEvents(ctx context.Context, op StoreOp) []Event {
	var out []Event
	for p, _ := ctx.Value(eventsKey{}).(*pendingEvents); p != nil; p = p.parent {
		if p.op == op {
			out = append(slices.Clone(p.events), out...)
		}
	}
	return out
}

// KeyEvents is [StoreEvents] for the methods about one security key
// (AddCredential, CreateUserWithCredential, RecordSignIn, FlagClone):
// an event without a DeviceID gets the key's, and one without a UserID
// gets userID if that is not nil, as the Manager cannot know which key
// (or, registering, which account) a response names before the relying
// party has parsed it.
func KeyEvents(ctx context.Context, op StoreOp, userID, credentialID []byte) []Event {
	evs := StoreEvents(ctx, op)
	for i := range evs {
		fillKeyEvent(&evs[i], userID, credentialID)
	}
	return evs
}

func fillKeyEvent(e *Event, userID, credentialID []byte) {
	if e.DeviceID == "" {
		e.DeviceID = keyDeviceID(credentialID)
	}
	if len(e.UserID) == 0 && userID != nil {
		e.UserID = userID
	}
}

// LockEvents returns the OpLock events of ctx, each with Detail set to
// until: what RecordFailure appends when its failure locks a factor.
func LockEvents(ctx context.Context, until time.Time) []Event {
	evs := StoreEvents(ctx, OpLock)
	for i := range evs {
		evs[i].Detail = until.UTC().Format(time.RFC3339)
	}
	return evs
}

// RecoveryCodeEvents returns the OpUseRecoveryCode events of ctx, with
// the Detail of each recovery_code_used event set to left, the codes
// the account has after this one: what UseRecoveryCode appends, as the
// Manager cannot know the count before the store has taken the code.
func RecoveryCodeEvents(ctx context.Context, left int) []Event {
	evs := StoreEvents(ctx, OpUseRecoveryCode)
	for i := range evs {
		if evs[i].Type == EventRecoveryCodeUsed {
			evs[i].Detail = strconv.Itoa(left)
		}
	}
	return evs
}

// EventQuery selects events for [Manager.Events] and [Store.Events].
type EventQuery struct {
	// UserID selects one account's events; nil selects every account's.
	UserID []byte
	// Since and Until bound Time: Since <= Time < Until. A zero bound is
	// no bound.
	Since, Until time.Time
	// Newest lists the newest first; otherwise the oldest first. Events
	// are ordered by Time, then ID.
	Newest bool
	// After is a cursor: only events after it in the listing's order.
	// Pass the last event of a page for the next page.
	After *Event
	// Limit is the most events to return. [Manager.Events] turns zero
	// into DefaultEventLimit and refuses more than MaxEventLimit; a store
	// treats <= 0 as no limit.
	Limit int
}

// Limits of [Manager.Events].
const (
	DefaultEventLimit = 100
	MaxEventLimit     = 1000
)

// Match reports whether q selects e: the account, the time range, and
// the cursor (after q.After in the order of q: by Time, then ID, both
// reversed when q.Newest). Stores may use it, or must agree with it.
func (q *EventQuery) Match(e *Event) bool {
	if len(q.UserID) > 0 && string(e.UserID) != string(q.UserID) {
		return false
	}
	if !q.Since.IsZero() && e.Time.Before(q.Since) {
		return false
	}
	if !q.Until.IsZero() && !e.Time.Before(q.Until) {
		return false
	}
	if q.After == nil {
		return true
	}
	c := compareEvents(e, q.After)
	if q.Newest {
		return c < 0
	}
	return c > 0
}

// compareEvents orders events by Time, then ID.
func compareEvents(a, b *Event) int {
	if c := a.Time.Compare(b.Time); c != 0 {
		return c
	}
	return compareBytes(a.ID, b.ID)
}

func compareBytes(a, b []byte) int {
	switch {
	case string(a) < string(b):
		return -1
	case string(a) > string(b):
		return 1
	}
	return 0
}

// Events returns events of the log, as q selects. Errors:
// ErrInvalidRequest for a bad query.
func (m *Manager) Events(ctx context.Context, q EventQuery) ([]*Event, error) {
	switch {
	case q.Limit < 0 || q.Limit > MaxEventLimit:
		return nil, fmt.Errorf("%w: event limit %d: want 0 to %d", ErrInvalidRequest, q.Limit, MaxEventLimit)
	case !q.Since.IsZero() && !q.Until.IsZero() && q.Until.Before(q.Since):
		return nil, fmt.Errorf("%w: events until %v, before since %v", ErrInvalidRequest, q.Until, q.Since)
	case q.After != nil && (len(q.After.ID) == 0 || q.After.Time.IsZero()):
		return nil, fmt.Errorf("%w: an event cursor needs the event's ID and time", ErrInvalidRequest)
	}
	if q.Limit == 0 {
		q.Limit = DefaultEventLimit
	}
	evs, err := m.store.Events(ctx, q)
	return evs, storeErr("reading events", err)
}

// PurgeEvents removes the events older than before, for a retention
// period, and reports how many.
func (m *Manager) PurgeEvents(ctx context.Context, before time.Time) (int, error) {
	n, err := m.store.PurgeEvents(ctx, before)
	return n, storeErr("purging events", err)
}

// withEvent returns ctx carrying, for the store method op, an event of
// type t for the account at now, changed by set if not nil; and the
// event, for the hook once the change is made.
func (m *Manager) withEvent(ctx context.Context, op StoreOp, t EventType, userID []byte, now time.Time, set func(*Event)) (context.Context, Event, error) {
	e, err := m.event(ctx, t, userID, now)
	if err != nil {
		return ctx, e, err
	}
	if set != nil {
		set(&e)
	}
	return WithStoreEvents(ctx, op, e), e, nil
}

// event makes an event of type t for the account, at now, from ctx's
// actor.
func (m *Manager) event(ctx context.Context, t EventType, userID []byte, now time.Time) (Event, error) {
	a := actorFrom(ctx)
	e := Event{
		ID: make([]byte, 16), Time: now.UTC().Truncate(time.Microsecond), Type: t,
		UserID: userID, ActorID: a.ID,
		RemoteAddr: truncate(a.RemoteAddr, maxRemoteAddrLen), UserAgent: truncate(a.UserAgent, maxUserAgentLen),
	}
	if err := m.random(e.ID); err != nil {
		return Event{}, err
	}
	return e, nil
}

// truncate cuts s to at most n bytes on a UTF-8 boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 {
		n--
	}
	return s[:n]
}

// emit hands committed events to Config.OnEvent.
func (m *Manager) emit(ctx context.Context, evs ...Event) {
	if m.onEvent == nil {
		return
	}
	for _, e := range evs {
		m.onEvent(ctx, e)
	}
}

// record appends events that go with no change (an attempt refused)
// and hands them to the hook. A failure to append is returned joined to
// nothing else: the caller decides whether it outweighs its own answer.
func (m *Manager) record(ctx context.Context, evs ...Event) error {
	if err := m.store.AppendEvents(ctx, evs...); err != nil {
		return storeErr("appending events", err)
	}
	m.emit(ctx, evs...)
	return nil
}
