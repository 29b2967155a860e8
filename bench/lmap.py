"""LMAP throughput and memory: PBU in, PBA out.

1. Engine: decode + ``LmapEngine.receive`` + encode per refresh PBU, with the
   binding cache pre-filled to each size (and the engine alone for scale).
2. Memory per binding (tracemalloc over real registrations; RSS for the
   largest cache).
3. Binding store: batched WAL writes against one transaction per change.
4. Daemon (root): ``python -m pmip6 lmap`` (data plane "none") in a network
   namespace, its store pre-filled to each size, a raw-socket client keeping
   a window of PBUs outstanding.

Targets: engine 50,000 PBU/s, daemon 10,000 PBU/s with 100k bindings, at most
1 KiB per binding. Run: ``.venv/bin/python bench/lmap.py`` (add
``--daemon-sizes 1000,100000,1000000`` for the slow 1M daemon run).
"""

from __future__ import annotations

import argparse
import gc
import os
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import tracemalloc
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

from pmip6.core.lmap import Binding, LmapEngine, LmapSettings, Send
from pmip6.lab.lab import Interrupts
from pmip6.runtime.control import request
from pmip6.runtime.store import BindingStore
from pmip6.wire.mh import (
    AssignedHomeAddress,
    BindingUpdate,
    BUFlags,
    MobileNodeIdentifier,
    decode_mh,
    encode_mh,
)

A = IPv6Address
LMAP = A("fd00::1")
MPA = A("fd00::11")
BASE = int(A("2001:db8::"))
SETTINGS = LmapSettings(
    address=LMAP,
    prefixes=(IPv6Network("2001:db8::/32"),),
    mpas=(IPv6Network("fd00::/64"),),
)
ENGINE_TARGET = 50_000
DAEMON_TARGET = 10_000


def nai(i: int) -> str:
    return f"ms{i}@example.net"


def loa(i: int) -> int:
    return BASE + (i << 64) + 1  # one /64 LNP per MS


def prefilled(n: int, far: float) -> list[Binding]:
    return [Binding(nai(i), loa(i), 64, MPA, 3600, far, 0) for i in range(n)]


def refreshes(n: int, count: int, seq: int = 1) -> list[bytes]:
    """``count`` refresh PBUs spread over ``n`` bindings, sequence ``seq``."""
    stride = max(1, n // count) if n > count else 1
    out = []
    for j in range(count):
        i = (j * stride) % n
        s = seq + j // n  # a binding refreshed again needs a newer sequence
        out.append(
            encode_mh(
                BindingUpdate(
                    s & 0xFFFF,
                    BUFlags.A | BUFlags.P,
                    900,
                    (
                        MobileNodeIdentifier.from_nai(nai(i)),
                        AssignedHomeAddress(64, A(loa(i))),
                    ),
                )
            )
        )
    return out


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


# --- engine -------------------------------------------------------------------


def bench_engine(n: int, count: int) -> tuple[float, float, float]:
    now = time.time()
    engine = LmapEngine(SETTINGS)
    t0 = time.perf_counter()
    engine.restore(prefilled(n, now + 86400), now)
    fill = time.perf_counter() - t0
    gc.freeze()  # the cache is long-lived: keep the collector off it

    pbus = refreshes(n, count)
    t0 = time.perf_counter()
    for data in pbus:
        for effect in engine.receive(decode_mh(data), MPA, LMAP, now):
            if type(effect) is Send:
                encode_mh(effect.message)
    full = rate(count, time.perf_counter() - t0)

    decoded = [decode_mh(d) for d in refreshes(n, count, seq=count // n + 2)]
    t0 = time.perf_counter()
    for message in decoded:
        engine.receive(message, MPA, LMAP, now)
    alone = rate(count, time.perf_counter() - t0)
    del engine
    gc.unfreeze()
    gc.collect()
    return fill, full, alone


def memory_per_binding(n: int) -> float:
    engine = LmapEngine(SETTINGS)
    messages = [
        decode_mh(
            encode_mh(
                BindingUpdate(
                    1,
                    BUFlags.A | BUFlags.P,
                    900,
                    (
                        MobileNodeIdentifier.from_nai(nai(i)),
                        AssignedHomeAddress(64, A(loa(i))),
                    ),
                )
            )
        )
        for i in range(n)
    ]
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for m in messages:
        engine.receive(m, MPA, LMAP, 0.0)
    used = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    return used / n


def rss_kib() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def rss_per_binding(n: int) -> float:
    gc.collect()
    before = rss_kib()
    engine = LmapEngine(SETTINGS)
    engine.restore(prefilled(n, time.time() + 86400), time.time())
    gc.collect()
    per = (rss_kib() - before) * 1024 / n
    del engine
    gc.collect()
    return per


# --- store --------------------------------------------------------------------


def bench_store(n: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        store = BindingStore(os.path.join(tmp, "batched.db"))
        rows = prefilled(n, time.time() + 3600)
        t0 = time.perf_counter()
        for start in range(0, n, 2000):
            for b in rows[start : start + 2000]:
                store.put(b)
            store.flush()
        batched = rate(n, time.perf_counter() - t0)
        store.close()

        # the naive way: one durable transaction per change
        db = sqlite3.connect(os.path.join(tmp, "naive.db"), isolation_level=None)
        db.execute("PRAGMA synchronous=FULL")
        db.execute(
            "CREATE TABLE b (nai TEXT PRIMARY KEY, loa BLOB, care_of TEXT, "
            "expires_at REAL, sequence INTEGER)"
        )
        few = rows[: min(n, 200)]
        t0 = time.perf_counter()
        for b in few:
            db.execute("BEGIN")
            db.execute(
                "INSERT OR REPLACE INTO b VALUES (?, ?, ?, ?, ?)",
                (b.nai, b.loa.to_bytes(16, "big"), str(b.care_of), b.expires_at, 0),
            )
            db.execute("COMMIT")
        naive = rate(len(few), time.perf_counter() - t0)
        db.close()
    return batched, naive


# --- daemon -------------------------------------------------------------------


def bench_daemon(n: int, count: int, window: int) -> dict[str, float]:
    from pmip6.lab.netns import namespace

    with namespace("pm-lmb-") as ns, tempfile.TemporaryDirectory() as tmp:
        ns.run("ip", "-6", "addr", "add", f"{LMAP}/64", "dev", "lo", "nodad")
        ns.run("ip", "-6", "addr", "add", f"{MPA}/64", "dev", "lo", "nodad")
        state = Path(tmp) / "lmap.db"
        ctl = str(Path(tmp) / "lmap.sock")

        t0 = time.perf_counter()
        store = BindingStore(str(state))
        batch = 50_000
        far = time.time() + 86400
        for start in range(0, n, batch):
            for i in range(start, min(n, start + batch)):
                store.put(Binding(nai(i), loa(i), 64, MPA, 3600, far, 0))
            store.flush()
        store.close()
        fill = time.perf_counter() - t0

        config = Path(tmp) / "lmap.toml"
        config.write_text(
            f'[lmap]\naddress = "{LMAP}"\nprefixes = ["2001:db8::/32"]\n'
            f'mpas = ["fd00::/64"]\ndataplane = "none"\nstate = "{state}"\n'
            f'control_socket = "{ctl}"\nlog_level = "warning"\n'
        )
        log = open(Path(tmp) / "lmap.log", "wb")  # noqa: SIM115
        t0 = time.perf_counter()
        proc = ns.popen(
            sys.executable,
            "-m",
            "pmip6",
            "lmap",
            "--config",
            str(config),
            stdout=subprocess.DEVNULL,
            stderr=log,
        )
        try:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError((Path(tmp) / "lmap.log").read_text())
                try:
                    request(ctl, "status", timeout=1)
                    break
                except (ConnectionError, OSError):
                    time.sleep(0.05)
            restore = time.perf_counter() - t0
            rss = _rss_of(proc.pid)

            pbus = refreshes(n, count) if n else []
            with ns.entered():
                sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, 135)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_CHECKSUM, 4)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
            sock.bind((str(MPA), 0))
            sock.setblocking(False)
            answered, accepted, lost, seconds = _blast(sock, pbus, window)
            sock.close()
            status = request(ctl, "status")
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=60)
            log.close()
        return {
            "fill": fill,
            "restore": restore,
            "rate": rate(answered, seconds) if pbus else 0.0,
            "accepted": accepted,
            "lost": lost,
            "rss": rss,
            "store_writes": status["store_writes"],
        }


def _blast(
    sock: socket.socket, pbus: list[bytes], window: int
) -> tuple[int, int, int, float]:
    dst = (str(LMAP), 0)
    sent = answered = accepted = 0
    last_progress = t0 = time.perf_counter()
    while answered < len(pbus):
        while sent < len(pbus) and sent - answered < window:
            try:
                sock.sendto(pbus[sent], dst)
            except BlockingIOError:
                break
            sent += 1
        ready, _, _ = select.select([sock], [], [], 0.2)
        if ready:
            while True:
                try:
                    data = sock.recv(2048)
                except BlockingIOError:
                    break
                answered += 1
                accepted += data[6] == 0  # BA status octet
            last_progress = time.perf_counter()
            # let answers pile up: one wake-up per batch instead of per PBA
            # (the client shares the machine with the daemon; real MPAs do not)
            time.sleep(0.0005)
        elif time.perf_counter() - last_progress > 1.0:
            # lost PBUs or PBAs: count them and refill the window
            lost = sent - answered
            answered += lost
            last_progress = time.perf_counter()
    seconds = time.perf_counter() - t0
    return answered, accepted, sent - accepted, seconds


def _rss_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


# --- main ---------------------------------------------------------------------


def sizes(text: str) -> list[int]:
    return [int(x) for x in text.split(",") if x]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=sizes, default=sizes("1000,100000,1000000"))
    parser.add_argument("--daemon-sizes", type=sizes, default=sizes("1000,100000"))
    parser.add_argument("--count", type=int, default=50_000, help="PBUs per run")
    parser.add_argument("--window", type=int, default=256, help="PBUs outstanding")
    args = parser.parse_args()

    print("== engine: decode + LmapEngine.receive + encode, refresh PBUs ==")
    print(
        f"{'bindings':>9} {'prefill s':>9} {'PBU/s':>9} {'vs 50k':>7} "
        f"{'engine-only/s':>14}"
    )
    for n in args.sizes:
        fill, full, alone = bench_engine(n, args.count)
        print(
            f"{n:>9} {fill:>9.2f} {full:>9.0f} {full / ENGINE_TARGET:>6.2f}x "
            f"{alone:>14.0f}"
        )

    print("\n== memory per binding ==")
    traced = memory_per_binding(50_000)
    print(
        f"tracemalloc, 50k registrations through receive(): {traced:.0f} B/binding "
        f"({traced / 1024:.2f} of the 1 KiB budget)"
    )
    big = max(args.sizes)
    per = rss_per_binding(big)
    print(
        f"RSS growth, {big} restored bindings: {per:.0f} B/binding "
        f"({per / 1024:.2f} of the budget)"
    )

    print("\n== binding store ==")
    batched, naive = bench_store(100_000)
    print(f"batched WAL (synchronous=NORMAL, 2000 per commit): {batched:.0f} rows/s")
    print(f"one durable commit per change (synchronous=FULL):   {naive:.0f} rows/s")
    print(f"ratio batched/naive: {batched / naive:.0f}x")

    if os.geteuid() != 0:
        print("\n== daemon: skipped (needs root for a network namespace) ==")
        return 0
    print(
        "\n== daemon over raw sockets (data plane none), client window "
        f"{args.window} =="
    )
    print(
        "(RSS B/binding: the daemon's resident memory over that of an empty "
        "daemon, per binding)"
    )
    print(
        f"{'bindings':>9} {'prefill s':>9} {'start s':>8} {'PBU/s':>9} "
        f"{'vs 10k':>7} {'lost':>5} {'RSS B/binding':>14}"
    )
    empty = bench_daemon(0, 0, args.window)["rss"]
    for n in args.daemon_sizes:
        r = bench_daemon(n, args.count, args.window)
        r["rss_per_binding"] = (r["rss"] - empty) * 1024 / n
        print(
            f"{n:>9} {r['fill']:>9.2f} {r['restore']:>8.2f} {r['rate']:>9.0f} "
            f"{r['rate'] / DAEMON_TARGET:>6.2f}x {int(r['lost']):>5} "
            f"{r['rss_per_binding']:>14.0f}"
        )
    return 0


if __name__ == "__main__":
    # SIGTERM and SIGHUP unwind like Ctrl-C: the namespaces built are removed
    with Interrupts():
        sys.exit(main())
