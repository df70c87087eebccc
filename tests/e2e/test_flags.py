"""A risk flag end to end: a real hub process serves its change log to an appliance synced
through the ``wicket-edge`` command line; an entry flag on a holder refuses their ticket at the
appliance's engine after the next sync, and lifting it (or its expiry, once the worker's task
has run) lets them in again."""

from __future__ import annotations

from datetime import timedelta

from cloud.sales.flag_blocks import send_entry_blocks
from cloud.sales.flags import add_flag, lift_flag
from cloud.sales.tickets import issue_ticket
from edge.reasons import Reason
from sync.sample import resident_id
from sync.timeutil import utcnow

ANNA = resident_id("11010119900307123")
BORIS = resident_id("31010119851111234")


def sync(box) -> None:
    r = box.cli("sync", "--once")
    assert r.returncode == 0, r.stderr


def test_an_entry_flag_reaches_the_appliance_and_lifting_or_expiry_lets_the_holder_in(
        hub, make_appliance):
    venue = hub.add_venue("OSC")
    with hub.begin() as conn:
        anna = [issue_ticket(conn, session_id=venue["session"],
                             holder=("安娜", "resident_id", ANNA)) for _ in range(3)]
        boris = issue_ticket(conn, session_id=venue["session"],
                             holder=("鲍里斯", "resident_id", BORIS))
    box = make_appliance()
    r = box.cli("enroll", "--hub", hub.process.url, "--token", hub.token(venue))
    assert r.returncode == 0, r.stderr
    sync(box)
    box.add_lane()

    with hub.begin() as conn:
        lifted = add_flag(conn, blocks="entry", reason="fight at the last match",
                          actor="staff:1", holder=("resident_id", ANNA))
    sync(box)
    assert box.query("SELECT kind, value FROM blocklist") == [("holder", f"flag:{lifted}")]
    assert ANNA not in str(box.query("SELECT * FROM blocklist"))
    assert box.scan(anna[0].code).reason is Reason.BLOCKED
    assert box.scan(boris.code).reason is Reason.OK  # another holder walks in
    with hub.begin() as conn:
        lift_flag(conn, lifted, "staff:2", "appeal granted")
    sync(box)
    assert box.query("SELECT count(*) FROM blocklist") == [(0,)]
    assert box.scan(anna[1].code).reason is Reason.OK

    soon = utcnow() + timedelta(hours=1)
    with hub.begin() as conn:
        add_flag(conn, blocks="entry", reason="a day's ban", actor="staff:1",
                 holder=("resident_id", ANNA), expires_at=soon)
    sync(box)
    assert box.scan(anna[2].code).reason is Reason.BLOCKED
    with hub.begin() as conn:  # the worker's periodic task, run after the expiry
        assert send_entry_blocks(conn, soon + timedelta(seconds=1)) == 1
    sync(box)
    assert box.query("SELECT count(*) FROM blocklist") == [(0,)]
    assert box.scan(anna[2].code).reason is Reason.OK
