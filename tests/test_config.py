"""Config: defaults, YAML, --set overrides and one-sentence errors for bad values."""

from __future__ import annotations

import pytest

from recsys.config import Config, load_config
from recsys.errors import RecsysError


def test_defaults_are_the_embedded_ones(monkeypatch):
    monkeypatch.delenv("RECSYS_ROOT", raising=False)
    cfg = load_config()
    assert cfg == Config()
    assert cfg.root == "./var" and cfg.spark.master == "local[*]"
    assert cfg.prepare.split == "leave-last" and cfg.prepare.max_reject_fraction == 0.01


def test_env_root(monkeypatch):
    monkeypatch.setenv("RECSYS_ROOT", "/data/recsys")
    assert load_config().root == "/data/recsys"


def test_layers_yaml_then_set_then_options(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("spark:\n  driver_memory: 8g\n  shuffle_partitions: 16\nprepare:\n  seed: 1\n")
    cfg = load_config(
        path,
        ["spark.shuffle_partitions=32", "prepare.split=random"],
        root="/r",
        prepare={"seed": None, "test_fraction": 0.3},
    )
    assert cfg.spark.driver_memory == "8g"
    assert cfg.spark.shuffle_partitions == 32
    assert cfg.prepare.split == "random" and cfg.prepare.seed == 1
    assert cfg.prepare.test_fraction == 0.3 and cfg.root == "/r"


@pytest.mark.parametrize(
    ("pairs", "needle"),
    [
        (["spark.shuffle_partitions=many"], "spark.shuffle_partitions expects int, got 'many'"),
        (["prepare.test_fraction=x"], "prepare.test_fraction expects float"),
        (["spark.nope=1"], "unknown option spark.nope"),
        (["spark=1"], "option spark is a section"),
        (["novalue"], "--set expects key=value"),
    ],
)
def test_bad_overrides_are_one_sentence(pairs, needle):
    with pytest.raises(RecsysError, match=needle.replace("(", "\\(")):
        load_config(overrides=pairs)


def test_bad_yaml_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(RecsysError, match="must hold a mapping"):
        load_config(path)
    with pytest.raises(RecsysError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")
