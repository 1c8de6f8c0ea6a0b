//go:build !linux

package cpuclock

import "time"

// Self is not measured outside Linux: ok is false.
func Self() (time.Duration, bool) { return 0, false }

// Process is not measured outside Linux: ok is false.
func Process(pid int) (time.Duration, bool) { return 0, false }
