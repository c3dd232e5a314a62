"""A faster, numerically equivalent layer for the decoder's image output.

The last transposed convolution of ``conv64`` / ``conv28`` maps 32 channels to the
image's 1 or 3. oneDNN's forward kernel for so few output channels runs at a few
percent of the machine's peak (12.5 ms of a 98 ms fp32 training step on 64 dSprites
images, one thread), while a plain convolution to 4 x C channels is fast. A 4x4 stride-2
transposed convolution (padding 1) *is* such a convolution followed by a pixel
interleave: output row ``2m + a`` only sees input rows ``m + s`` for
``s in {a - 1, a}`` through kernel row ``a + 1 - 2s`` (and likewise for columns),
so each of the four output phases (a, c) is a 2x2 stride-1 convolution of the input
padded by one, read at offset (a, c). The backward pass stays PyTorch's own
transposed-convolution backward, which is fast at these shapes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

PHASES = ((0, 0), (0, 1), (1, 0), (1, 1))


def phase_kernels(weight: torch.Tensor) -> torch.Tensor:
    """The 2x2 convolution kernels of the four output phases of a 4x4 stride-2 transposed conv.

    Parameters
    ----------
    weight : Tensor [C_in, C_out, 4, 4]
        A ``ConvTranspose2d`` weight.

    Returns
    -------
    Tensor [4 * C_out, C_in, 2, 2]
        Phase-major: rows ``p * C_out ... (p + 1) * C_out`` hold phase ``PHASES[p]``.
    """
    kernels = []
    for a, c in PHASES:
        rows, cols = [3 - a, 1 - a], [3 - c, 1 - c]  # kernel taps for input offsets s = a - 1, a
        kernels.append(weight[:, :, rows][:, :, :, cols])
    return torch.cat(kernels, 1).transpose(0, 1)


def subpixel_conv_transpose(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> torch.Tensor:
    """``F.conv_transpose2d(x, weight, bias, stride=2, padding=1)`` for 4x4 kernels, as one
    stride-1 convolution and an interleave. x [n, C_in, h, w] -> [n, C_out, 2h, 2w]."""
    n, _, h, w = x.shape
    c_out = weight.shape[1]
    full = F.conv2d(F.pad(x, (1, 1, 1, 1)), phase_kernels(weight))  # [n, 4 C_out, h + 1, w + 1]
    phases = torch.stack([full[:, p * c_out:(p + 1) * c_out, a:a + h, c:c + w] for p, (a, c) in enumerate(PHASES)], 2)
    image = phases.view(n, c_out, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(n, c_out, 2 * h, 2 * w)
    return (image + bias.view(1, -1, 1, 1)).contiguous(memory_format=torch.channels_last)


class _SubpixelForward(torch.autograd.Function):
    """Forward through :func:`subpixel_conv_transpose`, backward through PyTorch's own
    transposed-convolution backward (the fast one at these shapes)."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        if torch.is_autocast_enabled(x.device.type):  # cast as autocast casts a native conv
            dtype = torch.get_autocast_dtype(x.device.type)
            x, weight, bias = x.to(dtype), weight.to(dtype), bias.to(dtype)
        ctx.save_for_backward(x, weight)
        return subpixel_conv_transpose(x, weight, bias)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        return torch.ops.aten.convolution_backward(
            grad.contiguous(memory_format=torch.channels_last), x, weight, [weight.shape[1]], [2, 2], [1, 1], [1, 1],
            True, [0, 0], 1, list(ctx.needs_input_grad))


class SubpixelConvTranspose2d(nn.ConvTranspose2d):
    """``nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)`` with a faster forward for few
    output channels (same parameters and state dict, same result to rounding; gradients are
    PyTorch's own). Used for the decoders' image layer (``c_out <= 4``); at 32 or 64 output
    channels the native kernel is faster and is kept. On other devices than the CPU the native
    kernel runs (not measured there)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__(in_channels, out_channels, 4, stride=2, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.device.type != "cpu":  # measured on CPU (oneDNN) only; cuDNN keeps its own kernel
            return super().forward(x)
        return _SubpixelForward.apply(x, self.weight, self.bias)
