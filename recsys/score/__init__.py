"""Scoring: numpy kernels per model family (never TensorFlow) and, later, the Spark adapter."""
