"""Exclusive locks on files: one process at a time holds a resource.

The daemons use them for what two of them must never share: a control
socket's path, an LMAP's binding store, a network namespace's forwarding.
A lock is ``flock`` on a file beside the resource; the kernel releases it
when its holder exits, however it exits, so no stale lock outlives a crash.
"""

from __future__ import annotations

import fcntl
import os


def exclusive_lock(path: str) -> int | None:
    """Take an exclusive lock on ``path`` (created 0600 if missing).

    Returns the descriptor that holds it (closing it releases the lock), with
    this process's pid written in the file, or None when another process
    holds it; ``OSError`` when the file cannot be created.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    except BaseException:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def lock_holder(path: str) -> str:
    """The pid written by the lock's holder, or "?" when unknown."""
    try:
        with open(path) as f:
            return f.read(32).strip() or "?"
    except OSError:
        return "?"
