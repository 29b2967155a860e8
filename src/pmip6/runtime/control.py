"""The daemons' control socket: one JSON request line, one JSON reply line.

Request: ``{"command": "bindings"}``. Reply: ``{"ok": true, "result": ...}`` or
``{"ok": false, "error": "..."}``. A Unix stream socket, mode 0600.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], Any | Awaitable[Any]]

MAX_REQUEST = 64 * 1024


class ControlServer:
    def __init__(self, path: str, handlers: dict[str, Handler]) -> None:
        self.path = path
        self.handlers = handlers
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        self._server = await asyncio.start_unix_server(self._serve, path=self.path)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

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
