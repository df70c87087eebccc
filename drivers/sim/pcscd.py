"""A pcscd of our own with vsmartcard's virtual reader (vpcd), for tests and the demo.

pcscd's socket path is compiled in (``/run/pcscd/pcscd.comm``), so as root the daemon runs in a
private mount namespace (``unshare --mount``) with our own directory bound over /run/pcscd:
it never meets a system pcscd (or systemd's socket for one) and leaves nothing behind. Clients
reach it through ``PCSCLITE_CSOCK_NAME``, which libpcsclite reads when a process first talks to
PC/SC: set it (``daemon.env``) before that.

Its reader.conf names vpcd with a free port chosen now, and vpcd opens two slots, on that port
and the next. vpcd listens on all interfaces: the virtual reader is for tests and demos only,
never for an appliance in a venue.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
READER_NAME = "Wicket Virtual PCD"
DEFAULT_SOCKET = Path("/run/pcscd/pcscd.comm")


class PcscdError(RuntimeError):
    """pcscd or vpcd is missing, or the daemon did not come up."""


def _free_port_pair() -> int:
    """A port p such that p and p + 1 are both free right now (vpcd takes both)."""
    for _ in range(50):
        with socket.socket() as a:
            a.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            a.bind(("", 0))
            port = a.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as b:
                b.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    b.bind(("", port + 1))
                except OSError:
                    continue
                return port
    raise PcscdError("no pair of free TCP ports for vpcd")


def _can_unshare() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
    return probe.returncode == 0


class VirtualPcscd:
    """``start()`` runs pcscd with two virtual slots; ``stop()`` ends it (the readers vanish);
    ``start()`` again brings them back on the same ports and socket."""

    def __init__(self, workdir: str | Path, apdu_log: bool = False):
        self.workdir = Path(workdir)
        self.apdu_log = apdu_log
        self.port = 0
        self.process: subprocess.Popen | None = None
        self._private = _can_unshare()
        self.socket = (self.workdir / "run" / "pcscd.comm") if self._private else DEFAULT_SOCKET

    @property
    def readers(self) -> list[str]:
        return [f"{READER_NAME} 00 00", f"{READER_NAME} 00 01"]

    def slot_port(self, slot: int = 0) -> int:
        return self.port + slot

    @property
    def env(self) -> dict[str, str]:
        """What a client process needs in its environment to reach this daemon."""
        return {"PCSCLITE_CSOCK_NAME": str(self.socket)}

    def start(self, timeout: float = 30.0) -> VirtualPcscd:
        if self.process is not None:
            return self
        pcscd = shutil.which("pcscd") or ("/usr/sbin/pcscd" if Path("/usr/sbin/pcscd").exists()
                                          else None)
        if pcscd is None or not VPCD_DRIVER.exists():
            raise PcscdError("pcscd and vsmartcard-vpcd are needed (Debian: apt-get install "
                             "pcscd vsmartcard-vpcd; .ci/debian-deps installs them)")
        conf = self.workdir / "reader.conf.d"
        run = self.workdir / "run"
        conf.mkdir(parents=True, exist_ok=True)
        run.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = _free_port_pair()
        (conf / "vpcd").write_text(
            f'FRIENDLYNAME "{READER_NAME}"\n'
            f"DEVICENAME   /dev/null:{self.port}\n"
            f"LIBPATH      {VPCD_DRIVER}\n"
            f"CHANNELID    {self.port}\n")
        args = [pcscd, "--foreground", "--config", str(conf)]
        if self.apdu_log:
            args += ["--debug", "--apdu"]
        if self._private:
            Path("/run/pcscd").mkdir(parents=True, exist_ok=True)
            args = ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c",
                    'mount --bind "$0" /run/pcscd && exec "$@"', str(run), *args]
        elif self._alive(DEFAULT_SOCKET):
            raise PcscdError("a pcscd is already running on /run/pcscd/pcscd.comm and this "
                             "user cannot start a private one (that needs root and unshare)")
        with contextlib.suppress(FileNotFoundError):
            self.socket.unlink()
        logfile = open(self.workdir / "pcscd.log", "ab")  # noqa: SIM115 (lives with the process)
        try:
            self.process = subprocess.Popen(args, stdout=logfile, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL)
        finally:
            logfile.close()
        deadline = time.monotonic() + timeout
        while not self._alive(self.socket):
            if self.process.poll() is not None:
                code = self.process.returncode
                self.process = None
                raise PcscdError(f"pcscd exited with {code}; see {self.workdir / 'pcscd.log'}")
            if time.monotonic() > deadline:
                self.stop()
                raise PcscdError(f"pcscd did not open {self.socket} in {timeout:.0f} s")
            time.sleep(0.05)
        log.info("pcscd started (pid %s), vpcd slots on ports %d and %d", self.process.pid,
                 self.port, self.port + 1)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        process, self.process = self.process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)
        with contextlib.suppress(FileNotFoundError):
            if self._private:
                self.socket.unlink()

    def __enter__(self) -> VirtualPcscd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @staticmethod
    def _alive(path: Path) -> bool:
        if not path.exists():
            return False
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(str(path))
            except OSError:
                return False
        return True
