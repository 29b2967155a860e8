"""LMAP engine rules with a virtual clock (seed 6.1, 6.3, 6.4, 9.1)."""

from __future__ import annotations

import itertools
import tracemalloc
from ipaddress import IPv6Address, IPv6Network
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmip6.core.lmap import (
    Bind,
    Binding,
    Delete,
    Event,
    EventKind,
    LmapEngine,
    LmapSettings,
    Save,
    Send,
    Unbind,
)
from pmip6.core.seqno import seq_add, seq_greater
from pmip6.wire.errors import Malformed
from pmip6.wire.mh import (
    AccessTechnologyType,
    AssignedHomeAddress,
    BAFlags,
    BindingAcknowledgement,
    BindingCacheConfirmation,
    BindingError,
    BindingRevocationAcknowledgement,
    BindingRevocationIndication,
    BindingUpdate,
    BRFlags,
    BUFlags,
    HandoffIndicator,
    Heartbeat,
    HomeNetworkPrefix,
    MobileNodeIdentifier,
    Option,
    RevocationTrigger,
    UnknownMessage,
    decode_mh,
    encode_mh,
)
from pmip6.wire.profile import DRAFT00, RFC5213

A = IPv6Address
LMAP = A("fd00::1")
MPA1 = A("fd00::11")
MPA2 = A("fd00::12")
MPA3 = A("fd00::13")
ROGUE = A("fd01::66")
LOA = A("2001:db8:1:1::10")
LNP = IPv6Network("2001:db8:1:1::/64")
NAI = "ms1@example.net"
PBU_FLAGS = BUFlags.A | BUFlags.P


def make(profile: Any = DRAFT00, **kw: Any) -> LmapEngine:
    return LmapEngine(
        LmapSettings(
            address=LMAP,
            prefixes=(IPv6Network("2001:db8:1::/48"),),
            mpas=(IPv6Network("fd00::/64"),),
            max_lifetime=kw.pop("max_lifetime", 3600),
            profile=profile,
            **kw,
        )
    )


def pbu(
    seq: int = 1,
    *,
    nai: str | None = NAI,
    loa: IPv6Address | None = LOA,
    plen: int = 64,
    bcc: bool = False,
    lifetime: int = 75,
    flags: BUFlags = PBU_FLAGS,
    extra: tuple[Option, ...] = (),
) -> BindingUpdate:
    options: list[Option] = []
    if nai is not None:
        options.append(MobileNodeIdentifier.from_nai(nai))
    if bcc:
        options.append(BindingCacheConfirmation())
    elif loa is not None:
        options.append(AssignedHomeAddress(plen, loa))
    options.extend(extra)
    return BindingUpdate(seq, flags, lifetime, tuple(options))


def feed(e: LmapEngine, msg: Any, src: IPv6Address, now: float) -> list[Any]:
    return e.receive(msg, src, LMAP, now)


def sends(effects: list[Any]) -> list[Send]:
    return [x for x in effects if isinstance(x, Send)]


def reply(effects: list[Any]) -> BindingAcknowledgement:
    (send,) = [
        s for s in sends(effects) if isinstance(s.message, BindingAcknowledgement)
    ]
    assert isinstance(send.message, BindingAcknowledgement)
    return send.message


def events(effects: list[Any], kind: EventKind) -> list[Event]:
    return [x for x in effects if isinstance(x, Event) and x.kind is kind]


def state_changes(effects: list[Any]) -> list[Any]:
    return [x for x in effects if isinstance(x, (Bind, Unbind, Save, Delete))]


def snapshot(e: LmapEngine) -> list[dict[str, Any]]:
    return e.bindings(0.0)


# --- registration -------------------------------------------------------------


def test_aha_registration_creates_binding_and_tunnel_before_acknowledging() -> None:
    e = make()
    fx = feed(e, pbu(7), MPA1, 100.0)
    assert fx.index(Bind(LNP, MPA1)) < fx.index(sends(fx)[0])  # seed 6.1 step 9
    ba = reply(fx)
    assert (ba.status, ba.sequence, ba.lifetime) == (0, 7, 75)
    assert ba.flags & BAFlags.P
    assert AssignedHomeAddress(64, LOA) in ba.options
    assert sends(fx)[0].dst == MPA1
    assert len(events(fx, EventKind.REGISTERED)) == 1
    assert any(isinstance(x, Save) and x.binding.nai == NAI for x in fx)
    b = e.by_nai[NAI]
    assert (b.loa_address, b.prefix_length, b.care_of, b.sequence) == (LOA, 64, MPA1, 7)
    assert b.expires_at == 100.0 + 300
    assert e.by_loa[int(LOA)] is b
    assert e.forwarding() == {LNP: MPA1}


def test_lifetime_is_capped_to_max_lifetime() -> None:
    e = make(max_lifetime=600)
    ba = reply(feed(e, pbu(lifetime=65535), MPA1, 0.0))
    assert ba.lifetime == 150
    assert e.by_nai[NAI].expires_at == 600.0


def test_refresh_from_same_mpa_updates_expiry_without_route_change() -> None:
    e = make()
    feed(e, pbu(1), MPA1, 0.0)
    fx = feed(e, pbu(2), MPA1, 200.0)
    assert reply(fx).status == 0
    assert not [x for x in fx if isinstance(x, (Bind, Unbind))]
    assert e.by_nai[NAI].expires_at == 500.0
    assert not e.handle_timeout(300.0)  # the old deadline is stale
    assert e.next_deadline() == 500.0


def test_new_loa_for_same_nai_moves_the_route() -> None:
    e = make()
    feed(e, pbu(1), MPA1, 0.0)
    fx = feed(e, pbu(2, loa=A("2001:db8:1:2::10")), MPA1, 1.0)
    assert Unbind(LNP) in fx
    assert Bind(IPv6Network("2001:db8:1:2::/64"), MPA1) in fx
    assert int(LOA) not in e.by_loa
    # the old LNP is free for another MS now
    assert reply(feed(e, pbu(1, nai="ms2@x"), MPA2, 2.0)).status == 0


# --- refusals: each status, nothing changes -----------------------------------


@pytest.mark.parametrize(
    ("profile", "message", "src", "status"),
    [
        (DRAFT00, pbu(), ROGUE, 129),
        (RFC5213, pbu(), ROGUE, 154),
        (DRAFT00, pbu(flags=BUFlags.A), MPA1, 140),
        (RFC5213, pbu(flags=BUFlags.A), MPA1, 152),
        (DRAFT00, pbu(nai=None), MPA1, 160),
        (DRAFT00, pbu(nai=""), MPA1, 160),
        (DRAFT00, pbu(loa=None), MPA1, 128),
        (RFC5213, pbu(loa=None), MPA1, 158),
        (DRAFT00, pbu(bcc=True), MPA1, 141),
        (DRAFT00, pbu(loa=A("2001:db8:2::10")), MPA1, 132),
        (DRAFT00, pbu(loa=A("2001:db8:1::10"), plen=40), MPA1, 132),
        (DRAFT00, pbu(loa=LOA, plen=129), MPA1, 132),
    ],
)
def test_refusals(
    profile: Any, message: BindingUpdate, src: IPv6Address, status: int
) -> None:
    e = make(profile)
    if profile is RFC5213:
        # the rfc5213 codec has no AHA: carry the LoA as an HNP
        message = BindingUpdate(
            message.sequence,
            message.flags,
            message.lifetime,
            tuple(
                HomeNetworkPrefix(o.prefix_length, o.home_address)
                if isinstance(o, AssignedHomeAddress)
                else o
                for o in message.options
            ),
        )
    fx = feed(e, message, src, 0.0)
    ba = reply(fx)
    assert ba.status == status
    assert ba.sequence == message.sequence
    assert ba.lifetime == 0
    assert bool(ba.flags & BAFlags.P) == message.proxy
    assert sends(fx)[0].dst == src
    assert not state_changes(fx)
    assert len(events(fx, EventKind.REFUSED)) == 1
    assert not e.by_nai
    assert e.next_deadline() is None
    assert e.counters.refused_by_status == {status: 1}


@pytest.mark.parametrize(("profile", "status"), [(DRAFT00, 142), (RFC5213, 155)])
def test_loa_or_lnp_of_another_nai_is_refused(profile: Any, status: int) -> None:
    e = make(profile)
    opt = AssignedHomeAddress if profile is DRAFT00 else HomeNetworkPrefix
    first = BindingUpdate(
        1, PBU_FLAGS, 75, (MobileNodeIdentifier.from_nai(NAI), opt(64, LOA))
    )
    feed(e, first, MPA1, 0.0)
    before = snapshot(e)
    for other in (LOA, A("2001:db8:1:1::99")):  # same LoA, same LNP
        msg = BindingUpdate(
            1, PBU_FLAGS, 75, (MobileNodeIdentifier.from_nai("ms2@x"), opt(64, other))
        )
        fx = feed(e, msg, MPA2, 1.0)
        assert reply(fx).status == status
        assert not state_changes(fx)
    same_loa_host_route = pbu(nai="ms2@x", loa=LOA, plen=128)
    if profile is DRAFT00:
        assert reply(feed(e, same_loa_host_route, MPA2, 1.0)).status == status
    assert snapshot(e) == before


# --- Binding Cache Confirmation (seed 9.1) ------------------------------------


def test_bcc_with_binding_returns_aha_and_moves_care_of() -> None:
    e = make()
    feed(e, pbu(1), MPA1, 0.0)
    fx = feed(e, pbu(1, bcc=True), MPA2, 10.0)
    ba = reply(fx)
    assert ba.status == 0 and ba.sequence == 1
    assert AssignedHomeAddress(64, LOA) in ba.options
    assert Bind(LNP, MPA2) in fx
    assert e.by_nai[NAI].care_of == MPA2
    assert len(events(fx, EventKind.MOVED)) == 1


def test_bcc_without_binding_changes_nothing() -> None:
    e = make()
    feed(e, pbu(1, nai="other@x"), MPA1, 0.0)
    before = snapshot(e)
    fx = feed(e, pbu(1, bcc=True), MPA2, 1.0)
    assert reply(fx).status == 141
    assert snapshot(e) == before


# --- handover and revocation (seed 6.4, RFC 5846) -----------------------------


def bri_of(fx: list[Any]) -> tuple[BindingRevocationIndication, IPv6Address]:
    (send,) = [
        s for s in sends(fx) if isinstance(s.message, BindingRevocationIndication)
    ]
    assert isinstance(send.message, BindingRevocationIndication)
    return send.message, send.dst


def test_handover_answers_new_mpa_and_revokes_previous() -> None:
    e = make()
    feed(e, pbu(5), MPA1, 0.0)
    fx = feed(e, pbu(1), MPA2, 10.0)
    assert reply(fx).status == 0
    # the PBA to the new MPA goes out before the BRI to the previous one
    assert [(type(s.message), s.dst) for s in sends(fx)] == [
        (BindingAcknowledgement, MPA2),
        (BindingRevocationIndication, MPA1),
    ]
    bri, dst = bri_of(fx)
    assert dst == MPA1
    assert bri.flags & BRFlags.P
    assert bri.revocation_trigger == RevocationTrigger.INTER_MAG_HANDOVER_SAME_ATT
    assert MobileNodeIdentifier.from_nai(NAI) in bri.options
    assert e.forwarding() == {LNP: MPA2}
    assert e.pending_revocations == 1


def test_revocation_retransmits_with_backoff_then_gives_up_once() -> None:
    e = make()
    feed(e, pbu(1), MPA1, 0.0)
    bri, _ = bri_of(feed(e, pbu(1), MPA2, 10.0))
    times = []
    failed = []
    now = 10.0
    while (deadline := e.next_deadline()) is not None and deadline < 100:
        now = deadline
        fx = e.handle_timeout(now)
        for s in sends(fx):
            assert s.message == bri and s.dst == MPA1  # the same BRI again
            times.append(now)
        failed += events(fx, EventKind.REVOCATION_FAILED)
    # 1 s, then doubling capped at 2 s; 3 retransmissions, then one warning
    assert times == [11.0, 13.0, 15.0]
    assert len(failed) == 1 and now == 17.0
    assert e.pending_revocations == 0
    assert e.by_nai[NAI].care_of == MPA2  # giving up does not undo the move


def test_bra_stops_retransmission_and_duplicates_are_ignored() -> None:
    e = make()
    feed(e, pbu(1), MPA1, 0.0)
    bri, _ = bri_of(feed(e, pbu(1), MPA2, 10.0))
    bra = BindingRevocationAcknowledgement(bri.sequence, 0, BRFlags.P)
    wrong_seq = BindingRevocationAcknowledgement(seq_add(bri.sequence), 0, BRFlags.P)
    assert events(feed(e, wrong_seq, MPA1, 10.1), EventKind.IGNORED)
    assert events(feed(e, bra, MPA3, 10.2), EventKind.IGNORED)  # wrong peer
    assert e.pending_revocations == 1
    fx = feed(e, bra, MPA1, 10.5)
    assert events(fx, EventKind.REVOKED)
    assert e.pending_revocations == 0
    assert events(feed(e, bra, MPA1, 10.6), EventKind.IGNORED)  # duplicate
    assert not sends(e.handle_timeout(20.0))


def test_late_bra_after_one_retransmission_matches_by_sequence() -> None:
    e = make()
    feed(e, pbu(1), MPA1, 0.0)
    bri, _ = bri_of(feed(e, pbu(1), MPA2, 10.0))
    assert sends(e.handle_timeout(11.0))  # first BRA lost
    fx = feed(
        e, BindingRevocationAcknowledgement(bri.sequence, 0, BRFlags.P), MPA1, 11.5
    )
    assert events(fx, EventKind.REVOKED)
    assert not sends(e.handle_timeout(13.0))


def test_moving_back_cancels_revocation_to_that_mpa() -> None:
    e = make()
    feed(e, pbu(1), MPA1, 0.0)
    feed(e, pbu(1), MPA2, 10.0)  # BRI to MPA1 pending
    fx = feed(e, pbu(2), MPA1, 10.5)  # the MS is back at MPA1
    assert reply(fx).status == 0
    assert bri_of(fx)[1] == MPA2
    for t in (11.0, 12.0, 13.0, 15.0, 17.0):
        assert all(s.dst != MPA1 for s in sends(e.handle_timeout(t)))


def test_reordered_stale_pbu_from_previous_mpa_cannot_pull_binding_back() -> None:
    e = make()
    feed(e, pbu(5), MPA1, 0.0)
    feed(e, pbu(1), MPA2, 10.0)
    fx = feed(e, pbu(5), MPA1, 10.1)  # MPA1's old refresh, delayed
    ba = reply(fx)
    assert ba.status == 135 and ba.sequence == 5
    assert not state_changes(fx)
    assert e.by_nai[NAI].care_of == MPA2


def test_deregistration_from_previous_mpa_is_accepted_without_change() -> None:
    e = make()
    feed(e, pbu(5), MPA1, 0.0)
    feed(e, pbu(1), MPA2, 10.0)
    fx = feed(e, pbu(6, lifetime=0), MPA1, 11.0)
    assert reply(fx).status == 0
    assert not state_changes(fx)
    assert e.forwarding() == {LNP: MPA2}


# --- de-registration and expiry -----------------------------------------------


def test_deregistration_from_serving_mpa_removes_binding() -> None:
    e = make()
    feed(e, pbu(1), MPA1, 0.0)
    fx = feed(e, pbu(2, lifetime=0), MPA1, 5.0)
    ba = reply(fx)
    assert (ba.status, ba.lifetime) == (0, 0)
    assert fx.index(Unbind(LNP)) < fx.index(sends(fx)[0])
    assert Delete(NAI) in fx
    assert events(fx, EventKind.DEREGISTERED)
    assert not e.by_nai and not e.by_loa
    assert e.next_deadline() is None
    # its retransmission finds no binding and is answered the same way
    fx = feed(e, pbu(2, lifetime=0), MPA1, 5.5)
    assert reply(fx).status == 0 and not state_changes(fx)


def test_binding_expires_at_its_deadline() -> None:
    e = make()
    feed(e, pbu(1, lifetime=10), MPA1, 0.0)
    assert e.next_deadline() == 40.0
    assert not e.handle_timeout(39.9)
    fx = e.handle_timeout(40.0)
    assert Unbind(LNP) in fx and Delete(NAI) in fx
    (ev,) = events(fx, EventKind.EXPIRED)
    assert (ev.nai, ev.loa, ev.peer) == (NAI, LOA, MPA1)
    assert not e.by_nai and e.next_deadline() is None


# --- sequence numbers and retransmissions -------------------------------------


def test_seqno_compare_modulo_2_16() -> None:
    assert seq_greater(1, 0)
    assert seq_greater(0, 65535)
    assert seq_greater(32767, 0)
    assert not seq_greater(32768, 0)
    assert not seq_greater(0, 0)
    assert not seq_greater(65535, 0)
    assert seq_add(65535) == 0


@pytest.mark.parametrize(
    ("last", "seq", "accepted"),
    [
        (10, 11, True),
        (10, 9, False),
        (10, 10 + 32767, True),
        (10, 10 + 32768, False),
        (65535, 0, True),
        (65530, 3, True),
        (3, 65530, False),
    ],
)
def test_sequence_window_and_wraparound(last: int, seq: int, accepted: bool) -> None:
    e = make()
    feed(e, pbu(last), MPA1, 0.0)
    fx = feed(e, pbu(seq, lifetime=80), MPA1, 1.0)
    ba = reply(fx)
    if accepted:
        assert ba.status == 0 and ba.sequence == seq
        assert e.by_nai[NAI].sequence == seq
    else:
        # RFC 6275 9.5.1: 135 with the last accepted sequence
        assert ba.status == 135 and ba.sequence == last
        assert not state_changes(fx)
        assert e.by_nai[NAI].sequence == last


def test_retransmitted_pbu_is_answered_again_without_side_effects() -> None:
    e = make()
    first = feed(e, pbu(9), MPA1, 0.0)
    again = feed(e, pbu(9), MPA1, 1.0)  # PBA lost; the MPA sends the same PBU
    assert not state_changes(again) and not [x for x in again if isinstance(x, Event)]
    assert reply(again) == reply(first)
    assert e.by_nai[NAI].expires_at == 300.0  # not extended
    assert e.counters.retransmissions_answered == 1
    # same sequence with different content is not a retransmission
    assert reply(feed(e, pbu(9, lifetime=10), MPA1, 2.0)).status == 135


def test_retransmitted_bcc_after_handover_sends_no_second_revocation() -> None:
    e = make()
    feed(e, pbu(1), MPA1, 0.0)
    feed(e, pbu(4, bcc=True), MPA2, 1.0)
    fx = feed(e, pbu(4, bcc=True), MPA2, 1.2)
    assert reply(fx).status == 0
    assert len(sends(fx)) == 1
    assert e.pending_revocations == 1


def test_duplicated_and_reordered_pbus() -> None:
    e = make()
    feed(e, pbu(1), MPA1, 0.0)
    feed(e, pbu(3), MPA1, 1.0)
    assert reply(feed(e, pbu(2), MPA1, 1.1)).status == 135  # overtaken
    assert reply(feed(e, pbu(3), MPA1, 1.2)).status == 0  # duplicate
    assert e.by_nai[NAI].sequence == 3
    assert e.counters.registered == 1


# --- other messages, restore --------------------------------------------------


def test_other_messages_are_ignored() -> None:
    e = make()
    fx = feed(e, Heartbeat(1), MPA1, 0.0)
    assert not state_changes(fx) and not sends(fx)
    assert events(fx, EventKind.IGNORED)


def test_restore_drops_expired_and_rebuilds_indexes() -> None:
    e = make()
    live = Binding(NAI, int(LOA), 64, A("fd00::11"), 300, 500.0, 4, 0)
    dead = Binding("old@x", int(A("2001:db8:1:9::1")), 64, A("fd00::12"), 300, 50.0, 1)
    foreign = Binding("f@x", int(A("2001:db9::1")), 64, A("fd00::12"), 300, 500.0, 1)
    assert e.restore([live, dead, foreign], 100.0) == 1
    assert e.forwarding() == {LNP: MPA1}
    assert e.next_deadline() == 500.0
    # the restored MPA address is the interned one: refreshes are not moves
    fx = feed(e, pbu(5), MPA1, 101.0)
    assert reply(fx).status == 0 and not [x for x in fx if isinstance(x, Bind)]
    assert reply(feed(e, pbu(1, nai="ms2@x"), MPA2, 101.0)).status == 142


# --- rfc5213 profile ----------------------------------------------------------


def test_rfc5213_hnp_registration_echoes_options() -> None:
    e = make(RFC5213)
    hi, att = HandoffIndicator(1), AccessTechnologyType(3)
    msg = BindingUpdate(
        1,
        PBU_FLAGS,
        75,
        (
            MobileNodeIdentifier.from_nai(NAI),
            HomeNetworkPrefix(64, LNP.network_address),
            hi,
            att,
        ),
    )
    ba = reply(feed(e, msg, MPA1, 0.0))
    assert ba.status == 0
    assert HomeNetworkPrefix(64, LNP.network_address) in ba.options
    assert hi in ba.options and att in ba.options
    # an all-zero HNP asks for the MS's prefix, like the seed's BCC
    ask = BindingUpdate(
        1,
        PBU_FLAGS,
        75,
        (MobileNodeIdentifier.from_nai(NAI), HomeNetworkPrefix(0, A("::"))),
    )
    ba = reply(feed(e, ask, MPA2, 1.0))
    assert ba.status == 0 and HomeNetworkPrefix(64, LNP.network_address) in ba.options
    unknown = BindingUpdate(
        1,
        PBU_FLAGS,
        75,
        (MobileNodeIdentifier.from_nai("x@y"), HomeNetworkPrefix(0, A("::"))),
    )
    assert reply(feed(e, unknown, MPA2, 1.0)).status == 130


# --- through the codec, robustness, memory ------------------------------------


def test_full_round_trip_through_codec() -> None:
    e = make()
    data = encode_mh(pbu(3), DRAFT00, MPA1, LMAP)
    fx = feed(e, decode_mh(data, DRAFT00, MPA1, LMAP), MPA1, 0.0)
    out = encode_mh(reply(fx), DRAFT00, LMAP, MPA1)
    ba = decode_mh(out, DRAFT00, LMAP, MPA1)
    assert isinstance(ba, BindingAcknowledgement) and ba.status == 0


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=0, max_size=96))
def test_any_bytes_decode_or_raise_malformed_and_never_break_the_engine(
    data: bytes,
) -> None:
    e = make()
    feed(e, pbu(1), MPA1, 0.0)
    try:
        msg = decode_mh(data, DRAFT00)
    except Malformed:
        return
    e.receive(msg, MPA2, LMAP, 1.0)
    e.handle_timeout(2.0)
    assert NAI in e.by_nai or not e.by_nai


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 65535),  # sequence
            st.sampled_from([MPA1, MPA2, MPA3, ROGUE]),
            st.sampled_from(["a@x", "b@x"]),
            st.sampled_from([None, "bcc", LOA, A("2001:db8:1:2::1"), A("2001:db9::1")]),
            st.integers(0, 100),  # lifetime
            st.floats(0, 50),  # time step
        ),
        max_size=30,
    )
)
def test_random_pbu_sequences_keep_indexes_consistent(steps: list[Any]) -> None:
    e = make()
    now = 0.0
    for seq, src, nai, what, lifetime, dt in steps:
        now += dt
        msg = pbu(
            seq,
            nai=nai,
            loa=what if isinstance(what, IPv6Address) else None,
            bcc=what == "bcc",
            lifetime=lifetime,
        )
        fx = feed(e, msg, src, now)
        assert (
            len([s for s in sends(fx) if isinstance(s.message, BindingAcknowledgement)])
            == 1
        )
        e.handle_timeout(now)
        # every LoA is bound to one NAI; every binding is indexed
        assert len(e.by_loa) == len(e.by_nai)
        for b in e.by_nai.values():
            assert e.by_loa[b.loa] is b
            assert b.expires_at > now


def test_memory_per_binding_is_below_1_kib() -> None:
    e = make()
    n = 5000
    messages = [
        pbu(1, nai=f"ms{i}@example.net", loa=A(int(LOA) + (i << 64))) for i in range(n)
    ]
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for m in messages:
        e.receive(m, MPA1, LMAP, 0.0)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert len(e.by_nai) == n
    assert used / n < 1024


def test_forwarding_failure_drops_the_binding() -> None:
    e = make()
    feed(e, pbu(1), MPA1, 0.0)
    assert e.forwarding_failed(LNP, MPA2, 0.1) == []  # not bound there: nothing
    fx = e.forwarding_failed(LNP, MPA1, 0.1)
    assert Unbind(LNP) in fx and Delete(NAI) in fx
    (ev,) = events(fx, EventKind.REFUSED)
    assert ev.status == 143
    assert not e.by_nai and not e.by_loa
    assert reply(feed(e, pbu(2, nai="ms2@x"), MPA2, 1.0)).status == 0  # LNP free


# --- overlapping LNPs (RFC 5213 5.2: per-MN prefixes) --------------------------


@pytest.mark.parametrize(("profile", "status"), [(DRAFT00, 142), (RFC5213, 155)])
@pytest.mark.parametrize(
    ("loa", "plen"),
    [
        (A("2001:db8:1::5"), 48),  # covers every station of the anchored /48
        (A("2001:db8:1::"), 56),  # covers 2001:db8:1:1::/64
        (A("2001:db8:1:1::77"), 128),  # a host inside ms1's /64
        (A("2001:db8:1:1:8000::1"), 65),  # a nested half of it
        (LOA, 64),  # the same LNP
    ],
)
def test_lnp_overlapping_another_nais_lnp_is_refused(
    profile: Any, status: int, loa: IPv6Address, plen: int
) -> None:
    e = make(profile)
    opt = AssignedHomeAddress if profile is DRAFT00 else HomeNetworkPrefix

    def msg(nai: str, address: IPv6Address, length: int) -> BindingUpdate:
        return BindingUpdate(
            1, PBU_FLAGS, 75, (MobileNodeIdentifier.from_nai(nai), opt(length, address))
        )

    assert reply(feed(e, msg(NAI, LOA, 64), MPA1, 0.0)).status == 0
    assert reply(feed(e, msg("ms3@x", A("2001:db8:1:7::1"), 64), MPA1, 0.0)).status == 0
    before = snapshot(e)
    fx = feed(e, msg("attacker@x", loa, plen), MPA2, 1.0)
    assert reply(fx).status == status
    assert not state_changes(fx)
    (ev,) = events(fx, EventKind.REFUSED)
    assert "overlaps" in ev.detail
    assert snapshot(e) == before
    assert e.forwarding() == {LNP: MPA1, IPv6Network("2001:db8:1:7::/64"): MPA1}


def test_disjoint_prefixes_of_any_length_are_accepted_and_freed() -> None:
    e = make()
    feed(e, pbu(1), MPA1, 0.0)  # 2001:db8:1:1::/64
    # neighbours on both sides, of shorter and longer lengths
    for i, (loa, plen) in enumerate(
        [
            (A("2001:db8:1:2::1"), 63),
            (A("2001:db8:1:0:ffff::1"), 128),
            (A("2001:db8:1:100::1"), 56),
        ]
    ):
        assert (
            reply(feed(e, pbu(1, nai=f"n{i}@x", loa=loa, plen=plen), MPA1, 0.0)).status
            == 0
        )
    # the same NAI may narrow its own prefix: its old LNP is not a conflict
    assert reply(feed(e, pbu(2, loa=LOA, plen=128), MPA1, 1.0)).status == 0
    assert e.forwarding()[IPv6Network(f"{LOA}/128")] == MPA1
    # ...and the /64 it left is free again for a host route of another NAI
    assert (
        reply(
            feed(e, pbu(1, nai="h@x", loa=A("2001:db8:1:1::99"), plen=128), MPA1, 1.0)
        ).status
        == 0
    )
    # de-registration frees a prefix for a covering one
    for nai, seq in ((NAI, 3), ("h@x", 2)):
        feed(e, pbu(seq, nai=nai, lifetime=0), MPA1, 2.0)
    assert reply(feed(e, pbu(1, nai="big@x", loa=LOA, plen=64), MPA1, 3.0)).status == 0


def test_overlap_check_with_thousands_of_bindings() -> None:
    # more LNPs than one chunk of the sorted index holds
    e = make()
    n = 4500
    for i in range(n):
        loa = A(int(A("2001:db8:1::1")) + (i << 64))
        assert reply(feed(e, pbu(1, nai=f"m{i}@x", loa=loa), MPA1, 0.0)).status == 0
    for i in range(0, n, 2):
        feed(e, pbu(2, nai=f"m{i}@x", lifetime=0), MPA1, 1.0)
    for i in (1, 1001, 2999, n - 1):
        inside = A(int(A("2001:db8:1::5")) + (i << 64))
        fx = feed(e, pbu(1, nai="x@x", loa=inside, plen=128), MPA1, 2.0)
        assert reply(fx).status == 142
        freed = A(int(inside) + (1 << 64))  # i + 1: de-registered above
        fx = feed(e, pbu(1, nai=f"y{i}@x", loa=freed, plen=128), MPA1, 2.0)
        assert reply(fx).status == 0
    covering = pbu(1, nai="z@x", loa=A("2001:db8:1:1000::"), plen=52)
    assert reply(feed(e, covering, MPA1, 2.0)).status == 142


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a@x", "b@x", "c@x"]),
            st.integers(0, 0xFF),  # bits 56-63 of the LoA
            st.integers(48, 128),  # prefix length
            st.integers(0, 3),  # lifetime, 0 de-registers
        ),
        max_size=25,
    )
)
def test_bound_lnps_never_overlap(steps: list[Any]) -> None:
    e = make()
    for seq, (nai, byte, plen, lifetime) in enumerate(steps, 1):
        loa = A(int(A("2001:db8:1::1")) + (byte << 64))
        lnp = IPv6Network(f"{loa}/{plen}", strict=False)
        others = [b.lnp for b in e.by_nai.values() if b.nai != nai]
        fx = feed(e, pbu(seq, nai=nai, loa=loa, plen=plen, lifetime=lifetime), MPA1, 0)
        expected = lifetime == 0 or not any(lnp.overlaps(o) for o in others)
        assert (reply(fx).status == 0) == expected
        lnps = sorted(b.lnp for b in e.by_nai.values())
        assert not any(x.overlaps(y) for x, y in itertools.pairwise(lnps))


def test_restore_drops_a_binding_overlapping_one_kept_before() -> None:
    e = make()
    wide = Binding("wide@x", int(A("2001:db8:1::5")), 48, MPA1, 300, 500.0, 1)
    mine = Binding(NAI, int(LOA), 64, MPA1, 300, 500.0, 1)
    bad_nai = Binding("a\nb", int(A("2001:db8:1:9::1")), 64, MPA1, 300, 500.0, 1)
    assert e.restore([mine, wide, bad_nai], 100.0) == 1
    assert set(e.by_nai) == {NAI}


# --- the MN Identifier must be a sane NAI -------------------------------------


@pytest.mark.parametrize(
    "identifier",
    [
        b"\xff\xfe\x00\n\x1b[31mX",  # not UTF-8, NUL, newline, escape
        b"ms1@example.net\nFAKE registered",  # a forged log line
        b"\x1b[31mred@x",  # ANSI escape (C0)
        b"del\x7f@x",  # DEL
        "nel\u0085@x".encode(),  # C1 control
        "ls\u2028@x".encode(),  # line separator
        b"a" * 254,  # RFC 4282 2.2: at most 253 octets
    ],
)
@pytest.mark.parametrize("profile", [DRAFT00, RFC5213])
def test_unusable_mn_identifier_is_refused_with_128(
    identifier: bytes, profile: Any
) -> None:
    e = make(profile)
    opt: Option = (
        AssignedHomeAddress(64, LOA)
        if profile is DRAFT00
        else HomeNetworkPrefix(64, LNP.network_address)
    )
    msg = BindingUpdate(1, PBU_FLAGS, 75, (MobileNodeIdentifier(identifier), opt))
    fx = feed(e, msg, MPA1, 0.0)
    assert reply(fx).status == 128
    assert not state_changes(fx) and not e.by_nai
    (ev,) = events(fx, EventKind.REFUSED)
    assert repr(identifier) in ev.detail
    assert ev.detail.isprintable() and ev.nai == ""


def test_longest_printable_utf8_nai_is_accepted() -> None:
    e = make()
    nai = "é" * 100 + "@" + "x" * 52  # 253 octets
    assert len(nai.encode()) == 253
    assert reply(feed(e, pbu(1, nai=nai), MPA1, 0.0)).status == 0
    assert nai in e.by_nai


def test_refusal_before_nai_check_logs_the_identifier_escaped() -> None:
    e = make()
    msg = BindingUpdate(
        1,
        PBU_FLAGS,
        75,
        (MobileNodeIdentifier(b"x\ny"), AssignedHomeAddress(64, LOA)),
    )
    (ev,) = events(feed(e, msg, ROGUE, 0.0), EventKind.REFUSED)
    assert ev.status == 129 and ev.nai == repr(b"x\ny")


# --- unrecognised MH types (RFC 6275 9.2, 9.3.3) -------------------------------


def test_unknown_mh_type_is_answered_with_a_rate_limited_binding_error() -> None:
    e = make()
    unknown = decode_mh(b"\x3b\x00\xc8\x00\x00\x00\x00\x00")  # MH type 200
    assert isinstance(unknown, UnknownMessage)

    def errors(fx: list[Any]) -> list[Send]:
        return [s for s in sends(fx) if isinstance(s.message, BindingError)]

    fx = feed(e, unknown, MPA1, 10.0)
    (send,) = errors(fx)
    assert send.dst == MPA1
    assert send.message == BindingError(2, A("::"))
    assert events(fx, EventKind.BINDING_ERROR) and not state_changes(fx)
    # the answer encodes and decodes as a Binding Error (RFC 6275 6.1.9)
    assert decode_mh(encode_mh(send.message)) == send.message

    assert errors(feed(e, unknown, MPA1, 10.5)) == []  # within the interval
    assert len(errors(feed(e, unknown, MPA2, 10.5))) == 1  # per peer
    assert len(errors(feed(e, unknown, MPA1, 11.0))) == 1
    # never to a non-unicast source
    assert errors(feed(e, unknown, A("ff02::1"), 20.0)) == []
    assert errors(feed(e, unknown, A("::"), 20.0)) == []
    assert e.counters.binding_errors == 3
