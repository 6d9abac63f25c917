"""The model families, each declared once: what trains it, what it exports, how it is scored.

This module imports nothing heavy (no numpy, no TensorFlow): the config validates ``train.model``
against it, the scoring kernels (``recsys.artifact``) and the similar-items table
(``recsys.score.similar``) dispatch on it on Spark executors, and training imports the Keras class
it names only when it trains. Adding a family is one module under ``recsys/train/models/`` (its
Keras class: ``logit``, ``cross``, ``export_arrays``, ``settings``) and one entry here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def _factors(a: dict[str, Any]) -> Any:
    return a["item_factors"].astype("float32")


def _first_layer(a: dict[str, Any]) -> Any:
    dim = a["user_factors"].shape[1]
    return (a["item_factors"] @ a["mlp0_kernel"][dim:]).astype("float32")


def _gmf(a: dict[str, Any]) -> Any:
    gmf = a["item_gmf"]
    return (gmf * a["out_kernel"][: gmf.shape[1], 0]).astype("float32")


@dataclass(frozen=True)
class Family:
    """One model family.

    Attributes:
        name: ``train.model``, the arrays' ``family`` and the model version's prefix.
        model: ``"module:Class"`` of its Keras model (imported only to train or load it).
        kernel: ``factor`` (scores are ``u . v`` plus biases: one matmul, tiled top-k, fold-in
            and user runs apply) or ``mlp`` (a dense tower over each pair, first layer split).
        arrays: what ``arrays.npz`` holds beyond the metadata (``RecModel._meta``).
        fold_in: new users' rows can be solved against fixed item vectors (``train.foldin``).
        vectors: how ``item_vectors`` reads the items' vectors (the similar-items manifest's
            ``vectors``); empty when the family has none.
        item_vectors: ``arrays -> (n_items, d)`` float32, the space the model compares items to
            users in (``recsys.score.similar``); None when it has no such vector.
        sequence: trained on each user's items in time order (``recsys.train.sequences``), not
            on (user, item) rows; its user vectors are computed from the history when it ends.
    """

    name: str
    model: str
    kernel: str
    arrays: tuple[str, ...]
    fold_in: bool = False
    vectors: str = ""
    item_vectors: Callable[[dict[str, Any]], Any] | None = None
    sequence: bool = False


_MLP = ("mlp<k>_kernel", "mlp<k>_bias", "out_kernel", "out_bias")

FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "mf",
            "recsys.train.models.mf:MF",
            "factor",
            ("user_factors", "item_factors"),
            fold_in=True,
            vectors="item_factors",
            item_vectors=_factors,
        ),
        Family(
            "biased-mf",
            "recsys.train.models.biased_mf:BiasedMF",
            "factor",
            ("user_factors", "item_factors", "user_bias", "item_bias"),
            fold_in=True,
            vectors="item_factors",
            item_vectors=_factors,
        ),
        Family(
            "ncf",
            "recsys.train.models.ncf:NCF",
            "mlp",
            ("user_factors", "item_factors", *_MLP),
            vectors="item_factors @ mlp0_kernel[dim:]",
            item_vectors=_first_layer,
        ),
        Family(
            "neumf",
            "recsys.train.models.neumf:NeuMF",
            "mlp",
            ("user_gmf", "item_gmf", "user_factors", "item_factors", *_MLP),
            vectors="item_gmf * out_kernel[:dim]",
            item_vectors=_gmf,
        ),
        Family(
            "seq",
            "recsys.train.models.seq:Seq",
            "factor",
            ("user_factors", "item_factors"),
            vectors="item_factors",
            item_vectors=_factors,
            sequence=True,
        ),
    )
}

NAMES: tuple[str, ...] = tuple(FAMILIES)


def family(name: str) -> Family:
    """The family called ``name``; ValueError naming the known ones otherwise."""
    try:
        return FAMILIES[name]
    except KeyError:
        raise ValueError(f"unknown model family {name!r}; known: {', '.join(NAMES)}") from None
