"""How fast handhelds scan through the HTTP API, against the engine deciding in-process.

A database of 100,000 tickets (built by bench/edge_decide.py's helpers, around the real time,
since the API decides at the appliance's clock); 16 paired handhelds, each a client with its
own keep-alive connection, scan concurrently on loopback through the production server
(`wicket-edge web`: gunicorn, 2 gthread workers of 8 threads) with the same mix as bench/edge_decide.py: 80 % first scans,
10 % repeats, 5 % forged, 5 % revoked. In the same run and on the same file, the floor: the
engine deciding a batch of the same mix in-process, one decision at a time.

    .venv/bin/python bench/handheld_api.py [--tickets 100000] [--scans 16000] [--clients 16]
                                          [--workers 2] [--threads 8] [--dir DIR]

Prints one figure per line: scans_per_s, scan_p50_ms, scan_p99_ms, decide_per_s,
ratio_http_to_inprocess. Targets: scans_per_s >= 800, scan_p99_ms <= 50.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import edge_decide  # noqa: E402
from edge import config as config_mod  # noqa: E402
from edge import handhelds  # noqa: E402
from edge.engine import Engine  # noqa: E402
from edge.holders import generate_holder_key  # noqa: E402
from sync.timeutil import utcnow  # noqa: E402

LANE = "C1"
TARGET_SCANS_PER_S = 800
TARGET_P99_MS = 50


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Connection:
    """A keep-alive HTTP/1.1 connection that does no more than the bench needs: the handhelds
    run on the same two cores as the appliance here, so the load they generate must cost as
    little CPU as possible (http.client parses every answer's headers with the email package).
    It reads exactly Content-Length bytes of each answer."""

    def __init__(self, port: int):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def post(self, path: str, token: str, body: bytes) -> tuple[int, bytes]:
        self.sock.sendall(
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body)
        while b"\r\n\r\n" not in self.buf:
            self._more()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        length = next(int(v) for k, _, v in (line.partition(b":") for line in lines[1:])
                      if k.strip().lower() == b"content-length")
        while len(self.buf) < length:
            self._more()
        payload, self.buf = self.buf[:length], self.buf[length:]
        return status, payload

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self.buf += chunk

    def close(self) -> None:
        self.sock.close()


def client(port: int, token: str, codes: list[str], start, out) -> None:
    """One handheld: scans its codes one after another on one keep-alive connection."""
    conn = Connection(port)
    latencies, reasons, errors = [], {}, 0
    start.wait()
    for code in codes:
        body = json.dumps({"client_scan_id": str(uuid.uuid4()), "lane": LANE, "kind": "qr",
                           "data": code}).encode()
        t0 = time.perf_counter()
        status, payload = conn.post("/api/v1/scan", token, body)
        latencies.append(time.perf_counter() - t0)
        if status != 200:
            errors += 1
            continue
        reason = json.loads(payload)["reason"]
        reasons[reason] = reasons.get(reason, 0) + 1
    conn.close()
    out.put((latencies, reasons, errors))


def serve(config: Path, port: int, workers: int, threads: int) -> subprocess.Popen:
    """`wicket-edge web`'s server (edge.web.cli.serve: gunicorn, gthread workers, its access
    log) with the given worker and thread counts."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from edge.web.cli import serve; "
         "sys.exit(serve(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))",
         str(config), f"127.0.0.1:{port}", str(workers), str(threads)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/api/v1/lanes")
            c.getresponse().read()
            c.close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise SystemExit("the server did not come up")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--tickets", type=int, default=100_000)
    p.add_argument("--scans", type=int, default=16_000, help="scans through the API")
    p.add_argument("--clients", type=int, default=16)
    p.add_argument("--workers", type=int, default=2, help="gunicorn worker processes")
    p.add_argument("--threads", type=int, default=8,
                   help="threads per worker (enough for every client to be in flight, so that "
                   "waiting scans can share a commit)")
    p.add_argument("--dir", default=None,
                   help="where to put the database (default: a temporary directory under the "
                   "repository, i.e. on the file system the appliance data would live on)")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-", dir=args.dir or ROOT))
    proc = None
    try:
        now = utcnow()
        holder_key = generate_holder_key()
        path = work / "edge.db"
        venue, vault, conn = edge_decide.build(path, args.tickets, now=now,
                                               holder_key=holder_key)
        rng = random.Random(1)
        decide_n = max(args.scans // 4, 2000)
        scans = edge_decide.workload(venue, conn, vault, args.scans + decide_n, rng)
        inprocess, over_http = scans[:decide_n], scans[decide_n:]

        # the floor: the engine in-process, on the same file, before the server starts
        engine = Engine(conn, vault)
        lat: list[float] = []
        reasons: dict[str, int] = {}
        decide_s = edge_decide.run_decide(engine, inprocess, lat, reasons, now)
        decide_per_s = len(inprocess) / decide_s
        note("in-process verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())))

        tokens = []
        for i in range(args.clients):
            code = handhelds.create_pairing(conn, f"bench {i + 1}", [LANE], actor="bench").code
            tokens.append(handhelds.pair(conn, code).token)
        conn.close()

        port = free_port()
        config = work / "edge.toml"
        config_mod.write_new(config, {"database": str(path), "holder_key": holder_key})
        proc = serve(config, port, args.workers, args.threads)
        note(f"gunicorn: {args.workers} workers x {args.threads} threads; {args.clients} "
             f"clients scanning {len(over_http)} codes")
        ctx = multiprocessing.get_context("fork")
        start = ctx.Event()
        out = ctx.Queue()
        parts = [over_http[i::args.clients] for i in range(args.clients)]
        clients = [ctx.Process(target=client, args=(port, tokens[i], parts[i], start, out))
                   for i in range(args.clients)]
        for c in clients:
            c.start()
        time.sleep(0.5)  # let every client connect its socket before the clock starts
        t0 = time.perf_counter()
        start.set()
        results = [out.get(timeout=600) for _ in clients]
        wall = time.perf_counter() - t0
        for c in clients:
            c.join(timeout=60)
        http_lat = [x for r in results for x in r[0]]
        http_reasons: dict[str, int] = {}
        for r in results:
            for k, v in r[1].items():
                http_reasons[k] = http_reasons.get(k, 0) + v
        errors = sum(r[2] for r in results)
        note("HTTP verdicts: " + ", ".join(f"{k} {v}" for k, v in sorted(http_reasons.items()))
             + f"; errors {errors}")
        if errors:
            raise SystemExit(f"{errors} scans were refused by the API")
        scans_per_s = len(http_lat) / wall
        q = statistics.quantiles([x * 1000 for x in http_lat], n=100)
        print(f"scans_per_s: {scans_per_s:.0f}")
        print(f"scan_p50_ms: {q[49]:.2f}")
        print(f"scan_p99_ms: {q[98]:.2f}")
        print(f"decide_per_s: {decide_per_s:.0f}")
        print(f"ratio_http_to_inprocess: {scans_per_s / decide_per_s:.2f}")
        ok = scans_per_s >= TARGET_SCANS_PER_S and q[98] <= TARGET_P99_MS
        note(f"targets: scans_per_s >= {TARGET_SCANS_PER_S}, scan_p99_ms <= {TARGET_P99_MS}: "
             + ("met" if ok else "NOT met"))
    finally:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
