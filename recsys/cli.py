"""The ``recsys`` command: one subcommand per step, each a thin wrapper over one library call.

    recsys data download ml-latest-small --dest data/
    recsys data synth --shape ml-latest-small --dest data/synth
    recsys prepare --input data/ml-latest-small --root var/
    recsys demo            # download (or synthesise) + prepare + train, without Airflow
    recsys nightly         # the whole nightly DAG once, here (Airflow on SQLite): `make run`

Errors a user can cause print one sentence and exit with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from recsys import __version__
from recsys.config import default_root, load_config
from recsys.errors import RecsysError

log = logging.getLogger("recsys")

DEFAULT_DATA_DIR = "./data"
GATE_REFUSED = 3  # exit status of a refused gate: the model is not good enough (no retry helps)


def _setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("recsys").setLevel(min(level, logging.INFO))
    logging.getLogger("py4j").setLevel(logging.WARNING)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--root",
        default=None,
        help=f"storage root (default: $RECSYS_ROOT or ./var; now {default_root()})",
    )
    parser.add_argument(
        "--config", default=None, help="YAML config file (sections as in config.py)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override any config value, e.g. --set spark.driver_memory=8g (repeatable)",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0)


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expects a number in [0, 1), got {text!r}")
    return value


def add_prepare_arguments(p: argparse.ArgumentParser) -> None:
    """Options of ``recsys prepare`` (shared with ``jobs/prepare.py``)."""
    p.add_argument(
        "--input", required=True, help="MovieLens folder, ratings file, or CSV/Parquet log"
    )
    p.add_argument(
        "--format",
        default=None,
        help="ml-100k | ml-1m | ml-10m | ml-csv (ml-latest*, ml-20m/25m/32m) | csv | parquet "
        "(default: detected from the folder)",
    )
    p.add_argument("--ds", default=None, help="run date YYYY-MM-DD (default: today in UTC)")
    p.add_argument("--run", default=None, help="run id (default: a UTC timestamp)")
    p.add_argument(
        "--split",
        default=None,
        choices=["random", "temporal", "leave-last", "given", "stratified"],
        help="how to hold out rows (default: leave-last); stratified = per-item shares, the "
        "Microsoft Recommenders benchmark protocol with --test-fraction 0.25 --val-fraction 0",
    )
    p.add_argument(
        "--test-fraction", type=_fraction, default=None, help="random/temporal/stratified (0.2)"
    )
    p.add_argument(
        "--val-fraction", type=_fraction, default=None, help="share of train to validation (0.1)"
    )
    p.add_argument(
        "--leave-last", type=int, default=None, help="leave-last: test rows per user (1)"
    )
    p.add_argument("--seed", type=int, default=None, help="random split seed (42)")
    p.add_argument("--test-input", default=None, help="test rows for --split given")
    p.add_argument("--min-user-ratings", type=int, default=None, help="k-core: users (0 = off)")
    p.add_argument("--min-item-ratings", type=int, default=None, help="k-core: items (0 = off)")
    p.add_argument(
        "--max-reject-fraction", type=float, default=None, help="fail above this share (0.01)"
    )
    p.add_argument(
        "--min-share",
        type=float,
        default=None,
        help="refuse an input with fewer rows, users or items than this share of the previous "
        "prepared run's (0.5; 0 = off)",
    )
    p.add_argument("--user-col", default=None, help="generic logs: user column (user_id)")
    p.add_argument("--item-col", default=None, help="generic logs: item column (item_id)")
    p.add_argument(
        "--rating-col", default=None, help="generic logs: rating column; '' = implicit (rating)"
    )
    p.add_argument("--ts-col", default=None, help="generic logs: timestamp column (timestamp)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="recsys", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="version", version=f"recsys {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="download or synthesise MovieLens data")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    dl = data_sub.add_parser("download", help="download a MovieLens release from GroupLens")
    dl.add_argument(
        "name", help="ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m, ml-latest(-small)"
    )
    dl.add_argument("--dest", default=DEFAULT_DATA_DIR, help="folder to download into (./data)")
    dl.add_argument("--offline", action="store_true", help="never use the network")
    dl.add_argument("-v", "--verbose", action="count", default=0)
    get = data_sub.add_parser(
        "get", help="download a release, or synthesise one of its shape when offline"
    )
    get.add_argument("name", help="a MovieLens release name (ml-latest-small, ml-1m, ...)")
    get.add_argument("--dest", default=DEFAULT_DATA_DIR, help="folder to download into (./data)")
    get.add_argument("--offline", action="store_true", help="never use the network")
    get.add_argument(
        "--result-file",
        default=None,
        help='also write {"input": <folder>} as JSON to this file (what the DAG reads)',
    )
    get.add_argument("-v", "--verbose", action="count", default=0)
    sy = data_sub.add_parser("synth", help="write a synthetic MovieLens-format data set")
    sy.add_argument("--shape", default="ml-latest-small", help="ml-latest-small | ml-1m | ml-25m")
    sy.add_argument("--users", type=int, default=None, help="custom shape: number of users")
    sy.add_argument("--items", type=int, default=None, help="custom shape: number of items")
    sy.add_argument("--ratings", type=int, default=None, help="custom shape: number of ratings")
    sy.add_argument("--dest", default=None, help="output folder (./data/synth-<shape>)")
    sy.add_argument("--seed", type=int, default=0)
    sy.add_argument("-v", "--verbose", action="count", default=0)

    prep = sub.add_parser("prepare", help="validate, clean, index and split a ratings log (Spark)")
    add_prepare_arguments(prep)
    _common(prep)

    train = sub.add_parser("train", help="train, export and evaluate a model (TensorFlow)")
    train.add_argument("--ds", default=None, help="run date of the model (default: today, UTC)")
    train.add_argument("--run", default=None, help="run id (default: a UTC timestamp)")
    train.add_argument("--prepared-ds", default=None, help="prepared ds (default: _LATEST)")
    train.add_argument("--prepared-run", default=None, help="prepared run id")
    train.add_argument("--model", default=None, help="mf | biased-mf | ncf | neumf (biased-mf)")
    train.add_argument(
        "--objective",
        default=None,
        choices=["ranking", "rating"],
        help="ranking (default: learn which items users choose; what the top-N table needs) or "
        "rating (the classic MSE models)",
    )
    train.add_argument(
        "--refit",
        action="store_true",
        help="retrain the model of --refit-ds/--refit-run (default: models/_LATEST) with its "
        "settings and best epoch count on every split of its prepared run",
    )
    train.add_argument("--refit-ds", default=None, help="ds of the model to refit")
    train.add_argument("--refit-run", default=None, help="run id of the model to refit")
    _common(train)

    sc = sub.add_parser("score", help="top-N unseen items of every user (Spark, numpy kernels)")
    sc.add_argument("--ds", default=None, help="run date of the table (default: today, UTC)")
    sc.add_argument("--run", default=None, help="run id (default: a UTC timestamp)")
    sc.add_argument("--model-ds", default=None, help="model ds (default: models/_LATEST)")
    sc.add_argument("--model-run", default=None, help="model run id")
    sc.add_argument("--top", type=int, default=10, help="items per user (10)")
    sc.add_argument(
        "--min-item-ratings", type=int, default=0, help="never recommend rarer items (0 = off)"
    )
    sc.add_argument(
        "--similar-items",
        type=int,
        default=0,
        metavar="N",
        help="also write similar_items/: each item's N nearest items by embedding (0 = off)",
    )
    _common(sc)

    pub = sub.add_parser(
        "publish", help="validate a scored table and make it recommendations/_LATEST"
    )
    pub.add_argument("--ds", default=None, help="ds of the table (default: today, UTC)")
    pub.add_argument("--run", default=None, help="run id (default: the newest run of --ds)")
    pub.add_argument(
        "--min-share",
        type=float,
        default=None,
        help="refuse a table covering fewer users than this share of the live one's (0.5)",
    )
    pub.add_argument(
        "--result-file",
        default=None,
        help="also write the outcome (path, ds, run, users, rows, moved) as JSON to this file",
    )
    _common(pub)

    gate = sub.add_parser(
        "gate",
        help="refuse a model that ranks worse than popularity or than the published model "
        "(exit status 3)",
    )
    gate.add_argument("--model-ds", default=None, help="model ds (default: models/_LATEST)")
    gate.add_argument("--model-run", default=None, help="model run id")
    gate.add_argument("--ds", default=None, help="ds of the decision (default: the model's)")
    gate.add_argument("--run", default=None, help="run id of the decision (default: timestamp)")
    gate.add_argument("--tolerance", type=float, default=None, help="gate.tolerance (0.1)")
    gate.add_argument("--min-lift", type=float, default=None, help="gate.min_lift (0.0)")
    _common(gate)

    ret = sub.add_parser("retention", help="delete runs older than N days (never those in use)")
    ret.add_argument("--days", type=int, default=None, help="retention.days (14)")
    ret.add_argument("--ds", default=None, help="reference date (default: today, UTC)")
    ret.add_argument("--dry-run", action="store_true", help="list what would go, delete nothing")
    _common(ret)

    rec = sub.add_parser("recommend", help="print a user's published recommendations")
    rec.add_argument("--user", required=True, help="the user's original id")
    _common(rec)

    ng = sub.add_parser(
        "nightly",
        help="run the nightly Airflow DAG once, here (SQLite Airflow, local Spark): `make run`",
    )
    ng.add_argument(
        "--dataset",
        default="ml-latest-small",
        help="MovieLens release (downloaded; synthetic when offline) or a ratings path",
    )
    ng.add_argument("--offline", action="store_true", help="never download; synthesise")
    ng.add_argument("--ds", default=None, help="logical date of the run (default: today, UTC)")
    ng.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a DAG param, e.g. --param top_n=20 --param refit=false (repeatable; JSON values)",
    )
    ng.add_argument("-v", "--verbose", action="count", default=0)
    ng.add_argument("--root", default=None, help=f"storage root (now {default_root()})")

    sm = sub.add_parser(
        "summary", help="tables, metrics and example lists of the published recommendations"
    )
    _common(sm)

    ev = sub.add_parser("evaluate", help="metrics of a model run next to the baselines")
    ev.add_argument("--ds", default=None, help="model run date (default: the latest model)")
    ev.add_argument("--run", default=None, help="model run id")
    _common(ev)

    demo = sub.add_parser(
        "demo", help="download ml-latest-small (or synthesise it offline), prepare it, train"
    )
    demo.add_argument("--dataset", default="ml-latest-small", help="MovieLens release to use")
    demo.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    demo.add_argument("--offline", action="store_true", help="skip the download, synthesise")
    demo.add_argument("--ds", default=None)
    _common(demo)
    return parser


def _prepare_config(args: argparse.Namespace):
    return load_config(
        args.config,
        args.overrides,
        root=args.root,
        source={
            "input": args.input,
            "format": args.format,
            "test_input": args.test_input,
            "user_col": args.user_col,
            "item_col": args.item_col,
            "rating_col": args.rating_col,
            "ts_col": args.ts_col,
        },
        prepare={
            "split": args.split,
            "test_fraction": args.test_fraction,
            "val_fraction": args.val_fraction,
            "leave_last": args.leave_last,
            "seed": args.seed,
            "min_user_ratings": args.min_user_ratings,
            "min_item_ratings": args.min_item_ratings,
            "max_reject_fraction": args.max_reject_fraction,
            "min_share": args.min_share,
        },
    )


def print_prepare_summary(manifest: dict, path: Path) -> None:
    """A short table a person can read: users, items, rows per split, quarantined rows."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"prepared {manifest['ds']} run {manifest['run']}", show_header=True)
    table.add_column("what")
    table.add_column("count", justify="right")
    table.add_row("rows read", f"{manifest['rows_read']:,}")
    table.add_row("quarantined", f"{manifest['quarantine']['total']:,}")
    for reason, n in sorted(manifest["quarantine"]["by_reason"].items()):
        table.add_row(f"  {reason}", f"{n:,}")
    table.add_row("duplicates removed", f"{manifest['duplicates_removed']:,}")
    if manifest["kcore_removed"]:
        table.add_row("k-core removed", f"{manifest['kcore_removed']:,}")
    table.add_row("users", f"{manifest['n_users']:,}")
    table.add_row("items", f"{manifest['n_items']:,}")
    for split, n in manifest["counts"].items():
        table.add_row(f"ratings: {split}", f"{n:,}")
    console = Console()
    console.print(table)
    console.print(f"written to {path} in {manifest['seconds']}s")


def cmd_prepare(args: argparse.Namespace) -> int:
    from recsys.prepare.job import run_prepare

    cfg = _prepare_config(args)
    result = run_prepare(cfg, args.ds, args.run)
    print_prepare_summary(result.manifest, result.path)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    cfg = load_config(
        args.config,
        args.overrides,
        root=args.root,
        train={"model": args.model, "objective": args.objective},
    )
    from recsys.train.trainer import check_train_config

    check_train_config(cfg.train)  # fail on a bad name before TensorFlow loads
    from recsys.train.trainer import run_train

    refit_of = None
    if args.refit:
        from recsys import storage

        refit_of = storage.resolve(cfg.root, "models", args.refit_ds, args.refit_run)
    elif args.refit_ds or args.refit_run:
        raise RecsysError("--refit-ds/--refit-run name the model to refit; add --refit")
    result = run_train(cfg, args.ds, args.run, args.prepared_ds, args.prepared_run, refit_of)
    title = result.manifest["model_version"]
    if refit_of is not None:
        title += f" (refit; held-out metrics of {refit_of.name})"
    print_metrics(result.manifest["metrics"], cfg.train.k, title)
    print(f"written to {result.path}")
    return 0


def print_metrics(metrics: dict, k: int, title: str) -> None:
    """The test metrics beside the baselines, as a table."""
    from rich.console import Console
    from rich.table import Table

    from recsys.evaluate.report import ease_note, metric_rows

    header, rows = metric_rows(metrics, k)
    table = Table(title=title, caption=ease_note(metrics) or None)
    for col in header:
        table.add_column(col, justify="left" if col == "metric" else "right")
    for row in rows:
        table.add_row(*row)
    Console().print(table)


def cmd_score(args: argparse.Namespace) -> int:
    from recsys.score.job import run_score

    cfg = load_config(args.config, args.overrides, root=args.root)
    result = run_score(
        cfg,
        args.ds,
        args.run,
        args.model_ds,
        args.model_run,
        n=args.top,
        min_item_ratings=args.min_item_ratings,
        similar_items=args.similar_items,
    )
    m = result.manifest
    print(
        f"{m['rows']:,} recommendations ({m['rows_by_source']}) from {m['model_version']} "
        f"written to {result.path} in {m['seconds']}s (not yet published)"
    )
    if result.similar:
        s = result.similar.manifest
        print(
            f"{s['rows']:,} similar items ({s['top_n']} per item, cosine of {s['vectors']}) "
            f"written to {result.similar.path} in {s['seconds']}s"
        )
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    from recsys.score.publish import publish

    cfg = load_config(
        args.config, args.overrides, root=args.root, publish={"min_share": args.min_share}
    )
    out = publish(cfg.root, args.ds, args.run, cfg.publish.min_share, cfg.move_latest_backwards)
    if args.result_file:
        Path(args.result_file).write_text(json.dumps(out) + "\n")
    live = "" if out["moved"] else " (recommendations/_LATEST names a newer ds and stays)"
    print(f"published {out['path']}: {out['rows']:,} rows for {out['users']:,} users{live}")
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from recsys import storage
    from recsys.evaluate.prepared import evaluate_prepared
    from recsys.score.kernels import Scorer

    cfg = load_config(args.config, args.overrides, root=args.root)
    folder = storage.resolve(cfg.root, "models", args.ds, args.run)
    manifest = storage.read_manifest(folder)
    prepared = Path(manifest["prepared"]["path"])
    metrics = evaluate_prepared(
        Scorer.load(folder / "arrays.npz"),
        prepared,
        k=cfg.train.k,
        max_users=cfg.train.eval_max_users,
    )
    print_metrics(metrics, cfg.train.k, f"{manifest['model_version']} on {prepared}")
    return 0


def _progress_download(name: str, dest: str, offline: bool) -> Path:
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    from recsys.data.download import download

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        transient=True,
    ) as bar:
        task = bar.add_task(f"downloading {name}", total=None)

        def progress(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        return download(name, dest, offline=offline, progress=progress)


def get_dataset(name: str, data_dir: str | Path, offline: bool = False) -> Path:
    """A release name -> its downloaded folder; offline (or unreachable) -> a synthetic set of
    its shape, said in one line. An existing path is used as it is."""
    from recsys.data.synth import synthesize

    if Path(name).exists():
        return Path(name)
    try:
        return _progress_download(name, str(data_dir), offline)
    except RecsysError as exc:
        log.debug("download failed: %s", exc)
        source = Path(data_dir) / f"synth-{name}"
        shape = name if name in ("ml-latest-small", "ml-1m", "ml-25m") else "ml-latest-small"
        print(f"{name} is not available ({exc}); using synthetic data of the {shape} shape")
        if not (source / "ratings.csv").is_file():
            synthesize(source, shape)
        return source


def cmd_data(args: argparse.Namespace) -> int:
    if args.data_command == "download":
        path = _progress_download(args.name, args.dest, args.offline)
        print(path)
        return 0
    if args.data_command == "get":
        path = get_dataset(args.name, args.dest, args.offline)
        if args.result_file:
            Path(args.result_file).write_text(json.dumps({"input": str(path.absolute())}) + "\n")
        print(path)
        return 0
    from recsys.data.synth import SHAPES, shape_from_counts, synthesize

    if any(v is not None for v in (args.users, args.items, args.ratings)):
        if None in (args.users, args.items, args.ratings):
            raise RecsysError("a custom shape needs all of --users, --items and --ratings")
        shape = shape_from_counts(args.users, args.items, args.ratings)
        label = f"{args.users}x{args.items}"
    else:
        if args.shape not in SHAPES:
            raise RecsysError(f"--shape must be one of {', '.join(SHAPES)}, got {args.shape!r}")
        shape, label = args.shape, args.shape
    dest = args.dest or os.path.join(DEFAULT_DATA_DIR, f"synth-{label}")
    result = synthesize(dest, shape, seed=args.seed)
    print(
        f"{result.n_ratings:,} ratings, {result.n_users:,} users, "
        f"{result.n_items:,} items -> {dest}"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Download (or synthesise when offline) a MovieLens set, prepare it, train: `make run`."""
    from recsys.prepare.job import run_prepare
    from recsys.train.trainer import run_train  # without TensorFlow, fail before the download

    source = get_dataset(args.dataset, args.data_dir, args.offline)
    cfg = load_config(args.config, args.overrides, root=args.root, source={"input": str(source)})
    result = run_prepare(cfg, args.ds)
    print_prepare_summary(result.manifest, result.path)

    print(f"training the default model ({cfg.train.model}, {cfg.train.objective} objective)...")
    model = run_train(cfg, args.ds)
    print_metrics(model.manifest["metrics"], cfg.train.k, model.manifest["model_version"])
    print(f"model written to {model.path}")
    print(
        "Next: `recsys gate`, `recsys score` and `recsys publish` write the top-N table; "
        "`recsys nightly` (what `make run` calls) runs every step as the Airflow DAG."
    )
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    from recsys import storage
    from recsys.evaluate.gate import run_gate

    cfg = load_config(
        args.config,
        args.overrides,
        root=args.root,
        gate={"tolerance": args.tolerance, "min_lift": args.min_lift},
    )
    model_dir = storage.resolve(cfg.root, "models", args.model_ds, args.model_run)
    result = run_gate(cfg.root, model_dir, cfg.gate, cfg.train.k, args.ds, args.run)
    if not result.passed:
        print(
            f"recsys gate: refused {result.manifest['model_version']}: {result.reason}",
            file=sys.stderr,
        )
        print(f"decision written to {result.path}", file=sys.stderr)
        return GATE_REFUSED
    print(f"gate {result.reason} ({result.manifest['model_version']})")
    print(f"decision written to {result.path}")
    return 0


def cmd_retention(args: argparse.Namespace) -> int:
    from recsys.retention import apply_retention

    cfg = load_config(args.config, args.overrides, root=args.root, retention={"days": args.days})
    out = apply_retention(cfg.root, cfg.retention.days, args.ds, args.dry_run)
    verb = "would delete" if args.dry_run else "deleted"
    for path in out["deleted"]:
        print(f"{verb} {path}")
    print(
        f"{verb} {len(out['deleted'])} runs older than {out['cutoff']} "
        f"({out['bytes_freed'] / 1e6:,.1f} MB); kept {len(out['kept_in_use'])} old runs in use"
    )
    return 0


def cmd_recommend(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from recsys.lookup import user_recommendations

    cfg = load_config(args.config, args.overrides, root=args.root)
    rows, manifest = user_recommendations(cfg.root, args.user)
    table = Table(title=f"user {args.user}: {manifest['model_version']} ({manifest['ds']})")
    for col in ("rank", "title", "item id", "score", "source"):
        table.add_column(col, justify="right" if col in ("rank", "score") else "left")
    for r in rows.itertuples(index=False):
        table.add_row(str(r.rank), str(r.title), str(r.item_id), f"{r.score:.4f}", r.source)
    Console().print(table)
    return 0


def _param(text: str) -> tuple[str, object]:
    import json

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise RecsysError(f"--param expects KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value  # a bare string


def cmd_nightly(args: argparse.Namespace) -> int:
    from recsys.nightly import run_nightly

    root = args.root or default_root()
    params = {"dataset": args.dataset, "offline": args.offline, **dict(map(_param, args.param))}
    result = run_nightly(root, args.ds, params)
    if not result.ok:
        print(
            f"recsys nightly: the run for {result.ds} failed after {result.seconds:.0f} s: "
            f"{result.reason}\nfull Airflow log: {result.log}",
            file=sys.stderr,
        )
        return 1
    print(f"the nightly run for {result.ds} succeeded in {result.seconds:.0f} s\n")
    print_summary(root, load_config(root=root).train.k)
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    cfg = load_config(args.config, args.overrides, root=args.root)
    print_summary(cfg.root, cfg.train.k)
    return 0


def print_summary(root: str, k: int) -> None:
    """Where the published tables are, the metrics beside the baselines, example lists."""
    from rich.console import Console
    from rich.table import Table

    from recsys.lookup import summary

    out = summary(root)
    console = Console()
    print("Tables (each table's _LATEST):")
    for table, path in out["tables"].items():
        print(f"  {table:16} {path}")
    model = out["model"]
    title = f"{model['model_version']}: test metrics"
    if model.get("refit_of"):
        title += f" of the evaluated twin run={model['refit_of']['run']} (refit on every split)"
    print_metrics(model["metrics"], k, title)
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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(getattr(args, "verbose", 0))
    handlers = {
        "prepare": cmd_prepare,
        "data": cmd_data,
        "demo": cmd_demo,
        "train": cmd_train,
        "evaluate": cmd_evaluate,
        "score": cmd_score,
        "publish": cmd_publish,
        "gate": cmd_gate,
        "retention": cmd_retention,
        "recommend": cmd_recommend,
        "summary": cmd_summary,
        "nightly": cmd_nightly,
    }
    try:
        return handlers[args.command](args)
    except RecsysError as exc:
        print(f"recsys {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
