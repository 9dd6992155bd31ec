"""Every op test runs with records keeping no values of arguments their VJPs do not read (``tape.reads``,
``shape_only``), whatever their size, so a VJP that reads one fails here instead of on large arrays only."""

from __future__ import annotations

import pytest

from tape import saved


@pytest.fixture(autouse=True)
def records_keep_only_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(saved, "KEEP_SMALLER_THAN", 0)
