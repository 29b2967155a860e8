"""Linux forwarding state for the LMAP and the MPA.

``create(name)`` picks a backend: ``"auto"`` uses ip6ip6 tunnel devices where
the kernel has them (ip6tnl), seg6 lightweight tunnels where it has those, and
eBPF programs (bpf) otherwise; ``"ip6tnl"``, ``"seg6"``, ``"bpf"``, ``"fake"``
(recording, for tests) and ``"none"`` (signalling only) force one. A forced
backend the kernel cannot run raises ``DataPlaneError``; so does ``"auto"``
when none can run.
"""

from __future__ import annotations

from collections.abc import Callable
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

BACKENDS = ("auto", "ip6tnl", "seg6", "bpf", "fake", "none")


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

    from pmip6.dataplane import bpf, ip6tnl, seg6

    kernel_backends: dict[str, tuple[Any, Callable[[], str]]] = {
        "ip6tnl": (ip6tnl.Ip6tnlDataPlane, ip6tnl.unavailable_reason),
        "seg6": (seg6.Seg6DataPlane, seg6.unavailable_reason),
        "bpf": (bpf.BpfDataPlane, bpf.unavailable_reason),
    }
    if name == "auto":
        reasons = []
        for candidate, (_, unavailable) in kernel_backends.items():
            why = unavailable()
            if not why:
                name = candidate
                break
            reasons.append(f"{candidate}: {why}")
        else:
            raise DataPlaneError(
                "no kernel data plane is available here: " + "; ".join(reasons)
            )
    backend, unavailable = kernel_backends[name]
    why = unavailable()
    if why:
        raise DataPlaneError(f"data plane {name!r} is unavailable: {why}")
    return backend(**kw)  # type: ignore[no-any-return]
