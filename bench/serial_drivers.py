"""How long the serial drivers take over a pty pair, against the floor of a bare round trip.

    .venv/bin/python bench/serial_drivers.py [--n 200]

- ``modbus_unlock``: ``ModbusTurnstile.unlock()`` (pymodbus: the flash-on request and its echo)
  against the simulated board.
- ``modbus_pass_detect``: from the simulated PASS contact closing to ``poll()`` returning
  PASSED (bounded by the 50 ms input poll).
- ``onetech_unlock``: ``OneTechTurnstile.unlock()`` until the simulated gate has the frame.
- ``idcard_read``: find, select and read of one card (1295-byte reply).
- ``floor_roundtrip``: an 8-byte frame written to the pty and echoed back by a bare thread,
  no driver, no library: what the pty itself costs.

A pty has no baud-rate timing; on a real 9600-baud RS-485 line an 8-byte Modbus frame takes
8.3 ms each way and the ID card reply 112 ms at 115200. Prints one figure per line, in ms:
``*_p50_ms`` and ``*_p99_ms``, and ``modbus_unlock_over_floor`` (p50 ratio). Target:
modbus_unlock_p99_ms <= 50 (a tenth of the 500 ms unlock pulse).
"""

from __future__ import annotations

import argparse
import os
import select
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import serial  # noqa: E402

from drivers.base import Direction, PtyPair, TurnstileEventKind  # noqa: E402
from drivers.idcard import IdCardReader  # noqa: E402
from drivers.modbus_turnstile import ModbusTurnstile  # noqa: E402
from drivers.onetech_turnstile import OneTechTurnstile  # noqa: E402
from drivers.sim.idcard import IdCardReaderSim  # noqa: E402
from drivers.sim.modbus_board import NEVER, ModbusBoardSim  # noqa: E402
from drivers.sim.onetech_turnstile import OneTechTurnstileSim  # noqa: E402


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def report(name: str, samples: list[float]) -> float:
    p50 = statistics.median(samples)
    print(f"{name}_p50_ms: {p50:.2f}")
    print(f"{name}_p99_ms: {pct(samples, 0.99):.2f}")
    return p50


def floor(n: int) -> list[float]:
    out = []
    with PtyPair() as pair:
        stop = threading.Event()

        def echo():
            while not stop.is_set():
                ready, _, _ = select.select([pair.fd], [], [], 0.1)
                if ready:
                    os.write(pair.fd, os.read(pair.fd, 64))

        thread = threading.Thread(target=echo, daemon=True)
        thread.start()
        port = serial.Serial(pair.port, 9600, timeout=2)
        frame = bytes.fromhex("01 05 02 00 00 05 0c 73")
        for _ in range(n):
            started = time.perf_counter()
            port.write(frame)
            got = b""
            while len(got) < len(frame):
                got += port.read(len(frame) - len(got))
            out.append((time.perf_counter() - started) * 1000)
        port.close()
        stop.set()
        thread.join()
    return out


def modbus(n: int) -> tuple[list[float], list[float]]:
    unlock, detect = [], []
    with ModbusBoardSim() as board:
        lane = ModbusTurnstile("bench", board.port, passage_timeout_s=30)
        lane.open()
        lane.poll(0)
        board.person = NEVER
        for _ in range(n):
            started = time.perf_counter()
            lane.unlock(Direction.A)
            unlock.append((time.perf_counter() - started) * 1000)
        lane.close()
        board.person = "passes"
        board.walk_s, board.pass_pulse_s = 0.05, 0.2
        lane = ModbusTurnstile("bench", board.port, passage_timeout_s=30, pulse_ms=100)
        lane.open()
        for _ in range(max(n // 10, 10)):
            while board.coils[0] or board.inputs[0]:  # the last pulse and passage are over
                lane.poll(0.05)
            lane.unlock(Direction.A)
            deadline, passed = time.monotonic() + 10, False
            while not passed:
                if time.monotonic() > deadline:
                    raise SystemExit("no passage seen within 10 s")
                passed = any(e.kind is TurnstileEventKind.PASSED for e in lane.poll(1.0))
            detect.append((time.monotonic() - board.passages[-1][0]) * 1000)
        lane.close()
    return unlock, detect


def onetech(n: int) -> list[float]:
    out = []
    with OneTechTurnstileSim() as gate:
        gate.person, gate.gate_timeout_s = NEVER, 3600
        lane = OneTechTurnstile("bench", gate.port, answer_timeout_s=3600)
        lane.open()
        for i in range(n):
            started = time.perf_counter()
            lane.unlock(Direction.A)
            while len(gate.opens) <= i:
                time.sleep(0.0002)
            out.append((time.perf_counter() - started) * 1000)
        lane.close()
    return out


def idcard(n: int) -> list[float]:
    out = []
    with IdCardReaderSim() as sim:
        reader = IdCardReader("bench", sim.port)
        reader.open()
        for _ in range(n):
            sim.present()
            started = time.perf_counter()
            scan = reader.read(5)
            out.append((time.perf_counter() - started) * 1000)
            assert scan is not None
        reader.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()
    floor_p50 = report("floor_roundtrip", floor(args.n))
    unlock, detect = modbus(args.n)
    unlock_p50 = report("modbus_unlock", unlock)
    report("modbus_pass_detect", detect)
    report("onetech_unlock", onetech(args.n))
    report("idcard_read", idcard(max(args.n // 4, 20)))
    print(f"modbus_unlock_over_floor: {unlock_p50 / floor_p50:.1f}")


if __name__ == "__main__":
    main()
