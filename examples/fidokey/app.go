package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
)

// app is one run of the command: its streams, flags and secrets.
type app struct {
	ctx            context.Context
	stdout, stderr io.Writer
	getenv         func(string) string
	term           *terminal

	// Flags.
	device     string
	json       bool
	libfido2   bool
	pinFile    string
	newPINFile string

	// Flags of single commands.
	force           bool      // reset, credentials delete
	flagRP          string    // credentials list
	flagName        optString // credentials rename-user
	flagDisplayName optString
	flagRPs         listFlag // config min-pin-length
	forceChange     bool
	credentialID    string // largeblob
	keyFile         string
	outFile         string

	pin, newPIN *secret

	// touch is what Prompt.Touch says; "" means the default.
	touch string
}

// printJSON writes v as the command's one JSON document.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// say writes a line of the human result to standard output.
func (a *app) say(format string, args ...any) { fmt.Fprintf(a.stdout, format+"\n", args...) }

// note writes a message for the person to standard error.
func (a *app) note(format string, args ...any) { fmt.Fprintf(a.stderr, format+"\n", args...) }

// result prints doc with -json, or runs human otherwise.
func (a *app) result(doc any, human func()) error {
	if a.json {
		return a.printJSON(doc)
	}
	human()
	return nil
}
