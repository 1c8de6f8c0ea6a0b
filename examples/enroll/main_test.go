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
	"github.com/fidokit/fidokit/fido/virtual"
)

// TestEnrollVirtual runs the whole guided flow against a virtual key and
// checks what a person would read, step by step.
func TestEnrollVirtual(t *testing.T) {
	t.Setenv(fido.VirtualKeysEnv, "")
	state := filepath.Join(t.TempDir(), "key.json")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, []string{"-virtual", "-state", state, "-user", "bob@example.org", "-rp", "example.org"}, strings.NewReader(""), &out); err != nil {
		t.Fatalf("run: %v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{
		"Step 1/5  Looking for a security key",
		"Virtual key ready (state in " + state + ")",
		"Step 2/5  Reading the key",
		"FIDO_2_1",
		"Step 3/5  Protecting the key with a PIN",
		"The key has no PIN. Setting one",
		"PIN set.",
		"Step 4/5  Registering the key with example.org for bob@example.org",
		"Touch your security key...",
		"(packed attestation)",
		"Step 5/5  Signing in with the key to prove it works",
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
	err := run(context.Background(), []string{"-device", filepath.Join(t.TempDir(), "hidraw9")}, strings.NewReader(""), &out)
	if err == nil {
		t.Fatalf("no error for a missing device:\n%s", out.String())
	}
	if !strings.Contains(err.Error(), "no security key") {
		t.Errorf("err = %v", err)
	}
}

func TestEnrollBadFlags(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-nope"}, strings.NewReader(""), &out); err == nil {
		t.Fatal("no error for an unknown flag")
	}
	if err := run(context.Background(), []string{"extra"}, strings.NewReader(""), &out); err == nil {
		t.Fatal("no error for a stray argument")
	}
}

// TestEnrollPIN runs the flow on virtual keys in the PIN states a person
// meets: no PIN wanted, a PIN chosen on the command line, a key that
// already has a PIN typed at the prompt after a wrong one, and no PIN to
// give at all.
func TestEnrollPIN(t *testing.T) {
	t.Setenv(fido.VirtualKeysEnv, "")
	tests := []struct {
		name    string
		args    []string
		state   string // a state file to start from; "" for a new key
		input   string // what the person types
		want    []string
		notWant []string
		wantErr string
	}{
		{
			name:    "no-pin",
			args:    []string{"-no-pin"},
			want:    []string{"The key has no PIN; skipping as asked", "Signed in as"},
			notWant: []string{"PIN set.", "Enter the PIN"},
		},
		{
			name:    "pin flag",
			args:    []string{"-pin", "horse-battery"},
			want:    []string{"PIN set.", "Signed in as"},
			notWant: []string{"Enter the PIN", "horse-battery"},
		},
		{
			name:    "existing PIN typed after a wrong one",
			args:    []string{"-pin", "wrong-pony"},
			state:   "correct-staple",
			input:   "correct-staple\ncorrect-staple\n",
			want:    []string{"The key has a PIN (8 tries left)", "Wrong PIN; 7 tries left", "Enter the PIN of your security key (7 tries left)", "Enter the PIN of your security key (8 tries left)", "Signed in as"},
			notWant: []string{"correct-staple", "wrong-pony", "Wrong PIN; 6"},
		},
		{
			name:    "existing PIN, nothing typed",
			args:    []string{"-pin", "wrong-pony"},
			state:   "correct-staple",
			wantErr: "PIN",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "key.json")
			if tt.state != "" {
				k, err := virtual.New(&virtual.Config{StatePath: state, PIN: tt.state})
				if err != nil {
					t.Fatal(err)
				}
				k.Close()
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var out bytes.Buffer
			args := append([]string{"-virtual", "-state", state}, tt.args...)
			err := run(ctx, args, strings.NewReader(tt.input), &out)
			got := out.String()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("run = %v, want an error about %q\n%s", err, tt.wantErr, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("run: %v\n%s", err, got)
			}
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("output lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(got, w) {
					t.Errorf("output has %q:\n%s", w, got)
				}
			}
		})
	}
}
