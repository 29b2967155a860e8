"""A FreeRADIUS 3 server for the lab and the tests (RFC 6572 profiles).

The packaged configuration wants EAP certificates and many modules; this
writes a minimal, self-contained one instead: the ``files`` module holds one
entry per station (by MAC, and by NAI bound to the MAC), ``pap`` checks the
MAC-authentication password, and the post-auth section signs every reply
with a Message-Authenticator (FreeRADIUS 3.2.1 does not by itself, and the
client requires it against BlastRADIUS). The shipped main dictionary already
includes ``dictionary.rfc6572`` and ``dictionary.rfc6911``.

    with FreeRadius(workdir, stations, "secret", port=18120) as server:
        ...  # server.startup_seconds, server.log_path

The server runs in the foreground (``freeradius -f -l stdout``), optionally in
a network namespace through ``ip netns exec``, and is ready when it logs
"Ready to process requests".
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import time
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from ipaddress import IPv6Address, IPv6Network, ip_address, ip_network
from pathlib import Path
from types import TracebackType

from pmip6.aaa.base import AddressMode, MsProfile
from pmip6.aaa.file import parse_stations
from pmip6.aaa.radius import calling_station_id
from pmip6.lab.topology import (
    LMAP_ADDRESS,
    RADIUS_PORT,
    RADIUS_SECRET,
    TRANSPORT,
    Topology,
)

READY_LINE = "Ready to process requests"


@dataclass(frozen=True)
class RadiusStation:
    """One MS as the RADIUS server knows it.

    ``lmap_address`` and ``lnp`` may be None to leave the attribute out, and
    ``reply`` adds raw reply items (e.g. ``("Attr-151", "0x0040")`` for a
    malformed PMIP6-Home-HN-Prefix), which the tests use to make the server
    send what a broken profile would.
    """

    mac: str
    nai: str
    lmap_address: IPv6Address | None
    lnp: IPv6Network | None
    loa: IPv6Address | None = None
    dhcp_server: IPv6Address | None = None
    interface_id: int | None = None
    address_mode: AddressMode = AddressMode.SLAAC
    reply: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_profile(cls, mac: str, profile: MsProfile) -> RadiusStation:
        return cls(
            mac=mac,
            nai=profile.nai,
            lmap_address=profile.lmap_address,
            lnp=profile.lnp,
            loa=profile.loa,
            dhcp_server=profile.dhcp_server,
            interface_id=profile.interface_id,
            address_mode=profile.address_mode,
        )

    def reply_items(self) -> list[tuple[str, str]]:
        """The Access-Accept attributes in FreeRADIUS ``users`` syntax."""
        items = [("Mobile-Node-Identifier", "0x" + self.nai.encode().hex())]
        if self.lmap_address is not None:
            items.append(("PMIP6-Home-LMA-IPv6-Address", str(self.lmap_address)))
        if self.lnp is not None:
            items.append(("PMIP6-Home-HN-Prefix", str(self.lnp)))
        if self.interface_id is not None:
            groups = self.interface_id.to_bytes(8, "big")
            items.append(
                (
                    "PMIP6-Home-Interface-ID",
                    ":".join(groups[i : i + 2].hex() for i in range(0, 8, 2)),
                )
            )
        if self.dhcp_server is not None:
            items.append(("PMIP6-Home-DHCP6-Server-Address", str(self.dhcp_server)))
        if self.loa is not None:
            items.append(("Framed-IPv6-Address", str(self.loa)))
        if self.address_mode is AddressMode.DHCPV6:
            # RFC 6911 3.5: addresses come from a stateful DHCPv6 pool
            items.append(("Stateful-IPv6-Address-Pool", '"pmip6"'))
        items.extend(self.reply)
        return items


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def users_file(stations: Iterable[RadiusStation]) -> str:
    """The ``files`` module's users file: two entries per station."""
    blocks = []
    for station in stations:
        mac = calling_station_id(station.mac)
        reply = ",\n".join(
            f"\t{name} := {value}" for name, value in station.reply_items()
        )
        password = f"Cleartext-Password := {_quote(mac)}"
        # MAC authentication: User-Name is the MAC
        blocks.append(f"{_quote(mac)}\t{password}\n{reply}\n")
        # 802.1X gave the NAI: the same profile, only from this station's MAC
        blocks.append(
            f"{_quote(station.nai)}\t{password}, "
            f"Calling-Station-Id == {_quote(mac)}\n{reply}\n"
        )
    return "\n".join(blocks)


def radiusd_conf(
    directory: Path,
    secret: str,
    listen_address: str,
    port: int,
    clients: Sequence[str],
) -> str:
    ip = ip_address(listen_address)
    listen_key = "ipv6addr" if ip.version == 6 else "ipaddr"
    client_blocks = []
    for i, client in enumerate(clients):
        network = ip_network(client, strict=False)
        key = "ipv6addr" if network.version == 6 else "ipaddr"
        client_blocks.append(
            f"client lab{i} {{\n"
            f"\t{key} = {client}\n"
            f"\tsecret = {_quote(secret)}\n"
            "\trequire_message_authenticator = yes\n"
            "}\n"
        )
    d = str(directory)
    return f"""# minimal FreeRADIUS 3 configuration written by pmip6.lab.radius
prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
libdir = /usr/lib/freeradius
raddbdir = {d}
confdir = {d}
logdir = {d}
run_dir = {d}
db_dir = {d}
radacctdir = {d}
name = freeradius
pidfile = {d}/radiusd.pid
hostname_lookups = no
max_request_time = 5
cleanup_delay = 0
max_requests = 4096

log {{
\tdestination = stdout
\tauth = yes
}}

security {{
\tmax_attributes = 200
\t# the default delays every Access-Reject by a second
\treject_delay = 0
\tstatus_server = yes
}}

thread pool {{
\tstart_servers = 2
\tmax_servers = 4
\tmin_spare_servers = 1
\tmax_spare_servers = 4
}}

{"".join(client_blocks)}
modules {{
\tfiles {{
\t\tfilename = {d}/users
\t}}
\tpap {{
\t\tnormalise = yes
\t}}
}}

server default {{
\tlisten {{
\t\ttype = auth
\t\t{listen_key} = {listen_address}
\t\tport = {port}
\t}}
\tauthorize {{
\t\tfiles
\t\tpap
\t}}
\tauthenticate {{
\t\tAuth-Type PAP {{
\t\t\tpap
\t\t}}
\t}}
\tpost-auth {{
\t\tupdate reply {{
\t\t\tMessage-Authenticator := 0x00
\t\t}}
\t\tPost-Auth-Type REJECT {{
\t\t\tupdate reply {{
\t\t\t\tMessage-Authenticator := 0x00
\t\t\t}}
\t\t}}
\t}}
}}
"""


class FreeRadiusError(RuntimeError):
    """FreeRADIUS could not be configured or did not start."""


class FreeRadius:
    """A FreeRADIUS process serving ``stations`` on ``listen_address:port``."""

    def __init__(
        self,
        workdir: Path | str,
        stations: Sequence[RadiusStation],
        secret: str,
        listen_address: str = "127.0.0.1",
        port: int = 1812,
        netns: str | None = None,
        clients: Sequence[str] = (),
        binary: str = "freeradius",
    ) -> None:
        self.workdir = Path(workdir)
        self.stations = list(stations)
        self.secret = secret
        self.listen_address = listen_address
        self.port = port
        self.netns = netns
        # loopback always, plus the MPAs' addresses or prefixes
        self.clients = ["127.0.0.1", "::1", *clients]
        self.binary = binary
        self.log_path = self.workdir / "radiusd.log"
        self.startup_seconds: float | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def write_config(self) -> Path:
        """Write radiusd.conf, users and dictionary into the work directory."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.workdir, 0o700)
        files = {
            "radiusd.conf": radiusd_conf(
                self.workdir, self.secret, self.listen_address, self.port, self.clients
            ),
            "users": users_file(self.stations),
            # loaded after the shipped dictionary, which has RFC 6572 and 6911
            "dictionary": "# no local attributes\n",
        }
        for name, text in files.items():
            path = self.workdir / name
            # the secret is in radiusd.conf; FreeRADIUS also refuses a
            # world-writable configuration
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(text)
        return self.workdir

    def command(self) -> list[str]:
        binary = shutil.which(self.binary) or self.binary
        cmd = [binary, "-f", "-l", "stdout", "-d", str(self.workdir)]
        if self.netns is not None:
            cmd = ["ip", "netns", "exec", self.netns, *cmd]
        return cmd

    def start(self, timeout: float = 5.0) -> FreeRadius:
        """Write the config, start the server and wait until it is ready."""
        if self._process is not None:
            raise FreeRadiusError("FreeRADIUS is already running")
        self.write_config()
        begin = time.monotonic()
        with open(self.log_path, "wb") as log_file:
            try:
                self._process = subprocess.Popen(
                    self.command(),
                    stdin=subprocess.DEVNULL,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            except OSError as exc:
                raise FreeRadiusError(f"cannot run FreeRADIUS: {exc}") from None

        deadline = begin + timeout
        while True:
            if READY_LINE in self.log_path.read_text(errors="replace"):
                self.startup_seconds = time.monotonic() - begin
                return self
            if self._process.poll() is not None:
                code = self._process.returncode
                self._process = None
                raise FreeRadiusError(
                    f"FreeRADIUS exited with status {code}: {self.log_tail()}"
                )
            if time.monotonic() > deadline:
                self.stop()
                raise FreeRadiusError(
                    f"FreeRADIUS not ready after {timeout:g} s: {self.log_tail()}"
                )
            time.sleep(0.005)

    def log_tail(self, lines: int = 5) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace")
            return " | ".join(text.strip().splitlines()[-lines:])
        return "(no log)"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, timeout: float = 3.0) -> None:
        """Stop the server; safe to call twice or after a failed start."""
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def __enter__(self) -> FreeRadius:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def lab_stations(topo: Topology) -> list[RadiusStation]:
    """The stations of a lab's profiles file, so both backends agree."""
    doc = tomllib.loads(topo.profiles())
    return [
        RadiusStation.from_profile(s.mac, s.profile)
        for s in parse_stations(doc, "the lab's profiles")
        if s.mac is not None
    ]


def for_lab(topo: Topology) -> FreeRadius:
    """FreeRADIUS for ``pmip6 lab up --aaa radius``: in the LMAP namespace, on
    the LMAP's transport address, answering every MPA of the transport link.

    ``start()`` it after the namespaces exist; ``pid`` is what the lab records
    so that ``pmip6 lab down`` stops it like the other daemons.
    """
    return FreeRadius(
        topo.run_dir / "radius",
        lab_stations(topo),
        RADIUS_SECRET,
        listen_address=str(LMAP_ADDRESS),
        port=RADIUS_PORT,
        netns=topo.ns("lmap"),
        clients=[str(TRANSPORT)],
    )
