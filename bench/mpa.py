"""Attach latency of the MPA: through the engine alone, then through the daemon.

Engine (no I/O): time from "a new station's first frame" (plus an immediate
AAA answer) to the PBU effect, and from the PBA to the RA effect, with 1 and
with N visitors already on the list.

Daemon (root; network namespaces, a real LMAP daemon, unmodified Linux hosts
booting one after another on the MPA's bridge): from packet captures on the
MS's bridge port and on the MPA's uplink, the time from the MS's first frame
to the PBU on the wire, from the PBA (status 141) to the RA on the wire, from
the MS's DAD NS to the PBU with its LoA, and from that PBA to the RA; and the
same first-frame -> PBU and PBA -> RA spans as the daemon timed them itself.

    .venv/bin/python bench/mpa.py [--engine-only] [--stations 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

import dpkt

from pmip6.aaa.base import MsProfile
from pmip6.core.mpa import MpaEngine, MpaSettings, SendMh, SendRa
from pmip6.lab.lab import Interrupts
from pmip6.wire import nd
from pmip6.wire.errors import Malformed
from pmip6.wire.mh import (
    AssignedHomeAddress,
    BAFlags,
    BindingAcknowledgement,
    BindingUpdate,
    decode_mh,
)
from pmip6.wire.pcap import FrameError, NotMobility, find_mobility_header

MPA = IPv6Address("fd00::11")
LMAP = IPv6Address("fd00::1")
VMAC = "02:00:5e:00:53:01"


# --- engine -----------------------------------------------------------------------


def _mac(i: int) -> str:
    return "02:00:" + ":".join(f"{(i >> s) & 0xFF:02x}" for s in (24, 16, 8, 0))


def _profile(i: int) -> MsProfile:
    lnp = IPv6Network((0x20010DB8 << 96 | (1 << 80) | (i << 64), 64))
    return MsProfile(nai=f"ms{i}@example.net", lmap_address=LMAP, lnp=lnp)


def engine_attach(preload: int, samples: int) -> tuple[float, float, float]:
    """Mean microseconds: first frame -> PBU effect, PBA -> RA effect, and the
    daemon's per-input deadline query (``next_deadline``)."""
    engine = MpaEngine(MpaSettings(address=MPA))
    now = 0.0

    def attach(i: int) -> tuple[float, float]:
        mac = _mac(i)
        prof = _profile(i)
        loa = prof.lnp[0x10]
        t0 = time.perf_counter()
        engine.station_seen(mac, "br0", now)
        effects = engine.aaa_result(mac, prof, now)
        t1 = time.perf_counter()
        pbu = next(
            e.message
            for e in effects
            if isinstance(e, SendMh) and isinstance(e.message, BindingUpdate)
        )
        pba = BindingAcknowledgement(
            0, BAFlags.P, pbu.sequence, pbu.lifetime, (AssignedHomeAddress(64, loa),)
        )
        t2 = time.perf_counter()
        effects = engine.mh_received(LMAP, pba, now)
        t3 = time.perf_counter()
        assert any(isinstance(e, SendRa) for e in effects)
        engine.next_deadline()  # as the daemon does after every input
        return t1 - t0, t3 - t2

    for i in range(preload):
        attach(i)
    t0 = time.perf_counter()
    for _ in range(samples):
        engine.next_deadline()
    query = (time.perf_counter() - t0) / samples
    first, second = [], []
    for i in range(preload, preload + samples):
        a, b = attach(i)
        first.append(a)
        second.append(b)
    return (
        statistics.mean(first) * 1e6,
        statistics.mean(second) * 1e6,
        query * 1e6,
    )


# --- daemon in namespaces ---------------------------------------------------------


def _run(ns: str, *argv: str, check: bool = True) -> str:
    proc = subprocess.run(
        ["ip", "netns", "exec", ns, *argv], capture_output=True, text=True
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} in {ns}: {proc.stderr.strip()}")
    return proc.stdout


def _frames(path: Path) -> list[tuple[float, bytes]]:
    with open(path, "rb") as f:
        return [(ts, bytes(buf)) for ts, buf in dpkt.pcap.Reader(f)]


def _ms_global(ns: str, lnp: IPv6Network) -> bool:
    out = _run(ns, "ip", "-6", "-j", "addr", "show", "dev", "eth0")
    for link in json.loads(out or "[]"):
        for a in link.get("addr_info", []):
            if IPv6Address(a["local"]) in lnp and not a.get("tentative"):
                return True
    return False


def daemon_attach(stations: int) -> dict[str, list[float]]:
    tag = f"pm-mpab-{os.getpid()}"
    names = {r: f"{tag}-{r}" for r in ("lmap", "mpa")}
    for i in range(stations):
        names[f"ms{i}"] = f"{tag}-ms{i}"
    procs: list[subprocess.Popen[bytes]] = []
    spans: dict[str, list[float]] = {
        "wire: first frame -> PBU (BCC)": [],
        "wire: PBA 141 -> RA": [],
        "wire: DAD NS -> PBU (AHA)": [],
        "wire: PBA accepted -> RA": [],
        "daemon log: first frame -> PBU": [],
        "daemon log: PBA -> RA": [],
        "host: link up -> address usable": [],
    }
    with tempfile.TemporaryDirectory(prefix="pm-mpab-") as tmp:
        run = Path(tmp)
        try:
            for ns in names.values():
                subprocess.run(["ip", "netns", "add", ns], check=True)
                _run(ns, "ip", "link", "set", "lo", "up")
            lmap, mpa = names["lmap"], names["mpa"]
            _run(lmap, "ip", "link", "add", "up0", "type", "veth", "peer", "upx")
            _run(lmap, "ip", "link", "set", "upx", "netns", mpa)
            _run(mpa, "ip", "link", "set", "upx", "name", "up0")
            for ns, addr in ((lmap, "fd00::1/64"), (mpa, "fd00::11/64")):
                _run(ns, "ip", "-6", "addr", "add", addr, "dev", "up0", "nodad")
                _run(ns, "ip", "link", "set", "up0", "up")
            _run(mpa, "ip", "link", "add", "br0", "type", "bridge")
            _run(mpa, "ip", "link", "set", "br0", "up")
            profiles = []
            for i in range(stations):
                ms = names[f"ms{i}"]
                port = f"ms{i}p"
                _run(mpa, "ip", "link", "add", port, "type", "veth", "peer", "eth0")
                _run(mpa, "ip", "link", "set", "eth0", "netns", ms)
                _run(mpa, "ip", "link", "set", port, "master", "br0", "up")
                _run(ms, "ip", "link", "set", "eth0", "address", _mac(i + 1))
                _run(ms, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=1")
                profiles.append(
                    f'[[station]]\nmac = "{_mac(i + 1)}"\nnai = "ms{i}@example.net"\n'
                    f'lmap = "fd00::1"\nlnp = "{_profile(i + 1).lnp}"\n'
                )
            (run / "profiles.toml").write_text("\n".join(profiles))
            (run / "lmap.toml").write_text(
                f'[lmap]\naddress = "fd00::1"\nuplink = "up0"\n'
                f'prefixes = ["2001:db8::/32"]\nmpas = ["fd00::/64"]\n'
                f'dataplane = "none"\nstate = "{run}/lmap.db"\n'
                f'control_socket = "{run}/lmap.sock"\n'
            )
            (run / "mpa.toml").write_text(
                f'[mpa]\naddress = "fd00::11"\nuplink = "up0"\naccess = ["br0"]\n'
                f'virtual_mac = "{VMAC}"\ndataplane = "auto"\n'
                f'control_socket = "{run}/mpa.sock"\nlog_level = "warning"\n'
                f'[aaa]\nbackend = "file"\nfile = "profiles.toml"\n'
            )
            for role, ns in (("lmap", lmap), ("mpa", mpa)):
                procs.append(
                    subprocess.Popen(
                        [
                            "ip",
                            "netns",
                            "exec",
                            ns,
                            sys.executable,
                            "-m",
                            "pmip6",
                            role,
                            "--config",
                            str(run / f"{role}.toml"),
                        ],
                        stdout=subprocess.DEVNULL,
                        stderr=open(run / f"{role}.log", "wb"),  # noqa: SIM115
                    )
                )
                deadline = time.monotonic() + 10
                while not (run / f"{role}.sock").exists():
                    if time.monotonic() > deadline or procs[-1].poll() is not None:
                        raise RuntimeError((run / f"{role}.log").read_text())
                    time.sleep(0.02)

            from pmip6.runtime.control import request

            for i in range(stations):
                ms = names[f"ms{i}"]
                mac = _mac(i + 1)
                lnp = _profile(i + 1).lnp
                caps = {}
                for ifname in (f"ms{i}p", "up0"):
                    path = run / f"{ifname}.pcap"
                    caps[ifname] = (
                        path,
                        subprocess.Popen(
                            [
                                "ip",
                                "netns",
                                "exec",
                                mpa,
                                "tcpdump",
                                "-i",
                                ifname,
                                "-U",
                                "-n",
                                "-s",
                                "256",
                                "-w",
                                str(path),
                                "ip6",
                            ],
                            stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL,
                        ),
                    )
                time.sleep(0.5)  # tcpdump needs a moment to attach
                t_up = time.monotonic()
                _run(ms, "ip", "link", "set", "eth0", "up")
                deadline = time.monotonic() + 15
                while not _ms_global(ms, lnp):
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"ms{i} got no address")
                    time.sleep(0.005)
                spans["host: link up -> address usable"].append(
                    (time.monotonic() - t_up) * 1000
                )
                time.sleep(0.3)
                for _, proc in caps.values():
                    proc.terminate()
                    proc.wait()
                _wire_spans(
                    _frames(caps[f"ms{i}p"][0]), _frames(caps["up0"][0]), mac, spans
                )
                t = request(str(run / "mpa.sock"), "status")["attach_timings"][mac]
                spans["daemon log: first frame -> PBU"].append(
                    t["first_frame_to_pbu_ms"]
                )
                spans["daemon log: PBA -> RA"].append(t["pba_to_ra_ms"])
        finally:
            _teardown(procs, names.values())
    return spans


def _teardown(procs: list[subprocess.Popen[bytes]], namespaces: Iterable[str]) -> None:
    """Stop the daemons (SIGTERM, then SIGKILL after 5 s) and delete the lab."""
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
    for ns in namespaces:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def _start_daemon(
    ns: str, role: str, config: Path, log: Path
) -> subprocess.Popen[bytes]:
    command = "lmap" if role == "lmap" else "mpa"
    argv = [sys.executable, "-m", "pmip6", command, "--config", str(config)]
    with open(log, "wb") as err:
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv], stdout=subprocess.DEVNULL, stderr=err
        )
    sock = config.with_suffix(".sock")
    deadline = time.monotonic() + 10
    while not sock.exists():
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(log.read_text())
        time.sleep(0.02)
    return proc


def _capture(ns: str, ifname: str, path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            ns,
            "tcpdump",
            "-i",
            ifname,
            "-U",
            "-n",
            "-s",
            "256",
            "-w",
            str(path),
            "ip6",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def daemon_roam(moves: int) -> dict[str, list[float]]:
    """One Linux host moved back and forth between two MPAs' bridges."""
    tag = f"pm-mpar-{os.getpid()}"
    names = {r: f"{tag}-{r}" for r in ("lmap", "mpa1", "mpa2", "ms")}
    spans: dict[str, list[float]] = {
        "roam wire: first frame -> PBU (BCC)": [],
        "roam wire: PBA (AHA) -> RA": [],
        "roam wire: port moved -> RA": [],
    }
    procs: list[subprocess.Popen[bytes]] = []
    mac = _mac(1)
    with tempfile.TemporaryDirectory(prefix="pm-mpar-") as tmp:
        run = Path(tmp)
        try:
            for ns in names.values():
                subprocess.run(["ip", "netns", "add", ns], check=True)
                _run(ns, "ip", "link", "set", "lo", "up")
            lmap, ms = names["lmap"], names["ms"]
            _run(lmap, "ip", "link", "add", "tr0", "type", "bridge")
            _run(lmap, "ip", "link", "set", "tr0", "up")
            _run(lmap, "ip", "-6", "addr", "add", "fd00::1/64", "dev", "tr0", "nodad")
            for k in (1, 2):
                mpa = names[f"mpa{k}"]
                _run(lmap, "ip", "link", "add", f"tr{k}", "type", "veth", "peer", "upx")
                _run(lmap, "ip", "link", "set", "upx", "netns", mpa)
                _run(lmap, "ip", "link", "set", f"tr{k}", "master", "tr0", "up")
                _run(mpa, "ip", "link", "set", "upx", "name", "up0")
                _run(
                    mpa,
                    "ip",
                    "-6",
                    "addr",
                    "add",
                    f"fd00::1{k}/64",
                    "dev",
                    "up0",
                    "nodad",
                )
                _run(mpa, "ip", "link", "set", "up0", "up")
                _run(mpa, "ip", "link", "add", "br0", "type", "bridge")
                _run(mpa, "ip", "link", "set", "br0", "up")
                (run / f"mpa{k}.toml").write_text(
                    f'[mpa]\naddress = "fd00::1{k}"\nuplink = "up0"\n'
                    f'access = ["br0"]\nvirtual_mac = "{VMAC}"\ndataplane = "auto"\n'
                    f'control_socket = "{run}/mpa{k}.sock"\nlog_level = "warning"\n'
                    f'[aaa]\nbackend = "file"\nfile = "profiles.toml"\n'
                )
            mpa1 = names["mpa1"]
            _run(mpa1, "ip", "link", "add", "ms0", "type", "veth", "peer", "eth0")
            _run(mpa1, "ip", "link", "set", "eth0", "netns", ms)
            _run(mpa1, "ip", "link", "set", "ms0", "master", "br0", "up")
            _run(ms, "ip", "link", "set", "eth0", "address", mac)
            _run(ms, "sysctl", "-qw", "net.ipv6.conf.eth0.accept_ra=1")
            lnp = _profile(1).lnp
            (run / "profiles.toml").write_text(
                f'[[station]]\nmac = "{mac}"\nnai = "ms1@example.net"\n'
                f'lmap = "fd00::1"\nlnp = "{lnp}"\n'
            )
            (run / "lmap.toml").write_text(
                f'[lmap]\naddress = "fd00::1"\nuplink = "tr0"\n'
                f'prefixes = ["2001:db8::/32"]\nmpas = ["fd00::/64"]\n'
                f'dataplane = "auto"\nstate = "{run}/lmap.db"\n'
                f'control_socket = "{run}/lmap.sock"\n'
            )
            for role in ("lmap", "mpa1", "mpa2"):
                procs.append(
                    _start_daemon(
                        names[role], role, run / f"{role}.toml", run / f"{role}.log"
                    )
                )
            _run(ms, "ip", "link", "set", "eth0", "up")
            deadline = time.monotonic() + 15
            while not _ms_global(ms, lnp):
                if time.monotonic() > deadline:
                    raise RuntimeError("the host got no address")
                time.sleep(0.01)
            time.sleep(1.0)  # let the first registration settle

            here = 1
            for _ in range(moves):
                there = 3 - here
                src, dst = names[f"mpa{here}"], names[f"mpa{there}"]
                caps = [
                    (run / f"roam-{i}.pcap", _capture(dst, i, run / f"roam-{i}.pcap"))
                    for i in ("br0", "up0")
                ]
                time.sleep(0.5)
                moved_at = time.time()
                _run(src, "ip", "link", "set", "ms0", "netns", dst)
                _run(dst, "ip", "link", "set", "ms0", "master", "br0", "up")
                time.sleep(1.0)
                for _, proc in caps:
                    proc.terminate()
                    proc.wait()
                _roam_spans(
                    _frames(caps[0][0]), _frames(caps[1][0]), mac, moved_at, spans
                )
                here = there
                time.sleep(0.5)
        finally:
            _teardown(procs, names.values())
    return spans


def _roam_spans(
    access: list[tuple[float, bytes]],
    uplink: list[tuple[float, bytes]],
    mac: str,
    moved_at: float,
    spans: dict[str, list[float]],
) -> None:
    first = ra = None
    for ts, buf in access:
        try:
            frame = nd.decode_frame(buf)
        except Malformed:
            continue
        if frame.src_mac == mac and first is None:
            first = ts
        if frame.kind is nd.FrameKind.ROUTER_ADVERTISEMENT and frame.dst_mac == mac:
            ra = ts if ra is None else ra
    pbu = pba = None
    for ts, buf in uplink:
        try:
            message = decode_mh(find_mobility_header(dpkt.pcap.DLT_EN10MB, buf).mh)
        except (NotMobility, FrameError, Malformed):
            continue
        if isinstance(message, BindingUpdate) and pbu is None:
            pbu = ts
        if isinstance(message, BindingAcknowledgement) and message.status == 0:
            pba = ts if pba is None else pba
    if first is not None and pbu is not None:
        spans["roam wire: first frame -> PBU (BCC)"].append((pbu - first) * 1000)
    if pba is not None and ra is not None:
        spans["roam wire: PBA (AHA) -> RA"].append((ra - pba) * 1000)
    if ra is not None:
        spans["roam wire: port moved -> RA"].append((ra - moved_at) * 1000)


def _wire_spans(
    access: list[tuple[float, bytes]],
    uplink: list[tuple[float, bytes]],
    mac: str,
    spans: dict[str, list[float]],
) -> None:
    first = dad = None
    ras: list[float] = []
    for ts, buf in access:
        try:
            frame = nd.decode_frame(buf)
        except Malformed:
            continue
        if frame.src_mac == mac and first is None:
            first = ts
        if (
            frame.src_mac == mac
            and frame.kind is nd.FrameKind.NEIGHBOR_SOLICITATION
            and frame.src_ip.is_unspecified
            and frame.target is not None
            and not frame.target.is_link_local
            and dad is None
        ):
            dad = ts
        if frame.kind is nd.FrameKind.ROUTER_ADVERTISEMENT and frame.dst_mac == mac:
            ras.append(ts)
    pbus: list[tuple[float, BindingUpdate]] = []
    pbas: list[tuple[float, BindingAcknowledgement]] = []
    for ts, buf in uplink:
        try:
            packet = find_mobility_header(dpkt.pcap.DLT_EN10MB, buf)
            message = decode_mh(packet.mh)
        except (NotMobility, FrameError, Malformed):
            continue
        if isinstance(message, BindingUpdate):
            pbus.append((ts, message))
        elif isinstance(message, BindingAcknowledgement):
            pbas.append((ts, message))

    def after(times: list[float], t: float) -> float | None:
        return next((x for x in times if x >= t), None)

    def add(name: str, start: float | None, end: float | None) -> None:
        if start is not None and end is not None:
            spans[name].append((end - start) * 1000)

    pbu_times = [t for t, _ in pbus]
    add("wire: first frame -> PBU (BCC)", first, pbu_times[0] if pbus else None)
    rejected = next((t for t, m in pbas if m.status == 141), None)
    if rejected is not None:
        add("wire: PBA 141 -> RA", rejected, after(ras, rejected))
    if dad is not None:
        add("wire: DAD NS -> PBU (AHA)", dad, after(pbu_times, dad))
    accepted = next((t for t, m in pbas if m.status == 0), None)
    if accepted is not None:
        add("wire: PBA accepted -> RA", accepted, after(ras, accepted))


def _fmt(values: list[float]) -> str:
    if not values:
        return "n/a"
    return (
        f"median {statistics.median(values):8.3f} ms  min {min(values):8.3f}  "
        f"max {max(values):8.3f}  (n={len(values)})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine-only", action="store_true")
    parser.add_argument("--stations", type=int, default=5)
    parser.add_argument("--visitors", type=int, default=10000)
    parser.add_argument("--moves", type=int, default=4)
    args = parser.parse_args()

    print("MPA engine (no I/O), mean per attach:")
    small = engine_attach(1, 2000)
    large = engine_attach(args.visitors, 2000)
    print(
        f"  first frame + AAA -> PBU effect: {small[0]:7.2f} us with 1 visitor, "
        f"{large[0]:7.2f} us with {args.visitors} (x{large[0] / small[0]:.2f})"
    )
    print(
        f"  PBA -> RA effect:                {small[1]:7.2f} us with 1 visitor, "
        f"{large[1]:7.2f} us with {args.visitors} (x{large[1] / small[1]:.2f})"
    )
    print(
        f"  next_deadline (after each input): {small[2]:7.2f} us with 1 visitor, "
        f"{large[2]:7.2f} us with {args.visitors} (x{large[2] / small[2]:.2f})"
    )
    if args.engine_only:
        return 0
    if os.geteuid() != 0:
        print("daemon part skipped: needs root for network namespaces")
        return 0

    spans = daemon_attach(args.stations)
    print(
        f"MPA daemon, {args.stations} Linux hosts booting on its bridge "
        "(first boot: BCC -> 141 -> RA -> SLAAC -> DAD -> AHA):"
    )
    for name, values in spans.items():
        print(f"  {name:34s} {_fmt(values)}")
    roam = daemon_roam(args.moves)
    print(
        f"MPA daemons, one Linux host moved {args.moves} times between two MPAs "
        "(it sends no RS and no DAD; BCC -> AHA -> unsolicited RA):"
    )
    for name, values in roam.items():
        print(f"  {name:36s} {_fmt(values)}")
    wire = spans["wire: PBA accepted -> RA"]
    if wire and small[1] > 0:
        ratio = statistics.median(wire) * 1000 / small[1]
        print(f"  PBA -> RA on the wire vs in the engine: x{ratio:.0f}")
    return 0


if __name__ == "__main__":
    # SIGTERM and SIGHUP unwind like Ctrl-C: the namespaces built are removed
    with Interrupts():
        sys.exit(main())
