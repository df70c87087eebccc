"""``wicket-edge gates`` as its own process, with the devices' simulators in this one: a video
file of tickets in front of the Modbus turnstile, cables pulled and plugged back, RFID through
a real pcscd and an ID card through the pty simulator."""

from __future__ import annotations

import json
import re
import time

import pytest

from drivers import modbus_rtu as rtu
from drivers.sim import scenes
from drivers.sim.idcard import SAMPLE_CARD, IdCardReaderSim
from drivers.sim.mjpeg import MjpegServer
from drivers.sim.vcard import VirtualCard
from tests.edge.gates_kit import (
    RuntimeProcess,
    ScriptedBoard,
    add_device,
    device_state,
    entries,
    load_venue,
    settled,
    wait_for,
    write_config,
)

N1, ID1 = 1, 4
FPS = 15


@pytest.fixture
def venue_db(db_path, vault, hub_key):
    venue, conn = load_venue(db_path, vault, hub_key)
    yield venue, conn
    conn.close()


def forged(text: str) -> str:
    i = len(text) // 2
    return text[:i] + ("7" if text[i] != "7" else "8") + text[i + 1:]


def opens(board) -> int:
    """Unlock commands that reached the board: Modbus flash-on frames (FC05 at 0x0200 + n)."""
    return sum(1 for r in board.requests
               if r.function == rtu.WRITE_SINGLE_COIL and r.address >= rtu.FLASH_BASE)


def board_at(path, script=()):
    board = ScriptedBoard(link=str(path), script=script)
    board.pass_pulse_s = 0.15
    return board


def test_lane_end_to_end_from_a_video_file(venue_db, db_path, holder_key, tmp_path):
    venue, conn = venue_db
    v1, v2, v3 = (venue.tickets[t].code for t in (1001, 1002, 1005))
    fake, refunded = forged(venue.tickets[1006].code), venue.tickets[900005].code
    conn.execute("UPDATE lanes SET passage_timeout_s = 4 WHERE id = ?", (N1,))
    timeline = [
        (None, 15), (v1, 12),        # valid: the person passes
        (None, 22), (v2, 12),        # valid: nobody comes -> annulled after 4 s
        (None, 90), (v2, 12),        # the same ticket again: still unused, admitted
        (None, 22), (v1, 12),        # a repeat: already entered
        (None, 15), (fake, 12),      # forged
        (None, 15), (refunded, 12),  # revoked
        (None, 15), (v3, 9),         # valid: the person hesitates 2.5 s ...
        (None, 9), (v3, 9),          # ... and shows the code again while the lane is open
        (None, 45)]
    video = scenes.write_video(tmp_path / "lane.avi", scenes.frames(
        (640, 480), scenes.timeline(timeline, seed=7)), fps=FPS)
    board = board_at(tmp_path / "ttyLANE1", script=["passes", "never", "passes", "hesitates"])
    board.hesitate_s = 2.5
    with board:
        add_device(conn, "ts-1", N1, "turnstile", {"port": board.port})
        add_device(conn, "cam-1", N1, "qr_camera", {"source": str(video), "realtime": True,
                                                    "debounce_s": 0.4}, enabled=False)
        config = write_config(tmp_path, db_path, holder_key)
        with RuntimeProcess(config, tmp_path / "gates.log") as runtime:
            wait_for(lambda: device_state(conn, "ts-1") == "up", what="the turnstile up")
            conn.execute("UPDATE devices SET enabled = 1 WHERE id = 'cam-1'")  # roll the film
            wait_for(lambda: len(entries(conn)) >= 7 and settled(conn)
                     and device_state(conn, "cam-1") == "down", timeout=120,
                     what="the whole video")
            assert runtime.stop() == 0
        log = runtime.log()
    assert entries(conn) == [
        (1001, "OK", 1, "passed"),
        (1002, "OK", 0, "timeout"),
        (1002, "OK", 1, "passed"),
        (1001, "ALREADY_ENTERED", 0, None),
        (None, "FORGED", 0, None),
        (900005, "REVOKED", 0, None),
        (1005, "OK", 1, "passed"),
    ]
    assert opens(board) == 4  # exactly one open frame per admission
    assert [channel for channel, _ in board.flashes] == [0, 0, 0, 0]
    detail = conn.execute("SELECT detail FROM entries WHERE passage = 'timeout'").fetchone()[0]
    assert "4 s" in detail or "nobody passed" in detail
    assert "played to its end" in (conn.execute(
        "SELECT state_detail FROM devices WHERE id = 'cam-1'").fetchone()[0] or "") or \
        "ended" in log
    assert "Traceback" not in log


class Scene:
    """What the lane camera sees right now: a code held up, or nobody."""

    def __init__(self):
        self.code: str | None = None
        self._cache: dict[str | None, object] = {}

    def __call__(self, k: int):
        if self.code not in self._cache:
            self._cache[self.code] = scenes.render(
                (640, 480), scenes.Shot(self.code, angle=8), "gradient")
        return self._cache[self.code]


def down_lines(log: str, device: str) -> int:
    return len(re.findall(rf"device {re.escape(device)} down", log))


def up_lines(log: str, device: str) -> int:
    return len(re.findall(rf"device {re.escape(device)} up\b", log))


def test_unplugged_devices_come_back_without_a_restart(venue_db, db_path, holder_key,
                                                       tmp_path):
    venue, conn = venue_db
    v1, v2 = venue.tickets[1001].code, venue.tickets[1002].code
    scene = Scene()
    camera = MjpegServer(scene, fps=FPS).start()
    board = board_at(tmp_path / "ttyLANE1")
    board.start()
    try:
        add_device(conn, "ts-1", N1, "turnstile", {"port": board.port})
        add_device(conn, "cam-1", N1, "qr_camera", {"source": camera.url, "debounce_s": 4.0,
                                                    "read_timeout_s": 1.0})
        config = write_config(tmp_path, db_path, holder_key)
        with RuntimeProcess(config, tmp_path / "gates.log") as runtime:
            wait_for(lambda: device_state(conn, "ts-1") == "up" and
                     device_state(conn, "cam-1") == "up", what="devices up")
            scene.code = v1
            wait_for(lambda: entries(conn) == [(1001, "OK", 1, "passed")], what="the first")
            scene.code = None

            board.unplug()
            camera.stop()
            wait_for(lambda: device_state(conn, "ts-1") == "down" and
                     device_state(conn, "cam-1") == "down", what="both down")
            time.sleep(2.0)  # let the runtime retry a few times while they are away
            board.replug()
            camera.start()
            wait_for(lambda: device_state(conn, "ts-1") == "up" and
                     device_state(conn, "cam-1") == "up", what="both back")

            scene.code = v2
            wait_for(lambda: len(entries(conn)) == 2 and settled(conn), what="the second")
            # the camera drops out and returns while the code is still held up: one scan
            camera.stop()
            wait_for(lambda: device_state(conn, "cam-1") == "down", what="camera away")
            camera.start()
            wait_for(lambda: device_state(conn, "cam-1") == "up", what="camera back")
            scans_after = json.loads(conn.execute(
                "SELECT health FROM devices WHERE id = 'cam-1'").fetchone()[0]).get("frames", 0)
            wait_for(lambda: json.loads(conn.execute(
                "SELECT health FROM devices WHERE id = 'cam-1'").fetchone()[0]).get(
                "frames", 0) > scans_after + 15, what="frames of the held code after the return")
            assert runtime.stop() == 0
        log = runtime.log()
    finally:
        camera.stop()
        board.stop()
    assert entries(conn) == [(1001, "OK", 1, "passed"), (1002, "OK", 1, "passed")]
    assert opens(board) == 2
    assert down_lines(log, "ts-1") == 1 and up_lines(log, "ts-1") == 2
    assert down_lines(log, "cam-1") == 2 and up_lines(log, "cam-1") == 3
    assert "Traceback" not in log


def test_rfid_through_pcscd_and_id_card_through_the_pty(venue_db, db_path, holder_key,
                                                        tmp_path, pcscd):
    venue, conn = venue_db
    uid = venue.tickets[venue.named["rfid"]].rfid_uid
    name, _, number = venue.holders[venue.tickets[1011].holder_id]
    lane_board, id_board = board_at(tmp_path / "ttyN1"), board_at(tmp_path / "ttyID1")
    with lane_board, id_board, IdCardReaderSim() as reader:
        add_device(conn, "ts-n1", N1, "turnstile", {"port": lane_board.port})
        add_device(conn, "rf-n1", N1, "rfid_reader", {"reader": pcscd.readers[0]})
        add_device(conn, "ts-id", ID1, "turnstile", {"port": id_board.port})
        add_device(conn, "id-1", ID1, "id_reader", {"port": reader.port, "poll_ms": 50})
        config = write_config(tmp_path, db_path, holder_key)
        with RuntimeProcess(config, tmp_path / "gates.log", pcscd.env) as runtime:
            wait_for(lambda: all(device_state(conn, d) == "up"
                                 for d in ("ts-n1", "rf-n1", "ts-id", "id-1")),
                     what="devices up")
            card = VirtualCard(pcscd.slot_port(0), uid)
            with card:
                wait_for(lambda: len(entries(conn, N1)) == 1 and settled(conn), what="a tap")
            from drivers.rfid import wait_slot
            assert wait_slot(pcscd.readers[0], present=False)
            with card:
                wait_for(lambda: len(entries(conn, N1)) == 2, what="a second tap")
            reader.present({**SAMPLE_CARD, "name": name, "id_number": number})
            wait_for(lambda: len(entries(conn, ID1)) == 1 and settled(conn), what="an ID card")
            assert runtime.stop() == 0
        log = runtime.log()
    assert entries(conn, N1) == [(900003, "OK", 1, "passed"),
                                 (900003, "ALREADY_ENTERED", 0, None)]
    assert entries(conn, ID1) == [(1011, "OK", 1, "passed")]
    assert opens(lane_board) == 1 and opens(id_board) == 1
    assert number not in log and name not in log
    refs = [r[0] for r in conn.execute("SELECT scan_ref FROM entries")]
    assert refs[:2] == [uid, uid] and number not in refs[2]
