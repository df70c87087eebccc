"""The catalog's refusals: venues, zones, gates and lanes; events, price tiers and products."""

from __future__ import annotations

from cloud.core.errors import Code, HubError


class CatalogError(HubError):
    """A venue, zone, gate, lane, event or price tier that cannot be created or changed as
    asked."""

    codes = {
        "unknown_timezone": Code(422, "unknown time zone '%(timezone)s'"),
        "venue_code_taken": Code(409, "a venue with code '%(code)s' exists already"),
        "zone_code_taken": Code(409, "zone '%(code)s' exists already at this venue"),
        "gate_code_taken": Code(409, "gate '%(code)s' exists already at this venue"),
        "gate_unknown_zone": Code(422, "gate %(gate)s: no zone '%(zone)s' at this venue"),
        "unknown_gate": Code(404, "no gate %(gate_id)s"),
        "bad_lane_direction": Code(422, "lane %(code)s: direction must be in or out"),
        "lane_unknown_gate": Code(422, "lane %(code)s: no gate '%(gate)s' at this venue"),
        "lane_code_taken": Code(409, "lane '%(code)s' exists already at this venue"),
        "event_code_taken": Code(409, "an event with code '%(code)s' exists already"),
        "bad_discipline": Code(422, "a discipline is at most %(limit)s characters"),
        "bad_amount": Code(422, "a price is a whole, non-negative number of fen (cents)"),
        "bad_currency": Code(422, "currency is a three-letter ISO 4217 code such as CNY"),
        "tier_code_taken": Code(409, "this session has a price tier '%(code)s' already"),
        "category_priced": Code(409, "this session prices seat category '%(category)s' "
                                     "already"),
        "bad_window": Code(422, "a sale window must close after it opens"),
        "bad_event_limit": Code(422, "%(field)s must be a whole number of 1 or more"),
        "unknown_event": Code(404, "no event %(event_id)s"),
        "product_code_taken": Code(409, "a product with code '%(code)s' exists already"),
        "bad_product_scope": Code(
            422, "a pass admits to a list of sessions, or to venues within a validity "
                 "window"),
        "bad_bundle_parts": Code(422, "a bundle is 1 to 10 products that are not bundles, "
                                      "1 to 20 of each"),
    }
