package main

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/fido"
)

// TestReadLineCancel checks that Ctrl-C during a prompt returns at once,
// however long standard input stays silent, and that later prompts fail
// too rather than race for the abandoned read.
func TestReadLineCancel(t *testing.T) {
	r, w := io.Pipe()
	defer w.Close()
	var out strings.Builder
	term := newTerminal(r, &out)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err := term.readLine(ctx, "PIN: ", true)
	require.ErrorIs(t, err, context.Canceled)
	_, err = term.readLine(context.Background(), "again: ", false)
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, "PIN: ", out.String())
}

// TestPromptPIN checks where the PIN comes from, that it is asked for once
// per run, and that a PIN from a file or the environment is never tried
// twice, since each wrong try costs one of the key's retries.
func TestPromptPIN(t *testing.T) {
	newApp := func(stdin string, env map[string]string) (*app, *strings.Builder) {
		var stderr strings.Builder
		a := &app{ctx: context.Background(), stderr: &stderr, getenv: func(k string) string { return env[k] }}
		a.term = newTerminal(strings.NewReader(stdin), &stderr)
		a.pin = &secret{what: "PIN", file: &a.pinFile, env: envPIN, getenv: a.getenv, term: a.term}
		return a, &stderr
	}
	first := fido.PINRequest{Op: "credentialManagement", Retries: 8}
	retry := fido.PINRequest{Op: "credentialManagement", Retries: 7, Retry: true}

	t.Run("environment", func(t *testing.T) {
		a, stderr := newApp("", map[string]string{envPIN: "123456"})
		pin, err := a.promptPIN(a.ctx, first)
		require.NoError(t, err)
		assert.Equal(t, "123456", pin)
		_, err = a.promptPIN(a.ctx, retry)
		assert.ErrorContains(t, err, "not trying the PIN from $FIDOKIT_PIN again")
		assert.Empty(t, stderr.String(), "no prompt for a PIN from the environment")
	})
	t.Run("terminal once", func(t *testing.T) {
		a, stderr := newApp("1234\n", nil)
		for range 3 {
			pin, err := a.promptPIN(a.ctx, first)
			require.NoError(t, err)
			assert.Equal(t, "1234", pin)
		}
		assert.Equal(t, 1, strings.Count(stderr.String(), "PIN of the security key"))
	})
	t.Run("terminal retry", func(t *testing.T) {
		a, stderr := newApp("0000\n1234\n", nil)
		pin, err := a.promptPIN(a.ctx, first)
		require.NoError(t, err)
		assert.Equal(t, "0000", pin)
		pin, err = a.promptPIN(a.ctx, retry)
		require.NoError(t, err)
		assert.Equal(t, "1234", pin)
		assert.Contains(t, stderr.String(), "Wrong PIN (7 retries left).")
	})
	t.Run("few retries left", func(t *testing.T) {
		a, stderr := newApp("1234\n", nil)
		_, err := a.promptPIN(a.ctx, fido.PINRequest{Retries: 2})
		require.NoError(t, err)
		assert.Contains(t, stderr.String(), "PIN of the security key (2 retries left): ")
	})
	t.Run("nothing given", func(t *testing.T) {
		a, _ := newApp("", nil)
		_, err := a.promptPIN(a.ctx, first)
		assert.ErrorContains(t, err, "no PIN given: use -pin-file FILE, $FIDOKIT_PIN, or type it on a terminal")
	})
}
