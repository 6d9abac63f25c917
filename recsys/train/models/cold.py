"""Rows of users and items without a training row, set to the mean trained row (rating models);
a new item's bias to the item bias averaged over the training rows."""

from __future__ import annotations

import numpy as np

from recsys.train.models.base import RecModel


def fill_cold_rows(model: RecModel, user_idx: np.ndarray, item_idx: np.ndarray) -> dict[str, int]:
    """Give users and items without a training row the mean row of those with one.

    A user whose rows are all held out (most test users of a temporal split) would otherwise be
    scored through a row no gradient reached: random factors and a zero bias, which a rating model
    reads as "a user unlike any other". The mean trained row is the model's own average user:
    ``mu + b_i + (mean user) . v_i`` in the model's terms, so a cold user gets each item's
    average predicted rating (the item bias plus the part of it the factors carry, and the side
    features through ``v_i``), and a cold item likewise the average item of each user (with its
    own genres, which are data, not a row). A new item's bias alone is averaged over the training
    rows, not over the trained items: the bias of a typical rated item, not of a typical catalogue
    item (mostly rarely rated, lower rated films; ``docs/quality.md`` measures both on the
    temporal split). Every user and item table of the family (embeddings,
    biases, NeuMF's two branches) is filled the same way, so Keras and the exported arrays agree.
    The rule is this run's training rows only: a row a warm start copied is replaced too when its
    user or item has none tonight.

    Args:
        model: A trained model (its tables are overwritten in place).
        user_idx: User index of every row it was trained on (train split, or every split).
        item_idx: Item index of those rows.

    Returns:
        ``{"users": cold users filled, "items": cold items filled}``.
    """
    from recsys.train.optim import is_table

    rows = {
        "user_": np.bincount(np.asarray(user_idx), minlength=model.n_users),  # (n_users,)
        "item_": np.bincount(np.asarray(item_idx), minlength=model.n_items),  # (n_items,)
    }
    seen = {side: count > 0 for side, count in rows.items()}
    for var in model.weights:
        name = var.name.split("/")[-1]
        side = "user_" if name.startswith("user_") else "item_" if name.startswith("item_") else ""
        if not side or not is_table(var) or seen[side].all() or not seen[side].any():
            continue
        value = np.array(var)  # (rows, width)
        weights = rows[side][seen[side]] if name == "item_bias" else None
        value[~seen[side]] = np.average(value[seen[side]], axis=0, weights=weights)
        var.assign(value)
    return {
        "users": int(np.count_nonzero(~seen["user_"])),
        "items": int(np.count_nonzero(~seen["item_"])),
    }
