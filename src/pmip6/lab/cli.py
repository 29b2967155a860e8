"""``pmip6 lab``: build and drive a lab of network namespaces.

pmip6 lab up [--name pm] [--mpas 2] [--mss 1] [--aaa file|radius] [--dhcp]
             [TOPOLOGY.toml]
pmip6 lab status [--name pm] [--json]
pmip6 lab exec [--name pm] NODE -- CMD...
pmip6 lab move [--name pm] MS MPA
pmip6 lab restart [--name pm] DAEMON
pmip6 lab down [--name pm]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from typing import Any

from pmip6.lab.lab import Interrupts, Lab, LabError, lab_namespaces, removing
from pmip6.lab.topology import AAA_BACKENDS, MsSpec, Topology, TopologyError
from pmip6.runtime.ctl import format_table

HELP = "build and drive a lab of network namespaces"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def named(
        name: str, help_: str, default: str | None = "pm"
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        what = "pm" if default else "the topology's [lab] name, else pm"
        p.add_argument("--name", default=default, help=f"lab name (default: {what})")
        return p

    # a topology file may name the lab: --name wins only when given
    up = named("up", "build the lab and start its daemons", default=None)
    up.add_argument(
        "topology", nargs="?", help="TOML description (default: the built-in one)"
    )
    up.add_argument("--mpas", type=int, help="number of MPAs (default 2)")
    up.add_argument("--mss", type=int, help="number of mobile stations (default 1)")
    up.add_argument(
        "--aaa",
        choices=AAA_BACKENDS,
        help="where the MPAs get profiles: a file (default) or FreeRADIUS "
        "in the LMAP namespace",
    )
    up.add_argument(
        "--dhcp",
        action="store_true",
        help="stations get their address from Kea DHCPv6 through the MPAs' relay "
        "(RAs carry M; each station runs dhclient -6)",
    )
    up.add_argument(
        "--no-daemons",
        action="store_true",
        help="build namespaces and links only (for debugging the daemons by hand)",
    )
    named("down", "stop the daemons and remove every namespace of the lab")
    status = named("status", "namespaces, daemons, bindings and visitors")
    status.add_argument("--json", action="store_true", help="print JSON")
    ex = named("exec", "run a command in a node's namespace")
    ex.add_argument("node", help="cn, lmap, tr, mpa1, ..., ms1, ...")
    ex.add_argument("cmd", nargs=argparse.REMAINDER, help="-- CMD...")
    mv = named("move", "hand an MS over to another MPA")
    mv.add_argument("ms")
    mv.add_argument("mpa")
    rs = named("restart", "stop a daemon (if it runs) and start it again")
    rs.add_argument("daemon", help="lmap, mpa1, mpa2, ...")


def _say(text: str) -> None:
    print(text, flush=True)


def run(args: argparse.Namespace) -> int:
    if os.geteuid() != 0:
        print("pmip6 lab: needs root (network namespaces); run it with sudo",
              file=sys.stderr)  # fmt: skip
        return 1
    try:
        return int(ACTIONS[args.action](args))
    except TopologyError as exc:
        # a bad description or option: like a bad config, exit status 2
        print(f"pmip6 lab: {exc}", file=sys.stderr)
        return 2
    except LabError as exc:
        print(f"pmip6 lab {args.action}: {exc}", file=sys.stderr)
        return 1


def _up(args: argparse.Namespace) -> int:
    if args.topology:
        topo = Topology.load(args.topology, name=args.name, mpas=args.mpas)
        if args.mss is not None:
            raise TopologyError("--mss applies to the built-in topology only")
    else:
        # 0 is a value, not "not given": Topology refuses it
        topo = Topology.default(
            args.name or "pm",
            mpas=2 if args.mpas is None else args.mpas,
            mss=1 if args.mss is None else args.mss,
        )
    if args.aaa:
        topo = replace(topo, aaa=args.aaa)
    if args.dhcp:
        topo = replace(topo, dhcp=True)
    lab = Lab.create(topo)
    # SIGTERM and SIGHUP tear down like Ctrl-C does
    try:
        with Interrupts():
            lab.up(daemons=not args.no_daemons, say=_say)
    except KeyboardInterrupt:
        print("interrupted: the lab was removed", file=sys.stderr)
        return 130
    except LabError as exc:
        print(f"pmip6 lab up: {exc}\nthe lab was removed", file=sys.stderr)
        return 1
    example = "ADDRESS"
    if not args.no_daemons:
        # the stations' kernels configure themselves; show what they got
        try:
            with Interrupts():
                for s in topo.stations:
                    loa = _shown_loa(lab, s)
                    if loa is not None:
                        example = loa
        except KeyboardInterrupt:
            # "is up" was not said yet: an interrupt still means "remove it"
            removing(lambda: lab.down())
            print("interrupted: the lab was removed", file=sys.stderr)
            return 130
    print(f"lab {topo.name} is up; state in {topo.run_dir}")
    print(f"  pmip6 lab status --name {topo.name}")
    print(f"  pmip6 lab exec --name {topo.name} cn -- ping -6 {example}")
    print(f"  pmip6 lab move --name {topo.name} ms1 mpa2")
    print(f"  pmip6 lab down --name {topo.name}")
    return 0


def _shown_loa(lab: Lab, s: MsSpec) -> str | None:
    """Wait a little for a station's LoA and print it; an MS that got service
    but no LoA is named with the reason the lab knows."""
    loa = lab.wait_loa(s.name, timeout=5.0) if s.known else None
    if loa is not None:
        print(f"{s.name}: LoA {loa}")
        return str(loa)
    why = "unknown to AAA" if not s.known else "no LoA (yet)"
    print(f"{s.name}: {why}")
    return None


def _down(args: argparse.Namespace) -> int:
    try:
        lab = Lab.open(args.name)
    except LabError:
        # no state left: remove the namespaces named as a lab's nodes are
        leftovers = lab_namespaces(args.name)
        if not leftovers:
            print(f"pmip6 lab down: no lab named {args.name!r}", file=sys.stderr)
            return 1
        topo = Topology.default(args.name)
        lab = Lab(topo, {"namespaces": leftovers, "pids": {}})
    problems = lab.down(say=_say)
    for p in problems:
        print(f"pmip6 lab down: {p}", file=sys.stderr)
    print(f"lab {args.name} is down")
    return 1 if problems else 0


def _status(args: argparse.Namespace) -> int:
    lab = Lab.open(args.name)
    report = lab.status()
    if args.json:
        print(json.dumps(report, indent=2, default=str))
    else:
        print(format_status(report))
    healthy = all(report["namespaces"].values()) and all(
        d["alive"] for d in report["daemons"].values()
    )
    return 0 if healthy else 1


def format_status(report: dict[str, Any]) -> str:
    lines = [f"lab {report['name']} ({report['run_dir']})", "", "namespaces:"]
    for ns, ok in report["namespaces"].items():
        lines.append(f"  {ns:<16} {'present' if ok else 'MISSING'}")
    lines += ["", "daemons:"]
    for d, info in report["daemons"].items():
        state = "running" if info["alive"] else "NOT RUNNING"
        lines.append(f"  {d:<8} pid {info['pid']!s:<8} {state}")
    lines += ["", "stations:"]
    rows = [
        {
            "ms": name,
            "mac": s["mac"],
            "nai": s["nai"],
            "aaa": "known" if s["known"] else "unknown",
            "at": s["at"] if s["attached"] else f"({s['at']}, detached)",
            "addresses": " ".join(s["addresses"]) or "-",
        }
        for name, s in report["stations"].items()
    ]
    lines += ["  " + line for line in format_table(rows).splitlines()]
    lines += ["", "LMAP bindings:"]
    lines += _table(report["bindings"])
    for mpa, visitors in report["visitors"].items():
        lines += ["", f"{mpa} visitors:"]
        lines += _table(visitors)
    return "\n".join(lines)


def _table(rows: list[dict[str, Any]] | str) -> list[str]:
    if isinstance(rows, str):
        return [f"  {rows}"]
    return ["  " + line for line in format_table(rows).splitlines()]


def _exec(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise LabError("no command given: pmip6 lab exec NODE -- CMD...")
    lab = Lab.open(args.name)
    argv = lab.command(args.node, cmd)
    sys.stdout.flush()
    os.execvp(argv[0], argv)


def _move(args: argparse.Namespace) -> int:
    with Lab.locked(args.name) as lab:
        old = lab.state["at"].get(args.ms)
        _, took = lab.move(args.ms, args.mpa)
    print(f"{args.ms}: moved from {old} to {args.mpa} ({took * 1000:.1f} ms)")
    return 0


def _restart(args: argparse.Namespace) -> int:
    with Lab.locked(args.name) as lab:
        pid = lab.restart_daemon(args.daemon, say=_say)
    print(f"{args.daemon} is running (pid {pid}); log in {lab.log_path(args.daemon)}")
    return 0


ACTIONS = {
    "up": _up,
    "down": _down,
    "status": _status,
    "exec": _exec,
    "move": _move,
    "restart": _restart,
}
