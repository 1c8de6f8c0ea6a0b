# Sourced by test.sh and bench.sh: start_postgres sets FIDOKIT_POSTGRES_URL
# to a throwaway PostgreSQL server, unless it is already set. The server
# lives in a temporary directory, listens on loopback only with trust auth,
# and is stopped and deleted when the calling script exits. Without
# PostgreSQL it says what to install (and fails under CI=true).
start_postgres() {
  if [ -n "${FIDOKIT_POSTGRES_URL:-}" ]; then
    echo "using FIDOKIT_POSTGRES_URL from the environment"
    return
  fi
  pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ]; then
    echo "PostgreSQL not found in /usr/lib/postgresql (sudo apt-get install postgresql); the PostgreSQL store tests will skip" >&2
    if [ "${CI:-}" = true ]; then exit 1; fi
    return
  fi
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
  cat >>"$pgdir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $pgport
unix_socket_directories = '$pgdir'
max_connections = 200
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  pg pg_ctl -D "$pgdir/data" -l "$pgdir/server.log" -w start >/dev/null ||
    { cat "$pgdir/server.log" >&2; exit 1; }
  export FIDOKIT_POSTGRES_URL="postgres://fidokit@127.0.0.1:$pgport/postgres?sslmode=disable"
  echo "PostgreSQL $("$pgbin/postgres" --version | awk '{print $3}') on 127.0.0.1:$pgport"
}
