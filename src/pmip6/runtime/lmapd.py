"""``pmip6 lmap --config lmap.toml``: the Local Mobility Anchor Point daemon.

Glue only: a raw socket for protocol 135 feeds decoded messages to
:class:`pmip6.core.lmap.LmapEngine` with the wall-clock time (binding expiry
times are persisted, so they must survive a restart); the engine's effects
are applied in order (data plane, store, sockets, logs); one timer follows
the engine's next deadline. A control socket answers ``bindings`` and
``status``.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import gc
import json
import logging
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

from pmip6.core.lmap import (
    Bind,
    Delete,
    Effect,
    Event,
    EventKind,
    LmapEngine,
    LmapSettings,
    Save,
    Send,
    Unbind,
)
from pmip6.dataplane import DataPlane, DataPlaneError
from pmip6.locking import exclusive_lock
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
from pmip6.runtime.store import BindingStore, StoreError
from pmip6.wire.errors import Malformed
from pmip6.wire.mh import (
    BindingAcknowledgement,
    MobileNodeIdentifier,
    Status,
    decode_mh,
    encode_mh,
    find_option,
)
from pmip6.wire.profile import profile_named

HELP = "run the Local Mobility Anchor Point daemon"

log = logging.getLogger("pmip6.lmap")

FLUSH_INTERVAL = 0.2  # seconds between store writes
FLUSH_BATCH = 5000  # changes that trigger a write at once
WARN_INTERVAL = 10.0  # seconds between two warnings about the same peer fault


# --- configuration --------------------------------------------------------------


@dataclass(frozen=True)
class LmapConfig:
    address: IPv6Address
    uplink: str | None
    prefixes: tuple[IPv6Network, ...]
    mpas: tuple[IPv6Network, ...]
    max_lifetime: int
    profile: str
    dataplane: str
    state: str
    control_socket: str
    keep_forwarding: bool
    log_level: str
    source: str = "config"  # the file it came from, for start-up errors

    def settings(self) -> LmapSettings:
        return LmapSettings(
            address=self.address,
            prefixes=self.prefixes,
            mpas=self.mpas,
            max_lifetime=self.max_lifetime,
            profile=profile_named(self.profile),
        )


_KEYS = {
    "address",
    "uplink",
    "prefixes",
    "mpas",
    "max_lifetime",
    "profile",
    "dataplane",
    "state",
    "control_socket",
    "keep_forwarding",
    "log_level",
}


def parse_config(
    data: dict[str, Any], where: str = "config", base: Path | None = None
) -> LmapConfig:
    """Validate the ``[lmap]`` table; raise ``ConfigError`` naming the key."""

    # a typo'd table would otherwise be ignored without a word
    others = sorted(set(data) - {"lmap"})
    section = data.get("lmap")
    if not isinstance(section, dict):
        found = f" (found [{others[0]}])" if others else ""
        raise ConfigError(f"{where}: missing [lmap] table{found}")
    if others:
        raise ConfigError(f"{where}: [{others[0]}]: unknown table (known: [lmap])")
    table = Table(section, where, "lmap", base)
    fail, text = table.fail, table.text
    table.check_keys(_KEYS)

    def networks(key: str) -> tuple[IPv6Network, ...]:
        value = section.get(key)
        if value is None:
            raise fail(key, "required")
        if not isinstance(value, list) or not value:
            raise fail(key, "expected a non-empty list of IPv6 addresses or prefixes")
        out = []
        for i, item in enumerate(value):
            try:
                if not isinstance(item, str):
                    raise ValueError
                out.append(IPv6Network(item))
            except ValueError:
                raise fail(
                    f"{key}[{i}]", f"{item!r} is not an IPv6 address or prefix"
                ) from None
        return tuple(out)

    address_text = text("address", None)
    try:
        address = IPv6Address(address_text)
    except ValueError:
        raise fail("address", f"{address_text!r} is not an IPv6 address") from None

    uplink = table.uplink()

    max_lifetime = section.get("max_lifetime", 3600)
    if (
        not isinstance(max_lifetime, int)
        or isinstance(max_lifetime, bool)
        or not 4 <= max_lifetime <= 262140
    ):
        raise fail(
            "max_lifetime", f"expected seconds from 4 to 262140, got {max_lifetime!r}"
        )

    profile = table.profile()
    dataplane = table.dataplane()
    keep = table.flag("keep_forwarding", False)

    log_level = table.log_level()

    return LmapConfig(
        address=address,
        uplink=uplink,
        prefixes=networks("prefixes"),
        mpas=networks("mpas"),
        max_lifetime=max_lifetime,
        profile=profile,
        dataplane=dataplane,
        state=table.path("state", "/var/lib/pmip6/lmap.db"),
        control_socket=table.path("control_socket", "/run/pmip6/lmap.sock"),
        keep_forwarding=keep,
        log_level=log_level,
        source=where,
    )


def load_config(path: str) -> LmapConfig:
    """Read and validate a TOML file; relative paths are relative to it."""
    return parse_config(read_toml(path), path, config_base(path))


def route_interface(address: IPv6Address, where: str = "config") -> str:
    """The interface of the route to ``address`` (``ip -6 route get``)."""
    out = subprocess.run(
        ["ip", "-6", "-j", "route", "get", str(address)],
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        return str(json.loads(out.stdout)[0]["dev"])
    except (ValueError, LookupError, TypeError):
        raise ConfigError(
            f"{where}: [lmap] uplink: not set and no route to {address} "
            f"({out.stderr.strip() or 'ip route get failed'})"
        ) from None


# --- the daemon -------------------------------------------------------------------


class LmapDaemon:
    """Drives one :class:`LmapEngine` from a socket, a timer and a store."""

    def __init__(self, config: LmapConfig, dataplane: DataPlane | None = None) -> None:
        self.config = config
        self.profile = profile_named(config.profile)
        self.dataplane = dataplane
        self.engine: LmapEngine | None = None
        self.store: BindingStore | None = None
        self.sock: MobilitySocket | None = None
        self.control: ControlServer | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._own = config.address
        self._dp_thread: concurrent.futures.ThreadPoolExecutor | None = None
        self._timer_at = float("inf")
        self._flush: asyncio.TimerHandle | None = None
        self._warned: dict[tuple[Any, ...], float] = {}
        self._started = 0.0
        self.malformed = 0
        self._stopping = False
        self._dp_started = False  # dp.start() was tried: stop() undoes it
        self._up = False  # start() completed
        self._lock: int | None = None  # the store's lock file, held while running

    async def start(self) -> None:
        """Start serving; a ``ConfigError`` names the key a failure stems from."""
        cfg = self.config
        now = time.time()
        self._started = now

        def fail(key: str, why: object) -> ConfigError:
            return ConfigError(f"{cfg.source}: [lmap] {key}: {why}")

        # claim the control socket and the store before anything changes: a
        # second LMAP on the same config must leave the running one alone
        self.control = ControlServer(
            cfg.control_socket,
            {"bindings": self._cmd_bindings, "status": self._cmd_status},
        )
        try:
            self.control.claim()
        except OSError as exc:
            raise fail("control_socket", exc) from None
        try:
            self._lock = lock_store(cfg.state)
        except OSError as exc:
            raise fail("state", exc) from None

        # binding store first: the data plane is reconciled from it
        try:
            self.store = BindingStore(cfg.state)
            saved = self.store.get_meta("bri_sequence")
            stored = self.store.load()
        except StoreError as exc:
            raise fail("state", exc) from None
        try:
            bri_sequence = int(saved) if saved else random.randrange(1 << 16)
        except ValueError:
            bri_sequence = random.randrange(1 << 16)
        self.engine = LmapEngine(cfg.settings(), bri_sequence=bri_sequence)
        restored = self.engine.restore(stored, now)
        # the cache is long-lived: keep the cyclic collector from walking it
        gc.collect()
        gc.freeze()

        if self.dataplane is None:
            self.dataplane = create_dataplane(cfg.dataplane, cfg.source, "lmap")
        dp = self.dataplane
        forwarding = self.engine.forwarding()
        if dp.name in ("none", "fake"):
            uplink = cfg.uplink or ""
        else:
            uplink = cfg.uplink or route_interface(
                _first_address(cfg.mpas[0], cfg.address), cfg.source
            )
            try:
                socket.if_nametoindex(uplink)
            except OSError:
                raise fail("uplink", f"no interface named {uplink!r}") from None
            # pyroute2's IPRoute runs its own event loop and refuses a thread
            # whose loop is running: kernel backends get one worker thread
            self._dp_thread = concurrent.futures.ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="lmap-dataplane"
            )

        def setup() -> None:
            dp.start()
            dp.lmap_setup(cfg.address, uplink)
            dp.lmap_reconcile(forwarding)

        self._dp_started = True
        try:
            await self._on_dataplane(setup)
        except DataPlaneError as exc:
            raise fail("dataplane", f"{dp.name}: {exc}") from None

        if not address_is_local(cfg.address):
            log.warning(
                "address %s is on no interface of this namespace: no PBU can reach it",
                cfg.address,
            )
        try:
            self.sock = MobilitySocket(cfg.address)
        except OSError as exc:
            raise fail("address", f"cannot open a raw MH socket: {exc}") from None
        self._own = cfg.address
        self.sock.intern_local(cfg.address)
        self.sock.set_handler(self._datagram)
        try:
            await self.control.start()
        except OSError as exc:
            raise fail("control_socket", exc) from None
        self._schedule()
        self._up = True
        log.info(
            "LMAP %s up: profile %s, data plane %s, %d bindings restored",
            cfg.address,
            self.profile.name,
            self.dataplane.name,
            restored,
        )

    async def stop(self) -> None:
        """Stop receiving, persist, remove forwarding unless kept, close sockets."""
        self._stopping = True
        for handle in (self._timer, self._flush):
            if handle is not None:
                handle.cancel()
        if self.sock is not None:
            self.sock.close()
        if self.control is not None:
            await self.control.close()
        if self.store is not None:
            if self.engine is not None:
                self.store.set_meta("bri_sequence", str(self.engine.bri_sequence))
            self.store.close()
        dp = self.dataplane
        if dp is not None and self._dp_started:
            try:
                await self._on_dataplane(
                    lambda: dp.stop(keep=self.config.keep_forwarding)
                )
            except DataPlaneError as exc:
                log.error("data plane stop: %s", exc)
        if self._dp_thread is not None:
            self._dp_thread.shutdown(wait=True)
        if self._lock is not None:
            # last: the next LMAP starts after our forwarding is gone
            os.close(self._lock)
            self._lock = None
        if self._up:
            log.info("LMAP %s stopped", self.config.address)

    # --- input ---------------------------------------------------------------------

    async def _on_dataplane(self, fn: Callable[[], None]) -> None:
        if self._dp_thread is None:
            fn()
        else:
            await asyncio.get_running_loop().run_in_executor(self._dp_thread, fn)

    def _datagram(self, data: bytes, src: IPv6Address, dst: IPv6Address) -> None:
        if dst is not self._own and dst != self._own:
            return  # another address of this host
        try:
            message = decode_mh(data, self.profile)
        except Malformed as exc:
            self.malformed += 1
            self._warn(("malformed", src), "malformed MH from %s: %s", src, exc)
            return
        assert self.engine is not None
        self._apply(self.engine.receive(message, src, dst, time.time()))
        deadline = self.engine.deadline_hint()
        if deadline is not None and deadline < self._timer_at:
            self._schedule(deadline)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = float("inf")
        assert self.engine is not None
        self._apply(self.engine.handle_timeout(time.time()))
        self._schedule()

    def _schedule(self, deadline: float | None = None) -> None:
        assert self.engine is not None
        if deadline is None:
            deadline = self.engine.next_deadline()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_at = float("inf")
        if deadline is None:
            return
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(max(0.0, deadline - time.time()), self._on_timer)
        self._timer_at = deadline

    # --- effects -------------------------------------------------------------------

    def _apply(self, effects: list[Effect]) -> None:
        assert self.sock is not None and self.store is not None
        routes: list[Bind | Unbind] = []
        later: list[Send] = []
        for effect in effects:
            t = type(effect)
            if t is Send:
                if routes:
                    # the tunnel is set up before the acknowledgement (seed 6.1)
                    later.append(effect)  # type: ignore[arg-type]
                else:
                    self._send(effect)  # type: ignore[arg-type]
            elif t is Save:
                self.store.put(effect.binding)  # type: ignore[union-attr]
            elif t is Bind or t is Unbind:
                routes.append(effect)  # type: ignore[arg-type]
            elif t is Delete:
                self.store.delete(effect.nai)  # type: ignore[union-attr]
            elif t is Event:
                self._log(effect)  # type: ignore[arg-type]
        if routes:
            self._program(routes, later)
        if self.store.pending >= FLUSH_BATCH:
            self._flush_store()
        elif self.store.pending and self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(
                FLUSH_INTERVAL, self._flush_store
            )

    def _send(self, effect: Send) -> None:
        assert self.sock is not None
        self.sock.send(encode_mh(effect.message, self.profile), effect.dst)

    def _program(self, routes: list[Bind | Unbind], then: list[Send]) -> None:
        dp = self.dataplane
        assert dp is not None

        def work() -> list[Bind]:
            failed = []
            for r in routes:
                try:
                    if type(r) is Bind:
                        dp.lmap_bind(r.target, r.care_of)
                    else:
                        dp.lmap_unbind(r.target)
                except DataPlaneError as exc:
                    log.error("forwarding of %s: %s", r.target, exc)
                    if type(r) is Bind:
                        failed.append(r)
            return failed

        if self._dp_thread is None:
            self._programmed(work(), then)
            return

        # kernel backends run on their own thread, in order; the messages
        # that wait for the tunnel leave when it is in place
        loop = asyncio.get_running_loop()
        future = self._dp_thread.submit(work)

        def done(f: concurrent.futures.Future[list[Bind]]) -> None:
            failed = [] if f.exception() else f.result()
            if then or failed:
                with contextlib.suppress(RuntimeError):  # loop closed at exit
                    loop.call_soon_threadsafe(self._programmed, failed, then)

        future.add_done_callback(done)

    def _programmed(self, failed: list[Bind], then: list[Send]) -> None:
        if self._stopping:
            return  # the store is closed and the socket with it
        if failed and self.engine is not None:
            # no tunnel, no binding: the PBA becomes a refusal (status 143)
            now = time.time()
            refused: set[tuple[str, IPv6Address]] = set()
            for bind in failed:
                effects = self.engine.forwarding_failed(bind.target, bind.care_of, now)
                refused.update(
                    (e.nai, bind.care_of) for e in effects if type(e) is Delete
                )
                self._apply(effects)
            then = [self._refusal(s, refused) for s in then]
        self._send_all(then)

    @staticmethod
    def _refusal(send: Send, refused: set[tuple[str, IPv6Address]]) -> Send:
        ba = send.message
        if type(ba) is not BindingAcknowledgement or ba.status >= 128:
            return send
        mnid = find_option(ba.options, MobileNodeIdentifier)
        if mnid is None or (mnid.nai, send.dst) not in refused:
            return send
        return Send(
            replace(
                ba,
                status=Status.FORWARDING_SETUP_FAILED,
                lifetime=0,
                options=(mnid,),
            ),
            send.dst,
        )

    def _send_all(self, effects: list[Send]) -> None:
        if self.sock is None:
            return
        for effect in effects:
            self._send(effect)

    def _flush_store(self) -> None:
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        assert self.store is not None
        try:
            self.store.flush()
        except Exception as exc:  # a full disk must not stop the signalling
            self._warn(("store",), "binding store write failed: %s", exc)

    def _log(self, event: Event) -> None:
        kind = event.kind
        if kind in (
            EventKind.REGISTERED,
            EventKind.MOVED,
            EventKind.DEREGISTERED,
            EventKind.EXPIRED,
        ):
            extra = f" ({event.detail})" if event.detail else ""
            log.info(
                "%s %s loa %s mpa %s%s",
                kind.value,
                event.nai,
                event.loa,
                event.peer,
                extra,
            )
        elif (
            kind is EventKind.REFUSED
            and event.status == self.profile.status_bce_missing
        ):
            # seed 9.1: "Binding Cache Entry missing" answers the BCC query of
            # every first attach; it is the normal flow, not a peer fault
            log.debug(
                "no binding for %s asked by %s (status %s)",
                event.nai,
                event.peer,
                event.status,
            )
        elif kind is EventKind.REFUSED:
            self._warn(
                ("refused", event.peer, event.status),
                "refused PBU from %s for %s: %s (status %s)",
                event.peer,
                event.nai or "?",
                event.detail,
                event.status,
            )
        elif kind is EventKind.REVOCATION_FAILED:
            log.warning(
                "revocation of %s at %s unanswered: %s",
                event.nai,
                event.peer,
                event.detail,
            )
        else:
            log.debug(
                "%s %s peer %s %s", kind.value, event.nai, event.peer, event.detail
            )

    def _warn(self, key: tuple[Any, ...], fmt: str, *args: Any) -> None:
        # peer faults: one line per fault and peer, at most every WARN_INTERVAL
        warn_limited(log, self._warned, WARN_INTERVAL, key, fmt, *args)

    # --- control -----------------------------------------------------------------

    def _cmd_bindings(self, request: dict[str, Any]) -> list[dict[str, Any]]:
        assert self.engine is not None
        return self.engine.bindings(time.time())

    def _cmd_status(self, request: dict[str, Any]) -> dict[str, Any]:
        assert self.engine is not None and self.store is not None
        assert self.dataplane is not None and self.sock is not None
        c = self.engine.counters
        return {
            "role": "lmap",
            "address": str(self.config.address),
            "profile": self.profile.name,
            "dataplane": self.dataplane.name,
            "uptime": round(time.time() - self._started, 1),
            "bindings": len(self.engine.by_nai),
            "pending_revocations": self.engine.pending_revocations,
            "pbu": c.pbu,
            "accepted": c.accepted,
            "refused": c.refused,
            "refused_by_status": {str(k): v for k, v in c.refused_by_status.items()},
            "retransmissions_answered": c.retransmissions_answered,
            "registered": c.registered,
            "moved": c.moved,
            "deregistered": c.deregistered,
            "expired": c.expired,
            "bri_sent": c.bri_sent,
            "bri_acknowledged": c.bri_acknowledged,
            "bri_unanswered": c.bri_unanswered,
            "malformed": self.malformed,
            "ignored": c.ignored,
            "binding_errors": c.binding_errors,
            "store_writes": self.store.writes,
            "socket_drops": self.sock.dropped,
            "send_errors": self.sock.send_errors,
        }


def lock_store(state: str) -> int | None:
    """Hold an exclusive lock on ``STATE.lock``: one LMAP per binding store.

    Returns the lock's descriptor (closing it releases the lock); raises
    ``OSError`` saying why when the lock is held or cannot be taken.
    """
    if state == ":memory:":
        return None
    path = state + ".lock"
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fd = exclusive_lock(path)
    except OSError as exc:
        raise OSError(f"cannot create {path}: {exc.strerror or exc}") from None
    if fd is None:
        raise OSError(f"{state} is in use by another LMAP (locked: {path})")
    return fd


def address_is_local(address: IPv6Address) -> bool:
    """Whether an interface of this namespace holds ``address`` (any state)."""
    try:
        links = json.loads(addresses_to(address) or "[]")
        return any(link.get("addr_info") for link in links)
    except (ValueError, AttributeError):
        return True  # cannot tell: no warning rather than a false one


def _first_address(network: IPv6Network, own: IPv6Address) -> IPv6Address:
    """An address of ``network`` to look the uplink up with (never ``own``)."""
    if network.num_addresses == 1:
        return network.network_address
    candidate = network.network_address + 1
    if candidate == own and network.num_addresses > 2:
        candidate += 1
    return candidate


# --- command line ---------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, help="the LMAP's TOML config file")
    parser.add_argument(
        "--log-level",
        type=str.lower,
        choices=LOG_LEVELS,
        help="override [lmap] log_level",
    )


async def serve(config: LmapConfig) -> None:
    daemon = LmapDaemon(config)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await daemon.start()
        await stop.wait()
    finally:
        await daemon.stop()


def run(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"pmip6 lmap: {exc}", file=sys.stderr)
        return 2
    try:
        setup_logging(args.log_level or config.log_level)
    except ValueError as exc:
        print(f"pmip6 lmap: --log-level: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(serve(config))
    except ConfigError as exc:
        # a start-up failure the config can fix: named like a parse error
        print(f"pmip6 lmap: {exc}", file=sys.stderr)
        return 2
    except (DataPlaneError, OSError) as exc:
        print(f"pmip6 lmap: {exc}", file=sys.stderr)
        return 1
    return 0
