"""The `pmip6` command line: one entry point, one module per subcommand.

Each subcommand module provides ``HELP`` (one line), ``add_arguments(parser)``
and ``run(args) -> int``. Modules are imported only when their subcommand
runs, so ``pmip6 decode`` does not pay for netlink or asyncio imports.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "decode": ("pmip6.tools.decode", "print the Mobility Header messages in a pcap"),
    "lmap": ("pmip6.runtime.lmapd", "run the Local Mobility Anchor Point daemon"),
    "mpa": ("pmip6.runtime.mpad", "run the Mobility Proxy Agent daemon"),
    "ctl": ("pmip6.runtime.ctl", "query a running daemon through its control socket"),
    "lab": ("pmip6.lab.cli", "build and drive a lab of network namespaces"),
    "demo": ("pmip6.lab.demo", "run the handover demo in a fresh lab"),
}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="pmip6", description="Proxy Mobile IPv6 for unmodified IPv6 hosts."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_, help_) in COMMANDS.items():
        sub.add_parser(name, help=help_, add_help=False)

    # parse the subcommand name first, then let its module declare its options
    if not argv or argv[0] not in COMMANDS:
        args = parser.parse_args(argv)
        parser.print_help()
        return 2
    name = argv[0]
    module = importlib.import_module(COMMANDS[name][0])
    subparser = argparse.ArgumentParser(
        prog=f"pmip6 {name}", description=COMMANDS[name][1]
    )
    module.add_arguments(subparser)
    args = subparser.parse_args(argv[1:])
    try:
        return int(module.run(args) or 0)
    except KeyboardInterrupt:
        return 130
