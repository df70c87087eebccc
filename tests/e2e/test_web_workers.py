"""`wicket-edge web` (gunicorn, real processes) spreads handhelds that connect at the same
moment over its worker processes, instead of leaving one worker to serve them all."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from tests.e2e.test_handheld_page import Server
from tests.edge.handheld_app import write_config


def _workers(master: int) -> list[int]:
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master:
                out.append(int(entry))
    return out


def _established_inodes(port: int) -> set[str]:
    """The inodes of the server's side of established TCP connections on ``port``."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "01":
            inodes.add(fields[9])
    return inodes


def _connections(pid: int, inodes: set[str]) -> int:
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:[") and target[8:-1] in inodes:
            n += 1
    return n


def test_handhelds_connecting_at_once_are_spread_over_the_workers(tmp_path, conn, db_path,
                                                                  holder_key):
    config = tmp_path / "edge.toml"
    write_config(config, db_path, holder_key)
    server = Server(config, tmp_path / "web.log", "--threads", "4")
    server.start()  # up as soon as one worker answers
    deadline = time.monotonic() + 60
    while (time.monotonic() < deadline
           and (server.log.read_text().count("Booting worker") < 2)):
        time.sleep(0.1)
    time.sleep(3)  # the second worker loads the application after it boots
    socks = []
    try:
        for _ in range(16):  # every handheld of a shift, at the same moment
            socks.append(socket.create_connection(("127.0.0.1", server.port), timeout=30))
        for s in socks:
            s.sendall(b"GET /api/v1/lanes HTTP/1.1\r\nHost: x\r\n\r\n")
        for s in socks:  # each answered (no token: 401) and kept alive
            assert s.recv(65536).startswith(b"HTTP/1.1 401")
        inodes = _established_inodes(server.port)
        per_worker = sorted(_connections(w, inodes) for w in _workers(server.proc.pid))
        assert len(per_worker) == 2 and sum(per_worker) == 16, per_worker
        assert per_worker[0] >= 4, per_worker  # one worker with 16 or 14 is what this prevents
    finally:
        for s in socks:
            s.close()
        server.stop()
