"""The one exception type a user can cause.

Every error that bad input, a bad option or a missing prerequisite can cause is raised as
``RecsysError`` with one sentence that names the file, row or option and says what to do. The
command line prints that sentence and exits with status 2 instead of a stack trace; an ``OSError``
of the environment (full disk, read-only root) goes the same way through :func:`os_error_message`.
"""


class RecsysError(Exception):
    """A user-facing error: the message is one clear sentence."""


def os_error_message(exc: OSError, path: object = None) -> str:
    """An ``OSError`` of the environment (full disk, read-only or missing folder, a file where a
    folder should be) as one sentence naming the path and what to do."""
    import errno

    where = path if path is not None else exc.filename or "a file"
    code = exc.errno
    if code in (errno.ENOSPC, errno.EDQUOT):
        return (
            f"no space left on the device of {where}; free space there (`recsys retention` "
            "deletes old runs) or pass another --root, then re-run"
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"{where} is not writable ({exc.strerror or 'permission denied'}); make the storage "
            "root writable or pass another --root"
        )
    if code in (errno.ENOTDIR, errno.EEXIST):
        return (
            f"{where} cannot be created: part of its path is a file, not a folder; pass --root "
            "a folder"
        )
    return f"{where}: {exc.strerror or exc}; check the storage root and re-run"


class RecsysFailure(Exception):
    """A failure no change of the input fixes (a worker of a Spark stage crashed or was killed):
    one sentence, exit status 1, and a retry may succeed."""
