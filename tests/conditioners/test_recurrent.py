import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from eddies.conditioners import GRUConditioner, LSTMConditioner
from eddies.core import RecipeError, ShapeError, build, validate_spec
from eddies.core.testing import conditioner_cases_for_class


def _make(name, f, h, layers):
    torch.manual_seed(0)
    return build({"type": name, "hidden_size": h, "num_layers": layers}, "conditioners",
                 in_shape=(f,), out_shape=None).double()


@pytest.mark.parametrize("cls", [LSTMConditioner, GRUConditioner], ids=["lstm", "gru"])
@given(b=st.integers(1, 3), t=st.integers(1, 5), f=st.integers(1, 3), h=st.integers(1, 4),
       layers=st.integers(1, 2), seed=st.integers(0, 2**16))
def test_every_size_passes_the_conformance_kit(cls, b, t, f, h, layers, seed):
    # the kit (step API == teacher forcing, causality by Jacobian, scan then step, ...) over
    # drawn sizes, beyond the two registered examples
    example = {"config": {"hidden_size": h, "num_layers": layers}, "in_shape": (f,), "out_shape": None,
               "batch": (b, t)}
    conditioner_cases_for_class(cls, [example])[0].run(seed=seed)


def test_lstm_is_torch_lstm():
    # frmdn_mnist's numbers rest on this: teacher forcing is one torch.nn.LSTM call
    rnn = _make("lstm", 2, 3, 2)
    x = torch.randn(2, 5, 2, dtype=torch.float64)
    torch.testing.assert_close(rnn(x), rnn.rnn(x)[0], rtol=0, atol=0)
    state = rnn.initial_state(2)
    assert state[0].dtype == torch.float64 and state[0].shape == (2, 2, 3)


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
