"""The MPA engine as a DHCPv6 relay (seed 6.3 item 3, Figure 9)."""

from __future__ import annotations

import logging
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from mpa_support import BR, LL1, LMAP, LNP1, MAC1, MAC2, MPA, of, pbus
from pmip6.aaa.base import AddressMode, MsProfile
from pmip6.core.dhcp_relay import interface_id_for_mac
from pmip6.core.mpa import (
    AskAaa,
    Attach,
    Effect,
    LogEvent,
    MpaEngine,
    MpaSettings,
    RelayDhcp,
    SendDhcp,
    SendRa,
    State,
)
from pmip6.wire.dhcp6 import (
    IANA,
    ClientServerMessage,
    IAAddress,
    MessageType,
    Option,
    OptionCode,
    RelayMessage,
    decode_message,
    encode_message,
)
from pmip6.wire.mh import (
    AssignedHomeAddress,
    BAFlags,
    BindingAcknowledgement,
    BindingCacheConfirmation,
    find_option,
)

KEA = IPv6Address("fd00::2")
OTHER_SERVER = IPv6Address("fd00::3")
LL2 = IPv6Address("fe80::ff:fe00:aa02")
ADDR1 = IPv6Address("2001:db8:1:1::100")
DUID1 = b"\x00\x03\x00\x01" + interface_id_for_mac(MAC1)


def profile(
    nai: str = "ms1@example.net",
    lnp: IPv6Network = LNP1,
    server: IPv6Address | None = KEA,
) -> MsProfile:
    return MsProfile(
        nai=nai,
        lmap_address=LMAP,
        lnp=lnp,
        address_mode=AddressMode.DHCPV6,
        dhcp_server=server,
    )


def engine(**kw: Any) -> MpaEngine:
    return MpaEngine(MpaSettings(address=MPA, **kw), initial_sequence=100)


def warnings(effects: list[Effect]) -> list[str]:
    return [e.message for e in of(effects, LogEvent) if e.level == logging.WARNING]


def client(msg_type: int = MessageType.SOLICIT) -> bytes:
    return encode_message(
        ClientServerMessage(
            msg_type, 7, (Option(OptionCode.CLIENTID, DUID1), IANA(1, 0, 0).to_option())
        )
    )


def server_reply(
    msg_type: int = MessageType.REPLY,
    address: IPv6Address = ADDR1,
    mac: str = MAC1,
    peer: IPv6Address = LL1,
) -> tuple[bytes, bytes]:
    """(Relay-Reply, the inner message) as Kea would send them."""
    ia = IANA(1, 10, 16, (IAAddress(address, 20, 30).to_option(),))
    inner = encode_message(
        ClientServerMessage(
            msg_type,
            7,
            (
                Option(OptionCode.SERVERID, b"\x00\x01kea"),
                Option(OptionCode.CLIENTID, DUID1),
                ia.to_option(),
            ),
        )
    )
    relay = encode_message(
        RelayMessage(
            MessageType.RELAY_REPL,
            0,
            LNP1.network_address,
            peer,
            (
                Option(OptionCode.INTERFACE_ID, interface_id_for_mac(mac)),
                Option(OptionCode.RELAY_MSG, inner),
            ),
        )
    )
    return relay, inner


def first_boot(e: MpaEngine, prof: MsProfile | None = None) -> None:
    """Attach, AAA, PBU with BCC, 141 from the LMAP: RA with M set, waiting."""
    e.station_seen(MAC1, BR, 0.0)
    (pbu,) = pbus(e.aaa_result(MAC1, prof or profile(), 0.0))
    assert find_option(pbu.options, BindingCacheConfirmation) is not None
    effects = e.mh_received(
        LMAP,
        BindingAcknowledgement(141, BAFlags.P, pbu.sequence, 0),
        0.1,
    )
    (ra,) = of(effects, SendRa)
    assert ra.managed and not ra.autonomous
    assert e.visitor(MAC1).state is State.AWAITING_LOA  # type: ignore[union-attr]


def test_solicit_is_relayed_to_the_profiles_server_tagged_with_the_lnp() -> None:
    e = engine()
    first_boot(e)

    effects = e.dhcp_from_station(MAC1, BR, LL1, client(), 1.0)

    (relay,) = of(effects, RelayDhcp)
    assert relay.server == KEA
    forward = decode_message(relay.payload)
    assert isinstance(forward, RelayMessage)
    assert forward.link_address in LNP1
    assert forward.peer_address == LL1
    assert forward.relay_message == client()
    assert forward.interface_id == interface_id_for_mac(MAC1)
    assert e.counters["dhcp_relayed"] == 1


def test_settings_server_is_used_when_the_profile_names_none() -> None:
    e = engine(dhcp_server=OTHER_SERVER)
    first_boot(e, profile(server=None))
    (relay,) = of(e.dhcp_from_station(MAC1, BR, LL1, client(), 1.0), RelayDhcp)
    assert relay.server == OTHER_SERVER


def test_no_server_known_drops_with_one_warning() -> None:
    e = engine()
    first_boot(e, profile(server=None))
    effects = e.dhcp_from_station(MAC1, BR, LL1, client(), 1.0)
    assert of(effects, RelayDhcp) == []
    assert len(warnings(effects)) == 1
    assert warnings(e.dhcp_from_station(MAC1, BR, LL1, client(), 2.0)) == []


def test_advertise_is_delivered_and_registers_nothing() -> None:
    e = engine()
    first_boot(e)
    e.dhcp_from_station(MAC1, BR, LL1, client(), 1.0)
    relay, inner = server_reply(MessageType.ADVERTISE)

    effects = e.dhcp_from_server(KEA, relay, 1.01)

    assert of(effects, SendDhcp) == [SendDhcp(BR, MAC1, LL1, inner)]
    assert pbus(effects) == []
    assert e.visitor(MAC1).loa is None  # type: ignore[union-attr]


def test_reply_delivers_and_registers_the_address_with_the_aha() -> None:
    e = engine()
    first_boot(e)
    e.dhcp_from_station(MAC1, BR, LL1, client(MessageType.REQUEST), 1.0)
    relay, inner = server_reply()

    effects = e.dhcp_from_server(KEA, relay, 1.01)

    # the MS gets its Reply first, then the MPA registers the LoA (fig 9)
    assert isinstance(effects[0], SendDhcp) and effects[0].payload == inner
    (pbu,) = pbus(effects)
    assert find_option(pbu.options, AssignedHomeAddress) == (
        AssignedHomeAddress(64, ADDR1)
    )
    accepted = e.mh_received(
        LMAP,
        BindingAcknowledgement(
            0, BAFlags.P, pbu.sequence, pbu.lifetime, (AssignedHomeAddress(64, ADDR1),)
        ),
        1.02,
    )
    assert of(accepted, Attach) == [Attach(LNP1, BR, LMAP)]
    v = e.visitor(MAC1)
    assert v is not None and v.state is State.REGISTERED and v.loa == ADDR1


def test_renewal_reply_at_a_new_mpa_keeps_the_registered_loa() -> None:
    # after a roam the new MPA learnt the LoA from the LMAP (BCC answered with
    # the AHA); the MS's Renew goes through it and changes nothing
    e = engine()
    e.station_seen(MAC1, BR, 0.0)
    (pbu,) = pbus(e.aaa_result(MAC1, profile(), 0.0))
    e.mh_received(
        LMAP,
        BindingAcknowledgement(
            0, BAFlags.P, pbu.sequence, pbu.lifetime, (AssignedHomeAddress(64, ADDR1),)
        ),
        0.1,
    )
    (relay,) = of(
        e.dhcp_from_station(MAC1, BR, LL1, client(MessageType.RENEW), 5), RelayDhcp
    )
    assert relay.server == KEA

    effects = e.dhcp_from_server(KEA, server_reply()[0], 5.01)

    assert len(of(effects, SendDhcp)) == 1
    assert pbus(effects) == []
    assert e.visitor(MAC1).loa == ADDR1  # type: ignore[union-attr]


def test_message_during_aaa_is_held_and_relayed_after() -> None:
    e = engine()
    effects = e.dhcp_from_station(MAC1, BR, LL1, client(), 0.0)
    assert of(effects, AskAaa) == [AskAaa(MAC1)]
    assert of(effects, RelayDhcp) == []

    effects = e.aaa_result(MAC1, profile(), 0.05)

    assert len(pbus(effects)) == 1
    (relay,) = of(effects, RelayDhcp)
    forward = decode_message(relay.payload)
    assert isinstance(forward, RelayMessage)
    assert forward.relay_message == client()
    assert forward.link_address in LNP1


def test_unanswered_relay_warns_once_and_a_reply_rearms_it() -> None:
    e = engine(dhcp_answer_timeout=5.0)
    first_boot(e)
    e.dhcp_from_station(MAC1, BR, LL1, client(), 1.0)
    e.dhcp_from_station(MAC1, BR, LL1, client(), 2.0)  # retransmission
    deadline = e.next_deadline()
    assert deadline is not None and deadline <= 6.0

    assert warnings(e.tick(5.9)) == []
    (text,) = warnings(e.tick(6.0))
    assert "DHCPv6 server fd00::2 did not answer within 5 s" in text
    e.dhcp_from_station(MAC1, BR, LL1, client(), 7.0)
    assert warnings(e.tick(12.0)) == []  # once per outage, not per retry

    e.dhcp_from_station(MAC1, BR, LL1, client(), 13.0)
    e.dhcp_from_server(KEA, server_reply(MessageType.ADVERTISE)[0], 13.1)
    assert warnings(e.tick(20.0)) == []
    e.dhcp_from_station(MAC1, BR, LL1, client(), 21.0)
    assert len(warnings(e.tick(26.0))) == 1  # a new outage is reported again


def test_reply_for_a_station_no_longer_here_is_dropped() -> None:
    e = engine()
    first_boot(e)
    relay, _ = server_reply(mac=MAC2, peer=LL2)
    effects = e.dhcp_from_server(KEA, relay, 1.0)
    assert of(effects, SendDhcp) == [] and warnings(effects) == []


def test_reply_from_another_source_is_refused() -> None:
    e = engine()
    first_boot(e)
    effects = e.dhcp_from_server(OTHER_SERVER, server_reply()[0], 1.0)
    assert of(effects, SendDhcp) == [] and pbus(effects) == []
    assert len(warnings(effects)) == 1


def test_address_outside_the_lnp_is_delivered_but_not_registered() -> None:
    e = engine()
    first_boot(e)
    relay, _ = server_reply(address=IPv6Address("2001:db8:1:2::100"))
    effects = e.dhcp_from_server(KEA, relay, 1.0)
    assert len(of(effects, SendDhcp)) == 1
    assert pbus(effects) == []
    assert "outside the LNP" in warnings(effects)[0]


def test_malformed_from_server_and_station_warn_without_crashing() -> None:
    e = engine()
    first_boot(e)
    assert len(warnings(e.dhcp_from_server(KEA, b"\x0d\x00", 1.0))) == 1
    # once per server: a broken server does not flood the log
    assert warnings(e.dhcp_from_server(KEA, b"\x0d\x00", 1.1)) == []
    assert e.counters["dhcp_malformed"] == 2
    effects = e.dhcp_from_station(MAC1, BR, LL1, server_reply()[1], 1.0)
    assert of(effects, RelayDhcp) == []
    assert "not relayed" in warnings(effects)[0]


def test_dhcpv6_from_an_unknown_station_starts_authentication() -> None:
    e = engine()
    effects = e.dhcp_from_station(MAC2, BR, LL2, client(), 0.0)
    assert of(effects, AskAaa) == [AskAaa(MAC2)]
    assert e.visitor(MAC2).link_local == LL2  # type: ignore[union-attr]
