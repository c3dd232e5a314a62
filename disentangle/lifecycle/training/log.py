"""A run's log.csv: one row of means every ``log_every`` steps, appended as training goes and
rewritten whole from the checkpoint's rows when a run resumes."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import torch

from disentangle.base.files import atomic_write_text


def log_row(step: int, window: list[dict], images_per_s: float) -> dict:
    """Means over the steps since the last row; the per-step values stay tensors until here."""
    row = {"step": step}
    for key in window[0]:
        mean = torch.stack([torch.as_tensor(w[key]).to("cpu", torch.float64) for w in window]).mean(0)
        if key == "kl_per_dim":
            row.update({f"kl_{j}": float(value) for j, value in enumerate(mean)})
        else:
            row[key] = float(mean)
    row["images_per_s"] = images_per_s
    return row


def write_log(path: Path, rows: list[dict]) -> None:
    """Rewrite log.csv from ``rows`` (at the start of a run or resume: drops any partial tail)."""
    if not rows:
        path.unlink(missing_ok=True)
        return
    columns = list(dict.fromkeys(key for row in rows for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def append_log(path: Path, rows: list[dict]) -> None:
    """Append the newest row to log.csv (one short write instead of rewriting the whole file).

    A crash mid-write can leave a partial last line; resuming rewrites the log from the
    checkpoint's rows, so the log a finished run keeps is always whole.
    """
    if len(rows) == 1 or not path.exists():
        write_log(path, rows)
        return
    buffer = io.StringIO()
    csv.DictWriter(buffer, fieldnames=list(rows[0])).writerow(rows[-1])
    with open(path, "a", encoding="utf-8") as log:
        log.write(buffer.getvalue())
