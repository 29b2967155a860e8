"""Binding Error replies to Mobility Headers a node does not recognise.

RFC 6275 9.2: a Mobility Header whose MH Type the node does not know is
discarded and answered with a Binding Error, Status 2 (unrecognized MH Type
value), sent as RFC 6275 9.3.3 says: to the packet's Source Address, never to a
non-unicast one, Home Address unspecified (a proxy registration carries no Home
Address option), and rate limited as ICMPv6 errors are (RFC 4443 2.4 (f)).
Both engines (MPA and LMAP) answer through this module so that they agree on
the limit. Pure: time is an argument.
"""

from __future__ import annotations

import enum
from ipaddress import IPv6Address

from pmip6.wire.mh import BindingError


class BindingErrorStatus(enum.IntEnum):
    """Binding Error Status values (RFC 6275 6.1.9)."""

    UNKNOWN_BINDING_FOR_HOME_ADDRESS = 1
    UNRECOGNIZED_MH_TYPE = 2


# at most one Binding Error per peer per second: a peer that keeps sending a
# type we do not know learns it from the first answer, and a forged source
# cannot turn us into a reflector
MIN_INTERVAL = 1.0
# peers remembered by the limiter; past that the oldest are forgotten
MAX_PEERS = 4096


class BindingErrorLimiter:
    """Per-peer rate limit of Binding Errors (RFC 6275 9.3.3)."""

    def __init__(self, interval: float = MIN_INTERVAL, max_peers: int = MAX_PEERS):
        self.interval = interval
        self.max_peers = max_peers
        self._last: dict[IPv6Address, float] = {}

    def allow(self, peer: IPv6Address, now: float) -> bool:
        """True (and remember ``now``) when ``peer`` may get a Binding Error."""
        last = self._last.get(peer)
        if last is not None and now - last < self.interval:
            return False
        self._last.pop(peer, None)
        while len(self._last) >= self.max_peers:
            del self._last[next(iter(self._last))]
        self._last[peer] = now
        return True


def may_answer(src: IPv6Address) -> bool:
    """RFC 6275 9.3.3: no Binding Error to a non-unicast Source Address."""
    return not (src.is_multicast or src.is_unspecified)


def unrecognized_mh_type(
    src: IPv6Address, limiter: BindingErrorLimiter, now: float
) -> BindingError | None:
    """The Binding Error answering an unknown MH Type from ``src``, if one is due.

    None when ``src`` is not unicast or ``src`` had one less than
    ``limiter.interval`` ago.
    """
    if not may_answer(src) or not limiter.allow(src, now):
        return None
    return BindingError(
        status=BindingErrorStatus.UNRECOGNIZED_MH_TYPE,
        home_address=IPv6Address(0),
    )
