"""Layer-specific mathematics, against independent references (float64, tiny shapes)."""

import math

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.distributions import Normal
from torch.func import jacrev

from eddies.core import InputOutsideDomain, RecipeError, ShapeError, build, validate_spec
from eddies.core.testing import perturb
from eddies.flows.chain import run_forward


@pytest.fixture(autouse=True)
def _float64():
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(previous)

MLP = {"type": "mlp", "hidden": [8]}
CNN = {"type": "cnn", "channels": [4], "kernel_sizes": [3, 3], "norm": "none"}


def flow(spec, shape, context_shape=None, seed=0):
    torch.manual_seed(seed)
    return build(spec, "flows", shape=shape, context_shape=context_shape).double()


# actnorm ---------------------------------------------------------------------------------------
def test_actnorm_initialises_from_the_first_batch_only():
    layer = flow("actnorm", (3, 2, 2))
    x = torch.randn(16, 3, 2, 2) * torch.tensor([1.0, 5.0, 0.1])[:, None, None] + 3
    z, logdet = layer(x)
    assert torch.allclose(z.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-10)
    assert torch.allclose(z.std(dim=(0, 2, 3), unbiased=False), torch.ones(3), atol=1e-5)
    assert torch.allclose(logdet, 4 * layer.log_scale.sum().expand(16))
    before = layer.log_scale.detach().clone()
    layer(torch.randn(16, 3, 2, 2) * 100)
    assert torch.equal(layer.log_scale.detach(), before)


def test_actnorm_does_not_reinitialise_after_loading(tmp_path):
    layer = flow("actnorm", (4,))
    layer(torch.randn(32, 4) * 3 + 1)
    save_file({k: v.contiguous() for k, v in layer.state_dict().items()}, str(tmp_path / "a.safetensors"))
    fresh = flow("actnorm", (4,))
    fresh.load_state_dict(load_file(str(tmp_path / "a.safetensors")))
    x = torch.randn(5, 4) * 50
    assert torch.equal(fresh(x)[0], layer(x)[0])


# invertible 1x1 convolution -----------------------------------------------------------------------
def test_lu_logdet_is_the_log_determinant_of_the_assembled_weight():
    layer = flow("invconv1x1", (5, 3, 2))
    perturb(layer, 1, 0.3)
    w, logdet = layer._weight_logdet()
    assert torch.allclose(logdet, torch.linalg.slogdet(w).logabsdet, atol=1e-12)
    x = torch.randn(2, 5, 3, 2)
    z, ld = layer(x)
    assert torch.allclose(z, torch.einsum("ij,bjhw->bihw", w, x))
    assert torch.allclose(ld, 6 * logdet.expand(2))


def test_invconv_on_vectors_equals_images_of_one_pixel():
    layer = flow("invconv1x1", (4,))
    image = flow("invconv1x1", (4, 1, 1))
    image.load_state_dict(layer.state_dict())
    x = torch.randn(3, 4)
    assert torch.allclose(layer(x)[0], image(x[:, :, None, None])[0][:, :, 0, 0])


def test_lu_inverse_is_accurate_in_float32():
    torch.manual_seed(0)
    layer = build("invconv1x1", "flows", shape=(64, 2, 2), context_shape=None).float()
    perturb(layer, 0, 0.05)
    x = torch.randn(4, 64, 2, 2, dtype=torch.float32)
    assert (layer.inverse(layer(x)[0])[0] - x).abs().max() < 1e-4


def test_cond_invconv_predicts_c_squared_values_and_stays_invertible():
    layer = flow({"type": "cond_invconv1x1", "net": MLP}, (3, 2, 2), (4,))
    assert layer.net.output_shape() == (9,)
    perturb(layer, 0, 0.5)  # a raw predicted W could be singular, one from LU factors cannot
    x, c = torch.randn(5, 3, 2, 2), torch.randn(5, 4)
    z, logdet = layer(x, c)
    assert torch.isfinite(logdet).all()
    assert torch.allclose(layer.inverse(z, c)[0], x, atol=1e-8)


# couplings ------------------------------------------------------------------------------------
def test_a_new_coupling_is_the_identity():
    for spec in ({"type": "affine_coupling", "net": MLP}, {"type": "affine_coupling", "scale_net": MLP,
                                                           "shift_net": MLP}):
        layer = flow(spec, (4,))
        x = torch.randn(3, 4)
        z, logdet = layer(x)
        assert torch.equal(z, x) and torch.equal(logdet, torch.zeros(3))


def test_sigmoid_scale_starts_at_glows_sigmoid_of_two():
    layer = flow({"type": "affine_coupling", "net": MLP, "scale": "sigmoid"}, (4,))
    x = torch.randn(3, 4)
    z, logdet = layer(x)
    assert torch.allclose(z[:, 2:], x[:, 2:] * torch.sigmoid(torch.tensor(2.0)))
    assert torch.allclose(logdet, 2 * torch.nn.functional.logsigmoid(torch.tensor(2.0)).expand(3))


def test_frmdn_coupling_with_separate_scale_and_shift_nets():
    s_net = {"type": "mlp", "hidden": [8], "activation": "leaky_relu", "output_activation": "tanh"}
    t_net = {"type": "mlp", "hidden": [8], "activation": "leaky_relu"}
    layer = flow({"type": "affine_coupling", "scale_net": s_net, "shift_net": t_net, "scale": "exp"}, (5,))
    perturb(layer, 0, 0.5)
    x = torch.randn(4, 5)
    z, logdet = layer(x)
    s, t = layer.scale_net(x[:, :2]), layer.shift_net(x[:, :2])  # frmdn.txt section 3.2
    assert torch.equal(z[:, :2], x[:, :2])
    assert torch.allclose(z[:, 2:], x[:, 2:] * torch.exp(s) + t)
    assert torch.allclose(logdet, s.sum(1))
    assert s.abs().max() < 1  # the Tanh output layer bounds the log-scale


def test_coupling_config_needs_both_separate_nets():
    with pytest.raises(RecipeError, match="scale_net and shift_net"):
        validate_spec({"type": "affine_coupling", "scale_net": MLP}, "flows")


def test_checkerboard_and_alternate_masks_keep_the_conditioning_entries():
    layer = flow({"type": "affine_coupling", "mask": "checkerboard", "net": CNN}, (2, 4, 4))
    perturb(layer, 0, 0.5)
    x = torch.randn(3, 2, 4, 4)
    z, _ = layer(x)
    kept = ((torch.arange(4)[:, None] + torch.arange(4)) % 2 == 0).expand(3, 2, 4, 4)
    assert torch.equal(z[kept], x[kept]) and not torch.allclose(z[~kept], x[~kept])
    layer = flow({"type": "additive_coupling", "mask": "alternate", "flip": True, "net": MLP}, (5,))
    perturb(layer, 0, 0.5)
    x = torch.randn(3, 5)
    z, _ = layer(x)
    assert torch.equal(z[:, 1::2], x[:, 1::2]) and not torch.allclose(z[:, 0::2], x[:, 0::2])


def test_cond_affine_coupling_concatenates_cn_features_with_the_kept_half():
    spec = {"type": "cond_affine_coupling", "net": CNN, "context_net": {"type": "cglow_features", "channels": 3},
            "context_features": 5}
    layer = flow(spec, (2, 4, 4), (3, 8, 8))
    assert layer.net.in_shape == (1 + 5, 4, 4)
    with pytest.raises(ShapeError, match="needs a context_shape"):
        flow(spec, (2, 4, 4), None)


# reshaping and elementwise layers -----------------------------------------------------------------
def test_squeeze_moves_2x2_blocks_to_channels():
    x = torch.randn(2, 3, 4, 6)
    z, _ = flow("squeeze", (3, 4, 6))(x)
    assert z.shape == (2, 12, 2, 3)
    c, i, j, h, w = 1, 1, 0, 1, 2
    assert z[0, c * 4 + i * 2 + j, h, w] == x[0, c, 2 * h + i, 2 * w + j]
    with pytest.raises(ShapeError, match=r"even H and W, got \(3, 5, 6\)"):
        flow("squeeze", (3, 5, 6))


def test_logit_logdet_is_the_exact_derivative_and_the_domain_is_checked():
    alpha = 0.05
    layer = flow({"type": "logit", "alpha": alpha}, (3,))
    x = torch.tensor([[0.0, 0.3, 1.0]])
    z, logdet = layer(x)
    y = alpha + (1 - 2 * alpha) * x
    assert torch.allclose(z, torch.log(y / (1 - y)))
    assert torch.allclose(logdet, torch.log((1 - 2 * alpha) / (y * (1 - y))).sum(1))
    with pytest.raises(InputOutsideDomain, match=r"\[0, 1\].*1\.2"):
        layer(torch.tensor([[0.5, 1.2, 0.1]]))


def test_shape_errors_name_the_layer_and_both_shapes():
    with pytest.raises(ShapeError, match=r"Coupling: input must have shape \(batch, 4\), got \(2, 5\)"):
        flow({"type": "affine_coupling", "net": MLP}, (4,))(torch.randn(2, 5))
    with pytest.raises(ShapeError, match="CondActNorm is conditional and needs a context of shape"):
        flow({"type": "cond_actnorm", "net": MLP}, (3,), (2,))(torch.randn(2, 3))


# MAF ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("order", ["natural", "reversed", "random"])
def test_maf_jacobian_is_triangular_in_its_ordering(order):
    layer = flow({"type": "maf", "hidden": [16, 16], "order": order, "seed": 2}, (5,))
    perturb(layer, 0, 0.5)
    x = torch.randn(5)
    jac = jacrev(lambda v: layer(v[None])[0][0])(x)
    rank = layer.ranks
    later_or_same = rank[None, :] >= rank[:, None]  # input j not strictly before output i
    off_diagonal = later_or_same & ~torch.eye(5, dtype=torch.bool)
    assert jac[off_diagonal].abs().max() == 0
    assert jac[~later_or_same].abs().max() > 0


# multi-scale: Glow's likelihood ---------------------------------------------------------------------
def test_multiscale_with_a_standard_normal_equals_glows_split_prior_likelihood():
    step = {"type": "glow_step", "coupling": {"type": "affine_coupling", "net": CNN}}
    layer = flow({"type": "multiscale", "levels": 2, "steps": 2, "step": step}, (2, 4, 4))
    x = torch.randn(3, 2, 4, 4)
    layer(x)  # actnorm initialisation
    perturb(layer, 0, 0.2)
    z, logdet = layer(x)
    ours = Normal(0.0, 1.0).log_prob(z).sum(1) + logdet
    # Glow: factor out v2 scored by N(v2; mean(v1), exp(log_std(v1))), the rest continues.
    h, ld = run_forward(layer.levels[0], x, None)
    split = layer.splits[0]
    v1, v2 = h[:, :4], h[:, 4:]
    out = split.net(v1)
    mean, log_std = out[:, 0::2], out[:, 1::2]
    glow = Normal(mean, log_std.exp()).log_prob(v2).flatten(1).sum(1)
    h, ld2 = run_forward(layer.levels[1], v1, None)
    glow = glow + Normal(0.0, 1.0).log_prob(h).flatten(1).sum(1) + ld + ld2
    assert torch.allclose(ours, glow, atol=1e-10)
    assert z.shape == (3, 32) and layer.out_shape == (32,)


def test_cglow_k8_l3_is_one_spec():
    step = {"type": "glow_step", "actnorm": {"type": "cond_actnorm", "net": {"type": "cglow_vector", "channels": 2,
                                                                             "width": 8}},
            "invconv": {"type": "cond_invconv1x1", "net": {"type": "cglow_vector", "channels": 2, "width": 8}},
            "coupling": {"type": "cond_affine_coupling", "net": {**CNN, "channels": [8]},
                         "context_net": {"type": "cglow_features", "channels": 4}, "context_features": 4}}
    layer = flow({"type": "multiscale", "levels": 3, "steps": 8, "step": step}, (1, 8, 8), (3, 8, 8))
    assert layer.context_shape == (3, 8, 8)
    assert sum(1 for m in layer.modules() if type(m).__name__ == "GlowStep") == 24
    perturb(layer, 0, 0.05)
    x, c = torch.randn(2, 1, 8, 8), torch.randn(2, 3, 8, 8)
    z, logdet = layer(x, c)
    back, inv = layer.inverse(z, c)
    assert torch.allclose(back, x, atol=1e-8) and torch.allclose(inv, -logdet)
    assert not torch.allclose(layer(x, torch.randn(2, 3, 8, 8))[0], z)


def test_chain_threads_shapes_and_passes_context_only_to_conditional_layers():
    layer = flow({"type": "chain", "layers": ["squeeze", "reverse", {"type": "cond_actnorm", "net": MLP}]},
                 (1, 4, 4), (2,))
    assert layer.out_shape == (4, 2, 2)
    assert [m.context_shape for m in layer.layers] == [None, None, (2,)]
    x, c = torch.randn(3, 1, 4, 4), torch.randn(3, 2)
    assert torch.allclose(layer.inverse(layer(x, c)[0], c)[0], x)
    assert math.isclose(float(layer(x, c)[1][0].detach()), 0.0, abs_tol=1e-12)  # zero-started conditioner
