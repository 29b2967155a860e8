"""The MPA's access link on Linux: interface set-up, ND frame I/O, bridge events.

Three pieces, each small:

``configure_access_interface``
    gives the access interface the virtual MAC and link-local address shared by
    every MPA of the domain (seed 6.2), so a roaming MS keeps talking to the
    same router, and turns off what the kernel would otherwise do on its own
    there (accept RAs). The kernel keeps answering NS for the link-local.
    ``AccessInterfaceState.restore()`` undoes it at stop.

``AccessLink``
    an AF_PACKET socket on the access interface with a classic BPF filter, so
    only the control frames the MPA needs (RS, RA, NS, NA, MLD reports,
    DHCPv6 to port 547) ever reach user space; data traffic stays in the
    kernel. Frames are decoded by ``pmip6.wire.nd`` and handed to a callback.

``BridgeWatcher``
    follows the bridge's forwarding database over rtnetlink: a station's MAC
    learned on a port (attach, seed 6.1: the MS is noticed from the access
    link itself, even when a roaming host sends no RS) and its removal (port
    left the bridge, carrier lost, aged out).

All three are asyncio-friendly; note that pyroute2's synchronous ``IPRoute``
cannot be used from a thread whose asyncio loop is running (it runs its own
loop there), so this module uses ``AsyncIPRoute`` and a plain netlink socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import socket
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

from pyroute2 import AsyncIPRoute
from pyroute2.netlink import NLM_F_DUMP, NLM_F_REQUEST, NLMSG_DONE
from pyroute2.netlink.rtnl import RTM_DELNEIGH, RTM_GETNEIGH, RTM_NEWNEIGH
from pyroute2.netlink.rtnl.marshal import MarshalRtnl
from pyroute2.netlink.rtnl.ndmsg import ndmsg

from pmip6.wire.errors import Malformed
from pmip6.wire.nd import ETH_P_IPV6, LinkFrame, decode_frame, normalise_mac

log = logging.getLogger(__name__)

IFA_F_NODAD = 0x02
SO_ATTACH_FILTER = 26
SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP = 1
PACKET_MR_ALLMULTI = 2
PACKET_IGNORE_OUTGOING = 23
PACKET_OUTGOING = 4
PACKET_AUXDATA = 8
TP_STATUS_CSUMNOTREADY = 0x8
_AUXDATA = struct.Struct("IIIHHHH")  # struct tpacket_auxdata
RTMGRP_NEIGH = 0x4
NUD_NOARP = 0x40
NUD_PERMANENT = 0x80


# --- interface set-up ------------------------------------------------------------


@dataclass
class AccessInterfaceState:
    """What ``configure_access_interface`` changed, so ``restore`` can undo it."""

    ifname: str
    index: int
    old_mac: str | None = None  # set when the MAC was changed
    added_address: IPv6Address | None = None  # set when we added the link-local
    was_down: bool = False
    old_mcast_snooping: int | None = None  # set when bridge snooping was turned off
    # path -> previous content, in the order written
    old_files: dict[str, str] = field(default_factory=dict)

    async def restore(self) -> None:
        """Put back the MAC, address, link state and sysctls found at start.

        Best effort: each step that fails (the interface is gone) is logged
        with what it could not put back, and the others still run.
        """
        for path, value in reversed(list(self.old_files.items())):
            try:
                Path(path).write_text(value)
            except OSError as e:
                log.warning("%s: cannot restore %s: %s", self.ifname, path, e)
        try:
            async with AsyncIPRoute() as ipr:
                await self._restore_link(ipr)
        except Exception as e:  # no netlink socket at all
            log.warning("%s: cannot restore link settings: %s", self.ifname, e)
        self.old_files.clear()
        self.added_address = None
        self.old_mac = None
        self.was_down = False
        self.old_mcast_snooping = None

    async def _restore_link(self, ipr: AsyncIPRoute) -> None:
        async def step(what: str, **kw: Any) -> None:
            try:
                try:
                    await ipr.link("set", index=self.index, **kw)
                except Exception as e:
                    if getattr(e, "code", None) != errno.EBUSY or "address" not in kw:
                        raise
                    # as at start: some drivers take a new MAC only while down
                    await ipr.link("set", index=self.index, state="down")
                    await ipr.link("set", index=self.index, **kw)
                    if not self.was_down:
                        await ipr.link("set", index=self.index, state="up")
            except Exception as e:
                log.warning("%s: cannot restore %s: %s", self.ifname, what, e)

        if self.added_address is not None:
            try:
                await ipr.addr(
                    "del",
                    index=self.index,
                    address=str(self.added_address),
                    prefixlen=64,
                )
            except Exception as e:
                # already gone (removed by hand): nothing left to undo
                if getattr(e, "code", None) != errno.EADDRNOTAVAIL:
                    log.warning(
                        "%s: cannot remove %s: %s", self.ifname, self.added_address, e
                    )
        if self.old_mac is not None:
            await step(f"MAC address {self.old_mac}", address=self.old_mac)
        if self.old_mcast_snooping is not None:
            await step(
                "multicast snooping",
                kind="bridge",
                br_mcast_snooping=self.old_mcast_snooping,
            )
        if self.was_down:
            await step("link state down", state="down")


def _set_file(state: AccessInterfaceState, path: str, value: str) -> None:
    """Write ``value`` to a sysctl/sysfs file, remembering the old content."""
    old = Path(path).read_text().strip()
    if old != value:
        Path(path).write_text(value)
        state.old_files.setdefault(path, old)


async def configure_access_interface(
    ifname: str, virtual_mac: str, virtual_link_local: IPv6Address | str
) -> AccessInterfaceState:
    """Make ``ifname`` the router side of an access link (seed 6.2).

    Sets the MAC to ``virtual_mac``, adds ``virtual_link_local``/64 without
    DAD (every MPA carries the same one), brings the link up, and sets
    ``accept_ra=0`` and ``forwarding=1`` for the interface (the kernel then
    sends no RS, takes no RA, and answers NS for the link-local with the
    router flag). On a bridge it also turns multicast snooping off: once an MLD
    querier is active, a snooping bridge passes a DAD NS (sent to a group
    only the MS has joined) to the MS's port alone, and the MPA would miss its
    cue to the LoA (seed 6.3). Without a querier the bridge floods unknown
    groups to itself as well, which is why the lab works either way.
    Returns the record that ``restore()`` uses at stop.
    """
    mac = normalise_mac(virtual_mac)
    link_local = IPv6Address(virtual_link_local)
    async with AsyncIPRoute() as ipr:
        found = await ipr.link_lookup(ifname=ifname)
        if not found:
            raise ValueError(f"no interface named {ifname!r}")
        state = AccessInterfaceState(ifname=ifname, index=found[0])
        (link,) = await ipr.link("get", index=state.index)
        current = str(link.get("IFLA_ADDRESS") or "").lower()
        if current in ("", "00:00:00:00:00:00"):
            # no MAC to put back at stop (loopback, tunnels): not an access link
            raise ValueError(f"{ifname!r} has no Ethernet address")
        state.was_down = not link["flags"] & 1  # IFF_UP
        try:
            await _take_link(ipr, state, link, current, mac, link_local)
        except BaseException:
            # undo the steps that were done, then report the one that failed
            await state.restore()
            raise

    conf = f"/proc/sys/net/ipv6/conf/{ifname}"
    try:
        _set_file(state, f"{conf}/accept_ra", "0")
        _set_file(state, f"{conf}/forwarding", "1")
        # the MS's traffic is routed into the tunnel: forwarding must be on globally
        _set_file(state, "/proc/sys/net/ipv6/conf/all/forwarding", "1")
        _set_file(state, f"{conf}/accept_ra", "0")  # all/forwarding rewrote it
        _set_file(state, f"{conf}/forwarding", "1")
    except BaseException:
        await state.restore()
        raise
    log.debug("%s: access interface configured (%s, %s)", ifname, mac, link_local)
    return state


async def _take_link(
    ipr: AsyncIPRoute,
    state: AccessInterfaceState,
    link: Any,
    current: str,
    mac: str,
    link_local: IPv6Address,
) -> None:
    """The netlink half of ``configure_access_interface``, noted in ``state``
    step by step so that a failure half-way can be undone."""
    if current != mac:
        try:
            await ipr.link("set", index=state.index, address=mac)
        except Exception as e:
            # some drivers refuse a new MAC while up: retry with the link down
            if getattr(e, "code", None) != errno.EBUSY:
                raise
            await ipr.link("set", index=state.index, state="down")
            await ipr.link("set", index=state.index, address=mac)
        state.old_mac = current

    await ipr.link("set", index=state.index, state="up")

    have = {
        a.get("IFA_ADDRESS")
        async for a in await ipr.addr("dump", index=state.index, family=10)
    }
    if str(link_local) not in have:
        await ipr.addr(
            "add",
            index=state.index,
            address=str(link_local),
            prefixlen=64,
            flags=IFA_F_NODAD,
        )
        state.added_address = link_local

    info = link.get("IFLA_LINKINFO")
    if info is not None and info.get("IFLA_INFO_KIND") == "bridge":
        data = info.get("IFLA_INFO_DATA")
        snooping = data.get("IFLA_BR_MCAST_SNOOPING") if data else None
        if snooping:
            await ipr.link("set", index=state.index, kind="bridge", br_mcast_snooping=0)
            state.old_mcast_snooping = snooping


async def is_bridge(ifname: str) -> bool:
    """Whether ``ifname`` is a Linux bridge, asked over netlink.

    (``/sys/class/net`` shows the namespace sysfs was mounted in, which is not
    the current one in a process that entered its namespace with setns.)
    """
    async with AsyncIPRoute() as ipr:
        found = await ipr.link_lookup(ifname=ifname)
        if not found:
            return False
        (link,) = await ipr.link("get", index=found[0])
    info = link.get("IFLA_LINKINFO")
    return info is not None and info.get("IFLA_INFO_KIND") == "bridge"


# --- the packet socket -------------------------------------------------------------

# classic BPF opcodes (linux/bpf_common.h)
_LD_B_ABS, _LD_H_ABS, _LD_B_IND, _LD_H_IND = 0x30, 0x28, 0x50, 0x48
_LDX_IMM, _ALU_ADD_K, _ALU_LSH_K, _MISC_TAX = 0x01, 0x04, 0x64, 0x07
_JA, _JEQ_K, _JGT_K, _JGE_K, _RET_K = 0x05, 0x15, 0x25, 0x35, 0x06

# (opcode, jump-if-true label, jump-if-false label, k); labels name a line
_Insn = tuple[int, str | None, str | None, int]

# Frame offsets: Ethernet 14, IPv6 next header at 14+6, payload at 14+40. X holds
# the Hop-by-Hop header's length (0 without one), so [x+54] is the upper layer.
_FILTER: list[tuple[str | None, _Insn]] = [
    (None, (_LD_H_ABS, None, None, 12)),  # EtherType
    (None, (_JEQ_K, None, "drop", ETH_P_IPV6)),
    (None, (_LD_B_ABS, None, None, 20)),  # IPv6 next header
    (None, (_JEQ_K, "hbh", None, 0)),
    (None, (_LDX_IMM, None, None, 0)),
    (None, (_JA, None, None, 0)),  # k patched: jump to "nh"
    ("hbh", (_LD_B_ABS, None, None, 55)),  # Hdr Ext Len (RFC 8200 4.3)
    (None, (_ALU_ADD_K, None, None, 1)),
    (None, (_ALU_LSH_K, None, None, 3)),
    (None, (_MISC_TAX, None, None, 0)),
    (None, (_LD_B_ABS, None, None, 54)),  # next header after Hop-by-Hop
    ("nh", (_JEQ_K, "icmp", None, 58)),
    (None, (_JEQ_K, "udp", "drop", 17)),
    ("icmp", (_LD_B_IND, None, None, 54)),  # ICMPv6 type
    (None, (_JEQ_K, "accept", None, 131)),  # MLDv1 report
    (None, (_JEQ_K, "accept", None, 143)),  # MLDv2 report
    (None, (_JGE_K, None, "drop", 133)),
    (None, (_JGT_K, "drop", "accept", 136)),  # RS, RA, NS, NA
    ("udp", (_LD_H_IND, None, None, 56)),  # UDP destination port
    (None, (_JEQ_K, "accept", "drop", 547)),
    ("accept", (_RET_K, None, None, 0x40000)),
    ("drop", (_RET_K, None, None, 0)),
]


def control_frame_filter() -> list[tuple[int, int, int, int]]:
    """The BPF program as (code, jt, jf, k) rows, jumps resolved.

    Accepts IPv6 frames carrying ICMPv6 RS/RA/NS/NA or MLD reports, or UDP to
    port 547, directly or after one Hop-by-Hop header; drops everything else
    (pings and all other data included).
    """
    labels = {name: i for i, (name, _) in enumerate(_FILTER) if name}
    program = []
    for i, (_, (code, jt, jf, k)) in enumerate(_FILTER):
        if code == _JA:
            k = labels["nh"] - i - 1
        program.append(
            (
                code,
                labels[jt] - i - 1 if jt else 0,
                labels[jf] - i - 1 if jf else 0,
                k,
            )
        )
    return program


def attach_control_filter(sock: socket.socket) -> None:
    """Attach ``control_frame_filter()`` to a packet socket (SO_ATTACH_FILTER)."""
    program = control_frame_filter()
    insns = b"".join(struct.pack("HBBI", *row) for row in program)
    buf = ctypes.create_string_buffer(insns)
    fprog = struct.pack("HL", len(program), ctypes.addressof(buf))
    sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)


class AccessLink:
    """ND/MLD/DHCPv6 frames on one access interface, through a filtered
    AF_PACKET socket.

    ``on_frame(frame)`` is called in the event loop for every decoded frame
    (frames we sent ourselves are not reported). Malformed frames are counted
    in ``malformed`` and logged at DEBUG. Use ``start()`` in a running loop,
    ``send(frame)`` for whole Ethernet frames (see ``pmip6.wire.nd``),
    ``close()`` at stop; or ``async with AccessLink(...)``.
    """

    def __init__(self, ifname: str, on_frame: Callable[[LinkFrame], None]) -> None:
        self.ifname = ifname
        self.on_frame = on_frame
        self.received = 0
        self.malformed = 0
        self.sent = 0
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Open the socket and start reading; needs a running event loop."""
        self._loop = asyncio.get_running_loop()
        # protocol 0 receives nothing until bind: the filter is in place before
        # the first frame can be queued
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0)
        try:
            attach_control_filter(sock)
            # before Linux 4.20 this fails; sll_pkttype is checked anyway
            with contextlib.suppress(OSError):
                sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
            # checksum offload between virtual interfaces leaves UDP checksums
            # unfinished; the auxiliary data says so per frame
            sock.setsockopt(SOL_PACKET, PACKET_AUXDATA, 1)
            sock.bind((self.ifname, ETH_P_IPV6))
            # DAD NS go to solicited-node groups the router has not joined
            index = socket.if_nametoindex(self.ifname)
            mreq = struct.pack("iHH8s", index, PACKET_MR_ALLMULTI, 0, b"")
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, mreq)
            sock.setblocking(False)
        except BaseException:
            sock.close()
            raise
        self._sock = sock
        self._loop.add_reader(sock.fileno(), self._readable)

    def _readable(self) -> None:
        assert self._sock is not None
        for _ in range(64):  # bounded, so one busy link cannot starve the loop
            try:
                data, ancdata, _, address = self._sock.recvmsg(
                    65535, socket.CMSG_SPACE(_AUXDATA.size)
                )
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                log.warning("%s: receive failed: %s", self.ifname, e)
                return
            if address[2] == PACKET_OUTGOING:
                continue
            verify = True
            for level, kind, cdata in ancdata:
                if level == SOL_PACKET and kind == PACKET_AUXDATA:
                    (status, *_) = _AUXDATA.unpack_from(cdata.ljust(_AUXDATA.size))
                    verify = not status & TP_STATUS_CSUMNOTREADY
            try:
                frame = decode_frame(data, verify_checksum=verify)
            except Malformed as e:
                self.malformed += 1
                log.debug("%s: dropped malformed frame: %s", self.ifname, e)
                continue
            self.received += 1
            try:
                self.on_frame(frame)
            except Exception:
                log.exception("%s: frame handler failed", self.ifname)

    def send(self, frame: bytes) -> None:
        """Send one whole Ethernet frame out of the access interface."""
        if self._sock is None:
            raise RuntimeError("AccessLink is not started")
        try:
            self._sock.send(frame)
            self.sent += 1
        except (BlockingIOError, InterruptedError):
            # ND is unreliable by design (RFC 4861): the peer retransmits
            log.debug("%s: send queue full, frame dropped", self.ifname)

    def close(self) -> None:
        if self._sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None

    async def __aenter__(self) -> AccessLink:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()


# --- bridge forwarding database ---------------------------------------------------


class BridgeWatcher:
    """Stations learned by a Linux bridge, from its FDB over rtnetlink.

    ``on_station(mac, port_ifname)`` fires when the bridge learns a MAC on one
    of its ports (or the MAC moves to another port); ``on_station_gone(mac)``
    when its entry is deleted (port removed, carrier lost, aged out). Local and
    static entries (the bridge's and the ports' own MACs) are ignored.
    ``stations`` maps each present MAC to its port name.

    ``await start(replay=True)`` subscribes first, then dumps the FDB, so no
    entry is missed; with ``replay`` the stations already present are reported
    through ``on_station`` too.
    """

    def __init__(
        self,
        bridge: str,
        on_station: Callable[[str, str], None],
        on_station_gone: Callable[[str], None],
    ) -> None:
        self.bridge = bridge
        self.on_station = on_station
        self.on_station_gone = on_station_gone
        self.stations: dict[str, str] = {}
        self._entries: dict[tuple[str, int], str] = {}  # (mac, vlan) -> port
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._marshal = MarshalRtnl()
        self._bridge_index = 0
        self._replay = True
        self._names: dict[int, str] = {}
        self._dump_seq = 0
        self._dump_seen: set[tuple[str, int]] | None = None

    async def start(self, replay: bool = True) -> None:
        """Subscribe to FDB events and load the current table."""
        self._loop = asyncio.get_running_loop()
        self._replay = replay
        self._bridge_index = socket.if_nametoindex(self.bridge)
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)  # NETLINK_ROUTE
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.bind((0, RTMGRP_NEIGH))
            sock.setblocking(False)
            self._sock = sock
            self.resync()
        except BaseException:
            sock.close()
            self._sock = None
            raise
        self._loop.add_reader(sock.fileno(), self._readable)

    def resync(self) -> None:
        """Reload the whole FDB and report the differences through the callbacks.

        The dump's replies come through the same reader as events; entries it
        does not list are reported gone when it ends (NLMSG_DONE). Called at
        start and after a netlink overrun (lost events).
        """
        assert self._sock is not None
        self._dump_seq += 1
        self._dump_seen = set()
        request = ndmsg()
        request["family"] = socket.AF_BRIDGE
        request["header"]["type"] = RTM_GETNEIGH
        request["header"]["flags"] = NLM_F_REQUEST | NLM_F_DUMP
        request["header"]["sequence_number"] = self._dump_seq
        request.encode()
        self._sock.send(request.data)

    def _dump_done(self) -> None:
        seen = self._dump_seen or set()
        self._dump_seen = None
        self._replay = True  # only the first dump may be silent
        for key in [k for k in self._entries if k not in seen]:
            self._remove(key)

    def _port_name(self, index: int) -> str:
        # when the port is already gone, keep the name we saw last
        with contextlib.suppress(OSError):
            self._names[index] = socket.if_indextoname(index)
        return self._names.get(index, str(index))

    def _readable(self) -> None:
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(1 << 16)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    # events were lost: the next dump puts us right again
                    log.warning("%s: netlink overrun, reloading FDB", self.bridge)
                    self.resync()
                    continue
                log.warning("%s: netlink receive failed: %s", self.bridge, e)
                return
            for msg in self._marshal.parse(data):
                self._handle(msg)

    def _handle(self, msg: ndmsg) -> None:
        kind = msg["header"]["type"]
        in_dump = msg["header"]["sequence_number"] == self._dump_seq
        if kind == NLMSG_DONE and in_dump and self._dump_seen is not None:
            self._dump_done()
            return
        if kind not in (RTM_NEWNEIGH, RTM_DELNEIGH):
            return
        if msg["family"] != socket.AF_BRIDGE:
            return
        if msg.get_attr("NDA_MASTER") != self._bridge_index:
            return
        port_index = msg["ifindex"]
        if port_index == self._bridge_index or msg["state"] & (
            NUD_PERMANENT | NUD_NOARP
        ):
            return  # the bridge's own or a port's own MAC, or a static entry
        lladdr = msg.get_attr("NDA_LLADDR")
        if not lladdr:
            return
        mac = normalise_mac(lladdr)
        key = (mac, msg.get_attr("NDA_VLAN") or 0)

        if kind == RTM_DELNEIGH:
            self._remove(key)
            return
        if self._dump_seen is not None:
            self._dump_seen.add(key)
        port = self._port_name(port_index)
        self._entries[key] = port
        if self.stations.get(mac) == port:
            return
        self.stations[mac] = port
        if in_dump and not self._replay:
            return
        self.on_station(mac, port)

    def _remove(self, key: tuple[str, int]) -> None:
        self._entries.pop(key, None)
        mac = key[0]
        if mac not in self.stations or any(k[0] == mac for k in self._entries):
            return
        del self.stations[mac]
        self.on_station_gone(mac)

    def close(self) -> None:
        if self._sock is not None:
            if self._loop is not None and not self._loop.is_closed():
                self._loop.remove_reader(self._sock.fileno())
            self._sock.close()
            self._sock = None
