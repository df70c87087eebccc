"""RFID/NFC reader over PC/SC (pyscard's ``smartcard.scard``, talking to pcscd).

The transport is pcscd: ``SCardGetStatusChange`` reports a card arriving on or leaving the
reader's slot, and a UID is read with PC/SC part 3's GET DATA pseudo-APDU ``FF CA 00 00 00``,
which the reader answers for the contactless card in its field: UID + ``90 00``. The protocol
layer (``get_uid_apdu``, ``parse_uid_response``) is pure and table-tested.

One card on the reader is one scan: a card is read when it arrives and again only after it
has left. A read that fails while the card is still there (a garbled or late answer, an error
status) raises TemporaryError and is retried on the next ``read`` up to ``retries`` times; a
card pulled away mid-read raises TemporaryError and its removal ends the matter. The reader
(or pcscd) going away raises PermanentError; the runtime reopens with backoff.

UIDs identify a ticket's card; they prove nothing (MIFARE Classic UIDs can be cloned).
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from drivers.base import (
    DeviceState,
    Health,
    PermanentError,
    Scan,
    ScanKind,
    TemporaryError,
    utcnow,
)
from drivers.settings import SettingsError, settings_from

log = logging.getLogger(__name__)

UID_LENGTHS = (4, 7, 10)  # single, double and triple size UIDs (ISO 14443-3)


# --- protocol -----------------------------------------------------------------------------------

def get_uid_apdu(le: int = 0) -> list[int]:
    """PC/SC part 3 GET DATA for the UID; Le 0 means "all of it"."""
    return [0xFF, 0xCA, 0x00, 0x00, le & 0xFF]


class UidError(Exception):
    """A reply to GET DATA that holds no usable UID; ``retry_le`` is set when the reader asked
    for another Le (status 6C xx)."""

    def __init__(self, message: str, retry_le: int | None = None, final: bool = False):
        super().__init__(message)
        self.retry_le = retry_le
        self.final = final  # retrying this card will not help


STATUS_WORDS = {
    0x6281: "part of the data may be corrupted",
    0x6300: "the operation failed",
    0x6700: "wrong length",
    0x6A81: "the card or reader does not give a UID",
    0x6A82: "the card is not supported",
    0x6B00: "wrong parameters",
    0x6D00: "instruction not supported",
    0x6E00: "class not supported",
}


def parse_uid_response(response: bytes | list[int]) -> str:
    """The UID as upper-case hex from a GET DATA response (data + SW1 SW2); raises UidError."""
    data = bytes(response)
    if len(data) == 0:
        raise UidError("no answer from the card (pulled away mid-read?)")
    if len(data) < 2:
        raise UidError(f"garbled answer from the card ({data.hex()})")
    sw = int.from_bytes(data[-2:], "big")
    body = data[:-2]
    if sw == 0x9000:
        if len(body) not in UID_LENGTHS:
            raise UidError(f"a UID of {len(body)} bytes is not a card UID")
        return body.hex().upper()
    if data[-2] == 0x6C:
        raise UidError(f"the reader asks for Le={data[-1]}", retry_le=data[-1])
    meaning = STATUS_WORDS.get(sw, "error status")
    raise UidError(f"status {sw:04X}: {meaning}", final=sw in (0x6A81, 0x6A82, 0x6D00, 0x6E00))


# --- settings and the driver ----------------------------------------------------------------------

@dataclass(frozen=True)
class RfidSettings:
    reader: str = ""       # part of the reader's PC/SC name; empty: the first reader
    retries: int = 2       # further attempts at a card still on the reader after a failed read
    slow_ms: float = 300.0  # a read slower than this marks the reader degraded

    def __post_init__(self) -> None:
        if not 0 <= self.retries <= 10:
            raise ValueError("retries: between 0 and 10")
        if self.slow_ms <= 0:
            raise ValueError("slow_ms: must be positive")


class _Scard:
    """pyscard's low-level module, imported when first needed: a machine without pcscd's
    client library can still run every other driver."""

    _module = None

    @classmethod
    def get(cls):
        if cls._module is None:
            try:
                from smartcard import scard
            except ImportError as exc:
                raise PermanentError(f"PC/SC is not available: {exc}") from exc
            cls._module = scard
        return cls._module


class PcscReader:
    """A PC/SC contactless reader as a Reader: ``read`` returns a Scan when a card arrives."""

    def __init__(self, device_id: str, settings: RfidSettings | None = None):
        self.device_id = device_id
        self.settings = settings or RfidSettings()
        self.reader_name = ""
        self._ctx = None
        self._state = 0
        self._present = False
        self._to_read = False    # a card arrived and has not been read (or is being retried)
        self._attempts = 0
        self._last_error = ""
        self._errors_at: deque[float] = deque(maxlen=20)
        self._last_read_ms: float | None = None
        self._last_card_at: datetime | None = None
        self.cards_read = 0
        self.read_errors = 0
        self.insertions = 0
        self.removals = 0

    @classmethod
    def from_config(cls, device_id: str, config: Mapping[str, Any]) -> PcscReader:
        try:
            return cls(device_id, settings_from(RfidSettings, config))
        except SettingsError as exc:
            raise PermanentError(f"RFID reader {device_id}: {exc}", device_id) from exc

    # Reader protocol -------------------------------------------------------------------------

    def open(self) -> None:
        if self._ctx is not None:
            return
        s = _Scard.get()
        rc, ctx = s.SCardEstablishContext(s.SCARD_SCOPE_USER)
        if rc != s.SCARD_S_SUCCESS:
            raise self._permanent(f"PC/SC service not available: {_message(rc)}")
        rc, names = s.SCardListReaders(ctx, [])
        if rc != s.SCARD_S_SUCCESS or not names:
            s.SCardReleaseContext(ctx)
            raise self._permanent("no PC/SC reader" if rc in (s.SCARD_S_SUCCESS,
                                                             s.SCARD_E_NO_READERS_AVAILABLE)
                                  else f"cannot list PC/SC readers: {_message(rc)}")
        wanted = self.settings.reader
        matches = [n for n in names if wanted.lower() in n.lower()]
        if not matches:
            s.SCardReleaseContext(ctx)
            raise self._permanent(f"no PC/SC reader named like {wanted!r} "
                                  f"(there are: {', '.join(names)})")
        self._ctx = ctx
        self.reader_name = matches[0]
        self._state = s.SCARD_STATE_UNAWARE
        self._present = False
        self._to_read = False
        self._last_error = ""
        log.info("rfid %s: opened reader %s", self.device_id, self.reader_name)

    def read(self, timeout: float) -> Scan | None:
        if self._ctx is None:
            raise PermanentError(f"RFID reader {self.device_id} is not open", self.device_id)
        deadline = time.monotonic() + timeout
        while True:
            if self._to_read:
                if self._attempts:
                    self._wait_change(0)  # a retry: first, was the card taken away?
                    if not self._to_read:
                        continue
                return self._read_card()
            remaining = deadline - time.monotonic()
            self._wait_change(max(0.0, remaining))
            if self._to_read:
                continue
            if time.monotonic() >= deadline:
                return None

    def health(self) -> Health:
        metrics: dict[str, float | int | str | None] = {
            "reader": self.reader_name,
            "card_present": int(self._present),
            "cards_read": self.cards_read,
            "read_errors": self.read_errors,
            "insertions": self.insertions,
            "removals": self.removals,
            "last_read_ms": round(self._last_read_ms, 1) if self._last_read_ms else None,
            "last_card_at": self._last_card_at.isoformat() if self._last_card_at else None,
        }
        if self._ctx is None:
            return Health(DeviceState.DOWN, self._last_error or "not open", metrics)
        now = time.monotonic()
        if self._errors_at and now - self._errors_at[-1] < 10:
            return Health(DeviceState.DEGRADED, self._last_error, metrics)
        if self._last_read_ms is not None and self._last_read_ms > self.settings.slow_ms:
            return Health(DeviceState.DEGRADED, f"slow card reads ({self._last_read_ms:.0f} ms)",
                          metrics)
        return Health(DeviceState.UP, "", metrics)

    def close(self) -> None:
        ctx, self._ctx = self._ctx, None
        if ctx is not None:
            s = _Scard.get()
            s.SCardReleaseContext(ctx)

    # Internals -------------------------------------------------------------------------------

    def _permanent(self, message: str) -> PermanentError:
        self._last_error = message
        return PermanentError(f"RFID reader {self.device_id}: {message}", self.device_id)

    def _gone(self, message: str) -> PermanentError:
        self.close()
        return self._permanent(message)

    def _wait_change(self, timeout: float) -> None:
        s = _Scard.get()
        rc, states = s.SCardGetStatusChange(self._ctx, int(timeout * 1000),
                                            [(self.reader_name, self._state)])
        if rc == s.SCARD_E_TIMEOUT:
            return
        if rc != s.SCARD_S_SUCCESS:
            raise self._gone(f"reader lost: {_message(rc)}")
        _, event, _atr = states[0]
        if event & (s.SCARD_STATE_UNKNOWN | s.SCARD_STATE_UNAVAILABLE):
            raise self._gone(f"reader {self.reader_name} is gone")
        self._state = event & ~s.SCARD_STATE_CHANGED
        present = bool(event & s.SCARD_STATE_PRESENT) and not event & s.SCARD_STATE_MUTE
        if present and not self._present:
            self.insertions += 1
            self._to_read = True
            self._attempts = 0
            log.debug("rfid %s: card arrived", self.device_id)
        elif not present and self._present:
            self.removals += 1
            self._to_read = False
            log.debug("rfid %s: card left", self.device_id)
        self._present = present

    def _read_card(self) -> Scan:
        t0 = time.perf_counter()
        self._attempts += 1
        try:
            uid = self._transact()
        except UidError as exc:
            self._fail(str(exc), give_up=exc.final)
            raise TemporaryError(f"RFID reader {self.device_id}: {exc}", self.device_id) from None
        except _CardGone as exc:
            self._fail(str(exc), give_up=False)
            raise TemporaryError(f"RFID reader {self.device_id}: {exc}", self.device_id) from None
        finally:
            self._last_read_ms = (time.perf_counter() - t0) * 1000
        self._to_read = False
        self.cards_read += 1
        self._last_card_at = utcnow()
        return Scan(ScanKind.RFID, uid, self.device_id, at=self._last_card_at,
                    fields={"reader": self.reader_name, "read_ms": self._last_read_ms})

    def _fail(self, message: str, give_up: bool) -> None:
        self.read_errors += 1
        self._errors_at.append(time.monotonic())
        self._last_error = message
        if give_up or self._attempts > self.settings.retries:
            self._to_read = False  # leave this card until it is taken away and tapped again
            log.warning("rfid %s: card not read (%s); waiting for the next tap",
                        self.device_id, message)

    def _transact(self) -> str:
        s = _Scard.get()
        rc, handle, protocol = s.SCardConnect(self._ctx, self.reader_name, s.SCARD_SHARE_SHARED,
                                              s.SCARD_PROTOCOL_T0 | s.SCARD_PROTOCOL_T1)
        if rc != s.SCARD_S_SUCCESS:
            self._raise_for(rc)
        try:
            pci = s.SCARD_PCI_T1 if protocol == s.SCARD_PROTOCOL_T1 else s.SCARD_PCI_T0
            le = 0
            for _ in range(2):
                rc, response = s.SCardTransmit(handle, pci, get_uid_apdu(le))
                if rc != s.SCARD_S_SUCCESS:
                    self._raise_for(rc)
                try:
                    return parse_uid_response(response)
                except UidError as exc:
                    if exc.retry_le is None:
                        raise
                    le = exc.retry_le
            raise UidError("the reader keeps asking for another Le")
        finally:
            s.SCardDisconnect(handle, s.SCARD_LEAVE_CARD)

    def _raise_for(self, rc: int) -> None:
        s = _Scard.get()
        if rc in (s.SCARD_E_NO_SERVICE, s.SCARD_E_SERVICE_STOPPED, s.SCARD_F_COMM_ERROR,
                  s.SCARD_E_UNKNOWN_READER, s.SCARD_E_READER_UNAVAILABLE,
                  s.SCARD_E_NO_READERS_AVAILABLE, s.SCARD_E_INVALID_HANDLE):
            raise self._gone(f"reader lost: {_message(rc)}")
        raise _CardGone(f"card read failed: {_message(rc)}")


class _CardGone(Exception):
    """The card went away or stopped answering during a read."""


def _message(rc: int) -> str:
    s = _Scard.get()
    return f"{s.SCardGetErrorMessage(rc).strip().rstrip('.')} (0x{rc & 0xFFFFFFFF:08X})"


def wait_slot(reader: str, present: bool, timeout: float = 10.0) -> bool:
    """Wait until ``reader``'s slot has a card (``present``) or has none; False at timeout.
    Tests use this instead of sleeping: pcscd notices a card or its removal only at its next
    poll of the reader."""
    s = _Scard.get()
    rc, ctx = s.SCardEstablishContext(s.SCARD_SCOPE_USER)
    if rc != s.SCARD_S_SUCCESS:
        raise PermanentError(f"PC/SC service not available: {_message(rc)}")
    try:
        state = s.SCARD_STATE_UNAWARE
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            rc, states = s.SCardGetStatusChange(ctx, max(0, int(remaining * 1000)),
                                                [(reader, state)])
            if rc == s.SCARD_S_SUCCESS:
                event = states[0][1]
                if event & s.SCARD_STATE_UNKNOWN:
                    raise PermanentError(f"no reader {reader!r}")
                has_card = bool(event & s.SCARD_STATE_PRESENT)
                if has_card == present:
                    return True
                state = event & ~s.SCARD_STATE_CHANGED
            elif rc != s.SCARD_E_TIMEOUT:
                raise PermanentError(f"cannot watch {reader!r}: {_message(rc)}")
            if time.monotonic() >= deadline:
                return False
    finally:
        s.SCardReleaseContext(ctx)
