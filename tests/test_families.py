"""The model-family registry: one declaration per family, read by the config, the scoring
kernels, the similar-items table and (checked here) the DAG's ``model`` choices."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from recsys.config import TrainConfig, check_train_config
from recsys.errors import RecsysError
from recsys.families import FAMILIES, NAMES, family
from recsys.score.similar import item_vectors

DAG = Path(__file__).parents[1] / "dags" / "recsys_nightly.py"


def _dag_model_choices() -> list[str]:
    """The ``enum`` of the DAG's ``model`` param, read from the file (the DAG imports no recsys
    at parse time, so it lists them itself)."""
    for node in ast.walk(ast.parse(DAG.read_text())):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "model":
                    enum = next(k.value for k in value.keywords if k.arg == "enum")
                    return [ast.literal_eval(e) for e in enum.elts]
    raise AssertionError(f"{DAG} has no model param")


def test_the_dag_offers_exactly_the_registered_families():
    assert sorted(_dag_model_choices()) == sorted(NAMES)


def test_the_config_accepts_the_registered_families_only():
    for name in NAMES:
        check_train_config(TrainConfig(model=name))
    with pytest.raises(RecsysError, match=f"--model must be one of {', '.join(NAMES)}"):
        check_train_config(TrainConfig(model="svd"))
    with pytest.raises(ValueError, match="unknown model family 'svd'"):
        family("svd")


def test_item_vectors_follow_the_family_declaration():
    rng = np.random.default_rng(0)
    a = {
        "user_factors": rng.normal(size=(3, 2)),
        "item_factors": rng.normal(size=(4, 2)),
        "mlp0_kernel": rng.normal(size=(4, 5)),
        "item_gmf": rng.normal(size=(4, 2)),
        "out_kernel": rng.normal(size=(7, 1)),
    }
    want = {
        "mf": a["item_factors"],
        "biased-mf": a["item_factors"],
        "ncf": a["item_factors"] @ a["mlp0_kernel"][2:],  # the item's part of the first layer
        "neumf": a["item_gmf"] * a["out_kernel"][:2, 0],  # the GMF branch's item vector
        "seq": a["item_factors"],  # the embedding its input reads and its output scores
    }
    assert set(want) == set(FAMILIES)
    for name, vecs in want.items():
        got = item_vectors({**a, "family": np.array(name)})
        assert got.dtype == np.float32 and np.allclose(got, vecs, atol=1e-6), name
