"""``recsys train | evaluate | gate``: train a model, its metrics, whether it may be served."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from recsys.cli.common import GATE_REFUSED, common_options
from recsys.config import load_config
from recsys.errors import RecsysError


def register(sub) -> None:
    train = sub.add_parser("train", help="train, export and evaluate a model (TensorFlow)")
    add_train_arguments(train)
    common_options(train)
    train.set_defaults(handler=cmd_train)

    ev = sub.add_parser("evaluate", help="metrics of a model run next to the baselines")
    ev.add_argument("--ds", default=None, help="model run date (default: the latest model)")
    ev.add_argument("--run", default=None, help="model run id")
    ev.add_argument(
        "--recompute",
        action="store_true",
        help="rank the model again on its prepared run (default: the figures its training "
        "recorded, the ones the gate judged)",
    )
    common_options(ev)
    ev.set_defaults(handler=cmd_evaluate)

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
    common_options(gate)
    gate.set_defaults(handler=cmd_gate)


def add_train_arguments(train: argparse.ArgumentParser) -> None:
    """Options of ``recsys train`` (shared with ``jobs/train.py``)."""
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
        help="bring the held-out rows into the model of --refit-ds/--refit-run (default: "
        "models/_LATEST): train.refit_mode=continue (default) trains it on the val and test rows, "
        "full retrains its settings on every split for its best epoch count",
    )
    train.add_argument("--refit-ds", default=None, help="ds of the model to refit")
    train.add_argument("--refit-run", default=None, help="run id of the model to refit")


def _train_setup(args: argparse.Namespace):
    """The config and the model run to refit (None: a train) of ``recsys train``'s options."""
    from recsys import storage

    cfg = load_config(
        args.config,
        args.overrides,
        root=args.root,
        train={"model": args.model, "objective": args.objective},
    )
    storage.check_root(cfg.root, ("prepared", "models", "recommendations"))  # before TensorFlow
    refit_of = None
    if args.refit:
        refit_of = storage.resolve(cfg.root, "models", args.refit_ds, args.refit_run)
    elif args.refit_ds or args.refit_run:
        raise RecsysError("--refit-ds/--refit-run name the model to refit; add --refit")
    return cfg, refit_of


def _trained(cfg, path, model_version: str, refit_of) -> dict:
    """Print the run's metrics and where it is; the outcome handed to the next step."""
    from recsys.cli.output import print_metrics
    from recsys.evaluate.recorded import model_metrics
    from recsys.manifests import ModelManifest, PreparedManifest

    title = model_version
    if refit_of is not None:
        title += f" (refit; held-out metrics of {refit_of.name})"
    model = ModelManifest.read(path)
    print_metrics(model_metrics(model), cfg.train.k, title)
    prepared = PreparedManifest.read(model.prepared.folder)
    if refit_of is None and not prepared.count("val") and not prepared.count("test"):
        print(
            f"the split of {model.prepared.folder} left no val or test rows (too few rows per "
            "user to hold one out), so nothing was evaluated and the gate will refuse this model"
        )
    print(f"written to {path}")
    return {"path": str(path), "model_version": model_version}


def cmd_train(args: argparse.Namespace) -> dict:
    """``recsys train``: TensorFlow in this process (``train.workers`` does not apply)."""
    cfg, refit_of = _train_setup(args)
    from recsys.config import check_train_config

    check_train_config(cfg.train)  # fail on a bad name before TensorFlow loads
    from recsys.train.step import run_train

    result = run_train(cfg, args.ds, args.run, args.prepared_ds, args.prepared_run, refit_of)
    return _trained(cfg, result.path, result.manifest.model_version, refit_of)


def cmd_train_job(args: argparse.Namespace) -> dict:
    """``jobs/train.py``: the same training as a barrier stage of ``train.workers`` Spark tasks
    (``recsys.train.launch.barrier``); this driver never imports TensorFlow."""
    from recsys import storage
    from recsys.spark import get_spark
    from recsys.train.launch.barrier import run_barrier

    cfg, refit_of = _train_setup(args)
    ds = storage.check_ds(args.ds or storage.today_utc())  # one date for every worker
    if refit_of is None:  # a missing prepared run fails here, before any executor starts
        storage.resolve(cfg.root, "prepared", args.prepared_ds, args.prepared_run)
    spark = get_spark(cfg.spark, "recsys-train")
    kwargs = {
        "cfg": cfg,
        "ds": ds,
        "run": args.run or storage.new_run_id(),  # one id over the stage's attempts
        "prepared_ds": args.prepared_ds,
        "prepared_run": args.prepared_run,
        "refit_of": refit_of,
    }
    out = run_barrier(
        spark.sparkContext, cfg.train.workers, "recsys.train.launch.worker:train_worker", kwargs
    )
    return _trained(cfg, Path(out["path"]), out["model_version"], refit_of)


def cmd_evaluate(args: argparse.Namespace) -> dict:
    """The model run's test metrics beside the baselines: those its training recorded, or with
    ``--recompute`` measured again (the baselines come from the prepared run's kept figures)."""
    from recsys import storage
    from recsys.cli.output import print_metrics
    from recsys.evaluate.prepared import check_inputs
    from recsys.evaluate.recorded import model_metrics
    from recsys.manifests import ModelManifest

    cfg = load_config(args.config, args.overrides, root=args.root)
    storage.check_root(cfg.root, ("models",), write=False)  # keeping the baselines is optional
    if args.recompute:
        from recsys.evaluate.prepared import evaluate_model

        model, metrics = evaluate_model(
            cfg.root, args.ds, args.run, k=cfg.train.k, max_users=cfg.train.eval_max_users
        )
        title = f"{model.model_version} on {model.prepared.folder} (measured again)"
    else:
        folder = storage.resolve(cfg.root, "models", args.ds, args.run)
        model = ModelManifest.read(folder)
        check_inputs(folder, model)  # a changed artifact's recorded figures are not its own
        metrics = model_metrics(model)
        title = f"{model.model_version} on {model.prepared.folder} (as its training measured)"
        if model.refit_of:
            title += f"; a refit: the figures of {model.refit_of.path}"
    print_metrics(metrics, cfg.train.k, title)
    return {"model_version": model.model_version, "recomputed": bool(args.recompute)}


def cmd_gate(args: argparse.Namespace) -> dict:
    from recsys.evaluate.gate import gate_model

    cfg = load_config(
        args.config,
        args.overrides,
        root=args.root,
        gate={"tolerance": args.tolerance, "min_lift": args.min_lift},
    )
    result = gate_model(cfg, args.model_ds, args.model_run, args.ds, args.run)
    outcome = {"passed": result.passed, "decision": str(result.path)}
    if not result.passed:
        refused = f"recsys gate: refused {result.manifest.model_version}: {result.reason}"
        print(refused, file=sys.stderr)
        print(f"decision written to {result.path}", file=sys.stderr)
        return {**outcome, "status": GATE_REFUSED, "error": refused}
    print(f"gate {result.reason} ({result.manifest.model_version})")
    print(f"decision written to {result.path}")
    return outcome
