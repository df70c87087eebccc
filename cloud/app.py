"""The hub's web application: ``create_app(config)`` composes the areas' blueprints.

Settings, from ``config`` or else the environment: ``DATABASE_URL`` ($WICKET_HUB_DB),
``SECRET_KEY`` (see cloud/web/secret.py: $WICKET_HUB_SECRET or an owner-only file),
``HUB_PUBLIC_URL`` ($WICKET_HUB_PUBLIC_URL, the address appliances reach the hub at, put in
enrollment QR codes; default: the address the page was asked for), ``SESSION_COOKIE_SECURE``
($WICKET_HUB_SECURE_COOKIES=1 or 0; ``wicket-hub serve`` turns it on unless it binds a
loopback address; a page that came over TLS sets a Secure cookie whatever it says),
``TRUSTED_PROXIES`` ($WICKET_HUB_TRUSTED_PROXIES, default 0: how many reverse proxies in front
of the hub to believe about the client's scheme, host and address through X-Forwarded-Proto,
-Host, -Port and -For, with werkzeug's ProxyFix; with 0 those headers are ignored),
``DATA_KEY`` ($WICKET_HUB_DATA_KEY, else ``wicket-hub-data.key``: the owner-only file with the
key that seals holders' personal data; see cloud/core/seal.py).
Staff sign-in (docs/hub-pages.md): ``TOTP_REQUIRED_ROLES`` ($WICKET_HUB_TOTP_ROLES, roles
separated by commas: who must sign in with a one-time password; unset, each role's own
``totp_required`` flag decides, set on the system administrator and finance),
``PASSWORD_MIN_SCORE``, ``PASSWORD_MAX_AGE_DAYS``, ``PASSWORD_HISTORY``
($WICKET_HUB_PASSWORD_…; see cloud/staff/passwords.py).
Buyers' accounts (docs/buyers.md): ``BUYER_COMPANION_LIMIT``, ``BUYER_CODES_PER_NUMBER``,
``BUYER_CODES_PER_ADDRESS`` ($WICKET_HUB_BUYER_…; see cloud/buyers/api.py).
The waiting room (issue 17 §2, docs/waiting-room.md): ``WAITING_ROOM_RATE``,
``WAITING_ROOM_BURST``, ``WAITING_ROOM_PASS_MINUTES``, ``WAITING_ROOM_TOKEN_HOURS``
($WICKET_HUB_WAITING_ROOM_…; see cloud/storefront/queue_api.py).
"""

from __future__ import annotations

import os
from typing import Any

from flask import Flask, has_request_context, request
from flask.sessions import SecureCookieSessionInterface
from werkzeug.middleware.proxy_fix import ProxyFix

from cloud.core.db import DEFAULT_URL, make_engine
from cloud.web.secret import hub_secret


def instance_path() -> str:
    """Where the hub keeps files that are not in the database ($WICKET_HUB_INSTANCE, else
    Flask's instance folder)."""
    return os.environ.get("WICKET_HUB_INSTANCE") or Flask("cloud").instance_path


class _Sessions(SecureCookieSessionInterface):
    def get_cookie_secure(self, app) -> bool:
        """Secure whenever the page came over TLS (as a trusted proxy says, with
        TRUSTED_PROXIES), whatever the configuration says."""
        return super().get_cookie_secure(app) or (has_request_context() and request.is_secure)

    def open_session(self, app, request):
        """A request without the cookie (every API call) starts an empty session without
        building the cookie's signer."""
        if app.secret_key and self.get_cookie_name(app) not in request.cookies:
            return self.session_class()
        return super().open_session(app, request)


def secure_cookies_env() -> bool | None:
    """$WICKET_HUB_SECURE_COOKIES: 1 (on) or 0 (off), or None when unset."""
    value = os.environ.get("WICKET_HUB_SECURE_COOKIES", "").strip()
    if value not in ("", "0", "1"):
        raise ValueError("WICKET_HUB_SECURE_COOKIES must be 1 or 0")
    return None if value == "" else value == "1"


def _proxies(value: Any) -> int:
    try:
        hops = int(value or 0)
    except ValueError:
        raise ValueError("TRUSTED_PROXIES ($WICKET_HUB_TRUSTED_PROXIES) must be a whole "
                         "number of proxies, 0 or more") from None
    if not 0 <= hops <= 5:
        raise ValueError("TRUSTED_PROXIES ($WICKET_HUB_TRUSTED_PROXIES) must be 0 to 5")
    return hops


def _sign_in_settings() -> dict[str, Any]:
    # unset: each role's own flag decides (roles.totp_required); set, even empty, it names
    # the roles instead
    roles = os.environ.get("WICKET_HUB_TOTP_ROLES")
    settings: dict[str, Any] = {"TOTP_REQUIRED_ROLES": None if roles is None else tuple(
        r.strip() for r in roles.split(",") if r.strip())}
    for name in ("PASSWORD_MIN_SCORE", "PASSWORD_MAX_AGE_DAYS", "PASSWORD_HISTORY"):
        value = os.environ.get(f"WICKET_HUB_{name}", "").strip()
        if value:
            if not value.isdigit():
                raise ValueError(f"{name} ($WICKET_HUB_{name}) must be a whole number")
            settings[name] = int(value)
    return settings


def _messaging(app: Flask) -> list:
    """messaging (issue 16): the receipt endpoint and its settings; the staff pages and the
    ticket link page are returned for the page shell."""
    from cloud.messaging import api as messaging_api
    from cloud.messaging import link_pages as messaging_links
    from cloud.messaging import pages as messaging_pages

    app.register_blueprint(messaging_api.bp)
    messaging_api.init_messaging(app)
    return [messaging_pages.bp, messaging_links.bp]


def _lottery(app: Flask) -> list:
    """presale lottery (issue 18): the staff's and the buyer's JSON APIs; the staff pages are
    returned for the page shell."""
    from cloud.lottery import api as presale_api
    from cloud.lottery import buyer_api as presale_buyer_api
    from cloud.lottery import pages as presale_pages

    app.register_blueprint(presale_api.bp)
    app.register_blueprint(presale_buyer_api.bp)
    return [presale_pages.bp]


def _ledger(app: Flask) -> list:
    """the ledger (issue 19): the partner portal under /partner/, outside the staff page
    shell (its own sign-in, session cookie and CSRF token); the finance pages are returned for
    the page shell."""
    from cloud.ledger import pages as finance_pages
    from cloud.ledger import partner_pages, portal_pages, recon_pages, settlement_pages
    from cloud.payments import statement_import, topup_pages
    from cloud.payments.settings import provider

    # the partners', rules', settlements' and reconciliation's pages add their routes to the
    # finance blueprint
    assert partner_pages.bp is settlement_pages.bp is recon_pages.bp is finance_pages.bp
    app.register_blueprint(portal_pages.bp)
    app.register_blueprint(topup_pages.bp)  # a partner's prepaid balance topped up online

    def import_statement(name: str, day, actor: str, now):
        """A provider's statement of a day fetched and reconciled (the payments area knows
        the providers, which the ledger may not import)."""
        adapter = provider(app.extensions["payment_providers"], name)
        return statement_import.import_statement(app.extensions["db"], adapter, day, actor,
                                                 now)

    app.extensions[recon_pages.IMPORT] = import_statement
    app.extensions[recon_pages.PROVIDERS] = lambda: [  # those configured that give statements
        n for n in statement_import.STATEMENT_PROVIDERS
        if n in app.extensions.get("payment_providers", {})]
    return [finance_pages.bp]


def _channels(app: Flask) -> list:
    """channels and distribution (issue 20): the partner API and the contract customers'
    representatives' site registered here, outside the staff page shell; the staff pages are
    returned for the page shell."""
    from cloud.channels import account_pages as channel_accounts
    from cloud.channels import api as channels_api
    from cloud.channels import (
        customer_pages,  # contract customers
        partner_api,
        partner_pages,
        portal_account_pages,
        portal_key_pages,
        portal_order_pages,
        portal_terms_pages,
        product_pages,
        rep_pages,  # contract customers' representatives
    )
    from cloud.channels import pages as channels_pages

    app.register_blueprint(partner_api.bp)  # the partner API (issue 20 §3), signed per key
    app.register_blueprint(portal_key_pages.bp)  # its keys and documentation in the portal
    app.register_blueprint(portal_account_pages.bp)  # the partner's accounts in the portal
    app.register_blueprint(portal_order_pages.bp)  # the partner's orders in the portal
    pages: list = []
    app.register_blueprint(channels_api.bp)  # booths (the channels' staff API)
    pages.append(channels_pages.bp)  # booths (the channels' staff pages, the box office hook)
    # partners' terms: the distribution pages (the products' pages add their routes to the
    # partners' blueprint) and the portal's terms pages behind the portal's sign-in
    assert product_pages.bp is partner_pages.bp
    app.register_blueprint(portal_terms_pages.bp)
    pages.append(partner_pages.bp)
    app.register_blueprint(rep_pages.bp)  # contract customers' representatives' site
    pages.append(customer_pages.bp)  # contract customers (the staff's pages)
    pages.append(channel_accounts.bp)  # partners' accounts and webhooks (the staff pages)
    return pages


def _storefront(app: Flask) -> None:
    """storefront (issue 17 §1): the buyer's site under /shop/, outside the staff page shell
    (its own buyer session and CSRF token); the account pages add their routes to its
    blueprint on import."""
    from cloud.storefront import account_pages as shop_account
    from cloud.storefront import checkout_pages as shop_checkout
    from cloud.storefront import news_pages as shop_news
    from cloud.storefront import pages as shop_pages
    from cloud.storefront import people_pages as shop_people
    from cloud.storefront import presale_pages as shop_presales  # the presale (issue 18)
    from cloud.storefront import queue_pages as shop_queue
    from cloud.storefront import refund_pages as shop_refunds
    from cloud.storefront.cached_pages import PageCache

    assert shop_account.bp is shop_checkout.bp is shop_queue.bp is shop_refunds.bp \
        is shop_news.bp is shop_people.bp is shop_presales.bp is shop_pages.bp
    app.register_blueprint(shop_pages.bp)
    # the pages the same for everyone are kept in front of the app, as long as the
    # availability they show (AVAILABILITY_MAX_AGE)
    app.wsgi_app = PageCache(app.wsgi_app)


def _audiences(app: Flask) -> None:
    """uploads (issue 16): the send tasks' "all holders of a session", whose addresses the
    buyers area knows and messaging may not ask it for itself."""
    from cloud.buyers.audience import session_audience
    from cloud.messaging.audiences import SESSION_HOLDERS, Audiences

    audiences = Audiences()
    audiences.provide(SESSION_HOLDERS, session_audience)
    app.extensions["message_audiences"] = audiences


def create_app(config: dict[str, Any] | None = None) -> Flask:
    app = Flask("cloud", instance_path=os.environ.get("WICKET_HUB_INSTANCE") or None)
    app.config.update(DATABASE_URL=os.environ.get("WICKET_HUB_DB", DEFAULT_URL),
                      MAX_CONTENT_LENGTH=16 * 1024 * 1024,
                      HUB_PUBLIC_URL=os.environ.get("WICKET_HUB_PUBLIC_URL") or None,
                      SESSION_COOKIE_SECURE=secure_cookies_env() or False,
                      TRUSTED_PROXIES=_proxies(os.environ.get("WICKET_HUB_TRUSTED_PROXIES")),
                      DATA_KEY=os.environ.get("WICKET_HUB_DATA_KEY") or None)
    app.config.update(_sign_in_settings())
    app.config.update(config or {})
    app.session_interface = _Sessions()
    hops = _proxies(app.config["TRUSTED_PROXIES"])
    if hops:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops,
                                x_port=hops)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = hub_secret(app.config["DATABASE_URL"], app.instance_path)
    app.extensions["db"] = make_engine(app.config["DATABASE_URL"], app.config.get("DATA_KEY"))

    from cloud import home
    from cloud.buyers import api as buyers_api  # buyers (accounts)
    from cloud.buyers import pages as buyers_pages  # buyers (accounts)
    from cloud.buyers import review_pages as identity_review_pages  # identity (issue 16 §2)
    from cloud.catalog import api as catalog_api
    from cloud.catalog import venue_pages
    from cloud.fleet import api as sync_api
    from cloud.fleet import pages as fleet_pages
    from cloud.inventory import api as inventory_api
    from cloud.inventory import pages as inventory_pages
    from cloud.ops import api as ops_api
    from cloud.ops import conflict_pages
    from cloud.ops import pages as ops_pages
    from cloud.payments import api as payments_api
    from cloud.payments import booth_pages, order_pages, refund_api, refund_pages, session_pages
    from cloud.payments import order_api as order_payments_api
    from cloud.sales import api as sales_api
    from cloud.sales import flag_api, flag_pages, key_pages, order_api  # flags (issue 16 §4)
    from cloud.sales import pages as sales_pages
    from cloud.staff import api as staff_api
    from cloud.staff import audit_pages, role_pages, totp_pages
    from cloud.staff import pages as staff_pages
    from cloud.storefront import api as public_api
    from cloud.storefront import (
        content_pages,  # content (issue 17 §3)
        queue_api,  # waiting room (issue 17 §2)
    )
    from cloud.web import auth
    from cloud.web.limits import init_limits
    from cloud.web.pages import init_pages
    from cloud.web.web import begin_audit_source, end_audit_source

    app.before_request(begin_audit_source)  # every audited write names the request's address
    app.teardown_request(end_audit_source)
    # each area hands over its blueprints: the JSON ones, then the pages inside the page shell
    for bp in (sync_api.bp, ops_api.sync_bp, sales_api.bp, catalog_api.bp, ops_api.bp,
               staff_api.bp, payments_api.bp, order_api.bp, order_payments_api.bp,
               inventory_api.bp, refund_api.bp, public_api.bp,
               buyers_api.bp,  # buyers (accounts)
               flag_api.bp,  # flags (issue 16 §4)
               queue_api.bp):  # waiting room (issue 17 §2)
        app.register_blueprint(bp)
    init_pages(app, [home.bp, auth.bp, venue_pages.bp, inventory_pages.bp,
                     inventory_pages.seat_map_bp, sales_pages.bp, fleet_pages.bp,
                     fleet_pages.allowlist_bp, key_pages.bp, staff_pages.bp, audit_pages.bp,
                     role_pages.bp, conflict_pages.bp, ops_pages.bp, ops_pages.wall_bp,
                     totp_pages.bp, booth_pages.bp, order_pages.bp, refund_pages.bp,
                     session_pages.bp,  # a session edited, postponed or cancelled
                     identity_review_pages.bp,  # identity (issue 16 §2)
                     buyers_pages.bp,  # buyers (accounts)
                     *_messaging(app),  # messaging (issue 16)
                     flag_pages.bp,  # flags (issue 16 §4)
                     content_pages.bp,  # content (issue 17 §3)
                     *_lottery(app),  # presale lottery (issue 18)
                     *_ledger(app),  # the ledger (issue 19)
                     *_channels(app)])  # channels and distribution (issue 20)
    payments_api.init_payments(app)
    _storefront(app)  # storefront (issue 17 §1)
    _audiences(app)  # uploads (issue 16)
    init_limits(app)
    return app
