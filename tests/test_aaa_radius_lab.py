"""A lab whose MPAs get profiles from FreeRADIUS (``aaa = "radius"``): the MS
is registered with the profile RADIUS sent, an unknown MS is refused, and
the lab's teardown stops FreeRADIUS."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest

from pmip6.lab.lab import Lab, pid_alive, wait_for
from pmip6.lab.topology import MsSpec, Topology, ms_lnp, ms_mac

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(
        shutil.which("freeradius") is None, reason="FreeRADIUS is not installed"
    ),
]


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    name = f"ra{os.getpid() % 100000}"
    topo = replace(Topology.default(name, mpas=1, mss=1), aaa="radius")
    topo = topo.with_station(
        MsSpec(
            name="ms2",
            mac=ms_mac(2),
            nai="ms2@example.net",
            lnp=ms_lnp(2),
            at="mpa1",
            known=False,
        )
    )
    lab = Lab.create(topo)
    try:
        lab.up(say=lambda _: None)
        yield lab
    finally:
        radius_pid = lab.state["pids"].get("radius")
        assert not lab.down()
        assert radius_pid is None or not pid_alive(radius_pid)


def visitor(lab: Lab, nai: str) -> dict[str, Any] | None:
    for v in lab.visitors("mpa1"):
        if v.get("nai") == nai and v.get("state") == "registered":
            return v
    return None


def test_station_registers_with_the_radius_profile(lab: Lab) -> None:
    assert lab.state["pids"].get("radius")
    entry = wait_for(lambda: visitor(lab, "ms1@example.net"), 15.0)
    assert entry is not None, lab.log_tail("mpa1")
    assert entry["lnp"] == "2001:db8:1:1::/64"
    assert entry["lmap"] == "fd00::1"
    log = (lab.topo.run_dir / "radius" / "radiusd.log").read_text()
    assert "Login OK: [02-00-00-00-AA-01]" in log


def test_unknown_station_is_refused_by_radius(lab: Lab) -> None:
    log_path = lab.topo.run_dir / "radius" / "radiusd.log"
    assert wait_for(lambda: "02-00-00-00-AA-02" in log_path.read_text(), 15.0)
    assert "Login incorrect" in log_path.read_text()
    assert not any(v.get("nai") == "ms2@example.net" for v in lab.visitors("mpa1"))


def test_demo_passes_with_radius() -> None:
    import io

    from pmip6.lab.demo import Demo
    from pmip6.lab.lab import netns_list

    out = io.StringIO()
    name = f"rd{os.getpid() % 100000}"
    code = Demo(name, out=out, aaa="radius").run()
    text = out.getvalue()
    assert code == 0, text
    assert "PASSED" in text and text.count("layer-3 handover") == 2
    assert "FreeRADIUS for AAA" in text
    assert not {n for n in netns_list() if n.startswith(name + "-")}
