"""Names and helpers shared by the MPA engine tests.

One MPA at ``MPA`` serving stations on bridge ``BR`` for the LMAP at ``LMAP``;
station 1 has ``MAC1`` and link-local ``LL1`` and its LNP is ``LNP1``.
"""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network
from typing import Any

from pmip6.core.mpa import Effect, SendMh
from pmip6.wire.mh import BindingUpdate

MPA = IPv6Address("fd00::11")
LMAP = IPv6Address("fd00::1")
MAC1 = "02:00:00:00:aa:01"
MAC2 = "02:00:00:00:aa:02"
LL1 = IPv6Address("fe80::ff:fe00:aa01")
LNP1 = IPv6Network("2001:db8:1:1::/64")
LNP2 = IPv6Network("2001:db8:1:2::/64")
LOA1 = IPv6Address("2001:db8:1:1:0:ff:fe00:aa01")  # LNP1 + EUI-64 of MAC1
BR = "br0"


def of(effects: list[Effect], kind: type) -> list[Any]:
    """The effects of one kind, in order."""
    return [e for e in effects if isinstance(e, kind)]


def pbus(effects: list[Effect]) -> list[BindingUpdate]:
    """The PBUs among the effects, in order."""
    return [
        e.message
        for e in effects
        if isinstance(e, SendMh) and isinstance(e.message, BindingUpdate)
    ]
