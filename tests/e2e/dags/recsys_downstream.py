"""Test-only downstream DAG: runs when recsys publishes recommendations, records what it got.

Scheduled on the ``recsys_recommendations`` Asset, named and located as the nightly DAG defines
it (the uri from ``$RECSYS_ROOT``). Not by ``Asset.ref(name=...)``: Airflow 3.3.2 does trigger a
DAG scheduled on a name reference, but attaches no event to the run ("consumed 0 asset events"
in the scheduler log), so its ``triggering_asset_events`` is empty. Its one task appends one JSON
line per run to the file ``$RECSYS_E2E_RECORDS``: the run id, when the task ran, and every
triggering asset event (asset, extra, source run, time).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

from airflow.sdk import Asset, dag, task

DAG_ID = "recsys_downstream"
ROOT = Path(os.environ.get("RECSYS_ROOT") or "var").absolute()
RECOMMENDATIONS = Asset(name="recsys_recommendations", uri=f"file://{ROOT}/recommendations")


@dag(
    dag_id=DAG_ID,
    schedule=[RECOMMENDATIONS],
    start_date=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc),
    catchup=False,
    tags=["recsys", "test"],
)
def recsys_downstream():
    @task(retries=0)
    def record(triggering_asset_events=None, dag_run=None) -> None:
        events = [
            {
                "asset": event.asset.name,
                "uri": event.asset.uri,
                "extra": event.extra,
                "timestamp": event.timestamp.isoformat(),
                "source_dag_id": event.source_dag_id,
                "source_run_id": event.source_run_id,
                "source_task_id": event.source_task_id,
            }
            for found in triggering_asset_events.values()
            for event in found
        ]
        line = {"run_id": dag_run.run_id, "ran_at": time.time(), "events": events}
        with open(os.environ["RECSYS_E2E_RECORDS"], "a") as out:
            out.write(json.dumps(line) + "\n")

    record()


recsys_downstream()
