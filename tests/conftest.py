"""Shared test fixtures and markers.

Tests marked ``root`` need root and network namespaces; they skip with the
reason elsewhere. Tests marked ``tshark`` skip where tshark is missing.
"""

from __future__ import annotations

import os
import shutil

import pytest


def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    is_root = os.geteuid() == 0
    has_tshark = shutil.which("tshark") is not None
    for item in items:
        if "root" in item.keywords and not is_root:
            item.add_marker(
                pytest.mark.skip(reason="needs root for network namespaces")
            )
        if "tshark" in item.keywords and not has_tshark:
            item.add_marker(pytest.mark.skip(reason="tshark is not installed"))
