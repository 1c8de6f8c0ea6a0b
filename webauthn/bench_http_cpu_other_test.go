//go:build !linux

package webauthn_test

import "time"

// rpCPU and genCPU are measured on Linux only (from /proc and
// getrusage); elsewhere the CPU metrics are not reported.
func rpCPU(pid int) (time.Duration, bool) { return 0, false }

func genCPU() (time.Duration, bool) { return 0, false }
