"""Moved to :mod:`recsys.artifact` (the exported model is not a scoring detail); kept so old
imports of ``recsys.score.kernels.Scorer`` still work."""

from recsys.artifact import Scorer

__all__ = ["Scorer"]
