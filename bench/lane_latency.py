"""How fast a QR lane sees a code: decode time per frame for zxing-cpp and pyzbar side by side.

    .venv/bin/python bench/lane_latency.py [--res 640x480] [--frames 40] [--repeat 5]

The frames are what a lane camera sees: ticket-sized codes (115 QR alphanumeric characters,
4 px per module at 640×480, 6 at 1280×720) held at an angle on textured, gradient, striped and
dark backgrounds, some blurred, noisy or inverted (a phone in dark mode), and as many frames
with no code at all (most frames at a gate are empty). Both decoders get the same grayscale
frames, one core, median over frames × repeats. The floor in the same run is the grayscale
conversion every frame needs anyway.

Prints one figure per line: zxing_decode_ms, pyzbar_decode_ms (median per frame, all frames),
zxing_code_ms, pyzbar_code_ms (frames with a code), zxing_empty_ms, pyzbar_empty_ms,
zxing_read, pyzbar_read (codes read / codes shown), gray_floor_ms, pyzbar_over_zxing.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import cv2  # noqa: E402

from drivers.camera import pyzbar_decode, zxing_decode  # noqa: E402
from drivers.sim import scenes  # noqa: E402

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ$%*+-./:"


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def parse_res(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not WIDTHxHEIGHT") from None
    if not (160 <= w <= 4096 and 120 <= h <= 4096):
        raise argparse.ArgumentTypeError(f"{text!r} is out of range")
    return w, h


def decode_frames(size: tuple[int, int], count: int, seed: int = 1):
    """``count`` grayscale frames, half with a code; returns [(gray, code or None)]."""
    rng = random.Random(seed)
    module_px = 4 if size[0] * size[1] <= 640 * 480 else 6
    cases = [{}, {"blur": 1.2}, {"noise": 20}, {"invert": True}, {"angle": 30}]
    backgrounds = ["texture", "gradient", "stripes", "dark"]
    out = []
    for i in range(count):
        bg = backgrounds[i % len(backgrounds)]
        if i % 2:
            out.append((cv2.cvtColor(scenes.render(size, scenes.Shot(None), bg, seed=i),
                                     cv2.COLOR_BGR2GRAY), None))
            continue
        code = "".join(rng.choice(ALPHABET) for _ in range(115))
        case = dict(cases[(i // 2) % len(cases)])
        shot = scenes.Shot(code, module_px=module_px, angle=case.pop("angle", rng.uniform(-20, 20)),
                           center=(rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6)), **case)
        frame = scenes.render(size, shot, bg, seed=i)
        out.append((cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY), code))
    return out


def time_decoder(decode, frames, repeat: int):
    all_ms, code_ms, empty_ms = [], [], []
    read = 0
    for r in range(repeat):
        for gray, code in frames:
            t0 = time.perf_counter()
            texts = decode(gray)
            ms = (time.perf_counter() - t0) * 1000
            all_ms.append(ms)
            (code_ms if code else empty_ms).append(ms)
            if r == 0 and code and texts == [code]:
                read += 1
    return statistics.median(all_ms), statistics.median(code_ms), statistics.median(empty_ms), read


def bench_decoders(size: tuple[int, int], count: int, repeat: int) -> None:
    cv2.setNumThreads(1)
    note(f"decoders at {size[0]}x{size[1]}: {count} frames x {repeat}")
    frames = decode_frames(size, count)
    shown = sum(1 for _, code in frames if code)
    colour = [cv2.cvtColor(g, cv2.COLOR_GRAY2BGR) for g, _ in frames]
    floor = []
    for _ in range(repeat):
        for image in colour:
            t0 = time.perf_counter()
            cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
            floor.append((time.perf_counter() - t0) * 1000)
    z_all, z_code, z_empty, z_read = time_decoder(zxing_decode, frames, repeat)
    p_all, p_code, p_empty, p_read = time_decoder(pyzbar_decode, frames, repeat)
    print(f"res: {size[0]}x{size[1]}")
    print(f"zxing_decode_ms: {z_all:.2f}")
    print(f"pyzbar_decode_ms: {p_all:.2f}")
    print(f"zxing_code_ms: {z_code:.2f}")
    print(f"pyzbar_code_ms: {p_code:.2f}")
    print(f"zxing_empty_ms: {z_empty:.2f}")
    print(f"pyzbar_empty_ms: {p_empty:.2f}")
    print(f"zxing_read: {z_read}/{shown}")
    print(f"pyzbar_read: {p_read}/{shown}")
    print(f"gray_floor_ms: {statistics.median(floor):.3f}")
    print(f"pyzbar_over_zxing: {p_all / z_all:.1f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--res", type=parse_res, default=(640, 480), help="WIDTHxHEIGHT")
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    bench_decoders(args.res, args.frames, args.repeat)
    return 0


if __name__ == "__main__":
    sys.exit(main())
