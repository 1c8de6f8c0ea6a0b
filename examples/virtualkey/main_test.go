package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/fidokit/fidokit/fido"
)

// lineWriter hands each line written to it to the test, so the test waits
// for output instead of polling for it.
type lineWriter struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	lines chan string
}

func newLineWriter() *lineWriter { return &lineWriter{lines: make(chan string, 100)} }

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	for {
		line, err := w.buf.ReadString('\n')
		if err != nil {
			w.buf.Reset()
			w.buf.WriteString(line) // an unfinished line waits for the rest
			return len(p), nil
		}
		w.lines <- strings.TrimSuffix(line, "\n")
	}
}

// serve starts the command with args as a person would, waits for its
// ready line and returns the socket path, the command's output lines and a
// stop function that returns run's error.
func serve(t *testing.T, in io.Reader, args ...string) (string, *lineWriter, func() error) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skip("the socket transport is Linux-only")
	}
	// AF_UNIX paths are limited to about 100 bytes, more than some
	// t.TempDir names leave.
	dir, err := os.MkdirTemp("", "vk")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "key.sock")
	ctx, cancel := context.WithCancel(context.Background())
	out := newLineWriter()
	done := make(chan error, 1)
	go func() { done <- run(ctx, append([]string{"-socket", sock}, args...), in, out) }()
	select {
	case line := <-out.lines:
		if want := "virtual key ready on " + sock + " (set FIDOKIT_VIRTUAL_KEYS=" + sock + ")"; line != want {
			t.Fatalf("first line %q, want %q", line, want)
		}
	case err := <-done:
		t.Fatalf("run: %v", err)
	}
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { stop() })
	return sock, out, stop
}

func makeCredential(ctx context.Context, dev *fido.Device) (*fido.Attestation, error) {
	h := fido.RPIDHash("challenge")
	return dev.MakeCredential(ctx, &fido.MakeCredentialRequest{
		ClientDataHash: h[:], RP: fido.RelyingParty{ID: "example.com"}, User: fido.User{ID: []byte{1}},
	})
}

// TestServeAndEnroll finds the key through FIDOKIT_VIRTUAL_KEYS like any
// program, makes a credential over the socket, and checks that shutdown
// removes the socket and that the state file keeps the credential.
func TestServeAndEnroll(t *testing.T) {
	state := filepath.Join(t.TempDir(), "key.json")
	sock, out, stop := serve(t, strings.NewReader(""), "-state", state)

	t.Setenv(fido.VirtualKeysEnv, sock)
	keys, err := fido.Devices(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, k := range keys {
		found = found || (k.Path == sock && k.Virtual)
	}
	if !found {
		t.Fatalf("Devices() = %+v, want %s", keys, sock)
	}
	dev, err := fido.Open(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	att, err := makeCredential(context.Background(), dev)
	if err != nil || att.Format != "packed" {
		t.Fatalf("MakeCredential: %+v, %v", att, err)
	}
	dev.Close()

	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
	if _, err := os.Stat(sock); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket left behind: %v", err)
	}
	select {
	case line := <-out.lines:
		t.Errorf("more output: %q", line)
	default:
	}

	// The state file brings the credential back.
	sock, _, _ = serve(t, strings.NewReader(""), "-state", state)
	dev, err = fido.Open(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	h := fido.RPIDHash("challenge")
	if _, err := dev.GetAssertion(context.Background(), &fido.GetAssertionRequest{RPID: "example.com", ClientDataHash: h[:],
		AllowList: [][]byte{att.CredentialID}}); err != nil {
		t.Errorf("GetAssertion after a restart: %v", err)
	}
}

func TestModes(t *testing.T) {
	for _, tt := range []struct {
		args  []string
		check func(t *testing.T, dev *fido.Device)
	}{
		{[]string{"-presence", "deny"}, func(t *testing.T, dev *fido.Device) {
			if _, err := makeCredential(context.Background(), dev); !errors.Is(err, fido.StatusOperationDenied) {
				t.Errorf("MakeCredential = %v, want OPERATION_DENIED", err)
			}
		}},
		{[]string{"-u2f-only"}, func(t *testing.T, dev *fido.Device) {
			if att, err := makeCredential(context.Background(), dev); err != nil || att.Format != "fido-u2f" {
				t.Errorf("MakeCredential = %+v, %v; want a fido-u2f attestation", att, err)
			}
		}},
		{[]string{"-attestation", "none"}, func(t *testing.T, dev *fido.Device) {
			if att, err := makeCredential(context.Background(), dev); err != nil || att.Format != "none" {
				t.Errorf("MakeCredential = %+v, %v", att, err)
			}
		}},
		{[]string{"-attestation", "self"}, func(t *testing.T, dev *fido.Device) {
			if att, err := makeCredential(context.Background(), dev); err != nil || att.Format != "packed" {
				t.Errorf("MakeCredential = %+v, %v", att, err)
			}
		}},
	} {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			sock, _, _ := serve(t, strings.NewReader(""), tt.args...)
			dev, err := fido.Open(context.Background(), sock)
			if err != nil {
				t.Fatal(err)
			}
			defer dev.Close()
			tt.check(t, dev)
		})
	}
}

// TestEnterToTouch plays the person at the keyboard: the key asks, the
// person presses Enter, the credential is made.
func TestEnterToTouch(t *testing.T) {
	stdin, typist := io.Pipe()
	defer typist.Close()
	sock, out, _ := serve(t, stdin, "-presence", "stdin")
	dev, err := fido.Open(context.Background(), sock)
	if err != nil {
		t.Fatal(err)
	}
	defer dev.Close()
	done := make(chan error, 1)
	go func() { _, err := makeCredential(context.Background(), dev); done <- err }()
	if line := <-out.lines; line != "Touch requested for RP example.com (makeCredential); press Enter" {
		t.Errorf("prompt %q", line)
	}
	io.WriteString(typist, "\n")
	if err := <-done; err != nil {
		t.Errorf("MakeCredential: %v", err)
	}

	// At the end of the input nobody is there to touch the key.
	typist.Close()
	if _, err := makeCredential(context.Background(), dev); !errors.Is(err, fido.StatusOperationDenied) {
		t.Errorf("MakeCredential after stdin closed = %v, want OPERATION_DENIED", err)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-socket", "x", "extra"},
		{"-socket", "x", "-presence", "maybe"},
		{"-socket", "x", "-attestation", "odd"},
		{"-nope"},
	} {
		if err := run(context.Background(), args, strings.NewReader(""), io.Discard); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
