"""What the engines need from the kernel's forwarding plane.

The LMAP and MPA engines decide; a backend makes the kernel forward. Every
backend implements this interface; ``pmip6.dataplane.fake`` records calls for
engine and daemon tests.

Targets are IPv6 networks: a LoA is a /128, a per-MS prefix is its LNP.
Every call is idempotent: applying the same state twice changes nothing.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from ipaddress import IPv6Address, IPv6Network


class DataPlaneError(RuntimeError):
    """The kernel refused a change (after retries where retrying makes sense)."""


class DataPlane(abc.ABC):
    #: backend name as used in config files ("seg6", "ip6tnl", "fake")
    name: str = ""

    # --- lifecycle -------------------------------------------------------

    @abc.abstractmethod
    def start(self) -> None:
        """Open netlink, then reconcile: remove state of ours that no caller wants.

        State of ours found in the kernel (left by a daemon that stopped with
        ``keep=True`` or crashed) is adopted by the next ``*_bind``/``*_attach``
        call for the same target and removed by ``reconcile_*`` otherwise.
        """

    @abc.abstractmethod
    def stop(self, keep: bool = False) -> None:
        """Remove everything this backend added, unless ``keep`` (restart)."""

    # --- LMAP side -------------------------------------------------------

    @abc.abstractmethod
    def lmap_setup(self, own: IPv6Address, uplink: str) -> None:
        """Decapsulate IPv6-in-IPv6 sent to ``own``; use it as tunnel source."""

    @abc.abstractmethod
    def lmap_bind(self, target: IPv6Network, care_of: IPv6Address) -> None:
        """Tunnel packets for ``target`` to the MPA at ``care_of`` (add or move)."""

    @abc.abstractmethod
    def lmap_unbind(self, target: IPv6Network) -> None:
        """Stop tunnelling ``target``; unknown targets are ignored."""

    @abc.abstractmethod
    def lmap_reconcile(self, bindings: Mapping[IPv6Network, IPv6Address]) -> None:
        """Make the kernel hold exactly ``bindings`` (bulk; used at start)."""

    # --- MPA side --------------------------------------------------------

    @abc.abstractmethod
    def mpa_setup(self, own: IPv6Address, uplink: str) -> None:
        """Decapsulate IPv6-in-IPv6 sent to ``own``; use it as tunnel source."""

    @abc.abstractmethod
    def mpa_attach(self, target: IPv6Network, access: str, lmap: IPv6Address) -> None:
        """Deliver ``target`` on ``access``; tunnel packets from it to ``lmap``."""

    @abc.abstractmethod
    def mpa_detach(self, target: IPv6Network) -> None:
        """Undo ``mpa_attach`` for ``target``; unknown targets are ignored."""

    @abc.abstractmethod
    def mpa_reconcile(
        self, visitors: Mapping[IPv6Network, tuple[str, IPv6Address]]
    ) -> None:
        """Make the kernel hold exactly ``visitors`` (target -> (access, lmap))."""
