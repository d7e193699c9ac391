"""gaussian_random_walk (issue 13): its density against torch.distributions, its samples' moments,
and maximum likelihood recovers the increments' mean and standard deviation."""

import pytest
import torch

from eddies.core import DataSpec, build

DATA = DataSpec({"x": (4, 1, 3), "y": (6, 1, 3)})


def model_with(drift, scale):
    model = build("gaussian_random_walk", "models", data=DATA).double()
    with torch.no_grad():
        model.drift.copy_(torch.tensor(drift).reshape(1, 3)), model.log_scale.copy_(torch.tensor(scale).log().reshape(1, 3))
    return model


def test_log_prob_is_the_sum_of_gaussian_increment_densities():
    model = model_with([0.1, -0.2, 0.0], [0.5, 1.0, 2.0])
    g = torch.Generator().manual_seed(0)
    batch = {"x": torch.randn(2, 4, 1, 3, generator=g, dtype=torch.float64),
             "y": torch.randn(2, 6, 1, 3, generator=g, dtype=torch.float64)}
    path = torch.cat([batch["x"][:, -1:], batch["y"]], 1)
    normal = torch.distributions.Normal(torch.tensor([0.1, -0.2, 0.0]).double(), torch.tensor([0.5, 1.0, 2.0]).double())
    expected = normal.log_prob(path[:, 1:] - path[:, :-1]).sum((1, 2, 3))
    torch.testing.assert_close(model.log_prob(batch), expected)


def test_samples_have_the_walks_moments_and_predict_is_the_mean_path():
    model = model_with([0.1, -0.2, 0.0], [0.5, 1.0, 2.0])
    batch = {"x": torch.ones(1, 4, 1, 3, dtype=torch.float64), "y": torch.zeros(1, 6, 1, 3, dtype=torch.float64)}
    torch.manual_seed(0)
    draws = model.sample(batch, samples=20000)[:, 0, :, 0]  # (N, 6, 3)
    k = torch.arange(1, 7, dtype=torch.float64)[:, None]
    mean = 1 + k * torch.tensor([0.1, -0.2, 0.0]).double()
    std = k.sqrt() * torch.tensor([0.5, 1.0, 2.0]).double()
    torch.testing.assert_close(draws.mean(0), mean, atol=4 * (std / 20000 ** 0.5).max().item(), rtol=0)
    torch.testing.assert_close(draws.std(0), std, rtol=0.03, atol=0)
    torch.testing.assert_close(model.predict(batch)[0, :, 0], mean)
    assert model.sample(batch, temperature=0.0).allclose(model.predict(batch))
    out = model.predict(batch, prefix=2, horizon=3)
    assert out.shape == (1, 5, 1, 3) and torch.equal(out[:, :2], batch["y"][:, :2])


def test_maximum_likelihood_gives_the_increments_mean_and_std():
    g = torch.Generator().manual_seed(1)
    walk = torch.cumsum(0.3 + 0.7 * torch.randn(64, 10, 1, 3, generator=g, dtype=torch.float64), 1)
    batch = {"x": walk[:, :4], "y": walk[:, 4:]}
    increments = torch.diff(walk[:, 3:], dim=1)
    model = build("gaussian_random_walk", "models", data=DATA).double()
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(600):
        optimizer.zero_grad()
        model.loss(batch)["loss"].backward()
        optimizer.step()
    torch.testing.assert_close(model.drift.detach()[0], increments.mean((0, 1, 2)), atol=1e-4, rtol=0)
    torch.testing.assert_close(model.log_scale.exp().detach()[0], increments.std((0, 1, 2), correction=0),
                               atol=1e-4, rtol=0)


def test_hold_keeps_the_named_channels_of_constant_velocity():
    data = DataSpec({"x": (3, 4, 2), "y": (2, 4, 2)})
    model = build({"type": "constant_velocity", "hold": [2, 3]}, "models", data=data)
    x = torch.arange(24.0).reshape(1, 3, 4, 2)
    out = model.predict({"x": x})
    torch.testing.assert_close(out[:, :, :2], x[:, -1:, :2] + torch.tensor([1.0, 2.0])[None, :, None, None] * 8)
    torch.testing.assert_close(out[:, :, 2:], x[:, -1:, 2:].expand(-1, 2, -1, -1))
    with pytest.raises(Exception, match="model.hold"):
        build({"type": "constant_velocity", "hold": [4]}, "models", data=data)
