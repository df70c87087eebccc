"""Every coded refusal of the hub, gathered from the areas' error classes: the one registry a
test compares with the pages' words (``cloud/web/error_words.py``) and the translations.

A code means one thing everywhere: two classes may both raise it only with the same status
and message.
"""

from __future__ import annotations

from cloud.buyers.errors import BuyerError  # buyers (accounts)
from cloud.buyers.identity_errors import IdentityError
from cloud.catalog.errors import CatalogError
from cloud.channels.accounts import AccountsError  # partners' accounts (issue 20)
from cloud.channels.api_keys import ApiKeyError  # the partner API (issue 20 §3)
from cloud.channels.booths import BoothError  # booths, outlets and kiosks (issue 20)
from cloud.channels.channels import ChannelSetupError
from cloud.channels.customers import CustomerError  # contract customers (issue 20)
from cloud.channels.errors import ChannelError  # channels and distribution (issue 20)
from cloud.channels.partner_terms import TermsError  # partners' terms (issue 20)
from cloud.channels.webhooks import WebhookError  # partners' webhooks (issue 20)
from cloud.core.errors import Code, HubError
from cloud.core.idempotency import IdempotencyError
from cloud.core.seal import SealError
from cloud.fleet.allowlist_export import ExportError
from cloud.fleet.api import SyncError
from cloud.fleet.appliances import ApplianceError
from cloud.fleet.keys import SigningKeyError
from cloud.inventory.seats import InventoryError
from cloud.ledger.errors import LedgerError  # the ledger (issue 19)
from cloud.lottery.errors import LotteryError  # presale lottery (issue 18)
from cloud.messaging.errors import MessagingError  # messaging (issue 16)
from cloud.ops.alerts import AlertError
from cloud.ops.conflicts import OpsError
from cloud.payments.errors import PaymentError
from cloud.sales.flags import FlagError  # flags (issue 16 §4)
from cloud.sales.order_plan import OrderError
from cloud.sales.refunds import RefundError
from cloud.sales.tickets import TicketError
from cloud.staff.accounts import AccountError
from cloud.staff.staff import StaffError
from cloud.staff.tokens import TokenError
from cloud.staff.totp import TotpError
from cloud.storefront.checkout import CheckoutError  # storefront (issue 17 §1)
from cloud.storefront.content import ContentError  # content (issue 17 §3)
from cloud.storefront.waiting_room import QueueError  # waiting room (issue 17 §2)
from cloud.web.http import ApiError

ERROR_CLASSES: tuple[type[HubError], ...] = (
    HubError, ApiError, SyncError, ApplianceError, SigningKeyError, ExportError, CatalogError,
    InventoryError, TicketError, OrderError, OpsError, AlertError, StaffError, SealError,
    AccountError, TokenError, TotpError, IdempotencyError, PaymentError, RefundError,
    # identity (issue 16 §2)
    IdentityError,
    BuyerError,  # buyers (accounts)
    MessagingError,  # messaging (issue 16)
    FlagError,  # flags (issue 16 §4)
    CheckoutError,  # storefront (issue 17 §1)
    QueueError,  # waiting room (issue 17 §2)
    ContentError,  # content (issue 17 §3)
    LotteryError,  # presale lottery (issue 18)
    LedgerError,  # the ledger (issue 19)
    ChannelError, ChannelSetupError,  # channels and distribution (issue 20)
    AccountsError, WebhookError,  # partners' accounts and webhooks (issue 20)
    BoothError,  # booths, outlets and kiosks (issue 20)
    ApiKeyError,  # the partner API (issue 20 §3)
    TermsError,  # partners' terms (issue 20)
    CustomerError)  # contract customers (issue 20)


def all_codes() -> dict[str, Code]:
    """Every code with its status and English template."""
    merged: dict[str, Code] = {}
    for cls in ERROR_CLASSES:
        for code, known in cls.codes.items():
            if merged.setdefault(code, known) != known:
                raise ValueError(f"code {code!r} means two things ({cls.__name__})")
    return merged
