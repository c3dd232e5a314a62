"""Training throughput of beta_vae + conv64 on procedural dSprites, batch 64.

    python benchmarks/train_throughput.py [--steps 300]

Prints images/s for (a) a naive PyTorch baseline written here (DataLoader over a
float32 TensorDataset, NCHW, fp32, PyTorch's own layers), (b) the project's trainer in fp32, (c) the
trainer with the opt-in bf16 autocast, and (d) (c) with ``torch.compile`` of the
loss (tried; its compile time printed), all in one run, the single-run rows three
times interleaved (medians; the machine's speed drifts between minutes); the achieved GFLOP/s of
each against the dense matmul peak *of its own precision* measured on this
machine in the same run (bf16 matmul runs ~2.3x fp32 on AVX-512 BF16); and the
loss each reaches after the same steps from the same seed.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from disentangle.datasets import get_dataset
from disentangle.models import get_model
from disentangle.models.layers import SubpixelConvTranspose2d
from disentangle.base.runs import RunConfig
from disentangle.lifecycle.training import train

BATCH = 64


def matmul_gflops(size: int = 2048, repeats: int = 10, dtype=torch.float32) -> float:
    """Dense square matmul throughput, the machine's practical peak for ``dtype``."""
    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def forward_macs(module: nn.Module, call) -> int:
    """Multiply-adds of every conv / linear layer of ``module`` while ``call()`` runs (forward hooks, no grad)."""
    macs = []

    def count(layer, inputs, output):
        if isinstance(layer, nn.Linear):
            macs.append(layer.in_features * layer.out_features)
        elif isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            kernel = layer.in_channels * layer.kernel_size[0] * layer.kernel_size[1] // layer.groups
            spatial = output.shape[2] * output.shape[3] if isinstance(layer, nn.Conv2d) else inputs[0].shape[2] * inputs[0].shape[3]
            macs.append(kernel * layer.out_channels * spatial)

    hooks = [m.register_forward_hook(count) for m in module.modules() if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d))]
    try:
        with torch.no_grad():
            call()
    finally:
        for hook in hooks:
            hook.remove()
    return sum(macs)


def training_flops_per_image(model) -> float:
    """Forward multiply-adds of every conv / linear layer, x2 (FLOPs) x3 (forward + backward)."""
    return 2 * 3 * forward_macs(model, lambda: model.loss(torch.zeros(1, 1, 64, 64)))


def with_plain_layers(model: nn.Module) -> nn.Module:
    """``model`` with PyTorch's own layers where the project has faster equivalents (the
    decoder's image layer, models/layers.py), same weights: the network a textbook user writes."""
    for parent in list(model.modules()):
        for name, child in parent.named_children():
            if isinstance(child, SubpixelConvTranspose2d):
                plain = nn.ConvTranspose2d(child.in_channels, child.out_channels, 4, stride=2, padding=1)
                plain.load_state_dict(child.state_dict())
                setattr(parent, name, plain)
    return model


def naive_baseline(steps: int) -> tuple[float, float]:
    """(images/s, mean loss of the last 50 steps) of the textbook loop: DataLoader over a float
    TensorDataset, NCHW, fp32, PyTorch's own layers."""
    torch.manual_seed(0)
    _, images = get_dataset("dsprites").sample(16384, np.random.default_rng(0))
    loader = DataLoader(TensorDataset(torch.from_numpy(images)), batch_size=BATCH, shuffle=True, drop_last=True)
    model = with_plain_layers(get_model("beta_vae", beta=4.0))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    done, start, losses = 0, None, []
    while done < steps + 10:
        for (x,) in loader:
            if done == 10:
                start = time.perf_counter()
            loss = model.loss(x, done)["loss"]
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            done += 1
            if done == steps + 10:
                break
    return steps * BATCH / (time.perf_counter() - start), float(np.mean(losses[-50:]))


def trainer_run(steps: int, precision: str, compile_loss: bool = False) -> tuple[float, float, float]:
    """(images/s, loss of the last log row, seconds the first window took beyond a typical one: the
    compile time with ``compile_loss``) of the project's trainer."""
    config = RunConfig(model="beta_vae", steps=steps, model_options={"beta": 4.0}, precision=precision, log_every=50,
                       checkpoint_every=steps, compile=compile_loss)
    with tempfile.TemporaryDirectory() as runs_dir:
        run_dir = train(config, runs_dir, progress=False)
        log = pd.read_csv(run_dir / "log.csv")
    window_s = 50 * BATCH / log["images_per_s"]
    rate = float(log["images_per_s"].iloc[1:].median())
    return rate, float(log["loss"].iloc[-1]), float(window_s.iloc[0] - window_s.iloc[1:].median())


def grid_throughput(steps: int, precision: str, workers: int) -> float:
    """Total images/s of the quickstart's 3-beta grid trained by ``run_grid`` with ``workers`` processes."""
    from disentangle.orchestration import grid

    configs = grid.expand("beta_vae", "dsprites", betas=(1.0, 4.0, 16.0), steps=steps, precision=precision,
                          checkpoint_every=steps)
    with tempfile.TemporaryDirectory() as runs_dir:
        start = time.perf_counter()
        results = grid.run_grid(configs, runs_dir, (), workers=workers, progress=False, figures=False)  # training alone
        seconds = time.perf_counter() - start
    assert all(r.outcome == "done" for r in results), results
    return len(configs) * steps * BATCH / seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats of the single-run rows (median)")
    parser.add_argument("--bf16", action="store_true", help="measure bf16 even where this CPU only emulates it (~10x slower)")
    args = parser.parse_args()
    steps = args.steps
    from disentangle.lifecycle.hardware import describe_machine, native_bf16

    print(describe_machine())
    with_bf16 = native_bf16("cpu") or args.bf16
    peaks = {"fp32": matmul_gflops(), "bf16": matmul_gflops(dtype=torch.bfloat16) if with_bf16 else float("nan")}
    flops = training_flops_per_image(get_model("beta_vae"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; dense matmul peak: fp32 {peaks['fp32']:.0f} GFLOP/s, "
          f"bf16 {peaks['bf16']:.0f} GFLOP/s; beta_vae+conv64 training: {flops / 1e6:.0f} MFLOP per image")
    if not with_bf16:
        print("bf16 rows skipped: this CPU has no native bf16 (--bf16 measures the emulation anyway)")
    # interleaved repeats, the median of each: the machine's speed drifts between minutes
    runs = {"naive": [], "fp32": [], "bf16": [], "compile": []}
    for repeat in range(args.repeats):
        runs["naive"].append(naive_baseline(steps))
        runs["fp32"].append(trainer_run(steps, "fp32"))
        if with_bf16:
            runs["bf16"].append(trainer_run(steps, "bf16"))
            runs["compile"].append(trainer_run(steps, "bf16", compile_loss=True))  # compiles from the 2nd on hit the cache
        else:
            runs["compile"].append(trainer_run(steps, "fp32", compile_loss=True))
    median = lambda name, i: float(np.median([r[i] for r in runs[name]])) if runs[name] else float("nan")  # noqa: E731
    naive, naive_loss = median("naive", 0), median("naive", 1)
    fp32, loss32 = median("fp32", 0), median("fp32", 1)
    bf16, loss16 = median("bf16", 0), median("bf16", 1)
    compiled, loss_c = median("compile", 0), median("compile", 1)
    compile_s = runs["compile"][0][2]  # the first repeat compiles; later ones read inductor's cache
    compiled_precision = "bf16" if with_bf16 else "fp32"
    print("images/s of each repeat: " + "; ".join(f"{name} " + ", ".join(f"{r[0]:.0f}" for r in rs) for name, rs in runs.items() if rs))
    rows = [("naive DataLoader loop (fp32, NCHW)", "fp32", naive, naive_loss), ("disentangle trainer, fp32", "fp32", fp32, loss32)]
    if with_bf16:
        rows.append(("disentangle trainer, bf16", "bf16", bf16, loss16))
    rows.append((f"trainer, {compiled_precision} --compile [1st compile {compile_s:.0f} s]", compiled_precision, compiled, loss_c))
    for name, precision, rate, loss in rows:
        achieved = rate * flops / 1e9
        print(f"{name:46s} {rate:8.0f} images/s  {rate / naive:4.2f}x naive  {achieved:6.1f} GFLOP/s "
              f"({100 * achieved / peaks[precision]:.0f}% of the {precision} matmul peak)  loss after {steps} steps: {loss:.1f}")
    print("targets (issue 21): trainer fp32 >= 1.3x naive; where bf16 is native, bf16 >= 1.5x naive")
    for precision in ("fp32", "bf16") if with_bf16 else ("fp32",):
        one = grid_throughput(2 * steps, precision, workers=1)
        three = grid_throughput(2 * steps, precision, workers=3)
        print(f"3-beta grid, {precision}: one run at a time ({torch.get_num_threads()} threads) {one:6.0f} images/s, "
              f"3 worker processes (1 thread each) {three:6.0f} images/s = {three / one:.2f}x (target for stacked training: 1.5x)")


if __name__ == "__main__":
    main()
