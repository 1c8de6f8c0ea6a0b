#!/usr/bin/env bash
# Runs fidokit's performance benchmarks pinned to one core (taskset) and
# prints one table: each path's time and allocations per operation and
# x-floor, its cost over the crypto it cannot do without, measured in the
# same run. Absolute times on a shared machine are noise; compare ratios.
#
#   bash scripts/bench.sh                 # every benchmark below, once
#   COUNT=5 CPU=1 bash scripts/bench.sh   # five runs each, on core 1
#   BENCHTIME=2s bash scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cpu=${CPU:-0}
count=${COUNT:-1}
benchtime=${BENCHTIME:-1s}
command -v taskset >/dev/null || { echo "taskset not found (apt-get install util-linux)" >&2; exit 1; }

# shellcheck source=scripts/postgres.sh
. scripts/postgres.sh
start_postgres >&2

# package and benchmark pattern, one per line.
benchmarks=(
  "./webauthn FinishLogin$"
  "./webauthn FinishLoginStore"
  "./webauthn BeginLogin"
  "./webauthn ECDSAP256Verify"
  "./webauthn HTTPSignIn"
  "./fido GetAssertion"
  "./fido Ceremony"
  "./fido ECDSAP256SignVerify"
  "./internal/hid RoundTrip"
  "./mfa VerifyTOTP|VerifyRecoveryCode|SecondFactorKey"
)

# Whether throughput rises with more clients is a question of cores, so
# these run again on all of them, listed as <pkg>@all-cores.
scaling=(
  "./webauthn HTTPSignIn/(memory|sqlite|postgres)/clients=(8|64)$"
)

out=$(mktemp)
run() { # run <pkg> <pattern> <label> [command to run go test under...]
  local pkg=$1 pat=$2 label=$3
  shift 3
  echo "running $pkg -bench '$pat' ${*:+under $*}" >&2
  "$@" go test -run '^$' -bench "$pat" -benchmem -benchtime "$benchtime" -count "$count" "$pkg" |
    sed -n "s|^Benchmark|${label#./} Benchmark|p" >>"$out" || { echo "benchmarks of $pkg failed" >&2; exit 1; }
}
for b in "${benchmarks[@]}"; do
  run "${b%% *}" "${b#* }" "${b%% *}" taskset -c "$cpu"
done
for b in "${scaling[@]}"; do
  run "${b%% *}" "${b#* }" "${b%% *}@all-cores"
done

# Each line: pkg name iterations (value unit)...; the table keeps ns/op,
# x-floor, allocs/op and B/op, and any other metric in the last column.
awk '
BEGIN { printf "%-58s %12s %8s %10s %10s  %s\n", "benchmark", "ns/op", "x-floor", "allocs/op", "B/op", "other" }
{
  name = $1 " " $2; sub(/-[0-9]+$/, "", name)
  ns = xf = al = by = "-"; other = ""
  for (i = 4; i < NF; i += 2) {
    v = $i; u = $(i + 1)
    if (u == "ns/op") ns = v
    else if (u == "x-floor") xf = v
    else if (u == "allocs/op") al = v
    else if (u == "B/op") by = v
    else other = other v " " u "  "
  }
  printf "%-58s %12s %8s %10s %10s  %s\n", name, ns, xf, al, by, other
}' "$out"
rm -f "$out"
