"""bpf backend: IPv6-in-IPv6 (RFC 2473) through eBPF, for kernels with
neither ip6_tunnel nor seg6 lightweight tunnels.

The route layout is that of ``pmip6.dataplane.lwt``, with
``encap bpf xmit "pmip6 OWN>PEER" headroom 40`` as the encapsulation: a
program of ``pmip6.dataplane.ebpf`` that prepends the outer header
OWN -> PEER and has the kernel route the packet again. One program is loaded
per (own, peer) pair and shared by every route towards that peer; the kernel
keeps it alive for as long as a route uses it. The name on the route says
which pair it serves, so a restarted daemon reads its bindings back from the
routes.

Decapsulation is a tc filter on the uplink's ingress (clsact qdisc, filter
priority 155, direct action) named ``pmip6 decap OWN``: IPv6-in-IPv6 sent to
OWN loses its outer header and is routed as the inner packet. At stop the
filters of ours go, and the clsact qdisc with them when nothing else uses it.
"""

from __future__ import annotations

import errno
import logging
import os
import resource
from ipaddress import IPv6Address
from typing import Any

from pyroute2.netlink.exceptions import NetlinkError

from pmip6.dataplane import ebpf, fastpath
from pmip6.dataplane.base import DataPlaneError
from pmip6.dataplane.kernel import PROTO, attrs
from pmip6.dataplane.lwt import LwtDataPlane

log = logging.getLogger("pmip6.dataplane.bpf")

#: tc filter priority of our decapsulation filters (like the route protocol)
TC_PRIO = PROTO
TC_INGRESS = 0xFFFFFFF2  # TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)
TC_EGRESS = 0xFFFFFFF3
ARPHRD_ETHER = 1
TUNNEL_PREFIX = "pmip6 "
DECAP_PREFIX = "pmip6 decap "
#: programs kept open for reuse; routes keep their own reference to theirs
MAX_OPEN_PROGRAMS = 128

_reason: str | None = None


def unavailable_reason() -> str:
    """Empty if the kernel loads our programs here (probed once)."""
    global _reason
    if _reason is None:
        _reason = ebpf.unavailable_reason()
    return _reason


def tunnel_name(own: IPv6Address, peer: IPv6Address) -> str:
    return f"{TUNNEL_PREFIX}{own}>{peer}"


def tunnel_ends(name: str | None) -> tuple[IPv6Address, IPv6Address] | None:
    """(own, peer) from a route's program name; None if it is not ours."""
    if not name or not name.startswith(TUNNEL_PREFIX):
        return None
    own, sep, peer = name[len(TUNNEL_PREFIX) :].partition(">")
    try:
        return (IPv6Address(own), IPv6Address(peer)) if sep else None
    except ValueError:
        return None


class BpfDataPlane(LwtDataPlane):
    """See the module docstring. ``fast=False`` keeps reconcile on pyroute2."""

    name = "bpf"

    def __init__(self, netns: str | None = None, fast: bool = True) -> None:
        super().__init__(netns, fast)
        self._programs: dict[tuple[IPv6Address, IPv6Address], int] = {}
        self._decap: set[tuple[int, str]] = set()  # (ifindex, filter name)

    # --- lifecycle ----------------------------------------------------------

    def on_start(self) -> None:
        why = unavailable_reason()
        if why:
            raise DataPlaneError(f"data plane 'bpf' is unavailable: {why}")
        # a bulk reconcile holds one program open per peer until it is done
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < hard:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    def stop(self, keep: bool = False) -> None:
        with self._lock:
            try:
                super().stop(keep)
            finally:
                for fd in self._programs.values():
                    os.close(fd)
                self._programs.clear()
                self._decap.clear()

    # --- encapsulation ------------------------------------------------------

    def _program(self, own: IPv6Address, peer: IPv6Address) -> int:
        key = (own, peer)
        fd = self._programs.pop(key, None)
        if fd is None:
            try:
                fd = ebpf.load_tunnel(own, peer)
            except ebpf.BpfError as exc:
                raise DataPlaneError(f"tunnel program {own}>{peer}: {exc}") from None
        self._programs[key] = fd  # most recently used last
        return fd

    def changes_done(self) -> None:
        # only now: a request encoded earlier names its program by this
        # descriptor, and a closed one's number would be reused by the next
        while len(self._programs) > MAX_OPEN_PROGRAMS:
            os.close(self._programs.pop(next(iter(self._programs))))

    def route_encap(self, own: IPv6Address, peer: IPv6Address) -> dict[str, Any]:
        xmit = {
            "fd": self._program(own, peer),
            "name": tunnel_name(own, peer),
            "headroom": ebpf.IPV6_HLEN,
        }
        return {"encap": {"type": "bpf", "xmit": xmit}}

    def fast_encap(self, own: IPv6Address, peer: IPv6Address) -> bytes:
        return fastpath.bpf_encap(
            self._program(own, peer), tunnel_name(own, peer), ebpf.IPV6_HLEN
        )

    def _peer(self, name: str | None) -> IPv6Address | None:
        # tunnels from an address we no longer have are gone since setup
        ends = tunnel_ends(name)
        return None if ends is None else ends[1]

    def route_peer(self, msg: Any) -> IPv6Address | None:
        a = attrs(msg)
        if a.get("RTA_ENCAP_TYPE") != fastpath.LWTUNNEL_ENCAP_BPF:
            return None
        xmit = dict(a["RTA_ENCAP"]["attrs"]).get("LWT_BPF_XMIT")
        if not xmit:
            return None
        return self._peer(dict(xmit["attrs"]).get("LWT_BPF_PROG_NAME"))

    def fast_peer(self, encap: bytes) -> IPv6Address | None:
        return self._peer(fastpath.bpf_xmit_name(encap))

    # --- decapsulation ------------------------------------------------------

    def _filters(self, index: int, parent: int = TC_INGRESS) -> list[Any]:
        try:
            return list(self.ipr.get_filters(index=index, parent=parent))
        except NetlinkError as exc:
            if exc.code in (errno.EINVAL, errno.ENOENT):  # no clsact qdisc
                return []
            raise

    def _our_filters(self, index: int) -> list[tuple[int, str]]:
        """(handle, name) of our decap filters on an interface."""
        out = []
        for f in self._filters(index):
            opts = f.get_attr("TCA_OPTIONS")
            name = dict(opts["attrs"]).get("TCA_BPF_NAME", "") if opts else ""
            if f["info"] >> 16 == TC_PRIO and name.startswith(DECAP_PREFIX):
                out.append((f["handle"], name))
        return out

    def decap_setup(self, own: IPv6Address, uplink: str, oif: int) -> None:
        (link,) = self.ipr.get_links(oif)
        if link["ifi_type"] != ARPHRD_ETHER:
            # the program reads the outer header after a 14-octet MAC header
            raise DataPlaneError(
                f"uplink {uplink} is not an Ethernet link (type {link['ifi_type']}); "
                "the bpf data plane decapsulates on Ethernet uplinks only"
            )
        name = f"{DECAP_PREFIX}{own}"
        try:
            fd = ebpf.load_decap(own)
        except ebpf.BpfError as exc:
            raise DataPlaneError(f"decap program for {own}: {exc}") from None
        try:
            try:
                self.ipr.tc("add", "clsact", oif)
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise
            present = self._our_filters(oif)
            handle = next((h for h, n in present if n == name), None)
            if handle is None:
                used = {h for h, _ in present}
                handle = next(h for h in range(1, len(used) + 2) if h not in used)
            self.ipr.tc(
                "replace-filter",
                "bpf",
                oif,
                handle,
                fd=fd,
                name=name,
                parent=TC_INGRESS,
                classid=1,
                direct_action=True,
                prio=TC_PRIO,
            )
        except NetlinkError as exc:
            raise DataPlaneError(f"decap filter on {uplink}: {exc.args[-1]}") from exc
        finally:
            os.close(fd)  # the filter holds the program now
        self._decap.add((oif, name))
        self._drop_stale_decap()
        self._drop_foreign_tunnels(own)

    def _drop_foreign_tunnels(self, own: IPv6Address) -> None:
        """Remove routes of ours that tunnel from an address not ours now
        (left by a run with another own address and ``keep``)."""
        owns = {a for a in (self.lmap_own, self.mpa_own, own) if a is not None}

        def foreign(encap: bytes) -> bool:
            ends = tunnel_ends(fastpath.bpf_xmit_name(encap))
            return ends is not None and ends[0] not in owns

        removed = self.delete_routes(foreign)
        if removed:
            log.info("removed %d tunnel routes from an earlier own address", removed)

    def _drop_stale_decap(self) -> None:
        """Remove our decap filters but those set up in this run."""
        for link in self.ipr.get_links():
            index = link["index"]
            stale = [
                handle
                for handle, name in self._our_filters(index)
                if (index, name) not in self._decap
            ]
            for handle in stale:
                self._del_filter(index, handle)
            if stale:
                # a clsact qdisc with nothing left in it was ours to remove
                self._drop_empty_clsact(index)

    def _del_filter(self, index: int, handle: int) -> None:
        try:
            self.ipr.tc(
                "del-filter", "bpf", index, handle, parent=TC_INGRESS, prio=TC_PRIO
            )
        except NetlinkError as exc:
            if exc.code not in (errno.ENOENT, errno.EINVAL):
                raise

    def _drop_empty_clsact(self, index: int) -> None:
        if self._filters(index) or self._filters(index, TC_EGRESS):
            return
        for q in self.ipr.get_qdiscs(index=index):
            if q.get_attr("TCA_KIND") == "clsact":
                try:
                    self.ipr.tc("del", "clsact", index)
                except NetlinkError as exc:
                    if exc.code not in (errno.ENOENT, errno.EINVAL):
                        raise

    def remove_devices(self) -> None:
        """The decap filters (this backend has no tunnel devices)."""
        self._decap.clear()
        self._drop_stale_decap()
