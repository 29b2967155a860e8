"""The recording fake and the no-op backend behave like the interface says."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network

import pytest

from pmip6.dataplane import (
    DataPlaneError,
    FakeDataPlane,
    NullDataPlane,
    create,
)

LOA = IPv6Network("2001:db8:1:1::10/128")
LNP = IPv6Network("2001:db8:1:2::/64")
MPA1 = IPv6Address("fd00::11")
MPA2 = IPv6Address("fd00::12")
LMAP = IPv6Address("fd00::1")


def lmap() -> FakeDataPlane:
    dp = create("fake")
    assert isinstance(dp, FakeDataPlane)
    dp.start()
    dp.lmap_setup(LMAP, "eth0")
    return dp


def test_create_fake_and_none() -> None:
    assert create("fake").name == "fake"
    assert isinstance(create("none"), NullDataPlane)


def test_create_unknown_name() -> None:
    with pytest.raises(DataPlaneError, match="unknown data plane backend"):
        create("gre")


def test_bind_move_unbind_is_recorded() -> None:
    dp = lmap()
    dp.lmap_bind(LOA, MPA1)
    dp.lmap_bind(LOA, MPA1)
    assert dp.lmap_bindings == {LOA: MPA1}
    dp.lmap_bind(LOA, MPA2)
    assert dp.lmap_bindings == {LOA: MPA2}
    dp.lmap_unbind(LOA)
    dp.lmap_unbind(LOA)
    assert dp.lmap_bindings == {}
    assert dp.calls_to("lmap_bind") == [(LOA, MPA1), (LOA, MPA1), (LOA, MPA2)]
    assert [c.method for c in dp.calls][:2] == ["start", "lmap_setup"]


def test_reconcile_replaces_state() -> None:
    dp = lmap()
    dp.lmap_bind(LOA, MPA1)
    dp.lmap_reconcile({LNP: MPA2})
    assert dp.lmap_bindings == {LNP: MPA2}


def test_mpa_attach_detach_reconcile() -> None:
    dp = create("fake")
    assert isinstance(dp, FakeDataPlane)
    dp.start()
    dp.mpa_setup(MPA1, "eth0")
    dp.mpa_attach(LOA, "br0", LMAP)
    assert dp.mpa_visitors == {LOA: ("br0", LMAP)}
    dp.mpa_detach(LOA)
    assert dp.mpa_visitors == {}
    dp.mpa_reconcile({LNP: ("br1", LMAP)})
    assert dp.mpa_visitors == {LNP: ("br1", LMAP)}


def test_bind_before_setup_is_refused() -> None:
    dp = FakeDataPlane()
    dp.start()
    with pytest.raises(DataPlaneError, match="lmap_setup"):
        dp.lmap_bind(LOA, MPA1)
    with pytest.raises(DataPlaneError, match="mpa_setup"):
        dp.mpa_attach(LOA, "br0", LMAP)


def test_stop_clears_unless_keep() -> None:
    dp = lmap()
    dp.lmap_bind(LOA, MPA1)
    dp.stop(keep=True)
    assert dp.kept is True
    assert dp.lmap_bindings == {LOA: MPA1}
    with pytest.raises(DataPlaneError, match="after stop"):
        dp.lmap_bind(LNP, MPA1)
    dp.start()
    dp.stop()
    assert dp.kept is False
    assert dp.lmap_bindings == {}


def test_injected_failure_fires_once() -> None:
    dp = lmap()
    dp.fail.add("lmap_bind")
    with pytest.raises(DataPlaneError, match="injected"):
        dp.lmap_bind(LOA, MPA1)
    assert dp.lmap_bindings == {}
    dp.lmap_bind(LOA, MPA1)
    assert dp.lmap_bindings == {LOA: MPA1}


def test_fake_and_none_accept_kernel_options() -> None:
    assert create("fake", netns="x", fast=False).name == "fake"
    assert create("none", netns="x").name == "none"


def test_forced_backend_unavailable_is_clear(monkeypatch: pytest.MonkeyPatch) -> None:
    from pmip6.dataplane import bpf, ip6tnl, seg6

    monkeypatch.setattr(seg6, "unavailable_reason", lambda: "no seg6 here")
    monkeypatch.setattr(ip6tnl, "unavailable_reason", lambda: "no ip6tnl here")
    monkeypatch.setattr(bpf, "unavailable_reason", lambda: "no bpf here")
    with pytest.raises(DataPlaneError, match="'seg6' is unavailable: no seg6 here"):
        create("seg6")
    with pytest.raises(DataPlaneError, match="'ip6tnl' is unavailable: no ip6tnl"):
        create("ip6tnl")
    with pytest.raises(DataPlaneError, match="'bpf' is unavailable: no bpf here"):
        create("bpf")
    with pytest.raises(DataPlaneError) as info:
        create("auto")
    assert str(info.value) == (
        "no kernel data plane is available here: ip6tnl: no ip6tnl here; "
        "seg6: no seg6 here; bpf: no bpf here"
    )


def test_auto_takes_the_first_backend_the_kernel_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from pmip6.dataplane import bpf, ip6tnl, seg6

    monkeypatch.setattr(ip6tnl, "unavailable_reason", lambda: "no ip6tnl here")
    monkeypatch.setattr(seg6, "unavailable_reason", lambda: "")
    assert create("auto").name == "seg6"
    monkeypatch.setattr(seg6, "unavailable_reason", lambda: "no seg6 here")
    monkeypatch.setattr(bpf, "unavailable_reason", lambda: "")
    assert create("auto").name == "bpf"


def test_null_backend_does_nothing() -> None:
    dp = create("none")
    dp.start()
    dp.lmap_setup(LMAP, "eth0")
    dp.lmap_bind(LOA, MPA1)
    dp.mpa_attach(LOA, "br0", LMAP)
    dp.lmap_reconcile({})
    dp.mpa_reconcile({})
    dp.stop()
    assert dp.name == "none"
