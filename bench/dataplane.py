"""Routes per second: pyroute2 vs the batched fast path vs ``ip -batch``.

Adds, then deletes, N seg6 LoA routes (``LOA/128 encap seg6 mode encap.red
segs MPA dev up0``) with each method in turn, in one throwaway namespace it
creates and removes. Needs root.

    .venv/bin/python bench/dataplane.py            # 10k and 100k
    .venv/bin/python bench/dataplane.py --quick    # 10k only
"""

from __future__ import annotations

import argparse
import errno
import os
import re
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from ipaddress import IPv6Address, IPv6Network

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from pmip6.dataplane import fastpath
from pmip6.dataplane.kernel import PROTO, RT_TABLE_MAIN
from pmip6.dataplane.seg6 import seg6_encap
from pmip6.lab.netns import Namespace, addr_nodad, namespace

MPAS = [IPv6Address(f"fd00::{i + 11:x}") for i in range(8)]


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
                request.update(oif=oif, encap=seg6_encap(MPAS[i % len(MPAS)]))
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
                fastpath.seg6_add(t, MPAS[i % len(MPAS)], oif, RT_TABLE_MAIN, PROTO)
                for i, t in enumerate(ts)
            ]
        else:
            msgs = [fastpath.route_del(t, RT_TABLE_MAIN, PROTO) for t in ts]
        errors = [e for e in b.run_retrying(msgs) if e]
        retries = b.enomem_retries
    if errors:
        raise SystemExit(f"fast path: {len(errors)} failures, first errno {errors[0]}")
    return retries


def with_ip_batch(ns: Namespace, ts: list[IPv6Network], add: bool) -> int:
    """``ip -6 -batch``; on ENOMEM, resume from the failed line after a pause."""
    if add:
        lines = [
            f"route add {t} encap seg6 mode encap.red "
            f"segs {MPAS[i % len(MPAS)]} dev up0 proto {PROTO}\n"
            for i, t in enumerate(ts)
        ]
    else:
        lines = [f"route del {t} proto {PROTO}\n" for t in ts]
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
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("needs root (network namespaces)", file=sys.stderr)
        return 2

    sizes = [10_000] if args.quick else [10_000, 100_000]
    with namespace("pm-dp-bench-") as ns:
        ns.run("ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1")
        ns.run("ip", "link", "set", "up0", "up")
        addr_nodad(ns, "up0", "fd00::1/64")

        # warm-up: the first burst after boot can hit ENOMEM (per-CPU growth)
        with_fastpath(ns, targets(2000), True)
        with_fastpath(ns, targets(2000), False)

        print(f"seg6 encap.red LoA routes, kernel {os.uname().release}")
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
