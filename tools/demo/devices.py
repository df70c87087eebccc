"""The demo's devices, in a process of their own: the hardware a venue's lanes would have.

    python -m tools.demo.devices --dir demo/devices

reads ``script.json`` in that directory (written by ``tools.demo``: the film's shots,
the ID cards to lay on the reader, the RFID card's UID) and brings up

- a Modbus turnstile board on a pty (``drivers.sim.modbus_board``): every unlock is followed
  by a person walking through, reported on the passage input;
- a lane camera on loopback HTTP (MJPEG, ``drivers.sim.mjpeg``) playing a video file of the
  film's tickets, generated here with ``drivers.sim.scenes``; the film starts when the first
  viewer connects and plays again at its end, ``film_plays`` times in all when the script
  says;
- an ID-card reader on a pty (``drivers.sim.idcard``) with the script's cards laid on it in
  turn (``id_card_rounds`` times each when the script says; the RFID card ``rfid_taps``
  times);
- where pcscd and vsmartcard's vpcd are installed, a private pcscd with a virtual reader and a
  virtual RFID card tapped on it now and then (``drivers.sim.pcscd``, ``drivers.sim.vcard``).

Once all are up it writes ``ready.json`` (the pty paths, the camera's URL, the PC/SC reader
and the pcscd socket, its pid and pcscd's) for the gate runtime's device rows. SIGTERM or
SIGINT stops every simulator, closes the ptys, ends pcscd and exits 0.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

import cv2

from drivers.sim import scenes
from drivers.sim.idcard import IdCardReaderSim
from drivers.sim.mjpeg import MjpegServer
from drivers.sim.modbus_board import ModbusBoardSim

log = logging.getLogger("demo.devices")

SIZE = (640, 480)
FPS = 15.0
ID_CARD_EVERY_S = 8.0
RFID_EVERY_S = 9.0


class Film:
    """The camera's picture: a video file read frame by frame, an empty scene until someone
    watches, then the film from its first frame; at its end it starts again, up to
    ``max_plays`` times (None: for ever), then the empty scene."""

    def __init__(self, path: Path, blank, max_plays: int | None = None):
        self.path = path
        self.blank = blank
        self.max_plays = max_plays
        self.server: MjpegServer | None = None
        self.plays = 0
        self._capture: cv2.VideoCapture | None = None

    def __call__(self, k: int):
        if self.server is None or self.server.connections == 0:
            return self.blank
        if self._capture is None:
            if self.max_plays is not None and self.plays >= self.max_plays:
                return self.blank
            self._capture = cv2.VideoCapture(str(self.path))
            self.plays += 1
            log.info("camera: the film starts (play %d)", self.plays)
        ok, frame = self._capture.read()
        if not ok:
            self._capture.release()
            self._capture = None
            return self.blank
        return frame

    def close(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


def make_film(directory: Path, shots: list[list]) -> Path:
    path = directory / "lane-camera.avi"
    timeline = scenes.timeline([(code, frames) for code, frames in shots], seed=11)
    scenes.write_video(path, scenes.frames(SIZE, timeline, background="gradient"), fps=FPS)
    log.info("camera: film of %d frames (%.0f s) written to %s", len(timeline),
             len(timeline) / FPS, path)
    return path


class Devices:
    def __init__(self, directory: Path, script: dict):
        self.directory = directory
        self.script = script
        self.stop = threading.Event()
        self.board: ModbusBoardSim | None = None
        self.reader: IdCardReaderSim | None = None
        self.camera: MjpegServer | None = None
        self.film: Film | None = None
        self.pcscd = None
        self.card = None

    def start(self) -> dict:
        d = self.directory
        self.board = ModbusBoardSim(link=str(d / "ttyTURNSTILE"))
        self.board.walk_s = 0.4
        self.board.start()
        log.info("turnstile board on %s", self.board.port)
        self.reader = IdCardReaderSim(link=str(d / "ttyIDCARD"))
        self.reader.start()
        log.info("ID-card reader on %s", self.reader.port)
        video = make_film(d, self.script["film"])
        self.film = Film(video, scenes.render(SIZE, scenes.Shot(None), "gradient"),
                         self.script.get("film_plays"))
        self.camera = MjpegServer(self.film, fps=FPS)
        self.film.server = self.camera
        self.camera.start()
        log.info("lane camera on %s", self.camera.url)
        ready = {"pid": os.getpid(), "turnstile": self.board.port, "idcard": self.reader.port,
                 "camera": self.camera.url, "pcsc": None}
        ready["pcsc"] = self._start_pcsc()
        return ready

    def _start_pcsc(self) -> dict | None:
        from drivers.sim.pcscd import PcscdError, VirtualPcscd
        from drivers.sim.vcard import VirtualCard

        try:
            self.pcscd = VirtualPcscd(self.directory / "pcscd").start()
        except PcscdError as e:
            log.warning("no RFID reader in this demo: %s", e)
            self.pcscd = None
            return None
        self.card = VirtualCard(self.pcscd.slot_port(0), self.script["rfid_uid"])
        log.info("pcscd (pid %s) with a virtual reader; RFID card %s", self.pcscd.process.pid,
                 self.script["rfid_uid"])
        return {"reader": self.pcscd.readers[0], "socket": str(self.pcscd.socket),
                "pcscd_pid": self.pcscd.process.pid}

    def run(self) -> None:
        """Lay the ID cards on the reader in turn and tap the RFID card now and then (on the
        reader for two seconds), from when the gate runtime first watches the camera."""
        cards = self.script.get("id_cards") or []
        rounds, max_taps = self.script.get("id_card_rounds"), self.script.get("rfid_taps")
        layings = None if rounds is None else rounds * len(cards)
        while self.camera.connections == 0:  # nobody at the lanes yet
            if self.stop.wait(0.25):
                return
        start = time.monotonic()
        shown = taps = 0
        while not self.stop.wait(0.25):
            t = time.monotonic() - start
            if cards and t >= (shown + 1) * ID_CARD_EVERY_S:
                self.reader.remove()
                if layings is None or shown < layings:
                    self.reader.present(cards[shown % len(cards)])
                shown += 1
            if self.card is None:
                continue
            try:
                if (not self.card.inserted and t >= (taps + 0.5) * RFID_EVERY_S
                        and (max_taps is None or taps < max_taps)):
                    self.card.insert()
                    taps += 1
                elif self.card.inserted and t >= (taps - 0.5) * RFID_EVERY_S + 2:
                    self.card.remove()
            except OSError as e:
                log.warning("RFID card: %s", e)

    def close(self) -> None:
        if self.card is not None:
            self.card.remove()
        for sim in (self.board, self.reader):
            if sim is not None:
                sim.stop()
        if self.camera is not None:
            self.camera.stop()
        if self.film is not None:
            self.film.close()
        if self.pcscd is not None:
            self.pcscd.stop()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tools.demo.devices",
                                description="The demo's device simulators.")
    p.add_argument("--dir", required=True, type=Path,
                   help="directory with script.json; ready.json is written there")
    args = p.parse_args(argv)
    logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    script = json.loads((args.dir / "script.json").read_text())
    devices = Devices(args.dir, script)

    def stop(signum, frame) -> None:
        devices.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        ready = devices.start()
        tmp = args.dir / "ready.json.tmp"
        tmp.write_text(json.dumps(ready, indent=2))
        tmp.replace(args.dir / "ready.json")
        log.info("devices ready")
        devices.run()
    finally:
        devices.close()
        log.info("devices stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
