"""A full or read-only disk: every command and service says so in one line and exits 74.

Run as root (CI does): a file's mode does not stop root writing, so the disks here are real
file systems — a small tmpfs remounted read-only, and one filled to the last byte."""

from __future__ import annotations

import errno
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from sync.diskfault import EX_IOERR, disk_problem, guard

ROOT = Path(__file__).resolve().parents[2]


def run(*argv: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", *argv], cwd=ROOT, input=stdin, env=env,
                          capture_output=True, text=True, timeout=60)


def one_line(p: subprocess.CompletedProcess, words: str) -> None:
    assert p.returncode == EX_IOERR, (p.returncode, p.stderr)
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1 and words in lines[0] and "Traceback" not in p.stderr, p.stderr


@pytest.fixture
def disk(tmp_path):
    """A 4 MB tmpfs of its own (room for both databases and their journals: a disk that filled
    during the set-up would leave a WAL behind and make the read-only case another one);
    unmounted afterwards whatever the test left in it."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", str(mount)],
                   check=True)
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def edge(disk: Path, *argv: str, stdin: str = "") -> subprocess.CompletedProcess:
    return run("edge.cli", "--config", str(disk / "edge.toml"), *argv, stdin=stdin)


def hub(disk: Path, *argv: str, stdin: str = "") -> subprocess.CompletedProcess:
    return run("cloud.cli", "--db", f"sqlite:///{disk}/hub.db", *argv, stdin=stdin)


def test_on_a_read_only_disk_every_command_and_service_says_so_and_exits_74(disk):
    assert edge(disk, "init").returncode == 0
    assert hub(disk, "init").returncode == 0
    subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
    say = f"{disk}/edge.db: the file system is read-only"
    for argv in (("init",), ("scan", "--lane", "N1", "X"), ("entries",), ("status",),
                 ("web", "--bind", "127.0.0.1:1"), ("gates",), ("sync", "--once"),
                 ("handheld", "code", "--name", "PDA")):
        one_line(edge(disk, *argv), say)
    one_line(edge(disk, "create-user", "--role", "admin", "boss", stdin="Harbour-lamp-2026\n"),
             say)
    config = str(disk / "edge.toml")
    # the services' own entry points, as systemd may start them
    one_line(run("edge.web.cli", "--config", config, "--bind", "127.0.0.1:1"), say)
    one_line(run("edge.gates.runtime", "--config", config), say)
    one_line(run("provisioning.cli", "--config", config, "reset", "--yes"),
             "the file system is read-only")
    hub_say = f"{disk}/hub.db: the file system is read-only"
    one_line(hub(disk, "init"), hub_say)
    one_line(hub(disk, "create-admin", "--username", "boss", stdin="Harbour-lamp-2026\n"),
             hub_say)
    one_line(hub(disk, "load-demo", "--tickets", "1"), hub_say)


def test_on_a_full_disk_every_command_says_so_and_exits_74(disk):
    assert edge(disk, "init").returncode == 0
    with open(disk / "filler", "wb", buffering=0) as f:  # every last byte of the disk
        with pytest.raises(OSError) as full:
            while True:
                f.write(b"\0" * 512)
        assert full.value.errno == errno.ENOSPC
    say = "the disk is full"
    for argv in (("scan", "--lane", "N1", "X"), ("init",),
                 ("handheld", "code", "--name", "PDA")):
        one_line(edge(disk, *argv), f"{disk}/edge.db: {say}")
    one_line(edge(disk, "create-user", "--role", "admin", "boss", stdin="Harbour-lamp-2026\n"),
             say)
    one_line(run("edge.cli", "--config", str(disk / "new" / "edge.toml"), "init"), say)
    one_line(hub(disk, "init"), f"{disk}/hub.db: {say}")
    one_line(run("provisioning.cli", "--config", str(disk / "edge.toml"), "install",
                 "--root", str(disk / "root"), "--no-start"), say)


def test_only_disk_problems_are_caught():
    with pytest.raises(ZeroDivisionError):
        guard("x", lambda: 1 // 0)
    with pytest.raises(sqlite3.OperationalError):
        guard("x", lambda: sqlite3.connect(":memory:").execute("SELECT * FROM nothing"))
    assert disk_problem(sqlite3.OperationalError("unable to open database file"),
                        ["/nonexistent/dir/x.db"]) is None
    wrapped = sa.exc.OperationalError("INSERT", {}, sqlite3.OperationalError(
        "database or disk is full"))
    assert "disk is full" in disk_problem(wrapped)
    assert disk_problem(OSError(errno.EROFS, "Read-only file system", "/x")) == \
        "/x: the file system is read-only"
    assert disk_problem(OSError(errno.ENOENT, "No such file", "/x")) is None


def test_guard_exits_74_with_one_line(capsys):
    def work():
        raise OSError(errno.ENOSPC, "No space left on device", "/var/lib/wicket/edge.db")
    assert guard("wicket-edge", work) == EX_IOERR
    assert capsys.readouterr().err == \
        "wicket-edge: cannot go on: /var/lib/wicket/edge.db: the disk is full\n"
