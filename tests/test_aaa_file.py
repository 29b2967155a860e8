"""The TOML profiles file AAA backend."""

from __future__ import annotations

import asyncio
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

import pytest

from pmip6.aaa import create_aaa
from pmip6.aaa.base import AddressMode, MsProfile
from pmip6.aaa.file import FileAaa, ProfileFileError

GOOD = """
[[station]]
mac = "02:00:00:00:AA:01"
nai = "ms1@example.net"
lmap = "fd00::1"
lnp = "2001:db8:1:1::/64"
loa = "2001:db8:1:1::10"
address_mode = "static"
dhcp_server = "fd00::2"
default_gateway = "fe80::1"
interface_id = "::200:ff:fe00:aa01"

[[station]]
mac = "02-00-00-00-aa-02"
nai = "ms2@example.net"
lmap = "fd00::1"
lnp = "2001:db8:1:2::/64"
address_mode = "dhcpv6"

[[station]]
nai = "ms3@example.net"
lmap = "fd00::1"
lnp = "2001:db8:1:3::/64"
interface_id = 42
"""

MS1 = MsProfile(
    nai="ms1@example.net",
    lmap_address=IPv6Address("fd00::1"),
    lnp=IPv6Network("2001:db8:1:1::/64"),
    loa=IPv6Address("2001:db8:1:1::10"),
    default_gateway=IPv6Address("fe80::1"),
    address_mode=AddressMode.STATIC,
    dhcp_server=IPv6Address("fd00::2"),
    interface_id=0x0200_00FF_FE00_AA01,
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "profiles.toml"
    path.write_text(text)
    return path


def auth(aaa: FileAaa, mac: str, nai: str | None = None) -> MsProfile | None:
    return asyncio.run(aaa.authenticate(mac, nai))


def test_lookup_by_mac_in_any_spelling(tmp_path: Path) -> None:
    aaa = FileAaa(write(tmp_path, GOOD))
    assert auth(aaa, "02:00:00:00:aa:01") == MS1
    assert auth(aaa, "02:00:00:00:AA:01") == MS1
    ms2 = auth(aaa, "02:00:00:00:aa:02")
    assert ms2 is not None and ms2.nai == "ms2@example.net"
    assert ms2.address_mode is AddressMode.DHCPV6 and ms2.loa is None


def test_lookup_by_nai_wins_over_mac(tmp_path: Path) -> None:
    aaa = FileAaa(write(tmp_path, GOOD))
    # the NAI given by the access layer decides, whatever MAC the MS uses
    ms3 = auth(aaa, "02:00:00:00:aa:01", "ms3@example.net")
    assert ms3 is not None and ms3.nai == "ms3@example.net"
    assert ms3.address_mode is AddressMode.SLAAC and ms3.interface_id == 42
    assert auth(aaa, "02:00:00:00:aa:01", "nobody@example.net") is None


def test_unknown_station_is_refused(tmp_path: Path) -> None:
    aaa = FileAaa(write(tmp_path, GOOD))
    assert auth(aaa, "02:00:00:00:aa:99") is None
    assert auth(aaa, "not a mac") is None


def test_station_without_mac_is_found_only_by_nai(tmp_path: Path) -> None:
    aaa = FileAaa(write(tmp_path, GOOD))
    assert [s.mac for s in aaa.stations] == [
        "02:00:00:00:aa:01",
        "02:00:00:00:aa:02",
        None,
    ]


def test_create_aaa_resolves_relative_path(tmp_path: Path) -> None:
    write(tmp_path, GOOD)
    aaa = create_aaa({"backend": "file", "file": "profiles.toml"}, tmp_path)
    assert isinstance(aaa, FileAaa)
    assert auth(aaa, "02:00:00:00:aa:01") == MS1


BASE = 'nai = "ms@x"\nlmap = "fd00::1"\nlnp = "2001:db8:1:1::/64"\n'


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        (BASE + 'loa = "2001:db8:9::1"', r"station 1 \(ms@x\): key 'loa': .* outside"),
        (BASE + 'loa = "nonsense"', "key 'loa'"),
        ('nai = "ms@x"\nlmap = "fd00::zz"\nlnp = "2001:db8::/64"', "key 'lmap'"),
        ('nai = "ms@x"\nlmap = "fd00::1"\nlnp = "2001:db8::1/64"', "key 'lnp'"),
        ('nai = "ms@x"\nlmap = "fd00::1"\nlnp = "10.0.0.0/8"', "key 'lnp'"),
        (BASE + 'address_mode = "dhcp"', "key 'address_mode': 'dhcp' is not one"),
        (BASE + 'colour = "red"', "unknown key.*colour"),
        (BASE + 'mac = "02:00:00"', "key 'mac'"),
        (BASE + 'dhcp_server = "1.2.3.4"', "key 'dhcp_server'"),
        (BASE + "default_gateway = 7", "key 'default_gateway' must be a string"),
        (BASE + "interface_id = -1", "interface_id.*64 bits"),
        (BASE + 'interface_id = "2001:db8::1"', "interface_id.*64 bits"),
        ('lmap = "fd00::1"\nlnp = "2001:db8::/64"', "station 1: key 'nai' is missing"),
        ('nai = "ms@x"\nlmap = "fd00::1"', "station 1 \\(ms@x\\): key 'lnp' is miss"),
    ],
)
def test_bad_entry_names_entry_and_key(
    tmp_path: Path, entry: str, message: str
) -> None:
    with pytest.raises(ProfileFileError, match=message):
        FileAaa(write(tmp_path, "[[station]]\n" + entry + "\n"))


def test_duplicate_mac_is_refused(tmp_path: Path) -> None:
    text = (
        '[[station]]\nmac = "02:00:00:00:aa:01"\n'
        + BASE
        + '[[station]]\nmac = "02-00-00-00-AA-01"\n'
        + BASE.replace("ms@x", "other@x")
    )
    with pytest.raises(ProfileFileError, match=r"station 2 \(other@x\): mac .* 1"):
        FileAaa(write(tmp_path, text))


def test_duplicate_nai_is_refused(tmp_path: Path) -> None:
    text = "[[station]]\n" + BASE + "[[station]]\n" + BASE
    with pytest.raises(ProfileFileError, match=r"station 2 \(ms@x\): nai .* 1"):
        FileAaa(write(tmp_path, text))


def test_unknown_table_and_bad_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ProfileFileError, match=r"unknown table.*stations"):
        FileAaa(write(tmp_path, "[[stations]]\n" + BASE))
    with pytest.raises(ProfileFileError, match="not valid TOML"):
        FileAaa(write(tmp_path, "[[station]\n"))
    with pytest.raises(ProfileFileError, match="cannot read"):
        FileAaa(tmp_path / "absent.toml")


def test_empty_file_refuses_everyone(tmp_path: Path) -> None:
    aaa = FileAaa(write(tmp_path, ""))
    assert aaa.stations == ()
    assert auth(aaa, "02:00:00:00:aa:01", None) is None
