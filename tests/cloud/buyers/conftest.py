"""Identity fixtures: the verification sandbox as a real process (``wicket-hub
idcheck-sandbox``), adapters pointed at it, a worker's tasks, and fake document numbers."""

from __future__ import annotations

import secrets
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from cloud.buyers.idcheck_wire import sandbox_settings
from cloud.buyers.identities import VERIFY_JOB
from cloud.buyers.verification import make_verifier
from cloud.buyers.verifying import verify_handler
from cloud.core.jobs import Tasks
from sync.identity import gb11643_check, mask_document
from tests.cloud.payments.conftest import start_on_free_port, stop

ROOT = Path(__file__).resolve().parents[3]


_GIVEN: set[str] = set()


def resident_id() -> str:
    """A fake, valid resident ID number of its own (the sandbox's scripts are by number, and
    one sandbox serves the whole session: a number is never given twice). Its masked form is
    its own too: the sandbox lists the calls it answered by masked number only (its first
    and last four characters), and two numbers sharing their last four would share calls."""
    while True:
        body = (f"1101011990{1 + secrets.randbelow(12):02d}{1 + secrets.randbelow(28):02d}"
                f"{secrets.randbelow(1000):03d}")
        number = body + gb11643_check(body)
        if mask_document(number) not in _GIVEN:
            _GIVEN.add(mask_document(number))
            return number


@dataclass
class Idcheck:
    url: str
    settings: dict[str, str]

    def control(self, method: str, path: str, **kw):
        r = requests.request(method, self.url + path, timeout=60, **kw)
        r.raise_for_status()
        return r.json()

    def script(self, number: str, *behaviours: str) -> None:
        self.control("POST", "/_sandbox/script", json={"number": number,
                                                       "behaviours": list(behaviours)})

    def register(self, number: str, name: str) -> None:
        self.control("POST", "/_sandbox/people", json={"number": number, "name": name})

    def calls(self, number: str) -> list[dict]:
        return [r for r in self.control("GET", "/_sandbox/requests")["requests"]
                if r["number"] == mask_document(number)]


def start_idcheck(folder: Path, attempts: int = 3) -> tuple[subprocess.Popen, int]:
    """The sandbox process and its port once it answers."""
    return start_on_free_port(folder, "idcheck", [
        "idcheck-sandbox", "--publish", str(folder / "published"), "--slow", "0.05"],
        attempts=attempts)


@pytest.fixture(scope="session")
def idcheck(tmp_path_factory):
    """``wicket-hub idcheck-sandbox`` as a real process on a free port."""
    folder = tmp_path_factory.mktemp("idcheck")
    process, port = start_idcheck(folder)
    try:
        settings = {**sandbox_settings(folder / "published"), "IDCHECK_TIMEOUT": "30"}
        yield Idcheck(f"http://127.0.0.1:{port}", settings)
    finally:
        stop(process)


def tasks_for(settings: dict[str, str]) -> Tasks:
    """A worker's tasks with the verification job's handler on these settings."""
    tasks = Tasks()
    tasks.register(VERIFY_JOB, verify_handler(make_verifier(settings)), apart=True)
    return tasks


@pytest.fixture
def tasks(idcheck) -> Tasks:
    return tasks_for(idcheck.settings)
