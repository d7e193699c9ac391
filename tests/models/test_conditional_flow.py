"""The conditional_flow model kind (c-Glow, cglow.txt eqs. 1-4): density, generation contract,
the shared encoder, and no silent loss of the condition."""

import pytest
import torch
from torch.distributions import Normal

from eddies.core import DataSpec, RecipeError, ShapeError, build
from eddies.core.testing import perturb

MLP = {"type": "mlp", "hidden": [8]}
STEP = {"type": "glow_step", "actnorm": {"type": "cond_actnorm", "net": MLP},
        "coupling": {"type": "cond_affine_coupling", "net": MLP}}
FLOW = {"type": "chain", "layers": [STEP, "reverse", STEP]}
UNCONDITIONAL = {"type": "chain", "layers": [{"type": "affine_coupling", "net": MLP}, "reverse", "actnorm"]}
DATA = DataSpec(shapes={"y": (3,), "x": (2,)})


def model(data=DATA, **fields):
    torch.manual_seed(0)
    m = build({"type": "conditional_flow", "flow": FLOW, **fields}, "models", data=data).double()
    perturb(m, 0, 0.3)
    return m.eval()


def batch(n=4):
    g = torch.Generator().manual_seed(1)
    return {"y": torch.randn(n, 3, generator=g, dtype=torch.float64),
            "x": torch.randn(n, 2, generator=g, dtype=torch.float64)}


def test_log_prob_is_the_change_of_variables_with_a_standard_normal():
    m, b = model(), batch()
    z, logdet = m.flow(b["y"], b["x"])
    assert torch.allclose(m.log_prob(b), Normal(0.0, 1.0).log_prob(z).sum(1) + logdet)
    assert m.loss(b)["loss"].shape == ()


def test_samples_are_one_batched_inverse_laid_out_draw_by_row():
    m, b = model(), batch()
    assert m.sample(b).shape == (4, 3)
    torch.manual_seed(5)
    draws = m.sample(b, samples=3, temperature=0.7)
    torch.manual_seed(5)
    z = 0.7 * torch.randn(12, 3, dtype=torch.float64)  # the prior's draw of 3 * 4 rows
    assert draws.shape == (3, 4, 3)
    for n in range(3):  # draw n of row b is row n * B + b of the batched inverse, under x[b]
        expected = m.flow.inverse(z[4 * n:4 * n + 4], b["x"])[0]
        torch.testing.assert_close(draws[n], expected)


def test_predict_averages_samples_as_eq_4():
    m, b = model(samples=5), batch()
    torch.manual_seed(1)
    draws = m.sample(b, samples=5, temperature=0.7)
    torch.manual_seed(1)
    torch.testing.assert_close(m.predict(b, temperature=0.7), draws.mean(0))
    assert m.predict(b, samples=2).shape == (4, 3)
    mode = m.flow.inverse(torch.zeros(4, 3, dtype=torch.float64), b["x"])[0]
    torch.testing.assert_close(m.predict(b, temperature=0.0), mode)  # temperature 0: g_x(0)


def test_generation_arguments_are_checked():
    m, b = model(), batch()
    with pytest.raises(ValueError, match=r"conditional_flow.sample: prefix=2 given.*sequence kinds"):
        m.sample(b, prefix=2)
    with pytest.raises(ValueError, match=r"conditional_flow.predict: horizon=3 given"):
        m.predict(b, horizon=3)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="samples must be an integer >= 1"):
            m.sample(b, samples=bad)


def test_the_condition_shape_is_checked():
    m = model()
    with pytest.raises(ShapeError, match=r"condition 'x' must have shape \(4, 2\), got \(4, 5\)"):
        m.log_prob({"y": torch.randn(4, 3, dtype=torch.float64), "x": torch.randn(4, 5, dtype=torch.float64)})
    with pytest.raises(ShapeError, match="the batch has no condition 'x'"):
        m.sample({"y": torch.randn(4, 3)})


def test_without_a_condition_it_is_an_unconditional_flow():
    m = build({"type": "conditional_flow", "flow": {"type": "chain", "layers": ["actnorm", "reverse"]}},
              "models", data=DataSpec(shapes={"y": (3,)}, condition=None))
    y = torch.randn(6, 3)
    assert m.log_prob({"y": y}).shape == (6,)
    assert m.sample({"y": y}).shape == (6, 3)  # rows from the batch's target
    assert m.sample({}).shape == (1, 3)  # an empty batch is one row
    assert m.sample({}, samples=5).shape == (5, 1, 3)
    assert m.predict({"y": y}).shape == (6, 3)


# the encoder ---------------------------------------------------------------------------------
ENCODED = {"encoder": {"type": "mlp", "hidden": [6]}, "encoder_shape": [4]}


def count_calls(module):
    calls = []
    module.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape[0]))
    return calls


def test_the_encoder_output_is_the_context_of_the_flow_and_the_prior():
    m = model(prior={"type": "diag_gaussian"}, prior_context=True, **ENCODED)
    assert m.encoder.output_shape() == (4,)
    assert m.flow.context_shape == (4,) and m.prior.context_shape == (4,)
    b = batch()
    h = m.encoder(b["x"])
    z, logdet = m.flow(b["y"], h)
    torch.testing.assert_close(m.log_prob(b), m.prior.log_prob(z, h) + logdet)


@pytest.mark.parametrize("prior_context", [False, True])
def test_the_encoder_runs_once_per_call(prior_context):
    prior = {"type": "diag_gaussian"} if prior_context else "standard_normal"
    m, b = model(prior=prior, prior_context=prior_context, **ENCODED), batch()
    calls = count_calls(m.encoder)
    assert m.predict(b, samples=7).shape == (4, 3)
    assert calls == [4]  # one encoding of the 4 rows, shared by the 7 draws
    m.sample(b, samples=3)
    m.log_prob(b)
    assert calls == [4, 4, 4]


def test_log_prob_and_predict_depend_on_x_through_the_encoder_only():
    m, b = model(**ENCODED), batch()
    x = b["x"].clone().requires_grad_(True)
    m.log_prob({**b, "x": x}).sum().backward()
    assert x.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.encoder.parameters())
    x.grad = None
    m.predict({**b, "x": x}, samples=3).sum().backward()
    assert x.grad.abs().sum() > 0
    # with the encoder's output cut from x, nothing else carries x into the density
    m.encoder.register_forward_hook(lambda mod, args, out: out.detach())
    x.grad = None
    m.log_prob({**b, "x": x}).sum().backward()
    assert x.grad is None or x.grad.abs().sum() == 0


def test_encoder_settings_are_checked():
    with pytest.raises(RecipeError, match=r"model.encoder: conditional_flow builds its encoder with "
                                          r"in_shape=\(2,\).*out_shape=None \(encoder_shape\); 'mlp' refused"):
        model(encoder={"type": "mlp"})
    with pytest.raises(RecipeError, match="model.encoder_shape: conditional_flow: encoder_shape is set but there is no encoder"):
        model(encoder_shape=[4])
    with pytest.raises(RecipeError, match="model.encoder: conditional_flow: an encoder is given, but the data has no condition"):
        build({"type": "conditional_flow", "flow": UNCONDITIONAL, **ENCODED}, "models",
              data=DataSpec(shapes={"y": (3,)}, condition=None))


# no silent loss of the condition -------------------------------------------------------------
def test_a_condition_that_reaches_no_layer_and_no_prior_is_a_recipe_error():
    with pytest.raises(RecipeError, match=r"^model.flow: conditional_flow: the condition 'x' reaches no layer "
                                          r"of the flow 'chain' \(it has no conditional layer\) and no prior"):
        build({"type": "conditional_flow", "flow": UNCONDITIONAL}, "models", data=DATA)
    with pytest.raises(RecipeError, match=r"model.flow: conditional_flow: the condition 'x' \(through the "
                                          r"encoder 'mlp'\) reaches no layer"):
        build({"type": "conditional_flow", "flow": UNCONDITIONAL, **ENCODED}, "models", data=DATA)


def test_an_image_flow_of_unconditional_steps_is_refused_too():
    step = {"type": "glow_step", "coupling": {"type": "affine_coupling",
                                              "net": {"type": "cnn", "channels": [4], "kernel_sizes": [3, 3]}}}
    data = DataSpec(shapes={"y": (1, 4, 4), "x": (1, 4, 4)})
    with pytest.raises(RecipeError, match="the condition 'x' reaches no layer of the flow 'multiscale'"):
        build({"type": "conditional_flow", "flow": {"type": "multiscale", "levels": 2, "steps": 1, "step": step}},
              "models", data=data)


def test_a_condition_that_reaches_only_the_prior_is_used():
    torch.manual_seed(0)
    m = build({"type": "conditional_flow", "flow": UNCONDITIONAL, "prior": "diag_gaussian", "prior_context": True},
              "models", data=DATA).double()
    assert m.flow.context_shape is None and m.prior.context_shape == (2,)
    perturb(m, 0, 0.3)
    b = batch()
    assert not torch.allclose(m.log_prob(b), m.log_prob({**b, "x": b["x"] + 1.0}))


def test_prior_context_settings_are_checked():
    with pytest.raises(RecipeError, match="model.prior: conditional_flow builds its prior.*'standard_normal' refused"):
        model(prior_context=True)
    with pytest.raises(RecipeError, match="model.prior_context: conditional_flow: prior_context is true, but the data has no condition"):
        build({"type": "conditional_flow", "flow": UNCONDITIONAL, "prior": "diag_gaussian", "prior_context": True},
              "models", data=DataSpec(shapes={"y": (3,)}, condition=None))


def test_conditional_layers_without_a_condition_are_a_recipe_error():
    with pytest.raises(RecipeError, match=r"model.flow: conditional_flow builds its flow with shape=\(3,\) and "
                                          r"context_shape=None; 'chain' refused: .*needs a context_shape"):
        build({"type": "conditional_flow", "flow": FLOW}, "models", data=DataSpec(shapes={"y": (3,)}, condition=None))
