"""How a command stops on Ctrl-C or SIGTERM: the same at every moment, with one line on stderr and
exit status 130 (the shell's code for SIGINT).

- While the command line loads (Python importing torch, scikit-learn, ... for seconds on a busy
  machine), nothing has been written yet: :func:`end_quietly_while_starting`, the first thing the
  entry point (:mod:`disentangle.__main__`) does, makes either signal end the process at once
  with one line. Python's own handling would print a traceback from whichever import it hit, or
  lose the Ctrl-C altogether when it lands in an import lock's callback ("Exception ignored in
  ...") and then run the whole command (seen 2026-11-30).
- Once the command runs, :func:`sigterm_as_interrupt` handles SIGTERM as Ctrl-C, so ``kill``, a
  scheduler or a closing terminal stops a command the way an interactive user does: runs are
  marked interrupted (resumable), temporaries are removed, worker processes are stopped with it.
- Inside a loop of torch steps, :func:`handled_between_steps` runs those signals' handlers at the
  next step boundary rather than wherever the signal lands: a :class:`KeyboardInterrupt` raised
  while torch's C++ calls back into Python can abort the process or end it by SIGINT instead of
  stopping it cleanly.

While it starts, a signal the command was started with ignored (SIGINT for ``cmd &`` in a
script) stays ignored.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading

INTERRUPTED_EXIT = 130  # stopped by Ctrl-C or SIGTERM (the shell's code for SIGINT)
_STOPPING_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def in_main_thread() -> bool:
    """Whether this is the main thread, the only one where signal handlers can be set."""
    return threading.current_thread() is threading.main_thread()


def _end_now(signum, frame):
    sys.stderr.write("disentangle: interrupted while starting; nothing was written\n")
    sys.stderr.flush()
    os._exit(INTERRUPTED_EXIT)  # no exception: nothing in an import can catch or swallow it


def end_quietly_while_starting() -> None:
    """From now until :func:`command_started`, Ctrl-C or SIGTERM ends the process at once (one line, exit 130)."""
    if not in_main_thread():
        return
    for signum in _STOPPING_SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _end_now)


def command_started() -> None:
    """Back to Python's handling: Ctrl-C raises :class:`KeyboardInterrupt`, SIGTERM its default
    (see :func:`sigterm_as_interrupt`). Undoes :func:`end_quietly_while_starting`."""
    if not in_main_thread():
        return
    for signum, handler in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, signal.SIG_DFL)):
        if signal.getsignal(signum) is _end_now:
            signal.signal(signum, handler)


@contextlib.contextmanager
def sigterm_as_interrupt():
    """Within the block, SIGTERM raises :class:`KeyboardInterrupt` (main thread only; elsewhere a no-op)."""
    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def handled_between_steps(signals=tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGUSR2") if hasattr(signal, name))):
    """Within the block, the Python handlers of ``signals`` (Ctrl-C's, SIGTERM's from
    :func:`sigterm_as_interrupt`, submitit's SIGUSR2 requeue) run when the loop calls the yielded
    ``check()`` between steps, not at whatever bytecode the signal lands on; a second signal runs its
    handler at once (a step that never ends can still be stopped). A signal that arrived in the last
    step is handled when the block ends. Signals without a Python handler (ignored, default) and
    threads other than the main one are left as they are.

    Why: a :class:`KeyboardInterrupt` raised asynchronously inside a training step, while torch's
    C++ runs Python (a custom autograd function, a pybind11 callback), ended 5 of 40 ``train``
    processes sent SIGINT at random moments under load with SIGABRT ("terminate called after
    throwing an instance of 'pybind11::error_already_set'") or by SIGINT instead of exit 130
    (2-core Zen 3, 2026-11-30).
    """
    pending: list[int] = []
    handlers = {}

    def defer(signum, frame):
        if pending:
            handlers[signum](signum, frame)
        pending.append(signum)

    def check():
        if pending:
            signum = pending.pop(0)
            handlers[signum](signum, None)

    if in_main_thread():
        for signum in signals:
            handler = signal.getsignal(signum)
            if callable(handler):
                handlers[signum] = handler
                signal.signal(signum, defer)
    try:
        yield check
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    check()


@contextlib.contextmanager
def stops_recorded():
    """Within the block, record every Ctrl-C or SIGTERM that reaches the process, whatever its
    Python handler then does; the yielded ``arrived()`` says whether one did.

    A library's handler can be lost: Ray's ``ray.init`` answers SIGTERM with ``sys.exit``, and
    when the signal lands while it forks a helper the ``SystemExit`` is raised in logging's at-fork
    callback, where Python only prints it ("Exception ignored in ...") and goes on; the grid then
    ran to the end (seen in CI, 2026-12-08). The interpreter's C-level handler writes each signal's
    number to the wakeup descriptor before any Python code runs, so the record cannot be swallowed.
    Main thread only; elsewhere ``arrived()`` is always False.
    """
    if not in_main_thread():
        yield lambda: False
        return
    reader, writer = os.pipe()
    os.set_blocking(reader, False)
    os.set_blocking(writer, False)
    previous = signal.set_wakeup_fd(writer, warn_on_full_buffer=False)
    seen: set[int] = set()
    recording = True

    def arrived() -> bool:
        if recording:
            with contextlib.suppress(BlockingIOError):
                while chunk := os.read(reader, 512):
                    seen.update(chunk)
        return any(signum in seen for signum in _STOPPING_SIGNALS)

    try:
        yield arrived
    finally:
        signal.set_wakeup_fd(previous)
        arrived()  # what came before the descriptor was handed back: arrived() still answers after the block
        recording = False
        os.close(reader)
        os.close(writer)
