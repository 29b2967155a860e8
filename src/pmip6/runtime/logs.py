"""Logging set-up shared by the daemons.

Log lines carry what peers sent (NAIs, option contents). Every message is
escaped the way ``repr()`` escapes a string, so a newline or a terminal
escape sequence from the network can neither forge a line nor recolour a
terminal.
"""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def printable(text: str) -> str:
    """``text`` with each non-printable character escaped as ``repr()`` does."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class EscapingFormatter(logging.Formatter):
    """A formatter whose lines never contain non-printable characters."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        return printable(super().formatMessage(record))


def setup_logging(level: str = "info") -> None:
    """Log to stderr at ``level``; raise ``ValueError`` for an unknown level."""
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(EscapingFormatter(FORMAT))
    logging.basicConfig(level=numeric, handlers=[handler], force=True)
