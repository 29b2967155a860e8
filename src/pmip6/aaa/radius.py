"""MS profiles from a RADIUS server (RFC 6572, MAG-to-AAA interface).

When an MS attaches, the MPA authenticates it by its MAC address (seed 6.1)
and reads its profile (seed 7) from the Access-Accept:

    NAI          Mobile-Node-Identifier (145), else User-Name (1) of the Accept,
                 else the NAI the access layer gave
    LMAP         PMIP6-Home-LMA-IPv6-Address (147), else -Visited- (148)
    LNP          PMIP6-Home-HN-Prefix (151), else -Visited- (152)
    interface id PMIP6-Home-Interface-ID (153), else -Visited- (154)
    DHCP server  PMIP6-Home-DHCP6-Server-Address (159), else -Visited- (160)
    LoA          Framed-IPv6-Address (168, RFC 6911), a fixed address
    mode         dhcpv6 when Stateful-IPv6-Address-Pool (172, RFC 6911) or a
                 DHCPv6 server is given (the MPA relays to it, RFC 6572 4.16),
                 slaac otherwise; RADIUS has no standard hint for static.

The Access-Request follows the MAC authentication convention: User-Name and
User-Password both carry the MAC in the RFC 3580 form ("02-00-00-00-AA-01"),
as does Calling-Station-Id (RFC 6572 4.18). When 802.1X has already given the
NAI, User-Name carries the NAI instead (RFC 6572 5.1) and the password stays
the MAC, so the server can bind the identity to the station.

pyrad is the codec and dictionary; this module adds the transport: one
connected UDP socket per server, retransmission of the same packet (same
Identifier and Request Authenticator, RFC 5080 2.2.1), and failover through
the servers in their configured order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from ipaddress import IPv6Address, IPv6Network, ip_address
from pathlib import Path
from typing import Any, cast

from pyrad import packet as radius_packet
from pyrad.dictionary import Dictionary

from pmip6.aaa.base import Aaa, AaaError, AddressMode, MsProfile

log = logging.getLogger("pmip6.aaa.radius")

DICTIONARY_PATH = Path(__file__).with_name("dictionary.pmip6")

DEFAULT_PORT = 1812
DEFAULT_TIMEOUT = 2.0
DEFAULT_RETRIES = 2
# requests in flight per server
MAX_OUTSTANDING = 128

# RFC 2865 5.6 and RFC 6572 5.1: Service-Type SHOULD be Login (1)
SERVICE_TYPE_LOGIN = 1
# RFC 2865 5.41: the lab's access links are Ethernet bridges
NAS_PORT_TYPE_ETHERNET = 15

_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}([:-]?)(?:[0-9a-fA-F]{2}\1){4}[0-9a-fA-F]{2}$")

# attribute codes (RFC 2865, RFC 6572 section 4, RFC 6911 section 3)
USER_NAME = 1
MOBILE_NODE_IDENTIFIER = 145
PMIP6_HOME_LMA_IPV6_ADDRESS = 147
PMIP6_VISITED_LMA_IPV6_ADDRESS = 148
PMIP6_HOME_HN_PREFIX = 151
PMIP6_VISITED_HN_PREFIX = 152
PMIP6_HOME_INTERFACE_ID = 153
PMIP6_VISITED_INTERFACE_ID = 154
PMIP6_HOME_DHCP6_SERVER_ADDRESS = 159
PMIP6_VISITED_DHCP6_SERVER_ADDRESS = 160
FRAMED_IPV6_ADDRESS = 168
STATEFUL_IPV6_ADDRESS_POOL = 172

_NAMES = {
    USER_NAME: "User-Name",
    MOBILE_NODE_IDENTIFIER: "Mobile-Node-Identifier",
    PMIP6_HOME_LMA_IPV6_ADDRESS: "PMIP6-Home-LMA-IPv6-Address",
    PMIP6_VISITED_LMA_IPV6_ADDRESS: "PMIP6-Visited-LMA-IPv6-Address",
    PMIP6_HOME_HN_PREFIX: "PMIP6-Home-HN-Prefix",
    PMIP6_VISITED_HN_PREFIX: "PMIP6-Visited-HN-Prefix",
    PMIP6_HOME_INTERFACE_ID: "PMIP6-Home-Interface-ID",
    PMIP6_VISITED_INTERFACE_ID: "PMIP6-Visited-Interface-ID",
    PMIP6_HOME_DHCP6_SERVER_ADDRESS: "PMIP6-Home-DHCP6-Server-Address",
    PMIP6_VISITED_DHCP6_SERVER_ADDRESS: "PMIP6-Visited-DHCP6-Server-Address",
    FRAMED_IPV6_ADDRESS: "Framed-IPv6-Address",
    STATEFUL_IPV6_ADDRESS_POOL: "Stateful-IPv6-Address-Pool",
}


def _attr_label(code: int) -> str:
    return f"{_NAMES.get(code, 'attribute')} ({code})"


def calling_station_id(mac: str) -> str:
    """A MAC address in the RFC 3580 3.21 form: "02-00-00-00-AA-01".

    Raises ValueError for anything that is not a 48-bit MAC address.
    """
    if not _MAC_RE.match(mac):
        raise ValueError(f"not a MAC address: {mac!r}")
    digits = re.sub(r"[:-]", "", mac).upper()
    return "-".join(digits[i : i + 2] for i in range(0, 12, 2))


@dataclass(frozen=True)
class RadiusServer:
    """One RADIUS server; the secret never appears in repr or logs."""

    address: str
    port: int = DEFAULT_PORT
    secret: bytes = field(default=b"", repr=False)

    def __post_init__(self) -> None:
        ip_address(self.address)  # ValueError for a name or garbage
        if not 0 < self.port < 65536:
            raise ValueError(f"RADIUS port out of range: {self.port}")
        if not self.secret:
            raise ValueError(f"RADIUS server {self} has an empty secret")

    def __str__(self) -> str:
        if ":" in self.address:
            return f"[{self.address}]:{self.port}"
        return f"{self.address}:{self.port}"


SERVER_KEYS = frozenset({"address", "port", "secret", "secret_env"})


def _bad(key: str, why: str) -> ValueError:
    return ValueError(f"[aaa] {key}: {why}")


def check_config(config: Mapping[str, Any]) -> None:
    """Refuse a wrong value in an ``[aaa]`` table for RADIUS, naming its key.

    Environment variables (``secret_env``) are looked up later, by
    ``from_config``: the table is checked before the daemon runs.
    """
    entries = config.get("servers")
    if not isinstance(entries, list) or not entries:
        raise _bad("servers", f"expected a non-empty list of tables, got {entries!r}")
    for i, entry in enumerate(entries):
        _check_server(f"servers[{i}]", entry)

    timeout = config.get("timeout", DEFAULT_TIMEOUT)
    if (
        not isinstance(timeout, int | float)
        or isinstance(timeout, bool)
        or not 0 < timeout < float("inf")
    ):
        raise _bad("timeout", f"expected a positive number of seconds, got {timeout!r}")
    retries = config.get("retries", DEFAULT_RETRIES)
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise _bad("retries", f"expected an integer from 0 up, got {retries!r}")
    nas = config.get("nas_identifier")
    if nas is not None and (not isinstance(nas, str) or not nas):
        raise _bad("nas_identifier", f"expected a non-empty string, got {nas!r}")
    require = config.get("require_message_authenticator", True)
    if not isinstance(require, bool):
        raise _bad(
            "require_message_authenticator", f"expected true or false, got {require!r}"
        )


def _check_server(key: str, entry: object) -> None:
    if not isinstance(entry, Mapping):
        raise _bad(key, f"expected a table {{address, secret, ...}}, got {entry!r}")
    unknown = sorted(set(entry) - SERVER_KEYS)
    if unknown:
        known = ", ".join(sorted(SERVER_KEYS))
        raise _bad(f"{key}.{unknown[0]}", f"unknown key (known: {known})")
    address = entry.get("address")
    if address is None:
        raise _bad(f"{key}.address", "required")
    try:
        ip_address(address if isinstance(address, str) else "")
    except ValueError:
        # a host name would need a resolver at every request: an address only
        raise _bad(
            f"{key}.address", f"{address!r} is not an IPv4 or IPv6 address"
        ) from None
    port = entry.get("port", DEFAULT_PORT)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise _bad(f"{key}.port", f"expected 1 to 65535, got {port!r}")
    if ("secret" in entry) == ("secret_env" in entry):
        raise _bad(key, "needs exactly one of 'secret' and 'secret_env'")
    for name in ("secret", "secret_env"):
        value = entry.get(name, "x")
        if not isinstance(value, str) or not value:
            raise _bad(f"{key}.{name}", f"expected a non-empty string, got {value!r}")


def servers_from_config(
    entries: Sequence[Mapping[str, Any]], environ: Mapping[str, str] | None = None
) -> list[RadiusServer]:
    """``servers = [{address, port, secret | secret_env}, ...]`` as RadiusServers."""
    env = os.environ if environ is None else environ
    check_config({"servers": entries})
    servers = []
    for i, entry in enumerate(entries):
        if "secret_env" in entry:
            name = entry["secret_env"]
            if not env.get(name):
                raise _bad(
                    f"servers[{i}].secret_env",
                    f"environment variable {name!r} is not set or empty",
                )
            secret = env[name]
        else:
            secret = entry["secret"]
        servers.append(
            RadiusServer(
                address=entry["address"],
                port=entry.get("port", DEFAULT_PORT),
                secret=secret.encode(),
            )
        )
    return servers


class _NoAnswer(Exception):
    """One server gave no usable answer; the reason goes into the AaaError."""


class _Channel(asyncio.DatagramProtocol):
    """A connected UDP socket to one server and its outstanding requests."""

    def __init__(
        self,
        server: RadiusServer,
        dictionary: Dictionary,
        require_ma: bool,
        max_outstanding: int,
    ) -> None:
        self.server = server
        self.dictionary = dictionary
        self.require_ma = require_ma
        self.transport: asyncio.DatagramTransport | None = None
        # Identifier -> (request, future of the verified reply)
        self.pending: dict[
            int, tuple[radius_packet.AuthPacket, asyncio.Future[Any]]
        ] = {}
        self.next_id = int.from_bytes(os.urandom(1), "big")
        # at most 256 by the one-octet Identifier; fewer so that a wave of
        # attaches does not overflow the server's socket buffer (FreeRADIUS
        # drops part of a 500-request burst at Linux's default rmem_max)
        self.slots = asyncio.Semaphore(max_outstanding)
        # set when a reply failed verification since the last good one
        self.bad_replies = 0
        self.last_bad_reason = ""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.DatagramTransport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.transport = None
        self._fail_all(_NoAnswer(f"socket closed ({exc})" if exc else "socket closed"))

    def error_received(self, exc: Exception) -> None:
        # ICMP port or host unreachable on the connected socket: no server there
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        self._fail_all(_NoAnswer(f"unreachable ({reason})"))

    def _fail_all(self, exc: Exception) -> None:
        for _, future in self.pending.values():
            if not future.done():
                future.set_exception(exc)

    def allocate_id(self) -> int:
        for _ in range(256):
            ident = self.next_id
            self.next_id = (self.next_id + 1) % 256
            if ident not in self.pending:
                return ident
        raise RuntimeError("no free RADIUS Identifier")  # guarded by slots

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if len(data) < 20:
            log.debug("%s: ignoring a %d-octet datagram", self.server, len(data))
            return
        entry = self.pending.get(data[1])
        if entry is None:
            log.debug("%s: reply with unknown Identifier %d", self.server, data[1])
            return
        request, future = entry
        if future.done():
            return

        # RFC 2865 3: a reply whose Response Authenticator does not verify is
        # silently discarded; the request may still time out and fail over.
        # A Message-Authenticator in the reply is required by default against
        # BlastRADIUS (CVE-2024-3596); servers older than 2024 may not send one.
        try:
            reply = radius_packet.AuthPacket(
                packet=data, secret=self.server.secret, dict=self.dictionary
            )
            verified = request.VerifyReply(reply, data, enforce_ma=self.require_ma)
        except Exception as exc:  # any bytes from the network: never crash
            self._bad_reply(f"undecodable reply ({exc})")
            return
        if not verified:
            self._bad_reply("reply failed authenticator verification (wrong secret?)")
            return
        if reply.code not in (
            radius_packet.AccessAccept,
            radius_packet.AccessReject,
            radius_packet.AccessChallenge,
        ):
            self._bad_reply(f"unexpected reply code {reply.code}")
            return

        future.set_result(reply)

    def _bad_reply(self, reason: str) -> None:
        # counted, not logged at WARNING here: the request's failure is logged
        # once per server by RadiusAaa.authenticate with this reason
        self.bad_replies += 1
        self.last_bad_reason = reason
        log.debug("RADIUS server %s: %s", self.server, reason)


class RadiusAaa(Aaa):
    """Profiles from RADIUS servers tried in order (RFC 6572 section 5)."""

    def __init__(
        self,
        servers: Sequence[RadiusServer],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        retries: int = DEFAULT_RETRIES,
        nas_identifier: str | None = None,
        require_message_authenticator: bool = True,
        max_outstanding: int = MAX_OUTSTANDING,
        dictionary: Dictionary | None = None,
    ) -> None:
        if not servers:
            raise ValueError("RADIUS needs at least one server")
        if timeout <= 0:
            raise ValueError(f"RADIUS timeout must be positive: {timeout}")
        if retries < 0:
            raise ValueError(f"RADIUS retries must not be negative: {retries}")
        self.servers = list(servers)
        self.timeout = timeout
        self.retries = retries
        # RFC 6572 5.1: one of NAS-IP-Address, NAS-IPv6-Address, NAS-Identifier
        self.nas_identifier = nas_identifier or socket.gethostname()
        self.require_message_authenticator = require_message_authenticator
        if not 0 < max_outstanding <= 256:
            raise ValueError(f"max_outstanding must be 1 to 256: {max_outstanding}")
        self.max_outstanding = max_outstanding
        self.dictionary = dictionary or Dictionary(str(DICTIONARY_PATH))
        self._channels: dict[RadiusServer, _Channel] = {}
        self._channel_lock = asyncio.Lock()
        self._warned_silent: set[RadiusServer] = set()

    @classmethod
    def from_config(
        cls, config: Mapping[str, Any], environ: Mapping[str, str] | None = None
    ) -> RadiusAaa:
        """Build from an ``[aaa]`` table with ``backend = "radius"``.

        A wrong value raises ValueError naming its key (``[aaa] timeout: ...``).
        """
        check_config(config)
        return cls(
            servers_from_config(config["servers"], environ),
            timeout=float(config.get("timeout", DEFAULT_TIMEOUT)),
            retries=config.get("retries", DEFAULT_RETRIES),
            nas_identifier=config.get("nas_identifier"),
            require_message_authenticator=config.get(
                "require_message_authenticator", True
            ),
        )

    async def authenticate(self, mac: str, nai: str | None = None) -> MsProfile | None:
        try:
            station = calling_station_id(mac)
        except ValueError:
            # no Calling-Station-Id to send: refused, as the file backend does
            log.debug("not authenticating %r: not a MAC address", mac)
            return None
        failures = []

        for server in self.servers:
            try:
                reply = await self._exchange(server, station, nai)
            except _NoAnswer as exc:
                if server not in self._warned_silent:
                    self._warned_silent.add(server)
                    log.warning("RADIUS server %s: %s", server, exc)
                failures.append(f"{server}: {exc}")
                continue
            self._warned_silent.discard(server)

            if reply.code == radius_packet.AccessReject:
                log.debug("%s: Access-Reject from %s", nai or station, server)
                return None
            if reply.code == radius_packet.AccessChallenge:
                # MAC authentication has no second round to offer
                raise AaaError(
                    f"RADIUS server {server} sent an Access-Challenge for {station}"
                )
            profile = profile_from_accept(reply, station, nai)
            log.debug("%s: Access-Accept from %s: %s", profile.nai, server, profile)
            return profile

        raise AaaError("no RADIUS server answered: " + "; ".join(failures))

    async def close(self) -> None:
        for channel in self._channels.values():
            if channel.transport is not None:
                channel.transport.close()
        self._channels.clear()

    async def _channel(self, server: RadiusServer) -> _Channel:
        channel = self._channels.get(server)
        if channel is not None and channel.transport is not None:
            return channel
        # concurrent first requests must share one socket, not race for it
        async with self._channel_lock:
            channel = self._channels.get(server)
            if channel is not None and channel.transport is not None:
                return channel
            return await self._open_channel(server)

    async def _open_channel(self, server: RadiusServer) -> _Channel:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in server.address else socket.AF_INET
        try:
            _, channel = await loop.create_datagram_endpoint(
                lambda: _Channel(
                    server,
                    self.dictionary,
                    self.require_message_authenticator,
                    self.max_outstanding,
                ),
                remote_addr=(server.address, server.port),
                family=family,
            )
        except OSError as exc:
            raise _NoAnswer(f"cannot open a socket ({exc.strerror or exc})") from None
        self._channels[server] = channel
        return channel

    def _request(
        self, server: RadiusServer, ident: int, station: str, nai: str | None
    ) -> radius_packet.AuthPacket:
        request = radius_packet.AuthPacket(
            code=radius_packet.AccessRequest,
            id=ident,
            secret=server.secret,
            dict=self.dictionary,
        )
        # RFC 3579 3.2 and CVE-2024-3596: sign every Access-Request
        request.add_message_authenticator()
        request["User-Name"] = nai or station
        request["User-Password"] = request.PwCrypt(station)
        request["Calling-Station-Id"] = station
        request["NAS-Identifier"] = self.nas_identifier
        request["Service-Type"] = SERVICE_TYPE_LOGIN
        request["NAS-Port-Type"] = NAS_PORT_TYPE_ETHERNET
        return request

    async def _exchange(
        self, server: RadiusServer, station: str, nai: str | None
    ) -> radius_packet.AuthPacket:
        channel = await self._channel(server)
        loop = asyncio.get_running_loop()

        async with channel.slots:
            ident = channel.allocate_id()
            request = self._request(server, ident, station, nai)
            raw = request.RequestPacket()
            future: asyncio.Future[Any] = loop.create_future()
            channel.pending[ident] = (request, future)
            bad_before = channel.bad_replies
            try:
                for attempt in range(self.retries + 1):
                    if attempt:
                        log.debug(
                            "%s: retransmitting to %s (try %d of %d)",
                            nai or station,
                            server,
                            attempt + 1,
                            self.retries + 1,
                        )
                    if channel.transport is None:
                        raise _NoAnswer("socket closed")
                    channel.transport.sendto(raw)
                    with contextlib.suppress(TimeoutError):
                        reply: radius_packet.AuthPacket = await asyncio.wait_for(
                            asyncio.shield(future), self.timeout
                        )
                        return reply
            finally:
                channel.pending.pop(ident, None)
                if not future.done():
                    future.cancel()

        tries = self.retries + 1
        if channel.bad_replies > bad_before:
            raise _NoAnswer(
                f"{channel.last_bad_reason}, no valid reply after {tries} tries"
            )
        raise _NoAnswer(f"timed out after {tries} tries of {self.timeout:g} s")


def _values(reply: radius_packet.Packet, code: int) -> list[bytes]:
    values = reply.get(code) or []
    return [bytes(v) for v in values]


def _first(reply: radius_packet.Packet, *codes: int) -> tuple[int, bytes] | None:
    for code in codes:
        values = _values(reply, code)
        if values:
            return code, values[0]
    return None


def _ipv6_address(code: int, value: bytes) -> IPv6Address:
    # RFC 6572 4.4, 4.16 and RFC 6911 3.1: exactly 16 octets
    if len(value) != 16:
        raise AaaError(
            f"malformed {_attr_label(code)}: {len(value)} octets, expected 16"
        )
    return IPv6Address(value)


def _ipv6_prefix(code: int, value: bytes) -> IPv6Network:
    # RFC 6572 4.8: Reserved, Prefix-Length, then up to 16 octets of prefix
    label = _attr_label(code)
    if not 2 <= len(value) <= 18:
        raise AaaError(f"malformed {label}: {len(value)} octets, expected 2 to 18")
    prefix_length = value[1]
    if prefix_length > 128:
        raise AaaError(f"malformed {label}: prefix length {prefix_length} > 128")
    prefix_octets = value[2:]
    if len(prefix_octets) * 8 < prefix_length:
        raise AaaError(
            f"malformed {label}: {len(prefix_octets)} prefix octets "
            f"cannot hold a /{prefix_length}"
        )
    address = IPv6Address(prefix_octets.ljust(16, b"\0"))
    try:
        network = IPv6Network((address, prefix_length))
    except ValueError:
        raise AaaError(
            f"malformed {label}: {address}/{prefix_length} has bits set "
            "beyond the prefix length"
        ) from None
    if network.network_address == IPv6Address("::"):
        # the all-zeroes prefix asks the server to assign one (RFC 6572 4.8)
        raise AaaError(f"{label} carries no prefix (::/{prefix_length})")
    return network


def _interface_id(code: int, value: bytes) -> int:
    # RFC 6572 4.10: 8 octets
    if len(value) != 8:
        raise AaaError(
            f"malformed {_attr_label(code)}: {len(value)} octets, expected 8"
        )
    result: int = struct.unpack("!Q", value)[0]
    return result


def _text(code: int, value: bytes) -> str:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        raise AaaError(f"malformed {_attr_label(code)}: not UTF-8") from None
    if not text.strip():
        raise AaaError(f"malformed {_attr_label(code)}: empty")
    return text


def profile_from_accept(
    reply: radius_packet.Packet, station: str, nai: str | None = None
) -> MsProfile:
    """The MS profile an Access-Accept carries (RFC 6572 5.2, seed 7).

    Raises AaaError naming the attribute when one is malformed or one the
    MPA cannot work without is missing.
    """
    who = nai or station

    # RFC 6572 4.2: the MAG MUST use the Mobile-Node-Identifier it receives
    found = _first(reply, MOBILE_NODE_IDENTIFIER, USER_NAME)
    if found is not None:
        profile_nai = _text(*found)
    elif nai is not None:
        profile_nai = nai
    else:
        raise AaaError(
            f"Access-Accept for {who} has no {_attr_label(MOBILE_NODE_IDENTIFIER)}"
            f" or {_attr_label(USER_NAME)}"
        )

    found = _first(reply, PMIP6_HOME_LMA_IPV6_ADDRESS, PMIP6_VISITED_LMA_IPV6_ADDRESS)
    if found is None:
        raise AaaError(
            f"Access-Accept for {who} has no {_attr_label(PMIP6_HOME_LMA_IPV6_ADDRESS)}"
        )
    lmap_address = _ipv6_address(*found)

    found = _first(reply, PMIP6_HOME_HN_PREFIX, PMIP6_VISITED_HN_PREFIX)
    if found is None:
        raise AaaError(
            f"Access-Accept for {who} has no {_attr_label(PMIP6_HOME_HN_PREFIX)}"
        )
    lnp = _ipv6_prefix(*found)

    loa = None
    found = _first(reply, FRAMED_IPV6_ADDRESS)
    if found is not None:
        loa = _ipv6_address(*found)
        if loa not in lnp:
            raise AaaError(
                f"{_attr_label(FRAMED_IPV6_ADDRESS)} {loa} for {who} lies "
                f"outside its prefix {lnp}"
            )

    interface_id = None
    found = _first(reply, PMIP6_HOME_INTERFACE_ID, PMIP6_VISITED_INTERFACE_ID)
    if found is not None:
        interface_id = _interface_id(*found)

    dhcp_server = None
    found = _first(
        reply, PMIP6_HOME_DHCP6_SERVER_ADDRESS, PMIP6_VISITED_DHCP6_SERVER_ADDRESS
    )
    if found is not None:
        dhcp_server = _ipv6_address(*found)

    stateful = _first(reply, STATEFUL_IPV6_ADDRESS_POOL) is not None
    mode = AddressMode.DHCPV6 if stateful or dhcp_server else AddressMode.SLAAC

    return MsProfile(
        nai=profile_nai,
        lmap_address=lmap_address,
        lnp=lnp,
        loa=loa,
        address_mode=mode,
        dhcp_server=dhcp_server,
        interface_id=interface_id,
    )
