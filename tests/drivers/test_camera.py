"""The QR camera against real video: files and PNG sequences written by OpenCV at test time,
and an MJPEG stream over loopback HTTP with its faults switched on and off."""

from __future__ import annotations

import random
import time

import cv2
import numpy as np
import pytest

from drivers.base import DeviceState, PermanentError, Reader
from drivers.camera import (
    CameraSettings,
    Debouncer,
    QrCamera,
    SourceKind,
    pyzbar_decode,
    source_kind,
    zxing_decode,
)
from drivers.settings import SettingsError, settings_from
from drivers.sim import scenes
from drivers.sim.mjpeg import MjpegServer

ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ$%*+-./:"


def ticket_like(seed: int, length: int = 115) -> str:
    """A string shaped like a ticket code: QR alphanumeric characters, about 115 of them."""
    rng = random.Random(seed)
    return "".join(rng.choice(ALPHABET) for _ in range(length))


def read_all(camera: QrCamera, limit_s: float = 60.0) -> list:
    """Every scan until the source ends (PermanentError), with a generous deadline."""
    scans = []
    deadline = time.monotonic() + limit_s
    with pytest.raises(PermanentError):
        while time.monotonic() < deadline:
            scan = camera.read(1.0)
            if scan is not None:
                scans.append(scan)
        raise AssertionError("the source did not end")
    return scans


def read_until(camera: QrCamera, count: int, limit_s: float = 30.0) -> list:
    scans = []
    deadline = time.monotonic() + limit_s
    while len(scans) < count and time.monotonic() < deadline:
        scan = camera.read(0.5)
        if scan is not None:
            scans.append(scan)
    return scans


def first_frames(items: list[tuple[str | None, int]]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    frame = 0
    for code, count in items:
        if code is not None:
            out.setdefault(code, []).append(frame)
        frame += count
    return out


# --- decoders and the debouncer ----------------------------------------------------------------

@pytest.mark.parametrize("background", scenes.BACKGROUNDS)
@pytest.mark.parametrize("size,module_px", [((640, 480), 4), ((1280, 720), 6)])
def test_both_decoders_read_a_ticket_code_on_every_background(background, size, module_px):
    code = ticket_like(1)
    frame = scenes.render(size, scenes.Shot(code, module_px=module_px, angle=12), background)
    gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
    assert zxing_decode(gray) == [code]
    assert pyzbar_decode(gray) == [code]


def test_only_zxing_reads_an_inverted_code():
    code = ticket_like(2)
    gray = cv2.cvtColor(scenes.render((640, 480), scenes.Shot(code, invert=True, angle=-8),
                                      "dark"), cv2.COLOR_BGR2GRAY)
    assert zxing_decode(gray) == [code]
    assert pyzbar_decode(gray) == []


def test_an_empty_scene_decodes_to_nothing():
    for background in scenes.BACKGROUNDS:
        gray = cv2.cvtColor(scenes.render((640, 480), scenes.Shot(None), background),
                            cv2.COLOR_BGR2GRAY)
        assert zxing_decode(gray) == [] and pyzbar_decode(gray) == []


@pytest.mark.parametrize("sightings,expected", [
    ([("A", 0.0), ("A", 0.1), ("A", 0.2)], [True, False, False]),        # held up: one scan
    ([("A", 0.0), ("A", 0.4), ("A", 0.8), ("A", 1.2)], [True, False, False, False]),  # sliding
    ([("A", 0.0), ("A", 0.6)], [True, True]),                             # gone longer than 0.5
    ([("A", 0.0), ("B", 0.1), ("A", 0.2)], [True, True, False]),          # two codes in view
    ([("A", 5.0), ("A", 0.0)], [True, True]),                             # clock restarted
])
def test_debouncer(sightings, expected):
    debouncer = Debouncer(0.5)
    assert [debouncer.sighted(text, t) for text, t in sightings] == expected


# --- settings -----------------------------------------------------------------------------------

@pytest.mark.parametrize("config,message", [
    ({}, "missing setting(s) source"),
    ({"source": "x.avi", "decoder": "opencv"}, "decoder"),
    ({"source": "x.avi", "debounce": 2}, "unknown setting(s) debounce"),
    ({"source": "x.avi", "roi": [0.5, 0, 0.6, 1]}, "roi"),
    ({"source": "x.avi", "roi": [0, 0, 1]}, "roi"),
    ({"source": "x.avi", "width": 640}, "width and height"),
    ({"source": "x.avi", "debounce_s": "2"}, "debounce_s"),
    ({"source": "x.avi", "second_try": 1}, "second_try"),
])
def test_bad_camera_settings_are_refused_with_the_reason(config, message):
    with pytest.raises(SettingsError) as exc:
        settings_from(CameraSettings, config)
    assert message in str(exc.value)
    with pytest.raises(PermanentError):
        QrCamera.from_config("cam-1", config)


def test_camera_settings_from_json_values():
    s = settings_from(CameraSettings, {"source": 0, "roi": [0.25, 0, 0.5, 1], "width": 1280,
                                       "height": 720, "debounce_s": 1})
    assert s.roi == (0.25, 0.0, 0.5, 1.0) and s.debounce_s == 1.0 and s.kind is SourceKind.CAMERA


@pytest.mark.parametrize("source,kind", [
    (0, SourceKind.CAMERA), ("2", SourceKind.CAMERA), ("/dev/video0", SourceKind.CAMERA),
    ("rtsp://127.0.0.1:8554/cam", SourceKind.STREAM),
    ("http://127.0.0.1:8080/stream.mjpg", SourceKind.STREAM),
    ("/tmp/lane.avi", SourceKind.FILE), ("/tmp/f/frame_%04d.png", SourceKind.IMAGES),
])
def test_source_kinds(source, kind):
    assert source_kind(source) is kind


# --- files and image sequences ------------------------------------------------------------------

LANE = [  # (code, frames) at 15 frames/s
    (None, 6), ("A", 12), (None, 8), ("B", 12), ("C", 10), (None, 8), ("A", 12), (None, 4)]


def lane_codes() -> dict[str, str]:
    return {"A": ticket_like(10), "B": ticket_like(11), "C": ticket_like(12, 60)}


def test_codes_in_a_video_come_out_once_each_in_order_with_debounce(tmp_path):
    codes = lane_codes()
    items = [(codes[c] if c else None, n) for c, n in LANE]
    shots = scenes.timeline(items, seed=3)
    # A thumb covers the second B for two frames: still the same presentation.
    b_start = sum(n for _, n in LANE[:3])
    for i in (b_start + 5, b_start + 6):
        shots[i] = scenes.Shot(None)
    video = scenes.write_video(tmp_path / "lane.avi", scenes.frames((640, 480), shots), fps=15)

    camera = QrCamera("cam-1", CameraSettings(source=str(video), debounce_s=0.3))
    assert isinstance(camera, Reader)
    camera.open()
    scans = read_all(camera)

    assert [s.data for s in scans] == [codes["A"], codes["B"], codes["C"], codes["A"]]
    starts = first_frames(items)
    expected_frames = [starts[codes["A"]][0], starts[codes["B"]][0], starts[codes["C"]][0],
                       starts[codes["A"]][1]]
    for scan, first in zip(scans, expected_frames, strict=True):
        assert first <= scan.fields["frame"] <= first + 2, (scan.fields["frame"], first)
        assert scan.device_id == "cam-1" and scan.kind == "qr"
    health = camera.health()
    assert health.state is DeviceState.DOWN and "ended" in health.detail
    assert health.metrics["frames"] == sum(n for _, n in LANE)
    assert health.metrics["scans"] == 4 and health.metrics["bad_frames"] == 0


def test_a_video_plays_once_or_loops_when_replayed(tmp_path):
    code = ticket_like(20)
    video = scenes.write_video(tmp_path / "one.avi", scenes.frames(
        (640, 480), scenes.timeline([(None, 3), (code, 6), (None, 12)])), fps=15)
    once = QrCamera("cam-1", CameraSettings(source=str(video), debounce_s=0.5))
    once.open()
    assert [s.data for s in read_all(once)] == [code]
    with pytest.raises(PermanentError) as exc:
        once.open()  # a recording played to its end stays ended: nothing is scanned twice
    assert "played to its end" in str(exc.value)

    loop = QrCamera("cam-2", CameraSettings(source=str(video), debounce_s=0.5, replay=True))
    loop.open()
    scans = read_until(loop, 3)
    assert [s.data for s in scans] == [code] * 3
    assert [s.fields["frame"] for s in scans] == [3, 24, 45]  # one clock across the loops


def test_a_long_debounce_merges_a_code_presented_twice(tmp_path):
    code = ticket_like(21)
    video = scenes.write_video(tmp_path / "twice.avi", scenes.frames(
        (640, 480), scenes.timeline([(code, 5), (None, 10), (code, 5)])), fps=15)
    short = QrCamera("cam-1", CameraSettings(source=str(video), debounce_s=0.5))
    long = QrCamera("cam-2", CameraSettings(source=str(video), debounce_s=1.0))
    short.open()
    long.open()
    assert len(read_all(short)) == 2  # 10 frames at 15/s = 0.67 s out of sight
    assert len(read_all(long)) == 1


def test_inverted_codes_read_by_zxing_and_by_pyzbar_only_with_a_second_try(tmp_path):
    codes = [ticket_like(30), ticket_like(31)]
    items = [(None, 3), (codes[0], 6), (None, 5), (codes[1], 6), (None, 3)]
    pattern = scenes.write_png_sequence(tmp_path / "dark", scenes.frames(
        (640, 480), scenes.timeline(items, seed=4, invert=True), background="dark"))

    results = {}
    for name, settings in {
        "zxing": CameraSettings(source=pattern, fps=15, debounce_s=0.2),
        "pyzbar": CameraSettings(source=pattern, fps=15, debounce_s=0.2, decoder="pyzbar"),
        "pyzbar+zxing": CameraSettings(source=pattern, fps=15, debounce_s=0.2,
                                       decoder="pyzbar", second_try=True),
    }.items():
        camera = QrCamera(name, settings)
        camera.open()
        results[name] = ([s.data for s in read_all(camera)], camera.health().metrics)

    assert results["zxing"][0] == codes
    assert results["pyzbar"][0] == []
    assert results["pyzbar+zxing"][0] == codes
    assert results["pyzbar+zxing"][1]["second_tries"] >= 12 - 2
    assert results["zxing"][1]["second_tries"] == 0
    assert results["pyzbar"][1]["frames"] == sum(n for _, n in items)


def test_unreadable_frames_give_no_scan_and_break_nothing(tmp_path):
    readable = ticket_like(40)
    blurred, covered, noisy = ticket_like(41), ticket_like(42), ticket_like(43)
    shots = (scenes.timeline([(blurred, 8)], blur=4.0)
             + scenes.timeline([(covered, 8)], cover=0.45)
             + scenes.timeline([(noisy, 8)], noise=120)
             + scenes.timeline([(None, 4), (readable, 6), (None, 2)]))
    video = scenes.write_video(tmp_path / "hard.avi", scenes.frames((640, 480), shots), fps=15)
    camera = QrCamera("cam-1", CameraSettings(source=str(video), second_try=True))
    camera.open()
    assert [s.data for s in read_all(camera)] == [readable]
    assert camera.health().metrics["frames"] == len(shots)


def test_region_of_interest_and_decode_resolution(tmp_path):
    left, right = ticket_like(50, 40), ticket_like(51, 40)

    def both(i: int) -> np.ndarray:
        frame = scenes.render((1280, 720), scenes.Shot(left, module_px=6, center=(0.25, 0.5)))
        other = scenes.render((1280, 720), scenes.Shot(right, module_px=6, center=(0.75, 0.5)))
        frame[:, 640:] = other[:, 640:]
        return frame

    pattern = scenes.write_png_sequence(tmp_path / "two", [both(i) for i in range(4)])
    whole = QrCamera("whole", CameraSettings(source=pattern))
    left_only = QrCamera("left", CameraSettings(source=pattern, roi=(0.0, 0.0, 0.5, 1.0)))
    right_small = QrCamera("right", CameraSettings(source=pattern, roi=(0.5, 0.0, 0.5, 1.0),
                                                   width=960, height=540))
    for camera in (whole, left_only, right_small):
        camera.open()
    assert sorted(s.data for s in read_all(whole)) == sorted([left, right])
    assert [s.data for s in read_all(left_only)] == [left]
    assert [s.data for s in read_all(right_small)] == [right]
    assert right_small.health().metrics["resolution"] == "1280x720"  # as delivered


def test_a_missing_file_or_sequence_is_permanent(tmp_path):
    for source in (str(tmp_path / "none.avi"), str(tmp_path / "f_%04d.png")):
        camera = QrCamera("cam-1", CameraSettings(source=source))
        with pytest.raises(PermanentError) as exc:
            camera.open()
        assert exc.value.device_id == "cam-1"
        assert camera.health().state is DeviceState.DOWN


def test_a_camera_index_that_does_not_exist_is_permanent():
    camera = QrCamera("cam-1", CameraSettings(source="/dev/video97"))
    with pytest.raises(PermanentError):
        camera.open()


def test_realtime_playback_delivers_frames_on_the_files_clock(tmp_path):
    code = ticket_like(60)
    pattern = scenes.write_png_sequence(tmp_path / "slow", scenes.frames(
        (640, 480), scenes.timeline([(code, 2)])))
    camera = QrCamera("cam-1", CameraSettings(source=pattern, fps=0.5, realtime=True))
    camera.open()
    first = camera.read(5.0)
    assert first is not None and first.data == code
    # The second frame is due 2 s after the first: a short read finds nothing yet.
    assert camera.read(0.05) is None
    assert camera.health().metrics["frames"] == 1


# --- MJPEG over HTTP ----------------------------------------------------------------------------

def stream_frames(items, seed=5, size=(640, 480)):
    return list(scenes.frames(size, scenes.timeline(items, seed=seed), background="gradient"))


@pytest.mark.parametrize("reader", ["native", "ffmpeg"])
def test_codes_over_mjpeg_come_out_once_each_in_order(reader):
    codes = [ticket_like(70), ticket_like(71), ticket_like(72)]
    items = [(None, 4), (codes[0], 10), (None, 6), (codes[1], 10), (codes[2], 10), (None, 8)]
    with MjpegServer(stream_frames(items), fps=15) as server:
        camera = QrCamera("cam-1", CameraSettings(source=server.url, debounce_s=0.3,
                                                  http_reader=reader))
        camera.open()
        scans = read_all(camera)
    assert [s.data for s in scans] == codes
    metrics = camera.health().metrics
    assert metrics["frames"] >= sum(n for _, n in items) - metrics["dropped_frames"] - 2
    assert metrics["decode_ms"] is not None and metrics["last_frame_at"] is not None


@pytest.mark.parametrize("content_type,boundary", [
    ("multipart/x-mixed-replace; boundary=frame", b"frame"),
    ('multipart/x-mixed-replace;boundary="--myboundary"', b"myboundary"),
    ("multipart/x-mixed-replace; charset=x; Boundary=ab12", b"ab12"),
])
def test_mjpeg_boundaries(content_type, boundary):
    from drivers.mjpeg_http import boundary_of

    assert boundary_of(content_type) == boundary


def test_a_url_that_is_not_mjpeg_is_read_by_ffmpeg(tmp_path):
    import http.server
    import threading

    code = ticket_like(75)
    ok, jpeg = cv2.imencode(".jpg", scenes.render((640, 480), scenes.Shot(code)))
    assert ok

    class Snapshot(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(jpeg)))
            self.end_headers()
            self.wfile.write(jpeg.tobytes())

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Snapshot)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        camera = QrCamera("cam-1", CameraSettings(
            source=f"http://127.0.0.1:{server.server_address[1]}/snapshot.jpg"))
        camera.open()
        scan = camera.read(10)
        assert scan is not None and scan.data == code
        camera.close()
    finally:
        server.shutdown()
        server.server_close()


def test_garbled_frames_are_counted_and_the_stream_goes_on():
    code, later = ticket_like(80), ticket_like(81)
    items = [(None, 6), (code, 30), (None, 10), (later, 12), (None, 6)]
    with MjpegServer(stream_frames(items), fps=15) as server:
        camera = QrCamera("cam-1", CameraSettings(source=server.url, debounce_s=1.5))
        camera.open()
        first = read_until(camera, 1)
        assert [s.data for s in first] == [code]
        server.garble(6)
        rest = read_all(camera)
        assert server.garbled_sent == 6
    assert [s.data for s in rest] == [later]  # the same code across garbled frames: one scan
    health = camera.health()
    assert health.metrics["bad_frames"] + health.metrics["frames"] >= sum(n for _, n in items) - 10


def test_mjpeg_stream_stopping_and_restarting():
    before, after = ticket_like(90), ticket_like(91)
    items = [(None, 5), (before, 8), (None, 40), (after, 8), (None, 5)]
    server = MjpegServer(stream_frames(items), fps=15, loop=True).start()
    try:
        camera = QrCamera("cam-1", CameraSettings(source=server.url, debounce_s=0.3,
                                                  read_timeout_s=1.5))
        camera.open()
        assert [s.data for s in read_until(camera, 1)] == [before]
        server.stop()
        with pytest.raises(PermanentError):
            read_until(camera, 1, limit_s=20)
        assert camera.health().state is DeviceState.DOWN
        with pytest.raises(PermanentError):
            camera.open()  # the camera is still gone
        server.start()
        deadline = time.monotonic() + 20
        while True:
            try:
                camera.open()
                break
            except PermanentError:
                assert time.monotonic() < deadline, "the camera did not come back"
                time.sleep(0.2)
        scans = read_until(camera, 2, limit_s=30)
        assert {s.data for s in scans} <= {before, after} and after in {s.data for s in scans}
        assert camera.health().state in (DeviceState.UP, DeviceState.DEGRADED)
    finally:
        server.stop()


def test_a_silent_stream_is_down_after_the_read_timeout_and_late_before():
    code = ticket_like(95)
    with MjpegServer(stream_frames([(None, 5), (code, 10), (None, 5)]), fps=15,
                     loop=True) as server:
        camera = QrCamera("cam-1", CameraSettings(source=server.url, read_timeout_s=2.0))
        camera.open()
        assert read_until(camera, 1)
        server.silent = True
        states = set()
        with pytest.raises(PermanentError) as exc:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                camera.read(0.2)
                states.add(camera.health().state)
        assert DeviceState.DEGRADED in states
        assert "no frame" in str(exc.value) or "stopped" in str(exc.value)
        server.silent = False
        camera.open()
        assert [s.data for s in read_until(camera, 1)] == [code]  # away longer than debounce


def test_a_slow_stream_still_scans():
    code = ticket_like(96)
    with MjpegServer(stream_frames([(None, 3), (code, 20), (None, 3)]), fps=15) as server:
        server.delay_s = 0.15
        camera = QrCamera("cam-1", CameraSettings(source=server.url, debounce_s=1.0))
        camera.open()
        scans = read_all(camera)
        assert server.frames_sent < server.frames_shown  # the slow link skipped frames
    assert [s.data for s in scans] == [code]
