"""The lab's namespaces, links and life cycle, without daemons (root).

Each test builds its own lab with a random name and removes it in a fixture.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator

import pytest

from pmip6.lab import lab as lab_module
from pmip6.lab.lab import Lab, LabError, netns_list
from pmip6.lab.topology import Topology

pytestmark = pytest.mark.root


def lab_name() -> str:
    return f"lb{secrets.token_hex(3)}"


@pytest.fixture
def bare() -> Iterator[Lab]:
    lab = Lab.create(Topology.default(lab_name(), mpas=3, mss=2))
    lab.up(daemons=False)
    try:
        yield lab
    finally:
        lab.down()
        assert not set(lab.topo.namespaces) & netns_list()


def links(lab: Lab, node: str) -> dict[str, dict]:
    out = lab_module.ip("-j", "link", "show", ns=lab.topo.ns(node))
    return {entry["ifname"]: entry for entry in json.loads(out)}


def test_up_builds_every_namespace_and_link(bare: Lab) -> None:
    assert set(bare.topo.namespaces) <= netns_list()
    ms1 = links(bare, "ms1")["eth0"]
    assert ms1["address"] == "02:00:00:00:aa:01"
    # both stations start in mpa1's bridge, up
    mpa1 = links(bare, "mpa1")
    assert mpa1["ms1"]["master"] == "br0"
    assert mpa1["ms2"]["master"] == "br0"
    assert "LOWER_UP" in ms1["flags"]
    assert mpa1["br0"]["address"] == "02:00:5e:00:53:01"
    # the MS is an ordinary host, with the lab's documented timers
    out = bare.run(
        "ms1", ["sysctl", "-n", "net.ipv6.conf.eth0.accept_ra",
                "net.ipv6.conf.eth0.forwarding",
                "net.ipv6.conf.eth0.router_solicitation_interval"],
    ).stdout.split()  # fmt: skip
    assert out == ["1", "0", "1"]
    # transport: the LMAP reaches every MPA, the CN reaches the LMAP
    assert bare.ping("lmap", "fd00::13", count=1)  # type: ignore[arg-type]
    assert bare.ping("cn", "2001:db8:ffff::1", count=1)  # type: ignore[arg-type]
    # state for later invocations
    again = Lab.open(bare.topo.name)
    assert again.state["at"] == {"ms1": "mpa1", "ms2": "mpa1"}


def test_move_carries_the_peer_to_the_other_bridge(bare: Lab) -> None:
    _, took = bare.move("ms1", "mpa3")
    assert took > 0
    assert "ms1" not in links(bare, "mpa1")
    assert links(bare, "mpa3")["ms1"]["master"] == "br0"
    assert "LOWER_UP" in links(bare, "ms1")["eth0"]["flags"]
    assert Lab.open(bare.topo.name).state["at"]["ms1"] == "mpa3"
    with pytest.raises(LabError, match="at mpa3 already"):
        bare.move("ms1", "mpa3")


def test_detach_drops_the_carrier_and_attach_restores_it(bare: Lab) -> None:
    bare.detach("ms2")
    assert "NO-CARRIER" in links(bare, "ms2")["eth0"]["flags"]
    assert "master" not in links(bare, "mpa1")["ms2"]
    bare.attach("ms2")
    assert "LOWER_UP" in links(bare, "ms2")["eth0"]["flags"]


def test_up_refuses_a_lab_that_exists(bare: Lab) -> None:
    with pytest.raises(LabError, match="exists"):
        Lab.create(Topology.default(bare.topo.name))


def test_status_reports_nodes_and_missing_daemons(bare: Lab) -> None:
    report = bare.status()
    assert all(report["namespaces"].values())
    assert not any(d["alive"] for d in report["daemons"].values())
    assert report["stations"]["ms2"]["at"] == "mpa1"
    assert "no daemon listens" in report["bindings"]


def test_failure_while_building_removes_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topo = Topology.default(lab_name())
    real = lab_module.sysctl

    def broken(ns: str, **values: object) -> None:
        if ns.endswith("-ms1"):
            raise LabError("injected failure")
        real(ns, **values)  # type: ignore[arg-type]

    monkeypatch.setattr(lab_module, "sysctl", broken)
    lab = Lab.create(topo)
    with pytest.raises(LabError, match="injected"):
        lab.up(daemons=False)
    assert not set(topo.namespaces) & netns_list()
    assert not topo.run_dir.exists()


def test_interrupt_while_building_removes_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    topo = Topology.default(lab_name())

    def interrupted(self: Lab, say: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(Lab, "start_daemons", interrupted)
    lab = Lab.create(topo)
    with pytest.raises(KeyboardInterrupt):
        lab.up()
    assert not set(topo.namespaces) & netns_list()


def test_a_daemon_that_dies_at_start_fails_up_and_cleans(tmp_path) -> None:
    topo = Topology.default(lab_name())
    lab = Lab.create(topo)
    lab._build(lambda _: None)
    try:
        # a config the daemon refuses: it exits at once
        (topo.run_dir / "lmap.toml").write_text("[lmap]\naddress = 'nonsense'\n")
        lab.start_daemon("lmap")
        with pytest.raises(LabError, match="exited at start-up"):
            lab.wait_daemon("lmap", timeout=10.0)
    finally:
        lab.down()
    assert not set(topo.namespaces) & netns_list()


def pmip6(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pmip6", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_cli_up_exec_move_status_down() -> None:
    name = lab_name()
    try:
        up = pmip6("lab", "up", "--name", name, "--no-daemons", "--mpas", "2")
        assert up.returncode == 0, up.stderr
        again = pmip6("lab", "up", "--name", name, "--no-daemons")
        assert again.returncode == 1
        assert "exists" in again.stderr
        ex = pmip6("lab", "exec", "--name", name, "ms1", "--", "ip", "-br", "link")
        assert "02:00:00:00:aa:01" in ex.stdout
        mv = pmip6("lab", "move", "--name", name, "ms1", "mpa2")
        assert mv.returncode == 0, mv.stderr
        assert "moved from mpa1 to mpa2" in mv.stdout
        st = pmip6("lab", "status", "--name", name, "--json")
        report = json.loads(st.stdout)
        assert report["stations"]["ms1"]["at"] == "mpa2"
        assert st.returncode == 1  # no daemons running
    finally:
        down = pmip6("lab", "down", "--name", name)
    assert down.returncode == 0, down.stderr
    assert not {n for n in netns_list() if n.startswith(name + "-")}
    missing = pmip6("lab", "down", "--name", name)
    assert missing.returncode == 1
    assert "no lab named" in missing.stderr


def test_not_root_is_told(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from pmip6.cli import main

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert main(["lab", "status"]) == 1
    assert "needs root" in capsys.readouterr().err
    assert main(["demo"]) == 1
    assert "needs root" in capsys.readouterr().err


def test_down_without_state_removes_the_labs_namespaces_only() -> None:
    topo = Topology.default(lab_name(), mpas=3)
    lab = Lab.create(topo)
    lab.up(daemons=False)
    # a namespace that merely shares the prefix is not the lab's
    other = f"{topo.name}-mpa-x"
    lab_module.ip("netns", "add", other)
    try:
        (topo.run_dir / "lab.json").unlink()
        down = pmip6("lab", "down", "--name", topo.name)
        assert down.returncode == 0, down.stderr
        assert not set(topo.namespaces) & netns_list()
        assert other in netns_list()
    finally:
        lab.down()
        lab_module.ip("netns", "del", other, check=False)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--mpas", "0"], "mpas = 0: between 1 and 50"),
        (["--mss", "0"], "mss = 0: between 1 and 100"),
        (["--mss", "-1"], "mss = -1: between 1 and 100"),
        (["--mss", "101"], "mss = 101: between 1 and 100"),
        (["NONEXIST.toml"], "{dir}/NONEXIST.toml: No such file or directory"),
        (["BROKEN.toml"], "{dir}/BROKEN.toml: not valid TOML"),
        (["BADMPAS.toml"], "{dir}/BADMPAS.toml: [lab] mpas = 'x': an integer"),
        (["NOMS.toml"], "{dir}/NOMS.toml: [[ms]]: 0 stations"),
    ],
)
def test_cli_up_refuses_bad_options_and_files_in_one_line(
    tmp_path, options: list[str], message: str
) -> None:
    (tmp_path / "BROKEN.toml").write_text("[lab\nmpas = 2\n")
    (tmp_path / "BADMPAS.toml").write_text('[lab]\nmpas = "x"\n')
    (tmp_path / "NOMS.toml").write_text("ms = []\n")
    options = [str(tmp_path / o) if o.endswith(".toml") else o for o in options]
    message = message.format(dir=tmp_path)
    name = lab_name()
    try:
        up = pmip6("lab", "up", "--name", name, "--no-daemons", *options)
        assert up.returncode == 2, up.stderr
        assert up.stderr.startswith(f"pmip6 lab: {message}")
        assert len(up.stderr.splitlines()) == 1, up.stderr
        assert not {n for n in netns_list() if n.startswith(name + "-")}
    finally:
        pmip6("lab", "down", "--name", name)
