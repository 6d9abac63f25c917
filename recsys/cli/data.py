"""``recsys data download | get | synth``: MovieLens releases and synthetic sets."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from recsys.cli.common import DEFAULT_DATA_DIR


def register(sub) -> None:
    data = sub.add_parser("data", help="download or synthesise MovieLens data")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    dl = data_sub.add_parser("download", help="download a MovieLens release from GroupLens")
    dl.add_argument(
        "name", help="ml-100k, ml-1m, ml-10m, ml-20m, ml-25m, ml-32m, ml-latest(-small)"
    )
    dl.add_argument("--dest", default=DEFAULT_DATA_DIR, help="folder to download into (./data)")
    dl.add_argument("--offline", action="store_true", help="never use the network")
    dl.add_argument("-v", "--verbose", action="count", default=0)
    dl.set_defaults(handler=cmd_download)
    get = data_sub.add_parser(
        "get", help="a path as it is, a release downloaded, or synthetic:<shape> synthesised"
    )
    get.add_argument(
        "name",
        help="a ratings path, a MovieLens release (ml-latest-small, ml-1m, ...), or "
        "synthetic:ml-latest-small (ml-1m, ml-25m) for synthetic data",
    )
    get.add_argument("--dest", default=DEFAULT_DATA_DIR, help="folder to download into (./data)")
    get.add_argument("--offline", action="store_true", help="never use the network")
    get.add_argument(
        "--result-file",
        default=None,
        help='also write {"input": <folder>, "synthetic": ..., "note": ...} as JSON to this '
        "file (what the DAG reads)",
    )
    get.add_argument("-v", "--verbose", action="count", default=0)
    get.set_defaults(handler=cmd_get)
    sy = data_sub.add_parser("synth", help="write a synthetic MovieLens-format data set")
    sy.add_argument("--shape", default="ml-latest-small", help="ml-latest-small | ml-1m | ml-25m")
    sy.add_argument("--users", type=int, default=None, help="custom shape: number of users")
    sy.add_argument("--items", type=int, default=None, help="custom shape: number of items")
    sy.add_argument("--ratings", type=int, default=None, help="custom shape: number of ratings")
    sy.add_argument("--dest", default=None, help="output folder (./data/synth-<shape>)")
    sy.add_argument("--seed", type=int, default=0)
    sy.add_argument("-v", "--verbose", action="count", default=0)
    sy.set_defaults(handler=cmd_synth)


def download_with_bar(name: str, dest: str, offline: bool) -> Path:
    """``recsys.data.download.download`` with a progress bar."""
    from recsys.data.download import download

    with _bar(name) as progress:
        return download(name, dest, offline=offline, progress=progress)


def get_with_bar(name: str, dest: str, offline: bool):
    """``recsys.data.dataset.get_dataset`` with a progress bar; prints its note (synthetic)."""
    from recsys.data.dataset import get_dataset

    got = get_dataset(name, dest, offline, download=download_with_bar)
    if got.note:
        print(got.note)
    return got


class _bar:
    """A transient rich download bar, as a ``progress(done, total)`` callable."""

    def __init__(self, name: str) -> None:
        from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

        self.bar = Progress(
            "[progress.description]{task.description}",
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            transient=True,
        )
        self.name = name

    def __enter__(self):
        self.bar.__enter__()
        task = self.bar.add_task(f"downloading {self.name}", total=None)
        return lambda done, total: self.bar.update(task, completed=done, total=total)

    def __exit__(self, *exc) -> None:
        self.bar.__exit__(*exc)


def cmd_download(args: argparse.Namespace) -> int:
    print(download_with_bar(args.name, args.dest, args.offline))
    return 0


def cmd_get(args: argparse.Namespace) -> dict:
    got = get_with_bar(args.name, args.dest, args.offline)
    result = {"input": str(got.path.absolute()), "synthetic": got.synthetic, "note": got.note}
    if args.result_file:
        Path(args.result_file).write_text(json.dumps(result) + "\n")
    print(got.path)
    return result


def cmd_synth(args: argparse.Namespace) -> int:
    from recsys.data.dataset import synth_dataset

    result, dest = synth_dataset(
        args.shape, args.dest, args.users, args.items, args.ratings, args.seed, DEFAULT_DATA_DIR
    )
    print(
        f"{result.n_ratings:,} ratings, {result.n_users:,} users, "
        f"{result.n_items:,} items -> {dest}"
    )
    return 0
