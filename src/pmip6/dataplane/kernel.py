"""What the kernel backends (seg6, ip6tnl) share: ownership marks, rules,
sysctls, retries, and the reconcile bookkeeping.

Ownership. Everything we add carries route/rule protocol ``PROTO`` (155,
0x9b, shown by iproute2 as "155"; unassigned in /etc/iproute2/rt_protos) so a
restarted daemon finds and adopts or removes it, and so ``stop()`` removes
exactly ours. Tables and rule priorities:

==============  =========================================================
table 0x9b00    decapsulation (seg6: End.DX6 route for the own address)
table 0x9b01..  MPA uplink, one per LMAP: default route into the tunnel
pref 10         ``to OWN/128 ipproto 41 lookup 0x9b00`` (seg6 decap)
pref 20         ``from TARGET iif ACCESS lookup 0x9b0k`` (MPA uplink)
pref 1000       ``lookup local`` (moved from pref 0 so pref 10 wins)
==============  =========================================================

One backend per network namespace: everything of ours carries the same
marks, so a second daemon's reconcile or stop would remove the first one's
forwarding. ``start()`` takes an exclusive lock named after the namespace
(``/run/pmip6/netns-INODE.lock``, holding the pid) and a second start in the
same namespace fails before it changes anything; ``stop()`` releases it.

Sysctls set (previous values restored by ``stop()``):
``net.ipv6.conf.all.forwarding=1`` on both sides (the LMAP and the MPA are
routers). seg6 needs no ``seg6_enabled``: encap.red with one segment sends no
routing header and End.DX6 does not need one.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from ipaddress import IPv6Address, IPv6Network
from typing import Any, TypeVar

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from pmip6.dataplane import fastpath
from pmip6.dataplane.base import DataPlane, DataPlaneError
from pmip6.locking import exclusive_lock, lock_holder

log = logging.getLogger("pmip6.dataplane")

T = TypeVar("T")

PROTO = 155
PROTO_KERNEL = 2
RT_TABLE_MAIN = 254
RT_TABLE_LOCAL = 255
TABLE_DECAP = 0x9B00
TABLE_UPLINK_FIRST = 0x9B01
TABLE_UPLINK_LAST = 0x9BFF
PREF_DECAP = 10
PREF_UPLINK = 20
PREF_LOCAL = 1000

LOCK_DIR = "/run/pmip6"

ENOMEM_RETRIES = 8
ENOMEM_FIRST_DELAY = 0.02


def retry_enomem(
    fn: Callable[[], T], what: str, ignore: tuple[int, ...] = ()
) -> T | None:
    """Run ``fn``; retry with doubling back-off while the kernel says ENOMEM.

    The first large burst of seg6 routes after boot can fail with ENOMEM while
    per-CPU memory grows; a retry a moment later succeeds.
    """
    delay = ENOMEM_FIRST_DELAY
    for attempt in range(ENOMEM_RETRIES + 1):
        try:
            return fn()
        except NetlinkError as exc:
            if exc.code in ignore:
                return None
            if exc.code != errno.ENOMEM or attempt == ENOMEM_RETRIES:
                raise DataPlaneError(f"{what}: {exc.args[-1]}") from exc
            log.debug("%s: ENOMEM, retrying in %.2f s", what, delay)
            time.sleep(delay)
            delay *= 2
    raise AssertionError("unreachable")


def _ignore(codes: tuple[int, ...], fn: Callable[[], Any]) -> None:
    try:
        fn()
    except NetlinkError as exc:
        if exc.code not in codes:
            raise


def attrs(msg: Any) -> dict[str, Any]:
    return dict(msg.get("attrs", []))


def route_target(msg: Any) -> IPv6Network:
    dst = attrs(msg).get("RTA_DST", "::")
    return IPv6Network(f"{dst}/{msg['dst_len']}")


class KernelDataPlane(DataPlane):
    """Shared machinery; subclasses say how a tunnel towards a peer is made.

    ``netns``: name of a network namespace (``ip netns``) to program instead
    of the caller's; sockets are opened inside it at ``start()``.
    """

    def __init__(self, netns: str | None = None) -> None:
        self.netns = netns
        self.ipr: Any = None
        self._lock = threading.RLock()
        self._netns_lock: int | None = None
        self._saved_sysctls: dict[str, str] = {}
        self.lmap_own: IPv6Address | None = None
        self.lmap_uplink: str | None = None
        self.mpa_own: IPv6Address | None = None
        self.mpa_uplink: str | None = None

    # --- namespace and sockets ----------------------------------------------

    @contextmanager
    def inside(self) -> Iterator[None]:
        """Run the body in the backend's namespace (for sockets, /proc, ip)."""
        if self.netns is None:
            yield
            return
        from pmip6.lab.netns import Namespace

        with Namespace(self.netns).entered():
            yield

    def ifindex(self, name: str) -> int:
        # one ioctl in the namespace: pyroute2's link_lookup dumps and parses
        # every link, a millisecond or more on the handover's critical path
        try:
            with self.inside():
                return socket.if_nametoindex(name)
        except OSError:
            raise DataPlaneError(f"no such interface: {name}") from None

    def sysctl_set(self, key: str, value: str) -> None:
        path = "/proc/sys/" + key.replace(".", "/")
        with self.inside():
            with open(path) as f:
                old = f.read().strip()
            if old != value:
                self._saved_sysctls.setdefault(key, old)
                with open(path, "w") as f:
                    f.write(value)
                log.debug("sysctl %s=%s (was %s)", key, value, old)

    def sysctl_restore(self) -> None:
        with self.inside():
            for key, old in self._saved_sysctls.items():
                with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
                    f.write(old)
        self._saved_sysctls.clear()

    # --- lifecycle ----------------------------------------------------------

    def start(self) -> None:
        with self._lock:
            if self.ipr is None:
                # first the claim: a refused start must leave nothing to undo
                self._claim_namespace()
                try:
                    with self.inside():
                        self.ipr = IPRoute()
                except BaseException:
                    self._release_namespace()
                    raise
            self.on_start()

    def _claim_namespace(self) -> None:
        with self.inside():
            inode = os.stat("/proc/thread-self/ns/net").st_ino
        path = os.path.join(LOCK_DIR, f"netns-{inode}.lock")
        try:
            os.makedirs(LOCK_DIR, exist_ok=True)
            fd = exclusive_lock(path)
        except OSError as exc:
            raise DataPlaneError(f"cannot create {path}: {exc.strerror}") from None
        if fd is None:
            raise DataPlaneError(
                "another pmip6 daemon programs this network namespace's "
                f"forwarding (pid {lock_holder(path)}, lock {path})"
            )
        self._netns_lock = fd

    def _release_namespace(self) -> None:
        if self._netns_lock is not None:
            os.close(self._netns_lock)
            self._netns_lock = None

    def on_start(self) -> None:
        """Hook: backend-specific probing at start."""

    def stop(self, keep: bool = False) -> None:
        with self._lock:
            if self.ipr is None:
                return
            try:
                if not keep:
                    self.remove_all()
                    self.sysctl_restore()
            finally:
                self.ipr.close()
                self.ipr = None
                self._release_namespace()

    def _need(self) -> None:
        if self.ipr is None:
            raise DataPlaneError("data plane not started")

    # --- state of ours in the kernel ----------------------------------------

    def our_routes(self, table: int) -> list[Any]:
        return [
            r
            for r in self.ipr.get_routes(family=socket.AF_INET6, table=table)
            if r["proto"] == PROTO
            and table in (r.get("table"), attrs(r).get("RTA_TABLE"))
        ]

    def our_rules(self) -> list[Any]:
        return [
            r
            for r in self.ipr.get_rules(family=socket.AF_INET6)
            if attrs(r).get("FRA_PROTOCOL") == PROTO
        ]

    def remove_all(self) -> None:
        """Delete every route and rule of ours; put the local rule back."""
        self.delete_routes(lambda encap: True)
        self.restore_local_rule()
        for r in self.our_rules():
            self.del_rule(r)
        self.remove_devices()

    def delete_routes(self, which: Callable[[bytes], bool]) -> int:
        """Delete the routes of ours whose RTA_ENCAP payload ``which``
        accepts, in every table; return how many.

        Batched: after a restart with keep=True there may be 100k routes.
        """
        with self.inside(), fastpath.Batcher() as b:
            doomed = [
                fastpath.route_del(t, table, PROTO)
                for t, proto, encap, table in b.dump_all()
                if proto == PROTO and which(encap)
            ]
            b.run_retrying(doomed)
        return len(doomed)

    def remove_devices(self) -> None:
        """Hook: tunnel devices of ours (ip6tnl)."""

    def uplink_tables(self) -> list[int]:
        tables = set()
        for r in self.our_rules():
            t = attrs(r).get("FRA_TABLE", r.get("table"))
            if TABLE_UPLINK_FIRST <= t <= TABLE_UPLINK_LAST:
                tables.add(t)
        return sorted(tables)

    # --- MPA uplink rules -----------------------------------------------------

    def visitor_rules(self) -> list[Any]:
        """Our ``from TARGET iif ACCESS lookup T`` rules (MPA uplink)."""
        return [
            r for r in self.our_rules() if attrs(r).get("FRA_PRIORITY") == PREF_UPLINK
        ]

    def visitor_rules_for(self, target: IPv6Network) -> list[Any]:
        out = []
        for r in self.visitor_rules():
            a = attrs(r)
            if "FRA_SRC" in a and (
                IPv6Network(f"{a['FRA_SRC']}/{r['src_len']}") == target
            ):
                out.append(r)
        return out

    def steer_visitor(self, target: IPv6Network, access: str, table: int) -> None:
        """Packets from ``target`` arriving on ``access`` look up ``table``;
        a rule for the same target on another path is replaced."""
        for r in self.visitor_rules_for(target):
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

    def forget_neighbours(self, target: IPv6Network) -> None:
        """Delete the neighbour entries of addresses inside ``target``.

        Packets that reach an MPA after its MS left leave an INCOMPLETE entry
        behind; if the MS came back while it lives, new packets would wait in
        its queue for the next solicitation, up to RetransTimer (1 s, RFC 4861
        section 7.2.2), instead of being resolved at once.
        """
        for n in self.ipr.get_neighbours(family=socket.AF_INET6):
            dst = attrs(n).get("NDA_DST")
            if dst is None or IPv6Address(dst) not in target:
                continue
            with suppress(NetlinkError):  # gone meanwhile
                self.ipr.neigh(
                    "del", family=socket.AF_INET6, ifindex=n["ifindex"], dst=dst
                )

    def del_route(self, target: IPv6Network, table: int) -> None:
        """Delete a route of ours; one that is already gone is no error."""
        _ignore(
            (errno.ESRCH, errno.ENOENT),
            lambda: self.ipr.route(
                "del",
                family=socket.AF_INET6,
                dst=str(target.network_address),
                dst_len=target.prefixlen,
                table=table,
                proto=PROTO,
            ),
        )

    def replace_route(
        self,
        target: IPv6Network,
        table: int,
        oif: int,
        what: str,
        extra: Callable[[], dict[str, Any]] | None = None,
    ) -> None:
        """Add or replace a route of ours out of ``oif``.

        ``extra`` gives further attributes (an encap), built afresh for each
        try; ``what`` names the route in the error.
        """
        retry_enomem(
            lambda: self.ipr.route(
                "replace",
                family=socket.AF_INET6,
                dst=str(target.network_address),
                dst_len=target.prefixlen,
                table=table,
                proto=PROTO,
                oif=oif,
                **(extra() if extra is not None else {}),
            ),
            what,
        )

    def del_rule(self, r: Any) -> None:
        a = attrs(r)
        kw: dict[str, Any] = {
            "family": socket.AF_INET6,
            "priority": a.get("FRA_PRIORITY", 0),
            "table": a.get("FRA_TABLE", r.get("table")),
            "protocol": a.get("FRA_PROTOCOL"),
        }
        if "FRA_DST" in a:
            kw.update(dst=a["FRA_DST"], dst_len=r["dst_len"])
        if "FRA_SRC" in a:
            kw.update(src=a["FRA_SRC"], src_len=r["src_len"])
        if "FRA_IIFNAME" in a:
            kw["iifname"] = a["FRA_IIFNAME"]
        if "FRA_IP_PROTO" in a:
            kw["ip_proto"] = a["FRA_IP_PROTO"]
        _ignore((errno.ENOENT, errno.ESRCH), lambda: self.ipr.rule("del", **kw))

    def add_rule(self, **kw: Any) -> None:
        kw.setdefault("family", socket.AF_INET6)
        kw.setdefault("protocol", PROTO)
        retry_enomem(
            lambda: self.ipr.rule("add", **kw), f"rule {kw}", ignore=(errno.EEXIST,)
        )

    # --- the local rule -----------------------------------------------------

    def local_rules(self) -> list[Any]:
        return [
            r
            for r in self.ipr.get_rules(family=socket.AF_INET6)
            if attrs(r).get("FRA_TABLE", r.get("table")) == RT_TABLE_LOCAL
            and not attrs(r).get("FRA_SRC")
            and not attrs(r).get("FRA_DST")
        ]

    def move_local_rule(self) -> None:
        """Local delivery after our pref-10 decap rule (pref 0 -> 1000).

        Packets to our own address with next header 41 must reach the
        End.DX6 route, which the local table would otherwise shadow.
        """
        self.add_rule(priority=PREF_LOCAL, table=RT_TABLE_LOCAL)
        for r in self.local_rules():
            if attrs(r).get("FRA_PRIORITY", 0) == 0:
                self.del_rule(r)

    def restore_local_rule(self) -> None:
        ours = [r for r in self.local_rules() if attrs(r).get("FRA_PROTOCOL") == PROTO]
        if not ours:
            return
        # put the kernel's rule back first so local delivery never lapses
        self.add_rule(priority=0, table=RT_TABLE_LOCAL, protocol=PROTO_KERNEL)
        for r in ours:
            self.del_rule(r)


def normalise_bindings(
    bindings: Mapping[IPv6Network, IPv6Address],
) -> dict[IPv6Network, IPv6Address]:
    return {IPv6Network(t): IPv6Address(c) for t, c in bindings.items()}


def normalise_visitors(
    visitors: Mapping[IPv6Network, tuple[str, IPv6Address]],
) -> dict[IPv6Network, tuple[str, IPv6Address]]:
    return {IPv6Network(t): (a, IPv6Address(m)) for t, (a, m) in visitors.items()}
