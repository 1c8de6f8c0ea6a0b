package mfa_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/webauthn/webauthntest"
)

// documentedColumns is the CSV header as WriteReportCSV documents it.
var documentedColumns = []string{
	"user", "user_id", "user_creation_time", "mfa_active",
	"security_keys", "security_key_last_used",
	"authenticator_apps", "authenticator_app_last_used",
	"hardware_tokens", "hardware_token_last_used",
	"deactivated_devices", "recovery_codes_left",
	"administrator", "administrator_without_security_key",
	"unused_devices", "clone_warning", "locked_factors",
}

// population is the seeded set of accounts of the report test and what
// their rows must say.
type population struct {
	stack   *stack
	m       *mfa.Manager // with Config.Roles
	ids     map[string][]byte
	want    map[string]map[string]string // by user name: column → value, all but user_id
	secrets []string                     // TOTP seeds and recovery codes handed out
}

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// seedPopulation enrolls, on store, an account of each kind the audit
// must tell apart.
func seedPopulation(t *testing.T, store mfa.Store) *population {
	t.Helper()
	ctx := t.Context()
	c := newClock()
	s := newStack(t, store, c, nil)
	p := &population{stack: s, ids: map[string][]byte{}, want: map[string]map[string]string{}}
	admins := map[string]bool{}
	keys, err := mfa.NewKeyring("test-1", map[string][]byte{"test-1": testKey})
	require.NoError(t, err)
	p.m, err = mfa.New(mfa.Config{
		RelyingParty: s.rp, Keys: keys, Issuer: "fidokit test", Now: c.Now, RecoveryHash: cheapHash,
		Roles: func(ctx context.Context, userID []byte) ([]string, error) {
			if admins[string(userID)] {
				return []string{"auditor", mfa.RoleAdministrator}, nil
			}
			return []string{"staff"}, nil
		},
	})
	require.NoError(t, err)

	add := func(name string, cols map[string]string) []byte {
		u := s.user(t, name)
		p.ids[name] = u.ID
		row := map[string]string{
			"user": name, "user_creation_time": rfc3339(c.Now()), "mfa_active": "false",
			"security_keys": "0", "security_key_last_used": "N/A",
			"authenticator_apps": "0", "authenticator_app_last_used": "N/A",
			"hardware_tokens": "0", "hardware_token_last_used": "N/A",
			"deactivated_devices": "0", "recovery_codes_left": "0",
			"administrator": "false", "administrator_without_security_key": "false",
			"unused_devices": "0", "clone_warning": "false", "locked_factors": "",
		}
		maps.Copy(row, cols)
		p.want[name] = row
		return u.ID
	}
	app := func(userID []byte, name string) (*mfa.Device, *phone) {
		d, ph := s.enrollApp(t, userID, name)
		p.secrets = append(p.secrets, ph.key.Secret())
		return d, ph
	}
	codes := func(userID []byte) *mfa.RecoveryCodeSet {
		set, err := s.m.GenerateRecoveryCodes(ctx, userID)
		require.NoError(t, err)
		for _, code := range set.Codes {
			p.secrets = append(p.secrets, code.Reveal(), strings.ReplaceAll(code.Reveal(), "-", ""))
		}
		return set
	}

	// A key last used 120 days ago: created, used, then time passes.
	created := c.Now()
	id := add("stale-key@example.com", nil)
	oldKey := webauthntest.NewClient(t, webauthntest.Options{})
	s.registerKey(t, oldKey, id, "Old key")
	_, err = s.signInWithKey(ctx, oldKey, id)
	require.NoError(t, err)
	p.want["stale-key@example.com"] = merge(p.want["stale-key@example.com"], map[string]string{
		"user_creation_time": rfc3339(created), "mfa_active": "true",
		"security_keys": "1", "security_key_last_used": rfc3339(created), "unused_devices": "1",
	})
	c.Add(120 * 24 * time.Hour)
	now := c.Now

	add("no-device@example.com", nil)

	id = add("totp-only@example.com", nil)
	_, ph := app(id, "Phone")
	s.nextStep()
	_, err = s.m.VerifyTOTP(ctx, id, ph.code(c.Now()))
	require.NoError(t, err)
	p.want["totp-only@example.com"] = merge(p.want["totp-only@example.com"], map[string]string{
		"mfa_active": "true", "authenticator_apps": "1", "authenticator_app_last_used": rfc3339(now()),
	})

	id = add("keys-only@example.com", nil)
	k1, k2 := webauthntest.NewClient(t, webauthntest.Options{}), webauthntest.NewClient(t, webauthntest.Options{})
	s.registerKey(t, k1, id, "Blue key")
	s.registerKey(t, k2, id, "Spare key")
	s.nextStep()
	_, err = s.signInWithKey(ctx, k2, id)
	require.NoError(t, err)
	p.want["keys-only@example.com"] = merge(p.want["keys-only@example.com"], map[string]string{
		"mfa_active": "true", "security_keys": "2", "security_key_last_used": rfc3339(now()),
	})

	id = add("cloned-key@example.com", nil)
	d := s.registerKey(t, webauthntest.NewClient(t, webauthntest.Options{}), id, "Cloned key")
	require.NoError(t, store.FlagClone(ctx, d.Key.ID))
	p.want["cloned-key@example.com"] = merge(p.want["cloned-key@example.com"], map[string]string{
		"mfa_active": "true", "security_keys": "1", "clone_warning": "true",
	})

	id = add("admin-app@example.com", map[string]string{
		"mfa_active": "true", "authenticator_apps": "1", "administrator": "true", "administrator_without_security_key": "true",
	})
	admins[string(id)] = true
	app(id, "Admin phone")

	id = add("admin-key@example.com", map[string]string{
		"mfa_active": "true", "security_keys": "1", "authenticator_apps": "1", "administrator": "true",
	})
	admins[string(id)] = true
	app(id, "Admin phone")
	s.registerKey(t, webauthntest.NewClient(t, webauthntest.Options{}), id, "Admin key")

	id = add("deactivated@example.com", map[string]string{"deactivated_devices": "1"})
	d, _ = app(id, "Lost phone")
	require.NoError(t, s.m.Deactivate(ctx, id, d.ID))

	id = add("locked@example.com", map[string]string{
		"mfa_active": "true", "authenticator_apps": "1", "locked_factors": "totp",
	})
	_, ph = app(id, "Phone")
	for i := range 5 {
		_, err := s.m.VerifyTOTP(ctx, id, ph.code(c.Now().Add(time.Hour)))
		require.ErrorIs(t, err, mfa.ErrInvalidCode, "wrong code %d", i+1)
	}
	_, err = s.m.VerifyTOTP(ctx, id, ph.code(c.Now()))
	var locked *mfa.LockedError
	require.ErrorAs(t, err, &locked, "after 5 wrong codes")

	id = add("codes-10@example.com", map[string]string{"recovery_codes_left": "10"})
	codes(id)

	id = add("codes-0@example.com", nil)
	set := codes(id)
	for _, code := range set.Codes {
		_, err := s.m.VerifyRecoveryCode(ctx, id, code.Reveal())
		require.NoError(t, err)
	}
	return p
}

func merge(a, b map[string]string) map[string]string {
	out := maps.Clone(a)
	maps.Copy(out, b)
	return out
}

// parseReportCSV checks the header and returns the rows by user name,
// each without user_id (checked against ids).
func parseReportCSV(t *testing.T, out []byte, ids map[string][]byte) map[string]map[string]string {
	t.Helper()
	records, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	require.NoError(t, err, "the CSV report parses")
	require.NotEmpty(t, records)
	assert.Equal(t, documentedColumns, records[0], "the documented header")
	assert.Equal(t, documentedColumns, mfa.ReportColumns(), "ReportColumns")
	rows := map[string]map[string]string{}
	var order [][]byte
	for _, rec := range records[1:] {
		require.Len(t, rec, len(documentedColumns))
		row := map[string]string{}
		for i, col := range documentedColumns {
			row[col] = rec[i]
		}
		name := row["user"]
		require.NotContains(t, rows, name, "one row per account")
		id, err := base64.RawURLEncoding.DecodeString(row["user_id"])
		require.NoError(t, err, "user_id is unpadded base64url")
		assert.Equal(t, ids[name], id, "user_id of %s", name)
		order = append(order, id)
		delete(row, "user_id")
		rows[name] = row
	}
	assert.True(t, slices.IsSortedFunc(order, bytes.Compare), "rows in user ID order")
	return rows
}

func TestReport(t *testing.T) {
	var first map[string]map[string]string
	for _, kind := range storeKinds() {
		t.Run(kind.name, func(t *testing.T) {
			p := seedPopulation(t, kind.new(t))
			ctx := t.Context()

			var csvOut bytes.Buffer
			require.NoError(t, p.m.WriteReportCSV(ctx, &csvOut, mfa.ReportOptions{}))
			rows := parseReportCSV(t, csvOut.Bytes(), p.ids)
			assert.Equal(t, p.want, rows, "the report lists exactly the expected rows")
			if first == nil {
				first = rows
			} else {
				assert.Equal(t, first, rows, "every store gives the same report")
			}

			// Small pages and parallel reads change nothing.
			var paged bytes.Buffer
			require.NoError(t, p.m.WriteReportCSV(ctx, &paged, mfa.ReportOptions{PageSize: 2, Parallel: 3}))
			assert.Equal(t, csvOut.String(), paged.String(), "pages of 2")
			var serial bytes.Buffer
			require.NoError(t, p.m.WriteReportCSV(ctx, &serial, mfa.ReportOptions{PageSize: 1, Parallel: 1}))
			assert.Equal(t, csvOut.String(), serial.String(), "pages of 1, one at a time")

			// The Go values.
			var reports []*mfa.AccountReport
			require.NoError(t, p.m.Report(ctx, mfa.ReportOptions{}, func(r *mfa.AccountReport) error {
				reports = append(reports, r)
				return nil
			}))
			require.Len(t, reports, len(p.want))
			byName := map[string]*mfa.AccountReport{}
			for _, r := range reports {
				byName[r.Name] = r
			}
			stale := byName["stale-key@example.com"]
			require.Len(t, stale.Devices, 1)
			assert.Equal(t, mfa.SecurityKey, stale.Devices[0].Type)
			assert.Equal(t, "Old key", stale.Devices[0].Name)
			assert.True(t, stale.Devices[0].Unused)
			locked := byName["locked@example.com"]
			require.Len(t, locked.Locked, 1)
			assert.Equal(t, mfa.FactorTOTP, locked.Locked[0].Factor)
			assert.Equal(t, 5, locked.Locked[0].Failures)
			assert.True(t, locked.Locked[0].Until.After(p.stack.clock.Now()))
			keysOnly := byName["keys-only@example.com"]
			require.Len(t, keysOnly.Devices, 2)
			assert.Equal(t, []string{"Blue key", "Spare key"}, []string{keysOnly.Devices[0].Name, keysOnly.Devices[1].Name}, "oldest first")
			assert.Equal(t, 1, byName["deactivated@example.com"].Deactivated)
			assert.False(t, byName["deactivated@example.com"].Devices[0].Deactivated.IsZero())

			// JSON: one array, an element per account, in the same order.
			var jsonOut bytes.Buffer
			require.NoError(t, p.m.WriteReportJSON(ctx, &jsonOut, mfa.ReportOptions{}))
			var accounts []map[string]any
			require.NoError(t, json.Unmarshal(jsonOut.Bytes(), &accounts), "the JSON report parses")
			require.Len(t, accounts, len(p.want))
			for i, a := range accounts {
				assert.Equal(t, reports[i].Name, a["user"], "JSON order")
				want := p.want[reports[i].Name]
				assert.Equal(t, want["mfa_active"] == "true", a["mfa_active"], "mfa_active")
				assert.Equal(t, want["administrator_without_security_key"] == "true", a["administrator_without_security_key"])
				assert.Len(t, a["devices"], len(reports[i].Devices), "devices")
			}
			var cloned map[string]any
			for _, a := range accounts {
				if a["user"] == "cloned-key@example.com" {
					cloned = a
				}
			}
			require.NotNil(t, cloned)
			assert.Equal(t, true, cloned["clone_warning"])
			dev := cloned["devices"].([]any)[0].(map[string]any)
			assert.Equal(t, "security_key", dev["type"])
			assert.Equal(t, true, dev["clone_warning"])
			assert.Nil(t, dev["last_used"], "never is null")
			assert.Equal(t, map[string]any{"active": float64(1), "last_used": nil}, cloned["security_keys"])

			// No secret handed out appears in any report.
			require.NotEmpty(t, p.secrets)
			for _, secret := range p.secrets {
				require.NotEmpty(t, secret)
				for _, out := range []*bytes.Buffer{&csvOut, &jsonOut} {
					assert.NotContains(t, strings.ToUpper(out.String()), strings.ToUpper(secret), "a secret in the report")
				}
			}
			// Two minutes on, with a shorter UnusedFor: every active
			// device is unused, and the lock has run out.
			p.stack.clock.Add(2 * time.Minute)
			var short bytes.Buffer
			require.NoError(t, p.m.WriteReportCSV(ctx, &short, mfa.ReportOptions{UnusedFor: time.Minute}))
			srows := parseReportCSV(t, short.Bytes(), p.ids)
			assert.Equal(t, "1", srows["stale-key@example.com"]["unused_devices"])
			assert.Equal(t, "2", srows["admin-key@example.com"]["unused_devices"])
			assert.Equal(t, "2", srows["keys-only@example.com"]["unused_devices"])
			assert.Equal(t, "0", srows["deactivated@example.com"]["unused_devices"], "a deactivated device is not counted")
			assert.Equal(t, "", srows["locked@example.com"]["locked_factors"], "the lock ran out")
		})
	}
}

func TestReportEmptyAndErrors(t *testing.T) {
	s := newStack(t, mfa.NewMemoryStore(), newClock(), nil)
	var out bytes.Buffer
	require.NoError(t, s.m.WriteReportCSV(t.Context(), &out, mfa.ReportOptions{}))
	assert.Equal(t, strings.Join(documentedColumns, ",")+"\n", out.String(), "no accounts: the header only")
	out.Reset()
	require.NoError(t, s.m.WriteReportJSON(t.Context(), &out, mfa.ReportOptions{}))
	var none []any
	require.NoError(t, json.Unmarshal(out.Bytes(), &none))
	assert.NotNil(t, none, "an empty array")
	assert.Empty(t, none)

	err := s.m.Report(t.Context(), mfa.ReportOptions{UnusedFor: -time.Hour}, func(*mfa.AccountReport) error { return nil })
	assert.ErrorIs(t, err, mfa.ErrInvalidRequest, "negative UnusedFor")

	for i := range 5 {
		s.user(t, strings.Repeat("x", i+1)+"@example.com")
	}
	stop := errors.New("stop")
	n := 0
	err = s.m.Report(t.Context(), mfa.ReportOptions{PageSize: 2}, func(*mfa.AccountReport) error {
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	assert.ErrorIs(t, err, stop, "each's error ends the report")
	assert.Equal(t, 3, n)

	errWrite := errors.New("disk full")
	assert.ErrorIs(t, s.m.WriteReportCSV(t.Context(), errWriter{errWrite}, mfa.ReportOptions{}), errWrite)
	assert.ErrorIs(t, s.m.WriteReportJSON(t.Context(), errWriter{errWrite}, mfa.ReportOptions{}), errWrite)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = s.m.WriteReportCSV(ctx, &out, mfa.ReportOptions{})
	assert.ErrorIs(t, err, context.Canceled)
	out.Reset()
	err = s.m.WriteReportJSON(ctx, &out, mfa.ReportOptions{})
	assert.ErrorIs(t, err, context.Canceled)
	assert.Error(t, json.Unmarshal(out.Bytes(), &none), "a report cut short does not parse")
}

// errWriter fails every write.
type errWriter struct{ err error }

func (w errWriter) Write([]byte) (int, error) { return 0, w.err }
