"""Config-file plumbing shared by the daemons (``lmapd``, ``mpad``).

Each daemon validates its own table; this module reads the TOML file, checks
the keys every daemon has (``uplink``, ``profile``, ``dataplane``, paths) the
same way, and words every failure as ``FILE: [TABLE] KEY: why``.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
import tomllib
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

from pmip6.dataplane import BACKENDS, DataPlane, DataPlaneError, create
from pmip6.wire.profile import PROFILES

# the levels both daemons take, in the config file and on the command line
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class ConfigError(ValueError):
    """The config file is unusable; the message names the file and the key."""


def read_toml(path: str) -> dict[str, Any]:
    """The parsed TOML file; a ``ConfigError`` names the file on failure."""
    try:
        with open(path, "rb") as f:
            return tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror}") from None
    except UnicodeDecodeError as exc:
        # TOML files are UTF-8 (TOML 1.0 "Spec"); tomllib decodes them whole
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} "
            f"at offset {exc.start})"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def config_base(path: str) -> Path:
    """The folder relative paths in the config file at ``path`` start from."""
    return Path(path).resolve().parent


class Table:
    """Typed getters for one table of a config file, failing with its key."""

    def __init__(
        self,
        section: dict[str, Any],
        where: str,
        name: str,
        base: Path | None = None,
    ) -> None:
        self.section = section
        self.where = where
        self.name = name
        self.base = base

    def fail(self, key: str, why: str) -> ConfigError:
        return ConfigError(f"{self.where}: [{self.name}] {key}: {why}")

    def check_keys(self, known: set[str]) -> None:
        # a typo'd key would otherwise be ignored without a word
        unknown = sorted(set(self.section) - known)
        if unknown:
            raise self.fail(
                unknown[0], f"unknown key (known: {', '.join(sorted(known))})"
            )

    def text(self, key: str, default: str | None) -> str:
        value = self.section.get(key, default)
        if value is None:
            raise self.fail(key, "required")
        if not isinstance(value, str) or not value:
            raise self.fail(key, f"expected a non-empty string, got {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self.section.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {value!r}")
        return value

    def uplink(self) -> str | None:
        uplink = self.section.get("uplink")
        if uplink is not None and (not isinstance(uplink, str) or not uplink):
            raise self.fail("uplink", f"expected an interface name, got {uplink!r}")
        return uplink

    def profile(self) -> str:
        profile = self.text("profile", "draft-00")
        if profile not in PROFILES:
            raise self.fail(
                "profile", f"{profile!r} is not one of {', '.join(sorted(PROFILES))}"
            )
        return profile

    def dataplane(self) -> str:
        dataplane = self.text("dataplane", "auto")
        if dataplane not in BACKENDS:
            raise self.fail(
                "dataplane", f"{dataplane!r} is not one of {', '.join(BACKENDS)}"
            )
        return dataplane

    def log_level(self) -> str:
        level = self.text("log_level", "info")
        if level.lower() not in LOG_LEVELS:
            raise self.fail(
                "log_level", f"{level!r} is not one of {', '.join(LOG_LEVELS)}"
            )
        return level.lower()

    def path(self, key: str, default: str) -> str:
        """A file name; a relative one is relative to the config file."""
        value = self.text(key, default)
        if self.base is not None and not os.path.isabs(value):
            value = str(self.base / value)
        return value


def create_dataplane(name: str, where: str, table: str) -> DataPlane:
    """The configured backend; one the kernel cannot run is a ``ConfigError``."""
    try:
        return create(name)
    except DataPlaneError as exc:
        # create() words it "data plane 'X' is unavailable: why"
        why = str(exc).partition(" is unavailable: ")[2] or str(exc)
        raise ConfigError(
            f"{where}: [{table}] dataplane: {name!r} is unavailable here: {why}"
        ) from None


def addresses_to(address: IPv6Address) -> str:
    """``ip -6 -j addr show to ADDRESS/128``: the interfaces holding it (JSON)."""
    out = subprocess.run(
        ["ip", "-6", "-j", "addr", "show", "to", f"{address}/128"],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout


def warn_limited(
    logger: logging.Logger,
    warned: dict[tuple[Any, ...], float],
    interval: float,
    key: tuple[Any, ...],
    fmt: str,
    *args: Any,
) -> None:
    """A peer fault: one WARNING per ``key`` every ``interval`` s, else DEBUG."""
    now = time.monotonic()
    last = warned.get(key)
    if last is not None and now - last < interval:
        logger.debug(fmt, *args)
        return
    if len(warned) > 4096:
        warned.clear()
    warned[key] = now
    logger.warning(fmt, *args)
