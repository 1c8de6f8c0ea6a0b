package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
	"github.com/rogpeppe/go-internal/testscript"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/fido"
	"github.com/fidokit/fidokit/fido/virtual"
)

// TestMain lets testscript run this command as "enroll", in its own
// process, as a person runs it.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"enroll": func() { main() },
	})
}

// TestScripts runs testdata/*.txtar: the guide as a user sees it, with
// virtual devices, and with a virtual key on a socket standing in for an
// attached key.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir: "testdata",
		Setup: func(env *testscript.Env) error {
			env.Setenv(fido.VirtualKeysEnv, "")
			env.Setenv("FIDOKIT_PIN", "")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// virtualkey SOCKET serves a new virtual key on SOCKET
			// until the script ends.
			// With -hold the key never sees a touch: it writes
			// SOCKET.waiting when it starts waiting for one and
			// SOCKET.cancelled when the host cancels the wait.
			"virtualkey": func(ts *testscript.TestScript, neg bool, args []string) {
				hold := len(args) == 2 && args[0] == "-hold"
				if hold {
					args = args[1:]
				}
				if len(args) != 1 {
					ts.Fatalf("usage: virtualkey [-hold] SOCKET")
				}
				path := ts.MkAbs(args[0])
				cfg := &virtual.Config{}
				if hold {
					cfg.UserPresence = func(ctx context.Context, req virtual.PresenceRequest) error {
						os.WriteFile(path+".waiting", nil, 0o600)
						<-ctx.Done()
						os.WriteFile(path+".cancelled", nil, 0o600)
						return ctx.Err()
					}
				}
				k, err := virtual.New(cfg)
				ts.Check(err)
				srv, err := k.Listen(path)
				ts.Check(err)
				ts.Defer(func() { srv.Close(); k.Close() })
			},
			// totpcodes SECRET FILE writes the codes of a SHA-1, 30 s
			// token with the base32 SECRET for the previous, the current
			// and the next time step, one per line, as a person would
			// type them from the token.
			"totpcodes": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 2 {
					ts.Fatalf("usage: totpcodes SECRET FILE")
				}
				var lines []string
				now := time.Now()
				for _, d := range []time.Duration{-30 * time.Second, 0, 30 * time.Second} {
					c, err := totp.GenerateCode(args[0], now.Add(d))
					ts.Check(err)
					lines = append(lines, c)
				}
				ts.Check(os.WriteFile(ts.MkAbs(args[1]), []byte(strings.Join(lines, "\n")+"\n"), 0o600))
			},
			// waitfile FILE waits up to 30 s for FILE to exist.
			"waitfile": func(ts *testscript.TestScript, neg bool, args []string) {
				deadline := time.Now().Add(30 * time.Second)
				for {
					if _, err := os.Stat(ts.MkAbs(args[0])); err == nil {
						return
					}
					if time.Now().After(deadline) {
						ts.Fatalf("%s did not appear", args[0])
					}
					time.Sleep(20 * time.Millisecond)
				}
			},
			// mode FILE PERM checks a file's permission bits.
			"mode": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 2 {
					ts.Fatalf("usage: mode FILE PERM")
				}
				fi, err := os.Stat(ts.MkAbs(args[0]))
				ts.Check(err)
				want, err := strconv.ParseUint(args[1], 8, 32)
				ts.Check(err)
				if got := fi.Mode().Perm(); (got == os.FileMode(want)) == neg {
					ts.Fatalf("%s has mode %o", args[0], got)
				}
			},
		},
	})
}

// runEnroll runs the command in process and returns its exit code and
// output.
func runEnroll(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	t.Setenv(fido.VirtualKeysEnv, "")
	t.Setenv("FIDOKIT_PIN", "")
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, strings.NewReader(""), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	notAKey := filepath.Join(dir, "notes.txt")
	require.NoError(t, os.WriteFile(notAKey, []byte("not a key"), 0o600))
	for _, tc := range []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"help", []string{"-h"}, exitOK, "Usage: enroll"},
		{"unknown flag", []string{"-frobnicate"}, exitUsage, "flag provided but not defined"},
		{"bad type", []string{"-type", "sms"}, exitUsage, "want key, app or token"},
		{"public suffix", []string{"-rp", "co.uk"}, exitUsage, "public suffix"},
		{"a URL", []string{"-rp", "https://example.com"}, exitUsage, "without scheme"},
		{"a port", []string{"-rp", "example.com:443"}, exitUsage, "without scheme"},
		{"empty user", []string{"-user", " "}, exitUsage, "account name"},
		{"arguments", []string{"extra"}, exitUsage, "unexpected arguments"},
		{"missing device", []string{"-device", filepath.Join(dir, "hidraw9"), "-db", filepath.Join(dir, "a.db")}, exitFail, "no such file"},
		{"not a key", []string{"-device", notAKey, "-db", filepath.Join(dir, "b.db")}, exitFail, notAKey + " is not a security key (not a device)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runEnroll(t, tc.args...)
			assert.Equal(t, tc.code, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			assert.Contains(t, stderr, tc.msg)
			assert.NotContains(t, stderr, "opening", "a path is named once")
			if tc.code == exitUsage {
				assert.NotContains(t, stdout, "Step 3/7", "bad flags stop the guide before any device is touched")
			}
		})
	}
}

// The -json summary is one JSON object describing what the run did; the
// progress goes to stderr.
func TestJSONSummary(t *testing.T) {
	for _, kind := range []string{"key", "app", "token"} {
		t.Run(kind, func(t *testing.T) {
			db := filepath.Join(t.TempDir(), kind+".db")
			code, stdout, stderr := runEnroll(t, "-virtual", "-type", kind, "-backup", "app", "-db", db, "-json", "-user", kind+"@example.org", "-rp", "example.org")
			require.Equal(t, exitOK, code, stderr)
			var s summary
			require.NoError(t, json.Unmarshal([]byte(stdout), &s), stdout)
			assert.Equal(t, kind+"@example.org", s.User)
			assert.Equal(t, "example.org", s.RPID)
			assert.Equal(t, db, s.Database)
			assert.True(t, s.Virtual)
			require.Len(t, s.Devices, 2)
			want := map[string]string{"key": "security_key", "app": "authenticator_app", "token": "hardware_token"}[kind]
			assert.Equal(t, want, s.Devices[0].Type)
			assert.Equal(t, "authenticator_app", s.Devices[1].Type)
			assert.Equal(t, 10, s.RecoveryCodesLeft)
			require.Len(t, s.SignIns, 2, "a test sign-in with each new device")
			for i, si := range s.SignIns {
				assert.Equal(t, s.Devices[i].ID, si.Device)
				assert.False(t, s.Devices[i].LastUsed.IsZero())
			}
			fi, err := os.Stat(s.RecoveryCodesFile)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
			codes, err := os.ReadFile(s.RecoveryCodesFile)
			require.NoError(t, err)
			assert.Equal(t, 10, strings.Count(string(codes), "-")/3)
			assert.Contains(t, stderr, "Step 7/7")
			assert.NotContains(t, stdout, "Step", "stdout holds only the JSON")
		})
	}
}
