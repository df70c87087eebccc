"""The catalog's refusals: venues, zones, gates and lanes; events and price tiers."""

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
        "bad_amount": Code(422, "a price is a whole, non-negative number of fen (cents)"),
        "bad_currency": Code(422, "currency is a three-letter ISO 4217 code such as CNY"),
        "tier_code_taken": Code(409, "this session has a price tier '%(code)s' already"),
    }
