"""Frames on the access link: ND messages, MLD reports and DHCPv6 (RFC 4861).

The MPA watches its access link for the few frames that tell it about a mobile
station (seed 6.2, 6.3): Router Solicitations, Neighbor Solicitations (a DAD
probe names the LoA), Neighbor Advertisements, MLD reports (the first thing a
roaming host sends) and DHCPv6 requests. ``decode_frame`` turns one Ethernet
frame into a ``LinkFrame``; the builders return whole Ethernet frames with the
ICMPv6 checksum filled in and hop limit 255, ready for an AF_PACKET socket.

Decoding is strict about lengths and checksums (RFC 4861 6.1.1, 7.1.1: a bad
checksum or an option of length zero means the message is discarded) and raises
``Malformed`` naming the field. Checks that depend on policy, such as the hop
limit of 255 required of ND messages, are left to the caller: the frame carries
``hop_limit``.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Sequence
from dataclasses import dataclass, replace
from ipaddress import IPv6Address, IPv6Network

from pmip6.wire.errors import Malformed

ETH_P_IPV6 = 0x86DD
ETH_HEADER_LEN = 14
IPV6_HEADER_LEN = 40
NH_HOP_BY_HOP = 0
NH_UDP = 17
NH_ICMPV6 = 58
DHCPV6_CLIENT_PORT = 546
DHCPV6_SERVER_PORT = 547
ND_HOP_LIMIT = 255  # RFC 4861 6.1.1, 7.1.1: ND messages must arrive with 255

ALL_NODES = IPv6Address("ff02::1")
ALL_ROUTERS = IPv6Address("ff02::2")


class ICMPv6Type(enum.IntEnum):
    MLD_V1_REPORT = 131
    ROUTER_SOLICITATION = 133
    ROUTER_ADVERTISEMENT = 134
    NEIGHBOR_SOLICITATION = 135
    NEIGHBOR_ADVERTISEMENT = 136
    MLD_V2_REPORT = 143


class NDOptionType(enum.IntEnum):
    SOURCE_LINK_LAYER_ADDRESS = 1
    TARGET_LINK_LAYER_ADDRESS = 2
    PREFIX_INFORMATION = 3
    MTU = 5


class FrameKind(enum.Enum):
    ROUTER_SOLICITATION = "rs"
    NEIGHBOR_SOLICITATION = "ns"
    NEIGHBOR_ADVERTISEMENT = "na"
    ROUTER_ADVERTISEMENT = "ra"
    MLD_REPORT = "mld"  # MLDv1 report (131) or MLDv2 report (143)
    DHCPV6 = "dhcpv6"  # UDP from port 546 to port 547
    OTHER_ICMPV6 = "icmpv6"
    OTHER_IPV6 = "ipv6"


class RAFlags(enum.IntFlag):
    M = 0x80  # managed address configuration (RFC 4861 4.2)
    O = 0x40  # noqa: E741 - other configuration, the RFC's name


class NAFlags(enum.IntFlag):
    R = 0x80000000  # router (RFC 4861 4.4)
    S = 0x40000000  # solicited
    O = 0x20000000  # noqa: E741 - override, the RFC's name


_NO_NA_FLAGS = NAFlags(0)


@dataclass(frozen=True)
class LinkFrame:
    """One decoded frame from the access link.

    ``payload`` is the whole ICMPv6 message (from its Type octet) for ICMPv6
    kinds, the UDP payload for DHCPV6, and the upper-layer data after any
    Hop-by-Hop header for OTHER_IPV6. ``target`` is set for NS and NA;
    ``source_lladdr`` when a Source Link-layer Address option is present (RS,
    NS, RA), ``target_lladdr`` when a Target Link-layer Address option is (NA).
    """

    src_mac: str
    dst_mac: str
    src_ip: IPv6Address
    dst_ip: IPv6Address
    hop_limit: int
    kind: FrameKind
    payload: bytes
    next_header: int = NH_ICMPV6
    icmp_type: int | None = None
    icmp_code: int | None = None
    target: IPv6Address | None = None
    source_lladdr: str | None = None
    target_lladdr: str | None = None
    na_flags: NAFlags = _NO_NA_FLAGS


@dataclass(frozen=True)
class PrefixInformation:
    """The Prefix Information option (RFC 4861 4.6.2)."""

    prefix: IPv6Network
    on_link: bool = False  # L: the seed (6.2) sends L=0 so all goes to the router
    autonomous: bool = True  # A: form an address by SLAAC
    valid_lifetime: int = 0xFFFFFFFF
    preferred_lifetime: int = 0xFFFFFFFF


@dataclass(frozen=True)
class RouterAdvertisement:
    """A decoded Router Advertisement (RFC 4861 4.2), options included."""

    cur_hop_limit: int
    managed: bool
    other: bool
    router_lifetime: int
    reachable_time: int
    retrans_timer: int
    source_lladdr: str | None = None
    mtu: int | None = None
    prefixes: tuple[PrefixInformation, ...] = ()


# --- addresses ------------------------------------------------------------------


def normalise_mac(mac: str) -> str:
    """``mac`` in lowercase colon form; accepts ``-`` or ``:`` separators or none.

    Raises ``ValueError`` for anything that is not 6 octets.
    """
    digits = mac.strip().lower().replace(":", "").replace("-", "").replace(".", "")
    if len(digits) != 12 or any(c not in "0123456789abcdef" for c in digits):
        raise ValueError(f"not a MAC address: {mac!r}")
    return ":".join(digits[i : i + 2] for i in range(0, 12, 2))


def mac_to_bytes(mac: str) -> bytes:
    """The 6 octets of a MAC address given in any form ``normalise_mac`` takes."""
    return bytes.fromhex(normalise_mac(mac).replace(":", ""))


def mac_from_bytes(octets: bytes) -> str:
    return ":".join(f"{b:02x}" for b in octets)


def multicast_mac(ip: IPv6Address) -> str:
    """The Ethernet group address for an IPv6 multicast address (RFC 2464 7)."""
    return "33:33:" + mac_from_bytes(ip.packed[12:16])


def solicited_node(ip: IPv6Address) -> IPv6Address:
    """The solicited-node multicast address of ``ip`` (RFC 4291 2.7.1)."""
    return IPv6Address(b"\xff\x02" + bytes(9) + b"\x01\xff" + ip.packed[13:16])


def modified_eui64(mac: str) -> int:
    """The modified EUI-64 interface identifier of a MAC (RFC 4291 appendix A).

    ff:fe goes in the middle and the universal/local bit is inverted: what a
    stock SLAAC host (addr_gen_mode 0) puts after a /64 prefix.
    """
    octets = bytearray(mac_to_bytes(mac))
    octets[0] ^= 0x02
    return int.from_bytes(octets[:3] + b"\xff\xfe" + octets[3:], "big")


# --- MLD reports ------------------------------------------------------------------

# RFC 3810 5.2.12 record types
MLD2_MODE_IS_INCLUDE = 1
MLD2_MODE_IS_EXCLUDE = 2
MLD2_CHANGE_TO_INCLUDE = 3
MLD2_CHANGE_TO_EXCLUDE = 4
MLD2_ALLOW_NEW_SOURCES = 5
MLD2_BLOCK_OLD_SOURCES = 6


@dataclass(frozen=True)
class MldReport:
    """The groups an MLD report says the sender listens to, or has left."""

    joined: tuple[IPv6Address, ...] = ()
    left: tuple[IPv6Address, ...] = ()


def decode_mld_report(icmp: bytes) -> MldReport:
    """Decode an MLDv1 (RFC 2710 3) or MLDv2 (RFC 3810 5.2) report; raise
    ``Malformed``.

    ``icmp`` is the whole ICMPv6 message (``LinkFrame.payload``). An MLDv2
    record in EXCLUDE mode, or in INCLUDE mode with sources, means listening;
    INCLUDE with no source means the group was left (RFC 3810 6.1); a BLOCK
    record changes nothing that matters here.
    """
    if len(icmp) < 8:
        raise Malformed(f"MLD report: {len(icmp)} octets, header truncated")
    if icmp[0] == ICMPv6Type.MLD_V1_REPORT:
        if len(icmp) < 24:
            raise Malformed(f"MLDv1 report: {len(icmp)} octets, fewer than 24")
        return MldReport(joined=(IPv6Address(icmp[8:24]),))
    if icmp[0] != ICMPv6Type.MLD_V2_REPORT:
        raise Malformed(f"MLD report: ICMPv6 type {icmp[0]} is not a report")

    (count,) = struct.unpack_from("!H", icmp, 6)
    joined: list[IPv6Address] = []
    left: list[IPv6Address] = []
    offset = 8
    for i in range(count):
        if offset + 20 > len(icmp):
            raise Malformed(f"MLDv2 report: record {i} truncated")
        record_type, aux_len, sources = struct.unpack_from("!BBH", icmp, offset)
        group = IPv6Address(icmp[offset + 4 : offset + 20])
        offset += 20 + 16 * sources + 4 * aux_len
        if offset > len(icmp):
            raise Malformed(f"MLDv2 report: record {i} exceeds the message")
        if record_type in (MLD2_MODE_IS_EXCLUDE, MLD2_CHANGE_TO_EXCLUDE) or (
            record_type
            in (MLD2_MODE_IS_INCLUDE, MLD2_CHANGE_TO_INCLUDE, MLD2_ALLOW_NEW_SOURCES)
            and sources > 0
        ):
            joined.append(group)
        elif record_type in (MLD2_MODE_IS_INCLUDE, MLD2_CHANGE_TO_INCLUDE):
            left.append(group)
    return MldReport(joined=tuple(joined), left=tuple(left))


# --- checksums ------------------------------------------------------------------


def _ones_complement_sum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def upper_layer_checksum(
    src: IPv6Address, dst: IPv6Address, next_header: int, data: bytes
) -> int:
    """The RFC 8200 8.1 checksum of ``data`` (checksum field zeroed or not).

    Over a message whose checksum field holds the right value this returns 0.
    """
    pseudo = src.packed + dst.packed + struct.pack("!IxxxB", len(data), next_header)
    return (~_ones_complement_sum(pseudo + data)) & 0xFFFF


# --- decoding -------------------------------------------------------------------


def _nd_options(data: bytes, what: str) -> dict[int, list[bytes]]:
    """Options of an ND message by type; each value is the option's body."""
    options: dict[int, list[bytes]] = {}
    offset = 0
    while offset < len(data):
        if len(data) - offset < 2:
            raise Malformed(f"{what}: option header truncated at offset {offset}")
        kind, length = data[offset], data[offset + 1]
        # RFC 4861 4.6: a length of zero is invalid and the packet is discarded
        if length == 0:
            raise Malformed(f"{what}: option {kind} has Length 0")
        end = offset + length * 8
        if end > len(data):
            raise Malformed(f"{what}: option {kind} Length {length} exceeds message")
        options.setdefault(kind, []).append(data[offset + 2 : end])
        offset = end
    return options


def _lladdr(options: dict[int, list[bytes]], kind: int, what: str) -> str | None:
    bodies = options.get(kind)
    if not bodies:
        return None
    if len(bodies[0]) < 6:
        raise Malformed(f"{what}: link-layer address option too short")
    return mac_from_bytes(bodies[0][:6])


def _decode_prefix_information(body: bytes) -> PrefixInformation:
    # RFC 4861 4.6.2: Length must be 4 (32 octets, 30 after Type and Length)
    if len(body) != 30:
        raise Malformed(f"Prefix Information: Length {(len(body) + 2) // 8} is not 4")
    prefix_length, flags, valid, preferred = struct.unpack_from("!BBII", body)
    if prefix_length > 128:
        raise Malformed(f"Prefix Information: Prefix Length {prefix_length} > 128")
    prefix = IPv6Network((IPv6Address(body[14:30]), prefix_length), strict=False)
    return PrefixInformation(
        prefix=prefix,
        on_link=bool(flags & 0x80),
        autonomous=bool(flags & 0x40),
        valid_lifetime=valid,
        preferred_lifetime=preferred,
    )


def decode_router_advertisement(icmp: bytes) -> RouterAdvertisement:
    """Decode an RA from its ICMPv6 Type octet on (checksum not verified)."""
    if len(icmp) < 16:
        raise Malformed(f"RA: {len(icmp)} octets, fewer than 16")
    if icmp[0] != ICMPv6Type.ROUTER_ADVERTISEMENT:
        raise Malformed(f"RA: Type {icmp[0]} is not 134")
    cur_hop_limit, flags, lifetime, reachable, retrans = struct.unpack_from(
        "!BBHII", icmp, 4
    )
    options = _nd_options(icmp[16:], "RA")

    mtu = None
    if NDOptionType.MTU in options:
        body = options[NDOptionType.MTU][0]
        if len(body) != 6:
            raise Malformed("RA: MTU option Length is not 1")
        (mtu,) = struct.unpack_from("!xxI", body)
    prefixes = tuple(
        _decode_prefix_information(body)
        for body in options.get(NDOptionType.PREFIX_INFORMATION, [])
    )
    return RouterAdvertisement(
        cur_hop_limit=cur_hop_limit,
        managed=bool(flags & RAFlags.M),
        other=bool(flags & RAFlags.O),
        router_lifetime=lifetime,
        reachable_time=reachable,
        retrans_timer=retrans,
        source_lladdr=_lladdr(options, NDOptionType.SOURCE_LINK_LAYER_ADDRESS, "RA"),
        mtu=mtu,
        prefixes=prefixes,
    )


# minimum length of each ND message and where its options start (RFC 4861 4.1-4.4)
_ND_LAYOUT = {
    ICMPv6Type.ROUTER_SOLICITATION: (8, "RS", FrameKind.ROUTER_SOLICITATION),
    ICMPv6Type.ROUTER_ADVERTISEMENT: (16, "RA", FrameKind.ROUTER_ADVERTISEMENT),
    ICMPv6Type.NEIGHBOR_SOLICITATION: (24, "NS", FrameKind.NEIGHBOR_SOLICITATION),
    ICMPv6Type.NEIGHBOR_ADVERTISEMENT: (24, "NA", FrameKind.NEIGHBOR_ADVERTISEMENT),
}


def decode_frame(frame: bytes, verify_checksum: bool = True) -> LinkFrame:
    """Decode one Ethernet frame from the access link; raise ``Malformed``.

    ``verify_checksum=False`` is for frames whose checksum the kernel has not
    filled in yet (checksum offload between virtual interfaces: a packet
    socket then reports TP_STATUS_CSUMNOTREADY and the field holds only the
    pseudo-header sum); everything else is still checked.
    """
    if len(frame) < ETH_HEADER_LEN:
        raise Malformed(f"Ethernet: {len(frame)} octets, header truncated")
    dst_mac = mac_from_bytes(frame[0:6])
    src_mac = mac_from_bytes(frame[6:12])
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    if ethertype != ETH_P_IPV6:
        raise Malformed(f"Ethernet: EtherType {ethertype:#06x} is not IPv6")

    ip = frame[ETH_HEADER_LEN:]
    if len(ip) < IPV6_HEADER_LEN:
        raise Malformed(f"IPv6: {len(ip)} octets, header truncated")
    if ip[0] >> 4 != 6:
        raise Malformed(f"IPv6: Version {ip[0] >> 4} is not 6")
    payload_length, next_header, hop_limit = struct.unpack_from("!HBB", ip, 4)
    src_ip = IPv6Address(ip[8:24])
    dst_ip = IPv6Address(ip[24:40])
    if IPV6_HEADER_LEN + payload_length > len(ip):
        raise Malformed(f"IPv6: Payload Length {payload_length} exceeds the frame")
    # frames shorter than 60 octets are padded by Ethernet: drop the padding
    upper = ip[IPV6_HEADER_LEN : IPV6_HEADER_LEN + payload_length]

    # MLD reports carry a Hop-by-Hop header with Router Alert (RFC 3810 5)
    if next_header == NH_HOP_BY_HOP:
        if len(upper) < 2:
            raise Malformed("Hop-by-Hop: header truncated")
        hbh_len = (upper[1] + 1) * 8
        if hbh_len > len(upper):
            raise Malformed(f"Hop-by-Hop: Hdr Ext Len {upper[1]} exceeds payload")
        next_header = upper[0]
        upper = upper[hbh_len:]

    base = LinkFrame(
        src_mac=src_mac,
        dst_mac=dst_mac,
        src_ip=src_ip,
        dst_ip=dst_ip,
        hop_limit=hop_limit,
        kind=FrameKind.OTHER_IPV6,
        payload=upper,
        next_header=next_header,
    )
    if next_header == NH_ICMPV6:
        return _decode_icmpv6(base, verify_checksum)
    if next_header == NH_UDP:
        return _decode_udp(base, verify_checksum)
    return base


def _decode_icmpv6(base: LinkFrame, verify_checksum: bool) -> LinkFrame:
    icmp = base.payload
    if len(icmp) < 4:
        raise Malformed(f"ICMPv6: {len(icmp)} octets, header truncated")
    if verify_checksum and upper_layer_checksum(
        base.src_ip, base.dst_ip, NH_ICMPV6, icmp
    ):
        raise Malformed("ICMPv6: Checksum does not verify")
    icmp_type, icmp_code = icmp[0], icmp[1]
    frame = replace(
        base, kind=FrameKind.OTHER_ICMPV6, icmp_type=icmp_type, icmp_code=icmp_code
    )

    if icmp_type in (ICMPv6Type.MLD_V1_REPORT, ICMPv6Type.MLD_V2_REPORT):
        return replace(frame, kind=FrameKind.MLD_REPORT)
    if icmp_type not in _ND_LAYOUT:
        return frame

    minimum, what, kind = _ND_LAYOUT[ICMPv6Type(icmp_type)]
    if len(icmp) < minimum:
        raise Malformed(f"{what}: {len(icmp)} octets, fewer than {minimum}")
    options = _nd_options(icmp[minimum:], what)
    frame = replace(
        frame,
        kind=kind,
        source_lladdr=_lladdr(options, NDOptionType.SOURCE_LINK_LAYER_ADDRESS, what),
    )
    if kind is FrameKind.NEIGHBOR_SOLICITATION:
        frame = replace(frame, target=IPv6Address(icmp[8:24]))
    elif kind is FrameKind.NEIGHBOR_ADVERTISEMENT:
        (flags,) = struct.unpack_from("!I", icmp, 4)
        frame = replace(
            frame,
            target=IPv6Address(icmp[8:24]),
            na_flags=NAFlags(flags & 0xE0000000),
            target_lladdr=_lladdr(
                options, NDOptionType.TARGET_LINK_LAYER_ADDRESS, what
            ),
        )
    elif kind is FrameKind.ROUTER_ADVERTISEMENT:
        decode_router_advertisement(icmp)  # its options must be well formed too
    return frame


def _decode_udp(base: LinkFrame, verify_checksum: bool) -> LinkFrame:
    udp = base.payload
    if len(udp) < 8:
        raise Malformed(f"UDP: {len(udp)} octets, header truncated")
    src_port, dst_port, length, checksum = struct.unpack_from("!HHHH", udp)
    if length < 8 or length > len(udp):
        raise Malformed(f"UDP: Length {length} does not fit {len(udp)} octets")
    udp = udp[:length]
    if src_port != DHCPV6_CLIENT_PORT or dst_port != DHCPV6_SERVER_PORT:
        return replace(base, payload=udp)
    # RFC 8200 8.1: a zero UDP checksum is not allowed over IPv6
    if verify_checksum and (
        checksum == 0 or upper_layer_checksum(base.src_ip, base.dst_ip, NH_UDP, udp)
    ):
        raise Malformed("UDP: Checksum does not verify")
    return replace(base, kind=FrameKind.DHCPV6, payload=udp[8:])


# --- building -------------------------------------------------------------------


def icmpv6_frame(
    *,
    src_mac: str,
    dst_mac: str,
    src_ip: IPv6Address,
    dst_ip: IPv6Address,
    icmp: bytes,
    hop_limit: int = ND_HOP_LIMIT,
) -> bytes:
    """A whole Ethernet frame around ``icmp`` (checksum field zero), checksum set."""
    checksum = upper_layer_checksum(src_ip, dst_ip, NH_ICMPV6, icmp)
    icmp = icmp[:2] + struct.pack("!H", checksum) + icmp[4:]
    ip = (
        struct.pack("!IHBB", 6 << 28, len(icmp), NH_ICMPV6, hop_limit)
        + src_ip.packed
        + dst_ip.packed
    )
    eth = mac_to_bytes(dst_mac) + mac_to_bytes(src_mac) + struct.pack("!H", ETH_P_IPV6)
    return eth + ip + icmp


def _lladdr_option(kind: NDOptionType, mac: str) -> bytes:
    return struct.pack("!BB", kind, 1) + mac_to_bytes(mac)


def _prefix_option(info: PrefixInformation) -> bytes:
    flags = (0x80 if info.on_link else 0) | (0x40 if info.autonomous else 0)
    return (
        struct.pack(
            "!BBBBIII",
            NDOptionType.PREFIX_INFORMATION,
            4,
            info.prefix.prefixlen,
            flags,
            info.valid_lifetime,
            info.preferred_lifetime,
            0,
        )
        + info.prefix.network_address.packed
    )


def router_advertisement(
    *,
    src_mac: str,
    src_ip: IPv6Address,
    dst_mac: str,
    dst_ip: IPv6Address,
    cur_hop_limit: int = 64,
    managed: bool = False,
    other: bool = False,
    router_lifetime: int = 1800,
    reachable_time: int = 0,
    retrans_timer: int = 0,
    prefixes: Sequence[PrefixInformation] = (),
    mtu: int | None = None,
) -> bytes:
    """A Router Advertisement frame (RFC 4861 4.2) with SLLA, PIOs and MTU.

    The seed (6.2) sends it unicast to one MS (``dst_mac``/``dst_ip``), from
    the virtual MAC and link-local address shared by every MPA.
    """
    if not 0 <= router_lifetime <= 0xFFFF:
        raise ValueError(f"router_lifetime {router_lifetime} does not fit 16 bits")
    flags = (RAFlags.M if managed else 0) | (RAFlags.O if other else 0)
    body = struct.pack(
        "!BBHBBHII",
        ICMPv6Type.ROUTER_ADVERTISEMENT,
        0,
        0,
        cur_hop_limit,
        int(flags),
        router_lifetime,
        reachable_time,
        retrans_timer,
    )
    body += _lladdr_option(NDOptionType.SOURCE_LINK_LAYER_ADDRESS, src_mac)
    if mtu is not None:
        body += struct.pack("!BBxxI", NDOptionType.MTU, 1, mtu)
    for info in prefixes:
        body += _prefix_option(info)
    return icmpv6_frame(
        src_mac=src_mac, dst_mac=dst_mac, src_ip=src_ip, dst_ip=dst_ip, icmp=body
    )


def neighbor_advertisement(
    *,
    src_mac: str,
    src_ip: IPv6Address,
    dst_mac: str,
    dst_ip: IPv6Address,
    target: IPv6Address,
    router: bool = True,
    solicited: bool = True,
    override: bool = True,
    target_lladdr: str | None = None,
) -> bytes:
    """A Neighbor Advertisement frame (RFC 4861 4.4).

    The Target Link-layer Address option carries ``target_lladdr``, by default
    ``src_mac``.
    """
    flags = (
        (NAFlags.R if router else 0)
        | (NAFlags.S if solicited else 0)
        | (NAFlags.O if override else 0)
    )
    body = struct.pack("!BBHI", ICMPv6Type.NEIGHBOR_ADVERTISEMENT, 0, 0, int(flags))
    body += target.packed
    body += _lladdr_option(
        NDOptionType.TARGET_LINK_LAYER_ADDRESS, target_lladdr or src_mac
    )
    return icmpv6_frame(
        src_mac=src_mac, dst_mac=dst_mac, src_ip=src_ip, dst_ip=dst_ip, icmp=body
    )


def neighbor_solicitation(
    *,
    src_mac: str,
    src_ip: IPv6Address,
    dst_mac: str,
    dst_ip: IPv6Address,
    target: IPv6Address | None = None,
) -> bytes:
    """A Neighbor Solicitation frame (RFC 4861 4.3) with a Source Link-layer
    Address option (``src_mac``).

    For a unicast reachability probe pass the MS's MAC and address; ``target``
    defaults to ``dst_ip``. (A DAD probe from :: would carry no SLLA; we never
    send one.)
    """
    body = struct.pack("!BBHI", ICMPv6Type.NEIGHBOR_SOLICITATION, 0, 0, 0)
    body += (target or dst_ip).packed
    body += _lladdr_option(NDOptionType.SOURCE_LINK_LAYER_ADDRESS, src_mac)
    return icmpv6_frame(
        src_mac=src_mac, dst_mac=dst_mac, src_ip=src_ip, dst_ip=dst_ip, icmp=body
    )
