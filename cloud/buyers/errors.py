"""The buyers' refusals: each a code with its status and English words (cloud/core/errors.py).

A sign-in refusal never says whether the number has an account: a wrong code, an expired
code, a code never sent and an unknown number are all ``bad_code``; a wrong password and an
unknown number are ``bad_sign_in``."""

from __future__ import annotations

from cloud.core.errors import Code, HubError
from cloud.sales.tickets import DOCUMENT_PROBLEMS
from cloud.staff.staff import StaffError

# the shared password policy's refusals (sync/passwords.py), worded as for staff
PASSWORD_CODES = ("password_too_short", "password_too_long", "password_has_username",
                  "password_too_weak")


class BuyerError(HubError):
    """A refused request of a buyer's account or companions."""

    codes = {
        "bad_field": Code(400, "%(field)s is missing or not valid"),
        "bad_mobile": Code(422, "a mobile number is 11 digits starting with 13 to 19 (with or "
                                "without +86)"),
        "bad_email": Code(422, "an e-mail address is name@domain, at most 254 characters"),
        "bad_language": Code(422, "the language is zh or en"),
        "bad_purpose": Code(422, "a code is asked for to register, sign_in or password_reset"),
        "code_too_soon": Code(429, "a new code can be sent %(seconds)s seconds after the last"),
        "code_rate_limited": Code(429, "too many codes asked for: try again later"),
        "bad_code": Code(401, "the code is wrong, used or expired: ask for a new one"),
        "bad_sign_in": Code(401, "wrong mobile number or password"),
        "buyer_locked": Code(401, "too many wrong attempts: try again later"),
        "mobile_taken": Code(409, "this mobile number already has an account: sign in"),
        "bad_session": Code(401, "sign in again: this session has ended"),
        "unknown_buyer_session": Code(404, "no session %(session_id)s of yours"),
        "wrong_password": Code(403, "the current password is wrong"),
        **{code: StaffError.codes[code] for code in PASSWORD_CODES},
        "companion_name_bad": Code(422, "a companion's name is 1 to 200 printable characters"),
        **{f"document_{code}": Code(422, message) for code, message in DOCUMENT_PROBLEMS.items()},
        "companion_exists": Code(409, "this document is one of your companions already"),
        "companion_limit": Code(409, "at most %(limit)s companions per account"),
        "unknown_companion": Code(404, "no companion %(companion_id)s of yours"),
        "identity_not_named": Code(409, "name who the person is (their document) before "
                                        "sending a photo of it"),
        "buyer_already_verified": Code(409, "your identity is verified already; customer "
                                            "service can change it"),
        "buyer_not_verified": Code(409, "your own identity is not verified yet (%(state)s): "
                                        "a ticket names you only once it is"),
        "companion_not_verified": Code(409, "companion %(companion_id)s is not verified yet "
                                            "(%(state)s): tickets are bought only for verified "
                                            "people"),
    }
