"""Backends that touch no kernel: a recording fake and a no-op.

``FakeDataPlane`` keeps the state a real backend would leave in the kernel as
plain dicts, and every call in order, so engine and daemon tests can assert on
both ("the LoA is now bound to MPA2" and "unbind was called once"). It checks
the interface's preconditions a real backend would trip over (``*_bind`` before
``*_setup``, use after ``stop``) and raises :class:`DataPlaneError` for them, and
it can be told to fail the next calls to exercise error paths.

``NullDataPlane`` ("none") accepts everything and does nothing: signalling-only
runs on hosts where forwarding is handled elsewhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from pmip6.dataplane.base import DataPlane, DataPlaneError


@dataclass(frozen=True)
class Call:
    """One recorded call: method name and its arguments (after ``self``)."""

    method: str
    args: tuple[Any, ...]


@dataclass
class FakeDataPlane(DataPlane):
    """Records calls and the forwarding state they would produce.

    Inspect ``lmap_bindings`` (target -> care-of), ``mpa_visitors``
    (target -> (access, lmap)), ``lmap_own``/``mpa_own`` (address given to
    ``*_setup``, None before), ``started``, ``stopped``, ``kept`` (the ``keep``
    of the last ``stop``) and ``calls`` (every call, in order). Put method names
    in ``fail`` to make those calls raise :class:`DataPlaneError` (each name is
    removed when it fires, so a retry succeeds).
    """

    name = "fake"

    lmap_bindings: dict[IPv6Network, IPv6Address] = field(default_factory=dict)
    mpa_visitors: dict[IPv6Network, tuple[str, IPv6Address]] = field(
        default_factory=dict
    )
    lmap_own: IPv6Address | None = None
    lmap_uplink: str | None = None
    mpa_own: IPv6Address | None = None
    mpa_uplink: str | None = None
    started: bool = False
    stopped: bool = False
    kept: bool | None = None
    calls: list[Call] = field(default_factory=list)
    fail: set[str] = field(default_factory=set)
    #: False: skip the precondition checks (setup before bind, nothing after stop)
    strict: bool = True

    # --- helpers for tests ---------------------------------------------------

    def calls_to(self, method: str) -> list[tuple[Any, ...]]:
        """Arguments of every recorded call to ``method``, in order."""
        return [c.args for c in self.calls if c.method == method]

    def _enter(self, method: str, *args: Any) -> None:
        self.calls.append(Call(method, args))
        if method in self.fail:
            self.fail.discard(method)
            raise DataPlaneError(f"injected failure in {method}")
        if self.strict and self.stopped and method not in ("start", "stop"):
            raise DataPlaneError(f"{method} after stop")

    # --- lifecycle -----------------------------------------------------------

    def start(self) -> None:
        self._enter("start")
        self.started = True
        self.stopped = False

    def stop(self, keep: bool = False) -> None:
        self._enter("stop", keep)
        self.stopped = True
        self.kept = keep
        if not keep:
            self.lmap_bindings.clear()
            self.mpa_visitors.clear()

    # --- LMAP side -----------------------------------------------------------

    def lmap_setup(self, own: IPv6Address, uplink: str) -> None:
        self._enter("lmap_setup", own, uplink)
        self.lmap_own = IPv6Address(own)
        self.lmap_uplink = uplink

    def _need_lmap(self) -> None:
        if self.strict and self.lmap_own is None:
            raise DataPlaneError("lmap_setup has not been called")

    def lmap_bind(self, target: IPv6Network, care_of: IPv6Address) -> None:
        self._enter("lmap_bind", target, care_of)
        self._need_lmap()
        self.lmap_bindings[IPv6Network(target)] = IPv6Address(care_of)

    def lmap_unbind(self, target: IPv6Network) -> None:
        self._enter("lmap_unbind", target)
        self.lmap_bindings.pop(IPv6Network(target), None)

    def lmap_reconcile(self, bindings: Mapping[IPv6Network, IPv6Address]) -> None:
        self._enter("lmap_reconcile", dict(bindings))
        self._need_lmap()
        self.lmap_bindings = {
            IPv6Network(t): IPv6Address(c) for t, c in bindings.items()
        }

    # --- MPA side ------------------------------------------------------------

    def mpa_setup(self, own: IPv6Address, uplink: str) -> None:
        self._enter("mpa_setup", own, uplink)
        self.mpa_own = IPv6Address(own)
        self.mpa_uplink = uplink

    def _need_mpa(self) -> None:
        if self.strict and self.mpa_own is None:
            raise DataPlaneError("mpa_setup has not been called")

    def mpa_attach(self, target: IPv6Network, access: str, lmap: IPv6Address) -> None:
        self._enter("mpa_attach", target, access, lmap)
        self._need_mpa()
        self.mpa_visitors[IPv6Network(target)] = (access, IPv6Address(lmap))

    def mpa_detach(self, target: IPv6Network) -> None:
        self._enter("mpa_detach", target)
        self.mpa_visitors.pop(IPv6Network(target), None)

    def mpa_reconcile(
        self, visitors: Mapping[IPv6Network, tuple[str, IPv6Address]]
    ) -> None:
        self._enter("mpa_reconcile", dict(visitors))
        self._need_mpa()
        self.mpa_visitors = {
            IPv6Network(t): (a, IPv6Address(m)) for t, (a, m) in visitors.items()
        }


class NullDataPlane(DataPlane):
    """Signalling only: every call succeeds and changes nothing."""

    name = "none"

    def start(self) -> None:
        pass

    def stop(self, keep: bool = False) -> None:
        pass

    def lmap_setup(self, own: IPv6Address, uplink: str) -> None:
        pass

    def lmap_bind(self, target: IPv6Network, care_of: IPv6Address) -> None:
        pass

    def lmap_unbind(self, target: IPv6Network) -> None:
        pass

    def lmap_reconcile(self, bindings: Mapping[IPv6Network, IPv6Address]) -> None:
        pass

    def mpa_setup(self, own: IPv6Address, uplink: str) -> None:
        pass

    def mpa_attach(self, target: IPv6Network, access: str, lmap: IPv6Address) -> None:
        pass

    def mpa_detach(self, target: IPv6Network) -> None:
        pass

    def mpa_reconcile(
        self, visitors: Mapping[IPv6Network, tuple[str, IPv6Address]]
    ) -> None:
        pass
