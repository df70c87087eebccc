"""Camera frames with QR codes in them, made at test time: a code from segno, drawn like a
phone screen held up to a lane's camera (quiet zone, a little rotation and movement from frame
to frame), on one of several backgrounds, written as a video file or a PNG sequence.

Nothing here is a fixture file: every frame is generated from a seed, so a test says exactly
what the camera saw.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import segno

BACKGROUNDS = ("texture", "gradient", "stripes", "plain", "dark")


def qr_matrix(text: str, border: int = 4) -> np.ndarray:
    """The code's modules as a 0/1 array (1 = dark), quiet zone included."""
    code = segno.make(text, error="m", micro=False)
    return np.array([list(row) for row in code.matrix_iter(border=border)], dtype=np.uint8)


def qr_image(text: str, module_px: int = 4, border: int = 4, invert: bool = False) -> np.ndarray:
    """A grayscale image of the code, ``module_px`` pixels per module. ``invert`` draws it as a
    dark-mode screen does: light modules on a dark ground."""
    modules = qr_matrix(text, border)
    gray = np.where(modules == 1, 0, 255).astype(np.uint8)
    if invert:
        gray = 255 - gray
    return np.kron(gray, np.ones((module_px, module_px), dtype=np.uint8))


@functools.lru_cache(maxsize=32)
def _background(width: int, height: int, kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "plain":
        img = np.full((height, width, 3), 170, np.uint8)
    elif kind == "dark":
        img = np.full((height, width, 3), 35, np.uint8)
    elif kind == "gradient":
        x = np.linspace(60, 200, width, dtype=np.float32)
        y = np.linspace(-30, 30, height, dtype=np.float32)[:, None]
        g = np.clip(x[None, :] + y, 0, 255)
        img = np.stack([g * 0.9, g, g * 1.05], axis=-1).clip(0, 255).astype(np.uint8)
    elif kind == "stripes":
        xs = np.arange(width)[None, :] + np.arange(height)[:, None] // 2
        g = np.where((xs // 24) % 2 == 0, 90, 160).astype(np.uint8)
        img = np.stack([g, g, g], axis=-1)
    elif kind == "texture":
        base = np.full((height, width), 128, np.float32)
        small = rng.normal(0, 40, (max(2, height // 40), max(2, width // 40))).astype(np.float32)
        base += cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
        base += rng.normal(0, 6, (height, width)).astype(np.float32)
        g = base.clip(0, 255).astype(np.uint8)
        tint = rng.integers(-12, 12, 3)
        img = np.stack([(g.astype(np.int16) + t).clip(0, 255).astype(np.uint8) for t in tint],
                       axis=-1)
    else:
        raise ValueError(f"unknown background {kind!r}; choose one of {', '.join(BACKGROUNDS)}")
    img.setflags(write=False)
    return img


@dataclass(frozen=True)
class Shot:
    """One frame's content: which code (None for an empty scene) and how it is held."""

    code: str | None = None
    module_px: int = 4
    angle: float = 0.0           # degrees
    center: tuple[float, float] = (0.5, 0.5)  # fractions of the frame
    invert: bool = False
    blur: float = 0.0            # Gaussian sigma in pixels; about 2.5 at 4 px/module is unreadable
    noise: float = 0.0           # additive Gaussian sigma
    cover: float = 0.0           # fraction of the code's width hidden behind a thumb (0..1)


def render(size: tuple[int, int], shot: Shot, background: str = "texture", seed: int = 0,
           noise_seed: int | None = None) -> np.ndarray:
    """One BGR frame of ``size`` (width, height) showing ``shot`` on ``background``."""
    width, height = size
    frame = _background(width, height, background, seed).copy()
    if shot.code is not None:
        code = qr_image(shot.code, shot.module_px, invert=shot.invert)
        if shot.cover > 0:
            code = code.copy()
            code[:, : int(code.shape[1] * shot.cover)] = 128
        h, w = code.shape
        cx, cy = shot.center[0] * width, shot.center[1] * height
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), shot.angle, 1.0)
        matrix[0, 2] += cx - w / 2
        matrix[1, 2] += cy - h / 2
        warped = cv2.warpAffine(code, matrix, (width, height), flags=cv2.INTER_NEAREST,
                                borderValue=0)
        mask = cv2.warpAffine(np.full_like(code, 255), matrix, (width, height),
                              flags=cv2.INTER_NEAREST, borderValue=0)
        on = mask > 0
        frame[on] = warped[on][:, None]
    if shot.blur > 0:
        frame = cv2.GaussianBlur(frame, (0, 0), shot.blur)
    if shot.noise > 0:
        rng = np.random.default_rng(noise_seed if noise_seed is not None else seed + 7)
        frame = (frame.astype(np.int16) + rng.normal(0, shot.noise, frame.shape).astype(np.int16)
                 ).clip(0, 255).astype(np.uint8)
    return frame


def presentation(code: str | None, frames: int, *, seed: int = 0, **shot) -> list[Shot]:
    """A code held up for ``frames`` frames, drifting a little as a hand does."""
    rng = random.Random(seed)
    cx, cy = shot.pop("center", (rng.uniform(0.4, 0.6), rng.uniform(0.4, 0.6)))
    angle = shot.pop("angle", rng.uniform(-15, 15))
    out = []
    for _ in range(frames):
        cx = min(0.65, max(0.35, cx + rng.uniform(-0.006, 0.006)))
        cy = min(0.65, max(0.35, cy + rng.uniform(-0.006, 0.006)))
        angle += rng.uniform(-0.8, 0.8)
        out.append(Shot(code=code, center=(cx, cy), angle=angle, **shot))
    return out


def frames(size: tuple[int, int], shots: Iterable[Shot], background: str = "texture",
           seed: int = 0) -> Iterator[np.ndarray]:
    for i, shot in enumerate(shots):
        yield render(size, shot, background, seed, noise_seed=seed * 100_003 + i)


def write_video(path: str | Path, images: Iterable[np.ndarray], fps: float = 15.0,
                fourcc: str = "MJPG") -> Path:
    """Write frames to a video file (MJPG in .avi by default: the pip OpenCV wheel encodes it and
    reads it back frame for frame)."""
    path = Path(path)
    writer = None
    count = 0
    try:
        for image in images:
            if writer is None:
                h, w = image.shape[:2]
                writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
                if not writer.isOpened():
                    raise RuntimeError(f"OpenCV cannot write {fourcc} to {path}")
            writer.write(image)
            count += 1
    finally:
        if writer is not None:
            writer.release()
    if count == 0:
        raise ValueError("a video needs at least one frame")
    return path


def write_png_sequence(directory: str | Path, images: Iterable[np.ndarray],
                       name: str = "frame_%04d.png") -> str:
    """Write frames as numbered PNG files; returns the printf pattern OpenCV opens them by."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        if not cv2.imwrite(str(directory / (name % i)), image):
            raise RuntimeError(f"could not write {directory / (name % i)}")
    return str(directory / name)


def timeline(items: Sequence[tuple[str | None, int]], *, seed: int = 0, **shot) -> list[Shot]:
    """Shots for a sequence of (code or None, frame count) segments: codes held up one after
    another with empty frames between them."""
    out: list[Shot] = []
    for i, (code, count) in enumerate(items):
        out += presentation(code, count, seed=seed * 1000 + i, **shot)
    return out
