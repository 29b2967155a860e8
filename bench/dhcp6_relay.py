"""DHCPv6 relay figures: codec cost, and Kea round trips through the relay.

    .venv/bin/python bench/dhcp6_relay.py [--exchanges 200]

1. Relay work per message, our codec against scapy's DHCPv6 layers doing the
   same job (wrap a Solicit in a Relay-Forward; unwrap a Relay-Reply and read
   the assigned address), measured side by side.
2. As root with kea-dhcp6 installed: the time from sending a relayed SOLICIT
   to receiving the relayed REPLY (Solicit, Advertise, Request, Reply), and a
   relayed RENEW/REPLY, against Kea in a second namespace, over veth.
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

from pmip6.core.dhcp_relay import interface_id_for_mac, relay_forward, relay_reply
from pmip6.lab.lab import Interrupts
from pmip6.wire.dhcp6 import (
    IANA,
    SERVER_PORT,
    ClientServerMessage,
    IAAddress,
    MessageType,
    Option,
    OptionCode,
    RelayMessage,
    decode_message,
    encode_message,
)

LNP = IPv6Network("2001:db8:1:1::/64")
CLIENT_LL = IPv6Address("fe80::ff:fe00:aa01")
MAC = "02:00:00:00:aa:01"
DUID = b"\x00\x03\x00\x01" + interface_id_for_mac(MAC)


def _solicit(transaction_id: int) -> bytes:
    return encode_message(
        ClientServerMessage(
            MessageType.SOLICIT,
            transaction_id,
            (
                Option(OptionCode.CLIENTID, DUID),
                IANA(1, 0, 0).to_option(),
                Option(OptionCode.ELAPSED_TIME, b"\x00\x00"),
            ),
        )
    )


def _relay_reply_bytes() -> bytes:
    reply = ClientServerMessage(
        MessageType.REPLY,
        1,
        (
            Option(OptionCode.SERVERID, b"\x00\x01\x00\x01kea-server"),
            Option(OptionCode.CLIENTID, DUID),
            IANA(
                1,
                10,
                16,
                (IAAddress(IPv6Address("2001:db8:1:1::100"), 20, 30).to_option(),),
            ).to_option(),
        ),
    )
    return encode_message(
        RelayMessage(
            MessageType.RELAY_REPL,
            0,
            LNP.network_address,
            CLIENT_LL,
            (
                Option(OptionCode.INTERFACE_ID, interface_id_for_mac(MAC)),
                Option(OptionCode.RELAY_MSG, encode_message(reply)),
            ),
        )
    )


def _rate(fn, seconds: float = 0.5) -> float:  # type: ignore[no-untyped-def]
    count = 0
    start = time.perf_counter()
    while True:
        for _ in range(100):
            fn()
        count += 100
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return count / elapsed


def codec_figures() -> None:
    solicit = _solicit(0x123456)
    reply = _relay_reply_bytes()
    ours_forward = _rate(lambda: relay_forward(solicit, CLIENT_LL, LNP, b"\x02" * 6))
    ours_reply = _rate(lambda: relay_reply(reply).assigned_addresses)

    from scapy.layers import dhcp6 as s

    def scapy_forward() -> bytes:
        inner = s.DHCP6_Solicit(solicit)
        return bytes(
            s.DHCP6_RelayForward(
                hopcount=0, linkaddr=str(LNP.network_address), peeraddr=str(CLIENT_LL)
            )
            / s.DHCP6OptRelayMsg(message=inner)
            / s.DHCP6OptIfaceId(ifaceid=b"\x02" * 6)
        )

    def scapy_reply() -> str:
        packet = s.DHCP6_RelayReply(reply)
        inner = packet[s.DHCP6OptRelayMsg].message
        return str(inner[s.DHCP6OptIAAddress].addr)

    theirs_forward = _rate(scapy_forward)
    theirs_reply = _rate(scapy_reply)
    print("relay work per message (messages/s, higher is better)")
    print(f"  Relay-Forward  pmip6 {ours_forward:10,.0f}   scapy {theirs_forward:8,.0f}"
          f"   ratio {ours_forward / theirs_forward:5.1f}x")  # fmt: skip
    print(f"  Relay-Reply    pmip6 {ours_reply:10,.0f}   scapy {theirs_reply:8,.0f}"
          f"   ratio {ours_reply / theirs_reply:5.1f}x")  # fmt: skip


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True)


class _Client:
    """A DHCPv6 client's messages, relayed as an MPA relays them."""

    def __init__(self, sock: socket.socket, server: IPv6Address, mac: str) -> None:
        self.sock = sock
        self.server = server
        self.interface_id = interface_id_for_mac(mac)
        self.duid = b"\x00\x03\x00\x01" + self.interface_id
        self.transaction_id = 0

    def message(self, msg_type: int, *options: Option) -> bytes:
        self.transaction_id += 1
        return encode_message(
            ClientServerMessage(
                msg_type,
                self.transaction_id,
                (Option(OptionCode.CLIENTID, self.duid), *options),
            )
        )

    def exchange(self, payload: bytes) -> ClientServerMessage:
        forward = relay_forward(payload, CLIENT_LL, LNP, self.interface_id)
        self.sock.sendto(forward, (str(self.server), SERVER_PORT))
        inner = decode_message(relay_reply(self.sock.recv(4096)).message)
        assert isinstance(inner, ClientServerMessage)
        return inner


def kea_figures(exchanges: int) -> None:
    from pmip6.lab.kea import KeaServer
    from pmip6.lab.netns import Namespace

    tag = f"pm-dhb-{os.getpid()}"
    relay_ns, server_ns = f"{tag}-r", f"{tag}-s"
    relay, server = IPv6Address("fd00::11"), IPv6Address("fd00::2")
    made: list[str] = []
    workdir = Path(tempfile.mkdtemp(prefix="pm-dhb-"))
    kea = KeaServer(workdir, server_ns, "veth-s", server, {LNP: None},
                    valid_lifetime=3600, preferred_lifetime=1800,
                    renew_timer=900, rebind_timer=1400)  # fmt: skip
    try:
        for ns in (relay_ns, server_ns):
            _ip("netns", "add", ns)
            made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", relay_ns, "link", "add", "veth-r", "type", "veth", "peer", "veth-s")
        _ip("-n", relay_ns, "link", "set", "veth-s", "netns", server_ns)
        for ns, dev, addr in (
            (relay_ns, "veth-r", relay),
            (server_ns, "veth-s", server),
        ):
            _ip("-n", ns, "addr", "add", f"{addr}/64", "dev", dev, "nodad")
            _ip("-n", ns, "link", "set", dev, "up")
        started = time.monotonic()
        kea.start()
        print(f"Kea start until port 547 bound: {time.monotonic() - started:.3f} s")

        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            sock.bind((str(relay), SERVER_PORT))
            sock.settimeout(2.0)
            return sock

        sock = Namespace(relay_ns).call(make)
        full: list[float] = []
        renew: list[float] = []
        for k in range(exchanges):
            client = _Client(sock, server, f"02:00:00:01:{k // 256:02x}:{k % 256:02x}")
            t0 = time.perf_counter()
            advertise = client.exchange(
                client.message(MessageType.SOLICIT, IANA(1, 0, 0).to_option())
            )
            assert advertise.server_id is not None
            sid = Option(OptionCode.SERVERID, advertise.server_id)
            reply = client.exchange(
                client.message(MessageType.REQUEST, sid, advertise.ia_na[0].to_option())
            )
            t1 = time.perf_counter()
            client.exchange(
                client.message(MessageType.RENEW, sid, reply.ia_na[0].to_option())
            )
            t2 = time.perf_counter()
            full.append((t1 - t0) * 1000)
            renew.append((t2 - t1) * 1000)
        sock.close()

        def line(name: str, values: list[float]) -> str:
            values.sort()
            p95 = values[int(len(values) * 0.95) - 1]
            return (f"  {name:24} median {statistics.median(values):6.2f} ms"
                    f"   p95 {p95:6.2f} ms   max {values[-1]:6.2f} ms")  # fmt: skip

        print(f"Kea through the relay envelope, {exchanges} clients (memfile leases)")
        print(line("SOLICIT..REPLY (4 msgs)", full))
        print(line("RENEW..REPLY (2 msgs)", renew))
        ratio = statistics.median(full) / statistics.median(renew)
        print(f"  ratio full/renew {ratio:.2f}")
    finally:
        kea.stop()
        for ns in made:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exchanges", type=int, default=200)
    args = parser.parse_args()
    codec_figures()
    if os.geteuid() != 0 or shutil.which("kea-dhcp6") is None:
        print("Kea figures skipped: need root and kea-dhcp6")
        return 0
    kea_figures(args.exchanges)
    return 0


if __name__ == "__main__":
    # SIGTERM and SIGHUP unwind like Ctrl-C: the namespaces built are removed
    with Interrupts():
        sys.exit(main())
