"""The MPA's RFC 4861 duties on the access link, and the LNP it attaches.

RFC 4861 6.1.1 and 7.1.1: an RS, NS or NA that fails the validity checks
(Hop Limit 255 above all) is silently discarded. RFC 4861 6.2.6: the RA that
answers an RS waits a random time up to MAX_RA_DELAY_TIME. Seed 7.3: the MPA
tunnels every packet from the MS, so it attaches the MS's whole LNP.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from ipaddress import IPv6Address, IPv6Network
from typing import Any

import pytest
from scapy.layers.inet6 import (
    ICMPv6ND_NA,
    ICMPv6ND_NS,
    ICMPv6ND_RS,
    ICMPv6NDOptDstLLAddr,
    ICMPv6NDOptSrcLLAddr,
    IPv6,
)
from scapy.layers.l2 import Ether

from mpa_support import BR, LL1, LMAP, LNP1, LOA1, MAC1, MPA, of, pbus
from pmip6.aaa.base import MsProfile
from pmip6.core.mpa import (
    MAX_RA_DELAY_TIME,
    Attach,
    Detach,
    Effect,
    MpaEngine,
    MpaSettings,
    SendRa,
    State,
    nd_invalid,
)
from pmip6.runtime.mpad import ConfigError, MpaDaemon, parse_config
from pmip6.wire import nd
from pmip6.wire.mh import (
    AssignedHomeAddress,
    BAFlags,
    BindingAcknowledgement,
    BindingUpdate,
    HomeNetworkPrefix,
    find_option,
)
from pmip6.wire.profile import RFC5213

VLL = "fe80::1"


def profile(lnp: IPv6Network = LNP1, loa: IPv6Address | None = LOA1) -> MsProfile:
    return MsProfile(nai="ms1@example.net", lmap_address=LMAP, lnp=lnp, loa=loa)


def accept(
    pbu: BindingUpdate, loa: IPv6Address | None = LOA1
) -> BindingAcknowledgement:
    options = (AssignedHomeAddress(64, loa),) if loa is not None else ()
    return BindingAcknowledgement(0, BAFlags.P, pbu.sequence, pbu.lifetime, options)


class FixedDelay(random.Random):
    """Draws ``share`` of the range and records the ranges asked for."""

    def __init__(self, share: float) -> None:
        super().__init__(0)
        self.share = share
        self.asked: list[tuple[float, float]] = []

    def uniform(self, a: float, b: float) -> float:
        self.asked.append((a, b))
        return a + (b - a) * self.share


def registered(rng: random.Random | None = None, **kw: Any) -> MpaEngine:
    e = MpaEngine(MpaSettings(address=MPA, **kw), initial_sequence=100, rng=rng)
    e.station_seen(MAC1, BR, 0.0)
    [pbu] = pbus(e.aaa_result(MAC1, profile(), 0.0))
    e.mh_received(LMAP, accept(pbu), 0.0)
    v = e.visitor(MAC1)
    assert v is not None and v.state is State.REGISTERED
    return e


# --- RFC 4861 6.1.1, 7.1.1: validity of received RS, NS and NA -------------------


def rs(hlim: int = 255, src: str = str(LL1), code: int = 0, sll: bool = True) -> Any:
    pkt = Ether(src=MAC1, dst="33:33:00:00:00:02") / IPv6(
        src=src, dst="ff02::2", hlim=hlim
    )
    pkt /= ICMPv6ND_RS(code=code)
    return pkt / ICMPv6NDOptSrcLLAddr(lladdr=MAC1) if sll else pkt


def dad(hlim: int = 255, dst: str | None = None, sll: bool = False) -> Any:
    pkt = Ether(src=MAC1, dst="33:33:ff:00:aa:01") / IPv6(
        src="::", dst=dst or str(nd.solicited_node(LOA1)), hlim=hlim
    )
    pkt /= ICMPv6ND_NS(tgt=str(LOA1))
    return pkt / ICMPv6NDOptSrcLLAddr(lladdr=MAC1) if sll else pkt


def ns(tgt: str = VLL, hlim: int = 255) -> Any:
    return (
        Ether(src=MAC1, dst="02:00:5e:00:53:01")
        / IPv6(src=str(LL1), dst=tgt, hlim=hlim)
        / ICMPv6ND_NS(tgt=tgt)
        / ICMPv6NDOptSrcLLAddr(lladdr=MAC1)
    )


def na(
    hlim: int = 255, dst: str = VLL, solicited: int = 1, tgt: str = str(LOA1)
) -> Any:
    return (
        Ether(src=MAC1, dst="02:00:5e:00:53:01")
        / IPv6(src=str(LOA1), dst=dst, hlim=hlim)
        / ICMPv6ND_NA(tgt=tgt, S=solicited, O=1, R=0)
        / ICMPv6NDOptDstLLAddr(lladdr=MAC1)
    )


def decoded(pkt: Any) -> nd.LinkFrame:
    return nd.decode_frame(bytes(pkt))


@pytest.mark.parametrize(
    "make",
    [
        rs,
        lambda: rs(src="::", sll=False),
        dad,
        ns,
        na,
        lambda: na(dst="ff02::1", solicited=0),
    ],
)
def test_valid_nd_messages_pass(make: Callable[[], Any]) -> None:
    assert nd_invalid(decoded(make())) is None


@pytest.mark.parametrize(
    ("make", "why"),
    [
        (lambda: rs(hlim=64), "Hop Limit 64"),
        (lambda: rs(hlim=254), "Hop Limit 254"),
        (lambda: dad(hlim=64), "Hop Limit 64"),
        (lambda: ns(hlim=1), "Hop Limit 1"),
        (lambda: na(hlim=64), "Hop Limit 64"),
        (lambda: rs(code=1), "ICMP Code 1"),
        (lambda: rs(src="::"), "link-layer address option"),
        (lambda: dad(dst="ff02::1"), "not the solicited-node"),
        (lambda: dad(dst=str(LOA1)), "not the solicited-node"),
        (lambda: dad(sll=True), "link-layer address option"),
        (lambda: ns(tgt="ff02::1"), "multicast"),
        (lambda: na(tgt="ff02::1"), "multicast"),
        (lambda: na(dst="ff02::1", solicited=1), "Solicited flag"),
    ],
)
def test_invalid_nd_messages_are_named(make: Callable[[], Any], why: str) -> None:
    reason = nd_invalid(decoded(make()))
    assert reason is not None and why in reason


def test_other_frames_are_not_judged() -> None:
    # an MLD report travels with hop limit 1: not an ND message
    frame = nd.LinkFrame(
        src_mac=MAC1,
        dst_mac="33:33:00:00:00:16",
        src_ip=LL1,
        dst_ip=IPv6Address("ff02::16"),
        hop_limit=1,
        kind=nd.FrameKind.MLD_REPORT,
        payload=b"",
    )
    assert nd_invalid(frame) is None


class _Link:
    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.received = self.malformed = self.sent = 0

    def send(self, frame: bytes) -> None:
        self.frames.append(frame)


def _daemon_run(scenario: Callable[[MpaDaemon], None]) -> None:
    cfg = parse_config(
        {
            "mpa": {"address": str(MPA), "access": [BR]},
            "aaa": {"backend": "file", "file": "profiles.toml"},
        }
    )

    async def run() -> None:
        daemon = MpaDaemon(cfg)
        daemon.links[BR] = _Link()  # type: ignore[assignment]
        try:
            scenario(daemon)
        finally:
            if daemon._timer is not None:
                daemon._timer.cancel()
            for task in list(daemon._tasks):
                task.cancel()
            daemon._dp_thread.shutdown(wait=True)

    asyncio.run(run())


@pytest.mark.parametrize(
    "make",
    [
        lambda: rs(hlim=64),
        lambda: dad(hlim=64),
        lambda: na(hlim=64),
        lambda: dad(dst="ff02::1"),
        lambda: rs(code=2),
    ],
)
def test_daemon_discards_invalid_nd_silently(
    make: Callable[[], Any], caplog: pytest.LogCaptureFixture
) -> None:
    def scenario(daemon: MpaDaemon) -> None:
        with caplog.at_level(logging.DEBUG, logger="pmip6"):
            daemon.frame(BR, decoded(make()))
        # not acted on: no station, no AAA question, nothing sent
        assert daemon.engine.visitor(MAC1) is None and len(daemon.engine) == 0
        assert daemon._tasks == set()
        assert daemon.links[BR].frames == []  # type: ignore[attr-defined]
        assert daemon._cmd_status({})["nd_invalid"] == 1
        [record] = [r for r in caplog.records if "discarded" in r.getMessage()]
        assert record.levelno == logging.DEBUG

    _daemon_run(scenario)


def test_daemon_acts_on_a_valid_rs() -> None:
    def scenario(daemon: MpaDaemon) -> None:
        daemon.frame(BR, decoded(rs()))
        v = daemon.engine.visitor(MAC1)
        assert v is not None and v.state is State.AUTHENTICATING
        assert daemon._cmd_status({})["nd_invalid"] == 0

    _daemon_run(scenario)


# --- RFC 4861 6.2.6: the answer to an RS is delayed ------------------------------


def test_rs_answer_waits_the_drawn_delay() -> None:
    rng = FixedDelay(0.5)
    e = registered(rng)
    assert of(e.router_solicitation(MAC1, BR, LL1, 10.0), SendRa) == []
    assert rng.asked == [(0.0, MAX_RA_DELAY_TIME)]
    assert e.next_deadline() == pytest.approx(10.25)
    assert of(e.tick(10.2), SendRa) == []
    [ra] = of(e.tick(10.25), SendRa)
    assert (ra.mac, ra.dst, ra.prefix) == (MAC1, LL1, LNP1)
    assert e.counters["ra_delayed"] == 1


def test_rs_answer_delay_is_random_within_the_maximum() -> None:
    delays = set()
    for seed in range(20):
        e = registered(random.Random(seed))
        e.router_solicitation(MAC1, BR, LL1, 10.0)
        at = e.next_deadline()
        assert at is not None and 10.0 <= at <= 10.0 + MAX_RA_DELAY_TIME
        delays.add(at)
        assert len(of(e.tick(at), SendRa)) == 1
    assert len(delays) > 10  # not one fixed delay


def test_several_rs_within_the_delay_get_one_ra() -> None:
    e = registered(FixedDelay(1.0))
    effects: list[Effect] = []
    for t in (10.0, 10.1, 10.2, 10.4):
        effects += e.router_solicitation(MAC1, BR, LL1, t)
    assert of(effects, SendRa) == []
    assert e.next_deadline() == pytest.approx(10.5)  # the first RS's draw
    assert len(of(e.tick(10.5), SendRa)) == 1
    assert of(e.tick(20.0), SendRa) == []
    # a later RS is answered again
    e.router_solicitation(MAC1, BR, LL1, 30.0)
    assert len(of(e.tick(30.5), SendRa)) == 1


def test_ra_delay_max_is_configurable() -> None:
    rng = FixedDelay(1.0)
    e = registered(rng, ra_delay_max=0.2)
    e.router_solicitation(MAC1, BR, LL1, 10.0)
    assert rng.asked == [(0.0, 0.2)]
    assert e.next_deadline() == pytest.approx(10.2)
    # zero answers at once
    e0 = registered(FixedDelay(1.0), ra_delay_max=0.0)
    assert len(of(e0.router_solicitation(MAC1, BR, LL1, 10.0), SendRa)) == 1


def test_ra_after_registration_is_immediate_and_answers_a_pending_rs() -> None:
    # seed 6.2: the RA after a registration is not an answer to an RS, so it
    # goes out at once; an RS answer pending then needs no second RA
    e = MpaEngine(MpaSettings(address=MPA), 100, rng=FixedDelay(1.0))
    e.station_seen(MAC1, BR, 0.0)
    [pbu] = pbus(e.aaa_result(MAC1, profile(loa=None), 0.0))
    e.mh_received(LMAP, BindingAcknowledgement(141, BAFlags.P, pbu.sequence, 0), 0.1)
    v = e.visitor(MAC1)
    assert v is not None and v.state is State.AWAITING_LOA
    assert of(e.router_solicitation(MAC1, BR, LL1, 1.0), SendRa) == []
    [pbu] = pbus(e.dad_ns(MAC1, BR, LOA1, 1.1))
    effects = e.mh_received(LMAP, accept(pbu), 1.2)
    assert len(of(effects, SendRa)) == 1
    assert of(e.tick(1.5), SendRa) == [] and of(e.tick(5.0), SendRa) == []


def test_no_delayed_ra_after_the_registration_failed() -> None:
    e = registered(FixedDelay(1.0), lifetime=300, refresh_ratio=0.8)
    e.router_solicitation(MAC1, BR, LL1, 239.9)
    # the refresh goes out at 240 and is refused before the RA is due
    [refresh] = pbus(e.tick(240.0))
    e.mh_received(
        LMAP, BindingAcknowledgement(129, BAFlags.P, refresh.sequence, 0), 240.1
    )
    v = e.visitor(MAC1)
    assert v is not None and v.state is State.FAILED
    assert of(e.tick(240.4), SendRa) == []


def test_config_ra_delay_max() -> None:
    def cfg(**mpa: Any) -> Any:
        return parse_config(
            {
                "mpa": {"address": str(MPA), "access": [BR], **mpa},
                "aaa": {"backend": "file", "file": "profiles.toml"},
            }
        )

    assert cfg().settings().ra_delay_max == MAX_RA_DELAY_TIME == 0.5
    assert cfg(ra_delay_max=0.1).settings().ra_delay_max == 0.1
    assert cfg(ra_delay_max=0).settings().ra_delay_max == 0.0
    for bad in (0.6, -1, "x", True):
        with pytest.raises(ConfigError, match=r"\[mpa\] ra_delay_max"):
            cfg(ra_delay_max=bad)


# --- seed 7.3: the MPA attaches the MS's whole LNP --------------------------------


@pytest.mark.parametrize("lnp", [LNP1, IPv6Network("2001:db8:1:100::/56")])
def test_draft00_attaches_the_lnp_not_the_loa(lnp: IPv6Network) -> None:
    loa = lnp[0xAA01]
    e = MpaEngine(MpaSettings(address=MPA), 100)
    e.station_seen(MAC1, BR, 0.0)
    [pbu] = pbus(e.aaa_result(MAC1, profile(lnp=lnp, loa=loa), 0.0))
    assert find_option(pbu.options, AssignedHomeAddress) == AssignedHomeAddress(
        lnp.prefixlen, loa
    )
    effects = e.mh_received(LMAP, accept(pbu, loa), 0.1)
    assert of(effects, Attach) == [Attach(lnp, BR, LMAP)]
    v = e.visitor(MAC1)
    assert v is not None and v.loa == loa and v.attached == lnp
    # leaving removes the LNP (after leave_delay, seed 6.4)
    e.station_gone(MAC1, 0.5)
    assert of(e.tick(4.0), Detach) == [Detach(lnp)]


def test_rfc5213_attaches_the_lnp() -> None:
    e = MpaEngine(MpaSettings(address=MPA, profile=RFC5213), 100)
    e.station_seen(MAC1, BR, 0.0)
    [pbu] = pbus(e.aaa_result(MAC1, profile(loa=None), 0.0))
    hnp = find_option(pbu.options, HomeNetworkPrefix)
    reply = BindingAcknowledgement(
        0, BAFlags.P, pbu.sequence, pbu.lifetime, (hnp,) if hnp else ()
    )
    assert of(e.mh_received(LMAP, reply, 0.1), Attach) == [Attach(LNP1, BR, LMAP)]
