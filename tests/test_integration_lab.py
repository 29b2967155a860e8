"""The whole domain in namespaces: real LMAP and MPA daemons, Linux hosts (root).

Read-only checks share one lab (``domain``): two MPAs, two known stations
starting at mpa1 and one station AAA does not know, at mpa2. Tests that move
or unplug a station get a lab of their own (``fresh``), as does the demo.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from ipaddress import IPv6Address

import pytest

from pmip6.lab.capture import Pinger, Tap
from pmip6.lab.demo import Demo
from pmip6.lab.lab import Lab, netns_list, wait_for
from pmip6.lab.topology import ACCESS_IF, Topology, mpa_address

pytestmark = [pytest.mark.root, pytest.mark.timeout(120)]

MPA1, MPA2 = str(mpa_address(1)), str(mpa_address(2))


def lab_name() -> str:
    return f"li{secrets.token_hex(3)}"


class Domain:
    def __init__(self, lab: Lab, tap: Tap, attached: float) -> None:
        self.lab = lab
        self.tap = tap
        self.attached = attached
        self.loas: dict[str, IPv6Address] = {}


@pytest.fixture(scope="module")
def domain() -> Iterator[Domain]:
    topo = Topology.from_dict(
        {
            "lab": {"name": lab_name(), "mpas": 2, "absent_timeout": 2.0},
            "ms": [
                {"name": "ms1"},
                {"name": "ms2"},
                {"name": "ms3", "known": False, "at": "mpa2"},
            ],
        }
    )
    lab = Lab.create(topo)
    tap = Tap()
    try:
        lab.up(attach=False)
        tap.add(topo.ns("mpa2"), ACCESS_IF, "mpa2/br0")
        tap.start()
        attached = time.monotonic()
        for s in topo.stations:
            lab.attach(s.name)
        d = Domain(lab, tap, attached)
        for ms in ("ms1", "ms2"):
            loa = lab.wait_loa(ms, timeout=15.0)
            assert loa is not None, f"{ms} got no LoA: {lab.global_addresses(ms)}"
            d.loas[ms] = loa
        yield d
    finally:
        tap.close()
        lab.down()
        assert not set(topo.namespaces) & netns_list()


class Fresh:
    def __init__(self, lab: Lab, loa: IPv6Address) -> None:
        self.lab = lab
        self.loa = loa


@pytest.fixture
def fresh() -> Iterator[Fresh]:
    """A lab of its own: two MPAs, ms1 attached at mpa1 with its LoA."""
    topo = Topology.from_dict({"lab": {"name": lab_name(), "absent_timeout": 2.0}})
    lab = Lab.create(topo)
    try:
        lab.up()
        loa = lab.wait_loa("ms1", timeout=15.0)
        assert loa is not None, f"ms1 got no LoA: {lab.global_addresses('ms1')}"
        assert wait_for(lambda: converged(lab, "ms1", "mpa1"), 3.0), lab.bindings()
        yield Fresh(lab, loa)
    finally:
        lab.down()
        assert not set(topo.namespaces) & netns_list()


def neighbour(lab: Lab, node: str, address: IPv6Address) -> str:
    """The node's neighbour entry for ``address`` ("" when it has none)."""
    out = lab.run(node, ["ip", "-6", "neigh", "show", "to", str(address)])
    return out.stdout.strip()


def logs(lab: Lab) -> str:
    """The end of every daemon's log, for failure messages."""
    return "\n".join(f"--- {d}\n{lab.log_tail(d, 25)}" for d in lab.daemon_names())


def nai(ms: str) -> str:
    return f"{ms}@example.net"


def converged(lab: Lab, ms: str, mpa: str) -> bool:
    """One binding pointing at ``mpa`` and exactly one visitor entry, there."""
    b = lab.binding_for(nai(ms))
    entries = lab.visitor_entries(nai(ms))
    return (
        b is not None
        and b["care_of"] == str(mpa_address(lab.topo.mpa_index(mpa)))
        and list(entries) == [mpa]
        and len(entries[mpa]) == 1
    )


def test_ms_autoconfigures_its_loa_from_its_lnp(domain: Domain) -> None:
    lab = domain.lab
    for ms in ("ms1", "ms2"):
        spec = lab.topo.station(ms)
        # the kernel's own SLAAC address: LNP + EUI-64 (seed 8.1)
        assert domain.loas[ms] == spec.expected_loa
        lnp_addresses = [
            a for a in lab.global_addresses(ms) if IPv6Address(a["local"]) in spec.lnp
        ]
        assert len(lnp_addresses) == 1


def test_two_stations_on_one_mpa_are_both_served(domain: Domain) -> None:
    lab = domain.lab
    for ms in ("ms1", "ms2"):
        assert wait_for(lambda ms=ms: converged(lab, ms, "mpa1"), 3.0), (
            lab.bindings(),
            lab.all_visitors(),
            logs(lab),
        )
        b = lab.binding_for(nai(ms))
        assert b is not None
        assert b["loa"] == str(domain.loas[ms])
        assert lab.ping("cn", domain.loas[ms])
    assert len(lab.visitors("mpa1")) == 2


def test_status_shows_daemons_bindings_and_visitors(domain: Domain) -> None:
    report = domain.lab.status()
    assert all(d["alive"] for d in report["daemons"].values())
    assert {b["nai"] for b in report["bindings"]} == {nai("ms1"), nai("ms2")}, logs(
        domain.lab
    )
    assert len(report["visitors"]["mpa1"]) == 2
    assert report["stations"]["ms1"]["addresses"] == [str(domain.loas["ms1"])]


def test_unknown_station_gets_no_service(domain: Domain) -> None:
    lab = domain.lab
    ms3 = lab.topo.station("ms3")
    # its kernel solicits every second; give it a few tries
    time.sleep(max(0.0, domain.attached + 3.5 - time.monotonic()))
    assert lab.global_addresses("ms3") == []
    routes = lab.run("ms3", ["ip", "-6", "route", "show", "default"]).stdout
    assert routes.strip() == ""
    assert all(b["nai"] != ms3.nai for b in lab.bindings())
    # the MPA may remember the refusal (so it does not ask AAA per frame), but
    # holds no LoA, no tunnel and no registration for it
    for v in lab.visitors("mpa2"):
        if v["mac"] == ms3.mac:
            assert v["state"] == "refused"
            assert v["loa"] is None and v["tunnel"] is None
    ras = [
        f
        for f in domain.tap.snapshot()
        if f.kind == "ra" and f.outgoing and f.dst_mac in (ms3.mac, "33:33:00:00:00:01")
    ]
    assert ras == []
    # it did ask: the MPA saw its router solicitations
    assert any(f.kind == "rs" and f.src_mac == ms3.mac for f in domain.tap.snapshot())


def test_handover_keeps_loa_ping_and_moves_the_binding(fresh: Fresh) -> None:
    lab, loa = fresh.lab, fresh.loa
    pinger = Pinger(
        lab.command("cn", ["ping", "-6", "-n", "-i", "0.02", "-W", "1", str(loa)])
    )
    try:
        assert pinger.wait_reply_after(0, 5.0) is not None
        for to in ("mpa2", "mpa1"):
            before = pinger.last_seq()
            lab.move("ms1", to)
            after = pinger.wait_reply_after(before, 5.0)
            assert after is not None, f"no echo reply through {to}"
            assert pinger.lost_between(before, after) < 50  # under a second
            assert lab.loa("ms1") == loa
            assert wait_for(lambda to=to: converged(lab, "ms1", to), 3.0), (
                lab.bindings(),
                lab.all_visitors(),
                logs(lab),
            )
            # the previous MPA forgot the MS's neighbour entry too: pings that
            # reached it after the MS left must not leave one that would hold
            # packets back if the MS returned within a second or two
            old = "mpa1" if to == "mpa2" else "mpa2"
            assert wait_for(lambda old=old: not neighbour(lab, old, loa), 2.0), (
                neighbour(lab, old, loa)
            )
    finally:
        pinger.stop()


def test_station_that_leaves_briefly_keeps_its_binding(fresh: Fresh) -> None:
    # out of the bridge for less than the MPA's leave delay (3 s): a blip
    lab, loa = fresh.lab, fresh.loa
    lab.detach("ms1")
    time.sleep(1.0)
    lab.attach("ms1")
    assert wait_for(lambda: converged(lab, "ms1", "mpa1"), 5.0, interval=0.1), (
        lab.bindings(),
        lab.all_visitors(),
        logs(lab),
    )
    assert lab.loa("ms1") == loa
    assert lab.ping("cn", loa)


def test_station_that_switches_off_and_on_is_served_again(fresh: Fresh) -> None:
    # the host takes its own link down (radio off): its port loses carrier,
    # the MPA de-registers it; back up, the host configures itself afresh
    lab, loa = fresh.lab, fresh.loa
    lab.run("ms1", ["ip", "link", "set", "eth0", "down"])
    gone = wait_for(
        lambda: (
            lab.binding_for(nai("ms1")) is None and not lab.visitor_entries(nai("ms1"))
        ),
        10.0,
        interval=0.1,
    )
    assert gone, (lab.bindings(), lab.all_visitors())
    assert not lab.ping("cn", loa, count=1)
    lab.run("ms1", ["ip", "link", "set", "eth0", "up"])
    assert lab.wait_loa("ms1", timeout=10.0) == loa
    assert wait_for(lambda: converged(lab, "ms1", "mpa1"), 5.0, interval=0.1), (
        lab.bindings(),
        lab.all_visitors(),
        logs(lab),
    )
    b = lab.binding_for(nai("ms1"))
    assert b is not None and b["loa"] == str(loa)
    assert lab.ping("cn", loa)


def test_station_away_past_its_deregistration_is_served_again(
    fresh: Fresh,
) -> None:
    # the host comes back with its address kept and sends no DAD and no RS:
    # the MPA's BCC gets 141, and it probes for the LoA (NS to its EUI-64)
    lab, loa = fresh.lab, fresh.loa
    lab.detach("ms1")
    try:
        gone = wait_for(lambda: lab.binding_for(nai("ms1")) is None, 10.0, 0.1)
        assert gone, lab.bindings()
    finally:
        lab.attach("ms1")
    ok = wait_for(lambda: converged(lab, "ms1", "mpa1"), 5.0, interval=0.1)
    assert ok, (lab.bindings(), lab.all_visitors())
    assert lab.ping("cn", loa)


def test_twenty_quick_moves_end_in_one_consistent_binding(fresh: Fresh) -> None:
    lab, loa = fresh.lab, fresh.loa
    assert lab.state["at"]["ms1"] == "mpa1"
    for i in range(20):
        lab.move("ms1", "mpa2" if i % 2 == 0 else "mpa1")
        time.sleep(0.05)
    assert lab.state["at"]["ms1"] == "mpa1"
    ok = wait_for(lambda: converged(lab, "ms1", "mpa1"), 10.0, interval=0.1)
    assert ok, (lab.bindings(), lab.all_visitors())
    assert lab.loa("ms1") == loa
    bindings = [b for b in lab.bindings() if b["nai"] == nai("ms1")]
    assert len(bindings) == 1
    assert bindings[0]["loa"] == str(loa)
    total = sum(
        1 for vs in lab.all_visitors().values() for v in vs if v["nai"] == nai("ms1")
    )
    assert total == 1
    assert lab.ping("cn", loa)


def test_restart_brings_a_killed_mpa_back_and_the_ms_is_served(fresh: Fresh) -> None:
    lab, loa = fresh.lab, fresh.loa
    name = lab.topo.name
    old = lab.state["pids"]["mpa1"]
    os.kill(old, signal.SIGKILL)
    assert wait_for(lambda: not lab.daemon_alive("mpa1"), 5.0)

    def status() -> dict:
        st = pmip6("lab", "status", "--name", name, "--json")
        return dict(json.loads(st.stdout))

    assert status()["daemons"]["mpa1"]["alive"] is False
    before = lab.log_path("mpa1").read_bytes()
    rs = pmip6("lab", "restart", "--name", name, "mpa1")
    assert rs.returncode == 0, rs.stderr + logs(lab)
    assert "mpa1 is running" in rs.stdout
    report = status()
    new = report["daemons"]["mpa1"]["pid"]
    assert new != old and report["daemons"]["mpa1"]["alive"] is True
    assert Lab.open(name).state["pids"]["mpa1"] == new
    # the same log, appended: the first run's lines are still there
    after = lab.log_path("mpa1").read_bytes()
    assert after.startswith(before) and len(after) > len(before)
    # this process's copy of the state, so the fixture's down() stops it
    lab.state["pids"]["mpa1"] = new
    ok = wait_for(lambda: converged(lab, "ms1", "mpa1"), 10.0, interval=0.1)
    assert ok, (lab.bindings(), lab.all_visitors(), logs(lab))
    assert lab.ping("cn", loa), logs(lab)
    # a running daemon is stopped first, then started again
    again = pmip6("lab", "restart", "--name", name, "mpa1")
    assert again.returncode == 0, again.stderr
    assert f"stopped mpa1 (pid {new})" in again.stdout
    unknown = pmip6("lab", "restart", "--name", name, "mpa7")
    assert unknown.returncode == 1
    assert "no daemon 'mpa7'" in unknown.stderr


def pmip6(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pmip6", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_demo_passes_and_removes_its_lab() -> None:
    import io

    out = io.StringIO()
    name = lab_name()
    code = Demo(name, out=out).run()
    text = out.getvalue()
    assert code == 0, text
    assert "PASSED" in text
    assert text.count("layer-3 handover") == 2
    assert not {n for n in netns_list() if n.startswith(name + "-")}


def default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_demo_interrupted_removes_its_lab() -> None:
    name = lab_name()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pmip6", "demo", "--name", name],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        # a shell's background job ignores SIGINT, and children inherit that
        preexec_fn=default_sigint,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "step 1" in line:
                break
        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=30)[0]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, rest
    assert "removed" in rest
    assert not {n for n in netns_list() if n.startswith(name + "-")}
