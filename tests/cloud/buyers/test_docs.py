"""docs/identity.md names every identity setting and every sandbox behaviour."""

from __future__ import annotations

from pathlib import Path

from cloud.buyers.idcheck_sandbox import BEHAVIOURS
from cloud.buyers.verification import SETTINGS

DOC = (Path(__file__).resolve().parents[3] / "docs" / "identity.md").read_text(encoding="utf-8")


def test_the_docs_list_every_setting_and_every_sandbox_behaviour():
    assert {name for name in SETTINGS if f"| `{name}` |" not in DOC} == set()
    assert {name for name in BEHAVIOURS if f"| `{name}` |" not in DOC} == set()
