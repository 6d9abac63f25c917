"""The one exception type a user can cause.

Every error that bad input, a bad option or a missing prerequisite can cause is raised as
``RecsysError`` with one sentence that names the file, row or option and says what to do. The
command line prints that sentence and exits with status 2 instead of a stack trace.
"""


class RecsysError(Exception):
    """A user-facing error: the message is one clear sentence."""


class RecsysFailure(Exception):
    """A failure no change of the input fixes (a worker of a Spark stage crashed or was killed):
    one sentence, exit status 1, and a retry may succeed."""
