// Package cpuclock reads how much CPU time a process has used, user and
// system, for benchmarks that put a process's CPU per operation beside a
// floor measured in the same run. It reads Linux's getrusage(2) and
// /proc; elsewhere ok is false and callers leave the metric out.
package cpuclock
