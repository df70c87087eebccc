"""The messaging area's refusals."""

from __future__ import annotations

from cloud.core.errors import Code, HubError
from cloud.inventory.seats import InventoryError


class MessagingError(HubError):
    """A template, send task, resend, receipt or ticket link the rules refuse."""

    codes = {
        "unknown_message_kind": Code(404, "there is no message kind '%(kind)s'"),
        "unknown_language": Code(404, "there is no message language '%(language)s'"),
        "bad_template": Code(422, "the template does not render: %(detail)s"),
        "bad_template_length": Code(422, "a template's subject and body are 1 to %(limit)s "
                                         "characters"),
        "unknown_template_parameter": Code(422, "the template names '%(name)s'; it may name "
                                                "only %(allowed)s"),
        "missing_message_parameter": Code(422, "a %(kind)s message needs a value for "
                                                "'%(name)s'"),
        "unknown_message": Code(404, "no message %(message_id)s"),
        "not_resendable": Code(409, "message %(message_id)s is %(state)s; only a failed or "
                                    "dead message is sent again"),
        "bad_receipt_signature": Code(401, "the delivery receipt's signature does not verify"),
        "bad_receipt": Code(400, "the delivery receipt is malformed: %(detail)s"),
        "no_recipients": Code(422, "a send task needs 1 to %(limit)s recipients"),
        "bad_recipient": Code(422, "'%(recipient)s' is not a mobile number or e-mail address"),
        "unknown_audience": Code(404, "there is no audience %(audience)s to send to"),
        "empty_audience": Code(422, "nobody in %(audience)s has an address for %(channel)s"),
        "unknown_session": InventoryError.codes["unknown_session"],
        "order_not_paid": Code(409, "order %(order_id)s is %(state)s, not paid"),
        "no_contact": Code(422, "ticket delivery needs a mobile number or an e-mail address"),
        "unknown_ticket_link": Code(404, "this ticket link is not valid"),
        "too_many_redeliveries": Code(429, "this ticket was sent again %(limit)s times within "
                                           "the hour; try later"),
    }
