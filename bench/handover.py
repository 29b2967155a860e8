"""Layer-3 handover time in the lab, beside the kernel's own link move.

Lab (root): the default lab (CN, LMAP, two MPAs, one MS), the CN pinging the
MS's LoA every 5 ms, the MS moved back and forth N times (default 50). Packet
taps in the MPA namespaces give, on one clock, the MS's first frame at the new
MPA, the PBA arriving there, the RA it sends to the MS and the first echo
reply the MS sends through it. Reported: first frame -> PBA, -> RA, -> first
echo reply, and the move itself (ip link commands; move -> first frame).

Bare (root): the same namespaces and links with no daemons; the same moves.
What the kernel needs to move the veth end and raise the carrier, and how long
the MS's kernel waits before its first frame, without any of our code.

    .venv/bin/python bench/handover.py [--moves 50] [--aaa file|radius|both]

With ``--aaa both`` the lab runs twice, its MPAs taking profiles from the
file backend and then from FreeRADIUS, and the attach at the new MPA (first
frame -> PBU, which waits for AAA) is printed side by side.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from pmip6.lab.capture import HandoverTimes, Pinger, Tap, handover_times
from pmip6.lab.lab import Interrupts, Lab, wait_for
from pmip6.lab.topology import ACCESS_IF, UPLINK_IF, Topology

DWELL = 0.15  # seconds at each MPA after the handover completed


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, int(-(-p * len(ordered) // 100)))
    return ordered[rank - 1]


def open_taps(lab: Lab, uplink: bool) -> Tap:
    tap = Tap()
    for mpa in lab.topo.mpa_names:
        ns = lab.topo.ns(mpa)
        tap.add(ns, ACCESS_IF, f"{mpa}/{ACCESS_IF}")
        if uplink:
            tap.add(ns, UPLINK_IF, f"{mpa}/{UPLINK_IF}")
    return tap.start()


def moves(
    lab: Lab, tap: Tap, n: int, complete: str, loa: object = None
) -> tuple[list[HandoverTimes], list[float], int]:
    """Move ms1 ``n`` times; wait for ``complete`` ("reply" or "frame") each time."""
    ms = lab.topo.stations[0]
    times: list[HandoverTimes] = []
    commands: list[float] = []
    incomplete = 0
    for i in range(n):
        new = "mpa2" if lab.state["at"][ms.name] == "mpa1" else "mpa1"
        start, took = lab.move(ms.name, new)
        commands.append(took)

        def measured(new: str = new, start: float = start) -> HandoverTimes:
            return handover_times(
                tap.snapshot(start),
                new,
                ACCESS_IF,
                UPLINK_IF,
                ms.mac,
                loa,
                start,  # type: ignore[arg-type]
            )

        def seen() -> HandoverTimes | None:
            t = measured()
            done = t.echo_reply if complete == "reply" else t.first_frame
            if complete == "reply" and t.ra is None:
                return None
            return t if done is not None else None

        t = wait_for(seen, 3.0, interval=0.005)
        if t is None:
            incomplete += 1
            t = measured()
        times.append(t)
        time.sleep(DWELL)
        if (i + 1) % 10 == 0:
            print(f"  {i + 1}/{n} moves", file=sys.stderr, flush=True)
    return times, commands, incomplete


def _span(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def row(name: str, values: list[float | None]) -> str:
    got = [v * 1000 for v in values if v is not None]
    if not got:
        return f"  {name:<38} {'-':>8} {'-':>8} {'-':>8}   (none seen)"
    missing = len(values) - len(got)
    note = f"   ({missing} not seen)" if missing else ""
    return (
        f"  {name:<38} {percentile(got, 50):8.1f} {percentile(got, 90):8.1f} "
        f"{percentile(got, 99):8.1f}{note}"
    )


def run_lab(
    aaa: str, count: int
) -> tuple[list[HandoverTimes], list[float], int, dict[str, Any] | None] | None:
    """The moves in a lab whose MPAs take profiles from ``aaa``."""
    topo = replace(Topology.default(f"bh{secrets.token_hex(3)}"), aaa=aaa)
    lab = Lab.create(topo)
    tap: Tap | None = None
    pinger: Pinger | None = None
    try:
        lab.up()
        loa = lab.wait_loa("ms1", timeout=15.0)
        if loa is None:
            print("the MS got no LoA; see the daemons' logs", file=sys.stderr)
            return None
        tap = open_taps(lab, uplink=True)
        ping = ["ping", "-6", "-n", "-i", "0.005", "-W", "1", str(loa)]
        pinger = Pinger(lab.command("cn", ping))
        if pinger.wait_reply_after(0, 5.0) is None:
            print("no echo reply from the MS before the first move", file=sys.stderr)
            return None
        print(f"lab ({aaa} AAA): {count} handovers, CN pinging {loa} every 5 ms",
              file=sys.stderr)  # fmt: skip
        times, cmds, incomplete = moves(lab, tap, count, "reply", loa)
        binding = lab.binding_for(lab.topo.stations[0].nai)
    finally:
        if pinger is not None:
            pinger.stop()
        if tap is not None:
            tap.close()
        lab.down()
    return times, list(cmds), incomplete, binding


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--moves", type=int, default=50)
    parser.add_argument(
        "--aaa",
        choices=("file", "radius", "both"),
        default="file",
        help="where the MPAs take profiles from; both: the lab twice, side by side",
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench/handover.py needs root (network namespaces)", file=sys.stderr)
        return 1

    # --- the lab, with daemons --------------------------------------------------
    backends = ["file", "radius"] if args.aaa == "both" else [args.aaa]
    runs = {}
    for aaa in backends:
        got = run_lab(aaa, args.moves)
        if got is None:
            return 1
        runs[aaa] = got
    lab_times, lab_cmds, lab_incomplete, binding = runs[backends[0]]

    # --- the same moves with no daemons -------------------------------------------
    bare = Lab.create(Topology.default(f"bb{secrets.token_hex(3)}"))
    tap = None
    try:
        bare.up(daemons=False)
        time.sleep(0.5)
        tap = open_taps(bare, uplink=False)
        print(f"bare: {args.moves} moves, no daemons", file=sys.stderr)
        bare_times, bare_cmds, bare_incomplete = moves(bare, tap, args.moves, "frame")
    finally:
        if tap is not None:
            tap.close()
        bare.down()

    print()
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"machine: {os.cpu_count()} CPUs, load average {load} (other work inflates")
    print("the daemons' share: each hop waits for a CPU to wake its process)")
    print(f"handover over {args.moves} moves (milliseconds)   p50      p90      p99")
    print("lab (LMAP + 2 MPAs, unmodified Linux MS):")
    print(row("first frame at new MPA -> PBU sent", [t.to_pbu for t in lab_times]))
    print(row("first frame at new MPA -> PBA", [t.to_pba for t in lab_times]))
    print(row("first frame at new MPA -> RA", [t.to_ra for t in lab_times]))
    print(row("first frame -> first echo reply", [t.to_echo_reply for t in lab_times]))
    print(row("  of which PBU -> PBA (LMAP)", [_span(t.pbu, t.pba) for t in lab_times]))
    print(
        row("  of which PBA -> RA (new MPA)", [_span(t.pba, t.ra) for t in lab_times])
    )
    print(row("move: ip link commands", list(lab_cmds)))
    print(row("move start -> MS's first frame", [t.carrier for t in lab_times]))
    print("bare (same namespaces, no daemons):")
    print(row("move: ip link commands", list(bare_cmds)))
    print(row("move start -> MS's first frame", [t.carrier for t in bare_times]))
    ra = [t.to_ra for t in lab_times if t.to_ra is not None]
    if ra:
        p50 = percentile(ra, 50) * 1000
        verdict = "met" if p50 <= 5.0 else "NOT met"
        print(f"target p50(first frame -> RA) <= 5 ms: {p50:.1f} ms, {verdict}")
    if lab_incomplete or bare_incomplete:
        print(f"incomplete within 3 s: lab {lab_incomplete}, bare {bare_incomplete}")
    if binding is not None:
        print(
            f"final binding: {binding['nai']} {binding['loa']} -> {binding['care_of']}"
        )
    if len(runs) == 2:
        # a roam is an attach at the new MPA: AAA is asked before the PBU
        print("attach at the new MPA by AAA backend (ms)  p50      p90      p99")
        for aaa, (times, _, _, _) in runs.items():
            print(row(f"{aaa}: first frame -> PBU sent", [t.to_pbu for t in times]))
            print(row(f"{aaa}: first frame -> RA", [t.to_ra for t in times]))
        file_pbu = [t.to_pbu for t in runs["file"][0] if t.to_pbu is not None]
        radius_pbu = [t.to_pbu for t in runs["radius"][0] if t.to_pbu is not None]
        if file_pbu and radius_pbu:
            ratio = percentile(radius_pbu, 50) / percentile(file_pbu, 50)
            print(f"ratio radius/file, p50 first frame -> PBU sent: {ratio:.2f}")
    return 0


if __name__ == "__main__":
    # SIGTERM and SIGHUP unwind like Ctrl-C: the namespaces built are removed
    with Interrupts():
        sys.exit(main())
