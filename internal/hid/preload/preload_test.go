package preload

import (
	"context"
	"encoding/hex"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/fidokit/fidokit/fido/virtual"
	"github.com/fidokit/fidokit/internal/hid"
)

// shortDir returns a directory for sockets: AF_UNIX paths are limited to
// 108 bytes, which t.TempDir's names can exceed.
func shortDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "fkpre")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// serveKey serves a new virtual key made from cfg on a socket and returns
// the socket's path.
func serveKey(t testing.TB, cfg *virtual.Config) string {
	t.Helper()
	k, err := virtual.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { k.Close() })
	path := filepath.Join(shortDir(t), "key")
	srv, err := k.Listen(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return path
}

// buildProbe compiles testdata/probe.c.
func buildProbe(t testing.TB) string {
	t.Helper()
	gcc := LookPathForTest(t, "gcc", "gcc")
	out := filepath.Join(t.TempDir(), "probe")
	if msg, err := exec.Command(gcc, "-O2", "-Wall", "-Werror", "-o", out, "testdata/probe.c").CombinedOutput(); err != nil {
		t.Fatalf("compiling probe: %v\n%s", err, msg)
	}
	return out
}

// lines parses "name: value" lines.
func lines(out []byte) map[string]string {
	m := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok {
			m[k] = v
		}
	}
	return m
}

// TestProbe opens a virtual key's socket through the shim the way
// libfido2 opens /dev/hidrawN, and checks every answer, down to a CTAPHID
// INIT exchanged with the key.
func TestProbe(t *testing.T) {
	so := BuildForTest(t)
	probe := buildProbe(t)
	sock := serveKey(t, nil)

	cmd := exec.Command(probe, sock)
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+so)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("probe: %v\n%s", err, out)
	}
	got := lines(out)
	want := map[string]string{
		"open":      "ok",
		"fstat":     "chr",
		"rdescsize": "34",
		"rdesc":     hex.EncodeToString(hid.FIDOReportDescriptor),
		"rawinfo":   "bus=3 vendor=1209 product=0001",
		"rawname":   "fidokit virtual key",
		"feature":   "EINVAL",
		"flock":     "ok",
		"close":     "ok",
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q", k, got[k], v)
		}
	}
	if len(hid.FIDOReportDescriptor) != 34 {
		t.Errorf("hid.FIDOReportDescriptor is %d bytes; update the shim and this test", len(hid.FIDOReportDescriptor))
	}
	// The INIT response: broadcast CID, INIT|0x80, 17 bytes, our nonce.
	init, err := hex.DecodeString(got["init"])
	if err != nil || len(init) != 17 {
		t.Fatalf("init: %q", got["init"])
	}
	if h := hex.EncodeToString(init[:7]); h != "ffffffff860011" {
		t.Errorf("INIT response header %s, want ffffffff860011", h)
	}
	if string(init[7:15]) != "fidokit!" {
		t.Errorf("INIT response nonce %q, want %q", init[7:15], "fidokit!")
	}
}

// TestOpenPaths checks that the shim acts on virtual keys' sockets only:
// other paths open (or fail) as they would without it.
func TestOpenPaths(t *testing.T) {
	so := BuildForTest(t)
	probe := buildProbe(t)
	dir := shortDir(t)
	sock := serveKey(t, nil)

	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	stream := filepath.Join(dir, "stream")
	l, err := net.Listen("unix", stream)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	stale := filepath.Join(dir, "stale")
	sl, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: stale, Net: "unixpacket"})
	if err != nil {
		t.Fatal(err)
	}
	sl.SetUnlinkOnClose(false)
	sl.Close() // the socket file stays; nobody listens

	tests := []struct {
		name    string
		path    string
		preload bool
		want    string
	}{
		{"socket without shim", sock, false, "ENXIO"},
		{"socket with shim", sock, true, "ok"},
		{"regular file", file, true, "ok"},
		{"missing file", filepath.Join(dir, "nothing"), true, "ENOENT"},
		{"directory", dir, true, "EISDIR"},
		{"stream socket", stream, true, "ENXIO"},
		{"socket nobody listens on", stale, true, "ECONNREFUSED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(probe, "-o", tt.path)
			if tt.preload {
				cmd.Env = append(os.Environ(), "LD_PRELOAD="+so)
			}
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("probe: %v\n%s", err, out)
			}
			if got := lines(out)["open"]; got != tt.want {
				t.Errorf("open %s: got %q, want %q", tt.path, got, tt.want)
			}
		})
	}
}

// TestFido2TokenInfo runs libfido2's own fido2-token -I against a virtual
// key through the shim, the check that libfido2 really speaks to the key:
// the AAGUID it prints is the one this test gave the key.
func TestFido2TokenInfo(t *testing.T) {
	tool := LookPathForTest(t, "fido2-token", "fido2-tools")
	so := BuildForTest(t)
	aaguid := [16]byte{0xfe, 0xed, 0xfa, 0xce, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	sock := serveKey(t, &virtual.Config{AAGUID: aaguid, ResidentKeySlots: 7, MaxMsgSize: 1500})

	cmd := exec.Command(tool, "-I", sock)
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+so)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("fido2-token -I: %v\n%s", err, out)
	}
	got := lines(out)
	for k, v := range map[string]string{
		"proto":             "0x02",
		"version strings":   "FIDO_2_0, FIDO_2_1, U2F_V2",
		"aaguid":            hex.EncodeToString(aaguid[:]),
		"algorithms":        "es256 (public-key), eddsa (public-key)",
		"maxmsgsiz":         "1500",
		"remaining rk(s)":   "7",
		"transport strings": "usb",
	} {
		if got[k] != v {
			t.Errorf("%s: got %q, want %q\n%s", k, got[k], v, out)
		}
	}
	opts := strings.Split(got["options"], ", ")
	for _, o := range []string{"rk", "up", "noplat"} {
		if !contains(opts, o) {
			t.Errorf("options %q lack %q", got["options"], o)
		}
	}
	// Without the shim the same command cannot open the socket.
	plain := exec.Command(tool, "-I", sock)
	plain.Env = withoutPreload(os.Environ())
	if out, err := plain.CombinedOutput(); err == nil {
		t.Errorf("fido2-token -I without the shim succeeded:\n%s", out)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func withoutPreload(env []string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, "LD_PRELOAD=") {
			out = append(out, e)
		}
	}
	return out
}

// TestBuild checks the build itself: the library exports what the shim
// interposes, and a bad compiler is reported.
func TestBuild(t *testing.T) {
	so := BuildForTest(t)
	nm, err := exec.LookPath("nm")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("nm not found: install binutils (bash scripts/test.sh does)")
		}
		t.Skip("nm not found: install binutils")
	}
	out, err := exec.Command(nm, "-D", "--defined-only", so).CombinedOutput()
	if err != nil {
		t.Fatalf("nm: %v\n%s", err, out)
	}
	for _, sym := range []string{"open", "open64", "fstat", "fstat64", "__fxstat", "__fxstat64", "ioctl", "close"} {
		if !strings.Contains(string(out), " T "+sym+"\n") {
			t.Errorf("%s does not export %s:\n%s", so, sym, out)
		}
	}

	t.Run("no compiler", func(t *testing.T) {
		t.Setenv("CC", "fidokit-no-such-cc")
		if _, err := Build(context.Background(), t.TempDir()); !errors.Is(err, ErrNoCompiler) {
			t.Errorf("Build with a missing compiler: %v, want ErrNoCompiler", err)
		}
	})
}

// TestReexec runs this test again in a child process under the shim.
func TestReexec(t *testing.T) {
	if !Reexec(t) {
		return
	}
	if !Loaded() {
		t.Fatal("Reexec returned true but the shim is not loaded")
	}
	if os.Getenv(childEnv) != t.Name() {
		t.Errorf("%s=%q, want %q", childEnv, os.Getenv(childEnv), t.Name())
	}
}

func TestRunPattern(t *testing.T) {
	for _, tt := range []struct{ name, want string }{
		{"TestA", "^TestA$"},
		{"TestA/sub", "^TestA$/^sub$"},
		{"TestA/a.b+c", `^TestA$/^a\.b\+c$`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := runPattern(tt.name); got != tt.want {
				t.Errorf("runPattern(%q) = %q, want %q", tt.name, got, tt.want)
			}
		})
	}
}
