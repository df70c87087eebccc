"""What the buyers' tests share: fixed times, the codes the outbox holds for a number (read the
way the messaging area reads them), and a buyer registered the way a client does it."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from cloud.buyers import accounts, codes
from cloud.core.outbox import address_hash, opened, outbox

NOW = datetime(2027, 3, 1, 9, 0, tzinfo=UTC)
MOBILE = "13800138000"
PASSWORD = "correct horse battery staple"
ADDRESS = "203.0.113.7"


def sent(engine: sa.Engine, mobile: str = MOBILE) -> list[tuple[str, dict]]:
    """The (kind, parameters) of every SMS the outbox holds for a number, oldest first."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(outbox).where(
            outbox.c.to_hash == address_hash(conn, "sms", mobile)).order_by(outbox.c.id)).all()
        return [(r.kind, opened(conn, r)[1]) for r in rows]


def last_code(engine: sa.Engine, mobile: str = MOBILE) -> str:
    return sent(engine, mobile)[-1][1]["code"]


def ask(engine: sa.Engine, purpose: str, mobile: str = MOBILE, now: datetime = NOW,
        address: str = ADDRESS, **limits) -> None:
    with engine.begin() as conn:
        codes.ask_code(conn, mobile=mobile, purpose=purpose, address=address,
                       limits=codes.CodeLimits(**limits), now=now)


def new_buyer(engine: sa.Engine, mobile: str = MOBILE, password: str | None = None,
              now: datetime = NOW) -> int:
    ask(engine, "register", mobile, now)
    code = last_code(engine, mobile)
    codes.check_code(engine, mobile=mobile, purpose="register", code=code, now=now)
    with engine.begin() as conn:
        return accounts.register(conn, mobile=mobile, code=code, password=password, now=now)


def mark_verified(engine: sa.Engine, *identity_ids: int) -> None:
    """Say these identities were verified (the verification service's work, done in
    tests/cloud/buyers/test_verification.py against the sandbox)."""
    from cloud.buyers.tables import identities

    with engine.begin() as conn:
        conn.execute(sa.update(identities).where(identities.c.id.in_(identity_ids))
                     .values(state="verified"))
