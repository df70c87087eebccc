"""The storefront's command: ``wicket-hub waiting-room SESSION`` shows a session's waiting room
and gives it a rate and burst of its own (``--rate``, ``--burst``), or hands it back to the
hub's settings (``--hub-settings``); ``cloud/cli.py`` parses its arguments."""

from __future__ import annotations

import os
import sys

from cloud.core.db import make_engine
from cloud.storefront import waiting_room as wr
from sync.timeutil import utcnow

ACTOR = "wicket-hub"


def _hub_settings() -> wr.RoomConfig:
    """The hub's settings as ``wicket-hub serve`` reads them (the secret is not needed to
    change a rate)."""
    return wr.room_config(b"", {name: os.environ.get(f"WICKET_HUB_{name}")
                               for name in wr.SETTINGS})


def cmd_waiting_room(args) -> int:
    try:
        config = _hub_settings()
    except wr.QueueError as e:
        sys.stderr.write(f"wicket-hub: {e}\n")
        return 2
    engine = make_engine(args.db)
    now = utcnow()
    try:
        with engine.begin() as conn:
            if args.hub_settings or args.rate is not None or args.burst is not None:
                wr.set_session_room(conn, config, args.session, None if args.hub_settings
                                    else args.rate, None if args.hub_settings else args.burst,
                                    now, ACTOR)
            room = wr.read_room(conn, config, args.session)
    except wr.QueueError as e:
        sys.stderr.write(f"wicket-hub: {e}\n")
        return 2
    finally:
        engine.dispose()
    state = "off" if room.rate <= 0 else f"{room.rate:g} a second"
    sys.stdout.write(f"session {args.session}: waiting room {state}; {room.issued} numbers "
                     f"given, {min(room.issued, int(room.admitted_at(now) + 1e-9))} admitted\n")
    return 0


def add_parsers(sub) -> None:
    s = sub.add_parser("waiting-room", help="show a session's waiting room, or give it a rate "
                                            "of its own (docs/waiting-room.md)")
    s.add_argument("session", type=int, help="the session's id")
    s.add_argument("--rate", type=float, help="queue numbers admitted per second (0: no "
                                              "waiting room for this session)")
    s.add_argument("--burst", type=int, help="how many may pass at once after a quiet moment")
    s.add_argument("--hub-settings", action="store_true",
                   help="follow the hub's WAITING_ROOM_RATE and WAITING_ROOM_BURST again")
    s.set_defaults(func=cmd_waiting_room)
