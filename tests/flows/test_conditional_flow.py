"""The conditional_flow model kind (c-Glow, cglow.txt eqs. 1-4)."""

import pytest
import torch
from torch.distributions import Normal

from eddies.core import DataSpec, ShapeError, build
from eddies.core.testing import perturb

STEP = {"type": "glow_step", "actnorm": {"type": "cond_actnorm", "net": {"type": "mlp", "hidden": [8]}},
        "coupling": {"type": "cond_affine_coupling", "net": {"type": "mlp", "hidden": [8]}}}


def model(data, **fields):
    torch.manual_seed(0)
    m = build({"type": "conditional_flow", "flow": {"type": "chain", "layers": [STEP, "reverse", STEP]}, **fields},
              "models", data=data).double()
    perturb(m, 0, 0.3)
    return m


def test_log_prob_is_the_change_of_variables_with_a_standard_normal():
    m = model(DataSpec(shapes={"y": (3,), "x": (2,)}))
    batch = {"y": torch.randn(4, 3, dtype=torch.float64), "x": torch.randn(4, 2, dtype=torch.float64)}
    z, logdet = m.flow(batch["y"], batch["x"])
    assert torch.allclose(m.log_prob(batch), Normal(0.0, 1.0).log_prob(z).sum(1) + logdet)
    assert m.loss(batch)["loss"].shape == ()


def test_predict_averages_samples_as_eq_4():
    m = model(DataSpec(shapes={"y": (3,), "x": (2,)}), samples=5)
    batch = {"y": torch.zeros(4, 3, dtype=torch.float64), "x": torch.randn(4, 2, dtype=torch.float64)}
    torch.manual_seed(1)
    draws = torch.stack([m.sample(batch, temperature=0.7) for _ in range(5)])
    torch.manual_seed(1)
    assert torch.allclose(m.predict(batch, temperature=0.7), draws.mean(0))
    mode = m.flow.inverse(torch.zeros(4, 3, dtype=torch.float64), batch["x"])[0]
    assert torch.allclose(m.predict(batch, temperature=0.0), mode)  # temperature 0: g_x(0)


def test_the_condition_shape_is_checked():
    m = model(DataSpec(shapes={"y": (3,), "x": (2,)}))
    with pytest.raises(ShapeError, match=r"condition 'x' must have shape \(4, 2\), got \(4, 5\)"):
        m.log_prob({"y": torch.randn(4, 3, dtype=torch.float64), "x": torch.randn(4, 5, dtype=torch.float64)})


def test_without_a_condition_it_is_an_unconditional_flow():
    m = build({"type": "conditional_flow", "flow": {"type": "chain", "layers": ["actnorm", "reverse"]}},
              "models", data=DataSpec(shapes={"y": (3,)}, condition=None))
    y = torch.randn(6, 3)
    assert m.log_prob({"y": y}).shape == (6,)
    assert m.sample({"y": y}).shape == (6, 3)
