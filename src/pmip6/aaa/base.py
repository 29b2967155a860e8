"""Mobile station profiles and where they come from (seed sections 6.1 and 7).

During network access authentication the MPA asks AAA for the MS's profile.
Backends: ``pmip6.aaa.file`` (the embedded default: a TOML file) and
``pmip6.aaa.radius`` (RFC 6572 attributes).
"""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network


class AddressMode(enum.StrEnum):
    """How the MS configures its LoA (seed 6.3)."""

    SLAAC = "slaac"
    DHCPV6 = "dhcpv6"
    STATIC = "static"


@dataclass(frozen=True)
class MsProfile:
    """What the seed's section 7 lists as kept by AAA for each MS."""

    nai: str
    lmap_address: IPv6Address
    lnp: IPv6Network
    loa: IPv6Address | None = None
    default_gateway: IPv6Address | None = None
    address_mode: AddressMode = AddressMode.SLAAC
    dhcp_server: IPv6Address | None = None
    # 64-bit interface identifier (RFC 6572 PMIP6-Home-Interface-ID)
    interface_id: int | None = None


class AaaError(RuntimeError):
    """AAA could not answer (unreachable, timed out, malformed reply).

    Distinct from a refusal: ``authenticate`` returns None for a refused MS.
    """


class Aaa(abc.ABC):
    @abc.abstractmethod
    async def authenticate(self, mac: str, nai: str | None = None) -> MsProfile | None:
        """The profile for the MS with link-layer address ``mac`` (lowercase,
        colon separated), or None when AAA refuses it.

        ``nai`` is given when the access layer (802.1X) supplied one.
        """

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release sockets; the default has none."""
