"""Mobility Header codec speed: ours beside a bare struct baseline and scapy.

A typical PBU (NAI, home network prefix, timestamp) and its PBA are encoded and
decoded by three codecs in one run:

- ours: ``pmip6.wire.mh.encode_mh``/``decode_mh`` (dataclasses, strict checks);
- struct: hand-rolled ``struct`` pack/unpack of the same fields into tuples,
  with no validation beyond what unpacking needs (the floor for pure Python);
- scapy: ``MIP6MH_BU``/``MIP6MH_BA`` (the HNP and timestamp as unknown options).

Prints microseconds per operation and the ratios ours/struct and scapy/ours.
Run: ``.venv/bin/python bench/codec.py``.
"""

from __future__ import annotations

import logging
import struct
import time
import timeit
from collections.abc import Callable
from ipaddress import IPv6Address

from pmip6.wire.mh import (
    BAFlags,
    BindingAcknowledgement,
    BindingUpdate,
    BUFlags,
    HomeNetworkPrefix,
    MobileNodeIdentifier,
    Timestamp,
    decode_mh,
    encode_mh,
)
from pmip6.wire.profile import RFC5213

MAG = IPv6Address("fd00::11")
LMA = IPv6Address("fd00::1")
NAI = b"ms1@example.net"
PREFIX = IPv6Address("2001:db8:1:1::")
STAMP = 0x6553F1008000

OPTIONS = (
    MobileNodeIdentifier(NAI),
    HomeNetworkPrefix(64, PREFIX),
    Timestamp(STAMP),
)
PBU = BindingUpdate(7, BUFlags.A | BUFlags.H | BUFlags.P, 75, OPTIONS)
PBA = BindingAcknowledgement(0, BAFlags.P, 7, 75, OPTIONS)


# --- the struct baseline: the same octets, fields as plain tuples ---------------------

_FIXED_BU = struct.Struct("!BBBBHHHH")
_FIXED_BA = struct.Struct("!BBBBHBBHH")
_HNP = struct.Struct("!BBBB16s")
_TS = struct.Struct("!BBQ")
_PADN4 = b"\x01\x02\x00\x00"
_PADN2 = b"\x01\x00"


def _options_struct(nai: bytes, prefix_length: int, prefix: bytes, stamp: int) -> bytes:
    # NAI from 12, PadN to 8n+4 for the prefix, PadN to 8n+2 for the timestamp
    mnid = bytes((8, len(nai) + 1, 1)) + nai
    zeros = (4 - (12 + len(mnid) + 2)) % 8  # PadN data before the prefix option
    out = mnid + bytes((1, zeros)) + bytes(zeros)
    out += _HNP.pack(22, 18, 0, prefix_length, prefix)
    out += _PADN2 + _TS.pack(27, 8, stamp)
    pad = -(12 + len(out)) % 8
    return out + (b"\0" if pad == 1 else bytes((1, pad - 2)) + bytes(pad - 2))


def struct_encode_pbu() -> bytes:
    body = _options_struct(NAI, 64, PREFIX.packed, STAMP)
    header_len = (12 + len(body)) // 8 - 1
    return _FIXED_BU.pack(59, header_len, 5, 0, 0, 7, 0xC200, 75) + body


def struct_encode_pba() -> bytes:
    body = _options_struct(NAI, 64, PREFIX.packed, STAMP)
    header_len = (12 + len(body)) // 8 - 1
    return _FIXED_BA.pack(59, header_len, 6, 0, 0, 0, 0x20, 7, 75) + body


def _walk_struct(data: bytes, pos: int) -> list[tuple[int, bytes]]:
    options = []
    end = len(data)
    while pos < end:
        kind = data[pos]
        if kind == 0:
            pos += 1
            continue
        length = data[pos + 1]
        if kind != 1:
            options.append((kind, data[pos + 2 : pos + 2 + length]))
        pos += 2 + length
    return options


def struct_decode_pbu(data: bytes) -> tuple[object, ...]:
    _, _, _, _, _checksum, sequence, flags, lifetime = _FIXED_BU.unpack_from(data)
    return sequence, flags, lifetime, _walk_struct(data, 12)


def struct_decode_pba(data: bytes) -> tuple[object, ...]:
    fields = _FIXED_BA.unpack_from(data)
    return fields[5], fields[6], fields[7], fields[8], _walk_struct(data, 12)


# --- scapy ---------------------------------------------------------------------------


def scapy_codecs() -> dict[str, Callable[[], object]] | None:
    try:
        logging.getLogger("scapy.runtime").setLevel(logging.ERROR)
        from scapy.layers import inet6
    except ImportError:
        return None
    options = [
        inet6.MIP6OptMNID(subtype=1, id=NAI),
        inet6.MIP6OptUnknown(otype=22, odata=bytes((0, 64)) + PREFIX.packed),
        inet6.MIP6OptUnknown(otype=27, odata=STAMP.to_bytes(8, "big")),
    ]
    bu = inet6.MIP6MH_BU(seq=7, flags="AHP", mhtime=75, options=options)
    ba = inet6.MIP6MH_BA(status=0, flags="P", seq=7, mhtime=75, options=options)
    bu_bytes, ba_bytes = encode_mh(PBU, RFC5213), encode_mh(PBA, RFC5213)

    def decode_bu() -> object:
        packet = inet6.MIP6MH_BU(bu_bytes)
        return packet.seq, packet.flags, packet.mhtime, packet.options

    def decode_ba() -> object:
        packet = inet6.MIP6MH_BA(ba_bytes)
        return packet.status, packet.seq, packet.mhtime, packet.options

    return {
        "PBU encode": lambda: bytes(bu),
        "PBU decode": decode_bu,
        "PBA encode": lambda: bytes(ba),
        "PBA decode": decode_ba,
    }


# --- measuring ---------------------------------------------------------------------


def per_call_us(func: Callable[[], object], budget: float = 0.3) -> float:
    """Best of five runs of about ``budget`` seconds each, in microseconds.

    CPU time of this process, not wall time, so that other work on a busy
    machine disturbs the figures less.
    """
    timer = timeit.Timer(func, timer=time.process_time)
    number, _ = timer.autorange()
    number = max(1, int(number * budget / 0.2))
    return min(timer.repeat(repeat=5, number=number)) / number * 1e6


def main() -> None:
    pbu_bytes, pba_bytes = encode_mh(PBU, RFC5213), encode_mh(PBA, RFC5213)
    assert struct_encode_pbu() == pbu_bytes, "baseline must produce the same octets"
    assert struct_encode_pba() == pba_bytes
    assert decode_mh(pbu_bytes, RFC5213) == PBU

    ours: dict[str, Callable[[], object]] = {
        "PBU encode": lambda: encode_mh(PBU, RFC5213),
        "PBU decode": lambda: decode_mh(pbu_bytes, RFC5213),
        "PBA encode": lambda: encode_mh(PBA, RFC5213),
        "PBA decode": lambda: decode_mh(pba_bytes, RFC5213),
    }
    baseline: dict[str, Callable[[], object]] = {
        "PBU encode": struct_encode_pbu,
        "PBU decode": lambda: struct_decode_pbu(pbu_bytes),
        "PBA encode": struct_encode_pba,
        "PBA decode": lambda: struct_decode_pba(pba_bytes),
    }
    scapy = scapy_codecs()
    if scapy is not None:
        # scapy pads differently (it does not know the options' alignment)
        scapy_pbu = bytes(scapy["PBU encode"]())  # type: ignore[call-overload]
        assert decode_mh(scapy_pbu, RFC5213) == PBU, "scapy encodes another PBU"

    print(f"PBU of {len(pbu_bytes)} octets (NAI, HNP, timestamp), PBA the same")
    print(
        f"{'operation':<16}{'ours us':>10}{'struct us':>11}{'scapy us':>11}"
        f"{'ours/struct':>13}{'scapy/ours':>12}"
    )
    totals = {"ours": 0.0, "struct": 0.0, "scapy": 0.0}
    for name in ours:
        mine = per_call_us(ours[name])
        floor = per_call_us(baseline[name])
        theirs = per_call_us(scapy[name]) if scapy else float("nan")
        totals["ours"] += mine
        totals["struct"] += floor
        totals["scapy"] += theirs
        print(
            f"{name:<16}{mine:>10.2f}{floor:>11.2f}{theirs:>11.1f}"
            f"{mine / floor:>12.1f}x{theirs / mine:>11.1f}x"
        )
    pbu_round = per_call_us(lambda: decode_mh(encode_mh(PBU, RFC5213), RFC5213))
    checked = per_call_us(
        lambda: decode_mh(encode_mh(PBU, RFC5213, MAG, LMA), RFC5213, MAG, LMA)
    )
    print(
        f"{'all four':<16}{totals['ours']:>10.2f}{totals['struct']:>11.2f}"
        f"{totals['scapy']:>11.1f}{totals['ours'] / totals['struct']:>12.1f}x"
        f"{totals['scapy'] / totals['ours']:>11.1f}x"
    )
    print(f"ours, PBU encode + decode:                      {pbu_round:6.2f} us")
    print(f"ours, PBU encode + decode with checksums:       {checked:6.2f} us")


if __name__ == "__main__":
    main()
