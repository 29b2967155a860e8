"""Linux forwarding state for the LMAP and the MPA.

``create(name)`` picks a backend: ``"auto"`` uses ip6ip6 tunnel devices where
the kernel has them (ip6tnl) and seg6 lightweight tunnels otherwise; ``"seg6"``,
``"ip6tnl"``, ``"fake"`` (recording, for tests) and ``"none"`` (signalling only)
force one. A forced backend the kernel cannot run raises ``DataPlaneError``.
"""

from __future__ import annotations

from typing import Any

from pmip6.dataplane.base import DataPlane, DataPlaneError
from pmip6.dataplane.fake import FakeDataPlane, NullDataPlane

__all__ = [
    "BACKENDS",
    "DataPlane",
    "DataPlaneError",
    "FakeDataPlane",
    "NullDataPlane",
    "create",
]

BACKENDS = ("auto", "seg6", "ip6tnl", "fake", "none")


def create(name: str = "auto", **kw: Any) -> DataPlane:
    """Return an unstarted backend; keyword arguments go to its constructor."""
    if name in ("fake", "none"):
        # the kernel-only options mean nothing here; accept them so that a
        # daemon can pass the same keywords whatever its configured backend
        kw.pop("netns", None)
        kw.pop("fast", None)
    if name == "fake":
        return FakeDataPlane(**kw)
    if name == "none":
        return NullDataPlane()
    if name not in BACKENDS:
        raise DataPlaneError(
            f"unknown data plane backend {name!r} (choose from {', '.join(BACKENDS)})"
        )

    from pmip6.dataplane.ip6tnl import Ip6tnlDataPlane
    from pmip6.dataplane.ip6tnl import unavailable_reason as ip6tnl_unavailable
    from pmip6.dataplane.seg6 import Seg6DataPlane
    from pmip6.dataplane.seg6 import unavailable_reason as seg6_unavailable

    if name == "auto":
        name = "seg6" if ip6tnl_unavailable() else "ip6tnl"
    if name == "ip6tnl":
        why = ip6tnl_unavailable()
        if why:
            raise DataPlaneError(f"data plane 'ip6tnl' is unavailable: {why}")
        return Ip6tnlDataPlane(**kw)
    why = seg6_unavailable()
    if why:
        raise DataPlaneError(f"data plane 'seg6' is unavailable: {why}")
    return Seg6DataPlane(**kw)
