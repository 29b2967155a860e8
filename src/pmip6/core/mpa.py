"""The Mobility Proxy Agent engine: the visitor list and its registrations.

No sockets and no clock. The daemon feeds what it sees on the access link
(a station appears or goes, a Router Solicitation, a DAD Neighbor Solicitation,
any other frame with its source address), what AAA answered, the Mobility
Header messages from LMAPs, and timer ticks, each with ``now``. Every input
returns a list of effects for the daemon to carry out, in order; after each
input ``next_deadline()`` says when to call ``tick`` next.

Seed sections: 6.1 (network access authentication, then a PBU with the AHA
option when the LoA is known or the Binding Cache Confirmation option when it
is not), 6.2 (unicast RAs with the LNP and L=0 from the virtual LMAP address),
6.3 (the LoA from the MS's DAD, or from its packets when AAA allows a manually
configured address), 6.4 (Binding Revocation), 7.1 (the visitor list), 7.3
(the tunnel once the PBA succeeds).

Probing for the LoA of a returning MS. Seed 6.3 has the MPA learn a SLAAC
LoA from the MS's DAD (or "IP packets received from the MS"), and 6.1 from the
LMAP's answer to the Binding Cache Confirmation. Neither covers a host that
left long enough to be de-registered (the LMAP deleted its BCE, so the BCC gets
141) and then comes back to a link it takes for the same one: it keeps its
address, so it sends no DAD and usually no RS (a Linux host sends only MLD
reports), and would wait forever. So when a registration ends in AWAITING_LOA
while the MS is present, the MPA asks the MS whether it holds the addresses it
most likely holds: the profile's interface identifier (RFC 6572
PMIP6-Home-Interface-ID) and the modified EUI-64 of its MAC (RFC 4291
appendix A), each inside the LNP: one unicast NS per candidate to the MS's
MAC, as neighbor unreachability detection does (RFC 4861 7.3.1). The NA that
answers is an IP packet from the MS naming the address, the seed's second
source, elicited rather than waited for; unlike any packet's source (taken only
for manually configured addresses, since a SLAAC host's temporary addresses
ride along), it speaks for exactly the address asked about. Candidates whose
solicited-node group
(RFC 4291 2.7.1) the MS reported in MLD go first. A bounded number of rounds,
then the MPA keeps waiting for a DAD as before; a probed LoA the LMAP refuses
is never probed again for that MS.
"""

from __future__ import annotations

import enum
import heapq
import logging
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from pmip6.aaa.base import AddressMode, MsProfile
from pmip6.core.dhcp_relay import (
    interface_id_for_mac,
    mac_from_interface_id,
    relay_forward,
    relay_reply,
)
from pmip6.core.mherror import MAX_PEERS, BindingErrorLimiter, unrecognized_mh_type
from pmip6.core.seqno import seq_add
from pmip6.wire.errors import Malformed
from pmip6.wire.mh import (
    LIFETIME_UNIT,
    AccessTechnologyType,
    AssignedHomeAddress,
    BindingAcknowledgement,
    BindingCacheConfirmation,
    BindingRevocationAcknowledgement,
    BindingRevocationIndication,
    BindingUpdate,
    BUFlags,
    HandoffIndicator,
    HomeNetworkPrefix,
    Message,
    MobileNodeIdentifier,
    Option,
    RevocationStatus,
    Status,
    UnknownMessage,
    find_option,
)
from pmip6.wire.nd import (
    ND_HOP_LIMIT,
    FrameKind,
    LinkFrame,
    NAFlags,
    modified_eui64,
    solicited_node,
)
from pmip6.wire.profile import DRAFT00, Profile

ALL_NODES = IPv6Address("ff02::1")
MAX_LIFETIME_UNITS = 0xFFFF
# RFC 6275 11.8: the retransmission timeout starts at INITIAL_BINDACK_TIMEOUT
# and doubles up to MAX_BINDACK_TIMEOUT, 32 s (RFC 6275 12)
MAX_BINDACK_TIMEOUT = 32.0
# RFC 5213 8.4 and 8.5: handoff "unknown", access technology IEEE 802.3
HANDOFF_UNKNOWN = 4
ATT_IEEE_802_3 = 3
LINK_LOCAL = IPv6Network("fe80::/10")
# RFC 4861 10: the answer to an RS waits a random time up to this (6.2.6)
MAX_RA_DELAY_TIME = 0.5


class State(enum.Enum):
    """Where a visitor is in its attachment (seed 6.1, 6.3, 6.4)."""

    AUTHENTICATING = "authenticating"  # waiting for AAA
    REFUSED = "refused"  # AAA refused it: no RA, no forwarding
    REGISTERING = "registering"  # PBU outstanding, nothing forwarded yet
    AWAITING_LOA = "awaiting-loa"  # LMAP had no BCE (141): RA sent, wait for DAD
    REGISTERED = "registered"  # PBA accepted, tunnel up (refreshes happen here)
    FAILED = "failed"  # LMAP refused or never answered; retried later
    DEREGISTERING = "deregistering"  # lifetime-0 PBU outstanding, tunnel down


# every allowed transition, listed once; _move() refuses any other
TRANSITIONS: frozenset[tuple[State, State]] = frozenset(
    {
        (State.AUTHENTICATING, State.REFUSED),
        (State.AUTHENTICATING, State.REGISTERING),
        (State.REGISTERING, State.REGISTERED),
        (State.REGISTERING, State.AWAITING_LOA),
        (State.REGISTERING, State.FAILED),
        (State.REGISTERING, State.DEREGISTERING),
        (State.AWAITING_LOA, State.REGISTERING),
        (State.REGISTERED, State.FAILED),
        (State.REGISTERED, State.DEREGISTERING),
        (State.REGISTERED, State.AWAITING_LOA),  # refresh answered 141
        (State.FAILED, State.REGISTERING),
    }
)


# --- validity of received ND messages -------------------------------------------


def nd_invalid(frame: LinkFrame) -> str | None:
    """Why an RS, NS or NA must be silently discarded, or None if it is valid.

    The checks of RFC 4861 6.1.1 (RS) and 7.1.1 (NS, NA) that the decoder
    leaves to its caller (lengths, checksum and option lengths are checked
    when decoding). A Hop Limit other than 255 means the message crossed a
    router and did not come from the link. Other frames are not judged here.
    """
    kind = frame.kind
    if kind not in (
        FrameKind.ROUTER_SOLICITATION,
        FrameKind.NEIGHBOR_SOLICITATION,
        FrameKind.NEIGHBOR_ADVERTISEMENT,
    ):
        return None
    if frame.hop_limit != ND_HOP_LIMIT:
        return f"Hop Limit {frame.hop_limit}, not {ND_HOP_LIMIT}"
    if frame.icmp_code != 0:
        return f"ICMP Code {frame.icmp_code}, not 0"
    unspecified = frame.src_ip.is_unspecified
    if kind is FrameKind.ROUTER_SOLICITATION:
        if unspecified and frame.source_lladdr is not None:
            return "source link-layer address option from the unspecified address"
        return None
    target = frame.target
    if target is None or target.is_multicast:
        return f"Target Address {target} is multicast"
    if kind is FrameKind.NEIGHBOR_SOLICITATION:
        if unspecified and frame.dst_ip != solicited_node(target):
            return (
                f"DAD probe to {frame.dst_ip}, not the solicited-node "
                f"address of {target}"
            )
        if unspecified and frame.source_lladdr is not None:
            return "source link-layer address option from the unspecified address"
        return None
    if frame.dst_ip.is_multicast and frame.na_flags & NAFlags.S:
        return "Solicited flag set on a multicast advertisement"
    return None


# --- effects ------------------------------------------------------------------


@dataclass(frozen=True)
class AskAaa:
    """Start network access authentication for ``mac`` (seed 6.1 steps 2-4)."""

    mac: str
    nai: str | None = None


@dataclass(frozen=True)
class SendMh:
    """Send a Mobility Header message to ``dst`` from the MPA's own address."""

    dst: IPv6Address
    message: Message


@dataclass(frozen=True)
class SendRa:
    """A Router Advertisement unicast to one MS (seed 6.2, 8.2).

    Sent from the virtual LMAP link-local address and MAC, to ``mac``; ``dst``
    is the MS's link-local address when known, all-nodes otherwise.
    """

    access: str
    mac: str
    dst: IPv6Address
    prefix: IPv6Network
    autonomous: bool
    managed: bool
    other: bool
    router_lifetime: int
    mtu: int | None = None


@dataclass(frozen=True)
class SendNa:
    """Defend ``target`` (another visitor's LoA) against a DAD probe from ``mac``."""

    access: str
    mac: str
    dst: IPv6Address
    target: IPv6Address


@dataclass(frozen=True)
class SendNs:
    """A unicast reachability probe of ``target`` at ``mac``."""

    access: str
    mac: str
    target: IPv6Address


@dataclass(frozen=True)
class Attach:
    """Forward ``target`` on ``access`` and tunnel it to ``lmap`` (seed 7.3)."""

    target: IPv6Network
    access: str
    lmap: IPv6Address


@dataclass(frozen=True)
class Detach:
    target: IPv6Network


@dataclass(frozen=True)
class RelayDhcp:
    """Send a Relay-Forward to a DHCPv6 server (seed 6.3 item 3, fig 9 step 2).

    From the MPA's own address, UDP port 547 to port 547 (RFC 8415 19.1).
    """

    server: IPv6Address
    payload: bytes


@dataclass(frozen=True)
class SendDhcp:
    """Deliver a server's DHCPv6 message to one MS (fig 9 step 4).

    From the virtual link-local address and MAC, UDP 547 to 546 at ``dst``.
    """

    access: str
    mac: str
    dst: IPv6Address
    payload: bytes


@dataclass(frozen=True)
class LogEvent:
    level: int
    message: str


Effect = (
    AskAaa
    | SendMh
    | SendRa
    | SendNa
    | SendNs
    | Attach
    | Detach
    | RelayDhcp
    | SendDhcp
    | LogEvent
)


# --- settings and visitor -------------------------------------------------------


@dataclass(frozen=True)
class MpaSettings:
    address: IPv6Address  # own transport address: the tunnel source (seed 7.1)
    lifetime: int = 300  # seconds asked for in PBUs
    pbu_initial_timeout: float = 1.0
    pbu_max_timeout: float = MAX_BINDACK_TIMEOUT
    refresh_ratio: float = 0.8  # refresh at this share of the granted lifetime
    absent_timeout: float = 10.0  # unanswered probes for this long: the MS left
    # the bridge forgot the MS: wait this long for a revocation (it roamed and
    # the new MPA registered it) before de-registering, so a de-registration
    # racing the new MPA's PBU cannot delete the binding the new MPA needs
    leave_delay: float = 3.0
    router_lifetime: int = 1800
    ra_mtu: int | None = None
    # RFC 4861 6.2.6: an RA answering an RS waits uniformly 0..this, seconds
    ra_delay_max: float = MAX_RA_DELAY_TIME
    retry_after: float = 30.0  # wait after a refusal by the LMAP or a give-up
    aaa_retry: float = 2.0  # wait after AAA could not answer
    # DHCPv6 server for stations whose profile names none (seed 6.3 item 3)
    dhcp_server: IPv6Address | None = None
    dhcp_answer_timeout: float = 5.0  # a relayed message unanswered: warn
    # probing a returning MS for the LoA it kept (see the module docstring):
    # rounds of unicast NSs this far apart, then wait for a DAD NS as before
    loa_probe_interval: float = 1.0
    loa_probe_rounds: int = 3
    profile: Profile = DRAFT00


@dataclass
class _Transaction:
    """One outstanding PBU and its retransmissions (RFC 6275 11.8)."""

    lifetime: int  # seconds asked; 0 de-registers
    sequences: list[int]
    timeout: float
    deadline: float
    sent_135_retry: bool = False


# Visitor fields that hold deadlines: assigning one queues the visitor for the
# engine's deadline heap (see MpaEngine._rearm)
_TIMER_FIELDS = frozenset(
    {
        "pending",
        "refresh_at",
        "retry_at",
        "next_probe",
        "expires",
        "leaving_at",
        "dhcp_deadline",
        "loa_probe_at",
        "ra_at",
    }
)

# groups remembered per MS from its MLD reports (a host joins a handful)
MAX_MLD_GROUPS = 64


@dataclass
class Visitor:
    """One visitor list entry (seed 7.1)."""

    mac: str
    access: str
    state: State
    since: float
    nai: str | None = None
    profile: MsProfile | None = None
    loa: IPv6Address | None = None
    link_local: IPv6Address | None = None
    lifetime: int = 0  # granted by the LMAP, seconds
    expires: float | None = None
    refresh_at: float | None = None
    retry_at: float | None = None
    leaving_at: float | None = None
    attached: IPv6Network | None = None
    pending: _Transaction | None = None
    rs_pending: bool = False
    # the delayed answer to an RS (RFC 4861 6.2.6): one per station at a time
    ra_at: float | None = None
    candidates: list[IPv6Address] = field(default_factory=list)
    static_candidates: list[IPv6Address] = field(default_factory=list)
    last_heard: float = 0.0
    next_probe: float | None = None
    warned: set[str] = field(default_factory=set)
    # DHCPv6 relay: a message that came while AAA was busy (relayed once the
    # profile names the LNP), and when an unanswered relayed message times out
    dhcp_held: tuple[IPv6Address, bytes] | None = None
    dhcp_deadline: float | None = None
    # LoA probing (module docstring): the candidates asked about, rounds sent,
    # the next round (or the give-up); whether the LoA came from a probe; the
    # probed LoAs the LMAP refused; the groups the MS reported in MLD
    loa_probes: list[IPv6Address] = field(default_factory=list)
    loa_probe_rounds: int = 0
    loa_probe_at: float | None = None
    loa_probed: bool = False
    loa_refused: set[IPv6Address] = field(default_factory=set)
    mld_groups: set[IPv6Address] = field(default_factory=set)
    # the engine's set of visitors whose deadlines changed (by MAC)
    dirty: set[str] | None = field(default=None, repr=False, compare=False)

    def __setattr__(self, name: str, value: object) -> None:
        object.__setattr__(self, name, value)
        if name in _TIMER_FIELDS:
            dirty = self.__dict__.get("dirty")
            if dirty is not None:
                dirty.add(self.mac)

    @property
    def lmap(self) -> IPv6Address | None:
        return self.profile.lmap_address if self.profile else None

    @property
    def lnp(self) -> IPv6Network | None:
        return self.profile.lnp if self.profile else None

    def label(self) -> str:
        return f"{self.nai or '?'} {self.mac}"


class MpaEngine:
    """The visitor list of one MPA and the rules that drive it."""

    def __init__(
        self,
        settings: MpaSettings,
        initial_sequence: int = 0,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        # draws the RS answer delays (RFC 4861 6.2.6); tests pass a seeded one
        self._rng = rng if rng is not None else random.Random()
        self._visitors: dict[str, Visitor] = {}
        # indexes to MAC, checked against the entry on use (so a stale one is
        # harmless): a PBA by sequence, a BRI by NAI, a DAD target by LoA
        self._by_sequence: dict[int, str] = {}
        self._by_nai_index: dict[str, str] = {}
        self._by_loa: dict[IPv6Address, str] = {}
        # deadlines as a heap of (time, MAC), entries checked against the
        # visitor when they surface; visitors whose timers changed are in
        # _dirty until _rearm pushes their new earliest deadline
        self._wakeups: list[tuple[float, str]] = []
        self._dirty: set[str] = set()
        self._sequence = initial_sequence % 0x10000
        # DHCPv6 servers already warned about for malformed replies (once each)
        self._dhcp_warned: set[IPv6Address] = set()
        # Binding Errors for unknown MH Types, at most one a second per peer
        self._binding_errors = BindingErrorLimiter()
        self._unknown_type_warned: set[IPv6Address] = set()
        self.counters: dict[str, int] = {
            "pbu_sent": 0,
            "pbu_retransmitted": 0,
            "pba_received": 0,
            "pba_ignored": 0,
            "ra_sent": 0,
            "ra_delayed": 0,
            "bri_received": 0,
            "give_ups": 0,
            "dhcp_relayed": 0,
            "dhcp_replies": 0,
            "dhcp_malformed": 0,
            "loa_probes": 0,
            "loa_probe_answers": 0,
            "mh_unknown_type": 0,
            "binding_errors_sent": 0,
        }

    # --- queries -----------------------------------------------------------

    def visitor(self, mac: str) -> Visitor | None:
        return self._visitors.get(mac.lower())

    def station_for_sequence(self, sequence: int) -> str | None:
        """The MAC of the station a PBU with ``sequence`` was sent for."""
        return self._by_sequence.get(sequence)

    def __iter__(self) -> Iterator[Visitor]:
        return iter(list(self._visitors.values()))

    def __len__(self) -> int:
        return len(self._visitors)

    def visitors(self, now: float) -> list[dict[str, Any]]:
        """The visitor list as the ``visitors`` control command shows it."""
        rows = []
        for v in self._visitors.values():
            rows.append(
                {
                    "nai": v.nai,
                    "mac": v.mac,
                    "loa": str(v.loa) if v.loa else None,
                    "lnp": str(v.lnp) if v.lnp else None,
                    "lmap": str(v.lmap) if v.lmap else None,
                    "state": v.state.value,
                    "lifetime": v.lifetime,
                    "expires_in": (
                        round(v.expires - now, 1) if v.expires is not None else None
                    ),
                    "access": v.access,
                    "tunnel": (
                        f"{self.settings.address} <-> {v.lmap}" if v.attached else None
                    ),
                    "dhcp_server": (
                        str(v.profile.dhcp_server)
                        if v.profile and v.profile.dhcp_server
                        else None
                    ),
                }
            )
        return rows

    def next_deadline(self) -> float | None:
        """The earliest time ``tick`` has something to do, or None."""
        self._rearm()
        heap = self._wakeups
        while heap:
            at, mac = heap[0]
            v = self._visitors.get(mac)
            if v is not None and self._earliest(v) == at:
                return at
            heapq.heappop(heap)  # stale: the visitor left or its timers moved
        return None

    def _earliest(self, v: Visitor) -> float | None:
        times = [
            t
            for t in (
                v.pending.deadline if v.pending is not None else None,
                v.refresh_at,
                v.retry_at,
                v.next_probe,
                v.expires,
                v.leaving_at,
                v.dhcp_deadline,
                v.loa_probe_at,
                v.ra_at,
            )
            if t is not None
        ]
        if v.next_probe is not None:
            times.append(v.last_heard + self.settings.absent_timeout)
        return min(times) if times else None

    def _rearm(self) -> None:
        for mac in self._dirty:
            v = self._visitors.get(mac)
            at = self._earliest(v) if v is not None else None
            if at is not None:
                heapq.heappush(self._wakeups, (at, mac))
        self._dirty.clear()

    # --- inputs from the access link ------------------------------------------

    def station_seen(self, mac: str, access: str, now: float) -> list[Effect]:
        """The bridge learnt ``mac`` (or 802.1X let it in): authenticate it."""
        effects: list[Effect] = []
        self._heard(mac, access, now, effects)
        return effects

    def station_gone(self, mac: str, now: float) -> list[Effect]:
        """The station left the access link (FDB entry or port gone)."""
        effects: list[Effect] = []
        v = self._visitors.get(mac.lower())
        if v is None:
            return effects
        if v.state in (State.REGISTERED, State.REGISTERING):
            # seed 6.4: after a roam the LMAP revokes this entry; de-register
            # only if no revocation came (the MS really left the domain)
            if v.leaving_at is None:
                v.leaving_at = now + self.settings.leave_delay
            v.next_probe = None
            return effects
        self._leave(v, now, "left the access link", effects)
        return effects

    def router_solicitation(
        self, mac: str, access: str, src: IPv6Address, now: float
    ) -> list[Effect]:
        """An RS from ``mac``: answer once the MS is registered (seed 6.2, 8.2)."""
        effects: list[Effect] = []
        v = self._heard(mac, access, now, effects, src)
        if v is None:
            return effects
        if v.state in (State.REGISTERED, State.AWAITING_LOA):
            self._answer_rs(v, now, effects)
        elif v.state in (State.AUTHENTICATING, State.REGISTERING):
            v.rs_pending = True
        return effects

    def _answer_rs(self, v: Visitor, now: float, effects: list[Effect]) -> None:
        """RFC 4861 6.2.6: the RA answering an RS waits a random 0..max delay.

        One answer per station is pending at a time: further RSs within the
        delay are answered by the same RA.
        """
        if v.ra_at is not None:
            return
        delay = self._rng.uniform(0.0, self.settings.ra_delay_max)
        if delay <= 0.0:
            self._send_ra(v, effects)
            return
        self.counters["ra_delayed"] += 1
        v.ra_at = now + delay

    def dad_ns(
        self, mac: str, access: str, target: IPv6Address, now: float
    ) -> list[Effect]:
        """A DAD NS (source ::) for ``target``: maybe the MS's LoA (seed 6.3, fig 8)."""
        effects: list[Effect] = []
        v = self._heard(mac, access, now, effects)
        if v is None or target in LINK_LOCAL:
            return effects

        # another visitor's LoA: defend it, the MS must not take it (seed 6.2)
        owner = self._owner_of(target)
        if owner is not None and owner is not v:
            effects.append(SendNa(v.access, v.mac, ALL_NODES, target))
            self._warn_once(
                effects, v, "dup", f"defended {target} (LoA of {owner.label()})"
            )
            return effects
        self._learn_loa(v, target, now, effects)
        return effects

    def address_assigned(
        self, mac: str, access: str, loa: IPv6Address, now: float
    ) -> list[Effect]:
        """The LoA learnt otherwise (a DHCPv6 Relay-Reply, seed 6.3 fig 9)."""
        effects: list[Effect] = []
        v = self._heard(mac, access, now, effects)
        if v is not None:
            self._learn_loa(v, loa, now, effects)
        return effects

    def packet_from(
        self, mac: str, access: str, src: IPv6Address, now: float
    ) -> list[Effect]:
        """Any other frame from ``mac`` (MLD report, NA, DHCPv6, ...).

        It starts authentication of an unknown station: a roaming Linux host
        sends only MLD reports. Its source address names the LoA only when the
        profile allows a manually configured address (seed 6.3).
        """
        effects: list[Effect] = []
        v = self._heard(mac, access, now, effects, src)
        if v is None or src.is_unspecified or src in LINK_LOCAL or src.is_multicast:
            return effects
        if v.profile is None:
            if v.state is State.AUTHENTICATING and src not in v.static_candidates:
                v.static_candidates.append(src)
            return effects
        if v.profile.address_mode is AddressMode.STATIC and src in v.profile.lnp:
            owner = self._owner_of(src)
            if owner is None or owner is v:
                self._learn_loa(v, src, now, effects)
        return effects

    def neighbor_advertisement(
        self, mac: str, access: str, src: IPv6Address, target: IPv6Address, now: float
    ) -> list[Effect]:
        """An NA from ``mac`` for ``target``: maybe the answer to a LoA probe.

        Any NA is a sign of life like other packets; one for an address the
        MPA is probing for (module docstring) names the LoA, which is then
        registered with the AHA option exactly as after a DAD NS (seed 6.3).
        """
        effects = self.packet_from(mac, access, src, now)
        v = self._visitors.get(mac.lower())
        if (
            v is None
            or v.state is not State.AWAITING_LOA
            or v.loa is not None
            or target not in v.loa_probes
        ):
            return effects
        owner = self._owner_of(target)
        if owner is not None and owner is not v:
            return effects
        self.counters["loa_probe_answers"] += 1
        self._log(
            effects,
            logging.DEBUG,
            f"{v.label()}: NA for {target} answers the LoA probe",
        )
        self._learn_loa(v, target, now, effects, probed=True)
        return effects

    def mld_report(
        self,
        mac: str,
        access: str,
        src: IPv6Address,
        joined: Sequence[IPv6Address],
        left: Sequence[IPv6Address],
        now: float,
    ) -> list[Effect]:
        """An MLD report from ``mac``: a sign of life, and the groups it is in.

        A host is in the solicited-node group of each of its addresses (RFC
        4291 2.7.1, RFC 4862 5.4.2), so the groups tell which LoA candidate it
        most likely holds.
        """
        effects = self.packet_from(mac, access, src, now)
        v = self._visitors.get(mac.lower())
        if v is None:
            return effects
        v.mld_groups.difference_update(left)
        for group in joined:
            if len(v.mld_groups) >= MAX_MLD_GROUPS:
                break
            v.mld_groups.add(group)
        return effects

    def dhcp_from_station(
        self, mac: str, access: str, src: IPv6Address, payload: bytes, now: float
    ) -> list[Effect]:
        """A DHCPv6 message (UDP payload) from ``mac``: relay it (seed fig 9 step 1).

        The Relay-Forward's link-address lies in the MS's LNP, so the server
        picks that LNP's pool wherever the MS is (seed 6.3 item 3).
        """
        effects: list[Effect] = []
        v = self._heard(mac, access, now, effects, src)
        if v is None:
            return effects
        if v.profile is None:
            if v.state is State.AUTHENTICATING:
                # keep the latest; relayed as soon as AAA names the LNP
                v.dhcp_held = (src, payload)
            return effects
        self._relay_dhcp(v, src, payload, now, effects)
        return effects

    def dhcp_from_server(
        self, src: IPv6Address, payload: bytes, now: float
    ) -> list[Effect]:
        """A Relay-Reply from a DHCPv6 server (seed fig 9 steps 3-4).

        The inner message goes to the MS; an address the Reply grants is the
        MS's LoA, registered with the Assigned Home Address (steps 5-7).
        """
        effects: list[Effect] = []
        try:
            reply = relay_reply(payload)
        except Malformed as exc:
            self.counters["dhcp_malformed"] += 1
            level = logging.DEBUG if src in self._dhcp_warned else logging.WARNING
            self._dhcp_warned.add(src)
            self._log(effects, level, f"DHCPv6 server {src}: {exc}")
            return effects
        mac = mac_from_interface_id(reply.interface_id or b"")
        v = self._visitors.get(mac) if mac else None
        if v is None or v.profile is None:
            self._log(
                effects,
                logging.DEBUG,
                f"DHCPv6 reply from {src} for {mac or '?'}, no longer here: dropped",
            )
            return effects
        server = v.profile.dhcp_server or self.settings.dhcp_server
        if src != server:
            self._warn_once(
                effects,
                v,
                "dhcp-src",
                f"DHCPv6 reply from {src}, not {server}: dropped",
            )
            return effects

        self.counters["dhcp_replies"] += 1
        v.dhcp_deadline = None
        v.warned.discard("dhcp-timeout")
        effects.append(SendDhcp(v.access, v.mac, reply.peer_address, reply.message))
        for granted in reply.assigned_addresses:
            address = granted.address
            owner = self._owner_of(address)
            if address not in v.profile.lnp or (owner is not None and owner is not v):
                self._warn_once(
                    effects,
                    v,
                    "dhcp-addr",
                    f"DHCPv6 server {src} assigned {address}, outside the LNP "
                    "or another visitor's LoA: not registered",
                )
                continue
            self._learn_loa(v, address, now, effects)
            break
        return effects

    # --- inputs from AAA and the LMAP ------------------------------------------

    def aaa_result(
        self, mac: str, profile: MsProfile | None, now: float
    ) -> list[Effect]:
        """AAA answered: a profile, or None for a refused station."""
        effects: list[Effect] = []
        v = self._visitors.get(mac.lower())
        if v is None or v.state is not State.AUTHENTICATING:
            return effects
        v.retry_at = None
        if profile is None:
            self._move(v, State.REFUSED, now)
            self._warn_once(
                effects, v, "refused", "AAA refused the station: no service"
            )
            return effects

        v.profile = profile
        v.nai = profile.nai
        self._by_nai_index[profile.nai] = v.mac
        # the LoA: fixed by AAA, else learnt from DAD (or packets, when allowed)
        if profile.loa is not None:
            self._set_loa(v, profile.loa)
        else:
            allowed = list(v.candidates)
            if profile.address_mode is AddressMode.STATIC:
                allowed += v.static_candidates
            for addr in allowed:
                owner = self._owner_of(addr)
                if addr in profile.lnp and (owner is None or owner is v):
                    self._set_loa(v, addr)
                    break
        v.candidates.clear()
        v.static_candidates.clear()
        self._log(effects, logging.DEBUG, f"{v.label()}: authenticated, LMAP {v.lmap}")
        self._register(v, now, effects)
        if v.dhcp_held is not None:
            held_src, held = v.dhcp_held
            v.dhcp_held = None
            self._relay_dhcp(v, held_src, held, now, effects)
        return effects

    def aaa_error(self, mac: str, reason: str, now: float) -> list[Effect]:
        """AAA could not answer: ask again after ``aaa_retry``."""
        effects: list[Effect] = []
        v = self._visitors.get(mac.lower())
        if v is None or v.state is not State.AUTHENTICATING:
            return effects
        self._warn_once(effects, v, "aaa", f"AAA did not answer ({reason}); will retry")
        v.retry_at = now + self.settings.aaa_retry
        return effects

    def mh_received(
        self, src: IPv6Address, message: Message, now: float
    ) -> list[Effect]:
        """A Mobility Header message from ``src``: PBA or BRI.

        An MH Type the codec does not know is answered with a Binding Error
        (RFC 6275 9.2); other known types have no meaning at an MPA and are
        ignored.
        """
        effects: list[Effect] = []
        if isinstance(message, BindingAcknowledgement):
            self._on_pba(src, message, now, effects)
        elif isinstance(message, BindingRevocationIndication):
            self._on_bri(src, message, now, effects)
        elif isinstance(message, UnknownMessage):
            self._on_unknown_type(src, message, now, effects)
        return effects

    def _on_unknown_type(
        self,
        src: IPv6Address,
        message: UnknownMessage,
        now: float,
        effects: list[Effect],
    ) -> None:
        self.counters["mh_unknown_type"] += 1
        error = unrecognized_mh_type(src, self._binding_errors, now)
        if error is None:
            return
        self.counters["binding_errors_sent"] += 1
        effects.append(SendMh(src, error))
        # STYLE: a peer fault is logged once per peer
        if src not in self._unknown_type_warned:
            if len(self._unknown_type_warned) >= MAX_PEERS:
                self._unknown_type_warned.clear()
            self._unknown_type_warned.add(src)
            level = logging.WARNING
        else:
            level = logging.DEBUG
        self._log(
            effects,
            level,
            f"{src}: MH Type {message.mh_type} not recognised; sent Binding Error",
        )

    def tick(self, now: float) -> list[Effect]:
        """Run every deadline that has passed."""
        effects: list[Effect] = []
        self._rearm()
        due: dict[str, None] = {}
        while self._wakeups and self._wakeups[0][0] <= now:
            due[heapq.heappop(self._wakeups)[1]] = None
        for mac in due:
            v = self._visitors.get(mac)
            if v is None:
                continue
            at = self._earliest(v)
            if at is not None and at <= now:
                self._tick_visitor(v, now, effects)
            # its timers may have moved in ways the dirty marks do not see
            # (a transaction's own deadline): queue it again in any case
            self._dirty.add(mac)
        self._rearm()
        return effects

    def _tick_visitor(self, v: Visitor, now: float, effects: list[Effect]) -> None:
        s = self.settings
        t = v.pending
        if t is not None and now >= t.deadline:
            self._retransmit(v, t, now, effects)
        if v.mac not in self._visitors:
            return
        if v.leaving_at is not None and now >= v.leaving_at:
            self._leave(v, now, "left the access link", effects)
            return

        if v.retry_at is not None and now >= v.retry_at:
            v.retry_at = None
            if v.state is State.AUTHENTICATING:
                effects.append(AskAaa(v.mac, v.nai))
            elif v.state is State.FAILED:
                self._register(v, now, effects)

        if v.dhcp_deadline is not None and now >= v.dhcp_deadline:
            v.dhcp_deadline = None
            server = v.profile.dhcp_server if v.profile else None
            self._warn_once(
                effects,
                v,
                "dhcp-timeout",
                f"DHCPv6 server {server or self.settings.dhcp_server} did not "
                f"answer within {self.settings.dhcp_answer_timeout:g} s",
            )

        if v.state is State.REGISTERED and v.pending is None:
            if v.expires is not None and now >= v.expires:
                self._fail(v, now, "registration expired", effects)
            elif v.refresh_at is not None and now >= v.refresh_at:
                v.refresh_at = None
                self._register(v, now, effects)

        if v.loa_probe_at is not None and now >= v.loa_probe_at:
            self._loa_probe_round(v, now, effects)

        if v.ra_at is not None and now >= v.ra_at:
            v.ra_at = None
            if v.profile is not None and v.state in (
                State.REGISTERED,
                State.AWAITING_LOA,
            ):
                self._send_ra(v, effects)

        # presence: probe an idle MS, declare it gone after absent_timeout
        if v.next_probe is not None:
            if now - v.last_heard >= s.absent_timeout:
                self._leave(v, now, "stopped answering probes", effects)
            elif now >= v.next_probe:
                target = v.loa or v.link_local
                if target is not None:
                    effects.append(SendNs(v.access, v.mac, target))
                v.next_probe = now + self._probe_interval()

    def shutdown(self) -> list[Effect]:
        """Remove forwarding state; de-register nothing (a restart keeps service)."""
        effects: list[Effect] = []
        for v in self._visitors.values():
            if v.attached is not None:
                effects.append(Detach(v.attached))
                v.attached = None
        self._visitors.clear()
        self._by_sequence.clear()
        self._by_nai_index.clear()
        self._by_loa.clear()
        self._wakeups.clear()
        self._dirty.clear()
        return effects

    # --- rules ------------------------------------------------------------------

    def _heard(
        self,
        mac: str,
        access: str,
        now: float,
        effects: list[Effect],
        src: IPv6Address | None = None,
    ) -> Visitor | None:
        """Note a sign of life from ``mac``; a new station starts authentication."""
        mac = mac.lower()
        v = self._visitors.get(mac)
        if v is not None and v.state is State.DEREGISTERING:
            # it came back before the de-registration finished: start afresh
            self._forget(v)
            v = None
        if v is None:
            v = Visitor(
                mac=mac,
                access=access,
                state=State.AUTHENTICATING,
                since=now,
                dirty=self._dirty,
            )
            self._visitors[mac] = v
            effects.append(AskAaa(mac))
            self._log(effects, logging.DEBUG, f"{mac}: new station on {access}")
        v.last_heard = now
        if v.leaving_at is not None:
            # back on this access link (a bridge flap, or roamed back)
            v.leaving_at = None
            if v.state is State.REGISTERED:
                self._start_probing(v, now)
        if v.next_probe is not None:
            v.next_probe = now + self._probe_interval()
        if src is not None and src in LINK_LOCAL:
            v.link_local = src
        return v

    def _learn_loa(
        self,
        v: Visitor,
        addr: IPv6Address,
        now: float,
        effects: list[Effect],
        probed: bool = False,
    ) -> None:
        if v.state is State.AUTHENTICATING:
            if addr not in v.candidates:
                v.candidates.append(addr)
            return
        if v.lnp is None or addr not in v.lnp or v.loa is not None:
            # one LoA per MS; other addresses (privacy, temporary) ride along
            return
        self._set_loa(v, addr)
        v.loa_probed = probed
        self._log(effects, logging.DEBUG, f"{v.label()}: learnt LoA {addr}")
        if v.state is State.AWAITING_LOA:
            self._register(v, now, effects)
        # in REGISTERING with the BCC option out, the 141 reply will use it

    def _relay_dhcp(
        self,
        v: Visitor,
        src: IPv6Address,
        payload: bytes,
        now: float,
        effects: list[Effect],
    ) -> None:
        assert v.profile is not None
        server = v.profile.dhcp_server or self.settings.dhcp_server
        if server is None:
            self._warn_once(
                effects, v, "dhcp-none", "DHCPv6 from the station but no server known"
            )
            return
        try:
            forward = relay_forward(
                payload, src, v.profile.lnp, interface_id_for_mac(v.mac)
            )
        except Malformed as exc:
            self._warn_once(effects, v, "dhcp-bad", f"DHCPv6 not relayed: {exc}")
            return
        effects.append(RelayDhcp(server, forward))
        self.counters["dhcp_relayed"] += 1
        if v.dhcp_deadline is None:
            v.dhcp_deadline = now + self.settings.dhcp_answer_timeout

    def _register(self, v: Visitor, now: float, effects: list[Effect]) -> None:
        """Send a PBU for ``v`` (first registration, refresh or retry)."""
        if v.state is not State.REGISTERED:
            self._move(v, State.REGISTERING, now)
        self._start_transaction(v, self.settings.lifetime, now, effects)

    def _start_transaction(
        self, v: Visitor, lifetime: int, now: float, effects: list[Effect]
    ) -> None:
        timeout = self.settings.pbu_initial_timeout
        v.pending = _Transaction(
            lifetime=lifetime, sequences=[], timeout=timeout, deadline=now + timeout
        )
        self._send_pbu(v, v.pending, effects)

    def _send_pbu(self, v: Visitor, t: _Transaction, effects: list[Effect]) -> None:
        assert v.profile is not None and v.nai is not None
        # RFC 6275 11.8: every BU, retransmissions too, has a new sequence number
        sequence = self._sequence
        self._sequence = seq_add(self._sequence)
        t.sequences.append(sequence)
        self._by_sequence[sequence] = v.mac

        options: list[Option] = [MobileNodeIdentifier.from_nai(v.nai)]
        profile = self.settings.profile
        if profile.aha_option_type is None:
            # RFC 5213: the per-MS prefix, handoff and access technology
            options += [
                HomeNetworkPrefix(v.profile.lnp.prefixlen, v.profile.lnp[0]),
                HandoffIndicator(HANDOFF_UNKNOWN),
                AccessTechnologyType(ATT_IEEE_802_3),
            ]
        elif v.loa is not None:
            options.append(AssignedHomeAddress(v.profile.lnp.prefixlen, v.loa))
        else:
            # seed 4.3, 6.1: "is there a BCE for this NAI?" - how a roam learns
            options.append(BindingCacheConfirmation())
        units = min(MAX_LIFETIME_UNITS, -(-t.lifetime // LIFETIME_UNIT))
        message = BindingUpdate(
            sequence=sequence,
            flags=BUFlags.A | BUFlags.H | BUFlags.P,
            lifetime=units,
            options=tuple(options),
        )
        effects.append(SendMh(v.profile.lmap_address, message))
        self.counters["pbu_sent"] += 1

    def _retransmit(
        self, v: Visitor, t: _Transaction, now: float, effects: list[Effect]
    ) -> None:
        s = self.settings
        if t.timeout >= s.pbu_max_timeout:
            self.counters["give_ups"] += 1
            tries = len(t.sequences)
            v.pending = None
            if t.lifetime == 0:
                self._log(
                    effects,
                    logging.INFO,
                    f"{v.label()}: LMAP {v.lmap} never acknowledged the "
                    f"de-registration ({tries} tries); dropped",
                )
                self._forget(v)
                return
            self._fail(v, now, f"LMAP {v.lmap} did not answer {tries} PBUs", effects)
            return
        t.timeout = min(t.timeout * 2, s.pbu_max_timeout)
        t.deadline = now + t.timeout
        self.counters["pbu_retransmitted"] += 1
        self._log(
            effects,
            logging.DEBUG,
            f"{v.label()}: retransmitting PBU, next timeout {t.timeout:g} s",
        )
        self._send_pbu(v, t, effects)

    def _on_pba(
        self,
        src: IPv6Address,
        ba: BindingAcknowledgement,
        now: float,
        effects: list[Effect],
    ) -> None:
        self.counters["pba_received"] += 1
        v = self._match(src, ba.sequence)
        if v is None or v.pending is None:
            ident = find_option(ba.options, MobileNodeIdentifier)
            by_nai = self._by_nai(ident.nai) if ident else None
            if (
                ba.status == Status.SEQUENCE_NUMBER_OUT_OF_WINDOW
                and by_nai is not None
                and by_nai.pending is not None
                and by_nai.lmap == src
                and not by_nai.pending.sent_135_retry
            ):
                # RFC 6275 11.7.1: the BA names the last accepted sequence number
                self._sequence = seq_add(ba.sequence)
                by_nai.pending.sent_135_retry = True
                self._send_pbu(by_nai, by_nai.pending, effects)
                return
            # stale, duplicated or unknown: RFC 6275 11.7.3 says ignore it
            self.counters["pba_ignored"] += 1
            return
        t = v.pending
        v.pending = None

        if t.lifetime == 0:
            self._log(effects, logging.INFO, f"{v.label()}: de-registered")
            self._forget(v)
            return

        bce_missing = self.settings.profile.status_bce_missing
        if ba.accepted and ba.lifetime > 0:
            self._accepted(v, ba, now, effects)
        elif bce_missing is not None and ba.status == bce_missing:
            # seed 6.1: no BCE for this NAI: a first boot. With the LoA known
            # (DAD seen meanwhile) register it; otherwise let the MS configure
            # itself from the RA, and its DAD will name the LoA (seed fig 8)
            if v.attached is not None:
                effects.append(Detach(v.attached))
                v.attached = None
            v.expires = v.refresh_at = None
            v.lifetime = 0
            if v.loa is not None and v.state is State.REGISTERING:
                self._start_transaction(v, self.settings.lifetime, now, effects)
                return
            self._move(v, State.AWAITING_LOA, now)
            v.loa = None
            self._start_probing(v, now)
            self._send_ra(v, effects)
            self._start_loa_probes(v, now, effects)
        elif v.loa_probed and v.loa is not None:
            # a probed LoA refused (142: bound to another NAI, or outside the
            # anchored prefixes): drop the guess for good, so the retry asks
            # with the BCC again and the probes skip it - no probe/refuse loop
            refused = v.loa
            v.loa_refused.add(refused)
            if self._by_loa.get(refused) == v.mac:
                del self._by_loa[refused]
            v.loa = None
            v.loa_probed = False
            self._fail(
                v,
                now,
                f"LMAP {src} refused {refused} (found by probing): status "
                f"{ba.status}; not probed again",
                effects,
            )
        else:
            self._fail(
                v, now, f"LMAP {src} refused the PBU: status {ba.status}", effects
            )

    def _accepted(
        self,
        v: Visitor,
        ba: BindingAcknowledgement,
        now: float,
        effects: list[Effect],
    ) -> None:
        assert v.profile is not None and v.lmap is not None
        aha = find_option(ba.options, AssignedHomeAddress)
        if aha is not None and aha.home_address in v.profile.lnp:
            if v.loa is not None and v.loa != aha.home_address:
                self._warn_once(
                    effects, v, "loa", f"LMAP assigned {aha.home_address}, not {v.loa}"
                )
            self._set_loa(v, aha.home_address)

        if self.settings.profile.aha_option_type is not None and v.loa is None:
            self._warn_once(
                effects, v, "noaha", "PBA accepted without a LoA; waiting for DAD"
            )
            self._move(v, State.AWAITING_LOA, now)
            self._start_probing(v, now)
            self._send_ra(v, effects)
            self._start_loa_probes(v, now, effects)
            return

        v.loa_probed = False  # the LMAP took it: an ordinary LoA from now on
        # seed 7.3: the MPA tunnels all packets from the MS, so the whole LNP,
        # as the LMAP binds and routes it, not just the LoA: the MS's other
        # addresses in its LNP (RFC 8981 temporary ones) go through the tunnel
        # too. The LNP is the prefix assigned to this MS (seed 3) and the LMAP
        # refuses overlapping LNPs, so this takes no other station's traffic
        target = v.profile.lnp
        v.lifetime = ba.lifetime * LIFETIME_UNIT
        v.expires = now + v.lifetime
        v.refresh_at = now + v.lifetime * self.settings.refresh_ratio
        if v.attached != target:
            if v.attached is not None:
                effects.append(Detach(v.attached))
            effects.append(Attach(target, v.access, v.lmap))
            v.attached = target
        if v.state is State.REGISTERED:
            return

        self._move(v, State.REGISTERED, now)
        self._log(
            effects,
            logging.INFO,
            f"{v.label()}: registered LoA {v.loa} via LMAP {v.lmap}, "
            f"lifetime {v.lifetime} s",
        )
        self._start_probing(v, now)
        # answer a waiting RS, and in any case tell a roaming MS (which sends
        # no RS) that its router is here: one unsolicited unicast RA (seed 6.2).
        # Sent at once: it follows the registration, not an RS, so the RFC 4861
        # 6.2.6 delay for RS answers does not apply, and the handover waits on it
        self._send_ra(v, effects)

    def _on_bri(
        self,
        src: IPv6Address,
        bri: BindingRevocationIndication,
        now: float,
        effects: list[Effect],
    ) -> None:
        self.counters["bri_received"] += 1
        ident = find_option(bri.options, MobileNodeIdentifier)
        v = self._by_nai(ident.nai) if ident else None
        if v is not None and v.lmap != src:
            v = None
        status = RevocationStatus.SUCCESS
        if v is None:
            status = RevocationStatus.BINDING_DOES_NOT_EXIST
        else:
            # seed 6.4: remove the visitor entry and its forwarding state first
            if v.attached is not None:
                effects.append(Detach(v.attached))
                v.attached = None
            self._forget(v)
            self._log(
                effects,
                logging.INFO,
                f"{v.label()}: binding revoked by LMAP {src} "
                f"(trigger {bri.revocation_trigger})",
            )
        # RFC 5846 6.2: the BRA echoes the sequence number and the flags
        bra = BindingRevocationAcknowledgement(
            sequence=bri.sequence,
            status=status,
            flags=bri.flags,
            options=(ident,) if ident else (),
        )
        effects.append(SendMh(src, bra))

    def _leave(self, v: Visitor, now: float, why: str, effects: list[Effect]) -> None:
        """The MS is gone: de-register what the LMAP may hold, drop the rest."""
        if v.attached is not None:
            effects.append(Detach(v.attached))
            v.attached = None
        v.next_probe = None
        v.refresh_at = v.retry_at = v.expires = v.leaving_at = None
        if v.state in (State.REGISTERED, State.REGISTERING) and v.profile is not None:
            self._log(effects, logging.INFO, f"{v.label()}: {why}; de-registering")
            self._move(v, State.DEREGISTERING, now)
            self._start_transaction(v, 0, now, effects)
            return
        self._log(effects, logging.DEBUG, f"{v.label()}: {why}; dropped")
        self._forget(v)

    def _fail(self, v: Visitor, now: float, why: str, effects: list[Effect]) -> None:
        if v.attached is not None:
            effects.append(Detach(v.attached))
            v.attached = None
        v.pending = None
        v.expires = v.refresh_at = None
        v.lifetime = 0
        self._move(v, State.FAILED, now)
        self._warn_once(
            effects, v, "fail", f"{why}; retrying in {self.settings.retry_after:g} s"
        )
        v.retry_at = now + self.settings.retry_after

    def _send_ra(self, v: Visitor, effects: list[Effect]) -> None:
        assert v.profile is not None
        mode = v.profile.address_mode
        managed = mode is AddressMode.DHCPV6
        effects.append(
            SendRa(
                access=v.access,
                mac=v.mac,
                dst=v.link_local or ALL_NODES,
                prefix=v.profile.lnp,
                autonomous=mode is AddressMode.SLAAC,
                managed=managed,
                other=managed or v.profile.dhcp_server is not None,
                router_lifetime=self.settings.router_lifetime,
                mtu=self.settings.ra_mtu,
            )
        )
        v.rs_pending = False
        v.ra_at = None  # this RA answers a pending RS too
        self.counters["ra_sent"] += 1

    # --- helpers ------------------------------------------------------------------

    def _move(self, v: Visitor, to: State, now: float) -> None:
        if v.state is to:
            return
        if (v.state, to) not in TRANSITIONS:
            raise AssertionError(f"transition {v.state.name} -> {to.name} not listed")
        if v.state is State.AWAITING_LOA:
            self._stop_loa_probes(v)
        v.state = to
        v.since = now

    def _probe_interval(self) -> float:
        return self.settings.absent_timeout / 3

    def _start_probing(self, v: Visitor, now: float) -> None:
        if v.next_probe is None:
            v.last_heard = max(v.last_heard, now - self._probe_interval())
            v.next_probe = v.last_heard + self._probe_interval()

    def _loa_candidates(self, v: Visitor) -> list[IPv6Address]:
        """Addresses ``v`` most likely kept: profile IID first, then EUI-64."""
        assert v.profile is not None
        lnp = v.profile.lnp
        iids = [v.profile.interface_id] if v.profile.interface_id is not None else []
        iids.append(modified_eui64(v.mac))
        found: list[IPv6Address] = []
        for iid in iids:
            addr = IPv6Address(int(lnp.network_address) | iid)
            owner = self._owner_of(addr)
            if (
                addr not in lnp
                or addr == lnp.network_address  # subnet-router anycast
                or addr in found
                or addr in v.loa_refused
                or (owner is not None and owner is not v)
            ):
                continue
            found.append(addr)
        return found

    def _start_loa_probes(self, v: Visitor, now: float, effects: list[Effect]) -> None:
        """AWAITING_LOA with the MS here: ask it for its likely LoA (module doc)."""
        if v.loa is not None or v.leaving_at is not None or v.profile is None:
            return
        candidates = self._loa_candidates(v)
        if not candidates:
            return
        v.loa_probes = candidates
        v.loa_probe_rounds = 0
        self._loa_probe_round(v, now, effects)

    def _loa_probe_round(self, v: Visitor, now: float, effects: list[Effect]) -> None:
        """Send the next round of LoA probes, or give up after the last one."""
        s = self.settings
        if (
            v.state is not State.AWAITING_LOA
            or v.loa is not None
            or v.leaving_at is not None
            or v.loa_probe_rounds >= s.loa_probe_rounds
        ):
            if v.loa_probes and v.state is State.AWAITING_LOA and v.loa is None:
                self._log(
                    effects,
                    logging.DEBUG,
                    f"{v.label()}: no answer to {v.loa_probe_rounds} rounds of "
                    "LoA probes; waiting for DAD",
                )
            self._stop_loa_probes(v)
            return
        if v.loa_probe_rounds:
            self._log(effects, logging.DEBUG, f"{v.label()}: probing again for its LoA")
        # a candidate whose solicited-node group the MS reported (RFC 4291
        # 2.7.1) goes first; decided per round, as MLD reports come and go
        for target in sorted(
            v.loa_probes, key=lambda a: solicited_node(a) not in v.mld_groups
        ):
            effects.append(SendNs(v.access, v.mac, target))
            self.counters["loa_probes"] += 1
        v.loa_probe_rounds += 1
        # after the last round this is the give-up, which leaves a late NA time
        v.loa_probe_at = now + s.loa_probe_interval

    def _stop_loa_probes(self, v: Visitor) -> None:
        v.loa_probes = []
        v.loa_probe_rounds = 0
        v.loa_probe_at = None

    def _match(self, src: IPv6Address, sequence: int) -> Visitor | None:
        v = self._visitors.get(self._by_sequence.get(sequence, ""))
        if v is None or v.pending is None or sequence not in v.pending.sequences:
            return None
        return v if v.lmap == src else None

    def _by_nai(self, nai: str) -> Visitor | None:
        v = self._visitors.get(self._by_nai_index.get(nai, ""))
        return v if v is not None and v.nai == nai else None

    def _owner_of(self, loa: IPv6Address) -> Visitor | None:
        v = self._visitors.get(self._by_loa.get(loa, ""))
        return v if v is not None and v.loa == loa else None

    def _set_loa(self, v: Visitor, loa: IPv6Address) -> None:
        v.loa = loa
        self._by_loa[loa] = v.mac

    def _forget(self, v: Visitor) -> None:
        """Remove ``v`` from the visitor list and the indexes."""
        if self._visitors.get(v.mac) is v:
            del self._visitors[v.mac]
        if v.nai is not None and self._by_nai_index.get(v.nai) == v.mac:
            del self._by_nai_index[v.nai]
        if v.loa is not None and self._by_loa.get(v.loa) == v.mac:
            del self._by_loa[v.loa]
        if v.pending is not None:
            for sequence in v.pending.sequences:
                if self._by_sequence.get(sequence) == v.mac:
                    del self._by_sequence[sequence]

    def _warn_once(
        self, effects: list[Effect], v: Visitor, key: str, text: str
    ) -> None:
        # STYLE: a peer fault is logged once per visitor, not on every retry
        if key in v.warned:
            return
        v.warned.add(key)
        effects.append(LogEvent(logging.WARNING, f"{v.label()}: {text}"))

    def _log(self, effects: list[Effect], level: int, text: str) -> None:
        effects.append(LogEvent(level, text))
