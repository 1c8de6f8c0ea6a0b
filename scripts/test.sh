#!/usr/bin/env bash
# Runs every fidokit test the way CI does. On a fresh Debian machine, as
# root, it first installs what the tests need; elsewhere it says what is
# missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the test suite needs. Later suites (libfido2, PostgreSQL,
# a browser) add theirs here, so one command keeps working on a new machine.
packages=()
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
purego=$(go list ./... | grep -v -e '/fido/libfido2' -e '/internal/hid/preload' || true)
CGO_ENABLED=0 go build $purego

step "go test -race (unit, end-to-end, fuzz seed corpora, examples)"
go test -race -count=1 ./...

step "benchmarks (one iteration each, to keep them running)"
go test -run='^$' -bench=. -benchtime=1x ./... >/dev/null

echo
echo "all tests passed"
