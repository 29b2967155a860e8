"""Stateful DHCPv6 end to end (seed 6.3 item 3, Figure 9), as root.

A lab with Kea (one pool per LNP) and the MPAs relaying: stations run the stock
``dhclient -6``, get an address from their own LNP's pool, the MPA registers it
with the LMAP, and traffic flows. After a handover the station keeps address
and lease, and renews through the new MPA. With Kea down the MPA says so and
nothing breaks. The tests share one lab and run in file order.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
from collections.abc import Iterator
from ipaddress import IPv6Address
from typing import Any

import pytest

from pmip6.lab.kea import Lease, default_pool
from pmip6.lab.lab import Lab, netns_list, pid_alive, wait_for
from pmip6.lab.topology import CN_ADDRESS, Topology, mpa_address
from pmip6.runtime.control import request

pytestmark = [pytest.mark.root, pytest.mark.timeout(150)]


if not (shutil.which("kea-dhcp6") and shutil.which("dhclient")):
    pytest.skip("needs kea-dhcp6 and dhclient", allow_module_level=True)


def nai(ms: str) -> str:
    return f"{ms}@example.net"


def in_pool(lab: Lab, ms: str, address: IPv6Address) -> bool:
    first, last = (
        IPv6Address(a.strip())
        for a in default_pool(lab.topo.station(ms).lnp).split("-")
    )
    return first <= address <= last


def mpa_status(lab: Lab, mpa: str) -> dict[str, Any]:
    return dict(request(lab.socket(mpa), "status", timeout=2.0))


def kea_lease(lab: Lab, address: IPv6Address) -> Lease | None:
    for lease in lab.kea().leases():
        if lease.address == address:
            return lease
    return None


@pytest.fixture(scope="module")
def lab() -> Iterator[Lab]:
    topo = Topology.from_dict(
        {
            "lab": {"name": f"dh{secrets.token_hex(3)}", "mpas": 2, "dhcp": True},
            "ms": [{"name": "ms1"}, {"name": "ms2"}, {"name": "ms3"}],
        }
    )
    lab = Lab.create(topo)
    try:
        lab.up(attach=False)
        for ms in ("ms1", "ms2"):
            lab.attach(ms)
        for ms in ("ms1", "ms2"):
            lab.start_dhclient(ms)
        yield lab
    finally:
        run_dir = str(topo.run_dir)
        lab.down()
        assert not set(topo.namespaces) & netns_list()
        # no Kea and no dhclient of this lab survive it
        left = subprocess.run(
            ["pgrep", "-f", run_dir], capture_output=True, text=True
        ).stdout.split()
        assert [pid for pid in left if pid_alive(int(pid))] == []


def test_stations_get_addresses_from_their_own_pools_and_are_registered(
    lab: Lab,
) -> None:
    for ms in ("ms1", "ms2"):
        loa = lab.wait_loa(ms, timeout=20.0)
        assert loa is not None, f"{ms}: no address: {lab.global_addresses(ms)}"
        # from the pool of this station's LNP, as a DHCPv6 /128 (the RA has
        # M set and A clear: no SLAAC address beside it)
        assert in_pool(lab, ms, loa), (ms, loa)
        (entry,) = lab.global_addresses(ms)
        assert entry["prefixlen"] == 128

        # Kea holds the lease; the MPA registered the address as the LoA
        lease = kea_lease(lab, loa)
        assert lease is not None and lease.valid_lifetime == 30
        binding = wait_for(lambda ms=ms: lab.binding_for(nai(ms)), 10.0)
        assert binding is not None and binding["loa"] == str(loa)
        assert binding["care_of"] == str(mpa_address(1))

        # and traffic flows: station to CN and back through LMAP and MPA
        assert wait_for(lambda ms=ms: lab.ping(ms, CN_ADDRESS, count=1), 10.0)

    status = mpa_status(lab, "mpa1")
    assert status["dhcp_relayed"] >= 4 and status["dhcp_replies"] >= 4


def test_handover_keeps_the_address_and_renews_through_the_new_mpa(lab: Lab) -> None:
    loa = lab.loa("ms1")
    assert loa is not None
    before = kea_lease(lab, loa)
    assert before is not None
    replies_before = mpa_status(lab, "mpa2")["dhcp_replies"]

    lab.move("ms1", "mpa2")

    moved = wait_for(
        lambda: (
            (lab.binding_for(nai("ms1")) or {}).get("care_of") == str(mpa_address(2))
        ),
        10.0,
    )
    assert moved, lab.binding_for(nai("ms1"))
    assert lab.loa("ms1") == loa
    assert wait_for(lambda: lab.ping("ms1", CN_ADDRESS, count=1), 10.0)

    # dhclient renews at T1 (10 s): the Renew is relayed by mpa2 now, Kea
    # extends the same lease, and the station keeps the same address
    renewed = wait_for(
        lambda: mpa_status(lab, "mpa2")["dhcp_replies"] > replies_before, 20.0, 0.5
    )
    assert renewed, "no DHCPv6 reply through mpa2 within 20 s"
    after = wait_for(
        lambda: (lease := kea_lease(lab, loa)) and lease.expire > before.expire
        and lease, 5.0
    )  # fmt: skip
    assert after is not None and after.duid == before.duid
    assert lab.loa("ms1") == loa
    assert lab.binding_for(nai("ms1"))["loa"] == str(loa)  # type: ignore[index]


def test_with_kea_down_the_mpa_warns_and_the_station_waits_for_it(lab: Lab) -> None:
    kea_pid = lab.state["pids"]["kea"]
    os.kill(kea_pid, signal.SIGTERM)
    assert wait_for(lambda: not pid_alive(kea_pid), 5.0)

    # a new station (ms3, LNP 3) comes up at mpa1 while the server is away
    lab.attach("ms3")
    lab.start_dhclient("ms3")
    log = lab.log_path("mpa1")
    warned = wait_for(
        lambda: "DHCPv6 server fd00::2 did not answer" in log.read_text(), 15.0, 0.2
    )
    assert warned, lab.log_tail("mpa1")
    assert lab.loa("ms3") is None
    assert lab.binding_for(nai("ms3")) is None
    (entry,) = [v for v in lab.visitors("mpa1") if v["nai"] == nai("ms3")]
    assert entry["state"] == "awaiting-loa" and entry["loa"] is None

    # the daemons live on, one warning line, no traceback
    for daemon in lab.daemon_names():
        assert lab.daemon_alive(daemon), daemon
    text = log.read_text()
    assert text.count("did not answer") == 1
    assert "Traceback" not in text
    # the stations already served keep working
    assert lab.ping("ms2", CN_ADDRESS, count=1)

    # the server comes back: the station's next Solicit gets through
    lab.start_kea()
    loa = lab.wait_loa("ms3", timeout=40.0)
    assert loa is not None and in_pool(lab, "ms3", loa)
    assert wait_for(lambda: lab.binding_for(nai("ms3")), 10.0)


@pytest.mark.skipif(shutil.which("freeradius") is None, reason="no FreeRADIUS")
def test_radius_profile_names_the_server_and_the_mode() -> None:
    # the same flow when the profile (dhcpv6 mode, PMIP6-Home-DHCP6-Server-
    # Address) comes from FreeRADIUS instead of the profiles file
    topo = Topology.from_dict(
        {
            "lab": {
                "name": f"dr{secrets.token_hex(3)}",
                "mpas": 1,
                "dhcp": True,
                "aaa": "radius",
            },
            "ms": [{"name": "ms1"}],
        }
    )
    lab = Lab.create(topo)
    try:
        lab.up()
        loa = lab.wait_loa("ms1", timeout=20.0)
        assert loa is not None and in_pool(lab, "ms1", loa)
        binding = wait_for(lambda: lab.binding_for(nai("ms1")), 10.0)
        assert binding is not None and binding["loa"] == str(loa)
        (visitor,) = lab.visitors("mpa1")
        assert visitor["dhcp_server"] == "fd00::2"
    finally:
        lab.down()
        assert not set(topo.namespaces) & netns_list()
