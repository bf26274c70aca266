#!/usr/bin/env python3
"""A bounded mixed load for N minutes; reports every 5xx and unexpected status, and resident memory.

    python3 bench/soak.py                  # 5 minutes
    python3 bench/soak.py --minutes 1

Builds delivery-api in release mode (unless --no-build), starts it on loopback with its own database,
then runs five oha loads at once, each rate-limited, for the whole duration:
preflights, authenticated GET /delivery/all?limit=100, GET /delivery/{id}, POST /delivery (bodies from a
file of unique references; oha replays some lines, which get the expected 409), and wrong passwords (expected 401, or 429 once the guessing limit applies). Resident memory (VmRSS) is
read at the start of the load and at the end. It reports; it passes or fails nothing, but exits 1 if
any 5xx or unexpected status was seen. With --hostile, every attack of bench/hostile.py runs at the
same time from other loopback addresses, and "of target" shows the share of each normal load's
requests that still got through.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench import ARTICLE_HEADERS, ORIGIN, ROOT, curl, wait_https  # noqa: E402


def rss_kib(pid):
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=5)
    ap.add_argument("--rate", type=int, default=200, help="requests/s per load (5 loads)")
    ap.add_argument("--port", type=int, default=18543)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--hostile", action="store_true",
                    help="run every attack of bench/hostile.py at the same time as the normal loads")
    opts = ap.parse_args()
    if not shutil.which("oha"):
        sys.exit("oha is missing: cargo install oha --locked")
    if not opts.no_build:
        subprocess.run(["cargo", "build", "--release", "--bin", "delivery-api"], cwd=ROOT, check=True)

    work = Path(tempfile.mkdtemp(prefix="delivery-soak-"))
    port, seconds = opts.port, int(opts.minutes * 60)
    service = subprocess.Popen(
        [ROOT / "target/release/delivery-api", "serve", "--bind", f"127.0.0.1:{port}", "--no-demo-page",
         "--database-url", f"sqlite://{work}/soak.db"],
        cwd=work, env=dict(os.environ, RUST_LOG="warn"),
        stdout=subprocess.DEVNULL, stderr=open(work / "service.log", "w"))
    try:
        cacert = str(work / "certs/dev-ca.crt")
        wait_https(port, cacert)
        with open(work / "posts.txt", "w") as f:
            for i in range(opts.rate * seconds + 1000):
                f.write(json.dumps({"reference": f"SOAK-{i}", "recipient": "Soak", "address": "1 Long Road"}) + "\n")
        hdrs = sum((["-H", h] for h in ARTICLE_HEADERS), [])
        base = f"https://localhost:{port}"
        loads = {
            "preflight": ([200], ["-m", "OPTIONS", "-H", "Origin: " + ORIGIN, "-H",
                                  "Access-Control-Request-Method: GET", "-H",
                                  "Access-Control-Request-Headers: authorization,content-type"], "/delivery/all"),
            # A page of the list: the bare list grows with every POST of the run, and so would
            # each response and the memory that serves it.
            "GET list page": ([200], ["-a", "demo:demo-password", *hdrs], "/delivery/all?limit=100"),
            "GET one": ([200], ["-a", "demo:demo-password", *hdrs], "/delivery/1"),
            # 409s are oha replaying lines of the body file (-Z), i.e. duplicate references.
            "POST": ([201, 409], ["-m", "POST", "-Z", str(work / "posts.txt"), "-a", "demo:demo-password", *hdrs],
                     "/delivery"),
            "wrong password": ([401, 429], ["-a", "demo:wrong-password", *hdrs], "/delivery/all"),
        }
        start_rss = rss_kib(service.pid)
        attackers = None
        if opts.hostile:
            attackers = subprocess.Popen(
                [sys.executable, str(ROOT / "bench/hostile.py"), "--seconds", str(seconds),
                 "--against", str(port), cacert, str(service.pid)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs = {
            name: subprocess.Popen(
                ["oha", "-z", f"{seconds}s", "-q", str(opts.rate), "-c", "8", "--no-tui", "--insecure",
                 "--output-format", "json", *args, base + path],
                stdout=subprocess.PIPE, text=True)
            for name, (_, args, path) in loads.items()
        }
        samples, began, warm_rss = [], time.time(), None
        warm_after = min(30, seconds / 5)  # the caches and argon2's buffer fill in the first seconds
        while any(p.poll() is None for p in procs.values()):
            samples.append(rss_kib(service.pid))
            if warm_rss is None and time.time() - began >= warm_after:
                warm_rss = samples[-1]
            time.sleep(2)
        end_rss = rss_kib(service.pid)
        warm_rss = warm_rss or end_rss
        if attackers:
            attackers.kill()

        bad = False
        print(f"\nsoak: {opts.minutes:g} min, 5 loads x {opts.rate} req/s, HTTPS on loopback\n")
        if opts.hostile:
            print("with every attack of bench/hostile.py running at the same time, from other addresses\n")
        print(f"{'load':16} {'requests':>9} {'of target':>9} {'statuses':40} {'5xx':>5} {'unexpected':>10} {'errors':>7}")
        for name, p in procs.items():
            d = json.loads(p.stdout.read())
            codes = {int(k): v for k, v in d.get("statusCodeDistribution", {}).items()}
            errors = {k: v for k, v in d.get("errorDistribution", {}).items() if "deadline" not in k}
            expected = loads[name][0]
            five = sum(v for k, v in codes.items() if k >= 500)
            odd = sum(v for k, v in codes.items() if k not in expected)
            bad |= five > 0 or odd > 0 or bool(errors)
            share = 100.0 * sum(codes.values()) / (opts.rate * seconds)
            print(f"{name:16} {sum(codes.values()):9d} {share:8.0f}% {json.dumps(codes):40} {five:5d} {odd:10d} "
                  f"{sum(errors.values()):7d}")
            if errors:
                print(f"  errors: {errors}")
        s, _, _ = curl(port, cacert, "/health")
        growth = 100.0 * (end_rss - warm_rss) / warm_rss if warm_rss else 0.0
        print(f"\nresident memory: {start_rss / 1024:.1f} MiB idle before the load, "
              f"{warm_rss / 1024:.1f} MiB after {warm_after:g} s of load, {end_rss / 1024:.1f} MiB at the end "
              f"({growth:+.1f}% since warm-up), peak {max(samples + [end_rss]) / 1024:.1f} MiB; /health after: {s}")
        sys.exit(1 if bad or s != 200 else 0)
    finally:
        service.terminate()
        service.wait(timeout=15)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
