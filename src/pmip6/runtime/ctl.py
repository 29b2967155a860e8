"""``pmip6 ctl``: ask a running daemon what it holds.

pmip6 ctl bindings [--json]        the LMAP's binding cache
pmip6 ctl visitors [--json]        an MPA's visitor list
pmip6 ctl status [--json]          the daemon's counters and settings
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pmip6.runtime.control import request

HELP = "query a running daemon through its control socket"

DEFAULT_SOCKETS = {
    "bindings": "/run/pmip6/lmap.sock",
    "visitors": "/run/pmip6/mpa.sock",
    "status": "/run/pmip6/lmap.sock",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("what", choices=sorted(DEFAULT_SOCKETS))
    parser.add_argument(
        "--socket",
        help="control socket of the daemon (default: /run/pmip6/lmap.sock for "
        "bindings and status, /run/pmip6/mpa.sock for visitors)",
    )
    parser.add_argument("--json", action="store_true", help="print JSON")


def format_table(rows: list[dict[str, Any]]) -> str:
    """Rows of dicts as aligned columns, in the first row's key order."""
    if not rows:
        return "(none)"
    columns = list(rows[0])
    cells = [[str(r.get(c, "")) for c in columns] for r in rows]
    widths = [
        max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)
    ]
    lines = [
        "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))
    ]
    for row in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def run(args: argparse.Namespace) -> int:
    path = args.socket or DEFAULT_SOCKETS[args.what]
    try:
        result = request(path, args.what)
    except (ConnectionError, OSError) as exc:
        print(f"pmip6 ctl: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        print(f"pmip6 ctl: the daemon said: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    elif isinstance(result, list):
        print(format_table(result))
    else:
        print(json.dumps(result, indent=2, default=str))
    return 0
