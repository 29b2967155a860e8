"""The Local Mobility Anchor Point engine: binding cache and PBU processing.

No sockets and no clock: the daemon feeds decoded Mobility Header messages with
their source and destination addresses and the current time, and applies the
effects the engine returns (messages to send, forwarding changes, store
writes, log events). ``next_deadline()`` says when ``handle_timeout`` is due.

Rules (seed 6.1, 6.3, 6.4, 9.1; RFC 5213 5.3 where the seed is silent):

- Only configured MPAs may register (129; 154 in the rfc5213 profile).
- A PBU needs the P flag (140 / 152) and an MN Identifier carrying an NAI
  (160 in both profiles: the seed defines no status for it, RFC 5213's
  MISSING_MN_IDENTIFIER_OPTION is the specific one and any value >= 128 is a
  refusal to a seed-era MPA).
- Binding Cache Confirmation (seed 9.1): accepted with the Assigned Home
  Address option when a BCE exists for the NAI, which then moves to the
  sending MPA; otherwise 141 and nothing changes.
- Assigned Home Address (seed 6.3): creates or updates the BCE. A LoA whose
  LNP is not inside the configured prefixes is refused with 132 (not home
  subnet; 141 would collide with the seed's "BCE missing"); this includes a
  prefix length shorter than the anchored prefix's own, whose LNP would
  reach outside what the LMAP owns (seed 3: the LoA "belongs to the prefix
  owned by the ... LMAP"; RFC 5213 5.3.2 step 3). An LNP that equals,
  contains or lies inside the LNP of another NAI is refused with 142 (not
  authorized for prefix): each MS owns its LNP exclusively (RFC 5213 5.2,
  the per-MN-prefix model) and the LNP is what the data plane routes, so a
  /48 over other stations' /64s would steal their traffic. The rfc5213
  profile answers both with 155.
- The MN Identifier must be a sane NAI: UTF-8, at most 253 octets (RFC 4282
  2.2), no control characters (C0, DEL, C1) and nothing else
  ``str.isprintable`` refuses. Otherwise 128 in both profiles (the option is
  present, so 160 "missing" would mislead, and neither document has a code
  for a malformed identifier): the NAI ends up in logs, the store and the
  ``ctl`` output, where escape sequences or newlines must not get in.
- An MH Type this node does not recognise (anything decoded as
  ``UnknownMessage``, including the return-routability types 0-4 an LMAP
  does not implement) is discarded and answered with a Binding Error,
  Status 2, to a unicast source (RFC 6275 9.2, 9.3.3), at most one per peer
  per ``binding_error_interval`` (rate-limited like ICMPv6, RFC 4443 2.4 f).
  The ICMP Parameter Problem RFC 6275 9.2 asks for on a bad Payload Proto or
  a short Header Len is not sent (the daemon drops such messages as
  malformed); the kernel's mip6 module would, where it is loaded.
- A PBU with neither option is refused with 128 (158 in rfc5213).
- Sequence numbers modulo 2^16 per peer (RFC 6275 9.5.1): a PBU from the
  serving MPA that is not greater than the last accepted one gets 135 with
  that value. A PBU from a new MPA is a handover and is not compared (each
  MPA keeps its own counter); a late PBU from the MPA the MS just left is
  compared against what that MPA last had accepted, so a reordered refresh
  cannot pull the binding back. A retransmission (same sequence and content
  from the serving MPA) is answered again without side effects.
- Lifetimes are capped to ``max_lifetime``. Lifetime 0 de-registers, but only
  from the serving MPA; from any other MPA it is accepted without change (the
  MS has already moved; RFC 5213 5.3.5). BCEs expire at their deadline.
- On a move, the previous MPA gets a Binding Revocation Indication (RFC 5846,
  P flag, MN Identifier, trigger 2), retransmitted from 1 s doubling to 2 s
  and given up after ``bri_max_retries`` retransmissions.
"""

from __future__ import annotations

import enum
import heapq
from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network
from typing import Any

from pmip6.core.mherror import BindingErrorLimiter, unrecognized_mh_type
from pmip6.core.seqno import seq_add, seq_greater
from pmip6.wire.mh import (
    LIFETIME_UNIT,
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
    HandoffIndicator,
    HomeNetworkPrefix,
    Message,
    MobileNodeIdentifier,
    Option,
    RevocationTrigger,
    Status,
    UnknownMessage,
)
from pmip6.wire.profile import DRAFT00, Profile

MAX_LIFETIME_UNITS = 0xFFFF
_ALL_ONES = (1 << 128) - 1
_UNKNOWN = IPv6Address(0)  # sentinel object for the authorization cache
# plain ints and members bound once: IntFlag arithmetic is slow on the hot path
_BU_P = int(BUFlags.P)
_BA_P = BAFlags.P
_BA_NONE = BAFlags(0)
_ACCEPTED = Status.ACCEPTED

# what a PBU asks for; part of the retransmission fingerprint
_KIND_NONE = 0
_KIND_BCC = 1
_KIND_AHA = 2


# RFC 4282 2.2: a NAI of at most 253 octets (what RADIUS can carry)
NAI_MAX_OCTETS = 253
# RFC 6275 6.1.9: Binding Error status "unrecognized MH Type value"


def _mask(prefix_length: int) -> int:
    return _ALL_ONES ^ ((1 << (128 - prefix_length)) - 1)


def _host_bits(prefix_length: int) -> int:
    return (1 << (128 - prefix_length)) - 1


def nai_problem(identifier: bytes) -> str | None:
    """Why ``identifier`` is not an acceptable NAI, or None when it is."""
    if len(identifier) > NAI_MAX_OCTETS:
        return f"longer than {NAI_MAX_OCTETS} octets"
    try:
        text = identifier.decode("utf-8")
    except UnicodeDecodeError:
        return "not UTF-8"
    if not text.isprintable():
        return "contains control or non-printable characters"
    return None


def describe_identifier(identifier: bytes) -> str:
    """The identifier for a log line: the NAI when sane, else escaped."""
    if nai_problem(identifier) is None:
        return identifier.decode("utf-8")
    return repr(identifier)


class _SortedInts:
    """A sorted set of ints kept in bounded chunks.

    Search is two bisections; an insert or a removal moves at most one chunk
    (about a thousand pointers), so a million LNPs cost no more than a few.
    """

    __slots__ = ("_chunks", "_maxes")
    _LOAD = 1000

    def __init__(self) -> None:
        self._chunks: list[list[int]] = []
        self._maxes: list[int] = []

    def __len__(self) -> int:
        return sum(len(c) for c in self._chunks)

    def add(self, value: int) -> None:
        maxes = self._maxes
        if not maxes:
            self._chunks.append([value])
            maxes.append(value)
            return
        i = bisect_left(maxes, value)
        if i == len(maxes):
            i -= 1
        chunk = self._chunks[i]
        insort(chunk, value)
        maxes[i] = chunk[-1]
        if len(chunk) > 2 * self._LOAD:
            tail = chunk[self._LOAD :]
            del chunk[self._LOAD :]
            self._chunks.insert(i + 1, tail)
            maxes[i] = chunk[-1]
            maxes.insert(i + 1, tail[-1])

    def discard(self, value: int) -> None:
        maxes = self._maxes
        i = bisect_left(maxes, value)
        if i == len(maxes):
            return
        chunk = self._chunks[i]
        j = bisect_left(chunk, value)
        if j == len(chunk) or chunk[j] != value:
            return
        del chunk[j]
        if chunk:
            maxes[i] = chunk[-1]
        else:
            del self._chunks[i]
            del maxes[i]

    def floor(self, value: int) -> int | None:
        """The largest member not above ``value``, or None."""
        maxes = self._maxes
        i = bisect_right(maxes, value)
        if i < len(maxes):
            chunk = self._chunks[i]
            j = bisect_right(chunk, value)
            if j:
                return chunk[j - 1]
        return maxes[i - 1] if i else None

    def __iter__(self) -> Iterator[int]:
        for chunk in self._chunks:
            yield from chunk


# --- settings -----------------------------------------------------------------


@dataclass(frozen=True)
class LmapSettings:
    address: IPv6Address
    prefixes: tuple[IPv6Network, ...]
    mpas: tuple[IPv6Network, ...]
    max_lifetime: int = 3600  # seconds
    profile: Profile = DRAFT00
    # RFC 5846 11: InitMINDelayBRIs, MAX_BRACK_TIMEOUT, BRIMaxRetriesNumber
    # (the RFC's default of one retry is raised: a lost BRA is common on a
    # busy access router and the cost of a retry is one packet)
    bri_initial_timeout: float = 1.0
    bri_max_timeout: float = 2.0
    bri_max_retries: int = 3
    # RFC 6275 9.3.3: Binding Errors rate-limited like ICMPv6 (Linux's
    # icmp/ratelimit default is one per second per destination)
    binding_error_interval: float = 1.0


# --- binding cache ------------------------------------------------------------


@dataclass(slots=True, eq=False)
class Binding:
    """One binding cache entry. Addresses are ints to keep the entry small."""

    nai: str
    loa: int
    prefix_length: int
    care_of: IPv6Address  # the serving MPA (interned: shared by its bindings)
    lifetime: int  # granted, seconds
    expires_at: float
    sequence: int  # last accepted from ``care_of``
    fingerprint: int = 0  # flags, lifetime and kind of the last accepted PBU
    prev_care_of: IPv6Address | None = None  # the MPA the MS left last
    prev_sequence: int = 0  # what that MPA last had accepted

    @property
    def loa_address(self) -> IPv6Address:
        return IPv6Address(self.loa)

    @property
    def lnp_int(self) -> int:
        return self.loa & _mask(self.prefix_length)

    @property
    def lnp(self) -> IPv6Network:
        """The Local Network Prefix: what the data plane tunnels to the MPA."""
        return IPv6Network((self.lnp_int, self.prefix_length))

    def as_dict(self, now: float) -> dict[str, Any]:
        return {
            "nai": self.nai,
            "loa": str(self.loa_address),
            "prefix_length": self.prefix_length,
            "lnp": str(self.lnp),
            "care_of": str(self.care_of),
            "lifetime": self.lifetime,
            "expires_in": max(0, round(self.expires_at - now)),
            "sequence": self.sequence,
        }


# --- effects ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` to ``dst`` from the LMAP's own address."""

    message: Message
    dst: IPv6Address


@dataclass(frozen=True, slots=True)
class Bind:
    """Tunnel ``target`` to the MPA at ``care_of`` (add or move)."""

    target: IPv6Network
    care_of: IPv6Address


@dataclass(frozen=True, slots=True)
class Unbind:
    target: IPv6Network


@dataclass(frozen=True, slots=True)
class Save:
    """Persist ``binding`` (its state when the effect is applied)."""

    binding: Binding


@dataclass(frozen=True, slots=True)
class Delete:
    nai: str


class EventKind(enum.Enum):
    REGISTERED = "registered"  # INFO
    MOVED = "moved"  # INFO
    DEREGISTERED = "de-registered"  # INFO
    EXPIRED = "expired"  # INFO
    REFUSED = "refused"  # WARNING (a peer fault)
    REVOCATION_FAILED = "revocation unanswered"  # WARNING
    RETRANSMIT = "revocation retransmitted"  # DEBUG
    REVOKED = "revocation acknowledged"  # DEBUG
    IGNORED = "ignored"  # DEBUG
    BINDING_ERROR = "binding error sent"  # DEBUG


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    nai: str
    loa: IPv6Address | None = None
    peer: IPv6Address | None = None
    detail: str = ""
    status: int | None = None


Effect = Send | Bind | Unbind | Save | Delete | Event


@dataclass(slots=True, eq=False)
class _Revocation:
    sequence: int
    nai: str
    dst: IPv6Address
    message: BindingRevocationIndication
    due: float
    timeout: float
    tries: int = 0


@dataclass
class Counters:
    pbu: int = 0
    accepted: int = 0
    refused: int = 0
    retransmissions_answered: int = 0
    registered: int = 0
    moved: int = 0
    deregistered: int = 0
    expired: int = 0
    bri_sent: int = 0
    bri_acknowledged: int = 0
    bri_unanswered: int = 0
    ignored: int = 0
    binding_errors: int = 0
    refused_by_status: dict[int, int] = field(default_factory=dict)


# --- the engine ---------------------------------------------------------------


class LmapEngine:
    def __init__(self, settings: LmapSettings, bri_sequence: int = 0) -> None:
        self.settings = settings
        self.profile = settings.profile
        rfc = self.profile.aha_option_type is None
        self._status_unauthorized_mpa = (
            Status.MAG_NOT_AUTHORIZED_FOR_PROXY_REG
            if rfc
            else Status.ADMINISTRATIVELY_PROHIBITED
        )
        self._status_outside = (
            Status.NOT_AUTHORIZED_FOR_HOME_NETWORK_PREFIX
            if rfc
            else Status.NOT_HOME_SUBNET
        )
        self._status_taken = (
            Status.NOT_AUTHORIZED_FOR_HOME_NETWORK_PREFIX
            if rfc
            else Status.NOT_AUTHORIZED_FOR_PREFIX
        )
        self._status_no_option = (
            Status.MISSING_HOME_NETWORK_PREFIX_OPTION
            if rfc
            else Status.REASON_UNSPECIFIED
        )
        self._max_units = max(
            1, min(MAX_LIFETIME_UNITS, settings.max_lifetime // LIFETIME_UNIT)
        )
        self._prefixes = [
            (int(p.network_address), _mask(p.prefixlen), p.prefixlen)
            for p in settings.prefixes
        ]
        self._mpas = settings.mpas
        # source address -> interned address, or None when not authorized
        self._authorized: dict[IPv6Address, IPv6Address | None] = {}
        self._peers: dict[IPv6Address, IPv6Address] = {}

        self.by_nai: dict[str, Binding] = {}
        self.by_loa: dict[int, Binding] = {}
        # LNPs never overlap (see the module rules), so their first addresses
        # are unique: one sorted set of them finds any overlap with one search
        self._by_lnp: dict[int, Binding] = {}
        self._lnp_starts = _SortedInts()
        self._binding_errors = BindingErrorLimiter(settings.binding_error_interval)
        self._expiry: list[tuple[float, str]] = []
        self._pending: dict[int, _Revocation] = {}
        self._retry: list[tuple[float, int]] = []
        self._bri_sequence = bri_sequence & 0xFFFF
        self.counters = Counters()

    # --- inputs ----------------------------------------------------------------

    def receive(
        self, message: Message, src: IPv6Address, dst: IPv6Address, now: float
    ) -> list[Effect]:
        """Process one decoded message from ``src`` (to ``dst``) at ``now``."""
        if type(message) is BindingUpdate:
            return self._binding_update(message, src, now)
        if type(message) is BindingRevocationAcknowledgement:
            return self._revocation_ack(message, src)
        if type(message) is UnknownMessage:
            return self._unknown_type(message, src, now)
        self.counters.ignored += 1
        return [
            Event(
                EventKind.IGNORED,
                "",
                peer=src,
                detail=f"unexpected {type(message).__name__}",
            )
        ]

    def handle_timeout(self, now: float) -> list[Effect]:
        """Expire bindings and retransmit revocations that are due at ``now``."""
        effects: list[Effect] = []
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            when, nai = heapq.heappop(expiry)
            b = self.by_nai.get(nai)
            if b is None or b.expires_at != when:
                continue  # refreshed or removed since
            self._remove(b)
            self.counters.expired += 1
            effects.append(Unbind(b.lnp))
            effects.append(Delete(nai))
            effects.append(Event(EventKind.EXPIRED, nai, b.loa_address, b.care_of))

        retry = self._retry
        while retry and retry[0][0] <= now:
            when, seq = heapq.heappop(retry)
            r = self._pending.get(seq)
            if r is None or r.due != when:
                continue
            if r.tries >= self.settings.bri_max_retries:
                # RFC 5846 6.3: give up; the BCE has already moved on
                del self._pending[seq]
                self.counters.bri_unanswered += 1
                effects.append(
                    Event(
                        EventKind.REVOCATION_FAILED,
                        r.nai,
                        peer=r.dst,
                        detail=f"no acknowledgement after {r.tries + 1} attempts",
                    )
                )
                continue
            r.tries += 1
            r.timeout = min(r.timeout * 2, self.settings.bri_max_timeout)
            r.due = now + r.timeout
            heapq.heappush(retry, (r.due, seq))
            effects.append(Send(r.message, r.dst))
            effects.append(
                Event(
                    EventKind.RETRANSMIT,
                    r.nai,
                    peer=r.dst,
                    detail=f"sequence {seq} attempt {r.tries + 1}",
                )
            )
        return effects

    def next_deadline(self) -> float | None:
        """When ``handle_timeout`` next has work, or None."""
        expiry = self._expiry
        while expiry:
            when, nai = expiry[0]
            b = self.by_nai.get(nai)
            if b is not None and b.expires_at == when:
                break
            heapq.heappop(expiry)
        retry = self._retry
        while retry:
            when, seq = retry[0]
            r = self._pending.get(seq)
            if r is not None and r.due == when:
                break
            heapq.heappop(retry)
        candidates = [h[0][0] for h in (expiry, retry) if h]
        return min(candidates) if candidates else None

    def deadline_hint(self) -> float | None:
        """A cheap lower bound of ``next_deadline()`` (stale entries included).

        A timer set to it may fire early and find nothing to do; it never
        fires late. Meant for checking after every message.
        """
        expiry, retry = self._expiry, self._retry
        if expiry:
            if retry:
                return min(expiry[0][0], retry[0][0])
            return expiry[0][0]
        return retry[0][0] if retry else None

    def forwarding_failed(
        self, target: IPv6Network, care_of: IPv6Address, now: float
    ) -> list[Effect]:
        """The data plane could not tunnel ``target`` to ``care_of``.

        The binding is dropped (an LMAP that cannot forward must not claim
        the MS; RFC 5213 5.3.1 answers such a PBU with status 143), and the
        daemon turns the PBA it still holds into a refusal with
        ``Status.FORWARDING_SETUP_FAILED``.
        """
        b = self._by_lnp.get(int(target.network_address))
        if b is None or b.prefix_length != target.prefixlen or b.care_of != care_of:
            return []  # moved or gone meanwhile: nothing of ours to undo
        self._remove(b)
        self.counters.refused += 1
        by_status = self.counters.refused_by_status
        status = int(Status.FORWARDING_SETUP_FAILED)
        by_status[status] = by_status.get(status, 0) + 1
        return [
            Unbind(target),
            Delete(b.nai),
            Event(
                EventKind.REFUSED,
                b.nai,
                b.loa_address,
                care_of,
                detail="forwarding setup failed",
                status=status,
            ),
        ]

    # --- state in and out ------------------------------------------------------

    def restore(self, bindings: Iterable[Binding], now: float) -> int:
        """Load bindings from the store; return how many were kept.

        Expired ones, ones outside the anchored prefixes (the config
        changed), ones with an unacceptable NAI and ones overlapping an LNP
        kept before (a store written before overlaps were refused) are
        dropped.
        """
        count = 0
        for b in bindings:
            if b.expires_at <= now or b.nai in self.by_nai:
                continue
            if not 0 <= b.prefix_length <= 128 or not self._inside(
                b.loa, b.prefix_length
            ):
                continue  # the anchored prefixes changed since it was stored
            if nai_problem(b.nai.encode("utf-8", "surrogatepass")) is not None:
                continue
            if self._overlapping(b.lnp_int, b.prefix_length, b.nai) is not None:
                continue
            b.care_of = self._intern(b.care_of)
            if b.prev_care_of is not None:
                b.prev_care_of = self._intern(b.prev_care_of)
            self._index(b)
            heapq.heappush(self._expiry, (b.expires_at, b.nai))
            count += 1
        return count

    def forwarding(self) -> dict[IPv6Network, IPv6Address]:
        """The data plane state the cache implies (for ``lmap_reconcile``)."""
        return {b.lnp: b.care_of for b in self.by_nai.values()}

    def bindings(self, now: float) -> list[dict[str, Any]]:
        return [b.as_dict(now) for b in self.by_nai.values()]

    @property
    def pending_revocations(self) -> int:
        return len(self._pending)

    @property
    def bri_sequence(self) -> int:
        return self._bri_sequence

    # --- PBU processing --------------------------------------------------------

    def _binding_update(
        self, msg: BindingUpdate, src: IPv6Address, now: float
    ) -> list[Effect]:
        self.counters.pbu += 1
        flags = int(msg.flags)
        proxy = bool(flags & _BU_P)

        # one pass over the options
        mnid: MobileNodeIdentifier | None = None
        aha: AssignedHomeAddress | HomeNetworkPrefix | None = None
        bcc = False
        echo: list[Option] = []
        for option in msg.options:
            t = type(option)
            if t is MobileNodeIdentifier:
                if mnid is None:
                    mnid = option  # type: ignore[assignment]
            elif t is AssignedHomeAddress or t is HomeNetworkPrefix:
                if aha is None:
                    aha = option  # type: ignore[assignment]
            elif t is BindingCacheConfirmation:
                bcc = True
            elif t is HandoffIndicator or t is AccessTechnologyType:
                echo.append(option)  # RFC 5213 5.3.6: copied into the PBA

        # only configured MPAs may register (RFC 5213 5.3.1 step 3)
        care_of = self._authorized.get(src, _UNKNOWN)
        if care_of is _UNKNOWN:
            care_of = self._authorize(src)
        if care_of is None:
            return self._refuse(
                msg, src, mnid, self._status_unauthorized_mpa, "MPA not configured"
            )
        if not proxy:
            return self._refuse(
                msg,
                src,
                mnid,
                self.profile.status_proxy_reg_not_supported,
                "P flag not set",
            )
        if mnid is None or mnid.subtype != 1 or not mnid.identifier:
            return self._refuse(
                msg,
                src,
                mnid,
                Status.MISSING_MN_IDENTIFIER_OPTION,
                "no MN Identifier (NAI)",
            )
        # the NAI goes into logs, the store and ctl output: refuse garbage
        problem = nai_problem(mnid.identifier)
        if problem is not None:
            return self._refuse(
                msg,
                src,
                mnid,
                Status.REASON_UNSPECIFIED,
                f"MN Identifier {mnid.identifier!r} {problem}",
                nai="",
            )
        nai = mnid.identifier.decode("utf-8")

        if aha is not None:
            kind = _KIND_AHA
            loa = int(
                aha.home_address
                if type(aha) is AssignedHomeAddress
                else aha.home_network_prefix  # type: ignore[union-attr]
            )
            plen = aha.prefix_length
            # RFC 5213 8.3: an all-zero HNP asks the LMA for the MS's prefix,
            # which is what the seed's BCC asks
            if loa == 0 and plen == 0 and self.profile.aha_option_type is None:
                kind = _KIND_BCC
        elif bcc:
            kind = _KIND_BCC
            loa = plen = 0
        else:
            kind = _KIND_NONE
            loa = plen = 0
        fingerprint = (flags << 18) | (msg.lifetime << 2) | kind

        # sequence numbers and retransmissions (RFC 6275 9.5.1)
        b = self.by_nai.get(nai)
        if b is not None:
            if b.care_of is care_of:
                if (
                    msg.sequence == b.sequence
                    and fingerprint == b.fingerprint
                    and (kind != _KIND_AHA or (loa, plen) == (b.loa, b.prefix_length))
                ):
                    self.counters.retransmissions_answered += 1
                    return [Send(self._accept_reply(msg, b, mnid, echo, aha), care_of)]
                if not seq_greater(msg.sequence, b.sequence):
                    return self._refuse(
                        msg,
                        src,
                        mnid,
                        Status.SEQUENCE_NUMBER_OUT_OF_WINDOW,
                        f"sequence {msg.sequence} not after {b.sequence}",
                        sequence=b.sequence,
                    )
            elif b.prev_care_of is care_of and not seq_greater(
                msg.sequence, b.prev_sequence
            ):
                return self._refuse(
                    msg,
                    src,
                    mnid,
                    Status.SEQUENCE_NUMBER_OUT_OF_WINDOW,
                    f"stale sequence {msg.sequence} from the previous MPA",
                    sequence=b.prev_sequence,
                )

        # de-registration
        if msg.lifetime == 0:
            reply = Send(
                BindingAcknowledgement(
                    _ACCEPTED,
                    _BA_P,
                    msg.sequence,
                    0,
                    self._reply_options(mnid, None, echo),
                ),
                care_of,
            )
            self.counters.accepted += 1
            if b is None or b.care_of is not care_of:
                # the MS is not (or no longer) served by this MPA: RFC 5213
                # 5.3.5 keeps the binding of the new MPA
                return [reply]
            self._remove(b)
            self.counters.deregistered += 1
            return [
                Unbind(b.lnp),
                Delete(nai),
                Event(EventKind.DEREGISTERED, nai, b.loa_address, care_of),
                reply,
            ]

        if kind == _KIND_NONE:
            return self._refuse(
                msg,
                src,
                mnid,
                self._status_no_option,
                "neither Assigned Home Address nor Binding Cache Confirmation",
            )

        # Binding Cache Confirmation (seed 9.1)
        if kind == _KIND_BCC:
            if b is None:
                status = self.profile.status_bce_missing
                return self._refuse(
                    msg,
                    src,
                    mnid,
                    Status.INSUFFICIENT_RESOURCES if status is None else status,
                    "no binding cache entry",
                )
            return self._accept(msg, b, care_of, mnid, echo, fingerprint, now, None)

        # Assigned Home Address (seed 6.3): create or update
        if not 0 <= plen <= 128 or not self._inside(loa, plen):
            return self._refuse(
                msg,
                src,
                mnid,
                self._status_outside,
                f"{IPv6Address(loa)}/{plen} outside the anchored prefixes",
                nai=nai,
            )
        # per-MN prefixes (RFC 5213 5.2): the LNP may neither equal, contain
        # nor lie inside another NAI's; a refresh of the same LNP was checked
        # when it was bound
        if b is None or loa != b.loa or plen != b.prefix_length:
            owner = self._overlapping(loa & _mask(plen), plen, nai)
            if owner is not None:
                return self._refuse(
                    msg,
                    src,
                    mnid,
                    self._status_taken,
                    f"{IPv6Address(loa)}/{plen} overlaps {owner.lnp} "
                    f"bound to {owner.nai}",
                    nai=nai,
                )
        effects: list[Effect] = []
        if b is None:
            b = Binding(nai, loa, plen, care_of, 0, 0.0, msg.sequence)
            self._index(b)
            self.counters.registered += 1
            self._cancel_revocations(nai, care_of)
            effects.append(Bind(b.lnp, care_of))
            effects.append(Event(EventKind.REGISTERED, nai, b.loa_address, care_of))
        elif (loa, plen) != (b.loa, b.prefix_length):
            # the MS got another LoA: re-key and move the route
            effects.append(Unbind(b.lnp))
            self._unindex_addresses(b)
            b.loa = loa
            b.prefix_length = plen
            self._index(b)
            if b.care_of is care_of:
                effects.append(Bind(b.lnp, care_of))
        return self._accept(msg, b, care_of, mnid, echo, fingerprint, now, aha, effects)

    def _accept(
        self,
        msg: BindingUpdate,
        b: Binding,
        care_of: IPv6Address,
        mnid: MobileNodeIdentifier,
        echo: list[Option],
        fingerprint: int,
        now: float,
        aha: AssignedHomeAddress | HomeNetworkPrefix | None,
        effects: list[Effect] | None = None,
    ) -> list[Effect]:
        if effects is None:
            effects = []
        previous = b.care_of
        revocation: Send | None = None
        if previous is not care_of:
            # handover (seed 6.4): move the route, revoke the previous MPA
            b.prev_care_of = previous
            b.prev_sequence = b.sequence
            b.care_of = care_of
            self.counters.moved += 1
            self._cancel_revocations(b.nai, care_of)
            effects.append(Bind(b.lnp, care_of))
            effects.append(
                Event(
                    EventKind.MOVED,
                    b.nai,
                    b.loa_address,
                    care_of,
                    detail=f"from {previous}",
                )
            )
            revocation = self._revoke(b.nai, previous, now)

        granted = min(msg.lifetime, self._max_units)
        b.sequence = msg.sequence
        b.fingerprint = fingerprint
        b.lifetime = granted * LIFETIME_UNIT
        b.expires_at = now + b.lifetime
        heapq.heappush(self._expiry, (b.expires_at, b.nai))
        if len(self._expiry) > 3 * len(self.by_nai) + 1024:
            self._compact_expiry()

        self.counters.accepted += 1
        effects.append(Save(b))
        effects.append(Send(self._accept_reply(msg, b, mnid, echo, aha), care_of))
        if revocation is not None:
            # the new MPA is answered first (seed 6.4): the MS waits on its PBA
            # for its RA, while the old MPA's clean-up can come a moment later
            effects.append(revocation)
        return effects

    def _accept_reply(
        self,
        msg: BindingUpdate,
        b: Binding,
        mnid: MobileNodeIdentifier,
        echo: list[Option],
        aha: AssignedHomeAddress | HomeNetworkPrefix | None = None,
    ) -> BindingAcknowledgement:
        if (
            type(aha) is AssignedHomeAddress
            and not echo
            and aha.prefix_length == b.prefix_length
            and int(aha.home_address) == b.loa
        ):
            # the PBU's own AHA option is the answer (seed 9.1): reuse it
            options: tuple[Option, ...] = (mnid, aha)
        else:
            options = self._reply_options(mnid, b, echo)
        return BindingAcknowledgement(
            _ACCEPTED, _BA_P, msg.sequence, b.lifetime // LIFETIME_UNIT, options
        )

    def _reply_options(
        self,
        mnid: MobileNodeIdentifier | None,
        b: Binding | None,
        echo: list[Option],
    ) -> tuple[Option, ...]:
        # the seed returns the LoA in the AHA option (9.1); RFC 5213 5.3.6 the
        # HNP, the MN Identifier and the copied HI/ATT options
        options: list[Option] = []
        if mnid is not None:
            options.append(mnid)
        if b is not None:
            if self.profile.aha_option_type is not None:
                options.append(AssignedHomeAddress(b.prefix_length, b.loa_address))
            else:
                options.append(
                    HomeNetworkPrefix(b.prefix_length, IPv6Address(b.lnp_int))
                )
        if echo and self.profile.aha_option_type is None:
            options.extend(echo)
        return tuple(options)

    def _refuse(
        self,
        msg: BindingUpdate,
        src: IPv6Address,
        mnid: MobileNodeIdentifier | None,
        status: int,
        reason: str,
        sequence: int | None = None,
        nai: str | None = None,
    ) -> list[Effect]:
        self.counters.refused += 1
        by_status = self.counters.refused_by_status
        by_status[status] = by_status.get(status, 0) + 1
        flags = _BA_P if int(msg.flags) & _BU_P else _BA_NONE
        reply = BindingAcknowledgement(
            status,
            flags,
            msg.sequence if sequence is None else sequence,
            0,
            (mnid,) if mnid is not None else (),
        )
        if nai is None:
            nai = describe_identifier(mnid.identifier) if mnid is not None else ""
        return [
            Send(reply, src),
            Event(EventKind.REFUSED, nai, peer=src, detail=reason, status=status),
        ]

    # --- unrecognised MH types (RFC 6275 9.2) -----------------------------------

    def _unknown_type(
        self, msg: UnknownMessage, src: IPv6Address, now: float
    ) -> list[Effect]:
        self.counters.ignored += 1
        detail = f"unrecognized MH Type {msg.mh_type}"
        error = unrecognized_mh_type(src, self._binding_errors, now)
        if error is None:
            # 9.3.3: never to a non-unicast source; rate-limited per peer
            return [Event(EventKind.IGNORED, "", peer=src, detail=detail)]
        self.counters.binding_errors += 1
        return [
            Send(error, src),
            Event(EventKind.BINDING_ERROR, "", peer=src, detail=detail, status=2),
        ]

    # --- revocation (RFC 5846) ---------------------------------------------------

    def _revoke(self, nai: str, dst: IPv6Address, now: float) -> Send:
        seq = self._bri_sequence
        while seq in self._pending:
            seq = seq_add(seq)
        self._bri_sequence = seq_add(seq)
        message = BindingRevocationIndication(
            sequence=seq,
            revocation_trigger=RevocationTrigger.INTER_MAG_HANDOVER_SAME_ATT,
            flags=BRFlags.P,
            options=(MobileNodeIdentifier.from_nai(nai),),
        )
        timeout = self.settings.bri_initial_timeout
        r = _Revocation(seq, nai, dst, message, now + timeout, timeout)
        self._pending[seq] = r
        heapq.heappush(self._retry, (r.due, seq))
        self.counters.bri_sent += 1
        return Send(message, dst)

    def _revocation_ack(
        self, msg: BindingRevocationAcknowledgement, src: IPv6Address
    ) -> list[Effect]:
        r = self._pending.get(msg.sequence)
        if r is None or r.dst != src:
            # duplicate, late (after giving up) or not ours
            self.counters.ignored += 1
            return [
                Event(
                    EventKind.IGNORED,
                    "",
                    peer=src,
                    detail=f"BRA sequence {msg.sequence} matches no revocation",
                )
            ]
        del self._pending[msg.sequence]
        self.counters.bri_acknowledged += 1
        return [
            Event(
                EventKind.REVOKED,
                r.nai,
                peer=src,
                detail=f"sequence {msg.sequence}",
                status=msg.status,
            )
        ]

    def _cancel_revocations(self, nai: str, dst: IPv6Address) -> None:
        # the MS came back to an MPA we are still revoking: a late BRI would
        # tear down the fresh visitor entry there
        if not self._pending:
            return
        stale = [s for s, r in self._pending.items() if r.nai == nai and r.dst == dst]
        for seq in stale:
            del self._pending[seq]

    # --- helpers -----------------------------------------------------------------

    def _authorize(self, src: IPv6Address) -> IPv6Address | None:
        allowed = any(src in net for net in self._mpas)
        if len(self._authorized) > 65536:
            self._authorized.clear()  # bounded against spoofed sources
        interned = self._intern(src) if allowed else None
        self._authorized[src] = interned
        return interned

    def _intern(self, address: IPv6Address) -> IPv6Address:
        # one object per MPA: bindings share it and compare with ``is``
        return self._peers.setdefault(address, address)

    def _inside(self, loa: int, plen: int) -> bool:
        for net, mask, length in self._prefixes:
            if loa & mask == net and plen >= length:
                return True
        return False

    def _overlapping(self, lnp: int, plen: int, nai: str) -> Binding | None:
        """Another NAI's binding whose LNP overlaps ``lnp/plen``, or None.

        Bound LNPs are disjoint, so sorted by first address their last
        addresses ascend too: the one starting last at or before the new
        prefix's last address is the only one that can reach into it. The
        NAI's own binding is skipped (it is being replaced), looking one
        further.
        """
        last = lnp | _host_bits(plen)
        start = self._lnp_starts.floor(last)
        while start is not None:
            b = self._by_lnp[start]
            if b.nai == nai:
                start = self._lnp_starts.floor(start - 1) if start else None
                continue
            return b if start | _host_bits(b.prefix_length) >= lnp else None
        return None

    def _index(self, b: Binding) -> None:
        self.by_nai[b.nai] = b
        self.by_loa[b.loa] = b
        start = b.lnp_int
        self._by_lnp[start] = b
        self._lnp_starts.add(start)

    def _unindex_addresses(self, b: Binding) -> None:
        if self.by_loa.get(b.loa) is b:
            del self.by_loa[b.loa]
        start = b.lnp_int
        if self._by_lnp.get(start) is b:
            del self._by_lnp[start]
            self._lnp_starts.discard(start)

    def _remove(self, b: Binding) -> None:
        self.by_nai.pop(b.nai, None)
        self._unindex_addresses(b)

    def _compact_expiry(self) -> None:
        self._expiry = [(b.expires_at, b.nai) for b in self.by_nai.values()]
        heapq.heapify(self._expiry)
