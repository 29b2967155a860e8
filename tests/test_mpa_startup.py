"""``pmip6 mpa`` start-up: usage and host errors name the file and key, exit 2.

Errors found when the daemon starts (an interface that does not exist, an
uplink that cannot be found) are refused before anything in the kernel changed,
and a daemon that never started does not log that it stopped.
"""

from __future__ import annotations

import argparse
import logging
import subprocess
import sys
import time
from collections.abc import Iterator
from ipaddress import IPv6Address
from pathlib import Path

import pytest

from pmip6.lab.netns import Namespace, local_veth, namespace
from pmip6.runtime import mpad
from pmip6.runtime.mpad import ConfigError, check_host, parse_config


def _write(
    tmp_path: Path, mpa: str, aaa: str = 'backend = "file"\nfile = "p.toml"'
) -> Path:
    (tmp_path / "p.toml").write_text("")
    path = tmp_path / "mpa.toml"
    path.write_text(
        f"[mpa]\n{mpa}\ncontrol_socket = 'mpa.sock'\n"
        f"log_level = 'debug'\n\n[aaa]\n{aaa}\n"
    )
    return path


def _mpa(
    config: Path, *extra: str, ns: Namespace | None = None, timeout: float = 30.0
) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "pmip6", "mpa", "--config", str(config), *extra]
    if ns is not None:
        argv = ["ip", "netns", "exec", ns.name, *argv]
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)


# --- usage errors -----------------------------------------------------------------


def test_bad_log_level_is_a_usage_error(tmp_path: Path) -> None:
    config = _write(
        tmp_path, 'address = "fd00::11"\naccess = ["nope0"]\ndataplane = "none"'
    )
    proc = _mpa(config, "--log-level", "bogus")
    assert proc.returncode == 2
    assert "pmip6 mpa: error: argument --log-level" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_log_level_option_takes_any_case() -> None:
    parser = argparse.ArgumentParser()
    mpad.add_arguments(parser)
    args = parser.parse_args(["--config", "x", "--log-level", "DEBUG"])
    assert args.log_level == "debug"


def test_unknown_aaa_backend_is_refused_before_start(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        'address = "fd00::11"\naccess = ["nope0"]\ndataplane = "none"',
        aaa='backend = "ldap"',
    )
    proc = _mpa(config)
    assert proc.returncode == 2
    assert proc.stderr.startswith(f"pmip6 mpa: {config}: [aaa] backend: ")
    assert "'ldap'" in proc.stderr and "ERROR" not in proc.stderr


# --- errors found at start --------------------------------------------------------


def test_unknown_access_interface_names_file_and_key(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        'address = "fd00::11"\naccess = ["nope0"]\ndataplane = "none"\n'
        "configure_access = false",
    )
    proc = _mpa(config)
    assert proc.returncode == 2
    assert proc.stderr.endswith(
        f"pmip6 mpa: {config}: [mpa] access: no interface named 'nope0'\n"
    )
    assert "ERROR" not in proc.stderr and "stopped" not in proc.stderr


def test_unknown_uplink_names_file_and_key(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        'address = "fd00::11"\naccess = ["nope0"]\nuplink = "nope1"\n'
        'dataplane = "none"\nconfigure_access = false',
    )
    proc = _mpa(config)
    assert proc.returncode == 2
    assert proc.stderr.endswith(
        f"pmip6 mpa: {config}: [mpa] uplink: no interface named 'nope1'\n"
    )
    assert "stopped" not in proc.stderr


def test_unreadable_profiles_file_names_the_config(tmp_path: Path) -> None:
    config = _write(
        tmp_path,
        'address = "fd00::11"\naccess = ["nope0"]\nuplink = "lo"\n'
        'dataplane = "none"\nconfigure_access = false',
        aaa='file = "missing.toml"',
    )
    proc = _mpa(config)
    assert proc.returncode == 2
    assert f"pmip6 mpa: {config}: " in proc.stderr
    assert "missing.toml" in proc.stderr and "Traceback" not in proc.stderr


# --- check_host without a namespace (interfaces faked) ------------------------------


@pytest.fixture
def links(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Interface name -> kind for check_host; ``fd00::11`` is on ``up0``."""
    table = {"br0": "bridge", "eth1": "veth", "lo2": "loopback", "up0": ""}
    held = {IPv6Address("fd00::11"): "up0"}
    monkeypatch.setattr(mpad, "link_kind", table.get)
    monkeypatch.setattr(mpad, "address_interface", held.get)
    yield table


def _config(**mpa: object) -> mpad.MpaConfig:
    return parse_config(
        {
            "mpa": {"address": "fd00::11", "access": ["br0"], **mpa},
            "aaa": {"file": "p.toml"},
        },
        "mpa.toml",
    )


def test_loopback_by_kind_is_refused(links: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as info:
        check_host(_config(access=["br0", "lo2"]), "seg6")
    assert str(info.value) == (
        "mpa.toml: [mpa] access: 'lo2' is the loopback, not an access link"
    )


def test_the_interface_holding_the_address_is_no_access_link(
    links: dict[str, str],
) -> None:
    # no uplink set: it is the interface holding [mpa] address
    with pytest.raises(ConfigError) as info:
        check_host(_config(access=["up0"]), "seg6")
    assert str(info.value).startswith("mpa.toml: [mpa] access: 'up0' is the uplink")


def test_bridge_access_and_held_address_start_quietly(
    links: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "pmip6.mpa"):
        host = check_host(_config(), "seg6")
    assert host.uplink == "up0" and host.bridges == {"br0"}
    assert caplog.records == []


def test_plain_access_interface_is_used_with_one_warning(
    links: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "pmip6.mpa"):
        host = check_host(_config(access=["br0", "eth1"]), "seg6")
    assert host.bridges == {"br0"}
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "eth1 is not a bridge" in record.getMessage()
    assert "no FDB events" in record.getMessage()


def test_address_on_no_interface_warns(
    links: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, "pmip6.mpa"):
        host = check_host(_config(address="fd00::99", uplink="up0"), "seg6")
    assert host.uplink == "up0"
    [record] = caplog.records
    assert "fd00::99 is on no interface" in record.getMessage()


def test_uplink_default_needs_the_address_on_an_interface(
    links: dict[str, str],
) -> None:
    with pytest.raises(ConfigError) as info:
        check_host(_config(address="fd00::99"), "seg6")
    assert str(info.value).startswith("mpa.toml: [mpa] uplink: not set")
    # without forwarding there is nothing to tunnel from: no uplink needed
    assert check_host(_config(address="fd00::99"), "none").uplink == ""


# --- in a namespace: the kernel is left as it was ------------------------------------


def _kernel_state(ns: Namespace) -> list[str]:
    return [
        ns.run(*argv).stdout
        for argv in (
            ("ip", "-d", "link", "show"),
            ("ip", "-6", "addr", "show"),
            ("ip", "-6", "route", "show", "table", "all"),
            ("ip", "-6", "rule", "show"),
            ("sysctl", "net.ipv6.conf.all.forwarding"),
        )
    ]


@pytest.mark.root
def test_start_up_error_leaves_the_kernel_alone(tmp_path: Path) -> None:
    with namespace("pm-mpa-") as ns:
        ns.run("ip", "link", "set", "lo", "up")
        local_veth(ns, "up0", "up1", "fd00::11/64")
        ns.run("ip", "link", "add", "acc0", "type", "veth", "peer", "name", "acc1")
        before = _kernel_state(ns)
        for access in ('["nope0"]', '["acc0", "nope0"]'):
            config = _write(
                tmp_path, f'address = "fd00::11"\naccess = {access}\ndataplane = "auto"'
            )
            proc = _mpa(config, ns=ns)
            assert proc.returncode == 2, proc.stderr
            assert proc.stderr.endswith(
                f"pmip6 mpa: {config}: [mpa] access: no interface named 'nope0'\n"
            )
            assert "stopped" not in proc.stderr
            assert _kernel_state(ns) == before


@pytest.mark.root
def test_plain_access_interface_serves_with_warnings(tmp_path: Path) -> None:
    with namespace("pm-mpa-") as ns:
        ns.run("ip", "link", "set", "lo", "up")
        # a veth: a plain Ethernet interface, as for a point-to-point access link
        ns.run("ip", "link", "add", "acc0", "type", "veth", "peer", "name", "acc1")
        config = _write(
            tmp_path,
            'address = "fd00::11"\naccess = ["acc0"]\nuplink = "lo"\n'
            'dataplane = "none"',
        )
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns.name, sys.executable, "-m", "pmip6", "mpa",
             "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 15
            sock = tmp_path / "mpa.sock"
            while not sock.exists() and proc.poll() is None:
                assert time.monotonic() < deadline, "no control socket"
                time.sleep(0.05)
            assert proc.poll() is None
            # the daemon took the plain interface over as an access link
            link = ns.run("ip", "link", "show", "acc0").stdout
            assert "02:00:5e:00:53:01" in link
        finally:
            proc.terminate()
            out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0, out
        warnings = [line for line in out.splitlines() if " WARNING " in line]
        assert sum("acc0 is not a bridge" in w for w in warnings) == 1, out
        assert sum("fd00::11 is on no interface" in w for w in warnings) == 1, out
        assert "MPA fd00::11 stopped" in out
