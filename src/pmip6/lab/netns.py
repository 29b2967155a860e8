"""Network namespace helpers for the lab, the tests and the benchmarks.

A :class:`Namespace` is a named namespace (``ip netns add``) so that
``ip netns exec`` and tcpdump can reach it. Code runs inside it three ways:

- ``ns.run("ip", "-6", "route")``: a command, via ``ip netns exec``;
- ``with ns.entered():``: the *calling thread* switches to the namespace
  (setns(2) affects one thread only) and back; sockets opened inside stay in
  the namespace for their whole life, which is how a backend object is bound
  to a namespace without forking;
- ``ns.call(fn, *args)``: a Python callable run in the namespace on a
  short-lived thread, result or exception returned.

:class:`Lab` creates namespaces with unique names and veth pairs between
them, and deletes all of it on exit even when the body raised.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import itertools
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

CLONE_NEWNET = 0x40000000
NETNS_RUN_DIR = "/run/netns"

_counter = itertools.count(1)
_libc: Any = None


class NetnsCommandError(subprocess.CalledProcessError):
    """A command in a namespace failed; the message includes its stderr."""

    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        super().__init__(proc.returncode, proc.args, proc.stdout, proc.stderr)

    def __str__(self) -> str:
        return f"{' '.join(self.cmd)}: exit {self.returncode}: {self.stderr.strip()}"


def _setns(fd: int) -> None:
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


def unique_name(prefix: str) -> str:
    """``prefix`` plus pid and a counter: unique across parallel test runs."""
    return f"{prefix}{os.getpid()}-{next(_counter)}"


class Namespace:
    """A named network namespace; see the module docstring."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Namespace({self.name!r})"

    @property
    def path(self) -> str:
        return f"{NETNS_RUN_DIR}/{self.name}"

    @classmethod
    def create(cls, name: str) -> Namespace:
        subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True)
        ns = cls(name)
        # loopback up: local delivery and ping to own addresses need it
        ns.run("ip", "link", "set", "lo", "up")
        return ns

    def delete(self) -> None:
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)

    def run(
        self, *argv: str, check: bool = True, timeout: float = 30.0
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the namespace; raise with its stderr if it fails."""
        cmd = ["ip", "netns", "exec", self.name, *argv]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise NetnsCommandError(proc)
        return proc

    def ok(self, *argv: str, timeout: float = 30.0) -> bool:
        """True if the command exits 0 in the namespace."""
        return self.run(*argv, check=False, timeout=timeout).returncode == 0

    def popen(self, *argv: str, **kw: Any) -> subprocess.Popen[bytes]:
        return subprocess.Popen(["ip", "netns", "exec", self.name, *argv], **kw)

    @contextlib.contextmanager
    def entered(self) -> Iterator[Namespace]:
        """Move the calling thread into the namespace for the ``with`` body."""
        home = os.open(f"/proc/self/task/{threading.get_native_id()}/ns/net", 0)
        target = os.open(self.path, 0)
        try:
            _setns(target)
            try:
                yield self
            finally:
                _setns(home)
        finally:
            os.close(target)
            os.close(home)

    def call(self, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """Run ``fn(*args, **kw)`` inside the namespace and return its result."""
        box: dict[str, Any] = {}

        def body() -> None:
            try:
                with self.entered():
                    box["result"] = fn(*args, **kw)
            except BaseException as exc:
                box["error"] = exc

        t = threading.Thread(target=body, name=f"netns-{self.name}")
        t.start()
        t.join()
        if "error" in box:
            raise box["error"]
        return box["result"]  # type: ignore[no-any-return]

    def sysctl(self, key: str, value: str | int) -> None:
        with self.entered(), open(f"/proc/sys/{key.replace('.', '/')}", "w") as f:
            f.write(str(value))


class Lab:
    """Namespaces and veth pairs with unique names, all removed on exit.

    ``prefix`` is the area prefix (e.g. ``pm-dp-``); namespaces are named
    ``<prefix><pid>-<n>-<role>``.
    """

    def __init__(self, prefix: str = "pm-lab-") -> None:
        self.tag = unique_name(prefix)
        self.namespaces: dict[str, Namespace] = {}

    def __enter__(self) -> Lab:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add(self, role: str) -> Namespace:
        """Create the namespace for ``role`` (e.g. "lmap")."""
        ns = Namespace.create(f"{self.tag}-{role}")
        self.namespaces[role] = ns
        return ns

    def __getitem__(self, role: str) -> Namespace:
        return self.namespaces[role]

    def veth(
        self, a: Namespace, a_if: str, b: Namespace, b_if: str, up: bool = True
    ) -> None:
        """A veth pair: ``a_if`` in ``a``, ``b_if`` in ``b`` (both up)."""
        # created inside ``a`` so that names never clash with the host's links
        a.run("ip", "link", "add", a_if, "type", "veth", "peer", "name", b_if)
        a.run("ip", "link", "set", b_if, "netns", b.name)
        if up:
            a.run("ip", "link", "set", a_if, "up")
            b.run("ip", "link", "set", b_if, "up")

    def close(self) -> None:
        """Delete every namespace (their links go with them)."""
        for ns in reversed(list(self.namespaces.values())):
            ns.delete()
        self.namespaces.clear()


@contextlib.contextmanager
def namespace(prefix: str = "pm-ns-") -> Iterator[Namespace]:
    """One throwaway namespace with a unique name, always deleted."""
    ns = Namespace.create(unique_name(prefix))
    try:
        yield ns
    finally:
        ns.delete()


def addr_nodad(ns: Namespace, ifname: str, cidr: str) -> None:
    """Add an IPv6 address usable at once (no duplicate address detection)."""
    ns.run("ip", "-6", "addr", "add", cidr, "dev", ifname, "nodad")


def local_veth(ns: Namespace, ifname: str, peer: str, cidr: str | None = None) -> None:
    """A veth pair with both ends in ``ns``: ``ifname`` up (with ``cidr``, if
    given), ``peer`` down, so that ``ifname`` has a link but no traffic."""
    ns.run("ip", "link", "add", ifname, "type", "veth", "peer", "name", peer)
    ns.run("ip", "link", "set", ifname, "up")
    if cidr is not None:
        addr_nodad(ns, ifname, cidr)
