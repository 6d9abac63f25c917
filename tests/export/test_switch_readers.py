"""Readers querying while the store switches ten times and rolls back: no error, no mixed list."""

from __future__ import annotations

import random
import threading

from recsys.export import export, rollback
from recsys.serving import open_store
from tests.export.nights import parquet_list, publish_night, user_ids

NIGHTS = 11  # the first export, then ten switches


def test_readers_see_whole_lists_through_ten_switches_and_a_rollback(tmp_path, store_url):
    root = str(tmp_path / "var")
    users = user_ids().to_pylist() + [424242]  # and one unknown user: the popular list
    expected: dict[tuple[str, object], list] = {}
    folders = []
    for night in range(NIGHTS):
        ds = f"2026-02-{night + 1:02d}"
        folders.append(publish_night(root, ds, seed=night))
        version = f"fake-{ds}-r{night}"
        for u in users[:-1]:
            expected[version, u] = [(i, src) for i, _, src in parquet_list(folders[-1], u)]
    export(store_url, root, ds="2026-02-01")
    store = open_store(store_url)
    stop = threading.Event()
    counts = {"reads": 0, "errors": 0, "mixed": 0, "wrong": 0}
    versions_seen: set[str] = set()
    lock = threading.Lock()

    def read() -> None:
        rng = random.Random(threading.get_ident())
        while not stop.is_set():
            user = rng.choice(users)
            try:
                rows = store.recommend(user, n=100)
            except Exception:
                with lock:
                    counts["errors"] += 1
                continue
            versions = {r.model_version for r in rows}
            got = [(r.item_id, r.source) for r in rows]
            with lock:
                counts["reads"] += 1
                versions_seen.update(versions)
                if len(versions) != 1:
                    counts["mixed"] += 1
                    continue
                if user == 424242:
                    right = {s for _, s in got} == {"popular"}
                else:
                    right = got == expected[versions.pop(), user]
                counts["wrong"] += not right

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for night in range(1, NIGHTS):
            out = export(store_url, root, ds=f"2026-02-{night + 1:02d}")
            assert out["switched"]
        back = rollback(store_url)
        assert back["ds"] == "2026-02-10"
    finally:
        stop.set()
        for t in threads:
            t.join()
    store.close()
    assert counts["reads"] > 50
    assert (counts["errors"], counts["mixed"], counts["wrong"]) == (0, 0, 0), counts
    assert len(versions_seen) >= 3  # the readers really crossed switches
