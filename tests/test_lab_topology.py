"""The lab's description and generated configs, and the tap's frame parser.

No root needed: these check names, addresses and the configs the daemons
will read, against the daemons' and the AAA backend's own parsers.
"""

from __future__ import annotations

import asyncio
import re
import struct
import tomllib
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

import pytest

from pmip6.aaa.file import FileAaa
from pmip6.lab.capture import Pinger, handover_times, parse_frame
from pmip6.lab.cli import format_status
from pmip6.lab.topology import (
    LMAP_ADDRESS,
    Topology,
    TopologyError,
    eui64_address,
    mpa_address,
)


def test_default_topology_names_and_addresses() -> None:
    topo = Topology.default("pm")
    assert topo.namespaces == [
        "pm-tr",
        "pm-cn",
        "pm-lmap",
        "pm-mpa1",
        "pm-mpa2",
        "pm-ms1",
    ]
    (ms,) = topo.stations
    assert ms.mac == "02:00:00:00:aa:01"
    assert ms.lnp == IPv6Network("2001:db8:1:1::/64")
    assert ms.at == "mpa1"
    assert mpa_address(1) == IPv6Address("fd00::11")
    assert mpa_address(2) == IPv6Address("fd00::12")
    assert topo.run_dir == Path("/run/pmip6-lab/pm")


def test_more_mpas_and_stations_get_distinct_macs_and_lnps() -> None:
    topo = Topology.default("x", mpas=3, mss=2)
    assert topo.mpa_names == ["mpa1", "mpa2", "mpa3"]
    assert [s.mac for s in topo.stations] == [
        "02:00:00:00:aa:01",
        "02:00:00:00:aa:02",
    ]
    assert [str(s.lnp) for s in topo.stations] == [
        "2001:db8:1:1::/64",
        "2001:db8:1:2::/64",
    ]


def test_expected_loa_is_the_kernels_eui64_address() -> None:
    # RFC 4291 appendix A: flip the U/L bit, insert ff:fe
    loa = eui64_address(IPv6Network("2001:db8:1:1::/64"), "02:00:00:00:aa:01")
    assert loa == IPv6Address("2001:db8:1:1:0:ff:fe00:aa01")


def test_toml_overrides_defaults() -> None:
    topo = Topology.from_dict(
        {
            "lab": {"name": "t", "mpas": 3, "absent_timeout": 1.5},
            "ms": [
                {"mac": "02:00:00:00:bb:01"},
                {"name": "msx", "known": False, "at": "mpa3"},
            ],
        }
    )
    assert topo.mpas == 3
    assert topo.absent_timeout == 1.5
    assert topo.stations[0].mac == "02:00:00:00:bb:01"
    assert topo.stations[1].name == "msx"
    assert topo.stations[1].nai == "msx@example.net"
    assert topo.stations[1].at == "mpa3"
    assert not topo.stations[1].known


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"lab": {"name": "Bad-Name"}}, "lab name"),
        ({"lab": {"colour": "red"}}, "unknown [lab] keys"),
        ({"ms": [{"at": "mpa9"}]}, "is not an MPA"),
        ({"ms": [{"mac": "03:00:00:00:00:01"}]}, "not a unicast MAC"),
        ({"ms": [{"lnp": "2001:db8:2::/64"}]}, "must be a /64"),
        ({"ms": [{}, {"mac": "02:00:00:00:aa:01"}]}, "share a MAC"),
        ({"ms": [{"nai": "a@b", "weight": 3}]}, "unknown [[ms]] keys"),
    ],
)
def test_bad_descriptions_are_refused(data: dict, message: str) -> None:
    with pytest.raises(TopologyError, match=message.replace("[", r"\[")):
        Topology.from_dict(data)


def test_lab_up_takes_the_name_from_the_file_unless_given() -> None:
    import argparse

    from pmip6.lab.cli import add_arguments

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert parser.parse_args(["up", "lab.toml"]).name is None
    assert parser.parse_args(["up", "--name", "x", "lab.toml"]).name == "x"
    assert parser.parse_args(["down"]).name == "pm"


def test_lab_up_interrupted_while_showing_loas_removes_the_lab(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import argparse

    from pmip6.lab import cli
    from pmip6.lab.lab import Lab

    removed = []

    def interrupted(self: Lab, ms: str, timeout: float = 0) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Lab, "create", classmethod(lambda cls, topo: cls(topo, {})))
    monkeypatch.setattr(Lab, "up", lambda self, **kw: None)
    monkeypatch.setattr(Lab, "wait_loa", interrupted)
    monkeypatch.setattr(Lab, "down", lambda self, say=None: removed.append(1) or [])
    args = argparse.Namespace(
        topology=None, name="pm", mpas=None, mss=None, aaa=None, dhcp=False,
        no_daemons=False,
    )  # fmt: skip
    assert cli._up(args) == 130
    assert removed == [1]
    assert "interrupted: the lab was removed" in capsys.readouterr().err


def test_load_reads_a_file_and_name_option_wins(tmp_path: Path) -> None:
    path = tmp_path / "lab.toml"
    path.write_text('[lab]\nname = "file"\nmpas = 4\n[[ms]]\n[[ms]]\n')
    topo = Topology.load(path, name="cli")
    assert topo.name == "cli"
    assert topo.mpas == 4
    assert len(topo.stations) == 2


def test_lmap_config_is_accepted_by_the_lmap_daemon(tmp_path: Path) -> None:
    from pmip6.runtime.lmapd import load_config

    topo = Topology.default("cfg")
    path = tmp_path / "lmap.toml"
    path.write_text(topo.lmap_config())
    config = load_config(str(path))
    assert config.address == LMAP_ADDRESS
    assert config.uplink == "uplink"
    assert config.control_socket == "/run/pmip6-lab/cfg/lmap.sock"


def test_mpa_config_has_the_agreed_keys() -> None:
    topo = Topology.default("cfg")
    doc = tomllib.loads(topo.mpa_config("mpa2"))
    assert doc["mpa"]["address"] == "fd00::12"
    assert doc["mpa"]["access"] == ["br0"]
    assert doc["mpa"]["virtual_mac"] == "02:00:5e:00:53:01"
    assert doc["mpa"]["control_socket"] == "/run/pmip6-lab/cfg/mpa2.sock"
    assert doc["aaa"] == {"backend": "file", "file": "profiles.toml"}


def test_profiles_list_known_stations_only(tmp_path: Path) -> None:
    topo = Topology.from_dict({"ms": [{}, {"known": False}, {}]})
    path = tmp_path / "profiles.toml"
    path.write_text(topo.profiles())
    aaa = FileAaa(path)
    found = asyncio.run(aaa.authenticate("02:00:00:00:aa:01"))
    assert found is not None
    assert found.nai == "ms1@example.net"
    assert found.lnp == IPv6Network("2001:db8:1:1::/64")
    assert found.lmap_address == LMAP_ADDRESS
    assert asyncio.run(aaa.authenticate("02:00:00:00:aa:02")) is None
    assert asyncio.run(aaa.authenticate("02:00:00:00:aa:03")) is not None


# --- the tap's parser ----------------------------------------------------------


def _frame(src_mac: str, dst_mac: str, nh: int, payload: bytes, src: str) -> bytes:
    eth = bytes.fromhex(dst_mac.replace(":", "")) + bytes.fromhex(
        src_mac.replace(":", "")
    )
    ip6 = struct.pack("!IHBB", 6 << 28, len(payload), nh, 255)
    ip6 += IPv6Address(src).packed + IPv6Address("fe80::1").packed
    return eth + b"\x86\xdd" + ip6 + payload


MS = "02:00:00:00:aa:01"
ROUTER = "02:00:5e:00:53:01"


def test_parse_frame_classifies_nd_mh_and_tunnelled_packets() -> None:
    ra = _frame(ROUTER, MS, 58, bytes([134, 0]) + bytes(14), "fe80::1")
    f = parse_frame(ra, 1.0, "mpa1/br0", True)
    assert f is not None
    assert (f.kind, f.src_mac, f.dst_mac, f.outgoing) == ("ra", ROUTER, MS, True)
    # MLD behind a hop-by-hop header
    mld = _frame(MS, "33:33:00:00:00:16", 0, bytes([58, 0]) + bytes(6) + b"\x8f", "::")
    assert parse_frame(mld, 1.0, "x", False).kind == "mld-report"  # type: ignore[union-attr]
    pba = _frame(MS, ROUTER, 135, bytes([59, 1, 6, 0]) + bytes(12), "fd00::1")
    assert parse_frame(pba, 1.0, "x", False).kind == "pba"  # type: ignore[union-attr]
    inner = struct.pack("!IHBB", 6 << 28, 8, 58, 64) + bytes(32) + bytes([129, 0])
    tun = _frame(MS, ROUTER, 41, inner, "fd00::1")
    assert parse_frame(tun, 1.0, "x", False).kind == "tunnel:echo-reply"  # type: ignore[union-attr]
    assert parse_frame(b"\x00" * 60, 1.0, "x", False) is None


def test_handover_times_pick_the_first_of_each_after_the_move() -> None:
    loa = IPv6Address("2001:db8:1:1::10")

    def at(ts: float, where: str, out: bool, kind: str, src_mac: str, src: str):
        payload = {
            "ra": bytes([134, 0]),
            "pba": bytes([59, 1, 6, 0]),
            "pbu": bytes([59, 1, 5, 0]),
            "echo-reply": bytes([129, 0]),
            "mld": bytes([143, 0]),
        }[kind]
        nh = 135 if kind in ("pba", "pbu") else 58
        return parse_frame(
            _frame(
                src_mac, MS if kind == "ra" else ROUTER, nh, payload + bytes(14), src
            ),
            ts,
            where,
            out,
        )

    frames = [
        at(9.0, "mpa2/br0", False, "mld", MS, "fe80::2"),  # before the move
        at(10.030, "mpa2/br0", False, "mld", MS, "fe80::2"),
        at(10.0305, "mpa2/uplink", True, "pbu", "aa:aa:aa:aa:aa:aa", "fd00::12"),
        at(10.031, "mpa2/uplink", False, "pba", "aa:aa:aa:aa:aa:aa", "fd00::1"),
        at(10.032, "mpa2/br0", True, "ra", ROUTER, "fe80::1"),
        at(10.033, "mpa1/br0", False, "echo-reply", MS, str(loa)),  # old MPA
        at(10.040, "mpa2/br0", False, "echo-reply", MS, str(loa)),
        at(10.060, "mpa2/br0", False, "echo-reply", MS, str(loa)),
    ]
    t = handover_times(frames, "mpa2", "br0", "uplink", MS, loa, 10.0)  # type: ignore[arg-type]
    assert t.carrier == pytest.approx(0.030)
    assert t.to_pbu == pytest.approx(0.0005)
    assert t.to_pba == pytest.approx(0.001)
    assert t.to_ra == pytest.approx(0.002)
    assert t.to_echo_reply == pytest.approx(0.010)


def test_handover_times_report_missing_points_as_none() -> None:
    t = handover_times([], "mpa2", "br0", "uplink", MS, None, 10.0)
    assert t.first_frame is None
    assert t.to_ra is None
    assert t.carrier is None


def test_pinger_counts_replies_and_losses_by_sequence() -> None:
    script = (
        'for s in 1 2 5 6; do echo "64 bytes from ::1: icmp_seq=$s ttl=64"; done; '
        'echo "7 packets transmitted, 4 received, 42% packet loss"'
    )
    p = Pinger(["sh", "-c", script])
    p.proc.wait()
    assert p.wait_reply_after(2, timeout=2.0) == 5
    assert p.lost_between(2, 5) == 2
    stats = p.stop()
    assert stats == {"received": 4, "last": 6}
    assert p.transmitted == 7


def test_format_status_marks_missing_parts() -> None:
    report = {
        "name": "pm",
        "run_dir": "/run/pmip6-lab/pm",
        "namespaces": {"pm-cn": True, "pm-lmap": False},
        "daemons": {"lmap": {"pid": 7, "alive": False}},
        "stations": {
            "ms1": {
                "mac": MS,
                "nai": "ms1@example.net",
                "known": True,
                "at": "mpa1",
                "attached": True,
                "addresses": ["2001:db8:1:1::10"],
            }
        },
        "bindings": [{"nai": "ms1@example.net", "care_of": "fd00::11"}],
        "visitors": {"mpa1": "unavailable: no daemon listens on x"},
    }
    text = format_status(report)
    assert "pm-lmap          MISSING" in text
    assert "NOT RUNNING" in text
    assert "2001:db8:1:1::10" in text
    assert "fd00::11" in text
    assert "unavailable: no daemon" in text


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"lab": {"mpas": "x"}}, "[lab] mpas = 'x': an integer"),
        ({"lab": {"mpas": 0}}, "mpas = 0: between 1 and 50"),
        ({"lab": {"lifetime": 1.5}}, "[lab] lifetime = 1.5: an integer"),
        ({"lab": {"absent_timeout": "soon"}}, "[lab] absent_timeout = 'soon'"),
        ({"lab": {"name": 7}}, "[lab] name = 7: a string"),
        ({"lab": {"dhcp": "yes"}}, "[lab] dhcp = 'yes': true or false"),
        ({"ms": []}, "0 stations, between 1 and"),
        ({"ms": [{}] * 101}, "101 stations, between 1 and 100"),
        ({"ms": [{"lnp": "nonsense"}]}, "[[ms]] 1 lnp:"),
        ({"ms": [{}, {"known": "no"}]}, "[[ms]] 2 known = 'no': true or false"),
        ({"ms": [{"mac": 5}]}, "[[ms]] 1 mac = 5: a string"),
        ({"ms": "ms1"}, "one [[ms]] table per station"),
        # what the daemons would refuse, refused before anything is built
        ({"lab": {"log_level": "loud"}}, "log_level = 'loud': one of debug"),
        ({"lab": {"profile": "bogus"}}, "profile = 'bogus': one of draft-00"),
        ({"lab": {"dataplane": "gre"}}, "dataplane = 'gre': one of auto"),
        ({"lab": {"absent_timeout": -1}}, "absent_timeout = -1.0: 0.1 to 86400"),
        ({"lab": {"lifetime": 2}}, "lifetime = 2: 4 to 262140 seconds"),
        ({"foo": {}}, "unknown table [foo]"),
        (
            {"ms": [{}, {"name": "ms2", "lnp": "2001:db8:1:1::/64"}]},
            "ms1 and ms2 share the LNP 2001:db8:1:1::/64",
        ),
        ({"ms": [{"nai": "a@b"}, {"nai": "a@b"}]}, "two stations share a NAI"),
    ],
)
def test_bad_values_name_their_key(data: dict, message: str) -> None:
    with pytest.raises(TopologyError, match=re.escape(message)):
        Topology.from_dict(data)


def test_explicit_zero_mpas_is_not_the_default() -> None:
    with pytest.raises(TopologyError, match="mpas = 0"):
        Topology.from_dict({"lab": {"mpas": 3}}, mpas=0)


@pytest.mark.parametrize("mss", [0, -1, 101])
def test_default_refuses_station_counts_out_of_range(mss: int) -> None:
    with pytest.raises(TopologyError, match=f"mss = {mss}: between 1 and 100"):
        Topology.default("pm", mss=mss)


def test_load_failures_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nonexist.toml"
    with pytest.raises(TopologyError, match=re.escape(f"{missing}: No such file")):
        Topology.load(missing)
    broken = tmp_path / "broken.toml"
    broken.write_text("[lab\nmpas = 2\n")
    with pytest.raises(TopologyError, match=re.escape(f"{broken}: not valid TOML")):
        Topology.load(broken)
    bad = tmp_path / "bad.toml"
    bad.write_text('[lab]\nmpas = "x"\n')
    with pytest.raises(TopologyError, match=re.escape(f"{bad}: [lab] mpas = 'x'")):
        Topology.load(bad)
