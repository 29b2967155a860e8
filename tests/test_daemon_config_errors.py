"""What both daemons refuse the same way: one line naming the file (and the
key), exit status 2."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import ModuleType

import pytest

from pmip6.cli import main
from pmip6.dataplane import DataPlaneError
from pmip6.runtime import config as config_module
from pmip6.runtime import lmapd, mpad
from pmip6.runtime.config import LOG_LEVELS

CONFIGS = {
    "lmap": '[lmap]\naddress = "fd00::1"\nprefixes = ["2001:db8:1::/48"]\n'
    'mpas = ["fd00::/64"]\nstate = "lmap.db"\ncontrol_socket = "lmap.sock"\n',
    "mpa": '[mpa]\naddress = "fd00::11"\naccess = ["nope0"]\n'
    'control_socket = "mpa.sock"\n[aaa]\nfile = "p.toml"\n',
}


def _write(tmp_path: Path, daemon: str, extra: str = "") -> Path:
    (tmp_path / "p.toml").write_text("")
    head, aaa, tail = CONFIGS[daemon].partition("[aaa]")
    path = tmp_path / f"{daemon}.toml"
    path.write_text(head + extra + aaa + tail)
    return path


@pytest.mark.parametrize("daemon", ["lmap", "mpa"])
def test_config_that_is_not_utf8_names_the_file(
    daemon: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "bin.toml"
    path.write_bytes(b"\xff\xfe")
    assert main([daemon, "--config", str(path)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == f"pmip6 {daemon}: {path}: not UTF-8 text (byte 0xff at offset 0)"


def test_bad_byte_is_located(tmp_path: Path) -> None:
    path = tmp_path / "latin1.toml"
    path.write_bytes("# café\n".encode() + b"x = '\xfe'\n")
    with pytest.raises(config_module.ConfigError) as info:
        config_module.read_toml(str(path))
    assert str(info.value) == f"{path}: not UTF-8 text (byte 0xfe at offset 13)"


@pytest.mark.parametrize("daemon", ["lmap", "mpa"])
def test_unavailable_dataplane_names_file_and_key(
    daemon: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def unavailable(name: str) -> object:
        raise DataPlaneError(f"data plane {name!r} is unavailable: no such module")

    monkeypatch.setattr(config_module, "create", unavailable)
    path = _write(tmp_path, daemon, 'dataplane = "ip6tnl"\n')
    assert main([daemon, "--config", str(path)]) == 2
    (line,) = capsys.readouterr().err.splitlines()
    assert line == (
        f"pmip6 {daemon}: {path}: [{daemon}] dataplane: 'ip6tnl' is unavailable "
        "here: no such module"
    )
    # nothing is left claimed: the next start finds the paths free
    assert not (tmp_path / f"{daemon}.sock").exists()


@pytest.mark.parametrize("module", [lmapd, mpad])
def test_both_daemons_take_every_log_level(module: ModuleType, tmp_path: Path) -> None:
    assert LOG_LEVELS == ("debug", "info", "warning", "error", "critical")
    daemon = module.__name__.rsplit(".", 1)[1][:-1]
    for level in LOG_LEVELS:
        path = _write(tmp_path, daemon, f'log_level = "{level.upper()}"\n')
        assert module.load_config(str(path)).log_level == level
        parser = argparse.ArgumentParser()
        module.add_arguments(parser)
        args = parser.parse_args(["--config", "x", "--log-level", level.title()])
        assert args.log_level == level


@pytest.mark.parametrize("daemon", ["lmap", "mpa"])
def test_unknown_log_level_lists_the_levels(daemon: str, tmp_path: Path) -> None:
    module = lmapd if daemon == "lmap" else mpad
    path = _write(tmp_path, daemon, 'log_level = "trace"\n')
    with pytest.raises(config_module.ConfigError) as info:
        module.load_config(str(path))
    assert str(info.value) == (
        f"{path}: [{daemon}] log_level: 'trace' is not one of debug, info, "
        "warning, error, critical"
    )
