"""What a step reads against its input's manifest: prepared files and rows, model checksums."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recsys import integrity
from recsys.manifests import ModelManifest, PreparedManifest, RunRef


def _parquet(path: Path, rows: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table({"user_idx": pa.array(range(rows), pa.int32())}), path)


@pytest.fixture
def prepared(tmp_path):
    """A hand-made prepared run: train 3 + 2 rows in two files, val 1, test 1, 2 users, 3 items."""
    folder = tmp_path / "prepared" / "ds=2026-01-02" / "run=r"
    _parquet(folder / "ratings/split=train/part-0.parquet", 3)
    _parquet(folder / "ratings/split=train/part-1.parquet", 2)
    _parquet(folder / "ratings/split=val/part-0.parquet", 1)
    _parquet(folder / "ratings/split=test/part-0.parquet", 1)
    (folder / "ratings/split=train/_SUCCESS").write_text("")  # markers are not data
    (folder / "ratings/split=train/.part-0.parquet.crc").write_text("x")
    _parquet(folder / "users/part-0.parquet", 2)
    _parquet(folder / "items/part-0.parquet", 3)
    manifest = PreparedManifest(
        ds="2026-01-02",
        run="r",
        n_users=2,
        n_items=3,
        counts={"train": 5, "val": 1, "test": 1},
        files=integrity.prepared_files(folder),
    )
    return folder, manifest


def test_an_intact_prepared_run_passes(prepared):
    folder, manifest = prepared
    assert set(manifest.files["ratings"]) == {
        "split=train/part-0.parquet",
        "split=train/part-1.parquet",
        "split=val/part-0.parquet",
        "split=test/part-0.parquet",
    }
    integrity.check_prepared(folder, manifest)


def test_a_lost_parquet_file_is_refused_with_both_figures(prepared):
    folder, manifest = prepared
    lost = folder / "ratings/split=train/part-1.parquet"
    size = lost.stat().st_size
    total = sum(manifest.files["ratings"].values())
    lost.unlink()
    with pytest.raises(integrity.IntegrityError) as err:
        integrity.check_prepared(folder, manifest)
    assert str(err.value) == (
        f"prepared run {folder} does not match its manifest: ratings/ holds 3 file(s) of "
        f"{total - size:,} bytes, the manifest records 4 file(s) of {total:,} bytes "
        "(ratings/split=train/part-1.parquet is missing); re-run `recsys prepare` for "
        "ds=2026-01-02 (or pass an intact prepared run)"
    )


def test_a_rewritten_file_is_refused(prepared):
    folder, manifest = prepared
    _parquet(folder / "items/part-0.parquet", 300)
    with pytest.raises(
        integrity.IntegrityError, match=r"items/part-0.parquet has [\d,]+ bytes, not"
    ):
        integrity.check_prepared(folder, manifest)


def test_an_old_manifest_without_files_still_has_its_rows_checked(prepared):
    folder, manifest = prepared
    old = PreparedManifest.from_dict({k: v for k, v in manifest.to_dict().items() if k != "files"})
    assert old.files == {}
    integrity.check_prepared(folder, old)
    (folder / "ratings/split=train/part-1.parquet").unlink()
    with pytest.raises(integrity.IntegrityError) as err:
        integrity.check_prepared(folder, old)
    assert str(err.value) == (
        f"prepared run {folder} holds 3 train rows but its manifest records 5; re-run "
        "`recsys prepare` for ds=2026-01-02 (or pass an intact prepared run)"
    )


def test_an_unreadable_parquet_file_is_one_sentence(prepared):
    folder, manifest = prepared
    old = PreparedManifest.from_dict({k: v for k, v in manifest.to_dict().items() if k != "files"})
    (folder / "users/part-0.parquet").write_bytes(b"not parquet")
    with pytest.raises(integrity.IntegrityError, match="is not a readable Parquet file"):
        integrity.check_prepared(folder, old)


def _model(folder: Path, **extra) -> ModelManifest:
    folder.mkdir(parents=True)
    (folder / "arrays.npz").write_bytes(b"arrays")
    (folder / "model.keras").write_bytes(b"keras")
    return ModelManifest(
        ds="2026-01-03",
        run="m",
        model_version="mf-2026-01-03-m",
        prepared=RunRef(path="/p"),
        artifacts=integrity.model_checksums(folder),
        **extra,
    )


def test_model_artifacts_are_checked_by_checksum(tmp_path):
    folder = tmp_path / "m"
    manifest = _model(folder)
    integrity.check_model(folder, manifest)
    (folder / "arrays.npz").write_bytes(b"arrayz")
    with pytest.raises(integrity.IntegrityError) as err:
        integrity.check_model(folder, manifest)
    recorded = manifest.artifacts["arrays.npz"][:12]
    found = integrity.sha256(folder / "arrays.npz")[:12]
    assert str(err.value) == (
        f"model run {folder}: arrays.npz has sha256 {found}... (6 bytes), its manifest records "
        f"{recorded}...; the artifact was changed or damaged: re-run `recsys train` for "
        "ds=2026-01-03 (or pass an intact model run)"
    )
    integrity.check_model(folder, manifest, ("model.keras",))  # only what a step reads
    (folder / "model.keras").unlink()
    with pytest.raises(
        integrity.IntegrityError, match="model.keras is missing, its manifest records it"
    ):
        integrity.check_model(folder, manifest, ("model.keras",))


def test_a_model_manifest_without_checksums_is_not_checked(tmp_path):
    folder = tmp_path / "m"
    manifest = _model(folder)
    old = ModelManifest.from_dict({k: v for k, v in manifest.to_dict().items() if k != "artifacts"})
    (folder / "arrays.npz").write_bytes(b"changed")
    integrity.check_model(folder, old)
