"""The buyers area's work for ``wicket-hub worker``: identities verified (apart) and their
reviewed photos deleted after their time, a buyer's paid tickets sent, accounts tidied."""

from __future__ import annotations

from typing import Any

from cloud.buyers.delivery import deliver_paid_order
from cloud.buyers.sessions import tidy_accounts
from cloud.buyers.verifying import register_tasks as verification_tasks
from cloud.sales.orders import DELIVER_TICKETS_JOB


def register_tasks(tasks: Any, environ: Any) -> None:
    verification_tasks(tasks, environ)
    # a buyer's paid order: its tickets sent to the buyer's mobile and e-mail
    tasks.register(DELIVER_TICKETS_JOB, deliver_paid_order)
    tasks.every("tidy_buyer_accounts", 3600, tidy_accounts)
