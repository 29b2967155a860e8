"""A Kea DHCPv6 server for the lab: one pool per Local Network Prefix.

The MPAs relay their stations' DHCPv6 messages with a link-address inside the
station's LNP (seed 6.3 item 3), and Kea selects the subnet whose prefix holds
that link-address, so each LNP gets its own subnet and pool here. Kea runs as
``kea-dhcp6 -c CONF`` inside a network namespace, with everything it writes
(config, memfile leases, lock file, pid file, log) in one work directory.

Kea only answers relays on a global unicast address it was told to listen on,
hence ``"interfaces": ["IFACE/ADDRESS"]``; the address must be on the interface
(and past duplicate address detection) before the server starts.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path
from typing import Any

KEA_BINARY = "kea-dhcp6"
DHCP6_SERVER_PORT = 547

PoolRange = str | tuple[IPv6Address | str, IPv6Address | str]


class KeaError(RuntimeError):
    """Kea did not start (its log's last lines are in the message)."""


@dataclass(frozen=True)
class Lease:
    """One row of Kea's memfile lease file."""

    address: IPv6Address
    duid: str
    valid_lifetime: int
    expire: int
    subnet_id: int
    iaid: int
    hwaddr: str


def default_pool(lnp: IPv6Network) -> str:
    """A pool inside ``lnp`` that keeps clear of its first addresses.

    ``lnp::100`` to ``lnp::1ff``: the link-address the MPA relays with (the
    prefix's first address) and any static LoA below ``::100`` stay outside.
    """
    base = lnp.network_address
    return f"{base + 0x100} - {base + 0x1FF}"


def _pool_text(pool: PoolRange) -> str:
    if isinstance(pool, str):
        return pool
    first, last = pool
    return f"{IPv6Address(first)} - {IPv6Address(last)}"


class KeaServer:
    """kea-dhcp6 with one subnet and pool per LNP, in a namespace.

    Lease times default to short values so that tests see renewals:
    renew (T1) 10 s, rebind (T2) 16 s, preferred 20 s, valid 30 s.
    """

    def __init__(
        self,
        workdir: Path | str,
        netns: str | None,
        interface: str,
        listen_address: IPv6Address | str,
        pools: Mapping[IPv6Network, PoolRange | None],
        *,
        renew_timer: int = 10,
        rebind_timer: int = 16,
        preferred_lifetime: int = 20,
        valid_lifetime: int = 30,
        dns_servers: tuple[IPv6Address, ...] = (),
        binary: str = KEA_BINARY,
    ) -> None:
        if not rebind_timer >= renew_timer > 0:
            raise ValueError("need 0 < renew_timer <= rebind_timer")
        if not valid_lifetime >= preferred_lifetime >= rebind_timer:
            raise ValueError("need rebind_timer <= preferred <= valid lifetime")
        self.workdir = Path(workdir)
        self.netns = netns
        self.interface = interface
        self.listen_address = IPv6Address(listen_address)
        self.pools: dict[IPv6Network, str] = {
            IPv6Network(lnp): default_pool(IPv6Network(lnp))
            if pool is None
            else _pool_text(pool)
            for lnp, pool in pools.items()
        }
        self.renew_timer = renew_timer
        self.rebind_timer = rebind_timer
        self.preferred_lifetime = preferred_lifetime
        self.valid_lifetime = valid_lifetime
        self.dns_servers = dns_servers
        self.binary = binary
        self.process: subprocess.Popen[bytes] | None = None

    # --- files -------------------------------------------------------------------

    @property
    def config_path(self) -> Path:
        return self.workdir / "kea-dhcp6.json"

    @property
    def lease_path(self) -> Path:
        return self.workdir / "kea-leases6.csv"

    @property
    def log_path(self) -> Path:
        return self.workdir / "kea-dhcp6.log"

    def config(self) -> dict[str, Any]:
        """The kea-dhcp6 configuration as a JSON-ready dict."""
        subnets = []
        for subnet_id, (lnp, pool) in enumerate(sorted(self.pools.items()), 1):
            subnets.append(
                {
                    "id": subnet_id,
                    "subnet": str(lnp),
                    # Kea picks this subnet for a relayed message whose
                    # link-address lies in it: any address of the LNP will do
                    "pools": [{"pool": pool}],
                }
            )
        options = []
        if self.dns_servers:
            options.append(
                {
                    "name": "dns-servers",
                    "data": ", ".join(str(a) for a in self.dns_servers),
                }
            )
        return {
            "Dhcp6": {
                # the server DUID file goes here too (not /var/lib/kea)
                "data-directory": str(self.workdir),
                "interfaces-config": {
                    "interfaces": [f"{self.interface}/{self.listen_address}"],
                },
                "lease-database": {
                    "type": "memfile",
                    "persist": True,
                    "name": str(self.lease_path),
                    # no lease file cleanup process: short runs, one file
                    "lfc-interval": 0,
                },
                "renew-timer": self.renew_timer,
                "rebind-timer": self.rebind_timer,
                "preferred-lifetime": self.preferred_lifetime,
                "valid-lifetime": self.valid_lifetime,
                "option-data": options,
                "subnet6": subnets,
                "loggers": [
                    {
                        "name": "kea-dhcp6",
                        "output_options": [{"output": str(self.log_path)}],
                        "severity": "INFO",
                    }
                ],
            }
        }

    def write_config(self) -> Path:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(json.dumps(self.config(), indent=2) + "\n")
        return self.config_path

    # --- process -----------------------------------------------------------------

    def _argv(self, *argv: str) -> list[str]:
        if self.netns is None:
            return list(argv)
        return ["ip", "netns", "exec", self.netns, *argv]

    def check_config(self) -> None:
        """``kea-dhcp6 -t``: raise KeaError if Kea rejects the configuration."""
        self.write_config()
        proc = subprocess.run(
            [self.binary, "-t", str(self.config_path)],
            capture_output=True,
            text=True,
            env=self._env(),
            timeout=30,
        )
        if proc.returncode != 0:
            raise KeaError(f"kea-dhcp6 rejects {self.config_path}: {proc.stdout}")

    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["KEA_LOCKFILE_DIR"] = str(self.workdir)
        env["KEA_PIDFILE_DIR"] = str(self.workdir)
        return env

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = 10.0) -> None:
        """Start Kea and wait until it listens on ``listen_address`` port 547."""
        if self.running:
            raise RuntimeError("Kea is already running")
        self.write_config()
        with open(self.workdir / "kea-dhcp6.out", "wb") as out:
            self.process = subprocess.Popen(
                self._argv(self.binary, "-c", str(self.config_path)),
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._env(),
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self._listening():
            if self.process.poll() is not None:
                tail = self._output_tail()
                self.process = None
                raise KeaError(f"kea-dhcp6 exited at start:\n{tail}")
            if time.monotonic() > deadline:
                tail = self._output_tail()
                self.stop()
                raise KeaError(f"kea-dhcp6 not listening after {timeout} s:\n{tail}")
            time.sleep(0.05)

    def _listening(self) -> bool:
        proc = subprocess.run(
            self._argv("ss", "-H", "-n", "-u", "-l", f"sport = :{DHCP6_SERVER_PORT}"),
            capture_output=True,
            text=True,
            timeout=10,
        )
        wanted = f"[{self.listen_address}]:{DHCP6_SERVER_PORT}"
        return any(wanted in line.split() for line in proc.stdout.splitlines())

    def _output_tail(self, lines: int = 15) -> str:
        text = ""
        for path in (self.workdir / "kea-dhcp6.out", self.log_path):
            if path.exists():
                text += path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def stop(self, timeout: float = 5.0) -> None:
        """Stop Kea (TERM, then KILL) and remove its pid and lock files."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            # Kea leads its own session (start_new_session): its group id is
            # its pid, which also covers ``ip netns exec`` should it not exec
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for leftover in self.workdir.glob("*.pid"):
            leftover.unlink(missing_ok=True)
        (self.workdir / "logger_lockfile").unlink(missing_ok=True)
        self.log_path.with_name(self.log_path.name + ".lock").unlink(missing_ok=True)

    def __enter__(self) -> KeaServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- leases ------------------------------------------------------------------

    def leases(self) -> list[Lease]:
        """The leases in Kea's memfile, latest row per address (type IA_NA only)."""
        if not self.lease_path.exists():
            return []
        latest: dict[IPv6Address, Lease] = {}
        with open(self.lease_path, newline="") as f:
            for row in csv.DictReader(f):
                if row.get("lease_type", "0") != "0":
                    continue
                lease = Lease(
                    address=IPv6Address(row["address"]),
                    duid=row["duid"],
                    valid_lifetime=int(row["valid_lifetime"]),
                    expire=int(row["expire"]),
                    subnet_id=int(row["subnet_id"]),
                    iaid=int(row["iaid"]),
                    hwaddr=row.get("hwaddr", ""),
                )
                latest[lease.address] = lease
        return list(latest.values())
