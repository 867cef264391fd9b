# Starts a throwaway PostgreSQL cluster for one test run and exports DATABASE_URL.
#
# Source this file from bash. The cluster lives in a new temporary directory,
# listens only on a Unix socket there, and is stopped and deleted when the
# sourcing shell exits. When run as root, initdb and the server run as the
# `postgres` user, because PostgreSQL refuses to run as root. The cluster
# runs with fsync off: it is deleted after the run, so nothing in it needs
# to survive a machine crash.

pg_throwaway_fail() {
  echo "error: $1" >&2
  echo "Install Debian's 'postgresql' package (apt-get install postgresql), or set DATABASE_URL to a server you own." >&2
  exit 1
}

pg_throwaway_bindir() {
  local dir
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && [ -x "$dir/postgres" ]; then
      echo "$dir"
      return 0
    fi
  done
  if command -v pg_config >/dev/null 2>&1; then
    dir=$(pg_config --bindir)
    if [ -x "$dir/initdb" ] && [ -x "$dir/postgres" ]; then
      echo "$dir"
      return 0
    fi
  fi
  return 1
}

PG_BIN=$(pg_throwaway_bindir) || pg_throwaway_fail "no PostgreSQL server binaries (initdb, pg_ctl, postgres) found under /usr/lib/postgresql/*/bin"
PG_DIR=$(mktemp -d /tmp/billing-pg.XXXXXX)
PG_PORT=${PG_PORT:-$((20000 + RANDOM % 20000))}

if [ "$(id -u)" = "0" ]; then
  id postgres >/dev/null 2>&1 || pg_throwaway_fail "running as root but there is no 'postgres' user to run the server as"
  chown postgres:postgres "$PG_DIR"
  pg_as_owner() { runuser -u postgres -- "$@"; }
else
  pg_as_owner() { "$@"; }
fi

pg_as_owner "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres -A trust -E UTF8 --no-locale >"$PG_DIR/initdb.log" 2>&1 \
  || { cat "$PG_DIR/initdb.log" >&2; pg_throwaway_fail "initdb failed (log above)"; }

pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 start \
  -o "-c listen_addresses='' -c unix_socket_directories='$PG_DIR' -p $PG_PORT -c max_connections=200 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c shared_buffers=256MB" \
  >/dev/null || { cat "$PG_DIR/server.log" >&2; pg_throwaway_fail "the PostgreSQL server did not start (log above)"; }

pg_throwaway_stop() {
  pg_as_owner "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
}
trap pg_throwaway_stop EXIT

pg_as_owner "$PG_BIN/createdb" -h "$PG_DIR" -p "$PG_PORT" -U postgres billing

export PGHOST="$PG_DIR" PGPORT="$PG_PORT" PGUSER=postgres PGDATABASE=billing
export DATABASE_URL="postgres://postgres@localhost/billing?host=$PG_DIR&port=$PG_PORT"
echo "throwaway PostgreSQL at $PG_DIR (port $PG_PORT) from $PG_BIN" >&2
