"""Attach-time AAA latency: the file backend against RADIUS, side by side.

Writes one profiles file and one FreeRADIUS configuration with the same
stations, starts FreeRADIUS on a free port of 127.0.0.1, then times
``authenticate()`` one request at a time (the latency an attaching MS sees)
and as a burst of concurrent requests (a wave of attaches).

    .venv/bin/python bench/aaa.py [--requests 200] [--stations 50]
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from pmip6.aaa.base import Aaa
from pmip6.aaa.file import FileAaa, load_stations
from pmip6.aaa.radius import RadiusAaa, RadiusServer
from pmip6.lab.radius import FreeRadius, RadiusStation

SECRET = "bench-secret"


def profiles_toml(count: int) -> str:
    entries = []
    for i in range(1, count + 1):
        entries.append(
            "[[station]]\n"
            f'mac = "02:00:00:00:{i >> 8:02x}:{i & 0xFF:02x}"\n'
            f'nai = "ms{i}@example.net"\n'
            'lmap = "fd00::1"\n'
            f'lnp = "2001:db8:1:{i:x}::/64"\n'
        )
    return "\n".join(entries)


def percentile(values: Sequence[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


async def sequential(aaa: Aaa, macs: Sequence[str], requests: int) -> list[float]:
    times = []
    for i in range(requests):
        mac = macs[i % len(macs)]
        begin = time.perf_counter()
        profile = await aaa.authenticate(mac)
        times.append(time.perf_counter() - begin)
        assert profile is not None, mac
    return times


async def burst(aaa: Aaa, macs: Sequence[str], requests: int) -> float:
    begin = time.perf_counter()
    profiles = await asyncio.gather(
        *(aaa.authenticate(macs[i % len(macs)]) for i in range(requests))
    )
    assert all(profiles)
    return time.perf_counter() - begin


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--stations", type=int, default=50)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="pm-aaa-bench-") as tmp:
        path = Path(tmp) / "profiles.toml"
        path.write_text(profiles_toml(args.stations))
        stations = load_stations(path)
        macs = [s.mac for s in stations if s.mac]
        radius_stations = [
            RadiusStation.from_profile(s.mac, s.profile) for s in stations if s.mac
        ]

        server = FreeRadius(
            Path(tmp) / "radius", radius_stations, SECRET, port=free_port()
        )
        with server:

            async def run() -> dict[str, tuple[list[float], float]]:
                backends: dict[str, Aaa] = {
                    "file": FileAaa(path),
                    "radius": RadiusAaa(
                        [RadiusServer("127.0.0.1", server.port, SECRET.encode())],
                        timeout=1.0,
                        retries=1,
                    ),
                }
                results = {}
                for name, aaa in backends.items():
                    await sequential(aaa, macs, 20)  # warm up sockets and caches
                    times = await sequential(aaa, macs, args.requests)
                    wave = await burst(aaa, macs, args.requests)
                    results[name] = (times, wave)
                    await aaa.close()
                return results

            results = asyncio.run(run())

    print(
        f"FreeRADIUS start-up: {server.startup_seconds * 1000:.1f} ms "
        f"({args.stations} stations)"
    )
    print(f"authenticate(), {args.requests} sequential requests, 127.0.0.1:")
    print(f"{'backend':8} {'p50 us':>9} {'p90 us':>9} {'mean us':>9} {'burst/s':>9}")
    figures = {}
    for name, (times, wave) in results.items():
        p50, p90 = percentile(times, 0.5), percentile(times, 0.9)
        figures[name] = p50, p90
        print(
            f"{name:8} {p50 * 1e6:9.1f} {p90 * 1e6:9.1f} "
            f"{statistics.mean(times) * 1e6:9.1f} {args.requests / wave:9.0f}"
        )
    (f50, f90), (r50, r90) = figures["file"], figures["radius"]
    print(f"ratio radius/file: p50 {r50 / f50:.0f}x, p90 {r90 / f90:.0f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
