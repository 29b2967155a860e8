"""Stateful DHCPv6 attach in a lab, timed where the frames pass (root).

    .venv/bin/python bench/dhcp6_lab.py [--stations 4]

A lab with Kea and ``--stations`` stations at mpa1, each running dhclient -6.
Taps on mpa1's base station bridge and uplink timestamp every DHCPv6 and
mobility frame (kernel timestamps, one clock for all namespaces). Per station:

- relay in:   SOLICIT on the bridge -> its Relay-Forward on the uplink
- relay out:  Relay-Reply on the uplink -> the message to the station
- server:     Relay-Forward out -> Relay-Reply back (Kea, per message)
- exchange:   SOLICIT -> REPLY on the bridge (includes dhclient's own wait
              for more Advertises, RFC 8415 18.2.1)
- register:   REPLY -> PBU carrying the address; PBU -> PBA
"""

from __future__ import annotations

import argparse
import os
import secrets
import select
import socket
import statistics
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from ipaddress import IPv6Address

from pmip6.lab.lab import Interrupts, Lab
from pmip6.lab.netns import Namespace
from pmip6.lab.topology import ACCESS_IF, UPLINK_IF, Topology
from pmip6.wire.dhcp6 import MessageType, RelayMessage, decode_message
from pmip6.wire.errors import Malformed
from pmip6.wire.mh import (
    AssignedHomeAddress,
    BindingAcknowledgement,
    BindingUpdate,
    decode_mh,
    find_option,
)

ETH_P_ALL = 0x0003
SO_TIMESTAMPNS = 35


@dataclass(frozen=True)
class Seen:
    ts: float
    where: str  # "br0" or "uplink"
    kind: str  # "dhcp:SOLICIT", "relay:RELAY_FORW", "pbu", "pba"
    key: str  # the station's MAC (bridge) or its Interface-Id (relay)


def _classify(frame: bytes) -> tuple[str, str] | None:
    if len(frame) < 62 or frame[12:14] != b"\x86\xdd":
        return None
    nh, ip = frame[20], frame[14:]
    body = ip[40:]
    if nh == 135 and len(body) >= 3 and body[2] in (5, 6):
        try:
            mh = decode_mh(body[: (body[1] + 1) * 8])
        except Malformed:
            return None
        if isinstance(mh, BindingUpdate):
            aha = find_option(mh.options, AssignedHomeAddress)
            return ("pbu", f"{aha.home_address if aha else '-'}/{mh.sequence}")
        if isinstance(mh, BindingAcknowledgement):
            return ("pba", f"/{mh.sequence}")
        return None
    if nh != 17 or len(body) < 8:
        return None
    ports = struct.unpack("!HH", body[:4])
    if 547 not in ports:
        return None
    try:
        message = decode_message(body[8:])
    except Malformed:
        return None
    if isinstance(message, RelayMessage):
        key = (message.interface_id or b"").hex(":")
        return (f"relay:{MessageType(message.msg_type).name}", key)
    name = MessageType(message.msg_type).name
    mac = frame[6:12] if ports[0] == 546 else frame[0:6]
    return (f"dhcp:{name}", mac.hex(":"))


class Taps:
    def __init__(self) -> None:
        self.seen: list[Seen] = []
        self.socks: dict[socket.socket, str] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def add(self, ns: str, ifname: str) -> None:
        with Namespace(ns).entered():
            sock = socket.socket(
                socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)
            )
            sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            sock.bind((ifname, ETH_P_ALL))
        sock.setblocking(False)
        self.socks[sock] = ifname

    def _loop(self) -> None:
        while not self.stop.is_set():
            ready, _, _ = select.select(list(self.socks), [], [], 0.1)
            for sock in ready:
                while True:
                    try:
                        data, anc, _, _ = sock.recvmsg(2048, 64)
                    except BlockingIOError:
                        break
                    ts = time.time()
                    for level, kind, value in anc:
                        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                            sec, nsec = struct.unpack("qq", value[:16])
                            ts = sec + nsec / 1e9
                    found = _classify(data)
                    if found is not None:
                        self.seen.append(Seen(ts, self.socks[sock], *found))

    def close(self) -> None:
        self.stop.set()
        self.thread.join(2)
        for sock in self.socks:
            sock.close()


def _first(seen: list[Seen], kind: str, key: str, after: float = 0.0) -> float | None:
    found = _find(seen, kind, lambda k: k == key, after)
    return found.ts if found else None


def _find(
    seen: list[Seen], kind: str, match: Callable[[str], bool], after: float = 0.0
) -> Seen | None:
    for s in seen:
        if s.kind == kind and match(s.key) and s.ts >= after:
            return s
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=4)
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root")
        return 1

    topo = Topology.from_dict(
        {
            "lab": {"name": f"db{secrets.token_hex(3)}", "mpas": 1, "dhcp": True},
            "ms": [{"name": f"ms{k}"} for k in range(1, args.stations + 1)],
        }
    )
    lab = Lab.create(topo)
    taps = Taps()
    try:
        lab.up(attach=False)
        taps.add(topo.ns("mpa1"), ACCESS_IF)
        taps.add(topo.ns("mpa1"), UPLINK_IF)
        taps.thread.start()
        started = {}
        for s in topo.stations:
            lab.attach(s.name)
        for s in topo.stations:
            lab.start_dhclient(s.name)
            started[s.name] = time.time()
        usable: dict[str, float] = {}
        loas: dict[str, IPv6Address] = {}
        deadline = time.monotonic() + 30
        while len(usable) < len(topo.stations) and time.monotonic() < deadline:
            for s in topo.stations:
                loa = lab.loa(s.name) if s.name not in usable else None
                if loa is not None:
                    usable[s.name] = time.time()
                    loas[s.name] = loa
            time.sleep(0.02)
        time.sleep(0.5)
    finally:
        taps.close()
        lab.down()

    seen = sorted(taps.seen, key=lambda s: s.ts)
    rows: dict[str, list[float]] = {}

    def add(name: str, a: float | None, b: float | None) -> None:
        if a is not None and b is not None:
            rows.setdefault(name, []).append((b - a) * 1000)

    for s in topo.stations:
        mac = s.mac
        solicit = _first(seen, "dhcp:SOLICIT", mac)
        fwd = _first(seen, "relay:RELAY_FORW", mac, solicit or 0)
        back = _first(seen, "relay:RELAY_REPL", mac, fwd or 0)
        advertise = _first(seen, "dhcp:ADVERTISE", mac, back or 0)
        request = _first(seen, "dhcp:REQUEST", mac, advertise or 0)
        reply = _first(seen, "dhcp:REPLY", mac, request or 0)
        loa = str(loas.get(s.name))
        pbu_seen = _find(
            seen, "pbu", lambda k, p=loa + "/": k.startswith(p), reply or 0
        )
        pbu = pbu_seen.ts if pbu_seen else None
        sequence = "/" + pbu_seen.key.split("/")[1] if pbu_seen else "?"
        pba = _first(seen, "pba", sequence, pbu or 0)
        add("dhclient start -> SOLICIT", started[s.name], solicit)
        add("relay in (frame -> relay)", solicit, fwd)
        add("Kea (relay -> reply)", fwd, back)
        add("relay out (reply -> frame)", back, advertise)
        add("SOLICIT -> REPLY", solicit, reply)
        add("REQUEST -> REPLY", request, reply)
        add("REPLY -> PBU with address", reply, pbu)
        add("PBU -> PBA", pbu, pba)
        add("dhclient start -> LoA usable", started[s.name], usable.get(s.name))

    print(f"{len(topo.stations)} stations at one MPA, Kea in the LMAP namespace")
    for name, values in rows.items():
        print(
            f"  {name:30} median {statistics.median(values):8.2f} ms"
            f"   max {max(values):8.2f} ms   (n={len(values)})"
        )
    got = len(usable)
    print(f"  stations with an address: {got}/{len(topo.stations)}")
    return 0 if got == len(topo.stations) else 1


if __name__ == "__main__":
    # SIGTERM and SIGHUP unwind like Ctrl-C: the namespaces built are removed
    with Interrupts():
        sys.exit(main())
