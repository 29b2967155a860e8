"""ND/MLD/DHCPv6 frame codec: checked against scapy and tshark."""

from __future__ import annotations

import json
import shutil
import subprocess
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scapy.layers.dhcp6 import DHCP6_Solicit
from scapy.layers.inet import UDP
from scapy.layers.inet6 import (
    ICMPv6EchoRequest,
    ICMPv6MLReport2,
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RA,
    ICMPv6ND_RS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptMTU,
    ICMPv6NDOptPrefixInfo,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
    IPv6ExtHdrHopByHop,
    RouterAlert,
)
from scapy.layers.l2 import Ether
from scapy.utils import wrpcap

from pmip6.wire import nd
from pmip6.wire.errors import Malformed

ROUTER_MAC = "02:00:5e:00:53:01"
ROUTER_LL = IPv6Address("fe80::1")
MS_MAC = "02:00:00:00:aa:01"
MS_LL = IPv6Address("fe80::ff:fe00:aa01")
LNP = IPv6Network("2001:db8:1:1::/64")


def our_ra() -> bytes:
    return nd.router_advertisement(
        src_mac=ROUTER_MAC,
        src_ip=ROUTER_LL,
        dst_mac=MS_MAC,
        dst_ip=MS_LL,
        cur_hop_limit=64,
        managed=False,
        other=True,
        router_lifetime=1800,
        reachable_time=30000,
        retrans_timer=1000,
        prefixes=[
            nd.PrefixInformation(
                LNP,
                on_link=False,
                autonomous=True,
                valid_lifetime=86400,
                preferred_lifetime=14400,
            )
        ],
        mtu=1400,
    )


def our_na() -> bytes:
    return nd.neighbor_advertisement(
        src_mac=ROUTER_MAC,
        src_ip=ROUTER_LL,
        dst_mac=MS_MAC,
        dst_ip=MS_LL,
        target=ROUTER_LL,
        router=True,
        solicited=True,
        override=False,
    )


def our_ns() -> bytes:
    return nd.neighbor_solicitation(
        src_mac=ROUTER_MAC, src_ip=ROUTER_LL, dst_mac=MS_MAC, dst_ip=MS_LL
    )


def scapy_frames() -> dict[str, bytes]:
    eth = Ether(src=MS_MAC, dst="33:33:00:00:00:02")
    return {
        "rs": bytes(
            eth
            / IPv6(src=str(MS_LL), dst="ff02::2", hlim=255)
            / ICMPv6ND_RS()
            / ICMPv6NDOptSrcLLAddr(lladdr=MS_MAC)
        ),
        "dad": bytes(
            Ether(src=MS_MAC, dst="33:33:ff:00:aa:01")
            / IPv6(src="::", dst="ff02::1:ff00:aa01", hlim=255)
            / ICMPv6ND_NS(tgt="2001:db8:1:1::aa01")
        ),
        "na": bytes(
            Ether(src=MS_MAC, dst=ROUTER_MAC)
            / IPv6(src=str(MS_LL), dst=str(ROUTER_LL), hlim=255)
            / ICMPv6ND_NA(tgt=str(MS_LL), R=0, S=1, O=1)
            / ICMPv6NDOptDstLLAddr(lladdr=MS_MAC)
        ),
        "mld2": bytes(
            Ether(src=MS_MAC, dst="33:33:00:00:00:16")
            / IPv6(src=str(MS_LL), dst="ff02::16", hlim=1)
            / IPv6ExtHdrHopByHop(options=[RouterAlert()])
            / ICMPv6MLReport2()
        ),
        "dhcp": bytes(
            Ether(src=MS_MAC, dst="33:33:00:01:00:02")
            / IPv6(src=str(MS_LL), dst="ff02::1:2", hlim=1)
            / UDP(sport=546, dport=547)
            / DHCP6_Solicit(trid=0x123456)
        ),
        "ping": bytes(
            Ether(src=MS_MAC, dst=ROUTER_MAC)
            / IPv6(src="2001:db8:1:1::aa01", dst="2001:db8:ffff::2")
            / ICMPv6EchoRequest(id=1, seq=1, data=b"x" * 8)
        ),
        "tcp": bytes(
            Ether(src=MS_MAC, dst=ROUTER_MAC)
            / IPv6(src="2001:db8:1:1::aa01", dst="2001:db8:ffff::2", nh=6)
            / (b"\x00" * 20)
        ),
    }


# --- our builders, scapy decodes ---------------------------------------------------


def test_router_advertisement_as_scapy_reads_it() -> None:
    pkt = Ether(our_ra())
    assert pkt.src == ROUTER_MAC and pkt.dst == MS_MAC
    assert pkt[IPv6].hlim == 255
    assert pkt[IPv6].src == str(ROUTER_LL) and pkt[IPv6].dst == str(MS_LL)
    ra = pkt[ICMPv6ND_RA]
    assert (ra.chlim, ra.M, ra.O, ra.routerlifetime) == (64, 0, 1, 1800)
    assert (ra.reachabletime, ra.retranstimer) == (30000, 1000)
    assert pkt[ICMPv6NDOptSrcLLAddr].lladdr == ROUTER_MAC
    assert pkt[ICMPv6NDOptMTU].mtu == 1400
    pio = pkt[ICMPv6NDOptPrefixInfo]
    assert (pio.prefix, pio.prefixlen, pio.L, pio.A) == ("2001:db8:1:1::", 64, 0, 1)
    assert (pio.validlifetime, pio.preferredlifetime) == (86400, 14400)
    # scapy recomputes the checksum when the field is cleared: it must match ours
    sent = ra.cksum
    del pkt[ICMPv6ND_RA].cksum
    assert Ether(bytes(pkt))[ICMPv6ND_RA].cksum == sent


def test_neighbor_advertisement_as_scapy_reads_it() -> None:
    pkt = Ether(our_na())
    na = pkt[ICMPv6ND_NA]
    assert (na.R, na.S, na.O, na.tgt) == (1, 1, 0, str(ROUTER_LL))
    assert pkt[ICMPv6NDOptDstLLAddr].lladdr == ROUTER_MAC
    assert pkt[IPv6].hlim == 255
    sent = na.cksum
    del pkt[ICMPv6ND_NA].cksum
    assert Ether(bytes(pkt))[ICMPv6ND_NA].cksum == sent


def test_neighbor_solicitation_as_scapy_reads_it() -> None:
    pkt = Ether(our_ns())
    assert pkt.dst == MS_MAC and pkt[IPv6].dst == str(MS_LL)
    assert pkt[ICMPv6ND_NS].tgt == str(MS_LL)
    assert pkt[ICMPv6NDOptSrcLLAddr].lladdr == ROUTER_MAC
    sent = pkt[ICMPv6ND_NS].cksum
    del pkt[ICMPv6ND_NS].cksum
    assert Ether(bytes(pkt))[ICMPv6ND_NS].cksum == sent


# --- scapy builds, we decode -------------------------------------------------------


def test_decode_router_solicitation() -> None:
    frame = nd.decode_frame(scapy_frames()["rs"])
    assert frame.kind is nd.FrameKind.ROUTER_SOLICITATION
    assert frame.src_mac == MS_MAC and frame.dst_mac == "33:33:00:00:00:02"
    assert frame.src_ip == MS_LL and frame.dst_ip == nd.ALL_ROUTERS
    assert frame.hop_limit == 255
    assert frame.source_lladdr == MS_MAC


def test_decode_dad_neighbor_solicitation_names_the_tentative_address() -> None:
    frame = nd.decode_frame(scapy_frames()["dad"])
    assert frame.kind is nd.FrameKind.NEIGHBOR_SOLICITATION
    assert frame.src_ip == IPv6Address("::")
    assert frame.target == IPv6Address("2001:db8:1:1::aa01")
    assert frame.source_lladdr is None


def test_decode_neighbor_advertisement() -> None:
    frame = nd.decode_frame(scapy_frames()["na"])
    assert frame.kind is nd.FrameKind.NEIGHBOR_ADVERTISEMENT
    assert frame.target == MS_LL
    assert frame.target_lladdr == MS_MAC
    assert frame.na_flags == nd.NAFlags.S | nd.NAFlags.O


def test_decode_mld_report_behind_hop_by_hop() -> None:
    frame = nd.decode_frame(scapy_frames()["mld2"])
    assert frame.kind is nd.FrameKind.MLD_REPORT
    assert frame.icmp_type == 143
    assert frame.hop_limit == 1


def test_decode_dhcpv6_gives_udp_payload() -> None:
    raw = scapy_frames()["dhcp"]
    frame = nd.decode_frame(raw)
    assert frame.kind is nd.FrameKind.DHCPV6
    assert frame.payload == bytes(DHCP6_Solicit(trid=0x123456))
    assert frame.payload[0] == 1  # SOLICIT


def test_decode_ping_and_tcp_are_other() -> None:
    frames = scapy_frames()
    assert nd.decode_frame(frames["ping"]).kind is nd.FrameKind.OTHER_ICMPV6
    tcp = nd.decode_frame(frames["tcp"])
    assert tcp.kind is nd.FrameKind.OTHER_IPV6 and tcp.next_header == 6


def test_decode_our_router_advertisement() -> None:
    frame = nd.decode_frame(our_ra())
    assert frame.kind is nd.FrameKind.ROUTER_ADVERTISEMENT
    assert frame.source_lladdr == ROUTER_MAC
    ra = nd.decode_router_advertisement(frame.payload)
    assert ra == nd.RouterAdvertisement(
        cur_hop_limit=64,
        managed=False,
        other=True,
        router_lifetime=1800,
        reachable_time=30000,
        retrans_timer=1000,
        source_lladdr=ROUTER_MAC,
        mtu=1400,
        prefixes=(nd.PrefixInformation(LNP, False, True, 86400, 14400),),
    )


def test_decode_scapy_router_advertisement() -> None:
    pkt = (
        Ether(src=ROUTER_MAC, dst=MS_MAC)
        / IPv6(src=str(ROUTER_LL), dst=str(MS_LL), hlim=255)
        / ICMPv6ND_RA(chlim=32, M=1, O=0, routerlifetime=600)
        / ICMPv6NDOptPrefixInfo(
            prefix="2001:db8:1:2::",
            prefixlen=64,
            L=1,
            A=0,
            validlifetime=100,
            preferredlifetime=50,
        )
    )
    ra = nd.decode_router_advertisement(nd.decode_frame(bytes(pkt)).payload)
    assert (ra.cur_hop_limit, ra.managed, ra.other) == (32, True, False)
    assert ra.router_lifetime == 600 and ra.mtu is None and ra.source_lladdr is None
    (pio,) = ra.prefixes
    assert pio == nd.PrefixInformation(
        IPv6Network("2001:db8:1:2::/64"), True, False, 100, 50
    )


def test_ethernet_padding_is_ignored() -> None:
    raw = scapy_frames()["rs"]
    assert nd.decode_frame(raw + b"\x00" * 10) == nd.decode_frame(raw)


def test_bad_icmpv6_checksum_is_malformed() -> None:
    raw = bytearray(our_ns())
    raw[14 + 40 + 2] ^= 0xFF
    with pytest.raises(Malformed, match="Checksum"):
        nd.decode_frame(bytes(raw))


def test_zero_length_option_is_malformed() -> None:
    pkt = (
        Ether(src=MS_MAC, dst=ROUTER_MAC)
        / IPv6(src=str(MS_LL), dst="ff02::2", hlim=255)
        / ICMPv6ND_RS()
        / ICMPv6NDOptSrcLLAddr(len=0, lladdr=MS_MAC)
    )
    with pytest.raises(Malformed, match="Length 0"):
        nd.decode_frame(bytes(pkt))


def test_non_ipv6_ethertype_is_malformed() -> None:
    with pytest.raises(Malformed, match="EtherType"):
        nd.decode_frame(b"\xff" * 12 + b"\x08\x00" + b"\x45" + b"\x00" * 40)


@pytest.mark.parametrize("name", ["rs", "dad", "na", "mld2", "dhcp", "ping"])
def test_every_truncation_is_malformed(name: str) -> None:
    raw = scapy_frames()[name]
    for cut in range(len(raw)):
        with pytest.raises(Malformed):
            nd.decode_frame(raw[:cut])


@pytest.mark.parametrize("build", [our_ra, our_na, our_ns])
def test_every_truncation_of_our_frames_is_malformed(build) -> None:  # type: ignore[no-untyped-def]
    raw = build()
    for cut in range(len(raw)):
        with pytest.raises(Malformed):
            nd.decode_frame(raw[:cut])


def test_every_truncation_of_router_advertisement_body_is_malformed() -> None:
    # without an IPv6 header there is no length: a cut at an option boundary
    # is a shorter, valid RA; every other cut must be refused
    icmp = nd.decode_frame(our_ra()).payload
    boundaries = {16, 24, 32}
    for cut in range(len(icmp)):
        if cut in boundaries:
            assert len(nd.decode_router_advertisement(icmp[:cut]).prefixes) == 0
            continue
        with pytest.raises(Malformed):
            nd.decode_router_advertisement(icmp[:cut])


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_malformed(data: bytes) -> None:
    try:
        frame = nd.decode_frame(data)
    except Malformed:
        return
    assert frame.src_mac == nd.mac_from_bytes(data[6:12])


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(sorted(scapy_frames())), st.integers(0, 200), st.binary())
def test_mutated_frames_decode_or_raise_malformed(
    name: str, where: int, junk: bytes
) -> None:
    raw = bytearray(scapy_frames()[name])
    where %= len(raw)
    raw[where : where + len(junk)] = junk
    try:
        frame = nd.decode_frame(bytes(raw))
    except Malformed:
        return
    assert isinstance(frame.kind, nd.FrameKind)


def test_mac_helpers() -> None:
    assert nd.normalise_mac("02-00-00-00-AA-01") == MS_MAC
    assert nd.multicast_mac(IPv6Address("ff02::1:ff00:aa01")) == "33:33:ff:00:aa:01"
    assert nd.solicited_node(IPv6Address("2001:db8::12:3456")) == IPv6Address(
        "ff02::1:ff12:3456"
    )
    with pytest.raises(ValueError):
        nd.normalise_mac("02:00:00:00:aa")


@pytest.mark.tshark
def test_tshark_agrees(tmp_path: Path) -> None:
    pcap = tmp_path / "nd.pcap"
    wrpcap(str(pcap), [Ether(our_ra()), Ether(our_na()), Ether(our_ns())])
    tshark = shutil.which("tshark")
    assert tshark
    out = subprocess.run(
        [tshark, "-r", str(pcap), "-T", "json"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    packets = [p["_source"]["layers"] for p in json.loads(out)]
    ra, na, ns = (p["icmpv6"] for p in packets)
    assert packets[0]["ipv6"]["ipv6.hlim"] == "255"

    assert ra["icmpv6.type"] == "134"
    assert ra["icmpv6.checksum.status"] == "1"
    assert ra["icmpv6.nd.ra.cur_hop_limit"] == "64"
    assert ra["icmpv6.nd.ra.router_lifetime"] == "1800"
    assert ra["icmpv6.nd.ra.reachable_time"] == "30000"
    assert ra["icmpv6.nd.ra.retrans_timer"] == "1000"
    flags = ra["icmpv6.nd.ra.flag_tree"]
    assert flags["icmpv6.nd.ra.flag.m"] == "0" and flags["icmpv6.nd.ra.flag.o"] == "1"
    # tshark's JSON repeats the "icmpv6.opt" key per option: read options as fields
    fields = [
        "icmpv6.opt.src_linkaddr",
        "icmpv6.opt.mtu",
        "icmpv6.opt.prefix",
        "icmpv6.opt.prefix.length",
        "icmpv6.opt.prefix.flag.l",
        "icmpv6.opt.prefix.flag.a",
        "icmpv6.opt.prefix.valid_lifetime",
        "icmpv6.opt.prefix.preferred_lifetime",
    ]
    args = [tshark, "-r", str(pcap), "-c", "1", "-T", "fields"]
    for name in fields:
        args += ["-e", name]
    line = subprocess.run(
        args, capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert line.strip().split("\t") == [
        ROUTER_MAC,
        "1400",
        "2001:db8:1:1::",
        "64",
        "0",
        "1",
        "86400",
        "14400",
    ]

    assert na["icmpv6.type"] == "136" and na["icmpv6.checksum.status"] == "1"
    assert na["icmpv6.nd.na.target_address"] == str(ROUTER_LL)
    assert na["icmpv6.nd.na.flag_tree"]["icmpv6.nd.na.flag.r"] == "1"
    assert na["icmpv6.nd.na.flag_tree"]["icmpv6.nd.na.flag.o"] == "0"

    assert ns["icmpv6.type"] == "135" and ns["icmpv6.checksum.status"] == "1"
    assert ns["icmpv6.nd.ns.target_address"] == str(MS_LL)


def test_checksum_check_can_be_skipped_for_offloaded_frames() -> None:
    raw = bytearray(scapy_frames()["dhcp"])
    raw[14 + 40 + 6] ^= 0xFF  # UDP checksum left unfinished by offload
    with pytest.raises(Malformed, match="UDP: Checksum"):
        nd.decode_frame(bytes(raw))
    frame = nd.decode_frame(bytes(raw), verify_checksum=False)
    assert frame.kind is nd.FrameKind.DHCPV6
