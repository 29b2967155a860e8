"""The LMAP daemon over real raw sockets in network namespaces.

The daemon runs as ``python -m pmip6 lmap`` in an "lmap" namespace; a scripted
MPA (a raw protocol-135 socket opened in an "mpa" namespace) sends PBUs and
reads PBAs and BRIs across a veth pair.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

import pytest

from pmip6.dataplane import create
from pmip6.lab.netns import Lab, Namespace, addr_nodad
from pmip6.runtime.control import request
from pmip6.wire.mh import (
    AssignedHomeAddress,
    BindingAcknowledgement,
    BindingCacheConfirmation,
    BindingError,
    BindingRevocationAcknowledgement,
    BindingRevocationIndication,
    BindingUpdate,
    BRFlags,
    BUFlags,
    Message,
    MobileNodeIdentifier,
    decode_mh,
    encode_mh,
)

pytestmark = pytest.mark.root

A = IPv6Address
LMAP = A("fd00::1")
MPA1 = A("fd00::11")
MPA2 = A("fd00::12")
ROGUE = A("fd01::66")
LOA = A("2001:db8:1:1::10")
NAI = "ms1@example.net"


class Peer:
    """A scripted MPA: a blocking raw MH socket bound to one address."""

    def __init__(self, ns: Namespace, address: IPv6Address) -> None:
        self.address = address
        with ns.entered():
            self.sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 135)
        self.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_CHECKSUM, 4)
        self.sock.bind((str(address), 0))

    def send(self, message: Message | bytes, dst: IPv6Address = LMAP) -> None:
        data = message if isinstance(message, bytes) else encode_mh(message)
        self.sock.sendto(data, (str(dst), 0))

    def recv(self, timeout: float = 3.0) -> Message:
        ready, _, _ = select.select([self.sock], [], [], timeout)
        assert ready, f"nothing arrived at {self.address} within {timeout} s"
        data, addr = self.sock.recvfrom(65535)
        # the kernel filled the checksum (IPV6_CHECKSUM): verify it here
        return decode_mh(data, src=A(addr[0]), dst=self.address)

    def quiet(self, timeout: float = 0.3) -> bool:
        return not select.select([self.sock], [], [], timeout)[0]

    def close(self) -> None:
        self.sock.close()


def pbu(
    seq: int, lifetime: int = 75, bcc: bool = False, nai: str = NAI
) -> BindingUpdate:
    option = BindingCacheConfirmation() if bcc else AssignedHomeAddress(64, LOA)
    return BindingUpdate(
        seq,
        BUFlags.A | BUFlags.P,
        lifetime,
        (MobileNodeIdentifier.from_nai(nai), option),
    )


@dataclass
class Setup:
    lab: Lab
    lmap: Namespace
    mpa: Namespace
    dir: Path
    config: Path
    sock: str
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = self.lmap.popen(
            sys.executable,
            "-m",
            "pmip6",
            "lmap",
            "--config",
            str(self.config),
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "ab"),  # noqa: SIM115
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                request(self.sock, "status", timeout=1)
                return
            except (ConnectionError, OSError):
                time.sleep(0.05)
        raise AssertionError("the daemon did not come up:\n" + self.log.read_text())

    def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=10)
        self.proc = None
        return code

    def ctl(self, what: str) -> Any:
        out = subprocess.run(
            [
                sys.executable,
                "-m",
                "pmip6",
                "ctl",
                what,
                "--json",
                "--socket",
                self.sock,
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        return json.loads(out.stdout)


def write_config(path: Path, dataplane: str, keep: bool = False) -> None:
    path.write_text(
        f"""[lmap]
address = "{LMAP}"
prefixes = ["2001:db8:1::/48"]
mpas = ["fd00::/64"]
max_lifetime = 3600
dataplane = "{dataplane}"
state = "lmap.db"
control_socket = "lmap.sock"
keep_forwarding = {str(keep).lower()}
log_level = "debug"
"""
    )


@pytest.fixture
def setup(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Setup]:
    dataplane = getattr(request, "param", "none")
    with Lab("pm-lm-") as lab:
        lmap, mpa = lab.add("lmap"), lab.add("mpa")
        lab.veth(lmap, "veth0", mpa, "veth1")
        addr_nodad(lmap, "veth0", f"{LMAP}/64")
        for address in (MPA1, MPA2):
            addr_nodad(mpa, "veth1", f"{address}/64")
        addr_nodad(mpa, "veth1", f"{ROGUE}/64")
        lmap.run("ip", "-6", "route", "add", "fd01::/64", "dev", "veth0")
        config = tmp_path / "lmap.toml"
        write_config(config, dataplane)
        s = Setup(
            lab,
            lmap,
            mpa,
            tmp_path,
            config,
            str(tmp_path / "lmap.sock"),
            tmp_path / "lmap.log",
        )
        try:
            yield s
        finally:
            if s.proc is not None:
                s.proc.kill()
                s.proc.wait()


def test_signalling_end_to_end(setup: Setup) -> None:
    setup.start()
    mpa1, mpa2, rogue = (Peer(setup.mpa, a) for a in (MPA1, MPA2, ROGUE))
    try:
        # registration (seed 6.3)
        mpa1.send(pbu(1))
        ba = mpa1.recv()
        assert isinstance(ba, BindingAcknowledgement)
        assert (ba.status, ba.sequence, ba.lifetime) == (0, 1, 75)
        assert AssignedHomeAddress(64, LOA) in ba.options
        (row,) = setup.ctl("bindings")
        assert (
            row["nai"] == NAI and row["loa"] == str(LOA) and row["care_of"] == str(MPA1)
        )
        assert row["lnp"] == "2001:db8:1:1::/64" and row["sequence"] == 1

        # an MPA that is not configured: 129, no change
        rogue.send(pbu(2, nai="x@y"))
        ba = rogue.recv()
        assert isinstance(ba, BindingAcknowledgement) and ba.status == 129

        # malformed input: no answer, no crash
        mpa1.send(b"\x3b\x00\x05\x00\x00\x00\x00\x01")
        assert mpa1.quiet()

        # a wrong checksum: the kernel drops it before the daemon sees it
        raw = bytearray(encode_mh(pbu(9, nai="bad@x"), src=MPA1, dst=LMAP))
        raw[4] ^= 0xFF
        mpa1.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_CHECKSUM, -1)
        mpa1.send(bytes(raw))
        mpa1.sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_CHECKSUM, 4)
        assert mpa1.quiet()

        # handover through the Binding Cache Confirmation (seed 6.4, 9.1)
        mpa2.send(pbu(1, bcc=True))
        ba = mpa2.recv()
        assert isinstance(ba, BindingAcknowledgement) and ba.status == 0
        assert AssignedHomeAddress(64, LOA) in ba.options
        bri = mpa1.recv()
        assert isinstance(bri, BindingRevocationIndication)
        assert bri.flags & BRFlags.P and bri.revocation_trigger == 2
        bri_again = mpa1.recv(timeout=2.5)  # not acknowledged yet: retransmitted
        assert bri_again == bri
        mpa1.send(BindingRevocationAcknowledgement(bri.sequence, 0, BRFlags.P))
        assert mpa1.quiet(2.5)  # acknowledged: no more retransmissions

        status = setup.ctl("status")
        assert status["bindings"] == 1 and status["bri_acknowledged"] == 1
        assert status["malformed"] == 1 and status["refused"] == 1
        assert setup.ctl("bindings")[0]["care_of"] == str(MPA2)

        # de-registration from the serving MPA
        mpa2.send(pbu(2, lifetime=0))
        ba = mpa2.recv()
        assert isinstance(ba, BindingAcknowledgement) and ba.status == 0
        assert setup.ctl("bindings") == []

        # a first attach asks with the BCC and hears 141 (seed 9.1): the normal
        # flow, so no warning
        mpa1.send(pbu(3, nai="first@x", bcc=True))
        ba = mpa1.recv()
        assert isinstance(ba, BindingAcknowledgement) and ba.status == 141
    finally:
        for p in (mpa1, mpa2, rogue):
            p.close()
    assert setup.stop() == 0
    log = setup.log.read_text()
    assert f"registered {NAI} loa {LOA} mpa {MPA1}" in log
    assert f"moved {NAI} loa {LOA} mpa {MPA2}" in log
    assert f"de-registered {NAI} loa {LOA} mpa {MPA2}" in log
    assert "WARNING pmip6.lmap: refused PBU from fd01::66 for x@y" in log
    assert "WARNING pmip6.lmap: malformed MH from fd00::11" in log
    assert "Traceback" not in log
    assert "no binding for first@x asked by fd00::11 (status 141)" in log
    assert not [ln for ln in log.splitlines() if "WARNING" in ln and "first@x" in ln]
    assert not os.path.exists(setup.sock)  # removed on SIGTERM


def test_bindings_survive_a_restart(setup: Setup) -> None:
    setup.start()
    mpa1 = Peer(setup.mpa, MPA1)
    try:
        mpa1.send(pbu(40))
        assert isinstance(mpa1.recv(), BindingAcknowledgement)
        assert setup.stop(signal.SIGINT) == 0
        setup.start()
        (row,) = setup.ctl("bindings")
        assert (row["nai"], row["care_of"], row["sequence"]) == (NAI, str(MPA1), 40)
        assert 280 <= row["expires_in"] <= 300
        # the restored sequence still guards against stale PBUs
        mpa1.send(pbu(39))
        ba = mpa1.recv()
        assert isinstance(ba, BindingAcknowledgement)
        assert (ba.status, ba.sequence) == (135, 40)
        # and a retransmission of the last PBU is still recognised
        mpa1.send(pbu(40))
        ba = mpa1.recv()
        assert isinstance(ba, BindingAcknowledgement) and ba.status == 0
    finally:
        mpa1.close()
    assert setup.stop() == 0
    assert "1 bindings restored" in setup.log.read_text()


def routes(ns: Namespace, target: str) -> str:
    return ns.run("ip", "-6", "route", "show", target).stdout


@pytest.mark.parametrize("setup", ["auto"], indirect=True)
def test_tunnel_route_follows_the_binding(setup: Setup) -> None:
    if create("auto").name == "ip6tnl":
        pytest.skip("tunnel devices: tests/test_dataplane_ip6tnl.py")
    # no uplink in the config: the daemon finds it from the route to the MPAs
    setup.start()
    mpa1, mpa2 = Peer(setup.mpa, MPA1), Peer(setup.mpa, MPA2)
    lnp = str(IPv6Network("2001:db8:1:1::/64"))
    try:
        mpa1.send(pbu(1))
        assert isinstance(mpa1.recv(), BindingAcknowledgement)
        route = routes(setup.lmap, lnp)
        assert "encap" in route and str(MPA1) in route, route
        mpa2.send(pbu(1, bcc=True))
        assert isinstance(mpa2.recv(), BindingAcknowledgement)
        route = routes(setup.lmap, lnp)
        assert str(MPA2) in route and str(MPA1) not in route, route
    finally:
        mpa1.close()
        mpa2.close()
    assert setup.stop() == 0
    assert routes(setup.lmap, lnp).strip() == ""  # removed on stop

    # a restart puts the stored binding's route back (lmap_reconcile)
    setup.start()
    route = routes(setup.lmap, lnp)
    assert "encap" in route and str(MPA2) in route, route

    # keep_forwarding: the route outlives the daemon
    write_config(setup.config, "auto", keep=True)
    assert setup.stop() == 0
    setup.start()
    assert setup.stop() == 0
    assert str(MPA2) in routes(setup.lmap, lnp)


def test_forwarding_failure_answers_143_in_process(tmp_path: Path) -> None:
    import asyncio

    from pmip6.dataplane import FakeDataPlane
    from pmip6.lab.netns import namespace
    from pmip6.runtime.lmapd import LmapDaemon, parse_config

    config = parse_config(
        {
            "lmap": {
                "address": str(LMAP),
                "prefixes": ["2001:db8:1::/48"],
                "mpas": ["fd00::/64"],
                "dataplane": "fake",
                "state": str(tmp_path / "lmap.db"),
                "control_socket": str(tmp_path / "lmap.sock"),
            }
        }
    )
    fake = FakeDataPlane(fail={"lmap_bind"})

    async def scenario(peer: Peer) -> list[Message]:
        daemon = LmapDaemon(config, dataplane=fake)
        await daemon.start()
        try:
            loop = asyncio.get_running_loop()
            peer.send(pbu(1))
            first = await loop.run_in_executor(None, peer.recv)
            peer.send(pbu(2))  # the next try works: fail fires once
            second = await loop.run_in_executor(None, peer.recv)
            return [first, second]
        finally:
            await daemon.stop()

    with namespace("pm-lm-") as ns:
        addr_nodad(ns, "lo", f"{LMAP}/64")
        addr_nodad(ns, "lo", f"{MPA1}/64")
        with ns.entered():
            peer = Peer(ns, MPA1)
            try:
                first, second = asyncio.run(scenario(peer))
            finally:
                peer.close()
    assert isinstance(first, BindingAcknowledgement) and first.status == 143
    assert first.lifetime == 0
    assert isinstance(second, BindingAcknowledgement) and second.status == 0
    assert fake.lmap_bindings == {}  # stopped: removed
    assert [c[0] for c in fake.calls_to("lmap_bind")] == [
        IPv6Network("2001:db8:1:1::/64")
    ] * 2


def test_peer_faults_get_escaped_warnings_and_binding_errors(setup: Setup) -> None:
    setup.start()
    mpa1 = Peer(setup.mpa, MPA1)
    try:
        # RFC 6275 9.2: an unrecognised MH Type gets a Binding Error, Status 2
        unknown = b"\x3b\x00\xc8\x00\x00\x00\x00\x00"  # MH type 200
        mpa1.send(unknown)
        be = mpa1.recv()
        assert isinstance(be, BindingError)
        assert (be.status, be.home_address) == (2, A("::"))
        mpa1.send(unknown)
        assert mpa1.quiet()  # rate-limited

        # an identifier with bytes that are no NAI: 128, nothing bound
        bad = b"\xff\xfe\x00\n\x1b[31mX"
        mpa1.send(
            BindingUpdate(
                1,
                BUFlags.A | BUFlags.P,
                75,
                (MobileNodeIdentifier(bad), AssignedHomeAddress(64, LOA)),
            )
        )
        ba = mpa1.recv()
        assert isinstance(ba, BindingAcknowledgement) and ba.status == 128
        assert setup.ctl("bindings") == []
        assert setup.ctl("status")["binding_errors"] == 1
    finally:
        mpa1.close()
    assert setup.stop() == 0
    log = setup.log.read_text()
    assert "\x1b" not in log
    (warning,) = [line for line in log.splitlines() if "refused PBU" in line]
    assert "WARNING" in warning and repr(bad) in warning
    assert "binding error sent" in log  # DEBUG


def test_address_on_no_interface_is_warned_about(setup: Setup) -> None:
    text = setup.config.read_text().replace(f'"{LMAP}"', '"fd00::99"')
    setup.config.write_text(text)
    setup.start()
    assert setup.stop() == 0
    log = setup.log.read_text()
    (line,) = [x for x in log.splitlines() if "no PBU can reach it" in x]
    assert "WARNING" in line and "fd00::99" in line
