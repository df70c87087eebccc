"""The ledger (issue 19): partners and their portal users, accounts, an append-only journal
of entries and postings (triggers refuse any change to a posting and any change to an entry
but pending -> posted | voided, on both databases), split rules, settlement runs, statements
and the postings they settle, the providers' statements imported and their exceptions; and the
finance permissions.

Revision ID: 0034
Revises: 0033
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = '0034'
down_revision = '0033'
branch_labels = None
depends_on = None

WHEN = sa.DateTime(timezone=True)
TABLES = ("recon_exceptions", "recon_imports", "settlement_items", "settlement_statements",
          "settlement_runs", "split_rules", "ledger_postings", "ledger_entries",
          "ledger_accounts", "partner_users", "partners")
PERMISSIONS = {"finance.manage": ("admin", "finance"), "finance.pay": ("finance",)}
REFUSED = "ledger entries and postings are append-only: correct with a reversing entry"
PG_TRIGGERS = (
    f"""CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_TABLE_NAME = 'ledger_entries' AND TG_OP = 'UPDATE' THEN
        IF OLD.state = 'pending' AND NEW.state IN ('posted', 'voided')
           AND NEW.key = OLD.key AND NEW.amount = OLD.amount THEN
          RETURN NEW;
        END IF;
      END IF;
      RAISE EXCEPTION '{REFUSED}';
    END $$""",
    "CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries "
    "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()",
    "CREATE TRIGGER ledger_postings_append_only BEFORE UPDATE OR DELETE ON ledger_postings "
    "FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()",
)
SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER ledger_entries_no_update BEFORE UPDATE ON ledger_entries
    WHEN NOT (OLD.state = 'pending' AND NEW.state IN ('posted', 'voided')
              AND NEW.key = OLD.key AND NEW.amount = OLD.amount)
    BEGIN SELECT RAISE(ABORT, '{REFUSED}'); END""",
    f"""CREATE TRIGGER ledger_entries_no_delete BEFORE DELETE ON ledger_entries
    BEGIN SELECT RAISE(ABORT, '{REFUSED}'); END""",
    f"""CREATE TRIGGER ledger_postings_no_update BEFORE UPDATE ON ledger_postings
    BEGIN SELECT RAISE(ABORT, '{REFUSED}'); END""",
    f"""CREATE TRIGGER ledger_postings_no_delete BEFORE DELETE ON ledger_postings
    BEGIN SELECT RAISE(ABORT, '{REFUSED}'); END""",
)


def upgrade() -> None:
    op.create_table('ledger_entries',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('key', sa.String(length=120), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('state', sa.String(length=8), server_default='posted', nullable=False),
    sa.Column('currency', sa.String(length=3), server_default='CNY', nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('memo', sa.String(length=200), server_default='', nullable=False),
    sa.Column('order_id', sa.Integer(), nullable=True),
    sa.Column('payment_id', sa.Integer(), nullable=True),
    sa.Column('refund_id', sa.Integer(), nullable=True),
    sa.Column('provider', sa.String(length=20), nullable=True),
    sa.Column('reference', sa.String(length=64), nullable=True),
    sa.Column('session_id', sa.Integer(), nullable=True),
    sa.Column('event_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=20), nullable=True),
    sa.Column('reverses', sa.Integer(), nullable=True),
    sa.Column('actor', sa.String(length=80), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.Column('posted_at', WHEN, nullable=True),
    sa.Column('voided_at', WHEN, nullable=True),
    sa.CheckConstraint("state IN ('pending', 'posted', 'voided')", name='ck_ledger_entries_state_known'),
    sa.CheckConstraint('amount > 0', name='ck_ledger_entries_amount_positive'),
    sa.ForeignKeyConstraint(['reverses'], ['ledger_entries.id'], name='fk_ledger_entries_reverses_ledger_entries'),
    sa.PrimaryKeyConstraint('id', name='pk_ledger_entries'),
    sa.UniqueConstraint('key', name='uq_ledger_entries_key')
    )
    op.create_index('ix_ledger_entries_order_id', 'ledger_entries', ['order_id'])
    op.create_index('ix_ledger_entries_payment_id', 'ledger_entries', ['payment_id'])
    op.create_index('ix_ledger_entries_posted_at', 'ledger_entries', ['posted_at'])
    op.create_index('ix_ledger_entries_provider_reference', 'ledger_entries', ['provider', 'reference'])
    op.create_table('partners',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('settle_days', sa.Integer(), server_default='7', nullable=False),
    sa.Column('state', sa.String(length=10), server_default='active', nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.CheckConstraint("kind IN ('organiser', 'venue', 'distributor', 'agent', 'supplier')", name='ck_partners_kind_known'),
    sa.CheckConstraint("state IN ('active', 'suspended')", name='ck_partners_state_known'),
    sa.CheckConstraint('settle_days BETWEEN 0 AND 90', name='ck_partners_settle_days_range'),
    sa.PrimaryKeyConstraint('id', name='pk_partners'),
    sa.UniqueConstraint('code', name='uq_partners_code')
    )
    op.create_table('recon_imports',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('rows', sa.Integer(), nullable=False),
    sa.Column('exceptions', sa.Integer(), nullable=False),
    sa.Column('imported_by', sa.String(length=80), nullable=False),
    sa.Column('imported_at', WHEN, nullable=False),
    sa.PrimaryKeyConstraint('id', name='pk_recon_imports')
    )
    op.create_table('settlement_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('as_of', WHEN, nullable=False),
    sa.Column('state', sa.String(length=8), server_default='running', nullable=False),
    sa.Column('started_by', sa.String(length=80), nullable=False),
    sa.Column('started_at', WHEN, nullable=False),
    sa.Column('finished_at', WHEN, nullable=True),
    sa.CheckConstraint("state IN ('running', 'done')", name='ck_settlement_runs_state_known'),
    sa.PrimaryKeyConstraint('id', name='pk_settlement_runs')
    )
    op.create_table('ledger_accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('code', sa.String(length=80), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=10), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=True),
    sa.Column('currency', sa.String(length=3), server_default='CNY', nullable=False),
    sa.Column('guarded', sa.Boolean(), server_default=sa.false(), nullable=False),
    sa.Column('balance', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('held', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.CheckConstraint("kind IN ('asset', 'liability', 'revenue', 'expense')", name='ck_ledger_accounts_kind_known'),
    sa.CheckConstraint('NOT guarded OR balance - held >= 0', name='ck_ledger_accounts_guarded_not_negative'),
    sa.CheckConstraint('held >= 0', name='ck_ledger_accounts_held_not_negative'),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name='fk_ledger_accounts_partner_id_partners'),
    sa.PrimaryKeyConstraint('id', name='pk_ledger_accounts'),
    sa.UniqueConstraint('code', name='uq_ledger_accounts_code')
    )
    op.create_index('ix_ledger_accounts_partner_id', 'ledger_accounts', ['partner_id'])
    op.create_table('partner_users',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('username', sa.String(length=80), nullable=False),
    sa.Column('display_name', sa.String(length=200), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('state', sa.String(length=10), server_default='active', nullable=False),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.Column('last_sign_in_at', WHEN, nullable=True),
    sa.Column('signed_out_at', WHEN, nullable=True),
    sa.CheckConstraint("state IN ('active', 'disabled')", name='ck_partner_users_state_known'),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name='fk_partner_users_partner_id_partners'),
    sa.PrimaryKeyConstraint('id', name='pk_partner_users'),
    sa.UniqueConstraint('username', name='uq_partner_users_username')
    )
    op.create_index('ix_partner_users_partner_id', 'partner_users', ['partner_id'])
    op.create_table('recon_exceptions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('import_id', sa.Integer(), nullable=False),
    sa.Column('provider', sa.String(length=20), nullable=False),
    sa.Column('day', sa.String(length=10), nullable=False),
    sa.Column('kind', sa.String(length=24), nullable=False),
    sa.Column('entry', sa.String(length=8), nullable=False),
    sa.Column('out_trade_no', sa.String(length=64), nullable=False),
    sa.Column('out_refund_no', sa.String(length=64), server_default='', nullable=False),
    sa.Column('hub_amount', sa.BigInteger(), nullable=True),
    sa.Column('statement_amount', sa.BigInteger(), nullable=True),
    sa.Column('state', sa.String(length=10), server_default='open', nullable=False),
    sa.Column('note', sa.String(length=500), server_default='', nullable=False),
    sa.Column('adjustment_entry_id', sa.Integer(), nullable=True),
    sa.Column('created_at', WHEN, nullable=False),
    sa.Column('resolved_by', sa.String(length=80), nullable=True),
    sa.Column('resolved_at', WHEN, nullable=True),
    sa.CheckConstraint("entry IN ('payment', 'refund')", name='ck_recon_exceptions_entry_known'),
    sa.CheckConstraint("kind IN ('missing_in_ledger', 'missing_from_statement', 'amount_differs', 'unknown_refund', 'duplicate')", name='ck_recon_exceptions_kind_known'),
    sa.CheckConstraint("state IN ('open', 'accepted', 'adjusted', 'follow_up')", name='ck_recon_exceptions_state_known'),
    sa.ForeignKeyConstraint(['adjustment_entry_id'], ['ledger_entries.id'], name='fk_recon_exceptions_adjustment_entry_id_ledger_entries'),
    sa.ForeignKeyConstraint(['import_id'], ['recon_imports.id'], name='fk_recon_exceptions_import_id_recon_imports'),
    sa.PrimaryKeyConstraint('id', name='pk_recon_exceptions'),
    sa.UniqueConstraint('provider', 'day', 'kind', 'entry', 'out_trade_no', 'out_refund_no', name='uq_recon_exceptions_provider')
    )
    op.create_index('ix_recon_exceptions_import_id', 'recon_exceptions', ['import_id'])
    op.create_index('ix_recon_exceptions_state', 'recon_exceptions', ['state'])
    op.create_table('ledger_postings',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entry_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.BigInteger(), nullable=False),
    sa.Column('part', sa.String(length=20), nullable=False),
    sa.CheckConstraint('amount <> 0', name='ck_ledger_postings_amount_not_zero'),
    sa.ForeignKeyConstraint(['account_id'], ['ledger_accounts.id'], name='fk_ledger_postings_account_id_ledger_accounts'),
    sa.ForeignKeyConstraint(['entry_id'], ['ledger_entries.id'], name='fk_ledger_postings_entry_id_ledger_entries'),
    sa.PrimaryKeyConstraint('id', name='pk_ledger_postings')
    )
    op.create_index('ix_ledger_postings_account_id_entry_id', 'ledger_postings', ['account_id', 'entry_id'])
    op.create_index('ix_ledger_postings_entry_id', 'ledger_postings', ['entry_id'])
    op.create_table('settlement_statements',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('currency', sa.String(length=3), server_default='CNY', nullable=False),
    sa.Column('period_until', WHEN, nullable=False),
    sa.Column('lines', sa.Integer(), nullable=False),
    sa.Column('gross', sa.BigInteger(), nullable=False),
    sa.Column('sales', sa.BigInteger(), nullable=False),
    sa.Column('refunds', sa.BigInteger(), nullable=False),
    sa.Column('fees', sa.BigInteger(), nullable=False),
    sa.Column('net', sa.BigInteger(), nullable=False),
    sa.Column('state', sa.String(length=10), server_default='prepared', nullable=False),
    sa.Column('payout_entry_id', sa.Integer(), nullable=True),
    sa.Column('prepared_by', sa.String(length=80), nullable=False),
    sa.Column('prepared_at', WHEN, nullable=False),
    sa.Column('paid_by', sa.String(length=80), nullable=True),
    sa.Column('paid_at', WHEN, nullable=True),
    sa.Column('pay_reference', sa.String(length=64), nullable=True),
    sa.CheckConstraint("state IN ('prepared', 'paid', 'cancelled')", name='ck_settlement_statements_state_known'),
    sa.ForeignKeyConstraint(['account_id'], ['ledger_accounts.id'], name='fk_settlement_statements_account_id_ledger_accounts'),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name='fk_settlement_statements_partner_id_partners'),
    sa.ForeignKeyConstraint(['payout_entry_id'], ['ledger_entries.id'], name='fk_settlement_statements_payout_entry_id_ledger_entries'),
    sa.ForeignKeyConstraint(['run_id'], ['settlement_runs.id'], name='fk_settlement_statements_run_id_settlement_runs'),
    sa.PrimaryKeyConstraint('id', name='pk_settlement_statements'),
    sa.UniqueConstraint('run_id', 'partner_id', 'currency', name='uq_settlement_statements_run_id')
    )
    op.create_index('ix_settlement_statements_partner_id', 'settlement_statements', ['partner_id'])
    op.create_table('split_rules',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('partner_id', sa.Integer(), nullable=True),
    sa.Column('part', sa.String(length=20), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=True),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('channel', sa.String(length=20), nullable=True),
    sa.Column('provider', sa.String(length=20), nullable=True),
    sa.Column('basis_points', sa.Integer(), server_default='0', nullable=False),
    sa.Column('fixed_per_ticket', sa.BigInteger(), server_default='0', nullable=False),
    sa.Column('effective_from', WHEN, nullable=False),
    sa.Column('effective_until', WHEN, nullable=True),
    sa.Column('created_by', sa.String(length=80), nullable=False),
    sa.Column('created_at', WHEN, nullable=False),
    sa.CheckConstraint("(part IN ('platform', 'provider_fee')) = (partner_id IS NULL)", name='ck_split_rules_partner_matches_part'),
    sa.CheckConstraint("part IN ('organiser', 'venue', 'distributor', 'agent', 'platform', 'provider_fee')", name='ck_split_rules_part_known'),
    sa.CheckConstraint('basis_points BETWEEN 0 AND 10000', name='ck_split_rules_basis_points_range'),
    sa.CheckConstraint('effective_until IS NULL OR effective_until > effective_from', name='ck_split_rules_effective_ordered'),
    sa.CheckConstraint('fixed_per_ticket >= 0', name='ck_split_rules_fixed_not_negative'),
    sa.ForeignKeyConstraint(['event_id'], ['events.id'], name='fk_split_rules_event_id_events'),
    sa.ForeignKeyConstraint(['partner_id'], ['partners.id'], name='fk_split_rules_partner_id_partners'),
    sa.ForeignKeyConstraint(['product_id'], ['products.id'], name='fk_split_rules_product_id_products'),
    sa.PrimaryKeyConstraint('id', name='pk_split_rules')
    )
    op.create_table('settlement_items',
    sa.Column('posting_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), autoincrement=False, nullable=False),
    sa.Column('statement_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['posting_id'], ['ledger_postings.id'], name='fk_settlement_items_posting_id_ledger_postings'),
    sa.ForeignKeyConstraint(['statement_id'], ['settlement_statements.id'], name='fk_settlement_items_statement_id_settlement_statements'),
    sa.PrimaryKeyConstraint('posting_id', name='pk_settlement_items')
    )
    op.create_index('ix_settlement_items_statement_id', 'settlement_items', ['statement_id'])
    for statement in (PG_TRIGGERS if op.get_bind().dialect.name == "postgresql"
                      else SQLITE_TRIGGERS):
        op.execute(statement)
    _permissions()


def _permissions() -> None:
    role_permissions = sa.table("role_permissions", sa.column("role", sa.String),
                                sa.column("permission", sa.String))
    roles = sa.table("roles", sa.column("name", sa.String))
    present = set(op.get_bind().execute(sa.select(roles.c.name)).scalars())
    rows = [{"role": role, "permission": p} for p, held in PERMISSIONS.items()
            for role in held if role in present]
    if rows:
        op.bulk_insert(role_permissions, rows)


def downgrade() -> None:
    for p in PERMISSIONS:
        op.execute(sa.text("DELETE FROM role_permissions WHERE permission = :p")
                   .bindparams(p=p))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER ledger_entries_append_only ON ledger_entries")
        op.execute("DROP TRIGGER ledger_postings_append_only ON ledger_postings")
        op.execute("DROP FUNCTION ledger_refuse_change()")
    for table in TABLES:
        op.drop_table(table)
