import pytest

from pmip6.cli import COMMANDS, main
from pmip6.runtime.ctl import format_table


def test_no_subcommand_prints_help_and_fails(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main([]) == 2
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert name in out


def test_ctl_without_daemon_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    assert main(["ctl", "bindings", "--socket", str(tmp_path / "none.sock")]) == 1
    assert "no daemon listens" in capsys.readouterr().err


def test_format_table_aligns_columns() -> None:
    text = format_table(
        [{"nai": "a@x", "loa": "2001:db8::1"}, {"nai": "bb@x", "loa": "::"}]
    )
    lines = text.splitlines()
    assert lines[0].split() == ["NAI", "LOA"]
    assert lines[1].index("2001") == lines[0].index("LOA")
