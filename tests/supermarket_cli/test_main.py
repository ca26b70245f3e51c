"""The `supermarket` command itself: a light --help, every command listed, and the exit codes
and one-line errors every command shares."""

import json
import subprocess
import sys

import pytest

from supermarket_cli.main import COMMANDS, main

HEAVY = ["numpy", "pyarrow", "pandas", "boto3", "duckdb", "dagster"]


def test_help_of_every_command_imports_nothing_heavy():
    # Given a fresh interpreter, when it prints the help of the CLI and of every command
    helps = [["--help"], *([name, "--help"] for name in COMMANDS), ["generate", "history", "-h"]]
    code = (
        "import json, sys\n"
        "from supermarket_cli.main import main\n"
        f"codes = [main(argv) for argv in {helps!r}]\n"
        f"print(json.dumps([codes, [m for m in {HEAVY!r} if m in sys.modules]]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)

    # Then each help succeeded and none of the heavy libraries was imported
    codes, imported = json.loads(done.stdout.splitlines()[-1])
    assert codes == [0] * len(helps)
    assert imported == []
    for name in COMMANDS:
        assert name in done.stdout


def test_a_usage_error_names_the_command_and_exits_with_2(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["generate", "reference", "--stores", "0"])

    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "supermarket generate reference: error: " in err
    assert "must be at least 1, got 0" in err


def test_an_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["no-such-command"])

    assert exit_.value.code == 2
    assert "supermarket: error: No such command 'no-such-command'" in capsys.readouterr().err


def test_ctrl_c_in_a_command_exits_with_130(tmp_path, monkeypatch):
    def interrupted(_sources):
        raise KeyboardInterrupt

    monkeypatch.setattr("supermarket_cli.convert.find_sources", interrupted)

    assert main(["convert", str(tmp_path), "--out", str(tmp_path / "out")]) == 130
