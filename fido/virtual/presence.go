package virtual

import (
	"context"
	"errors"
	"time"
)

// PresenceRequest says why the key wants a touch.
type PresenceRequest struct {
	// Op is the CTAP operation: "makeCredential", "getAssertion",
	// "reset", "selection", "U2F register" or "U2F authenticate".
	Op string
	// RPID is the relying party ID, or empty where there is none.
	RPID string
}

// UserPresence decides whether the person touched the key. Returning nil
// approves; returning ErrDenied (or any other error) refuses, which the key
// reports as CTAP2_ERR_OPERATION_DENIED. While it blocks, the key sends
// KEEPALIVE with status UPNEEDED, as a real key does while it blinks. ctx
// is cancelled when the host cancels (CTAP2_ERR_KEEPALIVE_CANCEL) or the
// key's UserPresenceTimeout passes (CTAP2_ERR_USER_ACTION_TIMEOUT).
type UserPresence func(ctx context.Context, req PresenceRequest) error

// ErrDenied is the answer of a person who refused the touch.
var ErrDenied = errors.New("virtual: user presence denied")

// Approve approves every request at once. It is what a nil UserPresence
// means.
func Approve(ctx context.Context, req PresenceRequest) error { return nil }

// Deny refuses every request.
func Deny(ctx context.Context, req PresenceRequest) error { return ErrDenied }

// ApproveAfter approves each request after d, long enough for the host to
// see KEEPALIVE UPNEEDED and prompt the person, as with a real key.
func ApproveAfter(d time.Duration) UserPresence {
	return func(ctx context.Context, req PresenceRequest) error {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Button is a touch sensor a test presses by hand: the key's request
// appears on Waiting, and Press or Refuse answers it. Tests synchronise on
// Waiting instead of sleeping. A Press before the key asks is kept for the
// next request. Safe for concurrent use.
type Button struct {
	waiting chan PresenceRequest
	answer  chan error
}

// NewButton returns a button nobody has pressed.
func NewButton() *Button {
	return &Button{waiting: make(chan PresenceRequest, 16), answer: make(chan error, 1)}
}

// Presence returns the hook to put in Config.UserPresence.
func (b *Button) Presence() UserPresence {
	return func(ctx context.Context, req PresenceRequest) error {
		select {
		case b.waiting <- req:
		default: // nobody is watching; the request still waits for a press
		}
		select {
		case err := <-b.answer:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Waiting delivers each request as the key starts waiting for a touch.
func (b *Button) Waiting() <-chan PresenceRequest { return b.waiting }

// Press approves the pending (or next) request.
func (b *Button) Press() { b.set(nil) }

// Refuse denies the pending (or next) request.
func (b *Button) Refuse() { b.set(ErrDenied) }

func (b *Button) set(err error) {
	select {
	case b.answer <- err:
	default: // one answer is already queued
	}
}
