package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fidokit/fidokit/fido"
)

// syncBuffer is a bytes.Buffer safe for the server goroutine and the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeAndEnroll starts the server as a person would, finds it through
// FIDOKIT_VIRTUAL_KEYS like any program, makes a credential over the
// socket, and checks that shutdown removes the socket.
func TestServeAndEnroll(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "key.sock")
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-socket", sock, "-state", filepath.Join(dir, "s.json")}, strings.NewReader(""), out)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(out.String(), "ready") {
		if time.Now().After(deadline) {
			t.Fatalf("no ready line: %q", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := strings.Count(out.String(), "\n"); got != 1 {
		t.Errorf("printed %d lines, want one: %q", got, out.String())
	}

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
	h := fido.RPIDHash("example.com")
	att, err := dev.MakeCredential(context.Background(), &fido.MakeCredentialRequest{
		ClientDataHash: h[:], RP: fido.RelyingParty{ID: "example.com"}, User: fido.User{ID: []byte{1}},
	})
	if err != nil || att.Format != "packed" {
		t.Fatalf("MakeCredential: %+v, %v", att, err)
	}
	dev.Close()

	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{}, {"-socket", "x", "-presence", "maybe"}, {"-socket", "x", "-attestation", "odd"}} {
		if err := run(context.Background(), args, strings.NewReader(""), io.Discard); err == nil {
			t.Errorf("run(%q) succeeded", args)
		}
	}
}
