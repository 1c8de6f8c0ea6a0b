package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/libfido2"
	"github.com/fidokit/fidokit/internal/hid/preload"
)

// exitFileEnv names the file where the test build of the command writes
// its exit code, for the script command exitcode: testscript's exec only
// tells success from failure, and a background command's code is lost.
const exitFileEnv = "FIDOKEY_TEST_EXIT_FILE"

// TestMain lets testscript run the command as "fidokey", in its own
// process, as a person runs it: Main is the real entry point, signals and
// all.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"fidokey": func() {
			code := Main()
			if f := os.Getenv(exitFileEnv); f != "" {
				os.WriteFile(f, []byte(strconv.Itoa(code)+"\n"), 0o600)
			}
			os.Exit(code)
		},
	})
}

// The test-only hooks the scripts may use, kept in testscript values.
const tValue = "fidokey-test-t"

// preloadShim is the LD_PRELOAD shim, built once per TestScripts for all
// the scripts that need it.
type preloadShim struct {
	once sync.Once
	dir  string
	path string
	err  error
}

// TestScripts runs testdata/*.txtar: fidokey as an administrator runs it,
// against virtual keys served on sockets in each script's $WORK.
func TestScripts(t *testing.T) {
	shim := &preloadShim{dir: t.TempDir()}
	attached := attachedKeys(t)
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(env *testscript.Env) error {
			env.Setenv(fido.VirtualKeysEnv, "")
			env.Setenv(envPIN, "")
			env.Setenv(envNewPIN, "")
			env.Setenv("LD_PRELOAD", "")
			env.Setenv("FIDOKIT_TEST_DEVICE", os.Getenv("FIDOKIT_TEST_DEVICE"))
			env.Setenv(exitFileEnv, filepath.Join(env.WorkDir, ".fidokey-exit"))
			env.Values[keysValue] = &scriptKeys{keys: map[string]*testKey{}}
			env.Values[tValue] = env.T()
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "attached":
				// A real key is plugged in: counts of keys differ.
				return attached, nil
			case "hardware":
				return os.Getenv("FIDOKIT_TEST_DEVICE") != "", nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"virtualkey":   cmdVirtualKey,
			"makecred":     cmdMakeCred,
			"jsonhas":      cmdJSONHas,
			"exitcode":     cmdExitCode,
			"stalesocket":  cmdStaleSocket,
			"needlibfido2": func(ts *testscript.TestScript, neg bool, args []string) { cmdNeedLibfido2(ts, neg, args, shim) },
		},
	})
}

// attachedKeys reports whether fido.Devices finds real keys, which the
// scripts that count keys must then skip.
func attachedKeys(t *testing.T) bool {
	list, err := fido.Devices(context.Background())
	require.NoError(t, err)
	for _, d := range list {
		if !d.Virtual {
			return true
		}
	}
	return false
}

// cmdExitCode is the script command "exitcode N": the last fidokey run
// exited with code N.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: exitcode N")
	}
	f := ts.Getenv(exitFileEnv)
	b, err := os.ReadFile(f)
	if err != nil {
		ts.Fatalf("no exit code recorded: did fidokey run? (%v)", err)
	}
	os.Remove(f)
	if got := strings.TrimSpace(string(b)); got != args[0] {
		ts.Fatalf("fidokey exited with code %s, want %s", got, args[0])
	}
}

// cmdJSONHas is the script command
//
//	jsonhas FILE PATH [VALUE]
//	jsonhas -len FILE PATH N
//
// FILE (or stdout) holds exactly one JSON document, in which the value at
// PATH (dot-separated keys and array indexes, "." for the whole document)
// exists, or equals VALUE: JSON-equal when VALUE parses as JSON, else equal
// to the string. With -len it is an array or object of N elements.
func cmdJSONHas(ts *testscript.TestScript, neg bool, args []string) {
	length := len(args) > 0 && args[0] == "-len"
	if length {
		args = args[1:]
	}
	if len(args) < 2 || len(args) > 3 || length && len(args) != 3 {
		ts.Fatalf("usage: jsonhas [-len] FILE PATH [VALUE]")
	}
	var doc any
	dec := json.NewDecoder(strings.NewReader(ts.ReadFile(args[0])))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil {
		ts.Fatalf("%s is not JSON: %v", args[0], err)
	}
	if _, err := dec.Token(); err == nil {
		ts.Fatalf("%s holds more than one JSON document", args[0])
	}
	got, found := jsonPath(doc, args[1])
	var ok bool
	var what string
	switch {
	case !found:
		ok, what = false, "absent"
	case length:
		n := -1
		switch v := got.(type) {
		case []any:
			n = len(v)
		case map[string]any:
			n = len(v)
		}
		ok, what = strconv.Itoa(n) == args[2], fmt.Sprintf("of length %d", n)
	case len(args) == 2:
		ok = true
	default:
		ok = jsonEqual(got, args[2])
		b, _ := json.Marshal(got)
		what = string(b)
	}
	switch {
	case ok && neg:
		ts.Fatalf("%s: %s is %s", args[0], args[1], what)
	case !ok && !neg:
		ts.Fatalf("%s: %s is %s, want %s", args[0], args[1], what, strings.Join(args[2:], " "))
	}
}

func jsonPath(doc any, path string) (any, bool) {
	if path == "." {
		return doc, true
	}
	for _, seg := range strings.Split(path, ".") {
		switch v := doc.(type) {
		case map[string]any:
			var ok bool
			if doc, ok = v[seg]; !ok {
				return nil, false
			}
		case []any:
			i, err := strconv.Atoi(seg)
			if err != nil || i < 0 || i >= len(v) {
				return nil, false
			}
			doc = v[i]
		default:
			return nil, false
		}
	}
	return doc, true
}

func jsonEqual(got any, want string) bool {
	var w any
	dec := json.NewDecoder(strings.NewReader(want))
	dec.UseNumber()
	if err := dec.Decode(&w); err != nil || dec.InputOffset() != int64(len(strings.TrimRight(want, " \n"))) {
		s, ok := got.(string)
		return ok && s == want
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(w)
	return string(gb) == string(wb)
}

// cmdStaleSocket is the script command "stalesocket PATH": it leaves a
// socket file at PATH that nobody listens on, as a crashed server does.
func cmdStaleSocket(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: stalesocket PATH")
	}
	l, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: ts.MkAbs(args[0]), Net: "unixpacket"})
	ts.Check(err)
	l.SetUnlinkOnClose(false)
	ts.Check(l.Close())
}

// cmdNeedLibfido2 is the script command "needlibfido2": it puts the
// LD_PRELOAD shim that lets libfido2 open virtual keys' sockets in the
// environment of the commands that follow, or skips the script where
// fidokey cannot use libfido2 (built without cgo) or the shim cannot be
// built (no gcc); with CI=true a missing gcc fails it instead, since CI
// machines are meant to have it.
func cmdNeedLibfido2(ts *testscript.TestScript, neg bool, args []string, shim *preloadShim) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: needlibfido2")
	}
	t := ts.Value(tValue).(testscript.T)
	if _, err := libfido2.Devices(context.Background()); errors.Is(err, libfido2.ErrNeedsCgo) {
		t.Skip("fidokey -libfido2 needs cgo: this test binary was built with CGO_ENABLED=0")
	}
	shim.once.Do(func() { shim.path, shim.err = preload.Build(context.Background(), shim.dir) })
	switch {
	case errors.Is(shim.err, preload.ErrNoCompiler) && os.Getenv("CI") == "true":
		ts.Fatalf("%v; CI must install it: apt-get install gcc", shim.err)
	case errors.Is(shim.err, preload.ErrNoCompiler):
		t.Skip(fmt.Sprintf("%v; to run the -libfido2 scripts: sudo apt-get install gcc libfido2-dev", shim.err))
	case shim.err != nil:
		ts.Fatalf("building the preload shim: %v", shim.err)
	}
	ts.Setenv("LD_PRELOAD", shim.path)
}

// TestParseInterspersed checks that flags are taken anywhere among the
// arguments, and that "--" ends them.
func TestParseInterspersed(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		force bool
		rest  []string
	}{
		{"flags first", []string{"-force", "ID"}, true, []string{"ID"}},
		{"flags last", []string{"ID", "-force"}, true, []string{"ID"}},
		{"between", []string{"A", "-force", "B"}, true, []string{"A", "B"}},
		{"dash dash", []string{"--", "-force"}, false, []string{"-force"}},
		{"none", nil, false, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			force := fs.Bool("force", false, "")
			rest, err := parseInterspersed(fs, tt.args)
			require.NoError(t, err)
			assert.Equal(t, tt.force, *force)
			assert.Equal(t, tt.rest, rest)
		})
	}
}

// TestExitCode checks the mapping from errors to the documented exit
// codes, including the ones the scripts reach only with a real key.
func TestExitCode(t *testing.T) {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	live := context.Background()
	tests := []struct {
		name string
		ctx  context.Context
		err  error
		want int
	}{
		{"ok", live, nil, exitOK},
		{"help", live, flag.ErrHelp, exitOK},
		{"usage", live, usagef("", "bad"), exitUsage},
		{"no key", live, noKey("none"), exitNoKey},
		{"fido no device", live, fmt.Errorf("opening: %w", fido.ErrNoDevice), exitNoKey},
		{"wrong PIN", live, fmt.Errorf("x: %w", &fido.PINError{Retries: 7, Err: fido.StatusPINInvalid}), exitWrongPIN},
		{"PIN blocked", live, &fido.PINError{Retries: 0, Err: fido.StatusPINBlocked}, exitPINBlocked},
		{"PIN auth blocked", live, &fido.PINError{Retries: 5, Err: fido.StatusPINAuthBlocked}, exitPINBlocked},
		{"bare status", live, fmt.Errorf("libfido2: %w", fido.StatusPINAuthBlocked), exitPINBlocked},
		{"interrupted", cancelled, fmt.Errorf("fido: reset: %w", context.Canceled), exitInterrupted},
		{"canceled but not by us", live, context.Canceled, exitFailure},
		{"other", live, errors.New("boom"), exitFailure},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, exitCode(tt.ctx, tt.err))
		})
	}
}

// TestMessageNoRepeats checks that the messages people read about a key
// that cannot be opened name the path once.
func TestMessageNoRepeats(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o600))
	for _, path := range []string{filepath.Join(dir, "missing"), file, dir, os.DevNull} {
		t.Run(filepath.Base(path), func(t *testing.T) {
			var stdout, stderr strings.Builder
			code := run(context.Background(), []string{"info", "-device", path}, strings.NewReader(""), &stdout, &stderr, func(string) string { return "" })
			assert.Equal(t, exitNoKey, code)
			assert.Equal(t, 1, strings.Count(stderr.String(), path), stderr.String())
			assert.NotContains(t, stderr.String(), "opening")
			assert.Empty(t, stdout.String())
		})
	}
}
