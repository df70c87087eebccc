"""The names both sides spell are defined once: every code kind and role has one, the
allowlist's checks accept exactly those, and the schemas' scan kinds are the edge's."""

from __future__ import annotations

from edge.engine import ScanKind
from sync import changes, codes, names, schemas


def test_every_kind_and_role_of_a_ticket_code_has_one_name():
    assert set(names.KIND_NAMES) == set(codes.Kind)
    assert set(names.ROLE_NAMES) == set(codes.Role)
    assert len(set(names.KIND_NAMES.values())) == len(codes.Kind)
    assert len(set(names.ROLE_NAMES.values())) == len(codes.Role)


def test_the_allowlist_and_the_schemas_read_the_same_names():
    assert changes.TICKET_KINDS is names.TICKET_KINDS
    assert changes.TICKET_ROLES is names.TICKET_ROLES
    assert changes.DIRECTIONS is names.DIRECTIONS is schemas.DIRECTIONS
    assert schemas.SCAN_KINDS is names.SCAN_KINDS
    assert {k.value for k in ScanKind} == set(names.SCAN_KINDS)
    assert ScanKind(names.MANUAL) is ScanKind.MANUAL
