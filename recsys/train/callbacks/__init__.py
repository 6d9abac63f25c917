"""The Keras callbacks of the training loop: ranking validation (``validation``), the epoch
timer and progress line (``progress``), and the backup a killed run resumes from (``resume``)."""
