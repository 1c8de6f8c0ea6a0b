package virtual

import (
	"context"
	"errors"

	"github.com/fidokit/fidokit/internal/ctap"
	"github.com/fidokit/fidokit/internal/hid"
)

// Built-in user verification limits (CTAP 2.1 §6.4, §6.5.5.3).
const (
	// maxUVRetries is the most uvRetries CTAP 2.1 §6.5.5.3 allows.
	maxUVRetries = 25
	// preferredPlatformUvAttempts is how many times a platform should
	// call getPinUvAuthTokenUsingUvWithPermissions before it falls back
	// to the PIN (getInfo 0x11). Above 1, so the key does not retry
	// internally there (§6.5.5.7.3 step 6).
	preferredPlatformUvAttempts = 3
	// uvModalityFingerprint is the uvModality of getInfo (0x12): the
	// simulated sensor is a fingerprint reader (FIDO Registry §3.1,
	// USER_VERIFY_FINGERPRINT_INTERNAL).
	uvModalityFingerprint = 0x02
)

// Operations that ask for built-in user verification.
const (
	// OpGetPinUvAuthToken is getPinUvAuthTokenUsingUvWithPermissions
	// (CTAP 2.1 §6.5.5.7.3).
	OpGetPinUvAuthToken Operation = "getPinUvAuthTokenUsingUvWithPermissions"
)

// UVRequest says why the key wants to verify the user.
type UVRequest struct {
	// Op is the operation waiting: OpMakeCredential, OpGetAssertion (the
	// "uv" option) or OpGetPinUvAuthToken.
	Op Operation
	// RPID is the relying party ID, or empty when a token is asked for
	// without one.
	RPID string
}

// UserVerifier decides one built-in user verification attempt of a key
// with Config.BuiltInUV, as a fingerprint sensor would. Returning nil
// means the person was recognised; ErrUVFailed (or any other error) means
// not, which costs one of the key's uvRetries (CTAP 2.1 §6.5.5.3).
//
// A successful attempt is also evidence of user presence, as a finger on
// a sensor is (CTAP 2.1 §6.5.5.7.3 step 13), so the key then does not ask
// Config.UserPresence for a touch.
//
// While the hook blocks, the key sends KEEPALIVE with status UPNEEDED.
// ctx ends when the host cancels (CTAP2_ERR_KEEPALIVE_CANCEL) or
// Config.UserPresenceTimeout passes (CTAP2_ERR_USER_ACTION_TIMEOUT, with
// no retry spent). The key calls the hook from its own goroutines, at
// most once at a time.
type UserVerifier func(ctx context.Context, req UVRequest) error

// ErrUVFailed is the answer of a sensor that did not recognise the
// person.
var ErrUVFailed = errors.New("virtual: user verification failed")

// UVSucceed recognises everyone at once. It is what a nil
// Config.UserVerifier means.
func UVSucceed(ctx context.Context, req UVRequest) error { return nil }

// UVFail recognises nobody.
func UVFail(ctx context.Context, req UVRequest) error { return ErrUVFailed }

// uvOutcome is the result of one built-in UV attempt.
type uvOutcome int

const (
	uvOK uvOutcome = iota
	uvFailed
	uvTimeout
	uvCancelled
)

// askUV runs the UserVerifier hook once, bounded like a touch.
func (k *Key) askUV(ctx context.Context, req UVRequest) uvOutcome {
	pctx, cancel := context.WithTimeoutCause(ctx, k.cfg.UserPresenceTimeout, errPresenceTimeout)
	defer cancel()
	answer := make(chan error, 1)
	go func() { answer <- k.cfg.UserVerifier(pctx, req) }()
	var err error
	select {
	case err = <-answer:
		if err != nil && pctx.Err() != nil {
			err = context.Cause(pctx)
		}
	case <-pctx.Done():
		err = context.Cause(pctx)
	}
	switch {
	case ctx.Err() != nil:
		return uvCancelled
	case err == nil:
		return uvOK
	case errors.Is(err, errPresenceTimeout):
		return uvTimeout
	default:
		return uvFailed
	}
}

// performBuiltInUV is performBuiltInUv of CTAP 2.1 §6.5.5.7.3 with one
// attempt (the spec leaves internal retries to the authenticator): it
// checks and spends uvRetries, saves them, and returns StatusOK or the
// status to answer. blocked is what a key whose retries are exhausted
// answers, UV_BLOCKED; failed is what a wrong finger gets otherwise:
// UV_INVALID for the clientPIN subcommand, OPERATION_DENIED in
// makeCredential and getAssertion (§6.1.2 step 11.2, §6.2.2 step 6.2).
// The caller does not hold k.mu.
func (k *Key) performBuiltInUV(ctx context.Context, status func(byte), req UVRequest, failed ctap.Status) ctap.Status {
	k.mu.Lock()
	left := k.st.UVRetries
	k.mu.Unlock()
	if left <= 0 {
		return ctap.StatusUVBlocked
	}
	status(hid.KeepaliveUPNeeded)
	out := k.askUV(ctx, req)
	status(hid.KeepaliveProcessing)
	switch out {
	case uvCancelled:
		return ctap.StatusKeepaliveCancel
	case uvTimeout:
		return ctap.StatusUserActionTimeout
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	old := k.st.UVRetries
	if out == uvOK {
		k.st.UVRetries = k.cfg.MaxUVRetries
	} else {
		k.st.UVRetries--
	}
	if k.st.UVRetries != old {
		if err := k.save(); err != nil {
			k.st.UVRetries = old
			return ctap.StatusOther
		}
	}
	switch {
	case out == uvOK:
		return ctap.StatusOK
	case k.st.UVRetries == 0:
		return ctap.StatusUVBlocked
	default:
		return failed
	}
}
