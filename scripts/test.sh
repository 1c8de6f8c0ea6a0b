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
# The PostgreSQL store tests read FIDOKIT_POSTGRES_URL; each test creates
# its own database there. Unless it is already set, start a server that
# lives in a temporary directory, listens on loopback only with trust
# auth, and is stopped and deleted when this script exits.
if [ -n "${FIDOKIT_POSTGRES_URL:-}" ]; then
  echo "using FIDOKIT_POSTGRES_URL from the environment"
else
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ]; then
    echo "PostgreSQL not found in /usr/lib/postgresql (sudo apt-get install postgresql); the PostgreSQL store tests will skip" >&2
    [ "${CI:-}" = true ] && exit 1
  else
    pgdir=$(mktemp -d)
    pgrun=()
    if [ "$(id -u)" = 0 ]; then
      # initdb refuses to run as root: run the server as the postgres user
      # the Debian package creates.
      chown postgres: "$pgdir"
      pgrun=(runuser -u postgres --)
    fi
    pg() { (cd "$pgdir" && "${pgrun[@]}" "$pgbin/$1" "${@:2}"); }
    pg_cleanup() {
      if [ -f "$pgdir/data/postmaster.pid" ]; then
        pg pg_ctl -D "$pgdir/data" -m fast -w stop >/dev/null 2>&1 || true
      fi
      rm -rf "$pgdir"
    }
    trap pg_cleanup EXIT
    # A free loopback port: bash's /dev/tcp connects if something listens.
    pgport=$((20000 + RANDOM % 20000))
    while (exec 3<>"/dev/tcp/127.0.0.1/$pgport") 2>/dev/null; do
      pgport=$((pgport + 1))
    done
    pg initdb -D "$pgdir/data" --auth=trust -U fidokit -E UTF8 --no-sync >"$pgdir/initdb.log" 2>&1 ||
      { cat "$pgdir/initdb.log" >&2; exit 1; }
    cat >>"$pgdir/data/postgresql.conf" <<EOF
listen_addresses = '127.0.0.1'
port = $pgport
unix_socket_directories = '$pgdir'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
EOF
    pg pg_ctl -D "$pgdir/data" -l "$pgdir/server.log" -w start >/dev/null ||
      { cat "$pgdir/server.log" >&2; exit 1; }
    export FIDOKIT_POSTGRES_URL="postgres://fidokit@127.0.0.1:$pgport/postgres?sslmode=disable"
    echo "PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on 127.0.0.1:$pgport"
  fi
fi

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
