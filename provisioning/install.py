"""``wicket-provision install``: the service user, its directories and the edge's systemd units.

With ``--root DIR`` everything is written under DIR instead (image building, tests): no user is
created, nothing is chowned and systemctl is not called, and the output says so.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from edge import config as config_mod
from provisioning import units
from provisioning.doctor import systemd_running

USER = "wicket"
GROUPS = ("dialout", "video", "input")
CONFIG_DIR = Path("/etc/wicket")
STATE_DIR = Path("/var/lib/wicket")
UNIT_DIR = Path("/etc/systemd/system")


class InstallError(Exception):
    pass


def _under(root: Path | None, path: Path) -> Path:
    return root / path.relative_to("/") if root else path


def run(config_arg: str | None, root: Path | None, start: bool, say=print) -> int:
    if root is None and os.geteuid() != 0:
        raise InstallError("install needs root (sudo wicket-provision install), or --root DIR "
                           "to write into a directory tree")
    uid = gid = None
    if root is None:
        uid, gid = _service_user(say)
    else:
        say(f"--root {root}: the service user {USER!r} is not created and nothing is chowned "
            "(do it when the image first boots)")
    for d in (CONFIG_DIR, STATE_DIR):
        target = _under(root, d)
        target.mkdir(parents=True, exist_ok=True)
        os.chmod(target, 0o750)
        if uid is not None:
            os.chown(target, 0 if d == CONFIG_DIR else uid, gid)
        say(f"directory {target} (0750{'' if uid is None else ', group ' + USER})")
    if root is None:
        _own_config(config_arg, uid, gid, say)
    unit_dir = _under(root, UNIT_DIR)
    unit_dir.mkdir(parents=True, exist_ok=True)
    for name in units.EDGE_UNITS:
        path = unit_dir / name
        tmp = path.with_name(name + ".new")
        tmp.write_text(units.render(name), encoding="utf-8")
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
        say(f"unit {path}")
    names = [n.removesuffix(".service") for n in units.EDGE_UNITS]
    if root is not None:
        say("--root: systemctl not called; on the booted system run "
            f"`systemctl daemon-reload && systemctl enable --now {' '.join(names)}`")
        return 0
    if not systemd_running():
        say("systemd is not running here: the units are written; on a booted system run "
            f"`systemctl daemon-reload && systemctl enable --now {' '.join(names)}`")
        return 0
    _systemctl("daemon-reload")
    _systemctl("enable", *([] if not start else ["--now"]), *units.EDGE_UNITS)
    say(f"enabled{' and started' if start else ''}: {', '.join(names)}")
    if start:
        say("check them with `wicket-provision doctor`")
    return 0


def _service_user(say) -> tuple[int, int]:
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        groups = [g for g in GROUPS if _group_exists(g)]
        cmd = ["useradd", "--system", "--home-dir", str(STATE_DIR), "--no-create-home",
               "--shell", "/usr/sbin/nologin", "--user-group"]
        if groups:
            cmd += ["--groups", ",".join(groups)]
        subprocess.run([*cmd, USER], check=True, timeout=60)
        pw = pwd.getpwnam(USER)
        say(f"created system user {USER!r} (groups: {', '.join(groups) or 'none'})")
    else:
        say(f"system user {USER!r} exists")
    return pw.pw_uid, pw.pw_gid


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
        return True
    except KeyError:
        return False


def _own_config(config_arg: str | None, uid: int | None, gid: int | None, say) -> None:
    """The config, the credential and the web pages' TLS key: readable by the service user
    only (0600, owned by it)."""
    path = config_mod.config_path(config_arg)
    if not path.exists():
        say(f"{path} does not exist yet: run `wicket-provision enroll` before starting the "
            "services")
        return
    cfg = config_mod.load(path)
    for p in (path, cfg.credential_path, cfg.web_key):
        if p.exists():
            os.chmod(p, 0o600)
            os.chown(p, uid, gid)
            say(f"{p}: owner {USER}, mode 0600")
    for p in (cfg.database, cfg.database.with_name(cfg.database.name + "-wal"),
              cfg.database.with_name(cfg.database.name + "-shm")):
        if p.exists():
            os.chown(p, uid, gid)


def _systemctl(*args: str) -> None:
    done = subprocess.run([shutil.which("systemctl") or "systemctl", *args],
                          capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise InstallError(f"systemctl {' '.join(args)} failed: {done.stderr.strip()}")
