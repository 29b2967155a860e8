"""Where MS profiles come from (seed sections 6.1 and 7).

``create_aaa`` builds the backend named by the ``[aaa]`` table of a daemon
config: ``file`` (a TOML profiles file, the embedded default) or ``radius``
(RFC 6572 attributes from a RADIUS server).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pmip6.aaa.base import Aaa, AaaError, AddressMode, MsProfile

__all__ = ["Aaa", "AaaError", "AddressMode", "MsProfile", "create_aaa"]

BACKENDS = ("file", "radius")


def create_aaa(config: Mapping[str, Any], base_dir: Path | str | None = None) -> Aaa:
    """The AAA backend described by an ``[aaa]`` config table.

    Relative paths in the table are taken relative to ``base_dir`` (the
    directory of the config file). A wrong table raises ValueError; the
    backends are imported only when chosen.
    """
    backend = config.get("backend", "file")
    base = Path(base_dir) if base_dir is not None else Path.cwd()

    if backend == "file":
        from pmip6.aaa.file import FileAaa

        if "file" not in config:
            raise ValueError("[aaa] backend 'file' needs a 'file' path")
        path = Path(config["file"])
        if not path.is_absolute():
            path = base / path
        return FileAaa(path)

    if backend == "radius":
        from pmip6.aaa.radius import RadiusAaa

        return RadiusAaa.from_config(config)

    known = ", ".join(BACKENDS)
    raise ValueError(f"unknown [aaa] backend {backend!r} (known: {known})")
