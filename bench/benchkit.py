"""What the PostgreSQL benchmarks share: a scratch database and data key for one run."""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from cloud.core import seal

PG_ADMIN = os.environ.get("WICKET_TEST_PG") or \
    "postgresql+psycopg://wicket_test:wicket_test@127.0.0.1:5432/postgres"


def note(text: str) -> None:
    """Progress, on stderr (the figures go to stdout)."""
    print(text, file=sys.stderr, flush=True)


def connect(url: str, timeout: float) -> http.client.HTTPConnection:
    """A connection to ``http://host:port`` (http.client: a benchmark measures the hub, not a
    heavy client library); it opens again by itself when the server closed it."""
    host, port = url.removeprefix("http://").split(":")
    return http.client.HTTPConnection(host, int(port), timeout=timeout)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def scratch_hub(prefix: str) -> Iterator[str]:
    """A new, empty PostgreSQL database on $WICKET_TEST_PG (an admin URL; default the test
    cluster's) and a data key of its own in a temporary folder ($WICKET_HUB_DATA_KEY, with
    $WICKET_HUB_INSTANCE for the page secret): the database's URL. Both go at the end."""
    work = tempfile.mkdtemp(prefix=f"{prefix}-")
    os.environ[seal.ENV] = os.path.join(work, "data.key")
    os.environ["WICKET_HUB_INSTANCE"] = work
    seal.create_key_file(os.environ[seal.ENV])
    name = f"wicket_bench_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield sa.engine.make_url(PG_ADMIN).set(database=name).render_as_string(
            hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
        shutil.rmtree(work, ignore_errors=True)


def _stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def _tree_cpu(pid: int) -> tuple[float, dict[int, float]]:
    """A process's CPU seconds so far (its own and its reaped children's) and each living
    child's own (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    own = _stat(pid)
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            f = _stat(int(entry))
        except OSError:
            continue
        if int(f[1]) == pid:
            children[int(entry)] = (int(f[11]) + int(f[12])) / tick
    return sum(int(x) for x in own[11:15]) / tick, children  # utime, stime, cutime, cstime


def _cpu_between(before: tuple[float, dict[int, float]],
                 after: tuple[float, dict[int, float]]) -> float:
    """CPU seconds a process tree used between two readings. A child reaped in between adds
    its whole life to its parent's count: what it had used before the first reading (a
    connection closed just before the run, say) is taken off again."""
    (own0, kids0), (own1, kids1) = before, after
    used = own1 - own0 + sum(cpu - kids0.get(pid, 0.0) for pid, cpu in kids1.items())
    return used - sum(cpu for pid, cpu in kids0.items() if pid not in kids1)


def server_pid(url: str) -> int:
    """The PostgreSQL server's main process (the parent of a backend of ours)."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            backend = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
            with open(f"/proc/{backend}/stat") as f:
                return int(f.read().rsplit(")", 1)[1].split()[1])
    finally:
        engine.dispose()


class CpuShare:
    """Where the machine's CPU went while a run went on: the hub's processes, the database
    server's, and the benchmark's own clients; printed per unit of work (``name: value``)."""

    def __init__(self, hub_pid: int, db_pid: int):
        self.pids = {"hub": hub_pid, "db": db_pid}

    def __enter__(self) -> CpuShare:
        self.start = {k: _tree_cpu(p) for k, p in self.pids.items()}
        self.clients = time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        self.used = {k: _cpu_between(self.start[k], _tree_cpu(p))
                     for k, p in self.pids.items()}
        self.used["clients"] = time.process_time() - self.clients

    def lines(self, unit: str, count: int) -> list[str]:
        return [f"cpu_{k}_ms_per_{unit}: {1000 * v / count:.2f}" for k, v in self.used.items()]
