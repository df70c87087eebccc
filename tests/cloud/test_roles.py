"""Roles are data: the roles of the seeds and their permission matrix (migration 0019), every
page and API call checked against the signed-in role's permissions on each request, the roles
page, and the second step a role's own flag asks for."""

# ruff: noqa: F811 (the fixture hub is imported from its test module)
from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from alembic import command

from cloud.core.db import alembic_config, init_db, make_engine
from cloud.staff import roles, totp
from cloud.staff.permissions import PERMISSIONS
from cloud.staff.staff import create_staff, hash_password
from cloud.staff.tables import api_tokens, password_history, role_permissions, staff
from cloud.staff.tokens import bearer, create_token
from tests.cloud.pagekit import PASSWORD, build_hub, csrf, post, sign_in, text
from tests.cloud.test_pages_tickets import hub, sell, sold  # noqa: F401

SEEDED = ("admin", "sales", "ops", "outlet", "client_rep", "gate_admin", "service",
          "ticketing", "content", "finance")


def add_account(hub, role: str, username: str | None = None):
    """A signed-in client of a new account with ``role``, and the account's id."""
    username = username or f"{role}-account"
    with hub.engine.begin() as conn:
        staff_id = create_staff(conn, username, PASSWORD, role, actor="test")
    client = hub.app.test_client()
    sign_in(client, username)
    return client, staff_id


def _token(hub, staff_id: int, **kw) -> dict[str, str]:
    with hub.engine.begin() as conn:
        return {"Authorization": f"Bearer {create_token(conn, staff_id, 't', 'test', **kw)[1]}"}


# -- the migration ----------------------------------------------------------------------------


def _migrate(url: str, revision: str, down: bool = False) -> None:
    engine = make_engine(url)
    cfg = alembic_config(url)
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        (command.downgrade if down else command.upgrade)(cfg, revision)
    engine.dispose()


@pytest.mark.empty_hub
def test_a_hub_at_0018_upgrades_and_its_accounts_keep_their_access(hub_url):
    _migrate(hub_url, "0018")
    engine = make_engine(hub_url)
    hashed = hash_password(PASSWORD)
    with engine.begin() as conn:  # the three accounts of an older hub, with what refers to them
        for i, role in enumerate(("admin", "sales", "ops"), start=1):
            conn.execute(sa.insert(staff).values(
                id=i, username=f"{role}-user", password_hash=hashed, role=role,
                created_at=sa.func.now(), password_changed_at=sa.func.now()))
            conn.execute(sa.insert(password_history).values(staff_id=i, password_hash=hashed,
                                                            created_at=sa.func.now()))
        conn.execute(sa.insert(api_tokens).values(staff_id=2, name="till", created_at=sa.func.now(),
                                                  token_hash="0" * 64))
    engine.dispose()
    init_db(hub_url)
    hub = build_hub_on(hub_url)
    try:
        with hub.engine.connect() as conn:
            assert roles.role_names(conn) == SEEDED
            assert conn.execute(sa.select(staff.c.id, staff.c.role).order_by(staff.c.id)).all() \
                == [(1, "admin"), (2, "sales"), (3, "ops")]
            assert conn.execute(sa.select(sa.func.count()).select_from(password_history)) \
                .scalar() == 3
            assert conn.execute(sa.select(api_tokens.c.staff_id)).scalar() == 2
        pages = {"admin": ("/staff", "/keys", "/box-office", "/ops", "/staff/roles"),
                 "sales": ("/box-office", "/sessions", "/tickets", "/venues"),
                 "ops": ("/ops", "/conflicts", "/tickets", "/venues")}
        refused = {"sales": ("/staff", "/ops", "/conflicts", "/keys"),
                   "ops": ("/box-office", "/sessions", "/staff", "/keys"), "admin": ()}
        for role, paths in pages.items():
            client = hub.client(role)
            for path in paths:
                assert client.get(path).status_code == 200, (role, path)
            for path in refused[role]:
                assert client.get(path).status_code == 403, (role, path)
        # the role is a key into roles now: an unknown one is refused by the database itself
        with pytest.raises(sa.exc.IntegrityError), hub.engine.begin() as conn:
            conn.execute(sa.insert(staff).values(username="x", password_hash=hashed, role="root",
                                                 created_at=sa.func.now()))
    finally:
        hub.engine.dispose()
    _migrate(hub_url, "0018", down=True)  # and back, while only the three old roles are used
    engine = make_engine(hub_url)
    with engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM staff")).scalar() == 3
        assert not sa.inspect(conn).has_table("roles")
    engine.dispose()


def build_hub_on(url: str):
    """build_hub's hub, on a database whose three accounts exist already."""
    from cloud.app import create_app
    from tests.cloud.pagekit import SECRET, Hub

    app = create_app({"DATABASE_URL": url, "TESTING": True, "SECRET_KEY": SECRET})
    return Hub(app, app.extensions["db"], 0, 0, {})


def test_the_seeded_matrix_names_only_permissions_in_code_and_admin_holds_them_all(hub_url):
    init_db(hub_url)
    engine = make_engine(hub_url)
    try:
        with engine.connect() as conn:
            held = roles.matrix(conn)
            flags = {r.name: r.totp_required for r in roles.list_roles(conn)}
    finally:
        engine.dispose()
    assert set().union(*held.values()) <= set(PERMISSIONS)
    # through its rows, not its name; all but paying out a settlement, which finance alone
    # does (the ledger, issue 19: the one who prepares a statement is never its checker)
    assert held["admin"] == set(PERMISSIONS) - {"finance.pay"}
    assert {r for r, f in flags.items() if f} == {"admin", "finance"}
    assert held["service"] >= {"tickets.search", "tickets.reveal", "orders.request_refund"}
    assert "tickets.reveal" not in held["sales"] and "tickets.refund" not in held["service"]
    # a ticket paid through an order is refunded by a request on it, at the counter too
    assert "orders.request_refund" in held["sales"] and "finance.view" in held["ticketing"]
    assert held["finance"] >= {"finance.view", "audit.view"}
    assert "staff.manage" not in held["finance"]


# -- every view declares a permission ---------------------------------------------------------


def test_every_page_and_api_call_declares_a_permission_named_in_code(hub):
    from cloud.web import http, web

    undeclared = []
    pages = hub.app.extensions[web.PAGES]
    for rule in hub.app.url_map.iter_rules():
        view = hub.app.view_functions[rule.endpoint]
        name = getattr(view, "wicket_permission", None)
        assert name is None or name in PERMISSIONS, rule.rule
        if rule.endpoint.partition(".")[0] in pages:
            if name is None and not (getattr(view, "wicket_public", False)
                                     or getattr(view, "wicket_signed_in", False)):
                undeclared.append(rule.rule)
        elif (rule.rule.startswith("/api/v1/") and name is None  # the staff tools' API
              and not getattr(view, "wicket_signed_by", None)):  # a provider's signed call
            undeclared.append(rule.rule)
    assert undeclared == []
    for decorator in (web.permission, http.api_permission):
        with pytest.raises(ValueError):
            decorator("tickets.sel")


# -- pages and the API refuse what a role may not do ------------------------------------------


def test_a_role_without_a_permission_gets_403_on_pages_and_the_api(hub):
    content, content_id = add_account(hub, "content")
    assert content.get("/").status_code == 200  # the start page is everyone's
    assert content.get("/venues").status_code == 200
    for path in ("/box-office", "/tickets", "/sessions", "/ops", "/staff", "/staff/roles",
                 "/audit", "/appliances"):
        assert content.get(path).status_code == 403, path
    page = text(content.get("/"))
    assert "/box-office" not in page and "/staff" not in page.replace("/staff/me", "")
    finance, finance_id = add_account(hub, "finance")
    assert finance.get("/audit").status_code == 200  # audit.view without staff.manage
    assert finance.get("/staff").status_code == 403
    assert 'href="/audit"' in text(finance.get("/"))
    client = hub.app.test_client()
    headers = _token(hub, content_id)
    assert client.get("/api/v1/venues", headers=headers).status_code == 200
    r = client.get("/api/v1/conflicts", headers=headers)
    assert r.status_code == 403 and r.get_json()["error"] == "forbidden"
    assert r.get_json()["params"] == {"role": "content", "permission": "conflicts.resolve"}
    assert client.get("/api/v1/staff", headers=_token(hub, finance_id)).status_code == 403


def test_a_token_has_its_roles_permissions_within_its_owners(hub):
    client = hub.app.test_client()
    scoped = _token(hub, hub.staff["admin"], roles=("sales",))
    assert client.get("/api/v1/venues", headers=scoped).status_code == 200
    assert client.get("/api/v1/conflicts", headers=scoped).status_code == 403  # admin could
    with hub.engine.begin() as conn:
        _, token = create_token(conn, hub.staff["sales"], "outlet", "test", roles=("outlet",))
        who = bearer(conn, token)
        assert who.permissions == {"venues.view", "tickets.search", "tickets.sell"}
        with pytest.raises(Exception) as err:  # a box-office clerk cannot hand out reveals
            create_token(conn, hub.staff["sales"], "x", "test", roles=("service",))
        assert err.value.code == "bad_token_roles"


def test_a_tokens_roles_are_matched_by_whole_name_not_as_a_pattern(hub):
    # role names with LIKE's wildcards in them: "out_et" must not match "outlet", "a%" not
    # every role; the token's permissions come from exactly the roles it names
    from cloud.staff.tables import roles as roles_table
    with hub.engine.begin() as conn:
        for name in ("out_et", "a%"):
            conn.execute(sa.insert(roles_table).values(name=name, title_en=name, title_zh=name,
                                                       totp_required=False, built_in=False,
                                                       position=90))
        conn.execute(sa.insert(role_permissions).values(role="out_et",
                                                        permission="conflicts.resolve"))
        admin = hub.staff["admin"]
        for scope, expected in ((("out_et",), {"conflicts.resolve"}), (("a%",), set()),
                                (("outlet",), {"venues.view", "tickets.search",
                                               "tickets.sell"})):
            _, token = create_token(conn, admin, "t", "test", roles=scope)
            assert bearer(conn, token).permissions == expected, scope


# -- the roles page ---------------------------------------------------------------------------


def test_the_roles_page_shows_the_matrix_the_second_step_and_the_accounts(hub):
    add_account(hub, "finance")
    admin = hub.client("admin")
    r = admin.get("/staff/roles")
    page = text(r)
    assert r.status_code == 200
    for title in ("System administrator", "Box-office staff", "Customer service", "Finance",
                  "Validation administrator", "Outlet staff", "Customer representative",
                  "Ticketing operations", "Content administrator", "Operations"):
        assert title in page, title
    for name in PERMISSIONS:
        assert f'id="perm-{name}"' in page, name

    def row(anchor: str) -> str:
        return re.search(rf'<tr id="{re.escape(anchor)}">(.*?)</tr>', page, re.S).group(1)

    def ticked(permission: str) -> set[str]:
        return set(re.findall(r'data-role="([a-z_]+)"><span', row(f"perm-{permission}")))

    assert ticked("staff.manage") == {"admin"}
    assert ticked("tickets.reveal") == {"admin", "service"}
    assert ticked("tickets.sell") == {"admin", "sales", "outlet", "client_rep"}
    for role, totp_flag, accounts in (("admin", "yes", "1"), ("finance", "yes", "1"),
                                      ("sales", "no", "1"), ("service", "no", "0")):
        cells = row(f"role-{role}")
        assert f'class="totp">{totp_flag}<' in cells and f'accounts">{accounts}<' in cells
    admin.post("/lang", data={"lang": "zh", "next": "/", "csrf_token": csrf(admin, "/")})
    zh = text(admin.get("/staff/roles"))
    assert "客服" in zh and "系统管理员" in zh and "作废和退票" in zh
    assert hub.client("sales").get("/staff/roles").status_code == 403
    account = text(admin.get(f"/staff/{hub.staff['sales']}"))
    assert set(re.findall(r'<option value="([a-z_]+)"', account)) == set(SEEDED)


# -- the second step --------------------------------------------------------------------------


def test_a_finance_account_must_enrol_a_one_time_password(hub_url, monkeypatch):
    monkeypatch.delenv("WICKET_HUB_TOTP_ROLES")  # each role's own flag decides
    hub = build_hub(hub_url)
    try:
        assert hub.app.config["TOTP_REQUIRED_ROLES"] is None
        with hub.engine.begin() as conn:
            create_staff(conn, "finance-user", PASSWORD, "finance", actor="test")
            assert totp.required(conn, "finance") and totp.required(conn, "admin")
            assert not totp.required(conn, "sales") and not totp.required(conn, "service")
            # the setting, when set, names the roles instead
            assert totp.required(conn, "sales", ("sales",))
            assert not totp.required(conn, "finance", ())
        for username, step in (("finance-user", "/login/enrol"), ("admin-user", "/login/enrol"),
                               ("sales-user", "/")):
            c = hub.app.test_client()
            r = c.post("/login", data={"username": username, "password": PASSWORD,
                                       "csrf_token": csrf(c)})
            assert r.status_code == 303 and r.headers["Location"].endswith(step), username
    finally:
        hub.engine.dispose()


# -- a role change counts at once -------------------------------------------------------------


def test_a_role_change_or_a_permission_taken_counts_at_the_next_request(hub):
    sales = hub.client("sales")
    number = sold(hub, sell(sales, hub))
    headers = _token(hub, hub.staff["sales"])
    api = hub.app.test_client()
    assert sales.get("/box-office").status_code == 200
    assert api.get(f"/api/v1/tickets/{number}", headers=headers).status_code == 200
    admin = hub.client("admin")
    r = post(admin, f"/staff/{hub.staff['sales']}/role", {"role": "service"},
             page=f"/staff/{hub.staff['sales']}")
    assert r.status_code == 303
    assert sales.get("/box-office").status_code == 403  # the same session, at once
    assert 'id="reveal-form"' in text(sales.get(f"/tickets/{number}"))
    r = api.post(f"/api/v1/tickets/{number}/refund", headers=headers)
    assert r.status_code == 403
    with hub.engine.begin() as conn:  # a permission taken from the role counts at once too
        conn.execute(sa.delete(role_permissions).where(
            role_permissions.c.role == "service", role_permissions.c.permission == "tickets.search"))
    assert sales.get(f"/tickets/{number}").status_code == 403
    assert api.get(f"/api/v1/tickets/{number}", headers=headers).status_code == 403


def test_the_last_account_that_may_manage_staff_keeps_that_permission(hub):
    from cloud.staff import accounts

    with hub.engine.begin() as conn, pytest.raises(accounts.AccountError) as err:
        accounts.change_role(conn, hub.staff["admin"], "finance", actor="test")
    assert err.value.code == "last_admin"
    with hub.engine.begin() as conn:  # another role given staff.manage counts as a keeper
        conn.execute(sa.insert(role_permissions).values(role="gate_admin",
                                                        permission="staff.manage"))
        other = create_staff(conn, "keeper", PASSWORD, "gate_admin", actor="test")
        assert accounts.change_role(conn, hub.staff["admin"], "finance", actor="test")
        with pytest.raises(accounts.AccountError):
            accounts.disable_staff(conn, other, actor="test")


def test_the_openapi_file_names_each_calls_permission(hub):
    import json
    from pathlib import Path

    spec = json.loads((Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text())
    # a public call (no token: security []) names no permission
    documented = {(m.upper(), p): op.get("x-wicket-permission") or op.get("x-wicket-signed-by")
                  or ("public" if op.get("security") == [] else None)
                  for p, ops in spec["paths"].items() for m, op in ops.items()}
    served = {}
    for rule in hub.app.url_map.iter_rules():
        if rule.rule.startswith(("/api/v1/", "/api/public/v1/")):
            path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
            for m in rule.methods - {"HEAD", "OPTIONS"}:
                view = hub.app.view_functions[rule.endpoint]
                served[(m, path)] = (getattr(view, "wicket_permission", None)
                                     or getattr(view, "wicket_signed_by", None)
                                     or ("public" if rule.rule.startswith("/api/public/")
                                         else None))
    assert documented == served
