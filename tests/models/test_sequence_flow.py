"""The sequence_flow model kind: density against direct computations, causality, sampling."""

import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, MultivariateNormal, Normal
from torch.func import jacrev

from eddies.core import MODELS, DataSpec, RecipeError, ShapeError, build

T, S, C = 4, 3, 2  # steps, values per step, condition size
DATA = DataSpec(shapes={"y": (T, S), "x": (C,)})
COUPLING = {
    "type": "affine_coupling", "scale": "exp", "identity_init": False,
    "scale_net": {"type": "mlp", "hidden": [5], "activation": "leaky_relu", "output_activation": "tanh"},
    "shift_net": {"type": "mlp", "hidden": [5], "activation": "leaky_relu"},
}
FLOW = {"type": "chain", "layers": [COUPLING, {**COUPLING, "flip": True}]}
COND = {**COUPLING, "type": "cond_affine_coupling"}
COND_FLOW = {"type": "chain", "layers": [COND, {**COND, "flip": True}]}


def model(rank=0, flow=None, flow_context=False, data=DATA, components=3):
    torch.manual_seed(0)
    spec = {"type": "sequence_flow", "conditioner": {"type": "lstm", "hidden_size": 6},
            "prior": {"type": "gmm_lowrank", "components": components, "rank": rank},
            "flow": flow, "flow_context": flow_context}
    return build(spec, "models", data=data).double()


def batch(n=5):
    g = torch.Generator().manual_seed(1)
    return {"y": torch.randn(n, T, S, generator=g, dtype=torch.float64),
            "x": torch.randn(n, C, generator=g, dtype=torch.float64)}


def contexts(m, b):
    """c_t computed independently: the LSTM stepped by hand over [x ; y_{t-1}], y_0 = start."""
    state = m.conditioner.initial_state(len(b["y"]), None, torch.float64)
    previous, out = m.start.expand(len(b["y"]), -1), []
    for t in range(T):
        h, state = m.conditioner.step(torch.cat([b["x"], previous], dim=1), state)
        out.append(h)
        previous = b["y"][:, t]
    return torch.stack(out, dim=1)


def reference_mixture(m, context):
    """The prior's mixture at each context row as a torch.distributions object."""
    mix = m.prior.mixture(context)
    if mix.rank == 0:
        comp = Independent(Normal(mix.means, mix.diag.rsqrt()), 1)
    else:
        precision = torch.diag_embed(mix.diag) + mix.factor @ mix.factor.transpose(-1, -2)
        comp = MultivariateNormal(mix.means, precision_matrix=precision)
    return MixtureSameFamily(Categorical(logits=mix.logits), comp)


def test_registered():
    assert "sequence_flow" in MODELS


@pytest.mark.parametrize("rank", [0, 2])
def test_rmdn_log_prob_equals_a_direct_mixture_computation(rank):
    m, b = model(rank), batch()
    c = contexts(m, b)
    expected = sum(reference_mixture(m, c[:, t]).log_prob(b["y"][:, t]) for t in range(T))
    torch.testing.assert_close(m.log_prob(b), expected)
    assert m.log_prob_steps(b).shape == (5, T)


@pytest.mark.parametrize("flow_context", [False, True])
def test_frmdn_log_prob_adds_the_flows_autograd_log_det(flow_context):
    m, b = model(1, COND_FLOW if flow_context else FLOW, flow_context), batch(3)
    c = contexts(m, b)
    expected = torch.zeros(3, dtype=torch.float64)
    for i in range(3):
        for t in range(T):
            ctx = c[i:i + 1, t] if flow_context else None
            f = lambda v, ctx=ctx: m.flow(v[None], ctx)[0][0]  # noqa: E731
            z = f(b["y"][i, t])
            log_det = torch.linalg.slogdet(jacrev(f)(b["y"][i, t]))[1]
            expected[i] += reference_mixture(m, c[i:i + 1, t]).log_prob(z[None])[0] + log_det
    torch.testing.assert_close(m.log_prob(b), expected)
    prior, log_det = m.log_prob_terms(b)
    assert log_det.abs().sum() > 0.1  # the flow is not the identity here, so the check has teeth


def test_flow_context_changes_the_flow():
    m, b = model(0, COND_FLOW, flow_context=True), batch(2)
    assert m.flow.context_shape == (6,)
    _, with_context = m.log_prob_terms(b)
    b2 = {**b, "x": b["x"] + 1.0}  # changes c_t, hence the flow
    assert not torch.allclose(m.log_prob_terms(b2)[1], with_context)


def test_step_t_depends_on_earlier_steps_and_the_condition_only():
    m, b = model(1, FLOW), batch(2)
    base = m.log_prob_steps(b)
    for t in range(T):
        later = {**b, "y": b["y"].clone()}
        later["y"][:, t + 1:] += 1.0
        torch.testing.assert_close(m.log_prob_steps(later)[:, : t + 1], base[:, : t + 1])
        if t > 0:
            earlier = {**b, "y": b["y"].clone()}
            earlier["y"][:, t - 1] += 1.0
            assert not torch.allclose(m.log_prob_steps(earlier)[:, t], base[:, t])
    assert not torch.allclose(m.log_prob_steps({**b, "x": -b["x"]})[:, 0], base[:, 0])


def test_loss_is_the_mean_nll_and_reports_the_flow_log_det():
    m, b = model(1, FLOW), batch()
    out = m.loss(b)
    torch.testing.assert_close(out["loss"], -m.log_prob(b).mean())
    torch.testing.assert_close(out["nll"], out["loss"].detach())
    torch.testing.assert_close(out["flow_logdet"], m.log_prob_terms(b)[1].sum(1).mean())
    out["loss"].backward()
    grads = [p.grad for p in m.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)


@pytest.mark.parametrize("flow", [None, FLOW])
def test_sampling_at_temperature_zero_follows_the_teacher_forced_modes(flow):
    # with T = 0 each step is f^{-1}(mean of the most probable component given c_t); recomputing
    # c_t teacher-forced on the sampled sequence must give back the same steps
    m, b = model(2, flow), batch(3)
    y = m.sample({"x": b["x"]}, temperature=0.0)
    assert y.shape == (3, T, S)
    c = contexts(m, {"x": b["x"], "y": y})
    for t in range(T):
        mix = m.prior.mixture(c[:, t])
        mode = mix.means[torch.arange(3), mix.logits.argmax(-1)]
        expected = mode if flow is None else m.flow.inverse(mode)[0]
        torch.testing.assert_close(y[:, t], expected)


def test_samples_have_the_prior_spread_and_keep_a_prefix():
    m, b = model(0), batch(4)
    torch.manual_seed(2)
    y = m.sample(b, temperature=1.0)
    assert y.shape == (4, T, S) and torch.isfinite(y).all()
    cold = m.sample(b, temperature=0.0)
    assert not torch.allclose(y, cold)
    kept = m.sample(b, prefix=2)
    torch.testing.assert_close(kept[:, :2], b["y"][:, :2])
    assert not torch.allclose(kept[:, 2:], b["y"][:, 2:])
    torch.testing.assert_close(m.predict(b, samples=2, temperature=0.0), cold)


def test_image_steps_and_unconditional_data():
    data = DataSpec(shapes={"y": (3, 2, 2)}, condition=None)
    m = model(1, data=data)
    y = torch.randn(2, 3, 2, 2, dtype=torch.float64)
    assert m.log_prob({"y": y}).shape == (2,)
    assert m.sample({"y": y}).shape == (2, 3, 2, 2)  # rows from the batch's target
    assert m.sample({}).shape == (1, 3, 2, 2)  # an empty batch is one row
    assert m.sample({}, samples=5).shape == (5, 1, 3, 2, 2)


def test_clear_errors():
    m = model()
    with pytest.raises(ShapeError, match=r"target 'y' must have shape \(batch, 4, 3\), got \(2, 5, 3\)"):
        m.log_prob({"y": torch.zeros(2, 5, 3), "x": torch.zeros(2, 2)})
    with pytest.raises(ShapeError, match=r"condition 'x' must have shape \(2, 2\), got \(2, 3\)"):
        m.log_prob({"y": torch.zeros(2, 4, 3), "x": torch.zeros(2, 3)})
    with pytest.raises(RecipeError, match="model.conditioner.*sequence conditioner.*'mlp' refused"):
        build({"type": "sequence_flow", "conditioner": {"type": "mlp"}, "prior": "gmm_lowrank"},
              "models", data=DATA)
    with pytest.raises(RecipeError, match="model.flow: flow_context is true, but the flow takes no context"):
        model(flow=FLOW, flow_context=True)
    with pytest.raises(ShapeError, match=r"\(T, \*step_shape\)"):
        build({"type": "sequence_flow", "conditioner": "lstm", "prior": "gmm_lowrank"},
              "models", data=DataSpec(shapes={"y": (4,), "x": (2,)}))


def test_draws_are_laid_out_draw_by_row_and_share_the_batch():
    m, b = model(1, FLOW), batch(3)
    draws = m.sample(b, samples=4)
    assert draws.shape == (4, 3, T, S) and torch.isfinite(draws).all()
    assert not torch.allclose(draws[0], draws[1])
    cold = m.sample(b, temperature=0.0)  # every draw of row b at temperature 0 is row b's mode path
    torch.testing.assert_close(m.sample(b, samples=4, temperature=0.0), cold.expand(4, -1, -1, -1))
    with pytest.raises(ValueError, match=r"sequence_flow.sample: samples must be an integer >= 1"):
        m.sample(b, samples=0)


def test_prefix_and_horizon():
    m, b = model(0), batch(3)
    y = m.sample(b, prefix=1, horizon=6, samples=2)  # past T: the recurrence rolls on
    assert y.shape == (2, 3, 7, S)
    torch.testing.assert_close(y[:, :, 0], b["y"][:, 0].expand(2, -1, -1))
    cold = m.sample(b, prefix=2, temperature=0.0)
    assert cold.shape == (3, T, S)
    torch.testing.assert_close(m.sample(b, prefix=2, horizon=1, temperature=0.0), cold[:, :3])
    assert m.predict(b, prefix=2, horizon=1).shape == (3, 3, S)
    with pytest.raises(ValueError, match=r"prefix must lie in 0..4, got 5"):
        m.sample(b, prefix=5)
    with pytest.raises(ValueError, match=r"horizon must be >= 0"):
        m.sample(b, horizon=-1)
    with pytest.raises(ShapeError, match=r"prefix=2 needs the target 'y' in the batch"):
        m.sample({"x": b["x"]}, prefix=2)


def test_predict_defaults_come_from_the_config():
    torch.manual_seed(0)
    m = build({"type": "sequence_flow", "conditioner": {"type": "lstm", "hidden_size": 6},
               "prior": {"type": "gmm_lowrank", "components": 2}, "samples": 3, "temperature": 0.0},
              "models", data=DATA).double()
    b = batch(2)
    torch.testing.assert_close(m.predict(b), m.sample(b, temperature=0.0))
    torch.manual_seed(4)
    warm = m.predict(b, temperature=0.5)
    torch.manual_seed(4)
    torch.testing.assert_close(warm, m.sample(b, samples=3, temperature=0.5).mean(0))


def test_an_encoder_feeds_every_step_and_runs_once_per_call():
    torch.manual_seed(0)
    m = build({"type": "sequence_flow", "conditioner": {"type": "lstm", "hidden_size": 6},
               "prior": {"type": "gmm_lowrank", "components": 2}, "encoder": {"type": "mlp", "hidden": [5]},
               "encoder_shape": [3]}, "models", data=DATA).double()
    assert m.conditioner.in_shape == (3 + S,)
    calls = []
    m.encoder.register_forward_hook(lambda mod, args, out: calls.append(args[0].shape[0]))
    b = batch(2)
    x = b["x"].clone().requires_grad_(True)
    m.log_prob({**b, "x": x}).sum().backward()
    assert x.grad.abs().sum() > 0 and calls == [2]
    m.sample(b, samples=5)
    m.predict(b, samples=3)
    assert calls == [2, 2, 2]
    with pytest.raises(RecipeError, match="model.encoder: sequence_flow builds its encoder.*'mlp' refused"):
        build({"type": "sequence_flow", "conditioner": "lstm", "prior": "gmm_lowrank", "encoder": "mlp"},
              "models", data=DATA)


def test_a_prior_without_a_context_is_refused():
    # c_t would reach nothing: the condition and the past steps would be lost
    with pytest.raises(RecipeError, match=r"model.prior: sequence_flow builds its prior .*'standard_normal' refused"):
        build({"type": "sequence_flow", "conditioner": "lstm", "prior": "standard_normal"}, "models", data=DATA)


def test_a_duck_typed_conditioner_is_not_a_sequence_conditioner():
    from eddies.core import CONDITIONERS, Conditioner, register

    class Lookalike(Conditioner):  # has the methods but does not declare the contract
        def output_shape(self):
            return (4,)

        def initial_state(self, batch, device=None, dtype=None):
            return None

        def step(self, x, state):
            return x[:, :4], state

    with CONDITIONERS.scoped():
        register("conditioners", "lookalike")(Lookalike)
        with pytest.raises(RecipeError, match="'lookalike' is not a sequence conditioner .*SequenceConditioner"):
            build({"type": "sequence_flow", "conditioner": "lookalike", "prior": "gmm_lowrank"},
                  "models", data=DATA)


def test_a_conditioner_without_the_step_api_is_refused():
    from eddies.core import CONDITIONERS, Conditioner, register

    class Whole(Conditioner):  # maps a whole sequence, cannot step
        def output_shape(self):
            return (4,)

    with CONDITIONERS.scoped():
        register("conditioners", "whole_only")(Whole)
        with pytest.raises(RecipeError, match="model.conditioner: 'whole_only' is not a sequence conditioner"):
            build({"type": "sequence_flow", "conditioner": "whole_only", "prior": "gmm_lowrank"},
                  "models", data=DATA)


def test_float32_training_step_reduces_the_loss():
    torch.manual_seed(0)
    m = build({"type": "sequence_flow", "conditioner": {"type": "lstm", "hidden_size": 8},
               "prior": {"type": "gmm_lowrank", "components": 2, "rank": 1}, "flow": FLOW},
              "models", data=DATA)
    b = {k: v.float() for k, v in batch(16).items()}
    opt = torch.optim.Adam(m.parameters(), lr=1e-2)
    first = m.loss(b)["loss"].item()
    for _ in range(30):
        opt.zero_grad()
        m.loss(b)["loss"].backward()
        opt.step()
    assert m.loss(b)["loss"].item() < first - 1.0
    assert math.isfinite(first)


def test_per_step_terms_keep_the_batch_and_step_layout():
    # step t of sample i is row i * T + t of the flattened batch, and is put back at [i, t]
    m, b = model(1), batch(3)
    c = contexts(m, b)
    expected = torch.stack([reference_mixture(m, c[:, t]).log_prob(b["y"][:, t]) for t in range(T)], dim=1)
    torch.testing.assert_close(m.log_prob_steps(b), expected)
