// Package mfa is account MFA for a Go service: the devices an account
// holds, of every type, and sign-in with any of them as the second factor.
// It builds on package webauthn, whose credentials are the security-key
// devices, and keeps everything in the same database.
//
// An account holds up to webauthn.Config.MaxCredentials devices (8 by
// default, as AWS IAM allows), in any mix of
//
//   - [SecurityKey]: a FIDO2/U2F key, registered through the relying party;
//   - [AuthenticatorApp]: a TOTP app on a phone (RFC 6238), enrolled from a
//     QR code and two consecutive codes;
//   - [HardwareToken]: a TOTP key fob, assigned by serial number from the
//     vendor's seed file (PSKC, RFC 6030) or its secret, and two codes;
//
// plus a set of ten recovery codes (NIST SP 800-63B look-up secrets) for
// when every device is lost.
//
// Start with [New], on a relying party whose store also implements
// [Store] (package github.com/fidokit/fidokit/store/sqlite or
// store/postgres, or [NewMemoryStore] in tests):
//
//	store, err := sqlite.Open(ctx, "/var/lib/myapp/auth.db")
//	rp, err := webauthn.New(webauthn.Config{RPID: "example.com", Origins: origins, Store: store})
//	keys, err := mfa.NewKeyring("2026-12", map[string][]byte{"2026-12": key32})
//	m, err := mfa.New(mfa.Config{RelyingParty: rp, Keys: keys, Issuer: "Example"})
//
// # Enrollment
//
// The guides' path, one call per step:
//
//	e, err := m.BeginApp(ctx, user.ID, "Phone")           // e.QR (PNG), e.Secret, e.URI: show once
//	d, err := m.FinishEnrollment(ctx, user.ID, e.ID, code1, code2)
//	e, err = m.BeginToken(ctx, user.ID, mfa.Token{Serial: "GALT1234", SeedFile: pskc, PreSharedKey: psk})
//	d, err = m.FinishEnrollment(ctx, user.ID, e.ID, code1, code2)
//	b, err := m.BeginKeyRegistration(ctx, user.ID)        // b.Options to the browser
//	d, err = m.FinishKeyRegistration(ctx, b.ChallengeID, response, "Blue key")
//	set, err := m.GenerateRecoveryCodes(ctx, user.ID)     // set.Codes: show once
//
// An enrollment completes only with two consecutive codes, which proves
// the person holds the secret and that the device's clock is right; the
// pending secret expires after [Config.EnrollmentTimeout] (10 minutes).
// [Manager.Devices] lists every device; [Manager.Rename],
// [Manager.Deactivate], [Manager.Reactivate] and [Manager.Delete] work
// the same for every type.
//
// # Sign-in
//
// After the application's own first factor (a password, say),
// [Manager.Factors] says what the account can use, and one of
// [Manager.VerifyTOTP], [Manager.VerifyRecoveryCode] or
// [Manager.BeginSecurityKey] / [Manager.FinishSecurityKey] verifies it.
// The [Verification] names the factor, the device and the time: record it
// in the session, and ask again when a sensitive action needs a fresh one.
//
// A TOTP code passes within one time step of the server's clock (plus the
// device's drift, which [Manager.Resync] measures) and only once: the
// store advances the device's last step with a compare-and-set, so of two
// servers racing one code exactly one accepts it. A recovery code works
// once, by compare-and-set too, and the result says how many are left.
// Wrong TOTP and recovery codes are counted per account and factor in the
// store: after [Config.Lock]'s limit (5) in a row, the factor is refused
// with a [*LockedError] for a minute, then two, four, ... up to a day.
//
// # Requiring MFA
//
// [Manager.Require] is net/http middleware that lets a request through
// only when the application's session (read through a [SessionFunc]; no
// session library is imposed) says a second factor passed, optionally
// within [Policy.MaxAge] (step-up), optionally with a security key, and
// optionally only for some roles ([Config.Roles] says who is an
// administrator; [Policy.AdministratorsNeedSecurityKey] holds them to a
// key). A refusal is a JSON 401 or 403 with a stable code (mfa_required,
// mfa_stale, mfa_not_phishing_resistant, mfa_enrollment_required,
// mfa_security_key_required) and the factors that would satisfy it, so
// that a page can start the right ceremony and retry:
//
//	strict := mfa.Policy{MaxAge: 15 * time.Minute, PhishingResistant: true}
//	mux.Handle("/admin/", m.Require(strict, session, nil)(adminPages))
//
// [Manager.Check] is the same decision without HTTP.
//
// # A lost device
//
// An administrator deactivates (or deletes) the lost device with
// [Manager.Deactivate]; it can no longer be used, and the person enrolls a
// new one after signing in with another device or a recovery code. When
// the lost device was the account's only one and no recovery code is
// left, nothing in this package lets the person back in: account recovery
// is then an identity check by people, as the guides say of a root
// account, followed by an administrator deleting the device. Keep that
// path rare by asking everyone to register a backup device.
//
// # Audit
//
// [Manager.Report] is the audit report (AWS calls its own the credential
// report): for every account, whether MFA is on, its devices by type
// with their created and last-used times, the recovery codes left,
// whether it is an administrator ([Config.Roles]) without an active
// security key, its devices unused for [ReportOptions.UnusedFor] (90
// days), keys with a clone warning, and the factors the attempt limit
// locks now. It pages through the store ([Store.Users], a cursor in
// user ID order, one indexed range scan on SQLite and PostgreSQL), so
// memory stays flat for any number of accounts, and hands each
// [AccountReport] to a callback. [Manager.WriteReportCSV] writes it as
// CSV with fixed column names ([ReportColumns]; times RFC 3339 UTC, "N/A"
// for never) and [Manager.WriteReportJSON] as one JSON array streamed an
// account at a time (null for never):
//
//	w.Header().Set("Content-Type", "text/csv")
//	err := m.WriteReportCSV(ctx, w, mfa.ReportOptions{UnusedFor: 90 * 24 * time.Hour})
//
// No report holds a secret: no TOTP seed, recovery code or hash, nor any
// key material. [Manager.Accounts] is one page of it, and
// [Manager.Account] one account's line, for an administrator's page.
//
// # Events
//
// Every security-relevant change and attempt through a Manager is an
// [Event] of the log (AWS keeps its own in CloudTrail): a device
// enrolled, renamed, deactivated, reactivated, deleted or resynced; a
// second factor that passed or was refused, with the factor and the
// device; a recovery code used; new recovery codes; a lockout; an
// administrator's reset of the attempt count; a clone warning; a policy
// refusal of [Manager.Require]. Each names the account, the device, the
// actor and, from [WithActor] or the HTTP handler, the remote address and
// the User-Agent. The store appends an event in the same transaction as
// the change it records, so the log never lacks a change that was made
// nor holds one that rolled back, across any number of servers.
// [Manager.Events] queries it by account and time range with a cursor;
// Config.OnEvent hears each event once it is committed, for example to
// log it with log/slog:
//
//	m, err := mfa.New(mfa.Config{RelyingParty: rp, Keys: keys, OnEvent: mfa.LogEvents(slog.Default())})
//
// No event holds a secret: no code, seed, PIN or recovery code. Events are
// recorded for the operations of a Manager; a change made through the
// relying party directly (webauthn's own handlers) has none. Prune old
// ones with [Manager.PurgeEvents].
//
// # Secrets
//
// TOTP seeds are stored only sealed with AES-256-GCM under a [Keyring]
// key the application supplies, bound to their record, with the key's ID
// beside them so that [Manager.RotateKeys] can move them to a new key.
// Recovery codes are stored only as salted argon2id hashes
// ([DefaultRecoveryHash]). A seed or code is shown once, as a [Secret],
// which prints, logs and marshals as "[redacted]"; no error message
// contains one.
//
// # HTTP
//
// [Manager.Handler] is a JSON API for pages, in the style of
// webauthn's: enrollment, the device list, recovery codes, second-factor
// verification, and administrator routes behind an authorization hook:
// the accounts with their MFA status, one account's devices and events,
// deactivating or deleting a lost device, and unlocking a locked factor.
package mfa
