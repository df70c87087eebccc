"""A buyer sends the photo of a document for review over the buyers' API, on both databases:
their own or a live companion's, only while the identity waits for a review; the body's size
and type checked (a PNG sent as a JPEG refused); kept sealed and audited, and in the review
queue after."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from PIL import Image

from cloud.app import create_app
from cloud.buyers.photos import MAX_BYTES
from cloud.buyers.review import photo, review_queue
from cloud.buyers.tables import identity_photos
from cloud.core.audit import audit_log
from cloud.core.db import init_db
from tests.cloud.buyers.buyerkit import MOBILE, last_code
from tests.cloud.buyers.test_companions import resident_id

OTHER = "13900139000"
ADDRESS = {"REMOTE_ADDR": "203.0.113.7"}


@pytest.fixture
def client(hub_url):
    init_db(hub_url)
    app = create_app({"DATABASE_URL": hub_url, "TESTING": True, "RATELIMIT_ENABLED": False})
    yield app.test_client()
    app.extensions["db"].dispose()


def _engine(client):
    return client.application.extensions["db"]


def image(kind: str = "JPEG") -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (64, 40), (200, 120, 40)).save(out, kind)
    return out.getvalue()


def _buyer(client, mobile: str = MOBILE) -> dict[str, str]:
    """A buyer registered and signed in: the Authorization header of their session."""
    for purpose in ("register", "sign_in"):
        assert client.post("/api/v1/buyer/codes", json={"mobile": mobile, "purpose": purpose},
                           environ_base=ADDRESS).status_code == 202
        body = {"mobile": mobile, "code": last_code(_engine(client), mobile)}
        r = client.post(f"/api/v1/buyer/{'register' if purpose == 'register' else 'sessions'}",
                        json=body, environ_base=ADDRESS)
        assert r.status_code == 201, r.get_json()
    return {"Authorization": f"Bearer {r.get_json()['token']}"}


def _passport_of_mine(client, me, number: str = "E12345678") -> int:
    r = client.post("/api/v1/buyer/me/identity", headers=me,
                    json={"name": "John Smith", "doc_type": "passport", "doc_number": number})
    assert (r.status_code, r.get_json()["verification"]) == (202, "review")
    return r.get_json()["identity_id"]


def _companion(client, me, doc_type: str = "passport", number: str = "E87654321") -> dict:
    r = client.post("/api/v1/buyer/companions", headers=me,
                    json={"name": "Mary Major", "doc_type": doc_type, "doc_number": number})
    assert r.status_code == 201, r.get_json()
    return r.get_json()["companion"]


def _put(client, path: str, data: bytes, headers, media_type: str = "image/jpeg"):
    return client.put(f"/api/v1/buyer{path}", data=data, headers=headers,
                      content_type=media_type)


def _refusal(r) -> tuple[int, str]:
    return r.status_code, r.get_json()["error"]


def _actors(client, identity_id: int) -> list[tuple[str, str]]:
    with _engine(client).connect() as conn:
        return [tuple(r) for r in conn.execute(
            sa.select(audit_log.c.action, audit_log.c.actor).where(
                audit_log.c.subject == f"identity:{identity_id}",
                audit_log.c.action == "identity.photo_uploaded").order_by(audit_log.c.id))]


def test_a_buyer_sends_their_own_photo_and_it_waits_for_review_sealed(client):
    me = _buyer(client)
    identity_id = _passport_of_mine(client, me)
    jpeg = image()
    r = _put(client, "/me/identity/photo", jpeg, me)
    assert (r.status_code, r.get_json()) == (202, {"identity_id": identity_id,
                                                   "verification": "review"})
    with _engine(client).connect() as conn:
        assert [w.id for w in review_queue(conn)] == [identity_id]
        assert photo(conn, identity_id) == ("image/jpeg", jpeg)
        raw = conn.execute(sa.select(identity_photos)).one()
        # the bytes are nowhere in the row as stored, in any spelling
        stored = " ".join(str(v) for v in raw)
        assert jpeg[:64].hex() not in stored and jpeg[:64].hex().upper() not in stored
        assert raw.sealed_photo.startswith("s1:") and raw.media_type == "image/jpeg"
    buyer_id = client.get("/api/v1/buyer/me", headers=me).get_json()["buyer"]["id"]
    assert _actors(client, identity_id) == [("identity.photo_uploaded", f"buyer:{buyer_id}")]
    # a second photo replaces the first
    png = image("PNG")
    assert _put(client, "/me/identity/photo", png, me, "image/png").status_code == 202
    with _engine(client).connect() as conn:
        assert photo(conn, identity_id) == ("image/png", png)
    assert client.put("/api/v1/buyer/me/identity/photo", data=jpeg,
                      content_type="image/jpeg").status_code == 401


def test_a_buyer_sends_their_companions_photo(client):
    me = _buyer(client)
    companion = _companion(client, me)
    assert companion["verification"] == "review"
    r = _put(client, f"/companions/{companion['id']}/photo", image("PNG"), me, "image/png")
    assert (r.status_code, r.get_json()) == (202, {"identity_id": companion["identity_id"],
                                                   "verification": "review"})
    with _engine(client).connect() as conn:
        assert [w.id for w in review_queue(conn)] == [companion["identity_id"]]


def test_another_buyers_or_a_removed_companion_is_not_found(client):
    me = _buyer(client)
    stranger = _buyer(client, OTHER)
    theirs = _companion(client, stranger)
    r = _put(client, f"/companions/{theirs['id']}/photo", image(), me)
    assert r.status_code == 404 and r.get_json()["error"] == "unknown_companion"
    # the same answer as for a companion that never was
    never = _put(client, "/companions/99999/photo", image(), me)
    assert _refusal(never) == (404, "unknown_companion")
    assert client.delete(f"/api/v1/buyer/companions/{theirs['id']}",
                         headers=stranger).status_code == 200
    gone = _put(client, f"/companions/{theirs['id']}/photo", image(), stranger)
    assert _refusal(gone) == (404, "unknown_companion")
    with _engine(client).connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(identity_photos)
                            ).scalar() == 0


def test_only_an_identity_waiting_for_review_takes_a_photo(client):
    me = _buyer(client)
    r = _put(client, "/me/identity/photo", image(), me)
    assert _refusal(r) == (409, "identity_not_named")
    # a resident ID is checked by the service, not from a photo
    companion = _companion(client, me, "resident_id", resident_id(5))
    assert companion["verification"] == "pending"
    r = _put(client, f"/companions/{companion['id']}/photo", image(), me)
    assert _refusal(r) == (409, "identity_not_in_review")
    assert r.get_json()["params"]["state"] == "pending"


def test_the_photo_is_refused_too_big_or_not_an_image_or_not_what_it_says(client):
    me = _buyer(client)
    _passport_of_mine(client, me)
    too_big = image() + b"\0" * MAX_BYTES
    r = _put(client, "/me/identity/photo", too_big, me)
    assert _refusal(r) == (413, "photo_too_large")
    assert r.get_json()["params"] == {"limit": MAX_BYTES}
    r = _put(client, "/me/identity/photo", b"%PDF-1.7 not a photo", me)
    assert _refusal(r) == (422, "photo_type_refused")
    r = _put(client, "/me/identity/photo", image(), me, "application/pdf")
    assert _refusal(r) == (400, "photo_media_type")
    r = _put(client, "/me/identity/photo", image(), me, "application/json")
    assert _refusal(r) == (400, "photo_media_type")
    r = _put(client, "/me/identity/photo", image("PNG"), me, "image/jpeg")
    assert _refusal(r) == (400, "photo_type_mismatch")
    assert r.get_json()["params"] == {"declared": "image/jpeg", "found": "image/png"}
    r = _put(client, "/me/identity/photo", image()[:200], me)
    assert _refusal(r) == (422, "photo_unreadable")
    with _engine(client).connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(identity_photos)
                            ).scalar() == 0
