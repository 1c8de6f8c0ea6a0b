//go:build !linux

package main

import "io"

// noEcho cannot turn off echo on this platform without a terminal
// library; a PIN typed here is shown as typed. Use -pin-file or
// FIDOKIT_PIN instead.
func noEcho(io.Reader) func() { return func() {} }

// isTerminal cannot tell a terminal here, so the guide takes its flags'
// defaults instead of asking.
func isTerminal(io.Reader) bool { return false }
