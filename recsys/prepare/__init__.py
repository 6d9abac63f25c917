"""Spark preparation: raw ratings log -> validated, indexed, split Parquet (see job.py)."""
