"""Chinese second-generation resident ID card (二代证) readers: the SAM module's UART protocol.

Frames (115200 8N1 by default)::

    host → reader   AA AA AA 96 69 | LEN_H LEN_L | CMD PARA [DATA] | CHK
    reader → host   AA AA AA 96 69 | LEN_H LEN_L | SW1 SW2 SW3 [DATA] | CHK

LEN counts the bytes after it, CHK included; CHK is the XOR of every byte from LEN_H to the
byte before it. SW3 is the status: 90 done, 9F card found, 80 no card, 81 select failed,
41 read failed, and the module's error codes below. A read (``30 01``) answers with the
256-byte text block and the 1024-byte photo (WLT, decodable only with the vendor's library),
1295 bytes in all. After one successful read the module will not find the same card again
until it is taken away and presented anew.

The text block is UCS-2 little-endian, space-padded, at fixed offsets (see TEXT_FIELDS). The
ID number's last character is the GB 11643 MOD 11-2 check digit, which is verified.

Nothing here logs a name, a number or an address: the Scan's repr hides them, and log lines
carry status codes only.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from drivers.base import Health, PermanentError, Scan, ScanKind, TemporaryError
from drivers.health import HealthTracker
from drivers.protocol import FrameError, xor8
from drivers.serial_link import SerialLink

log = logging.getLogger(__name__)

PREAMBLE = bytes.fromhex("aa aa aa 96 69")
HEADER = len(PREAMBLE) + 2

RESET_SAM = (0x10, 0xFF)
SAM_STATUS = (0x11, 0xFF)
READ_SAM_ID = (0x12, 0xFF)
FIND_CARD = (0x20, 0x01)
SELECT_CARD = (0x20, 0x02)
READ_TEXT_PHOTO = (0x30, 0x01)

OK, FOUND, NO_CARD, SELECT_FAILED, READ_FAILED = 0x90, 0x9F, 0x80, 0x81, 0x41
STATUS = {  # SW3, as the module vendors' manuals commonly describe them
    0x90: "ok", 0x9F: "card found", 0x80: "no card found", 0x81: "card select failed",
    0x41: "card read failed", 0x10: "checksum error in the command",
    0x11: "length error in the command", 0x21: "unknown command", 0x23: "not authorised",
    0x24: "unrecognised error", 0x31: "card failed to authenticate the reader",
    0x32: "reader failed to authenticate the card", 0x33: "information check failed",
    0x40: "unknown card type", 0x47: "key error", 0x60: "SAM self-test failed",
    0x66: "SAM not authorised", 0x91: "no such content",
}

TEXT_LEN, PHOTO_LEN = 256, 1024
TEXT_FIELDS = [  # (name, offset, bytes)
    ("name", 0, 30), ("sex", 30, 2), ("nation", 32, 4), ("birth", 36, 16),
    ("address", 52, 70), ("id_number", 122, 36), ("authority", 158, 30),
    ("valid_from", 188, 16), ("valid_to", 204, 16),
]
SEXES = {"0": "未知", "1": "男", "2": "女", "9": "未说明"}
NATIONS = dict(enumerate(
    "汉 蒙古 回 藏 维吾尔 苗 彝 壮 布依 朝鲜 满 侗 瑶 白 土家 哈尼 哈萨克 傣 黎 傈僳 佤 畲 高山 "
    "拉祜 水 东乡 纳西 景颇 柯尔克孜 土 达斡尔 仫佬 羌 布朗 撒拉 毛南 仡佬 锡伯 阿昌 普米 塔吉克 怒 "
    "乌孜别克 俄罗斯 鄂温克 德昂 保安 裕固 京 塔塔尔 独龙 鄂伦春 赫哲 门巴 珞巴 基诺".split(), 1))
NATIONS.update({97: "其他", 98: "外国血统"})


def encode(head: bytes, data: bytes = b"") -> bytes:
    """A frame: ``head`` is CMD PARA (host) or SW1 SW2 SW3 (reader)."""
    body = (len(head) + len(data) + 1).to_bytes(2, "big") + head + data
    return PREAMBLE + body + bytes([xor8(body)])


def command(cmd: tuple[int, int], data: bytes = b"") -> bytes:
    return encode(bytes(cmd), data)


def reply(sw3: int, data: bytes = b"", sw1: int = 0, sw2: int = 0) -> bytes:
    return encode(bytes([sw1, sw2, sw3]), data)


def split(buffer: bytes) -> tuple[list[bytes], int, bytes]:
    """(whole frames by their LEN, garbage bytes skipped, incomplete rest). Checksums are
    checked by :func:`decode_reply`, not here."""
    frames, garbage = [], 0
    while True:
        start = buffer.find(PREAMBLE)
        if start < 0:
            keep = next((k for k in range(len(PREAMBLE) - 1, 0, -1)
                         if buffer.endswith(PREAMBLE[:k])), 0)
            return frames, garbage + len(buffer) - keep, buffer[len(buffer) - keep:]
        garbage += start
        buffer = buffer[start:]
        if len(buffer) < HEADER:
            return frames, garbage, buffer
        total = HEADER + int.from_bytes(buffer[5:7], "big")
        if len(buffer) < total:
            return frames, garbage, buffer
        frames.append(buffer[:total])
        buffer = buffer[total:]


@dataclass(frozen=True)
class Reply:
    sw1: int
    sw2: int
    sw3: int
    data: bytes

    @property
    def status(self) -> str:
        return STATUS.get(self.sw3, f"status {self.sw3:02x}")


def _body(frame: bytes, minimum: int) -> bytes:
    if not frame.startswith(PREAMBLE):
        raise FrameError("ID reader frame does not start with aa aa aa 96 69")
    if len(frame) < HEADER + minimum:
        raise FrameError(f"ID reader frame of {len(frame)} bytes is too short")
    length = int.from_bytes(frame[5:7], "big")
    if length != len(frame) - HEADER:
        raise FrameError(f"ID reader frame says {length} bytes, carries {len(frame) - HEADER}")
    if xor8(frame[5:-1]) != frame[-1]:
        raise FrameError(f"ID reader checksum {frame[-1]:02x}, expected {xor8(frame[5:-1]):02x}")
    return frame[7:-1]


def decode_reply(frame: bytes) -> Reply:
    body = _body(frame, 4)
    return Reply(body[0], body[1], body[2], body[3:])


def decode_command(frame: bytes) -> tuple[tuple[int, int], bytes]:
    body = _body(frame, 3)
    return (body[0], body[1]), body[2:]


# --- the card --------------------------------------------------------------------------------

def id_check_digit(first17: str) -> str:
    weights = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
    return "10X98765432"[sum(int(c) * w for c, w in zip(first17, weights, strict=True)) % 11]


def id_number_valid(number: str) -> bool:
    return (len(number) == 18 and number[:17].isdigit()
            and id_check_digit(number[:17]) == number[17].upper())


def build_text(fields: dict[str, str]) -> bytes:
    """The 256-byte text block for ``fields`` (simulators and tests)."""
    block = bytearray(" ".encode("utf-16-le") * (TEXT_LEN // 2))
    for name, offset, size in TEXT_FIELDS:
        raw = fields.get(name, "").encode("utf-16-le")
        if len(raw) > size:
            raise ValueError(f"{name} longer than {size // 2} characters")
        block[offset:offset + len(raw)] = raw
    return bytes(block)


def parse_text(block: bytes) -> dict[str, str]:
    if len(block) != TEXT_LEN:
        raise FrameError(f"ID card text block of {len(block)} bytes, not {TEXT_LEN}")
    try:
        return {name: block[offset:offset + size].decode("utf-16-le").strip(" \0")
                for name, offset, size in TEXT_FIELDS}
    except UnicodeDecodeError as exc:
        raise FrameError("ID card text block is not UCS-2") from exc


def parse_read(data: bytes) -> tuple[dict[str, str], bytes]:
    """The data of a ``30 01`` reply: text length, photo length (both big-endian), text,
    photo. Returns (text fields, photo bytes)."""
    if len(data) < 4:
        raise FrameError("ID card read reply has no block lengths")
    text_len, photo_len = int.from_bytes(data[0:2], "big"), int.from_bytes(data[2:4], "big")
    if text_len != TEXT_LEN or len(data) != 4 + text_len + photo_len:
        raise FrameError(f"ID card read reply of {len(data)} bytes does not hold "
                         f"{text_len} + {photo_len}")
    return parse_text(data[4:4 + text_len]), data[4 + text_len:]


def card_fields(text: dict[str, str], photo: bytes) -> dict[str, object]:
    fields: dict[str, object] = dict(text)
    fields["sex_label"] = SEXES.get(text["sex"], "")
    fields["nation_label"] = NATIONS.get(int(text["nation"]), "") if text["nation"].isdigit() \
        else ""
    fields["id_number_valid"] = id_number_valid(text["id_number"])
    fields["photo_wlt"] = photo
    return fields


# --- the driver ------------------------------------------------------------------------------

class IdCardReader:
    """Config: ``port``, ``baudrate`` (115200), ``poll_ms`` (200: how often to look for a
    card), ``reply_timeout_ms`` (1500: a read takes up to a second on real modules),
    ``down_after`` (3 failed exchanges in a row)."""

    def __init__(self, device_id: str, port: str, baudrate: int = 115200, poll_ms: int = 200,
                 reply_timeout_ms: int = 1500, down_after: int = 3):
        self.device_id = device_id
        self.poll_s = poll_ms / 1000
        self.reply_timeout_s = reply_timeout_ms / 1000
        self._link = SerialLink(port, baudrate, device_id)
        self._health = HealthTracker(down_after)

    def open(self) -> None:
        if self._link.is_open:
            return
        try:
            self._link.open()
        except PermanentError as exc:
            self._health.down(str(exc))
            raise
        self._health.opened()

    def close(self) -> None:
        self._link.close()
        self._health.down("closed")

    def health(self) -> Health:
        return self._health.snapshot()

    def read(self, timeout: float) -> Scan | None:
        deadline = time.monotonic() + max(timeout, 0)
        while True:
            found = self._exchange(FIND_CARD)
            if found.sw3 == FOUND:
                return self._read_card()
            if found.sw3 != NO_CARD:
                self._refused("find", found)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._idle(min(self.poll_s, remaining))

    def sam_id(self) -> str:
        """The SAM module's serial, as the vendors print it."""
        r = self._exchange(READ_SAM_ID)
        if r.sw3 != OK or len(r.data) < 16:
            self._refused("SAM id", r)
        d = r.data
        return "%02X.%02X-%u-%010u-%010u" % (  # noqa: UP031 - the vendors' format
            d[0], d[2], int.from_bytes(d[4:8], "little"), int.from_bytes(d[8:12], "little"),
            int.from_bytes(d[12:16], "little"))

    def _read_card(self) -> Scan:
        selected = self._exchange(SELECT_CARD)
        if selected.sw3 != OK:
            self._refused("select", selected)  # e.g. the card was pulled away
        got = self._exchange(READ_TEXT_PHOTO)
        if got.sw3 != OK:
            self._refused("read", got)
        try:
            text, photo = parse_read(got.data)
        except FrameError as exc:
            self._health.failed("bad_replies", str(exc))
            raise TemporaryError(f"unreadable card data: {exc}", self.device_id) from exc
        fields = card_fields(text, photo)
        if not fields["id_number_valid"]:
            log.warning("%s: card read, but its ID number fails the check digit",
                        self.device_id)
        self._health.count("cards")
        return Scan(ScanKind.ID_CARD, text["id_number"], self.device_id, fields=fields)

    def _refused(self, what: str, r: Reply) -> None:
        self._health.count("refusals")
        log.info("%s: %s refused: %s", self.device_id, what, r.status)
        raise TemporaryError(f"{what}: {r.status}", self.device_id)

    def _idle(self, seconds: float) -> None:
        try:
            stray = self._link.read(seconds)
        except PermanentError as exc:
            self._lost(exc)
            raise
        if stray:
            self._health.count("unexpected_bytes", len(stray))

    def _exchange(self, cmd: tuple[int, int]) -> Reply:
        if not self._link.is_open:
            raise PermanentError("ID reader port is not open", self.device_id)
        started = time.monotonic()
        try:
            self._link.discard_input()
            self._link.write(command(cmd))
            buffer, deadline = b"", started + self.reply_timeout_s
            while True:
                frames, garbage, buffer = split(buffer)
                if frames or garbage:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    return self._failed("timeouts", f"no reply to {cmd[0]:02x} {cmd[1]:02x}")
                buffer += self._link.read(left)
        except PermanentError as exc:
            self._lost(exc)
            raise
        if garbage or len(frames) != 1:
            return self._failed("garbled", "garbage on the line")
        try:
            result = decode_reply(frames[0])
        except FrameError as exc:
            return self._failed("checksum_errors", str(exc))
        self._health.ok(time.monotonic() - started)
        return result

    def _failed(self, kind: str, detail: str) -> Reply:
        if self._health.failed(kind, detail):
            self._link.close()
            self._health.down(detail)
            raise PermanentError(f"ID reader not answering: {detail}", self.device_id)
        raise TemporaryError(detail, self.device_id)

    def _lost(self, exc: PermanentError) -> None:
        self._link.close()
        self._health.down(str(exc))
