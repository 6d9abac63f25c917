"""Per-epoch ranking validation: the model's top-k lists on the validation split."""

from __future__ import annotations

from pathlib import Path

import keras

from recsys.manifests import PreparedManifest


class RankingValidation(keras.callbacks.Callback):
    """After each epoch, NDCG@k of the model's top-k lists on the validation split.

    The model is exported to its numpy arrays and ranked by the same kernels and protocol as the
    final evaluation (all items not rated in train are candidates), on at most ``max_users``
    seeded validation users; what does not depend on the model is built once. Adds
    ``val_ndcg@k`` (and ``val_hit_rate@k``) to the epoch logs, where early stopping and the
    history find them.
    """

    def __init__(
        self, prepared: Path, manifest: PreparedManifest, k: int, max_users: int, seed: int
    ):
        super().__init__()
        from recsys.evaluate.prepared import sample_users
        from recsys.evaluate.protocol import RankingTask
        from recsys.splits import load_split

        self.key = f"val_ndcg@{k}"
        self.k = k
        # The users, their seen and held-out items: built once, ranked after every epoch.
        self.task = RankingTask.build(
            load_split(prepared, "train"),
            sample_users(load_split(prepared, "val"), max_users, seed),
            manifest.n_users,
            manifest.n_items,
        )

    def on_epoch_end(self, epoch, logs=None):
        from recsys.artifact import Scorer

        scorer = Scorer(self.model.export_arrays())
        lists = self.task.recommend(scorer.rank_scores, self.k, factors_fn=scorer.order_factors)
        metrics = self.task.metrics(lists, self.k)
        if logs is not None:
            logs[self.key] = metrics[f"ndcg@{self.k}"]
            logs[f"val_hit_rate@{self.k}"] = metrics[f"hit_rate@{self.k}"]
