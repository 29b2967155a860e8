"""A lab's description: which nodes exist, their names, addresses and configs.

The description is plain data (no I/O but reading a TOML file), so the names,
addresses and generated daemon configs can be tested without root. A TOML file
may override any default::

    [lab]
    name = "pm"              # namespace prefix: pm-cn, pm-lmap, pm-mpa1, ...
    mpas = 2                 # MPAs, each with a Linux bridge as base station
    profile = "draft-00"     # or "rfc5213"
    dataplane = "auto"
    log_level = "info"
    lifetime = 300           # PBU lifetime the MPAs request
    absent_timeout = 3.0     # seconds before an unanswered MS counts as gone
    aaa = "file"             # or "radius": FreeRADIUS in the LMAP namespace
    dhcp = false             # true: stations get their LoA from Kea DHCPv6

    [[ms]]                   # one table per mobile station (default: one)
    name = "ms1"
    mac = "02:00:00:00:aa:01"
    nai = "ms1@example.net"
    lnp = "2001:db8:1:1::/64"
    at = "mpa1"              # the MPA whose bridge it starts on
    known = true             # false: left out of the AAA profiles

Addressing follows the lab convention: transport fd00::/64 (LMAP fd00::1,
MPA k fd00::1k), CN link 2001:db8:ffff::/64, one LNP 2001:db8:1:k::/64 per MS.
"""

from __future__ import annotations

import itertools
import re
import tomllib
from dataclasses import dataclass, field, replace
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

from pmip6.dataplane import BACKENDS
from pmip6.runtime.config import LOG_LEVELS
from pmip6.wire.profile import PROFILES

RUN_ROOT = Path("/run/pmip6-lab")

# the lab convention (shared with the daemons' documentation)
TRANSPORT = IPv6Network("fd00::/64")
LMAP_ADDRESS = IPv6Address("fd00::1")
CN_LINK = IPv6Network("2001:db8:ffff::/64")
CN_ADDRESS = IPv6Address("2001:db8:ffff::2")
LMAP_CN_ADDRESS = IPv6Address("2001:db8:ffff::1")
LNP_SPACE = IPv6Network("2001:db8:1::/48")
# the lab's DHCPv6 server (Kea), a second address on the LMAP's uplink
DHCP_ADDRESS = IPv6Address("fd00::2")
# seed 6.2: every MPA of a domain shows the MS the same router
VIRTUAL_MAC = "02:00:5e:00:53:01"
VIRTUAL_LINK_LOCAL = IPv6Address("fe80::1")
# AAA: the file backend, or FreeRADIUS listening on the LMAP's transport
# address; the secret only guards the lab's own namespaces
AAA_BACKENDS = ("file", "radius")
RADIUS_PORT = 1812
RADIUS_SECRET = "pmip6-lab"

# interface names inside the namespaces
CN_IF = "eth0"  # CN: its only link
LMAP_CN_IF = "cn"  # LMAP: towards the CN
UPLINK_IF = "uplink"  # LMAP and MPAs: towards the transport bridge
ACCESS_IF = "br0"  # MPA: the base station bridge; transport namespace: the switch
MS_IF = "eth0"  # MS: its only interface

NAME_RE = re.compile(r"^[a-z][a-z0-9]{0,9}$")
# stations per lab: each is a namespace and a veth pair; the default names,
# MACs and LNPs (ms_mac, ms_lnp) stay distinct well beyond this
MAX_MSS = 100
MAC_RE = re.compile(r"^([0-9a-f]{2}:){5}[0-9a-f]{2}$")


class TopologyError(ValueError):
    """The description is inconsistent or names something that cannot exist."""


def mpa_address(k: int) -> IPv6Address:
    """MPA k's transport address: fd00::11 for MPA 1, fd00::12 for MPA 2, ..."""
    return IPv6Address(f"fd00::{10 + k}")


def ms_mac(k: int) -> str:
    return f"02:00:00:00:{0xAA + k // 256:02x}:{k % 256:02x}"


def ms_lnp(k: int) -> IPv6Network:
    return IPv6Network(f"2001:db8:1:{k:x}::/64")


def eui64_address(prefix: IPv6Network, mac: str) -> IPv6Address:
    """The address a Linux host forms by SLAAC in ``prefix`` (RFC 4291 2.5.1)."""
    octets = [int(x, 16) for x in mac.split(":")]
    octets[0] ^= 0x02
    iid = bytes(octets[:3]) + b"\xff\xfe" + bytes(octets[3:])
    return IPv6Address(int(prefix.network_address) | int.from_bytes(iid, "big"))


@dataclass(frozen=True)
class MsSpec:
    """One mobile station: an unmodified host in its own namespace."""

    name: str
    mac: str
    nai: str
    lnp: IPv6Network
    at: str
    known: bool = True

    @property
    def peer(self) -> str:
        """Name of the veth end that sits in an MPA's bridge (moves on handover)."""
        return self.name

    @property
    def expected_loa(self) -> IPv6Address:
        return eui64_address(self.lnp, self.mac)


@dataclass(frozen=True)
class Topology:
    name: str = "pm"
    mpas: int = 2
    stations: tuple[MsSpec, ...] = ()
    profile: str = "draft-00"
    dataplane: str = "auto"
    log_level: str = "info"
    lifetime: int = 300
    absent_timeout: float = 3.0
    # where the MPAs get profiles: "file" (profiles.toml) or "radius"
    # (FreeRADIUS in the LMAP namespace, see pmip6.lab.radius)
    aaa: str = "file"
    # stateful DHCPv6 (seed 6.3 item 3): Kea in the LMAP namespace on
    # DHCP_ADDRESS, one pool per LNP; stations run dhclient, RAs carry M
    dhcp: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    # --- names -----------------------------------------------------------

    def ns(self, node: str) -> str:
        """Namespace of ``node`` ("cn", "lmap", "tr", "mpa1", "ms1", ...)."""
        return f"{self.name}-{node}"

    @property
    def mpa_names(self) -> list[str]:
        return [f"mpa{k}" for k in range(1, self.mpas + 1)]

    @property
    def nodes(self) -> list[str]:
        """Every node, in the order they are built (and the reverse of teardown)."""
        return [
            "tr",
            "cn",
            "lmap",
            *self.mpa_names,
            *(s.name for s in self.stations),
        ]

    @property
    def namespaces(self) -> list[str]:
        return [self.ns(n) for n in self.nodes]

    @property
    def run_dir(self) -> Path:
        return RUN_ROOT / self.name

    def station(self, name: str) -> MsSpec:
        for s in self.stations:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.stations)
        raise TopologyError(f"no mobile station {name!r} (stations: {known})")

    def mpa_index(self, name: str) -> int:
        if name not in self.mpa_names:
            known = ", ".join(self.mpa_names)
            raise TopologyError(f"no MPA {name!r} (MPAs: {known})")
        return int(name[3:])

    # --- construction ----------------------------------------------------

    @classmethod
    def default(cls, name: str = "pm", mpas: int = 2, mss: int = 1) -> Topology:
        """CN, LMAP, ``mpas`` MPAs and ``mss`` stations, all starting at mpa1."""
        if not 1 <= mss <= MAX_MSS:
            raise TopologyError(f"mss = {mss}: between 1 and {MAX_MSS}")
        stations = tuple(
            MsSpec(
                name=f"ms{k}",
                mac=ms_mac(k),
                nai=f"ms{k}@example.net",
                lnp=ms_lnp(k),
                at="mpa1",
            )
            for k in range(1, mss + 1)
        )
        topo = cls(name=name, mpas=mpas, stations=stations)
        topo.validate()
        return topo

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], name: str | None = None, mpas: int | None = None
    ) -> Topology:
        tables = sorted(set(data) - {"lab", "ms"})
        if tables:
            raise TopologyError(
                f"unknown table [{tables[0]}] (a topology has [lab] and [[ms]])"
            )
        lab = dict(data.get("lab", {}))
        unknown = set(lab) - {
            "name",
            "mpas",
            "profile",
            "dataplane",
            "log_level",
            "lifetime",
            "absent_timeout",
            "aaa",
            "dhcp",
        }
        if unknown:
            raise TopologyError(f"unknown [lab] keys: {', '.join(sorted(unknown))}")
        topo = cls(
            name=name if name is not None else _get(lab, "[lab]", "name", str, "pm"),
            mpas=mpas if mpas is not None else _get(lab, "[lab]", "mpas", int, 2),
            profile=_get(lab, "[lab]", "profile", str, "draft-00"),
            dataplane=_get(lab, "[lab]", "dataplane", str, "auto"),
            log_level=_get(lab, "[lab]", "log_level", str, "info"),
            lifetime=_get(lab, "[lab]", "lifetime", int, 300),
            absent_timeout=float(_get(lab, "[lab]", "absent_timeout", float, 3.0)),
            aaa=_get(lab, "[lab]", "aaa", str, "file"),
            dhcp=_get(lab, "[lab]", "dhcp", bool, False),
        )
        entries = data.get("ms", [{}])
        if not isinstance(entries, list) or not all(
            isinstance(e, dict) for e in entries
        ):
            raise TopologyError("ms: one [[ms]] table per station")
        if not 1 <= len(entries) <= MAX_MSS:
            raise TopologyError(
                f"[[ms]]: {len(entries)} stations, between 1 and {MAX_MSS}"
            )
        stations = []
        for k, entry in enumerate(entries, start=1):
            unknown = set(entry) - {"name", "mac", "nai", "lnp", "at", "known"}
            if unknown:
                raise TopologyError(
                    f"unknown [[ms]] keys: {', '.join(sorted(unknown))}"
                )
            where = f"[[ms]] {k}"
            ms_name = _get(entry, where, "name", str, f"ms{k}")
            lnp = _get(entry, where, "lnp", str, str(ms_lnp(k)))
            try:
                network = IPv6Network(lnp)
            except ValueError as exc:
                raise TopologyError(f"{where} lnp: {exc}") from None
            stations.append(
                MsSpec(
                    name=ms_name,
                    mac=_get(entry, where, "mac", str, ms_mac(k)).lower(),
                    nai=_get(entry, where, "nai", str, f"{ms_name}@example.net"),
                    lnp=network,
                    at=_get(entry, where, "at", str, "mpa1"),
                    known=_get(entry, where, "known", bool, True),
                )
            )
        topo = replace(topo, stations=tuple(stations))
        topo.validate()
        return topo

    @classmethod
    def load(
        cls, path: str | Path, name: str | None = None, mpas: int | None = None
    ) -> Topology:
        # every failure names the file (and the key, where there is one)
        try:
            with open(path, "rb") as f:
                data = tomllib.load(f)
        except OSError as exc:
            raise TopologyError(f"{path}: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise TopologyError(f"{path}: not valid TOML: {exc}") from None
        try:
            return cls.from_dict(data, name=name, mpas=mpas)
        except TopologyError as exc:
            raise TopologyError(f"{path}: {exc}") from None

    def with_station(self, spec: MsSpec) -> Topology:
        topo = replace(self, stations=(*self.stations, spec))
        topo.validate()
        return topo

    def validate(self) -> None:
        if not NAME_RE.match(self.name):
            raise TopologyError(
                f"lab name {self.name!r}: 1 to 10 lowercase letters and digits, "
                "starting with a letter (it prefixes namespace names)"
            )
        if not isinstance(self.dhcp, bool):
            raise TopologyError(f"dhcp = {self.dhcp!r}: true or false")
        if self.aaa not in AAA_BACKENDS:
            raise TopologyError(f"aaa = {self.aaa!r}: one of {', '.join(AAA_BACKENDS)}")
        if not 1 <= self.mpas <= 50:
            raise TopologyError(f"mpas = {self.mpas}: between 1 and 50")
        # what the daemons would refuse at start, refused before anything is built
        if self.profile not in PROFILES:
            raise TopologyError(
                f"profile = {self.profile!r}: one of {', '.join(sorted(PROFILES))}"
            )
        if self.dataplane not in BACKENDS:
            raise TopologyError(
                f"dataplane = {self.dataplane!r}: one of {', '.join(BACKENDS)}"
            )
        if self.log_level.lower() not in LOG_LEVELS:
            raise TopologyError(
                f"log_level = {self.log_level!r}: one of {', '.join(LOG_LEVELS)}"
            )
        if not 4 <= self.lifetime <= 262140:
            raise TopologyError(f"lifetime = {self.lifetime}: 4 to 262140 seconds")
        if not 0.1 <= self.absent_timeout <= 86400:
            raise TopologyError(
                f"absent_timeout = {self.absent_timeout}: 0.1 to 86400 seconds"
            )
        if not 1 <= len(self.stations) <= MAX_MSS:
            raise TopologyError(
                f"{len(self.stations)} stations: between 1 and {MAX_MSS}"
            )
        names = [s.name for s in self.stations]
        if len(set(names)) != len(names):
            raise TopologyError("two stations share a name")
        macs = [s.mac for s in self.stations]
        if len(set(macs)) != len(macs):
            raise TopologyError("two stations share a MAC")
        nais = [s.nai for s in self.stations]
        if len(set(nais)) != len(nais):
            raise TopologyError("two stations share a NAI")
        # each MS owns its LNP (the LMAP refuses an overlap with 142)
        by_lnp = sorted(self.stations, key=lambda s: s.lnp)
        for a, b in itertools.pairwise(by_lnp):
            if a.lnp.overlaps(b.lnp):
                raise TopologyError(f"{a.name} and {b.name} share the LNP {b.lnp}")
        for s in self.stations:
            if not re.match(r"^ms[0-9a-z]{1,6}$", s.name):
                raise TopologyError(
                    f"station name {s.name!r}: ms followed by 1-6 chars"
                )
            if not MAC_RE.match(s.mac) or int(s.mac[:2], 16) & 1:
                raise TopologyError(f"{s.name}: {s.mac!r} is not a unicast MAC")
            if s.lnp.prefixlen != 64 or not s.lnp.subnet_of(LNP_SPACE):
                raise TopologyError(
                    f"{s.name}: LNP {s.lnp} must be a /64 in {LNP_SPACE}"
                )
            if s.at not in self.mpa_names:
                raise TopologyError(f"{s.name}: at = {s.at!r} is not an MPA")

    # --- generated configs (seed 7: what AAA keeps per MS) ------------------

    def lmap_config(self) -> str:
        d = self.run_dir
        return _toml(
            "lmap",
            {
                "address": str(LMAP_ADDRESS),
                "uplink": UPLINK_IF,
                "prefixes": [str(LNP_SPACE)],
                "mpas": [str(TRANSPORT)],
                "max_lifetime": 3600,
                "profile": self.profile,
                "dataplane": self.dataplane,
                "state": str(d / "lmap.db"),
                "control_socket": str(d / "lmap.sock"),
                "keep_forwarding": False,
                "log_level": self.log_level,
            },
        )

    def mpa_config(self, mpa: str) -> str:
        k = self.mpa_index(mpa)
        d = self.run_dir
        return _toml(
            "mpa",
            {
                "address": str(mpa_address(k)),
                "uplink": UPLINK_IF,
                "access": [ACCESS_IF],
                "virtual_mac": VIRTUAL_MAC,
                "virtual_link_local": str(VIRTUAL_LINK_LOCAL),
                "lifetime": self.lifetime,
                "pbu_initial_timeout": 1.0,
                "absent_timeout": self.absent_timeout,
                "router_lifetime": 1800,
                "profile": self.profile,
                "dataplane": self.dataplane,
                "control_socket": str(d / f"{mpa}.sock"),
                "log_level": self.log_level,
                **({"dhcp_server": str(DHCP_ADDRESS)} if self.dhcp else {}),
            },
        ) + _toml("aaa", self.aaa_config())

    def aaa_config(self) -> dict[str, Any]:
        """The MPAs' ``[aaa]`` table."""
        if self.aaa == "radius":
            server = {
                "address": str(LMAP_ADDRESS),
                "port": RADIUS_PORT,
                "secret": RADIUS_SECRET,
            }
            return {"backend": "radius", "servers": [server], "timeout": 1.0}
        return {"backend": "file", "file": "profiles.toml"}

    def profiles(self) -> str:
        """The AAA profiles file: every known station, keyed by MAC and NAI."""
        parts = []
        for s in self.stations:
            if not s.known:
                continue
            parts.append(
                "[[station]]\n"
                + _pairs(
                    {
                        "mac": s.mac,
                        "nai": s.nai,
                        "lmap": str(LMAP_ADDRESS),
                        "lnp": str(s.lnp),
                        **(
                            {
                                "address_mode": "dhcpv6",
                                "dhcp_server": str(DHCP_ADDRESS),
                            }
                            if self.dhcp
                            else {}
                        ),
                    }
                )
            )
        return "\n".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "lab": {
                "name": self.name,
                "mpas": self.mpas,
                "profile": self.profile,
                "dataplane": self.dataplane,
                "log_level": self.log_level,
                "lifetime": self.lifetime,
                "absent_timeout": self.absent_timeout,
                "aaa": self.aaa,
                "dhcp": self.dhcp,
            },
            "ms": [
                {
                    "name": s.name,
                    "mac": s.mac,
                    "nai": s.nai,
                    "lnp": str(s.lnp),
                    "at": s.at,
                    "known": s.known,
                }
                for s in self.stations
            ],
        }


def _get(table: dict[str, Any], where: str, key: str, kind: type, default: Any) -> Any:
    """``table[key]`` checked to be a ``kind`` (an int passes for a float)."""
    value = table.get(key, default)
    ok = isinstance(value, kind) and not (kind is not bool and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok = True
    if not ok:
        names = {
            str: "a string",
            int: "an integer",
            float: "a number",
            bool: "true or false",
        }
        raise TopologyError(f"{where} {key} = {value!r}: {names[kind]}")
    return value


def _value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    text = str(v).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _pairs(values: dict[str, Any]) -> str:
    return "".join(f"{k} = {_value(v)}\n" for k, v in values.items())


def _toml(table: str, values: dict[str, Any]) -> str:
    return f"[{table}]\n" + _pairs(values) + "\n"
