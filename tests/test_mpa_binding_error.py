"""Unknown MH Types get a rate-limited Binding Error (RFC 6275 9.2, 9.3.3)."""

from __future__ import annotations

import logging
from ipaddress import IPv6Address

from pmip6.core.mherror import (
    MIN_INTERVAL,
    BindingErrorLimiter,
    BindingErrorStatus,
    unrecognized_mh_type,
)
from pmip6.core.mpa import LogEvent, MpaEngine, MpaSettings, SendMh
from pmip6.wire.mh import BindingError, Heartbeat, UnknownMessage, decode_mh, encode_mh
from pmip6.wire.profile import DRAFT00

MPA = IPv6Address("fd00::11")
LMAP = IPv6Address("fd00::1")
OTHER = IPv6Address("fd00::2")


def engine() -> MpaEngine:
    return MpaEngine(MpaSettings(address=MPA), initial_sequence=100)


def sent(effects: list[object]) -> list[SendMh]:
    return [e for e in effects if isinstance(e, SendMh)]


def test_unknown_mh_type_is_answered_with_status_2() -> None:
    e = engine()
    effects = e.mh_received(LMAP, UnknownMessage(42, bytes(10)), 5.0)
    [answer] = sent(effects)
    assert answer.dst == LMAP
    assert answer.message == BindingError(
        status=BindingErrorStatus.UNRECOGNIZED_MH_TYPE,
        home_address=IPv6Address("::"),
    )
    assert answer.message.status == 2
    # it goes on the wire as MH Type 7 with Status 2
    octets = encode_mh(answer.message, DRAFT00, src=MPA, dst=LMAP)
    assert octets[2] == 7 and octets[6] == 2
    assert decode_mh(octets, DRAFT00, MPA, LMAP) == answer.message
    assert e.counters["binding_errors_sent"] == 1


def test_binding_errors_are_rate_limited_per_peer() -> None:
    e = engine()
    unknown = UnknownMessage(42, bytes(10))
    assert sent(e.mh_received(LMAP, unknown, 10.0))
    # within the interval: dropped silently, the other peer still answered
    assert not sent(e.mh_received(LMAP, unknown, 10.0 + MIN_INTERVAL / 2))
    assert sent(e.mh_received(OTHER, unknown, 10.0 + MIN_INTERVAL / 2))
    assert sent(e.mh_received(LMAP, unknown, 10.0 + MIN_INTERVAL))
    assert e.counters["mh_unknown_type"] == 4
    assert e.counters["binding_errors_sent"] == 3


def test_unknown_type_warns_once_per_peer() -> None:
    e = engine()
    levels = []
    for i in range(3):
        effects = e.mh_received(LMAP, UnknownMessage(42, bytes(10)), 10.0 * i)
        levels += [x.level for x in effects if isinstance(x, LogEvent)]
    assert levels == [logging.WARNING, logging.DEBUG, logging.DEBUG]


def test_no_binding_error_to_a_non_unicast_source() -> None:
    e = engine()
    for src in (IPv6Address("ff02::1"), IPv6Address("::")):
        assert not sent(e.mh_received(src, UnknownMessage(42, bytes(10)), 0.0))


def test_known_types_without_meaning_at_an_mpa_get_no_binding_error() -> None:
    e = engine()
    assert not sent(e.mh_received(LMAP, Heartbeat(1), 0.0))


def test_limiter_forgets_the_oldest_peer_when_full() -> None:
    limiter = BindingErrorLimiter(interval=1.0, max_peers=2)
    a, b, c = (IPv6Address(f"fd00::{i}") for i in (1, 2, 3))
    assert limiter.allow(a, 0.0) and limiter.allow(b, 0.0) and limiter.allow(c, 0.0)
    # a was forgotten to make room for c, b was not
    assert limiter.allow(a, 0.1)
    assert not limiter.allow(c, 0.1)
    assert unrecognized_mh_type(c, limiter, 0.2) is None
