"""The MPA engine against a virtual clock: every rule of seed 6.1-6.4 and 7."""

from __future__ import annotations

import logging
from ipaddress import IPv6Address, IPv6Network
from typing import Any

import pytest

from mpa_support import BR, LL1, LMAP, LNP1, LOA1, MAC1, MAC2, MPA, of, pbus
from pmip6.aaa.base import AddressMode, MsProfile
from pmip6.core.mpa import (
    ALL_NODES,
    TRANSITIONS,
    AskAaa,
    Attach,
    Detach,
    LogEvent,
    MpaEngine,
    MpaSettings,
    SendMh,
    SendNa,
    SendNs,
    SendRa,
    State,
)
from pmip6.wire.mh import (
    AccessTechnologyType,
    AssignedHomeAddress,
    BAFlags,
    BindingAcknowledgement,
    BindingCacheConfirmation,
    BindingRevocationAcknowledgement,
    BindingRevocationIndication,
    BindingUpdate,
    BRFlags,
    BUFlags,
    HomeNetworkPrefix,
    MobileNodeIdentifier,
    find_option,
)
from pmip6.wire.profile import RFC5213

LOA2 = IPv6Address("2001:db8:1:2::2")


def profile(
    nai: str = "ms1@example.net",
    lnp: IPv6Network = LNP1,
    loa: IPv6Address | None = None,
    mode: AddressMode = AddressMode.SLAAC,
) -> MsProfile:
    return MsProfile(nai=nai, lmap_address=LMAP, lnp=lnp, loa=loa, address_mode=mode)


def engine(**kw: Any) -> MpaEngine:
    return MpaEngine(MpaSettings(address=MPA, **kw), initial_sequence=100)


def pba(
    pbu: BindingUpdate,
    status: int = 0,
    loa: IPv6Address | None = None,
    lifetime: int | None = None,
    lnp: IPv6Network = LNP1,
) -> BindingAcknowledgement:
    options = (AssignedHomeAddress(lnp.prefixlen, loa),) if loa else ()
    return BindingAcknowledgement(
        status=status,
        flags=BAFlags.P,
        sequence=pbu.sequence,
        lifetime=pbu.lifetime if lifetime is None else lifetime,
        options=options,
    )


def authenticated(
    e: MpaEngine, prof: MsProfile | None = None, mac: str = MAC1, now: float = 0.0
) -> BindingUpdate:
    """Station seen and AAA answered: the first PBU."""
    assert of(e.station_seen(mac, BR, now), AskAaa) == [AskAaa(mac)]
    out = pbus(e.aaa_result(mac, prof or profile(), now))
    assert len(out) == 1
    return out[0]


def registered(e: MpaEngine, now: float = 0.0) -> BindingUpdate:
    pbu = authenticated(e, profile(loa=LOA1), now=now)
    e.mh_received(LMAP, pba(pbu, loa=LOA1), now)
    return pbu


# --- states ------------------------------------------------------------------


def test_transitions_are_a_table_and_others_are_refused() -> None:
    assert (State.AUTHENTICATING, State.REGISTERING) in TRANSITIONS
    e = engine()
    e.station_seen(MAC1, BR, 0)
    v = e.visitor(MAC1)
    assert v is not None
    with pytest.raises(AssertionError):
        e._move(v, State.REGISTERED, 0)


# --- attach (seed 6.1) -----------------------------------------------------------


def test_unknown_station_pbu_carries_nai_and_bcc() -> None:
    e = engine(lifetime=300)
    pbu = authenticated(e)
    assert pbu.flags & BUFlags.P and pbu.flags & BUFlags.A
    assert pbu.lifetime == 75  # 300 s in units of 4 s
    ident = find_option(pbu.options, MobileNodeIdentifier)
    assert ident is not None and ident.nai == "ms1@example.net"
    assert find_option(pbu.options, BindingCacheConfirmation) is not None
    assert find_option(pbu.options, AssignedHomeAddress) is None
    assert e.visitor(MAC1).state is State.REGISTERING  # type: ignore[union-attr]


def test_mld_report_alone_starts_authentication() -> None:
    # a roaming Linux host sends neither RS nor DAD, only MLD reports
    e = engine()
    effects = e.packet_from(MAC1, BR, LL1, 0)
    assert of(effects, AskAaa) == [AskAaa(MAC1)]
    # more frames while AAA works do not ask again
    assert of(e.packet_from(MAC1, BR, LL1, 0.1), AskAaa) == []


def test_fixed_loa_from_profile_gives_aha() -> None:
    e = engine()
    pbu = authenticated(e, profile(loa=LOA1))
    aha = find_option(pbu.options, AssignedHomeAddress)
    assert aha == AssignedHomeAddress(64, LOA1)
    assert find_option(pbu.options, BindingCacheConfirmation) is None


def test_dad_before_aaa_answer_gives_aha() -> None:
    e = engine()
    e.station_seen(MAC1, BR, 0)
    e.dad_ns(MAC1, BR, LOA1, 0.1)
    pbu = pbus(e.aaa_result(MAC1, profile(), 0.2))[0]
    assert find_option(pbu.options, AssignedHomeAddress) == AssignedHomeAddress(
        64, LOA1
    )


def test_aaa_refusal_no_pbu_no_ra_one_warning() -> None:
    e = engine()
    e.router_solicitation(MAC1, BR, LL1, 0)
    effects = e.aaa_result(MAC1, None, 0.1)
    for t in (4, 8, 12):
        effects += e.router_solicitation(MAC1, BR, LL1, t)
    assert pbus(effects) == [] and of(effects, SendRa) == []
    assert of(effects, Attach) == [] and of(effects, AskAaa) == []
    warnings = [x for x in of(effects, LogEvent) if x.level == logging.WARNING]
    assert len(warnings) == 1
    assert e.visitor(MAC1).state is State.REFUSED  # type: ignore[union-attr]


def test_aaa_error_is_retried() -> None:
    e = engine(aaa_retry=2.0)
    e.station_seen(MAC1, BR, 0)
    e.aaa_error(MAC1, "timeout", 0.5)
    assert e.next_deadline() == 2.5
    assert of(e.tick(2.5), AskAaa) == [AskAaa(MAC1)]


# --- PBA success (seed 6.1 step 9, 6.2, 7.3) ----------------------------------


def test_pba_success_attaches_and_sends_ra() -> None:
    e = engine(router_lifetime=1800)
    e.router_solicitation(MAC1, BR, LL1, 0)
    pbu = pbus(e.aaa_result(MAC1, profile(), 0.1))[0]
    # no RA while the registration is outstanding
    assert of(e.router_solicitation(MAC1, BR, LL1, 0.2), SendRa) == []
    effects = e.mh_received(LMAP, pba(pbu, loa=LOA1), 0.3)
    assert of(effects, Attach) == [Attach(LNP1, BR, LMAP)]
    ras = of(effects, SendRa)
    assert len(ras) == 1  # the waiting RS and the unsolicited RA are one
    ra = ras[0]
    assert (ra.mac, ra.dst, ra.prefix) == (MAC1, LL1, LNP1)
    assert ra.autonomous and not ra.managed and ra.router_lifetime == 1800
    v = e.visitor(MAC1)
    assert v is not None and v.state is State.REGISTERED and v.loa == LOA1
    # RS after registration: answered within MAX_RA_DELAY_TIME, same content
    assert of(e.router_solicitation(MAC1, BR, LL1, 5), SendRa) == []
    at = e.next_deadline()
    assert at is not None and 5 <= at <= 5.5
    assert of(e.tick(at), SendRa) == [ra]


def test_roam_without_rs_gets_unsolicited_ra_to_all_nodes() -> None:
    e = engine()
    e.station_seen(MAC1, BR, 0)
    pbu = pbus(e.aaa_result(MAC1, profile(), 0.1))[0]
    ras = of(e.mh_received(LMAP, pba(pbu, loa=LOA1), 0.2), SendRa)
    assert len(ras) == 1 and ras[0].dst == ALL_NODES and ras[0].mac == MAC1


def test_dhcpv6_mode_sets_managed() -> None:
    e = engine()
    pbu = authenticated(e, profile(mode=AddressMode.DHCPV6, loa=LOA1))
    ra = of(e.mh_received(LMAP, pba(pbu, loa=LOA1), 0.1), SendRa)[0]
    assert ra.managed and ra.other and not ra.autonomous


# --- first boot: 141, RA, DAD, AHA (seed 6.1, fig 8) -------------------------


def test_bce_missing_sends_ra_then_dad_registers_loa() -> None:
    e = engine()
    pbu = authenticated(e)
    effects = e.mh_received(LMAP, pba(pbu, status=141, lifetime=0), 0.1)
    assert of(effects, Attach) == [] and len(of(effects, SendRa)) == 1
    assert e.visitor(MAC1).state is State.AWAITING_LOA  # type: ignore[union-attr]
    # RSs are answered while the MS configures itself
    e.router_solicitation(MAC1, BR, LL1, 1)
    assert len(of(e.tick(1.5), SendRa)) == 1
    # a DAD for a link-local address says nothing about the LoA
    assert pbus(e.dad_ns(MAC1, BR, LL1, 1.5)) == []
    second = pbus(e.dad_ns(MAC1, BR, LOA1, 2))
    assert len(second) == 1
    assert find_option(second[0].options, AssignedHomeAddress) == (
        AssignedHomeAddress(64, LOA1)
    )
    effects = e.mh_received(LMAP, pba(second[0], loa=LOA1), 2.1)
    assert of(effects, Attach) == [Attach(LNP1, BR, LMAP)]


def test_dad_outside_lnp_is_ignored() -> None:
    e = engine()
    pbu = authenticated(e)
    e.mh_received(LMAP, pba(pbu, status=141, lifetime=0), 0.1)
    assert pbus(e.dad_ns(MAC1, BR, IPv6Address("2001:db8:9::1"), 1)) == []


def test_roam_bcc_answered_with_aha_learns_loa() -> None:
    e = engine()
    pbu = authenticated(e)
    effects = e.mh_received(LMAP, pba(pbu, loa=LOA1), 0.1)
    assert of(effects, Attach) == [Attach(LNP1, BR, LMAP)]
    assert e.visitor(MAC1).loa == LOA1  # type: ignore[union-attr]


# --- address rules (seed 6.3) ---------------------------------------------------


def test_dad_for_other_visitors_loa_is_defended() -> None:
    e = engine()
    registered(e)
    e.station_seen(MAC2, BR, 1)
    pbu2 = pbus(e.aaa_result(MAC2, profile("ms2@example.net", LNP1), 1))[0]
    e.mh_received(LMAP, pba(pbu2, status=141, lifetime=0), 1.1)
    effects = e.dad_ns(MAC2, BR, LOA1, 2)
    assert of(effects, SendNa) == [SendNa(BR, MAC2, ALL_NODES, LOA1)]
    assert pbus(effects) == []
    assert e.visitor(MAC2).loa is None  # type: ignore[union-attr]


def test_packet_source_registers_only_for_static_profiles() -> None:
    slaac = engine()
    pbu = authenticated(slaac)
    slaac.mh_received(LMAP, pba(pbu, status=141, lifetime=0), 0.1)
    assert pbus(slaac.packet_from(MAC1, BR, LOA1, 1)) == []

    static = engine()
    pbu = authenticated(static, profile(mode=AddressMode.STATIC))
    static.mh_received(LMAP, pba(pbu, status=141, lifetime=0), 0.1)
    out = pbus(static.packet_from(MAC1, BR, LOA1, 1))
    assert len(out) == 1
    assert find_option(out[0].options, AssignedHomeAddress) == (
        AssignedHomeAddress(64, LOA1)
    )


def test_static_source_seen_before_aaa_is_used() -> None:
    e = engine()
    e.packet_from(MAC1, BR, LOA1, 0)
    pbu = pbus(e.aaa_result(MAC1, profile(mode=AddressMode.STATIC), 0.1))[0]
    assert find_option(pbu.options, AssignedHomeAddress) is not None


# --- loss, duplication, reordering (RFC 6275 11.8) ---------------------------


def test_retransmission_backoff_and_give_up() -> None:
    e = engine(pbu_initial_timeout=1.0, retry_after=30.0)
    first = authenticated(e)
    sent = [(0.0, first.sequence)]
    now = 0.0
    while True:
        deadline = e.next_deadline()
        assert deadline is not None
        now = deadline
        effects = e.tick(now)
        out = pbus(effects)
        if not out:
            break
        sent.append((now, out[0].sequence))
    times = [t for t, _ in sent]
    assert times == [0, 1, 3, 7, 15, 31]  # timeouts 1, 2, 4, 8, 16, 32
    assert len({s for _, s in sent}) == len(sent)  # a new sequence each time
    assert now == 63
    warnings = [x for x in of(effects, LogEvent) if x.level == logging.WARNING]
    assert len(warnings) == 1 and "did not answer" in warnings[0].message
    assert e.visitor(MAC1).state is State.FAILED  # type: ignore[union-attr]
    # then it tries again
    assert len(pbus(e.tick(63 + 30))) == 1


def test_late_pba_for_earlier_try_is_accepted() -> None:
    e = engine()
    first = authenticated(e, profile(loa=LOA1))
    pbus(e.tick(1.0))  # retransmission, new sequence
    effects = e.mh_received(LMAP, pba(first, loa=LOA1), 1.5)
    assert len(of(effects, Attach)) == 1


def test_duplicate_and_reordered_pbas_are_ignored() -> None:
    e = engine()
    first = authenticated(e, profile(loa=LOA1))
    second = pbus(e.tick(1.0))[0]
    effects = e.mh_received(LMAP, pba(second, loa=LOA1), 1.2)
    assert len(of(effects, Attach)) == 1 and len(of(effects, SendRa)) == 1
    # the PBA of the first try arrives after the second: nothing happens
    assert e.mh_received(LMAP, pba(first, loa=LOA1), 1.3) == []
    # and the second one duplicated
    assert e.mh_received(LMAP, pba(second, loa=LOA1), 1.4) == []
    assert e.counters["pba_ignored"] == 2


def test_stale_pba_after_refresh_is_ignored() -> None:
    e = engine(lifetime=100, absent_timeout=1e6)
    first = registered(e)
    refresh = pbus(e.tick(80))[0]
    # a copy of the initial PBA turns up: it must not complete the refresh
    assert e.mh_received(LMAP, pba(first, loa=LOA1), 81) == []
    v = e.visitor(MAC1)
    assert v is not None and v.pending is not None
    e.mh_received(LMAP, pba(refresh, loa=LOA1), 82)
    assert v.pending is None and v.expires == 182


def test_pba_from_another_address_is_ignored() -> None:
    e = engine()
    pbu = authenticated(e, profile(loa=LOA1))
    assert e.mh_received(IPv6Address("fd00::99"), pba(pbu, loa=LOA1), 0.1) == []


def test_sequence_out_of_window_resends_after_lmaps_number() -> None:
    e = engine()
    authenticated(e, profile(loa=LOA1))
    reply = BindingAcknowledgement(
        status=135,
        flags=BAFlags.P,
        sequence=5000,
        lifetime=0,
        options=(MobileNodeIdentifier.from_nai("ms1@example.net"),),
    )
    out = pbus(e.mh_received(LMAP, reply, 0.1))
    assert [p.sequence for p in out] == [5001]


def test_rejection_fails_once_and_retries() -> None:
    e = engine(retry_after=30.0)
    pbu = authenticated(e, profile(loa=LOA1))
    effects = e.mh_received(LMAP, pba(pbu, status=129, lifetime=0), 0.1)
    assert of(effects, Attach) == [] and of(effects, SendRa) == []
    assert e.visitor(MAC1).state is State.FAILED  # type: ignore[union-attr]
    assert of(e.router_solicitation(MAC1, BR, LL1, 1), SendRa) == []
    assert len(pbus(e.tick(30.1))) == 1


# --- refresh ----------------------------------------------------------------------


def test_refresh_at_80_percent_of_granted_lifetime() -> None:
    e = engine(lifetime=300, absent_timeout=1e6)
    pbu = authenticated(e, profile(loa=LOA1))
    e.mh_received(LMAP, pba(pbu, loa=LOA1, lifetime=25), 0)  # LMAP grants 100 s
    assert pbus(e.tick(79.9)) == []
    out = pbus(e.tick(80))
    assert len(out) == 1 and out[0].lifetime == 75
    assert find_option(out[0].options, AssignedHomeAddress) is not None
    effects = e.mh_received(LMAP, pba(out[0], loa=LOA1), 80.1)
    # a refresh re-attaches nothing and sends no RA
    assert of(effects, Attach) == [] and of(effects, SendRa) == []


# --- revocation (seed 6.4, RFC 5846) -------------------------------------------


def test_bri_drops_visitor_and_is_acknowledged() -> None:
    e = engine()
    registered(e)
    bri = BindingRevocationIndication(
        sequence=42,
        revocation_trigger=2,
        flags=BRFlags.P,
        options=(MobileNodeIdentifier.from_nai("ms1@example.net"),),
    )
    effects = e.mh_received(LMAP, bri, 5)
    assert of(effects, Detach) == [Detach(LNP1)]
    bras = [e.message for e in of(effects, SendMh)]
    assert len(bras) == 1 and of(effects, SendMh)[0].dst == LMAP
    bra = bras[0]
    assert isinstance(bra, BindingRevocationAcknowledgement)
    assert (bra.sequence, bra.status, bra.flags) == (42, 0, BRFlags.P)
    assert e.visitor(MAC1) is None
    # the bridge forgetting the MAC later sends no de-registration
    assert e.station_gone(MAC1, 6) == []


def test_bri_for_unknown_nai_answers_128() -> None:
    e = engine()
    bri = BindingRevocationIndication(
        sequence=7,
        revocation_trigger=2,
        flags=BRFlags.P,
        options=(MobileNodeIdentifier.from_nai("nobody@example.net"),),
    )
    bra = of(e.mh_received(LMAP, bri, 0), SendMh)[0].message
    assert isinstance(bra, BindingRevocationAcknowledgement)
    assert bra.status == 128 and bra.sequence == 7


# --- leaving (seed 6.4) -------------------------------------------------------------


def test_station_gone_deregisters_after_leave_delay() -> None:
    e = engine(leave_delay=3.0)
    registered(e)
    assert e.station_gone(MAC1, 10) == []
    assert e.next_deadline() == 13
    effects = e.tick(13)
    assert of(effects, Detach) == [Detach(LNP1)]
    out = pbus(effects)
    assert len(out) == 1 and out[0].lifetime == 0
    assert find_option(out[0].options, AssignedHomeAddress) is not None
    e.mh_received(LMAP, pba(out[0], lifetime=0), 13.1)
    assert e.visitor(MAC1) is None


def test_roam_revocation_during_leave_delay_sends_no_deregistration() -> None:
    # the new MPA's PBU must not race a de-registration from this one
    e = engine(leave_delay=3.0)
    registered(e)
    e.station_gone(MAC1, 10)
    bri = BindingRevocationIndication(
        sequence=1,
        revocation_trigger=2,
        flags=BRFlags.P,
        options=(MobileNodeIdentifier.from_nai("ms1@example.net"),),
    )
    effects = e.mh_received(LMAP, bri, 10.05)
    assert of(effects, Detach) == [Detach(LNP1)]
    assert pbus(effects + e.tick(20)) == []
    assert e.visitor(MAC1) is None


def test_station_back_within_leave_delay_stays() -> None:
    e = engine(leave_delay=3.0)
    registered(e)
    e.station_gone(MAC1, 10)
    e.packet_from(MAC1, BR, LL1, 11)
    assert pbus(e.tick(13)) == []
    assert e.visitor(MAC1).state is State.REGISTERED  # type: ignore[union-attr]


def test_deregistration_gives_up_quietly() -> None:
    e = engine(leave_delay=0.0)
    registered(e)
    e.station_gone(MAC1, 10)
    now = 10.0
    for _ in range(10):
        deadline = e.next_deadline()
        if deadline is None:
            break
        now = deadline
        e.tick(now)
    assert e.visitor(MAC1) is None and now == 10 + 63


def test_station_returning_during_deregistration_attaches_again() -> None:
    e = engine(leave_delay=0.0)
    registered(e)
    e.station_gone(MAC1, 10)
    e.tick(10)
    assert e.visitor(MAC1).state is State.DEREGISTERING  # type: ignore[union-attr]
    assert of(e.packet_from(MAC1, BR, LL1, 10.2), AskAaa) == [AskAaa(MAC1)]


def test_unanswered_probes_mean_the_station_left() -> None:
    e = engine(absent_timeout=9.0)
    registered(e)
    # an MS that answers probes stays
    effects = e.tick(3.0)
    assert of(effects, SendNs) == [SendNs(BR, MAC1, LOA1)]
    e.packet_from(MAC1, BR, LOA1, 3.1)  # its NA
    # then silence: probes at 6.1 and 9.1, gone 9 s after 3.1
    effects = []
    now = 3.1
    while now < 12.1:
        deadline = e.next_deadline()
        assert deadline is not None
        now = deadline
        effects += e.tick(now)
    assert len(of(effects, SendNs)) >= 2
    out = pbus(effects)
    assert len(out) == 1 and out[0].lifetime == 0
    assert now == pytest.approx(12.1)


def test_authenticating_station_that_leaves_is_dropped() -> None:
    e = engine()
    e.station_seen(MAC1, BR, 0)
    assert pbus(e.station_gone(MAC1, 1)) == []
    assert e.visitor(MAC1) is None
    assert of(e.aaa_result(MAC1, profile(), 2), SendMh) == []


# --- shutdown, listing, rfc5213 -------------------------------------------------


def test_shutdown_detaches_without_deregistering() -> None:
    e = engine()
    registered(e)
    effects = e.shutdown()
    assert effects == [Detach(LNP1)]
    assert len(e) == 0


def test_visitors_listing() -> None:
    e = engine(lifetime=300)
    registered(e, now=0)
    [row] = e.visitors(now=100)
    assert row["nai"] == "ms1@example.net" and row["mac"] == MAC1
    assert row["loa"] == str(LOA1) and row["lnp"] == str(LNP1)
    assert row["lmap"] == str(LMAP) and row["state"] == "registered"
    assert row["lifetime"] == 300 and row["expires_in"] == 200


def test_rfc5213_profile_registers_the_prefix() -> None:
    e = MpaEngine(MpaSettings(address=MPA, profile=RFC5213))
    pbu = authenticated(e)
    hnp = find_option(pbu.options, HomeNetworkPrefix)
    assert hnp == HomeNetworkPrefix(64, LNP1[0])
    assert find_option(pbu.options, AccessTechnologyType) is not None
    reply = BindingAcknowledgement(0, BAFlags.P, pbu.sequence, pbu.lifetime, (hnp,))
    effects = e.mh_received(LMAP, reply, 0.1)
    assert of(effects, Attach) == [Attach(LNP1, BR, LMAP)]
