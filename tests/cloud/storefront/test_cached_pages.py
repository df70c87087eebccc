"""The page cache in front of the app: it keeps only what a view marked, under /shop/, for
as long as the mark says, answers GET and HEAD from memory (304 to a client with the ETag),
and passes everything else through untouched."""

from __future__ import annotations

from werkzeug.test import Client
from werkzeug.wrappers import Request, Response

from cloud.storefront.cached_pages import KEEP_HEADER, PageCache


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _app(calls: list[str]):
    @Request.application
    def app(request: Request) -> Response:
        calls.append(f"{request.method} {request.full_path}")
        r = Response(f"page {len(calls)}", mimetype="text/html")
        if request.path.startswith(("/shop/en/kept", "/shop/en/cookie")):
            r.headers[KEEP_HEADER] = "1.0"
            r.add_etag(weak=True)
            r.headers["Cache-Control"] = "public, max-age=1"
        if request.path != "/shop/en/kept":
            r.set_cookie("visit", str(len(calls)))
        return r
    return app


def test_a_marked_page_is_kept_for_its_time_and_its_mark_never_leaves():
    calls, clock = [], Clock()
    client = Client(PageCache(_app(calls), clock))
    first = client.get("/shop/en/kept?q=1")
    assert first.get_data(as_text=True) == "page 1" and KEEP_HEADER not in first.headers
    again = client.get("/shop/en/kept?q=1")
    assert again.get_data(as_text=True) == "page 1" and calls == ["GET /shop/en/kept?q=1"]
    assert again.headers["ETag"] == first.headers["ETag"]
    assert client.get("/shop/en/kept?q=2").get_data(as_text=True) == "page 2"  # another page
    clock.now += 1.0
    assert client.get("/shop/en/kept?q=1").get_data(as_text=True) == "page 3"


def test_a_kept_page_answers_head_and_304():
    calls, clock = [], Clock()
    client = Client(PageCache(_app(calls), clock))
    etag = client.get("/shop/en/kept").headers["ETag"]
    not_modified = client.get("/shop/en/kept", headers={"If-None-Match": etag})
    assert not_modified.status_code == 304 and not_modified.data == b""
    assert not_modified.headers["ETag"] == etag and "Set-Cookie" not in not_modified.headers
    head = client.head("/shop/en/kept")
    assert head.status_code == 200 and head.data == b""
    assert client.get("/shop/en/kept", headers={"If-None-Match": 'W/"other"'}
                      ).get_data(as_text=True) == "page 1"
    assert len(calls) == 1


def test_unmarked_pages_posts_and_other_addresses_pass_through():
    calls, clock = [], Clock()
    client = Client(PageCache(_app(calls), clock))
    for _ in range(2):
        client.get("/shop/en/account")
        client.post("/shop/en/kept")
        client.get("/login")
    assert len(calls) == 6
    # a POST to a kept address is never answered from memory, nor stored
    client.get("/shop/en/kept")
    client.post("/shop/en/kept")
    assert calls[-1] == "POST /shop/en/kept?"


def test_a_page_that_sets_a_cookie_is_never_kept():
    calls, clock = [], Clock()
    client = Client(PageCache(_app(calls), clock))
    assert "visit=1" in client.get("/shop/en/cookie").headers["Set-Cookie"]
    assert "visit=2" in client.get("/shop/en/cookie").headers["Set-Cookie"]
    assert len(calls) == 2
