"""Suite-wide settings: offline data libraries, quiet progress bars, small Hypothesis budgets."""

import os

os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("TQDM_DISABLE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    """One intra-op thread per test, restored afterwards.

    The suite's tensors are tiny: thread hand-off dominates, and on a shared 2-core machine two
    threads made single operations up to 30x slower. Tests that train set ``train.threads``
    themselves; subprocesses choose their own.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from ``torch.manual_seed(0)``, so its draws do not depend on the order
    or the selection of the tests that ran before it in the same process."""
    torch.manual_seed(0)


# Property tests draw few, small examples by default, the same ones on every run (derandomized),
# so a CI run and a local run see the same cases; `HYPOTHESIS_PROFILE=thorough` draws many more,
# afresh each run, to search for counterexamples.
settings.register_profile(
    "default", max_examples=15, deadline=None, derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile(
    "thorough", max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
