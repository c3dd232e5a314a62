"""The decoders' image layer: a transposed convolution computed as a sub-pixel convolution."""

import pytest
import torch
from torch import nn

from disentangle.models import get_model
from disentangle.models.layers import SubpixelConvTranspose2d, phase_kernels


def _pair(c_in, c_out, dtype=torch.float64):
    torch.manual_seed(0)
    native = nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1).to(dtype)
    nn.init.normal_(native.bias)
    fast = SubpixelConvTranspose2d(c_in, c_out).to(dtype)
    fast.load_state_dict(native.state_dict())  # the same parameters: old checkpoints load
    return native, fast


def test_a_single_pixel_spreads_to_the_kernels_centre():
    # by hand: a 1x1 input of value 1 gives the 2x2 output weight[0, 0, 1:3, 1:3] + bias (padding 1 crops the rest)
    _, fast = _pair(1, 1)
    out = fast(torch.ones(1, 1, 1, 1, dtype=torch.float64))
    assert torch.equal(out[0, 0], fast.weight[0, 0, 1:3, 1:3] + fast.bias[0])


@pytest.mark.parametrize("c_out", [1, 3])
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last])
def test_forward_and_gradients_equal_the_native_layer(c_out, memory_format):
    native, fast = _pair(5, c_out)
    x = torch.randn(3, 5, 6, 7, dtype=torch.float64).contiguous(memory_format=memory_format).requires_grad_()
    grad = torch.randn(3, c_out, 12, 14, dtype=torch.float64)
    expected, got = native(x), fast(x)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    for a, b in zip(torch.autograd.grad(expected, [x, native.weight, native.bias], grad),
                    torch.autograd.grad(got, [x, fast.weight, fast.bias], grad)):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-12)


def test_phase_kernels_are_a_rearrangement_of_the_weight():
    weight = torch.arange(2 * 3 * 16, dtype=torch.float64).view(2, 3, 4, 4)
    kernels = phase_kernels(weight)
    assert kernels.shape == (12, 2, 2, 2)
    assert sorted(kernels.flatten().tolist()) == sorted(weight.flatten().tolist())  # each tap used exactly once


def test_under_bf16_autocast_it_casts_as_the_native_layer_does():
    native, fast = _pair(8, 1, torch.float32)
    x = torch.randn(4, 8, 8, 8).requires_grad_()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected, got = native(x), fast(x)
    assert got.dtype == expected.dtype == torch.bfloat16
    torch.testing.assert_close(got.float(), expected.float(), rtol=0.02, atol=0.05)
    grads = torch.autograd.grad(got.float().sum(), [x, fast.weight, fast.bias])
    assert [g.dtype for g in grads] == [torch.float32] * 3  # parameters keep fp32 gradients


@pytest.mark.parametrize("architecture, shape", [("conv64", (1, 64, 64)), ("conv64", (3, 64, 64)), ("conv28", (1, 28, 28))])
def test_the_decoders_image_layer_uses_it(architecture, shape):
    model = get_model("vae", observation_shape=shape, architecture=architecture)
    deconvs = [m for m in model.decoder.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert isinstance(deconvs[-1], SubpixelConvTranspose2d) and deconvs[-1].out_channels == shape[0]
    assert not any(isinstance(m, SubpixelConvTranspose2d) for m in deconvs[:-1])  # wide layers keep the native kernel
