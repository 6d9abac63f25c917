"""Tables a person reads at the terminal (rich): the prepare summary, metrics, the summary."""

from __future__ import annotations

from pathlib import Path

from recsys.manifests import PreparedManifest
from recsys.payloads import Metrics


def print_prepare_summary(manifest: PreparedManifest, path: Path) -> None:
    """Users, items, rows per split, quarantined rows."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"prepared {manifest.ds} run {manifest.run}", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("rows read", f"{manifest.rows_read:,}")
    table.add_row("quarantined", f"{manifest.quarantine.total:,}")
    for reason, n in sorted(manifest.quarantine.by_reason.items()):
        table.add_row(f"  {reason}", f"{n:,}")
    table.add_row("duplicates removed", f"{manifest.duplicates_removed:,}")
    if manifest.kcore_removed:
        table.add_row("k-core removed", f"{manifest.kcore_removed:,}")
    table.add_row("users", f"{manifest.n_users:,}")
    table.add_row("items", f"{manifest.n_items:,}")
    for split, n in manifest.counts.items():
        table.add_row(f"ratings: {split}", f"{n:,}")
    for key in ("returning_users", "users_without_return", "rows_of_users_without_return"):
        if key in manifest.split:  # --split return: who was held out and who stayed in train
            table.add_row(key.replace("_", " "), f"{manifest.split[key]:,}")
    console = Console()
    console.print(table)
    console.print(f"written to {path} in {manifest.seconds}s")


def print_score_result(result) -> None:
    """What ``recsys score`` wrote (a ``ScoreResult``), in a line per table."""
    m = result.manifest
    print(
        f"{m.rows:,} recommendations ({m.rows_by_source}) from {m.model_version} "
        f"written to {result.path} in {m.seconds}s (not yet published)"
    )
    if result.similar:
        s = result.similar.manifest
        print(
            f"{s.rows:,} similar items ({s.top_n} per item, cosine of {s.vectors}) "
            f"written to {result.similar.path} in {s.seconds}s"
        )


def print_metrics(metrics: Metrics, k: int, title: str) -> None:
    """The test metrics (``metrics.json``) beside the baselines."""
    from rich.console import Console
    from rich.table import Table

    from recsys.evaluate.report import ease_note, metric_rows

    header, rows = metric_rows(metrics, k)
    table = Table(caption=ease_note(metrics) or None)
    for col in header:
        table.add_column(col, justify="left" if col == "metric" else "right")
    for row in rows:
        table.add_row(*row)
    console = Console()
    if not console.is_terminal:  # a log or a pipe: no 80-column wrap of the baselines' names
        console = Console(width=max(console.width, 132))
    print(title)  # a line of its own: a long run path never wraps inside the table's title
    console.print(table)


def print_summary(root: str, k: int) -> None:
    """Where the published tables are, the metrics beside the baselines, example lists."""
    from rich.console import Console
    from rich.table import Table

    from recsys.evaluate.recorded import model_metrics
    from recsys.lookup import summary

    out = summary(root)
    console = Console()
    print("Tables (each table's _LATEST):")
    for table, path in out["tables"].items():
        print(f"  {table:16} {path}")
    if out["table"].synthetic:
        print(
            "The published table was built from SYNTHETIC data (--dataset synthetic:...), "
            "not from a real log."
        )
    model = out["model"]
    title = f"{model.model_version}: test metrics"
    if model.refit_of:
        title += f" of the evaluated twin run={model.refit_of.run} (refit on every split)"
    print_metrics(model_metrics(model), k, title)
    for ex in out["examples"]:
        t = Table(title=f"user {ex['user']} ({ex['ratings']} ratings)")
        t.add_column("recommended (top 5)")
        t.add_column("their own highest-rated")
        for i in range(max(len(ex["recommended"]), len(ex["liked"]))):
            rec = ex["recommended"][i] if i < len(ex["recommended"]) else ""
            liked = ex["liked"][i] if i < len(ex["liked"]) else ""
            t.add_row(str(rec), str(liked))
        console.print(t)
    if out["examples"]:
        user = out["examples"][0]["user"]
        print(f"One user's whole list: recsys recommend --root {root} --user {user}")
