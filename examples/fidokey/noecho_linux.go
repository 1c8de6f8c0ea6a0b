package main

import (
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// noEcho turns off terminal echo on r while a PIN is typed, if r is a
// terminal. It returns the function that turns echo back on, and whether
// echo was turned off.
func noEcho(r io.Reader) (restore func(), ok bool) {
	f, isFile := r.(*os.File)
	if !isFile {
		return func() {}, false
	}
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return func() {}, false // not a terminal
	}
	quiet := *old
	quiet.Lflag &^= unix.ECHO
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &quiet); err != nil {
		return func() {}, false
	}
	return func() { unix.IoctlSetTermios(fd, unix.TCSETS, old) }, true
}
