"""A running lab: namespaces, links and daemons built from a ``Topology``.

Everything a lab creates lives in its own namespaces (``<lab>-cn``,
``<lab>-lmap``, ``<lab>-tr``, ``<lab>-mpaK``, ``<lab>-msN``), so deleting them
removes every link with them. The state (namespaces created, daemon pids,
where each MS is attached) is kept in ``/run/pmip6-lab/<lab>/lab.json`` so a
later invocation can ``down``, ``status`` or ``move`` the same lab.

Shape::

    CN --- LMAP ---[tr: bridge br0]--- MPA1 [br0] ~~ MS1
                                  \\-- MPA2 [br0]

The MS is an unmodified host: its kernel does DAD, RS and SLAAC. Only two of
its sysctls differ from a stock host, to keep the lab quick (documented in
``MS_SYSCTLS``). A handover moves the MS's veth peer from one MPA namespace
to another and enslaves it to that MPA's bridge, which the MS sees as carrier
loss and return, as on a roam.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from ipaddress import IPv6Address
from pathlib import Path
from types import FrameType
from typing import Any

from pmip6.lab.kea import KeaServer
from pmip6.lab.radius import FreeRadiusError, for_lab
from pmip6.lab.topology import (
    ACCESS_IF,
    CN_ADDRESS,
    CN_IF,
    CN_LINK,
    DHCP_ADDRESS,
    LMAP_ADDRESS,
    LMAP_CN_ADDRESS,
    LMAP_CN_IF,
    MS_IF,
    RUN_ROOT,
    UPLINK_IF,
    VIRTUAL_MAC,
    Topology,
    mpa_address,
)
from pmip6.runtime.control import request

STATE_FILE = "lab.json"
# taken (flock) while a command changes where stations are: two `lab move`s
# of one lab run one after the other, each from the state the other left
LOCK_FILE = "lab.lock"

# What the MS's kernel is told. accept_ra/autoconf/forwarding make it an
# ordinary host whatever the namespace defaults are. The two timers are lower
# than the kernel's defaults (delay 1 s, interval 4 s) only so that a first
# attach that races the daemons' start-up recovers in a second, not four.
MS_SYSCTLS = {
    "accept_ra": 1,
    "autoconf": 1,
    "forwarding": 0,
    "router_solicitation_delay": 0,
    "router_solicitation_interval": 1,
}

# Lab infrastructure (CN, LMAP, MPAs, transport): addresses are unique by
# construction, so links are usable at once, without duplicate address detection.
INFRA_SYSCTLS = {"net.ipv6.conf.default.accept_dad": 0}
ROUTER_SYSCTLS = {
    "net.ipv6.conf.all.forwarding": 1,
    "net.ipv6.conf.default.accept_ra": 0,
}

DAEMON_START_TIMEOUT = 15.0


class LabError(RuntimeError):
    """A lab step failed; the message says which and why."""


Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


# --- signals ----------------------------------------------------------------
# Ctrl-C, kill and a closed terminal all mean "stop": a command that builds or
# runs a lab removes it on the first of them, and nothing interrupts removing.
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _still_removing(signum: int, frame: FrameType | None) -> None:
    # os.write, not print: the handler may run in the middle of a print, and
    # after SIGHUP the terminal may be gone (the write then fails, harmlessly)
    with contextlib.suppress(OSError):
        os.write(2, b"still removing the lab, please wait\n")


def _set_handlers(handler: Any) -> dict[int, Any]:
    """Install ``handler`` for STOP_SIGNALS; return the handlers it replaced."""
    saved: dict[int, Any] = {}
    for signum in STOP_SIGNALS:
        saved[signum] = signal.getsignal(signum)
        signal.signal(signum, handler)
    return saved


def _restore_handlers(saved: dict[int, Any]) -> None:
    for signum, handler in saved.items():
        # None: set outside Python; the default is the closest we can do
        signal.signal(signum, signal.SIG_DFL if handler is None else handler)


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """While the body runs, SIGINT, SIGTERM and SIGHUP only say that the lab
    is still being removed (handlers can only be set from the main thread;
    elsewhere the body just runs)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    saved = _set_handlers(_still_removing)
    try:
        yield
    finally:
        _restore_handlers(saved)


def removing(teardown: Callable[[], Any]) -> bool:
    """Run ``teardown`` to its end whatever signals arrive; True when a
    KeyboardInterrupt came meanwhile.

    Under ``Interrupts`` at most one KeyboardInterrupt is ever raised; should
    it land just before the handlers are held, teardown runs again, held (it
    must be safe to run twice).
    """
    interrupted = False
    while True:
        try:
            with signals_held():
                teardown()
            return interrupted
        except KeyboardInterrupt:
            interrupted = True


class Interrupts:
    """For a command that builds or runs a lab (``with Interrupts() as i:``):
    the first SIGINT, SIGTERM or SIGHUP raises KeyboardInterrupt so that the
    command removes the lab; any later one only says it is being removed.
    ``name`` is the signal that came (None while none did)."""

    def __init__(self) -> None:
        self.name: str | None = None
        self._saved: dict[int, Any] = {}

    def __enter__(self) -> Interrupts:
        self._saved = _set_handlers(self._first)
        return self

    def __exit__(self, *exc: object) -> None:
        _restore_handlers(self._saved)

    def _first(self, signum: int, frame: FrameType | None) -> None:
        # switched before raising: a second signal right behind this one
        # must not interrupt the removal this one starts
        _set_handlers(_still_removing)
        self.name = signal.Signals(signum).name
        raise KeyboardInterrupt


def ip(*args: str, ns: str | None = None, check: bool = True) -> str:
    """Run iproute2 (``ip -n NS ...`` when ``ns``); return its stdout."""
    cmd = ["ip", *(["-n", ns] if ns else []), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        raise LabError(f"`{' '.join(cmd)}` failed: {proc.stderr.strip()}")
    return proc.stdout


def netns_list() -> set[str]:
    out = ip("-j", "netns", "list", check=False).strip()
    if not out:
        return set()
    return {entry["name"] for entry in json.loads(out)}


def lab_namespaces(name: str) -> list[str]:
    """Namespaces named as the nodes of lab ``name`` are (whatever its topology)."""
    node = re.compile(rf"^{re.escape(name)}-(tr|cn|lmap|mpa[0-9]+|ms[0-9a-z]{{1,6}})$")
    return sorted(ns for ns in netns_list() if node.match(ns))


def sysctl(ns: str, **values: int | str) -> None:
    """Set sysctls (dotted names) in ``ns`` with one ``sysctl -w``."""
    args = [f"{k}={v}" for k, v in values.items()]
    cmd = ["ip", "netns", "exec", ns, "sysctl", "-q", "-w", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LabError(f"sysctl in {ns} failed: {proc.stderr.strip()}")


def pid_alive(pid: int) -> bool:
    """True when ``pid`` runs (a zombie does not count)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Lab:
    """One lab; ``Lab.create(topo)`` then ``up()``, or ``Lab.open(name)``."""

    def __init__(self, topo: Topology, state: dict[str, Any]) -> None:
        self.topo = topo
        self.state = state

    # --- life cycle -------------------------------------------------------

    @classmethod
    def create(cls, topo: Topology) -> Lab:
        """A lab not built yet; refuses when one of that name exists."""
        reasons = cls.exists(topo.name, topo)
        if reasons:
            raise LabError(
                f"a lab named {topo.name!r} exists ({'; '.join(reasons)}): "
                f"take it down with `pmip6 lab down --name {topo.name}` "
                "or choose another --name"
            )
        state: dict[str, Any] = {
            "topology": topo.to_dict(),
            "namespaces": [],
            "pids": {},
            "at": {s.name: s.at for s in topo.stations},
            "attached": {s.name: False for s in topo.stations},
            "created": time.time(),
        }
        return cls(topo, state)

    @classmethod
    def open(cls, name: str) -> Lab:
        path = RUN_ROOT / name / STATE_FILE
        try:
            state = json.loads(path.read_text())
        except FileNotFoundError:
            raise LabError(f"no lab named {name!r} ({path} does not exist)") from None
        topo = Topology.from_dict(state["topology"])
        return cls(topo, state)

    @classmethod
    @contextlib.contextmanager
    def locked(cls, name: str) -> Iterator[Lab]:
        """The lab as its state is once no other command changes it.

        Held (flock) while a command moves stations or restarts daemons, so
        that two such commands run one after the other, each from the state
        the other left.
        """
        folder = RUN_ROOT / name
        if not (folder / STATE_FILE).exists():
            raise LabError(
                f"no lab named {name!r} ({folder / STATE_FILE} does not exist)"
            )
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield cls.open(name)
        finally:
            os.close(fd)

    @staticmethod
    def exists(name: str, topo: Topology | None = None) -> list[str]:
        """Why a lab called ``name`` counts as existing (empty: it does not)."""
        reasons = []
        if (RUN_ROOT / name / STATE_FILE).exists():
            reasons.append(f"{RUN_ROOT / name / STATE_FILE} exists")
        if topo is not None:
            present = sorted(set(topo.namespaces) & netns_list())
            if present:
                reasons.append(f"namespaces {', '.join(present)} exist")
        return reasons

    def save(self) -> None:
        path = self.topo.run_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.state, indent=2))
        os.replace(tmp, path)

    def up(self, attach: bool = True, daemons: bool = True, say: Say = _quiet) -> None:
        """Build namespaces and links, start the daemons, attach the stations.

        On any failure or interrupt everything built so far is removed.
        """
        try:
            self._build(say)
            if daemons:
                self.start_daemons(say)
            if attach:
                for s in self.topo.stations:
                    self.attach(s.name)
                    say(f"{s.name} ({s.mac}) attached at {s.at}")
                if daemons and self.topo.dhcp:
                    for s in self.topo.stations:
                        pid = self.start_dhclient(s.name)
                        say(f"{s.name}: dhclient -6 started (pid {pid})")
        except BaseException as exc:
            why = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
            removing(lambda: self._remove_after(why, say))
            raise

    def _remove_after(self, why: str, say: Say) -> None:
        with contextlib.suppress(OSError):  # a closed terminal must not stop it
            say(f"{why}: removing what was built")
        self.down(say)

    def down(self, say: Say = _quiet) -> list[str]:
        """Stop daemons, kill what runs in the lab's namespaces, delete them.

        Returns the problems met (empty when all went away); never raises for
        things already gone, so it can run on a half-built lab, or twice.
        SIGINT, SIGTERM and SIGHUP do not interrupt it (see signals_held).
        """
        with signals_held():
            return self._down(say)

    def _down(self, say: Say) -> list[str]:
        problems: list[str] = []
        self.stop_daemons(problems)
        present = netns_list()
        # every namespace the lab may have created: recorded, or planned
        names = list(dict.fromkeys(self.state["namespaces"] + self.topo.namespaces))
        for ns in reversed(names):
            if ns not in present:
                continue
            self._kill_namespace_processes(ns)
            out = _run_detached(["ip", "netns", "del", ns])
            if out.returncode != 0:
                problems.append(f"deleting {ns}: {out.stderr.strip()}")
            else:
                with contextlib.suppress(OSError):
                    say(f"deleted namespace {ns}")
        shutil.rmtree(self.topo.run_dir, ignore_errors=True)
        return problems

    # --- building ---------------------------------------------------------

    def _netns_add(self, node: str, **sysctls: int) -> str:
        """Create the node's namespace; set sysctls before any link exists."""
        ns = self.topo.ns(node)
        ip("netns", "add", ns)
        self.state["namespaces"].append(ns)
        self.save()
        ip("link", "set", "lo", "up", ns=ns)
        if sysctls:
            sysctl(ns, **sysctls)
        return ns

    def _build(self, say: Say) -> None:
        topo = self.topo
        topo.run_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(topo.run_dir, 0o700)
        self.save()

        # transport: a bridge in its own namespace, like a switch
        tr = self._netns_add("tr", **INFRA_SYSCTLS)
        _bridge(tr, ACCESS_IF)

        # CN and LMAP, CN link 2001:db8:ffff::/64
        cn = self._netns_add("cn", **INFRA_SYSCTLS)
        lmap = self._netns_add("lmap", **INFRA_SYSCTLS, **ROUTER_SYSCTLS)
        ip("link", "add", LMAP_CN_IF, "type", "veth", "peer", "name", CN_IF,
           "netns", cn, ns=lmap)  # fmt: skip
        plen = CN_LINK.prefixlen
        _addr(cn, CN_IF, f"{CN_ADDRESS}/{plen}")
        ip("-6", "route", "add", "default", "via", str(LMAP_CN_ADDRESS), ns=cn)
        _addr(lmap, LMAP_CN_IF, f"{LMAP_CN_ADDRESS}/{plen}")
        _uplink(lmap, tr, "lmap", f"{LMAP_ADDRESS}/64")
        if topo.dhcp:
            ip("-6", "addr", "add", f"{DHCP_ADDRESS}/64", "dev", UPLINK_IF, "nodad",
               ns=lmap)  # fmt: skip
        say(f"{cn}: CN {CN_ADDRESS}; {lmap}: LMAP {LMAP_ADDRESS}")

        # MPAs: uplink to the transport bridge, a bridge as base station
        for mpa in topo.mpa_names:
            ns = self._netns_add(mpa, **INFRA_SYSCTLS, **ROUTER_SYSCTLS)
            k = topo.mpa_index(mpa)
            _uplink(ns, tr, mpa, f"{mpa_address(k)}/64")
            _bridge(ns, ACCESS_IF, address=VIRTUAL_MAC)
            say(f"{ns}: MPA {mpa_address(k)}, base station bridge {ACCESS_IF}")

        # stations: the MS end is configured, its peer waits (down) at its MPA
        for s in topo.stations:
            ns = self._netns_add(
                s.name,
                **{"net.ipv6.conf.all.forwarding": 0},
                **{f"net.ipv6.conf.default.{k}": v for k, v in MS_SYSCTLS.items()},
            )
            mpa_ns = topo.ns(s.at)
            ip("link", "add", MS_IF, "address", s.mac, "type", "veth", "peer",
               "name", s.peer, "netns", mpa_ns, ns=ns)  # fmt: skip
            ip("link", "set", MS_IF, "up", ns=ns)
            say(f"{ns}: MS {s.mac} ({'known' if s.known else 'unknown'} to AAA)")

        # the kernel activates a new link's queue (operstate UP) up to a second
        # after it comes up, and drops what is sent before: wait for it
        links = {tr: [ACCESS_IF], cn: [CN_IF], lmap: [LMAP_CN_IF, UPLINK_IF]}
        links.update({topo.ns(m): [UPLINK_IF] for m in topo.mpa_names})
        if not wait_for(lambda: all(_operstate_up(n, i) for n, i in links.items()), 5):
            raise LabError("the lab's links did not come up within 5 s")

        # generated configs
        d = topo.run_dir
        (d / "lmap.toml").write_text(topo.lmap_config())
        (d / "profiles.toml").write_text(topo.profiles())
        for mpa in topo.mpa_names:
            (d / f"{mpa}.toml").write_text(topo.mpa_config(mpa))

    # --- daemons ----------------------------------------------------------

    def daemon_names(self) -> list[str]:
        return ["lmap", *self.topo.mpa_names]

    def socket(self, daemon: str) -> str:
        return str(self.topo.run_dir / f"{daemon}.sock")

    def log_path(self, daemon: str) -> Path:
        return self.topo.run_dir / f"{daemon}.log"

    def start_daemons(self, say: Say = _quiet) -> None:
        if self.topo.dhcp:
            pid = self.start_kea()
            say(f"started kea-dhcp6 on {DHCP_ADDRESS} (pid {pid})")
        if self.topo.aaa == "radius":
            pid = self.start_radius()
            say(f"started FreeRADIUS on [{LMAP_ADDRESS}]:1812 (pid {pid})")
        for daemon in self.daemon_names():
            self.start_daemon(daemon)
            say(f"started {daemon} daemon (pid {self.state['pids'][daemon]})")
        for daemon in self.daemon_names():
            self.wait_daemon(daemon)

    def start_daemon(self, daemon: str) -> int:
        kind = "lmap" if daemon == "lmap" else "mpa"
        config = self.topo.run_dir / f"{daemon}.toml"
        cmd = ["ip", "netns", "exec", self.topo.ns(daemon), sys.executable,
               "-m", "pmip6", kind, "--config", str(config)]  # fmt: skip
        with open(self.log_path(daemon), "ab") as log:
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.topo.run_dir,
                start_new_session=True,
            )
        self.state["pids"][daemon] = proc.pid
        self.save()
        return proc.pid

    def wait_daemon(self, daemon: str, timeout: float = DAEMON_START_TIMEOUT) -> None:
        """Wait until the daemon answers on its control socket."""
        pid = self.state["pids"][daemon]
        deadline = time.monotonic() + timeout
        while True:
            if not pid_alive(pid):
                raise LabError(
                    f"the {daemon} daemon exited at start-up; its log "
                    f"({self.log_path(daemon)}) ends with:\n{self.log_tail(daemon)}"
                )
            try:
                request(self.socket(daemon), "status", timeout=1.0)
                return
            except (ConnectionError, OSError, RuntimeError, ValueError):
                pass
            if time.monotonic() > deadline:
                raise LabError(
                    f"the {daemon} daemon does not answer on {self.socket(daemon)} "
                    f"after {timeout:.0f} s; its log ends with:\n"
                    f"{self.log_tail(daemon)}"
                )
            time.sleep(0.05)

    def restart_daemon(self, daemon: str, say: Say = _quiet) -> int:
        """Stop ``daemon`` if it runs, start it as ``up`` does (same config,
        same log, appended), record its new pid and wait until it answers."""
        if daemon not in self.daemon_names():
            known = ", ".join(self.daemon_names())
            raise LabError(f"no daemon {daemon!r} in lab {self.topo.name} ({known})")
        if self.topo.ns(daemon) not in netns_list():
            raise LabError(f"namespace {self.topo.ns(daemon)} is missing")
        if self.daemon_alive(daemon):
            pid = self.state["pids"][daemon]
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            if not wait_for(lambda: _gone(pid), 5.0):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                wait_for(lambda: _gone(pid), 2.0)
                say(f"{daemon} (pid {pid}) ignored SIGTERM; killed")
            else:
                say(f"stopped {daemon} (pid {pid})")
        pid = self.start_daemon(daemon)
        say(f"started {daemon} daemon (pid {pid})")
        self.wait_daemon(daemon)
        return pid

    # --- DHCPv6 (seed 6.3 item 3): Kea and the stations' dhclient ---------

    def kea(self) -> KeaServer:
        """Kea in the LMAP namespace on DHCP_ADDRESS, one pool per LNP."""
        return KeaServer(
            self.topo.run_dir / "kea",
            self.topo.ns("lmap"),
            UPLINK_IF,
            DHCP_ADDRESS,
            {s.lnp: None for s in self.topo.stations},
        )

    def start_kea(self) -> int:
        """Start Kea and wait until it listens; stopped with the daemons."""
        kea = self.kea()
        try:
            kea.start()
        except RuntimeError as exc:
            raise LabError(str(exc)) from None
        assert kea.process is not None
        # ``ip netns exec`` execs Kea: the pid is Kea's, its command line
        # names the run directory, so stop_daemons() and down() end it
        self.state["pids"]["kea"] = kea.process.pid
        self.save()
        return kea.process.pid

    def start_radius(self) -> int:
        """Start FreeRADIUS in the LMAP namespace (the MPAs' ``[aaa]`` server)
        and wait until it is ready; stopped with the daemons."""
        server = for_lab(self.topo)
        try:
            server.start()
        except FreeRadiusError as exc:
            raise LabError(str(exc)) from None
        assert server.pid is not None
        # ``ip netns exec`` execs FreeRADIUS: the pid is its own, its command
        # line names the run directory, so stop_daemons() and down() end it
        self.state["pids"]["radius"] = server.pid
        self.save()
        return server.pid

    def start_dhclient(self, ms: str, timeout: float = 5.0) -> int:
        """Run the stock ``dhclient -6`` on the MS, one lease file per MS.

        dhclient binds its link-local address, so it waits for the MS's
        duplicate address detection of that address to finish.
        """
        ns = self.topo.ns(ms)

        def link_local_ready() -> bool:
            out = ip("-j", "-6", "addr", "show", "dev", MS_IF, "scope", "link",
                     ns=ns, check=False)  # fmt: skip
            try:
                infos = [a for e in json.loads(out) for a in e.get("addr_info", [])]
            except ValueError:
                return False
            return any("local" in a and not a.get("tentative") for a in infos)

        if not wait_for(link_local_ready, timeout):
            raise LabError(f"{ms}: no usable link-local address after {timeout:g} s")
        d = self.topo.run_dir
        pid_file = d / f"{ms}.dhclient.pid"
        proc = self.run(ms, ["dhclient", "-6", "-nw", "-lf",
                             str(d / f"{ms}.dhclient.leases"), "-pf",
                             str(pid_file), MS_IF])  # fmt: skip
        if proc.returncode != 0:
            raise LabError(f"{ms}: dhclient -6 failed: {proc.stderr.strip()}")
        text = wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(), 2)
        if not text:
            raise LabError(f"{ms}: dhclient -6 wrote no pid file")
        pid = int(text)
        self.state["pids"][f"dhclient-{ms}"] = pid
        self.save()
        return pid

    def log_tail(self, daemon: str, lines: int = 15) -> str:
        try:
            text = self.log_path(daemon).read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:]) or "(empty log)"

    def daemon_alive(self, daemon: str) -> bool:
        pid = self.state["pids"].get(daemon)
        return pid is not None and pid_alive(pid) and self._is_ours(pid)

    def _is_ours(self, pid: int) -> bool:
        return str(self.topo.run_dir) in _cmdline(pid)

    def stop_daemons(self, problems: list[str] | None = None) -> None:
        pids = {
            d: pid
            for d, pid in self.state["pids"].items()
            if pid_alive(pid) and self._is_ours(pid)
        }
        for pid in pids.values():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 5.0
        for daemon, pid in pids.items():
            while pid_alive(pid) and time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.02)
            if pid_alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                if problems is not None:
                    problems.append(f"{daemon} (pid {pid}) ignored SIGTERM; killed")
            _reap(pid)

    def _kill_namespace_processes(self, ns: str) -> None:
        out = _run_detached(["ip", "netns", "pids", ns]).stdout
        for word in out.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(word), signal.SIGKILL)
                _reap(int(word))

    # --- stations ---------------------------------------------------------

    def attach(self, ms: str) -> None:
        """Put the MS's peer end in its MPA's bridge and bring it up."""
        s = self.topo.station(ms)
        ns = self.topo.ns(self.state["at"][ms])
        ip("link", "set", s.peer, "master", ACCESS_IF, "up", ns=ns)
        self.state["attached"][ms] = True
        self.save()

    def detach(self, ms: str) -> None:
        """Take the MS's peer end out of the bridge, down: the MS loses carrier."""
        s = self.topo.station(ms)
        ns = self.topo.ns(self.state["at"][ms])
        ip("link", "set", s.peer, "down", ns=ns)
        ip("link", "set", s.peer, "nomaster", ns=ns)
        self.state["attached"][ms] = False
        self.save()

    def move(self, ms: str, mpa: str) -> tuple[float, float]:
        """Hand ``ms`` over to ``mpa``; returns (wall clock at start, seconds)."""
        s = self.topo.station(ms)
        self.topo.mpa_index(mpa)
        old = self.state["at"][ms]
        if old == mpa:
            raise LabError(f"{ms} is at {mpa} already")
        start = time.time()
        t0 = time.perf_counter()
        ip("link", "set", "dev", s.peer, "netns", self.topo.ns(mpa),
           ns=self.topo.ns(old))  # fmt: skip
        self.state["at"][ms] = mpa
        ip("link", "set", s.peer, "master", ACCESS_IF, "up", ns=self.topo.ns(mpa))
        took = time.perf_counter() - t0
        self.state["attached"][ms] = True
        self.save()
        return start, took

    def global_addresses(self, ms: str) -> list[dict[str, Any]]:
        """The MS's global addresses as ``ip -j`` reports them."""
        out = ip("-j", "-6", "addr", "show", "dev", MS_IF, "scope", "global",
                 ns=self.topo.ns(ms), check=False)  # fmt: skip
        if not out.strip():
            return []
        entries = json.loads(out)
        # ip -j lists filtered-out addresses as entries without "local"
        return [a for e in entries for a in e.get("addr_info", []) if "local" in a]

    def loa(self, ms: str) -> IPv6Address | None:
        """The MS's usable (not tentative) address inside its LNP, if any."""
        lnp = self.topo.station(ms).lnp
        for a in self.global_addresses(ms):
            addr = IPv6Address(a["local"])
            if addr in lnp and not a.get("tentative") and not a.get("dadfailed"):
                return addr
        return None

    # --- commands in nodes --------------------------------------------------

    def command(self, node: str, cmd: Sequence[str]) -> list[str]:
        if self.topo.ns(node) not in self.state["namespaces"]:
            known = ", ".join(self.topo.nodes)
            raise LabError(f"no node {node!r} in lab {self.topo.name} ({known})")
        return ["ip", "netns", "exec", self.topo.ns(node), *cmd]

    def run(
        self, node: str, cmd: Sequence[str], **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        kw.setdefault("capture_output", True)
        return subprocess.run(self.command(node, cmd), text=True, check=False, **kw)

    def popen(self, node: str, cmd: Sequence[str], **kw: Any) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command(node, cmd), text=True, **kw)

    def ping(self, node: str, address: IPv6Address, count: int = 3) -> bool:
        out = self.run(node, ["ping", "-6", "-n", "-q", "-c", str(count), "-i",
                              "0.2", "-W", "1", str(address)])  # fmt: skip
        return out.returncode == 0

    def wait_loa(self, ms: str, timeout: float = 15.0) -> IPv6Address | None:
        """Wait until the MS's kernel has a usable address in its LNP."""
        found: IPv6Address | None = wait_for(lambda: self.loa(ms), timeout)
        return found

    # --- what the daemons hold ----------------------------------------------

    def binding_for(self, nai: str) -> dict[str, Any] | None:
        for b in self.bindings():
            if b.get("nai") == nai:
                return b
        return None

    def visitor_entries(self, nai: str) -> dict[str, list[dict[str, Any]]]:
        """Every MPA's visitor entries for ``nai`` (MPAs without one left out)."""
        found = {}
        for mpa in self.topo.mpa_names:
            entries = [v for v in self.visitors(mpa) if v.get("nai") == nai]
            if entries:
                found[mpa] = entries
        return found

    def bindings(self) -> list[dict[str, Any]]:
        result = request(self.socket("lmap"), "bindings", timeout=2.0)
        return list(result)

    def visitors(self, mpa: str) -> list[dict[str, Any]]:
        result = request(self.socket(mpa), "visitors", timeout=2.0)
        return list(result)

    def all_visitors(self) -> dict[str, list[dict[str, Any]]]:
        return {mpa: self.visitors(mpa) for mpa in self.topo.mpa_names}

    def status(self) -> dict[str, Any]:
        present = netns_list()
        report: dict[str, Any] = {
            "name": self.topo.name,
            "run_dir": str(self.topo.run_dir),
            "namespaces": {ns: ns in present for ns in self.topo.namespaces},
            "daemons": {
                d: {"pid": self.state["pids"].get(d), "alive": self.daemon_alive(d)}
                for d in self.daemon_names()
            },
            "stations": {},
        }
        for s in self.topo.stations:
            addrs = (
                [a["local"] for a in self.global_addresses(s.name)]
                if self.topo.ns(s.name) in present
                else []
            )
            report["stations"][s.name] = {
                "mac": s.mac,
                "nai": s.nai,
                "known": s.known,
                "at": self.state["at"][s.name],
                "attached": self.state["attached"][s.name],
                "addresses": addrs,
            }
        try:
            report["bindings"] = self.bindings()
        except (ConnectionError, OSError, RuntimeError, ValueError) as exc:
            report["bindings"] = f"unavailable: {exc}"
        report["visitors"] = {}
        for mpa in self.topo.mpa_names:
            try:
                report["visitors"][mpa] = self.visitors(mpa)
            except (ConnectionError, OSError, RuntimeError, ValueError) as exc:
                report["visitors"][mpa] = f"unavailable: {exc}"
        return report


def wait_for(probe: Callable[[], Any], timeout: float, interval: float = 0.02) -> Any:
    """Call ``probe`` until it returns something true; that, or None on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def _operstate_up(ns: str, ifnames: list[str]) -> bool:
    out = ip("-j", "link", "show", ns=ns, check=False)
    try:
        state = {e["ifname"]: e.get("operstate") for e in json.loads(out)}
    except ValueError:
        return False
    return all(state.get(i) == "UP" for i in ifnames)


def _run_detached(cmd: list[str]) -> subprocess.CompletedProcess[str]:
    """Run a teardown command in a session of its own: the Ctrl-C or hangup a
    terminal sends to its whole foreground group does not kill it halfway."""
    return subprocess.run(
        cmd, capture_output=True, text=True, check=False, start_new_session=True
    )


def _reap(pid: int) -> None:
    """Collect a child's exit status so it does not linger as a zombie."""
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def _gone(pid: int) -> bool:
    _reap(pid)
    return not pid_alive(pid)


def _addr(ns: str, dev: str, cidr: str) -> None:
    # nodad: the lab's fixed addresses are unique by construction
    ip("-6", "addr", "add", cidr, "dev", dev, "nodad", ns=ns)
    ip("link", "set", dev, "up", ns=ns)


def _bridge(ns: str, name: str, address: str | None = None) -> None:
    # no STP, no forwarding delay: a port forwards the moment it is up; no
    # multicast snooping, so RS, DAD NS and MLD always reach the MPA
    extra = ["address", address] if address else []
    ip("link", "add", name, *extra, "type", "bridge", "stp_state", "0",
       "forward_delay", "0", "mcast_snooping", "0", ns=ns)  # fmt: skip
    ip("link", "set", name, "up", ns=ns)


def _uplink(ns: str, tr: str, port: str, cidr: str) -> None:
    ip("link", "add", UPLINK_IF, "type", "veth", "peer", "name", port,
       "netns", tr, ns=ns)  # fmt: skip
    ip("link", "set", port, "master", ACCESS_IF, "up", ns=tr)
    _addr(ns, UPLINK_IF, cidr)
