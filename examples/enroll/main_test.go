package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/fidokit/fidokit/fido"
)

// TestEnrollVirtual runs the whole guided flow against a virtual key and
// checks what a person would read, step by step.
func TestEnrollVirtual(t *testing.T) {
	t.Setenv(fido.VirtualKeysEnv, "")
	state := filepath.Join(t.TempDir(), "key.json")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"-virtual", "-state", state, "-user", "bob@example.org", "-rp", "example.org"}, &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"Step 1/4  Looking for a security key",
		"Virtual key ready (state in " + state + ")",
		"Step 2/4  Reading the key",
		"FIDO_2_1",
		"Step 3/4  Registering the key with example.org for bob@example.org",
		"Touch your security key...",
		"(packed attestation)",
		"Step 4/4  Signing in with the key to prove it works",
		"Signed in as bob@example.org",
		"Done.",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	// One touch for enrolment and one for the sign-in.
	if n := strings.Count(got, "Touch your security key"); n != 2 {
		t.Errorf("%d touch prompts, want 2:\n%s", n, got)
	}
	// The sign-in used the credential just registered.
	reg := regexp.MustCompile(`Registered credential ([0-9a-f.]+) `).FindStringSubmatch(got)
	used := regexp.MustCompile(`with credential ([0-9a-f.]+) `).FindStringSubmatch(got)
	if reg == nil || used == nil || reg[1] != used[1] {
		t.Errorf("registered %v, signed in with %v", reg, used)
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("state file: %v", err)
	}
}

func TestEnrollMissingDevice(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"-device", filepath.Join(t.TempDir(), "hidraw9")}, &out)
	if err == nil {
		t.Fatalf("no error for a missing device:\n%s", out.String())
	}
	if !strings.Contains(err.Error(), "no security key") {
		t.Errorf("err = %v", err)
	}
}

func TestEnrollBadFlags(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-nope"}, &out); err == nil {
		t.Fatal("no error for an unknown flag")
	}
	if err := run(context.Background(), []string{"extra"}, &out); err == nil {
		t.Fatal("no error for a stray argument")
	}
}
