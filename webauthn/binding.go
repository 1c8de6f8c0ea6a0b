package webauthn

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
)

type bindingKey struct{}

// WithSessionBinding returns a copy of ctx that binds the ceremonies begun
// with it to binding: a value only the person's browser session holds,
// such as a random, HttpOnly cookie ([RelyingParty.Handler] sets one).
// Every Begin given such a context stores SHA-256 of binding with the
// challenge (in the signed token, under [Config.ChallengeKey]), and the
// Finish of that challenge must be given a context with the same binding,
// or it fails with [ErrChallengeUnknown]; so does the Finish, with a
// binding, of a challenge begun without one. A challenge ID that leaks
// from one session is thus of no use in another. An empty binding means
// none.
func WithSessionBinding(ctx context.Context, binding []byte) context.Context {
	if len(binding) == 0 {
		return context.WithValue(ctx, bindingKey{}, []byte(nil))
	}
	h := sha256.Sum256(binding)
	return context.WithValue(ctx, bindingKey{}, h[:])
}

// sessionBinding is the hash of ctx's session binding, or nil.
func sessionBinding(ctx context.Context) []byte {
	b, _ := ctx.Value(bindingKey{}).([]byte)
	return b
}

// sameBinding reports whether two binding hashes (possibly nil) are the
// same.
func sameBinding(a, b []byte) bool {
	return len(a) == len(b) && subtle.ConstantTimeCompare(a, b) == 1
}
