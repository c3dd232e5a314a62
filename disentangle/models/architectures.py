"""Encoders and decoders: ``conv64`` (Locatello et al. 2019), ``conv28``, ``mlp``.

An encoder maps images [n, C, H, W] to ``2 * latent_dim`` numbers (mu, logvar);
a decoder maps latents to image logits of the same shape. No loss lives here.
"""

from __future__ import annotations

import math

from torch import nn

from disentangle.errors import DisentangleError


def _conv_stack(channels: list[int]) -> list[nn.Module]:
    layers = []
    for c_in, c_out in zip(channels, channels[1:]):
        layers += [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
    return layers


def _deconv_stack(channels: list[int]) -> list[nn.Module]:
    layers = []
    for c_in, c_out in zip(channels, channels[1:]):
        layers += [nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1), nn.ReLU()]
    return layers[:-1]  # no activation on the logits


def _conv(image_shape, latent_dim, widths, fc=256):
    """Stride-2 4x4 convolutions down to a small grid, FC ``fc``, heads; decoder mirrored."""
    channels, size = image_shape[0], image_shape[1]
    grid = size // 2 ** len(widths)
    flat = widths[-1] * grid * grid
    encoder = nn.Sequential(*_conv_stack([channels, *widths]), nn.Flatten(),
                            nn.Linear(flat, fc), nn.ReLU(), nn.Linear(fc, 2 * latent_dim))
    decoder = nn.Sequential(nn.Linear(latent_dim, fc), nn.ReLU(), nn.Linear(fc, flat), nn.ReLU(),
                            nn.Unflatten(1, (widths[-1], grid, grid)),
                            *_deconv_stack([*reversed(widths), channels]))
    return encoder, decoder


def conv64(image_shape, latent_dim):
    """The 64x64 architecture of disentanglement_lib: conv 32-32-64-64 (4x4, stride 2), FC 256."""
    return _conv(image_shape, latent_dim, [32, 32, 64, 64])


def conv28(image_shape, latent_dim):
    """A 28x28 variant: conv 32-64 (4x4, stride 2) to 7x7, FC 256."""
    return _conv(image_shape, latent_dim, [32, 64])


def mlp(image_shape, latent_dim, hidden=(512, 256)):
    """Fully connected encoder/decoder for likelihood experiments on MNIST."""
    pixels = math.prod(image_shape)
    enc, dec, width = [nn.Flatten()], [], pixels
    for h in hidden:
        enc += [nn.Linear(width, h), nn.ReLU()]
        width = h
    enc.append(nn.Linear(width, 2 * latent_dim))
    width = latent_dim
    for h in reversed(hidden):
        dec += [nn.Linear(width, h), nn.ReLU()]
        width = h
    dec += [nn.Linear(width, pixels), nn.Unflatten(1, tuple(image_shape))]
    return nn.Sequential(*enc), nn.Sequential(*dec)


ARCHITECTURES = {"conv64": (conv64, 64), "conv28": (conv28, 28), "mlp": (mlp, None)}


def build_architecture(name: str, image_shape, latent_dim: int):
    if name not in ARCHITECTURES:
        raise DisentangleError(f"unknown architecture {name!r}, expected one of {', '.join(ARCHITECTURES)}")
    builder, size = ARCHITECTURES[name]
    image_shape = tuple(int(s) for s in image_shape)
    if len(image_shape) != 3:
        raise DisentangleError(f"observation shape must be (C, H, W), got {list(image_shape)}")
    if size is not None and image_shape[1:] != (size, size):
        raise DisentangleError(f"architecture {name!r} needs {size}x{size} images, got {image_shape[1]}x{image_shape[2]}")
    return builder(image_shape, latent_dim)
