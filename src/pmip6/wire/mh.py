"""Mobility Header messages and mobility options (RFC 6275 section 6.1).

Messages and options are frozen dataclasses named and laid out as the RFCs
name them. Decoded option tuples never contain Pad1/PadN: padding is an
encoding step (``encode_mh`` inserts what each option's alignment needs) and is
checked, then dropped, on decoding.

Lifetimes are kept in the wire's units of 4 seconds; callers convert.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from typing import TypeVar

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


def encode_mh(
    message: Message,
    profile: Profile = DRAFT00,
    src: IPv6Address | None = None,
    dst: IPv6Address | None = None,
) -> bytes:
    """Encode ``message`` as a Mobility Header, padding options as they require.

    With ``src`` and ``dst`` the checksum is computed over the IPv6
    pseudo-header; without them it is left zero (a Linux raw socket for
    protocol 135 fills it on send).
    """
    raise NotImplementedError


def decode_mh(
    data: bytes,
    profile: Profile = DRAFT00,
    src: IPv6Address | None = None,
    dst: IPv6Address | None = None,
) -> Message:
    """Decode one Mobility Header, strictly; raise ``Malformed`` on any fault.

    With ``src`` and ``dst`` the checksum is verified as well.
    """
    raise NotImplementedError
