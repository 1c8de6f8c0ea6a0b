// Package fidotools has no API: its tests run libfido2's command-line
// tools (fido2-token, fido2-cred, fido2-assert from Debian's fido2-tools)
// against fidokit virtual keys, through the LD_PRELOAD shim of
// github.com/fidokit/fidokit/internal/hid/preload, and check their real
// output. A second, independent host implementation (libfido2) agreeing
// with the virtual key is evidence that the key speaks CTAP as real keys
// do, not just as fidokit's own client expects.
//
// The tools are found on $PATH. Without them (or gcc, to build the shim)
// the tests skip with the apt-get command to run, or fail when CI=true.
package fidotools
