import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from eddies.conditioners import PONO, MotionFlowConditioner, Ordering, ordering_ranks
from eddies.core import ShapeError


def _layer_norm_over_channels(x, eps):
    return F.layer_norm(x.movedim(-3, -1), x.shape[-3:-2], eps=eps).movedim(-1, -3)


@given(c=st.integers(1, 4), h=st.integers(1, 3), w=st.integers(1, 3), eps=st.sampled_from([1e-5, 1e-2]))
def test_pono_matches_layer_norm_over_channels(c, h, w, eps):
    x = torch.randn(2, c, h, w, dtype=torch.float64) * 3 + 1
    torch.testing.assert_close(PONO(eps=eps, in_shape=(c, h, w))(x), _layer_norm_over_channels(x, eps))


@pytest.mark.parametrize("merge", ["product", "concat"])
def test_eq5_merge(merge):
    cond = MotionFlowConditioner(channels=[4, 3], merge=merge, in_shape=(3, 4, 3)).double()
    x = torch.randn(3, 3, 4, 3, dtype=torch.float64)
    inputs = torch.cat([x, torch.ones(3, 1, 4, 3, dtype=torch.float64)], dim=1)
    a, b = cond.arn1(inputs), cond.arn2(inputs)
    c1, c2 = (a * b).chunk(2, dim=1) if merge == "product" else (a, b)
    assert c1.shape == x.shape
    expected = x + _layer_norm_over_channels(c1, 1e-5) * torch.sigmoid(c2)
    torch.testing.assert_close(cond(x), expected)


def test_table1_layers_and_mocap_shape():
    cond = MotionFlowConditioner(in_shape=(3, 25, 24))
    convs = [m for m in cond.arn1 if hasattr(m, "mask_type")]
    assert [(m.output_shape()[0], m.mask_type, m.dilation) for m in convs] == [
        (32, "A", 1), (16, "B", 1), (6, "B", 2)]
    assert convs[0].in_shape[0] == 4  # 3 coordinates + the ones channel
    assert cond(torch.randn(2, 3, 25, 24)).shape == (2, 3, 25, 24)


def test_arns_are_autoregressive_and_u_sees_only_earlier_inputs():
    h, w = 4, 3
    cond = MotionFlowConditioner(channels=[3, 3], in_shape=(2, h, w)).double()
    x = torch.randn(1, 2, h, w, dtype=torch.float64)
    r1 = ordering_ranks(Ordering(curve="raster"), h, w).flatten()
    r2 = ordering_ranks(Ordering(curve="column_major"), h, w).flatten()

    def dependencies(fn):
        jac = torch.func.jacrev(fn)(x)[0]
        return jac.abs().sum(dim=(0, 3, 4)).reshape(h * w, h * w) != 0

    ones = torch.ones(1, 1, h, w, dtype=torch.float64)
    dep1 = dependencies(lambda v: cond.arn1(torch.cat([v, ones], 1)))
    assert not (dep1 & (r1[None, :] >= r1[:, None])).any()  # strictly earlier in ARN1's order
    assert dep1.any()
    dep = dependencies(cond)
    allowed = (r1[None, :] < r1[:, None]) | (r2[None, :] < r2[:, None]) | torch.eye(h * w, dtype=torch.bool)
    assert not (dep & ~allowed).any()
    assert dep.diagonal().all()  # the residual x in u = x + c3


def test_errors():
    with pytest.raises(ShapeError, match="eq. 5 adds to x"):
        MotionFlowConditioner(in_shape=(3, 4, 4), out_shape=(6, 4, 4))


def test_unmasked_arns_are_plain_convolutions_that_see_later_positions():
    """masked: false (table 7's ablation "A"): the ARNs hold nn.Conv2d layers of the masked stack's
    sizes, and u at the first position depends on later ones (a masked ARN's never does)."""
    masked = MotionFlowConditioner(channels=[4, 3], in_shape=(3, 4, 3)).double()
    plain = MotionFlowConditioner(channels=[4, 3], masked=False, in_shape=(3, 4, 3)).double()
    convs = [m for m in plain.arn1 if isinstance(m, torch.nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.dilation) for m in convs] == [(4, 4, (1, 1)), (4, 3, (1, 1)), (3, 6, (2, 2))]
    assert sum(p.numel() for p in plain.parameters()) == sum(p.numel() for p in masked.parameters())
    x = torch.randn(1, 3, 4, 3, dtype=torch.float64, requires_grad=True)
    for cond, sees_later in ((masked, False), (plain, True)):
        (grad,) = torch.autograd.grad(cond(x)[0, :, 0, 0].sum(), x)
        later = grad[0].clone()
        later[:, 0, 0] = 0  # the first position itself (u = x + ...)
        assert (later.abs().sum() > 0) == sees_later
