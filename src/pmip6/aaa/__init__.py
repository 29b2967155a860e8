"""Where MS profiles come from (seed sections 6.1 and 7).

``create_aaa`` builds the backend named by the ``[aaa]`` table of a daemon
config: ``file`` (a TOML profiles file, the embedded default) or ``radius``
(RFC 6572 attributes from a RADIUS server). ``check_aaa_config`` validates the
table without building anything, so that a daemon can refuse a wrong table
while it parses its config.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pmip6.aaa.base import Aaa, AaaError, AddressMode, MsProfile

__all__ = [
    "BACKENDS",
    "Aaa",
    "AaaError",
    "AddressMode",
    "MsProfile",
    "check_aaa_config",
    "create_aaa",
]

# the keys each backend reads from the [aaa] table (radius: RadiusAaa.from_config)
BACKEND_KEYS: dict[str, frozenset[str]] = {
    "file": frozenset({"backend", "file"}),
    "radius": frozenset(
        {
            "backend",
            "servers",
            "timeout",
            "retries",
            "nas_identifier",
            "require_message_authenticator",
        }
    ),
}
BACKENDS = tuple(BACKEND_KEYS)


def check_aaa_config(config: Mapping[str, Any]) -> str:
    """Refuse an unknown backend, a key the backend does not read, or (for
    RADIUS) a wrong value.

    Returns the backend name. The ValueError names ``[aaa] KEY``.
    """
    backend = config.get("backend", "file")
    if backend not in BACKEND_KEYS:
        known = ", ".join(BACKENDS)
        raise ValueError(f"[aaa] backend: unknown backend {backend!r} (known: {known})")
    known_keys = BACKEND_KEYS[backend]
    unknown = sorted(set(config) - known_keys)
    if unknown:
        raise ValueError(
            f"[aaa] {unknown[0]}: unknown key for backend {backend!r} "
            f"(known: {', '.join(sorted(known_keys))})"
        )
    if backend == "radius":
        from pmip6.aaa.radius import check_config

        check_config(config)
    return str(backend)


def create_aaa(config: Mapping[str, Any], base_dir: Path | str | None = None) -> Aaa:
    """The AAA backend described by an ``[aaa]`` config table.

    Relative paths in the table are taken relative to ``base_dir`` (the
    directory of the config file). A wrong table raises ValueError; the
    backends are imported only when chosen.
    """
    backend = check_aaa_config(config)
    base = Path(base_dir) if base_dir is not None else Path.cwd()

    if backend == "file":
        from pmip6.aaa.file import FileAaa

        if "file" not in config:
            raise ValueError("[aaa] backend 'file' needs a 'file' path")
        if not isinstance(config["file"], str) or not config["file"]:
            raise ValueError(f"[aaa] file: expected a path, got {config['file']!r}")
        path = Path(config["file"])
        if not path.is_absolute():
            path = base / path
        return FileAaa(path)

    from pmip6.aaa.radius import RadiusAaa

    try:
        return RadiusAaa.from_config(config)
    except TypeError as exc:
        # a value of the wrong type (timeout = "2", servers = "x"): name the table
        raise ValueError(f"[aaa] {exc}") from None
