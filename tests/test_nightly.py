"""``recsys nightly`` reads the run from Airflow's task states and the DAG's JSON report."""

from __future__ import annotations

import json

import pytest

from recsys.nightly import TaskTime, echo_entry, outcome, read_report, task_states

# `airflow tasks states-for-dag-run recsys_nightly 2026-11-26 --output json` after a refused gate.
STATES = [
    {"dag_id": "recsys_nightly", "logical_date": "2026-11-26T00:00:00+00:00", "task_id": t,
     "state": state, "start_date": start, "end_date": end}
    for t, state, start, end in [
        ("gate", "failed", "2026-11-26T13:54:04.833748+00:00", "2026-11-26T13:54:05.494760+00:00"),
        ("train", "success", "2026-11-26T13:54:02+00:00", "2026-11-26T13:54:04.821766+00:00"),
        ("refit", "upstream_failed", "", ""),
        ("score", None, "", ""),
    ]
]  # fmt: skip
REPORT = [
    {"task": "source", "status": 0, "error": "", "seconds": 1.5, "input": "/d/synth",
     "note": "ml-latest-small is not available (offline); using synthetic data of the "
             "ml-latest-small shape"},
    {"task": "gate", "status": 3, "seconds": 0.7, "passed": False,
     "error": "recsys gate: refused mf-1: test ndcg@10 0.0802 is below popularity's 0.0816"},
]  # fmt: skip


def test_task_states_keep_the_tasks_that_ran_in_start_order_with_their_times():
    stdout = "a warning [not json]\n" + json.dumps(STATES)
    tasks = task_states(stdout)
    assert [(t.task, t.state) for t in tasks] == [("train", "success"), ("gate", "failed")]
    assert tasks[0].seconds == pytest.approx(2.821766)
    assert tasks[1].seconds == pytest.approx(0.661012)
    assert task_states("") == []


def test_the_reason_is_the_failed_command_s_own_sentence():
    tasks = [TaskTime("train", "success", 2.8), TaskTime("gate", "failed", 0.7)]
    ok, reason = outcome(tasks, REPORT, 1)
    assert not ok and reason == REPORT[1]["error"]
    assert outcome(tasks, [], 1) == (False, "task gate failed")
    assert outcome([], [], 2) == (False, "airflow dags test exited with status 2")
    assert outcome(tasks[:1], REPORT[:1], 0) == (True, "")
    # A task the DAG skipped on purpose (param refit off) does not fail the run.
    assert outcome([*tasks[:1], TaskTime("refit", "skipped")], REPORT[:1], 0) == (True, "")


def test_the_report_is_read_line_by_line_and_echoed_with_its_note(tmp_path):
    path = tmp_path / "report.jsonl"
    assert read_report(path) == []
    path.write_text("".join(json.dumps(e) + "\n" for e in REPORT) + '{"task": "half')
    assert read_report(path) == REPORT and read_report(path, 1) == REPORT[1:]
    said: list[str] = []
    for entry in REPORT:
        echo_entry(entry, said.append)
    assert said[0].strip().startswith("ml-latest-small is not available (")
    assert said[1].split() == ["source", "success", "1.5", "s"]
    assert said[2].split() == ["gate", "failed", "0.7", "s"]
