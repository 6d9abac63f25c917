"""recsys: a nightly batch recommender (Spark prepare, TensorFlow training, exact top-N scoring)."""

__version__ = "0.1.0"
