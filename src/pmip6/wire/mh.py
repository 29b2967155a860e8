"""Mobility Header messages and mobility options (RFC 6275 section 6.1).

Messages and options are frozen dataclasses named and laid out as the RFCs
name them. Decoded option tuples never contain Pad1/PadN: padding is an
encoding step (``encode_mh`` inserts what each option's alignment needs) and is
checked, then dropped, on decoding.

Design decision: dropping the padding means a decoded message does not carry
the sender's padding choices; re-encoding pads as RFC 6275 6.2 and the option
alignments ask, which gives back the same octets for any sender that padded
minimally, and equal messages always compare equal whatever padding they came
with. Engines never need to see padding.

Decoding is strict: Payload Proto must be 59, Header Len must give exactly
the octets received, each type has its minimum Header Len (RFC 6275 9.2),
fixed-size options must have their exact Length, variable ones their minimum,
no option may run past the end, PadN must be zeros; with ``src`` and ``dst``
the checksum must verify. Every fault raises ``Malformed`` naming the message
and field. Reserved fields and unknown flag bits are ignored on receipt (the
RFCs ask receivers to), unknown option types are kept as ``UnknownOption`` and
unknown MH types as ``UnknownMessage``.

Code points of the seed's own options come from the ``Profile``: under
draft-00, type 22 decodes as ``AssignedHomeAddress`` (laid out as RFC 5213's
Home Network Prefix) and 200 as ``BindingCacheConfirmation``; under rfc5213,
type 22 is ``HomeNetworkPrefix`` and 200 is unknown.

Speed: layouts are precompiled ``struct.Struct`` objects, options and messages
dispatch through dicts, and decoded addresses and flag words are cached (they
repeat, and are immutable), so a PBU decodes and encodes in a few
microseconds (``bench/codec.py``).

Lifetimes are kept in the wire's units of 4 seconds; callers convert.
"""

from __future__ import annotations

import enum
import hmac
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from typing import Any, NamedTuple, TypeVar

from pmip6.wire.checksum import ipv6_checksum, ipv6_checksum_ok
from pmip6.wire.errors import Malformed
from pmip6.wire.profile import DRAFT00, Profile

MH_PROTO = 135
PAYLOAD_PROTO_NONE = 59
LIFETIME_UNIT = 4  # seconds per Lifetime unit (RFC 6275 6.1.7)


class MHType(enum.IntEnum):
    BINDING_UPDATE = 5
    BINDING_ACK = 6
    BINDING_ERROR = 7
    HEARTBEAT = 13
    BINDING_REVOCATION = 16


class OptionType(enum.IntEnum):
    PAD1 = 0
    PADN = 1
    ALTERNATE_COA = 3
    MN_IDENTIFIER = 8
    AUTHENTICATION = 9
    REPLAY_PROTECTION = 10
    HOME_NETWORK_PREFIX = 22
    HANDOFF_INDICATOR = 23
    ACCESS_TECHNOLOGY_TYPE = 24
    MN_LINK_LAYER_ID = 25
    LINK_LOCAL_ADDRESS = 26
    TIMESTAMP = 27
    RESTART_COUNTER = 28


class BUFlags(enum.IntFlag):
    A = 0x8000
    H = 0x4000
    L = 0x2000
    K = 0x1000
    M = 0x0800
    R = 0x0400
    P = 0x0200  # proxy registration (seed 4.1, RFC 5213 8.1)
    F = 0x0100
    T = 0x0080
    B = 0x0040


class BAFlags(enum.IntFlag):
    K = 0x80
    R = 0x40
    P = 0x20  # set only if the BU had P set (seed 4.2)
    T = 0x10
    B = 0x08


class BRFlags(enum.IntFlag):
    P = 0x80  # proxy binding (RFC 5846 6.1)
    V = 0x40
    G = 0x20


class BRType(enum.IntEnum):
    INDICATION = 1
    ACKNOWLEDGEMENT = 2


class Status(enum.IntEnum):
    """BA status codes (IANA mobility parameters). Unknown values stay ints."""

    ACCEPTED = 0
    REASON_UNSPECIFIED = 128
    ADMINISTRATIVELY_PROHIBITED = 129
    INSUFFICIENT_RESOURCES = 130
    HOME_REGISTRATION_NOT_SUPPORTED = 131
    NOT_HOME_SUBNET = 132
    NOT_HOME_AGENT_FOR_THIS_MN = 133
    DAD_FAILED = 134
    SEQUENCE_NUMBER_OUT_OF_WINDOW = 135
    MOBILE_ROUTER_OPERATION_NOT_PERMITTED = 140
    INVALID_PREFIX = 141
    NOT_AUTHORIZED_FOR_PREFIX = 142
    FORWARDING_SETUP_FAILED = 143
    PROXY_REG_NOT_ENABLED = 152
    NOT_LMA_FOR_THIS_MOBILE_NODE = 153
    MAG_NOT_AUTHORIZED_FOR_PROXY_REG = 154
    NOT_AUTHORIZED_FOR_HOME_NETWORK_PREFIX = 155
    TIMESTAMP_MISMATCH = 156
    TIMESTAMP_LOWER_THAN_PREV_ACCEPTED = 157
    MISSING_HOME_NETWORK_PREFIX_OPTION = 158
    BCE_PBU_PREFIX_SET_DO_NOT_MATCH = 159
    MISSING_MN_IDENTIFIER_OPTION = 160
    MISSING_HANDOFF_INDICATOR_OPTION = 161
    MISSING_ACCESS_TECH_TYPE_OPTION = 162


class RevocationTrigger(enum.IntEnum):
    UNSPECIFIED = 0
    ADMINISTRATIVE = 1
    INTER_MAG_HANDOVER_SAME_ATT = 2
    INTER_MAG_HANDOVER_DIFFERENT_ATT = 3
    INTER_MAG_HANDOVER_UNKNOWN = 4
    USER_INITIATED_SESSION_TERMINATION = 5
    ACCESS_NETWORK_SESSION_TERMINATION = 6
    POSSIBLE_OUT_OF_SYNC_BCE_STATE = 7


class RevocationStatus(enum.IntEnum):
    SUCCESS = 0
    PARTIAL_SUCCESS = 1
    BINDING_DOES_NOT_EXIST = 128
    FUNCTION_NOT_SUPPORTED = 134
    PROXY_REVOCATION_NOT_SUPPORTED = 135


# --- mobility options -------------------------------------------------------


@dataclass(frozen=True)
class AlternateCareOfAddress:
    """Type 3, alignment 8n+6 (RFC 6275 6.2.5)."""

    alternate_care_of_address: IPv6Address


@dataclass(frozen=True)
class MobileNodeIdentifier:
    """Type 8 (RFC 4283 3). Subtype 1 is the NAI."""

    identifier: bytes
    subtype: int = 1

    @property
    def nai(self) -> str:
        return self.identifier.decode("utf-8", "replace")

    @classmethod
    def from_nai(cls, nai: str) -> MobileNodeIdentifier:
        return cls(nai.encode("utf-8"))


@dataclass(frozen=True)
class MobilityMessageAuthentication:
    """Type 9, alignment 4n+1 (RFC 4285 5)."""

    subtype: int
    mobility_spi: int
    authentication_data: bytes


@dataclass(frozen=True)
class ReplayProtection:
    """Type 10, alignment 8n+2 (RFC 4285 6): 64-bit NTP timestamp."""

    timestamp: int


@dataclass(frozen=True)
class HomeNetworkPrefix:
    """Type 22, alignment 8n+4 (RFC 5213 8.3)."""

    prefix_length: int
    home_network_prefix: IPv6Address


@dataclass(frozen=True)
class AssignedHomeAddress:
    """The seed's Assigned Home Address option: the LoA and its prefix length.

    Laid out as RFC 5213's Home Network Prefix option; its type comes from the
    profile (``Profile.aha_option_type``).
    """

    prefix_length: int
    home_address: IPv6Address


@dataclass(frozen=True)
class BindingCacheConfirmation:
    """The seed's Binding Cache Confirmation option (seed 4.3): Length 0.

    Its type comes from the profile (``Profile.bcc_option_type``).
    """


@dataclass(frozen=True)
class HandoffIndicator:
    """Type 23 (RFC 5213 8.4)."""

    handoff_indicator: int


@dataclass(frozen=True)
class AccessTechnologyType:
    """Type 24 (RFC 5213 8.5)."""

    access_technology_type: int


@dataclass(frozen=True)
class MNLinkLayerIdentifier:
    """Type 25 (RFC 5213 8.6)."""

    link_layer_identifier: bytes


@dataclass(frozen=True)
class LinkLocalAddress:
    """Type 26, alignment 8n+6 (RFC 5213 8.7)."""

    link_local_address: IPv6Address


@dataclass(frozen=True)
class Timestamp:
    """Type 27, alignment 8n+2 (RFC 5213 8.8).

    64 bits: 48-bit seconds since 1970-01-01 and 16-bit 1/65536 fractions.
    """

    timestamp: int


@dataclass(frozen=True)
class RestartCounter:
    """Type 28, alignment 4n+2 (RFC 5847 5.2)."""

    restart_counter: int


@dataclass(frozen=True)
class UnknownOption:
    """Any option type this codec does not know, kept as it came."""

    option_type: int
    data: bytes


Option = (
    AlternateCareOfAddress
    | MobileNodeIdentifier
    | MobilityMessageAuthentication
    | ReplayProtection
    | HomeNetworkPrefix
    | AssignedHomeAddress
    | BindingCacheConfirmation
    | HandoffIndicator
    | AccessTechnologyType
    | MNLinkLayerIdentifier
    | LinkLocalAddress
    | Timestamp
    | RestartCounter
    | UnknownOption
)


T = TypeVar("T")


# --- messages -----------------------------------------------------------------


@dataclass(frozen=True)
class BindingUpdate:
    """MH type 5 (RFC 6275 6.1.7); a Proxy Binding Update when P is set."""

    sequence: int
    flags: BUFlags
    lifetime: int  # units of 4 s; 0 de-registers
    options: tuple[Option, ...] = ()

    @property
    def proxy(self) -> bool:
        return bool(self.flags & BUFlags.P)


@dataclass(frozen=True)
class BindingAcknowledgement:
    """MH type 6 (RFC 6275 6.1.8); a Proxy Binding Acknowledgement when P is set."""

    status: int
    flags: BAFlags
    sequence: int
    lifetime: int  # units of 4 s
    options: tuple[Option, ...] = ()

    @property
    def accepted(self) -> bool:
        return self.status < 128


@dataclass(frozen=True)
class BindingError:
    """MH type 7 (RFC 6275 6.1.9)."""

    status: int
    home_address: IPv6Address
    options: tuple[Option, ...] = ()


@dataclass(frozen=True)
class Heartbeat:
    """MH type 13 (RFC 5847 5.1)."""

    sequence: int  # 32 bits
    unsolicited: bool = False  # U
    response: bool = False  # R
    options: tuple[Option, ...] = ()


@dataclass(frozen=True)
class BindingRevocationIndication:
    """MH type 16, B.R. Type 1 (RFC 5846 6.1)."""

    sequence: int
    revocation_trigger: int
    flags: BRFlags
    options: tuple[Option, ...] = ()


@dataclass(frozen=True)
class BindingRevocationAcknowledgement:
    """MH type 16, B.R. Type 2 (RFC 5846 6.2)."""

    sequence: int
    status: int
    flags: BRFlags
    options: tuple[Option, ...] = ()


@dataclass(frozen=True)
class UnknownMessage:
    """Any other MH type, kept as the octets after the Checksum field."""

    mh_type: int
    data: bytes = field(default=b"")


Message = (
    BindingUpdate
    | BindingAcknowledgement
    | BindingError
    | Heartbeat
    | BindingRevocationIndication
    | BindingRevocationAcknowledgement
    | UnknownMessage
)


def find_option(options: tuple[Option, ...], kind: type[T]) -> T | None:
    """The first option of ``kind`` in ``options``, or None."""
    for option in options:
        if isinstance(option, kind):
            return option
    return None


# --- codec: layouts -------------------------------------------------------------

# Payload Proto, Header Len, MH Type, Reserved, Checksum (RFC 6275 6.1.1)
_HEADER = struct.Struct("!BBBBH")
_BU = struct.Struct("!HHH")  # Sequence, flags, Lifetime at 6 (RFC 6275 6.1.7)
_BA = struct.Struct("!BBHH")  # Status, flags, Sequence, Lifetime at 6 (6.1.8)
_BE = struct.Struct("!BB16s")  # Status, Reserved, Home Address at 6 (6.1.9)
_HB = struct.Struct("!BBI")  # Reserved, U|R, Sequence at 6 (RFC 5847 3.3)
_BR = struct.Struct("!BBHH")  # B.R. Type, Trigger/Status, Sequence, flags (5846)
_U16 = struct.Struct("!H")
_U32 = struct.Struct("!I")
_U64 = struct.Struct("!Q")
_AUTH = struct.Struct("!BI")  # Subtype, Mobility SPI (RFC 4285 5)
_PREFIX = struct.Struct("!BB16s")  # Reserved, Prefix Length, Prefix (5213 8.3)

_HB_UNSOLICITED = 0x02
_HB_RESPONSE = 0x01

# smallest Header Len each type allows (RFC 6275 9.2: fixed part, padded to 8)
_MIN_HEADER_LEN = {5: 1, 6: 1, 7: 2, 13: 1, 16: 1}
_MESSAGE_NAMES = {5: "BU", 6: "BA", 7: "BE", 13: "Heartbeat", 16: "BR"}

# alignment padding of 1..7 octets: Pad1, or PadN with zeros (RFC 6275 6.2.2-3)
_PADDING = {1: b"\0"} | {n: bytes((1, n - 2)) + bytes(n - 2) for n in range(2, 8)}


# --- codec: value caches ----------------------------------------------------------

# Building IPv6Address and IntFlag objects dominates decoding time; peers send
# the same few addresses and flag words over and over, and both are immutable.
_ADDRESS_CACHE: dict[bytes, IPv6Address] = {}
_ADDRESS_CACHE_SIZE = 4096
_BU_FLAGS: dict[int, BUFlags] = {}
_BA_FLAGS: dict[int, BAFlags] = {}
_BR_FLAGS: dict[int, BRFlags] = {}


def _address(packed: bytes) -> IPv6Address:
    address = _ADDRESS_CACHE.get(packed)
    if address is None:
        if len(_ADDRESS_CACHE) >= _ADDRESS_CACHE_SIZE:
            _ADDRESS_CACHE.clear()
        address = _ADDRESS_CACHE[packed] = IPv6Address(packed)
    return address


def _bu_flags(value: int) -> BUFlags:
    flags = _BU_FLAGS.get(value)
    if flags is None:
        flags = _BU_FLAGS[value] = BUFlags(value)
    return flags


def _ba_flags(value: int) -> BAFlags:
    flags = _BA_FLAGS.get(value)
    if flags is None:
        flags = _BA_FLAGS[value] = BAFlags(value)
    return flags


def _br_flags(value: int) -> BRFlags:
    flags = _BR_FLAGS.get(value)
    if flags is None:
        flags = _BR_FLAGS[value] = BRFlags(value)
    return flags


# --- codec: options ---------------------------------------------------------------

# decoder(data, start of the option data, Length) -> option
_OptionDecoder = Callable[[bytes, int, int], Option]


class _OptionSpec(NamedTuple):
    name: str
    length: int  # the exact Length, or the minimum when not exact
    exact: bool
    decode: _OptionDecoder


def _dec_alternate_coa(data: bytes, start: int, length: int) -> Option:
    return AlternateCareOfAddress(_address(data[start : start + 16]))


def _dec_mn_identifier(data: bytes, start: int, length: int) -> Option:
    return MobileNodeIdentifier(data[start + 1 : start + length], data[start])


def _dec_authentication(data: bytes, start: int, length: int) -> Option:
    subtype, spi = _AUTH.unpack_from(data, start)
    return MobilityMessageAuthentication(subtype, spi, data[start + 5 : start + length])


def _dec_replay(data: bytes, start: int, length: int) -> Option:
    return ReplayProtection(_U64.unpack_from(data, start)[0])


def _prefix(data: bytes, start: int) -> tuple[int, IPv6Address]:
    _, prefix_length, prefix = _PREFIX.unpack_from(data, start)
    if prefix_length > 128:
        raise Malformed(f"Prefix Length {prefix_length} exceeds 128")
    return prefix_length, _address(prefix)


def _dec_home_network_prefix(data: bytes, start: int, length: int) -> Option:
    return HomeNetworkPrefix(*_prefix(data, start))


def _dec_assigned_home_address(data: bytes, start: int, length: int) -> Option:
    return AssignedHomeAddress(*_prefix(data, start))


_BCC = BindingCacheConfirmation()


def _dec_bcc(data: bytes, start: int, length: int) -> Option:
    return _BCC


def _dec_handoff_indicator(data: bytes, start: int, length: int) -> Option:
    return HandoffIndicator(data[start + 1])


def _dec_access_technology(data: bytes, start: int, length: int) -> Option:
    return AccessTechnologyType(data[start + 1])


def _dec_link_layer_id(data: bytes, start: int, length: int) -> Option:
    return MNLinkLayerIdentifier(data[start + 2 : start + length])


def _dec_link_local(data: bytes, start: int, length: int) -> Option:
    return LinkLocalAddress(_address(data[start : start + 16]))


def _dec_timestamp(data: bytes, start: int, length: int) -> Option:
    return Timestamp(_U64.unpack_from(data, start)[0])


def _dec_restart_counter(data: bytes, start: int, length: int) -> Option:
    return RestartCounter(_U32.unpack_from(data, start)[0])


# options whose code points do not depend on the profile
_BASE_OPTIONS: dict[int, _OptionSpec] = {
    3: _OptionSpec("Alternate Care-of Address", 16, True, _dec_alternate_coa),
    8: _OptionSpec("MN Identifier", 1, False, _dec_mn_identifier),
    9: _OptionSpec("Authentication", 5, False, _dec_authentication),
    10: _OptionSpec("Replay Protection", 8, True, _dec_replay),
    22: _OptionSpec("Home Network Prefix", 18, True, _dec_home_network_prefix),
    23: _OptionSpec("Handoff Indicator", 2, True, _dec_handoff_indicator),
    24: _OptionSpec("Access Technology Type", 2, True, _dec_access_technology),
    25: _OptionSpec("MN Link-layer Identifier", 2, False, _dec_link_layer_id),
    26: _OptionSpec("Link-local Address", 16, True, _dec_link_local),
    27: _OptionSpec("Timestamp", 8, True, _dec_timestamp),
    28: _OptionSpec("Restart Counter", 4, True, _dec_restart_counter),
}
_AHA_SPEC = _OptionSpec("Assigned Home Address", 18, True, _dec_assigned_home_address)
_BCC_SPEC = _OptionSpec("Binding Cache Confirmation", 0, True, _dec_bcc)

_OPTION_TABLES: dict[int, tuple[Profile, dict[int, _OptionSpec]]] = {}


def _option_table(profile: Profile) -> dict[int, _OptionSpec]:
    """The option decoders of ``profile``, built once per profile object."""
    entry = _OPTION_TABLES.get(id(profile))
    if entry is None or entry[0] is not profile:
        table = dict(_BASE_OPTIONS)
        # the seed's options take their code points from the profile; in the
        # draft-00 profile the AHA shadows RFC 5213's Home Network Prefix (22)
        if profile.aha_option_type is not None:
            table[profile.aha_option_type] = _AHA_SPEC
        if profile.bcc_option_type is not None:
            table[profile.bcc_option_type] = _BCC_SPEC
        entry = _OPTION_TABLES[id(profile)] = (profile, table)
    return entry[1]


def _decode_options(
    data: bytes, pos: int, table: dict[int, _OptionSpec], where: str
) -> tuple[Option, ...]:
    """The options from ``pos`` to the end of ``data``; padding checked, dropped."""
    end = len(data)
    options: list[Option] = []
    append = options.append
    while pos < end:
        option_type = data[pos]
        if option_type == 0:  # Pad1
            pos += 1
            continue
        start = pos + 2
        if start > end:
            raise Malformed(
                f"{where}: option type {option_type} at offset {pos} is cut off "
                "before its Length"
            )
        length = data[pos + 1]
        next_pos = start + length
        if next_pos > end:
            raise Malformed(
                f"{where}: option type {option_type} at offset {pos}: "
                f"Length {length} overruns the message by {next_pos - end} octets"
            )

        spec = table.get(option_type)
        if spec is not None:
            name, size, exact, decode = spec
            if length != size and (exact or length < size):
                expected = "" if exact else "at least "
                raise Malformed(
                    f"{where}: {name} option at offset {pos}: Length {length}, "
                    f"expected {expected}{size}"
                )
            try:
                append(decode(data, start, length))
            except Malformed as exc:
                raise Malformed(
                    f"{where}: {name} option at offset {pos}: {exc}"
                ) from None
        elif option_type == 1:  # PadN
            if data.count(0, start, next_pos) != length:
                raise Malformed(f"{where}: PadN at offset {pos} is not zeros")
        else:
            # unknown options are skipped by receivers (RFC 6275 6.2.1); keep them
            append(UnknownOption(option_type, data[start:next_pos]))
        pos = next_pos
    return tuple(options)


# encoder(option, profile) -> (option type, option data)
_OptionEncoder = Callable[[Any, Profile], tuple[int, bytes]]


def _profile_type(code: int | None, what: str, profile: Profile) -> int:
    if code is None:
        raise ValueError(f"the {profile.name} profile has no {what} option")
    return code


def _unknown_type(option_type: int) -> int:
    # padding is the encoder's job; as an option it would not survive decoding
    if option_type in (OptionType.PAD1, OptionType.PADN):
        raise ValueError("Pad1/PadN are inserted by encode_mh, not given as options")
    return option_type


def _enc_prefix(prefix_length: int, prefix: IPv6Address) -> bytes:
    if not 0 <= prefix_length <= 128:
        raise ValueError(f"prefix length {prefix_length} is not in 0..128")
    return _PREFIX.pack(0, prefix_length, prefix.packed)


_OPTION_ENCODERS: dict[type, _OptionEncoder] = {
    AlternateCareOfAddress: lambda o, p: (3, o.alternate_care_of_address.packed),
    MobileNodeIdentifier: lambda o, p: (8, bytes((o.subtype,)) + o.identifier),
    MobilityMessageAuthentication: lambda o, p: (
        9,
        _AUTH.pack(o.subtype, o.mobility_spi) + o.authentication_data,
    ),
    ReplayProtection: lambda o, p: (10, _U64.pack(o.timestamp)),
    HomeNetworkPrefix: lambda o, p: (
        22,
        _enc_prefix(o.prefix_length, o.home_network_prefix),
    ),
    AssignedHomeAddress: lambda o, p: (
        _profile_type(p.aha_option_type, "Assigned Home Address", p),
        _enc_prefix(o.prefix_length, o.home_address),
    ),
    BindingCacheConfirmation: lambda o, p: (
        _profile_type(p.bcc_option_type, "Binding Cache Confirmation", p),
        b"",
    ),
    HandoffIndicator: lambda o, p: (23, bytes((0, o.handoff_indicator))),
    AccessTechnologyType: lambda o, p: (24, bytes((0, o.access_technology_type))),
    MNLinkLayerIdentifier: lambda o, p: (25, b"\0\0" + o.link_layer_identifier),
    LinkLocalAddress: lambda o, p: (26, o.link_local_address.packed),
    Timestamp: lambda o, p: (27, _U64.pack(o.timestamp)),
    RestartCounter: lambda o, p: (28, _U32.pack(o.restart_counter)),
    UnknownOption: lambda o, p: (_unknown_type(o.option_type), o.data),
}

# "xn+y" alignment of each option's Type octet, measured from the MH start
_ALIGNMENT: dict[type, tuple[int, int]] = {
    AlternateCareOfAddress: (8, 6),  # RFC 6275 6.2.5
    MobilityMessageAuthentication: (4, 1),  # RFC 4285 5
    ReplayProtection: (8, 2),  # RFC 4285 6
    HomeNetworkPrefix: (8, 4),  # RFC 5213 8.3
    AssignedHomeAddress: (8, 4),  # laid out as the HNP option
    LinkLocalAddress: (8, 6),  # RFC 5213 8.7
    Timestamp: (8, 2),  # RFC 5213 8.8
    RestartCounter: (4, 2),  # RFC 5847 3.4
}


# --- codec: messages --------------------------------------------------------------

# encoder(message) -> (MH type, fixed part after the Checksum, options)
_MessageEncoder = Callable[[Any], tuple[int, bytes, tuple[Option, ...]]]


def _enc_unknown(message: UnknownMessage) -> tuple[int, bytes, tuple[Option, ...]]:
    # the data is kept as it came, so it must already end the MH on a boundary
    if (6 + len(message.data)) % 8:
        raise ValueError(
            f"UnknownMessage data of {len(message.data)} octets does not end "
            "the MH on an 8-octet boundary"
        )
    return message.mh_type, message.data, ()


_MESSAGE_ENCODERS: dict[type, _MessageEncoder] = {
    UnknownMessage: _enc_unknown,
    BindingUpdate: lambda m: (
        5,
        _BU.pack(m.sequence, m.flags, m.lifetime),
        m.options,
    ),
    BindingAcknowledgement: lambda m: (
        6,
        _BA.pack(m.status, m.flags, m.sequence, m.lifetime),
        m.options,
    ),
    BindingError: lambda m: (
        7,
        _BE.pack(m.status, 0, m.home_address.packed),
        m.options,
    ),
    Heartbeat: lambda m: (
        13,
        _HB.pack(
            0,
            (_HB_UNSOLICITED if m.unsolicited else 0)
            | (_HB_RESPONSE if m.response else 0),
            m.sequence,
        ),
        m.options,
    ),
    # the three flags sit in the high octet of a 16-bit field (RFC 5846 6.1)
    BindingRevocationIndication: lambda m: (
        16,
        _BR.pack(1, m.revocation_trigger, m.sequence, m.flags << 8),
        m.options,
    ),
    BindingRevocationAcknowledgement: lambda m: (
        16,
        _BR.pack(2, m.status, m.sequence, m.flags << 8),
        m.options,
    ),
}


def _dec_bu(data: bytes, table: dict[int, _OptionSpec]) -> Message:
    sequence, flags, lifetime = _BU.unpack_from(data, 6)
    options = _decode_options(data, 12, table, "BU")
    return BindingUpdate(sequence, _bu_flags(flags), lifetime, options)


def _dec_ba(data: bytes, table: dict[int, _OptionSpec]) -> Message:
    status, flags, sequence, lifetime = _BA.unpack_from(data, 6)
    options = _decode_options(data, 12, table, "BA")
    return BindingAcknowledgement(status, _ba_flags(flags), sequence, lifetime, options)


def _dec_be(data: bytes, table: dict[int, _OptionSpec]) -> Message:
    status, _, home_address = _BE.unpack_from(data, 6)
    options = _decode_options(data, 24, table, "BE")
    return BindingError(status, _address(home_address), options)


def _dec_heartbeat(data: bytes, table: dict[int, _OptionSpec]) -> Message:
    _, bits, sequence = _HB.unpack_from(data, 6)
    options = _decode_options(data, 12, table, "Heartbeat")
    return Heartbeat(
        sequence, bool(bits & _HB_UNSOLICITED), bool(bits & _HB_RESPONSE), options
    )


def _dec_br(data: bytes, table: dict[int, _OptionSpec]) -> Message:
    br_type, value, sequence, flags = _BR.unpack_from(data, 6)
    if br_type == BRType.INDICATION:
        options = _decode_options(data, 12, table, "BRI")
        return BindingRevocationIndication(
            sequence, value, _br_flags(flags >> 8), options
        )
    if br_type == BRType.ACKNOWLEDGEMENT:
        options = _decode_options(data, 12, table, "BRA")
        return BindingRevocationAcknowledgement(
            sequence, value, _br_flags(flags >> 8), options
        )
    # RFC 5846 6: every other value is reserved
    raise Malformed(f"BR: B.R. Type {br_type} is reserved (1 is BRI, 2 is BRA)")


_MESSAGE_DECODERS: dict[int, Callable[[bytes, dict[int, _OptionSpec]], Message]] = {
    5: _dec_bu,
    6: _dec_ba,
    7: _dec_be,
    13: _dec_heartbeat,
    16: _dec_br,
}


# --- codec: entry points ------------------------------------------------------------


def encode_mh(
    message: Message,
    profile: Profile = DRAFT00,
    src: IPv6Address | None = None,
    dst: IPv6Address | None = None,
) -> bytes:
    """Encode ``message`` as a Mobility Header, padding options as they require.

    With ``src`` and ``dst`` the checksum is computed over the IPv6
    pseudo-header; without them it is left zero (a Linux raw socket for
    protocol 135 fills it on send). Values that do not fit their fields, an
    option the profile has no code point for, or an ``UnknownMessage`` whose
    data does not end on an 8-octet boundary raise ``ValueError``; an object
    that is no message or option raises ``TypeError``.
    """
    if (src is None) != (dst is None):
        raise ValueError("give both src and dst for the checksum, or neither")
    message_type = type(message)
    try:
        encoder = _MESSAGE_ENCODERS.get(message_type)
        if encoder is None:
            raise TypeError(f"not a Mobility Header message: {message!r}")
        mh_type, fixed, options = encoder(message)

        parts = [b"", fixed]
        offset = 6 + len(fixed)
        for option in options:
            option_class = type(option)
            option_encoder = _OPTION_ENCODERS.get(option_class)
            if option_encoder is None:
                raise TypeError(f"not a mobility option: {option!r}")
            option_type, body = option_encoder(option, profile)
            alignment = _ALIGNMENT.get(option_class)
            if alignment is not None:
                pad = (alignment[1] - offset) % alignment[0]
                if pad:
                    parts.append(_PADDING[pad])
                    offset += pad
            if len(body) > 255:
                raise ValueError(f"{option_class.__name__} data exceeds 255 octets")
            parts.append(bytes((option_type, len(body))))
            parts.append(body)
            offset += 2 + len(body)

        # the whole MH is a multiple of 8 octets (RFC 6275 6.1.1)
        pad = -offset % 8
        if pad:
            parts.append(_PADDING[pad])
            offset += pad
        header_len = offset // 8 - 1
        parts[0] = _HEADER.pack(PAYLOAD_PROTO_NONE, header_len, mh_type, 0, 0)
    except struct.error as exc:
        raise ValueError(
            f"{message_type.__name__}: field out of range: {exc}"
        ) from None

    encoded = b"".join(parts)
    if src is not None and dst is not None:
        checksum = ipv6_checksum(src, dst, MH_PROTO, encoded)
        encoded = encoded[:4] + _U16.pack(checksum) + encoded[6:]
    return encoded


def decode_mh(
    data: bytes,
    profile: Profile = DRAFT00,
    src: IPv6Address | None = None,
    dst: IPv6Address | None = None,
) -> Message:
    """Decode one Mobility Header, strictly; raise ``Malformed`` on any fault.

    With ``src`` and ``dst`` the checksum is verified as well.
    """
    if type(data) is not bytes:
        data = bytes(data)
    size = len(data)
    if size < 8:
        raise Malformed(f"MH: {size} octets, shorter than the 8-octet minimum")
    payload_proto, header_len, mh_type, _, checksum = _HEADER.unpack_from(data)
    name = _MESSAGE_NAMES.get(mh_type) or f"MH type {mh_type}"

    # the checks Linux makes before answering with a Parameter Problem (6.1.1)
    if payload_proto != PAYLOAD_PROTO_NONE:
        raise Malformed(f"{name}: Payload Proto {payload_proto}, expected 59")
    if (header_len + 1) * 8 != size:
        raise Malformed(
            f"{name}: Header Len {header_len} says {(header_len + 1) * 8} octets, "
            f"got {size}"
        )
    minimum = _MIN_HEADER_LEN.get(mh_type, 0)
    if header_len < minimum:
        raise Malformed(f"{name}: Header Len {header_len} below the minimum {minimum}")
    if (
        src is not None
        and dst is not None
        and not ipv6_checksum_ok(src, dst, MH_PROTO, data)
    ):
        expected = ipv6_checksum(src, dst, MH_PROTO, data[:4] + b"\0\0" + data[6:])
        raise Malformed(
            f"{name}: Checksum 0x{checksum:04x} is wrong, expected 0x{expected:04x}"
        )

    decoder = _MESSAGE_DECODERS.get(mh_type)
    if decoder is None:
        return UnknownMessage(mh_type, data[6:])
    return decoder(data, _option_table(profile))


def mh_checksum(data: bytes) -> int:
    """The Checksum field of an encoded Mobility Header."""
    return int(_U16.unpack_from(data, 4)[0])


def authenticator(
    key: bytes,
    care_of: IPv6Address,
    home_address: IPv6Address,
    mh_bytes_through_spi: bytes,
) -> bytes:
    """The RFC 4285 5.5 authenticator: 96 bits of HMAC-SHA1 over CoA | HoA | MH.

    ``mh_bytes_through_spi`` runs from Payload Proto through the SPI of the
    Mobility Message Authentication option; its checksum field is zeroed here.
    A proxy registration has no home address: callers pass the LoA, or
    ``IPv6Address(0)`` when it is not known yet.
    """
    mh_data = mh_bytes_through_spi[:4] + b"\0\0" + mh_bytes_through_spi[6:]
    mac = hmac.new(key, care_of.packed + home_address.packed + mh_data, "sha1")
    return mac.digest()[:12]
