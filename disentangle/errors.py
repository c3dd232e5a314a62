"""The one exception type users see for bad input."""


class DisentangleError(ValueError):
    """Bad input or a broken file, described in one line.

    The message names the offending value and what was expected; the CLI turns
    it into a usage error (exit status 2).
    """
