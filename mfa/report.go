package mfa

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fidokit/fidokit/webauthn"
)

// Defaults of ReportOptions.
const (
	// DefaultUnusedFor is how long a device may go unused before the
	// report counts it as unused, when ReportOptions.UnusedFor is zero.
	DefaultUnusedFor = 90 * 24 * time.Hour
	// DefaultReportPageSize is how many accounts Report reads from the
	// store at a time when ReportOptions.PageSize is zero.
	DefaultReportPageSize = 500
	// DefaultReportParallel is how many accounts of a page Report reads
	// at once when ReportOptions.Parallel is zero.
	DefaultReportParallel = 4
)

// ReportOptions tune [Manager.Report]. The zero value means the defaults
// documented on each field.
type ReportOptions struct {
	// UnusedFor is how long an active device may go without a sign-in
	// before it counts as unused: its LastUsed (or its Created, if it was
	// never used) is more than UnusedFor before now. Zero means
	// DefaultUnusedFor (90 days); it must not be negative.
	UnusedFor time.Duration
	// PageSize is how many accounts are read from the store at a time;
	// at most PageSize accounts' reports are in memory at once. Zero
	// means DefaultReportPageSize (500).
	PageSize int
	// Parallel is how many accounts of a page are read from the store
	// at once. Zero means DefaultReportParallel (4); 1 reads one at a
	// time.
	Parallel int
}

// AccountReport is one account's line in the audit report (the
// credential report): its second factors and what an administrator
// should look at. It holds no secret: no TOTP seed, no recovery code or
// hash, no key material.
type AccountReport struct {
	// UserID, Name, DisplayName and Created are the account's.
	UserID      []byte
	Name        string
	DisplayName string
	Created     time.Time
	// MFA reports whether the account has an active device
	// ([Factors.Enabled]); recovery codes alone do not count.
	MFA bool
	// SecurityKeys, AuthenticatorApps and HardwareTokens sum up the
	// active devices of each type.
	SecurityKeys, AuthenticatorApps, HardwareTokens DeviceSummary
	// Deactivated counts the deactivated devices of every type.
	Deactivated int
	// Devices lists every device, active and deactivated, oldest first.
	Devices []*ReportDevice
	// RecoveryCodesLeft is how many unused recovery codes the account
	// has; 0 if it has none.
	RecoveryCodesLeft int
	// Administrator reports whether [Config.Roles] gives the account
	// [RoleAdministrator].
	Administrator bool
	// AdministratorWithoutSecurityKey reports an administrator with no
	// active security key: the policy
	// [Policy.AdministratorsNeedSecurityKey] refuses such an account.
	AdministratorWithoutSecurityKey bool
	// UnusedDevices counts the active devices that are unused
	// ([ReportDevice.Unused]).
	UnusedDevices int
	// CloneWarning reports whether any of the account's security keys
	// has a clone warning ([Device.CloneWarning]).
	CloneWarning bool
	// Locked lists the factors that the attempt limit ([Config.Lock])
	// locks now, in the order totp, recovery_code; empty if none.
	Locked []LockedFactor
}

// DeviceSummary sums up an account's active devices of one type.
type DeviceSummary struct {
	// Active counts them.
	Active int
	// LastUsed is the newest last use among them; zero if none was ever
	// used.
	LastUsed time.Time
}

// ReportDevice is one device in an [AccountReport]: a [Device] without
// its credential record.
type ReportDevice struct {
	// ID, Type, Name and Serial are as in [Device].
	ID     string
	Type   DeviceType
	Name   string
	Serial string
	// Created, LastUsed and Deactivated are as in [Device]: LastUsed and
	// Deactivated are zero for never.
	Created, LastUsed, Deactivated time.Time
	// CloneWarning is set on a security key that may have been cloned.
	CloneWarning bool
	// Unused is set on an active device whose LastUsed (or Created, if
	// never used) is more than ReportOptions.UnusedFor before the
	// report's time.
	Unused bool
}

// LockedFactor is a factor that the attempt limit locks.
type LockedFactor struct {
	Factor Factor
	// Failures counts the consecutive wrong codes.
	Failures int
	// Until is when the factor may be tried again.
	Until time.Time
}

// lockableFactors are the factors whose wrong codes the Manager counts.
var lockableFactors = []Factor{FactorTOTP, FactorRecoveryCode}

// Report builds the audit report: it calls each with one account's
// [AccountReport], for every account in the store, in user ID order. It
// reads the accounts a page at a time through [Store.Users], so memory
// stays flat however many accounts there are, and it stops at the first
// error, from the store or from each, and returns it. A report is not a
// snapshot: an account created while it runs is listed or not depending
// on where the cursor is, and each account is read as it is at that
// moment. The report's time ("now" for unused devices and locks) is
// Config.Now when Report starts.
//
// An AccountReport passed to each is each's to keep.
func (m *Manager) Report(ctx context.Context, opts ReportOptions, each func(*AccountReport) error) error {
	if opts.UnusedFor < 0 {
		return fmt.Errorf("%w: ReportOptions.UnusedFor is negative (%v)", ErrInvalidRequest, opts.UnusedFor)
	}
	if opts.UnusedFor == 0 {
		opts.UnusedFor = DefaultUnusedFor
	}
	if opts.PageSize <= 0 {
		opts.PageSize = DefaultReportPageSize
	}
	if opts.Parallel <= 0 {
		opts.Parallel = DefaultReportParallel
	}
	now := m.now()
	var after []byte
	reports := make([]*AccountReport, opts.PageSize)
	errs := make([]error, opts.PageSize)
	for {
		users, err := m.store.Users(ctx, after, opts.PageSize)
		if err != nil {
			return storeErr("listing accounts", err)
		}
		if len(users) == 0 {
			return nil
		}
		if err := m.reportPage(ctx, users, now, opts, reports, errs); err != nil {
			return err
		}
		for i := range users {
			r := reports[i]
			reports[i] = nil
			if err := each(r); err != nil {
				return err
			}
		}
		after = users[len(users)-1].ID
	}
}

// reportPage fills reports[i] for users[i], opts.Parallel at a time, and
// returns the first error in user order.
func (m *Manager) reportPage(ctx context.Context, users []*webauthn.User, now time.Time, opts ReportOptions, reports []*AccountReport, errs []error) error {
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(opts.Parallel, len(users)) {
		wg.Go(func() {
			for i := range next {
				reports[i], errs[i] = m.accountReport(ctx, users[i], now, opts.UnusedFor)
			}
		})
	}
	for i := range users {
		next <- i
	}
	close(next)
	wg.Wait()
	for i := range users {
		if err := errs[i]; err != nil {
			clear(errs)
			return err
		}
	}
	return nil
}

// accountReport reads one account's report.
func (m *Manager) accountReport(ctx context.Context, u *webauthn.User, now time.Time, unusedFor time.Duration) (*AccountReport, error) {
	creds, err := m.store.Credentials(ctx, u.ID)
	if err != nil {
		return nil, storeErr("reading security keys", err)
	}
	otps, err := m.store.OTPDevices(ctx, u.ID)
	if err != nil {
		return nil, storeErr("reading devices", err)
	}
	r := &AccountReport{
		UserID: u.ID, Name: u.Name, DisplayName: u.DisplayName, Created: u.Created.UTC(),
		Devices: make([]*ReportDevice, 0, len(creds)+len(otps)),
	}
	ds := make([]*Device, 0, len(creds)+len(otps))
	for _, c := range creds {
		ds = append(ds, keyDevice(c))
	}
	for _, d := range otps {
		ds = append(ds, otpDevice(d))
	}
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].Created.Before(ds[j].Created) })
	cutoff := now.Add(-unusedFor)
	for _, d := range ds {
		rd := &ReportDevice{
			ID: d.ID, Type: d.Type, Name: d.Name, Serial: d.Serial,
			Created: zutc(d.Created), LastUsed: zutc(d.LastUsed), Deactivated: zutc(d.Deactivated),
			CloneWarning: d.CloneWarning,
		}
		r.Devices = append(r.Devices, rd)
		r.CloneWarning = r.CloneWarning || d.CloneWarning
		if !d.Active() {
			r.Deactivated++
			continue
		}
		last := rd.LastUsed
		if last.IsZero() {
			last = rd.Created
		}
		if last.Before(cutoff) {
			rd.Unused = true
			r.UnusedDevices++
		}
		var s *DeviceSummary
		switch d.Type {
		case SecurityKey:
			s = &r.SecurityKeys
		case AuthenticatorApp:
			s = &r.AuthenticatorApps
		case HardwareToken:
			s = &r.HardwareTokens
		default:
			continue
		}
		s.Active++
		if rd.LastUsed.After(s.LastUsed) {
			s.LastUsed = rd.LastUsed
		}
	}
	f := Factors{SecurityKeys: r.SecurityKeys.Active, Apps: r.AuthenticatorApps.Active, Tokens: r.HardwareTokens.Active}
	r.MFA = f.Enabled()

	set, err := m.store.RecoveryCodes(ctx, u.ID)
	switch {
	case err == nil:
		r.RecoveryCodesLeft = set.Left()
	case !errors.Is(err, webauthn.ErrNotFound):
		return nil, storeErr("reading recovery codes", err)
	}
	if m.roles != nil {
		roles, err := m.roles(ctx, u.ID)
		if err != nil {
			return nil, fmt.Errorf("mfa: reading the roles of an account: %w", err)
		}
		r.Administrator = slices.Contains(roles, RoleAdministrator)
		r.AdministratorWithoutSecurityKey = r.Administrator && f.SecurityKeys == 0
	}
	for _, factor := range lockableFactors {
		a, err := m.store.Attempts(ctx, u.ID, factor)
		if err != nil {
			return nil, storeErr("reading attempts", err)
		}
		if a.LockedUntil.After(now) {
			r.Locked = append(r.Locked, LockedFactor{Factor: factor, Failures: a.Failures, Until: a.LockedUntil.UTC()})
		}
	}
	return r, nil
}

// zutc is t in UTC, the zero time staying zero.
func zutc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC()
}

// reportColumns is the CSV header; see WriteReportCSV.
var reportColumns = []string{
	"user",
	"user_id",
	"user_creation_time",
	"mfa_active",
	"security_keys",
	"security_key_last_used",
	"authenticator_apps",
	"authenticator_app_last_used",
	"hardware_tokens",
	"hardware_token_last_used",
	"deactivated_devices",
	"recovery_codes_left",
	"administrator",
	"administrator_without_security_key",
	"unused_devices",
	"clone_warning",
	"locked_factors",
}

// ReportColumns returns the header of [Manager.WriteReportCSV], in order.
func ReportColumns() []string { return slices.Clone(reportColumns) }

// notApplicable is a time that never happened, in the CSV report.
const notApplicable = "N/A"

// reportTime formats t as RFC 3339 in UTC, to the second.
func reportTime(t time.Time) string {
	if t.IsZero() {
		return notApplicable
	}
	return t.UTC().Format(time.RFC3339)
}

// CSVRecord returns the account's row of [Manager.WriteReportCSV], one
// field per [ReportColumns] column.
func (r *AccountReport) CSVRecord() []string {
	locked := make([]string, len(r.Locked))
	for i, l := range r.Locked {
		locked[i] = string(l.Factor)
	}
	return []string{
		r.Name,
		b64.EncodeToString(r.UserID),
		reportTime(r.Created),
		strconv.FormatBool(r.MFA),
		strconv.Itoa(r.SecurityKeys.Active),
		reportTime(r.SecurityKeys.LastUsed),
		strconv.Itoa(r.AuthenticatorApps.Active),
		reportTime(r.AuthenticatorApps.LastUsed),
		strconv.Itoa(r.HardwareTokens.Active),
		reportTime(r.HardwareTokens.LastUsed),
		strconv.Itoa(r.Deactivated),
		strconv.Itoa(r.RecoveryCodesLeft),
		strconv.FormatBool(r.Administrator),
		strconv.FormatBool(r.AdministratorWithoutSecurityKey),
		strconv.Itoa(r.UnusedDevices),
		strconv.FormatBool(r.CloneWarning),
		strings.Join(locked, ";"),
	}
}

// WriteReportCSV writes the audit report ([Manager.Report]) to w as CSV
// (RFC 4180, by encoding/csv), modelled on AWS IAM's credential report:
// a header line, then one line per account in user ID order. The columns,
// fixed and in this order ([ReportColumns]):
//
//	user                                the account name
//	user_id                             the user handle, unpadded base64url
//	user_creation_time                  when the account was created
//	mfa_active                          true if an active device is enrolled
//	security_keys                       active security keys
//	security_key_last_used              newest last use of one of them
//	authenticator_apps                  active authenticator apps
//	authenticator_app_last_used         newest last use of one of them
//	hardware_tokens                     active hardware TOTP tokens
//	hardware_token_last_used            newest last use of one of them
//	deactivated_devices                 deactivated devices of every type
//	recovery_codes_left                 unused recovery codes (0 if none)
//	administrator                       true if Config.Roles says RoleAdministrator
//	administrator_without_security_key  true for an administrator with no active key
//	unused_devices                      active devices unused for ReportOptions.UnusedFor
//	clone_warning                       true if a security key has a clone warning
//	locked_factors                      the locked factors, ";"-separated ("totp;recovery_code"); empty if none
//
// Times are RFC 3339 in UTC to the second ("2026-12-01T12:00:10Z"), and
// "N/A" for never, as in AWS's report; booleans are "true" or "false".
// Names are written as they are: a spreadsheet may take a name that
// starts with "=", "+", "-" or "@" for a formula, so open the file as
// text. On an error the output ends early, without a marker; w is
// buffered and flushed before WriteReportCSV returns.
func (m *Manager) WriteReportCSV(ctx context.Context, w io.Writer, opts ReportOptions) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(reportColumns); err != nil {
		return fmt.Errorf("mfa: writing the report: %w", err)
	}
	err := m.Report(ctx, opts, func(r *AccountReport) error {
		if err := cw.Write(r.CSVRecord()); err != nil {
			return fmt.Errorf("mfa: writing the report: %w", err)
		}
		return nil
	})
	cw.Flush()
	if err != nil {
		return err
	}
	if err := cw.Error(); err != nil {
		return fmt.Errorf("mfa: writing the report: %w", err)
	}
	return nil
}

// The JSON report's shapes; see WriteReportJSON.
type (
	jsonAccount struct {
		User                            string       `json:"user"`
		UserID                          string       `json:"user_id"`
		DisplayName                     string       `json:"display_name"`
		UserCreationTime                *string      `json:"user_creation_time"`
		MFAActive                       bool         `json:"mfa_active"`
		SecurityKeys                    jsonSummary  `json:"security_keys"`
		AuthenticatorApps               jsonSummary  `json:"authenticator_apps"`
		HardwareTokens                  jsonSummary  `json:"hardware_tokens"`
		DeactivatedDevices              int          `json:"deactivated_devices"`
		RecoveryCodesLeft               int          `json:"recovery_codes_left"`
		Administrator                   bool         `json:"administrator"`
		AdministratorWithoutSecurityKey bool         `json:"administrator_without_security_key"`
		UnusedDevices                   int          `json:"unused_devices"`
		CloneWarning                    bool         `json:"clone_warning"`
		LockedFactors                   []jsonLocked `json:"locked_factors"`
		Devices                         []jsonDevice `json:"devices"`
	}
	jsonSummary struct {
		Active   int     `json:"active"`
		LastUsed *string `json:"last_used"`
	}
	jsonDevice struct {
		ID           string  `json:"id"`
		Type         string  `json:"type"`
		Name         string  `json:"name"`
		Serial       string  `json:"serial,omitempty"`
		Created      *string `json:"created"`
		LastUsed     *string `json:"last_used"`
		Deactivated  *string `json:"deactivated"`
		CloneWarning bool    `json:"clone_warning"`
		Unused       bool    `json:"unused"`
	}
	jsonLocked struct {
		Factor   string  `json:"factor"`
		Failures int     `json:"failures"`
		Until    *string `json:"until"`
	}
)

// jsonTime is t as RFC 3339 in UTC to the second, or nil (null) for
// never.
func jsonTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := t.UTC().Format(time.RFC3339)
	return &s
}

func (r *AccountReport) jsonValue() *jsonAccount {
	j := &jsonAccount{
		User: r.Name, UserID: b64.EncodeToString(r.UserID), DisplayName: r.DisplayName,
		UserCreationTime: jsonTime(r.Created), MFAActive: r.MFA,
		SecurityKeys:       jsonSummary{r.SecurityKeys.Active, jsonTime(r.SecurityKeys.LastUsed)},
		AuthenticatorApps:  jsonSummary{r.AuthenticatorApps.Active, jsonTime(r.AuthenticatorApps.LastUsed)},
		HardwareTokens:     jsonSummary{r.HardwareTokens.Active, jsonTime(r.HardwareTokens.LastUsed)},
		DeactivatedDevices: r.Deactivated, RecoveryCodesLeft: r.RecoveryCodesLeft,
		Administrator: r.Administrator, AdministratorWithoutSecurityKey: r.AdministratorWithoutSecurityKey,
		UnusedDevices: r.UnusedDevices, CloneWarning: r.CloneWarning,
		LockedFactors: make([]jsonLocked, len(r.Locked)),
		Devices:       make([]jsonDevice, len(r.Devices)),
	}
	for i, l := range r.Locked {
		j.LockedFactors[i] = jsonLocked{string(l.Factor), l.Failures, jsonTime(l.Until)}
	}
	for i, d := range r.Devices {
		j.Devices[i] = jsonDevice{
			ID: d.ID, Type: string(d.Type), Name: d.Name, Serial: d.Serial,
			Created: jsonTime(d.Created), LastUsed: jsonTime(d.LastUsed), Deactivated: jsonTime(d.Deactivated),
			CloneWarning: d.CloneWarning, Unused: d.Unused,
		}
	}
	return j
}

// WriteReportJSON writes the audit report ([Manager.Report]) to w as one
// JSON array, streamed an element at a time (one account per line), so
// it is never whole in memory. Each element is an object with the
// [Manager.WriteReportCSV] columns as keys, except that each device
// type's count and last use are an object ("security_keys": {"active": 1,
// "last_used": ...}), locked_factors is an array of {"factor",
// "failures", "until"}, and two keys are added: "display_name" and
// "devices", every device of the account (oldest first) as {"id",
// "type", "name", "serial" (hardware tokens only), "created",
// "last_used", "deactivated", "clone_warning", "unused"}. Times are
// strings in RFC 3339, UTC, to the second, and null for never. On an
// error the array is left unterminated, so that a truncated report does
// not parse.
func (m *Manager) WriteReportJSON(ctx context.Context, w io.Writer, opts ReportOptions) error {
	bw := bufio.NewWriter(w)
	bw.WriteString("[")
	sep := "\n"
	err := m.Report(ctx, opts, func(r *AccountReport) error {
		b, err := json.Marshal(r.jsonValue())
		if err != nil {
			return fmt.Errorf("mfa: writing the report: %w", err)
		}
		bw.WriteString(sep)
		sep = ",\n"
		if _, err := bw.Write(b); err != nil {
			return fmt.Errorf("mfa: writing the report: %w", err)
		}
		return nil
	})
	if err == nil {
		bw.WriteString("\n]\n")
	}
	if ferr := bw.Flush(); err == nil && ferr != nil {
		err = fmt.Errorf("mfa: writing the report: %w", ferr)
	}
	return err
}
