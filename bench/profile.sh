#!/usr/bin/env bash
# Where the service's CPU goes on one route: starts the built service (peak profile unless
# PROFILE=release), seeds 100 deliveries, loads PATH with oha (32 connections, HTTP/1.1) and records
# 8 s with `perf record -g`; prints the inclusive share of the symbols that matter.
#
#   bash bench/profile.sh /delivery/1        # needs perf, oha, curl, python3, a built target/peak
set -euo pipefail
path="${1:-/delivery/1}"
port="${PORT:-19443}"
bin="$(cd "$(dirname "$0")/.." && pwd)/target/${PROFILE:-peak}/delivery-api"
work="$(mktemp -d)"
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
cd "$work"
RUST_LOG=warn "$bin" serve --bind "127.0.0.1:$port" --no-demo-page \
  --database-url "sqlite://$work/bench.db" >/dev/null 2>service.log &
pid=$!
until curl -sf -o /dev/null --cacert certs/dev-ca.crt "https://localhost:$port/health"; do
  kill -0 "$pid" || { cat service.log; exit 1; }
  sleep 0.2
done
python3 - "$work/bench.db" <<'PY'
import sqlite3, sys
con = sqlite3.connect(sys.argv[1], timeout=30)
con.execute("DELETE FROM deliveries")
con.executemany("INSERT INTO deliveries (id, reference, recipient, address) VALUES (?, ?, ?, ?)",
                [(i + 1, f"P-{i}", f"R {i}", f"{i} Street") for i in range(100)])
con.commit()
PY
oha -z 12s -c 32 --no-tui --insecure -a demo:demo-password -H "Origin: http://localhost:4200" \
  "https://localhost:$port$path" >oha.txt &
load=$!
sleep 2
perf record -F 2000 -g -p "$pid" -o perf.data -- sleep 8 2>/dev/null
wait "$load"
grep "Requests/sec" oha.txt
perf report -i perf.data --children --sort symbol --stdio 2>/dev/null | grep -E "^ +[0-9]" |
  sed 's/ \+- \+- \+$//' | cut -c1-150 |
  grep -E "writev|httpauth.*call|fcntl64|DbFile::check|getrandom|validate::|CorsMiddleware.*call|sqlite3_step|read_cache|aes_gcm" |
  head -20
