"""The lift of motionflow_conditioner for inputs with 1 or 2 channels (motionflow.txt eq. 5).

PONO over C channels keeps nothing when C = 1 (its output is identically zero) and only a sign
when C = 2; the conditioner then runs eq. 5 in ``lift_channels`` channels and projects ``c3``
back to C. The first tests fail without the lift; the others pin what must not change.
"""

import pytest
import torch
import torch.nn.functional as F

from eddies.conditioners import MotionFlowConditioner, Ordering, ordering_ranks
from eddies.core import ShapeError, validate_spec


def _pono(c, eps=1e-5):
    """PONO by an independent route: layer norm over the channel axis, no affine."""
    return F.layer_norm(c.movedim(-3, -1), c.shape[-3:-2], eps=eps).movedim(-1, -3)


def _c1_part(cond, merge):
    """The output channels of ARN1 that reach u only through c1 (the first half in the product
    merge, where ``c1 = a[:L] * b[:L]``; all of ARN1 in the concat merge, where ``c1 = a``)."""
    out = cond.arn1[-1].output_shape()[0]
    return slice(0, out // 2) if merge == "product" else slice(0, out)


def _c1_sensitivity(cond, merge, x):
    """|d (r . u) / d delta| and |d (r . u) / d x|, delta added to ARN1's c1 channels (a hook)."""
    where = _c1_part(cond, merge)
    delta = torch.zeros((x.shape[0], *cond.arn1[-1].output_shape()), dtype=x.dtype)
    delta = delta[:, where].clone().requires_grad_(True)

    def hook(module, inputs, output):
        return torch.cat([output[:, where] + delta, output[:, where.stop:]], dim=1)

    handle = cond.arn1.register_forward_hook(hook)
    try:
        x = x.clone().requires_grad_(True)
        u = cond(x)
        r = torch.randn(u.shape, dtype=u.dtype, generator=torch.Generator().manual_seed(1))
        g_delta, g_x = torch.autograd.grad((r * u).sum(), (delta, x))
    finally:
        handle.remove()
    return g_delta.abs().max().item(), g_x.abs().max().item()


@pytest.mark.parametrize("merge", ["product", "concat"])
def test_one_channel_output_is_not_x_and_the_arns_get_gradients(merge):
    torch.manual_seed(0)
    cond = MotionFlowConditioner(channels=[8, 4], merge=merge, in_shape=(1, 5, 4)).double()
    x = torch.randn(3, 1, 5, 4, dtype=torch.float64)
    u = cond(x)
    assert u.shape == x.shape
    assert (u - x).abs().amax() > 1e-3  # without the lift PONO(c1) == 0, so u == x exactly
    (torch.randn_like(u) * u).sum().backward()
    for name, p in [*cond.arn1.named_parameters("arn1"), *cond.arn2.named_parameters("arn2")]:
        assert p.grad is not None and p.grad.abs().max() > 0, name


@pytest.mark.parametrize("merge", ["product", "concat"])
def test_two_channels_u_depends_on_c1_beyond_its_sign(merge):
    # Without the lift, PONO over c1's 2 channels is (d, -d) / sqrt(d^2 + eps) with d = c1[0] - c1[1]:
    # the sign of d, smoothed over |d| < sqrt(eps). With a tiny eps a small change of c1 then
    # moves u by almost nothing (ratio ~ 1e-4 here); with the lift as much as a change of x does.
    torch.manual_seed(0)
    cond = MotionFlowConditioner(channels=[8, 4], merge=merge, eps=1e-12, in_shape=(2, 5, 4)).double()
    x = torch.randn(3, 2, 5, 4, dtype=torch.float64)
    through_c1, through_x = _c1_sensitivity(cond, merge, x)
    assert through_c1 > 1e-2 * through_x, (through_c1, through_x)


@pytest.mark.parametrize("c", [1, 2])
@pytest.mark.parametrize("merge", ["product", "concat"])
def test_lifted_eq5(c, merge):
    cond = MotionFlowConditioner(channels=[4, 3], merge=merge, in_shape=(c, 4, 3)).double()
    assert cond.arn1[-1].output_shape()[0] == (8 if merge == "product" else 4)
    assert tuple(cond.projection.shape) == (c, 4)
    x = torch.randn(2, c, 4, 3, dtype=torch.float64)
    inputs = torch.cat([x, torch.ones(2, 1, 4, 3, dtype=torch.float64)], dim=1)  # x is not lifted
    a, b = cond.arn1(inputs), cond.arn2(inputs)
    c1, c2 = (a * b).chunk(2, dim=1) if merge == "product" else (a, b)
    c3 = _pono(c1) * torch.sigmoid(c2)
    expected = x + (cond.projection[None, :, :, None, None] * c3[:, None]).sum(2)
    torch.testing.assert_close(cond(x), expected)


def test_projection_starts_with_unit_rows():
    for c in (1, 2):
        p = MotionFlowConditioner(channels=[4], in_shape=(c, 3, 3)).projection.detach()
        torch.testing.assert_close(p @ p.T, torch.eye(c))


@pytest.mark.parametrize("c", [1, 2])
def test_lift_keeps_the_autoregressive_dependencies(c):
    h, w = 4, 3
    cond = MotionFlowConditioner(channels=[3, 3], in_shape=(c, h, w)).double()
    x = torch.randn(1, c, h, w, dtype=torch.float64)
    r1 = ordering_ranks(Ordering(curve="raster"), h, w).flatten()
    r2 = ordering_ranks(Ordering(curve="column_major"), h, w).flatten()
    jac = torch.func.jacrev(cond)(x)[0]  # (c, h, w, 1, c, h, w)
    dep = jac.abs().sum(dim=(0, 3, 4)).reshape(h * w, h * w) != 0
    allowed = (r1[None, :] < r1[:, None]) | (r2[None, :] < r2[:, None]) | torch.eye(h * w, dtype=torch.bool)
    assert not (dep & ~allowed).any()
    assert (dep & ~torch.eye(h * w, dtype=torch.bool)).any()  # c3 reads earlier positions
    assert dep.diagonal().all()


def test_three_channels_are_unchanged_unless_asked():
    cond = MotionFlowConditioner(channels=[4, 3], in_shape=(3, 4, 3))
    assert cond.projection is None
    shapes = {k: tuple(v.shape) for k, v in cond.state_dict().items()}
    assert all(k.startswith(("arn1.", "arn2.")) for k in shapes)
    assert cond.arn1[-1].output_shape()[0] == 6  # 2C, as before the lift existed
    x = torch.randn(2, 3, 4, 3)
    inputs = torch.cat([x, torch.ones(2, 1, 4, 3)], dim=1)
    c1, c2 = (cond.arn1(inputs) * cond.arn2(inputs)).chunk(2, dim=1)
    torch.testing.assert_close(cond(x), x + _pono(c1) * torch.sigmoid(c2))

    always = MotionFlowConditioner(channels=[4, 3], lift="always", lift_channels=5, in_shape=(3, 4, 3))
    assert tuple(always.projection.shape) == (3, 5) and always.arn1[-1].output_shape()[0] == 10
    assert always(x).shape == x.shape


def test_lift_settings_are_checked():
    with pytest.raises(ShapeError, match="lift_channels must be >= 3"):
        MotionFlowConditioner(lift_channels=2, in_shape=(1, 4, 4))
    with pytest.raises(Exception, match="lift_channels"):
        validate_spec({"type": "motionflow_conditioner", "lift_channels": 2}, "conditioners")
    with pytest.raises(Exception, match="lift"):
        validate_spec({"type": "motionflow_conditioner", "lift": "sometimes"}, "conditioners")
