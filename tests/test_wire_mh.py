"""The Mobility Header codec: the checked vector, round trips, strictness."""

from __future__ import annotations

from ipaddress import IPv6Address

import pytest

from pmip6.wire.checksum import internet_checksum, ipv6_checksum, ipv6_checksum_ok
from pmip6.wire.errors import Malformed
from pmip6.wire.mh import (
    AccessTechnologyType,
    AlternateCareOfAddress,
    AssignedHomeAddress,
    BAFlags,
    BindingAcknowledgement,
    BindingCacheConfirmation,
    BindingError,
    BindingRevocationAcknowledgement,
    BindingRevocationIndication,
    BindingUpdate,
    BRFlags,
    BUFlags,
    HandoffIndicator,
    Heartbeat,
    HomeNetworkPrefix,
    LinkLocalAddress,
    Message,
    MNLinkLayerIdentifier,
    MobileNodeIdentifier,
    MobilityMessageAuthentication,
    ReplayProtection,
    RestartCounter,
    Timestamp,
    UnknownMessage,
    UnknownOption,
    authenticator,
    decode_mh,
    encode_mh,
    find_option,
    mh_checksum,
)
from pmip6.wire.profile import DRAFT00, RFC5213

SRC = IPv6Address("2001:db8::1")
DST = IPv6Address("2001:db8::2")

VECTOR = bytes.fromhex(
    "3b0805008f9a0007c20003841612004020010db800010000000000000000000001001b08"
    "00006553f100800017020001180200030810016d6e31406578616d706c652e636f6d0100"
)
VECTOR_PBU = BindingUpdate(
    sequence=7,
    flags=BUFlags.A | BUFlags.H | BUFlags.P,
    lifetime=900,
    options=(
        HomeNetworkPrefix(64, IPv6Address("2001:db8:1::")),
        Timestamp(0x00006553F1008000),
        HandoffIndicator(1),
        AccessTechnologyType(3),
        MobileNodeIdentifier.from_nai("mn1@example.com"),
    ),
)

# one of every message, carrying every option between them
SAMPLES: list[tuple[Message, object]] = [
    (VECTOR_PBU, RFC5213),
    (
        BindingUpdate(
            65535,
            BUFlags.A | BUFlags.P,
            0,
            (
                MobileNodeIdentifier.from_nai("ms1@example.net"),
                AssignedHomeAddress(64, IPv6Address("2001:db8:1:1::10")),
                BindingCacheConfirmation(),
                AlternateCareOfAddress(IPv6Address("fd00::11")),
                LinkLocalAddress(IPv6Address("fe80::1")),
                MNLinkLayerIdentifier(bytes.fromhex("020000000001")),
                ReplayProtection(2**64 - 1),
                MobilityMessageAuthentication(1, 0xDEADBEEF, bytes(12)),
                UnknownOption(99, b"\x01\x02\x03"),
            ),
        ),
        DRAFT00,
    ),
    (
        BindingAcknowledgement(
            0,
            BAFlags.P,
            7,
            900,
            (
                HomeNetworkPrefix(64, IPv6Address("2001:db8:1::")),
                Timestamp(1),
                MobileNodeIdentifier.from_nai("mn1@example.com"),
            ),
        ),
        RFC5213,
    ),
    (BindingAcknowledgement(135, BAFlags(0), 3, 0), DRAFT00),
    (BindingError(1, IPv6Address("2001:db8::99")), DRAFT00),
    (Heartbeat(2**32 - 1, unsolicited=True), DRAFT00),
    (Heartbeat(5, response=True, options=(RestartCounter(9),)), DRAFT00),
    (
        BindingRevocationIndication(
            1,
            1,
            BRFlags.P,
            (MobileNodeIdentifier.from_nai("mn1@example.com"),),
        ),
        RFC5213,
    ),
    (BindingRevocationAcknowledgement(1, 0, BRFlags.P | BRFlags.G), RFC5213),
    (UnknownMessage(0, bytes(10)), DRAFT00),
    (UnknownMessage(200, b"abcdefghijklmnopqr"), RFC5213),
]


def test_vector_encodes_byte_for_byte() -> None:
    encoded = encode_mh(VECTOR_PBU, RFC5213, SRC, DST)
    assert encoded.hex() == VECTOR.hex()
    assert mh_checksum(encoded) == 0x8F9A


def test_vector_decodes_back() -> None:
    assert decode_mh(VECTOR, RFC5213, SRC, DST) == VECTOR_PBU


def test_vector_under_draft00_reads_option_22_as_assigned_home_address() -> None:
    decoded = decode_mh(VECTOR, DRAFT00)
    assert isinstance(decoded, BindingUpdate)
    assert find_option(decoded.options, AssignedHomeAddress) == AssignedHomeAddress(
        64, IPv6Address("2001:db8:1::")
    )
    assert find_option(decoded.options, HomeNetworkPrefix) is None


def test_bcc_type_200_is_unknown_under_rfc5213() -> None:
    pbu = BindingUpdate(1, BUFlags.P, 1, (BindingCacheConfirmation(),))
    encoded = encode_mh(pbu, DRAFT00)
    decoded = decode_mh(encoded, RFC5213)
    assert decoded.options == (UnknownOption(200, b""),)  # type: ignore[union-attr]


def test_seed_options_have_no_code_point_in_rfc5213() -> None:
    for option in (BindingCacheConfirmation(), AssignedHomeAddress(64, SRC)):
        with pytest.raises(ValueError, match="rfc5213"):
            encode_mh(BindingUpdate(1, BUFlags.P, 1, (option,)), RFC5213)


def test_checksum_without_addresses_is_zero() -> None:
    assert mh_checksum(encode_mh(VECTOR_PBU, RFC5213)) == 0


@pytest.mark.parametrize(("message", "profile"), SAMPLES)
def test_round_trip(message: Message, profile: object) -> None:
    encoded = encode_mh(message, profile, SRC, DST)  # type: ignore[arg-type]
    assert len(encoded) % 8 == 0
    assert encoded[1] == len(encoded) // 8 - 1
    assert ipv6_checksum_ok(SRC, DST, 135, encoded)
    assert decode_mh(encoded, profile, SRC, DST) == message  # type: ignore[arg-type]


@pytest.mark.parametrize(("message", "profile"), SAMPLES)
def test_every_truncation_and_trailing_junk_is_malformed(
    message: Message, profile: object
) -> None:
    encoded = encode_mh(message, profile)  # type: ignore[arg-type]
    for size in range(len(encoded)):
        with pytest.raises(Malformed):
            decode_mh(encoded[:size], profile)  # type: ignore[arg-type]
    for junk in (b"\0", bytes(8), b"\x01\x06" + bytes(6)):
        with pytest.raises(Malformed, match="Header Len"):
            decode_mh(encoded + junk, profile)  # type: ignore[arg-type]


def test_options_are_aligned_from_the_mh_start() -> None:
    options = (
        HandoffIndicator(1),
        AlternateCareOfAddress(SRC),
        MobilityMessageAuthentication(1, 2, b""),
        ReplayProtection(1),
        HomeNetworkPrefix(64, SRC),
        LinkLocalAddress(SRC),
        Timestamp(2),
        RestartCounter(3),
    )
    encoded = encode_mh(BindingUpdate(1, BUFlags(0), 1, options), RFC5213)
    wanted = {3: (8, 6), 9: (4, 1), 10: (8, 2), 22: (8, 4), 26: (8, 6), 27: (8, 2)}
    wanted[28] = (4, 2)
    pos, seen = 12, set()
    while pos < len(encoded):
        option_type = encoded[pos]
        if option_type == 0:
            pos += 1
            continue
        if option_type in wanted:
            x, y = wanted[option_type]
            assert pos % x == y, (option_type, pos)
            seen.add(option_type)
        pos += 2 + encoded[pos + 1]
    assert seen == set(wanted)


def _bu(options: bytes) -> bytes:
    """A BU with raw option bytes, padded with zeros to 8 octets."""
    body = bytes.fromhex("00010000 0001".replace(" ", "")) + options
    body += bytes(-(6 + len(body)) % 8)
    return bytes((59, (6 + len(body)) // 8 - 1, 5, 0, 0, 0)) + body


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\x3a" + VECTOR[1:], "BU: Payload Proto 58, expected 59"),
        (VECTOR[:1] + b"\x07" + VECTOR[2:], "BU: Header Len 7 says 64 octets, got 72"),
        (VECTOR[:24], "BU: Header Len 8 says 72 octets, got 24"),
        (bytes((59, 0, 5, 0, 0, 0, 0, 0)), "BU: Header Len 0 below the minimum 1"),
        (bytes((59, 1, 7)) + bytes(13), "BE: Header Len 1 below the minimum 2"),
        (_bu(b"\x01\x02\x00\x01"), "BU: PadN at offset 12 is not zeros"),
        (_bu(b"\x00\x00\x01\x05"), "BU: option type 1 at offset 14: Length 5 overruns"),
        (_bu(b"\x17\x03\x00\x01\x00"), "BU: Handoff Indicator option at offset 12: "),
        (_bu(b"\x1b\x07" + bytes(7)), "Timestamp option at offset 12: Length 7, exp"),
        (_bu(b"\x08\x00"), "MN Identifier option at offset 12: Length 0, expected at"),
        (
            _bu(b"\x00\x00\x00\x00\x16\x12\x00\x81" + bytes(16)),
            "Home Network Prefix option at offset 16: Prefix Length 129 exceeds 128",
        ),
        (bytes((59, 1, 16, 0, 0, 0, 3)) + bytes(9), "BR: B.R. Type 3 is reserved"),
        (b"\x3b\x00\x05", "MH: 3 octets"),
    ],
)
def test_malformed_names_the_field(data: bytes, reason: str) -> None:
    with pytest.raises(Malformed) as info:
        decode_mh(data, RFC5213)
    assert reason in str(info.value)


def test_option_cut_before_its_length() -> None:
    data = bytes((59, 1, 5, 0, 0, 0)) + bytes(9) + b"\x17"
    with pytest.raises(Malformed, match="option type 23 at offset 15 is cut off"):
        decode_mh(data)


def test_bad_checksum_is_malformed() -> None:
    bad = VECTOR[:5] + b"\x9b" + VECTOR[6:]
    with pytest.raises(Malformed, match="BU: Checksum 0x8f9b is wrong, expected"):
        decode_mh(bad, RFC5213, SRC, DST)
    decode_mh(bad, RFC5213)  # no addresses: not verified
    with pytest.raises(Malformed, match="Checksum"):
        decode_mh(VECTOR, RFC5213, DST, SRC + 1)


def test_pad1_and_padn_are_dropped() -> None:
    data = _bu(b"\x00\x01\x00\x17\x02\x00\x05")
    assert decode_mh(data).options == (HandoffIndicator(5),)  # type: ignore[union-attr]


def test_unknown_message_must_end_on_a_boundary() -> None:
    with pytest.raises(ValueError, match="8-octet boundary"):
        encode_mh(UnknownMessage(1, b"abc"))


@pytest.mark.parametrize(
    "message",
    [
        BindingUpdate(65536, BUFlags(0), 0),
        BindingAcknowledgement(256, BAFlags(0), 0, 0),
        Heartbeat(-1),
        BindingUpdate(1, BUFlags(0), 0, (HandoffIndicator(256),)),
        BindingUpdate(1, BUFlags(0), 0, (MNLinkLayerIdentifier(bytes(254)),)),
        BindingUpdate(1, BUFlags(0), 0, (HomeNetworkPrefix(129, SRC),)),
        BindingUpdate(1, BUFlags(0), 0, (UnknownOption(0, b""),)),
        BindingUpdate(1, BUFlags(0), 0, (UnknownOption(1, b"\0"),)),
        BindingUpdate(1, BUFlags(0), 0, (UnknownOption(256, b""),)),
    ],
)
def test_out_of_range_values_raise_value_error(message: Message) -> None:
    with pytest.raises(ValueError):
        encode_mh(message)


def test_misuse_raises_type_or_value_error() -> None:
    with pytest.raises(TypeError):
        encode_mh("not a message")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encode_mh(BindingUpdate(1, BUFlags(0), 0, ("x",)))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="both"):
        encode_mh(VECTOR_PBU, RFC5213, SRC)


def test_internet_checksum_known_values() -> None:
    # RFC 1071 section 3 example: words 0001 f203 f4f5 f6f7 sum to ddf2
    assert internet_checksum(bytes.fromhex("0001f203f4f5f6f7")) == 0xFFFF & ~0xDDF2
    assert internet_checksum(b"") == 0xFFFF
    assert internet_checksum(b"\xff\xff") == 0
    assert internet_checksum(b"\x01") == 0xFEFF  # odd length pads with zero
    assert ipv6_checksum(SRC, DST, 135, VECTOR[:4] + b"\0\0" + VECTOR[6:]) == 0x8F9A


def test_checksum_accepts_both_zeros() -> None:
    # find the pseudo-header that makes the vector's checksum come out 0
    zeroed = VECTOR[:4] + b"\0\0" + VECTOR[6:]
    src = SRC
    for i in range(0x10000):
        src = IPv6Address(int(SRC) + i)
        if ipv6_checksum(src, DST, 135, zeroed) == 0:
            break
    assert ipv6_checksum_ok(src, DST, 135, zeroed)
    assert ipv6_checksum_ok(src, DST, 135, VECTOR[:4] + b"\xff\xff" + VECTOR[6:])


def test_authenticator_is_96_bits_and_ignores_the_checksum() -> None:
    prefix = encode_mh(VECTOR_PBU, RFC5213, SRC, DST)
    first = authenticator(b"k", SRC, IPv6Address(0), prefix)
    again = authenticator(b"k", SRC, IPv6Address(0), prefix[:4] + b"\1\1" + prefix[6:])
    assert len(first) == 12
    assert first == again
    assert authenticator(b"j", SRC, IPv6Address(0), prefix) != first
