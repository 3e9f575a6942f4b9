"""The progress line of ``admin backup`` and ``restore``: rewritten in place on a terminal,
silent otherwise."""

from __future__ import annotations

import io

import pytest

from strongroom.cli.backup import _Progress

pytestmark = pytest.mark.unit


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_line_is_rewritten_and_cleared_at_the_end() -> None:
    out = _Terminal()
    progress = _Progress(out, "backup", interval=3600)
    progress("database: keys: 10000 rows")
    progress("within the interval: not shown")
    progress.done()
    assert out.getvalue() == "\r\033[Kstrongroom: backup: database: keys: 10000 rows\r\033[K"


def test_elsewhere_nothing_is_written() -> None:
    out = io.StringIO()
    progress = _Progress(out, "restore")
    progress("checked 100 of 200 members")
    progress.done()
    assert out.getvalue() == ""
