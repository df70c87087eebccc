"""How fast the hub signs ticket codes, through a PKCS#11 token and with a wrapped key.

For each key store: a hub database (SQLite in a temporary directory) with a venue and a
session and an active key made in that store; then 10,000 bare signatures of a seated ticket's
payload with the active key, and 10,000 tickets issued through ``issue_tickets`` (ten sales of
1,000, each in its own transaction: numbers, codes signed, rows, change log).

    .venv/bin/python bench/hub_signing.py [--module SO --token LABEL --pin PIN] [--count N]

Without --module the token is a throwaway SoftHSM2 token made in the temporary directory
(softhsm2-util must be installed). Figures: signatures_per_s and issue_10k_s through the token
(target: signatures_per_s >= 2000), wrapped_signatures_per_s and wrapped_issue_10k_s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cloud.catalog.events import create_event  # noqa: E402
from cloud.catalog.venues import add_zone, create_venue  # noqa: E402
from cloud.core.db import init_db, make_engine  # noqa: E402
from cloud.fleet.keys import activate_key, active_key, create_key  # noqa: E402
from cloud.inventory.sessions import create_session  # noqa: E402
from cloud.sales.tickets import TicketSpec, issue_tickets  # noqa: E402
from sync import codes  # noqa: E402
from sync.timeutil import utcnow  # noqa: E402

SOFTHSM_MODULES = ("/usr/lib/softhsm/libsofthsm2.so",
                   "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
                   "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so")
TOKEN_ENV = ("WICKET_HUB_PKCS11_MODULE", "WICKET_HUB_PKCS11_TOKEN", "WICKET_HUB_PKCS11_PIN")


def note(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def softhsm_token(work: Path) -> tuple[str, str, str]:
    module = next((m for m in SOFTHSM_MODULES if os.path.exists(m)), None)
    if module is None or shutil.which("softhsm2-util") is None:
        raise SystemExit("bench/hub_signing.py: SoftHSM2 is not installed (apt-get install "
                         "softhsm2), or name a token with --module, --token and --pin")
    (work / "tokens").mkdir()
    conf = work / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {work / 'tokens'}\nobjectstore.backend = file\n"
                    "log.level = ERROR\nslots.removable = false\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(["softhsm2-util", "--init-token", "--free", "--label", "wicket-bench",
                    "--pin", "123456", "--so-pin", "1234567"], check=True, capture_output=True)
    return module, "wicket-bench", "123456"


def measure(url: str, count: int) -> tuple[float, float]:
    """Signatures per second and the seconds to issue 10,000 tickets, on a fresh hub."""
    init_db(url)
    engine = make_engine(url)
    now = utcnow()
    with engine.begin() as conn:
        activate_key(conn, create_key(conn))
        venue = create_venue(conn, "BENCH", "Bench Arena", "", "Asia/Shanghai")
        zone = add_zone(conn, venue, "A", "Floor")
        session = create_session(conn, create_event(conn, "E", "Event"), venue, "Show",
                                 now + timedelta(days=1), now + timedelta(days=1, hours=3),
                                 now + timedelta(hours=23))
        key = active_key(conn)
    body = codes._payload_bytes(codes.TicketPayload(
        ticket_id=123_456, kind=codes.Kind.SESSION, scope=(session,), zone=zone, seat=4321),
        key.key_id)
    t0 = time.perf_counter()
    for _ in range(count):
        key.sign(body)
    per_s = count / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for _ in range(10):
        with engine.begin() as conn:
            issue_tickets(conn, [TicketSpec(session_id=session, zone_id=zone)] * 1000, now)
    issue_s = time.perf_counter() - t0
    engine.dispose()
    return per_s, issue_s


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--module", help="a PKCS#11 library (default: a throwaway SoftHSM2 token)")
    p.add_argument("--token", help="the token's label (with --module)")
    p.add_argument("--pin", help="the token's user PIN (with --module)")
    p.add_argument("--count", type=int, default=10_000, help="bare signatures per store")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-signing-"))
    try:
        token = ((args.module, args.token, args.pin) if args.module
                 else softhsm_token(work))
        os.environ.update(dict(zip(TOKEN_ENV, token, strict=True)))
        note(f"token {token[1]} ({token[0]}): {args.count} signatures, 10,000 tickets")
        per_s, issue_s = measure(f"sqlite:///{work / 'token.db'}", args.count)
        for name in TOKEN_ENV:
            del os.environ[name]
        note("wrapped key: the same")
        wrapped_per_s, wrapped_issue_s = measure(f"sqlite:///{work / 'wrapped.db'}", args.count)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"signatures_per_s: {per_s:.0f}")
    print(f"issue_10k_s: {issue_s:.2f}")
    print(f"wrapped_signatures_per_s: {wrapped_per_s:.0f}")
    print(f"wrapped_issue_10k_s: {wrapped_issue_s:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
