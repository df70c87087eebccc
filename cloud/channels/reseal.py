"""The channels' part of a data key rotation (``wicket-hub rotate-data-key``): the partners'
API key and webhook secrets and the partners' and contract customers' contacts sealed again
under the current key, a batch at a time. As :func:`cloud.sales.holders.reseal_holders`, a
batch answers the last id it looked at (None at the end), how many rows it looked at and how
many it changed; values already under the current key are left alone, so a rotation cut short
starts again safely."""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

from cloud.channels.partner_terms import contact_context
from cloud.channels.tables import api_keys, contract_customers, partner_profiles, partner_webhooks
from cloud.core.seal import context, key_id_of, keyring_for

# (table, its id column, its sealed column, what a row's value belongs to)
SEALED: tuple[tuple[sa.Table, str, str, Callable[[int], str]], ...] = (
    (api_keys, "id", "sealed_secret", lambda i: context("api_keys", i, "sealed_secret")),
    (partner_webhooks, "id", "sealed_secret",
     lambda i: context("partner_webhooks", i, "secret")),
    (partner_profiles, "partner_id", "sealed_contact", contact_context),
    (contract_customers, "id", "sealed_contact",
     lambda i: context("contract_customers", i, "contact")),
)


def count_sealed(conn: sa.Connection) -> int:
    """How many rows a pass looks at."""
    return sum(conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()
               for table, *_ in SEALED)


def reseal_channels(conn: sa.Connection, after_id: int, limit: int
                    ) -> tuple[int | None, int, int]:
    """One batch over the sealed values, table after table: ``after_id`` is a position across
    the tables (the table's place in :data:`SEALED` times 2**31, plus the last row's id)."""
    ring = keyring_for(conn)
    index, last = divmod(after_id, 2**31)
    while index < len(SEALED):
        table, id_name, column, where = SEALED[index]
        key, sealed = table.c[id_name], table.c[column]
        rows = conn.execute(sa.select(key, sealed).where(key > last).order_by(key)
                            .limit(limit)).all()
        if rows:
            changed = 0
            for row_id, value in rows:
                if value is None or key_id_of(value) == ring.current_id:
                    continue
                conn.execute(sa.update(table).where(key == row_id).values(
                    {column: ring.seal(ring.open(value, where(row_id)), where(row_id))}))
                changed += 1
            return index * 2**31 + rows[-1][0], len(rows), changed
        index, last = index + 1, 0
    return None, 0, 0
