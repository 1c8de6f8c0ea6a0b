// Command fidokey manages FIDO2 security keys, as ykman fido and
// fido2-token do: it lists keys, shows what a key can do, sets and changes
// its PIN, lists, deletes and renames the accounts (discoverable
// credentials) it holds, changes its settings, reads and writes its large
// blobs, and resets it. It is a thin client of package
// github.com/fidokit/fidokit/fido.
//
//	fidokey list
//	fidokey info
//	fidokey pin set
//	fidokey credentials list -json
//	fidokey -device /dev/hidraw3 reset
//
// # Commands
//
//	list                                   the attached keys and the virtual keys in FIDOKIT_VIRTUAL_KEYS
//	info                                   versions, options, limits and PIN state of a key
//	wink                                   make the key blink, to tell it apart
//	pin set                                set the PIN of a key that has none
//	pin change                             change the PIN
//	pin retries                            PIN (and built-in UV) retries left
//	credentials list [-rp RPID]            the discoverable credentials (passkeys) on the key
//	credentials delete [-force] ID         delete one
//	credentials rename-user ID -name NAME [-display-name NAME]
//	                                       change the user name stored with one
//	config always-uv on|off                require user verification for every sign-in
//	config min-pin-length N [-rp RPID]... [-force-change]
//	                                       raise the minimum PIN length
//	largeblob get (-credential ID | -key-file FILE) [-o FILE]
//	largeblob set (-credential ID | -key-file FILE) FILE
//	                                       read or write a credential's large blob
//	reset [-force]                         erase every credential, the PIN and the settings
//
// Every command that uses a key takes -device PATH: a hidraw node such as
// /dev/hidraw3, or a virtual key's socket. Without it the command uses the
// only key there is; with several it lists them and exits 2, with none it
// exits 3. Flags may come before or after the command and its arguments.
// With -libfido2 the command reaches keys through libfido2 (package
// github.com/fidokit/fidokit/fido/libfido2, which needs cgo); go-libfido2
// offers list, info, pin, credentials list and delete, and reset, and the
// other commands say they are not supported.
//
// # Virtual keys
//
// FIDOKIT_VIRTUAL_KEYS lists virtual keys' socket paths, separated by ':'
// (see examples/virtualkey). list shows them after the attached keys, and
// they count when no -device is given. An entry that is not a socket a
// virtual key listens on is an error that names it (exit 3). libfido2
// opens a socket only under the LD_PRELOAD shim of
// internal/hid/preload.
//
// # PIN
//
// The PIN never goes on the command line. It is read from -pin-file FILE
// (its first line), else from the environment variable FIDOKIT_PIN, else
// typed on the terminal without echo (or read as a line from standard
// input when that is not a terminal). It is asked for only when the key
// needs it, once per command. A new PIN for pin set and pin change comes
// from -new-pin-file FILE, else FIDOKIT_NEW_PIN, else is typed twice. A
// wrong PIN from a file or the environment is not tried again; a wrong PIN
// typed on the terminal is asked for again while retries are left.
//
// # Reset
//
// A key accepts a reset only within 10 seconds of being plugged in (a
// YubiKey within 5), and only with a touch. reset says so, asks you to type yes (or takes
// -force), then sends the reset and waits for the touch. Ctrl-C while a
// key waits for a touch sends CTAPHID_CANCEL, so the key stops waiting,
// and exits 130.
//
// # Output
//
// Results go to standard output as text; prompts and messages go to
// standard error. With -json standard output holds exactly one JSON
// document (indented; fields are added, never renamed or removed). Byte
// strings are base64url without padding, except large-blob data, which is
// standard base64. Every document about a key has "device":
//
//	{"path": "/dev/hidraw3", "virtual": false, "vendorId": 4176, "productId": 1031,
//	 "manufacturer": "Yubico", "product": "YubiKey OTP+FIDO+CCID", "serial": ""}
//
// The documents, command by command:
//
//	list                 {"keys": [device, ...]}            (an empty list is not an error)
//	info                 {"device": device, "versions": [..], "extensions": [..], "aaguid": "f1d06b17-…",
//	                      "options": {"rk": true, "clientPin": false, ...}, "maxMsgSize": 1200,
//	                      "pinUvAuthProtocols": [2, 1], "maxCredentialCountInList": 8,
//	                      "maxCredentialIdLength": 128, "transports": ["usb"], "algorithms": ["ES256", "EdDSA"],
//	                      "firmwareVersion": 256, "minPinLength": 4, "remainingDiscoverableCredentials": 25,
//	                      "maxSerializedLargeBlobArray": 1024, "forcePinChange": false,
//	                      "maxCredBlobLength": 32, "maxRpIdsForSetMinPinLength": 8,
//	                      "preferredPlatformUvAttempts": 0, "uvModality": 0,
//	                      "pin": {"supported": true, "set": false, "retries": 8, "powerCycleRequired": false}}
//	                     (pin.retries is -1 when the key did not say; numbers the key does not
//	                      report are 0, remainingDiscoverableCredentials -1)
//	wink                 {"device": device, "winked": true}
//	pin set              {"device": device, "pinSet": true}
//	pin change           {"device": device, "pinChanged": true}
//	pin retries          {"device": device, "pinRetries": 8, "powerCycleRequired": false, "uvRetries": 25}
//	                     (uvRetries only for keys with built-in user verification)
//	credentials list     {"device": device, "existing": 1, "remaining": 24, "credentials": [credential, ...]}
//	credentials delete   {"device": device, "deleted": credential}
//	credentials rename-user {"device": device, "credential": credential}
//	config always-uv     {"device": device, "alwaysUv": true, "changed": true}
//	config min-pin-length {"device": device, "minPinLength": 8, "forcePinChange": false,
//	                      "rpIds": ["example.com"], "changed": true}
//	largeblob get        {"device": device, "credentialId": "…", "size": 5, "data": "aGVsbG8="}
//	largeblob set        {"device": device, "credentialId": "…", "size": 5}
//	reset                {"device": device, "reset": true}
//
// where credential is
//
//	{"id": "…", "rpId": "example.com", "rpName": "", "userId": "…", "userName": "alice",
//	 "userDisplayName": "Alice", "algorithm": "ES256", "credProtect": "userVerificationOptional",
//	 "largeBlobKey": true}
//
// (credProtect is absent when the key does not say; largeBlobKey says
// whether the credential has one). largeblob with -key-file has
// "credentialId": ""; largeblob get -o FILE writes the data to FILE and
// leaves "data" out. list -device PATH lists just that key. On failure, with -json, standard output holds
// {"error": "message", "exitCode": 5} and, after a refused PIN,
// "pinRetries": 7.
//
// # Exit codes
//
//	0    success
//	1    failure
//	2    bad usage: unknown command or flag, wrong arguments, several keys and no -device
//	3    no security key found: none attached, -device names no key, or a FIDOKIT_VIRTUAL_KEYS
//	     entry is not a listening socket
//	4    PIN blocked (only a reset helps), or blocked until the key is plugged in again
//	5    wrong PIN (the message says how many retries are left)
//	130  interrupted (Ctrl-C); a key waiting for a touch was told to stop waiting
//
// help and -h print usage and exit 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

func main() { os.Exit(Main()) }

// Main runs the command with the process's arguments, standard streams and
// environment, cancelling on SIGINT and SIGTERM, and returns the exit
// code. A second Ctrl-C kills the process at once.
func Main() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // the next signal gets the default action
	}()
	return run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.Getenv)
}

// Exit codes; see the package doc.
const (
	exitOK          = 0
	exitFailure     = 1
	exitUsage       = 2
	exitNoKey       = 3
	exitPINBlocked  = 4
	exitWrongPIN    = 5
	exitInterrupted = 130
)

// Environment variables.
const (
	envPIN    = "FIDOKIT_PIN"
	envNewPIN = "FIDOKIT_NEW_PIN"
)

// command is one task, such as "pin set".
type command struct {
	name    string // "pin set"
	args    string // synopsis of the arguments after the flags
	summary string
	// flags registers the command's own flags.
	flags func(fs *flag.FlagSet, a *app)
	// pin says the command may need the key's PIN: it takes -pin-file.
	pin bool
	run func(a *app, args []string) error
}

// commands lists every command in the order of the usage text.
var commands = []*command{
	cmdList, cmdInfo, cmdWink,
	cmdPINSet, cmdPINChange, cmdPINRetries,
	cmdCredList, cmdCredDelete, cmdCredRename,
	cmdConfigAlwaysUV, cmdConfigMinPIN,
	cmdBlobGet, cmdBlobSet,
	cmdReset,
}

// groups are the commands that have subcommands.
var groups = map[string]string{
	"pin":         "set, change or count the retries of the key's PIN",
	"credentials": "list, delete or rename the discoverable credentials on the key",
	"config":      "change the key's settings",
	"largeblob":   "read or write a credential's large blob",
}

func findCommand(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// usageError is bad usage: exit 2, with a hint to run help.
type usageError struct {
	msg  string
	help string // the help topic to suggest; "" for the whole tool
}

func (e *usageError) Error() string { return e.msg }

func usagef(help, format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...), help: help}
}

// run is the whole command: it returns the exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{ctx: ctx, stdout: stdout, stderr: stderr, getenv: getenv, term: newTerminal(stdin, stderr)}
	a.pin = &secret{what: "PIN", file: &a.pinFile, env: envPIN, getenv: getenv, term: a.term}
	a.newPIN = &secret{what: "new PIN", file: &a.newPINFile, env: envNewPIN, getenv: getenv, term: a.term}
	err := a.dispatch(args)
	code := exitCode(ctx, err)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case err == nil:
		return exitOK
	}
	msg := message(ctx, err)
	fmt.Fprintf(stderr, "fidokey: %s\n", msg)
	var ue *usageError
	if errors.As(err, &ue) {
		if ue.help != "" {
			fmt.Fprintf(stderr, "Run 'fidokey help %s' for usage.\n", ue.help)
		} else {
			fmt.Fprintf(stderr, "Run 'fidokey help' for usage.\n")
		}
	}
	if a.json {
		doc := map[string]any{"error": msg, "exitCode": code}
		if n, ok := pinRetriesOf(err); ok {
			doc["pinRetries"] = n
		}
		a.printJSON(doc)
	}
	return code
}

// dispatch parses the global flags and the command name, then runs the
// command.
func (a *app) dispatch(args []string) error {
	global := flag.NewFlagSet("fidokey", flag.ContinueOnError)
	global.SetOutput(io.Discard)
	a.commonFlags(global)
	if err := global.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.usage(a.stdout)
			return err
		}
		return usagef("", "%v", err)
	}
	args = global.Args()
	if len(args) == 0 {
		a.usage(a.stderr)
		return &usageError{msg: "no command given"}
	}
	name := args[0]
	if name == "help" {
		return a.help(args[1:])
	}
	if _, ok := groups[name]; ok {
		if len(args) < 2 {
			a.groupUsage(a.stderr, name)
			return usagef(name, "%s needs a subcommand", name)
		}
		if args[1] == "-h" || args[1] == "-help" || args[1] == "--help" || args[1] == "help" {
			a.groupUsage(a.stdout, name)
			return flag.ErrHelp
		}
		name += " " + args[1]
		args = args[1:]
	}
	c := findCommand(name)
	if c == nil {
		if g, _, ok := strings.Cut(name, " "); ok {
			return usagef(g, "unknown command %q", name)
		}
		return usagef("", "unknown command %q", name)
	}
	fs := a.commandFlags(c)
	rest, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			a.commandUsage(a.stdout, c)
			return err
		}
		return usagef(c.name, "%s: %v", c.name, err)
	}
	return c.run(a, rest)
}

// commonFlags registers the flags every command takes.
func (a *app) commonFlags(fs *flag.FlagSet) {
	fs.StringVar(&a.device, "device", a.device, "the key to use: a hidraw `path` or a virtual key's socket (default: the only key)")
	fs.BoolVar(&a.json, "json", a.json, "print one JSON document instead of text")
	fs.BoolVar(&a.libfido2, "libfido2", a.libfido2, "reach keys through libfido2 instead of fidokit's pure-Go client")
}

// commandFlags returns the flag set of c: the common flags (keeping values
// given before the command) and its own.
func (a *app) commandFlags(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet("fidokey "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	a.commonFlags(fs)
	if c.pin {
		fs.StringVar(&a.pinFile, "pin-file", "", "read the key's PIN from the first line of `file` (default: $FIDOKIT_PIN, else ask)")
	}
	if c.flags != nil {
		c.flags(fs, a)
	}
	return fs
}

// parseInterspersed parses flags anywhere among the arguments, as
// "credentials delete ID -device PATH" needs, and returns the others; "--"
// ends the flags.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var after []string
	for i, arg := range args {
		if arg == "--" {
			args, after = args[:i], args[i+1:]
			break
		}
	}
	var rest []string
	for {
		// Parse stops at the first argument that is not a flag.
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return append(rest, after...), nil
		}
		rest = append(rest, args[0])
		args = args[1:]
	}
}

func (a *app) help(topic []string) error {
	switch {
	case len(topic) == 0:
		a.usage(a.stdout)
		return flag.ErrHelp
	case len(topic) == 1:
		if _, ok := groups[topic[0]]; ok {
			a.groupUsage(a.stdout, topic[0])
			return flag.ErrHelp
		}
	}
	c := findCommand(strings.Join(topic, " "))
	if c == nil {
		return usagef("", "no help for %q: unknown command", strings.Join(topic, " "))
	}
	a.commandUsage(a.stdout, c)
	return flag.ErrHelp
}

func (a *app) usage(w io.Writer) {
	fmt.Fprintf(w, "Usage: fidokey [-device PATH] [-json] [-libfido2] COMMAND [flags] [args]\n\n")
	fmt.Fprintf(w, "Manages FIDO2 security keys, as ykman fido and fido2-token do.\n\nCommands:\n")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-26s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nFlags for every command:\n")
	fs := flag.NewFlagSet("fidokey", flag.ContinueOnError)
	a.commonFlags(fs)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprintf(w, `
The PIN is read from -pin-file, else $FIDOKIT_PIN, else asked for without echo.
A new PIN comes from -new-pin-file, else $FIDOKIT_NEW_PIN, else is asked for twice.
$FIDOKIT_VIRTUAL_KEYS lists virtual keys' sockets, separated by ':'.

Exit codes: 0 ok, 1 failure, 2 usage, 3 no key found, 4 PIN blocked, 5 wrong PIN,
130 interrupted.

Run 'fidokey help COMMAND' for a command's flags.
`)
}

func (a *app) groupUsage(w io.Writer, group string) {
	fmt.Fprintf(w, "Usage: fidokey %s SUBCOMMAND [flags] [args]\n\n%s.\n\nSubcommands:\n", group, upperFirst(groups[group]))
	for _, c := range commands {
		if g, sub, _ := strings.Cut(c.name, " "); g == group {
			fmt.Fprintf(w, "  %-14s %s\n", sub, c.summary)
		}
	}
	fmt.Fprintf(w, "\nRun 'fidokey help %s SUBCOMMAND' for its flags.\n", group)
}

func (a *app) commandUsage(w io.Writer, c *command) {
	synopsis := "fidokey " + c.name + " [flags]"
	if c.args != "" {
		synopsis += " " + c.args
	}
	fmt.Fprintf(w, "Usage: %s\n\n%s.\n\nFlags:\n", synopsis, upperFirst(c.summary))
	fs := a.commandFlags(c)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
