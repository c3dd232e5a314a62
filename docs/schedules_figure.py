"""Draw docs/schedules.png: the multiplier of the regularisation weight over training for each
schedule form (python docs/schedules_figure.py)."""

from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from disentangle.models.schedules import parse_schedule

STEPS = 20000
FORMS = ("constant", "linear:5000", "cosine:5000", "cyclical:5000", "cyclical:5000:0.25")

fig, axes = plt.subplots(1, len(FORMS), figsize=(2.6 * len(FORMS), 2.2), sharey=True)
steps = np.arange(STEPS + 1)
for ax, form in zip(axes, FORMS):
    schedule = parse_schedule(form)
    ax.plot(steps, [schedule(s) for s in steps], lw=1.2)
    ax.set_title(f"beta_schedule = {form!r}", fontsize=8)
    ax.set_xlabel("step", fontsize=8)
    ax.tick_params(labelsize=7)
axes[0].set_ylabel("multiplier of the weight", fontsize=8)
fig.tight_layout()
fig.savefig(Path(__file__).with_name("schedules.png"), dpi=110)
