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
                # every jump ends in "return OK" or "drop": a mov to r0, then exit
                assert decoded[target][0] == 0xB7 and decoded[target][1] == 0
                assert decoded[target + 1][0] == 0x95


def test_decap_program_compares_every_word_of_the_address() -> None:
    words = struct.unpack("<4i", OWN.packed)
    compared = [imm for op, *_, imm in insns(ebpf.decap_program(OWN)) if op == 0x56]
    assert compared == [0xDD86, 41, *words]


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
    ],
    ids=["other-destination", "not-tunnelled", "routing-header", "ipv4", "short"],
)
def test_everything_else_passes_untouched(decap: int, frame: bytes) -> None:
    assert ebpf.test_run(decap, frame) == (ebpf.TC_ACT_OK, frame)


@pytest.mark.root
@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(min_size=14, max_size=200),
        # tunnelled to us, with any inner octets: the branch that cuts
        st.binary(max_size=120).map(lambda b: ETH + ipv6(LMAP, OWN, 41, b)),
    )
)
def test_any_frame_is_passed_or_decapsulated(decap: int, frame: bytes) -> None:
    # the kernel's test runner refuses IP frames shorter than their IP header
    assume(not (frame[12:14] == b"\x86\xdd" and len(frame) < 54))
    assume(not (frame[12:14] == b"\x08\x00" and len(frame) < 34))
    verdict, out = ebpf.test_run(decap, frame)
    tunnelled = (
        len(frame) >= 54
        and frame[12:14] == b"\x86\xdd"
        and frame[20] == 41
        and frame[38:54] == OWN.packed
    )
    if not tunnelled:
        assert (verdict, out) == (ebpf.TC_ACT_OK, frame)
    elif verdict == ebpf.TC_ACT_OK:
        assert out == frame[:14] + frame[54:]
    else:
        # the kernel refuses to leave less than an IPv6 header: dropped
        assert verdict == ebpf.TC_ACT_SHOT and len(frame) - 54 < 40


def test_unknown_architecture_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ebpf.platform, "machine", lambda: "pdp11")
    with pytest.raises(ebpf.BpfError, match="unknown on pdp11"):
        ebpf.load_decap(OWN)
