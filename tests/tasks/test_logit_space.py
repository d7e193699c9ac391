import math

import torch
from torch.func import jacrev

from eddies.tasks.logit_space import bits_per_dim, dequantize, from_logit, logit_log_det, to_logit

ALPHA = 1e-6


def test_dequantize_and_logit_round_trip_recovers_every_level():
    k = torch.arange(256, dtype=torch.uint8)[None]
    noise = torch.rand(1, 256, dtype=torch.float64)
    u = dequantize(k, noise)
    back = from_logit(to_logit(u, ALPHA), ALPHA)
    assert torch.equal(torch.floor(back * 256).to(torch.uint8), k)
    torch.testing.assert_close(back, u, atol=1e-12, rtol=0)


def test_logit_log_det_equals_autograd_jacobian():
    u = torch.rand(3, 5, dtype=torch.float64)
    y = to_logit(u, ALPHA)
    for i in range(3):
        jac = jacrev(lambda v: to_logit(v, ALPHA))(u[i])
        torch.testing.assert_close(logit_log_det(y[i:i + 1], ALPHA)[0], torch.logdet(jac))


def test_bits_per_dim_of_the_uniform_pixel_density_is_eight():
    # u uniform on [0, 1]^D  <=>  log p(y) = -sum log|dy/du|; its 8-bit data cost 8 bits per value
    y = to_logit(torch.rand(4, 28, 28, dtype=torch.float64), ALPHA)
    log_prob_logit = -logit_log_det(y, ALPHA)
    torch.testing.assert_close(bits_per_dim(log_prob_logit, y, ALPHA), torch.full((4,), 8.0, dtype=torch.float64))


def test_bits_per_dim_matches_an_independent_computation():
    # standard normal in logit space, converted by hand in pixel space with the sigmoid's derivative
    u = torch.rand(2, 6, dtype=torch.float64)
    y = to_logit(u, ALPHA)
    log_prob_logit = torch.distributions.Normal(0.0, 1.0).log_prob(y).sum(1)
    s = ALPHA + (1 - 2 * ALPHA) * u
    log_p_pixel = log_prob_logit + torch.log((1 - 2 * ALPHA) / (s * (1 - s))).sum(1)
    expected = -(log_p_pixel - 6 * math.log(256)) / (6 * math.log(2))
    torch.testing.assert_close(bits_per_dim(log_prob_logit, y, ALPHA), expected)
