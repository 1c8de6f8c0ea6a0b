package fidotest_test

import (
	"testing"

	"github.com/fidokit/fidokit/fido/fidotest"
)

// The pure-Go client, reaching the virtual key as a program reaches a real
// one: through a socket with hidraw framing.
func TestSocket(t *testing.T) { fidotest.Run(t, fidotest.OpenSocket, nil) }

// The pure-Go client on a key plugged in in process.
func TestInProcess(t *testing.T) { fidotest.Run(t, fidotest.OpenInProcess, nil) }
