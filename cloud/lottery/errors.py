"""The presale lottery's refusals: each a code with its status and English words
(cloud/core/errors.py); ``field`` names the part of the request at fault."""

from __future__ import annotations

from cloud.core.errors import Code, HubError


class LotteryError(HubError):
    """A presale, application, seed, draw or seat choice the rules refuse."""

    codes = {
        "unknown_presale": Code(404, "no presale %(presale_id)s"),
        "unknown_lot": Code(404, "no lot %(lot_id)s in this presale"),
        "unknown_application": Code(404, "no application %(number)s"),
        "bad_presale": Code(422, "%(field)s is missing or not valid"),
        "presale_state": Code(409, "the presale is %(state)s: %(action)s needs it %(needs)s"),
        "presale_not_open": Code(409, "the presale takes applications from %(opens)s to "
                                      "%(closes)s"),
        "presale_still_open": Code(409, "the presale takes applications until %(closes)s: "
                                        "it is frozen after that"),
        "channel_not_offered": Code(409, "the presale is not offered on channel %(channel)s"),
        "lot_not_in_event": Code(422, "session %(session_id)s and tier %(tier_id)s are not a "
                                      "session and price tier of this presale's event"),
        "lot_over_seats": Code(422, "%(tickets)s tickets in the draw but only %(seats)s seats "
                                    "of this tier are free"),
        "bad_quantity": Code(422, "an application is for 1 to %(limit)s tickets"),
        "holders_mismatch": Code(422, "an application for %(quantity)s tickets names "
                                      "%(quantity)s different holders"),
        "holder_already_applied": Code(409, "a holder already has an application for this "
                                            "session"),
        "buyer_limit_reached": Code(409, "at most %(limit)s tickets per buyer in this presale"),
        "seed_same_person": Code(409, "the seed is entered by two different people: %(actor)s "
                                      "entered it first"),
        # enter_seed answers "mismatch" (both start again); the seed page says it in words
        "seed_mismatch": Code(409, "the two seeds entered differ: both must enter it again"),
        "seed_fixed": Code(409, "the seed is fixed already"),
        "bad_result": Code(422, "the imported result is refused: %(detail)s"),
        "not_a_winner": Code(409, "application %(number)s is %(state)s: only a winner without "
                                  "seats chooses seats"),
        "choice_closed": Code(409, "seats could be chosen until %(closes)s"),
        "bad_seats": Code(422, "choose %(quantity)s free seats of your price tier"),
        "not_enough_seats": Code(409, "lot %(lot_id)s has %(wanted)s tickets to seat but only "
                                      "%(free)s free seats of its tier"),
        "choice_still_open": Code(409, "winners may choose seats until %(closes)s"),
        "lot_session_cancelled": Code(409, "session %(session_id)s of this lot is cancelled: "
                                           "it takes no applications and gives no seats"),
    }
