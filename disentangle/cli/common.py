"""Pieces every command module of the command line shares: error reporting, the
``--metrics`` option, ``KEY=VALUE`` settings and data set options."""

from __future__ import annotations

import functools
import importlib

import click

from disentangle.base.signals import INTERRUPTED_EXIT, command_started, sigterm_as_interrupt
from disentangle.base.errors import DisentangleError, describe_os_error
from disentangle.base.profiles import PROFILE_NAMES
from disentangle.base.validation import parse_setting


class InputError(click.ClickException):
    """A bad value or a data problem: ``Error: <one line>``, exit status 2, no usage banner
    (the banner is for bad command-line usage, which click reports itself)."""

    exit_code = 2


def reports_errors(command=None, *, interrupted: str = "", loads: tuple[str, ...] = ()):
    """Turn the library's one-line errors (and file-system errors on a named path) into ``Error: ...``
    with exit status 2, and a stop by Ctrl-C or SIGTERM into ``<command>: interrupted[; <interrupted>]``
    with exit status 130 (``interrupted``: what was kept and how to resume).

    ``loads``: modules the command imports (torch with them), imported while a signal still ends the
    process at once (:func:`disentangle.base.signals.end_quietly_while_starting`): a KeyboardInterrupt
    landing inside a library's import can be swallowed by a bare ``except:`` (the command then runs
    on as if never stopped: seen once in a fault sweep, 2026-11-30) or abort the process.

    Use as ``@reports_errors`` or ``@reports_errors(interrupted="...", loads=(...))``."""
    if command is None:
        return functools.partial(reports_errors, interrupted=interrupted, loads=loads)

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        for module in loads:
            importlib.import_module(module)
        command_started()  # Ctrl-C raises KeyboardInterrupt again (see disentangle.base.signals)
        try:
            with sigterm_as_interrupt():  # kill (SIGTERM) stops a command as Ctrl-C does: runs marked interrupted
                return command(*args, **kwargs)
        except KeyboardInterrupt:
            name = click.get_current_context().info_name
            click.echo(f"{name}: interrupted" + (f"; {interrupted}" if interrupted else ""), err=True)
            # CPython 3.11 remembers a Ctrl-C that landed in exec'd code (a dataclass being defined by an
            # import) and kills the process by SIGINT at exit, whatever the exit status; any exec clears it
            exec("None")
            raise SystemExit(INTERRUPTED_EXIT) from None
        except DisentangleError as error:
            raise InputError(str(error)) from None
        except OSError as error:  # a file where a folder belongs, a read-only or full disk: one line, not a traceback
            message = describe_os_error(error)
            if message is None:
                raise
            raise InputError(message) from None

    return wrapper


class MetricsOption(click.Option):
    """``--metrics``, whose help lists the registered metrics (read when help is shown, not at import)."""

    def get_help_record(self, ctx):
        from disentangle.metrics import list_metrics

        self.help = f"Comma-separated, from: {', '.join(list_metrics())} [default: {','.join(list_metrics(default_only=True))}]."
        return super().get_help_record(ctx)


class RegistryOption(click.Option):
    """An option naming a registered entry, whose help lists the registry's names (read when help
    is shown: the registry's package is imported then, not when the CLI starts)."""

    def __init__(self, *args, registry: str, **kwargs):
        self.registry_path = registry  # "module:ATTRIBUTE" of the Registry
        super().__init__(*args, **kwargs)

    def get_help_record(self, ctx):
        import importlib

        module, _, attribute = self.registry_path.partition(":")
        names = getattr(importlib.import_module(module), attribute).names()
        self.help = f"One of: {', '.join(names)}." + (f" {self.help}" if self.help and not self.help.startswith("One of") else "")
        return super().get_help_record(ctx)


PROFILE_HELP = "Metric settings: published (disentanglement_lib's), fast (quick looks), tiny (smoke tests) [default: published]."


def profile_option(old_flag: str):
    """``--profile published|fast|tiny``, the same on every command that evaluates; ``old_flag``
    (``--fast``, ``--fast-eval``) is kept, hidden, as another way to say ``--profile fast``."""
    def decorate(command):
        command = click.option(old_flag, "old_fast_flag", is_flag=True, hidden=True)(command)
        return click.option("--profile", type=click.Choice(PROFILE_NAMES), default=None, help=PROFILE_HELP)(command)

    return decorate


def chosen_profile(profile: str | None, old_fast_flag: bool) -> str | None:
    """The profile ``--profile`` or the old fast flag chose (None: neither was given)."""
    if old_fast_flag and profile not in (None, "fast"):
        raise DisentangleError(f"the fast flag conflicts with --profile {profile}")
    return "fast" if old_fast_flag else profile


def dataset_options_from(data_root, dataset_settings) -> dict:
    """``--data-root`` and ``--dataset-option KEY=VALUE`` as a data set's options."""
    options = dict(parse_setting(s) for s in dataset_settings)
    if data_root:
        options["root"] = str(data_root)
    return options


class ExecutorOptionsOption(click.Option):
    """``--executor-option KEY=VALUE``, whose help lists each registered executor's options and
    defaults, read from the executors' schemas when help is shown (a new executor needs no CLI edit)."""

    def get_help_record(self, ctx):
        from disentangle.orchestration.executors import EXECUTORS
        from disentangle.base.registry import REQUIRED

        hidden = {"workers"}  # --workers sets it
        listed = []
        for name in EXECUTORS.names():
            options = [f"{o.name}" + ("" if o.default is REQUIRED or o.default is None else f"={o.default}")
                       for o in EXECUTORS.options(name).values() if o.name not in hidden]
            listed.append(f"{name}: {', '.join(options) or 'none'}")
        self.help = f"An option of the chosen executor (repeatable); {'; '.join(listed)}."
        return super().get_help_record(ctx)


def executor_options_from(pairs, shorthands: dict) -> dict:
    """The executor's options: ``--executor-option KEY=VALUE`` pairs, then the named shorthand flags
    (``--partition``, ``--time``, ...; None when not given) over them."""
    options = dict(parse_setting(text, flag="--executor-option") for text in pairs)
    if "workers" in options:
        raise DisentangleError("--executor-option workers=...: give --workers instead")
    options.update({key: value for key, value in shorthands.items() if value is not None})
    return options
