"""``pmip6 decode``: captures of every link type, malformed messages, bad files."""

from __future__ import annotations

import json
import os
import struct
from ipaddress import IPv6Address
from pathlib import Path

import dpkt
import pytest

from pmip6.cli import main
from pmip6.wire.errors import Malformed
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
from pmip6.wire.pcap import (
    LINKTYPE_ETHERNET,
    LINKTYPE_LINUX_SLL,
    LINKTYPE_LINUX_SLL2,
    LINKTYPE_NULL,
    LINKTYPE_RAW,
    NotMobility,
    ethernet_frame,
    find_mobility_header,
    ipv6_packet,
    write_pcap,
)
from pmip6.wire.profile import DRAFT00, RFC5213, Profile

CAPTURES = Path(__file__).parents[2] / "shared" / "captures"

MAG = IPv6Address("fd00::11")
LMA = IPv6Address("fd00::1")
HOME = IPv6Address("2001:db8:1:1::10")

PBU = BindingUpdate(
    7,
    BUFlags.A | BUFlags.H | BUFlags.P,
    75,
    (
        MobileNodeIdentifier.from_nai("ms1@example.net"),
        HomeNetworkPrefix(64, IPv6Address("2001:db8:1:1::")),
        Timestamp(0x6553F1008000),
    ),
)
PBA = BindingAcknowledgement(0, BAFlags.P, 7, 75, PBU.options)


def run_decode(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["decode", *args])
    out, err = capsys.readouterr()
    return code, out, err


def decode_json(capsys: pytest.CaptureFixture[str], path: Path) -> dict:  # type: ignore[type-arg]
    code, out, _ = run_decode(capsys, str(path), "--json", "--profile", "rfc5213")
    assert code == 0
    return json.loads(out)  # type: ignore[no-any-return]


def pbu_packet(src: IPv6Address = MAG, dst: IPv6Address = LMA) -> bytes:
    return ipv6_packet(src, dst, 135, encode_mh(PBU, RFC5213, src, dst))


# --- the shared captures ------------------------------------------------------------


def shared_captures() -> list[Path]:
    if not CAPTURES.is_dir():
        return []
    return sorted(p for p in CAPTURES.iterdir() if p.suffix in (".pcap", ".pcapng"))


@pytest.mark.skipif(
    not shared_captures(),
    reason="the shared captures directory beside the checkout is missing",
)
@pytest.mark.parametrize("capture", shared_captures(), ids=lambda p: p.name)
def test_every_packet_of_the_shared_captures(
    capsys: pytest.CaptureFixture[str], capture: Path
) -> None:
    report = decode_json(capsys, capture)
    summary = report["summary"]
    assert "error" not in summary
    assert summary["mobility"] > 0
    assert summary["packets"] == summary["mobility"] + summary["other"]
    for entry in report["messages"]:
        # each message either decoded into fields or names its fault
        assert ("malformed" in entry) != ("message" in entry), entry
    code, out, _ = run_decode(capsys, str(capture))
    assert code == 0
    assert out.splitlines()[-1].startswith(f"{summary['packets']} packets: ")


@pytest.mark.skipif(
    not shared_captures(),
    reason="the shared captures directory beside the checkout is missing",
)
@pytest.mark.parametrize("capture", shared_captures(), ids=lambda p: p.name)
@pytest.mark.parametrize("profile", [DRAFT00, RFC5213], ids=lambda p: p.name)
def test_shared_captures_through_the_codec(capture: Path, profile: Profile) -> None:
    found = outcomes = 0
    with open(capture, "rb") as handle:
        reader = dpkt.pcap.Reader(handle)
        linktype = reader.datalink()
        for _, frame in reader:
            try:
                packet = find_mobility_header(linktype, bytes(frame))
            except NotMobility:
                continue
            found += 1
            try:
                decode_mh(packet.mh, profile)
            except Malformed as exc:
                assert str(exc).split(":")[0] in ("BU", "BA", "BE", "MH"), exc
            outcomes += 1
    assert found == outcomes > 0


@pytest.mark.skipif(
    not (CAPTURES / "tcpdump-ipv6-mobility-1.pcap").exists(),
    reason="the shared captures directory beside the checkout is missing",
)
def test_tcpdump_capture_contents(capsys: pytest.CaptureFixture[str]) -> None:
    report = decode_json(capsys, CAPTURES / "tcpdump-ipv6-mobility-1.pcap")
    names = [m["name"] for m in report["messages"]]
    assert names[:6] == [
        "Binding Refresh Request",
        "Home Test Init",
        "Care-of Test Init",
        "Home Test",
        "Care-of Test",
        "Binding Update",
    ]
    assert names.count("Binding Acknowledgement") == 4
    assert "Binding Error" in names
    bu = report["messages"][6]
    assert (bu["sequence"], bu["flags"], bu["lifetime"]) == (1000, "A", 3600)
    assert bu["options"][0]["option"] == "AlternateCareOfAddress"


# --- captures we write -------------------------------------------------------------


def sll(packet: bytes) -> bytes:
    return struct.pack("!HHH8sH", 0, 1, 6, bytes(8), 0x86DD) + packet


def sll2(packet: bytes) -> bytes:
    return struct.pack("!HHIHBB8s", 0x86DD, 0, 2, 1, 0, 6, bytes(8)) + packet


@pytest.mark.parametrize(
    ("linktype", "wrap"),
    [
        (LINKTYPE_ETHERNET, ethernet_frame),
        (LINKTYPE_LINUX_SLL, sll),
        (LINKTYPE_LINUX_SLL2, sll2),
        (LINKTYPE_RAW, lambda p: p),
        (LINKTYPE_NULL, lambda p: struct.pack("<I", 10) + p),
        (
            LINKTYPE_ETHERNET,
            lambda p: ethernet_frame(b"\x00\x05\x86\xdd" + p, ethertype=0x8100),
        ),
    ],
    ids=["ethernet", "sll", "sll2", "raw", "null", "vlan"],
)
def test_link_types(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, linktype: int, wrap: object
) -> None:
    path = tmp_path / "c.pcap"
    write_pcap(path, [wrap(pbu_packet())], linktype)  # type: ignore[operator]
    report = decode_json(capsys, path)
    (entry,) = report["messages"]
    assert entry["src"] == str(MAG)
    assert entry["name"] == "Proxy Binding Update"
    assert entry["checksum_ok"] is True
    assert entry["options"][0]["nai"] == "ms1@example.net"


def test_text_output_field_by_field(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pba = ipv6_packet(LMA, MAG, 135, encode_mh(PBA, RFC5213, LMA, MAG))
    path = tmp_path / "c.pcap"
    write_pcap(path, [ethernet_frame(pbu_packet()), ethernet_frame(pba)])
    code, out, _ = run_decode(capsys, str(path), "--profile", "rfc5213")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "#1  fd00::11 -> fd00::1  Proxy Binding Update"
    assert "    sequence             7" in lines
    assert "    flags                A|H|P" in lines
    assert "    lifetime             75 (300 s)" in lines
    assert "    option MobileNodeIdentifier: NAI 'ms1@example.net'" in lines
    assert "    option HomeNetworkPrefix: 2001:db8:1:1::/64" in lines
    assert (
        "    option Timestamp: 2023-11-14T22:13:20.500+00:00 (0x00006553f1008000)"
        in lines
    )
    assert "#2  fd00::1 -> fd00::11  Proxy Binding Acknowledgement" in lines
    assert "    status               0 (ACCEPTED)" in lines
    assert lines[-1] == (
        "2 packets: 2 Mobility Header messages (0 malformed), 0 other packets skipped"
    )


def test_draft00_profile_names_option_22_assigned_home_address(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "c.pcap"
    write_pcap(path, [ethernet_frame(pbu_packet())])
    code, out, _ = run_decode(capsys, str(path))
    assert code == 0
    assert "    option AssignedHomeAddress: 2001:db8:1:1::/64" in out.splitlines()


def test_malformed_is_reported_and_decoding_goes_on(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    good = pbu_packet()
    bad_mh = bytearray(encode_mh(PBU, RFC5213))
    bad_mh[0] = 6  # Payload Proto must be 59
    bad = ipv6_packet(MAG, LMA, 135, bytes(bad_mh))
    udp = ipv6_packet(MAG, LMA, 17, b"\x12\x34\x12\x34\x00\x08\x00\x00")
    ipv4 = b"\x45" + bytes(19)
    frames = [ethernet_frame(p) for p in (udp, bad, good)]
    frames.append(ethernet_frame(ipv4, ethertype=0x0800))
    path = tmp_path / "c.pcap"
    write_pcap(path, frames)
    code, out, _ = run_decode(capsys, str(path), "--profile", "rfc5213")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (
        "#2  fd00::11 -> fd00::1  MALFORMED: BU: Payload Proto 6, expected 59"
    )
    assert "#3  fd00::11 -> fd00::1  Proxy Binding Update" in lines
    assert lines[-1] == (
        "4 packets: 2 Mobility Header messages (1 malformed), 2 other packets skipped"
    )


def test_wrong_checksum_is_shown(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "c.pcap"
    packet = ipv6_packet(MAG, LMA, 135, encode_mh(PBU, RFC5213))  # checksum 0
    write_pcap(path, [ethernet_frame(packet)])
    (entry,) = decode_json(capsys, path)["messages"]
    assert entry["checksum"] == "0x0000"
    assert entry["checksum_ok"] is False
    expected = encode_mh(PBU, RFC5213, MAG, LMA)
    assert entry["checksum_expected"] == f"0x{expected[4]:02x}{expected[5]:02x}"


def test_extension_headers_are_walked_and_change_the_pseudo_header(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    care_of, final = IPv6Address("2001:db8:9::1"), IPv6Address("2001:db8:9::2")
    mh = encode_mh(PBU, RFC5213, HOME, final)  # checksum over HoA and final dst
    # hop-by-hop (PadN), routing type 2 with the final destination,
    # destination options with the Home Address option (RFC 6275 6.3, 6.4)
    hop_by_hop = bytes((43, 0, 1, 4, 0, 0, 0, 0))
    routing = bytes((60, 2, 2, 1, 0, 0, 0, 0)) + final.packed
    dest_opts = bytes((135, 2, 1, 2, 0, 0, 201, 16)) + HOME.packed
    packet = ipv6_packet(care_of, LMA, 0, hop_by_hop + routing + dest_opts + mh)
    path = tmp_path / "c.pcap"
    write_pcap(path, [ethernet_frame(packet)])
    (entry,) = decode_json(capsys, path)["messages"]
    assert entry["src"] == str(care_of)
    assert entry["sequence"] == 7
    assert entry["checksum_ok"] is True


def test_ipv6_in_ipv4_and_fragments(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    inner = pbu_packet()
    ipv4 = bytes((0x45, 0, 0, 0, 0, 0, 0, 0, 64, 41)) + bytes(10) + inner
    first_fragment = ipv6_packet(MAG, LMA, 44, bytes((135, 0, 0, 1, 0, 0, 0, 9)))
    path = tmp_path / "c.pcap"
    write_pcap(
        path,
        [ethernet_frame(ipv4, ethertype=0x0800), ethernet_frame(first_fragment)],
    )
    report = decode_json(capsys, path)
    assert [m["packet"] for m in report["messages"]] == [1]
    assert report["summary"]["other"] == 1


def test_frame_cut_short_is_reported(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "c.pcap"
    write_pcap(path, [ethernet_frame(pbu_packet())[:60], ethernet_frame(pbu_packet())])
    code, out, _ = run_decode(capsys, str(path))
    assert code == 0
    assert out.splitlines()[0].startswith("#1  frame not followed: IPv6 payload of 72")
    assert "#2  fd00::11 -> fd00::1  Proxy Binding Update" in out


def test_pcapng(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "c.pcapng"
    with open(path, "wb") as handle:
        writer = dpkt.pcapng.Writer(handle, linktype=LINKTYPE_ETHERNET)
        writer.writepkt(ethernet_frame(pbu_packet()), ts=1.0)
    (entry,) = decode_json(capsys, path)["messages"]
    assert entry["name"] == "Proxy Binding Update"


def test_capture_cut_mid_record_still_shows_the_first_frames(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "c.pcap"
    write_pcap(path, [ethernet_frame(pbu_packet())] * 2)
    data = path.read_bytes()
    for cut in (1, 20, len(ethernet_frame(pbu_packet())) - 1):
        path.write_bytes(data[:-cut])
        report = decode_json(capsys, path)
        # the cut-off record is not shown as a frame cut short on the wire
        assert report["summary"]["packets"] == 1
        [entry] = report["messages"]
        assert entry["name"] == "Proxy Binding Update"
        assert "the last record is cut off" in report["summary"]["error"]
    code, out, _ = run_decode(capsys, str(path))
    assert code == 0
    assert "capture ends early: the last record is cut off" in out.splitlines()[-1]


def test_big_endian_pcap_is_read_whole(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "c.pcap"
    frame = ethernet_frame(pbu_packet())
    header = struct.pack(">IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    record = struct.pack(">IIII", 1, 0, len(frame), len(frame)) + frame
    path.write_bytes(header + record + record)
    report = decode_json(capsys, path)
    assert report["summary"]["packets"] == 2
    assert "error" not in report["summary"]
    path.write_bytes(header + record + record[:-3])
    report = decode_json(capsys, path)
    assert report["summary"]["packets"] == 1
    assert "cut off" in report["summary"]["error"]


# --- files that are not captures ---------------------------------------------------


def test_missing_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, out, err = run_decode(capsys, str(tmp_path / "none.pcap"))
    assert code == 1
    assert out == ""
    assert "cannot read" in err
    assert "No such file" in err


def test_not_a_capture(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("hello, this is not a capture\n")
    code, _, err = run_decode(capsys, str(path))
    assert code == 1
    assert "is not a pcap or pcapng file" in err


def test_empty_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    path = tmp_path / "empty.pcap"
    path.write_bytes(b"")
    code, _, err = run_decode(capsys, str(path))
    assert code == 1
    assert "is not a pcap or pcapng file" in err


def test_directory(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_decode(capsys, str(tmp_path))
    assert code == 1
    assert "cannot read" in err


def test_capture_from_a_pipe(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "c.pcap"
    write_pcap(path, [ethernet_frame(pbu_packet())])
    read_fd, write_fd = os.pipe()
    os.write(write_fd, path.read_bytes())
    os.close(write_fd)
    try:
        code, out, err = run_decode(capsys, f"/dev/fd/{read_fd}")
    finally:
        os.close(read_fd)
    assert (code, err) == (0, "")
    assert "Proxy Binding Update" in out
