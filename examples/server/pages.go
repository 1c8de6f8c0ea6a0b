package main

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/webauthn"
)

// view is what every page template gets.
type view struct {
	Title string
	// Page names the page for the script and the navigation.
	Page string
	// Name is the account's; SignedIn is false on the second-factor step.
	Name     string
	SignedIn bool
	Admin    bool
	// RequireMFA is the administrator's switch.
	RequireMFA bool
	// Notice and Error are sentences for the person.
	Notice, Error string
	// Next is where the second-factor step goes on to.
	Next string
	// UserID is the account an administrator page is about (base64url).
	UserID string

	Form      struct{ Name string }
	Verify    *verifyView
	Home      *homeView
	Security  *securityView
	Assign    *assignView
	AdminList *adminView
	AdminUser *adminUserView
}

type verifyView struct {
	// Keys is whether to offer a security key: the account holds one,
	// active or not (a deactivated one is then refused, with a message).
	Keys          bool
	TOTP          bool
	RecoveryCodes int
}

type homeView struct {
	Factors *mfa.Factors
	// Factor, Device and At are the second factor of this session.
	Factor, Device string
	At             time.Time
}

type securityView struct {
	Devices  []*mfa.Device
	Factors  *mfa.Factors
	HasCodes bool
}

type assignView struct {
	Required bool
	Type     string
}

// adminAccount is an account's line on the administrator's page: the
// app's name for it, and its line of mfa's audit report.
type adminAccount struct {
	Name   string
	ID     string
	Report *mfa.AccountReport
}

type adminView struct {
	Accounts []adminAccount
}

type adminUserView struct {
	Name    string
	Devices []*mfa.Device
	Factors *mfa.Factors
	// Events are the account's latest, newest first.
	Events []adminEvent
}

// adminEvent is one line of an account's event log, names resolved.
type adminEvent struct {
	*mfa.Event
	// Device is the device's name (or its ID, once deleted); Actor the
	// acting account's name ("the account itself" for its own).
	Device, Actor string
}

// adminEventLimit is how many of an account's events its page shows.
const adminEventLimit = 50

// pageTemplate is a page's template, with the layout.
type pageTemplate = template.Template

var pageNames = []string{"signin", "signup", "verify", "home", "security", "assign", "admin", "admin_user", "forbidden"}

var templateFuncs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2 Jan 2006 15:04 UTC")
	},
	"exactly":     func(t time.Time) string { return t.UTC().Format("2 Jan 2006 15:04:05 UTC") },
	"typeLabel":   typeLabel,
	"reportNotes": reportNotes,
	"eventLabel":  eventLabel,
	"plural": func(n int, what string) string {
		if n == 1 {
			return "1 " + what
		}
		return fmt.Sprintf("%d %ss", n, what)
	},
	"add": func(n ...int) int {
		s := 0
		for _, x := range n {
			s += x
		}
		return s
	},
}

func typeLabel(t mfa.DeviceType) string {
	switch t {
	case mfa.SecurityKey:
		return "Security key"
	case mfa.AuthenticatorApp:
		return "Authenticator app"
	case mfa.HardwareToken:
		return "Hardware TOTP token"
	}
	return string(t)
}

// reportNotes are what an administrator should look at in an account's
// audit report line, as sentences.
func reportNotes(r *mfa.AccountReport) []string {
	var notes []string
	if r.AdministratorWithoutSecurityKey {
		notes = append(notes, "Administrator without a security key")
	}
	if r.CloneWarning {
		notes = append(notes, "A security key may have been copied")
	}
	for _, l := range r.Locked {
		what := "Codes"
		if l.Factor == mfa.FactorRecoveryCode {
			what = "Recovery codes"
		}
		notes = append(notes, fmt.Sprintf("%s locked until %s", what, l.Until.UTC().Format("15:04 UTC")))
	}
	if r.UnusedDevices > 0 {
		n := "1 device"
		if r.UnusedDevices > 1 {
			n = fmt.Sprintf("%d devices", r.UnusedDevices)
		}
		notes = append(notes, n+" unused for 90 days")
	}
	if r.MFA && r.RecoveryCodesLeft == 0 {
		notes = append(notes, "No recovery codes")
	}
	return notes
}

func factorLabel(f mfa.Factor) string {
	switch f {
	case mfa.FactorSecurityKey:
		return "a security key"
	case mfa.FactorTOTP:
		return "a code"
	case mfa.FactorRecoveryCode:
		return "a recovery code"
	}
	return ""
}

func loadPages() (map[string]*pageTemplate, error) {
	pages := map[string]*pageTemplate{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(templateFuncs).ParseFS(templateFiles,
			"templates/layout.html", "templates/recovery.html", "templates/"+name+".html")
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

// render writes a page, whole or not at all.
func (a *app) render(w http.ResponseWriter, r *http.Request, status int, name string, v *view) {
	if v.Page == "" {
		v.Page = strings.ReplaceAll(name, "_", "-")
	}
	var buf bytes.Buffer
	if err := a.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		a.serverError(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (a *app) serverError(w http.ResponseWriter, r *http.Request, err error) {
	a.onError(r, err)
	http.Error(w, "Something went wrong on our side. Try again.", http.StatusInternalServerError)
}

// newView starts the view of a page for session s (nil: nobody).
func (a *app) newView(r *http.Request, s *session) (*view, error) {
	v := &view{}
	if s == nil || s.UserID == nil {
		return v, nil
	}
	v.Name = s.Name
	v.SignedIn = !s.Pending
	admin, err := a.isAdmin(r.Context(), s.UserID)
	v.Admin = admin
	return v, err
}

// notices are the fixed sentences a redirect can ask a page to show.
var notices = map[string]string{
	"signedout":   "You are signed out.",
	"added":       "The device is assigned.",
	"renamed":     "The device is renamed.",
	"removed":     "The device is removed.",
	"saved":       "Saved.",
	"deactivated": "The device is deactivated: it can no longer sign in.",
	"reactivated": "The device is active again.",
}

func notice(r *http.Request) string {
	q := r.URL.Query()
	for k, msg := range notices {
		if q.Has(k) || q.Get("changed") == k {
			return msg
		}
	}
	return ""
}

// readForm parses a small urlencoded form.
func readForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	return r.ParseForm()
}

// safeNext returns next if it is a path on this site, else "/".
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.HasPrefix(next, "/\\") {
		return "/"
	}
	return next
}

// ---- the first factor ----

func (a *app) signinPage(w http.ResponseWriter, r *http.Request) {
	if _, st, err := a.state(r); err == nil && st == signedIn {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	a.render(w, r, http.StatusOK, "signin", &view{Title: "Sign in", Notice: notice(r)})
}

func (a *app) signin(w http.ResponseWriter, r *http.Request) {
	if err := readForm(w, r); err != nil {
		http.Error(w, "The form is not valid.", http.StatusBadRequest)
		return
	}
	name, password := r.PostForm.Get("name"), r.PostForm.Get("password")
	v := &view{Title: "Sign in"}
	v.Form.Name = name
	acc, err := a.acc.check(r.Context(), name, password)
	if errors.Is(err, errBadCredentials) {
		v.Error = "That name and password do not match an account. Check them and try again."
		a.render(w, r, http.StatusUnauthorized, "signin", v)
		return
	}
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	f, err := a.m.Factors(r.Context(), acc.UserID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	// Required, not Enabled: an account whose every device was
	// deactivated still needs its second step (a recovery code).
	a.ss.start(w, r, session{UserID: acc.UserID, Name: acc.Name, Pending: f.Required()})
	if f.Required() {
		http.Redirect(w, r, "/signin/verify", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (a *app) signupPage(w http.ResponseWriter, r *http.Request) {
	a.render(w, r, http.StatusOK, "signup", &view{Title: "Create an account"})
}

func (a *app) signup(w http.ResponseWriter, r *http.Request) {
	if err := readForm(w, r); err != nil {
		http.Error(w, "The form is not valid.", http.StatusBadRequest)
		return
	}
	name, password := r.PostForm.Get("name"), r.PostForm.Get("password")
	v := &view{Title: "Create an account"}
	v.Form.Name = name
	if v.Error = checkAccountName(name); v.Error == "" {
		v.Error = checkNewPassword(password, r.PostForm.Get("confirm"))
	}
	if v.Error != "" {
		a.render(w, r, http.StatusBadRequest, "signup", v)
		return
	}
	// fidokit's user record first: its random user handle is the
	// account's ID in the accounts table.
	u, err := a.rp.CreateUser(r.Context(), name, "")
	if err == nil {
		err = a.acc.create(r.Context(), name, u.ID, password, a.now())
	}
	switch {
	case errors.Is(err, webauthn.ErrUserExists), errors.Is(err, errNameTaken):
		v.Error = "That name is taken. Choose another."
		a.render(w, r, http.StatusConflict, "signup", v)
		return
	case err != nil:
		a.serverError(w, r, err)
		return
	}
	a.ss.start(w, r, session{UserID: u.ID, Name: name})
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func (a *app) signout(w http.ResponseWriter, r *http.Request) {
	a.ss.end(w, r)
	http.Redirect(w, r, "/signin?signedout=1", http.StatusSeeOther)
}

// ---- the second factor ----

func (a *app) verifyPage(w http.ResponseWriter, r *http.Request) {
	next := safeNext(r.URL.Query().Get("next"))
	s, st, err := a.state(r)
	switch {
	case err != nil:
		a.serverError(w, r, err)
		return
	case st == anonymous:
		http.Redirect(w, r, "/signin", http.StatusSeeOther)
		return
	case st == signedIn:
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	f, err := a.m.Factors(r.Context(), s.UserID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	ds, err := a.m.Devices(r.Context(), s.UserID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	vv := &verifyView{TOTP: f.TOTP(), RecoveryCodes: f.RecoveryCodes}
	for _, d := range ds {
		vv.Keys = vv.Keys || d.Type == mfa.SecurityKey
	}
	v, err := a.newView(r, &s)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	v.Title, v.Page, v.Next, v.Verify = "Confirm it's you", "verify", next, vv
	a.render(w, r, http.StatusOK, "verify", v)
}

// ---- signed-in pages ----

func (a *app) homePage(w http.ResponseWriter, r *http.Request, v *view) {
	s, _ := a.ss.get(r)
	f, err := a.m.Factors(r.Context(), s.UserID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	hv := &homeView{Factors: f, Factor: factorLabel(s.MFAFactor), At: s.MFAAt}
	if s.MFADevice != "" {
		if d, err := a.m.Device(r.Context(), s.UserID, s.MFADevice); err == nil {
			hv.Device = d.Name
		}
	}
	v.Title, v.Home, v.Notice = "Home", hv, notice(r)
	a.render(w, r, http.StatusOK, "home", v)
}

func (a *app) securityPage(w http.ResponseWriter, r *http.Request, v *view) {
	s, _ := a.ss.get(r)
	ds, err := a.m.Devices(r.Context(), s.UserID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	f, err := a.m.Factors(r.Context(), s.UserID)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	v.Title, v.Notice = "Security credentials", notice(r)
	v.Security = &securityView{Devices: ds, Factors: f, HasCodes: f.RecoveryCodes > 0}
	a.render(w, r, http.StatusOK, "security", v)
}

func (a *app) assignPage(w http.ResponseWriter, r *http.Request, v *view) {
	q := r.URL.Query()
	av := &assignView{Required: q.Get("required") == "1", Type: q.Get("type")}
	v.Title, v.Assign = "Assign MFA device", av
	a.render(w, r, http.StatusOK, "assign", v)
}

// ---- the administrator ----

// adminPage lists every account with its MFA status from mfa's audit
// report (mfa.Manager.Report): what devices it has, whether an
// administrator lacks a security key, unused devices, clone warnings and
// locks. The report streams accounts in user ID order; the page shows
// them in the order they signed up, so it keeps the lines of a page's
// worth of accounts (a real directory would page through both).
func (a *app) adminPage(w http.ResponseWriter, r *http.Request, v *view) {
	accs, err := a.acc.list(r.Context())
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	reports := map[string]*mfa.AccountReport{}
	err = a.m.Report(r.Context(), mfa.ReportOptions{}, func(rep *mfa.AccountReport) error {
		reports[string(rep.UserID)] = rep
		return nil
	})
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	av := &adminView{}
	for _, acc := range accs {
		rep := reports[string(acc.UserID)]
		if rep == nil {
			// Signed up after the report passed its user ID.
			rep = &mfa.AccountReport{UserID: acc.UserID, Name: acc.Name, Created: acc.Created}
		}
		av.Accounts = append(av.Accounts, adminAccount{
			Name: acc.Name, ID: base64.RawURLEncoding.EncodeToString(acc.UserID), Report: rep,
		})
	}
	v.Title, v.AdminList, v.Notice = "Administration", av, notice(r)
	a.render(w, r, http.StatusOK, "admin", v)
}

// adminReport downloads the audit report as CSV (mfa.Manager.WriteReportCSV).
func (a *app) adminReport(w http.ResponseWriter, r *http.Request, v *view) {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="fidokit-mfa-report.csv"`)
	if err := a.m.WriteReportCSV(r.Context(), w, mfa.ReportOptions{}); err != nil {
		// The header is out; the file ends early, and the log says why.
		a.onError(r, err)
	}
}

func (a *app) adminUserPage(w http.ResponseWriter, r *http.Request, v *view) {
	id, err := base64.RawURLEncoding.DecodeString(r.PathValue("user"))
	var acc *account
	if err == nil {
		acc, err = a.acc.byUserID(r.Context(), id)
	}
	if err != nil || acc == nil {
		http.NotFound(w, r)
		return
	}
	ds, err := a.m.Devices(r.Context(), id)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	f, err := a.m.Factors(r.Context(), id)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	evs, err := a.events(r, acc, ds)
	if err != nil {
		a.serverError(w, r, err)
		return
	}
	v.Title, v.Notice, v.UserID = "Devices of "+acc.Name, notice(r), r.PathValue("user")
	v.AdminUser = &adminUserView{Name: acc.Name, Devices: ds, Factors: f, Events: evs}
	a.render(w, r, http.StatusOK, "admin_user", v)
}

// events returns acc's latest events from mfa's event log, newest first,
// with device and actor names.
func (a *app) events(r *http.Request, acc *account, ds []*mfa.Device) ([]adminEvent, error) {
	evs, err := a.m.Events(r.Context(), mfa.EventQuery{UserID: acc.UserID, Newest: true, Limit: adminEventLimit})
	if err != nil {
		return nil, err
	}
	devices := map[string]string{}
	for _, d := range ds {
		devices[d.ID] = d.Name
	}
	actors := map[string]string{string(acc.UserID): acc.Name}
	out := make([]adminEvent, 0, len(evs))
	for _, e := range evs {
		ae := adminEvent{Event: e, Device: devices[e.DeviceID]}
		if ae.Device == "" {
			ae.Device = e.DeviceID // deleted since
		}
		if len(e.ActorID) > 0 {
			name, ok := actors[string(e.ActorID)]
			if !ok {
				other, err := a.acc.byUserID(r.Context(), e.ActorID)
				if err != nil {
					return nil, err
				}
				name = "an unknown account"
				if other != nil {
					name = other.Name
				}
				actors[string(e.ActorID)] = name
			}
			ae.Actor = name
		}
		out = append(out, ae)
	}
	return out, nil
}

// eventLabels are the event types in words.
var eventLabels = map[mfa.EventType]string{
	mfa.EventDeviceEnrolled:         "Device assigned",
	mfa.EventDeviceRenamed:          "Device renamed",
	mfa.EventDeviceDeactivated:      "Device deactivated",
	mfa.EventDeviceReactivated:      "Device reactivated",
	mfa.EventDeviceDeleted:          "Device removed",
	mfa.EventDeviceResynced:         "Device resynchronised",
	mfa.EventSecondFactor:           "Second factor passed",
	mfa.EventSecondFactorFailed:     "Second factor refused",
	mfa.EventRecoveryCodeUsed:       "Recovery code used",
	mfa.EventRecoveryCodesGenerated: "New recovery codes",
	mfa.EventLockout:                "Locked after wrong codes",
	mfa.EventAttemptsReset:          "Lock cleared",
	mfa.EventCloneWarning:           "Security key may be copied",
	mfa.EventPolicyRefused:          "Refused by the MFA policy",
}

func eventLabel(t mfa.EventType) string {
	if l, ok := eventLabels[t]; ok {
		return l
	}
	return string(t)
}

func (a *app) setRequireMFA(w http.ResponseWriter, r *http.Request, v *view) {
	if err := readForm(w, r); err != nil {
		http.Error(w, "The form is not valid.", http.StatusBadRequest)
		return
	}
	value := "off"
	if r.PostForm.Get("require") == "on" {
		value = "on"
	}
	if err := a.acc.setSetting(r.Context(), requireMFASetting, value); err != nil {
		a.serverError(w, r, err)
		return
	}
	http.Redirect(w, r, "/admin?saved=1", http.StatusSeeOther)
}
