"""The names both sides spell the same way: a ticket's kind and role as the allowlist carries
them (the ticket code carries numbers, :class:`sync.codes.Kind` and :class:`sync.codes.Role`),
entry directions and scan kinds. One definition here; the edge, the hub and the contract's
checks (:mod:`sync.changes`, :mod:`sync.schemas`) read them from here.

The edge's enums that hold the same values (``ScanKind`` in ``edge/engine.py``, ``Reason`` in
``edge/reasons.py``) are compared with these sets by a test, since ``sync`` never imports
``edge``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from sync.codes import Kind, Role

# a ticket code's kind and role by the name the allowlist, both databases and the pages use
KIND_NAMES: Mapping[Kind, str] = MappingProxyType({
    Kind.SESSION: "session", Kind.SESSIONS: "sessions", Kind.VENUES: "venues"})
ROLE_NAMES: Mapping[Role, str] = MappingProxyType({
    Role.TICKET: "ticket", Role.STAFF: "staff", Role.REGISTERED: "registered"})
TICKET_KINDS: tuple[str, ...] = tuple(KIND_NAMES.values())
TICKET_ROLES: tuple[str, ...] = tuple(ROLE_NAMES.values())

# which way a lane lets people through, and an entry went
DIRECTIONS = ("in", "out")

# what read a scan (the edge's ScanKind values): ``manual`` is a ticket number typed by staff,
# ``override`` a supervisor's "open anyway"
SCAN_KINDS = ("qr", "rfid", "id_card", "manual", "override")
MANUAL = "manual"
