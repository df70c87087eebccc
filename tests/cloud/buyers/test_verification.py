"""Real-name verification through the sandbox service, a real process: a person is verified
once and reused; the service's refusals, silences and slow answers; answers that are not the
service's own are never believed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from cloud.buyers.identities import (
    ATTEMPTS,
    MAX_NAMES,
    Contact,
    find_identity,
    identity_state,
    is_verified,
    request_verification,
)
from cloud.buyers.identity_errors import IdentityError
from cloud.buyers.tables import identities
from cloud.core.audit import audit_log
from cloud.core.jobs import backoff, jobs, run_one
from cloud.core.outbox import opened, outbox
from cloud.messaging.rendering import DEFAULTS, render
from cloud.sales.tickets import TicketError
from tests.cloud.buyers.conftest import resident_id, tasks_for

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
NAME = "张小三"


def ask(engine, number: str, name: str = NAME, doc_type: str = "resident_id",
        now: datetime = NOW, **kw) -> int:
    with engine.begin() as conn:
        return request_verification(conn, name=name, doc_type=doc_type, number=number,
                                    now=now, **kw)


def state(engine, identity_id: int) -> str:
    with engine.connect() as conn:
        return identity_state(conn, identity_id)


def row(engine, identity_id: int):
    with engine.connect() as conn:
        return conn.execute(sa.select(identities).where(identities.c.id == identity_id)).one()


def job_rows(engine):
    with engine.connect() as conn:
        return conn.execute(sa.select(jobs).order_by(jobs.c.id)).all()


def test_a_match_verifies_the_person_with_the_services_signed_answer(engine, idcheck, tasks):
    number = resident_id()
    identity_id = ask(engine, number)
    assert state(engine, identity_id) == "pending"
    job, outcome = run_one(engine, tasks, "w1", now=NOW)
    assert outcome == "done"
    r = row(engine, identity_id)
    assert (r.state, r.provider, r.attempts, r.refusal) == ("verified", "idcheck", 1, None)
    assert r.answer_ref and r.answer_ref in r.answer and '"signature"' in r.answer
    assert number not in r.answer and NAME not in r.answer and number not in r.sealed_doc_number
    with engine.connect() as conn:
        assert is_verified(conn, identity_id)
        assert conn.execute(sa.select(audit_log.c.action).where(
            audit_log.c.subject == f"identity:{identity_id}")).scalars().all() == [
            "identity.verified"]
    assert [c["behaviour"] for c in idcheck.calls(number)] == ["match"]


def test_a_name_the_register_does_not_hold_for_the_number_is_refused(engine, idcheck, tasks):
    number = resident_id()
    idcheck.register(number, "李四")
    identity_id = ask(engine, number)
    assert run_one(engine, tasks, "w1", now=NOW)[1] == "done"
    r = row(engine, identity_id)
    assert (r.state, r.refusal) == ("refused", "no_match")
    with engine.connect() as conn:
        assert not is_verified(conn, identity_id)


def test_once_per_person_a_second_request_reuses_the_identity_without_a_second_call(
        engine, idcheck, tasks):
    number = resident_id()
    first = ask(engine, number)
    run_one(engine, tasks, "w1", now=NOW)
    # the same person typed otherwise: spaces, a full-width digit, another case of the name
    typed = " ".join([number[:6], number[6:14], number[14:]]).replace(number[0], "１", 1)
    again = ask(engine, typed, name=f" {NAME} ", now=NOW + timedelta(days=3))
    assert again == first
    assert len(job_rows(engine)) == 1
    assert run_one(engine, tasks, "w1", now=NOW + timedelta(days=3)) is None
    assert len(idcheck.calls(number)) == 1
    with engine.connect() as conn:
        assert find_identity(conn, "resident_id", number) == first
        assert conn.execute(sa.select(sa.func.count()).select_from(identities)).scalar() == 1


def test_a_request_while_the_first_is_pending_starts_no_second_job(engine, idcheck, tasks):
    number = resident_id()
    assert ask(engine, number) == ask(engine, number)
    assert len(job_rows(engine)) == 1


def test_one_unavailable_answer_is_retried_after_the_backoff_to_a_match(engine, idcheck, tasks):
    number = resident_id()
    idcheck.script(number, "unavailable")
    identity_id = ask(engine, number)
    assert run_one(engine, tasks, "w1", now=NOW)[1] == "waiting"
    assert (row(engine, identity_id).state, row(engine, identity_id).attempts) == ("pending", 1)
    assert "unavailable" in job_rows(engine)[0].last_error
    assert run_one(engine, tasks, "w1", now=NOW + backoff(1) - timedelta(seconds=1)) is None
    assert run_one(engine, tasks, "w1", now=NOW + backoff(1))[1] == "done"
    assert row(engine, identity_id).state == "verified"
    assert [c["behaviour"] for c in idcheck.calls(number)] == ["unavailable", "match"]


@pytest.mark.parametrize("failure", ["error", "slow"])
def test_a_busy_service_is_retried_and_a_slow_one_waited_for(engine, idcheck, tasks, failure):
    number = resident_id()
    idcheck.script(number, failure)
    identity_id = ask(engine, number)
    outcome = run_one(engine, tasks, "w1", now=NOW)[1]
    assert outcome == ("waiting" if failure == "error" else "done")
    if failure == "error":
        assert "HTTP 503" in job_rows(engine)[0].last_error
        run_one(engine, tasks, "w1", now=NOW + backoff(1))
    assert row(engine, identity_id).state == "verified"


def test_a_service_that_does_not_answer_times_out_and_is_retried(engine, idcheck):
    number = resident_id()
    idcheck.script(number, "silent")
    # an adapter that waits half a second: the silent call is held until released
    tasks = tasks_for({**idcheck.settings, "IDCHECK_TIMEOUT": "0.5"})
    identity_id = ask(engine, number)
    try:
        assert run_one(engine, tasks, "w1", now=NOW)[1] == "waiting"
    finally:
        idcheck.control("POST", "/_sandbox/release")
    assert "Timeout" in job_rows(engine)[0].last_error
    assert row(engine, identity_id).state == "pending"
    assert run_one(engine, tasks, "w1", now=NOW + backoff(1))[1] == "done"
    assert row(engine, identity_id).state == "verified"


@pytest.mark.parametrize("forgery", ["forged", "tampered", "unsigned", "replayed"])
def test_an_answer_that_is_not_the_services_own_is_never_believed(engine, idcheck, tasks,
                                                                   forgery):
    number = resident_id()
    idcheck.register(number, "李四")      # the truth is no match; a forgery says match
    idcheck.script(number, forgery)
    identity_id = ask(engine, number)
    assert run_one(engine, tasks, "w1", now=NOW)[1] == "waiting"
    assert "AnswerRefused" in job_rows(engine)[0].last_error
    r = row(engine, identity_id)
    assert (r.state, r.answer, r.answer_ref) == ("pending", None, None)
    assert run_one(engine, tasks, "w1", now=NOW + backoff(1))[1] == "done"
    assert row(engine, identity_id).state == "refused"


def test_after_its_attempts_an_identity_is_unavailable_and_asking_again_retries(
        engine, idcheck, tasks):
    number = resident_id()
    idcheck.script(number, *["error"] * ATTEMPTS)
    identity_id = ask(engine, number)
    when = NOW
    for attempt in range(1, ATTEMPTS + 1):
        job, outcome = run_one(engine, tasks, "w1", now=when)
        assert outcome == ("waiting" if attempt < ATTEMPTS else "done")
        when += backoff(attempt)
    assert row(engine, identity_id).state == "unavailable"
    assert run_one(engine, tasks, "w1", now=when + timedelta(days=1)) is None
    # a later order asks again: a new round, which the service now answers
    assert ask(engine, number, now=when + timedelta(days=1)) == identity_id
    assert state(engine, identity_id) == "pending"
    assert run_one(engine, tasks, "w1", now=when + timedelta(days=1))[1] == "done"
    r = row(engine, identity_id)
    assert (r.state, r.attempts) == ("verified", ATTEMPTS + 1)


def test_another_name_for_a_verified_document_is_refused_not_a_new_person(
        engine, idcheck, tasks):
    number = resident_id()
    identity_id = ask(engine, number)
    with pytest.raises(IdentityError) as e:
        ask(engine, number, name="王五")        # pending: one question at a time
    assert e.value.code == "identity_name_mismatch"
    run_one(engine, tasks, "w1", now=NOW)
    with pytest.raises(IdentityError) as e:
        ask(engine, number, name="王五")
    assert e.value.code == "identity_name_mismatch"
    assert state(engine, identity_id) == "verified"
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(identities)).scalar() == 1


def test_a_corrected_name_after_a_no_match_asks_again_up_to_a_limit(engine, idcheck, tasks):
    number = resident_id()
    idcheck.register(number, "张晓三")
    identity_id = ask(engine, number)
    run_one(engine, tasks, "w1", now=NOW)
    assert state(engine, identity_id) == "refused"
    assert ask(engine, number) == identity_id       # the same name: the same refusal, no call
    assert len(idcheck.calls(number)) == 1
    names = ["张小山", "张晓叁", "张晓三"]
    for i, name in enumerate(names[:MAX_NAMES - 1]):
        assert ask(engine, number, name=name) == identity_id
        run_one(engine, tasks, "w1", now=NOW + timedelta(minutes=i + 1))
        assert state(engine, identity_id) == "refused"
    with pytest.raises(IdentityError) as e:
        ask(engine, number, name=names[-1])
    assert e.value.code == "identity_too_many_names"
    assert row(engine, identity_id).names_asked == MAX_NAMES


def test_a_bad_document_or_name_is_refused_with_its_code(engine):
    with pytest.raises(TicketError) as e:
        ask(engine, resident_id()[:-1] + "Y")
    assert e.value.code == "document_bad_characters"
    with pytest.raises(IdentityError) as e:
        ask(engine, resident_id(), name="  ")
    assert e.value.code == "identity_name_bad"
    assert job_rows(engine) == []


def test_a_document_no_service_checks_waits_for_review_without_a_job(engine):
    identity_id = ask(engine, "E12345678", name="John Smith", doc_type="passport")
    assert state(engine, identity_id) == "review"
    assert job_rows(engine) == []


def test_the_result_is_said_to_the_contact_the_request_named(engine, idcheck, tasks):
    number = resident_id()
    ask(engine, number, contact=Contact("sms", "138 0013 8000", "zh"))
    run_one(engine, tasks, "w1", now=NOW)
    with engine.connect() as conn:
        message = conn.execute(sa.select(outbox)).one()
        assert message.kind == "verification_result"
        assert opened(conn, message) == ("13800138000", {
            "result": "已通过", "state": "verified", "name": "张*三"})
    assert "13800138000" not in str(job_rows(engine)[0].payload)


@pytest.mark.parametrize("language", ["zh", "en"])
def test_the_result_message_renders_with_the_built_in_words_of_the_contacts_language(
        engine, idcheck, tasks, language):
    refused = resident_id()
    idcheck.register(refused, "李四")
    ask(engine, resident_id(), contact=Contact("sms", "13800138000", language))
    ask(engine, refused, contact=Contact("sms", "13800138001", language))
    assert [run_one(engine, tasks, "w1", now=NOW)[1] for _ in range(2)] == ["done", "done"]
    with engine.connect() as conn:
        said = {opened(conn, m)[0]: render(m.kind, *DEFAULTS[(m.kind, m.language)],
                                           opened(conn, m)[1]).body
                for m in conn.execute(sa.select(outbox))}
    words = {"zh": ("【Wicket】您的实名认证结果：已通过。",
                    "【Wicket】您的实名认证结果：未通过（姓名与证件号码不一致）。"),
             "en": ("[Wicket] Your identity verification: verified.",
                    "[Wicket] Your identity verification: refused (the name does not match the "
                    "document number).")}[language]
    assert said == {"13800138000": words[0], "13800138001": words[1]}


def test_without_a_contact_nothing_is_said(engine, idcheck, tasks):
    ask(engine, resident_id())
    run_one(engine, tasks, "w1", now=NOW)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar() == 0


def test_the_service_refuses_a_request_not_signed_with_the_apps_secret(engine, idcheck,
                                                                        tmp_path):
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(b"0" * 64)
    tasks = tasks_for({**idcheck.settings, "IDCHECK_APP_SECRET": str(wrong)})
    number = resident_id()
    identity_id = ask(engine, number)
    assert run_one(engine, tasks, "w1", now=NOW)[1] == "waiting"
    assert "HTTP 401" in job_rows(engine)[0].last_error
    assert state(engine, identity_id) == "pending"
    assert idcheck.calls(number) == []          # refused before it was looked at


def test_a_service_is_chosen_by_settings_and_an_incomplete_one_stops_the_start(idcheck):
    from cloud.buyers.verification import IdcheckVerifier, identity_settings, make_verifier

    assert make_verifier(identity_settings({}, {})) is None
    env = {f"WICKET_HUB_{k}": v for k, v in idcheck.settings.items()}
    made = make_verifier(identity_settings({"IDCHECK_TIMEOUT": "3"}, env))
    assert isinstance(made, IdcheckVerifier) and made.timeout == 3.0
    with pytest.raises(ValueError, match="IDCHECK_PUBLIC_KEY"):
        make_verifier(identity_settings({"IDCHECK_PROVIDER": "idcheck", "IDCHECK_URL": "x",
                                         "IDCHECK_APP_ID": "a", "IDCHECK_APP_SECRET": "f"}, {}))
    with pytest.raises(ValueError, match="no verification service"):
        make_verifier(identity_settings({"IDCHECK_PROVIDER": "acme"}, {}))
