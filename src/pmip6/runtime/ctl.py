"""``pmip6 ctl``: ask a running daemon what it holds.

pmip6 ctl bindings [--json]        the LMAP's binding cache
pmip6 ctl visitors [--json]        an MPA's visitor list
pmip6 ctl status [--json]          the daemon's counters and settings

Without ``--json`` lists print as aligned columns and ``status`` as
``key: value`` lines, an absent value (JSON null) as ``-``. Values come from
the network (NAIs): anything non-printable is escaped as ``repr()`` would.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from pmip6.runtime.control import request
from pmip6.runtime.logs import printable

HELP = "query a running daemon through its control socket"

DEFAULT_SOCKETS = {
    "bindings": "/run/pmip6/lmap.sock",
    "visitors": "/run/pmip6/mpa.sock",
    "status": "/run/pmip6/lmap.sock",
}


ABSENT = "-"  # how a table or status line shows a value the daemon has not


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
    columns = [printable(str(c)) for c in rows[0]]
    cells = [[printable(_value(r.get(c))) for c in rows[0]] for r in rows]
    widths = [
        max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)
    ]
    lines = [
        "  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True))
    ]
    for row in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)))
    return "\n".join(line.rstrip() for line in lines)


def _value(value: Any) -> str:
    if value is None:
        return ABSENT
    if isinstance(value, dict):
        return ", ".join(f"{k}={_value(v)}" for k, v in value.items()) or "-"
    if isinstance(value, list):
        return ", ".join(_value(v) for v in value) or "-"
    return str(value)


def format_status(status: dict[str, Any]) -> str:
    """A status dict as ``key: value`` lines (nested dicts as ``k=v, ...``)."""
    if not status:
        return "(empty)"
    items = [(printable(f"{k}:"), printable(_value(v))) for k, v in status.items()]
    width = max(len(k) for k, _ in items)
    return "\n".join(f"{k:<{width}} {v}" for k, v in items)


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
    elif isinstance(result, dict):
        print(format_status(result))
    else:
        print(printable(str(result)))
    return 0
