package mfa

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"
)

// RoleAdministrator is the role [Policy.AdministratorsNeedSecurityKey]
// looks for among what [Config.Roles] returns.
const RoleAdministrator = "administrator"

// Session is what the require-MFA middleware needs to know of the
// application's session for one request. The session itself, its cookie
// and its storage stay the application's.
type Session struct {
	// UserID is the account signed in with the first factor; nil when
	// nobody is.
	UserID []byte
	// MFAAt is when a second factor last passed in this session (the
	// [Verification.At] the application recorded); zero if none did.
	MFAAt time.Time
	// MFAFactor is which factor that was ([Verification.Factor]).
	MFAFactor Factor
}

// SessionFunc reads the [Session] of a request. An error answers 500.
type SessionFunc func(r *http.Request) (Session, error)

// Policy is what [Manager.Require] asks of a request. The zero value asks
// for a second factor of any kind and any age, of everyone, and refuses
// accounts without a device at once.
type Policy struct {
	// MaxAge is how long ago the second factor may have passed: step-up
	// for sensitive routes ("MFA in the last 15 minutes"). Zero means any
	// age.
	MaxAge time.Duration
	// PhishingResistant asks for a security key as the second factor.
	PhishingResistant bool
	// Roles limits the policy to accounts holding one of these roles
	// ([Config.Roles]); others pass. Empty means everyone.
	Roles []string
	// AdministratorsNeedSecurityKey refuses an account with the
	// RoleAdministrator role unless it holds an active security key, as
	// the guides ask of administrators.
	AdministratorsNeedSecurityKey bool
	// EnrollmentGrace lets an account without any device through for
	// this long after it was created, so that a new person is not locked
	// out before enrolling; after it, such an account is refused with
	// mfa_enrollment_required. Zero means no grace.
	EnrollmentGrace time.Duration
}

// Refusals of the require-MFA middleware, each with its stable code and
// HTTP status. Match them with errors.Is on a [*RefusalError].
var (
	// ErrMFARequired: no second factor passed in this session (or
	// nobody is signed in). 401 mfa_required.
	ErrMFARequired = errors.New("mfa: a second factor is required")
	// ErrMFAStale: the second factor passed longer ago than
	// Policy.MaxAge. 401 mfa_stale.
	ErrMFAStale = errors.New("mfa: the second factor is too old")
	// ErrNotPhishingResistant: the second factor was not a security key
	// where Policy.PhishingResistant asks for one. 403
	// mfa_not_phishing_resistant.
	ErrNotPhishingResistant = errors.New("mfa: a security key is required as the second factor")
	// ErrEnrollmentRequired: the account holds no active device and its
	// grace period is over. 403 mfa_enrollment_required.
	ErrEnrollmentRequired = errors.New("mfa: the account must enroll an MFA device")
	// ErrSecurityKeyRequired: an administrator's account holds no active
	// security key. 403 mfa_security_key_required.
	ErrSecurityKeyRequired = errors.New("mfa: administrators must hold an active security key")
)

// RefusalError is a request the require-MFA middleware refused, with what
// would satisfy it. It is also the JSON error body's shape.
type RefusalError struct {
	// Err is one of ErrMFARequired, ErrMFAStale, ErrNotPhishingResistant,
	// ErrEnrollmentRequired, ErrSecurityKeyRequired.
	Err error
	// Factors are the factors that would satisfy the policy and the
	// account can use now ("security_key", "totp", "recovery_code"); for
	// ErrEnrollmentRequired and ErrSecurityKeyRequired, the device types
	// to enroll.
	Factors []string
	// MaxAge is Policy.MaxAge, when it applies.
	MaxAge time.Duration
}

func (e *RefusalError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *RefusalError) Unwrap() error { return e.Err }

// refusalCode returns the stable code and status of a refusal.
func refusalCode(err error) (string, int) {
	switch {
	case errors.Is(err, ErrMFAStale):
		return "mfa_stale", http.StatusUnauthorized
	case errors.Is(err, ErrNotPhishingResistant):
		return "mfa_not_phishing_resistant", http.StatusForbidden
	case errors.Is(err, ErrEnrollmentRequired):
		return "mfa_enrollment_required", http.StatusForbidden
	case errors.Is(err, ErrSecurityKeyRequired):
		return "mfa_security_key_required", http.StatusForbidden
	}
	return "mfa_required", http.StatusUnauthorized
}

var refusalMessages = map[string]string{
	"mfa_required":               "Confirm it's you with your security key, authenticator app or a recovery code.",
	"mfa_stale":                  "This needs a recent confirmation: use your second factor again.",
	"mfa_not_phishing_resistant": "This needs your security key.",
	"mfa_enrollment_required":    "Set up an MFA device to continue.",
	"mfa_security_key_required":  "Administrators must register a security key to continue.",
}

// Check applies p to one request's session at now, and returns nil or a
// [*RefusalError]. It reads the account's devices only when the session
// holds no second factor, or for the administrator policy. Errors other
// than refusals come from the store or the roles hook.
func (m *Manager) Check(ctx context.Context, p Policy, s Session) error {
	if len(s.UserID) == 0 {
		return &RefusalError{Err: ErrMFARequired}
	}
	var roles []string
	if len(p.Roles) > 0 || p.AdministratorsNeedSecurityKey {
		if m.roles == nil {
			return errors.New("mfa: a Policy with Roles or AdministratorsNeedSecurityKey needs Config.Roles")
		}
		var err error
		if roles, err = m.roles(ctx, s.UserID); err != nil {
			return fmt.Errorf("mfa: reading roles: %w", err)
		}
		if len(p.Roles) > 0 && !slices.ContainsFunc(p.Roles, func(r string) bool { return slices.Contains(roles, r) }) {
			return nil
		}
	}
	admin := p.AdministratorsNeedSecurityKey && slices.Contains(roles, RoleAdministrator)
	now := m.now()

	var f *Factors
	if s.MFAAt.IsZero() || admin {
		var err error
		if f, err = m.Factors(ctx, s.UserID); err != nil {
			return err
		}
		if !f.Enabled() && f.Required() && s.MFAAt.IsZero() {
			// Every device is deactivated: only a recovery code gets
			// in (none left: an administrator must delete the devices
			// first). Never a way to enroll on a password alone.
			return &RefusalError{Err: ErrMFARequired, Factors: usable(f, p), MaxAge: p.MaxAge}
		}
		if !f.Required() {
			u, err := m.rp.User(ctx, s.UserID)
			if err != nil {
				return err
			}
			if p.EnrollmentGrace > 0 && now.Before(u.Created.Add(p.EnrollmentGrace)) && !admin {
				return nil
			}
			want := []string{string(SecurityKey)}
			if !p.PhishingResistant && !admin {
				want = append(want, string(AuthenticatorApp), string(HardwareToken))
			}
			return &RefusalError{Err: ErrEnrollmentRequired, Factors: want}
		}
		if admin && f.SecurityKeys == 0 {
			return &RefusalError{Err: ErrSecurityKeyRequired, Factors: []string{string(SecurityKey)}}
		}
	}
	if s.MFAAt.IsZero() {
		return &RefusalError{Err: ErrMFARequired, Factors: usable(f, p), MaxAge: p.MaxAge}
	}
	if p.MaxAge > 0 && now.Sub(s.MFAAt) > p.MaxAge {
		if f == nil {
			// A refusal is rare: read what the account can use, so the
			// page offers only that.
			var err error
			if f, err = m.Factors(ctx, s.UserID); err != nil {
				return err
			}
		}
		return &RefusalError{Err: ErrMFAStale, Factors: usable(f, p), MaxAge: p.MaxAge}
	}
	if p.PhishingResistant && s.MFAFactor != FactorSecurityKey {
		return &RefusalError{Err: ErrNotPhishingResistant, Factors: []string{string(FactorSecurityKey)}, MaxAge: p.MaxAge}
	}
	return nil
}

// usable lists the factors that would satisfy p, among those the account
// has.
func usable(f *Factors, p Policy) []string {
	out := []string{}
	if f.SecurityKeys > 0 {
		out = append(out, string(FactorSecurityKey))
	}
	if p.PhishingResistant {
		return out
	}
	if f.TOTP() {
		out = append(out, string(FactorTOTP))
	}
	if f.RecoveryCodes > 0 {
		out = append(out, string(FactorRecoveryCode))
	}
	return out
}

// Require returns middleware that lets a request through to the handler
// it wraps only when [Manager.Check] passes p for the request's session.
// A refusal is a JSON body
//
//	{"error": {"code": "mfa_stale", "message": "...", "factors": ["security_key", "totp"], "maxAgeSeconds": 900}}
//
// with status 401 (mfa_required, mfa_stale: pass a second factor, then
// retry) or 403 (mfa_not_phishing_resistant, mfa_enrollment_required,
// mfa_security_key_required), so that a page can start the right
// ceremony and retry. Any other error answers 500 "internal" and goes to
// onError, if not nil.
func (m *Manager) Require(p Policy, session SessionFunc, onError func(r *http.Request, err error)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s, err := session(r)
			if err == nil {
				err = m.Check(r.Context(), p, s)
			}
			if err == nil {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("Cache-Control", "no-store")
			var re *RefusalError
			if !errors.As(err, &re) {
				if onError != nil {
					onError(r, err)
				}
				writeRefusal(w, http.StatusInternalServerError, map[string]any{"code": "internal", "message": "internal error"})
				return
			}
			code, status := refusalCode(re)
			if len(s.UserID) > 0 {
				if err := m.recordRefusal(r, s.UserID, code); err != nil && onError != nil {
					onError(r, err)
				}
			}
			body := map[string]any{"code": code, "message": refusalMessages[code], "factors": re.Factors}
			if re.Factors == nil {
				body["factors"] = []string{}
			}
			if re.MaxAge > 0 {
				body["maxAgeSeconds"] = int64(re.MaxAge / time.Second)
			}
			if status == http.StatusUnauthorized {
				w.Header().Set("WWW-Authenticate", `MFA realm="`+m.issuer+`"`)
			}
			writeRefusal(w, status, body)
		})
	}
}

func writeRefusal(w http.ResponseWriter, status int, body map[string]any) {
	writeJSON(w, status, map[string]any{"error": body})
}

// recordRefusal appends the EventPolicyRefused of a signed-in account's
// refused request.
func (m *Manager) recordRefusal(r *http.Request, userID []byte, code string) error {
	ctx := requestActor(r, userID)
	ev, err := m.event(ctx, EventPolicyRefused, userID, m.now())
	if err != nil {
		return err
	}
	ev.Detail = code
	return m.record(ctx, ev)
}

// requestActor returns r's context with its [Actor]: one the
// application set with [WithActor] is kept, and what it left empty is
// filled from the request: userID, the remote address (host only) and
// the User-Agent.
func requestActor(r *http.Request, userID []byte) context.Context {
	a := actorFrom(r.Context())
	if len(a.ID) == 0 {
		a.ID = userID
	}
	if a.RemoteAddr == "" {
		a.RemoteAddr = r.RemoteAddr
		if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
			a.RemoteAddr = host
		}
	}
	if a.UserAgent == "" {
		a.UserAgent = r.UserAgent()
	}
	return WithActor(r.Context(), a)
}
