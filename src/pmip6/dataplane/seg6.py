"""seg6 backend: IPv6-in-IPv6 (RFC 2473) through seg6 lightweight tunnels.

No tunnel device: each LoA or LNP route carries its own encapsulation.

LMAP::

    TARGET encap seg6 mode encap.red segs CARE_OF dev UPLINK proto 155
    ip sr tunsrc set OWN                       # outer source address

MPA::

    TARGET dev ACCESS proto 155                                   (deliver)
    from TARGET iif ACCESS lookup T(lmap) pref 20 proto 155       (uplink)
    default encap seg6 mode encap.red segs LMAP dev UPLINK table T(lmap)

Both, to decapsulate what is sent to OWN::

    to OWN/128 ipproto 41 lookup 0x9b00 pref 10 proto 155
    OWN/128 encap seg6local action End.DX6 nh6 :: dev UPLINK table 0x9b00
    local rule moved from pref 0 to pref 1000

encap.red with one segment produces no routing header: the outer header's
next header is 41, exactly RFC 2473. pyroute2 0.9.7 does not know the
encap.red mode (value 3) and silently falls back to "encap" (1), which adds a
routing header; :func:`teach_pyroute2_encap_red` adds the mode to its table.
"""

from __future__ import annotations

import errno
import logging
import socket
import subprocess
from collections.abc import Mapping
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from pyroute2.netlink.rtnl import rtmsg as _rtmsg

from pmip6.dataplane import fastpath
from pmip6.dataplane.base import DataPlaneError
from pmip6.dataplane.kernel import (
    PREF_DECAP,
    PREF_UPLINK,
    PROTO,
    RT_TABLE_MAIN,
    TABLE_DECAP,
    TABLE_UPLINK_FIRST,
    TABLE_UPLINK_LAST,
    KernelDataPlane,
    attrs,
    normalise_bindings,
    retry_enomem,
    route_target,
)

log = logging.getLogger("pmip6.dataplane.seg6")

SEG6_IPTUN_MODE_ENCAP_RED = 3
#: reconcile with more changes than this goes through the batched fast path
FAST_THRESHOLD = 32


def teach_pyroute2_encap_red() -> None:
    """Add ``"encap.red"`` (kernel value 3) to pyroute2's seg6 mode table.

    pyroute2 maps unknown mode names to "encap" without a word; the mapping
    is a class-level dict, so adding the entry once fixes encode and decode.
    """
    srh: Any = _rtmsg.rtmsg_base.seg6_encap_info.ipv6_sr_hdr
    if not isinstance(getattr(srh, "encapmodes", None), dict):
        raise DataPlaneError("this pyroute2 encodes seg6 differently; cannot use it")
    srh.encapmodes["encap.red"] = SEG6_IPTUN_MODE_ENCAP_RED
    srh.r_encapmodes[SEG6_IPTUN_MODE_ENCAP_RED] = "encap.red"


teach_pyroute2_encap_red()


def unavailable_reason() -> str:
    """Empty if seg6 lightweight tunnels can be configured here."""
    try:
        with open("/proc/sys/net/ipv6/seg6_flowlabel"):
            pass
    except OSError:
        return "the kernel has no IPv6 segment routing (CONFIG_IPV6_SEG6_LWTUNNEL)"
    return ""


def available() -> bool:
    return not unavailable_reason()


def seg6_encap(segment: IPv6Address) -> dict[str, Any]:
    return {"type": "seg6", "mode": "encap.red", "segs": [str(segment)]}


def route_segment(msg: Any) -> IPv6Address | None:
    """The care-of (single segment) of a dumped seg6 route, or None."""
    if attrs(msg).get("RTA_ENCAP_TYPE") != fastpath.LWTUNNEL_ENCAP_SEG6:
        return None
    encap = attrs(msg)["RTA_ENCAP"]
    srh = dict(encap["attrs"]).get("SEG6_IPTUNNEL_SRH")
    if not srh or not srh["segs"]:
        return None
    return IPv6Address(srh["segs"][0])


class Seg6DataPlane(KernelDataPlane):
    """See the module docstring. ``fast=False`` keeps reconcile on pyroute2."""

    name = "seg6"

    def __init__(self, netns: str | None = None, fast: bool = True) -> None:
        super().__init__(netns)
        self.fast = fast
        self._owns: set[IPv6Address] = set()
        self._saved_tunsrc: str | None = None

    # --- lifecycle ----------------------------------------------------------

    def on_start(self) -> None:
        why = unavailable_reason()
        if why:
            raise DataPlaneError(f"data plane 'seg6' is unavailable: {why}")

    def stop(self, keep: bool = False) -> None:
        with self._lock:
            if self.ipr is not None and not keep and self._saved_tunsrc is not None:
                self._tunsrc(self._saved_tunsrc)
                self._saved_tunsrc = None
            super().stop(keep)
            self._owns.clear()

    # --- shared set-up ------------------------------------------------------

    def _tunsrc(self, addr: str) -> None:
        # the seg6 generic netlink family has no pyroute2 binding; iproute2 does
        with self.inside():
            proc = subprocess.run(
                ["ip", "sr", "tunsrc", "set", addr], capture_output=True, text=True
            )
        if proc.returncode:
            raise DataPlaneError(f"ip sr tunsrc set {addr}: {proc.stderr.strip()}")

    def _tunsrc_now(self) -> str:
        with self.inside():
            out = subprocess.run(
                ["ip", "sr", "tunsrc", "show"], capture_output=True, text=True
            ).stdout.split()
        return out[-1] if out else "::"

    def _setup(self, own: IPv6Address, uplink: str) -> None:
        self._need()
        own = IPv6Address(own)
        oif = self.ifindex(uplink)
        self.sysctl_set("net.ipv6.conf.all.forwarding", "1")

        # outer source of everything we encapsulate (RFC 2473 section 3)
        if self._saved_tunsrc is None:
            self._saved_tunsrc = self._tunsrc_now()
        self._tunsrc(str(own))

        # decapsulation: End.DX6 strips the outer header, routes the inner one
        self._owns.add(own)
        retry_enomem(
            lambda: self.ipr.route(
                "replace",
                family=socket.AF_INET6,
                dst=str(own),
                dst_len=128,
                table=TABLE_DECAP,
                proto=PROTO,
                oif=oif,
                encap={"type": "seg6local", "action": "End.DX6", "nh6": "::"},
            ),
            f"decap route for {own}",
        )
        self.add_rule(
            priority=PREF_DECAP,
            table=TABLE_DECAP,
            dst=str(own),
            dst_len=128,
            ip_proto=socket.IPPROTO_IPV6,
        )
        self.move_local_rule()
        self._drop_stale_decap()

    def _drop_stale_decap(self) -> None:
        """Forget decap state for own addresses of an earlier run."""
        for r in self.our_rules():
            a = attrs(r)
            if a.get("FRA_PRIORITY") == PREF_DECAP and (
                IPv6Address(a.get("FRA_DST", "::")) not in self._owns
            ):
                self.del_rule(r)
        for r in self.our_routes(TABLE_DECAP):
            if route_target(r).network_address not in self._owns:
                self.del_route(route_target(r), TABLE_DECAP)

    def _encap_route(
        self, target: IPv6Network, segment: IPv6Address, oif: int, table: int
    ) -> None:
        self.replace_route(
            target,
            table,
            oif,
            f"route {target} via {segment}",
            lambda: {"encap": seg6_encap(segment)},
        )

    # --- LMAP ---------------------------------------------------------------

    def lmap_setup(self, own: IPv6Address, uplink: str) -> None:
        with self._lock:
            self._setup(own, uplink)
            self.lmap_own = IPv6Address(own)
            self.lmap_uplink = uplink

    def _lmap_oif(self) -> int:
        if self.lmap_uplink is None:
            raise DataPlaneError("lmap_setup has not been called")
        return self.ifindex(self.lmap_uplink)

    def lmap_bind(self, target: IPv6Network, care_of: IPv6Address) -> None:
        with self._lock:
            self._need()
            target = IPv6Network(target)
            self._encap_route(
                target, IPv6Address(care_of), self._lmap_oif(), RT_TABLE_MAIN
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
                    t: seg
                    for t, proto, encap in b.dump_routes(RT_TABLE_MAIN)
                    if proto == PROTO
                    and (seg := fastpath.seg6_segment(encap)) is not None
                }
        return {
            route_target(r): seg
            for r in self.our_routes(RT_TABLE_MAIN)
            if (seg := route_segment(r)) is not None
        }

    def lmap_reconcile(self, bindings: Mapping[IPv6Network, IPv6Address]) -> None:
        with self._lock:
            self._need()
            want = normalise_bindings(bindings)
            oif = self._lmap_oif()
            have = self.lmap_current()
            gone = [t for t in have if t not in want]
            changed = [(t, c) for t, c in want.items() if have.get(t) != c]
            if self.fast and len(gone) + len(changed) > FAST_THRESHOLD:
                self._bulk(gone, changed, oif)
            else:
                for t in gone:
                    self.del_route(t, RT_TABLE_MAIN)
                for t, c in changed:
                    self._encap_route(t, c, oif, RT_TABLE_MAIN)
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
        oif: int,
    ) -> None:
        msgs = [fastpath.route_del(t, RT_TABLE_MAIN, PROTO) for t in gone]
        msgs += [fastpath.seg6_add(t, c, oif, RT_TABLE_MAIN, PROTO) for t, c in changed]
        with self.inside(), fastpath.Batcher() as b:
            results = b.run_retrying(msgs)
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
                    and (seg := fastpath.seg6_segment(encap)) is not None
                ):
                    found[seg] = table
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
        if self.mpa_uplink is None:
            raise DataPlaneError("mpa_setup has not been called")
        self._encap_route(
            IPv6Network("::/0"), lmap, self.ifindex(self.mpa_uplink), table
        )
        return table

    def _visitor_rules(self) -> list[Any]:
        return [
            r for r in self.our_rules() if attrs(r).get("FRA_PRIORITY") == PREF_UPLINK
        ]

    def mpa_current(self) -> dict[IPv6Network, tuple[str, IPv6Address]]:
        """Visitors of ours in the kernel now (target -> (access, lmap))."""
        self._need()
        lmap_of = {t: lmap for lmap, t in self._uplink_tables().items()}
        out: dict[IPv6Network, tuple[str, IPv6Address]] = {}
        for r in self._visitor_rules():
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

            # downlink: what End.DX6 decapsulates for the target leaves here
            self.replace_route(
                target,
                RT_TABLE_MAIN,
                self.ifindex(access),
                f"route {target} dev {access}",
            )

            # uplink: replace a rule for the same target on another path
            for r in self._rules_for(target):
                a = attrs(r)
                if (a.get("FRA_IIFNAME"), a.get("FRA_TABLE", r.get("table"))) != (
                    access,
                    table,
                ):
                    self.del_rule(r)
            self.add_rule(
                priority=PREF_UPLINK,
                table=table,
                src=str(target.network_address),
                src_len=target.prefixlen,
                iifname=access,
            )
            self._gc_tables()

    def _rules_for(self, target: IPv6Network) -> list[Any]:
        out = []
        for r in self._visitor_rules():
            a = attrs(r)
            if "FRA_SRC" in a and (
                IPv6Network(f"{a['FRA_SRC']}/{r['src_len']}") == target
            ):
                out.append(r)
        return out

    def _gc_tables(self) -> None:
        """Drop uplink tables no visitor rule points to any more."""
        in_use = {
            attrs(r).get("FRA_TABLE", r.get("table")) for r in self._visitor_rules()
        }
        for table in self._uplink_tables().values():
            if table not in in_use:
                self.del_route(IPv6Network("::/0"), table)

    def mpa_detach(self, target: IPv6Network) -> None:
        with self._lock:
            self._need()
            target = IPv6Network(target)
            for r in self._rules_for(target):
                self.del_rule(r)
            self.del_route(target, RT_TABLE_MAIN)
            self.forget_neighbours(target)
            self._gc_tables()

    def mpa_reconcile(
        self, visitors: Mapping[IPv6Network, tuple[str, IPv6Address]]
    ) -> None:
        with self._lock:
            self._need()
            want = {
                IPv6Network(t): (a, IPv6Address(m)) for t, (a, m) in visitors.items()
            }
            for t in self.mpa_current():
                if t not in want:
                    self.mpa_detach(t)
            for r in self.our_routes(RT_TABLE_MAIN):
                t = route_target(r)
                if route_segment(r) is None and t not in want:
                    self.del_route(t, RT_TABLE_MAIN)
            for t, (access, lmap) in want.items():
                self.mpa_attach(t, access, lmap)
