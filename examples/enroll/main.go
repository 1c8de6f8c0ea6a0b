// Command enroll walks a person through protecting an account with MFA,
// as the guides do: choose a device type, set it up (a security key with a
// PIN, an authenticator app from a QR code, or a hardware TOTP token from
// its seed file), keep recovery codes, add a backup device, and prove each
// new device works by signing in with it as the second factor. It runs on
// fidokit's own relying party (package webauthn) and account MFA (package
// mfa) with a SQLite file.
//
//	go run ./examples/enroll                      # the guide, with virtual devices when no key is attached
//	go run ./examples/enroll -type app            # an authenticator app
//	go run ./examples/enroll -type token          # a hardware TOTP token
//	go run ./examples/enroll -device /dev/hidraw3 -user alice@example.com -db ./auth.db
//	go run ./examples/enroll -json                # the summary as one JSON object on stdout
//
// With no key attached, or with -virtual, it uses virtual devices and
// plays the person: a virtual key that touches itself, a phone that reads
// the QR code's URI, a token whose seed file it writes. So the command
// runs unattended on any machine and exits 0.
//
// The PIN of a real key is never taken from the command line: it is typed
// on the terminal without echo, read from -pin-file, or taken from the
// FIDOKIT_PIN environment variable. A virtual key keeps a demo PIN.
//
// Exit codes: 0 done, 1 a step failed, 2 bad usage.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/net/publicsuffix"

	"github.com/fidokit/fidokit/mfa"
	"github.com/fidokit/fidokit/store/sqlite"
	"github.com/fidokit/fidokit/webauthn"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Exit codes.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

type options struct {
	kind       string
	backup     string
	virtual    bool
	device     string
	state      string
	rpID       string
	userName   string
	db         string
	recovery   string
	pinFile    string
	noPIN      bool
	serial     string
	seedFile   string
	pskFile    string
	secretFile string
	timeout    time.Duration
	json       bool
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	fs := flag.NewFlagSet("enroll", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := &options{}
	fs.StringVar(&o.kind, "type", "", "device type: key (security key), app (authenticator app) or token (hardware TOTP token); default: ask on a terminal, else key")
	fs.StringVar(&o.backup, "backup", "", "backup device to add after the first: key, app, token or none; default: ask on a terminal, a second virtual key with virtual devices, else none")
	fs.BoolVar(&o.virtual, "virtual", false, "use virtual devices even when a real key is attached")
	fs.StringVar(&o.device, "device", "", "path of the security key to use (default: the first attached key)")
	fs.StringVar(&o.state, "state", "", "virtual key state file (default: a temporary file)")
	fs.StringVar(&o.rpID, "rp", "example.com", "relying party ID: the domain the account belongs to")
	fs.StringVar(&o.userName, "user", "alice@example.com", "account name")
	fs.StringVar(&o.db, "db", "", "SQLite file for accounts and devices (default: a new temporary file)")
	fs.StringVar(&o.recovery, "recovery-codes", "", "file to write the recovery codes to, created with mode 0600 (default: recovery-codes.txt beside the database)")
	fs.StringVar(&o.pinFile, "pin-file", "", "file holding the security key's PIN (default: $FIDOKIT_PIN, else ask on the terminal)")
	fs.BoolVar(&o.noPIN, "no-pin", false, "do not set a PIN on a key that has none")
	fs.StringVar(&o.serial, "serial", "", "hardware token: the serial number printed on it")
	fs.StringVar(&o.seedFile, "seed-file", "", "hardware token: the vendor's seed file (PSKC, RFC 6030)")
	fs.StringVar(&o.pskFile, "psk-file", "", "hardware token: file holding the seed file's pre-shared key in hex, if it is encrypted")
	fs.StringVar(&o.secretFile, "secret-file", "", "hardware token: file holding its base32 secret, instead of a seed file")
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "how long to wait for each touch")
	fs.BoolVar(&o.json, "json", false, "print the summary as one JSON object on stdout (progress goes to stderr)")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "Usage: enroll [flags]\n\nWalks through protecting an account with MFA on fidokit's relying party.\n\nFlags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() != 0 {
		return nil, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	for _, k := range []struct{ flag, v string }{{"-type", o.kind}, {"-backup", o.backup}} {
		switch k.v {
		case "", "key", "app", "token", "none":
		default:
			return nil, fmt.Errorf("%s %q: want key, app or token", k.flag, k.v)
		}
	}
	if o.kind == "none" {
		return nil, errors.New("-type none: the first device must be key, app or token")
	}
	if err := checkRPID(o.rpID); err != nil {
		return nil, err
	}
	if strings.TrimSpace(o.userName) == "" || len(o.userName) > 256 {
		return nil, fmt.Errorf("-user %q: want an account name of 1 to 256 bytes", o.userName)
	}
	return o, nil
}

// checkRPID refuses what no relying party can use as its ID: a URL, a
// host with a port, a public suffix (a key would scope a credential to
// all of "co.uk"), or anything the relying party itself refuses.
func checkRPID(id string) error {
	if strings.ContainsAny(id, "/:@?#") || strings.TrimSpace(id) != id || id == "" {
		return fmt.Errorf("-rp %q: want a domain such as example.com, without scheme, port or path", id)
	}
	if id != "localhost" {
		if suffix, icann := publicsuffix.PublicSuffix(id); icann && suffix == id || !strings.Contains(id, ".") {
			return fmt.Errorf("-rp %q: a public suffix cannot be a relying party ID; use a domain you own, such as example.%s", id, id)
		}
	}
	if _, err := webauthn.New(webauthn.Config{RPID: id, Origins: []string{"https://" + id}, Store: webauthn.NewMemoryStore()}); err != nil {
		return fmt.Errorf("-rp %q: %v", id, err)
	}
	return nil
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintln(stderr, "enroll:", err)
		return exitUsage
	}
	progress := stdout
	if o.json {
		progress = stderr
	}
	g := &guide{o: o, out: progress, term: newTerminal(stdin, progress)}
	sum, err := g.walk(ctx)
	if err != nil {
		fmt.Fprintln(stderr, "enroll:", err)
		return exitFail
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(sum); err != nil {
			fmt.Fprintln(stderr, "enroll:", err)
			return exitFail
		}
	}
	return exitOK
}

// guide is one run through the steps.
type guide struct {
	o    *options
	out  io.Writer
	term *terminal
	// virtual is set when there is no real key (or -virtual): every
	// device is then virtual and the guide plays the person.
	virtual bool
	tmp     string
	m       *mfa.Manager
	rp      *webauthn.RelyingParty
	user    *webauthn.User
	added   []*added
	keys    keySet
}

// added is a device this run enrolled, with what proves it at sign-in.
type added struct {
	dev    *mfa.Device
	signIn func(ctx context.Context) (*mfa.Verification, error)
}

func (g *guide) say(format string, a ...any) { fmt.Fprintf(g.out, format+"\n", a...) }

func (g *guide) step(n int, format string, a ...any) {
	g.say("Step %d/7  %s", n, fmt.Sprintf(format, a...))
}

func (g *guide) walk(ctx context.Context) (*summary, error) {
	defer g.keys.closeAll()

	g.step(1, "Checking the account %s on %s", g.o.userName, g.o.rpID)
	if err := g.open(ctx); err != nil {
		return nil, err
	}

	kind, err := g.chooseType(g.o.kind, "Which device protects the account?", false)
	if err != nil {
		return nil, err
	}
	g.step(2, "Device type: %s", kindName[kind])

	g.step(3, "Setting up the %s", kindName[kind])
	if err := g.enroll(ctx, kind); err != nil {
		return nil, err
	}

	g.step(4, "Recovery codes")
	file, err := g.recoveryCodes(ctx)
	if err != nil {
		return nil, err
	}

	backup, err := g.chooseBackup()
	if err != nil {
		return nil, err
	}
	if backup == "none" {
		g.step(5, "Backup device: none. Add one later: with only one device, losing it leaves only the recovery codes.")
	} else {
		g.step(5, "Adding a backup device: %s", kindName[backup])
		if err := g.enroll(ctx, backup); err != nil {
			return nil, err
		}
	}

	g.step(6, "Testing a sign-in with each new device as the second factor")
	var tests []signInJSON
	for _, a := range g.added {
		v, err := a.signIn(ctx)
		if err != nil {
			return nil, fmt.Errorf("signing in with %s %q: %w", kindName[kindOf(a.dev.Type)], a.dev.Name, err)
		}
		g.say("          Signed in with %s %q (%s)", kindName[kindOf(a.dev.Type)], a.dev.Name, v.Factor)
		tests = append(tests, signInJSON{Device: a.dev.ID, Factor: string(v.Factor), At: v.At.UTC()})
	}

	g.step(7, "Summary")
	return g.summarize(ctx, file, tests)
}

// open validates the account and opens the database, before any device
// is touched.
func (g *guide) open(ctx context.Context) error {
	dbPath := g.o.db
	if dbPath == "" {
		d, err := os.MkdirTemp("", "fidokit-enroll-")
		if err != nil {
			return err
		}
		g.tmp = d
		dbPath = filepath.Join(d, "fidokit.db")
	}
	if g.o.recovery == "" {
		g.o.recovery = filepath.Join(filepath.Dir(dbPath), "recovery-codes.txt")
	}
	g.o.db = dbPath
	// Refuse now, not after a key got a PIN, to overwrite codes kept
	// from an earlier run.
	if _, err := os.Stat(g.o.recovery); err == nil {
		return fmt.Errorf("recovery codes: %s exists; move it away or pass -recovery-codes", g.o.recovery)
	}
	store, err := sqlite.Open(ctx, dbPath)
	if err != nil {
		return err
	}
	g.keys.onClose(func() { store.Close() })
	g.say("          Accounts and devices in %s", dbPath)
	g.rp, err = webauthn.New(webauthn.Config{
		RPID: g.o.rpID, RPName: g.o.rpID, Origins: []string{"https://" + g.o.rpID}, Store: store,
		// A key with a PIN verifies the person; one without still
		// proves possession with a touch.
		Policy: webauthn.Policy{UserVerification: webauthn.Preferred},
	})
	if err != nil {
		return fmt.Errorf("setting up the relying party: %w", err)
	}
	keys, err := demoKeyring(dbPath)
	if err != nil {
		return err
	}
	g.m, err = mfa.New(mfa.Config{RelyingParty: g.rp, Keys: keys, Issuer: g.o.rpID})
	if err != nil {
		return err
	}
	g.user, err = g.rp.UserByName(ctx, g.o.userName)
	if errors.Is(err, webauthn.ErrNotFound) {
		// The guide's first factor, a password, is the service's own
		// business; here the account simply exists.
		g.user, err = g.rp.CreateUser(ctx, g.o.userName, "")
	}
	if err != nil {
		return fmt.Errorf("reading the account: %w", err)
	}
	if g.o.device == "" && !g.o.virtual {
		attached, err := attachedKeys(ctx)
		if err != nil {
			return err
		}
		g.virtual = len(attached) == 0
	} else {
		g.virtual = g.o.virtual
	}
	if g.virtual {
		g.say("          No security key is attached (or -virtual): using virtual devices, and playing the person.")
	}
	return nil
}

// demoKeyring is the key that seals TOTP seeds. A service takes it from
// its secrets manager; this command keeps one in a file beside the
// database, readable only by its owner.
func demoKeyring(dbPath string) (*mfa.Keyring, error) {
	path := dbPath + ".seal-key"
	key, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		key = make([]byte, 32)
		if _, err := io.ReadFull(randReader, key); err != nil {
			return nil, err
		}
		err = os.WriteFile(path, key, 0o600)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the seal key %s: %w", path, err)
	}
	return mfa.NewKeyring("local", map[string][]byte{"local": key})
}

var kindName = map[string]string{"key": "security key", "app": "authenticator app", "token": "hardware TOTP token"}

func kindOf(t mfa.DeviceType) string {
	switch t {
	case mfa.AuthenticatorApp:
		return "app"
	case mfa.HardwareToken:
		return "token"
	}
	return "key"
}

// chooseType returns -type, or asks on a terminal, or picks a key.
func (g *guide) chooseType(flagValue, question string, withNone bool) (string, error) {
	if flagValue != "" {
		return flagValue, nil
	}
	if !g.term.interactive() {
		return "key", nil
	}
	choices := []string{"key", "app", "token"}
	if withNone {
		choices = append(choices, "none")
	}
	g.say("%s", question)
	for i, c := range choices {
		name := kindName[c]
		if c == "none" {
			name = "no backup now"
		}
		g.say("  %d) %s", i+1, name)
	}
	for {
		line, err := g.term.readLine("Choose 1-" + fmt.Sprint(len(choices)) + ": ")
		if err != nil {
			return "", err
		}
		for i, c := range choices {
			if line == fmt.Sprint(i+1) || line == c {
				return c, nil
			}
		}
		g.say("Type a number from the list.")
	}
}

func (g *guide) chooseBackup() (string, error) {
	if g.o.backup != "" {
		return g.o.backup, nil
	}
	if g.term.interactive() {
		return g.chooseType("", "Add a backup device, so that losing one does not lock you out?", true)
	}
	if g.virtual {
		return "key", nil
	}
	return "none", nil
}

func (g *guide) enroll(ctx context.Context, kind string) error {
	switch kind {
	case "key":
		return g.enrollKey(ctx)
	case "app":
		return g.enrollApp(ctx)
	default:
		return g.enrollToken(ctx)
	}
}

// recoveryCodes hands out a new set: printed once and written to a file
// only the owner can read, never overwriting one.
func (g *guide) recoveryCodes(ctx context.Context) (string, error) {
	f, err := os.OpenFile(g.o.recovery, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return "", fmt.Errorf("recovery codes: %s exists; move it away or pass -recovery-codes", g.o.recovery)
	}
	if err != nil {
		return "", fmt.Errorf("recovery codes: %w", err)
	}
	defer f.Close()
	set, err := g.m.GenerateRecoveryCodes(ctx, g.user.ID)
	if err != nil {
		return "", err
	}
	w := bufio.NewWriter(f)
	fmt.Fprintf(w, "Recovery codes for %s on %s, made %s.\nEach works once, in place of a device. Keep them offline.\n\n", g.o.userName, g.o.rpID, set.Created.UTC().Format(time.RFC3339))
	g.say("          Keep these somewhere safe, offline. Each works once if you lose your devices;")
	g.say("          they are shown only now and stored only as hashes.")
	for _, c := range set.Codes {
		g.say("            %s", c.Reveal())
		fmt.Fprintln(w, c.Reveal())
	}
	if err := w.Flush(); err != nil {
		return "", fmt.Errorf("recovery codes: writing %s: %w", g.o.recovery, err)
	}
	g.say("          Also written to %s (mode 0600).", g.o.recovery)
	return g.o.recovery, nil
}

// summary is what -json prints.
type summary struct {
	User              string       `json:"user"`
	RPID              string       `json:"rpId"`
	Database          string       `json:"database,omitempty"`
	Virtual           bool         `json:"virtual"`
	Devices           []deviceJSON `json:"devices"`
	RecoveryCodesLeft int          `json:"recoveryCodesLeft"`
	RecoveryCodesFile string       `json:"recoveryCodesFile"`
	SignIns           []signInJSON `json:"signIns"`
}

type deviceJSON struct {
	ID       string    `json:"id"`
	Type     string    `json:"type"`
	Name     string    `json:"name"`
	Serial   string    `json:"serial,omitempty"`
	Created  time.Time `json:"created"`
	LastUsed time.Time `json:"lastUsed"`
	Active   bool      `json:"active"`
}

type signInJSON struct {
	Device string    `json:"device"`
	Factor string    `json:"factor"`
	At     time.Time `json:"at"`
}

func (g *guide) summarize(ctx context.Context, file string, tests []signInJSON) (*summary, error) {
	ds, err := g.m.Devices(ctx, g.user.ID)
	if err != nil {
		return nil, err
	}
	left, err := g.m.RecoveryCodesLeft(ctx, g.user.ID)
	if err != nil {
		return nil, err
	}
	s := &summary{User: g.o.userName, RPID: g.o.rpID, Virtual: g.virtual, RecoveryCodesLeft: left, RecoveryCodesFile: file, SignIns: tests}
	s.Database = g.o.db
	g.say("          %s is protected by %d device(s):", g.o.userName, len(ds))
	for _, d := range ds {
		serial := ""
		if d.Serial != "" {
			serial = ", serial " + d.Serial
		}
		g.say("            - %s %q%s, added %s, last used %s", kindName[kindOf(d.Type)], d.Name, serial, d.Created.UTC().Format(time.RFC3339), d.LastUsed.UTC().Format(time.RFC3339))
		s.Devices = append(s.Devices, deviceJSON{ID: d.ID, Type: string(d.Type), Name: d.Name, Serial: d.Serial, Created: d.Created.UTC(), LastUsed: d.LastUsed.UTC(), Active: d.Active()})
	}
	g.say("          Recovery codes left: %d (in %s)", left, file)
	if g.tmp != "" {
		g.say("          The database is a temporary one in %s; pass -db to choose where it lives.", g.tmp)
	}
	g.say("Done.")
	return s, nil
}
