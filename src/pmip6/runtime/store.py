"""The LMAP's binding store: SQLite in WAL mode, written in batches.

Every accepted PBU changes a binding (at least its expiry), so writing each one
in its own transaction would cap the daemon at the disk's fsync rate. Changes
are collected per NAI (the last one wins) and written in one transaction by
``flush()``, which the daemon calls a few times a second and at shutdown.
With ``synchronous=NORMAL`` a WAL commit does not wait for the disk; a power
loss can lose the last batches, never corrupt the file. A crash of the daemon
loses at most the changes since the last flush: the MPAs refresh them.
"""

from __future__ import annotations

import os
import sqlite3
from ipaddress import IPv6Address

from pmip6.core.lmap import Binding

SCHEMA = """
CREATE TABLE IF NOT EXISTS bindings (
    nai TEXT PRIMARY KEY,
    loa BLOB NOT NULL,
    prefix_length INTEGER NOT NULL,
    care_of TEXT NOT NULL,
    lifetime INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    sequence INTEGER NOT NULL,
    fingerprint INTEGER NOT NULL,
    prev_care_of TEXT,
    prev_sequence INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


class StoreError(Exception):
    """The state file cannot be opened or read as a binding store."""


_UPSERT = "INSERT OR REPLACE INTO bindings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
_DELETE = "DELETE FROM bindings WHERE nai = ?"


class BindingStore:
    def __init__(self, path: str) -> None:
        """Open (or create) the store; raise ``StoreError`` saying why not."""
        self.path = path
        try:
            if path != ":memory:":
                os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
            self._db = sqlite3.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"cannot open {path!r}: {_reason(exc)}") from None
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        except sqlite3.Error as exc:
            self._db.close()
            raise StoreError(
                f"{path!r} is not a usable binding store: {_reason(exc)}"
            ) from None
        self._dirty: dict[str, Binding | None] = {}
        self.writes = 0  # rows written, for the status command

    # --- reading -------------------------------------------------------------

    def load(self) -> list[Binding]:
        """The stored bindings; raise ``StoreError`` for a foreign table."""
        try:
            return self._load()
        except (sqlite3.Error, ValueError, TypeError, AttributeError) as exc:
            raise StoreError(
                f"{self.path!r} holds no readable bindings: {_reason(exc)}"
            ) from None

    def _load(self) -> list[Binding]:
        rows = self._db.execute(
            "SELECT nai, loa, prefix_length, care_of, lifetime, expires_at, "
            "sequence, fingerprint, prev_care_of, prev_sequence FROM bindings"
        )
        peers: dict[str, IPv6Address] = {}

        def peer(text: str) -> IPv6Address:
            address = peers.get(text)
            if address is None:
                address = peers[text] = IPv6Address(text)
            return address

        return [
            Binding(
                nai=nai,
                loa=int.from_bytes(loa, "big"),
                prefix_length=prefix_length,
                care_of=peer(care_of),
                lifetime=lifetime,
                expires_at=expires_at,
                sequence=sequence,
                fingerprint=fingerprint,
                prev_care_of=peer(prev) if prev else None,
                prev_sequence=prev_sequence,
            )
            for (
                nai,
                loa,
                prefix_length,
                care_of,
                lifetime,
                expires_at,
                sequence,
                fingerprint,
                prev,
                prev_sequence,
            ) in rows
        ]

    def get_meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,))
        found = row.fetchone()
        return None if found is None else str(found[0])

    def set_meta(self, key: str, value: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # --- writing -------------------------------------------------------------

    def put(self, binding: Binding) -> None:
        """Remember ``binding`` for the next flush (its state at flush time)."""
        self._dirty[binding.nai] = binding

    def delete(self, nai: str) -> None:
        self._dirty[nai] = None

    @property
    def pending(self) -> int:
        return len(self._dirty)

    def flush(self) -> int:
        """Write the collected changes in one transaction; return their number."""
        if not self._dirty:
            return 0
        dirty, self._dirty = self._dirty, {}
        upserts = []
        deletes = []
        text: dict[IPv6Address, str] = {}  # MPAs are few, bindings many

        def peer(address: IPv6Address) -> str:
            found = text.get(address)
            if found is None:
                found = text[address] = str(address)
            return found

        for nai, b in dirty.items():
            if b is None:
                deletes.append((nai,))
            else:
                upserts.append(
                    (
                        nai,
                        b.loa.to_bytes(16, "big"),
                        b.prefix_length,
                        peer(b.care_of),
                        b.lifetime,
                        b.expires_at,
                        b.sequence,
                        b.fingerprint,
                        None if b.prev_care_of is None else peer(b.prev_care_of),
                        b.prev_sequence,
                    )
                )
        db = self._db
        db.execute("BEGIN")
        try:
            if deletes:
                db.executemany(_DELETE, deletes)
            if upserts:
                db.executemany(_UPSERT, upserts)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.writes += len(dirty)
        return len(dirty)

    def close(self) -> None:
        self.flush()
        self._db.close()


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
