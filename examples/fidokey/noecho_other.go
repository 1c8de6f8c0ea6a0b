//go:build !linux

package main

import "io"

// noEcho cannot turn off echo on this platform without a terminal
// library; a PIN typed here is shown as typed. Use -pin-file or
// FIDOKIT_PIN instead.
func noEcho(io.Reader) (restore func(), ok bool) { return func() {}, false }
