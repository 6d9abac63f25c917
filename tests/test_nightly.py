"""Reading ``airflow dags test`` output: task states and times, the offline note, the reason."""

from __future__ import annotations

import pytest

from recsys.nightly import follow

LINES = [
    "2026-11-26T13:54:02.000000Z [info     ] [DAG TEST] starting task_id=evaluate map_index=-1 "
    "[airflow.sdk.definitions.dag] loc=dag.py:1501\n",
    "2026-11-26T13:54:02.100000Z [info     ] Task started [airflow.api_fastapi.execution_api.routes"
    ".task_instances] loc=task_instances.py:226 previous_state=queued ti_id=1\n",
    "2026-11-26T13:54:02.500000Z [info     ] ml-latest-small is not available (could not download "
    "ml-latest-small: Name or service not known); using synthetic data of the ml-latest-small "
    "shape [airflow.task] loc=recsys_nightly.py:97\n",
    "2026-11-26T13:54:04.787761Z [info     ] Task instance state updated    [airflow.api_fastapi"
    ".execution_api.routes.task_instances] loc=task_instances.py:485 new_state=success "
    "rows_affected=1 ti_id=1\n",
    "2026-11-26T13:54:04.821766Z [info     ] [DAG TEST] end task task_id=evaluate map_index=-1 "
    "[airflow.sdk.definitions.dag] loc=dag.py:1563\n",
    "2026-11-26T13:54:04.833748Z [info     ] [DAG TEST] starting task_id=gate map_index=-1 "
    "[airflow.sdk.definitions.dag] loc=dag.py:1501\n",
    "airflow.sdk.exceptions.AirflowFailException: recsys gate: refused mf-1: test ndcg@10 0.0802 "
    "is below the popularity list's 0.0816\n",
    "2026-11-26T13:54:05.468455Z [info     ] Task instance state updated    [airflow.api_fastapi"
    ".execution_api.routes.task_instances] loc=task_instances.py:485 new_state=failed "
    "rows_affected=1 ti_id=2\n",
    "2026-11-26T13:54:05.494760Z [info     ] [DAG TEST] end task task_id=gate map_index=-1 "
    "[airflow.sdk.definitions.dag] loc=dag.py:1563\n",
]


def test_follow_reports_each_task_the_offline_note_and_the_reason():
    said: list[str] = []
    tasks, reason = follow(iter(LINES), said.append)
    assert [(t.task, t.state) for t in tasks] == [("evaluate", "success"), ("gate", "failed")]
    assert tasks[0].seconds == pytest.approx(2.821766)
    assert tasks[1].seconds == pytest.approx(0.661012)
    assert reason == (
        "AirflowFailException: recsys gate: refused mf-1: test ndcg@10 0.0802 is below the "
        "popularity list's 0.0816"
    )
    assert said[0].strip().startswith("ml-latest-small is not available (")
    assert said[0].strip().endswith("using synthetic data of the ml-latest-small shape")
    assert said[1].split() == ["evaluate", "success", "2.8", "s"]
    assert said[2].split() == ["gate", "failed", "0.7", "s"]


def test_a_run_without_output_has_no_tasks_and_no_reason():
    assert follow(iter([]), print) == ([], "")
