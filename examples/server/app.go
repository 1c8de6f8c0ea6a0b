package main

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/webauthn"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// config is what the app is made of; main fills it from the flags, the
// tests by hand.
type config struct {
	// Origin is the one web origin the pages are served on, such as
	// "http://localhost:8080". Its host is the relying party ID.
	Origin string
	// Store holds the security keys, TOTP devices and recovery codes
	// (store/sqlite or store/postgres).
	Store mfa.Store
	// Accounts holds names and passwords.
	Accounts *accounts
	// Keys seals TOTP seeds at rest.
	Keys *mfa.Keyring
	// Admin names the administrator; empty means the first account.
	Admin string
	// RecoveryHash is the recovery-code hash's cost; zero means mfa's
	// default.
	RecoveryHash mfa.RecoveryHash
	// Now tells the time; nil means time.Now.
	Now func() time.Time
	// Log gets the errors no page shows; nil means slog.Default().
	Log *slog.Logger
}

// app is the demo web application.
type app struct {
	cfg   config
	rp    *webauthn.RelyingParty
	m     *mfa.Manager
	acc   *accounts
	ss    *sessions
	pages map[string]*pageTemplate
	log   *slog.Logger
	now   func() time.Time
	// verifyAPI is mfa's handler for the /mfa/verify/ routes: it knows
	// the account of a session whose second factor is still pending.
	// manageAPI is the same API for everything else: it knows only
	// signed-in accounts.
	verifyAPI, manageAPI http.Handler
	handler              http.Handler
}

// requireMFASetting is the settings key of the administrator's switch.
const requireMFASetting = "require_mfa"

// requirePolicy is what the switch asks of every signed-in page: a
// second factor, of anyone (accounts without a device are sent to set
// one up), and a security key of administrators, as the guides ask.
var requirePolicy = mfa.Policy{AdministratorsNeedSecurityKey: true}

func newApp(cfg config) (*app, error) {
	u, err := url.Parse(cfg.Origin)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("origin %q: want scheme://host:port", cfg.Origin)
	}
	a := &app{cfg: cfg, acc: cfg.Accounts, log: cfg.Log, now: cfg.Now}
	if a.log == nil {
		a.log = slog.Default()
	}
	if a.now == nil {
		a.now = time.Now
	}
	a.ss = newSessions(a.now)
	a.rp, err = webauthn.New(webauthn.Config{
		RPID:    u.Hostname(),
		RPName:  "fidokit demo",
		Origins: []string{cfg.Origin},
		Store:   cfg.Store,
		// Keys here are a second factor after a password, so they need
		// not spend a discoverable-credential slot.
		Policy: webauthn.Policy{Discoverable: webauthn.Discouraged},
		Now:    cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	a.m, err = mfa.New(mfa.Config{
		RelyingParty: a.rp,
		Keys:         cfg.Keys,
		Issuer:       "fidokit demo",
		RecoveryHash: cfg.RecoveryHash,
		Roles:        a.roles,
		Now:          cfg.Now,
	})
	if err != nil {
		return nil, err
	}
	hc := mfa.HandlerConfig{
		CurrentUser: a.pendingOrSignedInUser,
		OnVerified:  a.onVerified,
		// No CookiePath: mounted with http.StripPrefix("/mfa", ...), the
		// handlers' cookies get Path /mfa/ by themselves.
		OnError: a.onError,
	}
	if a.verifyAPI, err = a.m.Handler(hc); err != nil {
		return nil, err
	}
	hc.CurrentUser = a.signedInUser
	hc.Authorize = a.authorize
	if a.manageAPI, err = a.m.Handler(hc); err != nil {
		return nil, err
	}
	if a.pages, err = loadPages(); err != nil {
		return nil, err
	}
	a.handler = a.routes()
	return a, nil
}

func (a *app) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.handler.ServeHTTP(w, r) }

// routes wires every URL. Pages are under /, the page scripts' JSON under
// /mfa/: package mfa's handler, for every device type.
func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	static, _ := fs.Sub(staticFiles, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", staticHandler(static)))
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })

	mux.HandleFunc("GET /signin", a.signinPage)
	mux.HandleFunc("POST /signin", a.signin)
	mux.HandleFunc("GET /signup", a.signupPage)
	mux.HandleFunc("POST /signup", a.signup)
	mux.HandleFunc("POST /signout", a.signout)
	mux.HandleFunc("GET /signin/verify", a.verifyPage)

	mux.Handle("GET /{$}", a.page(false, a.homePage))
	mux.Handle("GET /security", a.page(true, a.securityPage))
	mux.Handle("GET /security/assign", a.page(true, a.assignPage))
	mux.Handle("GET /admin", a.page(false, a.adminOnly(a.adminPage)))
	mux.Handle("GET /admin/users/{user}", a.page(false, a.adminOnly(a.adminUserPage)))
	mux.Handle("GET /admin/report.csv", a.page(false, a.adminOnly(a.adminReport)))
	mux.Handle("POST /admin/require-mfa", a.page(false, a.adminOnly(a.setRequireMFA)))

	// The second-factor routes serve pending sessions; the rest of mfa's
	// API only signed-in ones, and obeys the require-MFA switch.
	mux.Handle("/mfa/verify/", http.StripPrefix("/mfa", a.verifyAPI))
	mux.Handle("/mfa/", a.requireMFAForAPI(a.recordEnrollment(http.StripPrefix("/mfa", a.manageAPI))))

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isAPI(r) {
			a.apiError(w, r, errCrossOrigin)
			return
		}
		http.Error(w, "Requests from other sites are not allowed.", http.StatusForbidden)
	}))
	return securityHeaders(cop.Handler(mux))
}

// securityHeaders sets what every response carries. The pages run only
// their own scripts and styles; images may be data: URLs (the QR code).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if !strings.HasPrefix(r.URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
}

func staticHandler(files fs.FS) http.Handler {
	fsrv := http.FileServerFS(files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") || r.URL.Path == "" {
			http.NotFound(w, r) // no directory listings
			return
		}
		w.Header().Set("Cache-Control", "no-cache")
		fsrv.ServeHTTP(w, r)
	})
}

func isAPI(r *http.Request) bool { return strings.HasPrefix(r.URL.Path, "/mfa/") }

// ---- who is signed in ----

// signinState is where a request's session stands.
type signinState int

const (
	anonymous signinState = iota
	// needsSecondFactor: the password passed, the second factor has not
	// (in this session) although the account has MFA.
	needsSecondFactor
	signedIn
)

// state returns r's session and where it stands. A session that signed
// in while its account had no MFA device, and whose account has one now
// (added in another session), needs the second factor before it goes on:
// a password alone never reaches an account with MFA.
func (a *app) state(r *http.Request) (session, signinState, error) {
	s, ok := a.ss.get(r)
	switch {
	case !ok:
		return s, anonymous, nil
	case s.Pending:
		return s, needsSecondFactor, nil
	case !s.MFAAt.IsZero():
		return s, signedIn, nil
	}
	f, err := a.m.Factors(r.Context(), s.UserID)
	if err != nil {
		return s, anonymous, err
	}
	if f.Required() {
		return s, needsSecondFactor, nil
	}
	return s, signedIn, nil
}

// signedInUser is mfa's HandlerConfig.CurrentUser for the management
// routes.
func (a *app) signedInUser(r *http.Request) ([]byte, error) {
	s, st, err := a.state(r)
	if err != nil || st != signedIn {
		return nil, err
	}
	return s.UserID, nil
}

// pendingOrSignedInUser is CurrentUser for the /verify/ routes: the
// second factor of a pending sign-in, a step-up, or a "test sign-in".
func (a *app) pendingOrSignedInUser(r *http.Request) ([]byte, error) {
	s, ok := a.ss.get(r)
	if !ok {
		return nil, nil
	}
	return s.UserID, nil
}

// onVerified is mfa's HandlerConfig.OnVerified: the session records the
// factor (when, which), and a pending sign-in is complete.
func (a *app) onVerified(w http.ResponseWriter, r *http.Request, v *mfa.Verification) error {
	if !a.ss.verified(w, r, v) {
		return errors.New("the session ended during the second factor")
	}
	return nil
}

// mfaSession is the mfa.SessionFunc of the require-MFA policy.
func (a *app) mfaSession(r *http.Request) (mfa.Session, error) {
	s, ok := a.ss.get(r)
	if !ok {
		return mfa.Session{}, nil
	}
	return mfa.Session{UserID: s.UserID, MFAAt: s.MFAAt, MFAFactor: s.MFAFactor}, nil
}

// enrolled records, in a session that has not passed a second factor, a
// device it just enrolled as one that passed: enrolling took the device
// itself (two fresh codes, or a touch of the key), and without this the
// person would be sent to the second-factor step at once.
func (a *app) enrolled(r *http.Request, f mfa.Factor, deviceID string) {
	at := a.now()
	a.ss.update(r, func(s *session) {
		if s.MFAAt.IsZero() && !s.Pending {
			s.MFAAt, s.MFAFactor, s.MFADevice = at, f, deviceID
		}
	})
}

// enrollmentFinishes are the mfa routes that create a device, and the
// factor each device passes as.
var enrollmentFinishes = map[string]mfa.Factor{
	"/mfa/totp/finish": mfa.FactorTOTP, // authenticator apps and hardware tokens
	"/mfa/keys/finish": mfa.FactorSecurityKey,
}

// recordEnrollment watches the enrollment finishes: when one creates a
// device, the session records it (see enrolled). It holds the response
// until then, so that the page's next request finds the session updated.
func (a *app) recordEnrollment(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, ok := enrollmentFinishes[r.URL.Path]
		if r.Method != http.MethodPost || !ok {
			next.ServeHTTP(w, r)
			return
		}
		rec := &recorder{header: http.Header{}}
		next.ServeHTTP(rec, r)
		if rec.status == http.StatusCreated {
			var created struct {
				Device mfa.DeviceJSON `json:"device"`
			}
			json.Unmarshal(rec.body, &created) // mfa's own answer; no ID at worst
			a.enrolled(r, f, created.Device.ID)
		}
		rec.copyTo(w)
	})
}

// isAdmin reports whether userID is the administrator: the account named
// by -admin, else the first account.
func (a *app) isAdmin(ctx context.Context, userID []byte) (bool, error) {
	if a.cfg.Admin != "" {
		acc, err := a.acc.byUserID(ctx, userID)
		if err != nil || acc == nil {
			return false, err
		}
		return strings.EqualFold(acc.Name, a.cfg.Admin), nil
	}
	first, err := a.acc.first(ctx)
	if err != nil || first == nil {
		return false, err
	}
	return string(first.UserID) == string(userID), nil
}

// roles is mfa's Config.Roles.
func (a *app) roles(ctx context.Context, userID []byte) ([]string, error) {
	ok, err := a.isAdmin(ctx, userID)
	if err != nil || !ok {
		return nil, err
	}
	return []string{mfa.RoleAdministrator}, nil
}

// authorize is mfa's HandlerConfig.Authorize: only the administrator
// manages other accounts' devices.
func (a *app) authorize(r *http.Request, actor, target []byte) error {
	ok, err := a.isAdmin(r.Context(), actor)
	if err != nil {
		return err
	}
	if !ok {
		return errors.New("not the administrator")
	}
	return nil
}

func (a *app) onError(r *http.Request, err error) {
	a.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
}

// requireMFA reports whether the administrator's switch is on.
func (a *app) requireMFA(ctx context.Context) (bool, error) {
	v, err := a.acc.setting(ctx, requireMFASetting)
	return v == "on", err
}

// enrollmentRefusal reports whether err says the account must enroll a
// device (of any type, or a security key for an administrator): the
// refusal that the enrollment pages and routes themselves let through.
func enrollmentRefusal(err error) bool {
	return errors.Is(err, mfa.ErrEnrollmentRequired) || errors.Is(err, mfa.ErrSecurityKeyRequired)
}

// enrollmentRoutes are the mfa routes that a person sent to enrollment
// must reach.
var enrollmentRoutes = map[string]bool{
	"POST /mfa/totp/begin":     true,
	"POST /mfa/totp/finish":    true,
	"POST /mfa/token/begin":    true,
	"POST /mfa/keys/begin":     true,
	"POST /mfa/keys/finish":    true,
	"GET /mfa/devices":         true,
	"GET /mfa/recovery-codes":  true,
	"POST /mfa/recovery-codes": true,
}

// requireMFAForAPI puts mfa's management routes behind mfa.Manager.Require
// while the switch is on, letting an account that must enroll reach the
// enrollment routes.
func (a *app) requireMFAForAPI(next http.Handler) http.Handler {
	required := a.m.Require(requirePolicy, a.mfaSession, a.onError)(next)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		on, err := a.requireMFA(r.Context())
		if err != nil {
			a.apiError(w, r, err)
			return
		}
		if !on {
			next.ServeHTTP(w, r)
			return
		}
		if enrollmentRoutes[r.Method+" "+r.URL.Path] {
			s, err := a.mfaSession(r)
			if err == nil && s.UserID != nil && enrollmentRefusal(a.m.Check(r.Context(), requirePolicy, s)) {
				next.ServeHTTP(w, r)
				return
			}
		}
		required.ServeHTTP(w, r)
	})
}

// page wraps a page handler for signed-in people. Anyone else is sent to
// sign in, or to the second-factor step; with the switch on, a session
// that does not meet the policy is sent to the second-factor step, or to
// enrollment (which pages with enroll set are part of).
func (a *app) page(enroll bool, h func(w http.ResponseWriter, r *http.Request, v *view)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, st, err := a.state(r)
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		switch st {
		case anonymous:
			http.Redirect(w, r, "/signin", http.StatusSeeOther)
			return
		case needsSecondFactor:
			http.Redirect(w, r, "/signin/verify?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		on, err := a.requireMFA(r.Context())
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		if on {
			ms, _ := a.mfaSession(r)
			err := a.m.Check(r.Context(), requirePolicy, ms)
			var re *mfa.RefusalError
			switch {
			case err == nil:
			case enrollmentRefusal(err) && enroll:
			case enrollmentRefusal(err):
				to := "/security/assign?required=1"
				if errors.As(err, &re) && len(re.Factors) == 1 && re.Factors[0] == string(mfa.SecurityKey) {
					to += "&type=security_key" // an administrator: a key, nothing else
				}
				http.Redirect(w, r, to, http.StatusSeeOther)
				return
			case errors.As(err, &re):
				http.Redirect(w, r, "/signin/verify?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			default:
				a.serverError(w, r, err)
				return
			}
		}
		v, err := a.newView(r, &s)
		if err != nil {
			a.serverError(w, r, err)
			return
		}
		v.RequireMFA = on
		h(w, r, v)
	})
}

// adminOnly refuses anyone but the administrator.
func (a *app) adminOnly(h func(w http.ResponseWriter, r *http.Request, v *view)) func(w http.ResponseWriter, r *http.Request, v *view) {
	return func(w http.ResponseWriter, r *http.Request, v *view) {
		if !v.Admin {
			v.Title = "Not allowed"
			a.render(w, r, http.StatusForbidden, "forbidden", v)
			return
		}
		h(w, r, v)
	}
}

// recorder holds a response until it is copied out.
type recorder struct {
	header http.Header
	status int
	body   []byte
}

func (rec *recorder) Header() http.Header { return rec.header }
func (rec *recorder) Write(b []byte) (int, error) {
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	rec.body = append(rec.body, b...)
	return len(b), nil
}
func (rec *recorder) WriteHeader(status int) {
	if rec.status == 0 {
		rec.status = status
	}
}

func (rec *recorder) copyTo(w http.ResponseWriter) {
	for k, v := range rec.header {
		w.Header()[k] = v
	}
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	w.WriteHeader(rec.status)
	w.Write(rec.body)
}
