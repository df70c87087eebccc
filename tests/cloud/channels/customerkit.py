"""The order hub with contract customers, their representatives and quotas; for the contract
customers' tests (both databases)."""

from __future__ import annotations

from unittest import mock

import sqlalchemy as sa

from cloud.channels import customers
from cloud.channels.customers import Rep
from cloud.ledger import chart
from tests.cloud.orderkit import NOW, OrderHub, build
from tests.cloud.pagekit import PASSWORD, _hashed


def add_customer(conn: sa.Connection, code: str) -> int:
    return customers.create_customer(conn, code, f"Customer {code}",
                                     ("Wang Fang", "13800138000"), "t", NOW)


def add_rep(conn: sa.Connection, customer_id: int, username: str) -> Rep:
    """A representative (the password hashed quickly, as the page tests' staff are)."""
    with mock.patch.object(customers, "hash_password", _hashed):
        rep_id = customers.add_rep(conn, customer_id, username, username.title(), PASSWORD,
                                   "t", NOW)
    code = customers.customer(conn, customer_id).code
    return Rep(rep_id, customer_id, code, username, username.title())


def customer_hub(url: str, codes: tuple[str, ...] = ("ACME", "BETA")):
    """The order hub with contract customers (by code: (id, its first representative))."""
    hub = build(url)
    made = {}
    with hub.engine.begin() as conn:
        chart.ensure(conn, chart.clearing("offline"), now=NOW)
        for code in codes:
            cid = add_customer(conn, code)
            made[code] = (cid, add_rep(conn, cid, f"{code.lower()}-rep"))
    return hub, made


def customer_sample(conn: sa.Connection, now) -> None:
    """A contract customer with a representative, a notice and a holder import: customer 1
    exists (the page fuzz's)."""
    cid = customers.create_customer(conn, "FUZZ", "Fuzz Customer", ("Li Lei", "13900000000"),
                                    "test", now)
    with mock.patch.object(customers, "hash_password", _hashed):
        customers.add_rep(conn, cid, "fuzz-rep", "Fuzz Rep", PASSWORD, "test", now)
    customers.post_notice(conn, cid, "Welcome", "Book early.", "test", now)


__all__ = ["NOW", "OrderHub", "PASSWORD", "add_customer", "add_rep", "customer_hub",
           "customer_sample"]
