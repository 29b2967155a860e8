"""The ip6tnl backend, where the kernel can create ip6ip6 tunnel devices.

Kernels without ip6_tunnel skip with the reason; a forced ``create("ip6tnl")``
must then fail with a clear DataPlaneError.
"""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network

import pytest

from pmip6.dataplane import DataPlaneError, create
from pmip6.dataplane.kernel import PROTO
from pmip6.lab.netns import Lab, Namespace, local_veth

LMAP = IPv6Address("fd00::1")
MPA1 = IPv6Address("fd00::11")
MPA2 = IPv6Address("fd00::12")
LOA = IPv6Network("2001:db8:1:1::10/128")


def ours(ns: Namespace) -> tuple[str, str]:
    routes = ns.run("ip", "-6", "route", "show", "table", "all", "proto", str(PROTO))
    rules = ns.run("ip", "-6", "rule", "show").stdout.splitlines()
    mine = "\n".join(r for r in rules if f"proto {PROTO}" in r)
    return routes.stdout.strip(), mine


@pytest.mark.root
def test_ip6tnl_where_the_kernel_has_it() -> None:
    from pmip6.dataplane.ip6tnl import unavailable_reason

    why = unavailable_reason()
    if why:
        with pytest.raises(DataPlaneError, match="ip6tnl"):
            create("ip6tnl")
        pytest.skip(why)
    with Lab("pm-dp-") as lab:
        ns = lab.add("tnl")
        local_veth(ns, "up0", "up1", f"{LMAP}/64")
        dp = create("ip6tnl", netns=ns.name)
        dp.start()
        dp.lmap_setup(LMAP, "up0")
        dp.lmap_bind(LOA, MPA1)
        dp.lmap_bind(IPv6Network("2001:db8:1:2::/64"), MPA1)
        links = ns.run("ip", "-6", "tunnel", "show").stdout
        assert "remote fd00::11" in links
        dp.lmap_unbind(LOA)
        assert "remote fd00::11" in ns.run("ip", "-6", "tunnel", "show").stdout
        dp.lmap_bind(IPv6Network("2001:db8:1:2::/64"), MPA2)
        assert "remote fd00::11" not in ns.run("ip", "-6", "tunnel", "show").stdout
        dp.stop()
        assert ours(ns) == ("", "")
