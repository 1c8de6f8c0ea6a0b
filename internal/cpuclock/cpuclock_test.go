package cpuclock_test

import (
	"crypto/sha256"
	"os"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/fidokit/fidokit/internal/cpuclock"
)

// TestClocks burns 50 ms of CPU on this goroutine: both clocks see at
// least that much go by, /proc to its 10 ms tick.
func TestClocks(t *testing.T) {
	if runtime.GOOS != "linux" {
		_, ok := cpuclock.Self()
		assert.False(t, ok)
		return
	}
	self0, ok := cpuclock.Self()
	require.True(t, ok)
	proc0, ok := cpuclock.Process(os.Getpid())
	require.True(t, ok)
	burn := 50 * time.Millisecond
	for start := time.Now(); time.Since(start) < burn; {
		sha256.Sum256(make([]byte, 4096))
	}
	self1, ok := cpuclock.Self()
	require.True(t, ok)
	proc1, ok := cpuclock.Process(os.Getpid())
	require.True(t, ok)
	// A busy loop is on a CPU but for preemption; allow a little.
	assert.GreaterOrEqual(t, self1-self0, burn*8/10)
	assert.GreaterOrEqual(t, proc1-proc0, burn*8/10-10*time.Millisecond)
}

func TestProcessGone(t *testing.T) {
	_, ok := cpuclock.Process(-1)
	assert.False(t, ok, "no such process")
}
