"""The words a page shows for each coded refusal of the hub's rules (``cloud/errors.py`` lists
the codes): one translatable sentence per code, with the code's parameters as ``%(name)s``
placeholders. A test keeps this catalogue, the codes and the Chinese translations the same set.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

ERROR_WORDS = {
    "unauthorized": _l("This request needs valid credentials."),
    "forbidden": _l("The %(role)s role may not do this."),
    "bad_json": _l("The request body must be a JSON object."),
    "too_large": _l("The request body must be under %(limit)s bytes."),
    "bad_venue_fields": _l("A venue needs a code and a name, as text."),
    "bad_ticket_list": _l("Tickets come as a list of 1 to %(limit)s objects."),
    "bad_ticket_item": _l("Each ticket is an object."),
    "bad_holder": _l("A holder needs a name, a document type and a document number."),
    "bad_whole_number": _l("%(field)s must be a whole number."),
    "bad_reason": _l("The reason must be text."),
    "batch_too_large": _l("At most %(limit)s entries per batch."),
    "bad_request": _l("The request does not match its schema at %(field)s."),
    "bad_entry": _l("An entry does not match its schema at %(field)s."),
    "bad_argument": _l("A query argument is not valid at %(field)s."),
    "cursor_expired": _l("Cursor %(cursor)s is older than the change log keeps (horizon "
                         "%(horizon)s): sync again from cursor 0."),
    "token_malformed": _l("This enrollment token is not valid."),
    "bad_credential": _l("A credential is 43 to 128 URL-safe base64 characters."),
    "weak_secret": _l("This secret is too predictable: make it with a random generator."),
    "token_unknown": _l("This enrollment token is not valid (or was already used)."),
    "token_used": _l("This enrollment token was already used."),
    "token_expired": _l("This enrollment token has expired: ask the hub for a new one."),
    "unknown_appliance": _l("No appliance %(appliance_id)s."),
    "bad_command": _l("The command is one of %(commands)s."),
    "unknown_timezone": _l("Unknown time zone %(timezone)s."),
    "venue_code_taken": _l("A venue with code %(code)s exists already."),
    "zone_code_taken": _l("Zone %(code)s exists already at this venue."),
    "gate_code_taken": _l("Gate %(code)s exists already at this venue."),
    "gate_unknown_zone": _l("Gate %(gate)s: this venue has no zone %(zone)s."),
    "unknown_gate": _l("No gate %(gate_id)s."),
    "bad_lane_direction": _l("Lane %(code)s: the direction is in or out."),
    "lane_unknown_gate": _l("Lane %(code)s: this venue has no gate %(gate)s."),
    "lane_code_taken": _l("Lane %(code)s exists already at this venue."),
    "event_code_taken": _l("An event with code %(code)s exists already."),
    "bad_amount": _l("A price is a whole, non-negative number of fen (cents)."),
    "bad_currency": _l("The currency is a three-letter ISO 4217 code such as CNY."),
    "tier_code_taken": _l("This session has a price tier %(code)s already."),
    "unknown_category": _l("The category is one of %(categories)s."),
    "seats_not_in_session": _l("Some seats are not in this session's configuration."),
    "seat_sold": _l("Seat %(seat_id)s is sold."),
    "seat_category_locked": _l("Seat %(seat_id)s: after the configuration is confirmed only "
                               "emergency seats may change category."),
    "seats_not_reservable": _l("Only available sellable seats can be reserved."),
    "seat_not_for_sale": _l("Seat %(seat_id)s is not for sale in this session (sold, not "
                            "sellable, or reserved for someone else)."),
    "reservation_customer_bad": _l("Give the name of the customer the seats are kept for (up to "
                                   "200 characters)."),
    "reservation_in_past": _l("The reservation must end in the future."),
    "unknown_session": _l("No session %(session_id)s."),
    "not_confirmed": _l("Confirm the seat configuration before the session goes on sale."),
    "unknown_event": _l("No such event."),
    "session_ends_before_start": _l("A session must end after it starts."),
    "gates_open_after_start": _l("Gates must open before the session starts."),
    "session_required": _l("A session ticket needs a session."),
    "not_on_sale": _l("This session is not on sale."),
    "unknown_seat": _l("No seat %(seat_id)s."),
    "seat_not_sellable": _l("Seat %(seat)s cannot be sold."),
    "unknown_zone": _l("Choose one of this venue's zones."),
    "tier_required": _l("Choose a price."),
    "tier_not_for_session": _l("Price tier %(tier_id)s is not one of this session's."),
    "holder_name_missing": _l("The holder's name as on the document."),
    "holder_name_bad": _l("A name of up to 200 printable characters."),
    "document_bad_birth_date": _l("The birth date in the document number is not a real date."),
    "document_bad_length": _l("The document number has the wrong length."),
    "document_bad_characters": _l("The document number has characters this document does not "
                                  "use."),
    "document_bad_region": _l("The document number does not start as this document's do."),
    "document_bad_check_digit": _l("The check digit does not match: the number is mistyped."),
    "document_unknown_type": _l("Choose a document type."),
    "code_out_of_range": _l("This ticket cannot be issued: %(detail)s."),
    "seat_taken": _l("The seat already has a live ticket for this session."),
    "bad_revoke_state": _l("A ticket is revoked as void or refunded, not %(state)s."),
    "unknown_ticket": _l("No ticket %(ticket)s."),
    "not_live": _l("Ticket %(ticket)s is already %(state)s."),
    "admitted_needs_supervisor": _l("This ticket has admitted someone at a gate: only a "
                                    "supervisor (whose role may approve refunds) may refund "
                                    "it, with a reason."),
    "reason_required": _l("Say why this ticket is refunded although it has admitted someone "
                          "(%(low)s to %(high)s characters)."),
    "no_free_key_id": _l("All 255 key ids are in use."),
    "unknown_key": _l("No key %(key_id)s."),
    "key_not_published": _l("Key %(key_id)s is not published; only a published key can sign."),
    "key_not_reported": _l("Key %(key_id)s: %(count)s active appliances have not reported "
                           "having it yet (appliance %(first)s first); activate it after they "
                           "have synced."),
    "key_is_active": _l("Key %(key_id)s is the active key; activate another one first."),
    "no_active_key": _l("No active signing key: create one and activate it."),
    "signing_token_unavailable": _l("The signing token %(token)s cannot be used "
                                    "(%(reason)s)."),
    "no_signing_token": _l("Key %(key_id)s is held in a PKCS#11 token, and this hub has none "
                           "configured."),
    "key_not_in_token": _l("Key %(key_id)s is not in the signing token %(token)s."),
    "key_file_unusable": _l("The key-encryption key file %(path)s cannot be used "
                            "(%(reason)s)."),
    "key_does_not_unwrap": _l("Key %(key_id)s does not open with the key-encryption key in "
                              "%(path)s."),
    "unknown_venue": _l("No venue %(venue)s."),
    "note_missing": _l("A review needs a note saying what was found or done."),
    "note_too_long": _l("A note is at most %(limit)s characters."),
    "unknown_conflict": _l("No conflict %(conflict_id)s."),
    "unknown_alert_rule": _l("No alert rule %(kind)s."),
    "alert_not_numbers": _l("%(kind)s: the threshold and the window are numbers."),
    "alert_threshold_negative": _l("%(kind)s: the threshold is a number of 0 or more."),
    "alert_threshold_percent": _l("%(kind)s: the threshold is a percentage (0 to 100)."),
    "alert_window_range": _l("%(kind)s: the window is 1 to 240 minutes."),
    "password_too_short": _l("A password needs at least %(min)s characters."),
    "password_has_username": _l("A password must not contain the username."),
    "password_too_long": _l("A password has at most %(max)s characters."),
    "password_too_weak": _l("This password is too easy to guess: choose a longer one, for "
                            "example a few unrelated words."),
    "password_reused": _l("This password was used before: it may not be one of the last "
                          "%(history)s."),
    "bad_role": _l("Choose a role."),
    "bad_username": _l("A username is 1 to 80 printable characters."),
    "username_taken": _l("There is already a staff member %(username)s."),
    "bad_login": _l("Wrong username or password."),
    "locked": _l("Too many wrong passwords: try again later."),
    "unknown_staff": _l("No such staff member."),
    "bad_token": _l("Unknown or revoked API token."),
    "data_key_unusable": _l("The data key file %(path)s cannot be used: %(problem)s."),
    "sealed_value_unopenable": _l("A sealed value of %(context)s does not open: "
                                  "%(problem)s."),
    "reveal_reason_required": _l("Say why the holder and the code are revealed (%(low)s to "
                                 "%(high)s characters)."),
    # staff accounts an administrator runs (cloud/staff/accounts.py, tokens.py)
    "last_admin": _l("The last enabled admin can be neither disabled nor given another role."),
    "own_account": _l("You cannot disable your own account."),
    "wrong_current_password": _l("The current password is wrong."),
    "same_password": _l("The new password must differ from the old one."),
    "bad_token_name": _l("A token's name is 1 to 80 printable characters."),
    "bad_token_roles": _l("A token's roles must be among %(roles)s."),
    "bad_expiry": _l("A token's expiry must be in the future."),
    "unknown_token": _l("No such API token."),
    "rate_limited": _l("Too many requests: try again after the time Retry-After gives."),
    "idempotency_key_bad": _l("The Idempotency-Key header must be 1 to 255 printable ASCII "
                              "characters."),
    "idempotency_key_reused": _l("This Idempotency-Key was used for a different request."),
    "idempotency_in_progress": _l("A request with this Idempotency-Key is still being "
                                  "processed: retry later."),
    "totp_not_enrolling": _l("No one-time password is being set up: start again."),
    "totp_enrolled": _l("This account already has a one-time password."),
    "bad_totp": _l("Wrong or already used code."),
    "totp_locked": _l("Too many wrong passwords or codes: try again later."),
    # payments (cloud/payments/errors.py)
    "unknown_provider": _l("No payment provider %(provider)s is configured."),
    "bad_payment_amount": _l("A payment is a whole, positive number of fen."),
    "bad_signature": _l("The %(provider)s notification's signature does not verify."),
    "stale_notification": _l("The %(provider)s notification's timestamp is more than five "
                             "minutes from now."),
    "bad_notification": _l("The %(provider)s notification is malformed: %(detail)s."),
    "foreign_merchant": _l("The %(provider)s notification is for another merchant."),
    "unknown_trade": _l("No payment with trade number %(out_trade_no)s."),
    "amount_mismatch": _l("Trade %(out_trade_no)s: the provider says %(notified)s fen, the "
                          "payment is %(amount)s fen."),
    "unknown_payment": _l("No payment %(payment_id)s."),
    "payment_not_refundable": _l("Payment %(payment_id)s is %(state)s, not succeeded."),
    "refund_exceeds_payment": _l("Payment %(payment_id)s: refunding %(amount)s fen would give "
                                 "back more than was paid."),
    "unknown_refund": _l("No refund with number %(out_refund_no)s."),
    "provider_refused": _l("%(provider)s refused: %(detail)s."),
    "provider_unavailable": _l("%(provider)s did not answer: %(detail)s."),
    "forged_response": _l("%(provider)s answered without a valid signature."),
}
