"""Every op test runs with records keeping no values of shape-only arguments, whatever their size, so a
VJP that reads an argument its op declared ``shape_only`` fails here instead of on large arrays only."""

from __future__ import annotations

import pytest

from tape import shape_only


@pytest.fixture(autouse=True)
def records_keep_only_shapes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shape_only, "KEEP_SMALLER_THAN", 0)
