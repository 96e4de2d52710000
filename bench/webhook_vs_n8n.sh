#!/usr/bin/env bash
# Webhook in, expense routed, answer out: Steward beside n8n, over HTTP on loopback, in one run.
#
# Steward side: creates the inbound endpoint of bench/webhook/expenses.yaml on a new database
# with the CLI, starts `steward serve` with the rule in bench/webhook/rules, checks both
# answers, then drives the endpoint with wrk and post_expense.lua at each concurrency level.
# After each level it counts the deliveries committed and the answers that disagree with the
# committed expense, and prints one JSON line.
#
# n8n side: runs ../shared/bench/n8n_baseline.sh (beside this repository) with the same
# duration and concurrency levels, and prints its results as JSON lines too. That script
# installs n8n into a scratch folder (about 6 minutes and 1.8 GB the first time).
#
# Usage:   bash bench/webhook_vs_n8n.sh
#          DURATION=20 CONCURRENCY="1 8 32" DURABILITY=full N8N_MODES=legacy_save_all_pool \
#            bash bench/webhook_vs_n8n.sh
#          SKIP_N8N=1 bash bench/webhook_vs_n8n.sh        (Steward only)
#
# Needs wrk (apt-get install wrk), curl, sqlite3 and python3. Every request goes to
# 127.0.0.1; wrk runs are bounded by `timeout`, and the server is stopped by the pid this
# script started.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
SHARED_BENCH="${SHARED_BENCH:-$REPO/../shared/bench}"
LUA="${LUA:-$SHARED_BENCH/post_expense.lua}"
DURATION="${DURATION:-20}"                 # seconds per wrk run
CONCURRENCY="${CONCURRENCY:-1 8 32}"
DURABILITY="${DURABILITY:-full}"           # full (the default of steward serve) or normal
PORT="${PORT:-18088}"
N8N_MODES="${N8N_MODES:-legacy_save_all_pool}"   # n8n's fastest durable configuration
STEWARD="${STEWARD:-}"                     # a steward binary; built in release mode when empty
WORK="$(mktemp -d /tmp/steward-webhook-bench.XXXXXX)"

command -v wrk >/dev/null || { echo "wrk is missing; install it with: apt-get install wrk"; exit 2; }
for tool in curl sqlite3 python3; do
  command -v "$tool" >/dev/null || { echo "$tool is missing; install it first"; exit 2; }
done
[ -f "$LUA" ] || {
  echo "post_expense.lua not found at $LUA; set LUA=<path> or lay shared/ beside the repository"
  exit 2
}

if [ -z "$STEWARD" ]; then
  echo "== building steward (release)" >&2
  (cd "$REPO" && cargo build --release --locked -p steward >&2)
  STEWARD="$REPO/target/release/steward"
fi

echo "== $(date -u +%FT%TZ) $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p' | head -1)," \
  "durability=$DURABILITY duration=${DURATION}s concurrency='$CONCURRENCY'" >&2

DB="$WORK/bench.db"
TOKEN="$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
ADMIN="stw_bench_$(head -c 24 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')"
export STEWARD_LOG="${STEWARD_LOG:-warn}"

STEWARD_WEBHOOK_SECRET="$TOKEN" "$STEWARD" webhooks inbound add expenses \
  --config "$REPO/bench/webhook/expenses.yaml" --database "$DB" >/dev/null
URL="http://127.0.0.1:${PORT}/hooks/expenses/${TOKEN}"

SERVER_PID=""
stop_server() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 30); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 1; done
    kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  SERVER_PID=""
}
cleanup() { stop_server; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

STEWARD_ADMIN_TOKEN="$ADMIN" "$STEWARD" serve --database "$DB" --durability "$DURABILITY" \
  --rules "$REPO/bench/webhook/rules" --listen "127.0.0.1:${PORT}" \
  > "$WORK/serve.log" 2>&1 &
SERVER_PID=$!
ready=0
for _ in $(seq 1 120); do
  if curl -s -m 2 -o /dev/null -w '%{http_code}' "http://127.0.0.1:${PORT}/healthz" | grep -q 200; then
    ready=1; break
  fi
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.5
done
[ "$ready" = 1 ] || { echo "steward did not become ready:"; tail -20 "$WORK/serve.log"; exit 1; }

# Both branches answer as the rule says before any load is measured.
for pair in "250 auto" "750 manager"; do
  set -- $pair
  answer="$(curl -s -m 10 -X POST -H 'Content-Type: application/json' \
    -d "{\"amount\":$1,\"employee\":\"emp-1\",\"category\":\"travel\"}" "$URL")"
  echo "$answer" | grep -q "\"route\":\"$2\"" || { echo "amount $1 answered $answer, expected route $2"; exit 1; }
done
timeout 60 wrk -t1 -c4 -d5s --timeout 10s -s "$LUA" "$URL" > "$WORK/warmup.txt" 2>&1 || true

committed() {
  sqlite3 -cmd ".timeout 5000" "$DB" "SELECT count(*) FROM inbound_receipts WHERE endpoint = 'expenses'"
}
# Answers stored with each committed delivery that disagree with the rule for its amount.
wrong_answers() {
  sqlite3 -cmd ".timeout 5000" "$DB" "
    SELECT count(*) FROM inbound_receipts r JOIN events e ON e.id = r.event
    WHERE r.endpoint = 'expenses' AND (r.status != 200 OR json_extract(r.body, '$.route') IS NOT
      CASE WHEN json_extract(e.data, '$.amount') > 500 THEN 'manager' ELSE 'auto' END)"
}

for C in $CONCURRENCY; do
  T=$(( C < 2 ? 1 : 2 ))
  before="$(committed)"
  timeout $(( DURATION + 60 )) wrk -t"$T" -c"$C" -d"${DURATION}s" --timeout 10s --latency \
    -s "$LUA" "$URL" > "$WORK/wrk-c$C.txt" 2>&1 || echo "wrk exited $?" >&2
  sleep 1
  after="$(committed)"
  python3 - "$C" "$T" "$DURABILITY" "$((after - before))" "$(wrong_answers)" "$WORK/wrk-c$C.txt" <<'PY'
import json, sys
c, t, durability, committed, wrong, path = sys.argv[1:]
lines = [l for l in open(path) if l.startswith("WRKJSON ")]
if not lines:
    sys.exit("wrk printed no result; see " + path)
result = {"system": "steward", "config": "token, synchronous, idempotency none",
          "durability": durability, "connections": int(c), "threads": int(t)}
result.update(json.loads(lines[-1][8:]))
result["committed"] = int(committed)
result["wrong_answers"] = int(wrong)
# Requests still in flight when wrk stops commit without being counted by wrk, so more
# commits than answers is expected; fewer would mean an answer without its commit.
result["every_answer_committed"] = result["committed"] >= result["requests"]
print(json.dumps(result))
PY
done
stop_server

if [ "${SKIP_N8N:-0}" = 1 ]; then
  echo "== n8n skipped (SKIP_N8N=1)" >&2
  exit 0
fi
if [ ! -f "$SHARED_BENCH/n8n_baseline.sh" ]; then
  echo "== n8n_baseline.sh not found in $SHARED_BENCH; lay the project's shared/ folder beside" \
    "the repository, or set SHARED_BENCH=<folder>, to run n8n in the same run" >&2
  exit 0
fi
N8N_OUT="$WORK/n8n"
DURATION="$DURATION" CONCURRENCY="$CONCURRENCY" MODES="$N8N_MODES" OUT="$N8N_OUT" \
  bash "$SHARED_BENCH/n8n_baseline.sh" >&2
python3 - "$N8N_OUT/results.csv" <<'PY'
import csv, json, sys
for row in csv.DictReader(open(sys.argv[1])):
    result = {"system": "n8n", "config": row["mode"], "connections": int(row["concurrency"])}
    for key in ["requests", "duration_s", "rps", "p50_ms", "p90_ms", "p99_ms", "p999_ms",
                "max_ms", "mean_ms", "err_connect", "err_read", "err_write", "err_status",
                "err_timeout"]:
        if row.get(key):
            result[key] = float(row[key]) if "." in row[key] else int(row[key])
    result["saved_after"] = row["saved_after"]
    print(json.dumps(result))
PY
