"""The ``disentangle`` command (and ``python -m disentangle``): stops cleanly on Ctrl-C or SIGTERM
from its first moment, then loads the command line (:mod:`disentangle.cli`) and runs it."""

from disentangle.base.signals import end_quietly_while_starting


def main():
    """Entry point: the signal handling first, then the imports that take seconds on a busy machine."""
    end_quietly_while_starting()
    from disentangle.cli import main as command_line

    return command_line()


if __name__ == "__main__":
    main()
