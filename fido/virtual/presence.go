package virtual

import (
	"context"
	"errors"
	"time"
)

// Operation names what a key wants a touch for.
type Operation string

// Operations that need a touch.
const (
	OpMakeCredential  Operation = "makeCredential"   // CTAP 2.1 §6.1
	OpGetAssertion    Operation = "getAssertion"     // CTAP 2.1 §6.2
	OpReset           Operation = "reset"            // CTAP 2.1 §6.6
	OpSelection       Operation = "selection"        // CTAP 2.1 §6.9
	OpU2FRegister     Operation = "U2F register"     // FIDO U2F Raw Message Formats, U2F_REGISTER
	OpU2FAuthenticate Operation = "U2F authenticate" // FIDO U2F Raw Message Formats, U2F_AUTHENTICATE
)

// PresenceRequest says why the key wants a touch.
type PresenceRequest struct {
	// Op is the operation waiting for the touch.
	Op Operation
	// RPID is the relying party ID, or empty where there is none (reset,
	// selection) or the key does not know it (U2F sees only its hash).
	RPID string
}

// UserPresence decides whether the person touches the key. Returning nil
// approves; returning ErrDenied (or any other error) refuses, which the
// key answers with CTAP2_ERR_OPERATION_DENIED.
//
// While the hook blocks, a CTAP2 key sends KEEPALIVE with status UPNEEDED,
// as a real key does while it blinks. ctx ends when the host cancels
// (CTAP2_ERR_KEEPALIVE_CANCEL) or Config.UserPresenceTimeout passes
// (CTAP2_ERR_USER_ACTION_TIMEOUT); the hook should then return, and the
// key stops waiting for it either way.
//
// The key calls the hook from its own goroutines, at most once at a time
// for CTAP2 commands; a U2F touch waits in the background and may overlap
// a CTAP2 one.
type UserPresence func(ctx context.Context, req PresenceRequest) error

// ErrDenied is the answer of a person who refuses to touch the key.
var ErrDenied = errors.New("virtual: user presence denied")

// errPresenceTimeout is the cause of a presence context that ran out of
// Config.UserPresenceTimeout.
var errPresenceTimeout = errors.New("virtual: user presence timed out")

// Approve approves every request at once. It is what a nil
// Config.UserPresence means.
func Approve(ctx context.Context, req PresenceRequest) error { return nil }

// Deny refuses every request at once.
func Deny(ctx context.Context, req PresenceRequest) error { return ErrDenied }

// ApproveAfter approves each request after d, long enough for a host to
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

// askPresence runs the hook for one touch, bounded by ctx and
// Config.UserPresenceTimeout. A hook that does not return when its context
// ends is left behind, so a careless hook cannot wedge the key.
func (k *Key) askPresence(ctx context.Context, req PresenceRequest) error {
	if k.approveAll {
		// What the wait below gives for Approve, had the answer won
		// the race with a ctx that was already done, or the loss.
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		return nil
	}
	pctx, cancel := context.WithTimeoutCause(ctx, k.cfg.UserPresenceTimeout, errPresenceTimeout)
	defer cancel()
	answer := make(chan error, 1)
	go func() { answer <- k.cfg.UserPresence(pctx, req) }()
	select {
	case err := <-answer:
		if err != nil && pctx.Err() != nil {
			return context.Cause(pctx)
		}
		return err
	case <-pctx.Done():
		return context.Cause(pctx)
	}
}

// Button is a touch sensor that a test (or a person, through a program)
// presses by hand. When the key wants a touch, the request is delivered on
// Waiting; Press or Refuse answers it. Tests synchronise on Waiting instead
// of sleeping:
//
//	b := virtual.NewButton()
//	k, _ := virtual.New(&virtual.Config{UserPresence: b.Presence()})
//	go func() { <-b.Waiting(); b.Press() }()
//	att, err := dev.MakeCredential(ctx, req)
//
// A Press or Refuse while the key is not waiting is kept for the next
// request; answers do not accumulate beyond one. A Button is safe for
// concurrent use.
type Button struct {
	waiting chan PresenceRequest
	answer  chan error
}

// NewButton returns a button nobody has pressed.
func NewButton() *Button {
	return &Button{waiting: make(chan PresenceRequest), answer: make(chan error, 1)}
}

// Presence returns the hook to put in Config.UserPresence.
func (b *Button) Presence() UserPresence {
	return func(ctx context.Context, req PresenceRequest) error {
		// Offer the request to whoever watches Waiting, while also taking
		// an answer given in advance. The channel is unbuffered, so a
		// request is only ever seen while the key is waiting for it.
		select {
		case err := <-b.answer:
			return err
		case b.waiting <- req:
		case <-ctx.Done():
			return ctx.Err()
		}
		select {
		case err := <-b.answer:
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Waiting delivers each request the moment the key starts waiting for a
// touch, to one receiver. A request nobody receives still waits for Press
// or Refuse.
func (b *Button) Waiting() <-chan PresenceRequest { return b.waiting }

// Press approves the pending request, or the next one.
func (b *Button) Press() { b.set(nil) }

// Refuse denies the pending request, or the next one, with ErrDenied.
func (b *Button) Refuse() { b.set(ErrDenied) }

func (b *Button) set(err error) {
	select {
	case b.answer <- err:
	default: // an answer is already queued
	}
}
