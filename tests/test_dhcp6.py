"""DHCPv6 codec: vectors, round trips, truncations, junk, and scapy's view."""

from __future__ import annotations

import contextlib
from ipaddress import IPv6Address

import pytest
from hypothesis import given
from hypothesis import strategies as st

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
    decode_options,
    encode_message,
    find_option,
)
from pmip6.wire.errors import Malformed

# Solicit, transaction-id 0x123456, annotated:
#   01 123456                                  msg-type 1, transaction-id
#   0001 000a 0003 0001 020000 00aa01          Client-ID, DUID-LL ethernet
#   0003 000c 00000001 00000000 00000000       IA_NA IAID 1, T1 0, T2 0
#   0008 0002 0000                             Elapsed Time 0
SOLICIT = bytes.fromhex(
    "011234560001000a0003000102000000aa010003000c000000010000000000000000000800020000"
)
CLIENT_DUID = bytes.fromhex("0003000102000000aa01")

# Reply granting 2001:db8:1:1::100 (preferred 20 s, valid 30 s), T1 10, T2 16
SERVER_DUID = bytes.fromhex("0001000100000001020000000002")  # DUID-LLT
REPLY = bytes.fromhex(
    "07123456"
    "0002000e0001000100000001020000000002"  # Server-ID
    "0001000a0003000102000000aa01"  # Client-ID
    "00030028000000010000000a00000010"  # IA_NA IAID 1, T1 10, T2 16
    "0005001820010db8000100010000000000000100000000140000001e"  # IA Address
)

# Relay-Forward of SOLICIT with link-address 2001:db8:1:1::, peer fe80::1,
# Interface-Id 02:00:00:00:aa:01
RELAY_FORWARD = bytes.fromhex(
    "0c00"
    "20010db8000100010000000000000000"
    "fe800000000000000000000000000001"
    "00090028" + SOLICIT.hex() + "0012000602000000aa01"
)


def test_solicit_decodes_field_by_field() -> None:
    message = decode_message(SOLICIT)

    assert isinstance(message, ClientServerMessage)
    assert message.msg_type == MessageType.SOLICIT
    assert message.transaction_id == 0x123456
    assert [o.code for o in message.options] == [1, 3, 8]
    assert message.client_id == CLIENT_DUID
    assert message.server_id is None
    assert message.ia_na == (IANA(iaid=1, t1=0, t2=0),)


def test_reply_typed_views() -> None:
    message = decode_message(REPLY)

    assert isinstance(message, ClientServerMessage)
    assert message.msg_type == MessageType.REPLY
    assert message.server_id == SERVER_DUID
    (ia,) = message.ia_na
    assert (ia.iaid, ia.t1, ia.t2) == (1, 10, 16)
    assert ia.addresses == (IAAddress(IPv6Address("2001:db8:1:1::100"), 20, 30),)
    assert ia.status is None


def test_relay_forward_decodes() -> None:
    message = decode_message(RELAY_FORWARD)

    assert isinstance(message, RelayMessage)
    assert message.msg_type == MessageType.RELAY_FORW
    assert message.hop_count == 0
    assert message.link_address == IPv6Address("2001:db8:1:1::")
    assert message.peer_address == IPv6Address("fe80::1")
    assert message.relay_message == SOLICIT
    assert message.interface_id == bytes.fromhex("02000000aa01")


@pytest.mark.parametrize("vector", [SOLICIT, REPLY, RELAY_FORWARD])
def test_round_trip_is_exact(vector: bytes) -> None:
    assert encode_message(decode_message(vector)) == vector


def test_encode_builds_the_vector_from_typed_views() -> None:
    ia = IANA(
        1, 10, 16, (IAAddress(IPv6Address("2001:db8:1:1::100"), 20, 30).to_option(),)
    )
    message = ClientServerMessage(
        MessageType.REPLY,
        0x123456,
        (
            Option(OptionCode.SERVERID, SERVER_DUID),
            Option(OptionCode.CLIENTID, CLIENT_DUID),
            ia.to_option(),
        ),
    )
    assert encode_message(message) == REPLY


def test_status_code_round_trip() -> None:
    status = StatusCode(Status.NO_ADDRS_AVAIL, "no addresses")
    option = status.to_option()
    assert option.data == b"\x00\x02no addresses"
    assert StatusCode.from_option(option) == status
    assert not status.success
    assert StatusCode(0).success


def test_status_message_with_bad_utf8_keeps_the_code() -> None:
    status = StatusCode.from_option(Option(13, b"\x00\x02\xff\xfe"))
    assert status.status_code == Status.NO_ADDRS_AVAIL


def test_ia_na_with_status_code() -> None:
    ia = IANA(7, 0, 0, (StatusCode(Status.NO_ADDRS_AVAIL).to_option(),))
    decoded = IANA.from_option(ia.to_option())
    assert decoded == ia
    assert decoded.status == StatusCode(Status.NO_ADDRS_AVAIL)
    assert decoded.addresses == ()


def test_unknown_message_type_and_options_are_kept() -> None:
    data = bytes.fromhex("fe000001beef00036162630000 0000".replace(" ", ""))
    message = decode_message(data)
    assert isinstance(message, ClientServerMessage)
    assert message.msg_type == 0xFE
    assert message.options == (Option(0xBEEF, b"abc"), Option(0, b""))
    assert encode_message(message) == data


@pytest.mark.parametrize("vector", [SOLICIT, REPLY, RELAY_FORWARD])
def test_every_truncation_is_malformed_or_a_shorter_message(vector: bytes) -> None:
    boundaries = _option_boundaries(vector)
    for cut in range(len(vector)):
        data = vector[:cut]
        if cut in boundaries:
            # cut between options: a valid message with fewer options
            assert encode_message(decode_message(data)) == data
        else:
            with pytest.raises(Malformed):
                decode_message(data)


def _option_boundaries(vector: bytes) -> set[int]:
    header = 34 if vector[0] in (12, 13) else 4
    boundaries = {header}
    offset = header
    while offset < len(vector):
        offset += 4 + int.from_bytes(vector[offset + 2 : offset + 4], "big")
        boundaries.add(offset)
    return boundaries


@pytest.mark.parametrize("junk", [b"\x00", b"\x00\x01", b"\x00\x01\x02"])
def test_trailing_junk_is_malformed(junk: bytes) -> None:
    with pytest.raises(Malformed, match="trailing"):
        decode_message(SOLICIT + junk)


def test_option_length_past_the_end_is_malformed() -> None:
    with pytest.raises(Malformed, match="option 1 option-len 11"):
        decode_message(bytes.fromhex("011234560001000b") + CLIENT_DUID)


@pytest.mark.parametrize(
    ("option", "match"),
    [
        (Option(OptionCode.IA_NA, bytes(11)), "IA_NA: option-len 11"),
        (Option(OptionCode.IA_NA, bytes(12) + b"\x00\x05\x00"), "IA_NA options"),
        (Option(OptionCode.IAADDR, bytes(23)), "IA Address: option-len 23"),
        (Option(OptionCode.IAADDR, bytes(24) + b"\x00"), "IA Address options"),
        (Option(OptionCode.STATUS_CODE, b"\x00"), "Status Code: option-len 1"),
    ],
)
def test_short_typed_options_are_malformed(option: Option, match: str) -> None:
    view = {
        OptionCode.IA_NA: IANA,
        OptionCode.IAADDR: IAAddress,
        OptionCode.STATUS_CODE: StatusCode,
    }[OptionCode(option.code)]
    with pytest.raises(Malformed, match=match):
        view.from_option(option)  # type: ignore[attr-defined]


def test_misuse_is_not_malformed() -> None:
    with pytest.raises(ValueError) as info:
        ClientServerMessage(MessageType.SOLICIT, 1 << 24)
    assert not isinstance(info.value, Malformed)
    with pytest.raises(ValueError):
        ClientServerMessage(MessageType.RELAY_FORW, 1)
    with pytest.raises(ValueError):
        RelayMessage(MessageType.SOLICIT, 0, IPv6Address("::"), IPv6Address("::"))
    with pytest.raises(ValueError):
        IANA.from_option(Option(OptionCode.IAADDR, bytes(24)))


def test_empty_and_short_headers_are_malformed() -> None:
    for data in (b"", b"\x01", b"\x01\x00\x00", b"\x0c" + bytes(32), b"\x0d"):
        with pytest.raises(Malformed):
            decode_message(data)


@given(st.binary(max_size=200))
def test_any_bytes_decode_exactly_or_raise_malformed(data: bytes) -> None:
    try:
        message = decode_message(data)
    except Malformed:
        return
    assert encode_message(message) == data
    # the typed views either decode or raise Malformed too
    for option in decode_options(data[34 if data[0] in (12, 13) else 4 :]):
        view = {3: IANA, 5: IAAddress, 13: StatusCode}.get(option.code)
        if view is not None:
            with contextlib.suppress(Malformed):
                view.from_option(option)  # type: ignore[attr-defined]


@given(
    st.builds(
        IANA,
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.integers(0, 2**32 - 1),
        st.lists(
            st.builds(
                lambda a, p, v: IAAddress(IPv6Address(a), p, v).to_option(),
                st.integers(0, 2**128 - 1),
                st.integers(0, 2**32 - 1),
                st.integers(0, 2**32 - 1),
            ),
            max_size=3,
        ).map(tuple),
    )
)
def test_ia_na_round_trip(ia: IANA) -> None:
    assert IANA.from_option(ia.to_option()) == ia


# --- agreement with scapy's DHCPv6 layers ---------------------------------------

scapy_dhcp6 = pytest.importorskip("scapy.layers.dhcp6")


def _scapy_parse(data: bytes):  # type: ignore[no-untyped-def]
    return getattr(scapy_dhcp6, scapy_dhcp6.dhcp6_cls_by_type[data[0]])(data)


def test_scapy_reads_our_relay_forward() -> None:
    packet = _scapy_parse(RELAY_FORWARD)

    assert packet.msgtype == 12
    assert packet.hopcount == 0
    assert packet.linkaddr == "2001:db8:1:1::"
    assert packet.peeraddr == "fe80::1"
    inner = packet[scapy_dhcp6.DHCP6OptRelayMsg].message
    assert inner.msgtype == 1
    assert inner.trid == 0x123456
    assert bytes(inner[scapy_dhcp6.DHCP6OptClientId].duid) == CLIENT_DUID
    assert packet[scapy_dhcp6.DHCP6OptIfaceId].ifaceid == bytes.fromhex("02000000aa01")


def test_we_read_scapys_messages() -> None:
    s = scapy_dhcp6
    duid = s.DUID_LL(lladdr="02:00:00:00:aa:02")
    reply = (
        s.DHCP6_Reply(trid=0xABCDEF)
        / s.DHCP6OptServerId(duid=s.DUID_LLT(lladdr="02:00:00:00:00:02", timeval=9))
        / s.DHCP6OptClientId(duid=duid)
        / s.DHCP6OptIA_NA(
            iaid=0x0A0B0C0D,
            T1=10,
            T2=16,
            ianaopts=[
                s.DHCP6OptIAAddress(addr="2001:db8:1:2::7", preflft=20, validlft=30)
            ],
        )
        / s.DHCP6OptStatusCode(statuscode=0, statusmsg="All good")
    )
    relay = (
        s.DHCP6_RelayReply(
            hopcount=0, linkaddr="2001:db8:1:2::", peeraddr="fe80::2:ff:fe00:aa02"
        )
        / s.DHCP6OptIfaceId(ifaceid=b"\x02\x00\x00\x00\xaa\x02")
        / s.DHCP6OptRelayMsg(message=reply)
    )
    data = bytes(relay)

    message = decode_message(data)
    assert isinstance(message, RelayMessage)
    assert message.msg_type == MessageType.RELAY_REPL
    assert message.link_address == IPv6Address("2001:db8:1:2::")
    assert message.peer_address == IPv6Address("fe80::2:ff:fe00:aa02")
    assert message.interface_id == b"\x02\x00\x00\x00\xaa\x02"
    assert message.relay_message == bytes(reply)
    assert encode_message(message) == data

    inner = decode_message(bytes(reply))
    assert isinstance(inner, ClientServerMessage)
    assert inner.transaction_id == 0xABCDEF
    assert inner.client_id == bytes(duid)
    (ia,) = inner.ia_na
    assert (ia.iaid, ia.t1, ia.t2) == (0x0A0B0C0D, 10, 16)
    assert ia.addresses == (IAAddress(IPv6Address("2001:db8:1:2::7"), 20, 30),)
    assert inner.status == StatusCode(0, "All good")
    assert find_option(inner.options, OptionCode.SERVERID) is not None


def test_scapy_reads_our_ia_na_with_status() -> None:
    ia = IANA(
        3,
        100,
        160,
        (
            IAAddress(IPv6Address("2001:db8:1:1::9"), 0, 0).to_option(),
            StatusCode(Status.NO_BINDING, "gone").to_option(),
        ),
    )
    data = encode_message(ClientServerMessage(MessageType.REPLY, 5, (ia.to_option(),)))
    packet = _scapy_parse(data)

    option = packet[scapy_dhcp6.DHCP6OptIA_NA]
    assert (option.iaid, option.T1, option.T2) == (3, 100, 160)
    address = option.ianaopts[0]
    assert address.addr == "2001:db8:1:1::9"
    assert (address.preflft, address.validlft) == (0, 0)
    status = option.ianaopts[1]
    assert (status.statuscode, status.statusmsg) == (3, b"gone")
