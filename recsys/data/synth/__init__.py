"""Synthetic MovieLens-shaped rating logs with a planted, known model.

Real MovieLens files are the reference input of recsys, but they cannot be shipped in tests, are
not available offline and come in only a few sizes. This package writes a folder that looks like
a ``ml-latest`` release (``ratings.csv``, ``movies.csv``) at any size, plus ``planted.npz``: the
true model the ratings were drawn from, so a test can score with the truth and check that a
trained model gets close to it.

Run it from the command line (the CLI wraps :func:`synthesize`)::

    recsys data synth --shape ml-25m --dest /tmp/synth25m
    python benchmarks/synth_bench.py --shape ml-25m --dest /tmp/synth25m   # with timings

Modules, in the order the generator uses them:

* :mod:`~recsys.data.synth.shapes`: :class:`Shape` (size and model settings) and the
  MovieLens-like presets in :data:`SHAPES`;
* :mod:`~recsys.data.synth.planted`: the planted model (factors, biases, genres, popularity,
  activity and time windows) and its ``planted.npz`` file;
* :mod:`~recsys.data.synth.sampling`: per-block choice of rated items (Gumbel top-k), ratings
  and timestamps;
* :mod:`~recsys.data.synth.writer`: :func:`synthesize`, streaming ``ratings.csv`` and writing
  ``movies.csv``;
* :mod:`~recsys.data.synth.oracle`: :func:`load_planted` and the ``planted_*`` scores, to
  evaluate against the truth.

Not modelled: item release dates versus rating times (an item can be rated "before" its year),
popularity drift over time, tags and links files.
"""

from recsys.data.synth.oracle import (
    load_planted,
    planted_expected_rating,
    planted_preference,
    planted_selection_logits,
)
from recsys.data.synth.planted import GENRES, NO_GENRES
from recsys.data.synth.sampling import HALF_STAR_EPOCH
from recsys.data.synth.shapes import SHAPES, Shape, shape_from_counts
from recsys.data.synth.writer import MOVIES_HEADER, RATINGS_HEADER, SynthResult, synthesize

__all__ = [
    "GENRES",
    "HALF_STAR_EPOCH",
    "MOVIES_HEADER",
    "NO_GENRES",
    "RATINGS_HEADER",
    "SHAPES",
    "Shape",
    "SynthResult",
    "load_planted",
    "planted_expected_rating",
    "planted_preference",
    "planted_selection_logits",
    "shape_from_counts",
    "synthesize",
]
