"""Encoders and decoders: ``conv64`` (Locatello et al. 2019), ``conv28``, ``mlp``.

An encoder maps images [n, C, H, W] to ``2 * latent_dim`` numbers (mu, logvar);
a decoder maps latents to image logits of the same shape. No loss lives here.
Every layer starts as TensorFlow's layers do in disentanglement_lib: Glorot-uniform
weights, zero biases (:func:`glorot_init`).
"""

from __future__ import annotations

import math

from torch import nn

from disentangle.base.errors import DisentangleError
from disentangle.models.layers import SubpixelConvTranspose2d


DEFAULT_ARCHITECTURE = {(64, 64): "conv64", (28, 28): "conv28"}  # image size -> architecture; any other size: mlp


def default_architecture(observation_shape) -> str:
    """The architecture a data set's image size picks when none is given: conv64, conv28 or mlp."""
    return DEFAULT_ARCHITECTURE.get(tuple(observation_shape[1:]), "mlp")


def glorot_init(module: nn.Module) -> nn.Module:
    """Glorot-uniform weights and zero biases on every linear and (transposed) conv layer.

    This is the initialisation of ``tf.layers.dense`` / ``conv2d`` / ``conv2d_transpose``,
    which disentanglement_lib's architectures use; PyTorch's default (Kaiming-uniform
    with a = sqrt(5), uniform biases) starts from different, smaller weights.
    """
    for layer in module.modules():
        if isinstance(layer, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
    return module


def _conv(c_in: int, c_out: int, kernel: int) -> nn.Conv2d:
    """A stride-2 convolution halving the grid, padded like TensorFlow's ``padding="same"``."""
    return nn.Conv2d(c_in, c_out, kernel, stride=2, padding=(kernel - 2) // 2)


def _deconv(c_in: int, c_out: int) -> nn.ConvTranspose2d:
    """A 4x4 stride-2 transposed convolution doubling the grid (TensorFlow's ``"same"``); to an
    image's few channels, the same layer with a faster forward (:mod:`disentangle.models.layers`)."""
    if c_out <= 4:
        return SubpixelConvTranspose2d(c_in, c_out)
    return nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)


def conv64(image_shape, latent_dim):
    """disentanglement_lib's ``conv_encoder`` / ``deconv_decoder`` (Locatello et al. 2019, Table 1).

    Encoder: conv 32 (4x4), 32 (4x4), 64 (2x2), 64 (2x2), all stride 2 and ReLU, to a
    64 x 4 x 4 grid; FC 256 ReLU; FC 2 x latent_dim (309,204 parameters at 10 latents
    on one channel). Decoder: FC 256, FC 1024 (both ReLU), reshape 64 x 4 x 4, deconv
    64, 32, 32 (4x4, stride 2, ReLU), deconv C (4x4, stride 2) to logits.
    """
    channels = image_shape[0]
    encoder = nn.Sequential(
        _conv(channels, 32, 4), nn.ReLU(inplace=True), _conv(32, 32, 4), nn.ReLU(inplace=True),
        _conv(32, 64, 2), nn.ReLU(inplace=True), _conv(64, 64, 2), nn.ReLU(inplace=True), nn.Flatten(),
        nn.Linear(64 * 4 * 4, 256), nn.ReLU(inplace=True), nn.Linear(256, 2 * latent_dim))
    decoder = nn.Sequential(
        nn.Linear(latent_dim, 256), nn.ReLU(inplace=True), nn.Linear(256, 64 * 4 * 4), nn.ReLU(inplace=True), nn.Unflatten(1, (64, 4, 4)),
        _deconv(64, 64), nn.ReLU(inplace=True), _deconv(64, 32), nn.ReLU(inplace=True), _deconv(32, 32), nn.ReLU(inplace=True), _deconv(32, channels))
    return encoder, decoder


def conv28(image_shape, latent_dim):
    """A 28x28 variant (not in the reference): conv 32, 64 (4x4, stride 2) to 7x7, FC 256; mirrored decoder."""
    channels = image_shape[0]
    encoder = nn.Sequential(_conv(channels, 32, 4), nn.ReLU(inplace=True), _conv(32, 64, 4), nn.ReLU(inplace=True), nn.Flatten(),
                            nn.Linear(64 * 7 * 7, 256), nn.ReLU(inplace=True), nn.Linear(256, 2 * latent_dim))
    decoder = nn.Sequential(nn.Linear(latent_dim, 256), nn.ReLU(inplace=True), nn.Linear(256, 64 * 7 * 7), nn.ReLU(inplace=True),
                            nn.Unflatten(1, (64, 7, 7)), _deconv(64, 32), nn.ReLU(inplace=True), _deconv(32, channels))
    return encoder, decoder


def mlp(image_shape, latent_dim, hidden=(512, 256)):
    """Fully connected encoder/decoder (ReLU) for likelihood experiments on MNIST."""
    pixels = math.prod(image_shape)
    enc, dec, width = [nn.Flatten()], [], pixels
    for h in hidden:
        enc += [nn.Linear(width, h), nn.ReLU(inplace=True)]
        width = h
    enc.append(nn.Linear(width, 2 * latent_dim))
    width = latent_dim
    for h in reversed(hidden):
        dec += [nn.Linear(width, h), nn.ReLU(inplace=True)]
        width = h
    dec += [nn.Linear(width, pixels), nn.Unflatten(1, tuple(image_shape))]
    return nn.Sequential(*enc), nn.Sequential(*dec)


ARCHITECTURES = {"conv64": (conv64, 64), "conv28": (conv28, 28), "mlp": (mlp, None)}


def build_architecture(name: str, image_shape, latent_dim: int):
    """(encoder, decoder) of a named architecture, Glorot-initialised."""
    if name not in ARCHITECTURES:
        raise DisentangleError(f"unknown architecture {name!r}, expected one of {', '.join(ARCHITECTURES)}")
    builder, size = ARCHITECTURES[name]
    image_shape = tuple(int(s) for s in image_shape)
    if len(image_shape) != 3:
        raise DisentangleError(f"observation shape must be (C, H, W), got {list(image_shape)}")
    if size is not None and image_shape[1:] != (size, size):
        raise DisentangleError(f"architecture {name!r} needs {size}x{size} images, got {image_shape[1]}x{image_shape[2]}")
    encoder, decoder = builder(image_shape, latent_dim)
    return glorot_init(encoder), glorot_init(decoder)
