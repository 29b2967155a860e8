"""Routes per second: pyroute2 vs the batched fast path vs ``ip -batch``.

Adds, then deletes, N LoA routes towards 8 MPAs with each method in turn, in
one throwaway namespace it creates and removes. The routes are those of the
backend chosen: seg6 (``LOA/128 encap seg6 mode encap.red segs MPA dev up0``)
or bpf (``LOA/128 encap bpf xmit PROGRAM headroom 40 dev up0``, one program
per MPA, pinned on a throwaway bpf filesystem for ``ip -batch``). Needs root.

    .venv/bin/python bench/dataplane.py            # 10k and 100k
    .venv/bin/python bench/dataplane.py --quick    # 10k only
    .venv/bin/python bench/dataplane.py --backend seg6
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from ipaddress import IPv6Address, IPv6Network

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from pmip6.dataplane import bpf, ebpf, fastpath, seg6
from pmip6.dataplane.kernel import PROTO, RT_TABLE_MAIN
from pmip6.lab.lab import Interrupts
from pmip6.lab.netns import Namespace, addr_nodad, namespace

OWN = IPv6Address("fd00::1")
MPAS = [IPv6Address(f"fd00::{i + 11:x}") for i in range(8)]


class Encaps:
    """The encapsulation towards MPA i, as each method writes it."""

    def __init__(self, backend: str, pins: str) -> None:
        self.backend = backend
        self.fds = []
        if backend == "bpf":
            for i, mpa in enumerate(MPAS):
                fd = ebpf.load_tunnel(OWN, mpa)
                ebpf.pin(fd, f"{pins}/t{i}")
                self.fds.append(fd)

    def close(self) -> None:
        for fd in self.fds:
            os.close(fd)

    def pyroute2(self, i: int) -> dict[str, object]:
        mpa = MPAS[i % len(MPAS)]
        if self.backend == "seg6":
            return seg6.seg6_encap(mpa)
        name = bpf.tunnel_name(OWN, mpa)
        return {
            "type": "bpf",
            "xmit": {"fd": self.fds[i % 8], "name": name, "headroom": 40},
        }

    def fast(self, i: int) -> bytes:
        mpa = MPAS[i % len(MPAS)]
        if self.backend == "seg6":
            return fastpath.seg6_encap(mpa)
        return fastpath.bpf_encap(self.fds[i % 8], bpf.tunnel_name(OWN, mpa), 40)

    def ip(self, i: int, pins: str) -> str:
        if self.backend == "seg6":
            return f"encap seg6 mode encap.red segs {MPAS[i % len(MPAS)]}"
        return f"encap bpf xmit pinned {pins}/t{i % 8} headroom 40"


ENCAPS: Encaps
PINS = ""


def targets(n: int) -> list[IPv6Network]:
    base = int(IPv6Address("2001:db8:1::"))
    return [IPv6Network((base + (i << 16) + 0x10, 128)) for i in range(n)]


def count_ours(ns: Namespace) -> int:
    with ns.entered(), fastpath.Batcher() as b:
        return sum(1 for _, p, _ in b.dump_routes(RT_TABLE_MAIN) if p == PROTO)


def with_pyroute2(ns: Namespace, ts: list[IPv6Network], add: bool) -> int:
    """One request per route, each retried on ENOMEM as the backend does."""
    retries = 0
    with ns.entered():
        ipr = IPRoute()
    try:
        oif = ipr.link_lookup(ifname="up0")[0]
        for i, t in enumerate(ts):
            request = {
                "family": socket.AF_INET6,
                "dst": str(t.network_address),
                "dst_len": 128,
                "proto": PROTO,
            }
            if add:
                request.update(oif=oif, encap=ENCAPS.pyroute2(i))
            pause = 0.002
            while True:
                try:
                    ipr.route("add" if add else "del", **request)
                    break
                except NetlinkError as exc:
                    if exc.code != errno.ENOMEM:
                        raise
                    retries += 1
                    time.sleep(pause)
                    pause = min(pause * 2, 0.2)
    finally:
        ipr.close()
    return retries


def with_fastpath(ns: Namespace, ts: list[IPv6Network], add: bool) -> int:
    """Pre-encoded requests, a few hundred per send, ENOMEM resent per batch."""
    with ns.entered(), fastpath.Batcher() as b:
        oif = socket.if_nametoindex("up0")
        if add:
            msgs = [
                fastpath.encap_add(t, ENCAPS.fast(i), oif, RT_TABLE_MAIN, PROTO)
                for i, t in enumerate(ts)
            ]
        else:
            msgs = [fastpath.route_del(t, RT_TABLE_MAIN, PROTO) for t in ts]
        errors = [e for e in b.run_retrying(msgs) if e]
        retries = b.enomem_retries
    if errors:
        raise SystemExit(f"fast path: {len(errors)} failures, first errno {errors[0]}")
    return retries


#: lines per ``ip -batch`` run: iproute2 keeps every pinned program it reads
#: open until it exits, and the file limit here is 20,000
IP_BATCH_LINES = 10_000


def with_ip_batch(ns: Namespace, ts: list[IPv6Network], add: bool) -> int:
    """``ip -6 -batch``; on ENOMEM, resume from the failed line after a pause."""
    if add:
        lines = [
            f"route add {t} {ENCAPS.ip(i, PINS)} dev up0 proto {PROTO}\n"
            for i, t in enumerate(ts)
        ]
    else:
        lines = [f"route del {t} proto {PROTO}\n" for t in ts]
    resumes = 0
    for start in range(0, len(lines), IP_BATCH_LINES):
        resumes += _ip_batch(ns, lines[start : start + IP_BATCH_LINES])
    return resumes


def _ip_batch(ns: Namespace, lines: list[str]) -> int:
    resumes, pause = 0, 0.002
    while lines:
        with tempfile.NamedTemporaryFile("w", suffix=".ip", delete=False) as f:
            f.writelines(lines)
        try:
            proc = ns.run("ip", "-6", "-batch", f.name, check=False, timeout=600)
        finally:
            os.unlink(f.name)
        if proc.returncode == 0:
            break
        failed = re.search(r"Command failed .*:(\d+)", proc.stderr)
        if "Cannot allocate memory" not in proc.stderr or not failed:
            raise SystemExit(f"ip -batch: {proc.stderr.strip()}")
        lines = lines[int(failed.group(1)) - 1 :]
        resumes += 1
        time.sleep(pause)
        pause = min(pause * 2, 0.2)
    return resumes


METHODS: list[tuple[str, Callable[[Namespace, list[IPv6Network], bool], int]]] = [
    ("pyroute2", with_pyroute2),
    ("fast path", with_fastpath),
    ("ip -batch", with_ip_batch),
]


def measure(ns: Namespace, n: int) -> dict[str, tuple[float, float]]:
    ts = targets(n)
    rates: dict[str, tuple[float, float]] = {}
    for name, fn in METHODS:
        # the kernel grows its per-CPU memory for seg6 routes on a large burst
        # (ENOMEM until it has); an untimed burst of the same size first lets
        # every method start from the same state instead of the first paying
        with_fastpath(ns, ts, True)
        with_fastpath(ns, ts, False)
        t0 = time.perf_counter()
        retries = fn(ns, ts, True)
        t1 = time.perf_counter()
        installed = count_ours(ns)
        retries += fn(ns, ts, False)
        t2 = time.perf_counter()
        left = count_ours(ns)
        if installed != n or left != 0:
            raise SystemExit(f"{name}: installed {installed}/{n}, left {left}")
        rates[name] = (n / (t1 - t0), n / (t2 - t1))
        print(
            f"  {name:10s} add {rates[name][0]:>9,.0f}/s  "
            f"delete {rates[name][1]:>9,.0f}/s  (ENOMEM retries {retries})",
            flush=True,
        )
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10k routes only")
    parser.add_argument(
        "--backend",
        choices=("seg6", "bpf"),
        help="whose routes (default: seg6 where the kernel has it, else bpf)",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2
    backend = args.backend or ("bpf" if seg6.unavailable_reason() else "seg6")
    why = {"seg6": seg6.unavailable_reason, "bpf": bpf.unavailable_reason}[backend]()
    if why:
        print(f"{backend}: {why}", file=sys.stderr)
        return 2

    sizes = [10_000] if args.quick else [10_000, 100_000]
    global ENCAPS, PINS
    with tempfile.TemporaryDirectory() as pins, namespace("pm-dp-bench-") as ns:
        PINS = pins
        if backend == "bpf":
            # a bpf filesystem of our own: iproute2 reads pinned programs only
            subprocess.run(["mount", "-t", "bpf", "bpf", pins], check=True)
        ENCAPS = Encaps(backend, pins)
        try:
            run(ns, backend, sizes)
        finally:
            ENCAPS.close()
            if backend == "bpf":
                subprocess.run(["umount", pins], check=False)
    return 0


def run(ns: Namespace, backend: str, sizes: list[int]) -> None:
    ns.run("ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1")
    ns.run("ip", "link", "set", "up0", "up")
    addr_nodad(ns, "up0", "fd00::1/64")

    # warm-up: the first burst after boot can hit ENOMEM (per-CPU growth)
    with_fastpath(ns, targets(2000), True)
    with_fastpath(ns, targets(2000), False)

    what = "seg6 encap.red" if backend == "seg6" else "bpf xmit (one program per MPA)"
    print(f"{what} LoA routes, kernel {os.uname().release}")
    print("rates include resending after ENOMEM (per-CPU memory growth)")
    for n in sizes:
        print(f"{n:,} routes:")
        rates = measure(ns, n)
        fast, batch = rates["fast path"], rates["ip -batch"]
        pyr = rates["pyroute2"]
        print(
            f"  fast/ip-batch: add {fast[0] / batch[0]:.2f}, "
            f"delete {fast[1] / batch[1]:.2f}; "
            f"fast/pyroute2: add {fast[0] / pyr[0]:.1f}, "
            f"delete {fast[1] / pyr[1]:.1f}"
        )


if __name__ == "__main__":
    # SIGTERM and SIGHUP unwind like Ctrl-C: the namespaces built are removed
    with Interrupts():
        sys.exit(main())
