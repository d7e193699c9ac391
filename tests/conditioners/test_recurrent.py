import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from eddies.core import RecipeError, ShapeError, build, validate_spec


def _make(name, f, h, layers):
    torch.manual_seed(0)
    return build({"type": name, "hidden_size": h, "num_layers": layers}, "conditioners",
                 in_shape=(f,), out_shape=None).double()


@pytest.mark.parametrize("name", ["lstm", "gru"])
@given(b=st.integers(1, 3), t=st.integers(1, 5), f=st.integers(1, 3), h=st.integers(1, 4),
       layers=st.integers(1, 2), cut=st.integers(0, 4))
def test_teacher_forcing_equals_steps_and_is_causal(name, b, t, f, h, layers, cut):
    rnn = _make(name, f, h, layers)
    assert rnn.output_shape() == (h,)
    x = torch.randn(b, t, f, dtype=torch.float64)
    forced = rnn(x)
    assert forced.shape == (b, t, h)
    state = rnn.initial_state(b, x.device, x.dtype)
    for i in range(t):
        out, state = rnn.step(x[:, i], state)
        torch.testing.assert_close(out, forced[:, i])
    # outputs up to `cut` do not change when later inputs do
    cut = min(cut, t - 1)
    x2 = x.clone()
    x2[:, cut + 1:] = torch.randn_like(x2[:, cut + 1:])
    torch.testing.assert_close(rnn(x2)[:, : cut + 1], forced[:, : cut + 1])


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_jacobian_is_block_lower_triangular(name):
    rnn = _make(name, 2, 3, 2)
    x = torch.randn(1, 4, 2, dtype=torch.float64)
    jac = torch.func.jacrev(lambda v: rnn(v))(x)[0, :, :, 0]  # (T, H, T, F)
    for t_out in range(4):
        for t_in in range(4):
            block = jac[t_out, :, t_in]
            assert (block.abs().max() == 0) == (t_in > t_out)


@pytest.mark.parametrize("name", ["lstm", "gru"])
def test_scan_continues_with_step(name):
    rnn = _make(name, 2, 3, 1)
    x = torch.randn(2, 5, 2, dtype=torch.float64)
    _, state = rnn.scan(x[:, :3])
    out, _ = rnn.step(x[:, 3], state)
    torch.testing.assert_close(out, rnn(x)[:, 3])


def test_errors():
    rnn = _make("lstm", 2, 3, 1)
    with pytest.raises(ShapeError, match=r"inputs must have shape \(batch, time, 2\)"):
        rnn(torch.randn(4, 2, dtype=torch.float64))
    with pytest.raises(ShapeError, match=r"step input must have shape \(batch, 2\)"):
        rnn.step(torch.randn(4, 1, 2, dtype=torch.float64), rnn.initial_state(4))
    with pytest.raises(ShapeError, match="out_shape"):
        build({"type": "gru", "hidden_size": 3}, "conditioners", in_shape=(2,), out_shape=(4,))
    with pytest.raises(RecipeError, match="num_layers >= 2"):
        validate_spec({"type": "lstm", "dropout": 0.1}, "conditioners")
