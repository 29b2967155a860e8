"""The access link on Linux: interface set-up, the BPF filter, bridge events.

Each test runs its body in a forked child that enters a fresh network
namespace, so nothing touches the host's interfaces.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import socket
import subprocess
import time
import traceback
from collections.abc import Callable, Iterator
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

import pytest

from pmip6.runtime.access import (
    AccessLink,
    BridgeWatcher,
    configure_access_interface,
    control_frame_filter,
    is_bridge,
)
from pmip6.wire import nd

pytestmark = pytest.mark.root

VMAC = "02:00:5e:00:53:01"
VLL = IPv6Address("fe80::1")
LNP = IPv6Network("2001:db8:1:1::/64")
_counter = 0


def sh(*args: str) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def wait_forwarding(*ports: str) -> None:
    """Wait until the bridge ports forward: carrier comes up asynchronously
    (link watch), and until then the bridge drops frames and learns nothing."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        links = json.loads(sh("bridge", "-j", "link", "show"))
        states = {link["ifname"]: link.get("state") for link in links}
        if all(states.get(port) == "forwarding" for port in ports):
            return
        time.sleep(0.02)
    raise AssertionError(f"bridge ports {ports} not forwarding: {states}")


@pytest.fixture
def netns() -> Iterator[Callable[[], str]]:
    """A factory of uniquely named namespaces, all deleted at teardown."""
    made: list[str] = []

    def make() -> str:
        global _counter
        _counter += 1
        name = f"pm-ac-{os.getpid()}-{_counter}"
        sh("ip", "netns", "add", name)
        made.append(name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
        return name

    try:
        yield make
    finally:
        for name in made:
            subprocess.run(["ip", "netns", "del", name], check=False, timeout=30)


def _child(ns: str, fn: Callable[..., Any], args: tuple[Any, ...], q: Any) -> None:
    try:
        from pyroute2.netns import setns

        setns(ns)
        q.put(("ok", fn(*args)))
    except BaseException:
        q.put(("error", traceback.format_exc()))


def in_netns(ns: str, fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` in a forked child inside namespace ``ns``."""
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    proc = ctx.Process(target=_child, args=(ns, fn, args, q))
    proc.start()
    try:
        status, value = q.get(timeout=60)
    finally:
        proc.join(10)
        if proc.is_alive():
            proc.kill()
    if status != "ok":
        pytest.fail(value)
    return value


def ns_sh(ns: str, *args: str) -> str:
    return sh("ip", "netns", "exec", ns, *args)


# --- frames for the filter test ----------------------------------------------------


def crafted_frames() -> dict[str, bytes]:
    """One frame per case; each has its own source MAC so we can tell them apart."""
    from scapy.layers.dhcp6 import DHCP6_Solicit
    from scapy.layers.inet import TCP, UDP
    from scapy.layers.inet6 import (
        ICMPv6EchoReply,
        ICMPv6EchoRequest,
        ICMPv6MLQuery,
        ICMPv6MLReport,
        ICMPv6MLReport2,
        ICMPv6ND_NA,
        ICMPv6ND_NS,
        ICMPv6ND_RA,
        ICMPv6ND_RS,
        IPv6,
        IPv6ExtHdrHopByHop,
        RouterAlert,
    )
    from scapy.layers.l2 import ARP, Ether

    ll, g = "fe80::2", "2001:db8:1:1::10"
    cases: dict[str, Any] = {
        "rs": IPv6(src=ll, dst="ff02::2", hlim=255) / ICMPv6ND_RS(),
        "ra": IPv6(src=ll, dst="ff02::1", hlim=255) / ICMPv6ND_RA(),
        "ns": IPv6(src="::", dst="ff02::1:ff00:10", hlim=255) / ICMPv6ND_NS(tgt=g),
        "na": IPv6(src=ll, dst="fe80::1", hlim=255) / ICMPv6ND_NA(tgt=ll),
        "mld1": IPv6(src=ll, dst="ff02::16", hlim=1)
        / IPv6ExtHdrHopByHop(options=[RouterAlert()])
        / ICMPv6MLReport(mladdr="ff02::1:ff00:10"),
        "mld2": IPv6(src=ll, dst="ff02::16", hlim=1)
        / IPv6ExtHdrHopByHop(options=[RouterAlert()])
        / ICMPv6MLReport2(),
        "dhcp": IPv6(src=ll, dst="ff02::1:2")
        / UDP(sport=546, dport=547)
        / DHCP6_Solicit(),
        "dhcp_hbh": IPv6(src=ll, dst="ff02::1:2")
        / IPv6ExtHdrHopByHop(options=[RouterAlert()])
        / UDP(sport=546, dport=547)
        / DHCP6_Solicit(),
        # must not pass
        "echo": IPv6(src=g, dst="2001:db8:ffff::2") / ICMPv6EchoRequest(),
        "echo_reply": IPv6(src=g, dst="2001:db8:ffff::2") / ICMPv6EchoReply(),
        "mld_query": IPv6(src=ll, dst="ff02::1", hlim=1)
        / IPv6ExtHdrHopByHop(options=[RouterAlert()])
        / ICMPv6MLQuery(),
        "echo_hbh": IPv6(src=g, dst="2001:db8:ffff::2")
        / IPv6ExtHdrHopByHop(options=[RouterAlert()])
        / ICMPv6EchoRequest(),
        "tcp": IPv6(src=g, dst="2001:db8:ffff::2") / TCP(dport=547),
        "udp_dns": IPv6(src=g, dst="2001:db8:ffff::2") / UDP(sport=546, dport=53),
        "udp_546": IPv6(src=ll, dst="fe80::2") / UDP(sport=547, dport=546),
        "arp": ARP(),
    }
    frames = {}
    for i, (name, pkt) in enumerate(cases.items()):
        src = f"02:00:00:00:01:{i:02x}"
        frames[name] = bytes(Ether(src=src, dst="33:33:00:00:00:01") / pkt)
    return frames


PASSING = {"rs", "ra", "ns", "na", "mld1", "mld2", "dhcp", "dhcp_hbh"}


def _filter_body() -> dict[str, Any]:
    sh("ip", "link", "add", "pmtx", "type", "veth", "peer", "name", "pmrx")
    # keep the kernel's own RS, DAD and MLD off the wire: only our frames count
    for ifname in ("pmtx", "pmrx"):
        Path(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6").write_text("1")
    sh("ip", "link", "set", "pmtx", "up")
    sh("ip", "link", "set", "pmrx", "up")
    frames = crafted_frames()
    by_mac = {}
    for name, raw in frames.items():
        by_mac[nd.mac_from_bytes(raw[6:12])] = name

    async def run() -> dict[str, Any]:
        got: list[str] = []
        link = AccessLink("pmrx", lambda f: got.append(by_mac.get(f.src_mac, "?")))
        link.start()
        tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        tx.bind(("pmtx", 0))
        for raw in frames.values():
            tx.send(raw)
        await asyncio.sleep(0.3)
        # our own transmissions are not reported back
        link.send(
            nd.neighbor_solicitation(
                src_mac=VMAC, src_ip=VLL, dst_mac="02:00:00:00:00:02", dst_ip=VLL
            )
        )
        await asyncio.sleep(0.2)
        tx.close()
        link.close()
        return {"got": got, "malformed": link.malformed, "sent": link.sent}

    return asyncio.run(run())


def test_filter_passes_only_control_frames(netns: Callable[[], str]) -> None:
    result = in_netns(netns(), _filter_body)
    assert sorted(result["got"]) == sorted(PASSING)
    assert result["malformed"] == 0 and result["sent"] == 1


def test_filter_program_shape() -> None:
    program = control_frame_filter()
    # every jump lands inside the program and the last two rows return
    for i, (code, jt, jf, k) in enumerate(program):
        if code & 0x07 == 0x05:
            assert i + 1 + max(jt, jf, k if code == 0x05 else 0) < len(program)
    assert program[-2] == (0x06, 0, 0, 0x40000)
    assert program[-1] == (0x06, 0, 0, 0)


# --- interface set-up and a real host on a bridge ---------------------------------


def link_field(name: str, ifname: str = "pmbr") -> str:
    """A field of ``ip -d -j link show`` (sysfs is the host's after setns)."""
    (link,) = json.loads(sh("ip", "-d", "-j", "link", "show", ifname))
    if name == "mcast_snooping":
        return str(link["linkinfo"]["info_data"]["mcast_snooping"])
    return str(link[name])


def _bridge_body(ms_ns: str) -> dict[str, Any]:
    sh("ip", "link", "add", "pmbr", "type", "bridge")
    sh(
        "ip",
        "link",
        "add",
        "pmp1",
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        ms_ns,
    )
    sh("ip", "link", "set", "pmp1", "master", "pmbr", "up")
    sh("ip", "-n", ms_ns, "link", "set", "eth0", "up")
    sysctl = "/proc/sys/net/ipv6/conf/pmbr"

    async def run() -> dict[str, Any]:
        assert await is_bridge("pmbr")
        assert not await is_bridge("pmp1")
        assert not await is_bridge("absent0")
        before_mac = link_field("address")
        state = await configure_access_interface("pmbr", VMAC, VLL)
        await asyncio.to_thread(wait_forwarding, "pmp1")  # the bridge is up now
        out: dict[str, Any] = {
            "mac": link_field("address"),
            "accept_ra": Path(f"{sysctl}/accept_ra").read_text().strip(),
            "forwarding": Path(f"{sysctl}/forwarding").read_text().strip(),
            "snooping": link_field("mcast_snooping"),
            "addrs": sh("ip", "-6", "addr", "show", "dev", "pmbr"),
        }
        frames: list[nd.LinkFrame] = []
        link = AccessLink("pmbr", frames.append)
        link.start()
        ms = ["ip", "netns", "exec", ms_ns]

        def run_ms(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [*ms, *args], capture_output=True, text=True, timeout=30
            )

        # data: pings to the router's link-local and through it
        await asyncio.sleep(0.1)
        frames.clear()
        ping = await asyncio.to_thread(
            run_ms, "ping", "-c", "5", "-i", "0.05", "-W", "1", "fe80::1%eth0"
        )
        out["ping_rc"] = ping.returncode
        out["ping_out"] = ping.stdout + ping.stderr
        # the MS resolves fe80::1 first: its NS (and MLD) are control frames
        out["ping_frames"] = sorted({f.kind.value for f in frames})
        out["echo_frames"] = [f for f in frames if f.icmp_type in (128, 129)]

        # control: an RS (rdisc6) and an NS (ndisc6) do reach us
        frames.clear()
        await asyncio.to_thread(run_ms, "rdisc6", "-1", "-r", "1", "-w", "200", "eth0")
        ns = await asyncio.to_thread(
            run_ms, "ndisc6", "-1", "-r", "1", "-w", "500", "fe80::1", "eth0"
        )
        await asyncio.sleep(0.1)
        out["ndisc6"] = ns.stdout
        out["control"] = sorted({f.kind.value for f in frames})
        out["own"] = [f for f in frames if f.src_mac == VMAC]
        out["received"] = link.received

        # an RA sent through the bridge reaches the MS, which forms LNP + EUI-64
        # and runs DAD: the DAD NS names the LoA (seed 6.3)
        rs = next(f for f in frames if f.kind is nd.FrameKind.ROUTER_SOLICITATION)
        await asyncio.to_thread(
            run_ms, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_dad=1"
        )
        frames.clear()
        link.send(
            nd.router_advertisement(
                src_mac=VMAC,
                src_ip=VLL,
                dst_mac=rs.src_mac,
                dst_ip=rs.src_ip,
                prefixes=[nd.PrefixInformation(LNP, on_link=False, autonomous=True)],
            )
        )
        for _ in range(40):
            await asyncio.sleep(0.05)
            dad = [
                f
                for f in frames
                if f.kind is nd.FrameKind.NEIGHBOR_SOLICITATION
                and f.src_ip == IPv6Address("::")
                and f.target in LNP
            ]
            if dad:
                break
        out["dad_targets"] = sorted({str(f.target) for f in dad})
        out["ms_mac"] = rs.src_mac
        routes = await asyncio.to_thread(run_ms, "ip", "-6", "route", "show")
        out["ms_routes"] = routes.stdout
        link.close()

        await state.restore()
        out["restored_mac"] = link_field("address")
        out["before_mac"] = before_mac
        out["restored_addrs"] = sh("ip", "-6", "addr", "show", "dev", "pmbr")
        out["restored_accept_ra"] = Path(f"{sysctl}/accept_ra").read_text().strip()
        out["restored_snooping"] = link_field("mcast_snooping")
        return out

    return asyncio.run(run())


def test_bridge_access_link_sees_nd_not_data(netns: Callable[[], str]) -> None:
    mpa, ms = netns(), netns()
    for scope in ("all", "default"):
        ns_sh(ms, "sysctl", "-qw", f"net.ipv6.conf.{scope}.accept_dad=0")
    out = in_netns(mpa, _bridge_body, ms)
    ns_sh(ms, "true")

    assert out["mac"] == VMAC
    assert out["accept_ra"] == "0" and out["forwarding"] == "1"
    assert out["snooping"] == "0"
    assert "fe80::1/64" in out["addrs"]

    assert out["ping_rc"] == 0, out["ping_out"]
    # no data frame reached user space
    assert out["echo_frames"] == []
    assert not {"icmpv6", "ipv6"} & set(out["ping_frames"])
    assert "rs" in out["control"] and "ns" in out["control"]
    assert VMAC in out["ndisc6"].lower()  # the kernel answered the NS
    assert out["own"] == []

    # EUI-64 from the MS's MAC (seed 8.1), default route via the virtual router
    mac = bytes.fromhex(out["ms_mac"].replace(":", ""))
    eui = bytes([mac[0] ^ 2]) + mac[1:3] + b"\xff\xfe" + mac[3:]
    loa = IPv6Address(LNP.network_address.packed[:8] + eui)
    assert out["dad_targets"] == [str(loa)]
    assert "default via fe80::1 dev eth0" in out["ms_routes"]
    assert str(LNP) not in out["ms_routes"]  # L=0: no on-link route

    assert out["restored_mac"] == out["before_mac"]
    assert "fe80::1/64" not in out["restored_addrs"]
    assert out["restored_snooping"] == "1"
    assert out["restored_accept_ra"] == "1"


# --- bridge FDB events -------------------------------------------------------------


def _fdb_body(other_ns: str) -> dict[str, Any]:
    for cmd in (
        "ip link add pmbr type bridge",
        "ip link add pmbr2 type bridge",
        "ip link set pmbr up",
        "ip link set pmbr2 up",
        "ip link add pmq0 type veth peer name pmq0b",
        "ip link add pmq1 type veth peer name pmq1b",
    ):
        sh(*cmd.split())
    # the stations are only the MACs we send from: keep the kernel's IPv6 quiet
    for ifname in ("pmq0b", "pmq1b"):
        Path(f"/proc/sys/net/ipv6/conf/{ifname}/disable_ipv6").write_text("1")
    for cmd in (
        "ip link set pmq0 master pmbr up",
        "ip link set pmq0b up",
        "ip link set pmq1 master pmbr up",
        "ip link set pmq1b up",
    ):
        sh(*cmd.split())
    mac_old = "02:00:00:00:bb:00"
    mac1, mac2, mac3 = "02:00:00:00:bb:01", "02:00:00:00:bb:02", "02:00:00:00:bb:03"

    # sockets stay open: closing a packet socket waits for an RCU grace period
    # (milliseconds), which would be counted as event latency
    senders: dict[str, socket.socket] = {}

    def send_from(ifname: str, mac: str) -> None:
        if ifname not in senders:
            senders[ifname] = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
            senders[ifname].bind((ifname, 0))
        senders[ifname].send(
            nd.mac_to_bytes("33:33:00:00:00:01")
            + nd.mac_to_bytes(mac)
            + b"\x88\xb5"
            + b"\x00" * 46
        )

    wait_forwarding("pmq0", "pmq1")
    # a station the bridge knew before the watcher started
    send_from("pmq0b", mac_old)
    time.sleep(0.05)

    async def run() -> dict[str, Any]:
        events: list[tuple[str, str, str | None, float]] = []
        got = asyncio.Event()

        def on_station(mac: str, port: str) -> None:
            events.append(("new", mac, port, time.monotonic()))
            got.set()

        def on_gone(mac: str) -> None:
            events.append(("gone", mac, None, time.monotonic()))
            got.set()

        async def wait_for(kind: str, mac: str) -> float:
            deadline = time.monotonic() + 5
            while time.monotonic() < deadline:
                for e in events:
                    if e[0] == kind and e[1] == mac:
                        return e[3]
                got.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(got.wait(), 0.5)
            raise AssertionError(f"no {kind} event for {mac}: {events}")

        out: dict[str, Any] = {}
        watcher = BridgeWatcher("pmbr", on_station, on_gone)
        await watcher.start()
        await wait_for("new", mac_old)
        out["replayed"] = [e[:3] for e in events]

        latencies = []
        for i in range(20):
            mac = f"02:00:00:00:cc:{i:02x}"
            sent = time.monotonic()
            send_from("pmq1b", mac)
            latencies.append(await wait_for("new", mac) - sent)
        out["latencies"] = latencies

        # three ways of leaving: nomaster, carrier down, moved to another namespace
        send_from("pmq0b", mac1)
        send_from("pmq1b", mac2)
        await wait_for("new", mac1)
        await wait_for("new", mac2)
        out["stations"] = dict(watcher.stations)
        events.clear()
        t = time.monotonic()
        sh("ip", "link", "set", "pmq0", "nomaster")
        out["nomaster"] = await wait_for("gone", mac1) - t
        out["gone_old"] = any(e[:2] == ("gone", mac_old) for e in events)

        events.clear()
        t = time.monotonic()
        sh("ip", "link", "set", "pmq1b", "down")  # the port loses carrier
        out["carrier"] = await wait_for("gone", mac2) - t

        sh("ip", "link", "set", "pmq1b", "up")
        events.clear()
        await asyncio.to_thread(wait_forwarding, "pmq1")
        send_from("pmq1b", mac3)
        await wait_for("new", mac3)
        events.clear()
        t = time.monotonic()
        sh("ip", "link", "set", "pmq1", "netns", other_ns)
        out["netns"] = await wait_for("gone", mac3) - t

        # the port moves into another bridge: the first bridge's watcher sees gone
        sh("ip", "link", "set", "pmq0", "master", "pmbr")
        await asyncio.to_thread(wait_forwarding, "pmq0")
        send_from("pmq0b", mac1)
        await wait_for("new", mac1)
        events.clear()
        t = time.monotonic()
        sh("ip", "link", "set", "pmq0", "master", "pmbr2")
        out["other_bridge"] = await wait_for("gone", mac1) - t
        out["final"] = dict(watcher.stations)
        watcher.close()
        for tx in senders.values():
            tx.close()
        return out

    return asyncio.run(run())


def test_bridge_watcher_reports_stations(netns: Callable[[], str]) -> None:
    out = in_netns(netns(), _fdb_body, netns())
    assert out["replayed"] == [("new", "02:00:00:00:bb:00", "pmq0")]
    assert out["stations"]["02:00:00:00:bb:01"] == "pmq0"
    assert out["stations"]["02:00:00:00:bb:02"] == "pmq1"
    assert out["gone_old"]
    assert out["final"] == {}
    lat = sorted(out["latencies"])
    print(
        f"\nFDB learn event latency over {len(lat)} frames: "
        f"min {lat[0] * 1e3:.2f} ms, median {lat[len(lat) // 2] * 1e3:.2f} ms, "
        f"max {lat[-1] * 1e3:.2f} ms; gone after nomaster "
        f"{out['nomaster'] * 1e3:.1f} ms, carrier down {out['carrier'] * 1e3:.1f} ms,"
        f" netns move {out['netns'] * 1e3:.1f} ms, other bridge "
        f"{out['other_bridge'] * 1e3:.1f} ms"
    )


def _ageing_body() -> dict[str, Any]:
    sh("ip", "link", "add", "pmbr", "type", "bridge", "ageing_time", "100")  # 1 s
    sh("ip", "link", "add", "pmq0", "type", "veth", "peer", "name", "pmq0b")
    Path("/proc/sys/net/ipv6/conf/pmq0b/disable_ipv6").write_text("1")
    for cmd in (
        "ip link set pmbr up",
        "ip link set pmq0 master pmbr up",
        "ip link set pmq0b up",
    ):
        sh(*cmd.split())
    wait_forwarding("pmq0")
    mac = "02:00:00:00:dd:01"

    async def run() -> dict[str, Any]:
        new: dict[str, float] = {}
        gone: dict[str, float] = {}
        done = asyncio.Event()

        def on_gone(m: str) -> None:
            gone[m] = time.monotonic()
            done.set()

        watcher = BridgeWatcher(
            "pmbr", lambda m, p: new.setdefault(m, time.monotonic()), on_gone
        )
        await watcher.start()
        tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        tx.bind(("pmq0b", 0))
        tx.send(nd.mac_to_bytes("ff:ff:ff:ff:ff:ff") + nd.mac_to_bytes(mac) + bytes(50))
        tx.close()
        await asyncio.wait_for(done.wait(), 10)
        watcher.close()
        return {"new": mac in new, "aged": gone[mac] - new[mac]}

    return asyncio.run(run())


def test_bridge_watcher_reports_aged_out_station(netns: Callable[[], str]) -> None:
    out = in_netns(netns(), _ageing_body)
    assert out["new"]
    assert out["aged"] >= 0.9  # not before the ageing time
    print(f"\nFDB entry with ageing_time 1 s reported gone after {out['aged']:.2f} s")


def _kernel_udp_body() -> dict[str, Any]:
    sh("ip", "link", "add", "pmrx", "type", "veth", "peer", "name", "pmtx")
    for ifname in ("pmrx", "pmtx"):
        Path(f"/proc/sys/net/ipv6/conf/{ifname}/accept_dad").write_text("0")
        sh("ip", "link", "set", ifname, "up")

    async def run() -> dict[str, Any]:
        frames: list[nd.LinkFrame] = []
        link = AccessLink("pmrx", frames.append)
        link.start()
        client = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        client.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"pmtx")
        client.bind(("::", 546))
        index = socket.if_nametoindex("pmtx")
        # the link-local address appears once the kernel has seen the carrier
        for _ in range(100):
            try:
                client.sendto(b"\x01\x00\x00\x01", ("ff02::1:2", 547, 0, index))
                break
            except OSError:
                await asyncio.sleep(0.02)
        for _ in range(40):
            await asyncio.sleep(0.05)
            if any(f.kind is nd.FrameKind.DHCPV6 for f in frames):
                break
        client.close()
        link.close()
        payloads = [f.payload for f in frames if f.kind is nd.FrameKind.DHCPV6]
        return {"payloads": payloads, "malformed": link.malformed}

    return asyncio.run(run())


def test_dhcpv6_from_a_kernel_udp_socket_is_decoded(netns: Callable[[], str]) -> None:
    # veth offloads the UDP checksum: the frame we capture has it unfinished
    out = in_netns(netns(), _kernel_udp_body)
    assert out["payloads"] == [b"\x01\x00\x00\x01"]
    assert out["malformed"] == 0


def _resync_body() -> dict[str, Any]:
    sh("ip", "link", "add", "pmbr", "type", "bridge")
    sh("ip", "link", "add", "pmq0", "type", "veth", "peer", "name", "pmq0b")
    Path("/proc/sys/net/ipv6/conf/pmq0b/disable_ipv6").write_text("1")
    for cmd in (
        "ip link set pmbr up",
        "ip link set pmq0 master pmbr up",
        "ip link set pmq0b up",
    ):
        sh(*cmd.split())
    wait_forwarding("pmq0")
    mac = "02:00:00:00:ee:01"

    async def run() -> dict[str, Any]:
        calls: list[tuple[str, str]] = []
        watcher = BridgeWatcher(
            "pmbr",
            lambda m, p: calls.append(("new", m)),
            lambda m: calls.append(("gone", m)),
        )
        await watcher.start(replay=False)
        tx = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        tx.bind(("pmq0b", 0))
        tx.send(nd.mac_to_bytes("ff:ff:ff:ff:ff:ff") + nd.mac_to_bytes(mac) + bytes(50))
        for _ in range(40):
            await asyncio.sleep(0.05)
            if calls:
                break
        out: dict[str, Any] = {"learnt": list(calls)}

        # lose the deletion event on purpose: read it away behind the watcher
        assert watcher._sock is not None
        loop = asyncio.get_running_loop()
        loop.remove_reader(watcher._sock.fileno())
        sh("bridge", "fdb", "del", mac, "dev", "pmq0", "master")
        await asyncio.sleep(0.1)
        with contextlib.suppress(BlockingIOError):
            while True:
                watcher._sock.recv(65536)
        loop.add_reader(watcher._sock.fileno(), watcher._readable)
        out["before"] = dict(watcher.stations)
        calls.clear()
        watcher.resync()
        for _ in range(40):
            await asyncio.sleep(0.05)
            if calls:
                break
        out["after"] = list(calls)
        out["stations"] = dict(watcher.stations)
        watcher.close()
        tx.close()
        return out

    return asyncio.run(run())


def test_bridge_watcher_resync_reports_missed_removal(
    netns: Callable[[], str],
) -> None:
    out = in_netns(netns(), _resync_body)
    assert out["learnt"] == [("new", "02:00:00:00:ee:01")]
    assert out["before"] == {"02:00:00:00:ee:01": "pmq0"}
    assert out["after"] == [("gone", "02:00:00:00:ee:01")]
    assert out["stations"] == {}
