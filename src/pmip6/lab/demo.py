"""``pmip6 demo``: a handover, told as it happens, in a fresh lab.

The demo builds a lab with a unique name (CN, LMAP, two MPAs, one MS), lets
the MS attach at MPA1 and autoconfigure its LoA, pings the LoA from the CN
every 20 ms, moves the MS to MPA2 and back, and checks at each step that the
LoA stayed, the pings went on, the LMAP's binding moved and the previous MPA
forgot the MS. It always removes the lab, and exits 0 only if every check
held.

Handover times come from packet taps in the MPA namespaces (see
``pmip6.lab.capture``): kernel timestamps of the MS's first frame at the new
MPA, the PBA arriving there, the RA it sends to the MS and the first echo
reply the MS sends through it. They are the layer-3 handover; the time the
kernel takes to move the link and raise the carrier comes before and is shown
apart.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import replace
from ipaddress import IPv6Address
from typing import Any

from pmip6.lab.capture import HandoverTimes, Pinger, Tap, handover_times
from pmip6.lab.lab import Interrupts, Lab, LabError, wait_for
from pmip6.lab.topology import (
    ACCESS_IF,
    CN_ADDRESS,
    LMAP_ADDRESS,
    UPLINK_IF,
    Topology,
    mpa_address,
)
from pmip6.runtime.ctl import format_table

HELP = "run the handover demo in a fresh lab"

PING_INTERVAL = 0.02
DWELL = 1.0  # seconds of pinging at each MPA between handovers


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", help="lab name (default: demo plus a random suffix)")
    parser.add_argument(
        "--moves",
        type=_positive,
        default=2,
        help="handovers, 1 or more: 2 is there and back",
    )
    parser.add_argument(
        "--aaa",
        choices=("file", "radius"),
        default="file",
        help="where the MPAs get the MS's profile: the lab's profiles file, or "
        "a FreeRADIUS server the lab runs (default: file)",
    )


class Demo:
    def __init__(
        self, name: str, moves: int = 2, out: Any = None, aaa: str = "file"
    ) -> None:
        self.topo = replace(Topology.default(name, mpas=2, mss=1), aaa=aaa)
        self.ms = self.topo.stations[0]
        self.moves = moves
        self.out = out or sys.stdout
        self.failures: list[str] = []
        self.interrupted = False
        self.t0 = time.monotonic()
        self.lab: Lab | None = None
        self.tap: Tap | None = None
        self.pinger: Pinger | None = None
        self.handovers: list[tuple[str, str, HandoverTimes, int, float | None]] = []

    # --- telling -------------------------------------------------------------

    def say(self, text: str) -> None:
        stamp = time.monotonic() - self.t0
        for i, line in enumerate(text.splitlines() or [""]):
            prefix = f"[{stamp:6.2f}s] " if i == 0 else " " * 10
            print(prefix + line, file=self.out, flush=True)

    def check(self, ok: bool, what: str, why: str = "") -> bool:
        if ok:
            self.say(f"  ok    {what}")
        else:
            self.say(f"  FAIL  {what}" + (f": {why}" if why else ""))
            self.failures.append(what + (f" ({why})" if why else ""))
        return ok

    # --- the story -----------------------------------------------------------

    def run(self) -> int:
        topo = self.topo
        self.say(
            f"pmip6 demo: lab {topo.name!r} (namespaces {topo.name}-*, "
            f"run directory {topo.run_dir})"
        )
        try:
            self.lab = Lab.create(topo)
            self.say(
                "building: CN, LMAP, transport bridge, MPA1 and MPA2 each with "
                "a bridge as base station, one MS"
                + (", FreeRADIUS for AAA" if topo.aaa == "radius" else "")
            )
            self.lab.up(attach=False)
            self.say(
                f"LMAP {LMAP_ADDRESS} and MPAs {mpa_address(1)}, {mpa_address(2)} "
                f"are running (logs in {topo.run_dir})"
            )
            self._open_taps()
            self._story()
        except LabError as exc:
            self.failures.append(str(exc))
            self.say(f"  FAIL  {exc}")
        except KeyboardInterrupt:
            self.interrupted = True
            self.say("interrupted: removing the lab")
        finally:
            self._teardown()
        if self.interrupted:
            return 130
        return self._verdict()

    def _open_taps(self) -> None:
        assert self.lab is not None
        self.tap = Tap()
        for mpa in self.topo.mpa_names:
            ns = self.topo.ns(mpa)
            self.tap.add(ns, ACCESS_IF, f"{mpa}/{ACCESS_IF}")
            self.tap.add(ns, UPLINK_IF, f"{mpa}/{UPLINK_IF}")
        self.tap.start()

    def _story(self) -> None:
        lab, ms = self.lab, self.ms
        assert lab is not None

        # 1. attach: the MS's kernel does RS, DAD and SLAAC by itself
        self.say(
            f"step 1: {ms.name} ({ms.mac}, {ms.nai}) attaches at mpa1's base station"
        )
        attached = time.monotonic()
        lab.attach(ms.name)
        loa = lab.wait_loa(ms.name, timeout=15.0)
        if not self.check(
            loa is not None,
            f"{ms.name}'s kernel autoconfigured a LoA from its LNP {ms.lnp}",
            f"no global address after 15 s: {self._addresses()}",
        ):
            return
        assert loa is not None
        self.say(
            f"        LoA {loa} ({time.monotonic() - attached:.2f} s after attach: "
            "link-local DAD, RS, RA, DAD of the LoA)"
        )
        self._check_binding(loa, "mpa1")

        # 2. a continuous ping from the CN
        self.say(f"step 2: the CN ({CN_ADDRESS}) pings {loa} every 20 ms")
        ping = ["ping", "-6", "-n", "-i", str(PING_INTERVAL), "-W", "1", str(loa)]
        self.pinger = Pinger(lab.command("cn", ping))
        first = self.pinger.wait_reply_after(0, timeout=5.0)
        if not self.check(
            first is not None, "echo replies come back through mpa1", "none in 5 s"
        ):
            return
        time.sleep(DWELL)
        self.say(f"        {self.pinger.count()} replies so far")

        # 3. handovers, there and back
        at = "mpa1"
        for n in range(self.moves):
            to = "mpa2" if at == "mpa1" else "mpa1"
            self._handover(n + 1, loa, at, to)
            at = to

        stats = self._stop_ping()
        lost = stats["transmitted"] - stats["received"]
        at_moves = sum(h[3] for h in self.handovers if h[3] > 0)
        # the rest: requests still in flight when ping stopped, or lost outside
        # the handovers (each handover's count runs between its two replies)
        where = f" ({at_moves} at the handovers)" if lost != at_moves else ""
        self.say(
            f"ping: {stats['transmitted']} sent, {stats['received']} replies, "
            f"{lost} lost{where}"
        )

    def _handover(self, n: int, loa: IPv6Address, old: str, new: str) -> None:
        lab, ms, pinger, tap = self.lab, self.ms, self.pinger, self.tap
        assert lab is not None and pinger is not None and tap is not None
        self.say(f"step {2 + n}: {ms.name} moves from {old} to {new}")
        before = pinger.last_seq()
        start, took = lab.move(ms.name, new)
        self.say(
            f"        its veth peer moved to {new}'s bridge "
            f"({took * 1000:.1f} ms of ip link commands); the MS sees carrier "
            "loss and return"
        )
        after = pinger.wait_reply_after(before, timeout=5.0)
        self.check(
            after is not None,
            f"the ping goes on through {new}",
            f"no reply after icmp_seq {before} within 5 s",
        )
        lost = pinger.lost_between(before, after) if after is not None else -1
        gap = _gap(pinger.arrival(before), pinger.arrival(after) if after else None)
        self.check(
            lab.loa(ms.name) == loa and len(self._lnp_addresses()) == 1,
            f"{ms.name} kept its LoA {loa}",
            f"addresses now {self._addresses()}",
        )
        self._check_binding(loa, new)
        gone = wait_for(lambda: old not in lab.visitor_entries(ms.nai), 3.0)
        self.check(
            bool(gone),
            f"{old}'s visitor entry for {ms.nai} is gone",
            f"{old} still lists it: {lab.visitor_entries(ms.nai).get(old)}",
        )
        time.sleep(DWELL)  # let the ping run; the tap reader catches up
        times = handover_times(
            tap.snapshot(start), new, ACCESS_IF, UPLINK_IF, ms.mac, loa, start
        )
        self.handovers.append((old, new, times, lost, gap))
        self.say(self._describe(times, lost, gap, before, after))
        self.say("        LMAP bindings:\n" + _indent(format_table(lab.bindings())))

    def _check_binding(self, loa: IPv6Address, mpa: str) -> None:
        lab, ms = self.lab, self.ms
        assert lab is not None
        care_of = str(mpa_address(self.topo.mpa_index(mpa)))

        def right() -> bool:
            b = lab.binding_for(ms.nai)
            return b is not None and b.get("care_of") == care_of

        ok = wait_for(right, 3.0)
        b = lab.binding_for(ms.nai)
        self.check(
            bool(ok) and b is not None and b.get("loa") == str(loa),
            f"the LMAP binds {ms.nai} / {loa} to {mpa} ({care_of})",
            f"binding is {b}",
        )

        # the new MPA registers on the PBA, the old one forgets on the
        # revocation: both a moment after the LMAP moved the binding
        def served_by_one() -> bool:
            here = lab.visitor_entries(ms.nai)
            return (
                list(here) == [mpa]
                and len(here[mpa]) == 1
                and here[mpa][0].get("state") == "registered"
            )

        self.check(
            bool(wait_for(served_by_one, 3.0)),
            f"{mpa} and no other MPA has {ms.nai} as a registered visitor",
            f"visitor entries: {lab.visitor_entries(ms.nai)}",
        )

    def _describe(
        self,
        t: HandoverTimes,
        lost: int,
        gap: float | None,
        before: int,
        after: int | None,
    ) -> str:
        def ms_(v: float | None) -> str:
            return "not seen" if v is None else f"{v * 1000:.1f} ms"

        lines = [
            "        layer-3 handover, from the MS's first frame at the new MPA:",
            f"          PBA from the LMAP   {ms_(t.to_pba)}",
            f"          RA to the MS        {ms_(t.to_ra)}",
            f"          first echo reply    {ms_(t.to_echo_reply)}",
            f"        (move command to first frame: {ms_(t.carrier)}, "
            "the kernel's link move and the MS's first MLD report)",
        ]
        if after is not None:
            lines.append(
                f"        pings lost: {lost} (last reply before the move icmp_seq "
                f"{before}, first after {after}); no reply at the CN for "
                f"{ms_(gap)}"
            )
        for what, value in (
            ("PBA", t.pba),
            ("RA", t.ra),
            ("first echo reply", t.echo_reply),
        ):
            if value is None:
                self.failures.append(f"no {what} seen at the new MPA")
        return "\n".join(lines)

    # --- helpers -------------------------------------------------------------

    def _addresses(self) -> list[str]:
        assert self.lab is not None
        try:
            return [
                a["local"] + ("(tentative)" if a.get("tentative") else "")
                for a in self.lab.global_addresses(self.ms.name)
            ]
        except LabError as exc:
            return [str(exc)]

    def _lnp_addresses(self) -> list[str]:
        assert self.lab is not None
        return [
            a["local"]
            for a in self.lab.global_addresses(self.ms.name)
            if IPv6Address(a["local"]) in self.ms.lnp
        ]

    def _stop_ping(self) -> dict[str, int]:
        assert self.pinger is not None
        proc = self.pinger.proc
        received = self.pinger.count()
        # SIGINT makes ping print its own summary; ours counts replies by seq
        proc.send_signal(signal.SIGINT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=2.0)
        stats = self.pinger.stop()
        sent = self.pinger.transmitted
        return {
            "transmitted": sent if sent is not None else max(stats["last"], received),
            "received": stats["received"],
        }

    def _teardown(self) -> None:
        if self.pinger is not None:
            self.pinger.stop()
        if self.tap is not None:
            self.tap.close()
        if self.lab is None:
            return
        if self.failures and not self.interrupted:
            for daemon in self.lab.daemon_names():
                self.say(
                    f"{daemon} log (last lines):\n{_indent(self.lab.log_tail(daemon))}"
                )
        problems = self.lab.down()
        left = sorted(set(self.topo.namespaces) & _netns())
        if problems or left:
            self.failures.append(f"teardown: {problems} {left}")
        self.say(f"lab {self.topo.name} removed (namespaces, links, daemons)")

    def _verdict(self) -> int:
        if self.handovers:
            rows = []
            for old, new, t, lost, gap in self.handovers:
                rows.append(
                    {
                        "handover": f"{old}->{new}",
                        "to_pba_ms": _ms(t.to_pba),
                        "to_ra_ms": _ms(t.to_ra),
                        "to_echo_reply_ms": _ms(t.to_echo_reply),
                        "pings_lost": lost,
                        "no_reply_ms": _ms(gap),
                    }
                )
            self.say("handovers:\n" + _indent(format_table(rows)))
        if self.failures:
            self.say(f"FAILED: {len(self.failures)} check(s) did not hold:")
            for f in self.failures:
                self.say(f"  - {f}")
            return 1
        self.say("PASSED: the MS kept its address and its ping across every handover")
        return 0


def _gap(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else b - a


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.1f}"


def _indent(text: str, by: str = "          ") -> str:
    return "\n".join(by + line for line in text.splitlines())


def _netns() -> set[str]:
    from pmip6.lab.lab import netns_list

    return netns_list()


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: at least one handover")
    return value


def run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print(
            "pmip6 demo: needs root (it builds network namespaces and opens raw "
            "sockets); run it as root, e.g. `sudo ./run demo`",
            file=sys.stderr,
        )
        return 1
    name = args.name or f"demo{secrets.token_hex(2)}"
    demo = Demo(name, moves=args.moves, aaa=args.aaa)
    # SIGTERM and SIGHUP end the demo as Ctrl-C does: the lab is removed
    with Interrupts():
        return demo.run()
