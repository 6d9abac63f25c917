"""How a command hands its outcome over ($RECSYS_RESULT_FILE), and when it cannot."""

from __future__ import annotations

import json

import pytest

from recsys.cli.common import RESULT_FILE, run_handler
from recsys.errors import RecsysError


def test_the_outcome_is_written_as_json(tmp_path, monkeypatch):
    monkeypatch.setenv(RESULT_FILE, str(tmp_path / "result.json"))
    assert run_handler("publish", lambda args: {"path": "/x", "users": 3}, None) == 0
    got = json.loads((tmp_path / "result.json").read_text())
    assert got == {
        "command": "publish",
        "status": 0,
        "error": "",
        "outcome": {"path": "/x", "users": 3},
    }


def test_a_refusal_is_status_2_with_its_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv(RESULT_FILE, str(tmp_path / "result.json"))

    def refuse(args):
        raise RecsysError("input x has 3 rows")

    assert run_handler("prepare", refuse, None) == 2
    got = json.loads((tmp_path / "result.json").read_text())
    assert got["status"] == 2 and got["error"] == "recsys prepare: error: input x has 3 rows"


@pytest.mark.parametrize("status", [0, 2])
def test_an_unwritable_result_file_does_not_change_the_status(
    tmp_path, monkeypatch, capsys, status
):
    """A Spark driver in cluster mode runs where the worker's temporary folder does not exist:
    the step's own status stands (a committed run must not fail and be retried)."""
    monkeypatch.setenv(RESULT_FILE, str(tmp_path / "gone" / "result.json"))

    def handler(args):
        if status:
            raise RecsysError("refused")
        return 0

    assert run_handler("score", handler, None) == status
    assert "outcome not handed over" in capsys.readouterr().err
