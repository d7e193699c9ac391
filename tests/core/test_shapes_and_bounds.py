"""The one context check (eddies.core.shapes) and the one soft bound (eddies.core.bounds), used
by bijections, priors and the flows' ``exp_clamp``."""

from __future__ import annotations

import doctest

import pytest
import torch

import eddies.core.bounds
import eddies.core.shapes
from eddies.core import Bijection, ShapeError, build, soft_bound
from eddies.core.shapes import check_context


@pytest.mark.parametrize("module", [eddies.core.shapes, eddies.core.bounds])
def test_docstring_examples(module):
    assert doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE).failed == 0


def test_soft_bound_is_bounded_identity_near_zero_and_has_gradients():
    x = torch.tensor([-1e6, -1.0, 0.0, 1e-4, 3.0, 1e6], dtype=torch.float64, requires_grad=True)
    y = soft_bound(x, 2.5)
    assert (y.abs() <= 2.5).all() and y[2] == 0
    torch.testing.assert_close(y, 2.5 * torch.tanh(x / 2.5))
    torch.testing.assert_close(y[3], x[3], rtol=1e-8, atol=0)
    y.sum().backward()
    assert (x.grad[1:5] > 0).all()


def test_flows_exp_clamp_and_priors_log_scales_are_the_soft_bound():
    pytest.importorskip("eddies.flows")
    from eddies.flows._util import log_scale

    h = torch.randn(4, 5, dtype=torch.float64) * 4
    assert torch.equal(log_scale(h, "exp_clamp", 3.0), 3.0 * torch.tanh(h / 3.0))
    prior = build({"type": "diag_gaussian", "log_scale_bound": 2.0}, "priors", shape=(5,)).double()
    with torch.no_grad():
        prior.log_scale.copy_(h[0])
    assert torch.equal(prior.parameters_for(None)[1], soft_bound(h[0], 2.0))


class Conditional(Bijection):
    def forward(self, x, context=None):
        self.check_context(context, x.shape[0])
        return x, x.new_zeros(x.shape[0])


@pytest.mark.parametrize(
    ("context_shape", "context", "message"),
    [
        (None, torch.zeros(4, 3), r"Conditional is unconditional but received a context of shape \(4, 3\)"),
        ((3,), None, r"Conditional is conditional and needs a context of shape \(batch, 3\)"),
        ((3,), torch.zeros(4, 2), r"Conditional: context must have shape \(batch, 3\), got \(4, 2\)"),
        ((3,), torch.zeros(4, 1, 3), r"Conditional: context must have shape \(batch, 3\), got \(4, 1, 3\)"),
        ((3,), torch.zeros(5, 3), r"Conditional: context batch axes \(5,\) differ from the input's \(4,\)"),
    ],
)
def test_bijection_context_errors(context_shape, context, message):
    layer = Conditional((2,), context_shape)
    with pytest.raises(ShapeError, match=message):
        layer(torch.zeros(4, 2), context)


def test_bijection_context_passes():
    Conditional((2,), (3,))(torch.zeros(4, 2), torch.zeros(4, 3))
    Conditional((2,), None)(torch.zeros(4, 2))


def test_any_number_of_batch_axes_for_priors():
    assert check_context("prior", torch.zeros(2, 5, 3), (3,), batch=(2, 5)) == (2, 5)
    assert check_context("prior", None, None) is None
    with pytest.raises(ShapeError, match=r"prior: context batch axes \(2, 5\) differ from the z's \(2,\)"):
        check_context("prior", torch.zeros(2, 5, 3), (3,), batch=(2,), what="z")
    with pytest.raises(ShapeError, match=r"needs a context of shape \(\*batch, 3\)"):
        check_context("prior", None, (3,))
