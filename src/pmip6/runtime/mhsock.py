"""An asyncio raw socket for Mobility Header messages (IPv6 protocol 135).

Each datagram comes with its source and destination address (IPV6_RECVPKTINFO),
so one socket serves any number of local addresses, and a reply can leave from
the address the request came to.

Checksum: Linux gives every protocol-135 raw socket IPV6_CHECKSUM offset 4
by default (RFC 3542 3.1; set in rawv6_init_sk, whether or not the kernel has
CONFIG_IPV6_MIP6): the kernel fills the MH checksum on send and drops a
datagram with a bad one on receive (checked here over loopback and veth). The
socket sets the option explicitly anyway, so that behaviour never depends on
that default. Linux's own MH sanity check (ICMPv6 Parameter Problem for a bad
Payload Proto or Header Len) needs CONFIG_IPV6_MIP6, which this project's
reference kernel lacks: the codec must catch those faults itself.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import logging
import socket
import struct
from collections.abc import Callable
from ipaddress import IPv6Address

log = logging.getLogger(__name__)

MH_PROTO = 135
MH_CHECKSUM_OFFSET = 4  # Checksum field offset in the MH (RFC 6275 6.1.1)
IPV6_FREEBIND = getattr(socket, "IPV6_FREEBIND", 78)
MAX_DATAGRAM = 65535
_PKTINFO_SPACE = socket.CMSG_SPACE(20)  # struct in6_pktinfo
_RECV_BATCH = 256  # datagrams read per readiness event
_QUEUE_LIMIT = 4096  # datagrams queued for recv() before the oldest are dropped
_SEND_LIMIT = 4096  # datagrams queued while the socket buffer is full

Handler = Callable[[bytes, IPv6Address, IPv6Address], None]


class MobilitySocket:
    """Raw IPv6 socket for protocol 135 on the running asyncio loop.

    ``bind`` restricts reception to datagrams for that address and makes it
    the default source (it may be configured later: IPV6_FREEBIND). Use either
    ``await recv()`` or a push handler (``set_handler``), which is cheaper for
    daemons that answer every datagram at once.
    """

    def __init__(
        self,
        bind: IPv6Address | None = None,
        *,
        rcvbuf: int = 4 << 20,
        sndbuf: int = 4 << 20,
    ) -> None:
        self.local = bind
        sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, MH_PROTO)
        try:
            sock.setblocking(False)
            sock.setsockopt(
                socket.IPPROTO_IPV6, socket.IPV6_CHECKSUM, MH_CHECKSUM_OFFSET
            )
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
            if bind is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.IPPROTO_IPV6, IPV6_FREEBIND, 1)
                sock.bind((str(bind), 0))
        except BaseException:
            sock.close()
            raise
        self.sock = sock
        self._loop = asyncio.get_running_loop()
        self._handler: Handler | None = None
        self._queue: collections.deque[tuple[bytes, IPv6Address, IPv6Address]] = (
            collections.deque()
        )
        self._waiter: asyncio.Future[None] | None = None
        self._outbox: collections.deque[tuple[bytes, str, IPv6Address | None]] = (
            collections.deque()
        )
        self._writing = False
        self._src_cache: dict[str, IPv6Address] = {}
        self._dst_cache: dict[bytes, IPv6Address] = {}
        self._hosts: dict[IPv6Address, str] = {}
        self.dropped = 0  # datagrams lost to full queues
        self.send_errors = 0
        self._closed = False
        self._loop.add_reader(sock.fileno(), self._readable)

    # --- receiving -----------------------------------------------------------

    def set_handler(self, handler: Handler | None) -> None:
        """Call ``handler(data, src, dst)`` for each datagram instead of queueing."""
        self._handler = handler

    async def recv(self) -> tuple[bytes, IPv6Address, IPv6Address]:
        """The next datagram: (MH octets, source, destination)."""
        while not self._queue:
            if self._closed:
                raise ConnectionError("socket closed")
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._queue.popleft()

    def _readable(self) -> None:
        sock = self.sock
        handler = self._handler
        for _ in range(_RECV_BATCH):
            try:
                data, ancdata, _flags, addr = sock.recvmsg(MAX_DATAGRAM, _PKTINFO_SPACE)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                # e.g. a queued ICMP error; the socket stays usable
                log.debug("receive error: %s", exc)
                continue
            src = self._source(addr[0])
            dst = self._destination(ancdata)
            if handler is not None:
                handler(data, src, dst)
                continue
            if len(self._queue) >= _QUEUE_LIMIT:
                self._queue.popleft()
                self.dropped += 1
            self._queue.append((data, src, dst))
        if self._waiter is not None and not self._waiter.done() and self._queue:
            self._waiter.set_result(None)

    def _source(self, host: str) -> IPv6Address:
        address = self._src_cache.get(host)
        if address is None:
            address = IPv6Address(host.partition("%")[0])
            if len(self._src_cache) > 65536:
                self._src_cache.clear()
            self._src_cache[host] = address
        return address

    def _destination(self, ancdata: list[tuple[int, int, bytes]]) -> IPv6Address:
        for level, kind, value in ancdata:
            if level == socket.IPPROTO_IPV6 and kind == socket.IPV6_PKTINFO:
                packed = value[:16]
                address = self._dst_cache.get(packed)
                if address is None:
                    address = IPv6Address(packed)
                    if len(self._dst_cache) > 1024:
                        self._dst_cache.clear()
                    self._dst_cache[packed] = address
                return address
        return self.local if self.local is not None else IPv6Address(0)

    def intern_local(self, address: IPv6Address) -> None:
        """Make datagrams to ``address`` carry this very object as destination."""
        self._dst_cache[address.packed] = address

    # --- sending -------------------------------------------------------------

    def send(
        self, data: bytes, dst: IPv6Address, src: IPv6Address | None = None
    ) -> None:
        """Queue one MH for ``dst`` (from ``src`` if given); never blocks.

        Errors the kernel reports at once (no route, for example) are logged at
        DEBUG and counted in ``send_errors``: signalling retransmits anyway.
        """
        if self._closed:
            return
        host = self._hosts.get(dst)
        if host is None:
            host = str(dst)  # ipaddress formatting is slow: once per peer
            if len(self._hosts) > 65536:
                self._hosts.clear()
            self._hosts[dst] = host
        if self._outbox:
            self._enqueue(data, host, src)
            return
        try:
            self._send_now(data, host, src)
        except (BlockingIOError, InterruptedError):
            self._enqueue(data, host, src)
        except OSError as exc:
            self.send_errors += 1
            log.debug("send to %s failed: %s", dst, exc)

    def _send_now(self, data: bytes, host: str, src: IPv6Address | None) -> None:
        if src is None:
            self.sock.sendto(data, (host, 0))
        else:
            pktinfo = src.packed + struct.pack("=I", 0)
            self.sock.sendmsg(
                [data],
                [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, pktinfo)],
                0,
                (host, 0),
            )

    def _enqueue(self, data: bytes, host: str, src: IPv6Address | None) -> None:
        if len(self._outbox) >= _SEND_LIMIT:
            self.dropped += 1
            return
        self._outbox.append((data, host, src))
        if not self._writing:
            self._writing = True
            self._loop.add_writer(self.sock.fileno(), self._writable)

    def _writable(self) -> None:
        while self._outbox:
            data, host, src = self._outbox[0]
            try:
                self._send_now(data, host, src)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:
                self.send_errors += 1
                if exc.errno not in (errno.EHOSTUNREACH, errno.ENETUNREACH):
                    log.debug("send to %s failed: %s", host, exc)
            self._outbox.popleft()
        self._writing = False
        self._loop.remove_writer(self.sock.fileno())

    # --- lifecycle -----------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        fd = self.sock.fileno()
        self._loop.remove_reader(fd)
        if self._writing:
            self._loop.remove_writer(fd)
        self.sock.close()
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)
