#!/usr/bin/env python3
"""delivery-api under hostile load: does one client's attack cost everyone else?

Builds the release binary (unless --no-build), starts it on loopback with its own database and
certificates, and runs each attack below for a bounded time from its own 127.0.0.0/8 source
addresses, while a probe from another address measures what a legitimate client sees. Prints one
table: the probe's p50 / p95 / max and failures during each attack, and the server's peak RSS.

  slow-bodies     4,096 HTTP/1.1 connections from one address, each an authenticated POST that
                  sends its head and 1 byte of a 100-byte body, reconnecting when closed
  silent-tcp      300 TCP connections per second from one address that never send a ClientHello,
                  plus a burst of 2,000 at the start
  h2-streams      one HTTP/2 connection opening 10,000 streams whose bodies never finish
  hpack           8 HTTP/2 connections x 10 requests, each header block one literal header then
                  450,000 one-byte references to it (~450 KB on the wire, ~26 MB decoded)
  guessing        60 addresses x 4 connections guessing demo's password; the probe is demo
                  itself, from an address it logged in from before, with the right password
  random-users    300 addresses sending random user names, each within its own 10/minute
                  budget (~56/s); the probe is a first login of a valid user (no login cache)
  locked-out      guessing, but the probe is demo from a *new* address in a network (/24) it
                  logged in from before: that network's own per-user budget lets it in
  stranger        guessing, and the probe is demo from a network (/24) it never logged in from, a
                  new one each time: it waits while the attack lasts (the limit that is left;
                  docs/security.md)
  rapid-reset     4 HTTP/2 connections opening streams and resetting them at once (CVE-2023-44487),
                  reconnecting when closed; the "log lines" column counts what the server wrote
  many-slots      one slow TLS client from each of 4,500 addresses (more than the 4,096 slots of
                  two workers), each sending a request head a byte every 5 s, reconnecting when
                  closed: the probe is a normal client from yet another address
  big-list        16,000 deliveries of ~6 KB (~100 MB as JSON) created first; then 8 clients
                  reading GET /delivery/all in a loop and 8 that read nothing; "RSS after" is 3 s
                  after they have gone
  timing          300 logins with an unknown name vs 300 with a wrong password, idle and during
                  random-users: the medians must be within 10%

    python3 bench/hostile.py                      # everything, ~7 minutes
    python3 bench/hostile.py --only slow-bodies --seconds 10

Needs python3 with the `h2` package (pip install h2) for the HTTP/2 attacks. Loopback only.
"""

import argparse
import asyncio
import base64
import os
import random
import ssl
import statistics
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = "Basic " + base64.b64encode(b"demo:demo-password").decode()
PROBE_IP = "127.0.0.200"


class Server:
    def __init__(self, binary, extra):
        self.dir = tempfile.mkdtemp(prefix="hostile-")
        self.port = 18900 + os.getpid() % 90
        self.proc = subprocess.Popen(
            [binary, "serve", "--bind", f"127.0.0.1:{self.port}", "--no-demo-page",
             "--database-url", f"sqlite://{self.dir}/h.db", *extra],
            cwd=self.dir, stdout=open(Path(self.dir, "server.log"), "wb"), stderr=subprocess.STDOUT)
        self.ctx = None
        deadline = time.time() + 60
        while time.time() < deadline:
            cert = Path(self.dir, "certs/dev-ca.crt")
            if cert.exists():
                try:
                    self.ctx = ssl.create_default_context(cafile=str(cert))
                    subprocess.run(["curl", "-sf", "--cacert", str(cert), "-o", "/dev/null",
                                    f"https://localhost:{self.port}/health"], check=True)
                    break
                except Exception:
                    pass
            time.sleep(0.2)
        else:
            sys.exit("the server did not start")

    def ctx_for(self, alpn):
        ctx = ssl.create_default_context(cafile=str(Path(self.dir, "certs/dev-ca.crt")))
        ctx.set_alpn_protocols(alpn)
        return ctx

    def rss_mib(self):
        fields = {}
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            fields[k] = v.strip()
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def log_lines(self):
        return len(Path(self.dir, "server.log").read_bytes().splitlines())

    def stop(self):
        self.proc.kill()
        self.proc.wait()


async def http1(server, path, source, auth=None, method="GET", body=b"", timeout=10):
    """One request on a new connection from `source`; returns the status (or an exception)."""
    reader, writer = await asyncio.wait_for(asyncio.open_connection(
        "127.0.0.1", server.port, ssl=server.ctx_for(["http/1.1"]), server_hostname="localhost",
        local_addr=(source, 0)), timeout)
    head = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    if auth:
        head += f"Authorization: {auth}\r\n"
    if body:
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    writer.write(head.encode() + b"\r\n" + body)
    line = await asyncio.wait_for(reader.readline(), timeout)
    writer.close()
    return int(line.split()[1])


async def probe(server, stop, make_request, interval=0.05):
    """Runs `make_request` every `interval` until `stop` is set; latencies (s) and failures."""
    latencies, failures = [], 0
    while not stop.is_set():
        started = time.perf_counter()
        try:
            status = await make_request()
            if status not in (200, 201):
                failures += 1
            else:
                latencies.append(time.perf_counter() - started)
        except Exception:
            failures += 1
        await asyncio.sleep(interval)
    return latencies, failures


def health_probe(server):
    return lambda: http1(server, "/health", PROBE_IP)


async def run_attack(server, name, probe_request, seconds, interval, warmup=2):
    """The attack runs in its own process (its event loop must not delay the probe's), from its
    own addresses; the probe runs here."""
    attacker = subprocess.Popen(
        [sys.executable, __file__, "--seconds", str(seconds + 5), "--attack", name,
         "--against", str(server.port), str(Path(server.dir, "certs/dev-ca.crt")),
         str(server.proc.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop = asyncio.Event()
    await asyncio.sleep(warmup)  # let the attack build up before measuring
    probing = asyncio.create_task(probe(server, stop, probe_request, interval))
    await asyncio.sleep(seconds)
    stop.set()
    latencies, failures = await probing
    attacker.kill()
    attacker.wait()
    return latencies, failures


# ---- the attacks --------------------------------------------------------------------------------

async def slow_bodies(server, stop):
    # At most 8 handshakes at a time (the server's default per-client cap): a patient attacker
    # that piles up established connections rather than one refused at the door.
    handshakes = asyncio.Semaphore(8)
    ctx = server.ctx_for(["http/1.1"])

    async def one():
        while not stop.is_set():
            try:
                async with handshakes:
                    reader, writer = await asyncio.open_connection(
                        "127.0.0.1", server.port, ssl=ctx,
                        server_hostname="localhost", local_addr=("127.0.0.2", 0))
                writer.write(f"POST /delivery HTTP/1.1\r\nHost: localhost\r\nAuthorization: {DEMO}\r\n"
                             "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{".encode())
                await writer.drain()
                await reader.read(1)  # until the server cuts it
                writer.close()
            except Exception:
                await asyncio.sleep(0.05)
    await asyncio.gather(*(one() for _ in range(4096)))


async def silent_tcp(server, stop):
    held = []
    async def connect():
        try:
            _, w = await asyncio.open_connection("127.0.0.1", server.port, local_addr=("127.0.0.3", 0))
            held.append(w)
        except Exception:
            pass
    await asyncio.gather(*(connect() for _ in range(2000)))
    while not stop.is_set():
        for _ in range(30):
            asyncio.create_task(connect())
        await asyncio.sleep(0.1)
        if len(held) > 20000:
            for w in held[:10000]:
                w.close()
            del held[:10000]


def h2_connection():
    import h2.config
    import h2.connection
    return h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))


async def h2_streams(server, stop):
    import h2.events
    reader, writer = await asyncio.open_connection(
        "127.0.0.1", server.port, ssl=server.ctx_for(["h2"]), server_hostname="localhost",
        local_addr=("127.0.0.4", 0))
    conn = h2_connection()
    conn.initiate_connection()
    writer.write(conn.data_to_send())
    opened = refused = 0
    for i in range(10000):
        if stop.is_set():
            break
        sid = conn.get_next_available_stream_id()
        try:
            conn.send_headers(sid, [(":method", "POST"), (":scheme", "https"), (":authority", "localhost"),
                                    (":path", "/delivery"), ("authorization", DEMO),
                                    ("content-type", "application/json"), ("content-length", "100")])
            conn.send_data(sid, b"{")
            opened += 1
        except Exception:
            refused += 1
        writer.write(conn.data_to_send())
        if i % 100 == 0:
            await writer.drain()
            try:
                data = await asyncio.wait_for(reader.read(65536), 0.01)
                for event in conn.receive_data(data):
                    if isinstance(event, h2.events.StreamReset):
                        refused += 1
                writer.write(conn.data_to_send())
            except asyncio.TimeoutError:
                pass
    while not stop.is_set():
        data = await reader.read(65536)
        if not data:
            break
        conn.receive_data(data)
        writer.write(conn.data_to_send())


def hpack_block(references):
    # Literal header with incremental indexing, new name: it becomes dynamic-table index 62;
    # then `references` one-byte indexed fields (0x80 | 62).
    name, value = b"x-a", b"b" * 60
    return (b"\x40" + bytes([len(name)]) + name + bytes([len(value)]) + value
            + b"\xbe" * references)


def frame(kind, flags, stream, payload):
    return len(payload).to_bytes(3, "big") + bytes([kind, flags]) + stream.to_bytes(4, "big") + payload


async def hpack(server, stop):
    import h2.connection
    async def connection(n):
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", server.port, ssl=server.ctx_for(["h2"]), server_hostname="localhost",
            local_addr=(f"127.0.0.{10 + n}", 0))
        writer.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
        # Pseudo-headers for GET /health: indexed :method GET (2), :scheme https (7), :path / (4)
        # is not /health, so :path as a literal; :authority literal.
        pseudo = b"\x82\x87" + b"\x04\x07/health" + b"\x01\x09localhost"
        for i in range(10):
            if stop.is_set():
                break
            sid = 1 + 2 * i
            block = pseudo + hpack_block(450_000)
            chunks = [block[j:j + 16384] for j in range(0, len(block), 16384)]
            out = frame(1, 0x1 if len(chunks) == 1 else 0x1, sid, chunks[0])  # END_STREAM
            for k, chunk in enumerate(chunks[1:], 1):
                out += frame(9, 0x4 if k == len(chunks) - 1 else 0, sid, chunk)
            if len(chunks) == 1:
                out = frame(1, 0x5, sid, chunks[0])
            writer.write(out)
            await writer.drain()
            try:
                await asyncio.wait_for(reader.read(65536), 2)
            except asyncio.TimeoutError:
                pass
        writer.close()
    while not stop.is_set():
        await asyncio.gather(*(connection(n) for n in range(8)), return_exceptions=True)


async def guessing(server, stop):
    async def guesser(ip):
        while not stop.is_set():
            try:
                pw = "".join(random.choices(string.ascii_letters, k=12))
                await http1(server, "/delivery/all", ip,
                            "Basic " + base64.b64encode(f"demo:{pw}".encode()).decode())
            except Exception:
                await asyncio.sleep(0.1)
    await asyncio.gather(*(guesser(f"127.0.1.{i}") for i in range(60) for _ in range(4)))


async def random_users(server, stop):
    # 300 addresses, each ~10 attempts a minute (its own budget): ~50 attempts per second.
    async def one(ip):
        await asyncio.sleep(random.random() * 6)
        while not stop.is_set():
            user = "".join(random.choices(string.ascii_lowercase, k=10))
            try:
                await http1(server, "/delivery/all", ip,
                            "Basic " + base64.b64encode(f"{user}:guess".encode()).decode())
            except Exception:
                pass
            await asyncio.sleep(6)
    await asyncio.gather(*(one(f"127.0.2.{i % 250}" if i < 250 else f"127.0.3.{i - 250}")
                           for i in range(300)))


async def rapid_reset(server, stop):
    # HEADERS for GET /health, then RST_STREAM (CANCEL) at once, as fast as the socket takes them.
    pseudo = b"\x82\x87" + b"\x04\x07/health" + b"\x01\x09localhost"
    async def connection(n):
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", server.port, ssl=server.ctx_for(["h2"]),
                    server_hostname="localhost", local_addr=(f"127.0.0.{30 + n}", 0))
                writer.write(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b""))
                sid = 1
                while not stop.is_set() and sid < 2**31 - 200:
                    out = b""
                    for _ in range(100):
                        out += frame(1, 0x5, sid, pseudo) + frame(3, 0, sid, (8).to_bytes(4, "big"))
                        sid += 2
                    writer.write(out)
                    await writer.drain()
                    if reader.at_eof():
                        break
                    try:  # read what the server sent, so its writes never block
                        await asyncio.wait_for(reader.read(1 << 20), 0.001)
                    except asyncio.TimeoutError:
                        pass
                writer.close()
            except Exception:
                await asyncio.sleep(0.05)
    await asyncio.gather(*(connection(n) for n in range(4)))


def slot_addresses():
    return [f"127.0.{20 + i // 250}.{1 + i % 250}" for i in range(4500)]


async def many_slots(server, stop):
    import resource
    resource.setrlimit(resource.RLIMIT_NOFILE, (20000, 20000))
    ctx = server.ctx_for(["http/1.1"])
    head = f"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Slow: {'a' * 200}\r\n\r\n".encode()

    async def one(ip, delay):
        await asyncio.sleep(delay)
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", server.port, ssl=ctx, server_hostname="localhost",
                    local_addr=(ip, 0))
                for byte in head:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    if reader.at_eof():
                        break
                    try:  # a byte every 5 s, or until the server closes
                        if not await asyncio.wait_for(reader.read(1024), 5):
                            break
                    except asyncio.TimeoutError:
                        pass
                writer.close()
            except Exception:
                await asyncio.sleep(0.5)
    addresses = slot_addresses()
    await asyncio.gather(*(one(ip, i / 1000) for i, ip in enumerate(addresses)))


BIG_ROWS = 16_000


def big_list_setup(server):
    """16,000 deliveries whose three text fields are 500 four-byte characters each."""
    import concurrent.futures
    import http.client
    import json
    field = "\U0001F4E6" * 500
    def writer(first):
        conn = http.client.HTTPSConnection("localhost", server.port, context=server.ctx_for(["http/1.1"]))
        for i in range(first, first + BIG_ROWS // 8):
            body = json.dumps({"reference": f"{i:05d}" + field[5:], "recipient": field,
                               "address": field}, ensure_ascii=False).encode()
            conn.request("POST", "/delivery", body, {"Authorization": DEMO,
                                                     "Content-Type": "application/json"})
            res = conn.getresponse()
            res.read()
            if res.status != 201:
                sys.exit(f"creating the big list: {res.status}")
        conn.close()
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(writer, range(0, BIG_ROWS, BIG_ROWS // 8)))


async def big_list(server, stop):
    ctx = server.ctx_for(["http/1.1"])
    head = (f"GET /delivery/all HTTP/1.1\r\nHost: localhost\r\nAuthorization: {DEMO}\r\n"
            "Connection: close\r\n\r\n").encode()

    async def reader_loop(n):
        while not stop.is_set():
            try:
                reader, writer = await asyncio.open_connection(
                    "127.0.0.1", server.port, ssl=ctx, server_hostname="localhost",
                    local_addr=(f"127.0.0.{40 + n}", 0))
                writer.write(head)
                while await reader.read(1 << 20):
                    pass
                writer.close()
            except Exception:
                await asyncio.sleep(0.1)

    async def stalled(n):
        try:
            reader, writer = await asyncio.open_connection(
                "127.0.0.1", server.port, ssl=ctx, server_hostname="localhost",
                local_addr=(f"127.0.0.{50 + n}", 0), limit=1024)
            writer.write(head)
            await reader.readline()  # the status line, then nothing more is read
            await stop.wait()
            writer.close()
        except Exception:
            pass
    await asyncio.gather(*(reader_loop(n) for n in range(8)), *(stalled(n) for n in range(8)))


async def timing_samples(server, n=300):
    unknown, wrong = [], []
    for i in range(n):
        for user, out in (("demo", wrong), (f"nobody{i}", unknown)):
            auth = "Basic " + base64.b64encode(f"{user}:wrong-{i}".encode()).decode()
            # a fresh address every 5 samples keeps each within its per-client budget
            ip = f"127.0.{100 + i // 250}.{i % 250}"
            started = time.perf_counter()
            await http1(server, "/delivery/all", ip, auth)
            out.append(time.perf_counter() - started)
    return statistics.median(unknown), statistics.median(wrong)


# ---- main ---------------------------------------------------------------------------------------

ATTACKS = {
    "slow-bodies": (slow_bodies, "health"),
    "silent-tcp": (silent_tcp, "health"),
    "h2-streams": (h2_streams, "health"),
    "hpack": (hpack, "health"),
    "guessing": (guessing, "known-demo"),
    "random-users": (random_users, "first-login"),
    "locked-out": (guessing, "renumbered-demo"),
    "stranger": (guessing, "stranger-demo"),
    "rapid-reset": (rapid_reset, "health"),
    "many-slots": (many_slots, "health"),
    "big-list": (big_list, "health"),
}


def pct(values, p):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p))]


class Running:
    """A server someone else started (bench/soak.py --hostile): attack it, measure nothing."""
    def __init__(self, port, cacert, pid):
        self.port, self.cacert, self.proc = port, cacert, type("P", (), {"pid": pid})

    def ctx_for(self, alpn):
        ctx = ssl.create_default_context(cafile=self.cacert)
        ctx.set_alpn_protocols(alpn)
        return ctx

    def rss_mib(self):
        return Server.rss_mib(self)


async def attack_all(port, cacert, pid, seconds, only=None):
    """Every attack (or the one named) at once against a running server, for `seconds`."""
    server, stop = Running(port, cacert, pid), asyncio.Event()
    attacks = [a for n, (a, _) in ATTACKS.items() if only in (None, n)]
    tasks = [asyncio.create_task(a(server, stop)) for a in attacks]
    await asyncio.sleep(seconds)
    stop.set()
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--seconds", type=int, default=20)
    ap.add_argument("--only", action="append")
    ap.add_argument("--against", nargs=3, metavar=("PORT", "CACERT", "PID"),
                    help="attack a running server with everything at once (used by soak.py --hostile)")
    ap.add_argument("--attack", help="with --against: only this attack")
    ap.add_argument("--server-flag", action="append", default=[],
                    help="an extra flag for the server, e.g. --server-flag=--h2-max-header-list=16777216 "
                         "to see an attack without its defence")
    opts = ap.parse_args()
    if opts.against:
        port, cacert, pid = opts.against
        await attack_all(int(port), cacert, int(pid), opts.seconds, opts.attack)
        return
    if not opts.no_build:
        subprocess.run(["cargo", "build", "--release", "--bin", "delivery-api"], cwd=ROOT, check=True)
    binary = str(ROOT / "target/release/delivery-api")
    # Generous per-IP login budgets for the timing samples are not needed: fresh addresses.
    rows = []
    for name, (attack, probe_kind) in ATTACKS.items():
        if opts.only and name not in opts.only:
            continue
        extra = ["--login-attempts-per-user", "1000000"] if name == "random-users" else []
        extra += ["--auth-cache-ttl", "0"] if probe_kind.endswith(("first-login", "demo")) else []
        server = Server(binary, extra + opts.server_flag)
        try:
            turn = iter(range(10**9))
            interval = 0.05
            if probe_kind == "health":
                request = health_probe(server)
            elif probe_kind == "known-demo":
                # demo logs in from 40 addresses before the attack; the probe rotates over them,
                # so each stays within its own 10/minute (no login cache: every one is checked).
                known = [f"127.0.5.{i}" for i in range(1, 41)]
                for ip in known:
                    await http1(server, "/delivery/all", ip, DEMO)
                request = lambda: http1(server, "/delivery/all", known[next(turn) % 40], DEMO)
                interval = 1.5  # 40 addresses x 10/minute
            elif probe_kind in ("renumbered-demo", "stranger-demo"):
                # demo logged in once from 127.0.5.1; each probe is a first login from a new
                # address, in that /24 or in one demo never used, within the network's budget of
                # 20 a minute.
                # (A stranger that gets in makes its network known: each probe is from a network
                # of its own.)
                await http1(server, "/delivery/all", "127.0.5.1", DEMO)
                if probe_kind == "renumbered-demo":
                    address = lambda: f"127.0.5.{next(turn) % 240 + 2}"
                else:
                    address = lambda: f"127.0.{100 + next(turn) % 150}.7"
                request = lambda: http1(server, "/delivery/all", address(), DEMO)
                interval = 3.5
            else:
                # A first login each time: no login cache, and a new address each time.
                request = lambda: http1(server, "/delivery/all", f"127.0.6.{next(turn) % 250 + 1}", DEMO)
            if name == "big-list":
                big_list_setup(server)
            rss_before = server.rss_mib()[0]
            lines_before = server.log_lines()
            warmup = 10 if name == "many-slots" else 2  # 4,500 handshakes, spread over 4.5 s
            latencies, failures = await run_attack(server, name, request, opts.seconds, interval,
                                                   warmup)
            lines = server.log_lines() - lines_before
            peak = server.rss_mib()[1]
            await asyncio.sleep(3)
            rows.append((name, len(latencies), failures, pct(latencies, .5), pct(latencies, .95),
                         max(latencies, default=float("nan")), rss_before, peak,
                         server.rss_mib()[0], lines))
        finally:
            server.stop()
    print(f"{'attack':14} {'probe ok':>8} {'failed':>6} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} "
          f"{'RSS before':>10} {'RSS peak':>9} {'RSS after':>9} {'log lines':>9}")
    for name, ok, failed, p50, p95, mx, before, peak, after, lines in rows:
        print(f"{name:14} {ok:8d} {failed:6d} {p50 * 1000:8.1f} {p95 * 1000:8.1f} {mx * 1000:8.1f} "
              f"{before:8.0f} MiB {peak:6.0f} MiB {after:6.0f} MiB {lines:9d}")
    if not opts.only or "timing" in opts.only:
        server = Server(binary, ["--login-attempts-per-user", "1000000"])
        try:
            idle = await timing_samples(server)
            flood = subprocess.Popen(
                [sys.executable, __file__, "--seconds", "3600", "--attack", "random-users",
                 "--against", str(server.port), str(Path(server.dir, "certs/dev-ca.crt")),
                 str(server.proc.pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            await asyncio.sleep(8)  # the 300 addresses start spread over 6 s
            loaded = await timing_samples(server)
            flood.kill()
        finally:
            server.stop()
        for label, (unknown, wrong) in (("idle", idle), ("under random-users", loaded)):
            print(f"timing {label}: median unknown user {unknown * 1000:.1f} ms, wrong password "
                  f"{wrong * 1000:.1f} ms, ratio {unknown / wrong:.2f}")


if __name__ == "__main__":
    asyncio.run(main())
