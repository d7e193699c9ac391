"""latent_dynamics_vae (SRVP, srvp.txt eqs. 1-8): the ELBO by hand, KL terms against Monte Carlo,
generation at dt/2, the ablation switches, the contract's generation arguments and build errors."""

from __future__ import annotations

import copy
import math

import pytest
import torch

from eddies.core import DataSpec, RecipeError, build
from eddies.core.bounds import soft_bound

D64 = torch.float64
K, T, FRAME = 2, 3, (1, 8, 8)
MLP = {"type": "mlp", "hidden": [6], "activation": "tanh"}
SPEC = {
    "type": "latent_dynamics_vae", "encoding_size": 5, "state_size": 3, "z_size": 2,
    "encoder": {"type": "dcgan_encoder", "channels": 2}, "decoder": {"type": "dcgan_decoder", "channels": 2},
    "posterior_y": {"type": "diag_gaussian", "head": MLP}, "posterior_rnn": {"type": "lstm", "hidden_size": 4},
    "content_net": MLP, "dynamics": {"type": "euler_state", "net": MLP, "head": MLP, "init_gain": 1.41},
}


def make(k: int = K, t: int = T, frame=FRAME, **changes):
    spec = copy.deepcopy(SPEC)
    spec.update(changes)
    torch.manual_seed(0)
    return build(spec, "models", data=DataSpec({"x": (k, *frame), "y": (t, *frame)})).double()


def batch_for(rows: int = 3, k: int = K, t: int = T, frame=FRAME, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return {"x": torch.rand(rows, k, *frame, generator=g, dtype=D64),
            "y": torch.rand(rows, t, *frame, generator=g, dtype=D64)}


def gaussian_kl(mq, sq, mp, sp):
    """KL(N(mq, sq^2) || N(mp, sp^2)) summed over the last axis, written out."""
    return (torch.log(sp / sq) + (sq**2 + (mq - mp) ** 2) / (2 * sp**2) - 0.5).sum(-1)


def head_parameters(head, context, bound=5.0):
    mean, raw = head(context).chunk(2, dim=-1)
    return mean, soft_bound(raw, bound).exp()


@pytest.mark.parametrize("noise_is", ["variance", "std"])
def test_the_bound_equals_eqs_7_and_8_written_by_hand(noise_is):
    """rec_nll, kl_y, kl_z and f_norm, and the loss with beta_z and lambda, recomputed from the
    equations with the model's sub-networks and the same standard normal draws."""
    model = make(beta_z=2.0, f_penalty=0.7, observation_noise=0.5, observation_noise_is=noise_is).eval()
    batch = batch_for()
    rows, length = 3, K + T
    eps_y = torch.randn(rows, 3, dtype=D64)
    eps_z = torch.randn(rows, length - 1, 2, dtype=D64)
    index = torch.tensor([[0, 4], [3, 1], [2, 2]])
    got = model.terms(batch, noise={"y": eps_y, "z": eps_z}, content_index=index)

    x = torch.cat([batch["x"], batch["y"]], 1)
    enc = model.encoder(x)                                           # x~_t = h(x_t)
    mq_y, sq_y = head_parameters(model.posterior_y.head, enc[:, :K].flatten(1))
    y = mq_y + sq_y * eps_y                                          # y_1 ~ q(y_1 | x_1:k)
    h, _ = model.posterior_rnn.rnn(enc)
    f, prior_head = model.dynamics.net, model.dynamics.head
    states, kl_z, f_norm = [y], torch.zeros(rows, dtype=D64), torch.zeros(rows, dtype=D64)
    for t in range(1, length):
        mq, sq = head_parameters(model.posterior_z.head, h[:, t])    # q(z_t | x_1:t)
        mp, sp = head_parameters(prior_head, y)                      # p(z_t | y_{t-1})
        kl_z += gaussian_kl(mq, sq, mp, sp)
        z = mq + sq * eps_z[:, t - 1]
        residual = f(torch.cat([y, z], -1))
        f_norm += residual.norm(dim=-1)
        y = y + residual                                             # eq. 1, dt = 1
        states.append(y)
    picked = torch.stack([enc[b, index[b]] for b in range(rows)])
    w = model.content_net(picked.sum(1))                             # eq. 3, permutation invariant
    mean = model.decoder(torch.cat([torch.stack(states, 1), w[:, None].expand(-1, length, -1)], -1))
    var = 0.5 if noise_is == "variance" else 0.25
    rec = (0.5 * (x - mean) ** 2 / var + 0.5 * math.log(2 * math.pi * var)).flatten(1).sum(1)
    kl_y = gaussian_kl(mq_y, sq_y, torch.zeros_like(mq_y), torch.ones_like(sq_y))

    torch.testing.assert_close(got["rec_nll"], rec)
    torch.testing.assert_close(got["kl_y"], kl_y)
    torch.testing.assert_close(got["kl_z"], kl_z)
    torch.testing.assert_close(got["f_norm"], f_norm)
    terms = model.terms(batch, noise={"y": eps_y, "z": eps_z}, content_index=index)
    loss = (terms["rec_nll"] + terms["kl_y"] + 2.0 * terms["kl_z"] + 0.7 * terms["f_norm"]).mean()
    torch.testing.assert_close(loss, (rec + kl_y + 2.0 * kl_z + 0.7 * f_norm).mean())


def test_loss_reports_the_parts_and_log_prob_is_not_claimed():
    model = make(beta_z=2.0)
    out = model.loss(batch_for())
    assert set(out) == {"loss", "rec_nll", "kl_y", "kl_z", "f_norm", "nelbo"}
    assert out["loss"].requires_grad and not out["nelbo"].requires_grad
    torch.testing.assert_close(out["nelbo"], out["rec_nll"] + out["kl_y"] + out["kl_z"])
    out["loss"].backward()
    assert all(p.grad is not None for p in model.parameters())
    assert model.elbo(batch_for()).shape == (3,)
    with pytest.raises(NotImplementedError, match="elbo"):
        model.log_prob(batch_for())


def test_kl_terms_equal_monte_carlo_estimates():
    """The closed-form KL terms (torch.distributions.kl_divergence of the priors' distributions)
    against E_q[log q - log p] from 40,000 draws, for q(y_1) and every q(z_t)."""
    model = make().eval()
    batch = batch_for(rows=2)
    with torch.no_grad():
        terms = model.terms(batch, noise={"y": torch.zeros(2, 3, dtype=D64), "z": torch.zeros(2, 4, 2, dtype=D64)})
        enc = model.encode(torch.cat([batch["x"], batch["y"]], 1))
        q_y, q_z = model.q_y(enc), model.q_z(enc)
        # the path of the mean draws (zero noise), whose p(z_t | y_{t-1}) the kl_z terms use
        states = model.dynamics.states(q_z.base_dist.loc, q_y.base_dist.loc)
        p_z = model.dynamics.state_distribution(states[:, :-1])
        n = 40_000
        draws = q_y.sample((n,))
        mc_y = (q_y.log_prob(draws) - model.prior_y.distribution().log_prob(draws)).mean(0)
        zs = q_z.sample((n,))
        mc_z = (q_z.log_prob(zs) - p_z.log_prob(zs)).mean(0).sum(1)
    torch.testing.assert_close(mc_y, terms["kl_y"], atol=0.03, rtol=0.03)
    torch.testing.assert_close(mc_z, terms["kl_z"], atol=0.05, rtol=0.03)


def test_generation_shapes_prefix_and_horizon():
    model = make().eval()
    batch = batch_for(rows=2)
    assert model.sample(batch).shape == (2, T, *FRAME)
    assert model.sample(batch, samples=4).shape == (4, 2, T, *FRAME)
    out = model.sample(batch, samples=3, prefix=2, horizon=7)
    assert out.shape == (3, 2, 9, *FRAME)
    torch.testing.assert_close(out[:, :, :2], batch["y"][None, :, :2].expand(3, -1, -1, -1, -1, -1))
    assert model.predict(batch, horizon=11).shape == (2, 11, *FRAME)
    assert model.predict({"x": batch["x"]}).shape == (2, T, *FRAME)  # no target needed without a prefix
    a, b = model.predict(batch, temperature=0.0), model.predict(batch, temperature=0.0, samples=5)
    torch.testing.assert_close(a, b)                                 # temperature 0: the mean path
    frames = model.sample(batch, samples=20)
    assert frames.min() >= 0 and frames.max() <= 1                   # the decoder's sigmoid
    assert not torch.allclose(frames[0], frames[1])
    with pytest.raises(ValueError, match="prefix"):
        model.sample(batch, prefix=-1)
    with pytest.raises(ValueError, match="samples"):
        model.sample(batch, samples=0)


def test_generation_encodes_the_condition_once_and_samples_rows_independently():
    model = make().eval()
    batch = batch_for(rows=2)
    calls = []
    handle = model.encoder.register_forward_hook(lambda *args: calls.append(1))
    model.sample(batch, samples=6)
    handle.remove()
    assert len(calls) == 1
    torch.manual_seed(5)
    one = model.sample(batch, samples=2)
    torch.manual_seed(5)
    again = model.sample(batch, samples=2)
    torch.testing.assert_close(one, again)


def _constant_residual(model, value: float):
    """Make f(y, z) the constant ``value``: zero last-layer weights, bias = value."""
    last = model.dynamics.net.last
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(value)


@pytest.mark.parametrize("value", [0.0, 0.3])
def test_half_step_generation_matches_the_unit_step_when_f_is_constant(value):
    """dt = 1/2 (srvp.txt eq. 2, section 4): twice the Euler steps; decoding every other state
    gives the frames of dt = 1 when f is constant (Euler is then exact), and every_state gives
    twice the frames; f = 0 freezes the state, so all generated frames are equal."""
    model = make().eval()
    _constant_residual(model, value)
    batch = batch_for(rows=2)
    torch.manual_seed(7)
    unit = model.generate(batch, samples=3, horizon=4)
    torch.manual_seed(7)
    half = model.generate(batch, samples=3, horizon=4, dt=0.5)
    torch.manual_seed(7)
    fine = model.generate(batch, samples=3, horizon=4, dt=0.5, every_state=True)
    assert unit.shape == half.shape == (3, 2, 4, *FRAME) and fine.shape == (3, 2, 8, *FRAME)
    torch.testing.assert_close(half, unit)
    torch.testing.assert_close(fine[:, :, 1::2], unit)
    if value == 0.0:
        torch.testing.assert_close(fine, unit[:, :, :1].expand_as(fine))
    model.generation_dt = 0.5
    torch.manual_seed(7)
    torch.testing.assert_close(model.sample(batch, samples=3, horizon=4), unit)


def test_half_step_generation_differs_when_f_depends_on_the_state():
    model = make().eval()
    batch = batch_for(rows=2)
    torch.manual_seed(7)
    unit = model.generate(batch, horizon=4, temperature=0.0)
    half = model.generate(batch, horizon=4, temperature=0.0, dt=0.5)
    assert half.shape == unit.shape and not torch.allclose(half, unit)


def test_without_z_is_deterministic_dynamics():
    """z_size 0 (table 2, 'w/o z'): no q(z) networks, kl_z = 0, y_t = y_{t-1} + f(y_{t-1})."""
    model = make(z_size=0, dynamics={"type": "euler_state", "net": MLP}).eval()
    assert model.posterior_rnn is None and model.posterior_z is None
    assert model.dynamics.net.in_shape == (3,)
    batch = batch_for(rows=2)
    terms = model.terms(batch, noise={"y": torch.zeros(2, 3, dtype=D64)})
    assert torch.equal(terms["kl_z"], torch.zeros(2, dtype=D64))
    torch.testing.assert_close(model.predict(batch, temperature=0.0), model.predict(batch, temperature=0.0))
    # with the same y_1 draw, temperature changes nothing after it: the rollout has no noise
    torch.manual_seed(1)
    a = model.generate(batch, temperature=1.0, horizon=5)
    torch.manual_seed(1)
    b = model.generate(batch, temperature=1.0, horizon=5)
    torch.testing.assert_close(a, b)
    assert model.generate(batch, horizon=3, dt=0.5, every_state=True).shape == (2, 6, *FRAME)
    model.train()
    model.loss(batch)["loss"].backward()


def test_mlp_dynamics_replace_the_residual_update():
    """dynamics.residual false (table 2, 'MLP'): y_t = f(y_{t-1}, z_t); no finer Euler step."""
    model = make(dynamics={"type": "euler_state", "net": MLP, "head": MLP, "residual": False}).eval()
    y0, z = torch.randn(2, 3, dtype=D64), torch.randn(2, 1, 2, dtype=D64)
    states, rates = model.dynamics.trajectory(z, y0)
    torch.testing.assert_close(states[:, 1], model.dynamics.net(torch.cat([y0, z[:, 0]], -1)))
    torch.testing.assert_close(rates[:, 0], states[:, 1] - y0)
    assert model.sample(batch_for(rows=2), samples=2).shape == (2, 2, T, *FRAME)
    with pytest.raises(ValueError, match="dt must be 1"):
        model.generate(batch_for(rows=2), dt=0.5)
    with pytest.raises(RecipeError, match="dt = 1"):
        make(dynamics={"type": "euler_state", "net": MLP, "residual": False, "dt": 0.5})


def test_training_with_half_steps_penalises_dt_times_f():
    model = make(dynamics={"type": "euler_state", "net": MLP, "head": MLP, "dt": 0.5}).eval()
    _constant_residual(model, 0.2)
    terms = model.terms(batch_for(rows=2))
    # constant f: sum over 2 (L - 1) substeps of dt ||f|| = (L - 1) ||f||
    torch.testing.assert_close(terms["f_norm"], torch.full((2,), (K + T - 1) * 0.2 * math.sqrt(3), dtype=D64))


def test_content_is_permutation_invariant_and_drawn_from_the_whole_sequence_in_training():
    model = make(content_frames=2)
    enc = torch.randn(4, 2, 5, dtype=D64)
    model.eval()
    torch.testing.assert_close(model.content(enc), model.content(enc.flip(1)))
    model.train()
    index = model._content_index(100, K + T, torch.device("cpu"))
    assert index.shape == (100, 2) and set(index.unique().tolist()) == set(range(K + T))
    assert (index[:, 0] != index[:, 1]).all()
    model.eval()
    assert model._content_index(3, K + T, torch.device("cpu")).tolist() == [[0, 1]] * 3
    last = make(content_sampling="last").train()
    assert last._content_index(2, K + T, torch.device("cpu")).tolist() == [[0, 1]] * 2


def test_the_authors_content_variable_is_a_switch():
    """Protocol page, item 2: the code's w is Linear + ReLU per frame to 256, summed, Linear + Tanh."""
    model = make(content_pre={"type": "mlp", "hidden": [], "output_activation": "relu"}, content_size=7,
                 content_net={"type": "mlp", "hidden": [], "output_activation": "tanh"})
    assert model.decoder.in_shape == (3 + 7,)
    w = model.content(torch.randn(2, 2, 5, dtype=D64))
    assert w.shape == (2, 7) and w.abs().max() < 1


def test_frame_sizes_64_and_32():
    for size in (32, 64):
        model = make(frame=(1, size, size), encoder={"type": "dcgan_encoder", "channels": 2},
                     decoder={"type": "dcgan_decoder", "channels": 2})
        assert model.sample(batch_for(rows=1, frame=(1, size, size))).shape == (1, T, 1, size, size)


def test_build_errors_name_the_key():
    with pytest.raises(RecipeError, match="content_frames"):
        make(content_frames=3)
    with pytest.raises(RecipeError, match="model.dynamics"):
        make(dynamics={"type": "residual_latent", "hidden": 4})
    with pytest.raises(RecipeError, match="one frame shape"):
        build(SPEC, "models", data=DataSpec({"x": (2, 1, 8, 8), "y": (3, 1, 16, 16)}))
    with pytest.raises(RecipeError, match="model.encoder"):
        make(frame=(1, 12, 12))


# recipes and the task -------------------------------------------------------------------------
import gzip  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402

import numpy as np  # noqa: E402

from eddies.core import load_recipe  # noqa: E402
from tests.command_line import app  # noqa: E402

RECIPES = ["srvp_smmnist", "srvp_smmnist_paper", "srvp_smmnist_mlp_dynamics", "srvp_smmnist_no_z",
           "srvp_smmnist_deterministic", "srvp_smmnist_copy_last"]


def fake_mnist(folder):
    """A small random stand-in for mnist.pkl.gz (train, validation, test parts), as the task's doctest."""
    rng = np.random.default_rng(0)
    parts = tuple((rng.integers(0, 256, (n, 784)).astype(np.float32) / 256, np.arange(n) % 10) for n in (20, 6, 6))
    path = folder / "mnist.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(parts, f)
    return path


def tiny_task(tmp_path, **settings):
    return {"type": "moving_mnist", "source": str(fake_mnist(tmp_path)), "frame_size": 16, "digit_size": 7,
            "max_speed": 1, "input_frames": 2, "output_frames": 3, "test_output_frames": 4,
            "validation_output_frames": 4, "sizes": {"train": 8, "validation": 2, "test": 2}, **settings}


@pytest.mark.parametrize("name", RECIPES)
def test_recipes_validate_and_say_what_they_switch(name):
    recipe = load_recipe(name)
    model = recipe.model.to_dict()
    assert recipe.task.name == "moving_mnist"
    if name == "srvp_smmnist_copy_last":
        assert model["type"].startswith("zero_velocity")
        return
    dynamics = model["dynamics"]
    assert dynamics["residual"] is (name != "srvp_smmnist_mlp_dynamics")
    assert (model["z_size"] == 0) is (name == "srvp_smmnist_no_z")
    assert model["beta_z"] == 2.0 and model["f_penalty"] == 1.0 and dynamics["init_gain"] == 1.41
    task = recipe.task.to_dict()
    if name == "srvp_smmnist_paper":
        assert task["frame_size"] == 64 and model["state_size"] == 20 and model["encoding_size"] == 128
    else:
        assert task["frame_size"] == 32 and recipe.train.max_steps == 4000


@pytest.mark.parametrize("name", ["srvp_smmnist", "srvp_smmnist_paper", "srvp_smmnist_no_z"])
def test_recipe_models_build_and_take_one_step(name):
    """Every recipe's model builds for its task's shapes and takes one optimizer step (the paper
    recipe on one sequence: it is sized for a GPU)."""
    recipe = load_recipe(name)
    task = recipe.task.to_dict()
    size, k, t = task["frame_size"], task["input_frames"], task["output_frames"]
    torch.manual_seed(0)
    model = recipe.model.build(data=DataSpec({"x": (k, 1, size, size), "y": (t, 1, size, size)}))
    optimizer = recipe.train.optimizer.build(params=model.parameters())
    rows = 1 if name == "srvp_smmnist_paper" else 2  # BatchNorm still sees k + T frames
    batch = {"x": torch.rand(rows, k, 1, size, size), "y": torch.rand(rows, t, 1, size, size)}
    loss = model.loss(batch)["loss"]
    loss.backward()
    optimizer.step()
    assert torch.isfinite(loss)
    model.eval()
    with torch.no_grad():
        assert model.sample(batch, samples=2, horizon=3).shape == (2, rows, 3, 1, size, size)


def test_training_on_the_task_lowers_the_loss(tmp_path):
    """A few Adam steps of a tiny model on moving_mnist batches (16 x 16 frames, fake digits)."""
    from eddies.core import validate_spec

    task = validate_spec(tiny_task(tmp_path), "tasks").build(data_dir=tmp_path / "data")
    task.prepare()
    model = make(k=2, t=3, frame=(1, 16, 16)).float()
    optimizer = torch.optim.Adam(model.parameters(), 3e-3)
    items = task.dataset("train").__getitems__(list(range(8)))
    batch = {key: torch.stack([item[key] for item in items]) for key in ("x", "y")}
    torch.manual_seed(0)
    first = model.loss(batch)["loss"].item()
    for _ in range(15):
        optimizer.zero_grad()
        model.loss(batch)["loss"].backward()
        optimizer.step()
    assert model.loss(batch)["loss"].item() < first
    metrics = task.evaluate(model, torch.utils.data.DataLoader(task.dataset("test"), batch_size=2), samples=3)
    assert 0 < metrics["psnr_best_mean"] < 100 and metrics["psnr_best_mean"] >= metrics["psnr_random_mean"]


@pytest.mark.slow
def test_train_and_evaluate_through_the_apps(tmp_path):
    """apps/train.py then apps/evaluate.py on the reduced recipe shrunk to 16 x 16 frames and 2 steps."""
    run, data = tmp_path / "run", tmp_path / "data"
    task = {key: value for key, value in tiny_task(tmp_path).items() if key != "type"}
    overrides = [*(f"task.{key}={json.dumps(value)}" for key, value in task.items()), "model.encoder.channels=2", "model.decoder.channels=2",
                 "model.encoding_size=8", "model.state_size=3", "model.z_size=2",
                 "model.posterior_rnn.hidden_size=4", "model.content_net.hidden=[4]",
                 "model.posterior_y.head.hidden=[4]", "model.dynamics.net.hidden=[4]",
                 "model.dynamics.head.hidden=[4]", "train.batch_size=4", "train.eval_batch_size=2",
                 "train.max_steps=2", "train.eval_every=2", "train.checkpoint_every=2", "train.threads=1",
                 "eval.samples=2"]
    out = app("train", "recipe=srvp_smmnist", f"run_dir={run}", f"data_dir={data}", *overrides)
    final = json.loads(out.stdout.strip().splitlines()[-1])
    assert final["step"] == 2 and final["nonfinite_steps"] == 0 and "val_psnr_best_mean" in final
    metrics = json.loads(app("evaluate", f"checkpoint={run}", f"data_dir={data}", "split=test").stdout
                         .strip().splitlines()[-1])
    assert metrics["checkpoint_step"] == 2 and 0 < metrics["ssim_best_mean"] <= 1
