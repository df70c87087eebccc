"""The JSON APIs' ``Idempotency-Key`` header: a retried write returns the first answer, byte
for byte, and does the work once (the rule: ``cloud/core/idempotency.py``).

A write view decorated with :func:`idempotent` (inside ``requires``, which names the caller)
does its work on :func:`transaction`'s connection: with the header, that is the transaction the
decorator opened, in which the key was claimed and the answer is stored; without it, a
transaction of its own, as before. A refused request (a coded error) rolls back with its key:
refusals are not remembered, a retry is judged again.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from functools import wraps

import sqlalchemy as sa
from flask import current_app, g, request

from cloud.core import idempotency
from cloud.web.http import api_actor, engine

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"


def transaction() -> AbstractContextManager[sa.Connection]:
    """The request's write transaction: the one :func:`idempotent` opened, else a new one."""
    conn = g.get("idempotent_conn")
    return nullcontext(conn) if conn is not None else engine().begin()


def idempotent(view: Callable | None = None, *, apart: Callable | None = None,
               apart_if: Callable[..., bool] | None = None,
               scope: Callable[[], str] | None = None) -> Callable:
    """Honour ``Idempotency-Key`` on a JSON write view (see the module's docstring).

    ``apart`` is work that calls another service (a payment provider) and so must run with no
    transaction open: it runs first, with the view's arguments, and the view finds what it
    returned in ``g.apart``. With a key whose answer is already stored the request is replayed
    without it; otherwise it runs before the key is claimed, so it must be safe to run twice
    (two identical requests at once may both run it; one of them then does the view's work).
    ``apart_if`` (the view's arguments in, a bool out, before anything else) says whether this
    request has such work at all; when it has not, ``g.apart`` is None and the view does
    everything in its one transaction. ``scope`` names whose keys these are (default: the
    staff API token's account; the buyers' API names the signed-in buyer)."""
    if view is None:
        return lambda v: idempotent(v, apart=apart, apart_if=apart_if, scope=scope)

    @wraps(view)
    def wrapper(*args, **kwargs):
        g.apart = None
        if apart is not None and apart_if is not None and not apart_if(*args, **kwargs):
            return _run(view, None, args, kwargs, scope)
        return _run(view, apart, args, kwargs, scope)
    return wrapper


def _run(view: Callable, apart: Callable | None, args: tuple, kwargs: dict,
         owner: Callable[[], str] | None = None):
    """The request, replayed or done (with ``apart`` first, if any)."""
    key = request.headers.get(HEADER)
    if key is None:
        _run_apart(apart, args, kwargs)
        return view(*args, **kwargs)
    if not idempotency.valid_key(key):
        raise idempotency.IdempotencyError("idempotency_key_bad")
    scope = owner() if owner is not None else api_actor()
    path = request.path + (f"?{request.query_string.decode('latin-1')}"
                           if request.query_string else "")
    digest = idempotency.request_hash(request.method, path, request.get_data(cache=True))
    if apart is not None:
        with engine().connect() as conn:
            answer = idempotency.stored(conn, scope, key, digest)
        if answer is not None:
            return _replay(answer)
        _run_apart(apart, args, kwargs)
    with engine().begin() as conn:
        answer = idempotency.begin(conn, scope, key, digest)
        if answer is not None:
            return _replay(answer)
        g.idempotent_conn = conn
        try:
            response = current_app.make_response(view(*args, **kwargs))
        finally:
            g.pop("idempotent_conn", None)
        idempotency.finish(conn, scope, key, response.status_code, response.get_data(),
                           response.content_type)
    return response


def _run_apart(apart: Callable | None, args: tuple, kwargs: dict) -> None:
    if apart is not None:
        g.apart = apart(*args, **kwargs)


def _replay(answer: idempotency.Answer):
    replay = current_app.response_class(answer.body, status=answer.status,
                                        content_type=answer.content_type)
    replay.headers[REPLAYED] = "true"
    return replay
