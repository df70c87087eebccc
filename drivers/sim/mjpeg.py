"""A camera on the loopback network: MJPEG over HTTP (``multipart/x-mixed-replace``), the way
cheap IP cameras and phone camera apps serve their picture.

The picture runs on the server's own clock like a real camera's: frame *k* is shown at
``k / fps`` seconds after start whether or not anyone watches, and every client is sent the
newest frame. A client that reconnects after an outage has missed what was shown meanwhile,
exactly as with a real camera.

Fault switches, each settable while clients are watching:

- ``drop()``: cut every client's connection now (the server keeps listening);
- ``silent = True``: keep connections open and send nothing (a hung camera);
- ``garble(n)``: the next ``n`` frames sent are corrupted JPEG data;
- ``delay_s``: wait this long before each frame sent (a slow link);
- ``stop()`` / ``start()``: the camera goes away and comes back on the same port.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

log = logging.getLogger(__name__)

BOUNDARY = "wicketframe"
FrameSupplier = Callable[[int], "np.ndarray | None"]


def garbled(jpeg: bytes) -> bytes:
    """The same JPEG with its entropy-coded data overwritten: the markers at both ends stay,
    so a decoder starts on it and fails (or shows garbage) instead of losing the stream."""
    data = bytearray(jpeg)
    start = len(data) // 3
    for i in range(start, min(len(data) - 2, start + max(64, len(data) // 3))):
        data[i] = (data[i] * 73 + 41) & 0xFF
    return bytes(data)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class MjpegServer:
    """Serves ``frames`` (a list, or a function of the frame number returning an image or None
    at the end) at ``fps`` on ``http://127.0.0.1:<port>/stream.mjpg``."""

    def __init__(self, frames: Sequence[np.ndarray] | FrameSupplier, fps: float = 15.0,
                 loop: bool = False, quality: int = 85, port: int = 0):
        self._items: list[np.ndarray] | None = None
        if callable(frames):
            self._supply: FrameSupplier = frames
        else:
            items = self._items = list(frames)

            def supply(k: int) -> np.ndarray | None:
                if loop and items:
                    return items[k % len(items)]
                return items[k] if k < len(items) else None

            self._supply = supply
        self.fps = fps
        self.quality = quality
        self.port = port
        self.silent = False
        self.delay_s = 0.0
        self._garble = 0
        self._cond = threading.Condition()
        self._latest: tuple[int, bytes] | None = None
        self._ended = False
        self._running = False
        self._server: _Server | None = None
        self._threads: list[threading.Thread] = []
        self._clients: set[socket.socket] = set()
        self._jpeg_cache: dict[int, bytes] = {}
        self.frames_shown = 0
        self.frames_sent = 0
        self.garbled_sent = 0
        self.connections = 0
        self.sent_at: dict[int, float] = {}   # frame number -> monotonic time first sent

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream.mjpg"

    # Control -------------------------------------------------------------------------------

    def start(self) -> MjpegServer:
        if self._running:
            return self
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                owner._serve(self)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                log.debug("mjpeg %s", format % args)

        self._server = _Server(("127.0.0.1", self.port), Handler)
        self.port = self._server.server_address[1]
        self._running = True
        self._ended = False
        with self._cond:
            self._latest = None
        serve = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                 name="mjpeg http", daemon=True)
        show = threading.Thread(target=self._show, name="mjpeg clock", daemon=True)
        self._threads = [serve, show]
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        """The camera goes away: the listening socket closes and every stream is cut."""
        if not self._running:
            return
        with self._cond:
            self._running = False
            self._cond.notify_all()
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()
        self.drop()
        for t in self._threads:
            t.join(timeout=5)
        self._server = None

    def drop(self) -> None:
        """Cut every client connection now; new connections are still accepted."""
        with self._cond:
            clients = list(self._clients)
            self._clients.clear()
        for sock in clients:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def garble(self, frames: int = 1) -> None:
        with self._cond:
            self._garble += frames

    def __enter__(self) -> MjpegServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Internals -----------------------------------------------------------------------------

    def _jpeg(self, k: int, image: np.ndarray) -> bytes:
        """Frames from a list are encoded once (a looping camera shows them again)."""
        key = k % len(self._items) if self._items else None
        if key is not None and key in self._jpeg_cache:
            return self._jpeg_cache[key]
        ok, buf = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        if not ok:
            raise RuntimeError(f"cannot encode frame {k} as JPEG")
        data = buf.tobytes()
        if key is not None:
            self._jpeg_cache[key] = data
        return data

    def _show(self) -> None:
        """The camera's clock: frame k becomes the picture at start + k / fps."""
        start = time.monotonic()
        k = 0
        while self._running:
            image = self._supply(k)
            with self._cond:
                if image is None:
                    self._ended = True
                    self._cond.notify_all()
                    return
            jpeg = self._jpeg(k, image)
            with self._cond:
                self._latest = (k, jpeg)
                self.frames_shown = k + 1
                self._cond.notify_all()
            k += 1
            wait = start + k / self.fps - time.monotonic()
            if wait > 0:
                with self._cond:
                    self._cond.wait_for(lambda: not self._running, timeout=wait)

    def _wake(self, sock: socket.socket, last: int) -> bool:
        return (not self._running or self._ended or sock not in self._clients
                or (self._latest is not None and self._latest[0] > last))

    def _serve(self, request: BaseHTTPRequestHandler) -> None:
        if request.path.split("?")[0] != "/stream.mjpg":
            request.send_error(404)
            return
        sock = request.connection
        with self._cond:
            self._clients.add(sock)
            self.connections += 1
        try:
            request.send_response(200)
            request.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            request.send_header("Cache-Control", "no-cache")
            request.end_headers()
            last = -1
            while True:
                with self._cond:
                    self._cond.wait_for(functools.partial(self._wake, sock, last), timeout=0.5)
                    if not self._running or self._ended or sock not in self._clients:
                        return
                    if self._latest is None or self._latest[0] <= last:
                        continue
                    k, jpeg = self._latest
                    last = k
                    if self.silent:
                        continue
                    if self._garble > 0:
                        self._garble -= 1
                        self.garbled_sent += 1
                        jpeg = garbled(jpeg)
                    delay = self.delay_s
                if delay > 0:
                    time.sleep(delay)
                self.sent_at.setdefault(k, time.monotonic())
                request.wfile.write(
                    f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
                request.wfile.flush()
                self.frames_sent += 1
        except OSError as exc:
            log.debug("mjpeg client went away: %s", exc)
        finally:
            with self._cond:
                self._clients.discard(sock)
