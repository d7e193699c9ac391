"""The plug-in's own tests: eddies' conformance kit, plus one closed-form check."""

import torch

from eddies.core import build
from eddies.core.testing import conformance_test

# One line: invertibility, log-det against the autograd Jacobian (float64), batch independence,
# gradients, safetensors round trip and shape errors, for every example the layer declares.
test_sinh_arcsinh_conformance = conformance_test("sinh_arcsinh")


def test_identity_at_initialisation_and_known_value():
    layer = build({"type": "sinh_arcsinh"}, "flows", shape=(2,)).double()
    x = torch.tensor([[0.3, -1.7]], dtype=torch.float64)
    z, logdet = layer(x)
    assert torch.allclose(z, x) and torch.allclose(logdet, torch.zeros(1, dtype=torch.float64))
    skewed = build({"type": "sinh_arcsinh", "init_skew": 1.0}, "flows", shape=(1,)).double()
    z, _ = skewed(torch.zeros(1, 1, dtype=torch.float64))
    assert torch.allclose(z, torch.sinh(torch.tensor(-1.0, dtype=torch.float64)))
