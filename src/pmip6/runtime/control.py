"""The daemons' control socket: one JSON request line, one JSON reply line.

Request: ``{"command": "bindings"}``. Reply: ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": "..."}``. A Unix stream socket, mode 0600.

A daemon claims its socket's path before it changes anything: it holds an
exclusive lock on ``PATH.lock`` while it runs, and a path another daemon
listens on or holds is refused (``SocketInUse``); a stale socket (its daemon
died) is replaced. The socket itself is bound once the daemon is up, so its
existence still means "ready"; at stop it is removed while it is still ours.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
from collections.abc import Awaitable, Callable
from typing import Any

from pmip6.locking import exclusive_lock

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Any | Awaitable[Any]]

MAX_REQUEST = 64 * 1024
PROBE_TIMEOUT = 1.0  # a listener whose backlog is full answers no connect


class SocketInUse(OSError):
    """Another daemon listens on the control socket's path."""


class ControlServer:
    def __init__(self, path: str, handlers: dict[str, Handler]) -> None:
        self.path = path
        self.handlers = handlers
        self._server: asyncio.AbstractServer | None = None
        self._lock: int | None = None  # PATH.lock, held from claim() to close()
        self._inode: int | None = None  # of the socket file we bound

    def claim(self) -> None:
        """Make the path ours before the daemon changes anything.

        Raises ``SocketInUse`` when another daemon listens there or holds the
        path's lock, ``OSError`` when the path cannot be used.
        """
        folder = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(folder, exist_ok=True)
        if self._listened():
            raise SocketInUse(f"{self.path}: another daemon is listening")
        lock_path = self.path + ".lock"
        lock = exclusive_lock(lock_path)
        if lock is None:
            # started a moment ago and not listening yet
            raise SocketInUse(
                f"{self.path}: another daemon is starting with it "
                f"(it holds {lock_path})"
            )
        self._lock = lock
        self._remove_stale()

    def _listened(self) -> bool:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            probe.settimeout(PROBE_TIMEOUT)
            try:
                probe.connect(self.path)
            except (ConnectionRefusedError, FileNotFoundError, NotADirectoryError):
                return False
            except TimeoutError:
                return True  # a listener too busy to accept is still a listener
            except OSError as exc:
                raise OSError(f"{self.path}: {exc.strerror or exc}") from None
        return True

    def _remove_stale(self) -> None:
        try:
            mode = os.lstat(self.path).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise OSError(f"{self.path}: exists and is not a socket")
        # nobody listens and nobody holds the lock: left by a daemon that died
        os.unlink(self.path)

    async def start(self) -> None:
        """Serve requests at the path (claiming it first unless done)."""
        if self._lock is None:
            self.claim()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.bind(self.path)
            os.chmod(self.path, 0o600)  # before listen(): no one connects yet
            self._inode = os.stat(self.path).st_ino
            sock.listen(64)
            self._server = await asyncio.start_unix_server(self._serve, sock=sock)
        except BaseException:
            sock.close()
            raise

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._inode is not None:
            with contextlib.suppress(FileNotFoundError):
                if os.stat(self.path).st_ino == self._inode:
                    os.unlink(self.path)
            self._inode = None
        if self._lock is not None:
            # last: the next daemon may claim the path once it is gone
            os.close(self._lock)
            self._lock = None

    async def _serve(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            line = await reader.readline()
            reply = await self._dispatch(line[:MAX_REQUEST])
            writer.write(json.dumps(reply, default=str).encode() + b"\n")
            await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    async def _dispatch(self, line: bytes) -> dict[str, Any]:
        try:
            request = json.loads(line)
            command = request["command"]
            handler = self.handlers[command]
        except (ValueError, KeyError, TypeError):
            known = ", ".join(sorted(self.handlers))
            return {"ok": False, "error": f"bad request (commands: {known})"}
        try:
            result = handler(request)
            if asyncio.iscoroutine(result):
                result = await result
        except Exception as exc:  # reported to the caller, logged here
            log.exception("control command %s failed", command)
            return {"ok": False, "error": str(exc)}
        return {"ok": True, "result": result}


def request(path: str, command: str, timeout: float = 5.0, **args: Any) -> Any:
    """Send one command to the daemon at ``path``; return its result.

    Raises ``ConnectionError`` when no daemon listens there and ``RuntimeError``
    with the daemon's message when it refused the command.
    """
    payload = json.dumps({"command": command, **args}).encode() + b"\n"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        try:
            sock.connect(path)
        except (FileNotFoundError, ConnectionRefusedError) as exc:
            raise ConnectionError(f"no daemon listens on {path}") from exc
        except PermissionError as exc:
            # the socket is mode 0600, owned by the daemon's user (root)
            raise PermissionError(
                f"{path}: permission denied (the daemon's control socket is "
                "for its own user; run as root)"
            ) from exc
        sock.sendall(payload)
        chunks = []
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
    reply = json.loads(b"".join(chunks))
    if not reply.get("ok"):
        raise RuntimeError(reply.get("error", "daemon refused the command"))
    return reply["result"]
