"""The MPA daemon's config file: defaults, and errors that name the key."""

from __future__ import annotations

from ipaddress import IPv6Address
from pathlib import Path

import pytest

from pmip6.runtime.mpad import ConfigError, load_config, parse_config

MINIMAL = {
    "mpa": {"address": "fd00::11", "access": ["br0"]},
    "aaa": {"backend": "file", "file": "profiles.toml"},
}


def _with(**mpa: object) -> dict[str, object]:
    return {"mpa": {**MINIMAL["mpa"], **mpa}, "aaa": MINIMAL["aaa"]}


def test_defaults_match_the_agreed_config() -> None:
    cfg = parse_config(MINIMAL)
    assert cfg.address == IPv6Address("fd00::11")
    assert cfg.access == ("br0",)
    assert cfg.virtual_mac == "02:00:5e:00:53:01"
    assert cfg.virtual_link_local == IPv6Address("fe80::1")
    assert (cfg.lifetime, cfg.pbu_initial_timeout, cfg.absent_timeout) == (
        300,
        1.0,
        10.0,
    )
    assert cfg.router_lifetime == 1800 and cfg.leave_delay == 3.0
    assert cfg.profile == "draft-00" and cfg.dataplane == "auto"
    assert cfg.control_socket == "/run/pmip6/mpa.sock"
    settings = cfg.settings()
    assert settings.address == cfg.address and settings.lifetime == 300


def test_file_with_relative_paths(tmp_path: Path) -> None:
    path = tmp_path / "mpa.toml"
    path.write_text(
        '[mpa]\naddress = "fd00::12"\naccess = ["br1"]\n'
        'virtual_mac = "02-00-5E-00-53-01"\n'
        'control_socket = "mpa.sock"\ndhcp_server = "fd00::2"\n'
        '[aaa]\nfile = "profiles.toml"\n'
    )
    cfg = load_config(str(path))
    assert cfg.access == ("br1",)
    assert cfg.virtual_mac == "02:00:5e:00:53:01"
    assert cfg.control_socket == str(tmp_path / "mpa.sock")
    assert cfg.dhcp_server == IPv6Address("fd00::2")
    assert cfg.base == tmp_path


@pytest.mark.parametrize(
    ("mpa", "needle"),
    [
        ({"address": "not-an-address"}, "[mpa] address"),
        ({"access": []}, "[mpa] access"),
        ({"virtual_mac": "01:00:5e:00:00:01"}, "group address"),
        ({"virtual_mac": "nope"}, "[mpa] virtual_mac"),
        ({"virtual_link_local": "fd00::1"}, "not a link-local"),
        ({"lifetime": 0}, "[mpa] lifetime"),
        ({"pbu_initial_timeout": "1"}, "[mpa] pbu_initial_timeout"),
        ({"profile": "draft-99"}, "[mpa] profile"),
        ({"dataplane": "magic"}, "[mpa] dataplane"),
        ({"log_level": "loud"}, "[mpa] log_level"),
        ({"lifetme": 300}, "[mpa] lifetme: unknown key"),
        ({"ra_mtu": 100}, "[mpa] ra_mtu"),
        # one interface is still a list: a string is refused, not guessed at
        ({"access": "br0"}, "[mpa] access: expected a list of interface names"),
        ({"access": ["lo"]}, "[mpa] access[0]: 'lo' is the loopback"),
        ({"access": ["br0", "br1", "br0"]}, "[mpa] access[2]: 'br0' is listed twice"),
        (
            {"uplink": "eth0", "access": ["br0", "eth0"]},
            "[mpa] access[1]: 'eth0' is the uplink",
        ),
        # RFC 8415 19.1 allows All_DHCP_Servers; this relay needs the server itself
        ({"dhcp_server": "fe80::1"}, "[mpa] dhcp_server: fe80::1 is a link-local"),
        ({"dhcp_server": "ff05::1:3"}, "[mpa] dhcp_server: ff05::1:3 is a multicast"),
        ({"dhcp_server": "::"}, "[mpa] dhcp_server: :: is the unspecified"),
        ({"log_level": "trace"}, "one of debug, info, warning, error, critical"),
    ],
)
def test_errors_name_the_key(mpa: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(_with(**mpa), "mpa.toml")
    assert needle in str(info.value) and str(info.value).startswith("mpa.toml: ")


def test_missing_tables(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing \[mpa\]"):
        parse_config({"aaa": {}})
    with pytest.raises(ConfigError, match=r"missing \[aaa\]"):
        parse_config({"mpa": MINIMAL["mpa"]})
    with pytest.raises(ConfigError, match=r"\[mpa\] address: required"):
        parse_config({"mpa": {"access": ["br0"]}, "aaa": {}})
    bad = tmp_path / "bad.toml"
    bad.write_text("[mpa\n")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load_config(str(bad))
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        load_config(str(tmp_path / "missing.toml"))


@pytest.mark.parametrize(
    ("aaa", "needle"),
    [
        ({"backend": "file", "file": "p.toml", "foo": 1}, "[aaa] foo: unknown key"),
        ({"backend": "ldap"}, "[aaa] backend: unknown backend 'ldap'"),
        (
            {"backend": "radius", "servers": [], "secret": "x"},
            "[aaa] secret: unknown key for backend 'radius'",
        ),
        # a radius key is no key of the file backend
        ({"file": "p.toml", "timeout": 1.0}, "[aaa] timeout: unknown key"),
    ],
)
def test_aaa_table_is_checked_while_parsing(
    aaa: dict[str, object], needle: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"mpa": MINIMAL["mpa"], "aaa": aaa}, "mpa.toml")
    assert str(info.value).startswith("mpa.toml: ") and needle in str(info.value)


def test_every_radius_key_is_accepted() -> None:
    table = {
        "backend": "radius",
        "servers": [{"address": "fd00::1", "secret": "s"}],
        "timeout": 1.0,
        "retries": 1,
        "nas_identifier": "mpa1",
        "require_message_authenticator": True,
    }
    assert parse_config({"mpa": MINIMAL["mpa"], "aaa": table}).aaa == table


def test_unknown_table_is_refused() -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({**MINIMAL, "other": {"x": 1}}, "mpa.toml")
    assert str(info.value).startswith("mpa.toml: [other]: unknown table")


def test_config_remembers_its_file_for_start_up_errors(tmp_path: Path) -> None:
    path = tmp_path / "mpa.toml"
    path.write_text(
        '[mpa]\naddress = "fd00::12"\naccess = ["br1"]\n[aaa]\nfile = "p"\n'
    )
    assert load_config(str(path)).source == str(path)


def test_dhcp_server_global_address_is_accepted() -> None:
    cfg = parse_config(_with(dhcp_server="2001:db8::2"))
    assert cfg.dhcp_server == IPv6Address("2001:db8::2")


RADIUS_SERVER = {"address": "fd00::1", "secret": "s"}


@pytest.mark.parametrize(
    ("aaa", "needle"),
    [
        (
            {"servers": [{**RADIUS_SERVER, "bogus": 1}]},
            "[aaa] servers[0].bogus: unknown key (known: address, port, secret, "
            "secret_env)",
        ),
        (
            {"servers": [RADIUS_SERVER, {**RADIUS_SERVER, "port": 70000}]},
            "[aaa] servers[1].port: expected 1 to 65535, got 70000",
        ),
        ({"servers": [RADIUS_SERVER], "timeout": 0}, "[aaa] timeout: expected a"),
        ({"servers": [RADIUS_SERVER], "retries": -1}, "[aaa] retries: expected"),
        ({"servers": "fd00::1"}, "[aaa] servers: expected a non-empty list"),
        ({"servers": [{"secret": "s"}]}, "[aaa] servers[0].address: required"),
        (
            {"servers": [{**RADIUS_SERVER, "address": "radius.example"}]},
            "[aaa] servers[0].address: 'radius.example' is not an IPv4 or IPv6",
        ),
        (
            {"servers": [RADIUS_SERVER], "require_message_authenticator": 1},
            "[aaa] require_message_authenticator: expected true or false",
        ),
    ],
)
def test_radius_values_are_checked_while_parsing(
    aaa: dict[str, object], needle: str
) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(
            {"mpa": MINIMAL["mpa"], "aaa": {"backend": "radius", **aaa}}, "mpa.toml"
        )
    assert str(info.value).startswith(f"mpa.toml: {needle}")
