#!/usr/bin/env bash
# Runs every fidokit test the way CI does. On a fresh Debian machine, as
# root, it first installs what the tests need; elsewhere it says what is
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the test suite needs: PostgreSQL for the store tests;
# libfido2, its tools, pkg-config, gcc and binutils (nm) for the cgo backend,
# the preload shim and the fido2-tools tests; oathtool (an independent TOTP
# generator) and zbar-tools (zbarimg, an independent QR decoder) for the
# mfa tests; chromium for the browser test of examples/server. A later
# suite adds its own here, so one command keeps working on a new machine.
packages=(postgresql libfido2-dev fido2-tools pkg-config gcc binutils oathtool zbar-tools chromium)
missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
  else
    echo "missing packages: ${missing[*]} (run as root or: sudo apt-get install ${missing[*]})" >&2
    [ "${CI:-}" = true ] && exit 1
  fi
fi

step() { printf '\n== %s\n' "$*"; }

step gofmt
unformatted=$(gofmt -l $(find . -name '*.go' -not -path './.git/*'))
if [ -n "$unformatted" ]; then
  echo "gofmt needed on: $unformatted" >&2
  exit 1
fi

step go vet
go vet ./...

step "pure-Go build (CGO_ENABLED=0)"
# Everything builds without cgo: fido/libfido2 has a !cgo twin that fails
# at run time with a clear error.
CGO_ENABLED=0 go build ./...
CGO_ENABLED=0 go vet ./fido/libfido2/

step "PostgreSQL (a throwaway server for the store tests)"
# shellcheck source=scripts/postgres.sh
. scripts/postgres.sh
start_postgres

step "go test -race (unit, end-to-end, fuzz seed corpora, examples)"
go test -race -count=1 ./...

step "benchmarks (one iteration each, to keep them running)"
go test -run='^$' -bench=. -benchtime=1x ./... >/dev/null

if [ -n "${FIDOKIT_FUZZTIME:-}" ]; then
  step "fuzzing every target for $FIDOKIT_FUZZTIME (FIDOKIT_FUZZTIME)"
  # -fuzzminimizetime keeps the minimisation of a new input from taking
  # the default minute of a short run.
  for pkg in $(go list ./...); do
    for target in $(go test -list '^Fuzz' "$pkg" 2>/dev/null | grep '^Fuzz' || true); do
      echo "$pkg $target"
      go test -run='^$' -fuzz="^$target\$" -fuzztime="$FIDOKIT_FUZZTIME" -fuzzminimizetime=5s "$pkg" >/dev/null
    done
  done
fi

echo
echo "all tests passed"
