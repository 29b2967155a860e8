"""Placeholder: the seg6 backend lands in the next commit."""

from __future__ import annotations

from typing import Any

from pmip6.dataplane.base import DataPlaneError


def unavailable_reason() -> str:
    return "not built yet"


def available() -> bool:
    return False


class Seg6DataPlane:
    def __init__(self, **kw: Any) -> None:
        raise DataPlaneError("not built yet")
