"""``recsys train | evaluate | gate``: train a model, its metrics, whether it may be served."""

from __future__ import annotations

import argparse
import sys

from recsys.cli.common import GATE_REFUSED, common_options
from recsys.config import load_config
from recsys.errors import RecsysError


def register(sub) -> None:
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
        help="bring the held-out rows into the model of --refit-ds/--refit-run (default: "
        "models/_LATEST): train.refit_mode=continue (default) trains it on the val and test rows, "
        "full retrains its settings on every split for its best epoch count",
    )
    train.add_argument("--refit-ds", default=None, help="ds of the model to refit")
    train.add_argument("--refit-run", default=None, help="run id of the model to refit")
    common_options(train)
    train.set_defaults(handler=cmd_train)

    ev = sub.add_parser("evaluate", help="metrics of a model run next to the baselines")
    ev.add_argument("--ds", default=None, help="model run date (default: the latest model)")
    ev.add_argument("--run", default=None, help="model run id")
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


def cmd_train(args: argparse.Namespace) -> dict:
    from recsys import storage
    from recsys.cli.output import print_metrics

    cfg = load_config(
        args.config,
        args.overrides,
        root=args.root,
        train={"model": args.model, "objective": args.objective},
    )
    storage.check_root(cfg.root, ("prepared", "models", "recommendations"))  # before TensorFlow
    from recsys.train.trainer import check_train_config

    check_train_config(cfg.train)  # fail on a bad name before training starts
    from recsys.train.trainer import run_train

    refit_of = None
    if args.refit:
        refit_of = storage.resolve(cfg.root, "models", args.refit_ds, args.refit_run)
    elif args.refit_ds or args.refit_run:
        raise RecsysError("--refit-ds/--refit-run name the model to refit; add --refit")
    result = run_train(cfg, args.ds, args.run, args.prepared_ds, args.prepared_run, refit_of)
    title = result.manifest.model_version
    if refit_of is not None:
        title += f" (refit; held-out metrics of {refit_of.name})"
    print_metrics(result.manifest.metrics, cfg.train.k, title)
    print(f"written to {result.path}")
    return {"path": str(result.path), "model_version": result.manifest.model_version}


def cmd_evaluate(args: argparse.Namespace) -> int:
    from recsys import storage
    from recsys.cli.output import print_metrics
    from recsys.evaluate.prepared import evaluate_model

    cfg = load_config(args.config, args.overrides, root=args.root)
    storage.check_root(cfg.root, ("models",), write=False)
    model, metrics = evaluate_model(
        cfg.root, args.ds, args.run, k=cfg.train.k, max_users=cfg.train.eval_max_users
    )
    print_metrics(metrics, cfg.train.k, f"{model.model_version} on {model.prepared.folder}")
    return 0


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
