"""The one error family for malformed input from the wire."""

from __future__ import annotations


class Malformed(ValueError):
    """Bytes from a peer that do not decode.

    The message names the field at fault, for example
    ``"BU: Header Len 2 does not match 24 octets"``. Misuse of the API by our own
    code raises ``TypeError``/``ValueError`` instead, never this.
    """
