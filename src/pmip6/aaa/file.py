"""MS profiles from a TOML file: the embedded AAA backend (seed 6.1, 7).

The file holds one ``[[station]]`` table per mobile station::

    [[station]]
    mac = "02:00:00:00:aa:01"          # optional when the access layer gives a NAI
    nai = "ms1@example.net"
    lmap = "fd00::1"
    lnp = "2001:db8:1:1::/64"
    loa = "2001:db8:1:1::10"           # optional fixed LoA, inside lnp
    address_mode = "slaac"             # slaac | dhcpv6 | static (default slaac)
    dhcp_server = "fd00::2"            # optional
    default_gateway = "fe80::1"        # optional
    interface_id = "::200:ff:fe00:aa01"  # optional, 64 bits (or an integer)

Everything is checked when the file is loaded; a fault raises
``ProfileFileError`` naming the file, the entry and the key. A station that is
not listed is refused (``authenticate`` returns None).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

from pmip6.aaa.base import Aaa, AddressMode, MsProfile
from pmip6.wire.nd import normalise_mac

_KEYS = {
    "mac",
    "nai",
    "lmap",
    "lnp",
    "loa",
    "address_mode",
    "dhcp_server",
    "default_gateway",
    "interface_id",
}
_REQUIRED = ("nai", "lmap", "lnp")


class ProfileFileError(ValueError):
    """The profiles file is unreadable or one of its entries is invalid."""


@dataclass(frozen=True)
class Station:
    """One ``[[station]]`` entry: the MAC it is known by (if any) and its profile."""

    mac: str | None
    profile: MsProfile


class FileAaa(Aaa):
    """AAA answered from a TOML profiles file, loaded once at construction.

    ``authenticate(mac, nai)`` looks the station up by NAI when the access
    layer (802.1X) supplied one, else by MAC; unknown stations get None.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.stations = load_stations(self.path)
        self._by_mac = {s.mac: s.profile for s in self.stations if s.mac}
        self._by_nai = {s.profile.nai: s.profile for s in self.stations}

    async def authenticate(self, mac: str, nai: str | None = None) -> MsProfile | None:
        if nai is not None:
            return self._by_nai.get(nai)
        try:
            return self._by_mac.get(normalise_mac(mac))
        except ValueError:
            return None


def load_stations(path: Path) -> tuple[Station, ...]:
    """Parse and check every entry of the profiles file at ``path``."""
    try:
        with path.open("rb") as f:
            doc = tomllib.load(f)
    except OSError as e:
        raise ProfileFileError(f"{path}: cannot read: {e.strerror}") from e
    except tomllib.TOMLDecodeError as e:
        raise ProfileFileError(f"{path}: not valid TOML: {e}") from e
    return parse_stations(doc, str(path))


def parse_stations(doc: Mapping[str, object], source: str) -> tuple[Station, ...]:
    """Check an already parsed profiles document; ``source`` names it in errors."""
    extra = set(doc) - {"station"}
    if extra:
        raise ProfileFileError(f"{source}: unknown table(s) {', '.join(sorted(extra))}")
    entries = doc.get("station", [])
    if not isinstance(entries, list):
        raise ProfileFileError(f"{source}: 'station' must be an array of tables")

    stations: list[Station] = []
    macs: dict[str, int] = {}
    nais: dict[str, int] = {}
    for number, entry in enumerate(entries, start=1):
        station = _parse_station(entry, f"{source}: station {number}")
        where = f"{source}: station {number} ({station.profile.nai})"
        if station.mac is not None:
            if station.mac in macs:
                raise ProfileFileError(
                    f"{where}: mac {station.mac} already used by station "
                    f"{macs[station.mac]}"
                )
            macs[station.mac] = number
        if station.profile.nai in nais:
            raise ProfileFileError(
                f"{where}: nai already used by station {nais[station.profile.nai]}"
            )
        nais[station.profile.nai] = number
        stations.append(station)
    return tuple(stations)


def _parse_station(entry: object, where: str) -> Station:
    if not isinstance(entry, dict):
        raise ProfileFileError(f"{where}: not a table")
    nai = entry.get("nai")
    if isinstance(nai, str) and nai:
        where = f"{where} ({nai})"
    unknown = set(entry) - _KEYS
    if unknown:
        raise ProfileFileError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    for key in _REQUIRED:
        if key not in entry:
            raise ProfileFileError(f"{where}: key '{key}' is missing")
    if not isinstance(nai, str) or not nai:
        raise ProfileFileError(f"{where}: key 'nai' must be a non-empty string")

    mac = None
    if "mac" in entry:
        try:
            mac = normalise_mac(_string(entry, "mac", where))
        except ValueError as e:
            raise ProfileFileError(f"{where}: key 'mac': {e}") from None

    lnp_text = _string(entry, "lnp", where)
    try:
        lnp = IPv6Network(lnp_text)
    except ValueError as e:
        raise ProfileFileError(f"{where}: key 'lnp': {e}") from None

    loa = _address(entry, "loa", where)
    if loa is not None and loa not in lnp:
        raise ProfileFileError(f"{where}: key 'loa': {loa} is outside lnp {lnp}")

    mode_text = entry.get("address_mode", AddressMode.SLAAC.value)
    try:
        address_mode = AddressMode(mode_text)
    except ValueError:
        choices = " | ".join(m.value for m in AddressMode)
        raise ProfileFileError(
            f"{where}: key 'address_mode': {mode_text!r} is not one of {choices}"
        ) from None

    lmap = _address(entry, "lmap", where)
    assert lmap is not None  # required above
    return Station(
        mac=mac,
        profile=MsProfile(
            nai=nai,
            lmap_address=lmap,
            lnp=lnp,
            loa=loa,
            default_gateway=_address(entry, "default_gateway", where),
            address_mode=address_mode,
            dhcp_server=_address(entry, "dhcp_server", where),
            interface_id=_interface_id(entry, where),
        ),
    )


def _string(entry: Mapping[str, object], key: str, where: str) -> str:
    value = entry[key]
    if not isinstance(value, str):
        raise ProfileFileError(f"{where}: key '{key}' must be a string")
    return value


def _address(entry: Mapping[str, object], key: str, where: str) -> IPv6Address | None:
    if key not in entry:
        return None
    text = _string(entry, key, where)
    try:
        return IPv6Address(text)
    except ValueError as e:
        raise ProfileFileError(f"{where}: key '{key}': {e}") from None


def _interface_id(entry: Mapping[str, object], where: str) -> int | None:
    """A 64-bit interface identifier: an integer or ``::a:b:c:d`` text."""
    if "interface_id" not in entry:
        return None
    value = entry["interface_id"]
    if isinstance(value, str):
        try:
            value = int(IPv6Address(value))
        except ValueError as e:
            raise ProfileFileError(f"{where}: key 'interface_id': {e}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ProfileFileError(f"{where}: key 'interface_id' must be text or integer")
    if not 0 <= value < 1 << 64:
        raise ProfileFileError(f"{where}: key 'interface_id' does not fit 64 bits")
    return value
