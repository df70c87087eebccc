"""docs/messaging.md names every messaging setting, every sandbox fault and every kind."""

from __future__ import annotations

from pathlib import Path

from cloud.messaging.rendering import KINDS
from cloud.messaging.settings import SETTINGS
from cloud.messaging.sms_sandbox import FAULTS

DOC = (Path(__file__).resolve().parents[3] / "docs" / "messaging.md").read_text(encoding="utf-8")


def test_the_docs_list_every_setting_fault_and_kind():
    assert {name for name in SETTINGS if f"| `{name}` |" not in DOC} == set()
    assert {name for name in FAULTS if f"| `{name}` |" not in DOC} == set()
    assert {kind for kind in KINDS if f"`{kind}`" not in DOC} == set()
