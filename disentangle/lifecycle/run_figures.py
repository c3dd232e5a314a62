"""Figures of one trained run: latent traversals (PNG and GIF), reconstructions,
prior samples, KL per latent and training curves.

They belong to the run: a grid draws them into ``RUN/figures`` when the run finishes (unless ``--no-figures``)
(``traverse`` does on demand), and the HTML report copies them from there instead of drawing them
again (see :data:`disentangle.base.runs.FIGURES`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from disentangle.base import runs
from disentangle.lifecycle.evaluation import kl_per_latent, make_posterior
from disentangle.metrics._utils import discretize, mutual_info_matrix
from disentangle.base.images import lay_out, mosaic, new_figure, save_figure, save_gif, show_mosaic
from disentangle.lifecycle.training.loading import load_trained
from disentangle.lifecycle.training.snapshots import TRAVERSAL_VALUES, decode_images, traversal_grid  # the trackers' snapshots draw the same

INACTIVE_KL = 0.01  # nats: a latent whose KL from the prior is below this carries (almost) nothing
ALWAYS_DRAWN = ("traversals.png", "traversals.gif", "reconstructions.png", "samples.png", "kl_per_latent.png")
FIGURE_FILES = (*ALWAYS_DRAWN, "training_curves.png")  # what render_run_figures writes in PNG (the curves need a log)


def figures_current(run_dir: str | Path, folder: str | Path | None = None) -> bool:
    """Whether ``folder`` (default ``RUN/figures``) holds every figure :func:`render_run_figures` always
    draws, each drawn after the run's checkpoint and log were last written (stats only)."""
    folder = Path(folder) if folder is not None else Path(run_dir) / runs.FIGURES
    return all(runs.drawn_from_current_run(folder / name, run_dir) for name in ALWAYS_DRAWN)


def draw_run_figures(run_dir: str | Path, out: str | Path | None = None, data_root: str | Path | None = None,
                     device: str = "auto", curves_only: bool = False) -> str | None:
    """:func:`render_run_figures` (or only the training curves, of a run still training) that never
    raises: the problem in one line when the figures cannot be drawn (shown on the report's run page,
    or beside a grid's result), else None."""
    run_dir = Path(run_dir)
    out = Path(out) if out is not None else run_dir / runs.FIGURES
    try:
        if curves_only:
            training_curves(run_dir / runs.LOG, out, f"{run_dir.name}: training")
        else:
            render_run_figures(run_dir, out, data_root=data_root, device=device)
    except Exception as error:  # noqa: BLE001 -- a broken run file is reported, never raised
        return f"figures could not be drawn: {str(error).splitlines()[0] if str(error) else type(error).__name__}"
    return None


def latent_labels(kl: np.ndarray, factor_names: list, order: np.ndarray, num_factors: int) -> list[str]:
    """Row labels for the traversals: ``z3  KL 2.10  ~posX``; ``inactive`` below :data:`INACTIVE_KL`;
    no factor name on a single-factor data set (every latent would be "~label")."""
    labels = []
    for j in order:
        if kl[j] < INACTIVE_KL:
            labels.append(f"z{j}  inactive")
        elif factor_names[j] and num_factors > 1:
            labels.append(f"z{j}  KL {kl[j]:.2f}  ~{factor_names[j]}")
        else:
            labels.append(f"z{j}  KL {kl[j]:.2f}")
    return labels


def training_curves(log_path: Path, out: Path, title: str, fmt: str = "png") -> Path | None:
    """Loss, reconstruction and KL against step, and the final KL per latent, from log.csv."""
    import pandas as pd

    try:
        log = pd.read_csv(log_path)
    except (OSError, pd.errors.EmptyDataError, pd.errors.ParserError, UnicodeDecodeError):
        return None
    if log.empty or "step" not in log:
        return None
    fig, axes = new_figure(1, 3, figsize=(11, 3.0))
    for column, ax in zip(("loss", "recon", "kl"), axes):
        if column in log:
            ax.plot(log["step"], log[column], lw=1.2)
        ax.set_title({"loss": "loss", "recon": "reconstruction (nats)", "kl": "KL (nats)"}[column], fontsize=10)
        ax.set_xlabel("step")
    per_latent = [c for c in log.columns if c.startswith("kl_") and c[3:].isdigit()]
    for column in per_latent:
        axes[2].plot(log["step"], log[column], lw=0.7, alpha=0.6)
    fig.suptitle(title, fontsize=9)
    lay_out(fig)
    return save_figure(fig, out / f"training_curves.{fmt}")


def _encode_means(model, observations: np.ndarray) -> np.ndarray:
    return make_posterior(model)(observations)[0]


def latent_summary(model, dataset, rng, n: int = 1000):
    """(KL per latent [d], best-matching factor name per latent or None)."""
    factors, obs = dataset.sample(n, rng)
    mu, log_variance = make_posterior(model)(obs)  # encoded once, for both
    kl = kl_per_latent(mu, log_variance)
    names = [None] * mu.shape[1]
    if dataset.num_factors and np.ptp(mu, axis=0).min() > 0:
        mi = mutual_info_matrix(discretize(mu, 20), factors)
        names = [dataset.factor_names[j] for j in mi.argmax(1)]
    return kl, names


def render_run_figures(run_dir: str | Path, out: str | Path | None = None, seed: int = 0,
                       data_root: str | Path | None = None, fmt: str = "png", device: str = "auto") -> list[Path]:
    """Write traversals.<fmt>, traversals.gif, reconstructions.<fmt>, samples.<fmt>, kl_per_latent.<fmt>
    and training_curves.<fmt>; every figure names its run."""
    run_dir = Path(run_dir)
    out = Path(out) if out else run_dir / "figures"
    config, dataset, model = load_trained(run_dir, data_root=data_root, device=device)
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    kl, factor_names = latent_summary(model, dataset, rng)
    order = np.argsort(-kl)
    _, seed_obs = dataset.sample(1, rng)
    seed_code = _encode_means(model, seed_obs)[0]
    cell = dataset.observation_shape[1]
    labels = latent_labels(kl, factor_names, order, dataset.num_factors)
    title = f"{run_dir.name}\nlatent traversals (rows sorted by KL; inactive: KL < {INACTIVE_KL} nats)"
    grid = traversal_grid(model, seed_code, order)
    figure = show_mosaic(mosaic(grid, len(order), len(TRAVERSAL_VALUES)), title, (len(TRAVERSAL_VALUES) * 0.9 + 2.5, len(order) * 0.9 + 0.8),
                         row_labels=labels, col_labels=[f"{v:+.1f}" for v in TRAVERSAL_VALUES], cell=cell)
    paths = [save_figure(figure, out / f"traversals.{fmt}", dpi=90)]

    forward = np.linspace(-2, 2, 10)
    sweep = np.concatenate([forward, forward[-2:0:-1]])  # there and back, no repeated frame
    codes = np.repeat(seed_code[None, None], len(sweep), axis=0).repeat(len(order), axis=1)  # [frame, latent row, d]
    codes[:, np.arange(len(order)), order] = sweep[:, None]
    decoded = decode_images(model, codes.reshape(len(sweep) * len(order), -1))  # every frame in one call
    frames = [mosaic(decoded[i * len(order):(i + 1) * len(order)], 1, len(order)) for i in range(len(sweep))]
    paths.append(save_gif(frames, out / "traversals.gif", duration_ms=120, scale=1, column_labels=[label.split("  ")[0] + ("" if "inactive" not in label else " off")
                                                                       for label in labels], caption=run_dir.name))

    _, inputs = dataset.sample(8, rng)
    recon = decode_images(model, _encode_means(model, inputs))
    figure = show_mosaic(mosaic(np.concatenate([inputs, recon]), 2, 8), f"{run_dir.name}\ninputs (top) and reconstructions (bottom)", (8, 2.8))
    paths.append(save_figure(figure, out / f"reconstructions.{fmt}"))

    samples = decode_images(model, rng.standard_normal((16, model.latent_dim)))
    paths.append(save_figure(show_mosaic(mosaic(samples, 2, 8), f"{run_dir.name}\nsamples from the prior", (8, 2.8)), out / f"samples.{fmt}"))

    fig, ax = new_figure(figsize=(6, 3.2))
    ax.bar([f"z{j}" for j in range(len(kl))], kl, color=["tab:gray" if v < INACTIVE_KL else "tab:blue" for v in kl])
    ax.set_xlabel("latent (grey: inactive)")
    ax.set_ylabel("KL (nats)")
    ax.set_title(f"{run_dir.name}\nKL divergence per latent", fontsize=9)
    paths.append(save_figure(fig, out / f"kl_per_latent.{fmt}"))
    curves = training_curves(run_dir / "log.csv", out, f"{run_dir.name}: training", fmt)
    return paths + ([curves] if curves else [])
