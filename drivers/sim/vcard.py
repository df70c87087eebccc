"""A contactless card of our own for vsmartcard's virtual reader (vpcd).

vpcd (a pcscd reader driver) listens on a TCP port per slot; a virtual card is whoever connects
to it. The wire protocol is small: every message is a 2-byte big-endian length and a payload.
A 1-byte payload is a control message — ``00`` power off, ``01`` power on, ``02`` reset,
``04`` "send your ATR" (the only one answered) — and anything longer is a command APDU,
answered with the response APDU. Connecting is inserting the card, closing is pulling it away.

The card answers PC/SC's GET DATA (``FF CA 00 00 Le``) with its UID the way a reader answers
for a real contactless card, and carries the ATR a PC/SC reader synthesises for one (PC/SC
part 3: ``3B 8F 80 01 80 4F 0C A0 00 00 03 06 <standard> <card name> 00 00 00 00 <TCK>``).

Fault switches: ``slow_s`` (answer APDUs late), ``garble`` (answer with a truncated reply),
``status`` (answer GET DATA with this status word instead), ``pull_on_read`` (the card is
pulled away the moment a command arrives: no answer, connection closed).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time

log = logging.getLogger(__name__)

CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0, 1, 2, 4

# Card names in the synthesised ATR (PC/SC part 3, supplemental document).
CARD_NAMES = {"mifare_classic_1k": 0x0001, "mifare_classic_4k": 0x0002,
              "mifare_ultralight": 0x0003}


def storage_card_atr(card: str = "mifare_classic_1k") -> bytes:
    """The ATR a PC/SC reader gives a contactless storage card (ISO 14443 A part 3)."""
    name = CARD_NAMES[card]
    body = bytes([0x3B, 0x8F, 0x80, 0x01, 0x80, 0x4F, 0x0C, 0xA0, 0x00, 0x00, 0x03, 0x06,
                  0x03, name >> 8, name & 0xFF, 0x00, 0x00, 0x00, 0x00])
    tck = 0
    for b in body[1:]:
        tck ^= b
    return body + bytes([tck])


def answer(apdu: bytes, uid: bytes) -> bytes:
    """The card's response to one command APDU (pure: the table tests call it directly)."""
    if len(apdu) < 4:
        return b"\x67\x00"                      # wrong length
    cla, ins, p1, p2 = apdu[:4]
    if cla != 0xFF:
        return b"\x6E\x00"                      # class not supported
    if ins != 0xCA:
        return b"\x6D\x00"                      # instruction not supported
    if p1 != 0x00 or p2 != 0x00:
        return b"\x6A\x81"                      # function not supported (no ATS on this card)
    le = apdu[4] if len(apdu) >= 5 else 0
    if le not in (0, len(uid)):
        return bytes([0x6C, len(uid)])          # wrong Le: here is the right one
    return uid + b"\x90\x00"


class VirtualCard:
    """A card with ``uid`` that can be put on the slot listening at 127.0.0.1:``port``."""

    def __init__(self, port: int, uid: str | bytes, atr: bytes | None = None):
        self.port = port
        self.uid = bytes.fromhex(uid) if isinstance(uid, str) else bytes(uid)
        self.atr = atr if atr is not None else storage_card_atr()
        self.slow_s = 0.0
        self.garble = False
        self.status: int | None = None
        self.pull_on_read = False
        self.apdus: list[bytes] = []
        self.powered = False
        self._sock: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def inserted(self) -> bool:
        return self._sock is not None

    def insert(self) -> VirtualCard:
        """Put the card on the reader (connect to vpcd)."""
        with self._lock:
            if self._sock is not None:
                return self
            sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
            sock.settimeout(None)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._sock = sock
            self._thread = threading.Thread(target=self._serve, args=(sock,),
                                            name=f"vcard {self.uid.hex()}", daemon=True)
            self._thread.start()
        return self

    def remove(self) -> None:
        """Take the card away (close the connection)."""
        with self._lock:
            sock, self._sock = self._sock, None
            thread, self._thread = self._thread, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)

    def __enter__(self) -> VirtualCard:
        return self.insert()

    def __exit__(self, *exc: object) -> None:
        self.remove()

    def _serve(self, sock: socket.socket) -> None:
        try:
            while True:
                head = _recv(sock, 2)
                if head is None:
                    return
                (size,) = struct.unpack(">H", head)
                msg = _recv(sock, size) if size else b""
                if msg is None:
                    return
                if len(msg) == 1:
                    if msg[0] == CTRL_ATR:
                        _send(sock, self.atr)
                    elif msg[0] in (CTRL_ON, CTRL_RESET):
                        self.powered = True
                    elif msg[0] == CTRL_OFF:
                        self.powered = False
                    continue
                self.apdus.append(msg)
                if self.pull_on_read:
                    threading.Thread(target=self.remove, daemon=True).start()
                    return
                if self.slow_s:
                    time.sleep(self.slow_s)
                reply = answer(msg, self.uid)
                if self.status is not None and msg[:2] == b"\xFF\xCA":
                    reply = self.status.to_bytes(2, "big")
                if self.garble:
                    reply = reply[:1]
                _send(sock, reply)
        except OSError as exc:
            log.debug("virtual card %s: connection ended: %s", self.uid.hex(), exc)


def _recv(sock: socket.socket, n: int) -> bytes | None:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def _send(sock: socket.socket, payload: bytes) -> None:
    sock.sendall(struct.pack(">H", len(payload)) + payload)
