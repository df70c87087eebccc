"""The whole hub schema: every area's tables on the one metadata of ``cloud/core/db.py``.

Alembic's environment (autogenerate, ``init_db``) and the schema test read it from here; the
areas import only their own tables and those of the areas below them.
"""

from __future__ import annotations

from cloud.buyers import tables as buyers_tables
from cloud.catalog import tables as catalog_tables
from cloud.channels import tables as channels_tables  # channels and distribution (issue 20)
from cloud.core import audit, changes, idempotency, jobs, outbox, rate_limits, trust
from cloud.core.db import metadata
from cloud.fleet import tables as fleet_tables
from cloud.inventory import tables as inventory_tables
from cloud.ledger import tables as ledger_tables  # ledger (issue 19)
from cloud.lottery import tables as lottery_tables  # presale lottery (issue 18)
from cloud.messaging import tables as messaging_tables  # messaging (issue 16)
from cloud.ops import tables as ops_tables
from cloud.payments import tables as payments_tables
from cloud.sales import tables as sales_tables
from cloud.staff import tables as staff_tables
from cloud.storefront import tables as storefront_tables  # waiting room, content (issue 17 §2, §3)

TABLE_MODULES = (changes, audit, trust, rate_limits, idempotency, jobs, outbox, catalog_tables,
                 inventory_tables, sales_tables, fleet_tables, ops_tables, staff_tables,
                 payments_tables,
                 # identity (issue 16 §2): identities and their photos;
                 # buyers (accounts): buyers, their sessions and codes, companions
                 buyers_tables,
                 messaging_tables,  # messaging (issue 16)
                 storefront_tables,  # waiting room, content (issue 17 §2, §3)
                 lottery_tables,  # presale lottery (issue 18)
                 ledger_tables,  # ledger (issue 19)
                 channels_tables)  # channels and distribution (issue 20)

__all__ = ["TABLE_MODULES", "metadata"]
