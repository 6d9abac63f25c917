"""``recsys demo | nightly``: the whole flow, without Airflow or as the Airflow DAG once."""

from __future__ import annotations

import argparse
import json
import sys

from recsys.cli.common import DEFAULT_DATA_DIR, common_options
from recsys.config import default_root, load_config
from recsys.errors import RecsysError


def register(sub) -> None:
    ng = sub.add_parser(
        "nightly",
        help="run the nightly Airflow DAG once, here (SQLite Airflow, local Spark): `make run`",
    )
    ng.add_argument(
        "--dataset",
        default="ml-latest-small",
        help="a ratings path, a MovieLens release (downloaded), or synthetic:ml-latest-small",
    )
    ng.add_argument(
        "--offline", action="store_true", help="never download (the release must be in ./data)"
    )
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
    ng.set_defaults(handler=cmd_nightly)

    demo = sub.add_parser(
        "demo",
        help="download ml-latest-small (or use a path, or synthetic:<shape>), prepare, train",
    )
    demo.add_argument(
        "--dataset",
        default="ml-latest-small",
        help="a MovieLens release, a ratings path, or synthetic:ml-latest-small",
    )
    demo.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    demo.add_argument("--offline", action="store_true", help="never download")
    demo.add_argument("--ds", default=None)
    common_options(demo)
    demo.set_defaults(handler=cmd_demo)


def param(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` with a JSON value (a bare string when it is not JSON)."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise RecsysError(f"--param expects KEY=VALUE, got {text!r}")
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def cmd_nightly(args: argparse.Namespace) -> int:
    from recsys import storage
    from recsys.cli.output import print_summary
    from recsys.nightly import run_nightly

    root = args.root or default_root()
    storage.check_root(root, storage.TABLES)  # before Airflow and its database start
    params = {"dataset": args.dataset, "offline": args.offline, **dict(map(param, args.param))}
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


def cmd_demo(args: argparse.Namespace) -> int:
    """Bring the data (a release, a path, or synthetic data by name), prepare it, train."""
    from recsys.cli.data import get_with_bar
    from recsys.cli.output import print_metrics, print_prepare_summary
    from recsys.evaluate.recorded import model_metrics
    from recsys.prepare.job import run_prepare
    from recsys.train.step import run_train  # without TensorFlow, fail before the download

    source = get_with_bar(args.dataset, args.data_dir, args.offline).path
    cfg = load_config(args.config, args.overrides, root=args.root, source={"input": str(source)})
    result = run_prepare(cfg, args.ds)
    print_prepare_summary(result.manifest, result.path)

    print(f"training the default model ({cfg.train.model}, {cfg.train.objective} objective)...")
    model = run_train(cfg, args.ds)
    print_metrics(model_metrics(model.manifest), cfg.train.k, model.manifest.model_version)
    print(f"model written to {model.path}")
    print(
        "Next: `recsys gate`, `recsys score` and `recsys publish` write the top-N table; "
        "`recsys nightly` (what `make run` calls) runs every step as the Airflow DAG."
    )
    return 0
