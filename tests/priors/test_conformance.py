"""Every registered prior passes the prior conformance kit (eddies.core.testing.priors), over the
examples it declares at registration; the kit's pytest plugin parametrises ``prior_case``."""

from __future__ import annotations

import eddies.priors  # noqa: F401 (registers the priors)
from eddies.core import PRIORS

PROJECT_PRIORS = {"standard_normal", "diag_gaussian", "gmm_lowrank", "residual_latent", "euler_state"}


def test_every_project_prior_is_registered_with_examples():
    entries = {e.name: e for e in PRIORS.entries() if e.distribution == "eddies-priors"}
    assert set(entries) == PROJECT_PRIORS
    missing = [name for name, e in entries.items() if not e.meta.get("examples")]
    assert not missing, f"priors without conformance examples: {missing}"


def test_registered_prior_conforms(prior_case):
    prior_case.check()
