"""The hub's secret key, which signs the page session cookie.

From ``$WICKET_HUB_SECRET`` (at least 32 characters) if set; otherwise from a file made once,
readable by its owner only: ``<database file>.secret`` next to a SQLite database, or
``hub.secret`` in the instance directory (``$WICKET_HUB_INSTANCE``) for any other database.
The secret is never written to the repository or the database. Gunicorn's workers all read the
same file; when several start at once, exactly one creates it.
"""

from __future__ import annotations

import logging
import os
import secrets
import stat
from pathlib import Path

import sqlalchemy as sa

log = logging.getLogger(__name__)
ENV = "WICKET_HUB_SECRET"
MIN_LENGTH = 32


class SecretError(Exception):
    """The secret cannot be had safely; the message says what to do."""


def secret_path(database_url: str, instance_path: str) -> Path:
    url = sa.engine.make_url(database_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        db = Path(url.database).resolve()
        return db.with_name(db.name + ".secret")
    return Path(instance_path) / "hub.secret"


def _read(path: Path) -> str:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise SecretError(f"{path} is readable by others (mode {stat.filemode(mode)}); "
                          f"make it owner-only: chmod 600 {path}")
    text = path.read_text("ascii").strip()
    if len(text) < MIN_LENGTH:
        raise SecretError(f"{path} holds fewer than {MIN_LENGTH} characters")
    return text


def hub_secret(database_url: str, instance_path: str) -> str:
    env = os.environ.get(ENV)
    if env is not None:
        if len(env) < MIN_LENGTH:
            raise SecretError(f"${ENV} must be at least {MIN_LENGTH} characters")
        return env
    path = secret_path(database_url, instance_path)
    if path.exists():
        return _read(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_urlsafe(48) + "\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)  # atomic, and refuses to replace a file another worker made
            log.info("created the hub secret %s", path)
        except FileExistsError:
            pass
    finally:
        tmp.unlink(missing_ok=True)
    return _read(path)
