"""QR camera: frames from OpenCV, codes from zxing-cpp (or pyzbar), one scan per presentation.

The transport is a frame source: a camera by index or ``/dev/videoN``, an RTSP or HTTP (MJPEG)
URL, a video file, or a numbered image sequence (``frames/frame_%04d.png``). The protocol layer
is pure: a decoder turns a grayscale frame into the texts of the codes in it, and a debouncer
turns a stream of sightings into scans, so that a phone held up for two seconds is one scan.

Live sources (cameras and URLs) are read by a grabber thread that keeps only the newest frame:
a lane must judge what is in front of it now, not what queued up while it was deciding. Files
and image sequences are read frame by frame, every frame judged, on their own clock (frame
number over frame rate), so a test video behaves the same however fast the machine is;
``realtime`` plays them at their own frame rate as a camera would deliver them.

A source that ends, cannot be opened or stops delivering frames raises PermanentError (the
runtime reconnects); a frame that cannot be read or decoded is counted and skipped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from drivers.base import (
    DeviceState,
    Health,
    PermanentError,
    Scan,
    ScanKind,
    TemporaryError,
    utcnow,
)
from drivers.frames import Frame
from drivers.settings import SettingsError, settings_from

log = logging.getLogger(__name__)

Decoder = Callable[[np.ndarray], list[str]]


# ---------------------------------------------------------------------------------------------
# Decoders: grayscale frame -> texts of the QR codes in it, top to bottom, left to right.

def zxing_decode(gray: np.ndarray) -> list[str]:
    """zxing-cpp: about 2 ms for a 640×480 frame, and reads inverted (dark-mode) codes."""
    import zxingcpp

    found = zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormat.QRCode,
                                   try_rotate=False, try_downscale=True, try_invert=True)
    found.sort(key=lambda r: (r.position.top_left.y, r.position.top_left.x))
    return [r.text for r in found if r.text]


def pyzbar_decode(gray: np.ndarray) -> list[str]:
    """pyzbar (libzbar0): several times slower, and blind to inverted codes."""
    from pyzbar import pyzbar

    found = pyzbar.decode(gray, symbols=[pyzbar.ZBarSymbol.QRCODE])
    found.sort(key=lambda r: (r.rect.top, r.rect.left))
    return [r.data.decode("utf-8", errors="replace") for r in found if r.data]


DECODERS: dict[str, Decoder] = {"zxing": zxing_decode, "pyzbar": pyzbar_decode}


class Debouncer:
    """The same code seen again within ``window_s`` of its last sighting is the same
    presentation; a code is a new scan once it has been out of sight for longer than that.
    Times are the source's own clock in seconds."""

    def __init__(self, window_s: float):
        self.window_s = window_s
        self._last_seen: dict[str, float] = {}

    def sighted(self, text: str, t: float) -> bool:
        """Record a sighting at ``t``; True if it is a new scan."""
        last = self._last_seen.get(text)
        self._last_seen[text] = t
        if len(self._last_seen) > 256:
            self._last_seen = {k: v for k, v in self._last_seen.items()
                               if t - v <= self.window_s}
        return last is None or t - last > self.window_s or t < last

    def clear(self) -> None:
        self._last_seen.clear()


# ---------------------------------------------------------------------------------------------
# Settings

class SourceKind(StrEnum):
    CAMERA = "camera"   # a device index or /dev/videoN
    STREAM = "stream"   # rtsp://, http://, https://
    FILE = "file"       # a video file
    IMAGES = "images"   # a numbered image sequence, e.g. frames/frame_%04d.png


def source_kind(source: str | int) -> SourceKind:
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        return SourceKind.CAMERA
    if source.startswith("/dev/video"):
        return SourceKind.CAMERA
    if source.split("://", 1)[0].lower() in ("rtsp", "rtsps", "http", "https"):
        return SourceKind.STREAM
    if "%" in Path(source).name:
        return SourceKind.IMAGES
    return SourceKind.FILE


@dataclass(frozen=True)
class CameraSettings:
    """What a QR camera device's configuration may say."""

    source: str | int
    decoder: str = "zxing"          # "zxing" (default) or "pyzbar"
    second_try: bool = False        # a frame the decoder cannot read is tried with the other one
    debounce_s: float = 2.0         # a code out of sight this long is a new scan when it returns
    width: int | None = None        # decode at this resolution: asked of a camera, frames of
    height: int | None = None       # another size are scaled to it
    roi: tuple[float, float, float, float] | None = None  # x, y, w, h as fractions of the frame
    fps: float | None = None        # asked of a camera; the clock of an image sequence (def. 25)
    realtime: bool = False          # play a file or image sequence at its frame rate
    replay: bool = False            # start a file over when it ends (else it plays once)
    open_timeout_s: float = 5.0     # a stream that does not open in this time is down
    http_reader: str = "native"     # MJPEG over HTTP: "native" (newest frame only) or "ffmpeg"
    read_timeout_s: float = 3.0     # a live source with no frame for this long is gone
    max_bad_frames: int = 25        # consecutive unreadable frames before the source is gone

    def __post_init__(self) -> None:
        if self.decoder not in DECODERS:
            raise ValueError(f"decoder: {self.decoder!r} is not one of {', '.join(DECODERS)}")
        if (self.width is None) != (self.height is None):
            raise ValueError("width and height: give both or neither")
        if self.width is not None and not (16 <= self.width <= 8192 and 16 <= self.height <= 8192):
            raise ValueError(f"width, height: {self.width}x{self.height} is not a resolution")
        if self.roi is not None:
            x, y, w, h = self.roi
            if not (0 <= x < 1 and 0 <= y < 1 and 0 < w <= 1 - x + 1e-9 and 0 < h <= 1 - y + 1e-9):
                raise ValueError(f"roi: {self.roi} must be x, y, w, h fractions inside the frame")
        for name in ("debounce_s", "open_timeout_s", "read_timeout_s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name}: must be positive")
        if self.fps is not None and self.fps <= 0:
            raise ValueError("fps: must be positive")
        if self.max_bad_frames < 1:
            raise ValueError("max_bad_frames: must be at least 1")
        if self.http_reader not in ("native", "ffmpeg"):
            raise ValueError(f"http_reader: {self.http_reader!r} is not native or ffmpeg")

    @property
    def kind(self) -> SourceKind:
        return source_kind(self.source)


# ---------------------------------------------------------------------------------------------
# Transport: frame sources

def _open_capture(settings: CameraSettings) -> cv2.VideoCapture:
    src = settings.source
    kind = settings.kind
    if kind is SourceKind.CAMERA:
        index = src if isinstance(src, int) else int(src) if src.isdigit() else src
        cap = cv2.VideoCapture(index, cv2.CAP_V4L2)
        if cap.isOpened():
            cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)
            if settings.width:
                cap.set(cv2.CAP_PROP_FRAME_WIDTH, settings.width)
                cap.set(cv2.CAP_PROP_FRAME_HEIGHT, settings.height)
            if settings.fps:
                cap.set(cv2.CAP_PROP_FPS, settings.fps)
    elif kind is SourceKind.STREAM:
        cap = cv2.VideoCapture(src, cv2.CAP_FFMPEG, [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, int(settings.open_timeout_s * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC, int(settings.read_timeout_s * 1000)])
    elif kind is SourceKind.IMAGES:
        first = Path(src).parent / (Path(src).name % 0)
        if not first.exists():
            raise PermanentError(f"no image sequence at {src} ({first.name} is missing)")
        cap = cv2.VideoCapture(src, cv2.CAP_IMAGES)
    else:
        if not Path(src).is_file():
            raise PermanentError(f"no video file at {src}")
        cap = cv2.VideoCapture(src, cv2.CAP_FFMPEG)
    if not cap.isOpened():
        cap.release()
        raise PermanentError(f"cannot open camera source {src!r} ({kind.value})")
    return cap


class _FileSource:
    """Every frame of a file, in order, on the file's own clock."""

    live = False

    def __init__(self, settings: CameraSettings, cap: cv2.VideoCapture):
        self.settings = settings
        self.cap = cap
        fps = cap.get(cv2.CAP_PROP_FPS)
        if settings.kind is SourceKind.IMAGES or not fps or fps <= 0 or fps > 1000:
            fps = settings.fps or 25.0
        self.fps = fps
        self.total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        self.index = 0
        self.ended = False
        self._pos = 0            # frames into the current pass through the recording
        self._good_in_pass = False
        self.bad_frames = 0
        self.dropped_frames = 0
        self._bad_run = 0
        self._started = time.monotonic()

    def next(self, timeout: float) -> Frame | None:
        if self.settings.realtime:
            due = self._started + self.index / self.fps
            wait = due - time.monotonic()
            if wait > timeout:
                time.sleep(max(0.0, timeout))
                return None
            if wait > 0:
                time.sleep(wait)
        while True:
            ok, image = self.cap.read()
            i = self.index
            if ok and image is not None and image.size:
                self.index += 1
                self._pos += 1
                self._good_in_pass = True
                self._bad_run = 0
                return Frame(image, i, i / self.fps, time.monotonic(), utcnow())
            if self._pos >= self.total:  # the end of the recording
                if self.settings.replay and self._good_in_pass:
                    # start over with the clock running on: a demo loop is one long recording
                    self.cap.set(cv2.CAP_PROP_POS_FRAMES, 0)
                    self._pos = 0
                    self._good_in_pass = False
                    continue
                self.ended = True
                raise PermanentError(f"camera source {self.settings.source!r} ended after "
                                     f"{i} frames")
            self.index += 1
            self._pos += 1
            self.bad_frames += 1
            self._bad_run += 1
            if self._bad_run >= self.settings.max_bad_frames:
                raise PermanentError(f"camera source {self.settings.source!r}: "
                                     f"{self._bad_run} unreadable frames in a row")

    def close(self) -> None:
        self.cap.release()


class _LiveSource:
    """A camera or stream read by its own grabber thread; ``next`` returns the newest frame not
    yet handed out and counts the ones it never got to."""

    live = True

    def __init__(self, settings: CameraSettings, cap: cv2.VideoCapture):
        self.settings = settings
        self._cap = cap
        self._cond = threading.Condition()
        self._latest: Frame | None = None
        self._delivered = -1
        self._error: str | None = None
        self._stop = False
        self.index = 0
        self.bad_frames = 0
        self.dropped_frames = 0
        self._last_frame_at = time.monotonic()
        self._thread = threading.Thread(target=self._grab, name=f"grab {settings.source}",
                                        daemon=True)
        self._thread.start()

    def _grab(self) -> None:
        bad_run = 0
        try:
            while not self._stop:
                ok, image = self._cap.read()
                now = time.monotonic()
                with self._cond:
                    if ok and image is not None and image.size:
                        bad_run = 0
                        if self._latest is not None and self._latest.index > self._delivered:
                            self.dropped_frames += 1
                        self._latest = Frame(image, self.index, now, now, utcnow())
                        self.index += 1
                        self._last_frame_at = now
                        self._cond.notify_all()
                        continue
                    bad_run += 1
                    self.bad_frames += 1
                    if bad_run >= self.settings.max_bad_frames:
                        self._error = (f"camera source {self.settings.source!r} stopped "
                                       f"delivering frames ({bad_run} failed reads)")
                        return
                    if now - self._last_frame_at > self.settings.read_timeout_s:
                        self._error = (f"camera source {self.settings.source!r} delivered no "
                                       f"frame for {now - self._last_frame_at:.1f} s")
                        return
                time.sleep(0.005)
        except cv2.error as exc:
            with self._cond:
                self._error = f"camera source {self.settings.source!r} failed: {exc}"
        finally:
            self._cap.release()
            with self._cond:
                if self._error is None and not self._stop:
                    self._error = f"camera source {self.settings.source!r} stopped"
                self._cond.notify_all()

    def next(self, timeout: float) -> Frame | None:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self._latest is not None and self._latest.index > self._delivered:
                    self._delivered = self._latest.index
                    return self._latest
                if self._error is not None:
                    raise PermanentError(self._error)
                now = time.monotonic()
                if now - self._last_frame_at > self.settings.read_timeout_s:
                    raise PermanentError(f"camera source {self.settings.source!r} delivered no "
                                         f"frame for {now - self._last_frame_at:.1f} s")
                if now >= deadline:
                    return None
                self._cond.wait(min(deadline - now, 0.25))

    def close(self) -> None:
        with self._cond:
            self._stop = True
        # A read blocked in FFmpeg returns within read_timeout_s; the thread releases the
        # capture itself, so closing never races a read in progress.
        self._thread.join(timeout=0.2)


# ---------------------------------------------------------------------------------------------
# The driver

class QrCamera:
    """A QR camera as a Reader: ``read(timeout)`` returns the next new code as a Scan."""

    def __init__(self, device_id: str, settings: CameraSettings):
        self.device_id = device_id
        self.settings = settings
        self._decode = DECODERS[settings.decoder]
        other = "pyzbar" if settings.decoder == "zxing" else "zxing"
        self._second = DECODERS[other] if settings.second_try else None
        self._debounce = Debouncer(settings.debounce_s)
        self._source: _FileSource | _LiveSource | None = None
        self._pending: deque[Scan] = deque()
        self._frame_times: deque[float] = deque(maxlen=120)
        self._decode_ms: deque[float] = deque(maxlen=50)
        self._bad_at: deque[float] = deque(maxlen=50)
        self._last_frame_at: datetime | None = None
        self._last_image: np.ndarray | None = None
        self._last_error = ""
        self._played_out = False
        self._resolution = ""
        self.frames = 0
        self.bad_frames = 0
        self.scans = 0
        self.second_tries = 0

    @classmethod
    def from_config(cls, device_id: str, config: Mapping[str, Any]) -> QrCamera:
        try:
            return cls(device_id, settings_from(CameraSettings, config))
        except SettingsError as exc:
            raise PermanentError(f"camera {device_id}: {exc}", device_id) from exc

    # Reader protocol -------------------------------------------------------------------------

    def open(self) -> None:
        if self._source is not None:
            return
        if self._played_out:
            raise PermanentError(f"camera {self.device_id}: {self.settings.source} has been "
                                 "played to its end (set replay to loop it)", self.device_id)
        try:
            self._source = self._native_mjpeg()
            if self._source is None:
                cap = _open_capture(self.settings)
                if self.settings.kind in (SourceKind.CAMERA, SourceKind.STREAM):
                    self._source = _LiveSource(self.settings, cap)
                else:
                    self._source = _FileSource(self.settings, cap)
        except PermanentError as exc:
            self._last_error = str(exc)
            raise PermanentError(str(exc), self.device_id) from None
        self._pending.clear()
        self._last_error = ""
        log.info("camera %s: opened %s (%s)", self.device_id, self.settings.source,
                 self.settings.kind.value)

    def read(self, timeout: float) -> Scan | None:
        if self._pending:
            return self._pending.popleft()
        source = self._source
        if source is None:
            raise PermanentError(f"camera {self.device_id} is not open", self.device_id)
        deadline = time.monotonic() + timeout
        while True:
            try:
                frame = source.next(max(0.0, deadline - time.monotonic()))
            except PermanentError as exc:
                self._last_error = str(exc)
                self._close_source()
                raise PermanentError(str(exc), self.device_id) from None
            if frame is not None:
                self._judge(frame)
                if self._pending:
                    return self._pending.popleft()
            if time.monotonic() >= deadline:
                return None

    def health(self) -> Health:
        metrics: dict[str, float | int | str | None] = {
            "fps": round(self._fps(), 1),
            "decode_ms": round(sum(self._decode_ms) / len(self._decode_ms), 2)
            if self._decode_ms else None,
            "last_frame_at": self._last_frame_at.isoformat() if self._last_frame_at else None,
            "frames": self.frames,
            "bad_frames": self.bad_frames + (self._source.bad_frames if self._source else 0),
            "dropped_frames": self._source.dropped_frames if self._source else 0,
            "scans": self.scans,
            "second_tries": self.second_tries,
            "resolution": self._resolution,
            "decoder": self.settings.decoder,
        }
        if self._source is None:
            return Health(DeviceState.DOWN, self._last_error or "not open", metrics)
        now = time.monotonic()
        if self._bad_at and now - self._bad_at[-1] < 10:
            return Health(DeviceState.DEGRADED, "unreadable frames in the last 10 s", metrics)
        if self._source.live and self._frame_times and now - self._frame_times[-1] > 1.0:
            return Health(DeviceState.DEGRADED, "frames are late", metrics)
        return Health(DeviceState.UP, "", metrics)

    def close(self) -> None:
        self._close_source()

    def snapshot(self) -> tuple[np.ndarray, list[str]]:
        """The last frame judged, with the codes zxing-cpp finds in it outlined in green (and
        the region of interest in blue), and their texts: for an admin aiming the camera."""
        import zxingcpp

        if self._last_image is None:
            raise TemporaryError(f"camera {self.device_id}: no frame yet", self.device_id)
        image = self._last_image
        picture = image.copy() if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        gray = cv2.cvtColor(picture, cv2.COLOR_BGR2GRAY)
        found = zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormat.QRCode)
        for result in found:
            p = result.position
            corners = np.array([[p.top_left.x, p.top_left.y], [p.top_right.x, p.top_right.y],
                                [p.bottom_right.x, p.bottom_right.y],
                                [p.bottom_left.x, p.bottom_left.y]], np.int32)
            cv2.polylines(picture, [corners], True, (0, 200, 0), 3)
        if self.settings.roi is not None:
            h, w = picture.shape[:2]
            x, y, rw, rh = self.settings.roi
            cv2.rectangle(picture, (int(x * w), int(y * h)), (int((x + rw) * w) - 1,
                                                               int((y + rh) * h) - 1),
                          (200, 0, 0), 2)
        return picture, [r.text for r in found]

    # Internals -------------------------------------------------------------------------------

    def _native_mjpeg(self):
        """An http(s) source read by our own MJPEG reader, or None to let FFmpeg read it."""
        s = self.settings
        if s.kind is not SourceKind.STREAM or s.http_reader != "native" \
                or not str(s.source).lower().startswith(("http://", "https://")):
            return None
        from drivers.mjpeg_http import MjpegHttpSource, NotMjpeg

        try:
            return MjpegHttpSource(s)
        except NotMjpeg as exc:
            log.info("camera %s: %s is not MJPEG (%s); reading it with FFmpeg", self.device_id,
                     s.source, exc)
            return None

    def _close_source(self) -> None:
        source, self._source = self._source, None
        if source is not None:
            self.bad_frames += source.bad_frames
            if isinstance(source, _FileSource) and source.ended:
                self._played_out = True
            source.close()

    def _fps(self) -> float:
        times = self._frame_times
        if len(times) < 2 or time.monotonic() - times[-1] > 2.0:
            return 0.0
        return (len(times) - 1) / max(times[-1] - times[0], 1e-6)

    def _prepare(self, image: np.ndarray) -> np.ndarray:
        if image.ndim == 3:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY if image.shape[2] == 3
                                 else cv2.COLOR_BGRA2GRAY)
        elif image.ndim != 2:
            raise ValueError(f"a frame of shape {image.shape} is not an image")
        s = self.settings
        if s.width and (image.shape[1], image.shape[0]) != (s.width, s.height):
            image = cv2.resize(image, (s.width, s.height), interpolation=cv2.INTER_AREA)
        if s.roi is not None:
            h, w = image.shape
            x0, y0 = int(s.roi[0] * w), int(s.roi[1] * h)
            x1, y1 = min(w, x0 + max(1, int(s.roi[2] * w))), min(h, y0 + max(1, int(s.roi[3] * h)))
            image = image[y0:y1, x0:x1]
        return np.ascontiguousarray(image)

    def _judge(self, frame: Frame) -> None:
        self.frames += 1
        self._frame_times.append(frame.grabbed_at)
        self._last_frame_at = frame.at
        image = frame.image
        self._last_image = image
        self._resolution = f"{image.shape[1]}x{image.shape[0]}" if image.ndim >= 2 else "?"
        t0 = time.perf_counter()
        try:
            gray = self._prepare(image)
            texts = self._decode(gray)
            if not texts and self._second is not None:
                texts = self._second(gray)
                if texts:
                    self.second_tries += 1
        except (cv2.error, ValueError, RuntimeError) as exc:
            self.bad_frames += 1
            self._bad_at.append(time.monotonic())
            log.warning("camera %s: frame %d unreadable: %s", self.device_id, frame.index, exc)
            return
        decode_ms = (time.perf_counter() - t0) * 1000
        self._decode_ms.append(decode_ms)
        for text in dict.fromkeys(texts):
            if self._debounce.sighted(text, frame.t):
                self.scans += 1
                self._pending.append(Scan(ScanKind.QR, text, self.device_id, at=frame.at, fields={
                    "frame": frame.index, "grabbed_at": frame.grabbed_at,
                    "decode_ms": decode_ms}))
