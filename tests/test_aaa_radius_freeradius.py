"""RadiusAaa against a real FreeRADIUS 3 on random high ports of 127.0.0.1
(pmip6.lab.radius writes its configuration), and the lab wrapper itself."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

import pytest

from pmip6.aaa import AaaError, AddressMode, MsProfile
from pmip6.aaa.radius import RadiusAaa, RadiusServer
from pmip6.lab.radius import FreeRadius, FreeRadiusError, RadiusStation

pytestmark = pytest.mark.skipif(
    shutil.which("freeradius") is None, reason="FreeRADIUS is not installed"
)

SECRET = "lab-secret"
FULL = RadiusStation(
    mac="02:00:00:00:aa:01",
    nai="ms1@example.net",
    lmap_address=IPv6Address("fd00::1"),
    lnp=IPv6Network("2001:db8:1:1::/64"),
    loa=IPv6Address("2001:db8:1:1::10"),
    dhcp_server=IPv6Address("fd00::2"),
    interface_id=0x0200_00FF_FE00_AA01,
    address_mode=AddressMode.DHCPV6,
)
PLAIN = RadiusStation(
    mac="02:00:00:00:aa:02",
    nai="ms2@example.net",
    lmap_address=IPv6Address("fd00::1"),
    lnp=IPv6Network("2001:db8:1:2::/64"),
)
SHORT_PREFIX = RadiusStation(
    mac="02:00:00:00:aa:03",
    nai="ms3@example.net",
    lmap_address=IPv6Address("fd00::1"),
    lnp=None,
    reply=(("Attr-151", "0x0040"),),
)
NO_LMAP = RadiusStation(
    mac="02:00:00:00:aa:04",
    nai="ms4@example.net",
    lmap_address=None,
    lnp=IPv6Network("2001:db8:1:4::/64"),
)
SHORT_LMAP = RadiusStation(
    mac="02:00:00:00:aa:05",
    nai="ms5@example.net",
    lmap_address=None,
    lnp=IPv6Network("2001:db8:1:5::/64"),
    reply=(("Attr-147", "0xfd00"),),
)
STATIONS = [FULL, PLAIN, SHORT_PREFIX, NO_LMAP, SHORT_LMAP]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@pytest.fixture(scope="module")
def radius(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreeRadius]:
    server = FreeRadius(
        tmp_path_factory.mktemp("pm-aaa-radius"), STATIONS, SECRET, port=free_port()
    )
    with server:
        yield server
    assert not server.running


def client(*servers: RadiusServer, **kwargs: float) -> RadiusAaa:
    return RadiusAaa(servers, timeout=kwargs.get("timeout", 0.2), retries=1)


def good(radius: FreeRadius) -> RadiusServer:
    return RadiusServer("127.0.0.1", radius.port, SECRET.encode())


def authenticate(aaa: RadiusAaa, mac: str, nai: str | None = None) -> MsProfile | None:
    async def run() -> MsProfile | None:
        try:
            return await aaa.authenticate(mac, nai)
        finally:
            await aaa.close()

    return asyncio.run(run())


def test_accept_maps_every_attribute(radius: FreeRadius) -> None:
    profile = authenticate(client(good(radius)), FULL.mac)
    assert profile == MsProfile(
        nai="ms1@example.net",
        lmap_address=IPv6Address("fd00::1"),
        lnp=IPv6Network("2001:db8:1:1::/64"),
        loa=IPv6Address("2001:db8:1:1::10"),
        address_mode=AddressMode.DHCPV6,
        dhcp_server=IPv6Address("fd00::2"),
        interface_id=0x0200_00FF_FE00_AA01,
    )


def test_accept_minimal_profile_is_slaac(radius: FreeRadius) -> None:
    profile = authenticate(client(good(radius)), PLAIN.mac)
    assert profile is not None
    assert profile.address_mode is AddressMode.SLAAC
    assert (profile.loa, profile.dhcp_server, profile.interface_id) == (None,) * 3


def test_nai_from_the_access_layer_is_accepted_only_with_its_mac(
    radius: FreeRadius,
) -> None:
    profile = authenticate(client(good(radius)), FULL.mac, FULL.nai)
    assert profile is not None and profile.nai == FULL.nai
    assert authenticate(client(good(radius)), PLAIN.mac, FULL.nai) is None


def test_unknown_station_is_rejected(radius: FreeRadius) -> None:
    assert authenticate(client(good(radius)), "02:00:00:00:ff:ff") is None


@pytest.mark.parametrize(
    ("station", "message"),
    [
        (SHORT_PREFIX, r"malformed PMIP6-Home-HN-Prefix \(151\)"),
        (NO_LMAP, r"has no PMIP6-Home-LMA-IPv6-Address \(147\)"),
        (SHORT_LMAP, r"malformed PMIP6-Home-LMA-IPv6-Address \(147\): 2 octets"),
    ],
)
def test_malformed_accept_is_a_clear_error(
    radius: FreeRadius, station: RadiusStation, message: str
) -> None:
    with pytest.raises(AaaError, match=message):
        authenticate(client(good(radius)), station.mac)
    # the server and the client carry on
    assert authenticate(client(good(radius)), PLAIN.mac) is not None


def test_wrong_secret_times_out_then_fails_over(radius: FreeRadius) -> None:
    # FreeRADIUS drops a request whose Message-Authenticator does not verify
    wrong = RadiusServer("127.0.0.1", radius.port, b"not-the-secret")
    with pytest.raises(AaaError, match=r"timed out after 2 tries of 0.2 s"):
        authenticate(client(wrong), PLAIN.mac)
    profile = authenticate(client(wrong, good(radius)), PLAIN.mac)
    assert profile is not None and profile.nai == PLAIN.nai


def test_no_server_then_failover(radius: FreeRadius) -> None:
    nobody = RadiusServer("127.0.0.1", free_port(), SECRET.encode())
    with pytest.raises(AaaError, match=rf"{nobody}: unreachable"):
        authenticate(client(nobody), PLAIN.mac)
    profile = authenticate(client(nobody, good(radius)), PLAIN.mac)
    assert profile is not None and profile.nai == PLAIN.nai


def test_config_holds_no_world_readable_secret(radius: FreeRadius) -> None:
    conf = radius.workdir / "radiusd.conf"
    assert SECRET in conf.read_text()
    assert conf.stat().st_mode & 0o077 == 0
    assert SECRET not in radius.log_path.read_text()


def test_second_server_on_a_busy_port_fails_clearly(
    radius: FreeRadius, tmp_path: Path
) -> None:
    clash = FreeRadius(tmp_path, [PLAIN], SECRET, port=radius.port)
    with pytest.raises(FreeRadiusError, match="exited with status"):
        clash.start()
    assert not clash.running


def test_stop_ends_the_process(tmp_path: Path) -> None:
    server = FreeRadius(tmp_path, [PLAIN], SECRET, port=free_port()).start()
    assert server.running
    assert server.startup_seconds is not None and server.startup_seconds < 5
    server.stop()
    assert not server.running
    server.stop()  # idempotent


_NETNS_CLIENT = """
import asyncio, sys
from pmip6.aaa.radius import RadiusAaa, RadiusServer
aaa = RadiusAaa([RadiusServer("::1", 1812, b"lab-secret")], timeout=0.5, retries=1)
print(asyncio.run(aaa.authenticate(sys.argv[1])).nai)
"""


@pytest.mark.root
def test_runs_in_a_namespace_on_the_standard_port(tmp_path: Path) -> None:
    netns = f"pm-aaa-{os.getpid()}-{os.urandom(2).hex()}"
    subprocess.run(["ip", "netns", "add", netns], check=True)
    try:
        subprocess.run(
            ["ip", "-n", netns, "link", "set", "lo", "up"], check=True, timeout=10
        )
        with FreeRadius(tmp_path, [PLAIN], SECRET, listen_address="::1", netns=netns):
            command = ["ip", "netns", "exec", netns, sys.executable, "-c"]
            out = subprocess.run(
                [*command, _NETNS_CLIENT, PLAIN.mac],
                capture_output=True,
                text=True,
                timeout=20,
                check=True,
            )
        assert out.stdout.strip() == PLAIN.nai
    finally:
        subprocess.run(["ip", "netns", "del", netns], check=False)
