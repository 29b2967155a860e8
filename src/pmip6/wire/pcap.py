"""Finding Mobility Headers in captured frames, and writing small pcap files.

Reading walks a frame down to its IPv6 header (Ethernet with VLAN tags, Linux
cooked SLL and SLL2, raw IP, BSD loopback, IPv6 in IPv4), then along the IPv6
extension header chain (RFC 8200 4) to next header 135. The walk also notes
what changes the checksum's pseudo-header (RFC 8200 8.1): the final destination
of a routing header and the Home Address destination option (RFC 6275 6.3).

Writing produces classic little-endian pcap files, for tests and tools that
hand frames to tshark or tcpdump.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from dataclasses import dataclass
from ipaddress import IPv6Address
from pathlib import Path

# link-layer header types (tcpdump.org/linktypes.html)
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276
# DLT_RAW as some systems number it in files
_RAW_ALIASES = {12, 14, LINKTYPE_RAW, LINKTYPE_IPV4, LINKTYPE_IPV6}

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
_VLAN_ETHERTYPES = {0x8100, 0x88A8, 0x9100}
# BSD loopback address families for IPv6 (Linux, BSDs, Darwin)
_AF_INET6 = {10, 24, 28, 30}

NEXT_HEADER_MH = 135
_HOP_BY_HOP = 0
_ROUTING = 43
_FRAGMENT = 44
_AH = 51
_NO_NEXT_HEADER = 59
_DESTINATION = 60
_IPV6_IN_IP = 41
_HOME_ADDRESS_OPTION = 201  # RFC 6275 6.3

_U16 = struct.Struct("!H")


class NotMobility(Exception):
    """The frame holds no Mobility Header; the message says what it holds."""


class FrameError(Exception):
    """The frame is cut short or broken before its Mobility Header."""


@dataclass(frozen=True)
class MobilityPacket:
    """A Mobility Header found in a frame, with its IPv6 addresses."""

    src: IPv6Address
    dst: IPv6Address
    mh: bytes  # from Payload Proto to the end of the IPv6 payload
    # the addresses the checksum covers (RFC 8200 8.1, RFC 6275 6.3)
    checksum_src: IPv6Address
    checksum_dst: IPv6Address


def _network_layer(linktype: int, frame: bytes) -> tuple[int, int]:
    """(ethertype, offset) of the network header in ``frame``."""
    if linktype == LINKTYPE_ETHERNET:
        offset, ethertype = 14, _ethertype(frame, 12)
        while ethertype in _VLAN_ETHERTYPES:
            ethertype = _ethertype(frame, offset + 2)
            offset += 4
        return ethertype, offset
    if linktype == LINKTYPE_LINUX_SLL:
        return _ethertype(frame, 14), 16
    if linktype == LINKTYPE_LINUX_SLL2:
        return _ethertype(frame, 0), 20
    if linktype in (LINKTYPE_NULL, LINKTYPE_LOOP):
        if len(frame) < 4:
            raise FrameError("loopback header cut short")
        # the family is in host byte order of the capturing machine: try both
        family = frame[0] | frame[3]
        return (ETHERTYPE_IPV6 if family in _AF_INET6 else 0), 4
    if linktype in _RAW_ALIASES:
        if not frame:
            raise FrameError("empty frame")
        version = frame[0] >> 4
        ethertype = {4: ETHERTYPE_IPV4, 6: ETHERTYPE_IPV6}.get(version, 0)
        return ethertype, 0
    raise NotMobility(f"link type {linktype} not supported")


def _ethertype(frame: bytes, offset: int) -> int:
    if len(frame) < offset + 2:
        raise FrameError("link-layer header cut short")
    return int(_U16.unpack_from(frame, offset)[0])


def find_mobility_header(linktype: int, frame: bytes) -> MobilityPacket:
    """The Mobility Header in ``frame``.

    Raises ``NotMobility`` for any other packet and ``FrameError`` for a frame
    cut short (a small snap length) or broken before the Mobility Header.
    """
    ethertype, offset = _network_layer(linktype, frame)
    if ethertype == ETHERTYPE_IPV4:
        offset = _ipv4_tunnel(frame, offset)
    elif ethertype != ETHERTYPE_IPV6:
        raise NotMobility(f"ethertype 0x{ethertype:04x}")
    return _ipv6(frame, offset)


def _ipv4_tunnel(frame: bytes, offset: int) -> int:
    """The offset of an IPv6 packet carried in IPv4 (protocol 41)."""
    if len(frame) < offset + 20:
        raise FrameError("IPv4 header cut short")
    if frame[offset + 9] != _IPV6_IN_IP:
        raise NotMobility(f"IPv4 protocol {frame[offset + 9]}")
    return offset + (frame[offset] & 0x0F) * 4


def _ipv6(frame: bytes, offset: int) -> MobilityPacket:
    if len(frame) < offset + 40:
        raise FrameError("IPv6 header cut short")
    if frame[offset] >> 4 != 6:
        raise NotMobility(f"IP version {frame[offset] >> 4}")
    payload_length = _U16.unpack_from(frame, offset + 4)[0]
    end = offset + 40 + payload_length
    if len(frame) < end:
        raise FrameError(
            f"IPv6 payload of {payload_length} octets, {len(frame) - offset - 40} "
            "captured"
        )
    src = IPv6Address(frame[offset + 8 : offset + 24])
    dst = IPv6Address(frame[offset + 24 : offset + 40])
    checksum_src, checksum_dst = src, dst
    next_header = frame[offset + 6]
    pos = offset + 40

    # RFC 8200 4.1: follow the chain of extension headers
    while next_header != NEXT_HEADER_MH:
        if next_header == _IPV6_IN_IP:
            return _ipv6(frame[:end], pos)
        if next_header in (_HOP_BY_HOP, _ROUTING, _DESTINATION, _AH, _FRAGMENT):
            if pos + 8 > end:
                raise FrameError(f"extension header {next_header} cut short")
            if next_header == _FRAGMENT:
                size = 8
                # only an unfragmented packet (offset 0, M clear) can be read
                if _U16.unpack_from(frame, pos + 2)[0] & 0xFFF9:
                    raise NotMobility("IPv6 fragment")
            elif next_header == _AH:
                size = (frame[pos + 1] + 2) * 4
            else:
                size = (frame[pos + 1] + 1) * 8
            if pos + size > end:
                raise FrameError(f"extension header {next_header} cut short")
            if next_header == _ROUTING:
                checksum_dst = _final_destination(frame, pos, size, checksum_dst)
            elif next_header == _DESTINATION:
                checksum_src = _home_address(frame, pos, size, checksum_src)
            next_header = frame[pos]
            pos += size
            continue
        if next_header == _NO_NEXT_HEADER:
            raise NotMobility("IPv6, no next header")
        raise NotMobility(f"IPv6 next header {next_header}")
    return MobilityPacket(src, dst, frame[pos:end], checksum_src, checksum_dst)


def _final_destination(
    frame: bytes, pos: int, size: int, dst: IPv6Address
) -> IPv6Address:
    """The last hop of a routing header (RFC 8200 8.1) that still has hops."""
    routing_type, segments_left = frame[pos + 2], frame[pos + 3]
    if segments_left == 0:
        return dst
    if routing_type in (0, 2) and size >= 24:  # addresses from offset 8, last wins
        return IPv6Address(frame[pos + size - 16 : pos + size])
    if routing_type == 4 and size >= 24:  # SRH: segment list[0] is the last
        return IPv6Address(frame[pos + 8 : pos + 24])
    return dst


def _home_address(frame: bytes, pos: int, size: int, src: IPv6Address) -> IPv6Address:
    """The Home Address destination option's address, if present (6275 6.3)."""
    i, end = pos + 2, pos + size
    while i < end:
        option_type = frame[i]
        if option_type == 0:
            i += 1
            continue
        if i + 2 > end:
            break
        length = frame[i + 1]
        if option_type == _HOME_ADDRESS_OPTION and length == 16 and i + 18 <= end:
            return IPv6Address(frame[i + 2 : i + 18])
        i += 2 + length
    return src


# --- writing ------------------------------------------------------------------------

_PCAP_HEADER = struct.Struct("<IHHiIII")
_PCAP_RECORD = struct.Struct("<IIII")
_PCAP_MAGIC = 0xA1B2C3D4


def ipv6_packet(
    src: IPv6Address,
    dst: IPv6Address,
    next_header: int,
    payload: bytes,
    hop_limit: int = 64,
) -> bytes:
    """An IPv6 header followed by ``payload``."""
    header = struct.pack("!IHBB", 6 << 28, len(payload), next_header, hop_limit)
    return header + src.packed + dst.packed + payload


def ethernet_frame(
    payload: bytes,
    ethertype: int = ETHERTYPE_IPV6,
    src_mac: bytes = b"\x02\0\0\0\0\x01",
    dst_mac: bytes = b"\x02\0\0\0\0\x02",
) -> bytes:
    """An Ethernet II frame around ``payload``."""
    return dst_mac + src_mac + _U16.pack(ethertype) + payload


def write_pcap(
    path: Path | str,
    frames: Iterable[bytes],
    linktype: int = LINKTYPE_ETHERNET,
    start: float = 0.0,
) -> int:
    """Write ``frames`` to a pcap file, one millisecond apart; return the count."""
    count = 0
    with open(path, "wb") as out:
        out.write(_PCAP_HEADER.pack(_PCAP_MAGIC, 2, 4, 0, 0, 65535, linktype))
        for count, frame in enumerate(frames, 1):
            micros = round(start * 1e6) + (count - 1) * 1000
            out.write(
                _PCAP_RECORD.pack(
                    micros // 1_000_000, micros % 1_000_000, len(frame), len(frame)
                )
            )
            out.write(frame)
    return count
