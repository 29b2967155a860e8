"""Watching a lab from outside: packet taps and a continuous ping.

Handover times come from a ``Tap``: AF_PACKET sockets opened inside the MPA
namespaces (on the base station bridge and on the uplink) that record every
IPv6 frame with the kernel's receive/transmit timestamp (SO_TIMESTAMPNS).
All namespaces share one clock, the sockets live in our own process (nothing
to start, nothing that can miss its first packets while starting), and the
timestamps are taken where the frames pass, not when a daemon logs them. So
"first frame from the MS at the new MPA", "PBA at the new MPA", "RA to the MS"
and "first echo reply from the MS through the new MPA" are four points on one
timeline.
"""

from __future__ import annotations

import contextlib
import re
import select
import signal
import socket
import struct
import subprocess
import threading
import time
from dataclasses import dataclass
from ipaddress import IPv6Address
from typing import Any

from pmip6.lab.netns import Namespace

ETH_P_ALL = 0x0003
ETH_P_IPV6 = 0x86DD
SO_TIMESTAMPNS = 35
SO_RCVBUFFORCE = 33
PACKET_OUTGOING = 4
SNAPLEN = 256

ICMP6_KINDS = {
    128: "echo-request",
    129: "echo-reply",
    130: "mld-query",
    131: "mld-report",
    133: "rs",
    134: "ra",
    135: "ns",
    136: "na",
    143: "mld-report",
}
MH_KINDS = {5: "pbu", 6: "pba", 7: "be", 16: "bri"}
EXTENSION_HEADERS = {0, 43, 60}


@dataclass(frozen=True)
class Frame:
    """One IPv6 frame seen by a tap, reduced to what the timeline needs."""

    ts: float  # kernel timestamp, seconds since the epoch
    where: str  # "mpa1/br0"
    outgoing: bool
    src_mac: str
    dst_mac: str
    src: IPv6Address
    dst: IPv6Address
    kind: str  # "ra", "pba", "echo-reply", "tunnel:echo-reply", "other", ...


def _mac(b: bytes) -> str:
    return ":".join(f"{x:02x}" for x in b)


def _kind(nh: int, data: bytes) -> str:
    """Classify an IPv6 payload starting at the upper-layer header ``nh``."""
    while nh in EXTENSION_HEADERS and len(data) >= 8:
        nh, length = data[0], (data[1] + 1) * 8
        data = data[length:]
    if nh == 58 and data:
        return ICMP6_KINDS.get(data[0], f"icmp6-{data[0]}")
    if nh == 135 and len(data) >= 3:
        return MH_KINDS.get(data[2], f"mh-{data[2]}")
    if nh == 41 and len(data) >= 40:
        return "tunnel:" + _kind(data[6], data[40:])
    return "other"


def parse_frame(frame: bytes, ts: float, where: str, outgoing: bool) -> Frame | None:
    if len(frame) < 54 or struct.unpack("!H", frame[12:14])[0] != ETH_P_IPV6:
        return None
    ip6 = frame[14:]
    return Frame(
        ts=ts,
        where=where,
        outgoing=outgoing,
        src_mac=_mac(frame[6:12]),
        dst_mac=_mac(frame[0:6]),
        src=IPv6Address(ip6[8:24]),
        dst=IPv6Address(ip6[24:40]),
        kind=_kind(ip6[6], ip6[40:]),
    )


class Tap:
    """AF_PACKET taps on interfaces of several namespaces, one reader thread."""

    def __init__(self) -> None:
        self.frames: list[Frame] = []
        self._socks: dict[socket.socket, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, ns_name: str, ifname: str, where: str) -> None:
        """Open a tap on ``ifname`` inside ``ns_name``, labelled ``where``."""
        with Namespace(ns_name).entered():
            sock = socket.socket(
                socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL)
            )
            try:
                sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
                # room for a few seconds of frames if our reader is starved
                sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 4 << 20)
                sock.bind((ifname, ETH_P_ALL))
            except OSError:
                sock.close()
                raise
        sock.setblocking(False)
        self._socks[sock] = where

    def start(self) -> Tap:
        self._thread = threading.Thread(target=self._loop, name="tap", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop reading and close every socket (they pin their namespaces)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        for sock in self._socks:
            sock.close()
        self._socks.clear()

    def __enter__(self) -> Tap:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _loop(self) -> None:
        socks = list(self._socks)
        while not self._stop.is_set():
            ready, _, _ = select.select(socks, [], [], 0.1)
            for sock in ready:
                self._drain(sock)

    def _drain(self, sock: socket.socket) -> None:
        where = self._socks.get(sock, "?")
        while True:
            try:
                data, anc, _, addr = sock.recvmsg(SNAPLEN, 64)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            ts = time.time()
            for level, kind, value in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("qq", value[:16])
                    ts = sec + nsec / 1e9
            frame = parse_frame(data, ts, where, addr[2] == PACKET_OUTGOING)
            if frame is not None:
                with self._lock:
                    self.frames.append(frame)

    def snapshot(self, since: float = 0.0) -> list[Frame]:
        with self._lock:
            return [f for f in self.frames if f.ts >= since]

    def clear(self) -> None:
        with self._lock:
            self.frames.clear()


@dataclass
class HandoverTimes:
    """Points of one handover on the tap timeline (epoch seconds or None)."""

    move: float
    first_frame: float | None = None
    pbu: float | None = None
    pba: float | None = None
    ra: float | None = None
    echo_reply: float | None = None

    def since_first(self, t: float | None) -> float | None:
        if t is None or self.first_frame is None:
            return None
        return t - self.first_frame

    @property
    def to_pbu(self) -> float | None:
        return self.since_first(self.pbu)

    @property
    def to_pba(self) -> float | None:
        return self.since_first(self.pba)

    @property
    def to_ra(self) -> float | None:
        return self.since_first(self.ra)

    @property
    def to_echo_reply(self) -> float | None:
        return self.since_first(self.echo_reply)

    @property
    def carrier(self) -> float | None:
        """Move command to the MS's first frame at the new MPA (kernel side)."""
        return None if self.first_frame is None else self.first_frame - self.move


def handover_times(
    frames: list[Frame], mpa: str, access: str, uplink: str, ms_mac: str,
    loa: IPv6Address | None, move: float,
) -> HandoverTimes:  # fmt: skip
    """Find the handover's points in the frames seen at the new MPA."""
    times = HandoverTimes(move=move)
    on_access, on_uplink = f"{mpa}/{access}", f"{mpa}/{uplink}"
    for f in sorted(frames, key=lambda f: f.ts):
        if f.ts < move:
            continue
        if f.where == on_access and not f.outgoing and f.src_mac == ms_mac:
            if times.first_frame is None:
                times.first_frame = f.ts
            if (
                times.echo_reply is None
                and f.kind == "echo-reply"
                and (loa is None or f.src == loa)
            ):
                times.echo_reply = f.ts
        elif f.where == on_access and f.outgoing and f.kind == "ra":
            if times.ra is None and f.dst_mac == ms_mac:
                times.ra = f.ts
        elif (
            f.where == on_uplink
            and not f.outgoing
            and f.kind == "pba"
            and times.pba is None
        ):
            times.pba = f.ts
        elif (
            f.where == on_uplink
            and f.outgoing
            and f.kind == "pbu"
            and times.pbu is None
        ):
            times.pbu = f.ts
    return times


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Pinger:
    """``ping -6 -i INTERVAL`` from a lab node; replies recorded by icmp_seq."""

    LINE = re.compile(r"icmp_seq=(\d+)")
    SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) received")

    def __init__(self, argv: list[str]) -> None:
        self.replies: dict[int, float] = {}
        self.transmitted: int | None = None  # from ping's own summary
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            # SIGINT asks ping for its summary; a background job's children
            # inherit SIGINT ignored, so give ping the default back
            preexec_fn=_default_sigint,
        )
        self._thread = threading.Thread(target=self._read, name="ping", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            summary = self.SUMMARY.search(line)
            if summary:
                self.transmitted = int(summary.group(1))
            m = self.LINE.search(line)
            if m and "bytes from" in line:
                with self._lock:
                    self.replies.setdefault(int(m.group(1)), time.time())

    def last_seq(self) -> int:
        with self._lock:
            return max(self.replies, default=0)

    def count(self) -> int:
        with self._lock:
            return len(self.replies)

    def wait_reply_after(self, seq: int, timeout: float) -> int | None:
        """Wait for a reply with icmp_seq above ``seq``; return it or None."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                later = [s for s in self.replies if s > seq]
            if later:
                return min(later)
            time.sleep(0.01)
        return None

    def arrival(self, seq: int) -> float | None:
        """When the reply for ``seq`` was read (epoch seconds), if it was."""
        with self._lock:
            return self.replies.get(seq)

    def lost_between(self, first: int, last: int) -> int:
        """Sequence numbers in (first, last) that got no reply."""
        with self._lock:
            return sum(1 for s in range(first + 1, last) if s not in self.replies)

    def stop(self) -> dict[str, Any]:
        with contextlib.suppress(ProcessLookupError):
            self.proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=2.0)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._thread.join(timeout=2.0)
        with self._lock:
            return {"received": len(self.replies), "last": max(self.replies, default=0)}
