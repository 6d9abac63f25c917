"""What every command shares: the common options, logging, and errors as one sentence."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recsys.config import default_root
from recsys.errors import RecsysError, RecsysFailure, os_error_message

DEFAULT_DATA_DIR = "./data"
BAD_INPUT = 2  # exit status of an error the user can fix (one sentence on stderr)
GATE_REFUSED = 3  # exit status of a refused gate: the model is not good enough (no retry helps)
RESULT_FILE = "RECSYS_RESULT_FILE"  # where a command writes its outcome as JSON, when set
NO_SPACE = "No space left on device"  # strerror(ENOSPC), also in the JVM's IOException text
# Every date option of every command, checked by storage.check_ds before the handler runs.
DS_OPTIONS = {"ds": "--ds", "prepared_ds": "--prepared-ds", "refit_ds": "--refit-ds",
              "model_ds": "--model-ds"}  # fmt: skip


class Parser(argparse.ArgumentParser):
    """argparse whose usage errors are handed over like any other error: with
    ``$RECSYS_RESULT_FILE`` set, the sentence goes there too (how ``recsys nightly`` shows a
    task's own error line, not only its exit status)."""

    def error(self, message: str):
        if os.environ.get(RESULT_FILE):
            error = f"{self.prog}: error: {message}"
            result = {"command": self.prog, "status": BAD_INPUT, "error": error, "outcome": {}}
            with contextlib.suppress(OSError):  # the usage error still goes to stderr below
                Path(os.environ[RESULT_FILE]).write_text(json.dumps(result) + "\n")
        super().error(message)


def setup_logging(verbose: int) -> None:
    level = logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("recsys").setLevel(min(level, logging.INFO))
    logging.getLogger("py4j").setLevel(logging.WARNING)


def common_options(parser: argparse.ArgumentParser) -> None:
    """--root, --config, --set and -v, which every step takes."""
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


def fraction(text: str) -> float:
    """argparse type: a number in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expects a number in [0, 1), got {text!r}") from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"expects a number in [0, 1), got {text!r}")
    return value


def check_dates(args: argparse.Namespace) -> None:
    """Every date option strictly YYYY-MM-DD, and none more than max_days_ahead after today."""
    from recsys import storage
    from recsys.config import load_config

    dates = [
        (getattr(args, a), o) for a, o in DS_OPTIONS.items() if getattr(args, a, None) is not None
    ]
    for value, option in dates:
        storage.check_ds(value, option)
    if dates:
        overrides = getattr(args, "overrides", [])
        cfg = load_config(getattr(args, "config", None), overrides)
        forced = os.environ.get("RECSYS_MAX_DAYS_AHEAD", "")
        if forced and not forced.isdigit():
            raise RecsysError(f"RECSYS_MAX_DAYS_AHEAD must be a whole number, got {forced!r}")
        limit = max(cfg.max_days_ahead, int(forced or 0))
        for value, option in dates:
            storage.check_not_ahead(value, option, limit)


def run_handler(command: str, handler: Callable[[argparse.Namespace], Any], args) -> int:
    """Run a handler; a ``RecsysError`` (or an ``OSError`` of the environment: a full disk, a
    read-only root) becomes one sentence on stderr and exit status 2. A command that fails
    removes the staging folders of the runs it had begun (``storage.discard_staging``).

    A ``RecsysFailure`` (a crashed Spark stage) is one sentence too, with exit status 1, which
    the DAG retries. A handler returns its exit status, or its outcome as a dict (``status``
    and ``error`` when it refuses). With ``$RECSYS_RESULT_FILE`` set, ``{"command", "status",
    "error", "outcome"}`` is written there as JSON: how the DAG learns what happened without
    reading printed text.
    """
    from recsys import storage

    outcome: dict[str, Any] = {}
    try:
        check_dates(args)
        got = handler(args)
    except (RecsysError, OSError) as exc:
        storage.discard_staging()
        sentence = os_error_message(exc) if isinstance(exc, OSError) else str(exc)
        error = f"recsys {command}: error: {sentence}"
        print(error, file=sys.stderr)
        status = BAD_INPUT
    except RecsysFailure as exc:  # a crash a retry may cure: one sentence, status 1
        storage.discard_staging()
        error = f"recsys {command}: failed: {exc}"
        print(error, file=sys.stderr)
        status = 1
    except KeyboardInterrupt:
        storage.discard_staging()
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        storage.discard_staging()  # a bug: its traceback follows, its staging does not stay
        if NO_SPACE not in str(exc):
            raise
        # A full disk met by Spark's JVM (py4j) or TensorFlow, which raise their own types.
        error = (
            f"recsys {command}: error: a disk is full ({type(exc).__name__}: {NO_SPACE}) under "
            "the storage root or Spark's spark.local.dir; free space there (`recsys retention` "
            "deletes old runs) or pass another --root, then re-run"
        )
        print(error, file=sys.stderr)
        status = BAD_INPUT
    else:
        outcome = dict(got) if isinstance(got, dict) else {}
        status = int(outcome.pop("status", 0) if isinstance(got, dict) else got)
        error = outcome.pop("error", "")
    if os.environ.get(RESULT_FILE):
        result = {"command": command, "status": status, "error": error, "outcome": outcome}
        try:
            Path(os.environ[RESULT_FILE]).write_text(json.dumps(result, default=str) + "\n")
        except OSError as exc:  # a Spark driver in cluster mode runs far from the worker's /tmp
            print(f"recsys {command}: outcome not handed over ({exc})", file=sys.stderr)
    return status


def run_job(command: str, add_arguments, handler, argv, doc: str) -> int:
    """A ``jobs/<command>.py`` entry point: the ``recsys <command>`` options and handler under
    spark-submit (``argv``: None = ``sys.argv[1:]``)."""
    parser = Parser(prog=f"jobs/{command}.py", description=doc.split("\n")[0])
    add_arguments(parser)
    common_options(parser)
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    setup_logging(args.verbose)
    return run_handler(command, handler, args)
