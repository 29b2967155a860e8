"""Property tests of the Mobility Header codec: round trips and a bounded fuzz.

Every message and option dataclass has a hypothesis strategy; encoding then
decoding gives back the same object under each profile. The fuzz holds one
invariant: any bytes either decode or raise ``Malformed``.
"""

from __future__ import annotations

import contextlib
import random
from ipaddress import IPv6Address

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pmip6.wire.checksum import ipv6_checksum_ok
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
    Option,
    ReplayProtection,
    RestartCounter,
    Timestamp,
    UnknownMessage,
    UnknownOption,
    decode_mh,
    encode_mh,
)
from pmip6.wire.profile import DRAFT00, RFC5213, Profile

u8 = st.integers(0, 0xFF)
u16 = st.integers(0, 0xFFFF)
u32 = st.integers(0, 0xFFFFFFFF)
u64 = st.integers(0, 2**64 - 1)
addresses = st.integers(0, 2**128 - 1).map(IPv6Address)
prefix_lengths = st.integers(0, 128)

KNOWN_OPTION_TYPES = {0, 1, 3, 8, 9, 10, 22, 23, 24, 25, 26, 27, 28}
KNOWN_MH_TYPES = {5, 6, 7, 13, 16}

common_options: list[st.SearchStrategy[Option]] = [
    st.builds(AlternateCareOfAddress, addresses),
    st.builds(MobileNodeIdentifier, st.binary(max_size=60), u8),
    st.builds(MobilityMessageAuthentication, u8, u32, st.binary(max_size=40)),
    st.builds(ReplayProtection, u64),
    st.builds(HandoffIndicator, u8),
    st.builds(AccessTechnologyType, u8),
    st.builds(MNLinkLayerIdentifier, st.binary(max_size=20)),
    st.builds(LinkLocalAddress, addresses),
    st.builds(Timestamp, u64),
    st.builds(RestartCounter, u32),
]


def unknown_options(taken: set[int]) -> st.SearchStrategy[Option]:
    return st.builds(
        UnknownOption,
        u8.filter(lambda t: t not in taken),
        st.binary(max_size=40),
    )


PROFILE_OPTIONS: dict[str, st.SearchStrategy[Option]] = {
    # in draft-00, type 22 reads back as the Assigned Home Address option
    "draft-00": st.one_of(
        *common_options,
        st.builds(AssignedHomeAddress, prefix_lengths, addresses),
        st.just(BindingCacheConfirmation()),
        unknown_options(KNOWN_OPTION_TYPES | {200}),
    ),
    "rfc5213": st.one_of(
        *common_options,
        st.builds(HomeNetworkPrefix, prefix_lengths, addresses),
        unknown_options(KNOWN_OPTION_TYPES),
    ),
}


def messages(profile: Profile) -> st.SearchStrategy[Message]:
    options = st.lists(PROFILE_OPTIONS[profile.name], max_size=6).map(tuple)
    return st.one_of(
        st.builds(BindingUpdate, u16, u16.map(BUFlags), u16, options),
        st.builds(BindingAcknowledgement, u8, u8.map(BAFlags), u16, u16, options),
        st.builds(BindingError, u8, addresses, options),
        st.builds(Heartbeat, u32, st.booleans(), st.booleans(), options),
        st.builds(BindingRevocationIndication, u16, u8, u8.map(BRFlags), options),
        st.builds(BindingRevocationAcknowledgement, u16, u8, u8.map(BRFlags), options),
        st.builds(
            UnknownMessage,
            u8.filter(lambda t: t not in KNOWN_MH_TYPES),
            st.integers(0, 30).flatmap(
                lambda n: st.binary(min_size=8 * n + 2, max_size=8 * n + 2)
            ),
        ),
    )


@settings(max_examples=400, deadline=None)
@given(messages(DRAFT00), addresses, addresses)
def test_round_trip_draft00(
    message: Message, src: IPv6Address, dst: IPv6Address
) -> None:
    encoded = encode_mh(message, DRAFT00, src, dst)
    assert ipv6_checksum_ok(src, dst, 135, encoded)
    assert decode_mh(encoded, DRAFT00, src, dst) == message


@settings(max_examples=400, deadline=None)
@given(messages(RFC5213))
def test_round_trip_rfc5213(message: Message) -> None:
    encoded = encode_mh(message, RFC5213)
    assert len(encoded) % 8 == 0
    assert decode_mh(encoded, RFC5213) == message
    # re-encoding what was decoded gives the same octets
    assert encode_mh(decode_mh(encoded, RFC5213), RFC5213) == encoded


def _decodes_or_malformed(data: bytes, profile: Profile = DRAFT00) -> None:
    with contextlib.suppress(Malformed):
        decode_mh(data, profile)


@settings(max_examples=2000, deadline=None)
@given(st.binary(max_size=300))
def test_fuzz_any_bytes_decode_or_raise_malformed(data: bytes) -> None:
    _decodes_or_malformed(data)


@settings(
    max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    st.sampled_from([*sorted(KNOWN_MH_TYPES), 0, 99]),
    st.integers(0, 12).flatmap(
        lambda n: st.binary(min_size=8 * n + 2, max_size=8 * n + 2)
    ),
    st.sampled_from([DRAFT00, RFC5213]),
)
def test_fuzz_well_framed_bodies(mh_type: int, body: bytes, profile: Profile) -> None:
    # a valid frame around random data reaches the option parser every time
    data = bytes((59, (len(body) + 6) // 8 - 1, mh_type, 0, 0, 0)) + body
    _decodes_or_malformed(data, profile)


@settings(max_examples=150, deadline=None)
@given(messages(DRAFT00), st.randoms(use_true_random=False))
def test_fuzz_mutations_of_valid_messages(message: Message, rnd: random.Random) -> None:
    encoded = bytearray(encode_mh(message, DRAFT00))
    for _ in range(10):
        mutated = bytearray(encoded)
        for _ in range(rnd.randint(1, 4)):
            position = rnd.randrange(len(mutated))
            mutated[position] = rnd.randrange(256)
        # keep the frame valid most of the time so the mutation goes deep
        if rnd.random() < 0.8:
            mutated[0], mutated[1] = 59, len(mutated) // 8 - 1
        _decodes_or_malformed(bytes(mutated))
        _decodes_or_malformed(bytes(mutated), RFC5213)


@settings(max_examples=150, deadline=None)
@given(messages(RFC5213), st.binary(min_size=1, max_size=16))
def test_every_truncation_and_junk_of_random_messages(
    message: Message, junk: bytes
) -> None:
    encoded = encode_mh(message, RFC5213)
    for size in range(len(encoded)):
        try:
            decode_mh(encoded[:size], RFC5213)
        except Malformed:
            continue
        raise AssertionError(f"a truncation to {size} octets decoded")
    try:
        decode_mh(encoded + junk, RFC5213)
    except Malformed as exc:
        assert "Header Len" in str(exc)
    else:
        raise AssertionError("trailing junk decoded")
