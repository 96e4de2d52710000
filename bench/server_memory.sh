#!/usr/bin/env bash
# Resident memory of `steward serve` holding a large firm, idle and while it serves the
# billing requests: readiness, drafts and KPIs for one month.
#
# Generate the firm first (about 3 minutes; about 2 GB on disk):
#   target/release/steward-bench billing --people 2000 --days 260 --database bench.db
# Then:
#   bash bench/server_memory.sh bench.db 2026-11
#
# Prints one line per step with the server's VmRSS and VmHWM from /proc/<pid>/status, in
# MiB, and the seconds the request took. The server listens on 127.0.0.1 only and is stopped
# by the pid this script started. Needs curl.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
DATABASE="${1:?usage: server_memory.sh DATABASE [PERIOD]}"
PERIOD="${2:-2026-11}"
PORT="${PORT:-18571}"
STEWARD="${STEWARD:-$REPO/target/release/steward}"
BASE="http://127.0.0.1:$PORT"

if [ ! -f "$DATABASE" ]; then
    echo "no database at $DATABASE; generate one with steward-bench billing first" >&2
    exit 2
fi
if [ ! -x "$STEWARD" ]; then
    echo "no steward binary at $STEWARD; run cargo build --release -p steward" >&2
    exit 2
fi

# A token of its own for each run: the server reads STEWARD_ADMIN_TOKEN only while the
# database has no admin token yet.
TOKEN=$("$STEWARD" tokens create "memory-benchmark-$(date +%s)" --role admin \
    --database "$DATABASE" | grep -o 'stw_[A-Za-z0-9_-]*' | head -1)
if [ -z "$TOKEN" ]; then
    echo "could not create a token on $DATABASE" >&2
    exit 1
fi

"$STEWARD" serve --database "$DATABASE" --listen "127.0.0.1:$PORT" >server_memory.log 2>&1 &
PID=$!
trap 'kill "$PID" 2>/dev/null || true; wait "$PID" 2>/dev/null || true' EXIT

for _ in $(seq 1 100); do
    curl -sf "$BASE/healthz" >/dev/null && break
    sleep 0.2
done
curl -sf "$BASE/healthz" >/dev/null || { echo "the server did not start" >&2; exit 1; }

memory() {
    awk -v step="$1" -v took="${2:-}" '
        /^VmRSS/ { rss = $2 / 1024 }
        /^VmHWM/ { hwm = $2 / 1024 }
        END { printf "%-28s VmRSS %6.1f MiB  VmHWM %6.1f MiB  %s\n", step, rss, hwm, took }
    ' "/proc/$PID/status"
}

# Prints the seconds a request took. Stops the script when the response is not a success,
# because the memory after a rejected request measures nothing.
request() {
    local started ended status
    started=$(date +%s%N)
    status=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $TOKEN" "$@")
    ended=$(date +%s%N)
    case "$status" in
        2??) ;;
        *) echo "request $* failed with HTTP status $status; see server_memory.log" >&2; return 1 ;;
    esac
    awk -v ns="$((ended - started))" 'BEGIN { printf "%.2f s", ns / 1e9 }'
}

sleep 10
memory "idle after 10 s"
took=$(request "$BASE/api/v1/billing-readiness?period=$PERIOD")
memory "after readiness" "$took"
took=$(request -X POST -H 'Content-Type: application/json' \
    -d "{\"period\": \"$PERIOD\"}" "$BASE/api/v1/billing-drafts")
memory "after drafts" "$took"
took=$(request "$BASE/api/v1/kpis?period=$PERIOD")
memory "after KPIs" "$took"
sleep 5
memory "idle 5 s later"
