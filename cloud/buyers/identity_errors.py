"""The identity part's refusals: verification asked for, photos sent for review, reviews
decided. (A malformed document number is refused with the sales area's ``document_*`` codes,
by the same rule a holder's number is.)"""

from __future__ import annotations

from cloud.core.errors import Code, HubError


class IdentityError(HubError):
    codes = {
        "unknown_identity": Code(404, "no identity %(identity_id)s"),
        "identity_name_bad": Code(422, "a name is 1 to %(high)s printable characters"),
        "identity_name_mismatch": Code(
            409, "this document is verified, or being verified, under another name"),
        "identity_too_many_names": Code(
            409, "this document was refused under %(names)s names: customer service can help"),
        "identity_not_in_review": Code(
            409, "identity %(identity_id)s is %(state)s, not waiting for a review"),
        "photo_too_large": Code(413, "a photo is at most %(limit)s bytes"),
        "photo_type_refused": Code(422, "a photo must be a JPEG or PNG image"),
        "photo_media_type": Code(400, "send a photo as %(allowed)s (its Content-Type)"),
        "photo_type_mismatch": Code(400, "the photo is %(found)s, not the %(declared)s it was "
                                         "sent as"),
        "photo_unreadable": Code(422, "the photo does not open as a %(kind)s image"),
        "photo_missing": Code(409, "identity %(identity_id)s has no photo to review"),
        "review_reason_required": Code(
            422, "say why the document is refused (%(low)s to %(high)s characters)"),
    }
