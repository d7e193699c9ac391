import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from eddies.conditioners import CGlowFeatureNet, CGlowVectorNet, ConvStack, resize_conv
from eddies.core import RecipeError, ShapeError, validate_spec


def test_glow_coupling_net_defaults():
    spec = validate_spec({"type": "cnn"}, "conditioners")
    assert spec.config.channels == [512, 512] and spec.config.kernel_sizes == [3, 1, 3]
    net = ConvStack(channels=[6, 6], in_shape=(2, 5, 5), out_shape=(4, 5, 5))
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.kernel_size for c in convs] == [(3, 3), (1, 1), (3, 3)]
    assert convs[0].bias is None  # actnorm provides the bias, as in Glow
    assert torch.equal(net(torch.randn(3, 2, 5, 5)), torch.zeros(3, 4, 5, 5))


def test_actnorm_initialises_from_first_batch_and_keeps_it():
    net = ConvStack(channels=[5], kernel_sizes=[3, 3], zero_init_last=False, in_shape=(2, 6, 6))
    feats = []
    net.hidden[1].register_forward_hook(lambda m, i, o: feats.append(o))
    net.train()
    net(torch.randn(4, 2, 6, 6) * 3 + 1)
    torch.testing.assert_close(feats[0].mean(dim=(0, 2, 3)), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(feats[0].std(dim=(0, 2, 3), unbiased=False), torch.ones(5), atol=1e-4, rtol=0)
    state = net.state_dict()
    assert bool(state["hidden.1.initialized"])
    bias = net.hidden[1].bias.detach().clone()
    net(torch.randn(4, 2, 6, 6))
    assert torch.equal(net.hidden[1].bias, bias)


def test_logscale_factor_scales_the_zero_conv():
    net = ConvStack(channels=[3], kernel_sizes=[1, 1], norm="none", in_shape=(2, 3, 3)).double()
    torch.nn.init.normal_(net.last.weight)
    x = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    base = net(x)
    with torch.no_grad():
        net.logs.fill_(0.1)
    torch.testing.assert_close(net(x), base * torch.exp(torch.tensor(0.3, dtype=torch.float64)))


def test_receptive_field_of_3_1_3_stack():
    # linear (no activation, no norm), so every tap of the receptive field shows in the Jacobian
    net = ConvStack(channels=[2, 2], norm="none", activation="none", zero_init_last=False,
                    in_shape=(1, 7, 7)).double()
    jac = torch.func.jacrev(net)(torch.randn(1, 1, 7, 7, dtype=torch.float64))[0, 0, 3, 3, 0, 0]
    window = torch.zeros(7, 7, dtype=torch.bool)
    window[1:6, 1:6] = True  # exactly the 5x5 window around (3, 3)
    assert torch.equal(jac.abs() > 0, window)


@given(h_out=st.integers(1, 4), w_out=st.integers(1, 4), sh=st.integers(1, 4), sw=st.integers(1, 4),
       pad=st.integers(0, 2))
def test_resize_conv_hits_the_requested_size(h_out, w_out, sh, sw, pad):
    conv = resize_conv(1, 2, (h_out * sh, w_out * sw), (h_out, w_out), padding=pad)
    assert conv.stride == (sh, sw) and conv.kernel_size == (2 * pad + sh, 2 * pad + sw)
    assert conv(torch.randn(1, 1, h_out * sh, w_out * sw)).shape == (1, 2, h_out, w_out)


def test_cglow_vector_net_is_zero_at_start_and_learns_an_x_dependent_map():
    # seeded: with PyTorch's default init, 3 seeds in 200 leave every ReLU of the width-8 layer dead
    # on both compared rows, so their outputs tie whatever the last layer holds
    torch.manual_seed(0)
    cn = CGlowVectorNet(channels=3, width=8, in_shape=(2, 8, 8), out_shape=(4, 4)).double()
    x = torch.randn(5, 2, 8, 8, dtype=torch.float64)
    assert torch.equal(cn(x), torch.zeros(5, 4, 4, dtype=torch.float64))
    loss = (cn(x) - torch.randn(5, 4, 4, dtype=torch.float64)).square().sum()
    loss.backward()
    assert cn.last.weight.grad.abs().sum() > 0
    with torch.no_grad():
        cn.last.weight.normal_()
    y = cn(x)
    assert (y[0] - y[1]).abs().max() > 0
    convs = [m for m in cn.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 3 and convs[0].stride == (1, 1)  # default resolution 8x8: stride 8/8


def test_cglow_feature_net_reaches_each_level():
    for level in range(3):
        size = 16 // 2**level
        cn = CGlowFeatureNet(in_shape=(3, 16, 16), out_shape=(4 * 2**level, size, size))
        assert cn(torch.randn(2, 3, 16, 16)).shape == (2, 4 * 2**level, size, size)


def test_errors():
    with pytest.raises(ShapeError, match="keeps the resolution"):
        ConvStack(in_shape=(2, 4, 4), out_shape=(2, 2, 2))
    with pytest.raises(ShapeError, match=r"input size \(6, 6\) to be a multiple of the output size \(4, 4\)"):
        CGlowFeatureNet(in_shape=(1, 6, 6), out_shape=(2, 4, 4))
    with pytest.raises(RecipeError, match="kernel_sizes needs"):
        validate_spec({"type": "cnn", "channels": [4]}, "conditioners")
    net = ConvStack(channels=[2], kernel_sizes=[3, 3], in_shape=(2, 4, 4))
    with pytest.raises(ShapeError, match=r"ConvStack: input must have shape \(\*batch, 2, 4, 4\)"):
        net(torch.randn(1, 3, 4, 4))
