"""A run report a person reads: markdown tables next to the baselines, and one PNG of plots.

``report.md`` holds the test metrics beside the baselines (global mean and biased baseline for
rating metrics, the popularity list, EASE and recency-weighted EASE for ranking metrics), the
validation metrics and the epochs;
``report.png`` shows the learning curves, the ranking metrics against popularity, and the
distribution of predicted vs true ratings on the test split.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

RATING_KEYS = ("rmse", "mae")


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


# (metrics.json key, column title) of the baselines, in the order they are shown.
BASELINES = (
    ("global_mean", "global mean"),
    ("biased_baseline", "biased baseline (rating model)"),
    ("most_popular", "most popular"),
    ("ease", "EASE"),
    ("recency_ease", "recency-weighted EASE"),
)


def metric_rows(metrics: dict[str, Any], k: int) -> tuple[list[str], list[list[str]]]:
    """The test metrics beside the baselines as text: a header and one row per metric.

    Shared by ``report.md`` and the ``recsys evaluate`` / ``recsys summary`` tables, so the two
    always show the same columns; a metric the model lacks (RMSE of a ranking model) is left out.
    """
    test = metrics.get("test", {})
    base = metrics.get("baselines", {})
    ranking = [f"{m}@{k}" for m in ("ndcg", "precision", "recall", "map", "hit_rate", "mrr")]
    ranking += [f"coverage@{k}", f"novelty@{k}"]
    header = ["metric", "model", *(title for _, title in BASELINES)]
    rows = []
    for key in (*RATING_KEYS, *ranking):
        if key not in test:
            continue
        values = [test[key], *(base.get(name, {}).get(key, "") for name, _ in BASELINES)]
        rows.append([key, *(_fmt(v) for v in values)])
    return header, rows


def ease_note(metrics: dict[str, Any]) -> str:
    """One line on how the EASE column was fitted, or why it is empty ("" for older runs)."""
    ease = metrics.get("baselines", {}).get("ease")
    if not ease:
        return ""
    if "skipped" in ease:
        return f"EASE skipped: {ease['skipped']}."
    chosen = "chosen on the validation split" if ease["lambda_from"] == "validation" else "default"
    note = f"EASE: lambda {ease['lambda']:g} ({chosen}), fitted on train in {ease['fit_seconds']}s."
    recency = metrics["baselines"].get("recency_ease")
    if recency and "skipped" in recency:
        return f"{note} Recency-weighted EASE skipped: {recency['skipped']}."
    if recency:
        how = (
            "chosen on the validation split" if recency["decay_from"] == "validation" else "default"
        )
        note += f" Recency-weighted EASE: each train row weighted {recency['decay']:g}^age ({how})."
    return note


def metrics_table(metrics: dict[str, Any], k: int) -> str:
    """Markdown table: one row per metric, columns model / baselines."""
    header, rows = metric_rows(metrics, k)
    lines = ["| " + " | ".join(header) + " |", "| --- |" + " ---: |" * (len(header) - 1)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(
    folder: Path,
    metrics: dict[str, Any],
    history: dict[str, list[float]],
    k: int,
    ratings: tuple[np.ndarray, np.ndarray] | None = None,
    title: str = "recsys model run",
) -> None:
    """Write ``report.md`` and ``report.png`` into ``folder``."""
    folder = Path(folder)
    parts = [f"# {title}", "", "## Test split", "", metrics_table(metrics, k), ""]
    if ease_note(metrics):
        parts += [ease_note(metrics), ""]
    if "val" in metrics:
        val = ", ".join(f"{key} {_fmt(v)}" for key, v in metrics["val"].items())
        parts += ["## Validation split", "", val, ""]
    epochs = len(history.get("loss", []))
    if epochs:
        ndcg = history.get(f"val_ndcg@{k}")
        if ndcg:
            best = f"best validation NDCG@{k} {max(ndcg):.4f}"
        elif "rmse" in history or "val_rmse" in history:
            best = f"best monitored RMSE {min(history.get('val_rmse', history['rmse'])):.4f}"
        else:
            best = f"final loss {history['loss'][-1]:.4f}"
        parts += ["## Training", "", f"{epochs} epochs; {best}.", ""]
    parts += ["![plots](report.png)", ""]
    (folder / "report.md").write_text("\n".join(parts))
    _plot(folder / "report.png", metrics, history, k, ratings)


def _plot(path: Path, metrics, history, k, ratings) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    ax = axes[0]
    rating = bool(history.get("rmse"))
    for key in ("rmse", "val_rmse") if rating else ("loss",):
        if history.get(key):
            ax.plot(range(1, len(history[key]) + 1), history[key], marker="o", label=key)
    ax.set(title="learning curves", xlabel="epoch", ylabel="RMSE" if rating else "loss")
    ax.legend(loc="upper left")
    ndcg = history.get(f"val_ndcg@{k}")
    if ndcg:
        twin = ax.twinx()
        twin.plot(range(1, len(ndcg) + 1), ndcg, marker="s", color="C2", label=f"val_ndcg@{k}")
        twin.set_ylabel(f"validation NDCG@{k}")
        twin.legend(loc="upper right")
    ax = axes[1]
    keys = [f"{m}@{k}" for m in ("ndcg", "precision", "recall", "hit_rate", "mrr")]
    base = metrics.get("baselines", {})
    bars = [
        ("model", metrics.get("test", {})),
        ("biased baseline (rating)", base.get("biased_baseline", {})),
        ("most popular", base.get("most_popular", {})),
        ("EASE", base.get("ease", {})),
        ("recency EASE", base.get("recency_ease", {})),
    ]
    x = np.arange(len(keys))
    width = 0.8 / len(bars)
    for j, (label, values) in enumerate(bars):
        offset = (j - (len(bars) - 1) / 2) * width
        ax.bar(x + offset, [values.get(key, 0) for key in keys], width, label=label)
    ax.set_xticks(x, keys, rotation=30)
    ax.set(title="ranking metrics (test)")
    ax.legend()
    ax = axes[2]
    if ratings is not None:
        truth, pred = ratings
        bins = np.linspace(min(truth.min(), pred.min()), max(truth.max(), pred.max()), 30)
        ax.hist(truth, bins=bins, alpha=0.6, label="true")
        ax.hist(pred, bins=bins, alpha=0.6, label="predicted")
        ax.legend()
        ax.set(title="ratings on test", xlabel="rating")
    else:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
