"""The payments area's refusals. A refused notification changes nothing: the provider is told
it failed (and will send it again if it was real)."""

from __future__ import annotations

from cloud.core.errors import Code, HubError


class PaymentError(HubError):
    """A payment, notification or refund the rules refuse, or a provider that did not answer."""

    codes = {
        "unknown_provider": Code(404, "no payment provider '%(provider)s' is configured"),
        "bad_payment_amount": Code(422, "a payment is a whole, positive number of fen"),
        "bad_signature": Code(401, "the %(provider)s notification's signature does not verify"),
        "stale_notification": Code(401, "the %(provider)s notification's timestamp is more "
                                        "than five minutes from now"),
        "bad_notification": Code(400, "the %(provider)s notification is malformed: %(detail)s"),
        "foreign_merchant": Code(403, "the %(provider)s notification is for another merchant"),
        "unknown_trade": Code(404, "no payment with trade number '%(out_trade_no)s'"),
        "amount_mismatch": Code(409, "trade %(out_trade_no)s: the provider says %(notified)s "
                                     "fen, the payment is %(amount)s fen"),
        "unknown_payment": Code(404, "no payment %(payment_id)s"),
        "payment_not_refundable": Code(409, "payment %(payment_id)s is %(state)s, not "
                                            "succeeded"),
        "refund_exceeds_payment": Code(409, "payment %(payment_id)s: refunding %(amount)s fen "
                                            "would give back more than was paid"),
        "unknown_refund": Code(404, "no refund with number '%(out_refund_no)s'"),
        "provider_refused": Code(409, "%(provider)s refused: %(detail)s"),
        "provider_unavailable": Code(409, "%(provider)s did not answer: %(detail)s"),
        "forged_response": Code(409, "%(provider)s answered without a valid signature"),
    }
