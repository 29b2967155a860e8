"""Probing a returning MS for the LoA it kept (no DAD, no RS), virtual clock.

A host away past its de-registration comes back with its SLAAC address: the
BCC gets 141 and no DAD follows. The MPA asks the MS, by unicast NS, about the
profile's interface identifier and the modified EUI-64 of its MAC; an NA names
the LoA, which is registered with the AHA option as after a DAD NS.
"""

from __future__ import annotations

import asyncio
import logging
import time
from ipaddress import IPv6Address, IPv6Network
from typing import Any

import pytest
from scapy.layers.inet6 import (
    ICMPv6MLDMultAddrRec,
    ICMPv6MLReport,
    ICMPv6MLReport2,
    ICMPv6ND_NA,
    ICMPv6NDOptDstLLAddr,
    IPv6,
)
from scapy.layers.l2 import Ether

from mpa_support import BR, LL1, LMAP, LNP1, MAC1, MAC2, MPA, of, pbus
from pmip6.aaa.base import MsProfile
from pmip6.core.mpa import (
    Attach,
    Effect,
    LogEvent,
    MpaEngine,
    MpaSettings,
    SendNs,
    SendRa,
    State,
)
from pmip6.runtime.mpad import MpaDaemon, parse_config
from pmip6.wire import nd
from pmip6.wire.errors import Malformed
from pmip6.wire.mh import (
    AssignedHomeAddress,
    BAFlags,
    BindingAcknowledgement,
    BindingCacheConfirmation,
    BindingUpdate,
    find_option,
)

EUI1 = IPv6Address("2001:db8:1:1:0:ff:fe00:aa01")  # LNP1 + EUI-64 of MAC1
IID = 0x1234  # a profile's PMIP6-Home-Interface-ID
HOME1 = IPv6Address("2001:db8:1:1::1234")


def profile(
    nai: str = "ms1@example.net",
    interface_id: int | None = None,
    lnp: IPv6Network = LNP1,
    loa: IPv6Address | None = None,
) -> MsProfile:
    return MsProfile(
        nai=nai, lmap_address=LMAP, lnp=lnp, loa=loa, interface_id=interface_id
    )


def engine(**kw: Any) -> MpaEngine:
    kw.setdefault("absent_timeout", 100.0)  # presence probing out of the way
    return MpaEngine(MpaSettings(address=MPA, **kw), initial_sequence=100)


def probes(effects: list[Effect]) -> list[IPv6Address]:
    """Targets of NSs to MAC1 other than its link-local (presence probes)."""
    return [
        e.target
        for e in of(effects, SendNs)
        if e.mac == MAC1 and not e.target.is_link_local
    ]


def answer(pbu: BindingUpdate, status: int = 0) -> BindingAcknowledgement:
    aha = find_option(pbu.options, AssignedHomeAddress)
    return BindingAcknowledgement(
        status=status,
        flags=BAFlags.P,
        sequence=pbu.sequence,
        lifetime=pbu.lifetime if status < 128 else 0,
        options=(aha,) if aha is not None and status < 128 else (),
    )


def returning(
    e: MpaEngine, prof: MsProfile | None = None, now: float = 0.0, mld: bool = False
) -> list[Effect]:
    """The host is back (MLD report only), AAA answers, the BCC gets 141."""
    e.packet_from(MAC1, BR, LL1, now)
    (pbu,) = pbus(e.aaa_result(MAC1, prof or profile(), now))
    assert find_option(pbu.options, BindingCacheConfirmation) is not None
    return e.mh_received(LMAP, answer(pbu, 141), now + 0.1)


def run_until(e: MpaEngine, end: float) -> list[Effect]:
    """Every deadline up to ``end``, as the daemon's timer would run them."""
    effects: list[Effect] = []
    while (deadline := e.next_deadline()) is not None and deadline <= end:
        effects += e.tick(deadline)
    return effects


# --- the rule -----------------------------------------------------------------------


def test_after_141_ra_is_sent_and_the_eui64_is_probed() -> None:
    e = engine()
    effects = returning(e)
    assert e.visitor(MAC1).state is State.AWAITING_LOA  # type: ignore[union-attr]
    assert len(of(effects, SendRa)) == 1  # still told its prefix and router
    assert of(effects, SendNs) == [SendNs(BR, MAC1, EUI1)]
    assert pbus(effects) == []


def test_interface_id_candidate_comes_first() -> None:
    e = engine()
    effects = returning(e, profile(interface_id=IID))
    assert probes(effects) == [HOME1, EUI1]


def test_na_for_a_candidate_registers_it_with_aha() -> None:
    e = engine()
    returning(e)
    effects = e.neighbor_advertisement(MAC1, BR, EUI1, EUI1, 0.5)
    (pbu,) = pbus(effects)
    assert find_option(pbu.options, AssignedHomeAddress) == (
        AssignedHomeAddress(64, EUI1)
    )
    v = e.visitor(MAC1)
    assert v is not None and v.state is State.REGISTERING and v.loa == EUI1
    assert v.loa_probe_at is None  # no more rounds
    effects = e.mh_received(LMAP, answer(pbu), 0.6)
    assert of(effects, Attach) == [Attach(LNP1, BR, LMAP)]
    assert v.state is State.REGISTERED and not v.loa_probed
    assert probes(run_until(e, 10.0)) == []


def test_na_for_the_interface_id_candidate_registers_it() -> None:
    e = engine()
    returning(e, profile(interface_id=IID))
    (pbu,) = pbus(e.neighbor_advertisement(MAC1, BR, HOME1, HOME1, 0.5))
    aha = find_option(pbu.options, AssignedHomeAddress)
    assert aha is not None and aha.home_address == HOME1


def test_na_from_another_mac_is_ignored() -> None:
    e = engine()
    returning(e)
    # another station answering for MS1's candidate names nothing about MS1
    assert pbus(e.neighbor_advertisement(MAC2, BR, EUI1, EUI1, 0.5)) == []
    v = e.visitor(MAC1)
    assert v is not None and v.state is State.AWAITING_LOA and v.loa is None
    assert e.visitor(MAC2).state is State.AUTHENTICATING  # type: ignore[union-attr]


def test_na_for_another_target_is_ignored() -> None:
    e = engine()
    returning(e)
    other = IPv6Address("2001:db8:1:1::99")  # in the LNP but never asked about
    assert pbus(e.neighbor_advertisement(MAC1, BR, other, other, 0.5)) == []
    assert pbus(e.neighbor_advertisement(MAC1, BR, LL1, LL1, 0.6)) == []
    v = e.visitor(MAC1)
    assert v is not None and v.state is State.AWAITING_LOA and v.loa is None


def test_probes_are_bounded_then_dad_still_works() -> None:
    e = engine(loa_probe_interval=0.5, loa_probe_rounds=3)
    effects = returning(e)
    effects += run_until(e, 30.0)
    assert probes(effects) == [EUI1] * 3
    give_up = [x for x in of(effects, LogEvent) if "no answer to 3 rounds" in x.message]
    assert [x.level for x in give_up] == [logging.DEBUG]
    assert all(x.level < logging.WARNING for x in of(effects, LogEvent))
    v = e.visitor(MAC1)
    assert v is not None and v.state is State.AWAITING_LOA
    # a late NA after the give-up is not taken; a DAD NS still is (seed 6.3)
    assert pbus(e.neighbor_advertisement(MAC1, BR, EUI1, EUI1, 31.0)) == []
    (pbu,) = pbus(e.dad_ns(MAC1, BR, EUI1, 32.0))
    assert find_option(pbu.options, AssignedHomeAddress) == (
        AssignedHomeAddress(64, EUI1)
    )


def test_na_between_rounds_is_taken() -> None:
    e = engine(loa_probe_interval=1.0, loa_probe_rounds=3)
    returning(e)
    assert probes(e.tick(1.1)) == [EUI1]  # second round
    assert len(pbus(e.neighbor_advertisement(MAC1, BR, EUI1, EUI1, 1.5))) == 1


def test_mld_report_puts_the_confirmed_candidate_first() -> None:
    e = engine()
    e.mld_report(MAC1, BR, LL1, [nd.solicited_node(EUI1)], [], 0.0)
    (pbu,) = pbus(e.aaa_result(MAC1, profile(interface_id=IID), 0.0))
    effects = e.mh_received(LMAP, answer(pbu, 141), 0.1)
    assert probes(effects) == [EUI1, HOME1]
    # the group left: back to the profile's order in the next round
    e.mld_report(MAC1, BR, LL1, [], [nd.solicited_node(EUI1)], 0.5)
    assert probes(e.tick(1.1)) == [HOME1, EUI1]


def test_station_not_present_is_not_probed() -> None:
    e = engine()
    e.packet_from(MAC1, BR, LL1, 0.0)
    (pbu,) = pbus(e.aaa_result(MAC1, profile(), 0.0))
    e.station_gone(MAC1, 0.05)  # the bridge forgot it while the BCC was out
    effects = e.mh_received(LMAP, answer(pbu, 141), 0.1)
    assert of(effects, SendNs) == []


def test_another_visitors_loa_is_not_a_candidate() -> None:
    e = engine()
    # MS2 holds HOME1; MS1's profile names the same interface identifier
    e.station_seen(MAC2, BR, 0.0)
    (pbu2,) = pbus(e.aaa_result(MAC2, profile("ms2@example.net", loa=HOME1), 0.0))
    e.mh_received(LMAP, answer(pbu2), 0.05)
    effects = returning(e, profile(interface_id=IID))
    assert probes(effects) == [EUI1]


def test_candidate_outside_the_lnp_is_not_probed() -> None:
    e = engine()
    # a /96 LNP: the EUI-64 and this interface identifier fall outside it
    lnp = IPv6Network("2001:db8:1:1:0:1::/96")
    effects = returning(e, profile(interface_id=1 << 60, lnp=lnp))
    assert of(effects, SendNs) == []


def test_probed_loa_refused_by_the_lmap_is_not_probed_again() -> None:
    e = engine(retry_after=30.0)
    returning(e, profile(interface_id=IID))
    (pbu,) = pbus(e.neighbor_advertisement(MAC1, BR, HOME1, HOME1, 0.5))
    # 142: HOME1 is bound to another NAI at the LMAP
    effects = e.mh_received(LMAP, answer(pbu, 142), 0.6)
    warnings = [x for x in of(effects, LogEvent) if x.level == logging.WARNING]
    assert len(warnings) == 1 and "not probed again" in warnings[0].message
    v = e.visitor(MAC1)
    assert v is not None and v.state is State.FAILED and v.loa is None

    # the retry asks with the BCC again, and the probes skip HOME1 for good
    sent: list[BindingUpdate] = []
    ns: list[IPv6Address] = []
    while (now := e.next_deadline()) is not None and now < 200.0:
        effects = e.tick(now)
        ns += probes(effects)
        for p in pbus(effects):  # the LMAP answers at once
            sent.append(p)
            ns += probes(e.mh_received(LMAP, answer(p, 141), now))
    # one BCC, answered 141: it waits for a DAD, no refuse/retry cycle
    assert len(sent) == 1
    assert find_option(sent[0].options, BindingCacheConfirmation) is not None
    assert find_option(sent[0].options, AssignedHomeAddress) is None
    assert HOME1 not in ns and ns == [EUI1] * 3


def test_dad_during_probing_stops_the_probes() -> None:
    e = engine()
    returning(e)
    assert len(pbus(e.dad_ns(MAC1, BR, EUI1, 0.3))) == 1
    v = e.visitor(MAC1)
    assert v is not None and v.loa_probe_at is None and not v.loa_probed


# --- the codec helpers -------------------------------------------------------------


def test_modified_eui64_matches_rfc4291_appendix_a() -> None:
    # RFC 4291 appendix A: 34-56-78-9A-BC-DE -> 3656:78FF:FE9A:BCDE
    assert nd.modified_eui64("34:56:78:9a:bc:de") == 0x365678FFFE9ABCDE
    assert IPv6Address(int(LNP1.network_address) | nd.modified_eui64(MAC1)) == EUI1


def test_mldv2_report_groups_decoded_as_scapy_encodes_them() -> None:
    joined = nd.solicited_node(EUI1)
    left = IPv6Address("ff02::1:ff00:1")
    sourced = IPv6Address("ff3e::8000:1")
    icmp = bytes(
        ICMPv6MLReport2(
            records=[
                ICMPv6MLDMultAddrRec(rtype=4, dst=str(joined)),  # TO_EX {}: join
                ICMPv6MLDMultAddrRec(rtype=3, dst=str(left)),  # TO_IN {}: leave
                ICMPv6MLDMultAddrRec(rtype=1, dst=str(sourced), sources=["2001::1"]),
                ICMPv6MLDMultAddrRec(rtype=6, dst="ff3e::8000:2", sources=["::1"]),
            ]
        )
    )
    report = nd.decode_mld_report(icmp)
    assert report.joined == (joined, sourced)
    assert report.left == (left,)


def test_mldv1_report_and_truncations() -> None:
    icmp = bytes(ICMPv6MLReport(mladdr="ff02::1:ff00:aa01"))
    assert nd.decode_mld_report(icmp).joined == (IPv6Address("ff02::1:ff00:aa01"),)
    with pytest.raises(Malformed):
        nd.decode_mld_report(icmp[:20])
    v2 = bytes(ICMPv6MLReport2(records=[ICMPv6MLDMultAddrRec(dst="ff02::2")]))
    for cut in range(len(v2)):
        with pytest.raises(Malformed):
            nd.decode_mld_report(v2[:cut])


# --- the daemon glue -----------------------------------------------------------------


class _Link:
    def __init__(self) -> None:
        self.frames: list[bytes] = []
        self.received = self.malformed = self.sent = 0

    def send(self, frame: bytes) -> None:
        self.frames.append(frame)


def test_daemon_probes_from_the_virtual_router_and_feeds_nas_back() -> None:
    cfg = parse_config(
        {
            "mpa": {"address": str(MPA), "access": [BR], "absent_timeout": 100.0},
            "aaa": {"backend": "file", "file": "profiles.toml"},
        }
    )

    async def scenario() -> MpaDaemon:
        daemon = MpaDaemon(cfg)
        link = _Link()
        daemon.links[BR] = link  # type: ignore[assignment]
        try:
            # an MLDv2 report (as the returning host sends) starts it all
            mld = Ether(src=MAC1, dst="33:33:00:00:00:16") / IPv6(
                src=str(LL1), dst="ff02::16", hlim=1
            )
            mld /= ICMPv6MLReport2(
                records=[
                    ICMPv6MLDMultAddrRec(rtype=4, dst=str(nd.solicited_node(EUI1)))
                ]
            )
            daemon.frame(BR, nd.decode_frame(bytes(mld)))
            v = daemon.engine.visitor(MAC1)
            assert v is not None and nd.solicited_node(EUI1) in v.mld_groups
            for task in list(daemon._tasks):
                task.cancel()  # no AAA here: answer it by hand
            now = time.monotonic()
            daemon._apply(daemon.engine.aaa_result(MAC1, profile(), now))
            seq = daemon.engine.visitor(MAC1).pending.sequences[0]  # type: ignore[union-attr]
            daemon._apply(
                daemon.engine.mh_received(
                    LMAP, BindingAcknowledgement(141, BAFlags.P, seq, 0), now
                )
            )
            ns = [
                f
                for f in map(nd.decode_frame, link.frames)
                if f.kind is nd.FrameKind.NEIGHBOR_SOLICITATION
            ]
            (probe,) = [f for f in ns if f.target == EUI1]
            assert probe.src_mac == cfg.virtual_mac
            assert probe.src_ip == cfg.virtual_link_local
            assert probe.dst_mac == MAC1 and probe.dst_ip == EUI1
            assert probe.source_lladdr == cfg.virtual_mac

            na = (
                Ether(src=MAC1, dst=cfg.virtual_mac)
                / IPv6(src=str(EUI1), dst=str(cfg.virtual_link_local), hlim=255)
                / ICMPv6ND_NA(tgt=str(EUI1), S=1, O=1, R=0)
                / ICMPv6NDOptDstLLAddr(lladdr=MAC1)
            )
            daemon.frame(BR, nd.decode_frame(bytes(na)))
            v = daemon.engine.visitor(MAC1)
            assert v is not None and v.state is State.REGISTERING and v.loa == EUI1
            return daemon
        finally:
            if daemon._timer is not None:
                daemon._timer.cancel()
            for task in list(daemon._tasks):
                task.cancel()
            daemon._dp_thread.shutdown(wait=True)

    asyncio.run(scenario())
