"""The fault tests' helpers: the published root's handle, commands, and the final checks.

Faults are injected into this shared root and undone by ``restored`` after each test, so every
test starts from the same published state: prepared, model, scored and published runs of
``DS``, each named by its table's ``_LATEST``.
"""

from __future__ import annotations

import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from recsys import storage

DS = "2026-05-01"


@dataclass(frozen=True)
class Published:
    root: str
    prepared: Path
    model: Path
    table: Path
    user: str  # a user of the published table

    def pointers(self) -> dict[str, str]:
        """The bytes of every table's ``_LATEST``: what a fault must leave as it was."""
        base = storage.local_root(self.root)
        return {
            t: (base / t / storage.LATEST).read_text()
            for t in storage.TABLES
            if (base / t / storage.LATEST).exists()
        }


DS2 = "2026-05-02"  # the night a fault hits


def argv(command: str, pub: Published, root: str | None = None) -> list[str]:
    """The command line of ``command`` (``refit`` is ``train --refit``) on ``root``."""
    root = root or pub.root
    log = str(Path(pub.root).parent / "log.csv")
    return {
        "prepare": ["prepare", "--input", log, "--ds", DS2, "--run", "f"],
        "train": ["train", "--ds", DS2, "--run", "f"],
        "refit": ["train", "--refit", "--ds", DS2, "--run", "f"],
        "evaluate": ["evaluate"],
        "gate": ["gate", "--run", "f"],
        "score": ["score", "--ds", DS2, "--run", "f"],
        "publish": ["publish", "--ds", DS, "--run", "scored"],
        "retention": ["retention", "--days", "3", "--dry-run"],
        "recommend": ["recommend", "--user", pub.user],
        "summary": ["summary"],
    }[command] + ["--root", root]


def run(command: str, pub: Published, capsys, root: str | None = None) -> tuple[int, str]:
    """Run a command in-process; its exit status and its stderr (stripped)."""
    from recsys.cli import main

    capsys.readouterr()
    code = main(argv(command, pub, root))
    return code, capsys.readouterr().err.strip()


@contextmanager
def restored(*paths: Path):
    """Undo whatever a test does to ``paths`` (files or folders), whatever happens."""
    saved = {}
    for path in paths:
        if path.is_dir():
            copy = path.with_name(f".saved-{path.name}")
            shutil.copytree(path, copy)
            saved[path] = copy
        elif path.exists():
            saved[path] = path.read_bytes()
        else:
            saved[path] = None
    try:
        yield
    finally:
        for path, old in saved.items():
            if isinstance(old, Path):
                shutil.rmtree(path, ignore_errors=True)
                old.rename(path)
            elif old is None:
                if path.is_dir():
                    shutil.rmtree(path)
                else:
                    path.unlink(missing_ok=True)
            else:
                path.write_bytes(old)


def assert_published_state_untouched(pub: Published, before: dict[str, str], capsys) -> None:
    """The pointers are as they were and name complete runs, no staging folder is left, and
    ``recsys recommend`` still answers from yesterday's table."""
    from recsys.cli import main

    assert pub.pointers() == before
    assert storage.latest(pub.root, "recommendations") == pub.table
    base = storage.local_root(pub.root)
    assert not list(base.glob("*/ds=*/_staging-*")), "a refused step left its staging folder"
    capsys.readouterr()
    assert main(["recommend", "--root", pub.root, "--user", pub.user]) == 0
    out = capsys.readouterr().out
    assert f"user {pub.user}" in out and f"({DS})" in out
