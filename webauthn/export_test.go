package webauthn

import "context"

// SetSlowLogin makes rp verify every sign-in on go-webauthn alone (the
// trusted slow path) when slow is true, so that tests can run each check
// against both paths. Call it before rp is used.
func SetSlowLogin(rp *RelyingParty, slow bool) { rp.slowLogin = slow }

// FastSignIns is the number of signatures rp's fast path has verified.
func FastSignIns(rp *RelyingParty) uint64 { return rp.fastSignIns.Load() }

// BeginLoginByName is what the handler's /login/begin calls for a name.
func BeginLoginByName(rp *RelyingParty, ctx context.Context, name string) (*Begin, error) {
	return rp.beginLoginByName(ctx, name)
}
