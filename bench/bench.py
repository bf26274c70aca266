#!/usr/bin/env python3
"""delivery-api beside its ceiling, in one run, on loopback over HTTPS.

Builds, starts delivery-api and the ceiling server (bench/ceiling.rs: actix-web + rustls answering
fixed bytes, no auth, no database), seeds N deliveries, and drives both with oha, scenario by
scenario, the two targets interleaved (ceiling, service, ceiling, service, ...), over HTTP/1.1 and
over HTTP/2 (what a browser negotiates). Prints one table per protocol: requests/s, p50, p99,
non-2xx, and each ratio to the ceiling; then one client on one connection making sequential calls
(latency, as a page calling the API in a row sees it); then GET /delivery/all at 10 / 100 / 1,000 /
10,000 rows, and the login limits under a wrong-password flood. It reports; it passes or fails
nothing.

Engines (--engines): the service on SQLite (`sqlite`), on PostgreSQL (`pg`: one instance), and two
instances on one PostgreSQL database (`pg2`: oha drives both at once, half the connections each;
req/s is their sum). PostgreSQL runs from a throwaway cluster in the work directory, with its
defaults (fsync on, synchronous_commit on: a commit is on disk before it is acknowledged, as
SQLite's synchronous=FULL). The tables show one row per engine beside the ceiling.

    python3 bench/bench.py                 # 32 connections, 5 s per run, 3 rounds, 100 rows
    python3 bench/bench.py --protocol h2 --no-scaling --no-flood
    python3 bench/bench.py --engines sqlite,pg,pg2 --no-scaling --no-flood
    python3 bench/bench.py --baseline /tmp/old/delivery-api   # an older build, side by side

It builds and runs the `release` profile (what `cargo run --release` builds; `--profile peak` for
fat LTO). Besides req/s and latency it reports each process's CPU time per answer (user + system,
all threads, from /proc), and ends with one line of ratios a script can read (`summary {...}`).
POST is measured in rows created per second, against a second yardstick: bench/durable.rs, the
same creations made durable by one writer with group commit and no HTTP (the disk's limit). The read
scenarios also run the ceiling as a `same head` ceiling: answering the service's own status and header
fields (recorded from it), so that what sending those fields costs shows apart from the rest.
`--pin` puts oha on one CPU and the servers on the others (without it, the client preempts them).

Needs oha (`cargo install oha --locked`) and curl. Absolute figures move between runs on shared
machines: compare the ratios, which are measured side by side.
"""

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "http://localhost:4200"
DURABLE_BIN = None  # set in main(): target/<profile>/examples/durable
OHA = ["oha"]  # with --pin: taskset's prefix first
ARTICLE_HEADERS = [
    "Origin: " + ORIGIN,
    "Accept: application/json, text/plain, */*",
    "Content-Type: application/json; charset=utf-8",
]


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, **kw)


def wait_https(port, cacert, path="/health", timeout=30):
    deadline = time.time() + timeout
    while time.time() < deadline:
        r = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--cacert", cacert,
             f"https://localhost:{port}{path}"],
            capture_output=True, text=True)
        if r.stdout.strip() in ("200", "404"):
            return
        time.sleep(0.2)
    sys.exit(f"nothing answers on port {port}")


def curl(port, cacert, path, *args):
    """status, headers (lower-case names), body of one request."""
    r = subprocess.run(
        ["curl", "-s", "-i", "--http1.1", "--cacert", cacert, *args, f"https://localhost:{port}{path}"],
        capture_output=True, check=True)
    head, _, body = r.stdout.decode().partition("\r\n\r\n")
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, body


def bench_rows(rows):
    return [(i + 1, f"BENCH-{i:06d}", f"Recipient {i}", f"{i} Benchmark Street, 1000 Loopback",
             ["pending", "in_transit", "delivered", "cancelled"][i % 4]) for i in range(rows)]


def seed(db, rows):
    """Exactly `rows` deliveries, ids 1..rows (written by another process, as the API must
    tolerate). The ids stay the same across reseeds, so GET /delivery/1 keeps finding one.
    `db` is a SQLite file, or a Postgres cluster and database name."""
    if isinstance(db, tuple):
        cluster, name = db
        cluster.seed(name, rows)
        return
    con = sqlite3.connect(db, timeout=30)
    con.execute("DELETE FROM deliveries")
    con.executemany(
        "INSERT INTO deliveries (id, reference, recipient, address, status) VALUES (?, ?, ?, ?, ?)",
        bench_rows(rows))
    con.commit()
    con.close()


class Postgres:
    """A throwaway PostgreSQL cluster in `work`/pg (as the `postgres` user when run as root)."""

    def __init__(self, work, port):
        self.port, self.dir = port, work / "pg"
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        self.bin = Path(os.environ["PG_BIN"]) if "PG_BIN" in os.environ else (
            bins[-1].parent if bins else Path(shutil.which("initdb") or "initdb").parent)
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.dir.mkdir()
        if self.prefix:
            shutil.chown(work, "postgres")
            shutil.chown(self.dir, "postgres")
        sh([*self.prefix, self.bin / "initdb", "-D", self.dir / "data", "--auth=trust", "-U", "postgres",
            "--encoding=UTF8", "--locale=C"], stdout=subprocess.DEVNULL)
        sh([*self.prefix, self.bin / "pg_ctl", "-D", self.dir / "data", "-w", "-l", self.dir / "log",
            "-o", f"-p {port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200",
            "start"], stdout=subprocess.DEVNULL)

    def url(self, name):
        return f"postgres://postgres@127.0.0.1:{self.port}/{name}"

    def psql(self, sql, db="postgres"):
        sh(["psql", "-q", "-v", "ON_ERROR_STOP=1", self.url(db)], input=sql.encode(),
           stdout=subprocess.DEVNULL)

    def create(self, name):
        self.psql(f"CREATE DATABASE {name}")

    def seed(self, name, rows):
        def lit(v):
            return str(v) if isinstance(v, int) else "'" + v.replace("'", "''") + "'"
        values = ",\n".join("(" + ", ".join(lit(v) for v in row) + ")" for row in bench_rows(rows))
        self.psql("BEGIN; DELETE FROM deliveries;\n"
                  "INSERT INTO deliveries (id, reference, recipient, address, status) OVERRIDING SYSTEM VALUE "
                  f"VALUES {values};\n"
                  "SELECT setval(pg_get_serial_sequence('deliveries', 'id'), 1000000); COMMIT;", name)

    def stop(self):
        subprocess.run([*self.prefix, self.bin / "pg_ctl", "-D", self.dir / "data", "-m", "fast", "stop"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def cpu_seconds(pids):
    """User + system CPU time the processes have used so far (all their threads)."""
    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


def oha(url, args, duration, connections, protocol="http1", pids=()):
    cmd = [*OHA, "-z", f"{duration}s", "-c", str(connections), "--no-tui", "--insecure",
           "--output-format", "json", *(["--http2"] if protocol == "h2" else []), *args, url]
    cpu = cpu_seconds(pids)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    cpu = cpu_seconds(pids) - cpu
    d = json.loads(out)
    codes = {int(k): v for k, v in d.get("statusCodeDistribution", {}).items()}
    return summarize([d], codes, cpu)


def summarize(outs, codes, cpu):
    """One oha run (or two at once): req/s, 2xx/s, the worse percentiles, CPU µs per answer."""
    answered = sum(codes.values())
    ok = sum(v for k, v in codes.items() if 200 <= k < 300)
    rps = sum(d["summary"]["requestsPerSec"] for d in outs)
    return {
        "rps": rps,
        "ok_rps": rps * ok / answered if answered else 0,
        "p50": max(d["latencyPercentiles"]["p50"] or 0 for d in outs) * 1000,
        "p99": max(d["latencyPercentiles"]["p99"] or 0 for d in outs) * 1000,
        "non2xx": answered - ok,
        "codes": codes,
        "bytes": outs[0]["summary"].get("sizePerRequest") or 0,
        "cpu_us": 1e6 * cpu / answered if answered else 0,
    }


def durable(work, connections, duration):
    """bench/durable.rs: the same creations made durable by one writer, no HTTP (a fresh file)."""
    db = work / f"durable-{time.monotonic_ns()}.db"
    before = os.times()
    out = subprocess.run([DURABLE_BIN, db, ROOT / "migrations/sqlite", str(connections), str(duration)],
                         capture_output=True, text=True, check=True).stdout
    after = os.times()
    d = json.loads(out)
    made = d["created_per_sec"] * duration
    cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    for f in work.glob(db.name + "*"):
        f.unlink()
    return {"rps": d["created_per_sec"], "ok_rps": d["created_per_sec"], "p50": d["p50_ms"],
            "p99": d["p99_ms"], "non2xx": 0, "codes": {201: round(made)}, "bytes": 0,
            "cpu_us": 1e6 * cpu / made if made else 0, "rows_per_commit": d["rows_per_commit"]}


def oha_both(urls, args, duration, connections, protocol, pids=()):
    """Two oha processes at once, one per instance, half the connections each: summed req/s,
    the worse instance's percentiles."""
    half = max(1, connections // 2)
    cpu = cpu_seconds(pids)
    procs = [subprocess.Popen(
        [*OHA, "-z", f"{duration}s", "-c", str(half), "--no-tui", "--insecure", "--output-format", "json",
         *(["--http2"] if protocol == "h2" else []), *a, u], stdout=subprocess.PIPE, text=True)
        for u, a in zip(urls, args)]
    outs = [json.loads(p.communicate()[0]) for p in procs]
    cpu = cpu_seconds(pids) - cpu
    codes = {}
    for d in outs:
        for k, v in d.get("statusCodeDistribution", {}).items():
            codes[int(k)] = codes.get(int(k), 0) + v
    return summarize(outs, codes, cpu)


def median_run(runs):
    return {
        **{k: statistics.median(r[k] for r in runs) for k in ("rps", "ok_rps", "p50", "p99", "cpu_us")},
        "non2xx": sum(r["non2xx"] for r in runs),
        "codes": runs[-1]["codes"],
        "bytes": runs[-1]["bytes"],
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--duration", type=float, default=5, help="seconds per oha run")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved runs per target and scenario")
    ap.add_argument("--protocol", choices=["http1", "h2", "both"], default="both")
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--rows", type=int, default=100)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--profile", default="release",
                    help="cargo profile to build and run: release (what `cargo run --release` builds, the "
                         "default) or peak (fat LTO, one codegen unit)")
    ap.add_argument("--only", metavar="TEXT",
                    help="only the scenarios whose name contains TEXT (e.g. POST, preflight, {id})")
    ap.add_argument("--no-scaling", action="store_true")
    ap.add_argument("--no-flood", action="store_true")
    ap.add_argument("--flood-only", action="store_true", help="only the flood comparison")
    ap.add_argument("--port", type=int, default=18443,
                    help="service port; the ceiling uses port+1, PostgreSQL port+10, other instances port+3..")
    ap.add_argument("--engines", default="sqlite",
                    help="comma-separated: sqlite, pg (one instance on PostgreSQL), pg2 (two instances on one)")
    ap.add_argument("--baseline", type=Path, metavar="BINARY",
                    help="also run this delivery-api binary (e.g. an older commit's) on SQLite, as the "
                         "target `base`, interleaved with the others: what a change bought, in one run")
    ap.add_argument("--pin", action="store_true",
                    help="oha on CPU 0, everything else (the targets, their yardsticks) on the other CPUs: "
                         "the client no longer preempts the servers (docs/performance.md, 'Tails')")
    opts = ap.parse_args()

    if opts.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            sys.exit("--pin needs two CPUs or more")
        OHA[:0] = ["taskset", "-c", str(cpus[0])]  # the client on the first CPU
        os.sched_setaffinity(0, cpus[1:])  # this process, and so every server it starts, on the rest
    if not shutil.which("oha"):
        sys.exit("oha is missing: cargo install oha --locked")
    if not opts.no_build:
        sh(["cargo", "build", "--profile", opts.profile, "--bin", "delivery-api", "--example", "ceiling",
            "--example", "durable"], cwd=ROOT)
    global DURABLE_BIN
    service_bin = ROOT / f"target/{opts.profile}/delivery-api"
    ceiling_bin = ROOT / f"target/{opts.profile}/examples/ceiling"
    DURABLE_BIN = ROOT / f"target/{opts.profile}/examples/durable"

    work = Path(tempfile.mkdtemp(prefix="delivery-bench-"))
    db = work / "bench.db"
    sport, cport = opts.port, opts.port + 1
    env = dict(os.environ, RUST_LOG="warn")
    engines = [e for e in opts.engines.split(",") if e]
    procs = []
    pg = None
    try:
        service = subprocess.Popen(
            [service_bin, "serve", "--bind", f"127.0.0.1:{sport}", "--no-demo-page",
             "--database-url", f"sqlite://{db}"],
            cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=open(work / "service.log", "w"))
        procs.append(service)
        cacert = str(work / "certs/dev-ca.crt")
        wait_https(sport, cacert)
        seed(db, opts.rows)

        status, headers, body = curl(sport, cacert, "/delivery/all", "-u", "demo:demo-password",
                                     *sum((["-H", h] for h in ARTICLE_HEADERS), []))
        assert status == 200 and len(json.loads(body)) == opts.rows, (status, body[:200])
        (work / "list.json").write_text(body)
        first_id = json.loads(body)[0]["id"]
        _, _, one = curl(sport, cacert, f"/delivery/{first_id}", "-u", "demo:demo-password")
        (work / "one.json").write_text(one)

        # Each engine: (ports it serves on, its database); pg2 is two instances on one database.
        targets = {"sqlite": ([sport], db)} if "sqlite" in engines else {}
        pids = {sport: service.pid}
        if opts.baseline:
            base_db, bport = work / "base.db", opts.port + 6
            procs.append(base := subprocess.Popen(
                [opts.baseline, "serve", "--bind", f"127.0.0.1:{bport}", "--no-demo-page",
                 "--database-url", f"sqlite://{base_db}", "--cert", work / "certs/localhost.crt",
                 "--key", work / "certs/localhost.key"],
                cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=open(work / "base.log", "w")))
            wait_https(bport, cacert)
            seed(base_db, opts.rows)
            targets["base"] = ([bport], base_db)
            pids[bport] = base.pid
        if "pg" in engines or "pg2" in engines:
            pg = Postgres(work, opts.port + 10)
            for name, ports in (("pg", [sport + 3]), ("pg2", [sport + 4, sport + 5])):
                if name not in engines:
                    continue
                pg.create(f"bench_{name}")
                for port in ports:
                    procs.append(proc := subprocess.Popen(
                        [service_bin, "serve", "--bind", f"127.0.0.1:{port}", "--no-demo-page",
                         "--database-url", pg.url(f"bench_{name}"), "--cert", work / "certs/localhost.crt",
                         "--key", work / "certs/localhost.key"],
                        cwd=work, env=env, stdout=subprocess.DEVNULL,
                        stderr=open(work / f"service-{port}.log", "w")))
                    pids[port] = proc.pid
                    wait_https(port, cacert)
                pg.seed(f"bench_{name}", opts.rows)
                targets[name] = (ports, (pg, f"bench_{name}"))

        ceiling = subprocess.Popen(
            [ceiling_bin, f"127.0.0.1:{cport}", work / "certs/localhost.crt", work / "certs/localhost.key",
             work / "list.json", work / "one.json"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(ceiling)
        pids[cport] = ceiling.pid
        wait_https(cport, cacert, "/ping")
        # The same-head ceiling: the bare ceiling answering the service's own status and header
        # fields (recorded here), a fresh X-Request-Id each time. The read scenarios run it too.
        hport = opts.port + 7
        record_heads(sport, cacert, first_id, work / "heads.txt")
        procs.append(same_head := subprocess.Popen(
            [ceiling_bin, f"127.0.0.1:{hport}", work / "certs/localhost.crt", work / "certs/localhost.key",
             work / "list.json", work / "one.json", work / "heads.txt"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        pids[hport] = same_head.pid
        wait_https(hport, cacert, "/ping")

        hdrs = sum((["-H", h] for h in ARTICLE_HEADERS), [])
        preflight = ["-m", "OPTIONS", "-H", "Origin: " + ORIGIN, "-H", "Access-Control-Request-Method: GET",
                     "-H", "Access-Control-Request-Headers: authorization,content-type"]
        good = ["-a", "demo:demo-password", *hdrs]
        bad = ["-a", "demo:wrong-password", *hdrs]

        def post_args(tag):
            lines = work / f"post-{tag}.txt"
            with open(lines, "w") as f:
                # oha picks lines at random: the more lines, the fewer references sent twice (409).
                for i in range(1_500_000):
                    f.write(json.dumps({"reference": f"P-{tag}-{i}", "recipient": "Bench",
                                        "address": "1 Post Road"}) + "\n")
            return ["-m", "POST", "-Z", str(lines), *good]

        scenarios = [
            # name, path on service, path on ceiling, oha args (or a factory), correctness check
            ("preflight OPTIONS /delivery/all", "/delivery/all", "/delivery/all", lambda t: preflight),
            (f"GET /delivery/all ({opts.rows} rows)", "/delivery/all", "/delivery/all", lambda t: good),
            ("GET /delivery/{id}", f"/delivery/{first_id}", "/one", lambda t: good),
            ("POST /delivery", "/delivery", "/delivery", post_args),
            ("GET, wrong password (401)", "/delivery/all", "/unauthorized", lambda t: bad),
        ]
        checks = {t: check_correctness(ports[0], cacert, first_id, opts.rows) for t, (ports, _) in targets.items()}

        def side_by_side(name, spath, cpath, make_args, protocol, connections):
            """Median over rounds of each target, all interleaved (ceiling, sqlite, pg, pg2, ...)."""
            same_head = [("same head", [hport], cpath)] if key(name) in READS else []
            order = [("ceiling", [cport], cpath)] + same_head + [
                (t, ports, spath) for t, (ports, _) in targets.items() if connections > 1 or len(ports) == 1]
            runs = {t: [] for t, _, _ in order}
            if name.startswith("POST"):
                runs["durable"] = []  # the disk's limit for the same creations, no HTTP
            for r in range(opts.rounds):
                for target, ports, path in order:
                    tag = f"{target}-{protocol}-{connections}-{r}"
                    owners = [pids[p] for p in ports]
                    if len(ports) == 1:
                        runs[target].append(oha(f"https://localhost:{ports[0]}{path}", make_args(tag),
                                                opts.duration, connections, protocol, owners))
                    else:
                        runs[target].append(oha_both(
                            [f"https://localhost:{p}{path}" for p in ports],
                            [make_args(f"{tag}-{i}") for i in range(len(ports))],
                            opts.duration, connections, protocol, owners))
                if "durable" in runs:
                    runs["durable"].append(durable(work, connections, opts.duration))
            if name.startswith("POST"):
                for _, target_db in targets.values():
                    seed(target_db, opts.rows)  # back to N rows for the next scenarios
            yardsticks = {"ceiling": median_run(runs.pop("ceiling"))}
            if "same head" in runs:
                yardsticks["same head"] = median_run(runs.pop("same head"))
            if "durable" in runs:
                yardsticks["durable"] = median_run(runs.pop("durable"))
            return yardsticks, {t: median_run(r) for t, r in runs.items()}

        protocols = ["http1", "h2"] if opts.protocol == "both" else [opts.protocol]
        summary = {}
        for protocol in protocols if not opts.flood_only else []:
            results = []
            for i, (name, spath, cpath, make_args) in enumerate(scenarios):
                if opts.only and opts.only not in name:
                    continue
                c, s = side_by_side(name, spath, cpath, make_args, protocol, opts.connections)
                results.append((name, c, s, {t: checks[t][i] for t in s}))
            print_table(results, opts, protocol, opts.connections)
            summary[f"{protocol}x{opts.connections}"] = summarize_ratios(results)
        if not opts.flood_only:
            # One client, one connection, one request at a time: per-request latency.
            for protocol in protocols:
                results = []
                for i, (name, spath, cpath, make_args) in enumerate(scenarios[:4]):
                    if opts.only and opts.only not in name:
                        continue
                    c, s = side_by_side(name, spath, cpath, make_args, protocol, 1)
                    results.append((name, c, s, {t: checks[t][i] for t in s}))
                print_table(results, opts, protocol, 1)
                summary[f"{protocol}x1"] = summarize_ratios(results)
        if summary:
            # One line a script can read: `grep '^summary ' | cut -c9- | jq`.
            print("\nsummary " + json.dumps({"profile": opts.profile, "rounds": opts.rounds, "pinned": opts.pin, **summary}))
        if not opts.no_scaling and not opts.flood_only:
            scaling(sport, cacert, db, good, opts)
        if not opts.no_flood:
            print(f"\nAuthenticated GET /delivery/all ({opts.rows} rows, 16 connections) alone, then during a "
                  f"wrong-password flood (16 more connections)\n")
            print(f"{'limits':34} {'GET req/s':>10} {'p99 ms':>8} {'flood req/s':>12} {'flood statuses':28} "
                  f"{'throughput kept':>15} {'p99 ratio':>9}")
            flood(sport, good, bad, opts, "default (10/min per IP)")
            # The same service with the guessing limits lifted: only the bounded argon2 pool protects it.
            lifted = subprocess.Popen(
                [service_bin, "serve", "--bind", f"127.0.0.1:{sport + 2}", "--no-demo-page",
                 "--database-url", f"sqlite://{db}", "--login-attempts-per-ip", "1000000000",
                 "--login-attempts-per-user", "1000000000", "--cert", work / "certs/localhost.crt",
                 "--key", work / "certs/localhost.key"],
                cwd=work, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            procs.append(lifted)
            wait_https(sport + 2, cacert)
            flood(sport + 2, good, bad, opts, "lifted (argon2 bound only)")
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=15)
        if pg:
            pg.stop()
        shutil.rmtree(work, ignore_errors=True)


def check_correctness(port, cacert, first_id, rows):
    """Once per scenario, on the service: status, ACAO, and the body where it matters."""
    auth = ["-u", "demo:demo-password", *sum((["-H", h] for h in ARTICLE_HEADERS), [])]
    out = []
    s, h, _ = curl(port, cacert, "/delivery/all", "-X", "OPTIONS", "-H", "Origin: " + ORIGIN,
                   "-H", "Access-Control-Request-Method: GET",
                   "-H", "Access-Control-Request-Headers: authorization,content-type")
    out.append(s == 200 and h.get("access-control-allow-origin") == ORIGIN)
    s, h, b = curl(port, cacert, "/delivery/all", *auth)
    out.append(s == 200 and h.get("access-control-allow-origin") == ORIGIN and len(json.loads(b)) == rows)
    s, h, b = curl(port, cacert, f"/delivery/{first_id}", *auth)
    out.append(s == 200 and h.get("access-control-allow-origin") == ORIGIN and json.loads(b)["id"] == first_id)
    s, h, _ = curl(port, cacert, "/delivery", "-X", "POST", "-d",
                   json.dumps({"reference": "CHECK-1", "recipient": "C", "address": "D"}), *auth)
    out.append(s == 201 and h.get("access-control-allow-origin") == ORIGIN and "location" in h)
    s, h, _ = curl(port, cacert, "/delivery/all", "-u", "demo:wrong-password", "-H", "Origin: " + ORIGIN)
    out.append(s == 401 and h.get("access-control-allow-origin") == ORIGIN)
    return ["ok" if c else "FAILED" for c in out]


KEYS = {"preflight": "preflight", "GET /delivery/all": "get_all", "GET /delivery/{id}": "get_one",
        "POST": "post", "GET, wrong": "wrong_password"}


# The scenarios the same-head ceiling runs in: fixed answers it can replay.
READS = ("preflight", "get_all", "get_one")


def record_heads(port, cacert, first_id, out):
    """The status and header fields the service answers to each read scenario's request (as oha
    sends it), written for the same-head ceiling under the ceiling's paths. The date and framing
    fields are the ceiling's own to write."""
    auth = ["-u", "demo:demo-password", *sum((["-H", h] for h in ARTICLE_HEADERS), [])]
    preflight = ["-X", "OPTIONS", "-H", "Origin: " + ORIGIN, "-H", "Access-Control-Request-Method: GET",
                 "-H", "Access-Control-Request-Headers: authorization,content-type"]
    framing = {"date", "content-length", "transfer-encoding", "connection", "keep-alive"}
    lines = []
    for method, spath, cpath, args in (("OPTIONS", "/delivery/all", "/delivery/all", preflight),
                                       ("GET", "/delivery/all", "/delivery/all", auth),
                                       ("GET", f"/delivery/{first_id}", "/one", auth)):
        r = subprocess.run(["curl", "-s", "-i", "--http1.1", "--cacert", cacert, *args,
                            f"https://localhost:{port}{spath}"], capture_output=True, check=True)
        head, _, body = r.stdout.partition(b"\r\n\r\n")
        status, *fields = head.decode().split("\r\n")
        lines += [f"{method} {cpath}\t:status\t{status.split()[1]}", f"{method} {cpath}\t:body\t{int(bool(body))}"]
        for field in fields:
            name, _, value = field.partition(":")
            if name.lower() not in framing:
                lines.append(f"{method} {cpath}\t{name.lower()}\t{value.strip()}")
    out.write_text("\n".join(lines) + "\n")


def key(name):
    return next(k for prefix, k in KEYS.items() if name.startswith(prefix))


def print_table(results, opts, protocol, connections):
    """req/s is answers per second, except for POST: rows created (2xx) per second, so that a 409
    for a reference oha happened to send twice is not counted as work done. CPU µs: the process's
    user + system time per answer (all its threads), service and yardstick alike."""
    what = "one connection, sequential requests" if connections == 1 else f"{connections} connections"
    print(f"\n{'HTTP/2' if protocol == 'h2' else 'HTTP/1.1'}, {what}, {opts.duration:g} s x {opts.rounds} "
          f"interleaved rounds per target (median), HTTPS on loopback, {os.cpu_count()} CPUs, "
          f"{opts.profile} profile{', oha pinned to its own CPU' if opts.pin else ''}\n")
    head = f"{'scenario':36} {'target':9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} " \
           f"{'CPU µs':>7} {'rps ratio':>9} {'p99 ratio':>9}  check"
    print(head)
    print("-" * len(head))
    for name, yardsticks, services, check in results:
        post = key(name) == "post"
        rate = "ok_rps" if post else "rps"
        c = yardsticks["durable" if post else "ceiling"]
        for label, y in yardsticks.items():
            # The same-head ceiling's ratios are to the bare ceiling: what the fields alone cost.
            ratios = f" {y[rate] / c[rate]:9.2f} {y['p99'] / c['p99']:9.2f}" if label == "same head" else ""
            print(f"{name if label == 'ceiling' else '':36} {label:9} {y[rate]:9.0f} {y['p50']:8.2f} "
                  f"{y['p99']:8.2f} {y['non2xx']:8d} {y['cpu_us']:7.1f}{ratios}")
        if post:
            print(f"{'':36} {'in series':9} {in_series(yardsticks):9.0f}")
        for target, s in services.items():
            print(f"{'':36} {target:9} {s[rate]:9.0f} {s['p50']:8.2f} {s['p99']:8.2f} {s['non2xx']:8d} "
                  f"{s['cpu_us']:7.1f} {s[rate] / c[rate]:9.2f} {s['p99'] / c['p99']:9.2f}  {check[target]}")
    for name, _, services, _ in results:
        for target, s in services.items():
            odd = {k: v for k, v in s["codes"].items() if not 200 <= k < 300}
            if odd:
                print(f"{target} non-2xx in the last '{name}' run: {odd}")
    print("(POST: created/s, and its ratios are to the durable-write limit (bench/durable.rs, the same "
          "creations, one writer, no HTTP);\n 'in series' is 1 / (1/ceiling + 1/durable): HTTPS and the "
          "durable write one after the other, see in_series();\n the 409s are references oha sent twice: "
          "it picks body lines at random. The wrong-password 401s are expected.\n 'same head' is the ceiling "
          "answering the service's own status and header fields: its ratios are to the bare ceiling.)")


def in_series(yardsticks):
    """POST's third yardstick: a creation must cross HTTPS (at best the ceiling's cost) *and* be made
    durable (at best the durable limit's), on the same two cores. If the two only added up, the best
    rate would be 1 / (1/ceiling + 1/durable). On one connection that is a bound (the client waits
    for both, one after the other); with many connections it is an estimate, since the fsync wait
    overlaps with other requests' HTTP work."""
    return 1 / (1 / yardsticks["ceiling"]["ok_rps"] + 1 / yardsticks["durable"]["ok_rps"])


def summarize_ratios(results):
    """Per scenario and service: ratio of req/s and of p99 to the yardstick (POST: to the durable
    limit, and to the ceiling), and CPU µs per answer beside the ceiling's."""
    out = {}
    for name, yardsticks, services, _ in results:
        k = key(name)
        if k == "wrong_password":
            continue
        c = yardsticks["ceiling"]
        y = yardsticks.get("durable", c)
        rate = "ok_rps" if k == "post" else "rps"
        for target, s in services.items():
            out.setdefault(target, {})[k] = {
                "rps": round(s[rate]), "rps_ratio": round(s[rate] / y[rate], 3),
                "p99_ratio": round(s["p99"] / y["p99"], 3), "cpu_us": round(s["cpu_us"], 1),
                "ceiling_cpu_us": round(c["cpu_us"], 1),
                **({"rps_vs_same_head": round(s[rate] / h[rate], 3),
                    "same_head_vs_ceiling": round(h[rate] / c[rate], 3),
                    "same_head_cpu_us": round(h["cpu_us"], 1)} if (h := yardsticks.get("same head")) else {}),
                **({"rps_vs_ceiling": round(s[rate] / c[rate], 3),
                    "p99_vs_ceiling": round(s["p99"] / c["p99"], 3),
                    "rps_vs_in_series": round(s[rate] / in_series(yardsticks), 3)} if k == "post" else {}),
            }
    return out


def flood(port, good, bad, opts, label):
    """GETs from one client alone, then beside a flood of wrong passwords from another."""
    url = f"https://localhost:{port}/delivery/all"
    alone = oha(url, good, opts.duration, 16)
    flooder = subprocess.Popen(
        [*OHA, "-z", f"{opts.duration + 2}s", "-c", "16", "--no-tui", "--insecure", "--output-format", "json",
         *bad, url], stdout=subprocess.PIPE, text=True)
    time.sleep(1)
    during = oha(url, good, opts.duration, 16)
    d = json.loads(flooder.communicate()[0])
    codes = d.get("statusCodeDistribution", {})
    print(f"{label:34} {alone['rps']:10.0f} {alone['p99']:8.2f}")
    print(f"{'':34} {during['rps']:10.0f} {during['p99']:8.2f} {d['summary']['requestsPerSec']:12.0f} "
          f"{json.dumps(codes):28} {during['rps'] / alone['rps']:14.0%} {during['p99'] / alone['p99']:9.2f}")


def scaling(port, cacert, db, good, opts):
    print(f"\nGET /delivery/all by size (service only, {opts.connections} connections, {opts.duration:g} s)\n")
    print(f"{'rows':>7} {'bytes':>9} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'µs CPU-time/req':>16} {'ns/row':>8}")
    cpus = os.cpu_count() or 1
    for rows in (10, 100, 1000, 10000):
        seed(db, rows)
        s, _, b = curl(port, cacert, "/delivery/all", "-u", "demo:demo-password")
        assert s == 200 and len(json.loads(b)) == rows
        r = oha(f"https://localhost:{port}/delivery/all", good, opts.duration, opts.connections)
        us = 1e6 * cpus / r["rps"]
        print(f"{rows:7d} {r['bytes']:9d} {r['rps']:9.0f} {r['p50']:8.2f} {r['p99']:8.2f} {us:16.0f} "
              f"{1000 * us / rows:8.0f}")
    seed(db, opts.rows)


if __name__ == "__main__":
    main()
