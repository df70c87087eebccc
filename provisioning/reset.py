"""``wicket-provision reset``: wipe the appliance so it can be enrolled anew.

Entries the hub has not acknowledged are the only record of who went through the gates; reset
refuses while there are any, and with ``--force`` writes them first to a signed emergency
export (:mod:`edge.emergency`) that another appliance of the venue can import.
"""

from __future__ import annotations

import os
from pathlib import Path

from edge import config as config_mod
from edge import db as db_mod
from edge.emergency import export_entries
from edge.uplink.snapshot import staging_path
from sync.timeutil import utcnow

EXIT_REFUSED = 1
CONFIRM_WORD = "reset"


class ResetError(Exception):
    def __init__(self, message: str, exit_code: int = 2):
        super().__init__(message)
        self.exit_code = exit_code


def files_of(cfg: config_mod.Config) -> list[Path]:
    """Everything reset removes, the configuration itself aside."""
    out = []
    for base in (cfg.database, staging_path(cfg)):
        out += [base, base.with_name(base.name + "-wal"), base.with_name(base.name + "-shm"),
                base.with_name(base.name + "-journal")]
    out.append(cfg.credential_path)
    out.append(cfg.credential_path.with_name(cfg.credential_path.name + ".new"))
    return out


def run(config_arg: str | None, yes: bool, force: bool, export: str | None,
        with_config: bool, ask, say=print) -> int:
    cfg = config_mod.load(config_arg)
    unacked = 0
    if cfg.database.exists():
        conn = db_mod.connect(cfg.database)
        try:
            unacked = conn.execute(f"SELECT count(*) FROM entries WHERE {db_mod.UNACKED}"
                                   ).fetchone()[0]
            if unacked and not force:
                raise ResetError(
                    f"{unacked} entries are not yet acknowledged by the hub; resetting now "
                    "would lose them. Let the sync service send them (`wicket-edge status` "
                    "shows the queue), or `wicket-provision reset --force` to export them "
                    "to a signed file first", EXIT_REFUSED)
            present = [p for p in files_of(cfg) if p.exists()]
            say("this removes: " + ", ".join(str(p) for p in present)
                + (f" and {cfg.path} (with the holder key)" if with_config else ""))
            if not yes and ask(f"type {CONFIRM_WORD!r} to wipe this appliance: ").strip() \
                    != CONFIRM_WORD:
                raise ResetError("not confirmed: nothing was removed", EXIT_REFUSED)
            if unacked:
                target = Path(export) if export else cfg.database.with_name(
                    f"wicket-entries-before-reset-{utcnow():%Y%m%dT%H%M%SZ}.jsonl")
                _, data = export_entries(conn, cfg.holder_key, "cli:wicket-provision")
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                say(f"exported {unacked} unacknowledged entries (all entries in the file) to "
                    f"{target}; import it on another appliance of the venue (emergency page)")
        finally:
            conn.close()
    elif not yes and ask(f"type {CONFIRM_WORD!r} to wipe this appliance: ").strip() \
            != CONFIRM_WORD:
        raise ResetError("not confirmed: nothing was removed", EXIT_REFUSED)
    removed = []
    for p in files_of(cfg):
        if p.exists():
            p.unlink()
            removed.append(str(p))
    if with_config:
        cfg.path.unlink(missing_ok=True)
        removed.append(f"{cfg.path} (the holder key with it)")
        for p in (cfg.web_cert, cfg.web_key):  # the web pages' certificate goes with it
            if p.exists():
                p.unlink()
                removed.append(str(p))
    say("removed: " + (", ".join(removed) or "nothing (already clean)"))
    say("enroll again with `wicket-provision enroll --hub URL --token TOKEN`"
        + ("" if with_config else f" (the configuration {cfg.path} and its holder key stay)"))
    return 0
