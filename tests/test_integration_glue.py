"""Glue between the daemons and the data plane, as the lab found it (root)."""

from __future__ import annotations

import asyncio

import pytest

from pmip6.dataplane import DataPlaneError, create, ip6tnl
from pmip6.lab.netns import namespace

pytestmark = pytest.mark.root


def test_ip6tnl_probe_from_a_running_event_loop_asks_the_kernel(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the daemons call create("auto") from their event loop, where pyroute2's
    # IPRoute refuses to start; the probe must still reach the kernel
    monkeypatch.setattr(ip6tnl, "_reason", None)

    async def probe() -> str:
        return ip6tnl.unavailable_reason()

    reason = asyncio.run(probe())
    assert not reason.startswith("cannot probe")


def test_ifindex_is_looked_up_in_the_backends_namespace() -> None:
    with namespace("pm-lab-glue-") as ns:
        ns.run("ip", "link", "add", "probe0", "type", "bridge")
        dp = create("auto", netns=ns.name)
        dp.start()
        try:
            index = dp.ifindex("probe0")
            links = ns.run("ip", "-o", "link", "show", "probe0").stdout
            assert links.startswith(f"{index}: probe0")
            with pytest.raises(DataPlaneError, match="no such interface"):
                dp.ifindex("absent0")
        finally:
            dp.stop()
