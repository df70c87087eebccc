"""Channels and distribution (issue 20): channels (storefront, booths, outlets, kiosks,
contract customers, distributors, agents, API clients) with their staff, contract customers
with their representatives, notices and holder imports, partners' profiles, agreed prices,
sales codes and their bindings, API keys, nonces and access log, partners' webhooks; bundles'
parts; an order's channel and how the ledger names it, a line's day; entries indexed by when
they were received (partners' webhooks read them by it); quotas of a day product's day, of a
channel and of the contract customers together; the ``channels.manage`` permission.

Revision ID: 0035
Revises: 0034
Create Date: 2026-12-07
"""

import sqlalchemy as sa
from alembic import op

revision = "0035"
down_revision = "0034"
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)
TABLES = ("sales_code_bindings", "holder_imports", "api_nonces", "api_access_log",
          "agreed_prices", "sales_codes", "product_parts", "channel_staff", "api_keys",
          "partner_webhooks", "partner_profiles", "customer_reps", "customer_notices",
          "channels", "contract_customers")
PERMISSIONS = {"channels.manage": ("admin", "ticketing")}
QUOTA_KINDS_BEFORE = "kind IN ('zone', 'tier', 'ga', 'pass')"
QUOTA_KINDS = "kind IN ('zone', 'tier', 'ga', 'pass', 'day', 'channel', 'contract')"
PRODUCT_KINDS_BEFORE = "kind IN ('pass')"
PRODUCT_KINDS = "kind IN ('pass', 'day', 'bundle')"


def _defer_foreign_keys() -> None:
    """SQLite changes a check by copying the table: the rows that refer to it are checked at
    the commit, when the copy has its name again."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute("PRAGMA defer_foreign_keys = ON")


def upgrade() -> None:
    _defer_foreign_keys()
    op.add_column("order_lines", sa.Column("day", sa.Date(), nullable=True))
    op.add_column("orders", sa.Column("channel_id", sa.Integer(), nullable=True))
    op.add_column("orders", sa.Column("sold_via", sa.String(12), nullable=True))
    op.create_index("ix_orders_channel_id_created_at", "orders", ["channel_id", "created_at"])
    op.create_index("ix_entries_received_at", "entries", ["received_at"])
    with op.batch_alter_table("quotas") as batch:
        batch.add_column(sa.Column("day", sa.Date(), nullable=True))
        batch.add_column(sa.Column("channel_id", sa.Integer(), nullable=True))
        batch.drop_constraint("ck_quotas_kind_known", type_="check")
        batch.create_check_constraint("kind_known", QUOTA_KINDS)
    with op.batch_alter_table("products") as batch:
        batch.drop_constraint("ck_products_kind_known", type_="check")
        batch.create_check_constraint("kind_known", PRODUCT_KINDS)
    _tables()
    role_permissions = sa.table("role_permissions", sa.column("role", sa.String),
                                sa.column("permission", sa.String))
    roles = sa.table("roles", sa.column("name", sa.String))
    present = set(op.get_bind().execute(sa.select(roles.c.name)).scalars())
    rows = [{"role": role, "permission": p} for p, held in PERMISSIONS.items()
            for role in held if role in present]
    if rows:
        op.bulk_insert(role_permissions, rows)


def downgrade() -> None:
    _defer_foreign_keys()
    for p in PERMISSIONS:
        op.execute(sa.text("DELETE FROM role_permissions WHERE permission = :p")
                   .bindparams(p=p))
    op.execute(sa.text("DELETE FROM quotas WHERE kind IN ('day', 'channel', 'contract')"))
    # names as upgrade() gave them; the old checks get back the names 0020 gave them
    with op.batch_alter_table("products") as batch:
        batch.drop_constraint("kind_known", type_="check")
        batch.create_check_constraint("ck_products_kind_known", PRODUCT_KINDS_BEFORE)
    with op.batch_alter_table("quotas") as batch:
        batch.drop_constraint("kind_known", type_="check")
        batch.create_check_constraint("ck_quotas_kind_known", QUOTA_KINDS_BEFORE)
        batch.drop_column("channel_id")
        batch.drop_column("day")
    for table in TABLES:
        op.drop_table(table)
    op.drop_index("ix_entries_received_at", "entries")
    op.drop_index("ix_orders_channel_id_created_at", "orders")
    op.drop_column("orders", "sold_via")  # SQLite drops a column in place (3.35 and later)
    op.drop_column("orders", "channel_id")
    op.drop_column("order_lines", "day")


def _tables() -> None:
    op.create_table('contract_customers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=10), server_default='active', nullable=False),
    sa.Column('sealed_contact', sa.Text(), nullable=True),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.CheckConstraint("state IN ('active', 'suspended')", name=op.f('ck_contract_customers_state_known')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_contract_customers')),
    sa.UniqueConstraint('code', name=op.f('uq_contract_customers_code'))
    )
    op.create_table('channels',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=True),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('venue_id', sa.Integer(), nullable=True),
    sa.Column('enabled', sa.Boolean(), server_default=sa.true(), nullable=False),
    sa.Column('sale_opens_at', WHEN, nullable=True),
    sa.Column('sale_closes_at', WHEN, nullable=True),
    sa.Column('opening_hours', sa.JSON(), nullable=True),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.CheckConstraint("kind <> 'contract' OR customer_id IS NOT NULL", name=op.f('ck_channels_contract_names_customer')),
    sa.CheckConstraint("kind IN ('storefront', 'booth', 'outlet', 'kiosk', 'contract', 'distributor', 'agent', 'api')", name=op.f('ck_channels_kind_known')),
    sa.CheckConstraint("kind NOT IN ('distributor', 'agent', 'api') OR partner_id IS NOT NULL", name=op.f('ck_channels_partner_channel_names_partner')),
    sa.ForeignKeyConstraint(['customer_id'], ['contract_customers.id'], name=op.f('fk_channels_customer_id_contract_customers')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_channels_partner_id_partners')),
    sa.ForeignKeyConstraint(['venue_id'], ['venues.id'], name=op.f('fk_channels_venue_id_venues')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_channels')),
    sa.UniqueConstraint('code', name=op.f('uq_channels_code'))
    )
    op.create_index(op.f('ix_channels_customer_id'), 'channels', ['customer_id'], unique=False)
    op.create_index(op.f('ix_channels_partner_id'), 'channels', ['partner_id'], unique=False)
    op.create_table('customer_notices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=True),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('body', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['contract_customers.id'], name=op.f('fk_customer_notices_customer_id_contract_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_notices'))
    )
    op.create_index(op.f('ix_customer_notices_customer_id'), 'customer_notices', ['customer_id'], unique=False)
    op.create_table('customer_reps',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=80), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=10), server_default='active', nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.Column('last_sign_in_at', WHEN, nullable=True),
    sa.Column('signed_out_at', WHEN, nullable=True),
    sa.CheckConstraint("state IN ('active', 'disabled')", name=op.f('ck_customer_reps_state_known')),
    sa.ForeignKeyConstraint(['customer_id'], ['contract_customers.id'], name=op.f('fk_customer_reps_customer_id_contract_customers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_customer_reps')),
    sa.UniqueConstraint('username', name=op.f('uq_customer_reps_username'))
    )
    op.create_index(op.f('ix_customer_reps_customer_id'), 'customer_reps', ['customer_id'], unique=False)
    op.create_table('partner_profiles',
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('sealed_contact', sa.Text(), nullable=True),
    sa.Column('address', sa.String(length=300), server_default='', nullable=False),
    sa.Column('credit_limit', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('warn_below', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('warned_at', WHEN, nullable=True),
    sa.Column('may_bind_codes', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('updated_by', sa.String(length=80), nullable=False),
    sa.Column('updated_at', WHEN, nullable=False),
    sa.CheckConstraint('credit_limit >= 0 AND warn_below >= 0', name=op.f('ck_partner_profiles_amounts_not_negative')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_partner_profiles_partner_id_partners')),
    sa.PrimaryKeyConstraint('partner_id', name=op.f('pk_partner_profiles'))
    )
    op.create_table('partner_webhooks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=300), nullable=False),
    sa.Column('sealed_secret', sa.Text(), nullable=False),
    sa.Column('events', sa.JSON(), nullable=False),
    sa.Column('state', sa.String(length=10), server_default='active', nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.CheckConstraint("state IN ('active', 'disabled')", name=op.f('ck_partner_webhooks_state_known')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_partner_webhooks_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_partner_webhooks'))
    )
    op.create_index(op.f('ix_partner_webhooks_partner_id'), 'partner_webhooks', ['partner_id'], unique=False)
    op.create_table('api_keys',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('key_id', sa.String(length=40), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('sealed_secret', sa.Text(), nullable=False),
    sa.Column('scopes', sa.JSON(), nullable=False),
    sa.Column('per_minute', sa.Integer(), server_default='600', nullable=False),
    sa.Column('state', sa.String(length=10), server_default='active', nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.Column('expires_at', WHEN, nullable=True),
    sa.Column('revoked_at', WHEN, nullable=True),
    sa.Column('last_used_at', WHEN, nullable=True),
    sa.CheckConstraint("state IN ('active', 'revoked')", name=op.f('ck_api_keys_state_known')),
    sa.CheckConstraint('per_minute > 0', name=op.f('ck_api_keys_per_minute_positive')),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_api_keys_channel_id_channels')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_api_keys_partner_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_keys')),
    sa.UniqueConstraint('key_id', name=op.f('uq_api_keys_key_id'))
    )
    op.create_index(op.f('ix_api_keys_partner_id'), 'api_keys', ['partner_id'], unique=False)
    op.create_table('channel_staff',
    sa.Column('channel_id', sa.Integer(), nullable=False),
    sa.Column('staff_id', sa.Integer(), nullable=False),
    sa.Column('added_by', sa.String(length=80), nullable=False),
    sa.Column('added_at', WHEN, nullable=False),
    sa.ForeignKeyConstraint(['channel_id'], ['channels.id'], name=op.f('fk_channel_staff_channel_id_channels')),
    sa.ForeignKeyConstraint(['staff_id'], ['staff.id'], name=op.f('fk_channel_staff_staff_id_staff')),
    sa.PrimaryKeyConstraint('channel_id', 'staff_id', name=op.f('pk_channel_staff'))
    )
    op.create_index('ix_channel_staff_staff_id', 'channel_staff', ['staff_id'], unique=False)
    op.create_table('product_parts',
    sa.Column('bundle_id', sa.Integer(), nullable=False),
    sa.Column('part_id', sa.Integer(), nullable=False),
    sa.Column('qty', sa.Integer(), nullable=False),
    sa.CheckConstraint('qty BETWEEN 1 AND 20', name=op.f('ck_product_parts_qty_range')),
    sa.ForeignKeyConstraint(['bundle_id'], ['products.id'], name=op.f('fk_product_parts_bundle_id_products')),
    sa.ForeignKeyConstraint(['part_id'], ['products.id'], name=op.f('fk_product_parts_part_id_products')),
    sa.PrimaryKeyConstraint('bundle_id', 'part_id', name=op.f('pk_product_parts'))
    )
    op.create_table('sales_codes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('supplier_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=10), server_default='active', nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.CheckConstraint("state IN ('active', 'withdrawn')", name=op.f('ck_sales_codes_state_known')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_sales_codes_product_id_products')),
    sa.ForeignKeyConstraint(['supplier_id'], ['partners.id'], name=op.f('fk_sales_codes_supplier_id_partners')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sales_codes')),
    sa.UniqueConstraint('code', name=op.f('uq_sales_codes_code'))
    )
    op.create_index(op.f('ix_sales_codes_supplier_id'), 'sales_codes', ['supplier_id'], unique=False)
    op.create_table('agreed_prices',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('price_tier_id', sa.Integer(), nullable=True),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('currency', sa.String(length=3), server_default='CNY', nullable=False),
    sa.Column('effective_from', WHEN, nullable=False),
    sa.Column('effective_until', WHEN, nullable=True),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.CheckConstraint('(product_id IS NULL) <> (price_tier_id IS NULL)', name=op.f('ck_agreed_prices_prices_one')),
    sa.CheckConstraint('amount >= 0', name=op.f('ck_agreed_prices_amount_not_negative')),
    sa.CheckConstraint('effective_until IS NULL OR effective_until > effective_from', name=op.f('ck_agreed_prices_ends_after_start')),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_agreed_prices_partner_id_partners')),
    sa.ForeignKeyConstraint(['price_tier_id'], ['price_tiers.id'], name=op.f('fk_agreed_prices_price_tier_id_price_tiers')),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name=op.f('fk_agreed_prices_product_id_products')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_agreed_prices'))
    )
    op.create_index('ix_agreed_prices_partner_product', 'agreed_prices', ['partner_id', 'product_id'], unique=False)
    op.create_table('api_access_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('api_key_id', sa.Integer(), nullable=False),
    sa.Column('at', WHEN, nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('path', sa.String(length=200), nullable=False),
    sa.Column('status', sa.Integer(), nullable=False),
    sa.Column('ms', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=40), nullable=True),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_api_access_log_api_key_id_api_keys')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_access_log'))
    )
    op.create_index('ix_api_access_log_key_at', 'api_access_log', ['api_key_id', 'at'], unique=False)
    op.create_table('api_nonces',
    sa.Column('api_key_id', sa.Integer(), nullable=False),
    sa.Column('nonce', sa.String(length=64), nullable=False),
    sa.Column('seen_at', WHEN, nullable=False),
    sa.ForeignKeyConstraint(['api_key_id'], ['api_keys.id'], name=op.f('fk_api_nonces_api_key_id_api_keys')),
    sa.PrimaryKeyConstraint('api_key_id', 'nonce', name=op.f('pk_api_nonces'))
    )
    op.create_index(op.f('ix_api_nonces_seen_at'), 'api_nonces', ['seen_at'], unique=False)
    op.create_table('holder_imports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('customer_id', sa.Integer(), nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=False),
    sa.Column('filename', sa.String(length=200), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('accepted', sa.Integer(), nullable=False),
    sa.Column('refused', sa.JSON(), nullable=False),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.ForeignKeyConstraint(['customer_id'], ['contract_customers.id'], name=op.f('fk_holder_imports_customer_id_contract_customers')),
    sa.ForeignKeyConstraint(['order_id'], ['orders.id'], name=op.f('fk_holder_imports_order_id_orders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_holder_imports'))
    )
    op.create_index(op.f('ix_holder_imports_customer_id'), 'holder_imports', ['customer_id'], unique=False)
    op.create_table('sales_code_bindings',
    sa.Column('sales_code_id', sa.Integer(), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('granted_by', sa.String(length=80), nullable=False),
    sa.Column('granted_at', WHEN, nullable=False),
    sa.Column('revoked_at', WHEN, nullable=True),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name=op.f('fk_sales_code_bindings_partner_id_partners')),
    sa.ForeignKeyConstraint(['sales_code_id'], ['sales_codes.id'], name=op.f('fk_sales_code_bindings_sales_code_id_sales_codes')),
    sa.PrimaryKeyConstraint('sales_code_id', 'partner_id', name=op.f('pk_sales_code_bindings'))
    )
    op.create_index('ix_sales_code_bindings_partner_id', 'sales_code_bindings', ['partner_id'], unique=False)
