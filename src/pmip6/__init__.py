"""pmip6: Proxy Mobile IPv6 for unmodified IPv6 hosts on stock Linux."""

__version__ = "0.1.0"
