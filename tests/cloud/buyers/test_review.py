"""Manual review of documents no service checks: photos checked by content and size, kept
sealed, decided by customer service on pages in English and Chinese with confirmation, every
step audited, and deleted after the retention period."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from PIL import Image

from cloud.buyers.identities import identity_state, request_verification
from cloud.buyers.identity_errors import IdentityError
from cloud.buyers.photos import MAX_BYTES
from cloud.buyers.review import (
    KEEP_DAYS,
    decide_review,
    delete_decided_photos,
    photo,
    review_queue,
    upload_photo,
)
from cloud.buyers.tables import identity_photos
from cloud.core.audit import audit_log
from cloud.staff.staff import create_staff
from tests.cloud.buyers.conftest import resident_id
from tests.cloud.pagekit import PASSWORD, build_hub, post, text

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
BUYER = "buyer:7"


def image(kind: str = "JPEG", size: tuple[int, int] = (64, 40)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(out, kind)
    return out.getvalue()


def passport(engine, number: str = "E12345678", name: str = "John Smith") -> int:
    with engine.begin() as conn:
        return request_verification(conn, name=name, doc_type="passport", number=number,
                                    now=NOW)


def upload(engine, identity_id: int, data: bytes, **kw) -> None:
    with engine.begin() as conn:
        upload_photo(conn, identity_id, data, actor=BUYER, now=NOW, **kw)


def refusal(engine, identity_id: int, data: bytes, **kw) -> str:
    with pytest.raises(IdentityError) as e:
        upload(engine, identity_id, data, **kw)
    return e.value.code


def actions(engine, identity_id: int) -> list[str]:
    with engine.connect() as conn:
        return conn.execute(sa.select(audit_log.c.action).where(
            audit_log.c.subject == f"identity:{identity_id}").order_by(audit_log.c.id)
        ).scalars().all()


def test_a_photo_is_checked_by_its_content_and_size(engine):
    identity_id = passport(engine)
    jpeg = image()
    assert refusal(engine, identity_id, b"GIF89a" + jpeg[6:]) == "photo_type_refused"
    assert refusal(engine, identity_id, b"<svg onload=alert(1)>") == "photo_type_refused"
    assert refusal(engine, identity_id, b"") == "photo_type_refused"
    # the right first bytes are not enough: it must decode as that image, to its end
    assert refusal(engine, identity_id, b"\x89PNG\r\n\x1a\n" + b"\0" * 100) == "photo_unreadable"
    assert refusal(engine, identity_id, jpeg[:len(jpeg) // 2]) == "photo_unreadable"
    # a small file that would decode to a huge image (a decompression bomb)
    bomb = io.BytesIO()
    Image.new("1", (8000, 6000)).save(bomb, "PNG")
    assert len(bomb.getvalue()) < MAX_BYTES
    assert refusal(engine, identity_id, bomb.getvalue()) == "photo_unreadable"
    assert refusal(engine, identity_id, image(), max_bytes=len(jpeg) - 1) == "photo_too_large"
    assert refusal(engine, identity_id, jpeg + b"\0" * (MAX_BYTES - len(jpeg) + 1)) \
        == "photo_too_large"
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(identity_photos)).scalar() == 0
    upload(engine, identity_id, image("PNG"))
    with engine.connect() as conn:
        assert photo(conn, identity_id)[0] == "image/png"


def test_a_photo_is_kept_sealed_and_opens_as_sent(engine):
    identity_id = passport(engine)
    jpeg = image()
    upload(engine, identity_id, jpeg)
    with engine.connect() as conn:
        sealed = conn.execute(sa.select(identity_photos.c.sealed_photo)).scalar()
        assert sealed.startswith("s1:") and jpeg[:200].hex() not in sealed
        assert photo(conn, identity_id) == ("image/jpeg", jpeg)
    assert actions(engine, identity_id) == ["identity.photo_uploaded"]


def test_only_an_identity_waiting_for_review_takes_a_photo(engine):
    with engine.begin() as conn:
        identity_id = request_verification(conn, name="张三", doc_type="resident_id",
                                           number=resident_id(), now=NOW)
    assert refusal(engine, identity_id, image()) == "identity_not_in_review"
    assert refusal(engine, 999, image()) == "unknown_identity"


def test_approving_and_refusing_are_decided_once_and_audited(engine):
    a, b = passport(engine, "E11111111"), passport(engine, "E22222222", "Mary Major")
    with engine.begin() as conn, pytest.raises(IdentityError) as e:
        decide_review(conn, a, "approve", actor="staff:1", now=NOW)
    assert e.value.code == "photo_missing"
    upload(engine, a, image())
    upload(engine, b, image("PNG"))
    with engine.connect() as conn:
        assert [(w.id, w.name, w.number) for w in review_queue(conn)] == [
            (a, "J*** S****", "E1*****11"), (b, "M*** M****", "E2*****22")]
    with engine.begin() as conn, pytest.raises(IdentityError) as e:
        decide_review(conn, b, "refuse", actor="staff:1", reason=" no ", now=NOW)
    assert e.value.code == "review_reason_required"
    with engine.begin() as conn:
        assert decide_review(conn, a, "approve", actor="staff:1", now=NOW) == "verified"
        assert decide_review(conn, b, "refuse", actor="staff:1",
                             reason="the photo shows another name", now=NOW) == "refused"
    with engine.begin() as conn, pytest.raises(IdentityError) as e:
        decide_review(conn, a, "refuse", actor="staff:1", reason="changed my mind", now=NOW)
    assert e.value.code == "identity_not_in_review"
    assert actions(engine, a) == ["identity.photo_uploaded", "identity.review_approved"]
    with engine.connect() as conn:
        refused = conn.execute(sa.select(audit_log).where(
            audit_log.c.action == "identity.review_refused")).one()
        assert (refused.actor, refused.before, refused.after) == (
            "staff:1", {"state": "review"},
            {"state": "refused", "reason": "the photo shows another name"})
        assert review_queue(conn) == []
    # refused by a person: the buyer may send another photo, and waits again
    upload(engine, b, image())
    with engine.connect() as conn:
        assert identity_state(conn, b) == "review"


def test_a_photo_is_deleted_when_its_retention_ends_after_the_decision(engine):
    decided, waiting = passport(engine, "E11111111"), passport(engine, "E22222222")
    upload(engine, decided, image())
    upload(engine, waiting, image())
    with engine.begin() as conn:
        decide_review(conn, decided, "approve", actor="staff:1", now=NOW)
    with engine.begin() as conn:
        assert delete_decided_photos(conn, NOW + timedelta(days=KEEP_DAYS, seconds=-1)) == 0
    with engine.begin() as conn:
        assert delete_decided_photos(conn, NOW + timedelta(days=KEEP_DAYS)) == 1
    with engine.begin() as conn:
        assert delete_decided_photos(conn, NOW + timedelta(days=365)) == 0
    with engine.connect() as conn:
        assert photo(conn, decided) is None
        assert photo(conn, waiting) is not None          # undecided: kept
        assert identity_state(conn, decided) == "verified"
    assert actions(engine, decided)[-1] == "identity.photo_deleted"


# -- the pages ---------------------------------------------------------------------------


@pytest.fixture
def hub(hub_url):
    hub = build_hub(hub_url)
    with hub.engine.begin() as conn:
        hub.staff["service"] = create_staff(conn, "service-user", PASSWORD, "service",
                                            actor="test")
    yield hub
    hub.engine.dispose()


def test_customer_service_reviews_with_confirmation_on_the_pages(hub):
    identity_id = passport(hub.engine)
    jpeg = image()
    upload(hub.engine, identity_id, jpeg)
    c = hub.client("service")
    page = text(c.get("/identities/review"))
    assert "J*** S****" in page and "John Smith" not in page
    case = c.get(f"/identities/{identity_id}")
    assert case.status_code == 200 and "John Smith" in text(case) and "E12345678" in text(case)
    shown = c.get(f"/identities/{identity_id}/photo")
    assert (shown.data, shown.content_type, shown.headers["X-Content-Type-Options"]) == (
        jpeg, "image/jpeg", "nosniff")
    confirm = text(c.get(f"/identities/{identity_id}/refuse"))
    assert 'id="confirm-refuse"' in confirm
    where = f"/identities/{identity_id}/refuse"
    r = post(c, where, {"reason": "x"}, page=where)
    assert r.status_code == 303
    assert "say why the document is refused" in text(c.get(where)).lower()
    r = post(c, where, {"reason": "the photo is blurred"}, page=where)
    assert r.status_code == 303 and r.headers["Location"].endswith("/identities/review")
    with hub.engine.connect() as conn:
        assert identity_state(conn, identity_id) == "refused"
    done = actions(hub.engine, identity_id)
    assert [a for a in done if a != "identity.case_opened"] == [
        "identity.photo_uploaded", "identity.review_refused"]
    assert "identity.case_opened" in done      # opening a case with the name in full is audited
    with hub.engine.connect() as conn:
        who = conn.execute(sa.select(audit_log.c.actor).where(
            audit_log.c.action == "identity.review_refused")).scalar()
    assert who == f"staff:{hub.staff['service']}"


def test_the_review_pages_are_in_chinese_and_closed_to_other_roles(hub):
    identity_id = passport(hub.engine)
    upload(hub.engine, identity_id, image())
    sales = hub.client("sales")
    for path in ("/identities/review", f"/identities/{identity_id}",
                 f"/identities/{identity_id}/photo", f"/identities/{identity_id}/approve"):
        assert sales.get(path).status_code == 403, path
    c = hub.client("service")
    post(c, "/lang", {"lang": "zh"}, page="/identities/review")
    page = text(c.get("/identities/review"))
    assert "实名审核" in page and "护照" in page
    where = f"/identities/{identity_id}/approve"
    assert "确定通过此证件吗" in text(c.get(where))
    r = post(c, where, {}, page=where)
    assert r.status_code == 303
    assert "证件已通过" in text(c.get("/identities/review"))
    with hub.engine.connect() as conn:
        assert identity_state(conn, identity_id) == "verified"
