"""Issue 27, case 4: a full disk while training is one sentence naming the file (exit 2), never
a crash: h5py segfaults when a write fails for want of space, so training refuses before it
writes, and every other write of training goes through the same error path."""

from __future__ import annotations

import errno
import re
import shutil
from collections import namedtuple

import numpy as np
import pytest
from faultkit import argv, assert_published_state_untouched

from recsys.cli import main

Usage = namedtuple("Usage", "total used free")


def test_a_full_disk_at_the_first_checkpoint_is_one_sentence_naming_it(
    published, capsys, monkeypatch
):
    pytest.importorskip("tensorflow")
    before = published.pointers()
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: Usage(10**9, 10**9 - 1000, 1000))
    capsys.readouterr()
    code = main([*argv("train", published), "--set", "train.epochs=1"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert re.fullmatch(
        r"recsys train: error: no space left on the device of \S+\.(weights\.h5|keras) "
        r"\(0\.0 MB free, [0-9.]+ MB needed\); free space there \(`recsys retention` deletes "
        r"old runs\) or pass another --root, then re-run",
        err,
    ), err
    monkeypatch.undo()
    assert_published_state_untouched(published, before, capsys)


def test_a_write_that_fails_for_space_names_its_file(published, capsys, monkeypatch):
    pytest.importorskip("tensorflow")
    before = published.pointers()

    def full(*_args, **_kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")  # no file name, as numpy raises

    monkeypatch.setattr(np, "savez", full)
    capsys.readouterr()
    code = main([*argv("train", published), "--set", "train.epochs=1"])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert re.fullmatch(
        r"recsys train: error: no space left on the device of \S+\.npz; free space "
        r"there \(`recsys retention` deletes old runs\) or pass another --root, then re-run",
        err,
    ), err
    monkeypatch.undo()
    assert_published_state_untouched(published, before, capsys)
