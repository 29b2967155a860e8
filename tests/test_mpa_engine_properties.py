"""The MPA engine under any order of inputs: it never raises, and what its
effects did to the data plane always matches its visitor list."""

from __future__ import annotations

from ipaddress import IPv6Address, IPv6Network
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pmip6.aaa.base import AddressMode, MsProfile
from pmip6.core.mpa import (
    AskAaa,
    Attach,
    Detach,
    Effect,
    MpaEngine,
    MpaSettings,
    SendMh,
    SendRa,
    State,
)
from pmip6.wire.mh import (
    AssignedHomeAddress,
    BAFlags,
    BindingAcknowledgement,
    BindingRevocationIndication,
    BindingUpdate,
    BRFlags,
    MobileNodeIdentifier,
    find_option,
)
from pmip6.wire.nd import modified_eui64

LMAP = IPv6Address("fd00::1")
MACS = ["02:00:00:00:aa:01", "02:00:00:00:aa:02", "02:00:00:00:aa:03"]
LNPS = [IPv6Network(f"2001:db8:1:{i}::/64") for i in (1, 2, 3)]
# the third station is refused by AAA
PROFILES: list[MsProfile | None] = [
    MsProfile(f"ms{i}@example.net", LMAP, LNPS[i], address_mode=mode)
    for i, mode in ((0, AddressMode.SLAAC), (1, AddressMode.STATIC))
] + [None]

station = st.integers(0, 2)
address = st.sampled_from(
    [LNPS[0][0x10], LNPS[0][0x11], LNPS[1][0x10], IPv6Address("fe80::2"), LMAP]
)
# what an NA may name: the stations' EUI-64 LoA candidates, and others
na_target = st.sampled_from(
    [
        IPv6Address(int(LNPS[i].network_address) | modified_eui64(MACS[i]))
        for i in (0, 1)
    ]
    + [LNPS[0][0x10], IPv6Address("fe80::2")]
)
operation = st.one_of(
    st.tuples(st.just("seen"), station),
    st.tuples(st.just("gone"), station),
    st.tuples(st.just("rs"), station),
    st.tuples(st.just("dad"), station, address),
    st.tuples(st.just("packet"), station, address),
    st.tuples(st.just("na"), station, na_target),
    st.tuples(st.just("aaa"), station),
    st.tuples(st.just("aaa_error"), station),
    st.tuples(
        st.just("pba"), st.integers(0, 6), st.sampled_from([0, 0, 128, 135, 141, 142])
    ),
    st.tuples(st.just("pba"), st.integers(0, 1), st.just(0)),
    st.tuples(st.just("bri"), station, st.integers(0, 3)),
    st.tuples(st.just("tick"), st.floats(0.0, 40.0)),
)


# every run starts with two stations authenticated, so that registrations,
# refreshes, revocations and departures are reached often
PRELUDE = [("seen", 0), ("seen", 1), ("seen", 2), ("aaa", 0), ("aaa", 1), ("aaa", 2)]


@settings(max_examples=300, deadline=None)
@given(st.lists(operation, max_size=40))
def test_any_input_order_keeps_the_data_plane_consistent(
    operations: list[tuple[Any, ...]],
) -> None:
    engine = MpaEngine(MpaSettings(address=IPv6Address("fd00::11")), 65530)
    now = 0.0
    attached: dict[IPv6Network, str] = {}  # what the effects made the kernel hold
    sent: list[BindingUpdate] = []
    asked: set[str] = set()

    def apply(effects: list[Effect]) -> None:
        for e in effects:
            if isinstance(e, Attach):
                attached[e.target] = e.access
            elif isinstance(e, Detach):
                attached.pop(e.target, None)
            elif isinstance(e, AskAaa):
                asked.add(e.mac)
            elif isinstance(e, SendMh) and isinstance(e.message, BindingUpdate):
                sent.append(e.message)
            elif isinstance(e, SendRa):
                # never an RA to a station AAA refused or has not answered for
                v = engine.visitor(e.mac)
                assert v is not None and v.profile is not None
                assert e.prefix == v.profile.lnp

    for op in PRELUDE + operations:
        kind = op[0]
        if kind == "tick":
            now += op[1]
            apply(engine.tick(now))
            continue
        now += 0.01
        if kind == "seen":
            apply(engine.station_seen(MACS[op[1]], "br0", now))
        elif kind == "gone":
            apply(engine.station_gone(MACS[op[1]], now))
        elif kind == "rs":
            apply(
                engine.router_solicitation(
                    MACS[op[1]], "br0", IPv6Address("fe80::2"), now
                )
            )
        elif kind == "dad":
            apply(engine.dad_ns(MACS[op[1]], "br0", op[2], now))
        elif kind == "packet":
            apply(engine.packet_from(MACS[op[1]], "br0", op[2], now))
        elif kind == "na":
            apply(engine.neighbor_advertisement(MACS[op[1]], "br0", op[2], op[2], now))
        elif kind == "aaa":
            apply(engine.aaa_result(MACS[op[1]], PROFILES[op[1]], now))
        elif kind == "aaa_error":
            apply(engine.aaa_error(MACS[op[1]], "timeout", now))
        elif kind == "pba" and sent:
            pbu = sent[-1 - op[1] % len(sent)]
            ident = find_option(pbu.options, MobileNodeIdentifier)
            assert ident is not None
            lnp = LNPS[int(ident.nai[2])]
            aha = (AssignedHomeAddress(64, lnp[0x10]),) if op[2] == 0 else ()
            pba = BindingAcknowledgement(
                op[2], BAFlags.P, pbu.sequence, pbu.lifetime, aha
            )
            apply(engine.mh_received(LMAP, pba, now))
        elif kind == "bri":
            bri = BindingRevocationIndication(
                op[2],
                2,
                BRFlags.P,
                (MobileNodeIdentifier.from_nai(f"ms{op[1]}@example.net"),),
            )
            apply(engine.mh_received(LMAP, bri, now))

        # the kernel holds exactly the visitors' targets
        expected = {v.attached: v.access for v in engine if v.attached is not None}
        assert attached == expected
        for v in engine:
            assert v.mac in asked
            if v.attached is not None:
                assert v.state is State.REGISTERED and v.profile is not None
                assert v.attached.network_address in v.profile.lnp
            if v.state is State.REFUSED:
                assert v.attached is None and v.pending is None
        # the deadline heap agrees with a scan of every visitor's timers
        times = [t for v in engine if (t := engine._earliest(v)) is not None]
        deadline = engine.next_deadline()
        assert deadline == (min(times) if times else None)
        if deadline is not None:
            apply(engine.tick(max(now, deadline)))
            now = max(now, deadline)
