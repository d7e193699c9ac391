"""``temporal_flow`` (MotionFlow): the density against an autograd Jacobian, causality in time,
the rollout against teacher forcing, prefix/horizon/samples, and build-time errors."""

from __future__ import annotations

import pytest
import torch
from einops import rearrange

import eddies.conditioners  # noqa: F401
import eddies.flows  # noqa: F401
import eddies.models  # noqa: F401
import eddies.priors  # noqa: F401
from eddies.core import DataSpec, RecipeError, build

DATA = DataSpec(shapes={"x": (4, 3, 2), "y": (3, 3, 2)})
VECTOR = {"type": "cglow_vector", "channels": 2, "width": 8}
STEP = {"type": "glow_step", "actnorm": {"type": "cond_actnorm", "net": VECTOR},
        "invconv": {"type": "cond_invconv1x1", "net": VECTOR},
        "coupling": {"type": "cond_affine_coupling", "net": {"type": "cnn", "channels": [8], "kernel_sizes": [3, 3]},
                     "context_net": {"type": "cglow_features", "channels": 2}, "context_features": 2}}


def make(prior="residual_latent", **config):
    spec = {"type": "temporal_flow", "flow": {"type": "chain", "layers": [STEP, STEP]}, "window": 3,
            "flow_layout": "c j -> j c 1", "prior": {"type": prior, "hidden": 4} if prior == "residual_latent" else prior,
            "encoder": {"type": "motionflow_conditioner", "channels": [4]}, **config}
    torch.manual_seed(0)
    model = build(spec, "models", data=DATA).double()
    with torch.no_grad():  # move every zero-started last layer, so no part is the identity
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def batch(rows=2, seed=1):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.randn(rows, 4, 3, 2, generator=g, dtype=torch.float64),
            "y": torch.randn(rows, 3, 3, 2, generator=g, dtype=torch.float64)}


@pytest.mark.parametrize("prior", ["residual_latent", "standard_normal"])
@pytest.mark.parametrize("residual", [True, False])
def test_log_prob_is_the_prior_of_z_plus_the_log_det_of_the_whole_map(prior, residual):
    """The map y_1..T -> z_1..T of one sequence, differentiated by autograd in float64: log p(y) =
    log p_prior(z) + log|det dz/dy| with the full (T·F) x (T·F) Jacobian, not the per-frame sum."""
    model = make(prior, residual=residual)
    b = batch(rows=1)

    def latents(flat):
        y = flat.reshape(1, 3, 3, 2)
        sequence = torch.cat([b["x"], y], 1)
        zs = []
        for t in range(3):
            u = model.encode(sequence[:, 4 + t - 3 : 4 + t])
            change = y[:, t] - sequence[:, 3 + t] if residual else y[:, t]
            zs.append(model.flow(rearrange(change, "n c j -> n j c 1"), u)[0])
        return torch.stack(zs, 1)

    flat = b["y"].reshape(-1)
    jacobian = torch.autograd.functional.jacobian(lambda v: latents(v).reshape(-1), flat)
    z = latents(flat)
    prior_term = model.prior.log_prob(z) if model.temporal else model.prior.log_prob(z[0]).sum()
    expected = prior_term.sum() + torch.linalg.slogdet(jacobian)[1]
    torch.testing.assert_close(model.log_prob(b), expected.reshape(1), rtol=1e-9, atol=1e-9)


def test_the_density_of_frame_t_ignores_later_frames():
    model = make()
    b = batch()
    before = model.log_prob_steps(b)
    for t in range(3):
        changed = {**b, "y": b["y"].clone()}
        changed["y"][:, t + 1 :] += 3.0
        after = model.log_prob_steps(changed)
        torch.testing.assert_close(after[:, : t + 1], before[:, : t + 1], rtol=0, atol=0)
        if t < 2:
            assert (after[:, t + 1 :] - before[:, t + 1 :]).abs().min() > 1e-6


@pytest.mark.parametrize("prior", ["residual_latent", "standard_normal"])
def test_a_rollout_fed_the_true_frames_is_teacher_forcing(prior):
    """Frame t of a temperature-0 rollout continuing the first t true frames equals the
    teacher-forced mode y_(t-1) + f^-1(mean of p(z_t | z_<t); u_t) computed in one batch."""
    model = make(prior)
    b = batch()
    sequence = torch.cat([b["x"], b["y"]], 1)
    windows = torch.stack([sequence[:, 4 + t - 3 : 4 + t] for t in range(3)], 1)
    u = model.encode(rearrange(windows, "b t ... -> (b t) ..."))
    change = b["y"] - sequence[:, 3:6]
    z = model.flow(rearrange(change, "b t c j -> (b t) j c 1"), u)[0].reshape(2, 3, 2, 3, 1)
    mean = model.prior.step_parameters(z)[0] if model.temporal else torch.zeros_like(z)
    modes = sequence[:, 3:6] + rearrange(model.flow.inverse(rearrange(mean, "b t ... -> (b t) ..."), u)[0],
                                         "(b t) j c 1 -> b t c j", b=2)
    for t in range(3):
        rolled = model.sample(b, temperature=0.0, prefix=t, horizon=1)
        torch.testing.assert_close(rolled[:, :t], b["y"][:, :t], rtol=0, atol=0)
        torch.testing.assert_close(rolled[:, t], modes[:, t], rtol=1e-9, atol=1e-10)


def test_generation_shapes_prefix_horizon_and_predict():
    model = make()
    b = batch()
    assert model.sample(b).shape == (2, 3, 3, 2)
    draws = model.sample(b, samples=5, horizon=7)
    assert draws.shape == (5, 2, 7, 3, 2)
    assert (draws[0] - draws[1]).abs().max() > 1e-3  # the draws differ
    torch.manual_seed(3)
    mode = model.sample(b, temperature=0.0)
    torch.testing.assert_close(model.predict(b, temperature=0.0), mode, rtol=0, atol=0)
    torch.manual_seed(4)
    expected = model.sample(b, samples=6).mean(0)
    torch.manual_seed(4)
    torch.testing.assert_close(model.predict(b, samples=6), expected, rtol=0, atol=0)


def test_a_rollout_past_the_target_continues_the_one_within_it():
    """horizon > T rolls on: its first T frames are the default rollout's (temperature 0), the rest
    finite and still moving."""
    model = make()
    b = batch()
    long, short = model.sample(b, temperature=0.0, horizon=20), model.sample(b, temperature=0.0)
    torch.testing.assert_close(long[:, :3], short, rtol=0, atol=0)
    assert torch.isfinite(long).all() and (long[:, -1] - long[:, -2]).abs().max() > 0


def test_train_frames_limits_the_loss_to_the_first_frames():
    model = make(train_frames=2)
    b = batch()
    expected = -model.log_prob_steps(b)[:, :2].sum(1).mean()
    torch.testing.assert_close(model.loss(b)["loss"], expected)


@pytest.mark.parametrize("change, key", [
    ({"window": 5}, "model.window"),
    ({"flow_layout": "a b c -> c b a"}, "model.flow_layout"),
    ({"flow_layout": "c j"}, "model.flow_layout"),
    ({"train_frames": 4}, "model.train_frames"),
    ({"flow": {"type": "chain", "layers": [{"type": "actnorm"}]}}, "model.flow"),
])
def test_bad_settings_name_their_key(change, key):
    spec = {"type": "temporal_flow", "flow": {"type": "chain", "layers": [STEP]}, "flow_layout": "c j -> j c 1",
            "window": 3, "prior": "standard_normal", **change}
    with pytest.raises(RecipeError) as err:
        build(spec, "models", data=DATA)
    assert key in str(err.value)


def test_the_condition_must_be_frames_like_the_target():
    with pytest.raises(RecipeError, match="input frames"):
        build({"type": "temporal_flow", "flow": {"type": "chain", "layers": [STEP]}, "prior": "standard_normal"},
              "models", data=DataSpec(shapes={"x": (4, 5), "y": (3, 3, 2)}))


def test_burn_in_latents_start_the_prior_history_and_are_not_scored():
    """burn_in: 1 with window 3 of 4 input frames: log p(y | x) = Σ_t log p(z_t | z_-1, z_<t) +
    log|det_t| where z_-1 is the last input frame's latent (its own window: input frames 0-2)."""
    model = make(burn_in=1)
    b = batch()
    sequence = torch.cat([b["x"], b["y"]], 1)  # frames 0..6; the target is 4..6
    u = model.encode(rearrange(torch.stack([sequence[:, i - 3 : i] for i in range(3, 7)], 1), "b t ... -> (b t) ..."))
    change = sequence[:, 3:7] - sequence[:, 2:6]
    z, logdet = model.flow(rearrange(change, "b t c j -> (b t) j c 1"), u)
    z = z.reshape(2, 4, 2, 3, 1)
    expected = model.prior.log_prob_steps(z)[:, 1:].sum(1) + logdet.reshape(2, 4)[:, 1:].sum(1)
    torch.testing.assert_close(model.log_prob(b), expected, rtol=1e-9, atol=1e-9)
    assert (model.log_prob(b) - make().log_prob(b)).abs().min() > 1e-6  # the history matters
    # the rollout starts from the same history: its temperature-0 first frame is the teacher-forced mode
    mean = model.prior.step_parameters(z)[0][:, 1]
    first = sequence[:, 3] + rearrange(model.flow.inverse(mean, u.reshape(2, 4, *u.shape[1:])[:, 1])[0], "b j c 1 -> b c j")
    torch.testing.assert_close(model.sample(b, temperature=0.0, horizon=1)[:, 0], first, rtol=1e-9, atol=1e-10)


def test_burn_in_needs_a_whole_window_before_each_burn_in_frame():
    with pytest.raises(RecipeError, match="burn_in") as err:
        make(burn_in=2)  # window 3 + 2 > 4 input frames
    assert "model.window" in str(err.value)
