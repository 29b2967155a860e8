"""The MPA as a DHCPv6 relay agent (seed 6.3 item 3 and Figure 9; RFC 8415 19).

The MPA relays its stations' DHCPv6 messages to the DHCP server named in the
station's profile. Two things make it more than a plain relay:

- the Relay-Forward's link-address lies inside the station's Local Network
  Prefix, so the server picks the pool of that LNP (seed 6.3: the MPA "tags
  the DHCP Request with the Local Network Prefix"), wherever the station is;
- an address the server assigns in a Reply is the station's Local Address: the
  MPA registers it with the LMAP in the Assigned Home Address option (Figure 9
  steps 5-7).

Everything here is pure: bytes in, bytes and addresses out.
"""

from __future__ import annotations

import struct
from ipaddress import IPv6Address, IPv6Network
from typing import NamedTuple

from pmip6.wire.dhcp6 import (
    CLIENT_MESSAGE_TYPES,
    CLIENT_PORT,
    HOP_COUNT_LIMIT,
    SERVER_PORT,
    ClientServerMessage,
    IAAddress,
    MessageType,
    Option,
    OptionCode,
    RelayMessage,
    decode_message,
    encode_message,
)
from pmip6.wire.errors import Malformed
from pmip6.wire.nd import (
    ETH_P_IPV6,
    NH_UDP,
    mac_from_bytes,
    mac_to_bytes,
    upper_layer_checksum,
)

RELAY_HOP_LIMIT = 255  # one link to the client; any value reaches it

# replies that grant the addresses they carry: Reply to Request, Renew, Rebind
# and to a rapid-commit Solicit (RFC 8415 18.3). An Advertise only offers.
_GRANTING = frozenset({MessageType.REPLY})


class RelayedReply(NamedTuple):
    """What a Relay-Reply from the server carries for one station."""

    interface_id: bytes | None  # our own tag, copied back by the server
    peer_address: IPv6Address  # the client's link-local address
    message: bytes  # the server's message, to deliver to the client as it is
    assigned_addresses: tuple[IAAddress, ...]  # granted with valid lifetime > 0
    msg_type: int  # of the inner message


def interface_id_for_mac(mac: str) -> bytes:
    """The Interface-Id that names a station: its MAC address, six octets."""
    return mac_to_bytes(mac)


def mac_from_interface_id(interface_id: bytes) -> str | None:
    """The station's MAC from an Interface-Id we made, None for any other."""
    if len(interface_id) != 6:
        return None
    return mac_from_bytes(interface_id)


def link_address_for(lnp: IPv6Network) -> IPv6Address:
    """The link-address that selects ``lnp``'s pool: the prefix's first address.

    The server matches the link-address against its subnets (RFC 8415 13.1), so
    any address inside the LNP picks the right one.
    """
    return lnp.network_address


def relay_forward(
    client_payload: bytes,
    client_link_local: IPv6Address,
    lnp: IPv6Network,
    interface_id: bytes,
) -> bytes:
    """Wrap a station's DHCPv6 message in a Relay-Forward (RFC 8415 19.1.1).

    Raises ``Malformed`` for a payload that does not decode or that no relay
    forwards toward servers (a server's message sent by a station, or a
    Relay-Forward that has already been relayed ``HOP_COUNT_LIMIT`` times).
    """
    message = decode_message(client_payload)

    if isinstance(message, RelayMessage):
        # another relay on the access link: nest, counting the hop (RFC 8415 19.1.2)
        if message.msg_type != MessageType.RELAY_FORW:
            raise Malformed("DHCPv6: Relay-Reply from the access link is not relayed")
        if message.hop_count >= HOP_COUNT_LIMIT:
            raise Malformed(
                f"DHCPv6: Relay-Forward hop-count {message.hop_count} reached the limit"
            )
        hop_count = message.hop_count + 1
    else:
        if message.msg_type not in CLIENT_MESSAGE_TYPES:
            raise Malformed(
                f"DHCPv6: message type {message.msg_type} is not sent by clients"
            )
        hop_count = 0

    return encode_message(
        RelayMessage(
            MessageType.RELAY_FORW,
            hop_count,
            link_address_for(lnp),
            client_link_local,
            (
                Option(OptionCode.RELAY_MSG, client_payload),
                Option(OptionCode.INTERFACE_ID, interface_id),
            ),
        )
    )


def granted_addresses(message: ClientServerMessage) -> tuple[IAAddress, ...]:
    """Addresses a server message assigns: only a Reply grants (RFC 8415 18.2.10).

    An IA or address with a non-success status, and an address whose valid
    lifetime is 0 (the server withdrawing it, RFC 8415 18.3.4), are left out.
    """
    if message.msg_type not in _GRANTING:
        return ()
    status = message.status
    if status is not None and not status.success:
        return ()
    granted: list[IAAddress] = []
    for ia in message.ia_na:
        ia_status = ia.status
        if ia_status is not None and not ia_status.success:
            continue
        for address in ia.addresses:
            address_status = address.status
            if address_status is not None and not address_status.success:
                continue
            if address.valid_lifetime > 0:
                granted.append(address)
    return tuple(granted)


def relay_reply(payload: bytes) -> RelayedReply:
    """Unwrap a server's Relay-Reply (RFC 8415 19.2).

    Raises ``Malformed`` for anything but a Relay-Reply carrying a Relay Message
    option with a message for a client.
    """
    message = decode_message(payload)
    if not isinstance(message, RelayMessage) or (
        message.msg_type != MessageType.RELAY_REPL
    ):
        raise Malformed(f"DHCPv6: message type {payload[0]} is not a Relay-Reply")
    inner_bytes = message.relay_message
    if inner_bytes is None:
        raise Malformed("DHCPv6 Relay-Reply: no Relay Message option")

    inner = decode_message(inner_bytes)
    if isinstance(inner, RelayMessage):
        # we never nest our own Relay-Forwards; one level is all we sent
        raise Malformed("DHCPv6 Relay-Reply: relays a relay message")
    if inner.msg_type in CLIENT_MESSAGE_TYPES:
        raise Malformed(
            f"DHCPv6 Relay-Reply: relays client message type {inner.msg_type}"
        )

    return RelayedReply(
        message.interface_id,
        message.peer_address,
        inner_bytes,
        granted_addresses(inner),
        inner.msg_type,
    )


# --- the frame to the client ---------------------------------------------------


def udp6_datagram(
    src: IPv6Address, dst: IPv6Address, sport: int, dport: int, payload: bytes
) -> bytes:
    """A UDP header and payload with the checksum over the IPv6 pseudo-header."""
    length = 8 + len(payload)
    udp = struct.pack("!HHHH", sport, dport, length, 0) + payload
    checksum = upper_layer_checksum(src, dst, NH_UDP, udp)
    # a computed 0 is sent as all ones: 0 means "no checksum", which IPv6
    # forbids for UDP (RFC 8200 8.1)
    return struct.pack("!HHHH", sport, dport, length, checksum or 0xFFFF) + payload


def client_frame(
    message: bytes,
    *,
    src_mac: str,
    src_address: IPv6Address,
    dst_mac: str,
    dst_address: IPv6Address,
) -> bytes:
    """The Ethernet frame that delivers a server's message to a client.

    Sent from the MPA's virtual MAC and link-local address (seed 6.2), to the
    client's port 546 from port 547 (RFC 8415 19.2).
    """
    udp = udp6_datagram(src_address, dst_address, SERVER_PORT, CLIENT_PORT, message)
    ipv6 = (
        struct.pack("!IHBB", 6 << 28, len(udp), NH_UDP, RELAY_HOP_LIMIT)
        + src_address.packed
        + dst_address.packed
    )
    ethernet = (
        mac_to_bytes(dst_mac) + mac_to_bytes(src_mac) + struct.pack("!H", ETH_P_IPV6)
    )
    return ethernet + ipv6 + udp
