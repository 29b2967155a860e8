"""The two eBPF programs of the ``bpf`` data plane, and loading them.

For kernels without ip6_tunnel and without seg6 lightweight tunnels (but with
``CONFIG_LWTUNNEL_BPF`` and ``CONFIG_NET_CLS_BPF``, as most distributions
build them), the tunnel is two tiny eBPF programs:

``tunnel_program(src, dst)``, type LWT_XMIT, attached to a route
(``TARGET encap bpf xmit ...``): prepends an IPv6 header from ``src`` to
``dst`` with next header 41 (RFC 2473 section 3.1), then asks the kernel to
route the packet again by its new destination (``BPF_LWT_REROUTE``).

``decap_program(own)``, type SCHED_CLS, attached to the uplink's ingress with
tc in direct-action mode: an IPv6 packet to ``own`` whose next header is 41
loses its outer header (RFC 2473 section 3.3) and goes on into the stack as
the inner packet; everything else passes untouched.

The programs are assembled here from a few instructions each, so no compiler,
object file or BPF library is needed: only the ``bpf(2)`` system call.
Encodings follow include/uapi/linux/bpf.h.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import struct
from dataclasses import dataclass
from ipaddress import IPv6Address

# --- the bpf(2) system call -------------------------------------------------

_NR_BPF = {"x86_64": 321, "aarch64": 280, "armv7l": 386, "ppc64le": 361, "s390x": 351}
BPF_PROG_LOAD = 5
BPF_OBJ_PIN = 6
BPF_PROG_TEST_RUN = 10

PROG_TYPE_SCHED_CLS = 3
PROG_TYPE_LWT_XMIT = 12

# the programs are ours (MIT); the kernel wants a GPL-compatible declaration
LICENSE = b"Dual MIT/GPL"

_libc = ctypes.CDLL(None, use_errno=True)


class BpfError(OSError):
    """The kernel refused to load or run a program (the verifier log, if any)."""


def _bpf(cmd: int, attr: bytearray) -> int:
    nr = _NR_BPF.get(platform.machine())
    if nr is None:
        raise BpfError(errno.ENOSYS, f"bpf(2): unknown on {platform.machine()}")
    buf = ctypes.create_string_buffer(bytes(attr), len(attr))
    ret = int(_libc.syscall(nr, cmd, buf, len(attr)))
    if ret < 0:
        err = ctypes.get_errno()
        raise BpfError(err, os.strerror(err))
    attr[:] = buf.raw
    return ret


def load(prog_type: int, code: bytes, name: str) -> int:
    """Load a program; return its file descriptor (the caller closes it).

    ``name`` is the kernel's short program name (at most 15 characters shown
    by ``bpftool``); the verifier's log comes with a refusal.
    """
    insns = ctypes.create_string_buffer(code, len(code))
    license_ = ctypes.create_string_buffer(LICENSE)
    log = ctypes.create_string_buffer(16384)
    # union bpf_attr, BPF_PROG_LOAD: prog_type, insn_cnt, insns, license,
    # log_level, log_size, log_buf, kern_version, prog_flags, prog_name[16]
    attr = bytearray(128)
    struct.pack_into(
        "=IIQQIIQ",
        attr,
        0,
        prog_type,
        len(code) // 8,
        ctypes.addressof(insns),
        ctypes.addressof(license_),
        1,
        len(log),
        ctypes.addressof(log),
    )
    short = name.encode()[:15]
    attr[48 : 48 + len(short)] = short
    try:
        return _bpf(BPF_PROG_LOAD, attr)
    except BpfError as exc:
        why = log.value.decode(errors="replace").strip().splitlines()
        detail = f": {why[-1]}" if why else ""
        raise BpfError(exc.errno, f"loading {name}: {exc.strerror}{detail}") from None


def pin(fd: int, path: str) -> None:
    """Pin a loaded program at ``path`` on a bpf filesystem (for iproute2's
    ``encap bpf xmit pinned PATH``)."""
    name = ctypes.create_string_buffer(path.encode())
    attr = bytearray(16)  # BPF_OBJ_PIN: pathname, bpf_fd
    struct.pack_into("=QI", attr, 0, ctypes.addressof(name), fd)
    _bpf(BPF_OBJ_PIN, attr)


def test_run(fd: int, packet: bytes) -> tuple[int, bytes]:
    """Run a loaded SCHED_CLS program once on ``packet`` (an Ethernet frame).

    Returns (return value, the frame as the program left it); nothing is sent.
    """
    data_in = ctypes.create_string_buffer(packet, len(packet))
    data_out = ctypes.create_string_buffer(len(packet) + 256)
    # BPF_PROG_TEST_RUN: prog_fd, retval, data_size_in, data_size_out,
    # data_in, data_out, repeat
    attr = bytearray(80)
    struct.pack_into(
        "=IIIIQQI",
        attr,
        0,
        fd,
        0,
        len(packet),
        len(data_out),
        ctypes.addressof(data_in),
        ctypes.addressof(data_out),
        1,
    )
    _bpf(BPF_PROG_TEST_RUN, attr)
    retval, _size_in, size_out = struct.unpack_from("=iII", attr, 4)
    return retval, data_out.raw[:size_out]


# --- a minimal assembler ------------------------------------------------------

# instruction classes, sizes, modes, operations (uapi linux/bpf_common.h, bpf.h)
_LDX, _ST, _STX, _ALU64, _JMP, _JMP32 = 0x01, 0x02, 0x03, 0x07, 0x05, 0x06
_W, _H, _B = 0x00, 0x08, 0x10
_MEM = 0x60
_K, _X = 0x00, 0x08
_ADD, _SUB, _OR, _MOV = 0x00, 0x10, 0x40, 0xB0
_END_TO_BE = 0x04 | 0xD0 | 0x08  # BPF_ALU | BPF_END | BPF_TO_BE
_JEQ, _JGT, _JNE, _CALL, _EXIT = 0x10, 0x20, 0x50, 0x80, 0x90

R0, R1, R2, R3, R4, R5, R6, R7, R10 = 0, 1, 2, 3, 4, 5, 6, 7, 10

# helpers (enum bpf_func_id) and constants
FUNC_SKB_ADJUST_ROOM = 50
FUNC_LWT_PUSH_ENCAP = 73
BPF_LWT_ENCAP_IP = 2
BPF_LWT_REROUTE = 128
BPF_DROP = 2
BPF_ADJ_ROOM_MAC = 1
BPF_F_ADJ_ROOM_FIXED_GSO = 1
TC_ACT_UNSPEC = -1
TC_ACT_OK = 0
TC_ACT_SHOT = 2

# struct __sk_buff offsets
SKB_LEN = 0
SKB_DATA = 76
SKB_DATA_END = 80

ETH_HLEN = 14
IPV6_HLEN = 40
IPPROTO_IPV6 = 41
IPPROTO_DSTOPTS = 60
OPT_TUNNEL_ENCAP_LIMIT = 4
#: outer hop limit: the node's default for its own packets (RFC 2473 6.3)
HOP_LIMIT = 64


@dataclass(frozen=True)
class _Jump:
    """A conditional jump to a label, resolved by ``_assemble``."""

    code: int
    dst: int
    src: int
    imm: int
    label: str


def _insn(code: int, dst: int = 0, src: int = 0, off: int = 0, imm: int = 0) -> bytes:
    return struct.pack("<BBhi", code, dst | (src << 4), off, imm)


def _assemble(items: list[bytes | _Jump | str]) -> bytes:
    """Instructions, jumps and labels (strings) into program bytes."""
    labels: dict[str, int] = {}
    pc = 0
    for item in items:
        if isinstance(item, str):
            labels[item] = pc
        else:
            pc += 1
    out = []
    pc = 0
    for item in items:
        if isinstance(item, str):
            continue
        if isinstance(item, _Jump):
            off = labels[item.label] - pc - 1
            item = _insn(item.code, item.dst, item.src, off, item.imm)
        out.append(item)
        pc += 1
    return b"".join(out)


def _words(address: IPv6Address) -> list[int]:
    """The address as four signed 32-bit immediates stored little-endian."""
    return list(struct.unpack("<4i", address.packed))


def _return(value: int) -> list[bytes | _Jump | str]:
    return [_insn(_ALU64 | _MOV | _K, R0, 0, 0, value), _insn(_JMP | _EXIT)]


def _call_checked(helper: int, ok: int, failed: int) -> list[bytes | _Jump | str]:
    """Call ``helper`` (arguments in r1-r5); return ``ok`` if it returned 0,
    else ``failed`` (defines the label "drop")."""
    return [
        _insn(_JMP | _CALL, imm=helper),
        _Jump(_JMP | _JNE | _K, R0, 0, 0, "drop"),
        *_return(ok),
        "drop",
        *_return(failed),
    ]


# --- the programs -------------------------------------------------------------


def tunnel_program(src: IPv6Address, dst: IPv6Address) -> bytes:
    """LWT_XMIT: put an IPv6 header ``src`` -> ``dst``, next header 41, on
    the packet, and have the kernel route it by that header."""
    hdr = -IPV6_HLEN  # the header is built on the stack at r10 - 40
    code: list[bytes | _Jump | str] = [
        _insn(_ALU64 | _MOV | _X, R6, R1),
        _insn(_LDX | _MEM | _W, R7, R6, SKB_LEN),
        # version 6, traffic class and flow label 0 (RFC 2473 sections 6.4, 6.5)
        _insn(_ST | _MEM | _W, R10, 0, hdr, 0x60),
        # payload length = the whole inner packet, then next header and hop limit
        _insn(_END_TO_BE, R7, 0, 0, 16),
        _insn(_ALU64 | _OR | _K, R7, 0, 0, (HOP_LIMIT << 24) | (IPPROTO_IPV6 << 16)),
        _insn(_STX | _MEM | _W, R10, R7, hdr + 4),
    ]
    for i, word in enumerate(_words(src) + _words(dst)):
        code.append(_insn(_ST | _MEM | _W, R10, 0, hdr + 8 + 4 * i, word))
    code += [
        _insn(_ALU64 | _MOV | _X, R1, R6),
        _insn(_ALU64 | _MOV | _K, R2, 0, 0, BPF_LWT_ENCAP_IP),
        _insn(_ALU64 | _MOV | _X, R3, R10),
        _insn(_ALU64 | _ADD | _K, R3, 0, 0, hdr),
        _insn(_ALU64 | _MOV | _K, R4, 0, 0, IPV6_HLEN),
        *_call_checked(FUNC_LWT_PUSH_ENCAP, BPF_LWT_REROUTE, BPF_DROP),
    ]
    return _assemble(code)


def decap_program(own: IPv6Address) -> bytes:
    """SCHED_CLS: strip the outer header of IPv6-in-IPv6 sent to ``own``.

    The outer header may carry one Destination Options header holding just
    the Tunnel Encapsulation Limit option (RFC 2473 4.1.1) in the 8-octet
    form Linux ip6ip6 tunnels send by default; anything else after the outer
    header but the inner packet is not ours and passes. A packet that is not
    for us goes on to the next filter (TC_ACT_UNSPEC), not past them all.
    """
    daddr = ETH_HLEN + 24
    dstopt = ETH_HLEN + IPV6_HLEN  # where a Destination Options header starts
    code: list[bytes | _Jump | str] = [
        _insn(_ALU64 | _MOV | _X, R6, R1),
        _insn(_LDX | _MEM | _W, R2, R6, SKB_DATA),
        _insn(_LDX | _MEM | _W, R3, R6, SKB_DATA_END),
        # the verifier wants the bounds proven before any packet read
        _insn(_ALU64 | _MOV | _X, R4, R2),
        _insn(_ALU64 | _ADD | _K, R4, 0, 0, ETH_HLEN + IPV6_HLEN),
        _Jump(_JMP | _JGT | _X, R4, R3, 0, "pass"),
        # EtherType 0x86dd, read little-endian
        _insn(_LDX | _MEM | _H, R4, R2, 12),
        _Jump(_JMP32 | _JNE | _K, R4, 0, 0xDD86, "pass"),
    ]
    for i, word in enumerate(_words(own)):
        code += [
            _insn(_LDX | _MEM | _W, R4, R2, daddr + 4 * i),
            _Jump(_JMP32 | _JNE | _K, R4, 0, word, "pass"),
        ]
    code += [
        # next header 41 right after the outer header: 40 octets to remove
        _insn(_ALU64 | _MOV | _K, R5, 0, 0, IPV6_HLEN),
        _insn(_LDX | _MEM | _B, R4, R2, ETH_HLEN + 6),
        _Jump(_JMP32 | _JEQ | _K, R4, 0, IPPROTO_IPV6, "decap"),
        _Jump(_JMP32 | _JNE | _K, R4, 0, IPPROTO_DSTOPTS, "pass"),
        # or 8 more: [41, Hdr Ext Len 0, type 4, length 1, limit, PadN 1 1 0]
        _insn(_ALU64 | _MOV | _X, R4, R2),
        _insn(_ALU64 | _ADD | _K, R4, 0, 0, dstopt + 8),
        _Jump(_JMP | _JGT | _X, R4, R3, 0, "pass"),
        _insn(_LDX | _MEM | _H, R4, R2, dstopt),
        _Jump(_JMP32 | _JNE | _K, R4, 0, IPPROTO_IPV6, "pass"),
        _insn(_LDX | _MEM | _H, R4, R2, dstopt + 2),
        _Jump(_JMP32 | _JNE | _K, R4, 0, 0x0100 | OPT_TUNNEL_ENCAP_LIMIT, "pass"),
        _insn(_LDX | _MEM | _H, R4, R2, dstopt + 5),
        _Jump(_JMP32 | _JNE | _K, R4, 0, 0x0101, "pass"),
        _insn(_ALU64 | _MOV | _K, R5, 0, 0, IPV6_HLEN + 8),
        # remove what follows the MAC header up to the inner packet; the
        # inner packets' segment size stays as their sender made it (GRO)
        "decap",
        _insn(_ALU64 | _MOV | _X, R1, R6),
        _insn(_ALU64 | _MOV | _K, R2, 0, 0, 0),
        _insn(_ALU64 | _SUB | _X, R2, R5),
        _insn(_ALU64 | _MOV | _K, R3, 0, 0, BPF_ADJ_ROOM_MAC),
        _insn(_ALU64 | _MOV | _K, R4, 0, 0, BPF_F_ADJ_ROOM_FIXED_GSO),
        *_call_checked(FUNC_SKB_ADJUST_ROOM, TC_ACT_OK, TC_ACT_SHOT),
        "pass",
        *_return(TC_ACT_UNSPEC),
    ]
    return _assemble(code)


def load_tunnel(src: IPv6Address, dst: IPv6Address) -> int:
    return load(PROG_TYPE_LWT_XMIT, tunnel_program(src, dst), "pmip6_tunnel")


def load_decap(own: IPv6Address) -> int:
    return load(PROG_TYPE_SCHED_CLS, decap_program(own), "pmip6_decap")


def unavailable_reason() -> str:
    """Empty if both programs load here (root, bpf(2), the program types)."""
    try:
        for fd in (
            load_tunnel(IPv6Address("fd00::1"), IPv6Address("fd00::2")),
            load_decap(IPv6Address("fd00::1")),
        ):
            os.close(fd)
    except OSError as exc:
        return f"the kernel refuses eBPF programs ({exc.strerror or exc})"
    return ""
