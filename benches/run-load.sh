#!/usr/bin/env bash
# Runs the load harness and PostgreSQL's own pgbench on the same server in
# one go, and prints how the harness compares.
#
#   bash benches/run-load.sh [--events N] [--workers C] [--batch B]
#
# Uses DATABASE_URL when it is set; otherwise starts a throwaway cluster
# with scripts/pg-throwaway.sh and stops it afterwards. The comparison runs
# pgbench twice at the same client count as the harness's workers:
#
#   - built-in TPC-B at scale factor C (pgbench's documentation advises a
#     scale of at least the client count, or it measures branch contention);
#   - a one-row hot update, `UPDATE ... SET value = value + 1` on one row.
#
# and prints events/s over TPC-B tps and hot consumptions/s over hot-update
# tps. pgbench uses its defaults otherwise (simple query protocol). On a
# server you own, the pgbench tables go into a database named
# billing_pgbench, created if missing; the harness writes into DATABASE_URL.
set -euo pipefail
cd "$(dirname "$0")/.."

EVENTS=20000
WORKERS=8
BATCH=256
PGBENCH_SECONDS=${PGBENCH_SECONDS:-20}
while [ $# -gt 0 ]; do
  case "$1" in
    --events) EVENTS="$2"; shift 2 ;;
    --workers) WORKERS="$2"; shift 2 ;;
    --batch) BATCH="$2"; shift 2 ;;
    *) echo "error: unknown argument $1; use --events N, --workers C and --batch B" >&2; exit 2 ;;
  esac
done

if [ -z "${DATABASE_URL:-}" ]; then
  # shellcheck source=scripts/pg-throwaway.sh
  source scripts/pg-throwaway.sh
fi

PGBENCH=$(command -v pgbench || true)
if [ -z "$PGBENCH" ]; then
  for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
    if [ -x "$dir/pgbench" ]; then PGBENCH="$dir/pgbench"; break; fi
  done
fi
[ -n "$PGBENCH" ] || { echo "error: pgbench not found; install Debian's 'postgresql-contrib' or 'postgresql' package" >&2; exit 1; }
PSQL=$(dirname "$PGBENCH")/psql
[ -x "$PSQL" ] || PSQL=psql

cargo build --release -p billing-benches --bin load
echo "== load harness: $EVENTS events, $WORKERS workers, $BATCH per transaction"
LOAD_OUTPUT=$(target/release/load --events "$EVENTS" --workers "$WORKERS" --batch "$BATCH")
echo "$LOAD_OUTPUT"
EVENTS_PER_SECOND=$(echo "$LOAD_OUTPUT" | sed -n 's/^EVENTS_PER_SECOND=//p')
CONSUMPTIONS_PER_SECOND=$(echo "$LOAD_OUTPUT" | sed -n 's/^CONSUMPTIONS_PER_SECOND=//p')

# pgbench gets a database of its own on the same server, so its tables
# never mix with the billing schema.
"$PSQL" "$DATABASE_URL" -q -v ON_ERROR_STOP=1 -tAc "SELECT 1 FROM pg_database WHERE datname = 'billing_pgbench'" \
  | grep -q 1 || "$PSQL" "$DATABASE_URL" -q -v ON_ERROR_STOP=1 -c "CREATE DATABASE billing_pgbench"
BENCH_URL=$(echo "$DATABASE_URL" | sed -E 's#^(postgres(ql)?://[^/]*)/[^?]*#\1/billing_pgbench#')

echo "== pgbench TPC-B: scale $WORKERS, $WORKERS clients, ${PGBENCH_SECONDS} s"
"$PGBENCH" -i -q -s "$WORKERS" "$BENCH_URL" >/dev/null 2>&1
TPCB_OUTPUT=$("$PGBENCH" -n -c "$WORKERS" -j 2 -T "$PGBENCH_SECONDS" "$BENCH_URL" 2>&1)
TPCB_TPS=$(echo "$TPCB_OUTPUT" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
echo "tps = $TPCB_TPS"

echo "== pgbench one-row hot update: $WORKERS clients, ${PGBENCH_SECONDS} s"
"$PSQL" "$BENCH_URL" -q -v ON_ERROR_STOP=1 \
  -c "DROP TABLE IF EXISTS hot_row" \
  -c "CREATE TABLE hot_row (id integer PRIMARY KEY, value bigint NOT NULL)" \
  -c "INSERT INTO hot_row VALUES (1, 0)"
HOT_SCRIPT=$(mktemp)
trap 'rm -f "$HOT_SCRIPT"; if declare -F pg_throwaway_stop >/dev/null; then pg_throwaway_stop; fi' EXIT
echo "UPDATE hot_row SET value = value + 1 WHERE id = 1;" >"$HOT_SCRIPT"
HOT_OUTPUT=$("$PGBENCH" -n -c "$WORKERS" -j 2 -T "$PGBENCH_SECONDS" -f "$HOT_SCRIPT" "$BENCH_URL" 2>&1)
HOT_TPS=$(echo "$HOT_OUTPUT" | sed -n 's/^tps = \([0-9.]*\) .*/\1/p')
echo "tps = $HOT_TPS"

echo "== ratios"
awk -v e="$EVENTS_PER_SECOND" -v t="$TPCB_TPS" -v c="$CONSUMPTIONS_PER_SECOND" -v h="$HOT_TPS" 'BEGIN {
  printf "events/s over TPC-B tps:            %.1f / %.1f = %.2f\n", e, t, e / t
  printf "consumptions/s over hot-update tps: %.1f / %.1f = %.2f\n", c, h, c / h
}'
