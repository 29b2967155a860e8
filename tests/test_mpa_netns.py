"""The MPA daemon with an unmodified Linux host on its bridge, and a real LMAP.

    LMAP (fd00::1) --- up0 --- MPA (fd00::11) [br0] --- ms0 ~ eth0 MS

The MS runs nothing of ours: its kernel sends MLD reports and RSs, forms an
address from the unicast RA and runs DAD for it (seed 6.2, 6.3, 8.1).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

import pytest

from pmip6.lab.kea import KeaServer
from pmip6.lab.netns import Lab, Namespace, addr_nodad
from pmip6.runtime.control import request

pytestmark = pytest.mark.root

LNP = IPv6Network("2001:db8:1:1::/64")
VMAC = "02:00:5e:00:53:01"
MS_MAC = "02:00:00:00:aa:01"


def _config(
    run: Path, dataplane: str, lmap_dataplane: str, mpas: int
) -> dict[str, Path]:
    paths = {"lmap": run / "lmap.toml", "profiles": run / "profiles.toml"}
    paths["lmap"].write_text(
        f"""[lmap]
address = "fd00::1"
uplink = "tr0"
prefixes = ["2001:db8:1::/48"]
mpas = ["fd00::/64"]
max_lifetime = 3600
dataplane = "{lmap_dataplane}"
state = "{run}/lmap.db"
control_socket = "{run}/lmap.sock"
"""
    )
    for k in range(1, mpas + 1):
        role = _mpa_role(k)
        paths[role] = run / f"{role}.toml"
        paths[role].write_text(
            f"""[mpa]
address = "fd00::1{k}"
uplink = "up0"
access = ["br0"]
virtual_mac = "{VMAC}"
virtual_link_local = "fe80::1"
lifetime = 300
router_lifetime = 1800
dataplane = "{dataplane}"
control_socket = "{run}/{role}.sock"
log_level = "debug"

[aaa]
backend = "file"
file = "profiles.toml"
"""
        )
    paths["profiles"].write_text(
        f"""[[station]]
mac = "{MS_MAC}"
nai = "ms1@example.net"
lmap = "fd00::1"
lnp = "{LNP}"
"""
    )
    return paths


def _mpa_role(k: int) -> str:
    return "mpa" if k == 1 else f"mpa{k}"


def _wait(what: str, probe: Any, timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _ms_global(ms: Namespace) -> IPv6Address | None:
    out = ms.run("ip", "-6", "-j", "addr", "show", "dev", "eth0").stdout
    for link in json.loads(out or "[]"):
        for a in link.get("addr_info", []):
            addr = IPv6Address(a["local"])
            if addr in LNP and not a.get("tentative"):
                return addr
    return None


def _rdisc6_fields(out: str) -> dict[str, str]:
    """rdisc6's "Name : value" lines (first occurrence of each name)."""
    fields: dict[str, str] = {}
    for line in out.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() and name.strip() not in fields:
            fields[name.strip()] = value.strip()
    return fields


class MpaLab:
    """The namespaces, the daemons and their logs.

    CN (2001:db8:ffff::2) -- LMAP [tr0 bridge, fd00::1] -- MPAk (fd00::1k) [br0]
    with the MS's veth peer ``ms0`` in MPA1's bridge.
    """

    def __init__(
        self,
        lab: Lab,
        run: Path,
        dataplane: str = "auto",
        lmap_dataplane: str = "none",
        mpas: int = 1,
    ) -> None:
        self.lab = lab
        self.run = run
        self.cn = lab.add("cn")
        self.lmap = lab.add("lmap")
        self.mpas = [lab.add(f"mpa{k}") for k in range(1, mpas + 1)]
        self.mpa = self.mpas[0]
        self.ms = lab.add("ms1")

        lab.veth(self.cn, "eth0", self.lmap, "cn0")
        addr_nodad(self.cn, "eth0", "2001:db8:ffff::2/64")
        addr_nodad(self.lmap, "cn0", "2001:db8:ffff::1/64")
        self.cn.run("ip", "-6", "route", "add", "default", "via", "2001:db8:ffff::1")

        self.lmap.run("ip", "link", "add", "tr0", "type", "bridge")
        self.lmap.run("ip", "link", "set", "tr0", "up")
        addr_nodad(self.lmap, "tr0", "fd00::1/64")
        for k, mpa in enumerate(self.mpas, 1):
            lab.veth(self.lmap, f"tr{k}", mpa, "upx")
            self.lmap.run("ip", "link", "set", f"tr{k}", "master", "tr0", "up")
            mpa.run("ip", "link", "set", "upx", "name", "up0")
            addr_nodad(mpa, "up0", f"fd00::1{k}/64")
            mpa.run("ip", "link", "add", "br0", "type", "bridge")
            mpa.run("ip", "link", "set", "br0", "up")

        lab.veth(self.mpa, "ms0", self.ms, "eth0", up=False)
        self.mpa.run("ip", "link", "set", "ms0", "master", "br0", "up")
        self.ms.run("ip", "link", "set", "eth0", "address", MS_MAC)
        self.ms.sysctl("net.ipv6.conf.eth0.forwarding", 0)
        self.ms.sysctl("net.ipv6.conf.eth0.accept_ra", 1)
        self.paths = _config(run, dataplane, lmap_dataplane, mpas)
        self.procs: list[subprocess.Popen[bytes]] = []

    def start_all(self) -> None:
        self.start("lmap", self.lmap)
        for k, mpa in enumerate(self.mpas, 1):
            self.start(_mpa_role(k), mpa)

    def visitors(self, k: int = 1) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = request(
            str(self.run / f"{_mpa_role(k)}.sock"), "visitors"
        )
        return result

    def start(self, role: str, ns: Namespace) -> None:
        log = open(self.run / f"{role}.log", "wb")  # noqa: SIM115 - closed by the child
        proc = ns.popen(
            sys.executable,
            "-m",
            "pmip6",
            "lmap" if role == "lmap" else "mpa",
            "--config",
            str(self.paths[role]),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        self.procs.append(proc)
        sock = self.run / f"{role}.sock"
        _wait(
            f"{role} control socket", lambda: sock.exists() or proc.poll() is not None
        )
        if proc.poll() is not None:
            raise AssertionError(f"{role} exited:\n{self.log(role)}")

    def log(self, role: str) -> str:
        return (self.run / f"{role}.log").read_text(errors="replace")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def mpalab(tmp_path: Path) -> Iterator[MpaLab]:
    with Lab("pm-mpa-") as lab:
        env = MpaLab(lab, tmp_path)
        try:
            yield env
        finally:
            env.stop()


def test_linux_ms_gets_ra_and_autoconfigures(mpalab: MpaLab) -> None:
    mpalab.start("lmap", mpalab.lmap)
    mpalab.start("mpa", mpalab.mpa)
    mpalab.ms.run("ip", "link", "set", "eth0", "up")

    # first boot: BCC -> 141 -> RA -> SLAAC -> DAD NS -> PBU with AHA
    try:
        loa = _wait("an address in the LNP on the MS", lambda: _ms_global(mpalab.ms))
        visitors = _wait(
            "the MPA to register the MS",
            lambda: [
                v
                for v in request(str(mpalab.run / "mpa.sock"), "visitors")
                if v["state"] == "registered"
            ],
        )
    except AssertionError:
        print(mpalab.log("mpa"))
        print(mpalab.log("lmap"))
        raise
    # seed 8.1: the LNP plus the EUI-64 interface id of the MS's MAC
    assert loa == IPv6Address("2001:db8:1:1:0:ff:fe00:aa01")
    [v] = visitors
    assert (v["nai"], v["mac"], v["loa"], v["lnp"]) == (
        "ms1@example.net",
        MS_MAC,
        str(loa),
        str(LNP),
    )
    bindings = request(str(mpalab.run / "lmap.sock"), "bindings")
    assert [b["nai"] for b in bindings] == ["ms1@example.net"]

    # rdisc6 on the unmodified host shows what the seed's 6.2 asks for
    out = mpalab.ms.run("rdisc6", "-1", "-w", "1500", "eth0").stdout
    fields = _rdisc6_fields(out)
    assert fields["Prefix"] == str(LNP)
    assert fields["On-link"] == "No"
    assert fields["Autonomous address conf."] == "Yes"
    assert fields["Stateful address conf."] == "No"
    assert fields["Router lifetime"].startswith("1800 ")
    assert fields["Source link-layer address"] == VMAC.upper()
    assert "from fe80::1" in out

    # the host's default route points at the virtual link-local address, and
    # there is no on-link route for the LNP (L=0: all traffic via the router)
    routes = mpalab.ms.run("ip", "-6", "route", "show", "dev", "eth0").stdout
    assert "default via fe80::1" in routes
    assert str(LNP) not in routes

    # the data plane delivers the MS's LNP, its LoA with it, on the bridge
    # (seed 7.3: everything the LMAP tunnels for the MS)
    mpa_routes = mpalab.mpa.run("ip", "-6", "route", "show", str(LNP)).stdout
    assert "br0" in mpa_routes

    status = request(str(mpalab.run / "mpa.sock"), "status")
    assert status["visitors"] == 1 and status["ra_sent"] >= 2

    # the operator's view
    ctl = [sys.executable, "-m", "pmip6", "ctl"]
    sock = ["--socket", str(mpalab.run / "mpa.sock")]
    table = subprocess.run(
        [*ctl, "visitors", *sock], capture_output=True, text=True, check=True
    ).stdout
    header, row = table.splitlines()
    assert header.split()[:6] == ["NAI", "MAC", "LOA", "LNP", "LMAP", "STATE"]
    assert row.split()[:6] == [
        "ms1@example.net",
        MS_MAC,
        str(loa),
        str(LNP),
        "fd00::1",
        "registered",
    ]
    as_json = subprocess.run(
        [*ctl, "visitors", "--json", *sock], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(as_json)[0]["loa"] == str(loa)


def test_unknown_station_gets_no_ra(mpalab: MpaLab) -> None:
    mpalab.paths["profiles"].write_text("")  # nobody is authorised
    mpalab.start("lmap", mpalab.lmap)
    mpalab.start("mpa", mpalab.mpa)
    mpalab.ms.run("ip", "link", "set", "eth0", "up")
    _wait(
        "the MPA to refuse the MS",
        lambda: [
            v
            for v in request(str(mpalab.run / "mpa.sock"), "visitors")
            if v["state"] == "refused"
        ],
    )
    proc = mpalab.ms.run("rdisc6", "-1", "-w", "800", "-r", "2", "eth0", check=False)
    assert proc.returncode != 0 and "Prefix" not in proc.stdout
    assert _ms_global(mpalab.ms) is None
    assert mpalab.log("mpa").count("AAA refused") == 1


def test_stop_removes_state_and_socket(mpalab: MpaLab) -> None:
    mpalab.start("lmap", mpalab.lmap)
    mpalab.start("mpa", mpalab.mpa)
    mpalab.ms.run("ip", "link", "set", "eth0", "up")
    loa = _wait("an address in the LNP on the MS", lambda: _ms_global(mpalab.ms))
    _wait(
        "the MPA's route to the LNP",
        lambda: "br0" in mpalab.mpa.run("ip", "-6", "route", "show", str(LNP)).stdout,
    )
    mpa = mpalab.procs[1]
    mpa.terminate()
    assert mpa.wait(timeout=10) == 0
    assert not (mpalab.run / "mpa.sock").exists()
    assert mpalab.mpa.run("ip", "-6", "route", "show", str(LNP)).stdout == ""
    route = mpalab.mpa.run("ip", "-6", "route", "get", str(loa), check=False).stdout
    assert "br0" not in route
    # no de-registration on stop: the LMAP still holds the binding
    bindings = request(str(mpalab.run / "lmap.sock"), "bindings")
    assert [b["nai"] for b in bindings] == ["ms1@example.net"]


def test_station_leaving_is_deregistered_after_leave_delay(mpalab: MpaLab) -> None:
    env = mpalab
    env.start_all()
    env.ms.run("ip", "link", "set", "eth0", "up")
    _wait(
        "the MPA to register the MS",
        lambda: [v for v in env.visitors() if v["state"] == "registered"],
    )
    # the port goes away: the bridge drops the MS's FDB entry at once
    env.mpa.run("ip", "link", "del", "ms0")
    t0 = time.monotonic()
    _wait(
        "the LMAP to drop the binding",
        lambda: request(str(env.run / "lmap.sock"), "bindings") == [],
    )
    # no revocation came within leave_delay (3 s), so the MPA de-registered
    assert time.monotonic() - t0 >= 2.5
    assert env.visitors() == []
    assert "left the access link; de-registering" in env.log("mpa")
    assert "de-registered" in env.log("mpa")


@pytest.fixture
def roamlab(tmp_path: Path) -> Iterator[MpaLab]:
    with Lab("pm-mpa-") as lab:
        env = MpaLab(lab, tmp_path, lmap_dataplane="auto", mpas=2)
        try:
            yield env
        finally:
            env.stop()


def _ping(cn: Namespace, loa: IPv6Address) -> bool:
    return cn.ok("ping", "-6", "-c", "1", "-W", "1", str(loa), timeout=5)


def test_roam_keeps_the_address_and_traffic(roamlab: MpaLab) -> None:
    env = roamlab
    env.start_all()
    env.ms.run("ip", "link", "set", "eth0", "up")
    loa = _wait("an address in the LNP on the MS", lambda: _ms_global(env.ms))
    _wait("CN -> MS through MPA1", lambda: _ping(env.cn, loa))

    # the roam: the MS's port leaves MPA1's bridge and joins MPA2's; the MS
    # sees its carrier drop and return, and sends no RS and no DAD
    env.mpa.run("ip", "link", "set", "ms0", "netns", env.mpas[1].name)
    env.mpas[1].run("ip", "link", "set", "ms0", "master", "br0", "up")
    try:
        # MPA2 learns the LoA from the LMAP (Binding Cache Confirmation)
        moved = _wait(
            "MPA2 to register the MS",
            lambda: [v for v in env.visitors(2) if v["state"] == "registered"],
        )
        assert moved[0]["loa"] == str(loa)
        # MPA1 got the revocation: no entry, no forwarding, no de-registration
        _wait("MPA1 to drop the MS", lambda: env.visitors(1) == [])
        _wait("CN -> MS through MPA2", lambda: _ping(env.cn, loa))
    except AssertionError:
        for role in ("mpa", "mpa2", "lmap"):
            print(f"--- {role}\n{env.log(role)}")
        raise
    assert _ms_global(env.ms) == loa
    [binding] = request(str(env.run / "lmap.sock"), "bindings")
    assert binding["care_of"] == "fd00::12"
    assert env.mpa.run("ip", "-6", "route", "show", str(LNP)).stdout == ""
    time.sleep(3.5)  # past MPA1's leave_delay: still no de-registration
    [binding] = request(str(env.run / "lmap.sock"), "bindings")
    assert binding["care_of"] == "fd00::12"
    assert "binding revoked" in env.log("mpa")
    assert "de-registering" not in env.log("mpa")


@pytest.mark.skipif(
    shutil.which("kea-dhcp6") is None or shutil.which("dhclient") is None,
    reason="needs kea-dhcp6 and dhclient",
)
def test_dhcpv6_station_gets_its_lease_registered(mpalab: MpaLab) -> None:
    env = mpalab
    env.paths["profiles"].write_text(
        f"""[[station]]
mac = "{MS_MAC}"
nai = "ms1@example.net"
lmap = "fd00::1"
lnp = "{LNP}"
address_mode = "dhcpv6"
dhcp_server = "fd00::2"
"""
    )
    addr_nodad(env.lmap, "tr0", "fd00::2/64")
    kea = KeaServer(env.run / "kea", env.lmap.name, "tr0", "fd00::2", {LNP: None})
    (env.run / "kea").mkdir()
    dhclient: subprocess.Popen[bytes] | None = None
    kea.start()
    try:
        env.start_all()
        env.ms.run("ip", "link", "set", "eth0", "up")
        # M=1 in the RA, A=0: the host's kernel forms no address itself
        _wait(
            "the RA (default route)",
            lambda: (
                "default via fe80::1"
                in env.ms.run("ip", "-6", "route", "show", "dev", "eth0").stdout
            ),
        )
        # dhclient binds to the link-local address: wait until DAD is done
        _wait(
            "the MS's link-local address",
            lambda: (
                "tentative"
                not in env.ms.run("ip", "-6", "addr", "show", "dev", "eth0").stdout
            ),
        )
        dhclient = env.ms.popen(
            "dhclient",
            "-6",
            "-d",
            "-lf",
            str(env.run / "dhclient.leases"),
            "-pf",
            str(env.run / "dhclient.pid"),
            "-v",
            "eth0",
            stdout=subprocess.DEVNULL,
            stderr=open(env.run / "dhclient.log", "wb"),  # noqa: SIM115
        )
        loa = _wait("a leased address on the MS", lambda: _ms_global(env.ms), 30)
        assert loa in {lease.address for lease in kea.leases()}
        [v] = _wait(
            "the MPA to register the lease",
            lambda: [v for v in env.visitors() if v["state"] == "registered"],
        )
        assert v["loa"] == str(loa)
        status = request(str(env.run / "mpa.sock"), "status")
        assert status["dhcp_relayed"] >= 2 and status["dhcp_replies"] >= 2
    except AssertionError:
        print(env.log("mpa"))
        print((env.run / "dhclient.log").read_text(errors="replace"))
        raise
    finally:
        if dhclient is not None:
            dhclient.kill()
            dhclient.wait()
        kea.stop()


@pytest.fixture
def cnlab(tmp_path: Path) -> Iterator[MpaLab]:
    with Lab("pm-mpa-") as lab:
        env = MpaLab(lab, tmp_path, lmap_dataplane="auto")
        try:
            yield env
        finally:
            env.stop()


def test_restarted_mpa_takes_its_station_back(cnlab: MpaLab) -> None:
    env = cnlab
    env.start_all()
    env.ms.run("ip", "link", "set", "eth0", "up")
    loa = _wait("an address in the LNP on the MS", lambda: _ms_global(env.ms))
    _wait("CN -> MS", lambda: _ping(env.cn, loa))

    mpa = env.procs[1]
    mpa.terminate()
    assert mpa.wait(timeout=10) == 0
    env.procs.remove(mpa)
    env.start("mpa", env.mpa)
    # the bridge still knows the MS: its FDB entry brings it back (BCC, then
    # the LMAP's AHA), whatever sequence number the new process starts from
    try:
        [v] = _wait(
            "the restarted MPA to register the MS",
            lambda: [v for v in env.visitors() if v["state"] == "registered"],
        )
        assert v["loa"] == str(loa)
        _wait("CN -> MS after the restart", lambda: _ping(env.cn, loa))
    except AssertionError:
        print(env.log("mpa"))
        print(env.log("lmap"))
        raise


def test_other_addresses_in_the_lnp_are_tunnelled_too(cnlab: MpaLab) -> None:
    # seed 7.3: the MPA intercepts all packets from the MS, so a second
    # address in its LNP (as a privacy/temporary address is) reaches the CN
    # through the tunnel and is answered back through it, like the LoA
    env = cnlab
    env.start_all()
    env.ms.run("ip", "link", "set", "eth0", "up")
    loa = _wait("an address in the LNP on the MS", lambda: _ms_global(env.ms))
    _wait("CN -> MS", lambda: _ping(env.cn, loa))
    other = LNP[0xBEEF]
    assert other != loa
    env.ms.run("ip", "-6", "addr", "add", f"{other}/64", "dev", "eth0", "nodad")
    try:
        _wait(
            "MS (second address) -> CN",
            lambda: env.ms.ok(
                "ping",
                "-6",
                "-c",
                "1",
                "-W",
                "1",
                "-I",
                str(other),
                "2001:db8:ffff::2",
                timeout=5,
            ),
        )
        _wait("CN -> MS second address", lambda: _ping(env.cn, other))
    except AssertionError:
        print(env.log("mpa"))
        print(env.log("lmap"))
        raise
    # the MPA delivers and tunnels the whole LNP, as the LMAP binds it
    routes = env.mpa.run("ip", "-6", "route", "show", str(LNP)).stdout
    assert "br0" in routes
    rules = env.mpa.run("ip", "-6", "rule", "show").stdout
    assert f"from {LNP} iif br0" in rules


def test_no_namespace_left_behind() -> None:
    # the fixture's Lab removes what it made; a leftover would show here
    names = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=True
    ).stdout
    assert f"pm-mpa-{os.getpid()}-" not in names
