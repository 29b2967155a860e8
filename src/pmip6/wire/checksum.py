"""The Internet checksum (RFC 1071) and the IPv6 upper-layer checksum.

The Mobility Header checksum (RFC 6275 6.1) covers the IPv6 pseudo-header
(RFC 8200 8.1: source, destination, 32-bit upper-layer length, three zero
octets, next header) followed by the message with its checksum field zeroed.

The one's complement sum of 16-bit words is computed as one big integer modulo
0xFFFF: since 2**16 is 1 modulo 0xFFFF, every word weighs the same whatever its
position, so the whole buffer reduces in a single C-level operation instead of
a Python loop over words.
"""

from __future__ import annotations

from ipaddress import IPv6Address

_ONES = 0xFFFF


def ones_complement_sum(data: bytes) -> int:
    """The 16-bit one's complement sum of ``data`` (zero-padded to even length).

    Returns 0 only for all-zero data; a sum congruent to zero over non-zero
    data is 0xFFFF ("negative zero"), as an end-around-carry adder gives.
    """
    if len(data) & 1:
        data = data + b"\0"
    total = int.from_bytes(data, "big")
    if total == 0:
        return 0
    return total % _ONES or _ONES


def internet_checksum(data: bytes) -> int:
    """The RFC 1071 checksum of ``data``: the complement of its one's sum."""
    return ~ones_complement_sum(data) & _ONES


def _pseudo_header_sum(
    src: IPv6Address, dst: IPv6Address, length: int, next_header: int
) -> int:
    # each part is a whole number of 16-bit words, so their sums simply add
    return int(src) + int(dst) + length + next_header


def ipv6_checksum(
    src: IPv6Address, dst: IPv6Address, next_header: int, data: bytes
) -> int:
    """The checksum of ``data`` (checksum field zeroed) under the pseudo-header."""
    if len(data) & 1:
        body = int.from_bytes(data, "big") << 8
    else:
        body = int.from_bytes(data, "big")
    total = (_pseudo_header_sum(src, dst, len(data), next_header) + body) % _ONES
    # total is never the all-zero sum here (the next header is not zero), so a
    # zero remainder means the sum is 0xFFFF and the checksum is 0
    return _ONES - total if total else 0


def ipv6_checksum_ok(
    src: IPv6Address, dst: IPv6Address, next_header: int, data: bytes
) -> bool:
    """True if ``data`` (checksum in place) sums to 0xFFFF with the pseudo-header.

    Both representations of zero in the checksum field (0x0000 and 0xFFFF)
    are accepted, as one's complement arithmetic makes them equal.
    """
    if len(data) & 1:
        body = int.from_bytes(data, "big") << 8
    else:
        body = int.from_bytes(data, "big")
    total = _pseudo_header_sum(src, dst, len(data), next_header) + body
    return total % _ONES == 0
