"""The figures a model run recorded when it was trained: the night's one evaluation.

The train step evaluates its model once, with every baseline, and writes the figures into the
model's manifest; the gate, the report, ``recsys evaluate`` and the nightly summary read them back
through :func:`model_metrics` instead of ranking the model again. It is the one place that knows
how the manifest holds them.
"""

from __future__ import annotations

from recsys.manifests import ModelManifest
from recsys.payloads import Metrics


def model_metrics(model: ModelManifest) -> Metrics:
    """The test, validation and baseline figures as the model run recorded them (a refit: its
    evaluated twin's, with ``metrics_of`` naming it)."""
    return model.metrics
