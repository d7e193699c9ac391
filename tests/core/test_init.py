"""zero_init_: a zero-initialised last layer makes its network output exactly its input's zero map."""

import torch
from torch import nn

from eddies.core.init import zero_init_


def test_zero_init_zeroes_weight_and_bias_and_returns_the_layer():
    linear = nn.Linear(3, 4)
    assert zero_init_(linear) is linear
    assert torch.count_nonzero(linear(torch.randn(5, 3))) == 0
    conv = zero_init_(nn.Conv2d(2, 2, 3, bias=False))
    assert torch.count_nonzero(conv.weight) == 0 and conv.bias is None
