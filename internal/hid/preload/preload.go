package preload

import (
	"bytes"
	"context"
	"debug/elf"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

//go:embed csrc/preload.c
var source []byte

// LibName is the file name Build gives the shim.
const LibName = "libfidokit-preload.so"

// childEnv marks a test binary that Reexec started; its value is the name
// of the test that asked.
const childEnv = "FIDOKIT_PRELOAD_TEST"

// ErrNoCompiler means no C compiler was found to build the shim.
var ErrNoCompiler = errors.New("preload: no C compiler found (install gcc)")

// Source returns the shim's C source, csrc/preload.c.
func Source() []byte { return bytes.Clone(source) }

// Build compiles the shim into dir and returns the path of the shared
// library, dir/libfidokit-preload.so. It runs the compiler named by $CC,
// or gcc:
//
//	gcc -shared -fPIC -O2 -Wall -Werror -o libfidokit-preload.so preload.c -ldl
//
// A missing compiler is an error matching ErrNoCompiler. ctx bounds the
// compiler's run.
func Build(ctx context.Context, dir string) (string, error) {
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "gcc"
	}
	ccPath, err := exec.LookPath(cc)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrNoCompiler, err)
	}
	src := filepath.Join(dir, "preload.c")
	if err := os.WriteFile(src, source, 0o644); err != nil {
		return "", fmt.Errorf("preload: writing source: %w", err)
	}
	out := filepath.Join(dir, LibName)
	cmd := exec.CommandContext(ctx, ccPath, "-shared", "-fPIC", "-O2", "-Wall", "-Werror",
		"-o", out, src, "-ldl")
	if msg, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("preload: compiling %s: %w\n%s", src, err, msg)
	}
	return out, nil
}

// Loaded reports whether the shim is loaded into this process, as it is
// in a dynamically linked program started with LD_PRELOAD naming it.
func Loaded() bool {
	maps, err := os.ReadFile("/proc/self/maps")
	return err == nil && bytes.Contains(maps, []byte("/"+LibName))
}

// LookPathForTest returns the path of the program name, which Debian's
// package pkg provides. When it is missing the test is skipped with the
// command that installs it, or, with CI=true in the environment, fails:
// CI machines are meant to have everything.
func LookPathForTest(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		missing(t, fmt.Sprintf("%s not found (%v)", name, err), pkg)
	}
	return p
}

// missing skips or, on CI, fails a test that lacks what pkg installs.
func missing(t testing.TB, what, pkg string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s; CI must install it: apt-get install %s", what, pkg)
	}
	t.Skipf("%s; to run this test: sudo apt-get install %s", what, pkg)
}

// BuildForTest builds the shim into a directory removed when the test
// ends. A missing compiler skips the test (fails it with CI=true), as for
// LookPathForTest.
func BuildForTest(t testing.TB) string {
	t.Helper()
	so, err := Build(context.Background(), t.TempDir())
	if errors.Is(err, ErrNoCompiler) {
		missing(t, err.Error(), "gcc")
	}
	if err != nil {
		t.Fatal(err)
	}
	return so
}

// Reexec puts the calling test under the shim. LD_PRELOAD works only from
// a process's start, so in a test binary started without it, Reexec builds
// the shim, runs this one test again in a new test binary
// (os.Args[0] -test.run ^Name$) with LD_PRELOAD set, reports the child's
// outcome as the test's own (fail, skip or pass, with its output) and
// returns false: the caller then returns at once. In that child Reexec
// returns true and the test goes on, with libfido2 calls made in the
// process going through the shim.
//
//	func TestLibfido2(t *testing.T) {
//		if !preload.Reexec(t) {
//			return
//		}
//		// libfido2 here reaches virtual keys' sockets
//	}
//
// The child must be dynamically linked, as every cgo binary is; a static
// one ignores LD_PRELOAD, which fails the test rather than passing it
// without the shim.
func Reexec(t *testing.T) bool {
	t.Helper()
	if os.Getenv(childEnv) != "" {
		if !Loaded() {
			t.Fatalf("%s=%s is set but the shim is not loaded: is the test binary statically linked (CGO_ENABLED=0)?",
				childEnv, os.Getenv(childEnv))
		}
		return true
	}
	if !dynamic(os.Args[0]) {
		t.Skipf("the test binary %s is statically linked (built with CGO_ENABLED=0), so LD_PRELOAD cannot reach it", os.Args[0])
	}
	so := BuildForTest(t)
	ctx := t.Context()
	if d, ok := t.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-time.Second))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, os.Args[0],
		"-test.run="+runPattern(t.Name()), "-test.count=1", "-test.v=true")
	preload := so
	if old := os.Getenv("LD_PRELOAD"); old != "" {
		preload += ":" + old
	}
	cmd.Env = append(os.Environ(), "LD_PRELOAD="+preload, childEnv+"="+t.Name())
	cmd.WaitDelay = 5 * time.Second
	out, err := cmd.CombinedOutput()
	switch {
	case err != nil:
		t.Fatalf("%s under LD_PRELOAD=%s: %v\n%s", t.Name(), so, err, out)
	case bytes.Contains(out, []byte("--- SKIP: "+t.Name()+" (")):
		t.Skipf("skipped under the shim:\n%s", out)
	case !bytes.Contains(out, []byte("--- PASS: "+t.Name()+" (")):
		t.Fatalf("%s under LD_PRELOAD: the child test binary did not run the test\n%s", t.Name(), out)
	case testing.Verbose():
		t.Logf("under LD_PRELOAD=%s:\n%s", so, out)
	}
	return false
}

// dynamic reports whether the ELF program at path is dynamically linked,
// that is, has a program interpreter that would honour LD_PRELOAD.
func dynamic(path string) bool {
	f, err := elf.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return true
		}
	}
	return false
}

// runPattern is a -test.run pattern matching exactly the test named name,
// level by level.
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}
