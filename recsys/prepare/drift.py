"""The drift guard of prepare: tonight's input must not have shrunk far below last night's."""

from __future__ import annotations

from pathlib import Path

from recsys import storage
from recsys.errors import RecsysError
from recsys.manifests import PreparedManifest


def check_drift(root: str, source: Path, min_share: float, **now: int) -> None:
    """Refuse an input that shrank below ``min_share`` of the previous prepared run (rows, users,
    items after cleaning): a half-empty export must not be trained on and published."""
    if min_share <= 0:
        return
    try:
        previous_dir = storage.latest(root, "prepared")
    except RecsysError:
        return  # the first night: nothing to compare with (a damaged pointer failed earlier)
    # A damaged manifest refuses in one sentence: the guard is never skipped silently.
    previous = PreparedManifest.read(previous_dir)
    before = {"rows": previous.rows, "users": previous.n_users, "items": previous.n_items}
    for what, count in now.items():
        if count < min_share * before[what]:
            raise RecsysError(
                f"input {source} has {count:,} {what} after cleaning, below "
                f"prepare.min_share={min_share:.0%} of the {before[what]:,} of the previous "
                f"prepared run {previous_dir}; if the input really shrank, pass --min-share 0"
            )
