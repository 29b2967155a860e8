"""``pmip6 mpa --config mpa.toml``: the Mobility Proxy Agent daemon.

Glue only. The access link (frames and bridge FDB events) and AAA answers feed
:class:`pmip6.core.mpa.MpaEngine` with a monotonic clock; Mobility Header
messages come from a raw protocol-135 socket. The engine's effects are applied
in order: AAA lookups, MH messages, RA/NA/NS frames on the access link, data
plane changes, logs. One timer follows the engine's next deadline. The control
socket answers ``visitors`` and ``status``.

On SIGTERM/SIGINT the daemon removes its forwarding state and control socket
but does not de-register its visitors: a restarted MPA learns them again from
the access link, and their bindings at the LMAP stay valid meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import json
import logging
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from ipaddress import IPv6Address
from pathlib import Path
from typing import Any

from pmip6.aaa import Aaa, AaaError, check_aaa_config, create_aaa
from pmip6.core.dhcp_relay import client_frame
from pmip6.core.mpa import (
    MAX_RA_DELAY_TIME,
    AskAaa,
    Attach,
    Detach,
    Effect,
    LogEvent,
    MpaEngine,
    MpaSettings,
    RelayDhcp,
    SendDhcp,
    SendMh,
    SendNa,
    SendNs,
    SendRa,
    nd_invalid,
)
from pmip6.dataplane import DataPlane, DataPlaneError
from pmip6.runtime.access import (
    AccessInterfaceState,
    AccessLink,
    BridgeWatcher,
    configure_access_interface,
)
from pmip6.runtime.config import (
    LOG_LEVELS,
    ConfigError,
    Table,
    addresses_to,
    config_base,
    create_dataplane,
    read_toml,
    warn_limited,
)
from pmip6.runtime.control import ControlServer
from pmip6.runtime.logs import setup_logging
from pmip6.runtime.mhsock import MobilitySocket
from pmip6.wire import nd
from pmip6.wire.errors import Malformed
from pmip6.wire.mh import (
    BindingAcknowledgement,
    BindingUpdate,
    decode_mh,
    encode_mh,
)
from pmip6.wire.profile import profile_named

HELP = "run the Mobility Proxy Agent daemon"

log = logging.getLogger("pmip6.mpa")

WARN_INTERVAL = 10.0
DHCP_SERVER_PORT = 547
MAX_TIMINGS = 1024  # attach timings kept for ``status``


# --- configuration --------------------------------------------------------------


@dataclass(frozen=True)
class MpaConfig:
    address: IPv6Address
    uplink: str | None
    access: tuple[str, ...]
    virtual_mac: str
    virtual_link_local: IPv6Address
    lifetime: int
    pbu_initial_timeout: float
    absent_timeout: float
    leave_delay: float
    router_lifetime: int
    ra_mtu: int | None
    dhcp_server: IPv6Address | None
    profile: str
    dataplane: str
    control_socket: str
    configure_access: bool
    log_level: str
    aaa: dict[str, Any] = field(default_factory=dict)
    ra_delay_max: float = MAX_RA_DELAY_TIME
    base: Path | None = None
    # the config file's name, for errors found when the daemon starts
    source: str = "config"

    def settings(self) -> MpaSettings:
        return MpaSettings(
            address=self.address,
            lifetime=self.lifetime,
            pbu_initial_timeout=self.pbu_initial_timeout,
            absent_timeout=self.absent_timeout,
            leave_delay=self.leave_delay,
            router_lifetime=self.router_lifetime,
            ra_mtu=self.ra_mtu,
            ra_delay_max=self.ra_delay_max,
            dhcp_server=self.dhcp_server,
            profile=profile_named(self.profile),
        )


_KEYS = {
    "address",
    "uplink",
    "access",
    "virtual_mac",
    "virtual_link_local",
    "lifetime",
    "pbu_initial_timeout",
    "absent_timeout",
    "leave_delay",
    "router_lifetime",
    "ra_mtu",
    "ra_delay_max",
    "dhcp_server",
    "profile",
    "dataplane",
    "control_socket",
    "configure_access",
    "log_level",
}
TABLES = ("mpa", "aaa")


def parse_config(
    data: dict[str, Any], where: str = "config", base: Path | None = None
) -> MpaConfig:
    """Validate the ``[mpa]`` and ``[aaa]`` tables; raise ``ConfigError``."""

    tables = sorted(set(data) - set(TABLES))
    if tables:
        raise ConfigError(
            f"{where}: [{tables[0]}]: unknown table (known: {', '.join(TABLES)})"
        )
    section = data.get("mpa")
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: missing [mpa] table")
    table = Table(section, where, "mpa", base)
    fail, text = table.fail, table.text
    table.check_keys(_KEYS)

    def address(key: str, default: str | None) -> IPv6Address:
        value = text(key, default)
        try:
            return IPv6Address(value)
        except ValueError:
            raise fail(key, f"{value!r} is not an IPv6 address") from None

    def number(key: str, default: float, low: float, high: float) -> float:
        value = section.get(key, default)
        if (
            not isinstance(value, int | float)
            or isinstance(value, bool)
            or not low <= value <= high
        ):
            raise fail(
                key, f"expected a number from {low:g} to {high:g}, got {value!r}"
            )
        return float(value)

    def integer(key: str, default: int, low: int, high: int) -> int:
        value = section.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool):
            raise fail(key, f"expected an integer, got {value!r}")
        if not low <= value <= high:
            raise fail(key, f"expected {low} to {high}, got {value}")
        return value

    own = address("address", None)
    uplink = table.uplink()

    access = section.get("access")
    if access is None:
        raise fail("access", "required")
    if (
        not isinstance(access, list)
        or not access
        or not all(isinstance(a, str) and a for a in access)
    ):
        raise fail("access", f"expected a list of interface names, got {access!r}")
    for i, ifname in enumerate(access):
        # the daemon gives each access interface the virtual MAC and
        # link-local address (seed 6.2): never the loopback or the uplink
        if ifname == "lo":
            raise fail(f"access[{i}]", "'lo' is the loopback, not an access link")
        if ifname == uplink:
            raise fail(f"access[{i}]", f"{ifname!r} is the uplink")
        if ifname in access[:i]:
            raise fail(f"access[{i}]", f"{ifname!r} is listed twice")

    vmac_text = text("virtual_mac", "02:00:5e:00:53:01")
    try:
        vmac = nd.normalise_mac(vmac_text)
    except ValueError:
        raise fail("virtual_mac", f"{vmac_text!r} is not a MAC address") from None
    if int(vmac[:2], 16) & 1:
        raise fail("virtual_mac", f"{vmac} is a group address")
    vll = address("virtual_link_local", "fe80::1")
    if not vll.is_link_local:
        raise fail("virtual_link_local", f"{vll} is not a link-local address")

    profile = table.profile()
    dataplane = table.dataplane()

    ra_mtu = section.get("ra_mtu")
    if ra_mtu is not None:
        ra_mtu = integer("ra_mtu", 1280, 1280, 65535)

    dhcp_server = None
    if section.get("dhcp_server") is not None:
        dhcp_server = address("dhcp_server", None)
        # RFC 8415 19.1 lets a relay send to All_DHCP_Servers (ff05::1:3),
        # but the relay takes answers only from the address it sent to: the
        # server's own, which must be routable without a scope
        unusable = (
            "a link-local address"
            if dhcp_server.is_link_local
            else "a multicast address"
            if dhcp_server.is_multicast
            else "the unspecified address"
            if dhcp_server.is_unspecified
            else None
        )
        if unusable:
            raise fail(
                "dhcp_server",
                f"{dhcp_server} is {unusable}; name the server's own "
                "global or unique-local address",
            )

    configure = table.flag("configure_access", True)

    log_level = table.log_level()

    control = table.path("control_socket", "/run/pmip6/mpa.sock")

    aaa = data.get("aaa")
    if not isinstance(aaa, dict):
        raise ConfigError(f'{where}: missing [aaa] table (backend = "file" ...)')
    try:
        check_aaa_config(aaa)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None

    return MpaConfig(
        address=own,
        uplink=uplink,
        access=tuple(access),
        virtual_mac=vmac,
        virtual_link_local=vll,
        lifetime=integer("lifetime", 300, 4, 262140),
        pbu_initial_timeout=number("pbu_initial_timeout", 1.0, 0.01, 32.0),
        absent_timeout=number("absent_timeout", 10.0, 0.1, 86400.0),
        leave_delay=number("leave_delay", 3.0, 0.0, 3600.0),
        router_lifetime=integer("router_lifetime", 1800, 0, 9000),
        ra_mtu=ra_mtu,
        # RFC 4861 6.2.6, 10: at most MAX_RA_DELAY_TIME; 0 answers at once
        ra_delay_max=number("ra_delay_max", MAX_RA_DELAY_TIME, 0.0, MAX_RA_DELAY_TIME),
        dhcp_server=dhcp_server,
        profile=profile,
        dataplane=dataplane,
        control_socket=control,
        configure_access=configure,
        log_level=log_level,
        aaa=dict(aaa),
        base=base,
        source=where,
    )


def load_config(path: str) -> MpaConfig:
    """Read and validate a TOML file; relative paths are relative to it."""
    return parse_config(read_toml(path), path, config_base(path))


def address_interface(address: IPv6Address) -> str | None:
    """The interface that carries ``address`` (the default uplink), or None."""
    try:
        return str(json.loads(addresses_to(address))[0]["ifname"])
    except (ValueError, LookupError, TypeError):
        return None


def link_kind(ifname: str) -> str | None:
    """``bridge``, ``veth``, ... for an interface; "" for a plain device,
    ``loopback`` for the loopback device.

    None when there is no interface of that name (in this namespace).
    """
    out = subprocess.run(
        ["ip", "-j", "-d", "link", "show", "dev", ifname],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        return None
    try:
        link = json.loads(out.stdout)[0]
        if link.get("link_type") == "loopback":
            return "loopback"
        return str(link.get("linkinfo", {}).get("info_kind", ""))
    except (ValueError, LookupError, TypeError, AttributeError):
        return ""


@dataclass(frozen=True)
class HostCheck:
    """What ``check_host`` found: the uplink, and which access links are bridges."""

    uplink: str
    bridges: frozenset[str]


def check_host(config: MpaConfig, dataplane: str) -> HostCheck:
    """Check the interfaces the config names before anything is changed.

    Raises ``ConfigError`` naming the file and the key; logs a warning for what
    works but may not be meant (an access link that is not a bridge, an own
    address that no interface holds yet).
    """
    where = config.source

    # the uplink first: an access interface must not be the one it resolves to
    holder = address_interface(config.address)
    if config.uplink is not None:
        if link_kind(config.uplink) is None:
            raise ConfigError(
                f"{where}: [mpa] uplink: no interface named {config.uplink!r}"
            )
        uplink = config.uplink
    elif dataplane in ("none", "fake"):
        uplink = holder or ""
    elif holder is None:
        raise ConfigError(
            f"{where}: [mpa] uplink: not set, and no interface holds "
            f"[mpa] address {config.address}"
        )
    else:
        uplink = holder

    kinds = {}
    for ifname in config.access:
        kind = link_kind(ifname)
        if kind is None:
            raise ConfigError(f"{where}: [mpa] access: no interface named {ifname!r}")
        if kind == "loopback":
            raise ConfigError(
                f"{where}: [mpa] access: {ifname!r} is the loopback, not an access link"
            )
        if ifname == uplink:
            raise ConfigError(
                f"{where}: [mpa] access: {ifname!r} is the uplink (it holds "
                f"[mpa] address {config.address})"
            )
        kinds[ifname] = kind
    bridges = frozenset(a for a in config.access if kinds[a] == "bridge")
    for ifname in config.access:
        if ifname not in bridges:
            # a point-to-point access link: whoever sends on it is the station
            log.warning(
                "access interface %s is not a bridge: stations are noticed from "
                "their frames only (no FDB events), and any sender on it is "
                "taken for a station",
                ifname,
            )
    if holder is None:
        log.warning(
            "address %s is on no interface: no PBU can leave and no PBA arrive "
            "until it is configured",
            config.address,
        )
    return HostCheck(uplink=uplink, bridges=bridges)


# --- the daemon -------------------------------------------------------------------


@dataclass
class AttachTiming:
    """Daemon-side timestamps of one attachment (for ``status`` and bench)."""

    first_frame: float
    pbu_sent: float | None = None
    pba_received: float | None = None
    ra_sent: float | None = None


class MpaDaemon:
    """Drives one :class:`MpaEngine` from the access link, AAA and the MH socket."""

    def __init__(
        self,
        config: MpaConfig,
        dataplane: DataPlane | None = None,
        aaa: Aaa | None = None,
    ) -> None:
        self.config = config
        self.profile = profile_named(config.profile)
        self.dataplane = dataplane
        self.aaa = aaa
        self.engine = MpaEngine(config.settings(), random.randrange(1 << 16))
        self.sock: MobilitySocket | None = None
        self.dhcp: socket.socket | None = None
        self.control: ControlServer | None = None
        self.links: dict[str, AccessLink] = {}
        self.watchers: list[BridgeWatcher] = []
        self._access_state: list[AccessInterfaceState] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._warned: dict[tuple[Any, ...], float] = {}
        self._started = 0.0
        self._running = False  # start() completed: stop() says "stopped"
        self._dp_started = False  # dataplane.start() was called: stop() undoes it
        self._closed = False
        self.malformed_mh = 0
        # RS, NS and NA failing RFC 4861 6.1.1 / 7.1.1 checks, dropped
        self.nd_invalid = 0
        self.timings: dict[str, AttachTiming] = {}
        # the kernel backends are synchronous (pyroute2's IPRoute runs its own
        # event loop and refuses a thread whose loop is running): every data
        # plane call runs, in order, on this one worker thread
        self._dp_thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="mpa-dataplane"
        )

    async def start(self) -> None:
        """Check the config against the host, then take over the access links.

        A ``ConfigError`` (naming the file and key) comes before anything in
        the kernel changed, or for a data plane that cannot be set up; any
        failure undoes what was done.
        """
        cfg = self.config
        self._started = time.monotonic()
        try:
            if self.aaa is None:
                try:
                    self.aaa = create_aaa(cfg.aaa, cfg.base)
                except ValueError as exc:
                    raise ConfigError(f"{cfg.source}: {exc}") from None
            if self.dataplane is None:
                self.dataplane = create_dataplane(cfg.dataplane, cfg.source, "mpa")
            host = check_host(cfg, self.dataplane.name)
            # a second MPA on the same config must not touch the running
            # one's links: the control socket is claimed first
            self.control = ControlServer(
                cfg.control_socket,
                {"visitors": self._cmd_visitors, "status": self._cmd_status},
            )
            try:
                self.control.claim()
            except OSError as exc:
                raise ConfigError(
                    f"{cfg.source}: [mpa] control_socket: {exc}"
                ) from None
            await self._take_over(host)
        except BaseException:
            await self._close()
            raise
        self._running = True
        log.info(
            "MPA %s up: access %s, profile %s, data plane %s",
            cfg.address,
            ", ".join(cfg.access),
            self.profile.name,
            self.dataplane.name,
        )

    async def _take_over(self, host: HostCheck) -> None:
        cfg = self.config
        dp = self.dataplane
        assert dp is not None

        def setup() -> None:
            self._dp_started = True
            dp.start()
            dp.mpa_setup(cfg.address, host.uplink)
            # nothing is attached until stations show up again (restart)
            dp.mpa_reconcile({})

        try:
            await asyncio.get_running_loop().run_in_executor(self._dp_thread, setup)
        except DataPlaneError as exc:
            raise ConfigError(
                f"{cfg.source}: [mpa] dataplane: {dp.name}: {exc}"
            ) from None

        for ifname in cfg.access:
            if cfg.configure_access:
                try:
                    state = await configure_access_interface(
                        ifname, cfg.virtual_mac, cfg.virtual_link_local
                    )
                except ValueError as exc:
                    raise ConfigError(f"{cfg.source}: [mpa] access: {exc}") from None
                self._access_state.append(state)
            link = AccessLink(ifname, self._frame_handler(ifname))
            link.start()
            self.links[ifname] = link
            # a bridge (the seed's base station) tells us when a MAC appears
            # or goes, even before the station sends anything we can see
            if ifname in host.bridges:
                watcher = BridgeWatcher(ifname, *self._fdb_handlers(ifname))
                await watcher.start(replay=True)
                self.watchers.append(watcher)

        self.sock = MobilitySocket(cfg.address)
        self.sock.set_handler(self._datagram)
        self._open_dhcp()
        assert self.control is not None
        await self.control.start()

    async def stop(self) -> None:
        """Remove forwarding state and sockets; de-register nobody (see module)."""
        running = self._running
        await self._close()
        if running:
            log.info("MPA %s stopped", self.config.address)

    async def _close(self) -> None:
        """Undo whatever start() did so far; a second call does nothing."""
        if self._closed:
            return
        self._closed = True
        self._running = False
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        self._apply(self.engine.shutdown())
        for watcher in self.watchers:
            watcher.close()
        self.watchers.clear()
        for link in self.links.values():
            link.close()
        self.links.clear()
        # last configured first: each puts back what it found
        for state in reversed(self._access_state):
            await state.restore()
        self._access_state.clear()
        if self.sock is not None:
            self.sock.close()
            self.sock = None
        if self.dhcp is not None:
            asyncio.get_running_loop().remove_reader(self.dhcp.fileno())
            self.dhcp.close()
            self.dhcp = None
        if self.control is not None:
            await self.control.close()
        if self.aaa is not None:
            with contextlib.suppress(Exception):
                await self.aaa.close()
        if self.dataplane is not None and self._dp_started:
            try:
                await asyncio.get_running_loop().run_in_executor(
                    self._dp_thread, self.dataplane.stop
                )
            except DataPlaneError as exc:
                log.error("data plane stop: %s", exc)
        self._dp_thread.shutdown(wait=True)

    # --- input ---------------------------------------------------------------------

    def _fdb_handlers(
        self, ifname: str
    ) -> tuple[Callable[[str, str], None], Callable[[str], None]]:
        def seen(mac: str, port: str) -> None:
            self.station_seen(ifname, mac)

        def gone(mac: str) -> None:
            self.station_gone(ifname, mac)

        return seen, gone

    def _frame_handler(self, ifname: str) -> Callable[[nd.LinkFrame], None]:
        return lambda frame: self.frame(ifname, frame)

    def frame(self, ifname: str, frame: nd.LinkFrame) -> None:
        """One decoded frame from the access link ``ifname``."""
        mac = frame.src_mac
        if mac == self.config.virtual_mac or int(mac[:2], 16) & 1:
            return
        reason = nd_invalid(frame)
        if reason is not None:
            # RFC 4861 6.1.1, 7.1.1: silently discarded, not even a sign of life
            self.nd_invalid += 1
            log.debug(
                "%s: %s from %s discarded: %s", ifname, frame.kind.value, mac, reason
            )
            return
        now = time.monotonic()
        kind = nd.FrameKind
        engine = self.engine
        if self.engine.visitor(mac) is None:
            self._new_timing(mac, now)
        if frame.kind is kind.ROUTER_SOLICITATION:
            effects = engine.router_solicitation(mac, ifname, frame.src_ip, now)
        elif (
            frame.kind is kind.NEIGHBOR_SOLICITATION
            and frame.src_ip.is_unspecified
            and frame.target is not None
        ):
            effects = engine.dad_ns(mac, ifname, frame.target, now)
        elif frame.kind is kind.NEIGHBOR_ADVERTISEMENT and frame.target is not None:
            # may answer a LoA probe (a returning MS that does no DAD)
            effects = engine.neighbor_advertisement(
                mac, ifname, frame.src_ip, frame.target, now
            )
        elif frame.kind is kind.MLD_REPORT:
            try:
                report = nd.decode_mld_report(frame.payload)
            except Malformed as exc:
                log.debug("%s: MLD report from %s not decoded: %s", ifname, mac, exc)
                report = nd.MldReport()
            effects = engine.mld_report(
                mac, ifname, frame.src_ip, report.joined, report.left, now
            )
        elif frame.kind is kind.DHCPV6:
            effects = engine.dhcp_from_station(
                mac, ifname, frame.src_ip, frame.payload, now
            )
        elif frame.kind is kind.ROUTER_ADVERTISEMENT:
            return  # another router on the access link: not a station's sign
        else:
            effects = engine.packet_from(mac, ifname, frame.src_ip, now)
        self._apply(effects)

    def station_seen(self, ifname: str, mac: str) -> None:
        """The bridge learnt ``mac`` on a port of ``ifname``."""
        now = time.monotonic()
        if self.engine.visitor(mac) is None:
            self._new_timing(mac, now)
        self._apply(self.engine.station_seen(mac, ifname, now))

    def station_gone(self, ifname: str, mac: str) -> None:
        self._apply(self.engine.station_gone(mac, time.monotonic()))

    def _datagram(self, data: bytes, src: IPv6Address, dst: IPv6Address) -> None:
        if dst != self.config.address:
            return
        try:
            message = decode_mh(data, self.profile)
        except Malformed as exc:
            self.malformed_mh += 1
            self._warn(("malformed", src), "malformed MH from %s: %s", src, exc)
            return
        now = time.monotonic()
        if isinstance(message, BindingAcknowledgement):
            mac = self.engine.station_for_sequence(message.sequence)
            timing = self.timings.get(mac) if mac else None
            if timing is not None and timing.pba_received is None:
                timing.pba_received = now
        self._apply(self.engine.mh_received(src, message, now))

    def _open_dhcp(self) -> None:
        """The relay's socket: UDP port 547 on the own address (RFC 8415 19)."""
        sock = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        try:
            sock.setblocking(False)
            sock.bind((str(self.config.address), DHCP_SERVER_PORT))
        except OSError as exc:
            sock.close()
            log.warning("DHCPv6 relay off: cannot bind port 547: %s", exc)
            return
        self.dhcp = sock
        asyncio.get_running_loop().add_reader(sock.fileno(), self._dhcp_readable)

    def _dhcp_readable(self) -> None:
        assert self.dhcp is not None
        for _ in range(64):
            try:
                data, addr = self.dhcp.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                log.debug("DHCPv6 receive error: %s", exc)
                return
            src = IPv6Address(addr[0].partition("%")[0])
            self._apply(self.engine.dhcp_from_server(src, data, time.monotonic()))

    async def _ask_aaa(self, mac: str, nai: str | None) -> None:
        assert self.aaa is not None
        try:
            profile = await self.aaa.authenticate(mac, nai)
        except AaaError as exc:
            self._apply(self.engine.aaa_error(mac, str(exc), time.monotonic()))
            return
        self._apply(self.engine.aaa_result(mac, profile, time.monotonic()))

    def _on_timer(self) -> None:
        self._timer = None
        self._apply(self.engine.tick(time.monotonic()))

    def _schedule(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        deadline = self.engine.next_deadline()
        if deadline is None:
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(
            max(0.0, deadline - time.monotonic()), self._on_timer
        )

    # --- effects -------------------------------------------------------------------

    def _apply(self, effects: list[Effect]) -> None:
        cfg = self.config
        for effect in effects:
            if isinstance(effect, SendMh):
                self._send_mh(effect)
            elif isinstance(effect, SendRa):
                self._send_frame(
                    effect.access,
                    nd.router_advertisement(
                        src_mac=cfg.virtual_mac,
                        src_ip=cfg.virtual_link_local,
                        dst_mac=effect.mac,
                        dst_ip=effect.dst,
                        managed=effect.managed,
                        other=effect.other,
                        router_lifetime=effect.router_lifetime,
                        prefixes=[
                            nd.PrefixInformation(
                                prefix=effect.prefix,
                                on_link=False,  # seed 6.2, 7.2: L=0
                                autonomous=effect.autonomous,
                            )
                        ],
                        mtu=effect.mtu,
                    ),
                )
                timing = self.timings.get(effect.mac)
                if timing is not None and timing.ra_sent is None:
                    timing.ra_sent = time.monotonic()
            elif isinstance(effect, SendNa):
                self._send_frame(
                    effect.access,
                    nd.neighbor_advertisement(
                        src_mac=cfg.virtual_mac,
                        src_ip=cfg.virtual_link_local,
                        dst_mac=effect.mac,
                        dst_ip=effect.dst,
                        target=effect.target,
                        router=False,
                        solicited=False,  # RFC 4861 7.2.4: answer to DAD
                        override=True,
                    ),
                )
            elif isinstance(effect, SendNs):
                self._send_frame(
                    effect.access,
                    nd.neighbor_solicitation(
                        src_mac=cfg.virtual_mac,
                        src_ip=cfg.virtual_link_local,
                        dst_mac=effect.mac,
                        dst_ip=effect.target,
                    ),
                )
            elif isinstance(effect, RelayDhcp):
                if self.dhcp is not None:
                    try:
                        self.dhcp.sendto(
                            effect.payload, (str(effect.server), DHCP_SERVER_PORT)
                        )
                    except OSError as exc:
                        log.debug("DHCPv6 relay to %s: %s", effect.server, exc)
            elif isinstance(effect, SendDhcp):
                self._send_frame(
                    effect.access,
                    client_frame(
                        effect.payload,
                        src_mac=cfg.virtual_mac,
                        src_address=cfg.virtual_link_local,
                        dst_mac=effect.mac,
                        dst_address=effect.dst,
                    ),
                )
            elif isinstance(effect, AskAaa):
                task = asyncio.get_running_loop().create_task(
                    self._ask_aaa(effect.mac, effect.nai)
                )
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            elif isinstance(effect, Attach | Detach):
                self._dp_thread.submit(self._forwarding, effect)
            elif isinstance(effect, LogEvent):
                log.log(effect.level, "%s", effect.message)
        self._schedule()

    def _forwarding(self, effect: Attach | Detach) -> None:
        """Runs on the data plane thread."""
        assert self.dataplane is not None
        try:
            if isinstance(effect, Attach):
                self.dataplane.mpa_attach(effect.target, effect.access, effect.lmap)
            else:
                self.dataplane.mpa_detach(effect.target)
        except DataPlaneError as exc:
            log.error("forwarding of %s: %s", effect.target, exc)
        except Exception:
            log.exception("forwarding of %s failed", effect.target)

    def _send_mh(self, effect: SendMh) -> None:
        if self.sock is None:
            return
        message = effect.message
        if isinstance(message, BindingUpdate):
            mac = self.engine.station_for_sequence(message.sequence)
            timing = self.timings.get(mac) if mac else None
            if timing is not None and timing.pbu_sent is None:
                timing.pbu_sent = time.monotonic()
        self.sock.send(encode_mh(message, self.profile), effect.dst)

    def _new_timing(self, mac: str, now: float) -> None:
        # the latest attachments only: a long-running MPA sees many stations
        self.timings.pop(mac, None)
        if len(self.timings) >= MAX_TIMINGS:
            del self.timings[next(iter(self.timings))]
        self.timings[mac] = AttachTiming(first_frame=now)

    def _send_frame(self, ifname: str, frame: bytes) -> None:
        link = self.links.get(ifname)
        if link is not None:
            try:
                link.send(frame)
            except OSError as exc:
                log.debug("%s: send failed: %s", ifname, exc)

    def _warn(self, key: tuple[Any, ...], fmt: str, *args: Any) -> None:
        warn_limited(log, self._warned, WARN_INTERVAL, key, fmt, *args)

    # --- control -----------------------------------------------------------------

    def _cmd_visitors(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        return self.engine.visitors(time.monotonic())

    def _cmd_status(self, request: dict[str, Any]) -> dict[str, Any]:
        timings = {}
        for mac, t in self.timings.items():
            timings[mac] = {
                "first_frame_to_pbu_ms": _ms(t.first_frame, t.pbu_sent),
                "pba_to_ra_ms": _ms(t.pba_received, t.ra_sent),
                "first_frame_to_ra_ms": _ms(t.first_frame, t.ra_sent),
            }
        return {
            "role": "mpa",
            "address": str(self.config.address),
            "access": list(self.config.access),
            "profile": self.profile.name,
            "dataplane": self.dataplane.name if self.dataplane else None,
            "uptime": round(time.monotonic() - self._started, 1),
            "visitors": len(self.engine),
            **self.engine.counters,
            "malformed_frames": sum(k.malformed for k in self.links.values()),
            "malformed_mh": self.malformed_mh,
            "nd_invalid": self.nd_invalid,
            "frames_received": sum(k.received for k in self.links.values()),
            "frames_sent": sum(k.sent for k in self.links.values()),
            "attach_timings": timings,
        }


def _ms(start: float | None, end: float | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start) * 1000, 3)


# --- command line ---------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="the MPA's TOML config file")
    parser.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        help="override [mpa] log_level",
    )


async def serve(config: MpaConfig) -> None:
    daemon = MpaDaemon(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # start() undoes its own work when it fails: stop only a started daemon
    await daemon.start()
    try:
        await stop.wait()
    finally:
        await daemon.stop()


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        setup_logging(args.log_level or config.log_level)
    except (ConfigError, ValueError) as exc:
        print(f"pmip6 mpa: {exc}", file=sys.stderr)
        return 2
    # pyroute2 logs every netlink message at DEBUG: keep our debug log readable
    logging.getLogger("pyroute2").setLevel(logging.WARNING)
    try:
        asyncio.run(serve(config))
    except ConfigError as exc:
        print(f"pmip6 mpa: {exc}", file=sys.stderr)
        return 2
    except (DataPlaneError, OSError, ValueError) as exc:
        log.error("%s", exc)
        return 1
    return 0
