"""The LMAP's binding store (SQLite WAL) and its config file validation."""

from __future__ import annotations

import json
import sqlite3
from ipaddress import IPv6Address, IPv6Network
from pathlib import Path

import pytest

from pmip6.core.lmap import Binding
from pmip6.runtime.lmapd import ConfigError, _first_address, load_config, parse_config
from pmip6.runtime.store import BindingStore, StoreError

A = IPv6Address


def binding(nai: str = "ms1@x", seq: int = 1) -> Binding:
    return Binding(
        nai,
        int(A("2001:db8:1:1::10")),
        64,
        A("fd00::11"),
        300,
        1234.5,
        seq,
        fingerprint=77,
        prev_care_of=A("fd00::12"),
        prev_sequence=9,
    )


def test_store_round_trip_last_write_wins_and_delete(tmp_path: Path) -> None:
    path = str(tmp_path / "sub" / "lmap.db")
    store = BindingStore(path)
    b = binding()
    store.put(b)
    b.sequence = 2  # changed before the flush: the flush writes the latest
    store.put(binding("ms2@x"))
    store.delete("ms2@x")
    assert store.flush() == 2
    store.set_meta("bri_sequence", "17")
    store.close()

    store = BindingStore(path)
    (got,) = store.load()
    assert (got.nai, got.loa_address, got.prefix_length) == (
        "ms1@x",
        A("2001:db8:1:1::10"),
        64,
    )
    assert (got.care_of, got.lifetime, got.expires_at, got.sequence) == (
        A("fd00::11"),
        300,
        1234.5,
        2,
    )
    assert (got.fingerprint, got.prev_care_of, got.prev_sequence) == (
        77,
        A("fd00::12"),
        9,
    )
    assert store.get_meta("bri_sequence") == "17"
    store.close()
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_store_flush_without_changes_writes_nothing(tmp_path: Path) -> None:
    store = BindingStore(str(tmp_path / "lmap.db"))
    assert store.flush() == 0
    assert store.writes == 0
    store.close()


GOOD = {
    "lmap": {
        "address": "fd00::1",
        "prefixes": ["2001:db8:1::/48"],
        "mpas": ["fd00::11", "fd00::/64"],
    }
}


def test_config_defaults_and_relative_paths(tmp_path: Path) -> None:
    cfg = parse_config(GOOD, "x.toml", tmp_path)
    assert cfg.address == A("fd00::1")
    assert cfg.mpas == (IPv6Network("fd00::11/128"), IPv6Network("fd00::/64"))
    assert (cfg.max_lifetime, cfg.profile, cfg.dataplane) == (3600, "draft-00", "auto")
    assert cfg.state == "/var/lib/pmip6/lmap.db"
    assert cfg.control_socket == "/run/pmip6/lmap.sock"
    assert cfg.keep_forwarding is False and cfg.uplink is None

    path = tmp_path / "lmap.toml"
    path.write_text(
        '[lmap]\naddress = "fd00::1"\nprefixes = ["2001:db8:1::/48"]\n'
        'mpas = ["fd00::/64"]\nstate = "db/lmap.db"\nprofile = "rfc5213"\n'
    )
    cfg = load_config(str(path))
    assert cfg.state == str(tmp_path / "db" / "lmap.db")
    assert cfg.settings().profile.name == "rfc5213"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"address": None}, "[lmap] address: required"),
        ({"address": "10.0.0.1"}, "[lmap] address: '10.0.0.1' is not an IPv6"),
        ({"prefixes": []}, "[lmap] prefixes: expected a non-empty list"),
        ({"prefixes": ["2001:db8:1::1/48"]}, "[lmap] prefixes[0]:"),
        ({"mpas": ["fd00::/64", 5]}, "[lmap] mpas[1]: 5 is not"),
        ({"max_lifetime": 2}, "[lmap] max_lifetime: expected seconds"),
        ({"max_lifetime": True}, "[lmap] max_lifetime:"),
        ({"profile": "rfc9999"}, "[lmap] profile: 'rfc9999' is not one of"),
        ({"dataplane": "gre"}, "[lmap] dataplane: 'gre' is not one of"),
        ({"keep_forwarding": "yes"}, "[lmap] keep_forwarding: expected true"),
        (
            {"log_level": "loud"},
            "[lmap] log_level: 'loud' is not one of debug, info, warning, error, "
            "critical",
        ),
        ({"uplink": 3}, "[lmap] uplink: expected an interface name"),
        ({"prefix": ["x"]}, "[lmap] prefix: unknown key"),
    ],
)
def test_config_errors_name_the_key(change: dict[str, object], message: str) -> None:
    section = dict(GOOD["lmap"])
    for key, value in change.items():
        if value is None:
            section.pop(key)
        else:
            section[key] = value
    with pytest.raises(ConfigError) as info:
        parse_config({"lmap": section}, "lmap.toml")
    assert str(info.value).startswith("lmap.toml: ")
    assert message in str(info.value)


def test_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        load_config(str(tmp_path / "missing.toml"))
    bad = tmp_path / "bad.toml"
    bad.write_text("[lmap\n")
    with pytest.raises(ConfigError, match=r"bad\.toml"):
        load_config(str(bad))
    bad.write_text("[mpa]\n")
    with pytest.raises(ConfigError, match=r"missing \[lmap\] table \(found \[mpa\]\)"):
        load_config(str(bad))


def test_uplink_lookup_address_is_never_the_lmap_itself() -> None:
    own = A("fd00::1")
    assert _first_address(IPv6Network("fd00::/64"), own) == A("fd00::2")
    assert _first_address(IPv6Network("fd00::/64"), A("fd00::9")) == A("fd00::1")
    assert _first_address(IPv6Network("fd00::11/128"), own) == A("fd00::11")


def test_unknown_top_level_table_is_refused_by_name() -> None:
    data = {"lmap": dict(GOOD["lmap"]), "other": {"x": 1}}
    with pytest.raises(ConfigError) as info:
        parse_config(data, "lmap.toml")
    assert str(info.value) == "lmap.toml: [other]: unknown table (known: [lmap])"


def test_config_records_its_file_for_start_up_errors(tmp_path: Path) -> None:
    assert parse_config(GOOD, "x.toml", tmp_path).source == "x.toml"


@pytest.mark.parametrize(
    "content", [b"root:x:0:0:root:/root:/bin/bash\n" * 20, b"\0" * 4096]
)
def test_store_on_a_file_that_is_no_database_raises_store_error(
    tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "passwd"
    path.write_bytes(content)
    with pytest.raises(StoreError, match="passwd"):
        BindingStore(str(path))
    assert path.read_bytes() == content  # left untouched


def test_store_with_a_foreign_bindings_table_raises_store_error(tmp_path: Path) -> None:
    path = str(tmp_path / "other.db")
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE bindings (nai TEXT, loa TEXT)")
    db.execute("INSERT INTO bindings VALUES ('x', 'y')")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match=r"other\.db"):
        BindingStore(path).load()


def test_store_in_an_unwritable_place_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot open"):
        BindingStore(str(blocker / "sub" / "lmap.db"))


# --- start-up errors: one line naming the file and key, exit 2 -----------------


def lmap_config(tmp_path: Path, **change: str) -> Path:
    values = {
        "address": "fd00::1",
        "prefixes": ["2001:db8:1::/48"],
        "mpas": ["fd00::/64"],
        "dataplane": "none",
        "state": "lmap.db",
        "control_socket": "lmap.sock",
        **change,
    }
    lines = ["[lmap]"] + [f"{k} = {json.dumps(v)}" for k, v in values.items()]
    path = tmp_path / "lmap.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_bogus_log_level_option_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pmip6.cli import main

    with pytest.raises(SystemExit) as info:
        main(["lmap", "--config", str(lmap_config(tmp_path)), "--log-level", "bogus"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--log-level: invalid choice: 'bogus'" in err and "Traceback" not in err


def test_state_that_is_no_database_is_named_and_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pmip6.cli import main

    passwd = tmp_path / "passwd"
    passwd.write_text("root:x:0:0:root:/root:/bin/bash\n" * 20)
    config = lmap_config(tmp_path, state=str(passwd))
    assert main(["lmap", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    (line,) = err.splitlines()
    assert line.startswith(f"pmip6 lmap: {config}: [lmap] state: ")
    assert "passwd" in line and "stopped" not in err


def test_missing_uplink_is_named_and_exits_2_without_stopped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from pmip6.cli import main

    config = lmap_config(tmp_path, uplink="pm-lm-nope0", dataplane="auto")
    assert main(["lmap", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    (line,) = err.splitlines()
    assert line == (
        f"pmip6 lmap: {config}: [lmap] uplink: no interface named 'pm-lm-nope0'"
    )


def test_address_on_no_interface_is_detected() -> None:
    from pmip6.runtime.lmapd import address_is_local

    assert not address_is_local(A("fd00:dead:beef::1234"))


def test_store_lock_admits_one_lmap(tmp_path: Path) -> None:
    import os

    from pmip6.runtime.lmapd import lock_store

    state = str(tmp_path / "db" / "lmap.db")
    first = lock_store(state)
    assert first is not None
    try:
        with pytest.raises(OSError, match="in use by another LMAP"):
            lock_store(state)
    finally:
        os.close(first)
    again = lock_store(state)  # released with its holder
    assert again is not None
    os.close(again)
