"""ip6tnl backend: one ip6ip6 tunnel device per peer, shared, reference counted.

The classic layout for kernels that have ip6_tunnel (RFC 2473):

LMAP::

    ip -6 tunnel add pm6t<hash> mode ip6ip6 local OWN remote CARE_OF dev UPLINK
    TARGET dev pm6t<hash> proto 155

MPA::

    TARGET dev ACCESS proto 155
    from TARGET iif ACCESS lookup T(lmap) pref 20 proto 155
    default dev pm6t<hash> table T(lmap) proto 155

Decapsulation needs nothing more: the kernel hands IPv6-in-IPv6 from a peer to
the tunnel whose (local, remote) match, and routes the inner packet. A tunnel
lives while a binding or visitor uses it. Devices of ours carry the alias
``pmip6`` so a restarted daemon finds them.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import errno
import hashlib
import logging
import os
import socket
from collections.abc import Mapping
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from pmip6.dataplane.base import DataPlaneError
from pmip6.dataplane.kernel import (
    RT_TABLE_MAIN,
    TABLE_UPLINK_FIRST,
    TABLE_UPLINK_LAST,
    KernelDataPlane,
    _ignore,
    attrs,
    normalise_bindings,
    normalise_visitors,
    retry_enomem,
    route_target,
)

log = logging.getLogger("pmip6.dataplane.ip6tnl")

ALIAS = "pmip6"
IP6_TNL_F_IGN_ENCAP_LIMIT = 0x1  # include/uapi/linux/ip6_tunnel.h
_reason: str | None = None


def unavailable_reason() -> str:
    """Empty if this kernel can create an ip6ip6 tunnel (probed once)."""
    global _reason
    if _reason is None:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            _reason = _probe()
        else:
            # a daemon asks from its running event loop, in which pyroute2's
            # IPRoute refuses to start: probe on a thread of its own
            with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
                _reason = pool.submit(_probe).result()
    return _reason


def _probe() -> str:
    name = f"pm6probe{os.getpid() % 100000}"
    try:
        with IPRoute() as ipr:
            ipr.link(
                "add",
                ifname=name,
                kind="ip6tnl",
                ip6tnl_local="::1",
                ip6tnl_remote="::1",
                ip6tnl_proto=socket.IPPROTO_IPV6,
            )
            ipr.link("del", ifname=name)
        return ""
    except NetlinkError as exc:
        return f"the kernel cannot create ip6tnl devices ({exc.args[-1]})"
    except Exception as exc:
        return f"cannot probe ip6tnl: {exc}"


def available() -> bool:
    return not unavailable_reason()


def tunnel_name(local: IPv6Address, remote: IPv6Address) -> str:
    digest = hashlib.sha1(local.packed + remote.packed).hexdigest()
    return f"pm6t{digest[:11]}"


class Ip6tnlDataPlane(KernelDataPlane):
    """See the module docstring."""

    name = "ip6tnl"

    def __init__(self, netns: str | None = None) -> None:
        super().__init__(netns)
        self._lmap_targets: dict[IPv6Network, IPv6Address] = {}
        self._mpa_targets: dict[IPv6Network, tuple[str, IPv6Address]] = {}
        self._tables: dict[IPv6Address, int] = {}

    # --- tunnels ------------------------------------------------------------

    def _own(self) -> IPv6Address:
        own = self.lmap_own or self.mpa_own
        if own is None:
            raise DataPlaneError("lmap_setup/mpa_setup has not been called")
        return own

    def _uplink(self) -> str:
        up = self.lmap_uplink or self.mpa_uplink
        assert up is not None
        return up

    def _tunnel(self, peer: IPv6Address) -> int:
        own = self._own()
        name = tunnel_name(own, peer)
        found = self.ipr.link_lookup(ifname=name)
        if found:
            return int(found[0])
        retry_enomem(
            lambda: self.ipr.link(
                "add",
                ifname=name,
                kind="ip6tnl",
                ip6tnl_local=str(own),
                ip6tnl_remote=str(peer),
                ip6tnl_proto=socket.IPPROTO_IPV6,
                # no Tunnel Encapsulation Limit option (RFC 2473 4.1.1): the
                # outer header's next header is 41, as the other backends send
                ip6tnl_flags=IP6_TNL_F_IGN_ENCAP_LIMIT,
                ip6tnl_link=self.ifindex(self._uplink()),
            ),
            f"tunnel to {peer}",
        )
        idx = self.ifindex(name)
        self.ipr.link("set", index=idx, ifalias=ALIAS, state="up")
        return idx

    def _users(self, peer: IPv6Address) -> int:
        return sum(1 for c in self._lmap_targets.values() if c == peer) + sum(
            1 for _, m in self._mpa_targets.values() if m == peer
        )

    def _release(self, peer: IPv6Address) -> None:
        if self._users(peer) == 0:
            name = tunnel_name(self._own(), peer)
            _ignore((errno.ENODEV,), lambda: self.ipr.link("del", ifname=name))
            table = self._tables.pop(peer, None)
            if table is not None:
                self.del_route(IPv6Network("::/0"), table)

    def remove_devices(self) -> None:
        for link in self.ipr.get_links():
            if link.get_attr("IFLA_IFALIAS") == ALIAS:
                self._del_link(link["index"])
        self._lmap_targets.clear()
        self._mpa_targets.clear()
        self._tables.clear()

    def _del_link(self, index: int) -> None:
        _ignore((errno.ENODEV,), lambda: self.ipr.link("del", index=index))

    def _route(self, target: IPv6Network, oif: int, table: int) -> None:
        self.replace_route(target, table, oif, f"route {target}")

    # --- set-up -------------------------------------------------------------

    def _setup(self, own: IPv6Address, uplink: str) -> None:
        self._need()
        self.ifindex(uplink)
        self.sysctl_set("net.ipv6.conf.all.forwarding", "1")

    def lmap_setup(self, own: IPv6Address, uplink: str) -> None:
        with self._lock:
            self._setup(own, uplink)
            self.lmap_own, self.lmap_uplink = IPv6Address(own), uplink

    def mpa_setup(self, own: IPv6Address, uplink: str) -> None:
        with self._lock:
            self._setup(own, uplink)
            self.mpa_own, self.mpa_uplink = IPv6Address(own), uplink

    # --- LMAP ---------------------------------------------------------------

    def lmap_bind(self, target: IPv6Network, care_of: IPv6Address) -> None:
        with self._lock:
            self._need()
            target, care_of = IPv6Network(target), IPv6Address(care_of)
            self._route(target, self._tunnel(care_of), RT_TABLE_MAIN)
            old = self._lmap_targets.get(target)
            self._lmap_targets[target] = care_of
            if old is not None and old != care_of:
                self._release(old)

    def lmap_unbind(self, target: IPv6Network) -> None:
        with self._lock:
            self._need()
            target = IPv6Network(target)
            self.del_route(target, RT_TABLE_MAIN)
            old = self._lmap_targets.pop(target, None)
            if old is not None:
                self._release(old)

    def lmap_reconcile(self, bindings: Mapping[IPv6Network, IPv6Address]) -> None:
        with self._lock:
            self._need()
            want = normalise_bindings(bindings)
            for r in self.our_routes(RT_TABLE_MAIN):
                t = route_target(r)
                if t not in want and t not in self._mpa_targets:
                    self.del_route(t, RT_TABLE_MAIN)
            for t in list(self._lmap_targets):
                if t not in want:
                    self.lmap_unbind(t)
            for t, c in want.items():
                self.lmap_bind(t, c)

    # --- MPA ----------------------------------------------------------------

    def _table(self, lmap: IPv6Address) -> int:
        if lmap not in self._tables:
            used = set(self._tables.values()) | set(self.uplink_tables())
            free = [
                t
                for t in range(TABLE_UPLINK_FIRST, TABLE_UPLINK_LAST + 1)
                if t not in used
            ]
            if not free:
                raise DataPlaneError("out of uplink tables (255 LMAPs)")
            self._tables[lmap] = free[0]
        table = self._tables[lmap]
        self._route(IPv6Network("::/0"), self._tunnel(lmap), table)
        return table

    def mpa_attach(self, target: IPv6Network, access: str, lmap: IPv6Address) -> None:
        with self._lock:
            self._need()
            target, lmap = IPv6Network(target), IPv6Address(lmap)
            table = self._table(lmap)
            self._route(target, self.ifindex(access), RT_TABLE_MAIN)
            self.steer_visitor(target, access, table)
            old = self._mpa_targets.get(target)
            self._mpa_targets[target] = (access, lmap)
            if old is not None and old[1] != lmap:
                self._release(old[1])

    def mpa_detach(self, target: IPv6Network) -> None:
        with self._lock:
            self._need()
            target = IPv6Network(target)
            for r in self.visitor_rules_for(target):
                self.del_rule(r)
            self.del_route(target, RT_TABLE_MAIN)
            old = self._mpa_targets.pop(target, None)
            if old is not None:
                self._release(old[1])

    def mpa_reconcile(
        self, visitors: Mapping[IPv6Network, tuple[str, IPv6Address]]
    ) -> None:
        with self._lock:
            self._need()
            want = normalise_visitors(visitors)
            for r in self.visitor_rules():
                a: Any = attrs(r)
                if "FRA_SRC" in a:
                    t = IPv6Network(f"{a['FRA_SRC']}/{r['src_len']}")
                    if t not in want:
                        self.del_rule(r)
                        self.del_route(t, RT_TABLE_MAIN)
            for t in list(self._mpa_targets):
                if t not in want:
                    self.mpa_detach(t)
            for t, (access, lmap) in want.items():
                self.mpa_attach(t, access, lmap)
