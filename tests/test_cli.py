import pytest

from pmip6.cli import COMMANDS, main
from pmip6.runtime.ctl import format_status, format_table


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


def test_format_table_escapes_non_printable_characters() -> None:
    text = format_table([{"nai": "a\n\x1b[31mb\u2028@x", "loa": "::1"}])
    assert "\x1b" not in text and "\u2028" not in text
    assert len(text.splitlines()) == 2
    assert "a\\n\\x1b[31mb\\u2028@x" in text


def test_format_status_prints_key_value_lines() -> None:
    text = format_status(
        {"role": "lmap", "refused_by_status": {"142": 2, "128": 1}, "x\ny": "\x1b"}
    )
    assert text.splitlines() == [
        "role:              lmap",
        "refused_by_status: 142=2, 128=1",
        "x\\ny:              \\x1b",
    ]


def test_log_lines_escape_non_printable_characters() -> None:
    import io
    import logging

    from pmip6.runtime.logs import EscapingFormatter, printable

    assert printable("ok@x") == "ok@x"
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(EscapingFormatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("pmip6.test-escape")
    logger.addHandler(handler)
    try:
        logger.warning("refused %s", "a\nFAKE line\x1b[31m\x85")
    finally:
        logger.removeHandler(handler)
    assert stream.getvalue() == "WARNING refused a\\nFAKE line\\x1b[31m\\x85\n"


@pytest.mark.parametrize("moves", ["0", "-1", "x"])
def test_demo_needs_at_least_one_handover(
    moves: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["demo", "--moves", moves])
    assert info.value.code == 2
    assert "--moves" in capsys.readouterr().err
