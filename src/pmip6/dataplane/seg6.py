"""seg6 backend: IPv6-in-IPv6 (RFC 2473) through seg6 lightweight tunnels.

No tunnel device: each LoA or LNP route carries its own encapsulation (the
layout is in ``pmip6.dataplane.lwt``), here
``encap seg6 mode encap.red segs PEER``, with the outer source address set
once by ``ip sr tunsrc set OWN``.

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
import os
import socket
import subprocess
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from pyroute2.netlink.rtnl import rtmsg as _rtmsg

from pmip6.dataplane import fastpath
from pmip6.dataplane.base import DataPlaneError
from pmip6.dataplane.kernel import (
    PREF_DECAP,
    PROTO,
    RT_TABLE_MAIN,
    TABLE_DECAP,
    attrs,
    retry_enomem,
    route_target,
)
from pmip6.dataplane.lwt import LwtDataPlane

log = logging.getLogger("pmip6.dataplane.seg6")

SEG6_IPTUN_MODE_ENCAP_RED = 3


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


_reason: str | None = None
#: an interface index no namespace has: the probe route is refused, never added
_NO_SUCH_IFINDEX = 0x7FFFFFFF


def unavailable_reason() -> str:
    """Empty if seg6 lightweight tunnels can be configured here (probed once).

    A kernel with IPv6 segment routing but without its lightweight tunnels
    (CONFIG_IPV6_SEG6_LWTUNNEL) still has the seg6 sysctls, so the probe asks
    for a seg6 route out of an interface that does not exist: the kernel
    checks the encapsulation type first (EOPNOTSUPP when it has none) and the
    device after it (ENODEV), so nothing is ever added.
    """
    global _reason
    if _reason is None:
        probe = fastpath.seg6_add(
            IPv6Network("2001:db8::/128"),
            IPv6Address("2001:db8::1"),
            _NO_SUCH_IFINDEX,
            RT_TABLE_MAIN,
            PROTO,
        )
        try:
            with fastpath.Batcher() as b:
                (err,) = b.run([probe])
        except OSError as exc:
            err = exc.errno or errno.EIO
        if err == errno.EOPNOTSUPP:
            _reason = (
                "the kernel has no seg6 lightweight tunnels (CONFIG_IPV6_SEG6_LWTUNNEL)"
            )
        elif err in (errno.ENODEV, 0):
            _reason = ""
        else:
            _reason = f"seg6 route probe: {os.strerror(err)}"
    return _reason


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


class Seg6DataPlane(LwtDataPlane):
    """See the module docstring. ``fast=False`` keeps reconcile on pyroute2."""

    name = "seg6"

    def __init__(self, netns: str | None = None, fast: bool = True) -> None:
        super().__init__(netns, fast)
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

    # --- encapsulation ------------------------------------------------------

    def route_encap(self, own: IPv6Address, peer: IPv6Address) -> dict[str, Any]:
        # the outer source is the namespace's tunsrc, set in decap_setup
        return {"encap": seg6_encap(peer)}

    def route_peer(self, msg: Any) -> IPv6Address | None:
        return route_segment(msg)

    def fast_encap(self, own: IPv6Address, peer: IPv6Address) -> bytes:
        return fastpath.seg6_encap(peer)

    def fast_peer(self, encap: bytes) -> IPv6Address | None:
        return fastpath.seg6_segment(encap)

    # --- decapsulation ------------------------------------------------------

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

    def decap_setup(self, own: IPv6Address, uplink: str, oif: int) -> None:
        # outer source of everything we encapsulate (RFC 2473 section 3.1)
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
