"""``wicket-provision doctor``: what is wrong with this box, and how to fix it.

Every check returns one :class:`Check` — ``pass``, ``warn`` or ``fail`` — with what it found and,
when it is not ``pass``, the fix in words. Checks never raise: a check that cannot run says so.
Nothing here changes the hub's state: the credential is tested with an allowlist read of one
change, never with a heartbeat (which hands over the hub's queued commands once).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from edge import config as config_mod
from edge import db as db_mod
from edge import hardware
from edge.uplink.agent import NotEnrolled, load_link
from edge.uplink.status import status as sync_status
from sync.client import CursorExpired, HubClient, HubUnavailable, Refused, Unauthorized
from sync.timeutil import from_iso, utcnow

PASS, WARN, FAIL = "pass", "warn", "fail"
EDGE_SERVICES = ("wicket-edge-web", "wicket-edge-gates", "wicket-edge-sync")
MAX_SKEW_S = 120.0
MIN_FREE_BYTES = 500 * 1024 * 1024
SYNC_AGE_WARN_S = {"revocations": 300, "allowlist": 900, "entries": 300, "heartbeat": 600}


@dataclass(frozen=True)
class Check:
    check: str
    status: str
    detail: str
    fix: str = ""


def run(config_arg: str | None, max_skew_s: float = MAX_SKEW_S) -> list[Check]:
    path = config_mod.config_path(config_arg)
    checks: list[Check] = []
    cfg = _config(path, checks)
    if cfg is None:
        return checks
    conn = _database(cfg, checks)
    try:
        if conn is not None:
            checks.extend(devices(conn))
            checks.extend(device_states(conn))
        checks.extend(hub(cfg, conn, max_skew_s))
        checks.append(disk(cfg.database))
        checks.append(services())
        if conn is not None:
            checks.extend(sync_age(cfg, conn))
    finally:
        if conn is not None:
            conn.close()
    return checks


# -- configuration and database --------------------------------------------------------------


def _config(path: Path, checks: list[Check]) -> config_mod.Config | None:
    if not path.exists():
        checks.append(Check("config", FAIL, f"{path}: no configuration file",
                            "enroll the box: `wicket-provision enroll --hub URL --token TOKEN`"))
        return None
    try:
        cfg = config_mod.load(path)
    except config_mod.ConfigError as e:
        checks.append(Check("config", FAIL, str(e), "correct the named line (every setting "
                            "is listed in docs/configuration.md)"))
        return None
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        checks.append(Check("config", FAIL, f"{path} is readable by others (mode {mode:04o}); "
                            "it holds the key that seals holder data",
                            f"`chmod 600 {path}`"))
    else:
        checks.append(Check("config", PASS, f"{path} parses, owner-only ({mode:04o})"))
    return cfg


def _database(cfg: config_mod.Config, checks: list[Check]) -> sqlite3.Connection | None:
    if not cfg.database.exists():
        checks.append(Check("database", FAIL, f"{cfg.database}: no database",
                            f"`wicket-edge --config {cfg.path} init`"))
        return None
    try:
        conn = db_mod.connect(cfg.database)
        result = conn.execute("PRAGMA integrity_check").fetchone()[0]
        db = db_mod.open_db(cfg.database)
        try:
            pending = db_mod.migrations.pending(db)
        finally:
            db.conn.close()
    except sqlite3.DatabaseError as e:
        checks.append(Check("database", FAIL, f"{cfg.database}: cannot be read: {e}",
                            "restore the database from a backup, or `wicket-provision reset` "
                            "and enroll again"))
        return None
    size = cfg.database.stat().st_size
    wal = cfg.database.with_name(cfg.database.name + "-wal")
    size += wal.stat().st_size if wal.exists() else 0
    if result != "ok":
        checks.append(Check("database", FAIL, f"{cfg.database}: integrity check: {result}",
                            "export the entries from the admin's emergency page, then "
                            "`wicket-provision reset --force` and enroll again"))
    elif pending:
        checks.append(Check("database", FAIL, f"{cfg.database}: {len(pending)} migrations "
                            f"not applied ({', '.join(m.name for m in pending)})",
                            f"`wicket-edge --config {cfg.path} init` upgrades it"))
    else:
        checks.append(Check("database", PASS, f"{cfg.database}: integrity ok, migrations "
                            f"current, {_size(size)}"))
    return conn


# -- devices ---------------------------------------------------------------------------------


def devices(conn: sqlite3.Connection) -> list[Check]:
    """Each enabled device of the devices table against what the box has."""
    rows = conn.execute("SELECT id, kind, config FROM devices WHERE enabled = 1 ORDER BY id"
                        ).fetchall()
    if not rows:
        return [Check("devices", WARN, "no devices configured",
                      "add the lane's devices on the admin page (Devices)")]
    readers: hardware.Listing | None = None
    out = []
    for device_id, kind, raw in rows:
        name = f"device {device_id}"
        try:
            settings = json.loads(raw or "{}")
        except ValueError:
            out.append(Check(name, FAIL, f"{kind}: its configuration is not JSON",
                             "edit the device on the admin page"))
            continue
        if "port" in settings:
            found = _char_device(name, kind, str(settings["port"]), "serial port",
                                 "check the cable and the port name (`ls -l "
                                 "/dev/serial/by-id/`), or edit the device's port")
            out.append(found)
            if kind == "turnstile" and found.status != FAIL:
                out.append(board_answers(f"{name} answers", device_id, settings))
        elif "path" in settings:
            out.append(_char_device(name, kind, str(settings["path"]), "input device",
                                    "check the scanner's cable (`ls /dev/input/by-id/`)"))
        elif "source" in settings:
            out.append(_camera(name, kind, settings["source"]))
        elif kind == "rfid_reader":
            if readers is None:
                readers = hardware.pcsc_readers()
            out.append(_reader(name, str(settings.get("reader", "")), readers))
        else:
            out.append(Check(name, WARN, f"{kind}: nothing in its configuration to look for",
                             "test the device from the admin page"))
    return out


_DOWN_FIX = {
    "turnstile": "check the board's power, its RS-485 wiring (A to A, B to B) and its unit "
                 "address; the gate runtime's log says more: `journalctl -u wicket-edge-gates`",
}


def device_states(conn: sqlite3.Connection) -> list[Check]:
    """A FAIL for each enabled device the gate runtime reports down (a turnstile whose port
    opens but whose board never answers is one): the port being there is not enough."""
    out = []
    for device_id, kind, detail, state_at in conn.execute(
            "SELECT id, kind, state_detail, state_at FROM devices WHERE enabled = 1 "
            "AND state = 'down' AND kind != 'handheld' ORDER BY id"):
        since = f" since {state_at}" if state_at else ""
        out.append(Check(f"device {device_id} state", FAIL,
                         f"{kind}: the gate runtime reports it down{since}: {detail or '-'}",
                         _DOWN_FIX.get(kind, "check its cable and power, then test it from "
                                       "the admin page (Devices, Test); `journalctl -u "
                                       "wicket-edge-gates` says more")))
    return out


def _char_device(name: str, kind: str, path: str, what: str, fix: str) -> Check:
    try:
        st = os.stat(path)
    except OSError:
        if what == "serial port":
            ports = ", ".join(f.path for f in hardware.serial_ports().items) or "none"
            return Check(name, FAIL, f"{kind}: {what} {path} does not exist (serial ports "
                         f"on this box: {ports})", fix)
        return Check(name, FAIL, f"{kind}: {what} {path} does not exist", fix)
    if not stat.S_ISCHR(st.st_mode):
        return Check(name, FAIL, f"{kind}: {path} is not a device", fix)
    if not os.access(path, os.R_OK | os.W_OK):
        return Check(name, WARN, f"{kind}: {path} present but not read-writable by this user",
                     "the service user `wicket` reaches it through the dialout/video/input "
                     "groups; run doctor as that user or as root to be sure")
    return Check(name, PASS, f"{kind}: {what} {path} present")


PROBE_REPLY_MS = 2000  # a board answers in milliseconds; a loaded box must not read as FAIL
BOARD_FIX = ("check the board's power, the RS-485 wiring (A to A, B to B), and that its unit "
             "address and baud rate are the device's (admin page, Devices)")


def board_answers(name: str, device_id: str, settings: dict) -> Check:
    """Ask a turnstile's board for its inputs through its driver (one Modbus read): a port
    that exists with nothing answering on it is a FAIL. A One-Tech tripod and a USB relay have
    no query that does not open the lane: those are left to the page's Test. While the gate
    runtime runs it holds the port, so the board is not probed then."""
    from drivers import settings as driver_settings
    from drivers.base import PermanentError, TemporaryError
    from drivers.modbus_turnstile import ModbusTurnstile

    config = dict(settings)
    model = config.pop("model", None) or "modbus"
    if model != "modbus":
        return Check(name, WARN, f"turnstile ({model}): this board has no query that leaves "
                     "the lane shut, so doctor does not ask it",
                     "test it from the admin page (Devices, Test opens the lane once)")
    if gates_running():
        return Check(name, WARN, "not probed: the gate runtime holds the port (its view of "
                     "the board is the device's state on the admin page)",
                     "to probe the board here: `systemctl stop wicket-edge-gates`, doctor "
                     "again, then `systemctl start wicket-edge-gates`")
    config["reply_timeout_ms"] = max(int(config.get("reply_timeout_ms") or 0), PROBE_REPLY_MS)
    config["down_after"] = 1
    try:
        board = driver_settings.build(ModbusTurnstile, device_id, config)
    except (driver_settings.SettingsError, TypeError, ValueError) as e:
        return Check(name, FAIL, f"turnstile: its settings cannot be used: {e}",
                     "edit the device on the admin page (Devices)")
    where = f"unit {board.unit} on {board.port} at {board.baudrate} baud"
    try:
        board.open()
        board.poll(0)  # one read of the board's inputs
    except (PermanentError, TemporaryError) as e:
        return Check(name, FAIL, f"turnstile: the Modbus board ({where}) does not answer: {e}",
                     BOARD_FIX)
    finally:
        board.close()
    return Check(name, PASS, f"turnstile: the Modbus board ({where}) answers")


def gates_running() -> bool:
    if not systemd_running():
        return False
    done = subprocess.run(["systemctl", "is-active", "wicket-edge-gates"], capture_output=True,
                          text=True, timeout=30)
    return done.stdout.strip() == "active"


def _camera(name: str, kind: str, source: object) -> Check:
    if isinstance(source, int) or (isinstance(source, str) and source.isdigit()):
        source = f"/dev/video{int(source)}"
    source = str(source)
    if "://" in source:
        return Check(name, WARN, f"{kind}: network camera {source.split('@')[-1]} not checked "
                     "here", "test the camera from the admin page (Devices, Test)")
    if source.startswith("/dev/"):
        found = {f.path for f in hardware.cameras().items}
        if source in found or os.path.exists(source):
            return Check(name, PASS, f"{kind}: camera {source} present")
        listed = ", ".join(sorted(found)) or "none"
        return Check(name, FAIL, f"{kind}: camera {source} not found (cameras: {listed})",
                     "plug the camera in, or edit the device's source")
    if os.path.exists(source):
        return Check(name, PASS, f"{kind}: video file {source} present")
    return Check(name, FAIL, f"{kind}: camera source {source} not found",
                 "edit the device's source")


def _reader(name: str, wanted: str, readers: hardware.Listing) -> Check:
    names = [f.path for f in readers.items]
    match = [n for n in names if wanted in n]
    if match:
        return Check(name, PASS, f"rfid_reader: PC/SC reader {match[0]!r} present")
    if not names:
        return Check(name, FAIL, f"rfid_reader: {readers.note}",
                     "plug the reader in and start pcscd: `systemctl enable --now pcscd`")
    return Check(name, FAIL, f"rfid_reader: no reader named like {wanted!r} (readers: "
                 f"{', '.join(names)})", "plug the reader in, or edit the device's reader name")


# -- hub and clock ---------------------------------------------------------------------------


def hub(cfg: config_mod.Config, conn: sqlite3.Connection | None,
        max_skew_s: float) -> list[Check]:
    try:
        link = load_link(cfg)
    except NotEnrolled as e:
        return [Check("hub", FAIL, str(e), "`wicket-provision enroll --hub URL --token TOKEN`")]
    cursor = 0
    if conn is not None:
        row = conn.execute("SELECT cursor FROM sync_state WHERE stream = 'allowlist'").fetchone()
        cursor = int(row[0]) if row else 0
    client = HubClient(link.hub_url, link.credential, timeout=min(cfg.hub_timeout_s, 15.0))
    sent = time.time()
    try:
        page = client.allowlist(cursor, 1)
        server_time = page.get("server_time")
    except CursorExpired:
        server_time = None  # the credential was accepted; only the cursor is old
    except Unauthorized:
        return [Check("hub", FAIL, f"{link.hub_url} refuses this appliance's credential "
                      "(revoked or re-registered)", "`wicket-provision reset`, then enroll "
                      "with a new token from the hub's Appliances page")]
    except HubUnavailable as e:
        return [Check("hub", FAIL, f"{link.hub_url} unreachable: {e}",
                      "check the network and the hub's address; the gates keep working "
                      "offline meanwhile")]
    except Refused as e:
        return [Check("hub", FAIL, f"{link.hub_url}: {e}", "update the appliance's software")]
    finally:
        client.close()
    back = time.time()
    out = [Check("hub", PASS, f"{link.hub_url} reachable, credential of appliance "
                 f"{link.appliance_id} accepted")]
    if server_time is None:
        out.append(Check("clock", WARN, "the hub gave no time to compare with",
                         "`wicket-provision doctor` again after the next sync"))
        return out
    skew = (sent + back) / 2 - from_iso(str(server_time)).timestamp()
    if abs(skew) > max_skew_s:
        out.append(Check("clock", FAIL, f"the clock is {skew:+.0f} s off the hub's (limit "
                         f"{max_skew_s:.0f} s)", "`timedatectl set-ntp true` (check with "
                         "`timedatectl status`)"))
    elif abs(skew) > 5:
        out.append(Check("clock", WARN, f"the clock is {skew:+.1f} s off the hub's",
                         "`timedatectl set-ntp true`"))
    else:
        out.append(Check("clock", PASS, f"the clock is {skew:+.1f} s off the hub's"))
    return out


# -- the box ---------------------------------------------------------------------------------


def disk(database: Path) -> Check:
    where = database.parent if database.parent.exists() else Path("/")
    usage = shutil.disk_usage(where)
    detail = f"{_size(usage.free)} free of {_size(usage.total)} on {where}'s file system"
    if usage.free < MIN_FREE_BYTES:
        return Check("disk", FAIL, detail, "free space: remove old logs "
                     "(`journalctl --vacuum-size=100M`) and old export files")
    if usage.free < 0.1 * usage.total:
        return Check("disk", WARN, detail, "less than 10% free: remove old logs and exports")
    return Check("disk", PASS, detail)


def systemd_running() -> bool:
    return Path("/run/systemd/system").is_dir() and shutil.which("systemctl") is not None


def services() -> Check:
    if not systemd_running():
        return Check("services", WARN, "systemd is not running on this machine (a container "
                     "or chroot?): the services cannot be checked",
                     "on the appliance itself: `wicket-provision install`, then doctor again")
    down = []
    for unit in EDGE_SERVICES:
        done = subprocess.run(["systemctl", "is-active", unit], capture_output=True, text=True,
                              timeout=30)
        state = done.stdout.strip() or "unknown"
        if state != "active":
            down.append(f"{unit} {state}")
    if down:
        return Check("services", FAIL, "not running: " + ", ".join(down),
                     "`wicket-provision install` (or `systemctl start UNIT`); see why with "
                     "`journalctl -u UNIT`")
    return Check("services", PASS, ", ".join(EDGE_SERVICES) + " active")


def sync_age(cfg: config_mod.Config, conn: sqlite3.Connection) -> list[Check]:
    s = sync_status(cfg, conn)
    out = []
    for stream, limit in SYNC_AGE_WARN_S.items():
        st = s["streams"].get(stream)
        if st is None:
            continue
        if st["last_ok_at"] is None:
            out.append(Check(f"sync {stream}", WARN, "never synced",
                             "start the sync service (`systemctl start wicket-edge-sync`)"))
            continue
        age = st["lag_s"]
        detail = f"last success {age:.0f} s ago"
        if st["last_error"]:
            detail += f"; failing: {st['last_error']}"
        if age > limit or st["last_error"]:
            out.append(Check(f"sync {stream}", WARN, detail, "check the hub check above and "
                             "`journalctl -u wicket-edge-sync`"))
        else:
            out.append(Check(f"sync {stream}", PASS, detail))
    e = s["entries"]
    oldest = e["oldest_queued_at"]
    detail = f"{e['queued']} queued, {e['refused']} refused by the hub"
    if e["refused"]:
        out.append(Check("entries", WARN, detail, "see the refused entries on the admin's "
                         "sync page (`wicket-edge status`)"))
    elif oldest and (utcnow() - from_iso(oldest)).total_seconds() > 900:
        out.append(Check("entries", WARN, detail + f", the oldest since {oldest}",
                         "the hub has not taken entries for a while: check the hub"))
    else:
        out.append(Check("entries", PASS, detail))
    return out


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def render(checks: list[Check]) -> str:
    lines = []
    for c in checks:
        lines.append(f"{c.status.upper():4}  {c.check:20} {c.detail}")
        if c.fix and c.status != PASS:
            lines.append(f"      {'':20} fix: {c.fix}")
    failed = sum(c.status == FAIL for c in checks)
    warned = sum(c.status == WARN for c in checks)
    lines.append(f"{len(checks)} checks: {failed} failed, {warned} warnings")
    return "\n".join(lines)


def as_json(checks: list[Check]) -> str:
    """One object per check: ``{"check", "status", "detail", "fix"}``."""
    return json.dumps([asdict(c) for c in checks], indent=2, ensure_ascii=False)
