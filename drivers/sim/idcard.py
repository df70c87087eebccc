"""An ID card reader's SAM module on the far end of a pty, with a card that can be presented
and taken away.

``present(card)`` lays a card on the reader (a dict of the text fields; ``SAMPLE_CARD`` by
default), ``remove()`` takes it away. As on real modules, a card read once is not found again
until it is presented anew. ``pull_after_find`` takes the card away between find and select
(a hand moving away). Fault switches: ``drop``, ``silence``, ``garble`` (the reply's
checksum is wrong), ``delay`` (every reply is that slow; ``read_delay`` adds to the read
reply only, as real modules take up to a second there).
"""

from __future__ import annotations

from drivers import idcard as proto
from drivers.protocol import FrameError
from drivers.sim.base import SerialSim

# A made-up holder with a valid check digit, as in the public protocol write-ups.
SAMPLE_CARD = {
    "name": "张三", "sex": "1", "nation": "01", "birth": "19491231",
    "address": "北京市朝阳区某某路1号", "id_number": "11010519491231002X",
    "authority": "北京市公安局朝阳分局", "valid_from": "20200101", "valid_to": "长期",
}
SAM_ID = bytes.fromhex("05 00 01 00 4d 01 00 00 6f 2f 9b 05 15 cd 5b 07")


class IdCardReaderSim(SerialSim):
    def __init__(self, link: str | None = None):
        super().__init__(link)
        self.card: dict[str, str] | None = None
        self.photo = bytes(range(256)) * 4  # stands in for the 1024-byte WLT photo
        self.pull_after_find = False
        self.read_delay = 0.0
        self.commands: list[tuple[int, int]] = []
        self.bad_commands = 0
        self._already_read = False
        self._selected = False
        self._buffer = b""

    def present(self, card: dict[str, str] | None = None) -> None:
        self.card = dict(SAMPLE_CARD if card is None else card)
        self._already_read = self._selected = False

    def remove(self) -> None:
        self.card = None
        self._already_read = self._selected = False

    def received(self, data: bytes) -> None:
        frames, garbage, self._buffer = proto.split(self._buffer + data)
        self.bad_commands += garbage > 0
        for frame in frames:
            try:
                cmd, _ = proto.decode_command(frame)
            except FrameError:
                self.bad_commands += 1
                self.send(proto.reply(0x10))
                continue
            self.commands.append(cmd)
            self._answer(cmd)

    def _answer(self, cmd: tuple[int, int]) -> None:
        if cmd in (proto.RESET_SAM, proto.SAM_STATUS):
            self.send(proto.reply(proto.OK))
        elif cmd == proto.READ_SAM_ID:
            self.send(proto.reply(proto.OK, SAM_ID))
        elif cmd == proto.FIND_CARD:
            if self.card is None or self._already_read:
                self.send(proto.reply(proto.NO_CARD))
                return
            if self.pull_after_find:  # gone by the time the reader selects it
                self.remove()
            self.send(proto.reply(proto.FOUND, b"\0\0\0\0"))
        elif cmd == proto.SELECT_CARD:
            self._selected = self.card is not None
            self.send(proto.reply(proto.OK, bytes(8)) if self._selected
                      else proto.reply(proto.SELECT_FAILED))
        elif cmd == proto.READ_TEXT_PHOTO:
            if not (self._selected and self.card is not None):
                self.send(proto.reply(proto.READ_FAILED))
                return
            if self.read_delay and self._stop.wait(self.read_delay):
                return
            text = proto.build_text(self.card)
            data = proto.TEXT_LEN.to_bytes(2, "big") + len(self.photo).to_bytes(2, "big")
            # the card counts as read before the reply goes: a test that presents it again
            # once the reader has the reply must not have its new card marked read after it
            self._already_read, self._selected = True, False
            self.send(proto.reply(proto.OK, data + text + self.photo))
        else:
            self.send(proto.reply(0x21))

    def stopped(self) -> None:
        self._buffer = b""
        self._selected = False
