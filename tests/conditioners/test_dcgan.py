"""dcgan_encoder / dcgan_decoder (SRVP's h and g on Moving MNIST, srvp.txt C.2): the conformance
kit, the layer layout at 64 x 64, 32 x 32 and 16 x 16, the init, the output ranges, shape errors."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from eddies.conditioners import DCGANDecoder, DCGANEncoder
from eddies.core import ShapeError, build
from eddies.core.testing import conditioner_conformance_test

test_encoder_conforms = conditioner_conformance_test("dcgan_encoder")
test_decoder_conforms = conditioner_conformance_test("dcgan_decoder")


@pytest.mark.parametrize(("size", "halvings"), [(64, 4), (32, 3), (16, 2)])
def test_layout_halves_to_4x4_then_one_valid_convolution(size, halvings):
    enc = DCGANEncoder(channels=4, in_shape=(1, size, size), out_shape=(10,))
    convs = [m for m in enc.modules() if isinstance(m, nn.Conv2d)]
    assert [c.stride for c in convs] == [(2, 2)] * halvings + [(1, 1)]
    assert [c.out_channels for c in convs] == [4 * 2**i for i in range(halvings)] + [10]
    dec = DCGANDecoder(channels=4, in_shape=(7,), out_shape=(1, size, size))
    ups = [m for m in dec.modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [c.out_channels for c in ups] == [4 * 2**i for i in reversed(range(halvings))] + [1]
    x = torch.rand(3, 1, size, size)
    assert enc(x).shape == (3, 10) and dec(torch.randn(3, 7)).shape == (3, 1, size, size)


def test_paper_scale_widths():
    """DCGAN-64 with nf = 64 and an encoding of 128 (C.2): 64-128-256-512 channels."""
    enc = build({"type": "dcgan_encoder"}, "conditioners", in_shape=(1, 64, 64), out_shape=(128,))
    assert [m.out_channels for m in enc.modules() if isinstance(m, nn.Conv2d)] == [64, 128, 256, 512, 128]


def test_init_and_output_ranges():
    enc = DCGANEncoder(channels=16, in_shape=(1, 32, 32), out_shape=(64,))
    weights = torch.cat([m.weight.flatten() for m in enc.modules() if isinstance(m, nn.Conv2d)])
    assert abs(weights.std().item() - 0.02) < 0.002 and abs(weights.mean().item()) < 0.002
    enc.eval()
    assert enc(torch.rand(4, 2, 1, 32, 32)).abs().max() <= 1  # tanh encoding
    dec = DCGANDecoder(channels=16, in_shape=(20,), out_shape=(1, 32, 32)).eval()
    out = dec(torch.randn(5, 20) * 10)
    assert out.min() >= 0 and out.max() <= 1  # sigmoid pixels
    default = DCGANEncoder(channels=16, init_std=None, in_shape=(1, 32, 32), out_shape=(64,))
    assert default.net[0].weight.std() > 0.1  # PyTorch's own init (fan-in 16)


def test_the_decoder_reads_one_vector_only():
    """No skip connections on Moving MNIST (srvp.txt C.2): forward takes the vector [y ; w] alone."""
    dec = DCGANDecoder(channels=2, in_shape=(3,), out_shape=(1, 8, 8))
    with pytest.raises(TypeError):
        dec(torch.randn(2, 3), [torch.randn(2, 2, 4, 4)])


def test_shape_errors():
    with pytest.raises(ShapeError, match="power of two"):
        DCGANEncoder(in_shape=(1, 48, 48), out_shape=(8,))
    with pytest.raises(ShapeError, match="power of two"):
        DCGANEncoder(in_shape=(1, 32, 16), out_shape=(8,))
    with pytest.raises(ShapeError, match="out_shape"):
        DCGANEncoder(in_shape=(1, 32, 32))
    with pytest.raises(ShapeError, match="out_shape"):
        DCGANDecoder(in_shape=(4,))
    with pytest.raises(ShapeError, match="in_shape"):
        DCGANDecoder(in_shape=(4, 2), out_shape=(1, 8, 8))
    with pytest.raises(ShapeError, match="DCGANEncoder"):
        DCGANEncoder(channels=2, in_shape=(1, 8, 8), out_shape=(3,))(torch.rand(2, 1, 16, 16))
