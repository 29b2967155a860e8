"""The MPA's DHCPv6 relay logic (seed 6.3 item 3, Figure 9; RFC 8415 19)."""

from __future__ import annotations

import contextlib
import struct
import subprocess
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pmip6.core.dhcp_relay import (
    client_frame,
    granted_addresses,
    interface_id_for_mac,
    link_address_for,
    mac_from_interface_id,
    relay_forward,
    relay_reply,
    udp6_datagram,
)
from pmip6.wire.dhcp6 import (
    IANA,
    ClientServerMessage,
    IAAddress,
    MessageType,
    Option,
    OptionCode,
    RelayMessage,
    Status,
    StatusCode,
    decode_message,
    encode_message,
)
from pmip6.wire.errors import Malformed
from pmip6.wire.nd import NH_UDP, decode_frame, upper_layer_checksum

LNP = IPv6Network("2001:db8:1:1::/64")
CLIENT_LL = IPv6Address("fe80::ff:fe00:aa01")
MAC = "02:00:00:00:aa:01"
DUID = bytes.fromhex("0003000102000000aa01")
ADDRESS = IPv6Address("2001:db8:1:1::100")


def _client(msg_type: int, *options: Option) -> bytes:
    return encode_message(
        ClientServerMessage(
            msg_type, 0x0A0B0C, (Option(OptionCode.CLIENTID, DUID), *options)
        )
    )


def _server(msg_type: int, *options: Option) -> bytes:
    return encode_message(
        ClientServerMessage(
            msg_type,
            0x0A0B0C,
            (
                Option(OptionCode.SERVERID, b"\x00\x01kea"),
                Option(OptionCode.CLIENTID, DUID),
                *options,
            ),
        )
    )


def _ia(*options: Option, iaid: int = 1) -> Option:
    return IANA(iaid, 10, 16, tuple(options)).to_option()


def _address(address: IPv6Address = ADDRESS, valid: int = 30) -> Option:
    return IAAddress(address, min(valid, 20), valid).to_option()


def _relay_reply(
    inner: bytes, interface_id: bytes | None = b"\x02\0\0\0\xaa\x01"
) -> bytes:
    options = [Option(OptionCode.RELAY_MSG, inner)]
    if interface_id is not None:
        options.insert(0, Option(OptionCode.INTERFACE_ID, interface_id))
    return encode_message(
        RelayMessage(
            MessageType.RELAY_REPL,
            0,
            link_address_for(LNP),
            CLIENT_LL,
            tuple(options),
        )
    )


# --- Relay-Forward --------------------------------------------------------------


def test_relay_forward_tags_the_lnp_and_the_station() -> None:
    solicit = _client(MessageType.SOLICIT, _ia())

    forward = decode_message(
        relay_forward(solicit, CLIENT_LL, LNP, interface_id_for_mac(MAC))
    )

    assert isinstance(forward, RelayMessage)
    assert forward.msg_type == MessageType.RELAY_FORW
    assert forward.hop_count == 0
    # the server picks its subnet from the link-address: it must lie in the LNP
    assert forward.link_address in LNP
    assert forward.peer_address == CLIENT_LL
    assert forward.relay_message == solicit
    assert forward.interface_id == bytes.fromhex("02000000aa01")


def test_link_address_selects_each_lnp() -> None:
    other = IPv6Network("2001:db8:1:2::/64")
    assert link_address_for(LNP) in LNP
    assert link_address_for(other) in other
    assert link_address_for(other) not in LNP


@pytest.mark.parametrize(
    "msg_type",
    [
        MessageType.SOLICIT,
        MessageType.REQUEST,
        MessageType.CONFIRM,
        MessageType.RENEW,
        MessageType.REBIND,
        MessageType.RELEASE,
        MessageType.DECLINE,
        MessageType.INFORMATION_REQUEST,
    ],
)
def test_every_client_message_is_relayed(msg_type: int) -> None:
    forward = decode_message(relay_forward(_client(msg_type), CLIENT_LL, LNP, b"x"))
    assert isinstance(forward, RelayMessage)


@pytest.mark.parametrize(
    "msg_type",
    [
        MessageType.ADVERTISE,
        MessageType.REPLY,
        MessageType.RECONFIGURE,
        MessageType.RELAY_REPL,
    ],
)
def test_server_messages_from_the_access_link_are_refused(msg_type: int) -> None:
    if msg_type == MessageType.RELAY_REPL:
        payload = _relay_reply(_server(MessageType.REPLY))
    else:
        payload = _server(msg_type)
    with pytest.raises(Malformed, match="not"):
        relay_forward(payload, CLIENT_LL, LNP, b"x")


def test_a_relayed_message_nests_and_counts_the_hop() -> None:
    inner = encode_message(
        RelayMessage(
            MessageType.RELAY_FORW,
            3,
            IPv6Address("2001:db8:9::"),
            CLIENT_LL,
            (Option(OptionCode.RELAY_MSG, _client(MessageType.SOLICIT)),),
        )
    )
    relay_ll = IPv6Address("fe80::77")
    forward = decode_message(relay_forward(inner, relay_ll, LNP, b"x"))
    assert isinstance(forward, RelayMessage)
    assert forward.hop_count == 4
    assert forward.peer_address == relay_ll
    assert forward.relay_message == inner


def test_hop_count_limit_is_enforced() -> None:
    inner = encode_message(
        RelayMessage(MessageType.RELAY_FORW, 8, IPv6Address("::"), CLIENT_LL, ())
    )
    with pytest.raises(Malformed, match="hop-count 8"):
        relay_forward(inner, CLIENT_LL, LNP, b"x")


def test_garbage_from_the_station_is_malformed() -> None:
    with pytest.raises(Malformed):
        relay_forward(b"\x01\x00", CLIENT_LL, LNP, b"x")


# --- Relay-Reply ----------------------------------------------------------------


def test_reply_to_request_assigns_the_address() -> None:
    reply = _server(MessageType.REPLY, _ia(_address()))

    result = relay_reply(_relay_reply(reply))

    assert result.interface_id == bytes.fromhex("02000000aa01")
    assert mac_from_interface_id(result.interface_id) == MAC
    assert result.peer_address == CLIENT_LL
    assert result.message == reply
    assert result.msg_type == MessageType.REPLY
    assert [a.address for a in result.assigned_addresses] == [ADDRESS]
    assert result.assigned_addresses[0].valid_lifetime == 30
    # the four-field unpacking the MPA uses
    interface_id, peer, inner, assigned = result[:4]
    assert (interface_id, peer, inner) == (result[0], CLIENT_LL, reply)
    assert assigned == result.assigned_addresses


def test_advertise_does_not_assign() -> None:
    advertise = _server(MessageType.ADVERTISE, _ia(_address()))

    result = relay_reply(_relay_reply(advertise))

    assert result.message == advertise
    assert result.msg_type == MessageType.ADVERTISE
    assert result.assigned_addresses == ()


@pytest.mark.parametrize(
    ("reply", "why"),
    [
        (_server(MessageType.REPLY, _ia(_address(valid=0))), "valid lifetime 0"),
        (
            _server(
                MessageType.REPLY,
                _ia(_address(), StatusCode(Status.NO_ADDRS_AVAIL).to_option()),
            ),
            "IA status NoAddrsAvail",
        ),
        (
            _server(
                MessageType.REPLY,
                _ia(
                    IAAddress(
                        ADDRESS,
                        20,
                        30,
                        (StatusCode(Status.NOT_ON_LINK).to_option(),),
                    ).to_option()
                ),
            ),
            "address status NotOnLink",
        ),
        (
            _server(
                MessageType.REPLY,
                _ia(_address()),
                StatusCode(Status.UNSPEC_FAIL).to_option(),
            ),
            "message status UnspecFail",
        ),
        (_server(MessageType.REPLY), "no IA_NA"),
        (_server(MessageType.REPLY, _ia()), "empty IA_NA"),
    ],
)
def test_replies_that_assign_nothing(reply: bytes, why: str) -> None:
    result = relay_reply(_relay_reply(reply))
    assert result.assigned_addresses == (), why
    assert result.message == reply  # still delivered to the client


def test_explicit_success_status_and_two_ias_assign_both() -> None:
    second = IPv6Address("2001:db8:1:1::200")
    reply = _server(
        MessageType.REPLY,
        _ia(_address(), StatusCode(Status.SUCCESS).to_option()),
        _ia(_address(second), iaid=2),
        StatusCode(Status.SUCCESS, "ok").to_option(),
    )
    assigned = relay_reply(_relay_reply(reply)).assigned_addresses
    assert [a.address for a in assigned] == [ADDRESS, second]


def test_reply_without_interface_id_still_unwraps() -> None:
    result = relay_reply(_relay_reply(_server(MessageType.REPLY), interface_id=None))
    assert result.interface_id is None
    assert result.peer_address == CLIENT_LL


def test_granted_addresses_ignores_non_replies() -> None:
    message = decode_message(_server(MessageType.ADVERTISE, _ia(_address())))
    assert isinstance(message, ClientServerMessage)
    assert granted_addresses(message) == ()


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (_client(MessageType.SOLICIT), "not a Relay-Reply"),
        (
            relay_forward(_client(MessageType.SOLICIT), CLIENT_LL, LNP, b"x"),
            "not a Relay-Reply",
        ),
        (
            encode_message(
                RelayMessage(MessageType.RELAY_REPL, 0, CLIENT_LL, CLIENT_LL, ())
            ),
            "no Relay Message",
        ),
        (_relay_reply(_client(MessageType.REQUEST)), "client message type 3"),
        (_relay_reply(_relay_reply(_server(MessageType.REPLY))), "relays a relay"),
        (_relay_reply(b"\x07\x00"), "DHCPv6"),
        (b"\x0d" + bytes(10), "RELAY_REPL: 11 octets"),
    ],
)
def test_bad_relay_replies_are_malformed(payload: bytes, match: str) -> None:
    with pytest.raises(Malformed, match=match):
        relay_reply(payload)


@given(st.binary(max_size=120))
def test_relay_receive_paths_decode_or_raise_malformed(data: bytes) -> None:
    for path in (
        lambda: relay_reply(data),
        lambda: relay_forward(data, CLIENT_LL, LNP, b"x"),
        lambda: relay_reply(_relay_reply(data)),
    ):
        with contextlib.suppress(Malformed):
            path()


# --- the frame to the client ----------------------------------------------------


def test_client_frame_is_a_valid_udp_datagram_to_port_546() -> None:
    reply = _server(MessageType.REPLY, _ia(_address()))
    virtual_ll = IPv6Address("fe80::1")

    frame = client_frame(
        reply,
        src_mac="02:00:5e:00:53:01",
        src_address=virtual_ll,
        dst_mac=MAC,
        dst_address=CLIENT_LL,
    )

    decoded = decode_frame(frame)
    assert decoded.src_mac == "02:00:5e:00:53:01"
    assert decoded.dst_mac == MAC
    assert decoded.src_ip == virtual_ll
    assert decoded.dst_ip == CLIENT_LL
    assert decoded.next_header == NH_UDP
    udp = decoded.payload
    assert udp[:4] == bytes.fromhex("02230222")  # 547 -> 546
    assert int.from_bytes(udp[4:6], "big") == 8 + len(reply)
    assert upper_layer_checksum(virtual_ll, CLIENT_LL, NH_UDP, udp) == 0
    assert udp[8:] == reply


def test_client_frame_agrees_with_scapy() -> None:
    scapy_l2 = pytest.importorskip("scapy.layers.l2")
    from scapy.layers.inet import UDP
    from scapy.layers.inet6 import IPv6

    reply = _server(MessageType.REPLY, _ia(_address()))
    frame = client_frame(
        reply,
        src_mac="02:00:5e:00:53:01",
        src_address=IPv6Address("fe80::1"),
        dst_mac=MAC,
        dst_address=CLIENT_LL,
    )
    packet = scapy_l2.Ether(frame)
    checksum = packet[UDP].chksum
    del packet[UDP].chksum
    del packet[IPv6].plen
    rebuilt = scapy_l2.Ether(bytes(packet))
    assert rebuilt[UDP].chksum == checksum
    assert bytes(rebuilt) == frame
    assert (packet[UDP].sport, packet[UDP].dport) == (547, 546)
    assert packet[IPv6].hlim == 255


# --- tshark reads the same fields ------------------------------------------------


def _transport_frame(payload: bytes, src: IPv6Address, dst: IPv6Address) -> bytes:
    udp = udp6_datagram(src, dst, 547, 547, payload)
    ipv6 = struct.pack("!IHBB", 6 << 28, len(udp), 17, 64) + src.packed + dst.packed
    return bytes.fromhex("02000000000202000000001186dd") + ipv6 + udp


def _pcap(frames: list[bytes]) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for k, frame in enumerate(frames):
        out += struct.pack("<IIII", k, 0, len(frame), len(frame)) + frame
    return out


@pytest.mark.tshark
def test_tshark_reads_our_relay_forward_and_client_frame(tmp_path: Path) -> None:
    mpa, server = IPv6Address("fd00::11"), IPv6Address("fd00::2")
    forward = relay_forward(
        _client(MessageType.SOLICIT, _ia()), CLIENT_LL, LNP, interface_id_for_mac(MAC)
    )
    reply = _server(MessageType.REPLY, _ia(_address()))
    frames = [
        _transport_frame(forward, mpa, server),
        client_frame(
            reply,
            src_mac="02:00:5e:00:53:01",
            src_address=IPv6Address("fe80::1"),
            dst_mac=MAC,
            dst_address=CLIENT_LL,
        ),
    ]
    path = tmp_path / "dhcp6.pcap"
    path.write_bytes(_pcap(frames))
    fields = [
        "udp.checksum.status",
        "dhcpv6.msgtype",
        "dhcpv6.hopcount",
        "dhcpv6.linkaddr",
        "dhcpv6.peeraddr",
        "dhcpv6.interface_id",
        "dhcpv6.xid",
        "dhcpv6.iaaddr.ip",
        "dhcpv6.iaaddr.valid_lifetime",
    ]
    command = ["tshark", "-n", "-r", str(path), "-o", "udp.check_checksum:TRUE"]
    command += ["-T", "fields", "-E", "separator=|", "-E", "occurrence=a"]
    for name in fields:
        command += ["-e", name]
    out = subprocess.run(command, capture_output=True, text=True, check=True)
    rows = [
        dict(zip(fields, line.split("|"), strict=True))
        for line in out.stdout.splitlines()
    ]

    relay, to_client = rows
    assert relay["udp.checksum.status"] == "1"  # good (0 bad, 2 unverified)
    assert relay["dhcpv6.msgtype"] == "12,1"  # Relay-Forward around a Solicit
    assert relay["dhcpv6.hopcount"] == "0"
    assert relay["dhcpv6.linkaddr"] == "2001:db8:1:1::"
    assert relay["dhcpv6.peeraddr"] == str(CLIENT_LL)
    assert relay["dhcpv6.interface_id"] == "02000000aa01"
    assert relay["dhcpv6.xid"] == "0x0a0b0c"
    assert to_client["udp.checksum.status"] == "1"
    assert to_client["dhcpv6.msgtype"] == "7"
    assert to_client["dhcpv6.iaaddr.ip"] == str(ADDRESS)
    assert to_client["dhcpv6.iaaddr.valid_lifetime"] == "30"
