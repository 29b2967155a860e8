"""The control socket: one daemon per socket (and per LMAP binding store),
and what ``pmip6 ctl`` prints from it.

A second daemon started with the same config refuses at start with one line
naming the file and key (exit 2) and leaves the running one's socket, store,
forwarding and access links alone; a stale socket (its daemon died) is
replaced. ``pmip6 ctl`` shows an absent value as ``-`` and keeps JSON null.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pmip6.cli import main
from pmip6.lab.netns import Namespace, local_veth, namespace
from pmip6.runtime.control import ControlServer, SocketInUse, request
from pmip6.runtime.ctl import format_status, format_table

REFUSED = {
    "nai": None,
    "mac": "02:00:00:00:aa:01",
    "loa": None,
    "state": "refused",
    "lifetime": 0,
    "dhcp_server": None,
}


@pytest.fixture
def running(tmp_path: Path) -> Iterator[str]:
    """A control server answering ``status`` and ``visitors``, from a thread."""
    path = str(tmp_path / "d.sock")
    loop = asyncio.new_event_loop()
    server = ControlServer(
        path,
        {
            "status": lambda request: {"role": "first"},
            "visitors": lambda request: [REFUSED],
        },
    )
    loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield path
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.run_until_complete(server.close())
        loop.close()


def test_table_shows_absent_values_as_a_dash() -> None:
    lines = format_table([REFUSED]).splitlines()
    assert lines[1].split() == ["-", "02:00:00:00:aa:01", "-", "refused", "0", "-"]


def test_status_shows_absent_values_as_a_dash() -> None:
    text = format_status({"dataplane": None, "timings": {"a": None}, "n": 0})
    assert text.splitlines() == ["dataplane: -", "timings:   a=-", "n:         0"]


def test_ctl_prints_a_dash_and_json_keeps_null(
    running: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["ctl", "visitors", "--socket", running]) == 0
    out = capsys.readouterr().out
    assert "None" not in out
    assert out.splitlines()[1].split()[0] == "-"

    assert main(["ctl", "visitors", "--socket", running, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [REFUSED]


def test_second_server_on_a_listened_path_is_refused(running: str) -> None:
    second = ControlServer(running, {})
    with pytest.raises(SocketInUse, match="another daemon is listening"):
        second.claim()
    # closing the refused one removes nothing: the first still answers
    asyncio.run(second.close())
    assert request(running, "status") == {"role": "first"}


def test_stale_socket_is_replaced(tmp_path: Path) -> None:
    path = str(tmp_path / "d.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as dead:
        dead.bind(path)  # left behind, as by a daemon that was killed
    stale = os.stat(path).st_ino

    async def serve() -> object:
        server = ControlServer(path, {"status": lambda request: "up"})
        await server.start()
        try:
            return await asyncio.to_thread(request, path, "status")
        finally:
            await server.close()

    assert os.stat(path).st_ino == stale
    assert asyncio.run(serve()) == "up"
    assert not os.path.exists(path)


def test_a_file_that_is_no_socket_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "d.sock"
    path.write_text("keep me")
    server = ControlServer(str(path), {})
    with pytest.raises(OSError, match="exists and is not a socket"):
        server.claim()
    asyncio.run(server.close())
    assert path.read_text() == "keep me"


def test_close_leaves_a_path_that_is_no_longer_ours(tmp_path: Path) -> None:
    path = str(tmp_path / "d.sock")

    async def run() -> None:
        server = ControlServer(path, {})
        await server.start()
        os.unlink(path)  # removed by hand, then taken by someone else
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as other:
            other.bind(path)
            await server.close()
            assert os.path.exists(path)

    asyncio.run(run())


# --- the daemons, started twice ----------------------------------------------------


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 20
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"daemon exited: {proc.communicate()[0]}")
        assert time.monotonic() < deadline, "no control socket"
        time.sleep(0.05)


def _stop(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    return out


def _answers(sock: Path) -> bool:
    try:
        request(str(sock), "status", timeout=1.0)
    except (ConnectionError, OSError):
        return False
    return True


def _spawn(cmd: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def _once(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=30)


def _pmip6(*argv: str, ns: Namespace | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "pmip6", *argv]
    return ["ip", "netns", "exec", ns.name, *cmd] if ns else cmd


def _lmap_config(
    tmp_path: Path,
    name: str,
    sock: str,
    dataplane: str = "none",
    state: str = "lmap.db",
) -> Path:
    path = tmp_path / name
    path.write_text(
        '[lmap]\naddress = "fd00::1"\nprefixes = ["2001:db8:1::/48"]\n'
        f'mpas = ["fd00::/64"]\ndataplane = "{dataplane}"\nstate = "{state}"\n'
        f'control_socket = "{sock}"\n'
    )
    return path


def _forwarding_state(ns: Namespace) -> list[str]:
    out = [
        ns.run("ip", "-6", "route", "show", "table", "all", "proto", "155").stdout,
        ns.run("ip", "-6", "rule", "show").stdout,
    ]
    for dev in ("up0", "lo"):
        out.append(ns.run("tc", "filter", "show", "dev", dev, "ingress").stdout)
    return out


@pytest.mark.root
def test_second_lmap_in_the_namespace_leaves_the_forwarding_alone(
    tmp_path: Path,
) -> None:
    # another socket and another store, but the same kernel: refused
    config = _lmap_config(tmp_path, "lmap.toml", "lmap.sock", "auto")
    other = _lmap_config(tmp_path, "other.toml", "other.sock", "auto", "other.db")
    sock = tmp_path / "lmap.sock"
    with namespace("pm-one-") as ns:
        ns.run("ip", "link", "set", "lo", "up")
        local_veth(ns, "up0", "up1", "fd00::1/64")
        first = _spawn(_pmip6("lmap", "--config", str(config), ns=ns))
        try:
            _wait_for(sock, first)
            before = _forwarding_state(ns)
            second = _once(_pmip6("lmap", "--config", str(other), ns=ns))
            assert second.returncode == 2, second.stderr
            (line,) = second.stderr.splitlines()
            assert line.startswith(f"pmip6 lmap: {other}: [lmap] dataplane: ")
            assert "another pmip6 daemon programs this network namespace" in line
            assert _forwarding_state(ns) == before
            assert _answers(sock)
        finally:
            out = _stop(first)
        assert first.returncode == 0, out


@pytest.mark.root
def test_second_lmap_refuses_and_the_first_keeps_serving(tmp_path: Path) -> None:
    config = _lmap_config(tmp_path, "lmap.toml", "lmap.sock")
    sock = tmp_path / "lmap.sock"
    with namespace("pm-one-") as ns:
        first = _spawn(_pmip6("lmap", "--config", str(config), ns=ns))
        try:
            _wait_for(sock, first)

            # same config: the control socket is taken
            second = _once(_pmip6("lmap", "--config", str(config), ns=ns))
            assert second.returncode == 2, second.stderr
            assert second.stderr.splitlines() == [
                f"pmip6 lmap: {config}: [lmap] control_socket: {sock}: "
                "another daemon is listening"
            ]

            # another socket, same store: the store is locked
            other = _lmap_config(tmp_path, "other.toml", "other.sock")
            third = _once(_pmip6("lmap", "--config", str(other), ns=ns))
            assert third.returncode == 2, third.stderr
            (line,) = third.stderr.splitlines()
            assert line.startswith(f"pmip6 lmap: {other}: [lmap] state: ")
            assert "in use by another LMAP" in line
            assert not (tmp_path / "other.sock").exists()

            assert sock.exists()
            status = _once(_pmip6("ctl", "status", "--socket", str(sock), "--json"))
            assert json.loads(status.stdout)["role"] == "lmap"

            # a killed LMAP leaves a stale socket: the next one replaces it
            first.kill()
            first.communicate(timeout=20)
            assert sock.exists()
            first = _spawn(_pmip6("lmap", "--config", str(config), ns=ns))
            deadline = time.monotonic() + 20
            while not _answers(sock):
                assert first.poll() is None, first.communicate()[0]
                assert time.monotonic() < deadline, "no answer on the socket"
                time.sleep(0.05)
        finally:
            out = _stop(first)
        assert first.returncode == 0, out
        assert not sock.exists()


@pytest.mark.root
def test_second_mpa_refuses_and_leaves_the_access_link(tmp_path: Path) -> None:
    (tmp_path / "p.toml").write_text("")
    config = tmp_path / "mpa.toml"
    config.write_text(
        '[mpa]\naddress = "fd00::11"\naccess = ["br0"]\ndataplane = "none"\n'
        'control_socket = "mpa.sock"\n[aaa]\nfile = "p.toml"\n'
    )
    sock = tmp_path / "mpa.sock"
    with namespace("pm-one-") as ns:
        ns.run("ip", "link", "set", "lo", "up")
        local_veth(ns, "up0", "up1", "fd00::11/64")
        ns.run("ip", "link", "add", "br0", "type", "bridge")
        first = _spawn(_pmip6("mpa", "--config", str(config), ns=ns))
        try:
            _wait_for(sock, first)
            taken = ns.run("ip", "-6", "addr", "show", "dev", "br0").stdout
            assert "fe80::1/64" in taken

            second = _once(_pmip6("mpa", "--config", str(config), ns=ns))
            assert second.returncode == 2, second.stderr
            assert second.stderr.splitlines() == [
                f"pmip6 mpa: {config}: [mpa] control_socket: {sock}: "
                "another daemon is listening"
            ]
            # the running MPA's link keeps what it set; its socket answers
            link = ns.run("ip", "link", "show", "br0").stdout
            assert "02:00:5e:00:53:01" in link
            assert ns.run("ip", "-6", "addr", "show", "dev", "br0").stdout == taken
            visitors = _once(_pmip6("ctl", "visitors", "--socket", str(sock)))
            assert visitors.returncode == 0 and visitors.stdout == "(none)\n"
        finally:
            out = _stop(first)
        assert first.returncode == 0, out
        assert not sock.exists()
