"""`query` and `dashboard` find a running stack's lake from its state folder, and say which
lake they read and what to do when no stack runs."""

import json
import os

import pytest

from supermarket_cli.main import main
from supermarket_cli.stack.discovery import choose_lake


@pytest.fixture
def state(tmp_path, monkeypatch):
    monkeypatch.setenv("SUPERMARKET_STATE", str(tmp_path))
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("LAKE_BUCKET", raising=False)
    return tmp_path


def _stack(state, pid, urls):
    (state / "stack.json").write_text(json.dumps({"supervisor_pid": pid, "urls": urls}))


def test_a_running_stack_is_found_from_its_state_folder(state):
    _stack(state, os.getpid(), {"lake": "s3://up-lake", "aws": "http://127.0.0.1:5999"})

    choice = choose_lake(None)

    assert (choice.lake, choice.endpoint) == ("s3://up-lake", "http://127.0.0.1:5999")
    assert "s3://up-lake" in choice.explanation and "http://127.0.0.1:5999" in choice.explanation


def test_a_stack_whose_supervisor_died_is_not_found(state):
    _stack(state, 2**22 + 12345, {"lake": "s3://up-lake", "aws": "http://127.0.0.1:5999"})

    choice = choose_lake(None)

    assert (choice.lake, choice.endpoint) == ("s3://supermarket-lake", None)
    assert "no local stack is running" in choice.explanation
    assert "supermarket up" in choice.explanation and str(state) in choice.explanation


def test_an_explicit_lake_or_endpoint_wins_over_the_stack(state, monkeypatch):
    _stack(state, os.getpid(), {"lake": "s3://up-lake", "aws": "http://127.0.0.1:5999"})
    assert choose_lake("/data/lake").lake == "/data/lake"

    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:6001")
    choice = choose_lake(None)
    assert (choice.lake, choice.endpoint) == ("s3://supermarket-lake", "http://127.0.0.1:6001")


def test_query_says_which_lake_it_reads(state, tmp_path, capsys):
    main(["generate", "reference", "--out", str(tmp_path), "--skus", "20"])

    assert main(["query", "--lake", str(tmp_path), "SELECT count(*) AS n FROM skus"]) == 0

    captured = capsys.readouterr()
    assert f"reading {tmp_path}" in captured.err
    assert "20" in captured.out
