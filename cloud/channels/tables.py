"""The channels' tables (issue 20).

- ``channels``: where a sale happens — the storefront, each booth, outlet and kiosk, each
  contract customer, each distributor or agent, each partner API client — switched on and off,
  with a sale window; booths with their venue, staff (``channel_staff``) and opening hours.
  Quotas per session × tier or product × day are the inventory's (kind ``channel``, counted
  by the same conditional UPDATE as every other quota).
- ``contract_customers`` and their ``customer_reps`` (their own sign-in),
  ``customer_notices`` (announcements to representatives) and ``holder_imports`` (a batch of
  holders read from a spreadsheet, with every refused row).
- ``partner_profiles``: a partner's details and contacts (the partner itself is the ledger's),
  its credit limit and the balance at which it is warned; ``agreed_prices`` per partner and
  product (or price tier), with effective dates; ``sales_codes`` (销售码) binding a product to
  the distributors and agents in ``sales_code_bindings``.
- ``api_keys`` (several per partner, scoped, rotatable; the secret sealed), ``api_nonces``
  (replays refused), ``api_access_log`` and ``partner_webhooks`` (an OTA's endpoint).
"""

from __future__ import annotations

import sqlalchemy as sa

from cloud.core.db import UtcDateTime, metadata

CHANNEL_KINDS = ("storefront", "booth", "outlet", "kiosk", "contract", "distributor", "agent",
                 "api")
SELLING_KINDS = ("booth", "outlet", "kiosk")  # sell through the box office under their name
API_SCOPES = ("products:read", "orders:write", "orders:read", "refunds:write")

channels = sa.Table(
    "channels", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(40), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(12), nullable=False),
    sa.Column("partner_id", sa.Integer, sa.ForeignKey("partners.id"), index=True),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("contract_customers.id"), index=True),
    sa.Column("venue_id", sa.Integer, sa.ForeignKey("venues.id")),
    sa.Column("enabled", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("sale_opens_at", UtcDateTime()),
    sa.Column("sale_closes_at", UtcDateTime()),
    # booths, outlets and kiosks: {"days": [0-6, Monday 0], "opens": "HH:MM", "closes": "HH:MM"}
    # in China time
    sa.Column("opening_hours", sa.JSON),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('storefront', 'booth', 'outlet', 'kiosk', 'contract', "
                       "'distributor', 'agent', 'api')", name="kind_known"),
    sa.CheckConstraint("kind <> 'contract' OR customer_id IS NOT NULL",
                       name="contract_names_customer"),
    sa.CheckConstraint("kind NOT IN ('distributor', 'agent', 'api') OR partner_id IS NOT NULL",
                       name="partner_channel_names_partner"),
)

channel_staff = sa.Table(
    "channel_staff", metadata,
    sa.Column("channel_id", sa.Integer, sa.ForeignKey("channels.id"), primary_key=True),
    sa.Column("staff_id", sa.Integer, sa.ForeignKey("staff.id"), primary_key=True),
    sa.Column("added_by", sa.String(80), nullable=False),
    sa.Column("added_at", UtcDateTime(), nullable=False),
    sa.Index("ix_channel_staff_staff_id", "staff_id"),
)

contract_customers = sa.Table(
    "contract_customers", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(20), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("state", sa.String(10), nullable=False, server_default="active"),
    # the contact's name and phone, sealed (cloud/core/seal.py)
    sa.Column("sealed_contact", sa.Text),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.CheckConstraint("state IN ('active', 'suspended')", name="state_known"),
)

customer_reps = sa.Table(
    "customer_reps", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("contract_customers.id"),
              nullable=False, index=True),
    sa.Column("username", sa.String(80), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("state", sa.String(10), nullable=False, server_default="active"),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_sign_in_at", UtcDateTime()),
    sa.Column("signed_out_at", UtcDateTime()),
    sa.CheckConstraint("state IN ('active', 'disabled')", name="state_known"),
)

customer_notices = sa.Table(
    "customer_notices", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    # none: to every contract customer's representatives
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("contract_customers.id"), index=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

holder_imports = sa.Table(
    "holder_imports", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.Integer, sa.ForeignKey("contract_customers.id"),
              nullable=False, index=True),
    sa.Column("order_id", sa.Integer, sa.ForeignKey("orders.id"), nullable=False),
    sa.Column("filename", sa.String(200), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("accepted", sa.Integer, nullable=False),
    # [{"row": n, "field": "...", "code": "..."}]: every refused row, with why (no personal data)
    sa.Column("refused", sa.JSON, nullable=False),
    sa.Column("actor", sa.String(80), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
)

partner_profiles = sa.Table(
    "partner_profiles", metadata,
    sa.Column("partner_id", sa.Integer, sa.ForeignKey("partners.id"), primary_key=True),
    # the contact's name, phone and e-mail, sealed
    sa.Column("sealed_contact", sa.Text),
    sa.Column("address", sa.String(300), nullable=False, server_default=""),
    # a credit account's limit (0: none) and the prepaid balance at which the partner is warned
    sa.Column("credit_limit", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("warn_below", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("warned_at", UtcDateTime()),
    # a supplier that may bind its sales codes to partners itself
    sa.Column("may_bind_codes", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("updated_by", sa.String(80), nullable=False),
    sa.Column("updated_at", UtcDateTime(), nullable=False),
    sa.CheckConstraint("credit_limit >= 0 AND warn_below >= 0", name="amounts_not_negative"),
)

agreed_prices = sa.Table(
    "agreed_prices", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("partner_id", sa.Integer, sa.ForeignKey("partners.id"), nullable=False),
    sa.Column("product_id", sa.Integer, sa.ForeignKey("products.id")),
    sa.Column("price_tier_id", sa.Integer, sa.ForeignKey("price_tiers.id")),
    sa.Column("amount", sa.BigInteger, nullable=False),
    sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
    sa.Column("effective_from", UtcDateTime(), nullable=False),
    sa.Column("effective_until", UtcDateTime()),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.CheckConstraint("amount >= 0", name="amount_not_negative"),
    sa.CheckConstraint("(product_id IS NULL) <> (price_tier_id IS NULL)", name="prices_one"),
    sa.CheckConstraint("effective_until IS NULL OR effective_until > effective_from",
                       name="ends_after_start"),
    sa.Index("ix_agreed_prices_partner_product", "partner_id", "product_id"),
)

sales_codes = sa.Table(
    "sales_codes", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(20), nullable=False, unique=True),
    sa.Column("product_id", sa.Integer, sa.ForeignKey("products.id"), nullable=False),
    sa.Column("supplier_id", sa.Integer, sa.ForeignKey("partners.id"), nullable=False,
              index=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("state", sa.String(10), nullable=False, server_default="active"),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.CheckConstraint("state IN ('active', 'withdrawn')", name="state_known"),
)

sales_code_bindings = sa.Table(
    "sales_code_bindings", metadata,
    sa.Column("sales_code_id", sa.Integer, sa.ForeignKey("sales_codes.id"), primary_key=True),
    sa.Column("partner_id", sa.Integer, sa.ForeignKey("partners.id"), primary_key=True),
    sa.Column("granted_by", sa.String(80), nullable=False),
    sa.Column("granted_at", UtcDateTime(), nullable=False),
    sa.Column("revoked_at", UtcDateTime()),
    sa.Index("ix_sales_code_bindings_partner_id", "partner_id"),
)

api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("partner_id", sa.Integer, sa.ForeignKey("partners.id"), nullable=False,
              index=True),
    sa.Column("channel_id", sa.Integer, sa.ForeignKey("channels.id"), nullable=False),
    # the public half, sent with every request; the secret is sealed (it signs, so it must be
    # read back: a hash would not do)
    sa.Column("key_id", sa.String(40), nullable=False, unique=True),
    sa.Column("name", sa.String(80), nullable=False),
    sa.Column("sealed_secret", sa.Text, nullable=False),
    sa.Column("scopes", sa.JSON, nullable=False),
    sa.Column("per_minute", sa.Integer, nullable=False, server_default="600"),
    sa.Column("state", sa.String(10), nullable=False, server_default="active"),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    # a rotated key stays good until then, so a client can switch without a gap
    sa.Column("expires_at", UtcDateTime()),
    sa.Column("revoked_at", UtcDateTime()),
    sa.Column("last_used_at", UtcDateTime()),
    sa.CheckConstraint("state IN ('active', 'revoked')", name="state_known"),
    sa.CheckConstraint("per_minute > 0", name="per_minute_positive"),
)

api_nonces = sa.Table(
    "api_nonces", metadata,
    sa.Column("api_key_id", sa.Integer, sa.ForeignKey("api_keys.id"), primary_key=True),
    sa.Column("nonce", sa.String(64), primary_key=True),
    sa.Column("seen_at", UtcDateTime(), nullable=False, index=True),
)

api_access_log = sa.Table(
    "api_access_log", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("api_key_id", sa.Integer, sa.ForeignKey("api_keys.id"), nullable=False),
    sa.Column("at", UtcDateTime(), nullable=False),
    sa.Column("method", sa.String(8), nullable=False),
    sa.Column("path", sa.String(200), nullable=False),
    sa.Column("status", sa.Integer, nullable=False),
    sa.Column("ms", sa.Integer, nullable=False),
    sa.Column("code", sa.String(40)),  # the error code of a refusal
    sa.Index("ix_api_access_log_key_at", "api_key_id", "at"),
)

WEBHOOK_EVENTS = ("order.confirmed", "order.refunded", "ticket.used")

partner_webhooks = sa.Table(
    "partner_webhooks", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("partner_id", sa.Integer, sa.ForeignKey("partners.id"), nullable=False,
              index=True),
    sa.Column("url", sa.String(300), nullable=False),
    sa.Column("sealed_secret", sa.Text, nullable=False),
    sa.Column("events", sa.JSON, nullable=False),
    sa.Column("state", sa.String(10), nullable=False, server_default="active"),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.CheckConstraint("state IN ('active', 'disabled')", name="state_known"),
)
