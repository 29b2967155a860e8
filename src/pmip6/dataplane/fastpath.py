"""Batched netlink for bulk route changes (reconcile, benchmarks).

pyroute2 builds and parses every message through its generic NLA machinery,
about 2,600 seg6 routes/s here. For thousands of bindings at start we encode
RTM_NEWROUTE/RTM_DELROUTE ourselves with ``struct``, send a few hundred per
``send`` on one NETLINK_ROUTE socket, each with NLM_F_ACK, and match the
acknowledgements back by sequence number. NETLINK_CAP_ACK keeps each ACK at
36 octets so a large batch fits the receive buffer.

The encodings are the kernel's uapi layouts (linux/netlink.h, rtnetlink.h,
lwtunnel.h, seg6_iptunnel.h, seg6.h); ``tests/test_dataplane_seg6.py`` checks
that they install exactly what the pyroute2 path installs.
"""

from __future__ import annotations

import errno
import os
import socket
import struct
import time
from collections.abc import Iterable, Sequence
from ipaddress import IPv6Address, IPv6Network

NETLINK_ROUTE = 0
SOL_NETLINK = 270
NETLINK_CAP_ACK = 10
NETLINK_EXT_ACK = 11

NLMSG_ERROR = 2
NLMSG_DONE = 3
NLM_F_REQUEST = 0x1
NLM_F_MULTI = 0x2
NLM_F_ACK = 0x4
NLM_F_ROOT = 0x100
NLM_F_MATCH = 0x200
NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
NLM_F_REPLACE = 0x100
NLM_F_CREATE = 0x400
NLA_F_NESTED = 0x8000

RTM_NEWROUTE = 24
RTM_DELROUTE = 25
RTM_GETROUTE = 26

RTA_DST = 1
RTA_OIF = 4
RTA_PRIORITY = 6
RTA_TABLE = 15
RTA_ENCAP_TYPE = 21
RTA_ENCAP = 22

RTN_UNICAST = 1
RT_SCOPE_UNIVERSE = 0
LWTUNNEL_ENCAP_SEG6 = 5
LWTUNNEL_ENCAP_BPF = 6
LWT_BPF_XMIT = 3
LWT_BPF_XMIT_HEADROOM = 4
LWT_BPF_PROG_FD = 1
LWT_BPF_PROG_NAME = 2
SEG6_IPTUNNEL_SRH = 1
SEG6_IPTUN_MODE_ENCAP_RED = 3
IPV6_SRCRT_TYPE_4 = 4

_NLMSGHDR = struct.Struct("=IHHII")
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTA = struct.Struct("=HH")

#: messages per send(). Small batches pace the kernel's per-CPU allocator for
#: seg6 state, which grows asynchronously: with 400 a 100k burst saw about half
#: of its requests fail with ENOMEM and ran at half the rate of 25 (measured
#: with bench/dataplane.py's sizes; 25-32 also keep the rate for 10k routes)
BATCH = 32


def _rta(kind: int, payload: bytes) -> bytes:
    length = _RTA.size + len(payload)
    return _RTA.pack(length, kind) + payload + b"\0" * (-length % 4)


def seg6_encap(segment: IPv6Address, mode: int = SEG6_IPTUN_MODE_ENCAP_RED) -> bytes:
    """RTA_ENCAP_TYPE + RTA_ENCAP for a one-segment seg6 encapsulation.

    struct seg6_iptunnel_encap { int mode; struct ipv6_sr_hdr srh; } with an
    SRH of one segment; in encap.red mode the kernel drops that segment from
    the header it builds, so the packet carries no routing header at all.
    """
    srh = struct.pack("=BBBBBBH", 0, 2, IPV6_SRCRT_TYPE_4, 0, 0, 0, 0)
    srh += segment.packed
    inner = _rta(SEG6_IPTUNNEL_SRH, struct.pack("=i", mode) + srh)
    return _rta(RTA_ENCAP_TYPE, struct.pack("=H", LWTUNNEL_ENCAP_SEG6)) + _rta(
        RTA_ENCAP | NLA_F_NESTED, inner
    )


def bpf_encap(fd: int, name: str, headroom: int) -> bytes:
    """RTA_ENCAP_TYPE + RTA_ENCAP for ``encap bpf xmit`` with a loaded program.

    The kernel keeps ``name`` with the route and reports it in dumps; the
    headroom is what the program adds, so that forwarding checks packet sizes
    against the route's MTU less the tunnel header.
    """
    prog = _rta(LWT_BPF_PROG_FD, struct.pack("=I", fd))
    prog += _rta(LWT_BPF_PROG_NAME, name.encode() + b"\0")
    inner = _rta(LWT_BPF_XMIT | NLA_F_NESTED, prog)
    inner += _rta(LWT_BPF_XMIT_HEADROOM, struct.pack("=I", headroom))
    return _rta(RTA_ENCAP_TYPE, struct.pack("=H", LWTUNNEL_ENCAP_BPF)) + _rta(
        RTA_ENCAP | NLA_F_NESTED, inner
    )


def route_message(
    kind: int,
    flags: int,
    target: IPv6Network,
    *,
    table: int,
    proto: int,
    oif: int | None = None,
    encap: bytes = b"",
    priority: int | None = None,
) -> bytes:
    """One RTM_NEWROUTE/RTM_DELROUTE for an IPv6 target (sequence number 0)."""
    body = _RTMSG.pack(
        socket.AF_INET6,
        target.prefixlen,
        0,
        0,
        table if table < 256 else 252,  # RT_TABLE_COMPAT; real id in RTA_TABLE
        proto,
        RT_SCOPE_UNIVERSE,
        RTN_UNICAST if kind == RTM_NEWROUTE else 0,
        0,
    )
    body += _rta(RTA_TABLE, struct.pack("=I", table))
    body += _rta(RTA_DST, target.network_address.packed)
    if oif is not None:
        body += _rta(RTA_OIF, struct.pack("=I", oif))
    if priority is not None:
        body += _rta(RTA_PRIORITY, struct.pack("=I", priority))
    body += encap
    return _NLMSGHDR.pack(_NLMSGHDR.size + len(body), kind, flags, 0, 0) + body


def encap_add(
    target: IPv6Network, encap: bytes, oif: int, table: int, proto: int
) -> bytes:
    """Add or replace ``TARGET`` out of ``oif`` with an encoded encapsulation."""
    return route_message(
        RTM_NEWROUTE,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE,
        target,
        table=table,
        proto=proto,
        oif=oif,
        encap=encap,
    )


def seg6_add(
    target: IPv6Network, segment: IPv6Address, oif: int, table: int, proto: int
) -> bytes:
    """Add or replace: ``TARGET encap seg6 mode encap.red segs SEGMENT``."""
    return encap_add(target, seg6_encap(segment), oif, table, proto)


def route_del(target: IPv6Network, table: int, proto: int) -> bytes:
    """Delete the route of protocol ``proto`` for ``target`` in ``table``."""
    return route_message(
        RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, target, table=table, proto=proto
    )


class Batcher:
    """One NETLINK_ROUTE socket that sends pre-encoded requests in batches.

    Open it inside the namespace to program (the socket stays bound to it).
    """

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        self.sock.bind((0, 0))
        self.sock.setsockopt(SOL_NETLINK, NETLINK_CAP_ACK, 1)
        self.sock.setsockopt(SOL_NETLINK, NETLINK_EXT_ACK, 0)
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, 33, 8 << 20)  # SO_RCVBUFFORCE
        except OSError:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.seq = 0
        self.enomem_retries = 0

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Batcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run(self, messages: Sequence[bytes], batch: int = BATCH) -> list[int]:
        """Send every message; return the errno of each (0 = done)."""
        results = [0] * len(messages)
        for start in range(0, len(messages), batch):
            chunk = messages[start : start + batch]
            buf = bytearray(b"".join(chunk))
            first = self.seq + 1
            off = 0
            for m in chunk:
                self.seq += 1
                struct.pack_into("=I", buf, off + 8, self.seq)
                off += len(m)
            self.sock.send(buf)
            self._collect(first, len(chunk), results, start)
        return results

    def _collect(self, first: int, count: int, results: list[int], base: int) -> None:
        pending = count
        while pending:
            data = self.sock.recv(1 << 20)
            off = 0
            while off + 16 <= len(data):
                length, kind, _flags, seq, _pid = _NLMSGHDR.unpack_from(data, off)
                if kind == NLMSG_ERROR and first <= seq < first + count:
                    (err,) = struct.unpack_from("=i", data, off + 16)
                    results[base + seq - first] = -err
                    pending -= 1
                off += (length + 3) & ~3

    def run_retrying(
        self,
        messages: Sequence[bytes],
        retries: int = 12,
        delay: float = 0.002,
        max_delay: float = 0.2,
    ) -> list[int]:
        """Like ``run``, resending requests that failed with ENOMEM.

        A large burst of seg6 routes outruns the kernel's per-CPU allocator,
        which grows asynchronously: about half of 100k routes fail on a fresh
        boot. Retrying each batch's failures after a short pause, before
        sending the next batch, keeps pace with that growth instead of
        piling up failures. ``enomem_retries`` counts the resends.
        """
        results: list[int] = []
        for start in range(0, len(messages), BATCH):
            chunk = messages[start : start + BATCH]
            got = self.run(chunk)
            pause = delay
            for _ in range(retries):
                again = [i for i, e in enumerate(got) if e == errno.ENOMEM]
                if not again:
                    break
                self.enomem_retries += len(again)
                time.sleep(pause)
                pause = min(pause * 2, max_delay)
                for i, e in zip(
                    again, self.run([chunk[i] for i in again]), strict=True
                ):
                    got[i] = e
            results += got
        return results

    def dump_routes(self, table: int) -> Iterable[tuple[IPv6Network, int, bytes]]:
        """(target, protocol, raw RTA_ENCAP payload or b"") of IPv6 routes in
        ``table``."""
        for target, proto, encap, _table in self.dump_all(table):
            yield target, proto, encap

    def dump_all(
        self, table: int | None = None
    ) -> Iterable[tuple[IPv6Network, int, bytes, int]]:
        """(target, protocol, RTA_ENCAP payload or b"", table) of IPv6 routes.

        Parsing only what reconcile needs is much faster than pyroute2's
        generic decoder on 100k routes.
        """
        self.seq += 1
        req = _RTMSG.pack(socket.AF_INET6, 0, 0, 0, 0, 0, 0, 0, 0)
        if table is not None:
            req += _rta(RTA_TABLE, struct.pack("=I", table))
        hdr = _NLMSGHDR.pack(
            _NLMSGHDR.size + len(req),
            RTM_GETROUTE,
            NLM_F_REQUEST | NLM_F_DUMP,
            self.seq,
            0,
        )
        self.sock.send(hdr + req)
        while True:
            data = self.sock.recv(1 << 20)
            off = 0
            while off + 16 <= len(data):
                length, kind, _flags, seq, _pid = _NLMSGHDR.unpack_from(data, off)
                if seq == self.seq:
                    if kind == NLMSG_DONE:
                        return
                    if kind == NLMSG_ERROR:
                        (err,) = struct.unpack_from("=i", data, off + 16)
                        raise OSError(-err, os.strerror(-err))
                    if kind == RTM_NEWROUTE:
                        got = _parse_route(data, off + 16, off + length, table)
                        if got is not None:
                            yield got
                off += (length + 3) & ~3


def _parse_route(
    data: bytes, off: int, end: int, table: int | None
) -> tuple[IPv6Network, int, bytes, int] | None:
    family, dst_len, _s, _t, rtm_table, proto, _sc, _ty, _fl = _RTMSG.unpack_from(
        data, off
    )
    if family != socket.AF_INET6:
        return None
    off += _RTMSG.size
    dst = b"\0" * 16
    encap = b""
    real_table = rtm_table
    while off + 4 <= end:
        length, kind = _RTA.unpack_from(data, off)
        if length < 4:
            break
        payload = data[off + 4 : off + length]
        kind &= 0x3FFF
        if kind == RTA_DST:
            dst = payload
        elif kind == RTA_TABLE:
            (real_table,) = struct.unpack("=I", payload)
        elif kind == RTA_ENCAP:
            encap = payload
        off += (length + 3) & ~3
    if table is not None and real_table != table:
        return None
    return IPv6Network((dst, dst_len)), proto, encap, real_table


def seg6_segment(encap: bytes) -> IPv6Address | None:
    """The first segment of a dumped seg6 RTA_ENCAP payload (None if other)."""
    if len(encap) < 4:
        return None
    length, kind = _RTA.unpack_from(encap, 0)
    if kind & 0x3FFF != SEG6_IPTUNNEL_SRH or length < 4 + 4 + 8 + 16:
        return None
    return IPv6Address(encap[4 + 4 + 8 : 4 + 4 + 8 + 16])


def bpf_xmit_name(encap: bytes) -> str | None:
    """The xmit program's name in a dumped bpf RTA_ENCAP payload (None if other)."""
    for kind, payload in _attrs(encap):
        if kind == LWT_BPF_XMIT:
            for inner_kind, value in _attrs(payload):
                if inner_kind == LWT_BPF_PROG_NAME:
                    return value.split(b"\0", 1)[0].decode(errors="replace")
    return None


def _attrs(data: bytes) -> Iterable[tuple[int, bytes]]:
    off = 0
    while off + 4 <= len(data):
        length, kind = _RTA.unpack_from(data, off)
        if length < 4 or off + length > len(data):
            return
        yield kind & 0x3FFF, data[off + 4 : off + length]
        off += (length + 3) & ~3
