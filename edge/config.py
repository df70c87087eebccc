"""The appliance's configuration file: every setting declared once, unknown keys refused.

The file is TOML (``/etc/wicket/edge.toml`` unless ``--config`` or ``WICKET_CONFIG`` names
another). It holds what must not live in the database: above all the key that seals holder
data, so that a copied database file alone reveals no names or document numbers.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PATH = Path("/etc/wicket/edge.toml")
ENV_VAR = "WICKET_CONFIG"


@dataclass(frozen=True)
class Setting:
    name: str
    type: type
    default: Any
    help: str


SETTINGS: tuple[Setting, ...] = (
    Setting(
        "database",
        str,
        "/var/lib/wicket/edge.db",
        "Path of the appliance's SQLite database; a relative path is taken from the "
        "directory of this file.",
    ),
    Setting(
        "holder_key",
        str,
        None,
        "Base64 key that seals holder names and document numbers in the database and keys "
        "the document-number index. Generated on the appliance, never sent anywhere; losing "
        "it makes the holder data unreadable (a full sync restores it).",
    ),
    Setting(
        "log_level",
        str,
        "INFO",
        "Log level of the appliance's services: DEBUG, INFO, WARNING or ERROR.",
    ),
    Setting(
        "web_bind",
        str,
        "127.0.0.1:8000",
        "Address and port the local web pages (`wicket-edge web`) listen on. The default "
        "answers only on the appliance itself; use e.g. 0.0.0.0:8000 to serve the venue network.",
    ),
    Setting(
        "web_workers",
        int,
        2,
        "Number of web worker processes.",
    ),
    Setting(
        "web_threads",
        int,
        8,
        "Request threads per web worker process.",
    ),
    Setting(
        "web_tls",
        str,
        "auto",
        "HTTPS for the local web pages: auto (HTTPS unless web_bind is a loopback address), "
        "on, or off (plain HTTP, for tests and a demo on one machine).",
    ),
    Setting(
        "web_cert",
        str,
        "web-cert.pem",
        "PEM certificate the web pages are served with; a relative path is taken from the "
        "directory of this file. `wicket-edge init` makes a self-signed one when neither it "
        "nor web_key exists; point both at a venue's own certificate to use that instead.",
    ),
    Setting(
        "web_key",
        str,
        "web-key.pem",
        "PEM private key of web_cert (owner-only); a relative path is taken from the "
        "directory of this file.",
    ),
    Setting(
        "web_tls_names",
        str,
        "",
        "More host names and IP addresses, comma-separated, for the self-signed certificate "
        "to name beside the host name, localhost and the appliance's own addresses.",
    ),
    Setting(
        "web_idle_minutes",
        int,
        30,
        "A staff session ends after this many minutes without a request.",
    ),
    Setting(
        "web_session_hours",
        int,
        12,
        "A staff session ends this many hours after the login, however busy.",
    ),
    Setting(
        "password_max_age_days",
        int,
        180,
        "A staff password must be changed after this many days (0: never).",
    ),
    Setting(
        "sync_revocations_s",
        float,
        15.0,
        "Seconds between pulls of the revocation stream (refunds and voids), which runs on "
        "its own, more often than the full allowlist.",
    ),
    Setting(
        "sync_allowlist_s",
        float,
        60.0,
        "Seconds between pulls of allowlist changes from the hub.",
    ),
    Setting(
        "sync_entries_s",
        float,
        10.0,
        "Seconds between pushes of recorded entries to the hub.",
    ),
    Setting(
        "heartbeat_s",
        float,
        60.0,
        "Seconds between heartbeats (device health, cursors, queue depth, clock) to the hub.",
    ),
    Setting(
        "sync_backoff_max_s",
        float,
        300.0,
        "Longest wait between attempts while the hub is down; waits start at one second and "
        "double, with jitter, up to this.",
    ),
    Setting(
        "hub_timeout_s",
        float,
        30.0,
        "Seconds the sync agent waits for the hub to connect or answer before it counts the "
        "attempt as failed.",
    ),
    Setting(
        "sync_page_size",
        int,
        2000,
        "Allowlist changes asked for per page (1 to 5000); each page is applied in one "
        "transaction.",
    ),
    Setting(
        "sync_batch_size",
        int,
        1000,
        "Entries sent to the hub per batch (1 to 1000).",
    ),
    Setting(
        "handheld_offline_max_age_min",
        int,
        0,
        "How old a scan a handheld made offline may be when it reaches the appliance, in "
        "minutes; an older one that would have been admitted is refused (EXPIRED) and recorded. "
        "0: no limit beyond its own entry window, which always applies (it must arrive before "
        "the window of the session it counts for closes: the gate's close-after margin after "
        "the session's end; for a ticket without a session, before its validity ends).",
    ),
    Setting(
        "verdict_fade_s",
        float,
        8.0,
        "Seconds a verdict stays on the gate screen and the handheld page before they show "
        "Ready again (0: until the next scan). A help-desk check stays until staff dismiss it.",
    ),
)
_BY_NAME = {s.name: s for s in SETTINGS}
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(Exception):
    """The configuration file is missing, unreadable or has a bad value; the message says which."""


@dataclass(frozen=True)
class Config:
    path: Path
    database: Path
    holder_key: str
    log_level: str
    web_bind: str = "127.0.0.1:8000"
    web_workers: int = 2
    web_threads: int = 8
    web_tls: str = "auto"
    web_cert: Path = Path("web-cert.pem")
    web_key: Path = Path("web-key.pem")
    web_tls_names: str = ""
    web_idle_minutes: int = 30
    web_session_hours: int = 12
    password_max_age_days: int = 180
    sync_revocations_s: float = 15.0
    sync_allowlist_s: float = 60.0
    sync_entries_s: float = 10.0
    heartbeat_s: float = 60.0
    sync_backoff_max_s: float = 300.0
    hub_timeout_s: float = 30.0
    sync_page_size: int = 2000
    sync_batch_size: int = 1000
    handheld_offline_max_age_min: int = 0
    verdict_fade_s: float = 8.0

    @property
    def credential_path(self) -> Path:
        """The hub URL and this appliance's credential, owner-only, beside the config file."""
        return self.path.with_name(self.path.stem + ".hub.json")


def config_path(explicit: str | os.PathLike | None = None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEFAULT_PATH


def _line_of(text: str, key: str) -> int | None:
    for number, line in enumerate(text.splitlines(), start=1):
        if line.split("=", 1)[0].strip() == key:
            return number
    return None


def load(path: str | os.PathLike | None = None) -> Config:
    path = config_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"{path}: no configuration file; create one with `wicket-edge init --config {path}`"
        ) from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the configuration file: {e.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML: {e}") from None
    values: dict[str, Any] = {}
    for key, value in raw.items():
        setting = _BY_NAME.get(key)
        line = _line_of(text, key)
        where = f"{path}:{line}" if line else str(path)
        if setting is None:
            known = ", ".join(_BY_NAME)
            raise ConfigError(f"{where}: unknown setting {key!r} (known settings: {known})")
        if setting.type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, setting.type) or (setting.type is int
                                                   and isinstance(value, bool)):
            raise ConfigError(
                f"{where}: {key} must be a {setting.type.__name__}, not {type(value).__name__}"
            )
        values[key] = value
    for setting in SETTINGS:
        if setting.name not in values:
            if setting.default is None:
                raise ConfigError(f"{path}: the setting {setting.name!r} is required")
            values[setting.name] = setting.default
    level = values["log_level"].upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"{path}: log_level must be one of {', '.join(LOG_LEVELS)}")
    host, _, port = values["web_bind"].rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"{path}: web_bind must be HOST:PORT, e.g. 127.0.0.1:8000")
    for name in ("web_workers", "web_threads", "web_idle_minutes", "web_session_hours"):
        if isinstance(values[name], bool) or values[name] < 1:
            raise ConfigError(f"{path}: {name} must be a whole number of at least 1")
    if isinstance(values["password_max_age_days"], bool) or values["password_max_age_days"] < 0:
        raise ConfigError(f"{path}: password_max_age_days must be 0 or more")
    for name in ("sync_revocations_s", "sync_allowlist_s", "sync_entries_s", "heartbeat_s",
                 "sync_backoff_max_s", "hub_timeout_s"):
        if not 0 < values[name] <= 86400:
            raise ConfigError(f"{path}: {name} must be more than 0 and at most 86400 seconds")
    for name, hi in (("sync_page_size", 5000), ("sync_batch_size", 1000)):
        if not 1 <= values[name] <= hi:
            raise ConfigError(f"{path}: {name} must be between 1 and {hi}")
    if values["handheld_offline_max_age_min"] < 0:
        raise ConfigError(f"{path}: handheld_offline_max_age_min must be 0 or more minutes")
    if not 0 <= values["verdict_fade_s"] <= 3600:
        raise ConfigError(f"{path}: verdict_fade_s must be between 0 and 3600 seconds")
    if values["web_tls"] not in ("auto", "on", "off"):
        raise ConfigError(f"{path}: web_tls must be auto, on or off")
    database, web_cert, web_key = (
        p if p.is_absolute() else path.parent / p
        for p in (Path(values[name]) for name in ("database", "web_cert", "web_key")))
    return Config(path=path, database=database, holder_key=values["holder_key"], log_level=level,
                  web_cert=web_cert, web_key=web_key,
                  **{s.name: values[s.name] for s in SETTINGS
                     if s.name not in ("database", "holder_key", "log_level", "web_cert",
                                       "web_key")})


def disk_paths(config: str | os.PathLike | None) -> list[Path]:
    """What the appliance's programs write: the database, and the configuration file's
    directory (the credential beside it); the paths a disk problem is looked for on."""
    path = config_path(config)
    try:
        return [load(path).database, path]
    except ConfigError:
        return [path]


def render(values: dict[str, Any]) -> str:
    """A commented configuration file holding ``values`` (settings not given keep defaults)."""
    lines = ["# Wicket edge appliance configuration. Owner-only: it holds the holder key.", ""]
    for setting in SETTINGS:
        lines.append("# " + setting.help)
        value = values.get(setting.name, setting.default)
        if value is None:
            continue
        if isinstance(value, str):
            escaped = value.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'{setting.name} = "{escaped}"')
        else:
            lines.append(f"{setting.name} = {value!r}")
        lines.append("")
    return "\n".join(lines)


def write_new(path: Path, values: dict[str, Any]) -> None:
    """Create the file owner-only; never overwrite an existing one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(render(values))

