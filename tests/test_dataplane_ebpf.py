"""The eBPF programs of the bpf data plane, instruction by instruction and,
for the decapsulation, run by the kernel on test frames (BPF_PROG_TEST_RUN:
nothing is sent). The tunnel program is exercised on real traffic in
tests/test_dataplane_lwt.py, which checks the packets on the wire.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterator
from ipaddress import IPv6Address

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pmip6.dataplane import ebpf, fastpath
from pmip6.dataplane.bpf import tunnel_ends, tunnel_name

OWN = IPv6Address("fd00::11")
LMAP = IPv6Address("fd00::1")
CN = IPv6Address("2001:db8:ffff::2")
LOA = IPv6Address("2001:db8:1:1::10")
ETH = bytes.fromhex("020000005301") + bytes.fromhex("02000000aa01") + b"\x86\xdd"


def insns(code: bytes) -> list[tuple[int, int, int, int, int]]:
    """(opcode, dst, src, off, imm) of each instruction."""
    out = []
    for i in range(0, len(code), 8):
        op, regs, off, imm = struct.unpack_from("<BBhi", code, i)
        out.append((op, regs & 0xF, regs >> 4, off, imm))
    return out


def ipv6(src: IPv6Address, dst: IPv6Address, nh: int, payload: bytes) -> bytes:
    return (
        struct.pack("!IHBB", 0x60000000, len(payload), nh, 64)
        + src.packed
        + dst.packed
        + payload
    )


ECHO = ipv6(CN, LOA, 58, bytes.fromhex("8000f00d00010001") + b"ping" * 4)


# --- the instructions -----------------------------------------------------------


def test_tunnel_program_builds_the_rfc2473_header() -> None:
    code = insns(ebpf.tunnel_program(LMAP, OWN))
    stores = {off: imm for op, dst, _s, off, imm in code if op == 0x62 and dst == 10}
    # the 40-octet header on the stack, r10-40 .. r10-1, little-endian words
    header = b"".join(
        struct.pack("<i", stores[off]) for off in range(-40, 0, 4) if off != -36
    )
    assert header[:4] == b"\x60\x00\x00\x00"  # version 6, class and label 0
    assert header[4:20] == LMAP.packed and header[20:36] == OWN.packed
    # payload length, next header 41 and hop limit 64 from the packet's length
    assert (0x47, 7, 0, 0, (64 << 24) | (41 << 16)) in code
    calls = [imm for op, *_, imm in code if op == 0x85]
    assert calls == [ebpf.FUNC_LWT_PUSH_ENCAP]
    assert code[-1][0] == 0x95


def test_jumps_land_on_their_labels() -> None:
    for code in (ebpf.tunnel_program(LMAP, OWN), ebpf.decap_program(OWN)):
        decoded = insns(code)
        for pc, (op, _d, _s, off, _i) in enumerate(decoded):
            if op & 0x07 in (0x05, 0x06) and op not in (0x85, 0x95):
                target = pc + 1 + off
                assert 0 <= target < len(decoded)
                # every jump lands on a return (a mov to r0, then exit) or on
                # the call that cuts the outer header
                block = decoded[target : target + 7]
                returns = block[0][:2] == (0xB7, 0) and block[1][0] == 0x95
                cuts = (0x85, ebpf.FUNC_SKB_ADJUST_ROOM) in [
                    (b[0], b[4]) for b in block
                ]
                assert returns or cuts, (pc, target)


def test_decap_program_compares_every_word_of_the_address() -> None:
    words = struct.unpack("<4i", OWN.packed)
    compared = [
        imm for op, *_, imm in insns(ebpf.decap_program(OWN)) if op in (0x16, 0x56)
    ]
    # EtherType, the address, then next header 41 or the encapsulation limit
    assert compared == [0xDD86, *words, 41, 60, 41, 0x0104, 0x0101]


def test_decapsulation_keeps_the_senders_segment_size() -> None:
    # GRO-merged tunnel packets: without BPF_F_ADJ_ROOM_FIXED_GSO the kernel
    # grows gso_size by the 40 octets removed and re-segments too large
    code = insns(ebpf.decap_program(OWN))
    call = code.index((0x85, 0, 0, 0, ebpf.FUNC_SKB_ADJUST_ROOM))
    assert (0xB7, 4, 0, 0, ebpf.BPF_F_ADJ_ROOM_FIXED_GSO) in code[call - 4 : call]
    assert (0xB7, 3, 0, 0, ebpf.BPF_ADJ_ROOM_MAC) in code[call - 4 : call]


def test_route_names_say_which_tunnel() -> None:
    name = tunnel_name(LMAP, OWN)
    assert name == "pmip6 fd00::1>fd00::11"
    assert tunnel_ends(name) == (LMAP, OWN)
    for other in (None, "", "vlan_push", "pmip6 fd00::1", "pmip6 x>fd00::1"):
        assert tunnel_ends(other) is None


def test_fast_path_encoding_carries_fd_name_and_headroom() -> None:
    encap = fastpath.bpf_encap(7, tunnel_name(LMAP, OWN), 40)
    # RTA_ENCAP_TYPE (8 octets), then RTA_ENCAP's header and payload
    assert struct.unpack_from("=HHH", encap) == (6, 21, fastpath.LWTUNNEL_ENCAP_BPF)
    payload = encap[12:]
    assert fastpath.bpf_xmit_name(payload) == "pmip6 fd00::1>fd00::11"
    assert struct.pack("=HHI", 8, fastpath.LWT_BPF_XMIT_HEADROOM, 40) in payload
    assert struct.pack("=HHI", 8, fastpath.LWT_BPF_PROG_FD, 7) in payload
    assert fastpath.bpf_xmit_name(fastpath.seg6_encap(OWN)[12:]) is None
    assert fastpath.bpf_xmit_name(b"\x01") is None


# --- the decapsulation, run by the kernel -----------------------------------------


@pytest.fixture(scope="module")
def decap() -> Iterator[int]:
    if os.geteuid() != 0:
        pytest.skip("loading eBPF programs needs root")
    why = ebpf.unavailable_reason()
    if why:
        pytest.skip(why)
    fd = ebpf.load_decap(OWN)
    yield fd
    os.close(fd)


@pytest.mark.root
def test_tunnelled_packet_to_us_comes_out_as_the_inner_one(decap: int) -> None:
    frame = ETH + ipv6(LMAP, OWN, 41, ECHO)
    assert ebpf.test_run(decap, frame) == (ebpf.TC_ACT_OK, ETH + ECHO)


# what a Linux ip6ip6 tunnel sends by default: a Destination Options header
# with the Tunnel Encapsulation Limit option (RFC 2473 4.1.1) and a PadN
ENCAP_LIMIT = bytes([41, 0, 4, 1, 4, 1, 1, 0])


@pytest.mark.root
def test_tunnel_encapsulation_limit_is_removed_with_the_outer_header(
    decap: int,
) -> None:
    frame = ETH + ipv6(LMAP, OWN, 60, ENCAP_LIMIT + ECHO)
    assert ebpf.test_run(decap, frame) == (ebpf.TC_ACT_OK, ETH + ECHO)


@pytest.mark.root
def test_decapsulated_frame_reads_as_the_inner_packet_to_scapy(decap: int) -> None:
    from scapy.layers.inet6 import ICMPv6EchoRequest, IPv6
    from scapy.layers.l2 import Ether

    _, out = ebpf.test_run(decap, ETH + ipv6(LMAP, OWN, 41, ECHO))
    pkt = Ether(out)
    assert pkt[IPv6].src == str(CN) and pkt[IPv6].dst == str(LOA)
    assert pkt[ICMPv6EchoRequest].id == 1


@pytest.mark.root
@pytest.mark.parametrize(
    "frame",
    [
        ETH + ipv6(LMAP, IPv6Address("fd00::12"), 41, ECHO),  # not to us
        ETH + ipv6(LMAP, OWN, 58, ECHO[40:]),  # to us, not tunnelled
        ETH + ipv6(LMAP, OWN, 43, ECHO),  # a routing header first: not RFC 2473
        ETH[:12] + b"\x08\x00" + ipv6(LMAP, OWN, 41, ECHO),  # not IPv6
        ETH[:12] + b"\x88\xb5" + b"\0" * 20,  # another EtherType, short
        # destination options other than the encapsulation limit alone
        ETH + ipv6(LMAP, OWN, 60, bytes([41, 0, 0xC2, 4, 0, 0, 0, 0]) + ECHO),
        ETH + ipv6(LMAP, OWN, 60, bytes([58, 0, 4, 1, 4, 1, 1, 0]) + ECHO[40:]),
        ETH + ipv6(LMAP, OWN, 60, bytes([41, 1, 4, 1, 4, 1, 1, 0]) + bytes(8) + ECHO),
    ],
    ids=[
        "other-destination",
        "not-tunnelled",
        "routing-header",
        "ipv4",
        "short",
        "other-option",
        "options-then-icmp",
        "longer-options",
    ],
)
def test_everything_else_passes_on_untouched(decap: int, frame: bytes) -> None:
    # TC_ACT_UNSPEC: the next filter on the interface still sees it
    assert ebpf.test_run(decap, frame) == (ebpf.TC_ACT_UNSPEC, frame)


@pytest.mark.root
@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(min_size=14, max_size=200),
        # tunnelled to us, with any inner octets: the branch that cuts
        st.binary(max_size=120).map(lambda b: ETH + ipv6(LMAP, OWN, 41, b)),
        st.binary(max_size=120).map(
            lambda b: ETH + ipv6(LMAP, OWN, 60, ENCAP_LIMIT[:4] + b)
        ),
    )
)
def test_any_frame_is_passed_or_decapsulated(decap: int, frame: bytes) -> None:
    # the kernel's test runner refuses IP frames shorter than their IP header
    assume(not (frame[12:14] == b"\x86\xdd" and len(frame) < 54))
    assume(not (frame[12:14] == b"\x08\x00" and len(frame) < 34))
    verdict, out = ebpf.test_run(decap, frame)
    cut = _outer_length(frame)
    if cut is None:
        assert (verdict, out) == (ebpf.TC_ACT_UNSPEC, frame)
    elif verdict == ebpf.TC_ACT_OK:
        assert out == frame[:14] + frame[14 + cut :]
    else:
        # the kernel refuses to leave less than an IPv6 header: dropped
        assert verdict == ebpf.TC_ACT_SHOT and len(frame) - 14 - cut < 40


def _outer_length(frame: bytes) -> int | None:
    """What the program must cut from a frame: an independent statement of
    its rule (None: not a tunnel packet for OWN)."""
    if len(frame) < 54 or frame[12:14] != b"\x86\xdd" or frame[38:54] != OWN.packed:
        return None
    if frame[20] == 41:
        return 40
    limit = frame[54:62]
    if frame[20] == 60 and len(limit) == 8 and limit[:4] == bytes([41, 0, 4, 1]):
        return 48 if limit[5:7] == b"\x01\x01" else None
    return None


def test_unknown_architecture_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ebpf.platform, "machine", lambda: "pdp11")
    with pytest.raises(ebpf.BpfError, match="unknown on pdp11"):
        ebpf.load_decap(OWN)
