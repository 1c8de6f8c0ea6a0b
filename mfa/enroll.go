package mfa

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"
	qrcode "github.com/skip2/go-qrcode"

	"github.com/fidokit/fidokit/mfa/internal/pskc"
	"github.com/fidokit/fidokit/webauthn"
)

// QRSize is the width and height in pixels of an enrollment's QR code.
const QRSize = 256

// Enrollment is a TOTP device offered to a person and waiting for two
// consecutive codes from it: pass its ID and the codes to
// [Manager.FinishEnrollment] before Expires.
type Enrollment struct {
	// ID names the enrollment; the device keeps it. Not secret.
	ID string
	// Type is AuthenticatorApp or HardwareToken.
	Type DeviceType
	// Name and Serial are what the device will be called.
	Name, Serial string
	// Secret is an app's seed in base32, in groups of four for typing
	// ("show secret key"); zero for a hardware token, whose seed came from
	// its vendor. Shown once: nothing returns it later.
	Secret Secret
	// URI is an app's otpauth://totp/ISSUER:ACCOUNT?secret=...&issuer=...
	// key URI; zero for a hardware token.
	URI Secret
	// QR is a PNG of URI, QRSize pixels square, for the app to scan;
	// nil for a hardware token. It holds the secret: show it, do not
	// keep it.
	QR []byte
	// Digits and Period are the codes' length and time step.
	Digits, Period int
	// Expires is when the enrollment stops being accepted.
	Expires time.Time
}

// BeginApp starts enrolling an authenticator app on the account: a new
// 160-bit secret from Config.Rand, SHA-1, 6 digits, 30 seconds, as every
// app supports. Show the person the QR code (or the secret), then ask for
// two consecutive codes. The account name in the URI is the user's name.
// Errors: ErrInvalidRequest, ErrDeviceLimit, webauthn.ErrUnknownUser.
func (m *Manager) BeginApp(ctx context.Context, userID []byte, name string) (*Enrollment, error) {
	if name == "" {
		name = "Authenticator app"
	}
	u, err := m.begin(ctx, userID, name)
	if err != nil {
		return nil, err
	}
	seed := make([]byte, AppSecretBytes)
	if err := m.random(seed); err != nil {
		return nil, err
	}
	p := otpParams{hash: AppHash, digits: AppDigits, period: AppPeriod}
	key, err := totp.Generate(totp.GenerateOpts{
		Issuer: m.issuer, AccountName: u.Name, Period: AppPeriod,
		Secret: seed, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return nil, fmt.Errorf("mfa: making the key URI: %v", err)
	}
	uri := key.URL()
	qr, err := qrcode.Encode(uri, qrcode.Medium, QRSize)
	if err != nil {
		return nil, fmt.Errorf("mfa: drawing the QR code: %v", err)
	}
	e, err := m.savePending(ctx, userID, AuthenticatorApp, name, "", seed, p)
	if err != nil {
		return nil, err
	}
	e.Secret = Secret{groupSecret(b32.EncodeToString(seed))}
	e.URI = Secret{uri}
	e.QR = qr
	return e, nil
}

// Token is a hardware TOTP token to assign to an account: its serial
// number and its seed, from the vendor's seed file or typed in.
type Token struct {
	// Serial is the number printed on the token. Required.
	Serial string
	// Name is what the person calls it; empty means "Hardware token"
	// and the serial.
	Name string
	// SeedFile is the vendor's PSKC (RFC 6030) document; the token is
	// picked from it by Serial. Set it or Secret.
	SeedFile []byte
	// PreSharedKey decrypts a seed file encrypted with a pre-shared
	// AES key (RFC 6030 §6.1); Password one encrypted with a
	// PBKDF2-derived key (§6.2).
	PreSharedKey, Password []byte
	// Secret is the seed in base32 instead of a seed file (SHA-1,
	// Digits, Period).
	Secret string
	// Digits and Period apply to Secret: zero means 6 and 30.
	Digits, Period int
}

// BeginToken starts assigning a hardware TOTP token to the account: it
// reads the token's seed from its seed file (or Token.Secret), then
// waits for two consecutive codes from the token, which may come from
// anywhere within ResyncWindow steps: a token's clock drifts on the
// shelf, and the drift is recorded. Nothing is stored but the pending
// enrollment, its seed sealed. Errors: ErrInvalidRequest,
// ErrInvalidSecret, ErrNotTOTP, ErrSeedFile..., ErrSerialNotFound,
// ErrDeviceLimit, webauthn.ErrUnknownUser.
func (m *Manager) BeginToken(ctx context.Context, userID []byte, t Token) (*Enrollment, error) {
	if err := checkName("serial number", t.Serial, maxSerialLen, false); err != nil {
		return nil, err
	}
	if t.Name == "" {
		t.Name = "Hardware token " + t.Serial
	}
	var seed []byte
	var p otpParams
	switch {
	case len(t.SeedFile) > 0 && t.Secret != "":
		return nil, fmt.Errorf("%w: give a seed file or a secret, not both", ErrInvalidRequest)
	case len(t.SeedFile) > 0:
		keys, err := pskc.Parse(t.SeedFile, pskc.Decryption{PreSharedKey: t.PreSharedKey, Password: t.Password})
		if errors.Is(err, pskc.ErrNoKeys) {
			return nil, fmt.Errorf("mfa: reading the seed file: it holds no tokens: %w", ErrSerialNotFound)
		}
		if err != nil {
			return nil, fmt.Errorf("mfa: reading the seed file: %w", err)
		}
		k, err := pskc.Find(keys, t.Serial)
		if err != nil {
			return nil, fmt.Errorf("mfa: reading the seed file: %w", err)
		}
		if !k.TOTP() {
			return nil, fmt.Errorf("%w: serial %q is %q", ErrNotTOTP, t.Serial, k.Algorithm)
		}
		if len(k.Secret) < minSecretBytes {
			return nil, fmt.Errorf("%w: %d bits", ErrInvalidSecret, 8*len(k.Secret))
		}
		seed = k.Secret
		p = otpParams{hash: k.Hash, digits: k.Digits, period: k.TimeStep}
		if p.hash == "" {
			p.hash = "SHA1"
		}
		if p.digits == 0 {
			p.digits = AppDigits
		}
		if p.period == 0 {
			p.period = AppPeriod
		}
	case t.Secret != "":
		var err error
		if seed, err = ParseSecret(t.Secret); err != nil {
			return nil, err
		}
		p = otpParams{hash: "SHA1", digits: t.Digits, period: t.Period}
		if p.digits == 0 {
			p.digits = AppDigits
		}
		if p.period == 0 {
			p.period = AppPeriod
		}
	default:
		return nil, fmt.Errorf("%w: a token needs a seed file or a secret", ErrInvalidRequest)
	}
	defer clear(seed)
	if err := p.check(); err != nil {
		return nil, err
	}
	if _, err := m.begin(ctx, userID, t.Name); err != nil {
		return nil, err
	}
	return m.savePending(ctx, userID, HardwareToken, t.Name, t.Serial, seed, p)
}

// begin checks what every enrollment checks first.
func (m *Manager) begin(ctx context.Context, userID []byte, name string) (*webauthn.User, error) {
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	if err := checkName("device name", name, maxNameLen, false); err != nil {
		return nil, err
	}
	u, err := m.rp.User(ctx, userID)
	if err != nil {
		return nil, err
	}
	if m.maxDevis > 0 {
		n, err := m.countDevices(ctx, userID)
		if err != nil {
			return nil, err
		}
		if n >= m.maxDevis {
			return nil, fmt.Errorf("%w (%d)", ErrDeviceLimit, m.maxDevis)
		}
	}
	return u, nil
}

// savePending seals seed and stores the pending enrollment. It first
// removes the enrollments that expired, so that abandoned ones do not pile
// up whether or not the application calls PurgeEnrollments.
func (m *Manager) savePending(ctx context.Context, userID []byte, typ DeviceType, name, serial string, seed []byte, p otpParams) (*Enrollment, error) {
	if _, err := m.store.PurgeOTPEnrollments(ctx, m.now()); err != nil {
		return nil, storeErr("purging expired enrollments", err)
	}
	id := make([]byte, otpIDLen)
	if err := m.random(id); err != nil {
		return nil, err
	}
	sealed, err := m.keys.seal(seed, sealContext(userID, id))
	if err != nil {
		return nil, err
	}
	e := &OTPEnrollment{
		ID: id, UserID: userID, Type: typ, Name: name, Serial: serial, Secret: sealed,
		Hash: p.hash, Digits: p.digits, Period: p.period, Expires: m.now().Add(m.timeout),
	}
	if err := m.store.SaveOTPEnrollment(ctx, e); err != nil {
		return nil, storeErr("saving enrollment", err)
	}
	return &Enrollment{
		ID: otpDeviceID(id), Type: typ, Name: name, Serial: serial,
		Digits: p.digits, Period: p.period, Expires: e.Expires,
	}, nil
}

// FinishEnrollment completes a TOTP enrollment with two consecutive codes
// from the device, in the order it showed them: that proves the person
// holds the secret and that the device's clock is right (an app's second
// code must be the current one, within SignInWindow; a hardware token's
// within ResyncWindow, its drift recorded). Neither code can then sign
// in. A wrong pair leaves the enrollment open until it expires, so the
// person can try again. Errors: ErrMalformedCode, ErrInvalidCode,
// ErrNotConsecutive, ErrUnknownEnrollment, ErrEnrollmentExpired,
// ErrDeviceLimit, ErrSerialTaken, ErrSealed.
func (m *Manager) FinishEnrollment(ctx context.Context, userID []byte, enrollmentID, code1, code2 string) (*Device, error) {
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	key, id, err := parseDeviceID(enrollmentID)
	if err != nil || key {
		return nil, ErrUnknownEnrollment
	}
	e, err := m.store.OTPEnrollment(ctx, userID, id)
	if errors.Is(err, webauthn.ErrNotFound) {
		return nil, ErrUnknownEnrollment
	}
	if err != nil {
		return nil, storeErr("reading enrollment", err)
	}
	now := m.now()
	if !now.Before(e.Expires) {
		return nil, ErrEnrollmentExpired
	}
	p := otpParams{hash: e.Hash, digits: e.Digits, period: e.Period}
	c1, err := parseCode(code1, p.digits)
	if err != nil {
		return nil, err
	}
	c2, err := parseCode(code2, p.digits)
	if err != nil {
		return nil, err
	}
	if c1 == c2 {
		return nil, ErrNotConsecutive
	}
	g, err := m.openGenerator(e.Secret, userID, id, p)
	if err != nil {
		return nil, err
	}
	window := int64(SignInWindow)
	if e.Type == HardwareToken {
		window = ResyncWindow
	}
	t := p.step(now)
	// The second code is the current one, give or take the window.
	s, err := g.matchPair(c1, c2, t-window-1, t+window)
	if err != nil {
		return nil, err
	}
	d := &OTPDevice{
		ID: id, UserID: userID, Type: e.Type, Name: e.Name, Serial: e.Serial, Secret: e.Secret,
		Hash: e.Hash, Digits: e.Digits, Period: e.Period,
		LastStep: s + 1, Drift: int(s + 1 - t), Created: now,
	}
	if e.Type == AuthenticatorApp {
		d.Drift = 0
	}
	ctx, ev, err := m.withEvent(ctx, OpCompleteOTPEnrollment, EventDeviceEnrolled, userID, now, func(ev *Event) {
		ev.DeviceID, ev.Detail = otpDeviceID(id), string(e.Type)
	})
	if err != nil {
		return nil, err
	}
	err = m.store.CompleteOTPEnrollment(ctx, d, m.maxDevis)
	switch {
	case errors.Is(err, webauthn.ErrNotFound):
		return nil, ErrUnknownEnrollment
	case errors.Is(err, webauthn.ErrExists) && d.Serial != "" && !errors.Is(err, ErrEventExists):
		return nil, ErrSerialTaken
	case err != nil:
		return nil, storeErr("storing device", err)
	}
	m.emit(ctx, ev)
	return otpDevice(d), nil
}

// Resync measures a TOTP device's clock again from two consecutive codes
// within ResyncWindow steps of the server's clock, and records the drift
// so that later codes are looked for around it. Use it when a hardware
// token's codes stop working. Wrong codes count towards the attempt
// limit. Errors: ErrMalformedCode, ErrInvalidCode, ErrNotConsecutive,
// ErrCodeReused, ErrUnknownDevice, webauthn.ErrInactive, *LockedError.
func (m *Manager) Resync(ctx context.Context, userID []byte, deviceID, code1, code2 string) (*Device, error) {
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	key, id, err := parseDeviceID(deviceID)
	if err != nil {
		return nil, err
	}
	if key {
		return nil, fmt.Errorf("%w: a security key has no clock to resync", ErrInvalidRequest)
	}
	now := m.now()
	attempts, err := m.checkLock(ctx, userID, FactorTOTP, now)
	if err != nil {
		return nil, err
	}
	d, err := m.store.OTPDevice(ctx, id)
	if errors.Is(err, webauthn.ErrNotFound) || (err == nil && string(d.UserID) != string(userID)) {
		return nil, ErrUnknownDevice
	}
	if err != nil {
		return nil, storeErr("reading device", err)
	}
	if !d.Active() {
		return nil, fmt.Errorf("mfa: resyncing: %w", webauthn.ErrInactive)
	}
	p := otpParams{hash: d.Hash, digits: d.Digits, period: d.Period}
	c1, err := parseCode(code1, p.digits)
	if err != nil {
		return nil, err
	}
	c2, err := parseCode(code2, p.digits)
	if err != nil {
		return nil, err
	}
	if c1 == c2 {
		return nil, ErrNotConsecutive
	}
	g, err := m.openGenerator(d.Secret, userID, id, p)
	if err != nil {
		return nil, err
	}
	t := p.step(now)
	s, err := g.matchPair(c1, c2, t-ResyncWindow-1, t+ResyncWindow)
	if err != nil {
		return nil, m.fail(ctx, userID, deviceID, FactorTOTP, now, err)
	}
	if s+1 <= d.LastStep {
		return nil, ErrCodeReused
	}
	d.Drift, d.LastStep = int(s+1-t), s+1
	ectx, ev, err := m.withEvent(ctx, OpResyncOTPDevice, EventDeviceResynced, userID, now, func(ev *Event) {
		ev.DeviceID, ev.Factor, ev.Detail = deviceID, FactorTOTP, strconv.Itoa(d.Drift)
	})
	if err != nil {
		return nil, err
	}
	if err := m.store.ResyncOTPDevice(ectx, userID, id, d.Drift, d.LastStep); err != nil {
		return nil, storeErr("resyncing", err)
	}
	m.emit(ctx, ev)
	if err := m.succeed(ctx, userID, FactorTOTP, attempts); err != nil {
		return nil, err
	}
	return otpDevice(d), nil
}

// openGenerator opens a sealed seed for one verification.
func (m *Manager) openGenerator(s Sealed, userID, id []byte, p otpParams) (*generator, error) {
	seed, err := m.keys.open(s, sealContext(userID, id))
	if err != nil {
		return nil, err
	}
	defer clear(seed)
	return newGenerator(seed, p)
}

// PurgeEnrollments removes TOTP enrollments that expired, which
// [Manager.FinishEnrollment] would refuse anyway. Every Begin does it
// too; call it yourself only to clear them sooner.
func (m *Manager) PurgeEnrollments(ctx context.Context) (int, error) {
	n, err := m.store.PurgeOTPEnrollments(ctx, m.now())
	return n, storeErr("purging enrollments", err)
}

// BeginKeyRegistration starts registering a security key on the account
// through the relying party ([webauthn.RelyingParty.BeginRegistration]),
// after checking the device limit across every type. Finish it with
// [Manager.FinishKeyRegistration].
func (m *Manager) BeginKeyRegistration(ctx context.Context, userID []byte) (*webauthn.Begin, error) {
	if err := checkUserID(userID); err != nil {
		return nil, err
	}
	if m.maxDevis > 0 {
		n, err := m.countDevices(ctx, userID)
		if err != nil {
			return nil, err
		}
		if n >= m.maxDevis {
			return nil, fmt.Errorf("%w (%d)", ErrDeviceLimit, m.maxDevis)
		}
	}
	return m.rp.BeginRegistration(ctx, userID)
}

// FinishKeyRegistration verifies the key's registration response and
// stores it as a device ([webauthn.RelyingParty.FinishRegistration]; the
// store checks the shared device limit in the same transaction).
func (m *Manager) FinishKeyRegistration(ctx context.Context, challengeID string, response []byte, name string) (*Device, error) {
	// The account and the key are the relying party's to find out: the
	// store fills them in (KeyEvents).
	ectx, ev, err := m.withEvent(ctx, OpAddCredential, EventDeviceEnrolled, nil, m.now(), func(ev *Event) {
		ev.Detail = string(SecurityKey)
	})
	if err != nil {
		return nil, err
	}
	c, err := m.rp.FinishRegistration(ectx, challengeID, response, name)
	if err != nil {
		if errors.Is(err, webauthn.ErrLimit) {
			return nil, fmt.Errorf("%w: %w", ErrDeviceLimit, err)
		}
		return nil, err
	}
	fillKeyEvent(&ev, c.UserID, c.ID)
	m.emit(ctx, ev)
	return keyDevice(c), nil
}
