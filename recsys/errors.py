"""The one exception type a user can cause.

Every error that bad input, a bad option or a missing prerequisite can cause is raised as
``RecsysError`` with one sentence that names the file, row or option and says what to do. The
command line prints that sentence and exits with status 2 instead of a stack trace; an ``OSError``
of the environment (full disk, read-only root) goes the same way through :func:`os_error_message`.
"""

import contextlib


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


NO_SPACE_TEXT = "No space left on device"  # strerror(ENOSPC), also in h5py's and the JVM's text


@contextlib.contextmanager
def writing(path: object):
    """Write ``path`` inside this block: an ``OSError`` (or a library error that reports a full
    disk in its text, as h5py does) becomes one ``RecsysError`` sentence naming ``path``."""
    import errno

    try:
        yield
    except RecsysError:
        raise
    except OSError as exc:
        raise RecsysError(os_error_message(exc, path)) from None
    except Exception as exc:
        if NO_SPACE_TEXT not in str(exc):
            raise
        full = OSError(errno.ENOSPC, NO_SPACE_TEXT)
        raise RecsysError(os_error_message(full, path)) from None


def ensure_space(path: object, nbytes: int) -> None:
    """Refuse, before writing ``path``, when its device has less than ``nbytes`` free: some
    writers (h5py) crash the process on a full disk instead of raising."""
    import errno
    import shutil
    from pathlib import Path

    folder = Path(str(path)).parent
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return  # the write itself will say what is wrong with the folder
    if free < nbytes:
        full = OSError(errno.ENOSPC, NO_SPACE_TEXT)
        raise RecsysError(
            os_error_message(
                full, f"{path} ({free / 1e6:,.1f} MB free, {nbytes / 1e6:,.1f} MB needed)"
            )
        )
