"""What the backends without a tunnel device (seg6, bpf) share.

Each LoA or LNP route carries its own encapsulation towards the peer: a
lightweight tunnel state on the route. The layout, with ENCAP(peer) standing
for the backend's encapsulation:

LMAP::

    TARGET ENCAP(CARE_OF) dev UPLINK proto 155

MPA::

    TARGET dev ACCESS proto 155                                   (deliver)
    from TARGET iif ACCESS lookup T(lmap) pref 20 proto 155       (uplink)
    default ENCAP(LMAP) dev UPLINK table T(lmap)

A backend says how to encapsulate towards a peer (for pyroute2 and for the
batched fast path), how to read the peer back from a dumped route, and how
packets sent to its own address are decapsulated.
"""

from __future__ import annotations

import abc
import errno
import logging
from collections.abc import Mapping
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from pmip6.dataplane import fastpath
from pmip6.dataplane.base import DataPlaneError
from pmip6.dataplane.kernel import (
    PROTO,
    RT_TABLE_MAIN,
    TABLE_UPLINK_FIRST,
    TABLE_UPLINK_LAST,
    KernelDataPlane,
    attrs,
    normalise_bindings,
    normalise_visitors,
    route_target,
)

log = logging.getLogger("pmip6.dataplane")

#: reconcile with more changes than this goes through the batched fast path
FAST_THRESHOLD = 32


class LwtDataPlane(KernelDataPlane):
    """See the module docstring. ``fast=False`` keeps reconcile on pyroute2."""

    def __init__(self, netns: str | None = None, fast: bool = True) -> None:
        super().__init__(netns)
        self.fast = fast

    # --- what a backend says ------------------------------------------------

    @abc.abstractmethod
    def route_encap(self, own: IPv6Address, peer: IPv6Address) -> dict[str, Any]:
        """pyroute2 route arguments encapsulating from ``own`` to ``peer``."""

    @abc.abstractmethod
    def route_peer(self, msg: Any) -> IPv6Address | None:
        """The peer a route dumped by pyroute2 tunnels to (None: no tunnel)."""

    @abc.abstractmethod
    def fast_encap(self, own: IPv6Address, peer: IPv6Address) -> bytes:
        """RTA_ENCAP_TYPE and RTA_ENCAP for the batched fast path."""

    @abc.abstractmethod
    def fast_peer(self, encap: bytes) -> IPv6Address | None:
        """The peer of a dumped RTA_ENCAP payload (None: not one of ours)."""

    @abc.abstractmethod
    def decap_setup(self, own: IPv6Address, uplink: str, oif: int) -> None:
        """Decapsulate IPv6-in-IPv6 sent to ``own`` arriving on ``uplink``."""

    def changes_done(self) -> None:
        """Hook: the routes asked for so far are in the kernel (or failed)."""

    # --- shared set-up ------------------------------------------------------

    def _setup(self, own: IPv6Address, uplink: str) -> None:
        self._need()
        oif = self.ifindex(uplink)
        self.sysctl_set("net.ipv6.conf.all.forwarding", "1")
        self.decap_setup(IPv6Address(own), uplink, oif)

    def _encap_route(
        self,
        target: IPv6Network,
        own: IPv6Address,
        peer: IPv6Address,
        oif: int,
        table: int,
    ) -> None:
        try:
            self.replace_route(
                target,
                table,
                oif,
                f"route {target} via {peer}",
                lambda: self.route_encap(own, peer),
            )
        finally:
            self.changes_done()

    # --- LMAP ---------------------------------------------------------------

    def lmap_setup(self, own: IPv6Address, uplink: str) -> None:
        with self._lock:
            self._setup(own, uplink)
            self.lmap_own = IPv6Address(own)
            self.lmap_uplink = uplink

    def _lmap_oif(self) -> tuple[IPv6Address, int]:
        if self.lmap_uplink is None or self.lmap_own is None:
            raise DataPlaneError("lmap_setup has not been called")
        return self.lmap_own, self.ifindex(self.lmap_uplink)

    def lmap_bind(self, target: IPv6Network, care_of: IPv6Address) -> None:
        with self._lock:
            self._need()
            own, oif = self._lmap_oif()
            self._encap_route(
                IPv6Network(target), own, IPv6Address(care_of), oif, RT_TABLE_MAIN
            )

    def lmap_unbind(self, target: IPv6Network) -> None:
        with self._lock:
            self._need()
            self.del_route(IPv6Network(target), RT_TABLE_MAIN)

    def lmap_current(self) -> dict[IPv6Network, IPv6Address]:
        """Bindings of ours in the kernel now (target -> care-of)."""
        self._need()
        if self.fast:
            with self.inside(), fastpath.Batcher() as b:
                return {
                    t: peer
                    for t, proto, encap in b.dump_routes(RT_TABLE_MAIN)
                    if proto == PROTO and (peer := self.fast_peer(encap)) is not None
                }
        return {
            route_target(r): peer
            for r in self.our_routes(RT_TABLE_MAIN)
            if (peer := self.route_peer(r)) is not None
        }

    def lmap_reconcile(self, bindings: Mapping[IPv6Network, IPv6Address]) -> None:
        with self._lock:
            self._need()
            want = normalise_bindings(bindings)
            own, oif = self._lmap_oif()
            have = self.lmap_current()
            gone = [t for t in have if t not in want]
            changed = [(t, c) for t, c in want.items() if have.get(t) != c]
            if self.fast and len(gone) + len(changed) > FAST_THRESHOLD:
                self._bulk(gone, changed, own, oif)
            else:
                for t in gone:
                    self.del_route(t, RT_TABLE_MAIN)
                for t, c in changed:
                    self._encap_route(t, own, c, oif, RT_TABLE_MAIN)
            log.info(
                "reconciled %d bindings: %d removed, %d installed",
                len(want),
                len(gone),
                len(changed),
            )

    def _bulk(
        self,
        gone: list[IPv6Network],
        changed: list[tuple[IPv6Network, IPv6Address]],
        own: IPv6Address,
        oif: int,
    ) -> None:
        encaps: dict[IPv6Address, bytes] = {}
        msgs = [fastpath.route_del(t, RT_TABLE_MAIN, PROTO) for t in gone]
        for t, c in changed:
            if c not in encaps:
                encaps[c] = self.fast_encap(own, c)
            msgs.append(fastpath.encap_add(t, encaps[c], oif, RT_TABLE_MAIN, PROTO))
        try:
            with self.inside(), fastpath.Batcher() as b:
                results = b.run_retrying(msgs)
        finally:
            self.changes_done()
        failed = [
            (i, e)
            for i, e in enumerate(results)
            if e and not (i < len(gone) and e == errno.ESRCH)
        ]
        if failed:
            e = failed[0][1]
            raise DataPlaneError(
                f"{len(failed)} of {len(msgs)} route changes failed, "
                f"first: {errno.errorcode.get(e, e)}"
            )

    # --- MPA ----------------------------------------------------------------

    def mpa_setup(self, own: IPv6Address, uplink: str) -> None:
        with self._lock:
            self._setup(own, uplink)
            self.mpa_own = IPv6Address(own)
            self.mpa_uplink = uplink

    def _uplink_tables(self) -> dict[IPv6Address, int]:
        """LMAP -> table of its uplink default route, as the kernel holds them."""
        found: dict[IPv6Address, int] = {}
        with self.inside(), fastpath.Batcher() as b:
            for target, proto, encap, table in b.dump_all():
                if (
                    proto == PROTO
                    and TABLE_UPLINK_FIRST <= table <= TABLE_UPLINK_LAST
                    and target.prefixlen == 0
                    and (peer := self.fast_peer(encap)) is not None
                ):
                    found[peer] = table
        return found

    def _uplink_table(self, lmap: IPv6Address) -> int:
        tables = self._uplink_tables()
        if lmap in tables:
            return tables[lmap]
        used = set(tables.values()) | set(self.uplink_tables())
        table = next(
            (
                t
                for t in range(TABLE_UPLINK_FIRST, TABLE_UPLINK_LAST + 1)
                if t not in used
            ),
            None,
        )
        if table is None:
            raise DataPlaneError("out of uplink tables (255 LMAPs)")
        if self.mpa_uplink is None or self.mpa_own is None:
            raise DataPlaneError("mpa_setup has not been called")
        self._encap_route(
            IPv6Network("::/0"),
            self.mpa_own,
            lmap,
            self.ifindex(self.mpa_uplink),
            table,
        )
        return table

    def mpa_current(self) -> dict[IPv6Network, tuple[str, IPv6Address]]:
        """Visitors of ours in the kernel now (target -> (access, lmap))."""
        self._need()
        lmap_of = {t: lmap for lmap, t in self._uplink_tables().items()}
        out: dict[IPv6Network, tuple[str, IPv6Address]] = {}
        for r in self.visitor_rules():
            a = attrs(r)
            lmap = lmap_of.get(a.get("FRA_TABLE", r.get("table")))
            if lmap is not None and "FRA_SRC" in a:
                out[IPv6Network(f"{a['FRA_SRC']}/{r['src_len']}")] = (
                    a.get("FRA_IIFNAME", ""),
                    lmap,
                )
        return out

    def mpa_attach(self, target: IPv6Network, access: str, lmap: IPv6Address) -> None:
        with self._lock:
            self._need()
            target = IPv6Network(target)
            lmap = IPv6Address(lmap)
            table = self._uplink_table(lmap)

            # downlink: what is decapsulated for the target leaves here
            self.replace_route(
                target,
                RT_TABLE_MAIN,
                self.ifindex(access),
                f"route {target} dev {access}",
            )

            self.steer_visitor(target, access, table)
            self._gc_tables()

    def _gc_tables(self) -> None:
        """Drop uplink tables no visitor rule points to any more."""
        in_use = {
            attrs(r).get("FRA_TABLE", r.get("table")) for r in self.visitor_rules()
        }
        for table in self._uplink_tables().values():
            if table not in in_use:
                self.del_route(IPv6Network("::/0"), table)

    def mpa_detach(self, target: IPv6Network) -> None:
        with self._lock:
            self._need()
            target = IPv6Network(target)
            for r in self.visitor_rules_for(target):
                self.del_rule(r)
            self.del_route(target, RT_TABLE_MAIN)
            self.forget_neighbours(target)
            self._gc_tables()

    def mpa_reconcile(
        self, visitors: Mapping[IPv6Network, tuple[str, IPv6Address]]
    ) -> None:
        with self._lock:
            self._need()
            want = normalise_visitors(visitors)
            for t in self.mpa_current():
                if t not in want:
                    self.mpa_detach(t)
            # a visitor rule whose table lost its tunnel (e.g. one from an
            # address this node no longer has) steers into nothing
            tables = set(self._uplink_tables().values())
            for r in self.visitor_rules():
                if attrs(r).get("FRA_TABLE", r.get("table")) not in tables:
                    self.del_rule(r)
            for r in self.our_routes(RT_TABLE_MAIN):
                t = route_target(r)
                if self.route_peer(r) is None and t not in want:
                    self.del_route(t, RT_TABLE_MAIN)
            for t, (access, lmap) in want.items():
                self.mpa_attach(t, access, lmap)
