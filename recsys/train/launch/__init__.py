"""Distributed launch: the Spark barrier stage (``barrier``), the TensorFlow worker process it
starts (``worker``), and the ``tf.distribute`` strategy every run trains under (``strategy``)."""
