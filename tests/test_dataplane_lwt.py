"""The backends without tunnel devices (seg6, bpf) forward real traffic
between namespaces. Each test runs once per backend; a backend this kernel
cannot run is skipped with the reason.

Topology (all in throwaway namespaces)::

    CN --cn0-- LMAP [br: fd00::1] --p1-- MPA1 (fd00::11) --acc1-- MS
                               \\--p2-- MPA2 (fd00::12)

The MS is a plain namespace holding the LoA, with a default route via the
MPA's access link-local address fe80::1.
"""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import struct
import threading
import time
from collections.abc import Iterator
from ipaddress import IPv6Address, IPv6Network
from typing import Any

import pytest
from pyroute2.netlink.exceptions import NetlinkError

from pmip6.dataplane import DataPlaneError, bpf, create, seg6
from pmip6.dataplane import kernel as kernel_mod
from pmip6.dataplane.kernel import PROTO, retry_enomem
from pmip6.dataplane.lwt import LwtDataPlane
from pmip6.lab.netns import Lab, Namespace, addr_nodad, local_veth

LMAP = IPv6Address("fd00::1")
MPA1 = IPv6Address("fd00::11")
MPA2 = IPv6Address("fd00::12")
CN = "2001:db8:ffff::2"
LOA = IPv6Network("2001:db8:1:1::10/128")
MS = str(LOA.network_address)


class Topo:
    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.cn = lab.add("cn")
        self.lmap = lab.add("lmap")
        self.mpa1 = lab.add("mpa1")
        self.mpa2 = lab.add("mpa2")
        self.ms = lab.add("ms")

        lab.veth(self.cn, "eth0", self.lmap, "cn0")
        addr_nodad(self.cn, "eth0", f"{CN}/64")
        addr_nodad(self.lmap, "cn0", "2001:db8:ffff::1/64")
        self.cn.run("ip", "-6", "route", "add", "default", "via", "2001:db8:ffff::1")

        # transport: a bridge in the LMAP namespace, one port per MPA
        self.lmap.run("ip", "link", "add", "tbr", "type", "bridge")
        self.lmap.run("ip", "link", "set", "tbr", "up")
        addr_nodad(self.lmap, "tbr", f"{LMAP}/64")
        for i, mpa, addr in ((1, self.mpa1, MPA1), (2, self.mpa2, MPA2)):
            lab.veth(self.lmap, f"p{i}", mpa, "up0")
            self.lmap.run("ip", "link", "set", f"p{i}", "master", "tbr")
            addr_nodad(mpa, "up0", f"{addr}/64")

        lab.veth(self.ms, "eth0", self.mpa1, "acc")
        self.access_up(self.mpa1)
        self.ms.run("ip", "-6", "addr", "add", f"{MS}/128", "dev", "eth0", "nodad")
        self.ms.run(
            "ip", "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0"
        )

    @staticmethod
    def access_up(mpa: Namespace) -> None:
        mpa.run("ip", "link", "set", "acc", "up")
        addr_nodad(mpa, "acc", "fe80::1/64")

    def roam_to_mpa2(self) -> None:
        """Move the MS's access link from MPA1 to MPA2 (a handover)."""
        self.mpa1.run("ip", "link", "set", "acc", "netns", self.mpa2.name)
        self.access_up(self.mpa2)


def ping(src: Namespace, dst: str, tries: int = 3) -> bool:
    return any(
        src.ok("ping", "-6", "-c1", "-W1", dst, timeout=10) for _ in range(tries)
    )


def ours(ns: Namespace) -> tuple[str, str]:
    routes = ns.run("ip", "-6", "route", "show", "table", "all", "proto", str(PROTO))
    rules = ns.run("ip", "-6", "rule", "show").stdout.splitlines()
    mine = "\n".join(r for r in rules if f"proto {PROTO}" in r)
    return routes.stdout.strip(), mine


def tc_state(ns: Namespace) -> list[str]:
    """clsact qdiscs and ingress filters on every interface of ``ns``."""
    out = []
    for link in json.loads(ns.run("ip", "-j", "link", "show").stdout):
        dev = link["ifname"]
        qdiscs = ns.run("tc", "qdisc", "show", "dev", dev).stdout
        out += [f"{dev}: {q}" for q in qdiscs.splitlines() if "clsact" in q]
        filters = ns.run("tc", "filter", "show", "dev", dev, "ingress").stdout
        out += [f"{dev}: {f}" for f in filters.splitlines()]
    return out


UNAVAILABLE = {"seg6": seg6.unavailable_reason, "bpf": bpf.unavailable_reason}


@pytest.fixture(params=sorted(UNAVAILABLE))
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    why = UNAVAILABLE[name]() if os.geteuid() == 0 else ""
    if why:
        with pytest.raises(DataPlaneError, match=f"'{name}' is unavailable"):
            create(name)
        pytest.skip(why)
    return name


@pytest.fixture
def topo() -> Iterator[Topo]:
    with Lab("pm-dp-") as lab:
        yield Topo(lab)


def started(ns: Namespace, backend: str, **kw: Any) -> LwtDataPlane:
    dp = create(backend, netns=ns.name, **kw)
    assert isinstance(dp, LwtDataPlane) and dp.name == backend
    dp.start()
    return dp


@pytest.fixture
def via_mpa1(topo: Topo, backend: str) -> Iterator[None]:
    """The LMAP tunnels the LoA to MPA1, which delivers it on its access link."""
    lmap = started(topo.lmap, backend)
    mpa1 = started(topo.mpa1, backend)
    try:
        lmap.lmap_setup(LMAP, "tbr")
        mpa1.mpa_setup(MPA1, "up0")
        lmap.lmap_bind(LOA, MPA1)
        mpa1.mpa_attach(LOA, "acc", LMAP)
        yield
    finally:
        lmap.stop()
        mpa1.stop()


@pytest.mark.root
def test_traffic_bind_unbind_move_and_cleanup(topo: Topo, backend: str) -> None:
    lmap = started(topo.lmap, backend)
    mpa1 = started(topo.mpa1, backend)
    mpa2 = started(topo.mpa2, backend)
    try:
        lmap.lmap_setup(LMAP, "tbr")
        mpa1.mpa_setup(MPA1, "up0")
        mpa2.mpa_setup(MPA2, "up0")

        # nothing is programmed yet: neither direction gets through
        assert not ping(topo.cn, MS, tries=1)
        assert not ping(topo.ms, CN, tries=1)

        lmap.lmap_bind(LOA, MPA1)
        mpa1.mpa_attach(LOA, "acc", LMAP)
        lmap.lmap_bind(LOA, MPA1)  # idempotent
        mpa1.mpa_attach(LOA, "acc", LMAP)
        assert ping(topo.cn, MS)
        assert ping(topo.ms, CN)

        lmap.lmap_unbind(LOA)
        mpa1.mpa_detach(LOA)
        assert not ping(topo.cn, MS, tries=1)
        assert not ping(topo.ms, CN, tries=1)

        # handover: bind at MPA1 again, then move to MPA2
        lmap.lmap_bind(LOA, MPA1)
        mpa1.mpa_attach(LOA, "acc", LMAP)
        assert ping(topo.cn, MS)
        topo.roam_to_mpa2()
        mpa2.mpa_attach(LOA, "acc", LMAP)
        lmap.lmap_bind(LOA, MPA2)
        mpa1.mpa_detach(LOA)
        assert ping(topo.cn, MS)
        assert ping(topo.ms, CN)
        assert lmap.lmap_current() == {LOA: MPA2}
        assert mpa2.mpa_current() == {LOA: ("acc", LMAP)}
        assert mpa1.mpa_current() == {}
    finally:
        for dp in (lmap, mpa1, mpa2):
            dp.stop()

    for ns in (topo.lmap, topo.mpa1, topo.mpa2):
        assert ours(ns) == ("", "")
        assert tc_state(ns) == []
        rules = ns.run("ip", "-6", "rule").stdout
        assert "0:\tfrom all lookup local" in rules
        if backend == "seg6":
            assert ns.run("ip", "sr", "tunsrc", "show").stdout.split()[-1] == "::"
        forwarding = ns.run("sysctl", "-n", "net.ipv6.conf.all.forwarding")
        assert forwarding.stdout == "0\n"
    assert not ping(topo.cn, MS, tries=1)


def _ipv6_frames(ns: Namespace, ifname: str, stop: threading.Event) -> list[bytes]:
    """Frames seen on ``ifname``, both directions, until ``stop``.

    ETH_P_ALL: a socket bound to one ethertype sees only incoming frames.
    """
    frames: list[bytes] = []
    with ns.entered():
        s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
    try:
        s.bind((ifname, 0))
        s.settimeout(0.1)
        while not stop.is_set():
            try:
                frames.append(s.recv(65535))
            except TimeoutError:
                continue
    finally:
        s.close()
    return frames


@pytest.mark.root
def test_wire_is_plain_ipv6_in_ipv6(topo: Topo, via_mpa1: None) -> None:
    """RFC 2473 on the transport link: outer next header 41, no routing header."""
    stop = threading.Event()
    box: dict[str, list[bytes]] = {}
    t = threading.Thread(
        target=lambda: box.setdefault("frames", _ipv6_frames(topo.mpa1, "up0", stop))
    )
    t.start()
    time.sleep(0.3)
    assert ping(topo.cn, MS)
    stop.set()
    t.join()

    tunnelled = []
    for f in box["frames"]:
        if f[12:14] != b"\x86\xdd":
            continue
        ip6 = f[14:]
        outer_nh = ip6[6]
        src, dst = IPv6Address(ip6[8:24]), IPv6Address(ip6[24:40])
        if {src, dst} == {LMAP, MPA1} and outer_nh != 58:
            tunnelled.append((outer_nh, src, dst, ip6[40:], ip6[4:6]))
    assert tunnelled, "no tunnelled packet seen on the transport link"
    directions = set()
    for outer_nh, src, dst, inner, outer_len in tunnelled:
        assert outer_nh == 41  # 43 would be a routing header (plain "encap")
        assert inner[0] >> 4 == 6
        inner_src, inner_dst = IPv6Address(inner[8:24]), IPv6Address(inner[24:40])
        assert {str(inner_src), str(inner_dst)} == {CN, MS}
        assert inner[6] == 58  # the ICMPv6 echo itself
        # the outer payload is exactly the inner packet
        assert int.from_bytes(outer_len) == 40 + int.from_bytes(inner[4:6])
        directions.add((src, dst))
    assert directions == {(LMAP, MPA1), (MPA1, LMAP)}


@pytest.mark.root
def test_packets_too_big_for_the_tunnel_get_packet_too_big(
    topo: Topo, via_mpa1: None
) -> None:
    """RFC 2473 6.7, 7.1: the tunnel's MTU is the link's less the header;
    a larger packet that may not be fragmented is answered with ICMPv6
    Packet Too Big naming it, and one that fits goes through."""
    assert ping(topo.cn, MS)

    big = topo.cn.run(
        "ping", "-6", "-c1", "-W1", "-M", "do", "-s", "1452", MS, check=False
    )
    found = re.search(r"mtu=(\d+)", big.stdout)
    assert found, big.stdout
    mtu = int(found.group(1))
    assert 1280 <= mtu <= 1460
    fits = topo.cn.run(
        "ping", "-6", "-c1", "-W2", "-M", "do", "-s", str(mtu - 48), MS,
        check=False,
    )  # fmt: skip
    assert fits.returncode == 0, fits.stdout


def _routes_text(ns: Namespace) -> list[str]:
    out = ns.run("ip", "-6", "-d", "route", "show", "proto", str(PROTO)).stdout
    return sorted(line.strip() for line in out.splitlines())


@pytest.mark.root
def test_fast_path_installs_what_pyroute2_installs(backend: str) -> None:
    with Lab("pm-dp-") as lab:
        ns = lab.add("fast")
        local_veth(ns, "up0", "up1", f"{LMAP}/64")
        want = {
            IPv6Network(f"2001:db8:1:{i:x}::10/128"): IPv6Address(f"fd00::{i % 7 + 11}")
            for i in range(300)
        }
        want[IPv6Network("2001:db8:2::/64")] = MPA2

        slow = started(ns, backend, fast=False)
        slow.lmap_setup(LMAP, "up0")
        slow.lmap_reconcile(want)
        reference = _routes_text(ns)
        assert len(reference) == len(want)
        assert slow.lmap_current() == want
        slow.stop()
        assert _routes_text(ns) == []

        fast = started(ns, backend, fast=True)
        fast.lmap_setup(LMAP, "up0")
        fast.lmap_reconcile(want)
        assert _routes_text(ns) == reference
        assert fast.lmap_current() == want

        # the pyroute2 and the fast dump agree too
        fast.fast = False
        assert fast.lmap_current() == want
        fast.fast = True

        # reconcile removes what is no longer wanted and moves what changed
        smaller = dict(list(want.items())[:100])
        smaller[LOA] = MPA2
        fast.lmap_reconcile(smaller)
        assert fast.lmap_current() == smaller
        fast.stop()
        assert _routes_text(ns) == []
        if backend == "seg6":
            assert "mode encap.red" in reference[0]
        else:
            assert f"encap bpf xmit pmip6 {LMAP}>fd00::" in reference[0]


@pytest.mark.root
def test_keep_across_restart_then_reconcile(backend: str) -> None:
    with Lab("pm-dp-") as lab:
        ns = lab.add("keep")
        local_veth(ns, "up0", "up1", f"{MPA1}/64")
        local_veth(ns, "acc", "acc1")
        other = IPv6Network("2001:db8:1:2::/64")

        dp = started(ns, backend)
        dp.mpa_setup(MPA1, "up0")
        dp.mpa_attach(LOA, "acc", LMAP)
        dp.mpa_attach(other, "acc", IPv6Address("fd00::2"))
        dp.stop(keep=True)
        routes, rules = ours(ns)
        assert str(LOA.network_address) in routes
        if backend == "seg6":
            assert "lookup local proto 155" in rules
        else:
            assert any(f"pmip6 decap {MPA1}" in line for line in tc_state(ns))

        # the next run adopts what it still wants and drops the rest
        dp = started(ns, backend)
        assert dp.mpa_current() == {
            LOA: ("acc", LMAP),
            other: ("acc", IPv6Address("fd00::2")),
        }
        dp.mpa_setup(MPA1, "up0")
        dp.mpa_reconcile({LOA: ("acc", LMAP)})
        assert dp.mpa_current() == {LOA: ("acc", LMAP)}
        routes, rules = ours(ns)
        assert "2001:db8:1:2::" not in routes and "fd00::2" not in routes
        dp.stop()
        assert ours(ns) == ("", "")
        assert tc_state(ns) == []
        # the value before the first run is unknown to the second: left as is
        assert ns.run("sysctl", "-n", "net.ipv6.conf.all.forwarding").stdout == "1\n"


@pytest.mark.root
def test_setup_errors_are_clear(backend: str) -> None:
    with Lab("pm-dp-") as lab:
        ns = lab.add("err")
        dp = started(ns, backend)
        try:
            with pytest.raises(DataPlaneError, match="no such interface: nope"):
                dp.lmap_setup(LMAP, "nope")
            with pytest.raises(DataPlaneError, match="lmap_setup"):
                dp.lmap_bind(LOA, MPA1)
        finally:
            dp.stop()
    with pytest.raises(DataPlaneError, match="not started"):
        type(dp)().lmap_unbind(LOA)


def test_enomem_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kernel_mod, "ENOMEM_FIRST_DELAY", 0.001)
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise NetlinkError(errno.ENOMEM, "Cannot allocate memory")
        return "done"

    assert retry_enomem(flaky, "test") == "done"
    assert len(calls) == 3

    def broken() -> None:
        raise NetlinkError(errno.EINVAL, "Invalid argument")

    with pytest.raises(DataPlaneError, match="Invalid argument"):
        retry_enomem(broken, "test")


def test_auto_picks_a_kernel_backend() -> None:
    dp = create("auto")
    assert dp.name in ("ip6tnl", "seg6", "bpf")


@pytest.mark.root
def test_bpf_leaves_tc_state_that_is_not_its_own(bpf_only: None) -> None:
    """A clsact qdisc with someone else's filter keeps both; ours go."""
    with Lab("pm-dp-") as lab:
        ns = lab.add("tc")
        local_veth(ns, "up0", "up1", f"{LMAP}/64")
        ns.run("tc", "qdisc", "add", "dev", "up0", "clsact")
        ns.run(
            "tc", "filter", "add", "dev", "up0", "ingress", "prio", "7",
            "protocol", "ipv6", "u32", "match", "u32", "0", "0", "classid", "1:1",
        )  # fmt: skip
        theirs = tc_state(ns)

        dp = started(ns, "bpf")
        dp.lmap_setup(LMAP, "up0")
        during = tc_state(ns)
        assert any(f"pmip6 decap {LMAP}" in line for line in during)
        dp.lmap_setup(LMAP, "up0")  # idempotent: one filter of ours, same program

        def no_ids(lines: list[str]) -> list[str]:
            return [re.sub(r" id \d+ ", " ", line) for line in lines]

        assert no_ids(tc_state(ns)) == no_ids(during)
        dp.stop()
        assert tc_state(ns) == theirs


@pytest.mark.root
def test_one_backend_per_namespace(backend: str) -> None:
    """A second start in the same namespace is refused and changes nothing:
    its reconcile or stop would remove the first one's forwarding."""
    with Lab("pm-dp-") as lab:
        ns = lab.add("one")
        local_veth(ns, "up0", "up1", f"{LMAP}/64")
        first = started(ns, backend)
        try:
            first.lmap_setup(LMAP, "up0")
            first.lmap_bind(LOA, MPA1)
            before = ours(ns), tc_state(ns)
            second = create(backend, netns=ns.name)
            with pytest.raises(DataPlaneError, match="another pmip6 daemon") as info:
                second.start()
            assert f"pid {os.getpid()}" in str(info.value)
            second.stop()  # a refused start leaves nothing to undo
            assert (ours(ns), tc_state(ns)) == before
        finally:
            first.stop()
        # released at stop: the next one may start
        again = started(ns, backend)
        again.stop()


# --- bpf: what a review of the backend found ----------------------------------


@pytest.fixture
def bpf_only() -> None:
    why = bpf.unavailable_reason() if os.geteuid() == 0 else "needs root"
    if why:
        pytest.skip(why)


def _node_with_sink(lab: Lab) -> tuple[Namespace, Namespace, str]:
    """A node whose uplink's peer sits in a sink namespace; the sink's MAC."""
    node, sink = lab.add("node"), lab.add("sink")
    lab.veth(node, "up0", sink, "up1")
    addr_nodad(node, "up0", f"{LMAP}/64")
    sink.run("ip", "link", "set", "up1", "up")
    link = json.loads(sink.run("ip", "-j", "link", "show", "up1").stdout)[0]
    return node, sink, str(link["address"])


@pytest.mark.root
def test_bulk_reconcile_to_many_peers_tunnels_each_to_its_own(bpf_only: None) -> None:
    """More peers than programs kept open: every route's program must still
    be its own peer's (a descriptor closed too early is reused by the next)."""
    peers = 200
    with Lab("pm-dp-") as lab:
        node, sink, mac = _node_with_sink(lab)
        want = {}
        for i in range(1, peers + 1):
            peer = IPv6Address(f"fd00::1:{i:x}")
            node.run("ip", "-6", "neigh", "add", str(peer), "lladdr", mac,
                     "dev", "up0", "nud", "permanent")  # fmt: skip
            want[IPv6Network(f"2001:db8:{i:x}::/64")] = peer
        dp = started(node, "bpf")
        try:
            dp.lmap_setup(LMAP, "up0")
            dp.lmap_reconcile(want)
            assert dp.lmap_current() == want

            stop = threading.Event()
            box: dict[str, list[bytes]] = {}
            t = threading.Thread(
                target=lambda: box.setdefault("f", _ipv6_frames(sink, "up1", stop))
            )
            t.start()
            time.sleep(0.3)
            with node.entered():
                s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            with s:
                for target in want:
                    s.sendto(b"x", (str(target.network_address + 5), 9))
            time.sleep(0.3)
            stop.set()
            t.join()
        finally:
            dp.stop()
    sent_to = {}
    for f in box["f"]:
        if f[12:14] == b"\x86\xdd" and f[20] == 41:
            inner_dst = IPv6Address(f[54 + 24 : 54 + 40])
            target = IPv6Network(f"{inner_dst}/64", strict=False)
            sent_to[target] = IPv6Address(f[38:54])
    assert sent_to == want


@pytest.mark.root
def test_two_own_addresses_on_one_uplink_both_decapsulate(bpf_only: None) -> None:
    """Each decap filter passes what is not its own on to the next one."""
    own2 = IPv6Address("fd00::2")
    with Lab("pm-dp-") as lab:
        node, sink, _ = _node_with_sink(lab)
        addr_nodad(node, "up0", f"{own2}/64")
        addr_nodad(sink, "up1", "fd00::99/64")
        dp = started(node, "bpf")
        try:
            dp.lmap_setup(LMAP, "up0")
            dp.mpa_setup(own2, "up0")
            filters = [line for line in tc_state(node) if "pmip6 decap" in line]
            assert len(filters) == 2
            for own in (LMAP, own2):
                # an echo request from the sink to `own`, tunnelled by hand
                inner = (
                    struct.pack("!IHBB", 0x60000000, 8, 58, 64)
                    + IPv6Address("fd00::99").packed
                    + own.packed
                    + bytes.fromhex("8000000012340001")
                )
                checksum = _icmp6_checksum(inner)
                inner = inner[:42] + checksum + inner[44:]
                with sink.entered():
                    raw = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 41)
                with raw:
                    raw.bind(("fd00::99", 0))
                    # the node answers the decapsulated request directly
                    with sink.entered():
                        icmp = socket.socket(
                            socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6
                        )
                    with icmp:
                        icmp.settimeout(2)
                        raw.sendto(inner, (str(own), 0))
                        assert _echo_reply(icmp, 0x1234), (
                            f"nothing decapsulated at {own}"
                        )
        finally:
            dp.stop()
        assert tc_state(node) == []


def _icmp6_checksum(packet: bytes) -> bytes:
    from pmip6.wire.checksum import ipv6_checksum

    src, dst = IPv6Address(packet[8:24]), IPv6Address(packet[24:40])
    body = packet[40:42] + b"\0\0" + packet[44:]
    return struct.pack("!H", ipv6_checksum(src, dst, 58, body))


def _echo_reply(sock: socket.socket, ident: int) -> bool:
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        try:
            data = sock.recv(2048)
        except TimeoutError:
            return False
        if data[0] == 129 and int.from_bytes(data[4:6]) == ident:
            return True
    return False


@pytest.mark.root
def test_a_non_ethernet_uplink_is_refused(bpf_only: None) -> None:
    with Lab("pm-dp-") as lab:
        node = lab.add("tun")
        node.run("ip", "tuntap", "add", "mode", "tun", "name", "wan0")
        node.run("ip", "link", "set", "wan0", "up")
        dp = started(node, "bpf")
        try:
            with pytest.raises(DataPlaneError, match="wan0 is not an Ethernet link"):
                dp.mpa_setup(MPA1, "wan0")
        finally:
            dp.stop()
        assert tc_state(node) == []


@pytest.mark.root
def test_restart_with_another_own_address_drops_the_old_tunnels(
    bpf_only: None,
) -> None:
    lmaps = [IPv6Address(f"fd00::{c}") for c in "abc"]
    targets = [IPv6Network(f"2001:db8:1:{i}::/64") for i in range(1, 4)]
    with Lab("pm-dp-") as lab:
        node = lab.add("mpa")
        local_veth(node, "up0", "up1")
        local_veth(node, "acc", "acc1")
        for own in (MPA1, MPA2):
            addr_nodad(node, "up0", f"{own}/64")
        dp = started(node, "bpf")
        dp.mpa_setup(MPA1, "up0")
        for target, lmap in zip(targets, lmaps, strict=True):
            dp.mpa_attach(target, "acc", lmap)
        dp.stop(keep=True)

        dp = started(node, "bpf")
        try:
            dp.mpa_setup(MPA2, "up0")
            assert dp.mpa_current() == {}
            dp.mpa_reconcile({})
            routes, rules = ours(node)
            assert routes == "" and rules == ""
        finally:
            dp.stop()
        assert ours(node) == ("", "")
        assert tc_state(node) == []
