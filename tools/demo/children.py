"""The demo's processes: each long-running one in its own process group, logging to its own
file, ended with the orchestrator; and the small things they are started with."""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout: every process runs from here


class DemoError(Exception):
    """A step of the set-up failed; the message says which and where its log is."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def answers(method: str, url: str) -> bool:
    """Whether a server that is starting answers at all yet."""
    import requests

    try:
        requests.request(method, url, json={} if method == "POST" else None, timeout=2)
        return True
    except (requests.ConnectionError, requests.Timeout):  # its workers still starting
        return False


def forged(code: str) -> str:
    """A ticket code with one character changed: its signature no longer holds."""
    i = len(code) // 2
    return code[:i] + ("7" if code[i] != "7" else "8") + code[i + 1:]


def password() -> str:
    return secrets.token_urlsafe(12)


@dataclass
class Child:
    """One long-running process of the demo, in its own process group (so that Ctrl-C reaches
    the orchestrator only, which stops the children in order), logging to its own file."""

    name: str
    argv: list[str]
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen | None = None
    stopping: bool = False

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.argv, cwd=ROOT, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env={**os.environ, **self.env}, process_group=0,
                                         preexec_fn=_end_with_parent)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def died(self) -> bool:
        """Exited without being asked to."""
        return self.proc is not None and not self.stopping and self.proc.poll() is not None

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM, wait; SIGKILL to the whole group if it does not stop in time."""
        if self.proc is None:
            return None
        self.stopping = True
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with_group = os.getpgid(self.proc.pid)
            os.killpg(with_group, signal.SIGKILL)
            self.proc.wait(10)
            return None  # not a clean stop


def _end_with_parent() -> None:
    """In the child before it runs: SIGTERM it if the orchestrator itself is killed (its own
    process group keeps Ctrl-C away from it, so nothing else would)."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
