"""Which interfaces the MPA takes as access links, and putting them back.

The loopback and the uplink are refused (the MPA would give them the virtual
MAC and link-local address); what the MPA changed on an access interface is
put back at stop step by step, so one step that fails does not keep the
others from running.
"""

from __future__ import annotations

import asyncio
import json
from ipaddress import IPv6Address

import pytest

from pmip6.lab.netns import Namespace, namespace
from pmip6.runtime import mpad
from pmip6.runtime.access import configure_access_interface

VMAC = "02:00:5e:00:53:01"
VLL = IPv6Address("fe80::1")


def test_link_kind_tells_the_loopback() -> None:
    assert mpad.link_kind("lo") == "loopback"


# --- in a namespace ------------------------------------------------------------------


def _link(ns: Namespace, ifname: str) -> dict[str, object]:
    out = ns.run("ip", "-j", "addr", "show", "dev", ifname).stdout
    link: dict[str, object] = json.loads(out)[0]
    return link


@pytest.mark.root
def test_loopback_is_refused_and_left_as_it_was() -> None:
    with namespace("pm-acc-") as ns:
        ns.run("ip", "link", "set", "lo", "up")
        before = _link(ns, "lo")
        with pytest.raises(ValueError, match="'lo' has no Ethernet address"):
            ns.call(asyncio.run, configure_access_interface("lo", VMAC, VLL))
        assert _link(ns, "lo") == before


@pytest.mark.root
def test_restore_runs_every_step_when_one_fails() -> None:
    with namespace("pm-acc-") as ns:
        ns.run("ip", "link", "add", "acc0", "type", "veth", "peer", "name", "acc1")
        old_mac = _link(ns, "acc0")["address"]
        state = ns.call(asyncio.run, configure_access_interface("acc0", VMAC, VLL))
        link = _link(ns, "acc0")
        assert link["address"] == VMAC and "UP" in link["flags"]  # type: ignore[operator]

        # the link-local is already gone: removing it fails, the rest runs
        ns.run("ip", "-6", "addr", "del", f"{VLL}/64", "dev", "acc0")
        ns.call(asyncio.run, state.restore())
        link = _link(ns, "acc0")
        assert link["address"] == old_mac
        assert "UP" not in link["flags"]  # type: ignore[operator]
