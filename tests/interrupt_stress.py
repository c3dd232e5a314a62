"""Many Ctrl-Cs at random moments of ``train``: how each process ended (not collected by pytest).

The fault sweep (``test_interruptions.py``) sends one signal per case at a seeded moment; this sends
N, one per process, at uniform moments in [1, 8] s, and counts exit statuses: every one should be
130 (or 0: the run had finished). Run it beside a CPU hog to reach the moments a busy machine
makes long (imports, ``ray.init``)::

    python tests/interrupt_stress.py 80 [--signal SIGTERM] [--seed 1]

Measured on the 2-core Zen 3 with one CPU hog beside it (2026-11-30, SIGINT, with the loop this
file was then written from): with the entry point's startup handling alone, 35 of 40 ended 130,
4 by SIGINT (-2) and 1 by SIGABRT (-6, pybind11's "terminate called after throwing"); with the
trainer acting on signals between steps too, 57 of 60 and 79 of 80 (the rest -2: a Ctrl-C that
landed in a dataclass being defined by an import, which CPython 3.11 remembers at exit); with
``reports_errors`` clearing that, 80 of 80.
"""

import argparse
import collections
import random
import signal
import subprocess
import sys
import tempfile
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("count", type=int)
    parser.add_argument("--signal", default="SIGINT", choices=["SIGINT", "SIGTERM"])
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng, sig, endings = random.Random(args.seed), getattr(signal, args.signal), collections.Counter()
    for _ in range(args.count):
        delay = rng.uniform(1.0, 8.0)
        with tempfile.TemporaryDirectory() as runs_dir:
            process = subprocess.Popen([sys.executable, "-X", "faulthandler", "-m", "disentangle", "train", "--steps", "200",
                                        "--batch-size", "8", "--set", "latent_dim=3", "--threads", "1", "--runs-dir", runs_dir,
                                        "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(delay)
            process.send_signal(sig)
            _, err = process.communicate()
        endings[process.returncode] += 1
        if process.returncode not in (0, 130):
            print(f"{args.signal} after {delay:.2f} s: exit {process.returncode}\n{err[-3000:]}", flush=True)
    print(f"{args.count} x {args.signal}: exit statuses {dict(endings)}")


if __name__ == "__main__":
    main()
