"""The one exception type users see for bad input."""


class DisentangleError(ValueError):
    """Bad input or a broken file, described in one line.

    The message names the offending value and what was expected; the CLI turns
    it into a usage error (exit status 2).
    """


class DegenerateInputWarning(UserWarning):
    """Input a metric cannot score (constant codes, a single latent): the value is NaN, said in one line."""


def describe_os_error(error: OSError) -> str | None:
    """One line for a file-system error on a named path (a file where a folder is expected, a
    read-only or full disk), or None when the error names no path."""
    import errno

    path = error.filename
    if path is None:
        return "no space left on the device: free space and run the command again" if error.errno in (errno.ENOSPC, errno.EDQUOT) else None
    if isinstance(error, FileExistsError):
        return f"{path} is a file, expected a folder"
    if isinstance(error, NotADirectoryError):
        return f"{path}: part of this path is a file, expected a folder"
    if isinstance(error, IsADirectoryError):
        return f"{path} is a folder, expected a file"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the device of {path}: free space and run the command again"
    if isinstance(error, PermissionError) or error.errno == errno.EROFS:
        return f"cannot write {path}: {error.strerror.lower()}"
    return f"{path}: {error.strerror}"
