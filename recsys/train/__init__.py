"""Training: tf.data input from the prepared Parquet, models, strategy, training loop, export.

``data`` turns a prepared ``ratings/split=<name>/`` folder into batches for a custom train step
under ``tf.distribute``; the other modules build, train and export the models on top of it.
"""
