"""RADIUS backend without FreeRADIUS: attribute mapping, malformed values,
the transport against in-process fake servers (retries, wrong secret,
failover), and the config factory."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Callable, Coroutine
from ipaddress import IPv6Address, IPv6Network
from typing import Any

import pytest
from pyrad import packet as rp
from pyrad.dictionary import Dictionary

from pmip6.aaa import AaaError, AddressMode, create_aaa
from pmip6.aaa.radius import (
    DICTIONARY_PATH,
    RadiusAaa,
    RadiusServer,
    calling_station_id,
    profile_from_accept,
    servers_from_config,
)

DICT = Dictionary(str(DICTIONARY_PATH))
MAC = "02:00:00:00:aa:01"
STATION = "02-00-00-00-AA-01"
SECRET = b"lab-secret"


def accept(**raw: bytes) -> rp.Packet:
    """An Access-Accept with raw attribute values keyed ``a<code>``."""
    reply = rp.AuthPacket(code=rp.AccessAccept, secret=SECRET, dict=DICT)
    for key, value in raw.items():
        reply[int(key[1:])] = [value]
    return reply


def run_async(
    test: Callable[..., Coroutine[Any, Any, None]],
) -> Callable[..., None]:
    """Run an async test in a fresh event loop (no pytest plugin needed)."""

    @functools.wraps(test)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        asyncio.run(test(*args, **kwargs))

    return wrapper


GOOD = {
    "a145": b"ms1@example.net",
    "a147": IPv6Address("fd00::1").packed,
    "a151": b"\x00\x40" + IPv6Address("2001:db8:1:1::").packed[:8],
}


# -- MAC formatting --------------------------------------------------------


@pytest.mark.parametrize(
    "mac", ["02:00:00:00:aa:01", "02-00-00-00-AA-01", "020000 00aa01".replace(" ", "")]
)
def test_calling_station_id_is_rfc3580_form(mac: str) -> None:
    assert calling_station_id(mac) == STATION


@pytest.mark.parametrize("mac", ["", "02:00:00:00:aa", "02:00:00-00:aa:01", "zz" * 6])
def test_calling_station_id_refuses_non_macs(mac: str) -> None:
    with pytest.raises(ValueError, match="not a MAC"):
        calling_station_id(mac)


# -- Access-Accept -> profile (RFC 6572 4.x) -------------------------------


def test_every_attribute_is_mapped() -> None:
    reply = accept(
        **GOOD,
        a153=bytes.fromhex("0000000000000010"),
        a159=IPv6Address("fd00::2").packed,
        a168=IPv6Address("2001:db8:1:1::10").packed,
    )
    profile = profile_from_accept(reply, STATION)
    assert profile.nai == "ms1@example.net"
    assert profile.lmap_address == IPv6Address("fd00::1")
    assert profile.lnp == IPv6Network("2001:db8:1:1::/64")
    assert profile.interface_id == 0x10
    assert profile.dhcp_server == IPv6Address("fd00::2")
    assert profile.loa == IPv6Address("2001:db8:1:1::10")
    # a DHCPv6 server means the MPA relays: dhcpv6 address mode
    assert profile.address_mode is AddressMode.DHCPV6


def test_minimal_accept_is_slaac_without_optional_fields() -> None:
    profile = profile_from_accept(accept(**GOOD), STATION)
    assert profile.address_mode is AddressMode.SLAAC
    assert profile.loa is None
    assert profile.dhcp_server is None
    assert profile.interface_id is None


def test_stateful_pool_means_dhcpv6() -> None:
    profile = profile_from_accept(accept(**GOOD, a172=b"pool"), STATION)
    assert profile.address_mode is AddressMode.DHCPV6


def test_visited_attributes_are_the_fallback() -> None:
    reply = accept(
        a145=b"ms1@example.net",
        a148=IPv6Address("fd00::9").packed,
        a152=b"\x00\x30" + IPv6Address("2001:db8:2::").packed,
    )
    profile = profile_from_accept(reply, STATION)
    assert profile.lmap_address == IPv6Address("fd00::9")
    assert profile.lnp == IPv6Network("2001:db8:2::/48")


def test_nai_from_user_name_then_from_the_access_layer() -> None:
    no_id = {k: v for k, v in GOOD.items() if k != "a145"}
    assert profile_from_accept(accept(**no_id, a1=b"u@x"), STATION).nai == "u@x"
    assert profile_from_accept(accept(**no_id), STATION, "n@x").nai == "n@x"
    # the Mobile-Node-Identifier wins over the NAI of 802.1X (RFC 6572 4.2)
    assert profile_from_accept(accept(**GOOD), STATION, "n@x").nai == (
        "ms1@example.net"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"a147": b"\xfd\x00"}, r"PMIP6-Home-LMA-IPv6-Address \(147\): 2 octets"),
        ({"a147": None}, r"no PMIP6-Home-LMA-IPv6-Address \(147\)"),
        ({"a151": None}, r"no PMIP6-Home-HN-Prefix \(151\)"),
        ({"a151": b"\x00"}, r"PMIP6-Home-HN-Prefix \(151\): 1 octets"),
        ({"a151": b"\x00\x40"}, r"PMIP6-Home-HN-Prefix \(151\): 0 prefix octets"),
        ({"a151": b"\x00\x81" + bytes(16)}, r"prefix length 129"),
        ({"a151": b"\x00\x40" + bytes(19)}, r"19 octets|21 octets"),
        (
            {"a151": b"\x00\x30" + IPv6Address("2001:db8:1:1::").packed},
            r"PMIP6-Home-HN-Prefix \(151\).*bits set beyond",
        ),
        ({"a151": b"\x00\x80" + bytes(16)}, r"carries no prefix"),
        ({"a153": b"\x00" * 7}, r"PMIP6-Home-Interface-ID \(153\): 7 octets"),
        ({"a159": b"\x01" * 4}, r"PMIP6-Home-DHCP6-Server-Address \(159\)"),
        ({"a168": b"\x01" * 17}, r"Framed-IPv6-Address \(168\): 17 octets"),
        (
            {"a168": IPv6Address("2001:db8:9::1").packed},
            r"Framed-IPv6-Address \(168\) 2001:db8:9::1 .* outside",
        ),
        ({"a145": b"\xff\xfe"}, r"Mobile-Node-Identifier \(145\): not UTF-8"),
        ({"a145": b" "}, r"Mobile-Node-Identifier \(145\): empty"),
        ({"a145": None}, r"no Mobile-Node-Identifier \(145\) or User-Name"),
    ],
)
def test_malformed_or_missing_attribute_names_it(
    change: dict[str, bytes | None], message: str
) -> None:
    raw = {**GOOD, **change}
    reply = accept(**{k: v for k, v in raw.items() if v is not None})
    with pytest.raises(AaaError, match=message):
        profile_from_accept(reply, STATION)


# -- transport against fake servers ----------------------------------------


class FakeServer(asyncio.DatagramProtocol):
    """Answers Access-Requests with ``answer(request) -> raw reply or None``."""

    def __init__(self, answer: Callable[[rp.AuthPacket], bytes | None]) -> None:
        self.answer = answer
        self.received: list[bytes] = []
        self.transport: Any = None
        self.peer: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self.received.append(data)
        self.peer = addr
        request = rp.AuthPacket(packet=data, secret=SECRET, dict=DICT)
        raw = self.answer(request)
        if raw is not None:
            self.transport.sendto(raw, addr)


def signed_accept(
    secret: bytes = SECRET, sign: bool = True, **raw: bytes
) -> Callable[[rp.AuthPacket], bytes]:
    def answer(request: rp.AuthPacket) -> bytes:
        request.secret = secret
        reply = request.CreateReply()
        reply.message_authenticator = sign or None
        for key, value in raw.items():
            reply[int(key[1:])] = [value]
        return bytes(reply.ReplyPacket())

    return answer


async def serve(
    answer: Callable[[rp.AuthPacket], bytes | None],
) -> tuple[FakeServer, RadiusServer]:
    loop = asyncio.get_running_loop()
    transport, proto = await loop.create_datagram_endpoint(
        lambda: FakeServer(answer), local_addr=("127.0.0.1", 0)
    )
    port = transport.get_extra_info("sockname")[1]
    return proto, RadiusServer("127.0.0.1", port, SECRET)


def closed_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@run_async
async def test_request_carries_mac_authentication_attributes() -> None:
    seen: list[rp.AuthPacket] = []

    def answer(request: rp.AuthPacket) -> bytes:
        seen.append(request)
        return signed_accept(**GOOD)(request)

    fake, server = await serve(answer)
    aaa = RadiusAaa([server], timeout=0.5, retries=0, nas_identifier="mpa1")
    try:
        profile = await aaa.authenticate(MAC)
        assert profile is not None and profile.nai == "ms1@example.net"
        await aaa.authenticate(MAC, nai="ms1@example.net")
    finally:
        await aaa.close()
        fake.transport.close()

    mac_req, nai_req = seen
    assert mac_req["User-Name"] == [STATION]
    assert mac_req.PwDecrypt(mac_req["User-Password"][0]) == STATION
    assert mac_req["Calling-Station-Id"] == [STATION]
    assert mac_req["NAS-Identifier"] == ["mpa1"]
    assert mac_req["Service-Type"] == ["Login-User"]
    assert mac_req.verify_message_authenticator()
    assert nai_req["User-Name"] == ["ms1@example.net"]
    assert nai_req["Calling-Station-Id"] == [STATION]


@run_async
async def test_reject_is_none() -> None:
    def answer(request: rp.AuthPacket) -> bytes:
        reply = request.CreateReply()
        reply.code = rp.AccessReject
        return bytes(reply.ReplyPacket())

    fake, server = await serve(answer)
    aaa = RadiusAaa([server], timeout=0.5, retries=0)
    try:
        assert await aaa.authenticate(MAC) is None
    finally:
        await aaa.close()
        fake.transport.close()


@run_async
async def test_silent_server_is_retried_then_fails_over(
    caplog: pytest.LogCaptureFixture,
) -> None:
    silent, first = await serve(lambda request: None)
    good, second = await serve(signed_accept(**GOOD))
    aaa = RadiusAaa([first, second], timeout=0.05, retries=2)
    try:
        with caplog.at_level(logging.DEBUG, logger="pmip6.aaa.radius"):
            profile = await aaa.authenticate(MAC)
            await aaa.authenticate(MAC)
    finally:
        await aaa.close()
        silent.transport.close()
        good.transport.close()

    assert profile is not None and profile.nai == "ms1@example.net"
    # 1 + 2 retries per request, the same octets each time (RFC 5080 2.2.1)
    assert len(silent.received) == 6
    assert len(set(silent.received[:3])) == 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(first) in warnings[0].getMessage()
    assert "timed out after 3 tries" in warnings[0].getMessage()
    assert any("retransmitting" in r.getMessage() for r in caplog.records)


@run_async
async def test_wrong_secret_replies_fail_verification_then_failover(
    caplog: pytest.LogCaptureFixture,
) -> None:
    liar, first = await serve(signed_accept(secret=b"other", **GOOD))
    good, second = await serve(signed_accept(**GOOD))
    aaa = RadiusAaa([first, second], timeout=0.05, retries=1)
    try:
        with caplog.at_level(logging.WARNING, logger="pmip6.aaa.radius"):
            profile = await aaa.authenticate(MAC)
    finally:
        await aaa.close()
        liar.transport.close()
        good.transport.close()

    assert profile is not None
    assert len(liar.received) == 2
    (warning,) = caplog.records
    assert "failed authenticator verification" in warning.getMessage()
    assert "other" not in caplog.text and SECRET.decode() not in caplog.text


@run_async
async def test_all_servers_failing_names_each_with_its_reason() -> None:
    liar, first = await serve(signed_accept(secret=b"other", **GOOD))
    nobody = RadiusServer("127.0.0.1", closed_port(), SECRET)
    aaa = RadiusAaa([first, nobody], timeout=0.05, retries=1)
    try:
        with pytest.raises(AaaError) as info:
            await aaa.authenticate(MAC)
    finally:
        await aaa.close()
        liar.transport.close()
    text = str(info.value)
    assert f"{first}: reply failed authenticator verification" in text
    assert f"{nobody}: unreachable" in text


@run_async
async def test_reply_without_message_authenticator() -> None:
    fake, server = await serve(signed_accept(sign=False, **GOOD))
    strict = RadiusAaa([server], timeout=0.05, retries=0)
    lenient = RadiusAaa(
        [server], timeout=0.5, retries=0, require_message_authenticator=False
    )
    try:
        with pytest.raises(AaaError, match="verification"):
            await strict.authenticate(MAC)
        assert await lenient.authenticate(MAC) is not None
    finally:
        await strict.close()
        await lenient.close()
        fake.transport.close()


@run_async
async def test_malformed_accept_is_an_error_and_the_client_keeps_working() -> None:
    replies = iter([{**GOOD, "a151": b"\x00\x40"}, GOOD])

    def answer(request: rp.AuthPacket) -> bytes:
        return signed_accept(**next(replies))(request)

    fake, server = await serve(answer)
    aaa = RadiusAaa([server], timeout=0.5, retries=0)
    try:
        with pytest.raises(AaaError, match=r"PMIP6-Home-HN-Prefix \(151\)"):
            await aaa.authenticate(MAC)
        assert await aaa.authenticate(MAC) is not None
    finally:
        await aaa.close()
        fake.transport.close()


@run_async
async def test_concurrent_requests_get_their_own_replies() -> None:
    def answer(request: rp.AuthPacket) -> bytes:
        station = request["Calling-Station-Id"][0]
        return signed_accept(**{**GOOD, "a145": station.encode()})(request)

    fake, server = await serve(answer)
    aaa = RadiusAaa([server], timeout=0.5, retries=0)
    macs = [f"02:00:00:00:01:{i:02x}" for i in range(40)]
    try:
        profiles = await asyncio.gather(*(aaa.authenticate(m) for m in macs))
    finally:
        await aaa.close()
        fake.transport.close()
    assert [p.nai for p in profiles if p] == [calling_station_id(m) for m in macs]


# -- config ----------------------------------------------------------------


def test_servers_from_config_secret_and_secret_env() -> None:
    servers = servers_from_config(
        [
            {"address": "127.0.0.1", "secret": "s1"},
            {"address": "::1", "port": 1813, "secret_env": "RAD_SECRET"},
        ],
        environ={"RAD_SECRET": "s2"},
    )
    assert servers[0] == RadiusServer("127.0.0.1", 1812, b"s1")
    assert servers[1] == RadiusServer("::1", 1813, b"s2")
    assert str(servers[1]) == "[::1]:1813"
    assert "s2" not in repr(servers[1])


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"address": "127.0.0.1"}, "exactly one of"),
        ({"address": "127.0.0.1", "secret": "a", "secret_env": "B"}, "exactly one"),
        (
            {"address": "127.0.0.1", "secret_env": "UNSET_VAR"},
            r"servers\[0\]\.secret_env: environment variable 'UNSET_VAR' is not set",
        ),
        ({"secret": "a"}, r"\[aaa\] servers\[0\]\.address: required"),
        (
            {"address": "radius.example", "secret": "a"},
            r"servers\[0\]\.address: 'radius\.example' is not an IPv4 or IPv6",
        ),
        (
            {"address": "127.0.0.1", "port": 0, "secret": "a"},
            r"\[aaa\] servers\[0\]\.port: expected 1 to 65535, got 0",
        ),
        (
            {"address": "127.0.0.1", "port": 70000, "secret": "a"},
            r"\[aaa\] servers\[0\]\.port: expected 1 to 65535, got 70000",
        ),
        (
            {"address": "127.0.0.1", "port": "1812", "secret": "a"},
            r"\[aaa\] servers\[0\]\.port: expected 1 to 65535, got '1812'",
        ),
        (
            {"address": "127.0.0.1", "secret": ""},
            r"\[aaa\] servers\[0\]\.secret: expected a non-empty string",
        ),
        (
            {"address": "127.0.0.1", "secret": "a", "bogus": 1},
            r"\[aaa\] servers\[0\]\.bogus: unknown key \(known: address, port, "
            r"secret, secret_env\)",
        ),
    ],
)
def test_servers_from_config_refuses(entry: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        servers_from_config([entry], environ={})


def test_create_aaa_builds_radius() -> None:
    aaa = create_aaa(
        {
            "backend": "radius",
            "servers": [{"address": "127.0.0.1", "secret": "x"}],
            "timeout": 0.5,
            "retries": 4,
        }
    )
    assert isinstance(aaa, RadiusAaa)
    assert (aaa.timeout, aaa.retries) == (0.5, 4)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"backend": "ldap"}, "unknown"),
        ({"backend": "radius"}, r"\[aaa\] servers: expected a non-empty list"),
        ({"backend": "file"}, "needs a 'file'"),
        ({"backend": "file", "file": "p.toml", "foo": 1}, r"\[aaa\] foo: unknown key"),
        ({"file": "p.toml", "servers": []}, r"\[aaa\] servers: unknown key"),
        (
            {
                "backend": "radius",
                "servers": [{"address": "::1", "secret": "x"}],
                "timeot": 2,
            },
            r"\[aaa\] timeot: unknown key for backend 'radius'",
        ),
        ({"backend": "radius", "servers": "fd00::1"}, r"\[aaa\] servers: "),
        (
            {"backend": "radius", "servers": [{"address": "::1", "secret": "x"}]}
            | {"timeout": 0},
            r"\[aaa\] timeout: expected a positive number of seconds, got 0$",
        ),
        (
            {"backend": "radius", "servers": [{"address": "::1", "secret": "x"}]}
            | {"timeout": "2"},
            r"\[aaa\] timeout: expected a positive number of seconds, got '2'",
        ),
        (
            {"backend": "radius", "servers": [{"address": "::1", "secret": "x"}]}
            | {"retries": 1.5},
            r"\[aaa\] retries: expected an integer from 0 up, got 1\.5",
        ),
        (
            {"backend": "radius", "servers": [{"address": "::1", "secret": "x"}]}
            | {"nas_identifier": ""},
            r"\[aaa\] nas_identifier: expected a non-empty string",
        ),
        ({"backend": "file", "file": 7}, r"\[aaa\] file: expected a path"),
    ],
)
def test_create_aaa_refuses(config: dict[str, Any], message: str) -> None:
    with pytest.raises((ValueError, ImportError), match=message):
        create_aaa(config)


@run_async
async def test_requests_in_flight_are_capped_per_server() -> None:
    loop = asyncio.get_running_loop()
    in_flight = 0
    peak = 0
    fake: FakeServer

    def answer(request: rp.AuthPacket) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        raw = signed_accept(**GOOD)(request)

        def reply() -> None:
            nonlocal in_flight
            in_flight -= 1
            fake.transport.sendto(raw, fake.peer)

        loop.call_later(0.01, reply)
        return None

    fake, server = await serve(answer)
    aaa = RadiusAaa([server], timeout=1.0, retries=0, max_outstanding=3)
    try:
        profiles = await asyncio.gather(*(aaa.authenticate(MAC) for _ in range(12)))
    finally:
        await aaa.close()
        fake.transport.close()
    assert all(profiles)
    assert peak == 3


@run_async
async def test_a_non_mac_is_refused_without_a_request() -> None:
    fake, server = await serve(signed_accept(**GOOD))
    aaa = RadiusAaa([server], timeout=0.5, retries=0)
    try:
        assert await aaa.authenticate("not-a-mac") is None
    finally:
        await aaa.close()
        fake.transport.close()
    assert fake.received == []


def test_lab_topology_radius_aaa_table_builds_a_radius_client() -> None:
    import tomllib
    from dataclasses import replace

    from pmip6.lab.radius import lab_stations
    from pmip6.lab.topology import Topology, TopologyError

    topo = replace(Topology.default("x", mss=2), aaa="radius")
    table = tomllib.loads(topo.mpa_config("mpa1"))["aaa"]
    aaa = create_aaa(table)
    assert isinstance(aaa, RadiusAaa)
    assert [str(s) for s in aaa.servers] == ["[fd00::1]:1812"]
    assert Topology.from_dict(topo.to_dict()).aaa == "radius"
    assert [s.nai for s in lab_stations(topo)] == [
        "ms1@example.net",
        "ms2@example.net",
    ]
    with pytest.raises(TopologyError, match="aaa = 'ldap'"):
        replace(topo, aaa="ldap").validate()


@pytest.mark.parametrize(
    "garbage",
    [
        b"\x02",  # shorter than a header
        b"\x02\x00\x00\x10" + bytes(16),  # Length below 20
        b"\x02\x00\x00\x18" + bytes(16) + b"\x01\x01\x00\x00",  # attribute length 1
        b"\x02\x00\x00\x17" + bytes(16) + b"\x1a\x03\x00",  # truncated VSA
        b"\x02\x00\x01\x00" + bytes(16),  # Length beyond the datagram
    ],
)
@run_async
async def test_garbage_replies_are_dropped_and_the_request_times_out(
    garbage: bytes,
) -> None:
    def answer(request: rp.AuthPacket) -> bytes:
        # the Identifier of the request, so the reply reaches the decoder
        if len(garbage) < 2:
            return garbage
        return garbage[:1] + bytes([request.id]) + garbage[2:]

    fake, server = await serve(answer)
    aaa = RadiusAaa([server], timeout=0.05, retries=0)
    try:
        with pytest.raises(
            AaaError,
            match=r"no RADIUS server answered: .*(timed out|undecodable|verification)",
        ):
            await aaa.authenticate(MAC)
    finally:
        await aaa.close()
        fake.transport.close()
