#!/usr/bin/env bash
# Where the service's CPU goes on one route: starts the built service (release profile unless
# PROFILE=peak), seeds 100 deliveries, loads METHOD PATH with oha (32 connections, HTTP/1.1) as the
# article's page sends it (OPTIONS: a preflight; POST: a new delivery each time) and records 8 s
# with `perf record -g`; prints requests/s, then the inclusive share of the symbols that matter
# (TOP=N: the N symbols with the most self time instead; HTTP2=1: over HTTP/2; CONNS=N: N connections).
#
#   bash bench/profile.sh /delivery/1              # needs perf, oha, curl, python3, a built target/release
#   bash bench/profile.sh /delivery/all OPTIONS
#   TOP=40 bash bench/profile.sh /delivery POST
set -euo pipefail
path="${1:-/delivery/1}"
method="${2:-GET}"
port="${PORT:-19443}"
bin="$(cd "$(dirname "$0")/.." && pwd)/target/${PROFILE:-release}/delivery-api"
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
python3 - "$work" <<'PY'
import json, sqlite3, sys
con = sqlite3.connect(sys.argv[1] + "/bench.db", timeout=30)
con.execute("DELETE FROM deliveries")
con.executemany("INSERT INTO deliveries (id, reference, recipient, address) VALUES (?, ?, ?, ?)",
                [(i + 1, f"P-{i}", f"R {i}", f"{i} Street") for i in range(100)])
con.commit()
with open(sys.argv[1] + "/bodies.txt", "w") as f:
    for i in range(2_000_000):
        f.write(json.dumps({"reference": f"N-{i}", "recipient": "Bench", "address": "1 Post Road"}) + "\n")
PY
case "$method" in
  OPTIONS) args=(-m OPTIONS -H "Access-Control-Request-Method: GET"
                 -H "Access-Control-Request-Headers: authorization,content-type") ;;
  POST) args=(-m POST -a demo:demo-password -H "Content-Type: application/json" -Z bodies.txt) ;;
  *) args=(-m "$method" -a demo:demo-password) ;;
esac
[ -n "${HTTP2:-}" ] && args+=(--http2)
oha -z 12s -c "${CONNS:-32}" --no-tui --insecure -H "Origin: http://localhost:4200" "${args[@]}" \
  "https://localhost:$port$path" >oha.txt &
load=$!
sleep 2
perf record -F 2000 -g -p "$pid" -o perf.data -- sleep 8 2>/dev/null
wait "$load"
grep "Requests/sec" oha.txt
if [ -n "${TOP:-}" ]; then
  perf report -i perf.data --no-children --sort dso,symbol --stdio 2>/dev/null | grep -E "^ +[0-9]" |
    cut -c1-160 | head -"$TOP"
  exit
fi
perf report -i perf.data --children --sort symbol --stdio 2>/dev/null | grep -E "^ +[0-9]" |
  sed 's/ \+- \+- \+$//' | cut -c1-150 |
  grep -E "writev|fsync|httpauth.*call|fcntl64|DbFile::check|Watch::events|getrandom|validate::|CorsMiddleware.*call|RootSpan|sqlite3_step|read_cache|aes_gcm" |
  head -20
