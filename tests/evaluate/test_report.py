"""The report's metric table and its note on how the EASE columns were fitted."""

from __future__ import annotations

from recsys.evaluate.report import ease_note, metric_rows

METRICS = {
    "test": {"mae": 0.8, "ndcg@10": 0.05},
    "baselines": {
        "biased_baseline": {"mae": 0.78, "ndcg@10": 0.01},
        "ease": {"ndcg@10": 0.04, "lambda": 300.0, "lambda_from": "validation", "fit_seconds": 1.0},
        "recency_ease": {"ndcg@10": 0.06, "decay": 0.9, "decay_from": "validation"},
    },
}


def test_every_baseline_has_a_column_and_recency_ease_is_one():
    header, rows = metric_rows(METRICS, 10)
    assert header[-2:] == ["EASE", "recency-weighted EASE"]
    assert rows[0] == ["mae", "0.8000", "", "0.7800", "", "", ""]
    assert rows[1][-2:] == ["0.0400", "0.0600"]


def test_the_note_says_how_both_ease_columns_were_fitted_or_why_one_is_empty():
    assert ease_note(METRICS) == (
        "EASE: lambda 300 (chosen on the validation split), fitted on train in 1.0s. "
        "Recency-weighted EASE: each train row weighted 0.9^age (chosen on the validation split)."
    )
    skipped = {**METRICS["baselines"], "recency_ease": {"skipped": "no timestamps"}}
    assert ease_note({"baselines": skipped}).endswith(
        "Recency-weighted EASE skipped: no timestamps."
    )
