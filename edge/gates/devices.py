"""Devices as the runtime knows them: a driver built from a ``devices`` row, and the one thread
that owns it.

A device worker opens its driver, reads scans (a reader) or carries out unlocks and polls for
passages (a turnstile), and reconnects when the device vanishes: exponential backoff with
jitter, "down" logged once per outage and "up" once when it is back. Whatever a driver raises
— a driver's own error or a bug — ends in this thread's loop, never in another lane's.
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from drivers.base import (
    DeviceState,
    Direction,
    DriverError,
    Health,
    PermanentError,
    Scan,
    TemporaryError,
    TurnstileEvent,
)

log = logging.getLogger(__name__)

READER_KINDS = ("qr_camera", "barcode_scanner", "rfid_reader", "id_reader")
TURNSTILE_KIND = "turnstile"
KINDS = (*READER_KINDS, TURNSTILE_KIND)


class DeviceConfigError(ValueError):
    """A device row the runtime cannot build a driver from; the message says why."""


@dataclass(frozen=True)
class DeviceRow:
    id: str
    lane_id: int | None
    kind: str
    config: Mapping[str, Any]
    enabled: bool

    @classmethod
    def from_db(cls, row: tuple) -> DeviceRow:
        device_id, lane_id, kind, config, enabled = row
        try:
            parsed = json.loads(config or "{}")
        except ValueError:
            parsed = {"__invalid__": config}
        return cls(device_id, lane_id, kind, parsed if isinstance(parsed, dict)
                   else {"__invalid__": config}, bool(enabled))

    def key(self) -> tuple:
        return (self.lane_id, self.kind, json.dumps(self.config, sort_keys=True), self.enabled)


def build_driver(row: DeviceRow, passage_timeout_s: float | None = None):
    """The driver for a device row. The ``model`` setting picks the driver of a kind with
    several (turnstile: modbus, onetech, usb_relay; barcode_scanner: serial, wedge)."""
    from drivers import settings as driver_config

    settings = dict(row.config)
    if "__invalid__" in settings:
        raise DeviceConfigError(f"device {row.id}: its configuration is not a JSON object")
    model = settings.pop("model", None)
    try:
        if row.kind == "qr_camera":
            from drivers.camera import QrCamera
            return QrCamera.from_config(row.id, settings)
        if row.kind == "rfid_reader":
            from drivers.rfid import PcscReader
            return PcscReader.from_config(row.id, settings)
        if row.kind == "id_reader":
            from drivers.idcard import IdCardReader
            return driver_config.build(IdCardReader, row.id, settings)
        if row.kind == "barcode_scanner":
            if model in (None, "serial"):
                from drivers.serial_scanner import SerialScanner
                return driver_config.build(SerialScanner, row.id, settings)
            if model == "wedge":
                from drivers.wedge import WedgeScanner
                if "port" in settings and "path" not in settings:
                    settings["path"] = settings.pop("port")
                return driver_config.build(WedgeScanner, row.id, settings)
            raise DeviceConfigError(f"device {row.id}: barcode_scanner model {model!r} is not "
                                    "serial or wedge")
        if row.kind == TURNSTILE_KIND:
            if model in (None, "modbus"):
                from drivers.modbus_turnstile import ModbusTurnstile
                if passage_timeout_s is not None:
                    settings.setdefault("passage_timeout_s", passage_timeout_s)
                return driver_config.build(ModbusTurnstile, row.id, settings)
            if model == "onetech":
                from drivers.onetech_turnstile import OneTechTurnstile
                return driver_config.build(OneTechTurnstile, row.id, settings)
            if model == "usb_relay":
                from drivers.usb_relay import UsbRelayTurnstile
                return driver_config.build(UsbRelayTurnstile, row.id, settings)
            raise DeviceConfigError(f"device {row.id}: turnstile model {model!r} is not "
                                    "modbus, onetech or usb_relay")
    except PermanentError as exc:
        raise DeviceConfigError(str(exc)) from None
    except (TypeError, ValueError) as exc:
        raise DeviceConfigError(f"device {row.id}: {exc}") from None
    raise DeviceConfigError(f"device {row.id}: unknown kind {row.kind!r} "
                            f"(known: {', '.join(KINDS)})")


def config_problem(kind: str, config: Mapping[str, Any]) -> str | None:
    """What is wrong with a device's settings (an unknown setting by its name, a missing or
    mistyped one), as the runtime would find when it builds the driver; None when they do.
    Builds the driver without opening anything: for the pages that save devices."""
    try:
        build_driver(DeviceRow("check", None, kind, config, True))
    except DeviceConfigError as exc:
        return str(exc).removeprefix("device check: ")
    return None


@dataclass
class Backoff:
    """Exponential backoff with full jitter in [delay/2, delay]."""

    base_s: float = 0.5
    max_s: float = 30.0
    attempt: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def next(self) -> float:
        delay = min(self.max_s, self.base_s * (2 ** self.attempt))
        self.attempt += 1
        return delay / 2 + self.rng.random() * delay / 2

    def reset(self) -> None:
        self.attempt = 0


@dataclass(frozen=True)
class UnlockRequest:
    direction: Direction
    token: str               # the entry (or command) the opening is for
    done: Callable[[str, str | None, bool], None]  # (token, error or None, has_feedback)


class DeviceWorker(threading.Thread):
    """The one thread that owns a device. ``on_scan`` gets a reader's scans, ``on_events`` a
    turnstile's events; ``unlock`` queues an opening for the turnstile's thread."""

    def __init__(self, row: DeviceRow, factory: Callable[[], Any],
                 on_scan: Callable[[Scan], None] | None = None,
                 on_events: Callable[[list[TurnstileEvent]], None] | None = None,
                 backoff: Backoff | None = None, poll_s: float = 0.05):
        super().__init__(name=f"device {row.id}", daemon=True)
        self.row = row
        self.factory = factory
        self.on_scan = on_scan
        self.on_events = on_events
        self.backoff = backoff or Backoff()
        self.poll_s = poll_s
        self.driver = None
        self.is_turnstile = row.kind == TURNSTILE_KIND
        self.has_feedback = True
        self.state = DeviceState.UNKNOWN
        self.detail = ""
        self.metrics: dict[str, Any] = {}
        self.changed = threading.Event()  # set when state or detail changed
        self.scans = 0
        self.errors = 0
        self._halt = threading.Event()
        self._unlocks: queue.Queue[UnlockRequest] = queue.Queue()
        self._held: UnlockRequest | None = None
        self._calls: queue.Queue[tuple[Callable, Callable]] = queue.Queue()
        self._next_unlock_at = 0.0
        self._lock = threading.Lock()

    # called from other threads ---------------------------------------------------------------

    def stop(self) -> None:
        self._halt.set()

    def unlock(self, request: UnlockRequest) -> None:
        if self.state is not DeviceState.UP and self.state is not DeviceState.DEGRADED:
            request.done(request.token, f"turnstile {self.row.id} is {self.state.value}",
                         self.has_feedback)
            return
        self._unlocks.put(request)

    def call(self, fn: Callable[[Any], Any], done: Callable[[Any, str | None], None]) -> None:
        """Run ``fn(driver)`` in this device's thread (the only one that touches the driver);
        ``done(result, error)`` is called there afterwards."""
        self._calls.put((fn, done))

    def snapshot(self) -> tuple[DeviceState, str, dict[str, Any]]:
        with self._lock:
            return self.state, self.detail, dict(self.metrics)

    @property
    def usable(self) -> bool:
        return self.state in (DeviceState.UP, DeviceState.DEGRADED)

    # the thread ------------------------------------------------------------------------------

    def run(self) -> None:
        try:
            while not self._halt.is_set():
                if not self._connect():
                    continue
                try:
                    self._serve()
                except DriverError as exc:
                    self._down(str(exc))
                except Exception as exc:  # noqa: BLE001 - a driver bug stays in this thread
                    log.exception("device %s: unexpected error; reconnecting", self.row.id)
                    self._down(f"internal error: {type(exc).__name__}: {exc}")
                self._close()
                self._halt.wait(self.backoff.next())
        finally:
            self._close()
            self._fail_unlocks(f"turnstile {self.row.id} stopped")
            while not self._calls.empty():
                _, done = self._calls.get_nowait()
                done(None, f"device {self.row.id} stopped")

    def _connect(self) -> bool:
        try:
            if self.driver is None:
                self.driver = self.factory()
                self.has_feedback = bool(getattr(self.driver, "has_feedback", True))
            self.driver.open()
        except DeviceConfigError as exc:
            self._down(str(exc))
            self._halt.wait(self.backoff.max_s)
            return False
        except Exception as exc:  # noqa: BLE001 - any failure to open is this device's outage
            if not isinstance(exc, DriverError):
                log.debug("device %s: open failed", self.row.id, exc_info=True)
            self._down(str(exc) or type(exc).__name__)
            self._close()
            self._halt.wait(self.backoff.next())
            return False
        self.backoff.reset()
        self._set(DeviceState.UP, "")
        return True

    def _serve(self) -> None:
        last_health = 0.0
        while not self._halt.is_set():
            self._run_calls()
            if self.is_turnstile:
                self._turnstile_step()
            else:
                self._reader_step()
            now = time.monotonic()
            if now - last_health > 0.5:
                last_health = now
                self._refresh_health()

    def _run_calls(self) -> None:
        while True:
            try:
                fn, done = self._calls.get_nowait()
            except queue.Empty:
                return
            try:
                result = fn(self.driver)
            except Exception as exc:  # noqa: BLE001 - the caller gets the failure as text
                done(None, str(exc) or type(exc).__name__)
            else:
                done(result, None)

    def _reader_step(self) -> None:
        try:
            scan = self.driver.read(0.2)
        except TemporaryError as exc:
            self.errors += 1
            self._set(DeviceState.DEGRADED, str(exc))
            self._halt.wait(0.05)
            return
        if scan is not None:
            self.scans += 1
            if self.state is DeviceState.DEGRADED:
                self._refresh_health()
            if self.on_scan is not None:
                self.on_scan(scan)

    def _turnstile_step(self) -> None:
        request, self._held = self._held, None
        if request is None:
            try:
                request = self._unlocks.get(timeout=self.poll_s)
            except queue.Empty:
                request = None
        if request is not None and time.monotonic() < self._next_unlock_at:
            # The last unlock pulse is still on: a gate triggered by the pulse's edge would
            # never see this one. It goes out when the pulse has ended.
            self._held = request
            time.sleep(min(self.poll_s, self._next_unlock_at - time.monotonic()))
            request = None
        if request is not None:
            try:
                self.driver.unlock(request.direction)
                self._next_unlock_at = time.monotonic() + _pulse_s(self.driver) + 0.05
            except TemporaryError as exc:
                self.errors += 1
                request.done(request.token, str(exc), self.has_feedback)
                self._set(DeviceState.DEGRADED, str(exc))
            except BaseException as exc:
                request.done(request.token, str(exc) or type(exc).__name__, self.has_feedback)
                raise
            else:
                request.done(request.token, None, self.has_feedback)
        try:
            events = self.driver.poll(0)
        except TemporaryError as exc:
            self.errors += 1
            self._set(DeviceState.DEGRADED, str(exc))
            return
        if events and self.on_events is not None:
            self.on_events(events)

    def _refresh_health(self) -> None:
        try:
            health: Health = self.driver.health()
        except Exception as exc:  # noqa: BLE001 - health must never take the device down
            log.debug("device %s: health() failed: %s", self.row.id, exc)
            return
        state = health.state
        if state is DeviceState.DOWN or state is DeviceState.UNKNOWN:
            state = DeviceState.DEGRADED  # open and serving, whatever the driver's bookkeeping
        with self._lock:
            self.metrics = dict(health.metrics)
        self._set(state, health.detail if state is DeviceState.DEGRADED else "")

    def _set(self, state: DeviceState, detail: str) -> None:
        with self._lock:
            was = self.state
            if (state, detail) == (self.state, self.detail):
                return
            self.state, self.detail = state, detail
        self.changed.set()
        if state is DeviceState.UP and was in (DeviceState.DOWN, DeviceState.UNKNOWN):
            log.info("device %s up", self.row.id)
        elif state is DeviceState.DEGRADED and was is DeviceState.UP:
            log.info("device %s degraded: %s", self.row.id, detail)

    def _down(self, detail: str) -> None:
        with self._lock:
            was = self.state
            self.state, self.detail = DeviceState.DOWN, detail
        if was is not DeviceState.DOWN:
            self.changed.set()
            log.warning("device %s down: %s", self.row.id, detail)
        else:
            log.debug("device %s still down: %s", self.row.id, detail)
        self._fail_unlocks(f"turnstile {self.row.id} is down")

    def _fail_unlocks(self, why: str) -> None:
        held, self._held = self._held, None
        if held is not None:
            held.done(held.token, why, self.has_feedback)
        while True:
            try:
                request = self._unlocks.get_nowait()
            except queue.Empty:
                return
            request.done(request.token, why, self.has_feedback)

    def _close(self) -> None:
        driver = self.driver
        if driver is None:
            return
        try:
            driver.close()
        except Exception as exc:  # noqa: BLE001 - closing a broken device must not raise
            log.debug("device %s: close failed: %s", self.row.id, exc)


def _pulse_s(driver: Any) -> float:
    """How long a driver's unlock pulse lasts (the board-timed Modbus flash-on counts in
    100 ms ticks)."""
    ticks = getattr(driver, "ticks", None)
    if isinstance(ticks, int):
        return ticks / 10
    pulse_s = getattr(driver, "pulse_s", None)
    return float(pulse_s) if isinstance(pulse_s, int | float) else 0.0
