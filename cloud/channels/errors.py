"""The channels' refusals of a sale: each a code with its status and English words
(cloud/core/errors.py); ``field`` names the part of the request at fault. The channels'
other modules (keys, customers, booths, partners' terms) keep their own classes beside their
rules."""

from __future__ import annotations

from cloud.core.errors import Code, HubError


class ChannelError(HubError):
    """A sale through a channel that the channel refuses."""

    codes = {
        "unknown_channel": Code(404, "no channel %(channel)s"),
        "channel_off": Code(409, "channel %(channel)s is switched off"),
        "channel_closed": Code(409, "channel %(channel)s does not sell now (its sale window "
                                    "or opening hours)"),
        "not_bound": Code(403, "product %(product_id)s is not bound to this partner by any "
                               "sales code"),
        "no_agreed_price": Code(409, "no agreed price is in force for product %(product_id)s"),
        "partner_suspended": Code(403, "partner %(partner_id)s is suspended"),
        "unknown_partner_order": Code(404, "no order %(number)s of this partner"),
        "not_refundable": Code(409, "ticket %(ticket)s can no longer be given back (it could "
                                    "until %(until)s)"),
    }
