"""docs/payments.md names every payments setting and every sandbox fault."""

from __future__ import annotations

from pathlib import Path

from cloud.payments.sandbox import FAULTS
from cloud.payments.settings import SETTINGS

DOC = (Path(__file__).resolve().parents[3] / "docs" / "payments.md").read_text(encoding="utf-8")


def test_the_docs_list_every_setting_and_every_fault():
    assert {name for name in SETTINGS if f"| `{name}` |" not in DOC} == set()
    assert {name for name in FAULTS if f"| `{name}` |" not in DOC} == set()
