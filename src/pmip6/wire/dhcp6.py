"""DHCPv6 messages as a relay agent sees them (RFC 8415 sections 8, 9 and 21).

A relay needs little of DHCPv6: the two message envelopes (client/server and
relay), the option list, and enough typed views to read who the client is and
which addresses the server assigned. Every option is kept as ``(code, data)``
in its original order, so a message decodes and encodes back to the same
octets; typed views (``IANA``, ``IAAddress``, ``StatusCode`` ...) are built from
an option on demand and turned back into one with ``to_option()``.

Decoding is strict: every length must fit exactly, and anything that does not
raises ``Malformed`` naming the field at fault.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv6Address

from pmip6.wire.errors import Malformed

CLIENT_PORT = 546  # RFC 8415 7.2
SERVER_PORT = 547  # servers and relay agents listen here
ALL_DHCP_RELAY_AGENTS_AND_SERVERS = IPv6Address("ff02::1:2")  # RFC 8415 7.1
HOP_COUNT_LIMIT = 8  # RFC 8415 7.6

_CLIENT_HEADER = 4  # msg-type (1) + transaction-id (3), RFC 8415 8
_RELAY_HEADER = 34  # msg-type, hop-count, link-address, peer-address (RFC 8415 9)
_OPTION_HEADER = 4  # option-code (2) + option-len (2), RFC 8415 21.1


class MessageType(enum.IntEnum):
    """RFC 8415 7.3. Unknown values stay plain ints."""

    SOLICIT = 1
    ADVERTISE = 2
    REQUEST = 3
    CONFIRM = 4
    RENEW = 5
    REBIND = 6
    REPLY = 7
    RELEASE = 8
    DECLINE = 9
    RECONFIGURE = 10
    INFORMATION_REQUEST = 11
    RELAY_FORW = 12
    RELAY_REPL = 13


class OptionCode(enum.IntEnum):
    """RFC 8415 21 (and 3646 for the DNS options a server commonly adds)."""

    CLIENTID = 1
    SERVERID = 2
    IA_NA = 3
    IA_TA = 4
    IAADDR = 5
    ORO = 6
    PREFERENCE = 7
    ELAPSED_TIME = 8
    RELAY_MSG = 9
    AUTH = 11
    UNICAST = 12
    STATUS_CODE = 13
    RAPID_COMMIT = 14
    USER_CLASS = 15
    VENDOR_CLASS = 16
    VENDOR_OPTS = 17
    INTERFACE_ID = 18
    RECONF_MSG = 19
    RECONF_ACCEPT = 20
    DNS_SERVERS = 23
    DOMAIN_LIST = 24
    IA_PD = 25
    IAPREFIX = 26


class Status(enum.IntEnum):
    """Status Code option values (RFC 8415 21.13)."""

    SUCCESS = 0
    UNSPEC_FAIL = 1
    NO_ADDRS_AVAIL = 2
    NO_BINDING = 3
    NOT_ON_LINK = 4
    USE_MULTICAST = 5
    NO_PREFIX_AVAIL = 6


# messages a client sends; the others come from servers (RFC 8415 7.3)
CLIENT_MESSAGE_TYPES = frozenset(
    {
        MessageType.SOLICIT,
        MessageType.REQUEST,
        MessageType.CONFIRM,
        MessageType.RENEW,
        MessageType.REBIND,
        MessageType.RELEASE,
        MessageType.DECLINE,
        MessageType.INFORMATION_REQUEST,
    }
)
RELAY_MESSAGE_TYPES = frozenset({MessageType.RELAY_FORW, MessageType.RELAY_REPL})


# --- options ------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """One option as it is on the wire: code and the octets after option-len."""

    code: int
    data: bytes

    def __post_init__(self) -> None:
        if not 0 <= self.code <= 0xFFFF:
            raise ValueError(f"option-code {self.code} out of range")
        if len(self.data) > 0xFFFF:
            raise ValueError(f"option {self.code}: {len(self.data)} octets too long")


def decode_options(data: bytes, where: str = "DHCPv6") -> tuple[Option, ...]:
    """Split ``data`` into options; it must be consumed exactly."""
    options: list[Option] = []
    offset = 0
    while offset < len(data):
        if len(data) - offset < _OPTION_HEADER:
            raise Malformed(
                f"{where}: {len(data) - offset} trailing octets, "
                "shorter than an option header"
            )
        code, length = struct.unpack_from("!HH", data, offset)
        offset += _OPTION_HEADER
        if length > len(data) - offset:
            raise Malformed(
                f"{where}: option {code} option-len {length} runs past the end "
                f"({len(data) - offset} octets left)"
            )
        options.append(Option(code, bytes(data[offset : offset + length])))
        offset += length
    return tuple(options)


def encode_options(options: Iterable[Option]) -> bytes:
    return b"".join(
        struct.pack("!HH", option.code, len(option.data)) + option.data
        for option in options
    )


def find_option(options: Iterable[Option], code: int) -> Option | None:
    """The first option with ``code``, or None."""
    for option in options:
        if option.code == code:
            return option
    return None


def find_options(options: Iterable[Option], code: int) -> tuple[Option, ...]:
    return tuple(option for option in options if option.code == code)


def _expect(option: Option, code: int) -> None:
    if option.code != code:
        raise ValueError(f"option {option.code} is not option {code}")


@dataclass(frozen=True)
class StatusCode:
    """Status Code option 13 (RFC 8415 21.13): status-code · UTF-8 message."""

    status_code: int
    status_message: str = ""

    @classmethod
    def from_option(cls, option: Option) -> StatusCode:
        _expect(option, OptionCode.STATUS_CODE)
        if len(option.data) < 2:
            raise Malformed(
                f"Status Code: option-len {len(option.data)} is shorter than 2"
            )
        (status_code,) = struct.unpack_from("!H", option.data)
        # the text is for humans only; a bad octet must not cost us the status
        return cls(status_code, option.data[2:].decode("utf-8", "replace"))

    def to_option(self) -> Option:
        return Option(
            OptionCode.STATUS_CODE,
            struct.pack("!H", self.status_code) + self.status_message.encode("utf-8"),
        )

    @property
    def success(self) -> bool:
        return self.status_code == Status.SUCCESS


@dataclass(frozen=True)
class IAAddress:
    """IA Address option 5 (RFC 8415 21.6), inside an IA_NA or IA_TA."""

    address: IPv6Address
    preferred_lifetime: int
    valid_lifetime: int
    options: tuple[Option, ...] = ()

    @classmethod
    def from_option(cls, option: Option) -> IAAddress:
        _expect(option, OptionCode.IAADDR)
        if len(option.data) < 24:
            raise Malformed(
                f"IA Address: option-len {len(option.data)} is shorter than 24"
            )
        preferred, valid = struct.unpack_from("!II", option.data, 16)
        return cls(
            IPv6Address(option.data[:16]),
            preferred,
            valid,
            decode_options(option.data[24:], "IA Address options"),
        )

    def to_option(self) -> Option:
        return Option(
            OptionCode.IAADDR,
            self.address.packed
            + struct.pack("!II", self.preferred_lifetime, self.valid_lifetime)
            + encode_options(self.options),
        )

    @property
    def status(self) -> StatusCode | None:
        option = find_option(self.options, OptionCode.STATUS_CODE)
        return None if option is None else StatusCode.from_option(option)


@dataclass(frozen=True)
class IANA:
    """IA_NA option 3 (RFC 8415 21.4): IAID · T1 · T2 · IA_NA-options."""

    iaid: int
    t1: int
    t2: int
    options: tuple[Option, ...] = ()

    @classmethod
    def from_option(cls, option: Option) -> IANA:
        _expect(option, OptionCode.IA_NA)
        if len(option.data) < 12:
            raise Malformed(f"IA_NA: option-len {len(option.data)} is shorter than 12")
        iaid, t1, t2 = struct.unpack_from("!III", option.data)
        return cls(iaid, t1, t2, decode_options(option.data[12:], "IA_NA options"))

    def to_option(self) -> Option:
        return Option(
            OptionCode.IA_NA,
            struct.pack("!III", self.iaid, self.t1, self.t2)
            + encode_options(self.options),
        )

    @property
    def addresses(self) -> tuple[IAAddress, ...]:
        return tuple(
            IAAddress.from_option(option)
            for option in find_options(self.options, OptionCode.IAADDR)
        )

    @property
    def status(self) -> StatusCode | None:
        option = find_option(self.options, OptionCode.STATUS_CODE)
        return None if option is None else StatusCode.from_option(option)


# --- messages -----------------------------------------------------------------


@dataclass(frozen=True)
class ClientServerMessage:
    """RFC 8415 8: msg-type · transaction-id (24 bits) · options."""

    msg_type: int
    transaction_id: int
    options: tuple[Option, ...] = ()

    def __post_init__(self) -> None:
        if self.msg_type in RELAY_MESSAGE_TYPES:
            raise ValueError(f"msg-type {self.msg_type} is a relay message")
        if not 0 <= self.msg_type <= 0xFF:
            raise ValueError(f"msg-type {self.msg_type} out of range")
        if not 0 <= self.transaction_id <= 0xFFFFFF:
            raise ValueError(f"transaction-id {self.transaction_id} is not 24 bits")

    def option(self, code: int) -> Option | None:
        return find_option(self.options, code)

    @property
    def client_id(self) -> bytes | None:
        """The client's DUID (option 1), opaque."""
        option = self.option(OptionCode.CLIENTID)
        return None if option is None else option.data

    @property
    def server_id(self) -> bytes | None:
        option = self.option(OptionCode.SERVERID)
        return None if option is None else option.data

    @property
    def ia_na(self) -> tuple[IANA, ...]:
        return tuple(
            IANA.from_option(option)
            for option in find_options(self.options, OptionCode.IA_NA)
        )

    @property
    def status(self) -> StatusCode | None:
        option = self.option(OptionCode.STATUS_CODE)
        return None if option is None else StatusCode.from_option(option)


@dataclass(frozen=True)
class RelayMessage:
    """RFC 8415 9: Relay-Forward (12) and Relay-Reply (13)."""

    msg_type: int
    hop_count: int
    link_address: IPv6Address
    peer_address: IPv6Address
    options: tuple[Option, ...] = ()

    def __post_init__(self) -> None:
        if self.msg_type not in RELAY_MESSAGE_TYPES:
            raise ValueError(f"msg-type {self.msg_type} is not a relay message")
        if not 0 <= self.hop_count <= 0xFF:
            raise ValueError(f"hop-count {self.hop_count} out of range")

    def option(self, code: int) -> Option | None:
        return find_option(self.options, code)

    @property
    def relay_message(self) -> bytes | None:
        """The relayed message (option 9), still encoded."""
        option = self.option(OptionCode.RELAY_MSG)
        return None if option is None else option.data

    @property
    def interface_id(self) -> bytes | None:
        option = self.option(OptionCode.INTERFACE_ID)
        return None if option is None else option.data


Message = ClientServerMessage | RelayMessage


def _message_type(value: int) -> int:
    try:
        return MessageType(value)
    except ValueError:
        return value


def decode_message(data: bytes) -> Message:
    """Decode one DHCPv6 message (a UDP payload)."""
    if len(data) < 1:
        raise Malformed("DHCPv6: empty message")
    msg_type = _message_type(data[0])

    if msg_type in RELAY_MESSAGE_TYPES:
        if len(data) < _RELAY_HEADER:
            raise Malformed(
                f"DHCPv6 {MessageType(msg_type).name}: {len(data)} octets, "
                f"shorter than the {_RELAY_HEADER}-octet header"
            )
        name = MessageType(msg_type).name
        return RelayMessage(
            msg_type,
            data[1],
            IPv6Address(data[2:18]),
            IPv6Address(data[18:34]),
            decode_options(data[_RELAY_HEADER:], f"DHCPv6 {name}"),
        )

    if len(data) < _CLIENT_HEADER:
        raise Malformed(
            f"DHCPv6: {len(data)} octets, shorter than the "
            f"{_CLIENT_HEADER}-octet header"
        )
    name = msg_type.name if isinstance(msg_type, MessageType) else str(msg_type)
    return ClientServerMessage(
        msg_type,
        int.from_bytes(data[1:4], "big"),
        decode_options(data[_CLIENT_HEADER:], f"DHCPv6 {name}"),
    )


def encode_message(message: Message) -> bytes:
    if isinstance(message, RelayMessage):
        return (
            bytes((message.msg_type, message.hop_count))
            + message.link_address.packed
            + message.peer_address.packed
            + encode_options(message.options)
        )
    return (
        bytes((message.msg_type,))
        + message.transaction_id.to_bytes(3, "big")
        + encode_options(message.options)
    )
