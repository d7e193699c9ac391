import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from eddies.conditioners import MLP
from eddies.core import RecipeError, ShapeError, build, validate_spec


def _manual(net: MLP, x, act, out_act, residual=False):
    h = x
    for layer in net.hidden:
        lin = layer[0]
        out = act(h @ lin.weight.T + lin.bias)
        h = out + h if residual and out.shape == h.shape else out
    return out_act(h @ net.last.weight.T + net.last.bias)


def test_frmdn_s_and_t_nets_as_specs():
    # frmdn.txt 3.2: s is two layers, LeakyReLU then Tanh; t the same without the Tanh.
    s = build({"type": "mlp", "hidden": [7], "activation": "leaky_relu", "output_activation": "tanh"},
              "conditioners", in_shape=(3,), out_shape=(2,)).double()
    t = build({"type": "mlp", "hidden": [7], "activation": "leaky_relu"},
              "conditioners", in_shape=(3,), out_shape=(2,)).double()
    x = torch.randn(5, 3, dtype=torch.float64) * 3
    lrelu = torch.nn.functional.leaky_relu
    torch.testing.assert_close(s(x), _manual(s, x, lrelu, torch.tanh))
    torch.testing.assert_close(t(x), _manual(t, x, lrelu, lambda v: v))
    assert len(s.hidden) == 1 and s(x).abs().max() < 1


def test_residual_adds_input_where_widths_agree():
    net = MLP(hidden=[4, 4, 3], residual=True, activation="tanh", in_shape=(4,), out_shape=(2,)).double()
    x = torch.randn(6, 4, dtype=torch.float64)
    torch.testing.assert_close(net(x), _manual(net, x, torch.tanh, lambda v: v, residual=True))
    plain = _manual(net, x, torch.tanh, lambda v: v, residual=False)
    assert not torch.allclose(net(x), plain)


def test_zero_init_last_and_dropout():
    net = MLP(hidden=[8], zero_init_last=True, dropout=0.5, in_shape=(3,), out_shape=(4,))
    assert torch.equal(net(torch.randn(2, 3)), torch.zeros(2, 4))
    net = MLP(hidden=[64], dropout=0.5, in_shape=(3,), out_shape=(4,))
    x = torch.randn(1, 3).expand(200, 3)
    net.train()
    assert net(x).std(dim=0).max() > 0  # dropout masks differ between rows
    net.eval()
    assert net(x).std(dim=0).max() == 0


@given(
    lead=st.lists(st.integers(1, 3), min_size=1, max_size=3),
    f=st.integers(1, 4), g=st.integers(1, 4),
    hidden=st.lists(st.integers(1, 5), max_size=3),
)
def test_last_axis_and_rows_independent(lead, f, g, hidden):
    net = MLP(hidden=hidden, in_shape=(f,), out_shape=(g,)).double()
    x = torch.randn(*lead, f, dtype=torch.float64)
    y = net(x)
    assert y.shape == (*lead, *net.output_shape())
    torch.testing.assert_close(y.reshape(-1, g), net(x.reshape(-1, f)))


def test_errors_name_the_problem():
    net = MLP(in_shape=(3,), out_shape=(2,))
    with pytest.raises(ShapeError, match=r"MLP: input must have shape \(\*batch, 3\), got \(2, 4\)"):
        net(torch.randn(2, 4))
    with pytest.raises(ShapeError, match="out_shape must be given"):
        MLP(in_shape=(3,))
    with pytest.raises(RecipeError, match="activation"):
        validate_spec({"type": "mlp", "activation": "relux"}, "conditioners")
