"""Passage results on entries: an admission waiting for its passage blocks the ticket, a
confirmation makes it final, an annulment leaves the ticket unused, and each settles once."""

from __future__ import annotations

from datetime import timedelta

import pytest

from edge import passages
from edge.engine import Scan, ScanKind
from edge.reasons import Reason
from tests.conftest import NOW


def qr(engine, code, lane="N1", at=NOW, passage=True):
    return engine.decide(Scan(ScanKind.QR, code, device_id="cam-1"), lane, at, passage=passage)


def row(conn, entry_id):
    return conn.execute("SELECT admitted, reason, passage, passage_at, detail FROM entries "
                        "WHERE id = ?", (entry_id,)).fetchone()


def test_an_admission_waits_for_its_passage_and_blocks_the_ticket(engine, venue, loaded):
    code = venue.tickets[1001].code
    d = qr(engine, code)
    assert d.reason is Reason.OK and row(loaded, d.entry_id)[:3] == (1, "OK", "pending")
    assert qr(engine, code, "N2", NOW + timedelta(seconds=1)).reason is Reason.ALREADY_ENTERED
    assert passages.confirm(loaded, d.entry_id, NOW + timedelta(seconds=2))
    assert row(loaded, d.entry_id)[:3] == (1, "OK", "passed")
    assert not passages.confirm(loaded, d.entry_id, NOW)  # settled once
    assert not passages.annul(loaded, d.entry_id, NOW, passages.TIMEOUT, "late")
    assert row(loaded, d.entry_id)[:3] == (1, "OK", "passed")


def test_an_annulled_admission_leaves_the_ticket_unused(engine, venue, loaded):
    code = venue.tickets[1002].code
    d = qr(engine, code)
    assert passages.annul(loaded, d.entry_id, NOW + timedelta(seconds=10), passages.TIMEOUT,
                          "no passage within 10 s")
    admitted, reason, passage, at, detail = row(loaded, d.entry_id)
    assert (admitted, reason, passage) == (0, "OK", "timeout") and at is not None
    assert detail == "no passage within 10 s"
    again = qr(engine, code, at=NOW + timedelta(seconds=20))
    assert again.reason is Reason.OK and again.first_entry_at is None


def test_refusals_and_lanes_without_a_turnstile_have_no_passage(engine, venue, loaded):
    code = venue.tickets[1005].code
    plain = qr(engine, code, passage=False)
    assert row(loaded, plain.entry_id)[2] is None
    refused = qr(engine, code, at=NOW + timedelta(seconds=1))
    assert refused.reason is Reason.ALREADY_ENTERED and row(loaded, refused.entry_id)[2] is None


def test_orphans_stand_unconfirmed_and_results_are_checked(engine, venue, loaded):
    d = qr(engine, venue.tickets[1006].code)
    assert passages.settle_orphans(loaded, NOW + timedelta(minutes=1)) == 1
    admitted, _, passage, _, detail = row(loaded, d.entry_id)
    assert (admitted, passage) == (1, "unconfirmed") and "stopped" in detail
    assert passages.settle_orphans(loaded, NOW) == 0
    with pytest.raises(ValueError):
        passages.confirm(loaded, d.entry_id, NOW, passages.TIMEOUT)
    with pytest.raises(ValueError):
        passages.annul(loaded, d.entry_id, NOW, passages.PASSED, "x")


def test_an_entry_made_elsewhere_can_await_its_passage(engine, venue, loaded):
    d = qr(engine, venue.tickets[1009].code, passage=False)
    assert passages.await_passage(loaded, d.entry_id)
    assert not passages.await_passage(loaded, d.entry_id)  # already waiting
    refused = qr(engine, "NOT-A-CODE", passage=False)
    assert not passages.await_passage(loaded, refused.entry_id)  # not an admission
