"""The first sync's progress: a bar redrawn in place on a terminal, plain lines otherwise."""

from __future__ import annotations

import io

from provisioning.enroll import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_terminal_gets_one_bar_redrawn_in_place():
    out = Terminal()
    p = Progress(out)
    p(500, 2000)
    p(2000, 2000)
    p(None, None)
    text = out.getvalue()
    assert text.count("\r") == 2 and text.endswith("\n")
    assert "[#######" in text and "] 500/2000 changes" in text
    assert "[" + "#" * 30 + "] 2000/2000" in text


def test_a_pipe_gets_one_plain_line_per_page():
    out = io.StringIO()
    p = Progress(out)
    p(500, 2000)
    p(2000, None)
    p(None, None)
    assert out.getvalue() == "synced 500 of 2000 changes\nsynced 2000 changes\n"
