"""A serial barcode scanner on the far end of a pty: ``scan(text)`` sends one scan with its
terminator. ``drop`` loses the next N scans, ``silence`` sends none, ``garble`` corrupts each
(a byte that is not UTF-8 in the middle), ``delay`` sends each that much later;
``send_raw(b"…")`` puts line noise on the wire."""

from __future__ import annotations

from drivers.sim.base import SerialSim


class SerialScannerSim(SerialSim):
    def __init__(self, link: str | None = None, terminator: bytes = b"\r\n"):
        super().__init__(link)
        self.terminator = terminator

    def scan(self, text: str, terminator: bytes | None = None) -> bool:
        end = self.terminator if terminator is None else terminator
        return self.send(text.encode("utf-8") + end)

    def corrupt(self, frame: bytes) -> bytes:
        middle = max(len(frame) // 2 - 1, 0)
        return frame[:middle] + b"\xff" + frame[middle + 1:]
