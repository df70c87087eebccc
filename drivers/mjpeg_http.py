"""MJPEG over HTTP (``multipart/x-mixed-replace``) read natively, newest frame only.

FFmpeg reads such a stream frame by frame in order: when the machine is busy and the reader
falls behind, the frames queue up in its buffers and the lane judges the past. Here a thread
reads the multipart body and keeps only the newest complete JPEG; the reader decodes just the
one it takes, straight to grayscale (``cv2.imdecode``: all the decoder needs), so a busy
moment costs frames, never latency.

A response that is not multipart raises :class:`NotMjpeg` (the camera then falls back to
FFmpeg); a connection that fails, ends or stays silent for ``read_timeout_s`` raises
PermanentError from ``next``; a JPEG that does not decode is counted as a bad frame.
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import socket
import threading
import time
from urllib.parse import urlsplit

import cv2
import numpy as np

from drivers.base import PermanentError, utcnow
from drivers.frames import Frame

log = logging.getLogger(__name__)

MAX_PART = 16 * 1024 * 1024


class NotMjpeg(Exception):
    """The URL answers, but not with a multipart MJPEG stream."""


def boundary_of(content_type: str) -> bytes:
    """The multipart boundary from a Content-Type header (quotes and a leading ``--`` off)."""
    for param in content_type.split(";")[1:]:
        key, _, value = param.strip().partition("=")
        if key.lower() == "boundary" and value:
            value = value.strip().strip('"')
            return (value[2:] if value.startswith("--") else value).encode()
    raise NotMjpeg(f"no boundary in {content_type!r}")


class MjpegHttpSource:
    live = True

    def __init__(self, settings):
        self.settings = settings
        url = urlsplit(str(settings.source))
        cls = http.client.HTTPSConnection if url.scheme == "https" else http.client.HTTPConnection
        path = (url.path or "/") + (f"?{url.query}" if url.query else "")
        self._conn = cls(url.hostname, url.port, timeout=settings.open_timeout_s)
        try:
            self._conn.request("GET", path, headers={"Accept": "multipart/x-mixed-replace"})
            response = self._conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            self._conn.close()
            raise PermanentError(f"cannot open camera source {settings.source!r}: {exc}") from None
        if response.status != 200:
            self._conn.close()
            raise PermanentError(f"camera source {settings.source!r} answered HTTP "
                                 f"{response.status}")
        content_type = response.getheader("Content-Type", "")
        if not content_type.lower().startswith("multipart/"):
            self._conn.close()
            raise NotMjpeg(content_type)
        try:
            self._boundary = b"--" + boundary_of(content_type)
        except NotMjpeg:
            self._conn.close()
            raise
        if self._conn.sock is not None:
            self._conn.sock.settimeout(settings.read_timeout_s)
        self._response = response
        self._cond = threading.Condition()
        self._latest: tuple[bytes, int, float] | None = None
        self._delivered = -1
        self._error: str | None = None
        self._halt = False
        self._at_boundary = False
        self.index = 0
        self.bad_frames = 0
        self.dropped_frames = 0
        self._last_frame_at = time.monotonic()
        self._thread = threading.Thread(target=self._read_parts, daemon=True,
                                        name=f"mjpeg {settings.source}")
        self._thread.start()

    # the reading thread ------------------------------------------------------------------------

    def _read_parts(self) -> None:
        try:
            while not self._halt:
                jpeg = self._part()
                now = time.monotonic()
                with self._cond:
                    if self._latest is not None and self._latest[1] > self._delivered:
                        self.dropped_frames += 1
                    self._latest = (jpeg, self.index, now)
                    self.index += 1
                    self._last_frame_at = now
                    self._cond.notify_all()
        except TimeoutError:
            self._fail(f"camera source {self.settings.source!r} delivered no frame for "
                       f"{self.settings.read_timeout_s:g} s")
        except EOFError:
            self._fail(f"camera source {self.settings.source!r} ended")
        except (OSError, ValueError, http.client.HTTPException) as exc:
            self._fail(f"camera source {self.settings.source!r} failed: {exc}")
        finally:
            self._conn.close()

    def _fail(self, message: str) -> None:
        with self._cond:
            if self._error is None and not self._halt:
                self._error = message
            self._cond.notify_all()

    def _line(self) -> bytes:
        line = self._response.readline(65537)
        if not line:
            raise EOFError
        return line

    def _part(self) -> bytes:
        if not self._at_boundary:
            while not self._line().startswith(self._boundary):
                pass
        self._at_boundary = False
        length = None
        while True:
            line = self._line().strip()
            if not line:
                break
            key, _, value = line.partition(b":")
            if key.strip().lower() == b"content-length":
                length = int(value.strip())
                if not 0 < length <= MAX_PART:
                    raise ValueError(f"a part of {length} bytes")
        if length is not None:
            data = self._response.read(length)
            if len(data) < length:
                raise EOFError
            return data
        data = bytearray()  # no length: the part runs to the next boundary line
        while True:
            line = self._line()
            if line.startswith(self._boundary):
                self._at_boundary = True
                return bytes(data).rstrip(b"\r\n")
            data += line
            if len(data) > MAX_PART:
                raise ValueError("a part without end")

    # the reader's side ---------------------------------------------------------------------------

    def next(self, timeout: float):
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                while True:
                    latest = self._latest
                    if latest is not None and latest[1] > self._delivered:
                        self._delivered = latest[1]
                        break
                    if self._error is not None:
                        raise PermanentError(self._error)
                    now = time.monotonic()
                    if now - self._last_frame_at > self.settings.read_timeout_s:
                        raise PermanentError(f"camera source {self.settings.source!r} "
                                             f"delivered no frame for "
                                             f"{now - self._last_frame_at:.1f} s")
                    if now >= deadline:
                        return None
                    self._cond.wait(min(deadline - now, 0.25))
            jpeg, index, arrived = latest
            image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
            if image is not None and image.size:
                return Frame(image, index, arrived, arrived, utcnow())
            self.bad_frames += 1
            if time.monotonic() >= deadline:
                return None

    def close(self) -> None:
        with self._cond:
            self._halt = True
            self._cond.notify_all()
        sock = self._conn.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._thread.join(timeout=2)
