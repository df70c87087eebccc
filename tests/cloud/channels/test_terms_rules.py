"""Partners' terms on both databases: profiles with the contact sealed and masked, agreed
prices with effective dates (never edited, never in the past, the field at fault named), and
sales codes — unique, bound and unbound, withdrawn, and bound by a supplier only when its
profile allows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from cloud.catalog.venues import create_venue
from cloud.channels import partner_terms as terms
from cloud.channels.partner_terms import TermsError
from cloud.channels.products_admin import add_day_product
from cloud.channels.tables import agreed_prices, partner_profiles
from cloud.core.audit import audit_log
from cloud.ledger.partners import create_partner, partner

NOW = datetime(2026, 7, 1, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


@pytest.fixture
def terms_hub(engine):
    with engine.begin() as conn:
        venue = create_venue(conn, "LAKE", "West Lake", "1 Lake Road", "Asia/Shanghai")
        ids = {"venue": venue,
               "day": add_day_product(conn, "LAKE-DAY", "Lake day ticket", 12000,
                                      venue_id=venue, actor="test"),
               "supplier": create_partner(conn, "SPOT", "Lake Spot", "supplier", 7, "t", NOW),
               "rival": create_partner(conn, "HOTEL", "Lake Hotel", "supplier", 7, "t", NOW),
               "agency": create_partner(conn, "TRAVEL", "Travel Co", "distributor", 7, "t",
                                        NOW),
               "agent": create_partner(conn, "CENTRE", "Service Centre", "agent", 7, "t", NOW)}
    return engine, ids


def test_a_profile_keeps_the_contact_sealed_shows_it_masked_and_audits_no_clear_contact(
        terms_hub):
    engine, ids = terms_hub
    with engine.begin() as conn:
        terms.set_profile(conn, ids["agency"], actor="staff:1", now=NOW,
                          contact_name="Wang Fang", contact_phone="13800138000",
                          contact_email="Wang@Travel.example", address="2 Harbour Street",
                          state="suspended")
        sealed = conn.execute(sa.select(partner_profiles.c.sealed_contact)).scalar()
        assert "13800138000" not in sealed and "Wang" not in sealed
        shown = terms.profile(conn, ids["agency"])
        assert shown["contact"] == {"name": "W********", "phone": "138****8000",
                                    "email": "w****@travel.example"}
        assert terms.profile(conn, ids["agency"], masked=False)["contact"]["phone"] == \
            "13800138000"
        assert shown["address"] == "2 Harbour Street" and partner(conn, ids["agency"]).state \
            == "suspended"
        logged = " ".join(str(r.after) for r in conn.execute(sa.select(audit_log)))
        assert "13800138000" not in logged and "partner.profile" in {
            r.action for r in conn.execute(sa.select(audit_log.c.action))}


BAD_PROFILES = [
    ("contact_phone", {"contact_name": "Li", "contact_phone": "call me",
                       "contact_email": ""}),
    ("contact_email", {"contact_name": "Li", "contact_phone": "", "contact_email": "li@"}),
    ("address", {"address": "x" * 301}),
    ("may_bind_codes", {"may_bind_codes": True}),  # only a supplier binds its own codes
]


def test_a_bad_profile_field_is_refused_by_name_and_nothing_is_stored(terms_hub):
    engine, ids = terms_hub
    refusals = []
    for _field, change in BAD_PROFILES:
        with engine.begin() as conn:
            try:
                terms.set_profile(conn, ids["agency"], actor="t", now=NOW, **change)
                refusals.append(None)
            except TermsError as e:
                refusals.append((e.code, e.params["field"]))
    assert refusals == [("bad_terms_request", field) for field, _ in BAD_PROFILES]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(partner_profiles)
                            ).scalar() == 0


def test_a_price_ends_and_the_next_starts_and_price_at_answers_each_side(terms_hub):
    engine, ids = terms_hub
    agency, day = ids["agency"], ids["day"]
    with engine.begin() as conn:
        first = terms.add_price(conn, agency, product_id=day, amount=10000, currency="CNY",
                                effective_from=NOW, actor="t", now=NOW)
        switch = NOW + 24 * HOUR
        terms.end_price(conn, first, switch, "t", NOW + HOUR)
        terms.add_price(conn, agency, product_id=day, amount=9000, currency="CNY",
                        effective_from=switch, actor="t", now=NOW + HOUR)
        at = lambda moment: terms.price_at(conn, agency, day, at=moment)  # noqa: E731
        assert at(NOW - HOUR) is None
        assert at(NOW) == 10000
        assert at(switch - timedelta(seconds=1)) == 10000
        assert at(switch) == 9000
        assert at(switch + 1000 * HOUR) == 9000
        assert terms.price_at(conn, ids["agent"], day, at=NOW) is None
        assert [r.amount for r in terms.list_prices(conn, agency, at=NOW)] == [10000]
        assert [r.amount for r in terms.list_prices(conn, agency)] == [9000, 10000]


def test_the_latest_started_price_counts_where_two_are_in_force(terms_hub):
    engine, ids = terms_hub
    with engine.begin() as conn:
        terms.add_price(conn, ids["agency"], product_id=ids["day"], amount=10000,
                        effective_from=NOW, actor="t", now=NOW)
        terms.add_price(conn, ids["agency"], product_id=ids["day"], amount=8000,
                        effective_from=NOW + HOUR, actor="t", now=NOW)
        assert terms.price_at(conn, ids["agency"], ids["day"], at=NOW + 2 * HOUR) == 8000


BAD_PRICES = [
    ("effective_from", {"effective_from": NOW - timedelta(seconds=1)}),
    ("effective_from", {"effective_from": datetime(2026, 8, 1)}),  # no time zone
    ("amount", {"amount": -1}),
    ("amount", {"amount": 1.5}),
    ("amount", {"amount": True}),
    ("currency", {"currency": "yuan"}),
    ("product_id", {"product_id": 999999}),
    ("product_id", {"product_id": None}),  # neither a product nor a tier
    ("partner_id", {"partner_id": "supplier"}),  # prices are agreed with sellers only
]


def test_a_price_with_a_bad_field_is_refused_by_name_and_not_stored(terms_hub):
    engine, ids = terms_hub
    refusals = []
    for _field, change in BAD_PRICES:
        args = {"partner_id": "agency", "product_id": ids["day"], "amount": 100,
                "currency": "CNY", "effective_from": NOW, **change}
        args["partner_id"] = ids[args["partner_id"]]
        with engine.begin() as conn:
            try:
                terms.add_price(conn, args.pop("partner_id"), actor="t", now=NOW, **args)
                refusals.append(None)
            except TermsError as e:
                refusals.append((e.code, e.params["field"]))
    assert refusals == [("bad_terms_request", field) for field, _ in BAD_PRICES]
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(agreed_prices)).scalar() == 0


def test_an_end_is_never_in_the_past_before_the_start_or_later_than_an_end_it_had(terms_hub):
    engine, ids = terms_hub
    with engine.begin() as conn:
        price = terms.add_price(conn, ids["agency"], product_id=ids["day"], amount=100,
                                effective_from=NOW + HOUR, actor="t", now=NOW)
        for until, now in ((NOW + 30 * 60 * timedelta(seconds=1), NOW),  # before its start
                           (NOW + 2 * HOUR, NOW + 3 * HOUR)):  # in the past
            with pytest.raises(TermsError) as refused:
                terms.end_price(conn, price, until, "t", now)
            assert refused.value.params["field"] == "effective_until"
        terms.end_price(conn, price, NOW + 5 * HOUR, "t", NOW)
        with pytest.raises(TermsError) as later:
            terms.end_price(conn, price, NOW + 6 * HOUR, "t", NOW)
        assert later.value.params["field"] == "effective_until"
        terms.end_price(conn, price, NOW + 4 * HOUR, "t", NOW)  # earlier: fine
        assert conn.execute(sa.select(agreed_prices.c.amount, agreed_prices.c.effective_until)
                            ).one() == (100, NOW + 4 * HOUR)
        with pytest.raises(TermsError) as unknown:
            terms.end_price(conn, 999999, NOW + HOUR, "t", NOW)
        assert unknown.value.code == "unknown_agreed_price"


def test_sales_codes_are_unique_short_and_unambiguous_and_bind_products_to_sellers(terms_hub):
    engine, ids = terms_hub
    with engine.begin() as conn:
        made = [terms.create_code(conn, ids["supplier"], ids["day"], f"Lake {n}", "t", NOW)
                for n in range(30)]
        assert len(set(made)) == 30
        assert all(len(c) == 8 and set(c) <= set(terms.CODE_ALPHABET) for c in made)
        assert not set("01OIL") & set(terms.CODE_ALPHABET)
        code_id = terms.code_id_of(conn, made[0])
        assert terms.bound_products(conn, ids["agency"], NOW) == []
        terms.bind(conn, code_id, ids["agency"], "staff:1", NOW)
        terms.bind(conn, code_id, ids["agency"], "staff:1", NOW)  # again: nothing changes
        assert terms.bound_products(conn, ids["agency"], NOW) == [ids["day"]]
        assert terms.bound_products(conn, ids["agency"], NOW - HOUR) == []
        assert terms.bound_products(conn, ids["agent"], NOW) == []
        terms.unbind(conn, code_id, ids["agency"], "staff:1", NOW + HOUR)
        assert terms.bound_products(conn, ids["agency"], NOW + 2 * HOUR) == []
        assert terms.bound_products(conn, ids["agency"], NOW) == [ids["day"]]  # then it was
        with pytest.raises(TermsError) as twice:
            terms.unbind(conn, code_id, ids["agency"], "staff:1", NOW + HOUR)
        assert twice.value.code == "unknown_code_binding"
        terms.bind(conn, code_id, ids["agent"], "staff:1", NOW + HOUR)
        terms.withdraw_code(conn, code_id, "staff:1", NOW + 2 * HOUR)
        assert terms.bound_products(conn, ids["agent"], NOW + 3 * HOUR) == []
        with pytest.raises(TermsError) as withdrawn:
            terms.bind(conn, code_id, ids["agency"], "staff:1", NOW + 3 * HOUR)
        assert withdrawn.value.code == "sales_code_withdrawn"


@pytest.mark.parametrize("field, who", [("supplier_id", "agency"), ("partner_id", "rival")])
def test_a_code_is_a_suppliers_and_is_bound_only_to_distributors_and_agents(terms_hub, field,
                                                                           who):
    engine, ids = terms_hub
    with engine.begin() as conn:
        with pytest.raises(TermsError) as refused:
            if field == "supplier_id":
                terms.create_code(conn, ids[who], ids["day"], "Lake", "t", NOW)
            else:
                code = terms.create_code(conn, ids["supplier"], ids["day"], "Lake", "t", NOW)
                terms.bind(conn, terms.code_id_of(conn, code), ids[who], "t", NOW)
        assert refused.value.params["field"] == field


def test_a_supplier_binds_its_own_codes_only_when_its_profile_allows(terms_hub):
    engine, ids = terms_hub
    with engine.begin() as conn:
        mine = terms.code_id_of(conn, terms.create_code(conn, ids["supplier"], ids["day"],
                                                        "Lake", "t", NOW))
        theirs = terms.code_id_of(conn, terms.create_code(conn, ids["rival"], ids["day"],
                                                          "Hotel", "t", NOW))
        with pytest.raises(TermsError) as not_allowed:
            terms.bind(conn, mine, ids["agency"], "partner_user:1", NOW,
                       as_supplier=ids["supplier"])
        assert not_allowed.value.code == "binding_not_allowed"
        terms.set_profile(conn, ids["supplier"], actor="staff:1", now=NOW, may_bind_codes=True)
        terms.bind(conn, mine, ids["agency"], "partner_user:1", NOW, as_supplier=ids["supplier"])
        assert terms.bound_products(conn, ids["agency"], NOW) == [ids["day"]]
        for change in (terms.bind, terms.unbind):  # another supplier's code: not found
            with pytest.raises(TermsError) as other:
                change(conn, theirs, ids["agency"], "partner_user:1", NOW,
                       as_supplier=ids["supplier"])
            assert other.value.code == "unknown_sales_code"
        terms.unbind(conn, mine, ids["agency"], "partner_user:1", NOW + HOUR,
                     as_supplier=ids["supplier"])
        assert terms.bound_products(conn, ids["agency"], NOW + HOUR) == []
