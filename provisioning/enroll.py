"""``wicket-provision enroll``: from a bare box and a token to an enrolled, synced appliance.

The order is chosen so that a refusal leaves nothing behind: the hub is reached and the clock
compared with it before the token is spent or a file is written; the configuration and the
database are created next (and removed again if the hub then refuses the token); the
credential is kept only once the hub's answer, and its clock, are accepted.
"""

from __future__ import annotations

import email.utils
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from edge import audit
from edge import config as config_mod
from edge import db as db_mod
from edge.cli import initialise
from edge.holders import HolderVault
from edge.uplink.agent import Agent, HubLink, NotEnrolled, enroll, load_link
from sync.client import API, HubError, HubUnavailable, Unauthorized
from sync.credentials import WeakSecret, check_token
from sync.timeutil import from_iso

EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3
EXIT_BAD_TOKEN = 4
EXIT_EXPIRED_TOKEN = 5
EXIT_USED_TOKEN = 6
EXIT_CLOCK = 7
EXIT_ENROLLED = 8
EXIT_SYNC_FAILED = 9
MAX_SKEW_S = 120.0
CLOCK_FIX = ("set the clock and keep it synchronised: `timedatectl set-ntp true` (or "
             "`timedatectl set-time 'YYYY-MM-DD HH:MM:SS'` without network time), then "
             "enroll again")


class ProvisionError(Exception):
    """A refusal with its exit status; the message says what is wrong and what to do."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Ticket:
    hub: str
    token: str


def parse_qr(payload: str) -> Ticket:
    """The JSON the hub shows as a QR code: ``{"v":1,"hub":URL,"token":T}``."""
    try:
        data = json.loads(payload)
    except ValueError:
        raise ProvisionError("the QR payload is not JSON; scan the code the hub's appliance "
                             "page shows, or use --hub URL --token TOKEN", EXIT_BAD_INPUT) from None
    if not isinstance(data, dict) or data.get("v") != 1:
        raise ProvisionError("the QR payload is not a version 1 enrollment code "
                             "({\"v\":1,\"hub\":…,\"token\":…})", EXIT_BAD_INPUT)
    hub, token = data.get("hub"), data.get("token")
    if not isinstance(hub, str) or not isinstance(token, str) or not hub or not token:
        raise ProvisionError("the QR payload lacks the hub's address or the token",
                             EXIT_BAD_INPUT)
    return check_ticket(hub, token)


def check_ticket(hub: str, token: str) -> Ticket:
    hub = hub.strip().rstrip("/")
    token = token.strip()
    if not hub.startswith(("http://", "https://")):
        raise ProvisionError(f"the hub's address must start with https:// (or http://), "
                             f"not {hub!r}", EXIT_BAD_INPUT)
    if not token:
        raise ProvisionError("the enrollment token is empty", EXIT_BAD_INPUT)
    try:
        check_token(token)  # a typo or a made-up token is refused before the hub is asked
    except WeakSecret as e:
        raise ProvisionError(f"{e}. Fix: check the token (copy it again, or scan the QR "
                             "code the hub's Appliances page shows)", EXIT_BAD_TOKEN) from None
    return Ticket(hub, token)


def hub_clock_skew(hub: str, timeout: float) -> float:
    """Seconds this box's clock is ahead of the hub's (negative: behind), from the ``Date``
    header of an unauthenticated request that spends nothing; raises when the hub is out of
    reach. One-second resolution, ample for a limit of minutes."""
    url = hub + API + "/allowlist"
    sent = time.time()
    try:
        r = requests.get(url, timeout=timeout)
    except requests.RequestException as e:
        raise ProvisionError(f"cannot reach the hub at {hub} ({type(e).__name__}); check the "
                             "address, the network cable and that the hub is up",
                             EXIT_UNREACHABLE) from None
    back = time.time()
    r.close()
    if r.status_code >= 500:
        raise ProvisionError(f"the hub at {hub} answered {r.status_code}; try again later",
                             EXIT_UNREACHABLE)
    date = r.headers.get("Date")
    if r.status_code != 401 or not date:
        raise ProvisionError(f"{hub} does not answer like a Wicket hub (HTTP {r.status_code} "
                             f"at {API}/allowlist); check the address", EXIT_UNREACHABLE)
    hub_time = email.utils.parsedate_to_datetime(date).timestamp()
    return (sent + back) / 2 - hub_time


def refuse_skew(skew_s: float, limit_s: float) -> None:
    if abs(skew_s) > limit_s:
        way = "ahead of" if skew_s > 0 else "behind"
        raise ProvisionError(
            f"this appliance's clock is {abs(skew_s):.0f} s {way} the hub's (the limit is "
            f"{limit_s:.0f} s): entries would carry wrong times and tickets would be judged "
            f"against the wrong hour. Fix: {CLOCK_FIX}", EXIT_CLOCK)


def credential_path(path: Path) -> Path:
    """Where the hub credential of the configuration at ``path`` lives (see edge.config)."""
    return config_mod.Config(path=path, database=path, holder_key="",
                             log_level="INFO").credential_path


def run(config_arg: str | None, ticket: Ticket, max_skew_s: float = MAX_SKEW_S,
        say=print, progress=None) -> int:
    path = config_mod.config_path(config_arg)
    cred = credential_path(path)
    if cred.exists():
        try:
            link = load_link(config_mod.load(path))
            who = f"appliance {link.appliance_id} of {link.hub_url}"
        except (config_mod.ConfigError, NotEnrolled) as e:
            who = f"an unreadable credential ({type(e).__name__})"
        raise ProvisionError(f"this box is already enrolled ({who}; {cred}); run "
                             f"`wicket-provision reset` first to enroll it anew", EXIT_ENROLLED)
    timeout = 30.0
    if path.exists():
        timeout = config_mod.load(path).hub_timeout_s
    refuse_skew(hub_clock_skew(ticket.hub, timeout), max_skew_s)

    tls_files = [p for p in _tls_files(path) if not p.exists()]
    cfg, made_config, made_db = initialise(path, explicit=config_arg is not None, say=say)
    conn = db_mod.connect(cfg.database)
    link: HubLink | None = None
    try:
        def check(answer: dict) -> None:
            try:
                server = from_iso(str(answer.get("server_time"))).timestamp()
            except ValueError:
                return  # an older hub: the Date header was checked already
            try:
                refuse_skew(time.time() - server, max_skew_s)
            except ProvisionError as e:
                raise ProvisionError(f"{e} (the clock moved during the enrollment and the "
                                     "token is spent: register the appliance again on the hub "
                                     "for a new one)", EXIT_CLOCK) from None

        try:
            link = enroll(cfg, conn, ticket.hub, ticket.token, check=check)
        except Unauthorized as e:
            code = {"token_expired": EXIT_EXPIRED_TOKEN, "token_used": EXIT_USED_TOKEN}.get(
                e.code, EXIT_BAD_TOKEN)
            fix = {"token_expired": "register the appliance again on the hub's Appliances "
                                    "page for a fresh token",
                   "token_used": "each token enrolls one box once; register the appliance "
                                 "again on the hub for a new token"}.get(
                e.code, "check the token (copy it again, or scan the QR code); the hub "
                        "forgets a token once it is used, so a spent token reads the same: "
                        "register the appliance again on the hub for a new one")
            raise ProvisionError(f"{e}. Fix: {fix}", code) from None
        except HubUnavailable as e:
            raise ProvisionError(f"{e}; try again when the hub answers", EXIT_UNREACHABLE
                                 ) from None
        except HubError as e:
            raise ProvisionError(f"the hub refused the enrollment: {e}", EXIT_BAD_TOKEN
                                 ) from None
        audit.record(conn, "cli:wicket-provision", "appliance.enroll", link.hub_url,
                     {"appliance_id": link.appliance_id, "venue_id": link.venue_id})
        say(f"enrolled as appliance {link.appliance_id} of venue {link.venue_id} at "
            f"{link.hub_url}; credential kept in {cfg.credential_path} (owner-only)")
        return _first_sync(cfg, conn, link, say, progress)
    finally:
        conn.close()
        if link is None:
            _undo(cfg, made_config, made_db)
            for p in tls_files:
                p.unlink(missing_ok=True)


def _tls_files(path: Path) -> list[Path]:
    """The web certificate and key the configuration at ``path`` names (or will name)."""
    if path.exists():
        cfg = config_mod.load(path)
        return [cfg.web_cert, cfg.web_key]
    defaults = {s.name: s.default for s in config_mod.SETTINGS}
    return [path.parent / defaults["web_cert"], path.parent / defaults["web_key"]]


def _undo(cfg: config_mod.Config, made_config: bool, made_db: bool) -> None:
    """Remove what this run created before the enrollment failed."""
    if made_db:
        for p in (cfg.database, cfg.database.with_name(cfg.database.name + "-wal"),
                  cfg.database.with_name(cfg.database.name + "-shm")):
            p.unlink(missing_ok=True)
    if made_config:
        cfg.path.unlink(missing_ok=True)


def _first_sync(cfg, conn, link: HubLink, say, progress) -> int:
    agent = Agent(cfg, conn, HolderVault(cfg.holder_key), link, progress=progress)
    try:
        applied = agent.step("allowlist")
        failures = agent.run_once()
    except HubError as e:
        failures = [("allowlist", e)]
        applied = 0
    finally:
        agent.client.close()
    if progress is not None:
        progress(None, None)
    if failures:
        for stream, e in failures:
            say(f"first sync: {stream} failed: {e}")
        say("the appliance is enrolled but not yet synced; the sync service retries by "
            f"itself, or run `wicket-edge --config {cfg.path} sync --once`")
        return EXIT_SYNC_FAILED
    tickets = conn.execute("SELECT count(*) FROM tickets").fetchone()[0]
    say(f"first full sync done: {applied} changes applied, {tickets} tickets on the appliance")
    say("next:\n"
        "  1. install and start the services:  wicket-provision install\n"
        "  2. create the venue admin's account: wicket-edge create-user --role admin NAME\n"
        f"  3. open the admin page:             http://{cfg.web_bind}/ (set web_bind in "
        f"{cfg.path} to serve the venue network)\n"
        "  4. check the box:                   wicket-provision doctor")
    return 0


class Progress:
    """A progress bar on a terminal; plain lines, one per page, otherwise."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.drawn = False

    def __call__(self, done: int | None, total: int | None) -> None:
        if done is None:
            if self.drawn and self.tty:
                print(file=self.stream, flush=True)
            return
        self.drawn = True
        if self.tty and total:
            width = 30
            filled = min(width, int(width * done / total)) if total else width
            print(f"\rsyncing [{'#' * filled}{'.' * (width - filled)}] {done}/{total} changes",
                  end="", file=self.stream, flush=True)
        else:
            of = f" of {total}" if total else ""
            print(f"synced {done}{of} changes", file=self.stream, flush=True)
