"""Sequence numbers compared modulo 2^16 (RFC 6275 9.5.1).

A received value is "greater" than the last accepted one if it lies in the
32768 values after it; equal or in the 32768 values before it is "not greater"
and a Binding Update carrying it is answered with status 135.
"""

from __future__ import annotations

MODULUS = 1 << 16
HALF = 1 << 15


def seq_add(value: int, step: int = 1) -> int:
    """``value + step`` wrapped to 16 bits."""
    return (value + step) % MODULUS


def seq_greater(value: int, last: int) -> bool:
    """True when ``value`` is newer than ``last`` (modulo 2^16)."""
    return 0 < (value - last) % MODULUS < HALF
