"""Our relay envelope against a real Kea DHCPv6 server, in two namespaces.

The relay side sends Relay-Forwards built by our codec from its own address,
port 547, as an MPA does; the server side runs kea-dhcp6 with one pool per LNP.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from typing import Any, TypeVar

import pytest

from pmip6.core.dhcp_relay import (
    RelayedReply,
    interface_id_for_mac,
    relay_forward,
    relay_reply,
)
from pmip6.lab.kea import KeaError, KeaServer, default_pool
from pmip6.wire.dhcp6 import (
    IANA,
    SERVER_PORT,
    ClientServerMessage,
    MessageType,
    Option,
    OptionCode,
    decode_message,
    encode_message,
)

needs_kea = pytest.mark.skipif(shutil.which("kea-dhcp6") is None, reason="no kea-dhcp6")

T = TypeVar("T")

LNP_A = IPv6Network("2001:db8:1:1::/64")
LNP_B = IPv6Network("2001:db8:1:2::/64")
RELAY = IPv6Address("fd00::11")
SERVER = IPv6Address("fd00::2")
CLIENT_LL = IPv6Address("fe80::ff:fe00:aa01")
CLIENT_MAC = "02:00:00:00:aa:01"
_counter = iter(range(1, 1_000_000))


def _setns(path: str) -> Callable[[], None]:
    """Move this thread into the namespace at ``path``; return the way back."""
    libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    home = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", 0)
    target = os.open(path, 0)
    try:
        if libc.setns(target, 0x40000000) != 0:
            raise OSError(ctypes.get_errno(), "setns")
    finally:
        os.close(target)

    def back() -> None:
        libc.setns(home, 0x40000000)
        os.close(home)

    return back


def _in_netns(name: str, fn: Callable[[], T]) -> T:
    """Run ``fn`` on a thread inside namespace ``name``; sockets stay there."""
    box: dict[str, Any] = {}

    def body() -> None:
        back = _setns(f"/run/netns/{name}")
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc
        finally:
            back()

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]  # type: ignore[no-any-return]


def _ip(*argv: str) -> None:
    subprocess.run(["ip", *argv], check=True, capture_output=True)


@dataclass
class Rig:
    relay_ns: str
    server_ns: str
    workdir: Path

    def kea(self, **kw: Any) -> KeaServer:
        return KeaServer(
            self.workdir,
            self.server_ns,
            "veth-s",
            SERVER,
            {LNP_A: None, LNP_B: None},
            **kw,
        )

    def relay_socket(self, timeout: float = 2.0) -> socket.socket:
        def make() -> socket.socket:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
            sock.bind((str(RELAY), SERVER_PORT))
            sock.settimeout(timeout)
            return sock

        return _in_netns(self.relay_ns, make)


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    tag = f"pm-dh-{os.getpid()}-{next(_counter)}"
    relay_ns, server_ns = f"{tag}-r", f"{tag}-s"
    created: list[str] = []
    try:
        for ns in (relay_ns, server_ns):
            _ip("netns", "add", ns)
            created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", relay_ns, "link", "add", "veth-r", "type", "veth", "peer", "veth-s")
        _ip("-n", relay_ns, "link", "set", "veth-s", "netns", server_ns)
        for ns, ifname, address in (
            (relay_ns, "veth-r", RELAY),
            (server_ns, "veth-s", SERVER),
        ):
            _ip("-n", ns, "addr", "add", f"{address}/64", "dev", ifname, "nodad")
            _ip("-n", ns, "link", "set", ifname, "up")
        yield Rig(relay_ns, server_ns, tmp_path / "kea")
    finally:
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


class Client:
    """A DHCPv6 client's messages, built with our codec, sent through the relay."""

    def __init__(self, sock: socket.socket, mac: str, lnp: IPv6Network) -> None:
        self.sock = sock
        self.mac = mac
        self.lnp = lnp
        # DUID-LL (RFC 8415 11.4): type 3, hardware type 1, the MAC
        self.duid = b"\x00\x03\x00\x01" + interface_id_for_mac(mac)
        self.transaction_id = 0x100000 + next(_counter)

    def message(self, msg_type: int, *options: Option) -> bytes:
        self.transaction_id += 1
        return encode_message(
            ClientServerMessage(
                msg_type,
                self.transaction_id,
                (
                    Option(OptionCode.CLIENTID, self.duid),
                    *options,
                    Option(OptionCode.ELAPSED_TIME, b"\x00\x00"),
                ),
            )
        )

    def exchange(self, payload: bytes) -> RelayedReply:
        forward = relay_forward(
            payload, CLIENT_LL, self.lnp, interface_id_for_mac(self.mac)
        )
        self.sock.sendto(forward, (str(SERVER), SERVER_PORT))
        data, peer = self.sock.recvfrom(4096)
        assert IPv6Address(peer[0]) == SERVER
        reply = relay_reply(data)
        inner = decode_message(reply.message)
        assert isinstance(inner, ClientServerMessage)
        assert inner.transaction_id == self.transaction_id
        return reply

    def solicit(self) -> tuple[RelayedReply, ClientServerMessage]:
        reply = self.exchange(
            self.message(MessageType.SOLICIT, IANA(1, 0, 0).to_option())
        )
        advertise = decode_message(reply.message)
        assert isinstance(advertise, ClientServerMessage)
        return reply, advertise

    def request(self, advertise: ClientServerMessage, msg_type: int) -> RelayedReply:
        assert advertise.server_id is not None
        (ia,) = advertise.ia_na
        options = [ia.to_option()]
        if msg_type != MessageType.REBIND:
            options.insert(0, Option(OptionCode.SERVERID, advertise.server_id))
        return self.exchange(self.message(msg_type, *options))


def _pool_range(lnp: IPv6Network) -> tuple[IPv6Address, IPv6Address]:
    first, last = (IPv6Address(a.strip()) for a in default_pool(lnp).split("-"))
    return first, last


@pytest.mark.root
@needs_kea
def test_solicit_gets_an_advertise_from_the_pool_of_its_lnp(rig: Rig) -> None:
    with rig.kea() as kea, rig.relay_socket() as sock:
        for mac, lnp in (("02:00:00:00:aa:01", LNP_A), ("02:00:00:00:aa:02", LNP_B)):
            reply, advertise = Client(sock, mac, lnp).solicit()

            assert reply.msg_type == MessageType.ADVERTISE
            assert reply.interface_id == interface_id_for_mac(mac)
            assert reply.peer_address == CLIENT_LL
            # an Advertise offers, it does not assign: nothing to register
            assert reply.assigned_addresses == ()
            (ia,) = advertise.ia_na
            (offered,) = ia.addresses
            first, last = _pool_range(lnp)
            assert first <= offered.address <= last, (offered, lnp)
            assert offered.valid_lifetime == 30
        assert kea.running


@pytest.mark.root
@needs_kea
def test_full_exchange_assigns_and_renews(rig: Rig) -> None:
    with rig.kea() as kea, rig.relay_socket() as sock:
        client = Client(sock, CLIENT_MAC, LNP_A)
        started = time.monotonic()
        _, advertise = client.solicit()
        reply = client.request(advertise, MessageType.REQUEST)
        elapsed = time.monotonic() - started

        assert reply.msg_type == MessageType.REPLY
        (assigned,) = reply.assigned_addresses
        assert assigned.address in LNP_A
        assert (assigned.preferred_lifetime, assigned.valid_lifetime) == (20, 30)
        inner = decode_message(reply.message)
        assert isinstance(inner, ClientServerMessage)
        (ia,) = inner.ia_na
        assert (ia.t1, ia.t2) == (10, 16)
        assert elapsed < 5.0
        # the server keeps the lease for this client, in the LNP A subnet
        (lease,) = kea.leases()
        assert lease.address == assigned.address
        assert lease.subnet_id == 1

        # Renew (and Rebind) keep the same address, as after a handover
        renewed = client.request(inner, MessageType.RENEW)
        assert [a.address for a in renewed.assigned_addresses] == [assigned.address]
        rebound = client.request(inner, MessageType.REBIND)
        assert [a.address for a in rebound.assigned_addresses] == [assigned.address]


@pytest.mark.root
@needs_kea
def test_kea_down_means_a_timeout_for_the_relay(rig: Rig) -> None:
    kea = rig.kea()
    kea.start()
    kea.stop()
    assert not kea.running
    assert not list(rig.workdir.glob("*.pid"))

    with rig.relay_socket(timeout=0.5) as sock:
        client = Client(sock, CLIENT_MAC, LNP_A)
        with pytest.raises((TimeoutError, ConnectionRefusedError)):
            client.solicit()
        # the relay socket survives (an ICMP error may be queued): still usable
        with contextlib.suppress(TimeoutError, ConnectionRefusedError):
            client.solicit()


@pytest.mark.root
@needs_kea
def test_start_fails_clearly_without_the_listen_address(rig: Rig) -> None:
    kea = KeaServer(
        rig.workdir, rig.server_ns, "veth-s", IPv6Address("fd00::99"), {LNP_A: None}
    )
    with pytest.raises(KeaError):
        kea.start(timeout=3.0)
    assert not kea.running


@needs_kea
def test_config_has_one_subnet_and_pool_per_lnp(tmp_path: Path) -> None:
    kea = KeaServer(
        tmp_path,
        None,
        "eth0",
        "fd00::2",
        {LNP_B: None, LNP_A: ("2001:db8:1:1::1000", "2001:db8:1:1::10ff")},
    )
    dhcp6 = kea.config()["Dhcp6"]

    assert dhcp6["interfaces-config"]["interfaces"] == ["eth0/fd00::2"]
    assert [(s["subnet"], s["pools"]) for s in dhcp6["subnet6"]] == [
        (str(LNP_A), [{"pool": "2001:db8:1:1::1000 - 2001:db8:1:1::10ff"}]),
        (str(LNP_B), [{"pool": "2001:db8:1:2::100 - 2001:db8:1:2::1ff"}]),
    ]
    assert dhcp6["lease-database"]["name"].startswith(str(tmp_path))
    assert dhcp6["data-directory"] == str(tmp_path)
    assert (dhcp6["renew-timer"], dhcp6["rebind-timer"]) == (10, 16)
    assert (dhcp6["preferred-lifetime"], dhcp6["valid-lifetime"]) == (20, 30)
    kea.check_config()  # Kea itself accepts it


def test_lease_times_must_be_ordered(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        KeaServer(tmp_path, None, "eth0", "fd00::2", {}, renew_timer=20)
