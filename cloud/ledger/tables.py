"""The ledger's tables.

- ``partners``: the organisers, venues, distributors and agents the hub settles with, each on
  its own cycle (T+``settle_days``), and ``partner_users``, their own sign-in to the portal.
- ``ledger_accounts``: one currency each; ``kind`` says its normal side (assets and expenses
  are debit-normal, liabilities and revenue credit-normal). A *guarded* account (a partner's
  payable, a prepaid balance) keeps its posted ``balance`` (on its normal side) and ``held``
  (pending outflows) in the row, raised by a conditional UPDATE in the posting transaction, and
  the database refuses ``balance - held < 0``; every other account's balance is the sum of its
  postings (no hot row for a provider's clearing account).
- ``ledger_entries`` and ``ledger_postings``: an entry is keyed by the business event that
  caused it (``key``: a retried event posts nothing); its postings sum to zero (a debit is a
  positive amount, a credit a negative one). Triggers refuse any change to a posting and any
  change to an entry except ``pending`` → ``posted`` | ``voided`` (migration 0034): a
  correction is a reversing entry.
- ``split_rules``: what each partner's part of a payment is, per event, product, channel or
  provider, from ``effective_from`` (a change applies only to later sales).
- ``settlement_*``: runs, one statement per partner per run, and the postings each statement
  settles (a posting's id is the key: no line is paid twice).
- ``recon_*``: the providers' statements imported and the exceptions they raised.
"""

from __future__ import annotations

import sqlalchemy as sa

from cloud.core.db import UtcDateTime, metadata

PARTNER_KINDS = ("organiser", "venue", "distributor", "agent", "supplier")
ACCOUNT_KINDS = ("asset", "liability", "revenue", "expense")
DEBIT_NORMAL = ("asset", "expense")
ENTRY_STATES = ("pending", "posted", "voided")
# the parts a payment is split into (split_rules.part, ledger_postings.part)
SPLIT_PARTS = ("organiser", "venue", "distributor", "agent", "platform", "provider_fee")
STATEMENT_STATES = ("prepared", "paid", "cancelled")
EXCEPTION_KINDS = ("missing_in_ledger", "missing_from_statement", "amount_differs",
                   "unknown_refund", "duplicate")
EXCEPTION_STATES = ("open", "accepted", "adjusted", "follow_up")

partners = sa.Table(
    "partners", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(20), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(12), nullable=False),
    sa.Column("settle_days", sa.Integer, nullable=False, server_default="7"),
    sa.Column("state", sa.String(10), nullable=False, server_default="active"),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('organiser', 'venue', 'distributor', 'agent', 'supplier')",
                       name="kind_known"),
    sa.CheckConstraint("settle_days BETWEEN 0 AND 90", name="settle_days_range"),
    sa.CheckConstraint("state IN ('active', 'suspended')", name="state_known"),
)

partner_users = sa.Table(
    "partner_users", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("partner_id", sa.Integer, sa.ForeignKey("partners.id"), nullable=False,
              index=True),
    sa.Column("username", sa.String(80), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("state", sa.String(10), nullable=False, server_default="active"),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("last_sign_in_at", UtcDateTime()),
    # signing out ends every session of the user begun before it (the portal's cookie carries
    # when it began): a copied cookie is no good after its owner signed out
    sa.Column("signed_out_at", UtcDateTime()),
    sa.CheckConstraint("state IN ('active', 'disabled')", name="state_known"),
)

ledger_accounts = sa.Table(
    "ledger_accounts", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("code", sa.String(80), nullable=False, unique=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("partner_id", sa.Integer, sa.ForeignKey("partners.id"), index=True),
    sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
    sa.Column("guarded", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("balance", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("held", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.CheckConstraint("kind IN ('asset', 'liability', 'revenue', 'expense')",
                       name="kind_known"),
    sa.CheckConstraint("held >= 0", name="held_not_negative"),
    sa.CheckConstraint("NOT guarded OR balance - held >= 0", name="guarded_not_negative"),
)

ledger_entries = sa.Table(
    "ledger_entries", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("key", sa.String(120), nullable=False, unique=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("state", sa.String(8), nullable=False, server_default="posted"),
    sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
    sa.Column("amount", sa.BigInteger, nullable=False),  # the sum of its debits
    sa.Column("memo", sa.String(200), nullable=False, server_default=""),
    sa.Column("order_id", sa.Integer, index=True),
    sa.Column("payment_id", sa.Integer, index=True),
    sa.Column("refund_id", sa.Integer),
    sa.Column("provider", sa.String(20)),
    sa.Column("reference", sa.String(64)),  # the provider's out_trade_no or out_refund_no
    sa.Column("session_id", sa.Integer),
    sa.Column("event_id", sa.Integer),
    sa.Column("channel", sa.String(20)),
    sa.Column("reverses", sa.Integer, sa.ForeignKey("ledger_entries.id")),
    sa.Column("actor", sa.String(80), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("posted_at", UtcDateTime()),
    sa.Column("voided_at", UtcDateTime()),
    sa.CheckConstraint("state IN ('pending', 'posted', 'voided')", name="state_known"),
    sa.CheckConstraint("amount > 0", name="amount_positive"),
    sa.Index("ix_ledger_entries_provider_reference", "provider", "reference"),
    sa.Index("ix_ledger_entries_posted_at", "posted_at"),
)

ledger_postings = sa.Table(
    "ledger_postings", metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("entry_id", sa.Integer, sa.ForeignKey("ledger_entries.id"), nullable=False,
              index=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("ledger_accounts.id"), nullable=False),
    sa.Column("amount", sa.BigInteger, nullable=False),  # a debit > 0, a credit < 0
    sa.Column("part", sa.String(20), nullable=False),
    sa.CheckConstraint("amount <> 0", name="amount_not_zero"),
    sa.Index("ix_ledger_postings_account_id_entry_id", "account_id", "entry_id"),
)

split_rules = sa.Table(
    "split_rules", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("partner_id", sa.Integer, sa.ForeignKey("partners.id")),  # none: the platform's
    sa.Column("part", sa.String(20), nullable=False),
    sa.Column("event_id", sa.Integer, sa.ForeignKey("events.id")),
    sa.Column("product_id", sa.Integer, sa.ForeignKey("products.id")),
    sa.Column("channel", sa.String(20)),
    sa.Column("provider", sa.String(20)),
    sa.Column("basis_points", sa.Integer, nullable=False, server_default="0"),
    sa.Column("fixed_per_ticket", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("effective_from", UtcDateTime(), nullable=False),
    sa.Column("effective_until", UtcDateTime()),
    sa.Column("created_by", sa.String(80), nullable=False),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.CheckConstraint("part IN ('organiser', 'venue', 'distributor', 'agent', 'platform', "
                       "'provider_fee')", name="part_known"),
    sa.CheckConstraint("basis_points BETWEEN 0 AND 10000", name="basis_points_range"),
    sa.CheckConstraint("fixed_per_ticket >= 0", name="fixed_not_negative"),
    sa.CheckConstraint("effective_until IS NULL OR effective_until > effective_from",
                       name="effective_ordered"),
    sa.CheckConstraint("(part IN ('platform', 'provider_fee')) = (partner_id IS NULL)",
                       name="partner_matches_part"),
)

settlement_runs = sa.Table(
    "settlement_runs", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("as_of", UtcDateTime(), nullable=False),
    sa.Column("state", sa.String(8), nullable=False, server_default="running"),
    sa.Column("started_by", sa.String(80), nullable=False),
    sa.Column("started_at", UtcDateTime(), nullable=False),
    sa.Column("finished_at", UtcDateTime()),
    sa.CheckConstraint("state IN ('running', 'done')", name="state_known"),
)

settlement_statements = sa.Table(
    "settlement_statements", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("settlement_runs.id"), nullable=False),
    sa.Column("partner_id", sa.Integer, sa.ForeignKey("partners.id"), nullable=False,
              index=True),
    sa.Column("account_id", sa.Integer, sa.ForeignKey("ledger_accounts.id"), nullable=False),
    sa.Column("currency", sa.String(3), nullable=False, server_default="CNY"),
    sa.Column("period_until", UtcDateTime(), nullable=False),
    sa.Column("lines", sa.Integer, nullable=False),
    sa.Column("gross", sa.BigInteger, nullable=False),    # what buyers paid on these orders
    sa.Column("sales", sa.BigInteger, nullable=False),    # the partner's part of them
    sa.Column("refunds", sa.BigInteger, nullable=False),  # the partner's part given back
    sa.Column("fees", sa.BigInteger, nullable=False),     # platform and payment fees on them
    sa.Column("net", sa.BigInteger, nullable=False),      # sales - refunds (+ adjustments)
    sa.Column("state", sa.String(10), nullable=False, server_default="prepared"),
    sa.Column("payout_entry_id", sa.Integer, sa.ForeignKey("ledger_entries.id")),
    sa.Column("prepared_by", sa.String(80), nullable=False),
    sa.Column("prepared_at", UtcDateTime(), nullable=False),
    sa.Column("paid_by", sa.String(80)),
    sa.Column("paid_at", UtcDateTime()),
    sa.Column("pay_reference", sa.String(64)),
    sa.CheckConstraint("state IN ('prepared', 'paid', 'cancelled')", name="state_known"),
    sa.UniqueConstraint("run_id", "partner_id", "currency"),
)

settlement_items = sa.Table(
    "settlement_items", metadata,
    sa.Column("posting_id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
              sa.ForeignKey("ledger_postings.id"), primary_key=True, autoincrement=False),
    sa.Column("statement_id", sa.Integer, sa.ForeignKey("settlement_statements.id"),
              nullable=False, index=True),
)

recon_imports = sa.Table(
    "recon_imports", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("provider", sa.String(20), nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("rows", sa.Integer, nullable=False),
    sa.Column("exceptions", sa.Integer, nullable=False),
    sa.Column("imported_by", sa.String(80), nullable=False),
    sa.Column("imported_at", UtcDateTime(), nullable=False),
)

recon_exceptions = sa.Table(
    "recon_exceptions", metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("import_id", sa.Integer, sa.ForeignKey("recon_imports.id"), nullable=False,
              index=True),
    sa.Column("provider", sa.String(20), nullable=False),
    sa.Column("day", sa.String(10), nullable=False),
    sa.Column("kind", sa.String(24), nullable=False),
    sa.Column("entry", sa.String(8), nullable=False),  # payment or refund
    sa.Column("out_trade_no", sa.String(64), nullable=False),
    sa.Column("out_refund_no", sa.String(64), nullable=False, server_default=""),
    sa.Column("hub_amount", sa.BigInteger),
    sa.Column("statement_amount", sa.BigInteger),
    sa.Column("state", sa.String(10), nullable=False, server_default="open"),
    sa.Column("note", sa.String(500), nullable=False, server_default=""),
    sa.Column("adjustment_entry_id", sa.Integer, sa.ForeignKey("ledger_entries.id")),
    sa.Column("created_at", UtcDateTime(), nullable=False),
    sa.Column("resolved_by", sa.String(80)),
    sa.Column("resolved_at", UtcDateTime()),
    sa.CheckConstraint("kind IN ('missing_in_ledger', 'missing_from_statement', "
                       "'amount_differs', 'unknown_refund', 'duplicate')", name="kind_known"),
    sa.CheckConstraint("entry IN ('payment', 'refund')", name="entry_known"),
    sa.CheckConstraint("state IN ('open', 'accepted', 'adjusted', 'follow_up')",
                       name="state_known"),
    sa.UniqueConstraint("provider", "day", "kind", "entry", "out_trade_no", "out_refund_no"),
    sa.Index("ix_recon_exceptions_state", "state"),
)
