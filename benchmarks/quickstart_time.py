"""Wall-clock time of the README's main job, as a new user meets it on this machine.

    python benchmarks/quickstart_time.py [--skip-full]

Runs ``disentangle quickstart --fast`` and ``disentangle quickstart`` in fresh folders with an
empty probe cache (so the first run's budget probe is counted), prints the machine, what each
chose (precision, budget) and its time against the targets (issue 21: ``--fast`` <= 2 min, the
full quickstart <= 8 min on 2 cores, on every CPU kind), and whether the beta trade-off shows.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def timed_quickstart(*flags: str) -> tuple[float, list[str]]:
    with tempfile.TemporaryDirectory() as scratch:
        env = {**os.environ, "XDG_CACHE_HOME": os.path.join(scratch, "cache")}
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "disentangle", "quickstart", "--out", os.path.join(scratch, "qs"),
                               "--quiet", *flags], capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"quickstart {' '.join(flags)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return seconds, done.stdout.splitlines()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--skip-full", action="store_true", help="time only --fast")
    args = parser.parse_args()
    from disentangle.lifecycle.hardware import describe_machine

    print(describe_machine())
    for flags, target in ((("--fast",), 120), (() if not args.skip_full else None, 480)):
        if flags is None:
            continue
        seconds, lines = timed_quickstart(*flags)
        chosen = [line.strip() for line in lines if line.strip().startswith(("precision", "budget", "beta trade-off"))]
        name = "quickstart " + " ".join(flags) if flags else "quickstart"
        print(f"{name:20s} {seconds / 60:5.1f} min ({seconds:.0f} s); target <= {target // 60} min: "
              f"{'met' if seconds <= target else 'NOT met'}")
        for line in chosen:
            print(f"    {line}")


if __name__ == "__main__":
    main()
